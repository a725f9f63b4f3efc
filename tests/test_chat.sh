#!/usr/bin/env bash
# Chat templates: fetch the pinned tokenizer packages (their tokenizer_config.json carry the
# templates), run the C tests against the reference renderings, and check `kvcache render`:
# the text exactly (no newline added), the ids, and its errors.
# usage: test_chat.sh FETCH_SCRIPT TEST_BINARY KVCACHE DATA_DIR
set -euo pipefail
fetch="$1" test_bin="$2" kvcache="$3" data="$4"
fail() { echo "FAIL: $*"; exit 1; }
dir=$("$fetch") || fail "could not fetch the tokenizer files"
"$test_bin" "$dir" "$data"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]' >"$tmp/m.json"
"$kvcache" render -m "$dir/qwen3" --messages "$tmp/m.json" >"$tmp/out" || fail "render failed"
printf '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n' >"$tmp/want"
cmp "$tmp/out" "$tmp/want" || fail "render: $(od -c "$tmp/out" | tail -3)"
"$kvcache" render -m "$dir/qwen3" --messages - --no-generation-prompt --variables '{"enable_thinking": false}' \
  <"$tmp/m.json" >"$tmp/out" || fail "render from stdin failed"
head -c -22 "$tmp/want" | cmp - "$tmp/out" || fail "--no-generation-prompt: $(od -c "$tmp/out" | tail -3)"
ids=$("$kvcache" render -m "$dir/qwen3" --messages "$tmp/m.json" --tokens) || fail "render --tokens failed"
# the text's lines, each with the newline that follows it ("Ċ", id 198) but the last
want=$(while IFS= read -r line; do
  "$kvcache" tokenize --tokenizer "$dir/qwen3" <<<"$line" | tr '\n' ' '
  printf '198 '
done <"$tmp/want")
[ "$ids " = "$want" ] || fail "render --tokens: '$ids', tokenize: '$want'"
rc=0
printf '[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]' >"$tmp/bad.json"
"$kvcache" render -m "$dir/gemma3" --messages "$tmp/bad.json" >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "raise_exception: Conversation roles must alternate" "$tmp/err" ||
  fail "gemma3, roles out of order: rc $rc: $(cat "$tmp/err")"
rc=0
"$kvcache" render -m "$dir/gpt2" --messages "$tmp/m.json" >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'has no "chat_template"' "$tmp/err" || fail "no template: rc $rc: $(cat "$tmp/err")"
rc=0
"$kvcache" render -m "$dir/qwen3" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "render without --messages exited $rc"
echo "render CLI: ok"
