#!/usr/bin/env bash
# Assemble an ONNX Runtime tree in the layout of an official release archive
# (include/, lib/) from two pinned archives, in a cache outside the clone:
#   headers: Debian's libonnxruntime-dev 1.21.0+dfsg-1 (API version 21), from trixie
#   library: libonnxruntime.so.1 (runtime 1.30.0) from the npm package onnxruntime-node
# Both archives are checked against pinned SHA-256 sums. The system's apt configuration is
# never touched: apt-get runs with a private sources list and private state directories.
#
# Prints the root of the assembled tree on stdout (everything else goes to stderr).
# Idempotent: a finished tree is reused; a verified archive is never downloaded twice.
set -euo pipefail

ORT_VERSION=1.30.0
DEB_NAME=libonnxruntime-dev
DEB_VERSION=1.21.0+dfsg-1
DEB_FILE="${DEB_NAME}_${DEB_VERSION}_amd64.deb"
DEB_SHA256="${KVCACHE_ORT_DEB_SHA256:-14f7d959d5deacbcf1504830d4189f91fc67382b399ed9ae9d3aa9c4050ced08}"
NPM_SPEC="onnxruntime-node@${ORT_VERSION}"
NPM_FILE="onnxruntime-node-${ORT_VERSION}.tgz"
NPM_SHA256="${KVCACHE_ORT_NPM_SHA256:-6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75}"
NPM_LIB="package/bin/napi-v6/linux/x64/libonnxruntime.so.1"

FETCH_NAME=fetch-onnxruntime
source "$(dirname "$0")/fetch-common.sh"
root="$cache/onnxruntime-$ORT_VERSION"
trap 'say "error: \"$BASH_COMMAND\" failed (line $LINENO)"' ERR

fetch_reuse "$root"

[ "$(uname -m)" = x86_64 ] || die "only x86_64 is supported by the pinned archives; set ONNXRUNTIME_ROOT to your own ONNX Runtime"

fetch_work

# The Debian mirror is the one this machine's apt already uses (first non-security entry).
mirror_of_system() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    sed -n -E '/-security/d; s/^[[:space:]]*URIs:[[:space:]]*([^[:space:]]+).*/\1/p;
      s/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' "$f"
  done | head -n 1
}

if [ ! -f "$downloads/$DEB_FILE" ]; then
  command -v apt-get >/dev/null || die "apt-get not found; download $DEB_FILE into $downloads by hand"
  mirror=$(mirror_of_system || true) # head closing the pipe early is not a failure
  [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list*"
  say "downloading $DEB_FILE (Debian trixie) from $mirror"
  apt_dir="$work/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$apt_dir/sources.list"
  apt_opts=(-q -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/none"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=root")
  apt-get "${apt_opts[@]}" update >&2 || die "apt-get update of the private trixie list failed"
  (cd "$work" && apt-get "${apt_opts[@]}" download "$DEB_NAME=$DEB_VERSION" >&2) ||
    die "apt-get download $DEB_NAME=$DEB_VERSION failed"
  mv "$work/$DEB_FILE" "$downloads/$DEB_FILE.part"
  mv "$downloads/$DEB_FILE.part" "$downloads/$DEB_FILE"
fi
fetch_check "$downloads/$DEB_FILE" "$DEB_SHA256"

fetch_npm "$NPM_SPEC" "$NPM_FILE" "$NPM_SHA256"

# Assemble in the work directory, then move into place in one rename.
tree="$work/tree"
mkdir -p "$tree/include" "$tree/lib" "$work/deb"
dpkg -x "$downloads/$DEB_FILE" "$work/deb" || die "dpkg -x $downloads/$DEB_FILE failed"
cp -R "$work/deb/usr/include/onnxruntime/." "$tree/include/"
tar -xzf "$downloads/$NPM_FILE" -C "$work" "$NPM_LIB" || die "$NPM_LIB not found in $downloads/$NPM_FILE"
cp "$work/$NPM_LIB" "$tree/lib/libonnxruntime.so.$ORT_VERSION"
ln -s "libonnxruntime.so.$ORT_VERSION" "$tree/lib/libonnxruntime.so.1"
ln -s "libonnxruntime.so.1" "$tree/lib/libonnxruntime.so"
grep -q '#define ORT_API_VERSION 21' "$tree/include/onnxruntime_c_api.h" ||
  die "$DEB_FILE does not declare ORT_API_VERSION 21"
printf 'headers %s (sha256 %s)\nlibrary %s from %s (sha256 %s)\n' \
  "$DEB_FILE" "$DEB_SHA256" "$NPM_LIB" "$NPM_FILE" "$NPM_SHA256" >"$tree/.complete"

rm -rf "$root"
mv "$tree" "$root"
say "ONNX Runtime $ORT_VERSION assembled in $root"
printf '%s\n' "$root"
