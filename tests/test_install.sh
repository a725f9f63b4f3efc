#!/usr/bin/env bash
# `cmake --install` (what `make install` runs) into a fresh prefix gives a library, header, CLI,
# pkg-config file and CMake package that a separate program can build and run against.
set -euo pipefail
build="$1" kvcache="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
for f in bin/kvcache include/kvcache.h lib/pkgconfig/kvcache.pc lib/cmake/kvcache/kvcacheConfig.cmake \
         lib/libkvcache_ops.so; do
  [ -e "$tmp/prefix/$f" ] || fail "$f not installed"
done
# kvcache's operators for other ONNX Runtime programs: RegisterCustomOps and nothing else
exported=$(nm -D --defined-only "$tmp/prefix/lib/libkvcache_ops.so" | awk '{print $3}')
[ "$exported" = RegisterCustomOps ] || fail "libkvcache_ops exports '$exported'"
"$kvcache" build-model -o "$tmp/m" --layers 1 --vocab 64 --max-seq 32 >/dev/null
mkdir -p "$tmp/app"
cat >"$tmp/app/main.c" <<'C'
#include <kvcache.h>
#include <stdio.h>
int main(int argc, char **argv) {
  kvc_model *m = NULL;
  kvc_seq *q = NULL;
  const int32_t prompt[] = {1, 2, 3};
  if (argc < 2 || kvc_model_open(argv[1], NULL, &m) || kvc_seq_new(m, NULL, &q) ||
      kvc_seq_append(q, prompt, 3)) {
    fprintf(stderr, "%s\n", kvc_last_error());
    return 1;
  }
  printf("%s %d\n", kvc_version(), kvc_seq_len(q));
  kvc_seq_free(q);
  kvc_model_free(m);
  return 0;
}
C
cat >"$tmp/app/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(app C)
find_package(kvcache REQUIRED)
add_executable(app main.c)
target_link_libraries(app PRIVATE kvcache::kvcache)
CM
cmake -S "$tmp/app" -B "$tmp/app/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/app/build" >/dev/null
out=$("$tmp/app/build/app" "$tmp/m") || fail "find_package consumer failed"
[ "$out" = "$("$kvcache" --version | sed -n 's/^kvcache //p') 3" ] || fail "find_package consumer printed '$out'"
cc "$tmp/app/main.c" $(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --cflags --libs kvcache) \
  -o "$tmp/app/pc"
[ "$("$tmp/app/pc" "$tmp/m")" = "$out" ] || fail "pkg-config consumer differs"
"$tmp/prefix/bin/kvcache" info -m "$tmp/m" >/dev/null || fail "installed CLI cannot run"
echo "3 passed, 0 failed"
