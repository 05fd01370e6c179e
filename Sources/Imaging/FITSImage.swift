import CFITSIO
