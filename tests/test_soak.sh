#!/usr/bin/env bash
# kvcache soak, short: 2000 random steps (appends, rewinds, forks, state round trips) on a
# small GQA model, checked against fresh sequences every 250; the resident set within the
# given limit (KB; 0 = not judged). usage: test_soak.sh KVCACHE RSS_LIMIT_KB
set -euo pipefail
kvcache="$1" limit="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$kvcache" build-model -o "$tmp/m" --attention gqa --layers 2 --heads 2 --head-dim 32 --vocab 200 \
  --max-seq 128 >/dev/null
out=$("$kvcache" soak -m "$tmp/m" --steps 2000 --check-every 250 --rss-limit "$limit" --threads 1) ||
  fail "soak failed: $out"
grep -qE "^soak: 2000 steps: .* 8 checks against a fresh sequence, max \|dlogit\| " <<<"$out" ||
  fail "soak output: $out"
grep -qE " [1-9][0-9]* rewinds, [1-9][0-9]* forks, [1-9][0-9]* state round trips" <<<"$out" ||
  fail "soak did not rewind, fork and round-trip: $out"
echo "soak: ok"
