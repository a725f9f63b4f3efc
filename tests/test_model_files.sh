#!/usr/bin/env bash
# kvcache opens no file outside the model other than the paths the user names (a state file,
# an output directory, an explicit --tokenizer): the model is its directory and the directory
# that holds its real .onnx file (as ONNX Runtime rules for external data, and as a Hugging
# Face cache needs: a snapshot's files are links into blobs/). Each file kvcache reads for a
# model is made a link that leads outside, or an external data location with "..", in turn;
# every command runs under `strace -f -y`, which prints each opened descriptor with the path
# it resolved to, and none may resolve into outside/. A Hugging Face cache layout must load.
# usage: test_model_files.sh KVCACHE
set -euo pipefail
kvcache="$1"
fail() {
  echo "FAIL: $*"
  exit 1
}
command -v strace >/dev/null || fail "strace not found (scripts/setup.sh installs it)"
tmp=$(cd "$(mktemp -d)" && pwd -P)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

printf '{"model": {"type": "BPE", "vocab": {"h": 0, "i": 1, " ": 2}, "merges": []}}' >tok.json
"$kvcache" build-model -o m --arch llama --layout genai --layers 1 --heads 2 --head-dim 16 \
  --vocab 100 --max-seq 64 --tokenizer tok.json >/dev/null
[ -f m/genai_config.json ] && [ -f m/tokenizer.json ] && [ -f m/model.onnx.data ] ||
  fail "the model lacks a file this test needs: $(ls m)"
mkdir outside
for f in config.json genai_config.json tokenizer.json model.onnx.data; do
  cp "m/$f" "outside/$f"
done
cp m/model.onnx.data outside/data
echo "not the model's" >outside/secret.txt

# run LOG ARGS...: kvcache under strace; its exit status, output to LOG.out (LeakSanitizer
# cannot run under ptrace: leaks are the other tests' to find)
run() {
  local log=$1
  shift
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -y -qq -e trace=open,openat,openat2,creat -o "$log" \
    "$kvcache" "$@" >"$log.out" 2>&1
}
# no_outside LOG WHAT: no descriptor opened in LOG resolved into outside/
no_outside() {
  if grep -q "<$tmp/outside/" "$1"; then
    fail "$2 opened $(grep -o "<$tmp/outside/[^>]*>" "$1" | sort -u | tr '\n' ' ')"
  fi
}
# expect LOG WANT NEEDLE WHAT ARGS...: the command exits WANT (0: success, 1: failure) naming
# NEEDLE, and opens nothing outside
cases=0
expect() {
  local log=$1 want=$2 needle=$3 what=$4 rc=0
  shift 4
  run "$log" "$@" || rc=$?
  if [ "$want" -eq 0 ] && [ "$rc" -ne 0 ]; then fail "$what: exit $rc: $(head -c 400 "$log.out")"; fi
  if [ "$want" -ne 0 ] && [ "$rc" -eq 0 ]; then fail "$what: succeeded, expected a refusal"; fi
  grep -qF -- "$needle" "$log.out" || fail "$what: output lacks '$needle': $(head -c 400 "$log.out")"
  no_outside "$log" "$what"
  cases=$((cases + 1))
}

# each file kvcache reads for a model, as a link that leads outside: refused by every command
for f in config.json genai_config.json tokenizer.json model.onnx.data; do
  d="link-${f%%.*}"
  mkdir "$d" && cp m/* "$d/" && rm "$d/$f" && ln -s "../outside/$f" "$d/$f"
  needle="$f leads outside the model directory $d"
  if [ "$f" != tokenizer.json ]; then # the tokenizer is read by --prompt only
    expect "$d.info" 1 "$needle" "info with $f linked outside" info -m "$d"
    expect "$d.verify" 1 "$needle" "verify with $f linked outside" verify -m "$d" --steps 2
    expect "$d.quantize" 1 "$needle" "quantize with $f linked outside" quantize "$d" "$d-q"
  fi
  expect "$d.generate" 1 "$needle" "generate --prompt with $f linked outside" \
    generate -m "$d" --prompt "hi" -n 2
done

# external data named with "..": refused before anything opens it
mkdir up && cp m/* up/ && LC_ALL=C sed -i 's|model\.onnx\.data|../outside/data|g' up/model.onnx
expect up.info 1 "../outside/data leads outside the model directory" "a location with .." info -m up
expect up.quantize 1 'location "../outside/data": expected a file name in the model directory' \
  "quantize of a location with .." quantize up up-q

# other files that lead outside: a model.onnx.* the fingerprint does not hash, a file quantize
# would copy; states saved and loaded beside them
mkdir other && cp m/* other/ && ln -s ../outside/secret.txt other/model.onnx.bak
expect other.save 0 "" "generate --save-state beside model.onnx.bak" \
  generate -m other --prompt-ids "1 2 3" -n 2 --save-state other.state
expect other.load 0 "" "generate --load-state beside model.onnx.bak" \
  generate -m other --load-state other.state -n 2
ln -s ../outside/secret.txt other/notes.txt
expect other.quantize 1 "leads outside the model directory other: refused" \
  "quantize of a directory with a link outside" quantize other other-q

# a Hugging Face cache: the snapshot's files are links into blobs/, beside the real graph
mkdir -p hub/blobs hub/snapshots/v
for f in model.onnx model.onnx.data config.json genai_config.json tokenizer.json; do
  cp "m/$f" "hub/blobs/blob-$f"
  ln -s "../../blobs/blob-$f" "hub/snapshots/v/$f"
done
# the graph names its data "model.onnx.data", which it finds in the snapshot
expect hub.info 0 "hub/snapshots/v/model.onnx" "info on a Hugging Face cache" info -m hub/snapshots/v
expect hub.generate 0 "stopped at" "generate --prompt on a Hugging Face cache" \
  generate -m hub/snapshots/v --prompt "hi" -n 2
grep -q "<$tmp/hub/blobs/blob-tokenizer.json>" hub.generate ||
  fail "generate on the cache did not read its tokenizer through the link"

echo "model files: $cases commands, none opened a file outside the model"
