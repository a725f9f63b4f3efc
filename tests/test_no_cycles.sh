#!/usr/bin/env bash
# No circle between source files: no object file of the library or the CLI calls into one
# that calls back into it, directly or round a longer loop (nm: which file defines each
# symbol, which files use it; tsort finds a loop), and no header includes itself round a loop.
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
echo "no circles: $(wc -l <"$tmp/calls") calls between $# files, $(wc -l <"$tmp/includes") includes"
