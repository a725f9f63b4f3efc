#!/usr/bin/env bash
# `kvcache bench` on a small model: the four output files exist and hold what they should.
set -euo pipefail
kvcache="$1" check="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$kvcache" build-model -o "$tmp/m" --layers 2 --heads 2 --head-dim 16 --vocab 100 --max-seq 64 \
  --attention gqa >/dev/null
out=$("$kvcache" bench -m "$tmp/m" --prompt-len 8 --gen 24 --repeats 2 --threads 1 \
  --json "$tmp/b.json" --csv "$tmp/b.csv" --plot "$tmp/b.png" --report "$tmp/b.md")
grep -qE '^bound ' <<<"$out" || fail "no table row for bound: $out"
"$check" "$tmp/b.json"
head -n 1 "$tmp/b.csv" | grep -qx 'strategy,position,decode_ms_median' || fail "CSV header"
[ "$(grep -c '^bound,' "$tmp/b.csv")" -eq 24 ] || fail "CSV: expected 24 bound rows"
[ "$(grep -c '^naive,' "$tmp/b.csv")" -eq 24 ] || fail "CSV: expected 24 naive rows"
[ "$(grep -c '^shared,' "$tmp/b.csv")" -eq 24 ] || fail "CSV: expected 24 shared rows"
grep -q '^uncached,8,' "$tmp/b.csv" || fail "CSV: uncached not timed at the first position"
[ "$(head -c 8 "$tmp/b.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "plot is not a PNG"
grep -q '^- \*\*Machine:\*\*' "$tmp/b.md" || fail "report lacks the machine line"
grep -q '!\[per-token latency\](b.png)' "$tmp/b.md" || fail "report lacks the plot"
rc=0
"$kvcache" bench -m "$tmp/m" --prompt-len 60 --gen 10 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "prompt + gen beyond max length exited $rc, expected 2"
echo "3 passed, 0 failed"
