#!/usr/bin/python3
"""Writes a synthetic catalog with the NVSS CATALOG.FIT layout (an AIPS VL binary table:
RA(2000), DEC(2000) as 1D degrees, PEAK INT as 1E Jy/beam, MAJOR AX, MINOR AX, POSANGLE as 1E
degrees, the polarisation, residual and field columns after them) for benchmarks.
Sources cover the sky north of -40 deg uniformly; peak fluxes follow N(>S) ∝ S^-1 from 2.5 mJy;
fitted sizes are the 45" beam, a quarter of them resolved.
Usage: make_nvss_catalog.py ROWS OUT.fits [SEED]   (needs numpy; Debian's /usr/bin/python3)"""
import sys
import numpy as np

rows, out = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
cols = [("RA(2000)", "1D", "DEGREE", ">f8"), ("DEC(2000)", "1D", "DEGREE", ">f8"), ("PEAK INT", "1E", "JY/BEAM", ">f4"),
        ("MAJOR AX", "1E", "DEGREE", ">f4"), ("MINOR AX", "1E", "DEGREE", ">f4"), ("POSANGLE", "1E", "DEGREE", ">f4"),
        ("Q CENTER", "1E", "JY/BEAM", ">f4"), ("U CENTER", "1E", "JY/BEAM", ">f4"), ("P FLUX", "1E", "JY/BEAM", ">f4"),
        ("I RMS", "1E", "JY/BEAM", ">f4"), ("POL RMS", "1E", "JY/BEAM", ">f4"), ("RES RMS", "1E", "JY/BEAM", ">f4"),
        ("RES PEAK", "1E", "JY/BEAM", ">f4"), ("RES FLUX", "1E", "JY/BEAM", ">f4"), ("CENTER X", "1E", "PIXEL", ">f4"),
        ("CENTER Y", "1E", "PIXEL", ">f4"), ("FIELD", "8A", "", "S8"), ("JD PROCESSED", "1J", "", ">i4")]
data = np.zeros(rows, dtype=[(c[0], c[3]) for c in cols])
data["RA(2000)"] = rng.uniform(0, 360, rows)
data["DEC(2000)"] = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-40)), 1, rows)))
data["PEAK INT"] = 0.0025 / rng.uniform(1e-4, 1, rows)
beam = 45 / 3600
resolved = rng.uniform(0, 1, rows) < 0.25
data["MAJOR AX"] = np.where(resolved, beam * rng.uniform(1.05, 3, rows), beam)
data["MINOR AX"] = np.where(resolved, beam * rng.uniform(1.0, 1.5, rows), beam)
data["POSANGLE"] = rng.uniform(-90, 90, rows)
data["I RMS"] = 0.00045
data["FIELD"] = b"C0000P00"
data["JD PROCESSED"] = 2450000


def card(key, value=None, comment=""):
    if value is None:
        return f"{key:<80}"
    if isinstance(value, str):
        v = "'" + value.replace("'", "''").ljust(8) + "'"
        s = f"{key:<8}= {v:<20}"
    elif isinstance(value, bool):
        s = f"{key:<8}= {'T' if value else 'F':>20}"
    else:
        s = f"{key:<8}= {value:>20}"
    if comment:
        s += " / " + comment
    return f"{s:<80}"[:80]


def block(cards):
    text = "".join(cards) + f"{'END':<80}"
    text += " " * (-len(text) % 2880)
    return text.encode("ascii")


with open(out, "wb") as f:
    f.write(block([card("SIMPLE", True), card("BITPIX", 8), card("NAXIS", 0), card("EXTEND", True)]))
    hdr = [card("XTENSION", "BINTABLE"), card("BITPIX", 8), card("NAXIS", 2), card("NAXIS1", data.dtype.itemsize),
           card("NAXIS2", rows), card("PCOUNT", 0), card("GCOUNT", 1), card("TFIELDS", len(cols))]
    for i, (name, form, unit, _) in enumerate(cols, 1):
        hdr += [card(f"TTYPE{i}", name), card(f"TFORM{i}", form)]
        if unit:
            hdr.append(card(f"TUNIT{i}", unit))
    hdr.append(card("EXTNAME", "AIPS VL"))
    f.write(block(hdr))
    raw = data.tobytes()
    f.write(raw + b"\0" * (-len(raw) % 2880))
print(f"wrote {out}: {rows} rows")
