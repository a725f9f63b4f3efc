#!/usr/bin/env bash
# llama.cpp, the peer, on the dimensions of a kvcache Llama-style model: writes a GGUF of the
# same sizes (peers/gguf_llama.py, float32, random weights), quantises it with llama.cpp's own
# quantiser to q8_0 and q4_0 (its defaults: the output matrix in q6_K for q4_0, as
# llama-quantize writes it), and runs peers/llama_peer.c, built against llama.cpp's prebuilt
# library (scripts/fetch-llama-cpp.sh), on each.
# usage: peer-llama.sh KVCACHE_MODEL_DIR WORK_DIR TYPES [llama_peer options ...]
#   TYPES: some of f32,q8_0,q4_0. Writes WORK_DIR/llama-<type>.jsonl (llama_peer's lines) and
#   keeps the GGUF files there for the next run.
set -euo pipefail
model="$1" work="$2" types="$3"
shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
say() { printf 'peer-llama: %s\n' "$*" >&2; }
root=$("$here/scripts/fetch-llama-cpp.sh")
mkdir -p "$work"
peer="$work/llama_peer"
if [ ! -x "$peer" ] || [ "$here/peers/llama_peer.c" -nt "$peer" ]; then
  cc -std=c11 -O2 -Wall -Wextra -Werror -I"$root/include" "$here/peers/llama_peer.c" -o "$peer" \
    -L"$root/lib" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so \
    -Wl,-rpath,"$root/lib"
fi
# Debian's python3 holds python3-numpy and python3-yaml (scripts/setup.sh); another python3
# first on PATH (pyenv) may not
python=python3
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import numpy, yaml' 2>/dev/null; then python=$p; break; fi
done
f32="$work/model-f32.gguf"
if [ ! -f "$f32" ] || [ "$model/config.json" -nt "$f32" ]; then
  say "writing $f32 with the dimensions of $model"
  PYTHONPATH="$root/gguf-py" "$python" "$here/peers/gguf_llama.py" "$model" "$f32.part"
  mv "$f32.part" "$f32"
fi
export LLAMA_PEER_LIB="$root/lib"
for type in ${types//,/ }; do
  gguf="$work/model-$type.gguf"
  if [ "$type" != f32 ] && { [ ! -f "$gguf" ] || [ "$f32" -nt "$gguf" ]; }; then
    say "quantising to $type with llama.cpp's quantiser"
    "$peer" --quantize "$type" "$f32" "$gguf.part"
    mv "$gguf.part" "$gguf"
  fi
  say "llama.cpp on $gguf ($(du -m "$gguf" | cut -f1) MB): $*"
  "$peer" "$gguf" "$@" | tee "$work/llama-$type.jsonl"
done
