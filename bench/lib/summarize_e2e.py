"""Summarises one `selfcal run` of bench/e2e.sh as markdown, from its report.json and the
/usr/bin/time line: wall time per stage, time inside WSClean, selfcal's own share, peak RSS.

Usage: summarize_e2e.py TITLE OUTPUT_DIR TIME_FILE
"""
import json
import sys

title, out, timefile = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    r = json.load(open(f"{out}/report.json"))
except OSError as e:
    print(f"\n## {title}\n\nno report.json ({e}); see the run's .out file\n")
    sys.exit(0)
t = r.get("timings", {})
wsclean = sum(t.get(k, 0.0) for k in ("image_initial", "image_rounds", "predict"))
wall = r["wall_s"]
own = wall - wsclean
print(f"\n## {title}\n")
print(f"status `{r['status']}` ({r['stop_reason']}); executor `{r['executor']}`")
ini, fin = r.get("initial") or {}, r.get("final") or {}
print(f"SNR {ini.get('snr', 0):.1f} -> {fin.get('snr', 0):.1f}; rounds: "
      + ", ".join(f"{x['calmode']} {x['solint']} {'accepted' if x['accepted'] else 'rejected'}" for x in r["rounds"]))
print()
print("| stage | wall s |")
print("|---|---|")
for k in ("validate", "seed", "image_initial"):
    if k in t:
        print(f"| {k} | {t[k]:.2f} |")
for x in r["rounds"]:
    rt = x.get("timings", {})
    for k in ("solve", "apply", "solve+apply", "image", "rollback"):
        if k in rt:
            print(f"| round {x['index']} ({x['calmode']} {x['solint']}) {k} | {rt[k]:.2f} |")
if "predict" in t:
    print(f"| WSClean predicts (rollbacks) | {t['predict']:.2f} |")
print(f"| **total wall** | **{wall:.2f}** |")
print(f"| inside WSClean | {wsclean:.2f} |")
print(f"| **selfcal's own work** (wall - WSClean) | **{own:.2f} ({100 * own / wall:.1f}%)** |")
rss = r.get("peak_rss_mb")
if rss is not None:
    print(f"| selfcal peak RSS (getrusage) | {rss:.0f} MiB |")
try:
    print(f"\n/usr/bin/time: {open(timefile).read().strip()}")
except OSError:
    pass
