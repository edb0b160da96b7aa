#!/usr/bin/env bash
# Regenerates gen/ from proto/ with buf and local protoc plugins. The Buf
# Schema Registry is not used (no remote plugins, no BSR dependencies), so this
# works offline once the Go module proxy has served the three tools below.
# With --check it fails when the committed generated code is stale.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_CONNECT_GO_VERSION=v1.21.1

bin="$PWD/.bin"
mkdir -p "$bin"
install_tool() { # name module version
  local stamp="$bin/.$1-$3"
  if [[ ! -x "$bin/$1" || ! -e "$stamp" ]]; then
    GOBIN="$bin" go install "$2@$3"
    rm -f "$bin/.$1-"*
    touch "$stamp"
  fi
}
install_tool buf github.com/bufbuild/buf/cmd/buf "$BUF_VERSION"
install_tool protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
install_tool protoc-gen-connect-go connectrpc.com/connect/cmd/protoc-gen-connect-go "$PROTOC_GEN_CONNECT_GO_VERSION"
export PATH="$bin:$PATH"

if [[ "${1:-}" == "--check" ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd proto && buf lint && buf generate --output "$tmp/out")
  # buf.gen.yaml writes to ../gen relative to the output base.
  if ! diff -r "$tmp/gen" gen >/dev/null 2>&1; then
    diff -r "$tmp/gen" gen || true
    echo "generated code in gen/ is stale: run scripts/gen.sh and commit the result" >&2
    exit 1
  fi
  echo "generated code is up to date"
  exit 0
fi

rm -rf gen
(cd proto && buf lint && buf generate)
echo "generated gen/ from proto/"
