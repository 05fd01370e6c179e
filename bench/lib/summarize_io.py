"""Medians and ratios for bench/ms-io.sh: reads the JSON lines both tools printed, writes a
markdown table (stdout) and a JSON summary (argv[2])."""
import json
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
groups = {}
for r in rows:
    groups.setdefault((r["tool"], r["op"], r["variant"]), []).append(r)


def med(tool, op, variant):
    g = groups.get((tool, op, variant))
    if not g:
        return None
    s = statistics.median(x["seconds"] for x in g)
    b = g[0]["bytes"]
    return {"seconds": s, "gbps": b / s / 1e9, "n": len(g), "bytes": b,
            "min_s": min(x["seconds"] for x in g), "max_s": max(x["seconds"] for x in g)}


pairs = [
    ("DATA read: Swift `readData`, default chunks (rowChunks(), ~51k rows) vs `getcol` (whole column)",
     ("swift", "read", "readData"), ("python-casacore", "read", "getcol")),
    ("DATA read: Swift `readData`, one-timestep chunks (4,656 rows) vs `getcolnp` into a preallocated array",
     ("swift", "read", "readData-timestep"), ("python-casacore", "read", "getcolnp")),
    ("DATA read as the solver reads (`read(chunk, dataColumn:)`, default chunks) vs `getcol`",
     ("swift", "read", "chunk"), ("python-casacore", "read", "getcol")),
    ("DATA write + flush: Swift `writeData`, default chunks vs `putcol` (whole column)",
     ("swift", "write", "writeData"), ("python-casacore", "write", "putcol")),
    ("DATA write + flush: Swift `writeData`, one-timestep chunks vs `putcol`",
     ("swift", "write", "writeData-timestep"), ("python-casacore", "write", "putcol")),
]
out = {"pairs": [], "all": {}}
print("| figure | Swift GB/s (median s) | python-casacore GB/s (median s) | ratio Swift/peer | n |")
print("|---|---|---|---|---|")
for name, a, b in pairs:
    x, y = med(*a), med(*b)
    if not x or not y:
        continue
    ratio = x["gbps"] / y["gbps"]
    print(f"| {name} | {x['gbps']:.2f} ({x['seconds']*1000:.1f} ms) | {y['gbps']:.2f} ({y['seconds']*1000:.1f} ms) | {ratio:.2f}× | {x['n']}/{y['n']} |")
    out["pairs"].append({"figure": name, "swift": x, "peer": y, "ratio": ratio})
for k in sorted(groups):
    out["all"]["/".join(k)] = med(*k)
print()
print("All variants (median, min–max over repeats):")
for k, v in out["all"].items():
    print(f"  {k:40s} {v['gbps']:6.2f} GB/s  {v['seconds']*1000:7.1f} ms  ({v['min_s']*1000:.1f}–{v['max_s']*1000:.1f} ms, n={v['n']})")
json.dump(out, open(sys.argv[2], "w"), indent=1)
