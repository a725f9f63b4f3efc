#!/usr/bin/env bash
# scripts/fetch-onnxruntime.sh refuses archives whose SHA-256 differs from the pinned sum,
# names the file and both sums, removes the bad file and leaves no tree behind.
# Works offline: the archives are planted in a private cache before the script runs.
set -euo pipefail
fetch="$1"
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
mkdir -p "$cache/downloads"
deb="$cache/downloads/libonnxruntime-dev_1.21.0+dfsg-1_amd64.deb"
npm="$cache/downloads/onnxruntime-node-1.30.0.tgz"
fail() { echo "FAIL: $*"; exit 1; }

expect_refusal() { # FILE EXPECTED_SUM [ENV...]
  local file="$1" expected="$2" actual out rc=0
  shift 2
  actual=$(sha256sum "$file" | cut -d' ' -f1)
  out=$(env KVCACHE_CACHE_DIR="$cache" "$@" bash "$fetch" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || fail "fetch accepted a corrupted $file"
  grep -qF "$file" <<<"$out" || fail "message does not name $file: $out"
  grep -qF "$expected" <<<"$out" || fail "message lacks the expected sum $expected: $out"
  grep -qF "$actual" <<<"$out" || fail "message lacks the actual sum $actual: $out"
  [ ! -e "$file" ] || fail "corrupted $file left in the cache"
  [ ! -e "$cache/onnxruntime-1.30.0" ] || fail "a tree was assembled from a corrupted archive"
  [ -z "$(ls -A "$cache" | grep -v '^downloads$')" ] || fail "work files left behind: $(ls -A "$cache")"
  echo "ok: refused $(basename "$file")"
}

# 1. A corrupted Debian archive against the real pinned sum.
echo "not a deb" >"$deb"
expect_refusal "$deb" 14f7d959d5deacbcf1504830d4189f91fc67382b399ed9ae9d3aa9c4050ced08

# 2. The header archive passes (its sum pinned to match), the npm tarball does not.
echo "stand-in deb" >"$deb"
echo "truncated tarball" >"$npm"
expect_refusal "$npm" 6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75 \
  KVCACHE_ORT_DEB_SHA256="$(sha256sum "$deb" | cut -d' ' -f1)"

echo "2 passed, 0 failed"
