#!/usr/bin/env bash
# Installs what selfcal needs on Debian 12, idempotently: casacore, cfitsio, wcslib, zlib, WSClean,
# python-casacore (for test cross-checks); Chromium with SELFCAL_WITH_BROWSER=1. Run as root or with sudo available.
set -euo pipefail

pkgs=(casacore-dev casacore-tools casacore-data libcfitsio-dev wcslib-dev zlib1g-dev wsclean python3-casacore pkg-config)
if [ "${SELFCAL_WITH_CONTAINERS:-0}" = 1 ]; then pkgs+=(docker.io podman tini); fi
if [ "${SELFCAL_WITH_SLURM:-0}" = 1 ]; then pkgs+=(slurm-wlm); fi
# Headless Chromium renders report.html in the report tests (ReportTests); CI sets this.
if [ "${SELFCAL_WITH_BROWSER:-0}" = 1 ]; then pkgs+=(chromium); fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
