#!/usr/bin/env bash
# Installs what the console's end-to-end test needs: Debian's chromium
# (no browser download: playwright-core only drives it) and the pinned
# npm packages of package-lock.json. Idempotent; run as root on the test
# machines (apt-get), or with chromium and node already installed.
set -euo pipefail
cd "$(dirname "$0")"

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: $* missing and not root: install it (apt-get install -y $*) and run again" >&2
    exit 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi
if ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup.sh: node $(node --version) is too old; playwright-core needs 20 or newer" >&2
  exit 1
fi
# Exactly the locked versions; .npmrc keeps registry host names out of the lock.
npm ci --no-audit --no-fund --loglevel=error
/usr/bin/chromium --version
