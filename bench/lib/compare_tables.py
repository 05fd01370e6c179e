"""Compares two CASA G Jones tables (ours and CASA's) solution by solution, and each with the
simulation's true gains, after referencing every solution to one antenna (phase of REF = 0).

Usage: /usr/bin/python3 compare_tables.py OURS.G CASA.G REF_INDEX [TRUTH.json]
Prints one JSON object: phase rms/max difference in degrees, amplitude difference, counts.
"""
import json
import sys

import numpy as np
from casacore.tables import table


def load(path):
    t = table(path, ack=False)
    d = {
        "time": t.getcol("TIME"), "spw": t.getcol("SPECTRAL_WINDOW_ID"), "ant": t.getcol("ANTENNA1"),
        "g": t.getcol("CPARAM")[:, 0, :],  # (row, pol), channel 0
        "flag": t.getcol("FLAG")[:, 0, :],
    }
    t.close()
    return d


def cube(d, ref, times):
    """gains[time, spw, ant, pol], referenced to `ref`; NaN where flagged or absent."""
    ti = np.searchsorted(times, d["time"] - 0.5)
    nspw, nant = d["spw"].max() + 1, d["ant"].max() + 1
    g = np.full((len(times), nspw, nant, 2), np.nan + 0j, dtype=complex)
    gg = np.where(d["flag"], np.nan, d["g"])
    g[ti, d["spw"], d["ant"], :] = gg
    r = g[:, :, ref:ref + 1, :]
    return g * np.conj(r) / np.abs(r)


def stats(a, b, amp=True):
    ok = np.isfinite(a) & np.isfinite(b)
    dph = np.degrees(np.angle(a[ok] * np.conj(b[ok])))
    s = {"n": int(ok.sum()), "phase_rms_deg": float(np.sqrt(np.mean(dph ** 2))),
         "phase_max_abs_deg": float(np.max(np.abs(dph)))}
    if amp:  # phase-only solutions have |g| = 1, the truth does not: no amplitude against it
        s["amp_max_abs_diff"] = float(np.max(np.abs(np.abs(a[ok]) - np.abs(b[ok]))))
    return s


ours, casa, ref = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
times = np.unique(np.round(np.concatenate([ours["time"], casa["time"]]), 1))
# Merge times closer than 1 s (the two tools may write the interval's centre slightly differently).
merged = [times[0]]
for t in times[1:]:
    if t - merged[-1] > 1.0:
        merged.append(t)
times = np.array(merged)
go, gc = cube(ours, ref, times), cube(casa, ref, times)
out = {"ours_vs_casa": stats(go, gc),
       "ours_flagged": int(ours["flag"].sum()), "casa_flagged": int(casa["flag"].sum()),
       "ours_rows": int(len(ours["time"])), "casa_rows": int(len(casa["time"])), "refant_index": ref}
if len(sys.argv) > 4:
    truth = json.load(open(sys.argv[4]))
    tt = np.array(truth["times"])
    g = np.array(truth["gains"])  # [t][ant][receptor][re, im]
    g = g[..., 0] + 1j * g[..., 1]
    ti = np.array([np.argmin(np.abs(tt - t)) for t in times])
    gt = g[ti][:, None, :, :]  # same gains in every SPW
    gt = gt * np.conj(gt[:, :, ref:ref + 1, :]) / np.abs(gt[:, :, ref:ref + 1, :])
    gt = np.broadcast_to(gt, go.shape)
    out["ours_vs_truth"] = stats(go, gt, amp=False)
    out["casa_vs_truth"] = stats(gc, gt, amp=False)
print(json.dumps(out))
