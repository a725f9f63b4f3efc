#!/usr/bin/env bash
# `kvcache build-model`: writes the three files and prints the parameter count; every bad
# option exits 2 with a message naming the option, and leaves no files behind.
set -euo pipefail
kvcache="$1"
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
passed=0

out=$("$kvcache" build-model -o "$tmp/m" --layers 2 --vocab 500 --naming hf --seed 9)
for f in model.onnx model.onnx.data config.json; do [ -s "$tmp/m/$f" ] || fail "$f missing"; done
grep -q '^parameters [0-9]' <<<"$out" || fail "no parameter count in: $out"
grep -q '"naming":[[:space:]]*"hf"' "$tmp/m/config.json" || fail "config.json lacks naming hf"
passed=$((passed + 1))

"$kvcache" build-model -o "$tmp/g" --layers 1 --vocab 50 --attention gqa --kv-heads 2 >/dev/null
grep -q '"attention":[[:space:]]*"gqa"' "$tmp/g/config.json" || fail "config.json lacks attention gqa"
grep -q '"num_kv_heads":[[:space:]]*2' "$tmp/g/config.json" || fail "config.json lacks num_kv_heads 2"
passed=$((passed + 1))

# -o creates missing parents (the help promises the directory is created)
"$kvcache" build-model -o "$tmp/a/b/c" --layers 1 --heads 2 --head-dim 16 --vocab 50 >/dev/null
[ -s "$tmp/a/b/c/model.onnx" ] || fail "build-model -o a/b/c wrote no model"
passed=$((passed + 1))

# symbolic dimensions carry the ecosystem's names (Optimum, onnxruntime-genai, transformers.js)
for name in batch_size sequence_length past_sequence_length total_sequence_length; do
  grep -qa "$name" "$tmp/g/model.onnx" || fail "the GQA graph names no dimension $name"
done
if grep -qaw batch "$tmp/g/model.onnx"; then fail "the GQA graph still names a dimension batch"; fi
passed=$((passed + 1))

expect_usage_error() { # OPTION-NAME ARGS...
  local name="$1" rc=0 err
  shift
  err=$("$kvcache" build-model -o "$tmp/bad" "$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" -eq 2 ] || fail "'$*' exited $rc, expected 2"
  grep -qF -- "$name" <<<"$err" || fail "'$*': message does not name $name: $err"
  [ ! -e "$tmp/bad" ] || fail "'$*' left $tmp/bad behind"
  passed=$((passed + 1))
}
expect_usage_error --layers --layers 0
expect_usage_error --heads --heads -3
expect_usage_error --head-dim --head-dim abc
expect_usage_error --vocab --vocab 12x
expect_usage_error --max-seq --max-seq ""
expect_usage_error --seed --seed -1
expect_usage_error --naming --naming gpt
expect_usage_error --layers --layers
expect_usage_error --frobnicate --frobnicate 1
expect_usage_error layers --layers 100000
expect_usage_error --attention --attention flash
expect_usage_error kv_heads --kv-heads 2
expect_usage_error kv_heads --attention gqa --kv-heads 3
expect_usage_error --arch --arch mamba
expect_usage_error --layout --layout onnx
expect_usage_error "arch llama needs attention = GQA" --arch llama --attention concat
expect_usage_error "layout genai needs attention = GQA and naming = HF" --layout genai --naming seed
expect_usage_error "even number" --arch llama --head-dim 15

# --arch llama --layout genai: the genai builder's files, opened in place, its config read
out=$("$kvcache" build-model -o "$tmp/llama" --arch llama --layout genai --layers 2 --heads 4 \
  --kv-heads 2 --head-dim 16 --vocab 100 --max-seq 64) || fail "build-model --arch llama failed"
grep -qF "$tmp/llama/genai_config.json" <<<"$out" || fail "llama: genai_config.json not reported"
[ -f "$tmp/llama/genai_config.json" ] || fail "llama: no genai_config.json"
info=$("$kvcache" info -m "$tmp/llama")
grep -q "^attention .*from attention_mask" <<<"$info" || fail "llama info: attention: $info"
grep -q "^kv mode          shared" <<<"$info" || fail "llama info: kv mode: $info"
grep -q "^inputs           input_ids (int64), attention_mask$" <<<"$info" || fail "llama inputs: $info"
grep -q "^  tokens         bos 1, pad 2, eos 2" <<<"$info" || fail "llama info: tokens: $info"
"$kvcache" verify -m "$tmp/llama" --prompt-len 8 --steps 16 >/dev/null || fail "llama verify failed"
passed=$((passed + 1))

# --weights q4: MatMulNBits in the graph, info says so, every cached mode still exact
"$kvcache" build-model -o "$tmp/q4" --attention gqa --layers 2 --heads 2 --head-dim 32 \
  --vocab 100 --max-seq 64 --weights q4 >/dev/null || fail "build-model --weights q4 failed"
info=$("$kvcache" info -m "$tmp/q4")
grep -q "^weights          4-bit blocks (the fewest bits of any; MatMulNBits) in 8 of 9 matrix products (0.1 M multiply-adds a token)" <<<"$info" ||
  fail "q4 info: $info"
"$kvcache" verify -m "$tmp/q4" --prompt-len 8 --steps 16 >/dev/null || fail "q4 verify failed"
ls -a "$tmp" | grep -q "tmp\." && fail "build-model --weights left temporary files: $(ls -a "$tmp")"
expect_usage_error --weights --weights q2
expect_usage_error "weight_bits = 8 needs attention = KVCACHE" --weights q8 --attention gqa
# eval: a model against itself agrees exactly; against its q4 twin, not quite
"$kvcache" build-model -o "$tmp/f32" --attention gqa --layers 2 --heads 2 --head-dim 32 \
  --vocab 100 --max-seq 64 >/dev/null
out=$("$kvcache" eval -m "$tmp/f32" --against "$tmp/f32" --prompts 2 --prompt-len 4 --steps 20)
grep -qE "^all +40 +0\.000e\+00 +100\.00% +0\.0000$" <<<"$out" || fail "eval against itself: $out"
out=$("$kvcache" eval -m "$tmp/f32" --against "$tmp/q4" --prompts 2 --prompt-len 4 --steps 20 \
  --json "$tmp/eval.json")
kl=$(awk '$1 == "all" { print $3 }' <<<"$out")
awk -v kl="$kl" 'BEGIN { exit !(kl > 0 && kl < 0.5) }' || fail "eval against q4: mean KL $kl: $out"
grep -q '"top1_agreement"' "$tmp/eval.json" || fail "eval JSON: $(cat "$tmp/eval.json")"
# the LM head of a GQA graph stays float by default (float activations: the 8-bit kernel is
# slow), --lm-head-bits quantises it; quantize on the q4 model again: nothing left to do,
# nothing written; --keep-lm-head with --include-lm-head is refused
"$kvcache" quantize "$tmp/f32" "$tmp/default" >"$tmp/out" || fail "quantize of a GQA model failed"
grep -q "1 left float" "$tmp/out" && ! grep -q "LM head at" "$tmp/out" || fail "GQA: the LM head: $(cat "$tmp/out")"
rc=0
"$kvcache" quantize "$tmp/f32" "$tmp/kept" --keep-lm-head >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 0 ] && grep -q "1 left float" "$tmp/out" || fail "quantize --keep-lm-head: $rc $(cat "$tmp/out" "$tmp/err")"
"$kvcache" quantize "$tmp/kept" "$tmp/again" --lm-head-bits 4 >"$tmp/out" 2>"$tmp/err" ||
  fail "quantize of the LM head left: $(cat "$tmp/err")"
grep -q "1 MatMuls as 4-bit blocks of 32, the LM head at 4 bits" "$tmp/out" || fail "the LM head at 4 bits: $(cat "$tmp/out")"
rc=0
"$kvcache" quantize "$tmp/f32" "$tmp/both" --keep-lm-head --include-lm-head >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "contradict" "$tmp/err" || fail "--keep-lm-head --include-lm-head: $rc $(cat "$tmp/err")"
rc=0
"$kvcache" quantize "$tmp/q4" "$tmp/none" >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "no MatMul" "$tmp/err" && [ ! -e "$tmp/none" ] ||
  fail "quantize with nothing to do: rc $rc, $(cat "$tmp/err")"
passed=$((passed + 1))

# unwritable DIR: under a regular file
rc=0
err=$("$kvcache" build-model -o /dev/null/m 2>&1) || rc=$?
[ "$rc" -eq 2 ] || fail "unwritable DIR exited $rc"
grep -qF /dev/null/m <<<"$err" || fail "message does not name the directory: $err"
passed=$((passed + 1))

# missing -o
rc=0
"$kvcache" build-model >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "missing -o exited $rc"
passed=$((passed + 1))
# --preset: a public model's dimensions (llama, its heads, K/V heads, MLP, vocabulary, capped
# context), options beside it overriding its sizes; the config says the weights are random
"$kvcache" build-model -o "$tmp/preset" --preset smollm2-135m --layers 1 --vocab 64 >/dev/null
cfg=$(tr -d ' \t\n' <"$tmp/preset/config.json")
for want in '"num_layers":1' '"num_heads":9' '"num_kv_heads":3' '"head_dim":64' '"hidden_dim":576' \
  '"vocab_size":64' '"max_seq_len":4096' '"ff_dim":1536' '"attention":"gqa"' '"arch":"llama"' \
  '"weights":"random('; do
  grep -qF "$want" <<<"$cfg" || fail "--preset smollm2-135m --layers 1 --vocab 64: no $want in $cfg"
done
"$kvcache" info -m "$tmp/preset" | grep -q '^weights note *random' || fail "info does not say the weights are random"
rc=0
"$kvcache" build-model -o "$tmp/nopreset" --preset gpt5 >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "expects 'llama-243m', 'smollm2-135m'" "$tmp/err" || fail "--preset gpt5: $rc $(cat "$tmp/err")"
passed=$((passed + 1))
echo "$passed passed, 0 failed"
