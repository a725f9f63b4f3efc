#!/usr/bin/env bash
# `cmake --install` (what `make install` runs), staged with DESTDIR under PREFIX=/usr/local and
# then moved elsewhere, gives a library, header, CLI, pkg-config file and CMake package that a
# separate program can build and run against; where the build's ONNX Runtime is a private copy
# (BUNDLED=1: the pinned fetch, ONNXRUNTIME_ROOT) it is installed beside the library and found
# through $ORIGIN, so the installed tree runs with the build tree and the runtime's own
# directory out of reach (hidden by a private mount where this machine allows one).
# usage: test_install.sh BUILD_DIR KVCACHE ORT_LIB_DIR BUNDLED
set -euo pipefail
build="$1" kvcache="$2" ort_lib="$3" bundled="$4"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
DESTDIR="$tmp/stage" cmake --install "$build" --prefix /usr/local >/dev/null
[ -x "$tmp/stage/usr/local/bin/kvcache" ] || fail "DESTDIR: nothing under $tmp/stage/usr/local"
mv "$tmp/stage/usr/local" "$tmp/prefix" # relocated: nothing may point back to the staging path
for f in bin/kvcache include/kvcache.h lib/pkgconfig/kvcache.pc lib/cmake/kvcache/kvcacheConfig.cmake \
         lib/libkvcache_ops.so; do
  [ -e "$tmp/prefix/$f" ] || fail "$f not installed"
done
if [ "$bundled" = 1 ]; then
  [ -f "$tmp/prefix/lib/libonnxruntime.so.1" ] || fail "ONNX Runtime not installed beside the library"
  for f in lib/libkvcache.so bin/kvcache; do
    runpath=$(readelf -d "$tmp/prefix/$f" | sed -n 's/.*RUNPATH.*\[\(.*\)\]/\1/p')
    case "$runpath" in \$ORIGIN | '$ORIGIN/../lib') ;; *) fail "$f RUNPATH '$runpath' is not \$ORIGIN-relative" ;; esac
  done
  loaded=$("$tmp/prefix/bin/kvcache" --version | sed -n 's/^onnxruntime library //p')
  [ "$(readlink -f "$loaded")" = "$(readlink -f "$tmp/prefix/lib/libonnxruntime.so.1")" ] ||
    fail "the installed CLI loaded ONNX Runtime from $loaded"
fi
# kvcache's operators for other ONNX Runtime programs: RegisterCustomOps and nothing else
exported=$(nm -D --defined-only "$tmp/prefix/lib/libkvcache_ops.so" | awk '{print $3}')
[ "$exported" = RegisterCustomOps ] || fail "libkvcache_ops exports '$exported'"
# libkvcache: exactly the functions the header declares with KVC_API, nothing else
declared=$(grep -v '^#' "$tmp/prefix/include/kvcache.h" | tr '\n' ' ' | grep -oE 'KVC_API [^;(]*\(' |
  grep -oE '[a-z_0-9]+ *\($' | tr -d ' (' | sort)
exported=$(nm -D --defined-only "$tmp/prefix/lib/libkvcache.so" | awk '{print $3}' | sort)
[ "$(wc -l <<<"$declared")" -ge 50 ] || fail "found only $(wc -l <<<"$declared") KVC_API functions"
extra=$(comm -13 <(echo "$declared") <(echo "$exported"))
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
[ -z "$extra" ] || fail "libkvcache exports what the header does not declare: $(echo $extra | head -c 300)"
[ -z "$missing" ] || fail "libkvcache lacks what the header declares: $missing"
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
# a program written against 0.1's names builds (each use warned of, naming its replacement)
# and runs: the renamed functions are kept for one release
cat >"$tmp/app/old.c" <<'C'
#include <kvcache.h>
#include <stdio.h>
int main(int argc, char **argv) {
  kvc_runtime_info info;
  kvc_model *m = NULL;
  kvc_ctx *c = NULL;
  kvc_seq *q = NULL;
  const int32_t t = 1;
  const kvc_batch_item item = {0, &t, 1, NULL};
  kvc_batch_item items[1] = {item};
  if (kvc_runtime_info_get(&info) || argc < 2 || kvc_model_open(argv[1], NULL, &m) ||
      kvc_ctx_new(m, NULL, &c) || kvc_ctx_seq_new(c, &q))
    return 1;
  items[0].seq = q;
  if (kvc_append_batch(items, 1))
    return 1;
  printf("%d\n", kvc_seq_len(q));
  kvc_seq_free(q);
  kvc_ctx_free(c);
  kvc_model_free(m);
  return 0;
}
C
warnings=$(cc "$tmp/app/old.c" $(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --cflags --libs kvcache) \
  -o "$tmp/app/old" 2>&1) || fail "a program using 0.1's names does not build: $warnings"
for name in kvc_runtime_get_info kvc_seq_append_batch kvc_seq_new_in; do
  grep -q "use $name" <<<"$warnings" || fail "no deprecation warning naming $name: $warnings"
done
[ "$("$tmp/app/old" "$tmp/m")" = 1 ] || fail "a program using 0.1's names did not run"
# the same with the build tree and the runtime's directory hidden (an empty tmpfs over each)
hidden=0
if [ "$bundled" = 1 ] && unshare -m true 2>/dev/null; then
  unshare -m bash -c 'set -e
    mount -t tmpfs none "$1"; mount -t tmpfs none "$2"
    "$3/prefix/bin/kvcache" info -m "$3/m" >/dev/null
    "$3/app/build/app" "$3/m" >/dev/null
    "$3/app/pc" "$3/m" >/dev/null' _ "$build" "$ort_lib" "$tmp" ||
    fail "with $build and $ort_lib hidden, the installed programs do not run"
  hidden=1
fi
echo "install: relocated tree ok (build tree and runtime directory hidden: $hidden)"
echo "4 passed, 0 failed"
