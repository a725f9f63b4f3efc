#!/usr/bin/env bash
# examples/tree_search: the best-first search finds a full-depth path, and the same one on the
# GQA graph (candidates evaluated K per run) and the Concat graph (one after another) of the
# same weights: batching changes the speed, never the search.
set -euo pipefail
kvcache="$1" search="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$kvcache" build-model -o "$tmp/gqa" --attention gqa --layers 2 >/dev/null
"$kvcache" build-model -o "$tmp/concat" --layers 2 >/dev/null
a=$("$search" "$tmp/gqa" 4 5 20) || fail "tree_search on gqa: $a"
b=$("$search" "$tmp/concat" 4 5 20) || fail "tree_search on concat: $b"
grep -q "K per run" <<<"$a" || fail "gqa did not batch: $a"
grep -q "one run each" <<<"$b" || fail "concat claims to batch: $b"
pa=$(grep '^best path of depth 5' <<<"$a") || fail "no full-depth path: $a"
pb=$(grep '^best path of depth 5' <<<"$b") || fail "no full-depth path: $b"
[ "$(wc -w <<<"${pa#*:}")" -eq 5 ] || fail "path is not 5 tokens: $pa"
[ "${pa%%(*}" = "${pb%%(*}" ] && [ "${pa#*:}" = "${pb#*:}" ] || fail "gqa '$pa' != concat '$pb'"
rc=0
"$search" "$tmp/gqa" 99 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "K = 99 exited $rc, expected 2"
echo "3 passed, 0 failed"
