#!/usr/bin/env bash
# Installs the pinned MCP TypeScript SDK (package-lock.json) for the client
# interoperability test. Idempotent; installs Debian's nodejs and npm when
# they are missing (as root on the test machines).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: npm missing and not root: install nodejs and npm (apt-get install -y nodejs npm) and run again" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup.sh: node $(node --version) is too old; the MCP TypeScript SDK needs 20 or newer" >&2
  exit 1
fi
# Exactly the locked versions; .npmrc keeps registry host names out of the lock.
npm ci --no-audit --no-fund --loglevel=error
