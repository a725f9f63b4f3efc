#!/usr/bin/env bash
# Assemble llama.cpp, the peer `make bench-scale` measures kvcache against, from the pinned npm
# packages of node-llama-cpp, in a cache outside the clone:
#   lib/      its prebuilt Linux x86-64 libraries (@node-llama-cpp/linux-x64): libllama, ggml
#             and one ggml CPU backend per x86 level, which ggml picks at run time
#   include/  llama.h and ggml's headers, from the llama.cpp source node-llama-cpp carries (a
#             git bundle of the release its libraries were built from)
#   gguf-py/  llama.cpp's GGUF writer (Python; needs numpy and PyYAML: scripts/setup.sh)
# Both archives are checked against pinned SHA-256 sums; npm pack runs no install script.
#
# Prints the root of the assembled tree on stdout (everything else goes to stderr).
# Idempotent: a finished tree is reused; a verified archive is never downloaded twice.
set -euo pipefail

VERSION=3.22.1 # node-llama-cpp; its libraries and source are llama.cpp release v0.5.0
MAIN_FILE="node-llama-cpp-$VERSION.tgz"
MAIN_SHA256="${KVCACHE_LLAMA_MAIN_SHA256:-a0d9dd80eacd2ab1cfe71aee57ac8a806487fd70b3d2a38fbec637752d9e5c5f}"
BINS_FILE="node-llama-cpp-linux-x64-$VERSION.tgz"
BINS_SHA256="${KVCACHE_LLAMA_BINS_SHA256:-0d953e1503d5ab4608d8ed5b739132308c81ac05ffeb760d2a7f30e08a9f90e0}"

FETCH_NAME=fetch-llama-cpp
source "$(dirname "$0")/fetch-common.sh"
root="$cache/llama.cpp-node-$VERSION"
trap 'say "error: \"$BASH_COMMAND\" failed (line $LINENO)"' ERR

fetch_reuse "$root"
[ "$(uname -m)" = x86_64 ] || die "the pinned libraries are for x86_64 only"
command -v git >/dev/null || die "git not found (the llama.cpp source is a git bundle)"

fetch_work
fetch_npm "node-llama-cpp@$VERSION" "$MAIN_FILE" "$MAIN_SHA256"
fetch_npm "@node-llama-cpp/linux-x64@$VERSION" "$BINS_FILE" "$BINS_SHA256"

tree="$work/tree"
mkdir -p "$tree/lib" "$tree/include" "$work/main" "$work/bins"
tar -xzf "$downloads/$BINS_FILE" -C "$work/bins" package/bins/linux-x64
cp -a "$work/bins/package/bins/linux-x64/." "$tree/lib/"
tar -xzf "$downloads/$MAIN_FILE" -C "$work/main" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
tag=$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$work/main/package/llama/llama.cpp.info.json")
git clone -q "$work/main/package/llama/gitRelease.bundle" "$work/src" 2>/dev/null ||
  die "cannot read the llama.cpp source bundle of $MAIN_FILE"
cp "$work/src/include/llama.h" "$tree/include/"
cp "$work/src/ggml/include/"*.h "$tree/include/"
cp -R "$work/src/gguf-py" "$tree/gguf-py"
cp "$work/src/LICENSE" "$tree/LICENSE"
[ -f "$tree/lib/libllama.v0.5.0.so" ] || die "libllama.v0.5.0.so not in $BINS_FILE"
printf 'llama.cpp %s: libraries from %s (sha256 %s), headers and gguf-py from %s (sha256 %s)\n' \
  "$tag" "$BINS_FILE" "$BINS_SHA256" "$MAIN_FILE" "$MAIN_SHA256" >"$tree/.complete"
rm -rf "$root"
mv "$tree" "$root"
say "llama.cpp $tag assembled in $root"
printf '%s\n' "$root"
