#!/usr/bin/env bash
# No circle between source files: no object file of the library or the CLI calls into one
# that calls back into it, directly or round a longer loop (nm: which file defines each
# symbol, which files use it; tsort finds a loop), and no header includes itself round a loop.
# And the engine's boundaries: a context's slot state is written only by ctx.c and ctx.h's
# kvc__slot_* functions, and each KV mode's own state (kv_state.h) is included only by the
# modes' files (and the test hooks), the cache buffers' header (cache.h) only through it.
# usage: test_no_cycles.sh SOURCE_DIR OBJECT...
set -euo pipefail
export LC_ALL=C
src="$1"
shift
fail() {
  echo "FAIL: $*"
  exit 1
}
[ "$#" -ge 40 ] || fail "expected the library's and the CLI's objects, got $# files"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for o in "$@"; do
  name=$(basename "$o" .o)
  nm "$o" | awk -v f="$name" 'NF == 3 && $2 ~ /^[TDBRC]$/ { print $3, f }' >>"$tmp/defined"
  nm "$o" | awk -v f="$name" '$1 == "U" { print $2, f }' >>"$tmp/used"
done
sort -u "$tmp/defined" >"$tmp/d"
sort -u "$tmp/used" >"$tmp/u"
# "user definer" for each symbol one file uses and another defines
join "$tmp/u" "$tmp/d" | awk '$2 != $3 { print $2, $3 }' | sort -u >"$tmp/calls"
[ -s "$tmp/calls" ] || fail "found no calls between files: nm read nothing?"
if ! tsort "$tmp/calls" >/dev/null 2>"$tmp/loop"; then
  fail "a call circle between source files: $(tr '\n' ' ' <"$tmp/loop")"
fi
# headers: "includer included" for the project's own headers
find "$src/src" "$src/tools" "$src/include" -name '*.h' | while read -r h; do
  { grep -oE '#include "[^"]+"' "$h" || true; } | sed -E 's/#include "(.*)"/\1/' | while read -r inc; do
    echo "$(basename "$h") $(basename "$inc")"
  done
done | sort -u >"$tmp/includes"
if ! tsort "$tmp/includes" >/dev/null 2>"$tmp/loop"; then
  fail "an include circle between headers: $(tr '\n' ' ' <"$tmp/loop")"
fi
# writes to the slot state: an assignment to an element of lens, has_logits, bank, state or
# owner, or a copy into the token table, outside ctx.c and ctx.h
writes=$(grep -nE -- '->(lens|has_logits|bank|state|owner)\[[^]]*\] *([-+]?=[^=]|\+\+|--)|memcpy\([a-z_]*->tokens' \
  "$src"/src/*.c "$src"/src/*.h "$src"/tools/*.c | grep -vE '^[^:]*/src/ctx\.[ch]:' || true)
[ -z "$writes" ] || fail "the slot state written outside ctx.c and ctx.h: $writes"
grep -q 'c->lens\[slot\] += n' "$src/src/ctx.h" || fail "the check of slot writes found no write in ctx.h"
for f in $(grep -rlE --include='*.[ch]' '#include "(kv_state|cache)\.h"' "$src/src" "$src/tools" "$src/tests"); do
  case "${f#"$src"/}" in
  src/kv_plain.c | src/kv_slotted.c | src/kv_state.h | src/cache.c | tests/hooks.c) ;;
  *) fail "${f#"$src"/} includes a KV mode's own state (kv_state.h or cache.h)" ;;
  esac
done
echo "no circles: $(wc -l <"$tmp/calls") calls between $# files, $(wc -l <"$tmp/includes") includes; slot state written in ctx.c and ctx.h only; mode state private to the modes"
