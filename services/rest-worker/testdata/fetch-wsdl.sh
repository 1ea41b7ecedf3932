#!/usr/bin/env bash
# Fetches the public WSDL the SOAP tests use, from a pinned package
# version, into testdata/.cache (git-ignored). Idempotent: a file already
# present with the right digest is kept. The SOAP tests run it when the
# file is missing.
#
#   weather.wsdl  CDYNE's public Weather web service description (SOAP 1.1
#                 and 1.2 bindings, document/literal), shipped in the npm
#                 package strong-soap (example/wsdls/weather.wsdl)
set -euo pipefail

STRONG_SOAP_VERSION=6.0.1
WEATHER_SHA256=ec2ee4d9c2dbf82b44012c4e726fbf21e4c56ec4da881cd783846ac466ac599c

here=$(cd "$(dirname "$0")" && pwd)
cache="$here/.cache"
mkdir -p "$cache"
if [ -s "$cache/weather.wsdl" ] && echo "$WEATHER_SHA256  $cache/weather.wsdl" | sha256sum --check --status; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "strong-soap@$STRONG_SOAP_VERSION" >/dev/null)
tar -xzf "$tmp/strong-soap-$STRONG_SOAP_VERSION.tgz" -C "$tmp" package/example/wsdls/weather.wsdl
echo "$WEATHER_SHA256  $tmp/package/example/wsdls/weather.wsdl" | sha256sum --check --quiet ||
  { echo "fetch-wsdl.sh: weather.wsdl: digest mismatch" >&2; exit 1; }
install -m 0644 "$tmp/package/example/wsdls/weather.wsdl" "$cache/weather.wsdl"
echo "fetched $cache/weather.wsdl"
