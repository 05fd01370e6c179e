"""Compares WSClean images made with different options from the same data.

Usage: /usr/bin/python3 compare_images.py REFERENCE.fits OTHER.fits [OTHER.fits ...]
Prints one JSON object per image: peak, rms (robust: 1.4826 x MAD, as a noise estimate), SNR,
peak position, and against the reference the max |difference| and rms difference, both relative
to the reference peak. Reads single-plane 32-bit float FITS (what WSClean writes) with numpy.
"""
import json
import sys

import numpy as np


def read_fits(path):
    raw = open(path, "rb").read()
    header, off = {}, 0
    while True:
        block = raw[off:off + 2880]
        off += 2880
        done = False
        for i in range(0, 2880, 80):
            card = block[i:i + 80].decode("ascii", "replace")
            key = card[:8].strip()
            if key == "END":
                done = True
                break
            if card[8:10] == "= ":
                header[key] = card[10:].split("/")[0].strip().strip("'").strip()
        if done:
            break
    assert int(header["BITPIX"]) == -32, "expected 32-bit float data"
    nx, ny = int(header["NAXIS1"]), int(header["NAXIS2"])
    data = np.frombuffer(raw, dtype=">f4", count=nx * ny, offset=off).astype(np.float64)
    return data.reshape(ny, nx)


def stats(img):
    peak = float(np.nanmax(img))
    y, x = np.unravel_index(int(np.nanargmax(img)), img.shape)
    med = np.nanmedian(img)
    rms = float(1.4826 * np.nanmedian(np.abs(img - med)))
    return {"peak": peak, "rms": rms, "snr": peak / rms if rms > 0 else None, "peak_pixel": [int(x), int(y)]}


ref = read_fits(sys.argv[1])
rs = stats(ref)
print(json.dumps({"image": sys.argv[1], **rs}))
for path in sys.argv[2:]:
    img = read_fits(path)
    d = img - ref
    print(json.dumps({"image": path, **stats(img),
                      "max_abs_diff_over_ref_peak": float(np.nanmax(np.abs(d)) / rs["peak"]),
                      "rms_diff_over_ref_peak": float(np.sqrt(np.nanmean(d * d)) / rs["peak"]),
                      "rms_diff_over_ref_rms": float(np.sqrt(np.nanmean(d * d)) / rs["rms"])}))
