#!/usr/bin/env bash
# `kvcache --version` names kvcache's version, the header API version, the runtime version,
# the library file it loaded (which must exist) and the CPU execution provider.
set -euo pipefail
out=$("$1" --version)
echo "$out"
fail() { echo "FAIL: $*"; exit 1; }
grep -qE '^kvcache [0-9]+\.[0-9]+\.[0-9]+$' <<<"$out" || fail "no kvcache version line"
grep -qx 'onnxruntime header API version 21' <<<"$out" || fail "no API version 21"
grep -qE '^onnxruntime runtime 1\.[0-9]+\.[0-9]+' <<<"$out" || fail "no runtime version"
lib=$(sed -n 's/^onnxruntime library //p' <<<"$out")
[ -f "$lib" ] || fail "library path '$lib' is not a file"
grep -qE '^execution providers .*CPUExecutionProvider' <<<"$out" || fail "no CPU provider"
"$1" no-such-command >/dev/null 2>&1 && fail "unknown command accepted"
echo "1 passed, 0 failed"
