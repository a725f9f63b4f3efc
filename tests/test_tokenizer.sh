#!/usr/bin/env bash
# The tokenizer on real files: fetch them (pinned, cached), run the C tests, and check the
# CLI: tokenize reproduces the independent implementation's ids, detokenize inverts it.
# usage: test_tokenizer.sh FETCH_SCRIPT TEST_BINARY KVCACHE DATA_DIR
set -euo pipefail
fetch="$1" test_bin="$2" kvcache="$3" data="$4"
fail() { echo "FAIL: $*"; exit 1; }
dir=$("$fetch") || fail "could not fetch the tokenizer files"
"$test_bin" "$dir" "$data"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for name in llama3 gemma3 llama2 gpt2 mistral_nemo; do
  "$kvcache" tokenize --tokenizer "$dir/$name" <"$data/corpus.txt" >"$tmp/$name.ids" ||
    fail "tokenize $name failed"
  cmp -s "$tmp/$name.ids" "$data/$name.ids" || fail "tokenize $name: ids differ from $data/$name.ids"
  "$kvcache" detokenize --tokenizer "$dir/$name" <"$tmp/$name.ids" >"$tmp/$name.txt" ||
    fail "detokenize $name failed"
  cmp -s "$tmp/$name.txt" "$data/corpus.txt" || fail "detokenize $name does not give the corpus back"
done
# bad input: a line that is not UTF-8, a line of ids that are not ids
rc=0
printf 'fine\n\xff\n' | "$kvcache" tokenize --tokenizer "$dir/llama3" >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] || fail "invalid UTF-8 exited $rc, expected 2"
grep -q "line 2: .*not valid UTF-8 at byte 0" "$tmp/err" || fail "invalid UTF-8: $(cat "$tmp/err")"
rc=0
echo "1 two 3" | "$kvcache" detokenize --tokenizer "$dir/llama3" >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] || fail "bad ids exited $rc, expected 2"
rc=0
"$kvcache" tokenize </dev/null >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "no --tokenizer exited $rc, expected 2"
echo "tokenizer CLI: ok"

# generate --prompt: a Llama-style model with a small tokenizer of its own (ids 0-25 "a"-"z",
# 26 " ", the rest "w<id>"): the streamed text equals the text of the ids that
# --prompt-ids gives for the same prompt's ids
"$kvcache" build-model -o "$tmp/m" --arch llama --layout genai --layers 1 --heads 2 \
  --head-dim 16 --vocab 300 --max-seq 64 >/dev/null
{
  printf '{"model": {"type": "BPE", "merges": [], "vocab": {'
  for i in $(seq 0 25); do printf '"%b": %d, ' "\\$(printf '%03o' $((97 + i)))" "$i"; done
  printf '" ": 26'
  for i in $(seq 27 299); do printf ', "w%d": %d' "$i" "$i"; done
  printf '}}}\n'
} >"$tmp/m/tokenizer.json"
text=$("$kvcache" generate -m "$tmp/m" --prompt "hello world" -n 20 --greedy 2>"$tmp/timing") ||
  fail "generate --prompt failed"
prompt_ids=$(echo "hello world" | "$kvcache" tokenize --tokenizer "$tmp/m" --special)
[ "$prompt_ids" = "7 4 11 11 14 26 22 14 17 11 3" ] || fail "prompt ids: $prompt_ids"
ids=$("$kvcache" generate -m "$tmp/m" --prompt-ids "$prompt_ids" -n 20 --greedy 2>/dev/null)
expected=$(echo "$ids" | "$kvcache" detokenize --tokenizer "$tmp/m" --skip-special)
[ -n "$text" ] && [ "$text" = "$expected" ] || fail "streamed '$text', expected '$expected' (ids $ids)"
# text mode reports its timing and why it stopped, as --prompt-ids does
n_ids=$(wc -w <<<"$ids")
if [ "$n_ids" -lt 20 ]; then why="end-of-sequence token ${ids##* }"; else why="-n 20 tokens"; fi
grep -qE "^kv [a-z]+: prefill 11 tokens [0-9.]+ ms; [0-9]+ decode steps, .*; stopped at $why\$" \
  "$tmp/timing" || fail "text mode's report lacks timing or '$why': $(cat "$tmp/timing")"
rc=0
"$kvcache" generate -m "$tmp/m" --prompt "$(printf 'hello %.0s' $(seq 20))" >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] || fail "a 120-token prompt against 64 positions exited $rc, expected 2"
grep -q "the prompt (--prompt) is more than 64 tokens (encoding stopped there): more than the context's 64 positions" "$tmp/err" ||
  fail "over-long --prompt: $(cat "$tmp/err")"
# 20,000 words against 64 positions: refused alike (encoding stops past 64 ids)
rc=0
"$kvcache" generate -m "$tmp/m" --prompt "$(yes hello | head -n 20000 | tr '\n' ' ')" \
  >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "is more than 64 tokens" "$tmp/err" ||
  fail "20,000 words against 64 positions exited $rc: $(cat "$tmp/err")"
rc=0
"$kvcache" generate -m "$tmp/m" --prompt "hello" --tokenizer "$dir/llama3" >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] || fail "a tokenizer larger than the vocabulary exited $rc, expected 2"
grep -q "not its tokenizer" "$tmp/err" || fail "tokenizer mismatch: $(cat "$tmp/err")"
# a model with more ids than its tokenizer (400 against 300): said once, those ids print
# nothing, and the text is that of the others; sampling makes such ids come up
"$kvcache" build-model -o "$tmp/m400" --arch llama --layout genai --layers 1 --heads 2 \
  --head-dim 16 --vocab 400 --max-seq 64 >/dev/null
cp "$tmp/m/tokenizer.json" "$tmp/m400/"
text=$("$kvcache" generate -m "$tmp/m400" --prompt "hello world" -n 40 --temperature 1 --seed 5 \
  2>"$tmp/err") || fail "a model with more ids than its tokenizer: $(cat "$tmp/err")"
grep -q "the model's ids 300..399 have no text" "$tmp/err" || fail "no note of the extra ids: $(cat "$tmp/err")"
ids=$("$kvcache" generate -m "$tmp/m400" --prompt-ids "$prompt_ids" -n 40 --temperature 1 --seed 5 2>/dev/null)
extra=$(tr ' ' '\n' <<<"$ids" | awk '$1 >= 300' | wc -l)
[ "$extra" -gt 0 ] || fail "no id past the tokenizer came up: $ids"
expected=$(tr ' ' '\n' <<<"$ids" | awk '$1 < 300' | tr '\n' ' ' | "$kvcache" detokenize --tokenizer "$tmp/m400" --skip-special)
[ "$text" = "$expected" ] || fail "streamed '$text', expected '$expected' (ids $ids)"
echo "generate --prompt: ok"

# build-model --tokenizer: the files copied, the vocabulary its size, BOS/EOS/pad the tokens
# its tokenizer_config.json names (Qwen 3 names no BOS); --eos-id overrides; a vocabulary
# smaller than the tokenizer's is refused
for case in "llama3|bos 128000, pad -1, eos 128001|128256" "qwen3|bos -1, pad 151643, eos 151645|151669"; do
  IFS='|' read -r name tokens vocab <<<"$case"
  "$kvcache" build-model -o "$tmp/b-$name" --arch llama --layout genai --layers 1 --heads 2 \
    --head-dim 16 --max-seq 32 --tokenizer "$dir/$name" >/dev/null || fail "build-model --tokenizer $name"
  cmp -s "$dir/$name/tokenizer.json" "$tmp/b-$name/tokenizer.json" || fail "$name: tokenizer.json not copied"
  [ -s "$tmp/b-$name/tokenizer_config.json" ] || fail "$name: tokenizer_config.json not copied"
  info=$("$kvcache" info -m "$tmp/b-$name")
  grep -q "tokens         $tokens" <<<"$info" || fail "$name: expected '$tokens': $info"
  grep -qE "^vocabulary +$vocab$" <<<"$info" || fail "$name: vocabulary not $vocab: $info"
done
"$kvcache" generate -m "$tmp/b-llama3" --prompt "hi" -n 3 >/dev/null 2>&1 || fail "the copied tokenizer is not used"
"$kvcache" build-model -o "$tmp/b-eos" --arch llama --layout genai --layers 1 --heads 2 --head-dim 16 \
  --max-seq 32 --tokenizer "$dir/llama3" --eos-id 7 --bos-id -1 >/dev/null
grep -q "tokens         bos -1, pad -1, eos 7" <<<"$("$kvcache" info -m "$tmp/b-eos")" || fail "--eos-id 7 --bos-id -1 ignored"
rc=0
err=$("$kvcache" build-model -o "$tmp/b-small" --layers 1 --heads 2 --head-dim 16 --vocab 100 \
  --tokenizer "$dir/llama3" 2>&1) || rc=$?
[ "$rc" -eq 2 ] && grep -q "vocab_size = 100: the tokenizer .* expected at least 128256" <<<"$err" ||
  fail "a vocabulary below the tokenizer's: rc $rc: $err"
[ ! -e "$tmp/b-small" ] || fail "a refused build left $tmp/b-small"
echo "build-model --tokenizer: ok"
