#!/usr/bin/env bash
# Installs runyard from a release: checks the ed25519 signature of
# SHA256SUMS with the release public key, then the archive's SHA-256 against
# its line there, and only then puts the runyard binary into a bin directory.
# Anything that does not verify is refused and nothing is installed.
#
#   install.sh --base-url https://example.com/runyard/v1.2.3   # download
#   install.sh --from ./dist                                     # a release directory
#   install.sh --archive runyard_v1.2.3_linux_amd64.tar.gz       # sums beside it
#
# Options: --bin-dir DIR (default /usr/local/bin as root, else ~/.local/bin),
# --public-key FILE (default: the key a release writes into its copy of this
# script; the copy in the source tree has none and needs this flag),
# --os OS --arch ARCH (default: this machine's).
# Needs bash, openssl (1.1.1 or later, for ed25519), tar, gzip, and curl for
# --base-url.
set -euo pipefail

# The release build (internal/release) replaces the marker line below with
# EMBEDDED_PUBLIC_KEY='-----BEGIN PUBLIC KEY-----...'.
EMBEDDED_PUBLIC_KEY=''
# RUNYARD_RELEASE_PUBLIC_KEY

die() { echo "install.sh: $*" >&2; exit 1; }

base_url="" from="" archive="" bin_dir="" public_key="" os="" arch=""
while (($#)); do
  case $1 in
    --base-url) base_url=${2:?--base-url needs a URL}; shift 2 ;;
    --from) from=${2:?--from needs a directory}; shift 2 ;;
    --archive) archive=${2:?--archive needs a file}; shift 2 ;;
    --bin-dir) bin_dir=${2:?--bin-dir needs a directory}; shift 2 ;;
    --public-key) public_key=${2:?--public-key needs a file}; shift 2 ;;
    --os) os=${2:?--os needs a value}; shift 2 ;;
    --arch) arch=${2:?--arch needs a value}; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

if [[ -z $os ]]; then
  case $(uname -s) in
    Linux) os=linux ;; Darwin) os=darwin ;; *) die "unsupported system $(uname -s); pass --os" ;;
  esac
fi
if [[ -z $arch ]]; then
  case $(uname -m) in
    x86_64|amd64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; *) die "unsupported machine $(uname -m); pass --arch" ;;
  esac
fi
if [[ -z $bin_dir ]]; then
  if [[ $(id -u) == 0 ]]; then bin_dir=/usr/local/bin; else bin_dir=$HOME/.local/bin; fi
fi
command -v openssl >/dev/null || die "openssl is needed to check the release signature"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ -n $public_key ]]; then
  cp "$public_key" "$work/key.pem"
elif [[ -n $EMBEDDED_PUBLIC_KEY ]]; then
  printf '%s' "$EMBEDDED_PUBLIC_KEY" >"$work/key.pem"
else
  die "no release public key: pass --public-key FILE (the release's release-public-key.pem, from a source you trust)"
fi

# fetch NAME: the release file NAME into $work.
fetch() {
  if [[ -n $base_url ]]; then
    curl -fsSL --proto '=http,https' -o "$work/$1" "${base_url%/}/$1" || die "download ${base_url%/}/$1 failed"
  else
    [[ -f $from/$1 ]] || die "$from/$1 not found"
    cp "$from/$1" "$work/$1"
  fi
}

if [[ -n $archive && -z $base_url && -z $from ]]; then
  from=$(dirname "$archive")
fi
[[ -n $base_url || -n $from ]] || die "say where the release is: --base-url URL, --from DIR or --archive FILE"

fetch SHA256SUMS
fetch SHA256SUMS.sig
openssl pkeyutl -verify -pubin -inkey "$work/key.pem" -rawin -in "$work/SHA256SUMS" -sigfile "$work/SHA256SUMS.sig" >/dev/null 2>&1 ||
  die "the signature of SHA256SUMS does not match the release public key: refusing to install"

if [[ -n $archive ]]; then
  name=$(basename "$archive")
  cp "$archive" "$work/$name"
else
  name=$(awk -v s="_${os}_${arch}.tar.gz" 'substr($2, length($2) - length(s) + 1) == s { print $2; exit }' "$work/SHA256SUMS")
  [[ -n $name ]] || die "the release has no archive for $os/$arch"
  fetch "$name"
fi
want=$(awk -v n="$name" '$2 == n { print $1; exit }' "$work/SHA256SUMS")
[[ -n $want ]] || die "$name is not listed in SHA256SUMS: refusing to install"
if command -v sha256sum >/dev/null; then
  got=$(sha256sum "$work/$name" | awk '{print $1}')
else
  got=$(shasum -a 256 "$work/$name" | awk '{print $1}')
fi
[[ $got == "$want" ]] || die "$name: SHA-256 $got, but SHA256SUMS says $want: refusing to install"

mkdir -p "$work/x" "$bin_dir"
tar -xzf "$work/$name" -C "$work/x" runyard
# Replace atomically: a runyard running from bin_dir keeps its old file.
install -m 0755 "$work/x/runyard" "$bin_dir/.runyard.new"
mv -f "$bin_dir/.runyard.new" "$bin_dir/runyard"
echo "installed $("$bin_dir/runyard" version --client 2>/dev/null | head -n1 | sed 's/^Client: //') to $bin_dir/runyard"
