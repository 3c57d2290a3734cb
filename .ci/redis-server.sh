#!/usr/bin/env bash
# Make redis-server available for the Redis online-store tests (Debian package), when it can be
# installed without a password prompt. The tests start and stop their own server on a free port
# and skip with a reason when redis-server is still missing.
set -u
command -v redis-server >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "redis-server missing and no passwordless root: Redis tests will be skipped"; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
$SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null 2>&1 \
  && echo "installed redis-server" || echo "could not install redis-server: Redis tests will be skipped"
# The package starts a system service on 6379; the tests use their own server, so stop it.
$SUDO service redis-server stop >/dev/null 2>&1 || true
exit 0
