#!/usr/bin/env bash
# Fetches the large public OpenAPI documents that the import tests and
# benchmarks use, from pinned package versions, into testdata/.cache
# (git-ignored). Idempotent: files already present with the right digest
# are kept. Run through `make openapi-specs`.
#
#   stripe-spec3.json  Stripe's API description, shipped in the Go module
#                      github.com/stripe/stripe-mock (embedded/openapi/spec3.json)
#   github-api.json    GitHub's REST API description, shipped in the npm
#                      package @octokit/openapi (generated/api.github.com.json)
set -euo pipefail

STRIPE_MOCK_VERSION=v0.203.0
STRIPE_SHA256=f0e0fc8fffbffda45bf5f3df59846443c1d47a3cfcbfae232eedf4743124ebee
OCTOKIT_OPENAPI_VERSION=23.0.2
GITHUB_SHA256=829b4bebb19a53133289f7b0bc819f4f1118115821db2ca9f25e9ee995a7da2a

here=$(cd "$(dirname "$0")" && pwd)
cache="$here/.cache"
mkdir -p "$cache"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

have() { [ -s "$1" ] && echo "$2  $1" | sha256sum --check --status; }

place() { # place SRC DEST SHA256
  echo "$3  $1" | sha256sum --check --quiet || { echo "fetch.sh: $2: digest mismatch" >&2; exit 1; }
  install -m 0644 "$1" "$2"
  echo "fetched $2"
}

if ! have "$cache/stripe-spec3.json" "$STRIPE_SHA256"; then
  # go mod download verifies the module against go.sum's checksum database.
  dir=$(cd "$tmp" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  place "$dir/embedded/openapi/spec3.json" "$cache/stripe-spec3.json" "$STRIPE_SHA256"
fi

if ! have "$cache/github-api.json" "$GITHUB_SHA256"; then
  (cd "$tmp" && npm pack --silent "@octokit/openapi@$OCTOKIT_OPENAPI_VERSION" >/dev/null)
  tar -xzf "$tmp"/octokit-openapi-"$OCTOKIT_OPENAPI_VERSION".tgz -C "$tmp" package/generated/api.github.com.json
  place "$tmp/package/generated/api.github.com.json" "$cache/github-api.json" "$GITHUB_SHA256"
fi
