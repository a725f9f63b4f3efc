#!/usr/bin/env bash
# kvcache serve under load (docs/SERVER.md): for each model, a server with --parallel 16 on
# loopback and scripts/serve-load.mjs against it: 1, 4, 8 and 16 clients streaming
# completions (32-token prompts of random ids, 128 tokens each, greedy, ignore_eos), and the
# prompt-prefix reuse (a shared 200-token prefix against a new one). The models: make run's
# default model (build/model, given a tokenizer of its 1000 ids: "t0" ... "t999") and the 243 M
# reference, float32 and 4-bit (build/scale/llama-243m and llama-243m-q4, which make
# bench-scale builds, given Llama 2's tokenizer: its 32000 ids). Prints a markdown table; the
# JSON goes to build/bench-serve.json.
#   scripts/bench-serve.sh [KVCACHE]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kvcache="${1:-$root/build/kvcache}"
tokenizers=$(bash "$root/scripts/fetch-tokenizers.sh")
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
[ -d "$root/build/model" ] || "$kvcache" build-model -o "$root/build/model" --attention gqa >/dev/null
for m in llama-243m llama-243m-q4; do
  [ -d "$root/build/scale/$m" ] ||
    { echo "bench-serve: build/scale/$m is missing: run make bench-scale first" >&2; exit 1; }
done

# a model directory of links to the model's files, and a tokenizer of its own
with_tokenizer() { # MODEL_DIR NAME TOKENIZER_JSON
  mkdir -p "$work/$2"
  for f in "$1"/*; do ln -s "$(readlink -f "$f")" "$work/$2/$(basename "$f")"; done
  cp "$3" "$work/$2/tokenizer.json"
}
python3 -c '
import json, sys
vocab = {f"t{i}": i for i in range(1000)}
json.dump({"model": {"type": "BPE", "vocab": vocab, "merges": []}}, open(sys.argv[1], "w"))' "$work/t1000.json"
with_tokenizer "$root/build/model" default "$work/t1000.json"
for m in llama-243m llama-243m-q4; do
  with_tokenizer "$root/build/scale/$m" $m "$tokenizers/llama2/tokenizer.json"
done

cat >"$work/rows.py" <<'PY'
import json, sys
name, r = sys.argv[1], json.loads(sys.argv[2])
one = r["levels"][0]["tokens_per_s"]
for l in r["levels"]:
    print("| %s | %d | %.0f | %.2fx | %.0f | %.1f ms | %.1f ms |" % (name, l["clients"], l["tokens_per_s"],
          l["tokens_per_s"] / one, l["per_stream_tokens_per_s"], l["ttft_p50_ms"], l["ttft_p99_ms"]))
PY
cat >"$work/prefix.py" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
p = r["load"]["prefix"]
print("| %s | %d tokens | %.1f ms | %.1f ms | %.1fx |" % (r["model"], p["cached_tokens"], p["ttft_reused_ms"],
      p["ttft_fresh_ms"], p["ttft_fresh_ms"] / p["ttft_reused_ms"]))
PY
echo "| model | clients | tokens/s, all | vs 1 client | tokens/s, each stream | first token p50 | p99 |"
echo "|---|---|---|---|---|---|---|"
results=()
for name in default llama-243m llama-243m-q4; do
  "$kvcache" serve -m "$work/$name" --port 0 --parallel 16 --max-tokens 256 2>"$work/$name.err" &
  server=$!
  for _ in $(seq 600); do grep -q "ready" "$work/$name.err" && break; sleep 0.1; done
  port=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/$name.err" | head -1 | cut -d: -f3)
  vocab=$("$kvcache" info -m "$work/$name" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["vocab_size"])')
  json=$(node "$root/scripts/serve-load.mjs" "$port" "$vocab" --prompt 32 --gen 128)
  results+=("{\"model\": \"$name\", \"load\": $json}")
  python3 "$work/rows.py" "$name" "$json"
  kill "$server"
  wait "$server" || true
  server=
done
echo
echo "| model | prefix cached | first token, prefix reused | first token, new prefix | ratio |"
echo "|---|---|---|---|---|"
for r in "${results[@]}"; do python3 "$work/prefix.py" "$r"; done
printf '[%s]\n' "$(IFS=,; echo "${results[*]}")" >"$root/build/bench-serve.json"
