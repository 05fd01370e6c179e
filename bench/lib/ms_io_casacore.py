"""The python-casacore peer of `selfcal-bench io`: DATA read and write throughput on the same MS.

Run with /usr/bin/python3 (Debian's python3-casacore, numpy 1.24). One JSON object per
measurement on stdout, in the layout selfcal-bench prints. Each repeat opens the table afresh.
  read/getcol    whole-column getcol (a new numpy array, as scripts usually do)
  read/getcolnp  whole-column getcolnp into one preallocated array (the analogue of readData)
  write/putcol   whole-column putcol of the values read before, then flush, inside the timing
"""
import json
import sys
import time

import numpy as np
from casacore.tables import table


def emit(op, variant, seconds, nbytes, r):
    print(json.dumps({"tool": "python-casacore", "op": op, "variant": variant, "seconds": seconds,
                      "bytes": nbytes, "repeat_index": r}, sort_keys=True), flush=True)


def main():
    path = sys.argv[1]
    column = sys.argv[2] if len(sys.argv) > 2 else "DATA"
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    for r in range(repeats):
        t = table(path, ack=False)
        t0 = time.perf_counter()
        d = t.getcol(column)
        emit("read", "getcol", time.perf_counter() - t0, d.nbytes, r)
        t.close()

        t = table(path, ack=False)
        buf = np.empty_like(d)
        t0 = time.perf_counter()
        t.getcolnp(column, buf)
        emit("read", "getcolnp", time.perf_counter() - t0, buf.nbytes, r)
        t.close()

        t = table(path, readonly=False, ack=False)
        d = t.getcol(column)
        t.flush()
        t0 = time.perf_counter()
        t.putcol(column, d)
        t.flush()
        emit("write", "putcol", time.perf_counter() - t0, d.nbytes, r)
        t.unlock()
        t.close()


if __name__ == "__main__":
    main()
