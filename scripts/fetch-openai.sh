#!/usr/bin/env bash
# Fetch the official OpenAI client for JavaScript (npm package `openai`, pinned; it has no
# dependencies of its own) that tests/test_serve.sh drives kvcache serve with. The archive is
# checked against a pinned SHA-256 and unpacked into a cache outside the clone:
#   $KVCACHE_CACHE_DIR (default ~/.cache/kvcache)/openai-5.23.2/node_modules/openai
# Prints the directory to put in NODE_PATH (.../node_modules) on stdout.
set -euo pipefail
VERSION=5.23.2
SHA256=a2aa74ff8be1a80a215af201a3d2228e999464d166c1eaec2c9ca313395fbef1
FETCH_NAME=fetch-openai
source "$(dirname "$0")/fetch-common.sh"
root="$cache/openai-$VERSION"
if [ -f "$root/.complete" ]; then
  printf '%s\n' "$root/node_modules"
  exit 0
fi
fetch_work
file="openai-$VERSION.tgz"
fetch_npm "openai@$VERSION" "$file" "$SHA256"
mkdir -p "$work/node_modules"
tar -xzf "$downloads/$file" -C "$work"
mv "$work/package" "$work/node_modules/openai"
touch "$work/.complete"
rm -rf "$root"
mv "$work" "$root"
trap - EXIT
printf '%s\n' "$root/node_modules"
