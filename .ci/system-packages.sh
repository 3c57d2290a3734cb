#!/usr/bin/env bash
# The Debian programs the tests and benchmarks drive for real, installed when missing and when that
# needs no password prompt: redis-server (Redis online store), chromium (reports and the Dagster UI
# looked at headless), wrk (saturation in bench/scoring.py). Usage: system-packages.sh [package ...];
# with no arguments, all of them. Whatever stays missing makes its tests skip with a reason.
set -u
declare -A PROVIDES=([redis-server]=redis-server [chromium]=chromium [wrk]=wrk)
wanted=("$@"); [ ${#wanted[@]} -eq 0 ] && wanted=("${!PROVIDES[@]}")
missing=(); for pkg in "${wanted[@]}"; do command -v "${PROVIDES[$pkg]:-$pkg}" >/dev/null 2>&1 || missing+=("$pkg"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "missing ${missing[*]} and no passwordless root: their tests will be skipped"; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
  && echo "installed ${missing[*]}" || echo "could not install ${missing[*]}: their tests will be skipped"
# The redis package starts a system service on 6379; the tests start their own server, so stop it.
$SUDO service redis-server stop >/dev/null 2>&1 || true
exit 0
