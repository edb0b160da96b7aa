#!/usr/bin/env bash
# Builds a signed runyard release into dist/VERSION: archives for linux and
# darwin on amd64 and arm64, SHA256SUMS, its ed25519 signature, the public
# key, release.json and install.sh with the key written in.
#
#   RUNYARD_RELEASE_KEY_FILE=~/keys/release-signing-key.pem scripts/release.sh [VERSION]
#
# VERSION defaults to `git describe --tags --always --dirty`. The key comes
# from RUNYARD_RELEASE_KEY (PEM text) or RUNYARD_RELEASE_KEY_FILE; make one
# with `go run ./cmd/runyard-release keygen --out DIR` and keep it off the
# build machine's disk when you can. TARGETS overrides the platforms.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain 2>/dev/null) ]]; then commit+=-dirty; fi
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
out=${OUT:-dist/$version}
exec go run ./cmd/runyard-release build --version "$version" --commit "$commit" --date "$date" --out "$out" \
  --targets "${TARGETS:-linux/amd64,linux/arm64,darwin/amd64,darwin/arm64}"
