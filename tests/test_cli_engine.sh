#!/usr/bin/env bash
# The engine's verbs from the command line: info, generate (identical greedy tokens in every
# KV mode), verify, and their errors.
set -euo pipefail
kvcache="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
passed=0
"$kvcache" build-model -o "$tmp/m" >/dev/null
"$kvcache" build-model -o "$tmp/hf" --naming hf --layers 2 >/dev/null
"$kvcache" build-model -o "$tmp/gqa" --attention gqa --layers 2 >/dev/null
"$kvcache" build-model -o "$tmp/own" --attention kvcache --layers 2 >/dev/null

# info, table and JSON
out=$("$kvcache" info -m "$tmp/m")
grep -qE '^naming +seed$' <<<"$out" || fail "info: naming: $out"
grep -qE '^cache per token +8192 bytes \(float32; --kv-type chooses\)$' <<<"$out" || fail "info: cache per token: $out"
json=$("$kvcache" info -m "$tmp/hf" --json)
for kv in '"naming":[[:space:]]*"hf"' '"layers":[[:space:]]*2' '"vocab_size":[[:space:]]*1000' \
  '"attention_mask":[[:space:]]*true' '"max_seq_len":[[:space:]]*512' '"kv_mode":[[:space:]]*"bound"'; do
  grep -qE "$kv" <<<"$json" || fail "info --json lacks $kv: $json"
done
passed=$((passed + 1))

# info on a GQA graph
out=$("$kvcache" info -m "$tmp/gqa")
grep -qE '^attention +gqa' <<<"$out" || fail "info: attention gqa: $out"
grep -qE '^kv mode +shared$' <<<"$out" || fail "info: kv mode shared: $out"
passed=$((passed + 1))

# generate: the same greedy tokens whatever the cache mode, in both namings and with GQA
for m in m hf gqa; do
  ref=$("$kvcache" generate -m "$tmp/$m" --prompt-ids "5 6 7 8" -n 40 --no-cache --threads 1 2>/dev/null)
  [ "$(wc -w <<<"$ref")" -eq 40 ] || fail "generate printed '$ref'"
  modes="naive bound auto"
  [ "$m" = gqa ] && modes="naive bound shared auto"
  for kv in $modes; do
    got=$("$kvcache" generate -m "$tmp/$m" --prompt-ids "5,6,7,8" -n 40 --kv $kv --threads 1 2>/dev/null)
    [ "$got" = "$ref" ] || fail "$m --kv $kv: '$got' != --no-cache '$ref'"
  done
  passed=$((passed + 1))
done
# sampling: same seed, same tokens
a=$("$kvcache" generate -m "$tmp/m" --prompt-ids "1" -n 20 --temperature 0.9 --top-k 50 --top-p 0.9 --seed 4 2>/dev/null)
b=$("$kvcache" generate -m "$tmp/m" --prompt-ids "1" -n 20 --temperature 0.9 --top-k 50 --top-p 0.9 --seed 4 2>/dev/null)
[ "$a" = "$b" ] || fail "sampling with one seed differs: '$a' vs '$b'"
passed=$((passed + 1))
# a repetition penalty so large that a token already in the sequence never wins while one that
# is not has a positive logit (about half of them, in these random models): no id repeats,
# neither a prompt's nor a generated one, alone and with --prompts (where the plain greedy
# tokens do repeat)
plain=$("$kvcache" generate -m "$tmp/gqa" --prompt-ids "5 6 7 8" -n 60 2>/dev/null)
pen=$("$kvcache" generate -m "$tmp/gqa" --prompt-ids "5 6 7 8" -n 60 --repetition-penalty 1e6 2>/dev/null)
[ "$(tr ' ' '\n' <<<"5 6 7 8 $plain" | sort | uniq -d)" != "" ] || fail "plain greedy never repeats: '$plain'"
[ "$(tr ' ' '\n' <<<"5 6 7 8 $pen" | sort | uniq -d)" = "" ] || fail "--repetition-penalty 1e6 repeats: '$pen'"
printf '5 6 7 8\n' >"$tmp/one.txt"
many=$("$kvcache" generate -m "$tmp/gqa" --prompts "$tmp/one.txt" -n 60 --repetition-penalty 1e6 2>/dev/null)
[ "$many" = "$pen" ] || fail "--prompts with the penalty: '$many' != alone '$pen'"
passed=$((passed + 1))

# generate --prompts: many prompts decoding together give each prompt's tokens alone, in file
# order, whatever --parallel (batched on the GQA graph, one after another on the Concat one)
printf '5 6 7 8\n\n1\n900 901 902\n3 3 3 3 3 3 3\n12 13\n' >"$tmp/prompts.txt"
for m in gqa m; do
  want=""
  while read -r line; do
    [ -z "$line" ] && continue
    want+=$("$kvcache" generate -m "$tmp/$m" --prompt-ids "$line" -n 12 --threads 1 2>/dev/null)$'\n'
  done <"$tmp/prompts.txt"
  for p in 1 3 8; do
    got=$("$kvcache" generate -m "$tmp/$m" --prompts "$tmp/prompts.txt" -n 12 --parallel $p --threads 1 2>"$tmp/err")$'\n'
    [ "$got" = "$want" ] || fail "$m --prompts --parallel $p: '$got' != alone '$want'"
  done
  grep -q "5 prompts, 5 in parallel" "$tmp/err" || fail "--prompts summary: $(cat "$tmp/err")"
  passed=$((passed + 1))
done
grep -q "one run per step" "$tmp/err" && fail "the Concat model claims to batch: $(cat "$tmp/err")"
"$kvcache" info -m "$tmp/gqa" | grep -qE '^batches +yes' || fail "info: gqa batches"
"$kvcache" info -m "$tmp/m" | grep -qE '^batches +no' || fail "info: concat does not batch"
printf '1 2\n3 x\n' >"$tmp/bad.txt"
printf '1 2\n3 1000\n' >"$tmp/range.txt"

# verify passes on a correct model
"$kvcache" verify -m "$tmp/m" --prompt-len 8 --steps 40 --threads 1 >"$tmp/verify.txt" || fail "verify failed: $(cat "$tmp/verify.txt")"
grep -qE '^  bound +[0-9.e-]+ at position [0-9]+  ok$' "$tmp/verify.txt" || fail "verify output: $(cat "$tmp/verify.txt")"
"$kvcache" verify -m "$tmp/gqa" --prompt-len 8 --steps 40 --threads 1 >"$tmp/verify.txt" || fail "verify gqa failed: $(cat "$tmp/verify.txt")"
grep -qE '^  shared +[0-9.e-]+ at position [0-9]+  ok$' "$tmp/verify.txt" || fail "verify gqa output: $(cat "$tmp/verify.txt")"
passed=$((passed + 1))

# a float16 and an 8-bit cache: their bytes, and every mode equal to its own recompute on
# every attention kernel this CPU has (a path it lacks fails the session: reported, not tested)
out=$("$kvcache" info -m "$tmp/own" --kv-type f16)
grep -qE '^cache per token +2048 bytes \(float16; --kv-type chooses\)$' <<<"$out" || fail "info f16: $out"
out=$("$kvcache" info -m "$tmp/own" --kv-type q8)
grep -qE '^cache per token +1088 bytes \(8-bit codes and a float scale per head; --kv-type chooses\)$' <<<"$out" || fail "info q8: $out"
for path in portable avx2 avx512; do
  if ! KVCACHE_ATTENTION=$path "$kvcache" info -m "$tmp/own" >/dev/null 2>&1; then
    echo "note: this CPU has no $path attention kernel; not tested here"
    continue
  fi
  for type in f16 q8; do
    KVCACHE_ATTENTION=$path "$kvcache" verify -m "$tmp/own" --kv-type $type --prompt-len 8 \
      --steps 300 --threads 1 >"$tmp/verify.txt" || fail "verify $type ($path) failed: $(cat "$tmp/verify.txt")"
    for kv in naive bound shared; do
      grep -qE "^  $kv +0 at position [0-9]+  ok\$" "$tmp/verify.txt" ||
        fail "verify $type ($path): $kv is not exactly its recompute: $(cat "$tmp/verify.txt")"
    done
  done
done
passed=$((passed + 1))

expect_error() { # CODE NEEDLE ARGS...
  local code="$1" needle="$2" rc=0 err
  shift 2
  err=$("$kvcache" "$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" -eq "$code" ] || fail "'$*' exited $rc, expected $code ($err)"
  grep -qF -- "$needle" <<<"$err" || fail "'$*': message lacks '$needle': $err"
  passed=$((passed + 1))
}
expect_error 2 "token 1000" generate -m "$tmp/m" --prompt-ids "1 1000"
expect_error 2 "--prompt-ids" generate -m "$tmp/m" --prompt-ids "1 x"
expect_error 2 "bad.txt line 2" generate -m "$tmp/gqa" --prompts "$tmp/bad.txt"
expect_error 2 "range.txt line 2: token 1000" generate -m "$tmp/gqa" --prompts "$tmp/range.txt"
expect_error 2 "cannot open --prompts" generate -m "$tmp/gqa" --prompts "$tmp/none.txt"
expect_error 2 "--repetition-penalty" generate -m "$tmp/m" --prompt-ids "1" --repetition-penalty 0
expect_error 2 "--parallel" generate -m "$tmp/gqa" --prompts "$tmp/prompts.txt" --parallel 0
expect_error 2 "give one of --prompt, --prompt-ids, --prompts and --messages" generate -m "$tmp/gqa" --prompts "$tmp/prompts.txt" --prompt-ids "1"
expect_error 2 "--kv" generate -m "$tmp/m" --prompt-ids "1" --kv fast
expect_error 2 "-m DIR is required" info
expect_error 1 "no .onnx file" info -m "$tmp"
expect_error 2 "exceeds max length" verify -m "$tmp/m" --prompt-len 500 --steps 100
expect_error 2 "of the context's 512 positions" generate -m "$tmp/m" --prompt-ids "1" -n 600
expect_error 2 "kv_mode shared" generate -m "$tmp/m" --prompt-ids "1" --kv shared
expect_error 1 "--attention kvcache" generate -m "$tmp/gqa" --prompt-ids "1" --kv-type f16
expect_error 2 "--kv-type expects 'auto', 'f32', 'f16' or 'q8', got 'f8'" info -m "$tmp/own" --kv-type f8
expect_error 1 "--attention kvcache" info -m "$tmp/m" --kv-type q8
if ! "$kvcache" info -m "$tmp/m" --provider cuda >/dev/null 2>&1; then
  expect_error 1 "KVCACHE_FORCE_CPU" info -m "$tmp/m" --provider cuda
fi
KVCACHE_FORCE_CPU=1 "$kvcache" info -m "$tmp/m" --provider cuda | grep -qE '^provider +cpu' ||
  fail "KVCACHE_FORCE_CPU=1 did not force the CPU"
# --save-state then --load-state: the two runs' tokens are one run's (greedy), in any KV mode
first=$("$kvcache" generate -m "$tmp/gqa" --prompt-ids "5 6 7" -n 6 --greedy --save-state "$tmp/s" 2>/dev/null)
rest=$("$kvcache" generate -m "$tmp/gqa" --load-state "$tmp/s" -n 5 --greedy --kv bound 2>/dev/null)
whole=$("$kvcache" generate -m "$tmp/gqa" --prompt-ids "5 6 7" -n 11 --greedy 2>/dev/null)
[ "$first $rest" = "$whole" ] || fail "saved + loaded runs '$first' + '$rest', one run '$whole'"
passed=$((passed + 1))
expect_error 2 "another model" generate -m "$tmp/m" --load-state "$tmp/s" -n 2
head -c 100 "$tmp/s" >"$tmp/cut"
expect_error 1 "truncated" generate -m "$tmp/gqa" --load-state "$tmp/cut" -n 2
# a state into a folder that does not exist names the user's path, not the temporary file
expect_error 1 "$tmp/no/such/s.kvc: No such file" generate -m "$tmp/gqa" --prompt-ids "5 6" -n 2 \
  --save-state "$tmp/no/such/s.kvc"
err=$("$kvcache" generate -m "$tmp/gqa" --prompt-ids "5 6" -n 2 --save-state "$tmp/no/s" 2>&1 || true)
if grep -q '\.tmp\.' <<<"$err"; then fail "--save-state names its temporary file: $err"; fi
# sampling options that contradict or would do nothing are refused, naming both; --top-k or
# --top-p alone sample (at temperature 1) rather than silently staying greedy
expect_error 2 "--greedy and --temperature 0.8" generate -m "$tmp/m" --prompt-ids 1 --greedy --temperature 0.8
expect_error 2 "--temperature 0 picks the most likely token, so --top-k" generate -m "$tmp/m" \
  --prompt-ids 1 --temperature 0 --top-k 5
expect_error 2 "--greedy picks the most likely token, so --top-p" generate -m "$tmp/m" \
  --prompt-ids 1 --top-p 0.9 --greedy
greedy=$("$kvcache" generate -m "$tmp/m" --prompt-ids "1 2 3" -n 24 --greedy 2>/dev/null)
topk=$("$kvcache" generate -m "$tmp/m" --prompt-ids "1 2 3" -n 24 --top-k 1000 --seed 3 2>/dev/null)
[ "$greedy" != "$topk" ] || fail "--top-k without --temperature stayed greedy: $topk"
top1=$("$kvcache" generate -m "$tmp/m" --prompt-ids "1 2 3" -n 24 --top-k 1 --seed 3 2>/dev/null)
[ "$greedy" = "$top1" ] || fail "--top-k 1 is not greedy: $top1 vs $greedy"
passed=$((passed + 1))
# what cannot fit the context is refused before any token is printed, naming the option
out=$("$kvcache" generate -m "$tmp/m" --prompt-ids "1 2 3" -n 600 2>"$tmp/err") && fail "-n 600 succeeded"
[ -z "$out" ] || fail "-n 600 printed tokens before failing: $out"
grep -q -- "-n 600 does not fit: 509 of the context's 512 positions are left after the prompt, so -n can be at most 510" "$tmp/err" ||
  fail "-n 600: $(cat "$tmp/err")"
expect_error 2 "the prompt (--prompt-ids) is 40 tokens: more than the context's 32 positions" \
  generate -m "$tmp/m" --max-seq 32 --prompt-ids "$(seq -s ' ' 1 40)"
# a missing --prompts file says why
expect_error 2 "$tmp/none.txt: No such file" generate -m "$tmp/gqa" --prompts "$tmp/none.txt"
echo "$passed passed, 0 failed"
