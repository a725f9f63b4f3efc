#!/usr/bin/env bash
# Every C example in README.md and docs/*.md is a whole program that checks its statuses: each
# is extracted, compiled against the built library (or ONNX Runtime alone, for the operator
# library's example) and run on a small model; the kvcache one also on a model directory that
# does not exist, from another directory, where it must fail with a message, not crash.
# usage: test_docs.sh SOURCE_DIR BUILD_DIR KVCACHE ORT_INCLUDE_DIR ORT_LIB_DIR
set -euo pipefail
src="$1" build="$2" kvcache="$3" ort_inc="$4" ort_lib="$5"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
passed=0
"$kvcache" build-model -o "$tmp/m" --layers 1 --heads 2 --head-dim 16 --vocab 64 --max-seq 32 >/dev/null
"$kvcache" build-model -o "$tmp/k" --attention kvcache --layers 1 --heads 2 --head-dim 16 \
  --vocab 64 --max-seq 32 --weights q4 >/dev/null
n=0
for doc in "$src"/README.md "$src"/docs/*.md; do
  # each fenced C block into its own file
  awk -v out="$tmp/ex" -v doc="$(basename "$doc")" '
    /^```c$/ { inside = 1; count++; file = out "-" doc "-" count ".c"; next }
    /^```$/ && inside { inside = 0; close(file); next }
    inside { print > file }' "$doc"
done
for ex in "$tmp"/ex-*.c; do
  [ -e "$ex" ] || fail "no C examples found"
  name=$(basename "$ex" .c)
  grep -q 'int main(' "$ex" || fail "$name is not a whole program"
  if grep -q '#include <kvcache.h>' "$ex"; then
    cc -std=c11 -Wall -Wextra -Werror -I"$src/include" "$ex" -o "$tmp/$name" -L"$build" -lkvcache \
      -Wl,-rpath,"$build" || fail "$name does not compile"
    out=$("$tmp/$name" "$tmp/m") || fail "$name failed on a model: $out"
    [ "$(wc -w <<<"$out")" -eq 8 ] || fail "$name printed '$out', expected 8 token ids"
    rc=0
    err=$(cd "$tmp" && "$tmp/$name" no/such/model 2>&1 >/dev/null) || rc=$?
    [ "$rc" -eq 1 ] || fail "$name on a missing model exited $rc (a crash?): $err"
    grep -q "no/such/model" <<<"$err" || fail "$name's message does not name the model: $err"
  elif grep -q '#include <onnxruntime_c_api.h>' "$ex"; then
    cc -std=c11 -Wall -Wextra -Werror -I"$ort_inc" "$ex" -o "$tmp/$name" -L"$ort_lib" -lonnxruntime \
      -Wl,-rpath,"$ort_lib" || fail "$name does not compile"
    out=$(ORT_DISABLE_TELEMETRY=1 "$tmp/$name" "$build/libkvcache_ops.so" "$tmp/k/model.onnx") ||
      fail "$name failed: $out"
    grep -q '^session ready: [0-9]* inputs$' <<<"$out" || fail "$name printed '$out'"
  else
    fail "$name includes neither kvcache.h nor onnxruntime_c_api.h: nothing to build it against"
  fi
  n=$((n + 1))
done
[ "$n" -ge 2 ] || fail "only $n C examples found"
passed=$((passed + 1))
echo "$passed passed, 0 failed"
