#!/usr/bin/env bash
# Installs the benchmark's peer (scenario "peer"), pinned by package.json and
# package-lock.json in this folder, into bench/peer/node_modules.
#
# The lock file is written without "resolved" URLs
# (omit-lockfile-registry-resolved), so it names no registry host: npm then
# fetches each package from whatever registry the machine's npm is set up
# for and checks it against the lock file's integrity hash.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null; then
  echo "setup.sh: npm is not installed; the peer scenario will be skipped" >&2
  exit 1
fi
# Already installed from this very lock file: nothing to do.
if cmp -s package-lock.json node_modules/.bench-installed-lock 2>/dev/null; then
  exit 0
fi
npm ci --omit-lockfile-registry-resolved --no-audit --no-fund --loglevel=error
cp package-lock.json node_modules/.bench-installed-lock
