#!/usr/bin/env bash
# `kvcache verify` exits 1, naming the worst position, on a model whose present hands on
# wrong keys (made by spoil_cache), and 0 on the same model unspoiled.
set -euo pipefail
kvcache="$1" spoil="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$kvcache" build-model -o "$tmp/good" --layers 2 --vocab 200 --max-seq 64 >/dev/null
"$spoil" "$tmp/good" "$tmp/bad" || fail "spoil_cache could not write the model"
"$kvcache" verify -m "$tmp/good" --prompt-len 4 --steps 8 --threads 1 >/dev/null || fail "good model failed verify"
rc=0
out=$("$kvcache" verify -m "$tmp/bad" --prompt-len 4 --steps 8 --threads 1) || rc=$?
echo "$out"
[ "$rc" -eq 1 ] || fail "verify exited $rc on a spoiled cache, expected 1"
grep -qE '^  bound +[0-9.e+-]+ at position [0-9]+  FAIL$' <<<"$out" || fail "verify did not name bound's worst position"
grep -qE '^  naive +[0-9.e+-]+ at position [0-9]+  FAIL$' <<<"$out" || fail "verify did not name naive's worst position"
echo "2 passed, 0 failed"
