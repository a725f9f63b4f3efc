#!/usr/bin/env bash
# Every ```sh block of README.md and docs/*.md runs, as written, in a scratch directory that
# holds what they name: build/kvcache (the CLI under test), build/model (make run's default
# model), prompts.txt, text.txt, ids.txt and tok/tokenizer.json (a small tokenizer); paths
# under /tmp/ go to the scratch directory. A block preceded by a line
# "<!-- not run by tests/test_doc_commands.sh: REASON -->" is skipped, and counted.
# usage: test_doc_commands.sh SOURCE_DIR KVCACHE
set -euo pipefail
src="$1" kvcache="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
w="$tmp/w"
mkdir -p "$w/build" "$w/tok" "$w/t"
ln -s "$kvcache" "$w/build/kvcache"
"$kvcache" build-model -o "$w/build/model" --attention gqa >/dev/null
printf '1 2 3\n4 5 6 7\n8\n' >"$w/prompts.txt"
printf 'Once upon a time\nthere was a cache\n' >"$w/text.txt"
printf '5 6 7\n0 1\n' >"$w/ids.txt"
{ # ids 0-25 "a"-"z", 26-51 "A"-"Z", 52 " ", the rest "w<id>" up to 299
  printf '{"model": {"type": "BPE", "merges": [], "vocab": {'
  for i in $(seq 0 25); do printf '"%b": %d, ' "\\$(printf '%03o' $((97 + i)))" "$i"; done
  for i in $(seq 0 25); do printf '"%b": %d, ' "\\$(printf '%03o' $((65 + i)))" $((26 + i)); done
  printf '" ": 52'
  for i in $(seq 53 299); do printf ', "w%d": %d' "$i" "$i"; done
  printf '}}}\n'
} >"$w/tok/tokenizer.json"
ran=0 skipped=0
for doc in "$src"/README.md "$src"/docs/*.md; do
  rm -f "$tmp"/block-*.sh
  awk -v out="$tmp/block" '
    /^<!-- not run by tests\/test_doc_commands.sh:/ { skip = 1; next }
    /^```(sh|bash)$/ { inside = 1; n++; file = out "-" n (skip ? ".skip" : "") ".sh"; skip = 0; next }
    /^```$/ && inside { inside = 0; close(file); next }
    inside { print > file; next }
    NF { skip = 0 }' "$doc"
  for block in "$tmp"/block-*.sh; do
    [ -e "$block" ] || continue
    if [[ "$block" == *.skip.sh ]]; then
      skipped=$((skipped + 1))
      continue
    fi
    sed -i "s|/tmp/|$w/t/|g" "$block"
    if ! (cd "$w" && timeout 900 bash -e "$block" >"$tmp/out" 2>&1); then
      echo "--- $(basename "$doc"), block:"
      cat "$block"
      echo "--- its output (last 20 lines):"
      tail -20 "$tmp/out"
      fail "a command block of $(basename "$doc") failed"
    fi
    ran=$((ran + 1))
  done
done
[ "$ran" -ge 4 ] || fail "only $ran command blocks ran"
echo "doc commands: $ran blocks run, $skipped not run (each says why)"
echo "1 passed, 0 failed"
