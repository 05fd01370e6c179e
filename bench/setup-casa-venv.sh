#!/usr/bin/env bash
# Sets up CASA (casatools + casatasks 6.7.0.31) in .venv-casa/ at the repo root, as a reference
# peer for the benchmarks: never a runtime dependency of selfcal. Idempotent: a second run checks
# each step and does only what is missing.
#
# Works offline once done: the measures data come from the `casadata` wheel (downloaded once,
# never installed), extracted as .venv-casa/rundata without alma/, ephemerides/splatalogue.db and
# catalogs/, with the readme.txt files casaconfig looks for, and a casasiteconfig.py in the venv's
# site-packages that points measurespath there and turns every auto update off.
#
# Needs: /usr/bin/python3 (3.11, for the cp311 wheels) with venv, PyPI reachable for the first run.
# Usage: bench/setup-casa-venv.sh [VENV_DIR]     (default: <repo>/.venv-casa)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-$PWD/.venv-casa}
VENV=$(mkdir -p "$VENV" && cd "$VENV" && pwd)
CASA_VERSION=6.7.0.31
PY=/usr/bin/python3

log() { echo "setup-casa-venv: $*"; }

# 1. The venv and the packages.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi
have() { "$VENV/bin/pip" show "$1" 2>/dev/null | awk '/^Version:/{print $2}'; }
if [ "$(have casatools)" != "$CASA_VERSION" ] || [ "$(have casatasks)" != "$CASA_VERSION" ] || [ -z "$(have six)" ]; then
  log "installing casatools==$CASA_VERSION casatasks==$CASA_VERSION six (about 1 GB)"
  "$VENV/bin/pip" install -q "casatools==$CASA_VERSION" "casatasks==$CASA_VERSION" six
else
  log "casatools and casatasks $CASA_VERSION already installed"
fi

# 2. The measures data from the casadata wheel, extracted (not installed).
RUNDATA="$VENV/rundata"
if [ ! -f "$RUNDATA/.complete" ]; then
  mkdir -p "$VENV/cache"
  WHEEL=$(ls "$VENV"/cache/casadata-*.whl 2>/dev/null | tail -1 || true)
  if [ -z "$WHEEL" ]; then
    log "downloading the casadata wheel (about 350 MB)"
    "$VENV/bin/pip" download -q --no-deps casadata -d "$VENV/cache"
    WHEEL=$(ls "$VENV"/cache/casadata-*.whl | tail -1)
  fi
  log "extracting $(basename "$WHEEL") into $RUNDATA"
  rm -rf "$RUNDATA.tmp"
  "$VENV/bin/python" - "$WHEEL" "$RUNDATA.tmp" <<'EOF'
import os, sys, time, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "casadata/__data__/"
skip_dirs = ("alma/", "catalogs/")
skip_files = ("ephemerides/splatalogue.db",)
version = os.path.basename(wheel).split("-")[1]
manifest = []
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        rel = info.filename[len(prefix):]
        if rel.startswith(skip_dirs) or rel in skip_files:
            continue
        out = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(info) as src, open(out, "wb") as dst:
            while True:
                block = src.read(1 << 20)
                if not block:
                    break
                dst.write(block)
        manifest.append(rel)
today = time.strftime("%Y-%m-%d")
# casaconfig's readme layout: '#' line, 'key : value' lines, then '#' and the manifest.
with open(os.path.join(dest, "readme.txt"), "w") as f:
    f.write("# casarundata extracted by selfcal bench/setup-casa-venv.sh from the casadata wheel\n")
    f.write(f"version : casadata-{version}\n")
    f.write(f"date : {today}\n")
    f.write("#\n")
    for rel in sorted(manifest):
        f.write(rel + "\n")
with open(os.path.join(dest, "geodetic", "readme.txt"), "w") as f:
    f.write("# measures data extracted by selfcal bench/setup-casa-venv.sh from the casadata wheel\n")
    f.write("site : casadata wheel (offline, no updates)\n")
    f.write(f"version : casadata-{version}\n")
    f.write(f"date : {today}\n")
print(f"extracted {len(manifest)} files")
EOF
  rm -rf "$RUNDATA"
  mv "$RUNDATA.tmp" "$RUNDATA"
  touch "$RUNDATA/.complete"
else
  log "measures data already in $RUNDATA"
fi

# 3. The site config: measures from rundata, no auto updates, logs inside the venv.
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$VENV/logs"
cat > "$SITE/casasiteconfig.py.new" <<EOF
# Written by selfcal bench/setup-casa-venv.sh: offline CASA for benchmarks.
measurespath = "$RUNDATA"
measures_auto_update = False
data_auto_update = False
logfile = "$VENV/logs/casa-%s.log" % __import__("time").strftime("%Y%m%d-%H%M%S", __import__("time").gmtime())
EOF
if ! cmp -s "$SITE/casasiteconfig.py.new" "$SITE/casasiteconfig.py"; then
  mv "$SITE/casasiteconfig.py.new" "$SITE/casasiteconfig.py"
  log "wrote $SITE/casasiteconfig.py"
else
  rm "$SITE/casasiteconfig.py.new"
fi

# 4. Check: imports, finds its measures data, and converts a time without network access.
log "checking the import"
"$VENV/bin/python" - <<'EOF'
import time
t0 = time.time()
import casatools, casatasks
me = casatools.measures()
epoch = me.epoch("utc", "2025-01-01T00:00:00")
conv = me.measure(epoch, "tai")
dt = (conv["m0"]["value"] - epoch["m0"]["value"]) * 86400
assert abs(dt - 37) < 1e-3, f"TAI-UTC is {dt} s, expected 37 s (leap-second table missing?)"
print(f"setup-casa-venv: casatools {casatools.version_string()} imported in {time.time() - t0:.1f} s; TAI-UTC = {dt:.0f} s")
EOF
log "ready: $VENV/bin/python"
