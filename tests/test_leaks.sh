#!/usr/bin/env bash
# Under valgrind: no definite or indirect leak and no memory error in kvcache's use of ONNX
# Runtime (see leak_check.c for why valgrind and not only LeakSanitizer).
set -euo pipefail
kvcache="$1" leak_check="$2" supp="$3"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$kvcache" build-model -o "$tmp/c" --layers 1 --heads 2 --head-dim 8 --vocab 50 --max-seq 32 >/dev/null
"$kvcache" build-model -o "$tmp/g" --layers 1 --heads 2 --head-dim 8 --vocab 50 --max-seq 32 \
  --attention gqa --kv-heads 1 >/dev/null
valgrind --quiet --error-exitcode=3 --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --num-callers=40 --suppressions="$supp" \
  "$leak_check" "$tmp/c" "$tmp/g"
echo "1 passed, 0 failed"
