#!/usr/bin/env bash
# `kvcache --version` names kvcache's version, the header API version, the runtime version,
# the library file it loaded (which must exist), the execution providers it can create (cuda
# only where a model opens with it) and those built into the runtime.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$("$1" --version)
echo "$out"
fail() { echo "FAIL: $*"; exit 1; }
grep -qE '^kvcache [0-9]+\.[0-9]+\.[0-9]+$' <<<"$out" || fail "no kvcache version line"
grep -qx 'onnxruntime header API version 21' <<<"$out" || fail "no API version 21"
grep -qE '^onnxruntime runtime 1\.[0-9]+\.[0-9]+' <<<"$out" || fail "no runtime version"
lib=$(sed -n 's/^onnxruntime library //p' <<<"$out")
[ -f "$lib" ] || fail "library path '$lib' is not a file"
grep -qE '^execution providers cpu(,cuda)? \(built into the runtime: .*CPUExecutionProvider' <<<"$out" ||
  fail "no usable and built-in providers"
# cuda is listed as usable exactly when a model opens with it
"$1" build-model -o "$tmp/m" --layers 1 --heads 2 --head-dim 16 --vocab 50 --max-seq 16 >/dev/null
if "$1" info -m "$tmp/m" --provider cuda >/dev/null 2>&1; then
  grep -qE '^execution providers cpu,cuda ' <<<"$out" || fail "cuda opens a model but is not listed"
else
  grep -qE '^execution providers cpu \(' <<<"$out" || fail "cuda listed as usable but cannot open a model"
  grep -qE '^cuda +not usable: .*cuda' <<<"$out" || fail "no reason why cuda is not usable"
fi
"$1" no-such-command >/dev/null 2>&1 && fail "unknown command accepted"
echo "1 passed, 0 failed"
