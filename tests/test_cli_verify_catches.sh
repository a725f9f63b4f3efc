#!/usr/bin/env bash
# `kvcache verify` exits 1, naming the worst position, on a model whose present hands on
# wrong keys (made by spoil_cache), and 0 on the same model unspoiled; `kvcache bench` likewise
# exits 1 naming the strategy, after writing its report.
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
rc=0
err=$("$kvcache" bench -m "$tmp/bad" --prompt-len 4 --gen 8 --repeats 1 --threads 1 --quiet \
  --json "$tmp/b.json" 2>&1 >/dev/null) || rc=$?
[ "$rc" -eq 1 ] || fail "bench exited $rc on a spoiled cache, expected 1: $err"
grep -q "FAIL: bound's logits differ from the uncached recompute" <<<"$err" || fail "bench did not name bound: $err"
[ -s "$tmp/b.json" ] || fail "bench wrote no JSON before failing"
"$kvcache" bench -m "$tmp/good" --prompt-len 4 --gen 8 --repeats 1 --threads 1 --quiet >/dev/null 2>&1 ||
  fail "bench failed on the good model"
echo "3 passed, 0 failed"
