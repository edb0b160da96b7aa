#!/usr/bin/env bash
# Rebuilds the web console's browser assets (internal/console/assets) from
# internal/console/ts with esbuild, after a type check. The built files are
# committed, so the binary serves them without Node; --check fails when the
# committed ones are stale (CI runs it, as scripts/gen.sh --check).
set -euo pipefail
cd "$(dirname "$0")/../internal/console/ts"
if [[ ! -x node_modules/.bin/esbuild ]]; then
  npm ci --no-audit --no-fund >/dev/null
fi
node_modules/.bin/tsc -p tsconfig.json
node build.mjs "$@"
