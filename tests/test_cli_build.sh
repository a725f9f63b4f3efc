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
echo "$passed passed, 0 failed"
