"""Medians and ratios for bench/solve-vs-casa.sh; prints a markdown report."""
import json
import statistics
import sys

lines = open(sys.argv[1]).read().splitlines()
rows = [json.loads(l) for l in lines if l.startswith("{")]
for l in lines:
    if l.startswith("#"):
        print(l.lstrip("# "))
print()


def times(tool, op, key="wall_s"):
    return [r[key] for r in rows if r.get("tool") == tool and r.get("op") == op and key in r]


def med(tool, op, key="wall_s"):
    t = times(tool, op, key)
    return statistics.median(t) if t else None


nvis = next((r["nvis"] for r in rows if "nvis" in r), None)
# CASA: the task call itself (import excluded), the kinder figure for CASA.
s_ours, s_casa = med("selfcal", "solve"), med("casa", "gaincal", "seconds")
a_ours, a_casa = med("selfcal", "apply"), med("casa", "applycal", "seconds")
print("| figure | selfcal | CASA 6.7 | ratio CASA/selfcal | runs (selfcal; CASA: min–max s) |")
print("|---|---|---|---|---|")


def line(name, x, y, tx, ty, unit="s"):
    if x is None or y is None:
        return
    print(f"| {name} | {x:.2f} {unit} | {y:.2f} {unit} | {y / x:.1f}× | "
          f"{', '.join(f'{v:.2f}' for v in tx)}; {min(ty):.2f}–{max(ty):.2f} |")


line("phase-only `int` solve, wall (median)", s_ours, s_casa, times("selfcal", "solve"), times("casa", "gaincal", "seconds"))
line("apply one table, wall (median)", a_ours, a_casa, times("selfcal", "apply"), times("casa", "applycal", "seconds"))
if None not in (s_ours, s_casa, a_ours, a_casa):
    print(f"| solve + apply, wall (medians summed) | {s_ours + a_ours:.2f} s | {s_casa + a_casa:.2f} s | "
          f"{(s_casa + a_casa) / (s_ours + a_ours):.1f}× | |")
f_ours = med("selfcal", "solve+apply")
if f_ours and s_casa and a_casa:
    print(f"| **solve + apply in one command** (`selfcal solve --apply`) vs gaincal + applycal (medians summed) | {f_ours:.2f} s | "
          f"{s_casa + a_casa:.2f} s | **{(s_casa + a_casa) / f_ours:.1f}×** | {', '.join(f'{v:.2f}' for v in times('selfcal', 'solve+apply'))} |")
if nvis:
    for name, x, y in [("solve", s_ours, s_casa), ("apply", a_ours, a_casa)]:
        if x and y:
            print(f"| {name}: visibilities per second | {nvis / x / 1e6:.1f} M/s | {nvis / y / 1e6:.2f} M/s | {y / x:.1f}× | |")
pw = med("casa", "gaincal")
if pw:
    print(f"| CASA gaincal as a whole process (with its {med('casa', 'gaincal', 'import_seconds'):.1f} s import) | | {pw:.2f} s | {pw / s_ours:.1f}× | |")
b_s, b_a = med("selfcal-baseline", "solve"), med("selfcal-baseline", "apply")
if b_s:
    print(f"| baseline selfcal solve (same run) | {b_s:.2f} s | | CASA/baseline {s_casa / b_s:.1f}×; baseline/now {b_s / s_ours:.2f}× | {', '.join(f'{v:.2f}' for v in times('selfcal-baseline', 'solve'))} |")
if b_a:
    print(f"| baseline selfcal apply (same run) | {b_a:.2f} s | | CASA/baseline {a_casa / b_a:.1f}×; baseline/now {b_a / a_ours:.2f}× | {', '.join(f'{v:.2f}' for v in times('selfcal-baseline', 'apply'))} |")
print()
for r in rows:
    if r.get("tool") == "compare":
        print(f"- {r['op']}: `{json.dumps(r['result'])}`")
