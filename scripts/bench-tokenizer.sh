#!/usr/bin/env bash
# Tokenizing is linear in the text: 1 MB of one repeated character (a letter, a capital, a
# digit, punctuation, a space, a CJK character) through each of the six pinned tokenizers, and
# 1 MB of "a" through a Split pattern that backtracks (a*a*b|a: refused, promptly), timed with
# `kvcache tokenize`; load time (the same command on empty input) reported apart. A benchmark,
# not a test (timings never go into tests): prints a markdown table, and exits 1 when a run
# takes longer than LIMIT seconds (default 2) or a run that should succeed fails.
# usage: scripts/bench-tokenizer.sh KVCACHE [LIMIT]      (make bench-tokenizer)
set -euo pipefail
kvcache="$1" limit="${2:-2}"
dir=$(bash "$(dirname "$0")/fetch-tokenizers.sh")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# seconds, with millisecond precision, that the command took
seconds() {
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>"$tmp/err" || return 1
  end=$(date +%s%N)
  echo $(((end - start) / 1000000)) | awk '{printf "%.3f", $1 / 1000}'
}
for c in a A 1 '!' ' '; do
  head -c 1048576 /dev/zero | tr '\0' "$c" >"$tmp/in-$c"
done
python3 -c 'import sys; sys.stdout.write("\u4e2d" * 349525)' >"$tmp/in-cjk" # 1 MB less a byte
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "a*a*b|a"}, "behavior": "Isolated"}}' \
  >"$tmp/backtrack.json"
echo "| tokenizer | load (s) | a | A | 1 | ! | space | 中 |"
echo "|---|---|---|---|---|---|---|---|"
over=0
for name in llama3 gemma3 qwen3 llama2 gpt2 mistral_nemo; do
  load=$(seconds "$kvcache" tokenize --tokenizer "$dir/$name" </dev/null)
  row="| $name | $load"
  for input in a A 1 '!' ' ' cjk; do
    if t=$(seconds "$kvcache" tokenize --tokenizer "$dir/$name" <"$tmp/in-$input"); then
      row+=" | $t"
      awk -v t="$t" -v l="$limit" 'BEGIN { exit !(t > l) }' && over=1
    else
      row+=" | failed: $(head -c 120 "$tmp/err")"
      over=1
    fi
  done
  echo "$row |"
done
start=$(date +%s%N)
rc=0
"$kvcache" tokenize --tokenizer "$tmp/backtrack.json" <"$tmp/in-a" >/dev/null 2>"$tmp/err" || rc=$?
end=$(date +%s%N)
t=$(echo $(((end - start) / 1000000)) | awk '{printf "%.3f", $1 / 1000}')
echo
if [ "$rc" -ne 0 ] && grep -q "needs too much work" "$tmp/err"; then
  echo "a*a*b|a over 1 MB of \"a\": refused in $t s: $(head -c 300 "$tmp/err")"
  awk -v t="$t" -v l="$limit" 'BEGIN { exit !(t > l) }' && over=1
else
  echo "a*a*b|a over 1 MB of \"a\": exit $rc after $t s, expected a refusal: $(head -c 200 "$tmp/err")"
  over=1
fi
echo
echo "Seconds for 1 MB (1,048,575 bytes of 中), load included; limit $limit s."
[ "$over" -eq 0 ] || { echo "bench-tokenizer: a run failed or took longer than $limit s"; exit 1; }
