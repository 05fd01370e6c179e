import CCasacore
