#!/usr/bin/python3
"""Writes N random point components (WSClean/BBS source list) within R degrees of a J2000
phase centre: fluxes from a power law (N(>S) ∝ S^-1) between 10 mJy and 2 Jy, spectral
index -0.7. Usage: make_components.py N RA_DEG DEC_DEG R_DEG OUT [SEED]"""
import math, random, sys

n, ra0, dec0, r, out = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
rng = random.Random(int(sys.argv[6]) if len(sys.argv) > 6 else 1)
with open(out, "w") as f:
    f.write("format = Name, Type, Ra, Dec, I, SpectralIndex, LogarithmicSI, ReferenceFrequency='1400000000', MajorAxis, MinorAxis, Orientation\n")
    for i in range(n):
        rho = r * math.sqrt(rng.random()); th = 2 * math.pi * rng.random()
        dec = dec0 + rho * math.sin(th); ra = (ra0 + rho * math.cos(th) / math.cos(math.radians(dec))) % 360
        s = 0.01 / (1 - rng.random() * (1 - 0.01 / 2.0))
        h = ra / 15; hh = int(h); mm = int((h - hh) * 60); ss = ((h - hh) * 60 - mm) * 60
        d = abs(dec); dd = int(d); dm = int((d - dd) * 60); ds = ((d - dd) * 60 - dm) * 60
        f.write("C%d,POINT,%02d:%02d:%09.6f,%s%02d.%02d.%08.5f,%.6f,[-0.7],true,1400000000,,,\n"
                % (i, hh, mm, ss, "-" if dec < 0 else "+", dd, dm, ds, s))
