#!/usr/bin/env bash
# make bench-scale: kvcache at a size users run, beside llama.cpp on identical dimensions. The
# 243 M-parameter Llama shape (`build-model --preset llama-243m`: 16 layers, hidden 1024, 16
# heads, 4 K/V heads, MLP 2752, vocabulary 32000, 2048 positions; random weights), as
#   kvcache   float32, and `quantize --bits 8` and `--bits 4` (defaults otherwise) of it, with
#             kvcache's own attention; float32 and 4-bit with GroupQueryAttention (8 bits there
#             needs float activations, which quantize refuses by default: QUANTIZATION.md)
#   llama.cpp peers/llama_peer.c on a GGUF of the same dimensions (f32, q8_0, q4_0), through
#             node-llama-cpp's prebuilt library (scripts/peer-llama.sh)
# For each thread count and weight type, kvcache's runs and then llama.cpp's, taking turns:
#   decode    median ms per token over 32 steps from positions 0 (kvcache 1), 512 and 1536,
#             each after a prefill of that many tokens (`kvcache bench --strategies shared
#             --prompt-len P --gen 32 --repeats 2`), with kvcache's floor for the step;
#   prefill   tokens/s of the 512- and 1536-token prompts (llama.cpp: one 512-token batch);
#   batch     8 and 16 sequences decoding together, tokens/s of generation at mean position
#             31.5 (`kvcache bench --batch 1,8,16 --max-seq 64`; llama.cpp: 16-token prompts,
#             32 tokens each), each against its floor;
#   memory    resident set after opening the model (`kvcache info --resident`) and load time;
#   cache     the q4 model with float32, float16 and 8-bit caches side by side in one run
#             (`bench --kv-types f32,f16,q8`), 2 threads (or the last count given), the types
#             taking turns three times: decode at 1536 and 8 sequences at mean position 1023.5
#             (`--batch 8 --max-seq 2048`).
# Writes REPORT (markdown) and its plots beside it (PLOTS-decode.png, PLOTS-batch.png).
# usage: bench-scale.sh KVCACHE WORK_DIR REPORT PLOTS [THREADS...]   (threads: 1 2 by default)
set -euo pipefail
kvcache="$1" work="$2" report="$3" plots="$4"
shift 4
threads=("${@:-1 2}")
read -r -a threads <<<"${threads[*]}"
here=$(cd "$(dirname "$0")/.." && pwd)
say() { printf 'bench-scale: %s\n' "$*" >&2; }
mkdir -p "$work/runs"
own="$work/llama-243m" gqa="$work/llama-243m-gqa"
build() { # DIR build-model-options...: written when missing or older than kvcache
  local dir="$1"
  shift
  if [ ! -f "$dir/model.onnx" ] || [ "$kvcache" -nt "$dir/model.onnx" ]; then
    say "writing $dir"
    "$kvcache" build-model -o "$dir" --preset llama-243m "$@" >&2
  fi
}
quantize() { # IN BITS: IN-qBITS with quantize's defaults, when missing or older than IN
  if [ ! -f "$1-q$2/model.onnx" ] || [ "$1/model.onnx" -nt "$1-q$2/model.onnx" ]; then
    rm -rf "$1-q$2"
    "$kvcache" quantize "$1" "$1-q$2" --bits "$2" >&2
  fi
}
build "$own" --attention kvcache
build "$gqa"
quantize "$own" 8
quantize "$own" 4
quantize "$gqa" 4
bash "$here/scripts/peer-llama.sh" "$own" "$work" f32,q8_0,q4_0 --prefill 0 --positions 0 \
  --steps 1 --repeats 1 >/dev/null # writes and quantises the GGUF files once, untimed
kv() { # NAME DIR THREADS: kvcache's runs
  local name="$1" dir="$2" t="$3" p
  for p in 1 512 1536; do
    say "kvcache $name, $t threads, decode after $p tokens"
    "$kvcache" bench -m "$dir" --strategies shared --prompt-len "$p" --gen 32 --repeats 2 \
      --threads "$t" --quiet --json "$work/runs/kvcache-$name-$t-$p.json" 2>/dev/null
  done
  say "kvcache $name, $t threads, batches of 1, 8, 16"
  "$kvcache" bench -m "$dir" --strategies shared --prompt-len 1 --gen 1 --repeats 3 \
    --batch 1,8,16 --max-seq 64 --threads "$t" --quiet \
    --json "$work/runs/kvcache-$name-$t-batch.json" 2>/dev/null
}
for t in "${threads[@]}"; do
  for w in f32 q8 q4; do
    dir="$own" type=f32
    [ "$w" = f32 ] || dir="$own-$w" type="${w}_0"
    kv "$w" "$dir" "$t"
    say "llama.cpp $type, $t threads"
    bash "$here/scripts/peer-llama.sh" "$own" "$work" "$type" --threads "$t" \
      --positions 0,512,1536 --steps 32 --prefill 512 --batch 1,8,16 --gen 32 --repeats 2 \
      2>/dev/null >"$work/runs/llama-$type-$t.jsonl"
  done
  kv gqa-f32 "$gqa" "$t"
  kv gqa-q4 "$gqa-q4" "$t"
done
t="${threads[${#threads[@]} - 1]}"
say "kvcache q4 with f32, f16 and q8 caches in turn, $t threads: decode at 1536, batch 8 at 1023.5"
"$kvcache" bench -m "$own-q4" --kv-types f32,f16,q8 --prompt-len 1536 --gen 32 --repeats 3 \
  --batch 8 --max-seq 2048 --threads "$t" --quiet --json "$work/runs/cache-types.json" 2>/dev/null
python3 "$here/scripts/bench-scale-report.py" "$work" "$own" "$report" "$plots" "${threads[@]}"
