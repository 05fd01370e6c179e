"""The CASA peer for bench/solve-vs-casa.sh: one gaincal or applycal call, timed inside the
process (casatasks' import, 2-4 s, is outside that time; the script also times the whole process).

Run with the benchmark venv's python (bench/setup-casa-venv.sh):
  casa_peer.py gaincal MS TABLE REFANT [SOLINT]   calmode='p', solint='int' (or SOLINT), gaintype='G', minsnr=3
  casa_peer.py applycal MS TABLE          interp='linear', calwt=False, flagbackup=False
Prints one JSON object on stdout.
"""
import json
import os
import sys
import time

t_import = time.perf_counter()
from casatasks import applycal, gaincal  # noqa: E402

t_import = time.perf_counter() - t_import

action, ms, tab = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
if action == "gaincal":
    refant = sys.argv[4]
    solint = sys.argv[5] if len(sys.argv) > 5 else "int"
    gaincal(vis=ms, caltable=tab, calmode="p", solint=solint, gaintype="G", refant=refant, minsnr=3.0)
    ok = os.path.isdir(tab)
elif action == "applycal":
    applycal(vis=ms, gaintable=[tab], interp=["linear"], calwt=[False], flagbackup=False)
    ok = True
else:
    sys.exit(f"unknown action {action}")
seconds = time.perf_counter() - t0
print(json.dumps({"tool": "casa", "op": action, "seconds": seconds, "import_seconds": t_import, "ok": ok}), flush=True)
if not ok:
    sys.exit(1)
