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
tr -d ' \t\n' <"$tmp/b.json" | grep -qE '"weight_bits":32,"quantized_matmuls":0,"bytes_per_token":\{"16":[0-9]+' ||
  fail "JSON lacks the weights' format and bytes per token: $(head -c 600 "$tmp/b.json")"
tr -d ' \t\n' <"$tmp/b.json" | grep -qE '"state":\{"bytes":[1-9][0-9]*,"save_mb_per_s":[0-9.e+]+,"load_mb_per_s":[0-9.e+]+' ||
  fail "JSON lacks the state file rates"
grep -q '^## State files' "$tmp/b.md" || fail "report lacks the state files section"
head -n 1 "$tmp/b.csv" | grep -qx 'strategy,position,decode_ms_median' || fail "CSV header"
[ "$(grep -c '^bound,' "$tmp/b.csv")" -eq 24 ] || fail "CSV: expected 24 bound rows"
[ "$(grep -c '^naive,' "$tmp/b.csv")" -eq 24 ] || fail "CSV: expected 24 naive rows"
[ "$(grep -c '^shared,' "$tmp/b.csv")" -eq 24 ] || fail "CSV: expected 24 shared rows"
grep -q '^uncached,8,' "$tmp/b.csv" || fail "CSV: uncached not timed at the first position"
[ "$(head -c 8 "$tmp/b.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "plot is not a PNG"
grep -q '^- \*\*Machine:\*\*' "$tmp/b.md" || fail "report lacks the machine line"
grep -q '!\[per-token latency\](b.png)' "$tmp/b.md" || fail "report lacks the plot"
tr -d ' \t\n' <"$tmp/b.json" | grep -q '"kv_type":"f32","attention_kernel":null,"matmul_kernel":null' ||
  fail "JSON: a float GroupQueryAttention model has kernels: $(head -c 600 "$tmp/b.json")"
# the kernel paths the figures ran on, in the JSON and the machine line: the ones forced (a
# model with kvcache's attention, quantised, runs both of kvcache's operators)
"$kvcache" build-model -o "$tmp/k" --layers 2 --heads 2 --head-dim 16 --vocab 100 --max-seq 64 \
  --attention kvcache >/dev/null
"$kvcache" quantize "$tmp/k" "$tmp/k4" --bits 4 >/dev/null
KVCACHE_ATTENTION=portable KVCACHE_MATMUL=portable "$kvcache" bench -m "$tmp/k4" --kv-type f16 \
  --prompt-len 8 --gen 4 --repeats 1 --threads 1 --json "$tmp/k.json" \
  --report "$tmp/k.md" >"$tmp/k.txt" 2>&1 || fail "bench with the kernels forced: $(cat "$tmp/k.txt")"
"$check" "$tmp/k.json"
tr -d ' \t\n' <"$tmp/k.json" | grep -q '"kv_type":"f16","attention_kernel":"portable","matmul_kernel":"portable"' ||
  fail "JSON lacks the forced kernels: $(head -c 800 "$tmp/k.json")"
grep -q '^machine: .*kernels: attention portable, products portable;' "$tmp/k.txt" ||
  fail "table's machine line lacks the kernels: $(head -n 2 "$tmp/k.txt")"
grep -q '^- \*\*Machine:\*\* .*kernels: attention portable, products portable;' "$tmp/k.md" ||
  fail "report's machine line lacks the kernels"
# --kv-types: the cache types side by side in one run, each with its own bytes (2 layers x 2 K/V
# heads x K and V x 16 values: 4 bytes each for f32, 2 for f16, 8-bit codes and a float scale per
# 16 for q8), decode and batch figures, and ratios to the first type (1 for itself)
"$kvcache" bench -m "$tmp/k4" --kv-types f32,f16,q8 --prompt-len 8 --gen 4 --repeats 2 \
  --batch 1,2 --threads 1 --json "$tmp/t.json" >"$tmp/t.txt" 2>"$tmp/t.err" ||
  fail "bench --kv-types: $(cat "$tmp/t.err")"
tj=$(tr -d ' \t\n' <"$tmp/t.json")
num='[0-9.e+-]+'
for want in '"first":"f32"' \
  "\"f32\":{\"cache_bytes_per_token\":512,\"bytes_vs_first\":1,\"decode_ms_p50\":$num,\"decode_floor_ms\":$num,\"decode_over_floor\":$num,\"decode_speedup_vs_first\":1,\"decode_speedup_range\":\\[1,1\\],\"batch\":{\"1\":{\"tokens_per_s\":$num,\"step_ms_p50\":$num,\"floor_ms\":$num,\"step_over_floor\":$num,\"tokens_per_s_vs_first\":1,\"tokens_per_s_vs_first_range\":\\[1,1\\]}" \
  "\"f16\":{\"cache_bytes_per_token\":256,\"bytes_vs_first\":0.5," \
  "\"q8\":{\"cache_bytes_per_token\":160,\"bytes_vs_first\":0.3125," \
  "\"2\":{\"tokens_per_s\":$num,\"step_ms_p50\":$num,\"floor_ms\":$num,\"step_over_floor\":$num,\"tokens_per_s_vs_first\":$num,\"tokens_per_s_vs_first_range\":\\[$num,$num\\]}}}}}\$"; do
  grep -qE "$want" <<<"$tj" || fail "--kv-types JSON lacks $want: $tj"
done
f='[0-9.]+'
grep -qE "^f16 +256 +0\.50x( +$f +$f +${f}x \($f-$f\)){3}\$" "$tmp/t.txt" ||
  fail "--kv-types table: $(cat "$tmp/t.txt")"
for bad in "f32,f32" "f32,auto" "f32,,f16" "f32," "f64" ""; do
  rc=0
  "$kvcache" bench -m "$tmp/k4" --kv-types "$bad" >/dev/null 2>"$tmp/err" || rc=$?
  [ "$rc" -eq 2 ] && grep -q -- "--kv-types expects cache types among f32, f16 and q8, each once" "$tmp/err" ||
    fail "--kv-types '$bad': exit $rc, $(cat "$tmp/err")"
done
for clash in "--kv-type f16" "--strategies shared" "--csv $tmp/t.csv"; do
  rc=0
  out=$("$kvcache" bench -m "$tmp/k4" --kv-types f32,f16 $clash 2>"$tmp/err") || rc=$?
  [ "$rc" -eq 2 ] && [ -z "$out" ] && grep -q -- "drop ${clash%% *}" "$tmp/err" ||
    fail "--kv-types with $clash: exit $rc, $out $(cat "$tmp/err")"
done
rc=0 # a GroupQueryAttention graph keeps float32: its f16 model open fails, naming the type
"$kvcache" bench -m "$tmp/m" --kv-types f32,f16 --prompt-len 8 --gen 4 --repeats 1 >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "f16" "$tmp/err" || fail "--kv-types f16 on a GQA graph: exit $rc, $(cat "$tmp/err")"
# --batch: one entry per size, each with its figures, and the report's section
"$kvcache" bench -m "$tmp/m" --prompt-len 8 --gen 8 --repeats 1 --threads 1 --batch 1,3 \
  --json "$tmp/batch.json" --report "$tmp/batch.md" >/dev/null 2>&1 || fail "bench --batch failed"
tr -d ' \t\n' <"$tmp/batch.json" | grep -qE '"batch":\{"1":\{"tokens_per_s":[0-9.e+]+,"step_ms":\{"p50":[0-9.e+-]+,"p99":[0-9.e+-]+\},"floor_ms":[0-9.e+-]+' ||
  fail "JSON lacks batch.1: $(cat "$tmp/batch.json")"
tr -d ' \t\n' <"$tmp/batch.json" | grep -q '"3":{"tokens_per_s"' || fail "JSON lacks batch.3"
grep -q '^## Many sequences at once' "$tmp/batch.md" || fail "report lacks the batch section"
[ "$(grep -c '^| [13] | ' "$tmp/batch.md")" -eq 2 ] || fail "report: expected rows for batch 1 and 3"
rc=0
"$kvcache" bench -m "$tmp/m" --batch 0,2 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "--batch 0,2 exited $rc, expected 2"
for list in 2,,3 ,2 "2 3" 2,; do
  rc=0
  "$kvcache" bench -m "$tmp/m" --batch "$list" >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || fail "--batch '$list' exited $rc, expected 2"
done
rc=0
"$kvcache" bench -m "$tmp/m" --prompt-len 60 --gen 10 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "prompt + gen beyond max length exited $rc, expected 2"
# output paths are checked before measuring: a bad one fails at once, nothing measured
for bad in "--json /nonexistent/dir/b.json" "--report $tmp" "--csv $tmp/m/config.json/x.csv"; do
  rc=0
  out=$("$kvcache" bench -m "$tmp/m" --prompt-len 8 --gen 8 --repeats 1 $bad 2>"$tmp/err") || rc=$?
  [ "$rc" -eq 2 ] || fail "bench $bad exited $rc, expected 2"
  [ -z "$out" ] || fail "bench $bad measured before failing: $out"
  grep -qF "cannot write ${bad%% *} ${bad#* }" "$tmp/err" || fail "bench $bad: $(cat "$tmp/err")"
done
# --strategies: exactly those measured, in the fixed order; without uncached the logits are
# not checked (null in the JSON, "-" in the table) and the report says why
"$kvcache" bench -m "$tmp/m" --prompt-len 8 --gen 8 --repeats 1 --threads 1 --strategies shared,naive \
  --json "$tmp/s.json" --report "$tmp/s.md" >"$tmp/s.txt" 2>"$tmp/s.err" || fail "bench --strategies failed"
[ "$(grep -oE '^(uncached|naive|bound|shared) ' "$tmp/s.txt" | sort -u | tr -d ' \n')" = naiveshared ] || fail "--strategies table: $(cat "$tmp/s.txt")"
grep -qE '^naive .* - ' "$tmp/s.txt" || fail "--strategies without uncached: max|dl| is not '-'"
tr -d ' \t\n' <"$tmp/s.json" | grep -qE '"strategies":\{"naive":\{.*"max_abs_logit_diff":null.*\},"shared":\{' ||
  fail "--strategies JSON: $(head -c 400 "$tmp/s.json")"
tr -d ' \t\n' <"$tmp/s.json" | grep -q '"uncached"' && fail "--strategies shared,naive measured uncached"
grep -q "logits not checked" "$tmp/s.md" || fail "report does not say the logits were not checked"
grep -q "logits not checked" "$tmp/s.err" || fail "stderr does not say the logits were not checked"
for list in naive,,bound foo naive,naive naive, ""; do
  rc=0
  "$kvcache" bench -m "$tmp/m" --strategies "$list" >/dev/null 2>"$tmp/err" || rc=$?
  [ "$rc" -eq 2 ] || fail "--strategies '$list' exited $rc, expected 2"
  grep -q -- "--strategies expects names among uncached, naive, bound and shared" "$tmp/err" ||
    fail "--strategies '$list': $(cat "$tmp/err")"
done
"$kvcache" build-model -o "$tmp/concat" --layers 1 --heads 2 --head-dim 16 --vocab 100 --max-seq 32 >/dev/null
rc=0
"$kvcache" bench -m "$tmp/concat" --prompt-len 8 --gen 8 --strategies shared >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "shared needs a graph that writes its cache in place" "$tmp/err" ||
  fail "--strategies shared on a concat graph: exit $rc, $(cat "$tmp/err")"
echo "8 passed, 0 failed"
