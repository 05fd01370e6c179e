"""CORRECTED_DATA snapshots and comparisons for bench/solve-vs-casa.sh (/usr/bin/python3).

  corrected.py dump MS OUT.npy          CORRECTED_DATA (and FLAG, as OUT.flag.npy) to files
  corrected.py compare MS REF.npy       this MS's CORRECTED_DATA and FLAG against a snapshot
Compare prints JSON: max |a - b|, max |a - b| / max(|b|, 1e-6) over unflagged samples, the
largest |b|, and how many FLAG values differ. Both stream in row blocks.
"""
import json
import sys

import numpy as np
from casacore.tables import table

BLOCK = 100_000
action, ms, path = sys.argv[1:4]
t = table(ms, ack=False)
n = t.nrows()
shape = (n,) + t.getcell("DATA", 0).shape
if action == "dump":
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.complex64, shape=shape)
    fl = np.lib.format.open_memmap(path.replace(".npy", ".flag.npy"), mode="w+", dtype=bool, shape=shape)
    for s in range(0, n, BLOCK):
        m = min(BLOCK, n - s)
        out[s:s + m] = t.getcol("CORRECTED_DATA", startrow=s, nrow=m)
        fl[s:s + m] = t.getcol("FLAG", startrow=s, nrow=m)
    out.flush()
    fl.flush()
    print(json.dumps({"dumped": path, "rows": n}))
elif action == "compare":
    ref = np.load(path, mmap_mode="r")
    rfl = np.load(path.replace(".npy", ".flag.npy"), mmap_mode="r")
    max_abs = max_rel = max_ref = 0.0
    flag_diff = 0
    compared = 0
    for s in range(0, n, BLOCK):
        m = min(BLOCK, n - s)
        a = t.getcol("CORRECTED_DATA", startrow=s, nrow=m)
        f = t.getcol("FLAG", startrow=s, nrow=m)
        b = np.asarray(ref[s:s + m])
        bf = np.asarray(rfl[s:s + m])
        flag_diff += int((f != bf).sum())
        ok = ~(f | bf)
        d = np.abs(a - b)[ok]
        if d.size:
            rb = np.abs(b)[ok]
            max_abs = max(max_abs, float(d.max()))
            max_rel = max(max_rel, float((d / np.maximum(rb, 1e-6)).max()))
            max_ref = max(max_ref, float(rb.max()))
            compared += d.size
    print(json.dumps({"compared": compared, "max_abs_diff": max_abs, "max_rel_diff": max_rel,
                      "max_abs_value": max_ref, "flag_differences": flag_diff}))
else:
    sys.exit(f"unknown action {action}")
