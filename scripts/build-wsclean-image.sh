#!/usr/bin/env bash
# Builds the local container image `selfcal-wsclean:latest` from this machine's WSClean: no
# registry is needed (none is reachable here). The root folder gets `wsclean`, every library `ldd`
# lists for it and for a few tools, the dynamic loader, the casacore data (/usr/share/casacore), and
# the tools the container executor and its tests run inside (sh, bash, timeout, sleep, kill, ...);
# it is tarred and imported (`docker import` / `podman import`): about 2 s and 110 MB.
#
#   scripts/build-wsclean-image.sh [--engine docker|podman] [--tag IMAGE] [--force]
#
# Idempotent: an existing image is kept unless --force. Needs WSClean on the host
# (apt-get install wsclean) and a running engine (docker: scripts/start-dockerd.sh).
set -euo pipefail

engine=${SELFCAL_ENGINE:-docker}
tag=selfcal-wsclean:latest
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) engine=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build-wsclean-image: unknown argument $1" >&2; exit 2 ;;
  esac
done
say() { echo "build-wsclean-image: $*" >&2; }

case "$engine" in docker|podman) ;; *) say "--engine must be docker or podman"; exit 2 ;; esac
command -v "$engine" >/dev/null || { say "$engine is not installed (SELFCAL_WITH_CONTAINERS=1 scripts/install-deps.sh)"; exit 2; }
wsclean=$(command -v wsclean) || { say "WSClean is not installed on this machine (apt-get install wsclean)"; exit 2; }

if [ $force = 0 ] && timeout 20 "$engine" image inspect "$tag" >/dev/null 2>&1; then
  say "$tag already exists in $engine (use --force to rebuild)"
  exit 0
fi

work=$(mktemp -d /tmp/selfcal-wsclean-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{usr/bin,usr/lib,etc,tmp,work,data}
chmod 1777 "$root/tmp"
# Debian 12 has a merged /usr: keep the same links, so every path ldd prints is valid inside.
for d in bin sbin lib lib64; do
  if [ -L "/$d" ]; then
    target=$(readlink "/$d")
    case "$target" in /*) target=${target#/} ;; esac
    mkdir -p "$root/$target"
    ln -s "$target" "$root/$d"
  fi
done

tools=("$wsclean")
for t in sh bash dash timeout sleep kill cat echo head tail yes ls mkdir rm env true false id \
         setsid printf touch stat sync ps pkill tr wc grep; do
  p=$(type -P "$t" 2>/dev/null || true)
  if [ -n "$p" ]; then tools+=("$p"); fi
done

copy() { # copies a file to the same path in the root, following links, keeping the link names too
  local f=$1
  [ -e "$root$f" ] && return 0
  mkdir -p "$root$(dirname "$f")"
  cp -L "$f" "$root$f"
}

for t in "${tools[@]}"; do
  copy "$t"
  # `ldd` lines: "libx.so => /path (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)".
  while read -r lib; do copy "$lib"; done < <(ldd "$t" 2>/dev/null | awk '/=> \//{print $3} /^[ \t]*\//{print $1}')
done
# /bin/sh is a link to dash on the host; copy() followed it already.

if [ -d /usr/share/casacore ]; then
  mkdir -p "$root/usr/share"
  cp -a /usr/share/casacore "$root/usr/share/"
  # casacore's data/ is often a link into /var/lib/casacore: bring its target as well.
  if [ -L /usr/share/casacore/data ]; then
    target=$(readlink -f /usr/share/casacore/data)
    mkdir -p "$root$(dirname "$target")"
    cp -a "$target" "$root$(dirname "$target")/"
  fi
fi
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF

old_id=$(timeout 20 "$engine" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
version=$("$wsclean" --version 2>/dev/null | sed -n 's/^WSClean version \([^ ]*\).*/\1/p' | head -1)
tar -C "$root" -cf "$work/root.tar" .
size=$(du -sh "$work/root.tar" | cut -f1)
timeout 120 "$engine" import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'ENV HOME=/tmp' \
  --change "LABEL selfcal.wsclean-version=${version:-unknown}" \
  --change 'CMD ["sleep", "infinity"]' \
  "$work/root.tar" "$tag" >/dev/null
new_id=$(timeout 20 "$engine" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
  timeout 20 "$engine" rmi "$old_id" >/dev/null 2>&1 || true   # the replaced image, now untagged
fi
say "built $tag in $engine from $wsclean (WSClean ${version:-?}, $size)"
