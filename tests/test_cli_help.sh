#!/usr/bin/env bash
# Every command's help and parser come from one table: each option `kvcache CMD --help` lists
# is one the command accepts (given without its value it says the value is missing, never that
# the option is unknown), an unknown option is refused with exit 2 and the same help, and each
# command's help lists the options the README's examples and the tests use.
# usage: test_cli_help.sh KVCACHE
set -euo pipefail
kvcache="$1"
fail() {
  echo "FAIL: $*"
  exit 1
}
commands=$("$kvcache" --help | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p')
[ "$(wc -w <<<"$commands")" -ge 10 ] || fail "found only these commands in --help: $commands"
checked=0
for cmd in $commands; do
  help=$("$kvcache" "$cmd" --help) || fail "$cmd --help exits $?"
  options=$(sed -nE 's/^  (-[a-z], )?(--?[a-z][a-z-]*).*/\2/p' <<<"$help")
  [ -n "$options" ] || fail "$cmd --help lists no options"
  for opt in $options; do
    err=$("$kvcache" "$cmd" "$opt" 2>&1 >/dev/null) || true
    if grep -q "unknown option" <<<"$err"; then fail "$cmd --help lists $opt, which $cmd refuses: $err"; fi
    checked=$((checked + 1))
  done
  rc=0
  err=$("$kvcache" "$cmd" --no-such-option 2>&1 >/dev/null) || rc=$?
  [ "$rc" = 2 ] || fail "$cmd --no-such-option exits $rc, expected 2"
  grep -q "kvcache $cmd: unknown option '--no-such-option'" <<<"$err" || fail "$cmd: $err"
  [ "$(sed '1,2d' <<<"$err")" = "$help" ] || fail "$cmd: the help after an unknown option differs from --help"
done
# options every user meets: listed where they belong
for want in "generate --prompt" "generate --temperature" "generate -m" "bench --batch" \
  "generate --messages" "generate --stop" "chat -m" "chat --system" "chat --min-p" "render --messages" \
  "build-model -o" "build-model --attention" "quantize --bits" "tokenize --tokenizer" "info --kv"; do
  set -- $want
  help=$("$kvcache" "$1" --help) # whole: grep -q leaving early would cut the pipe
  grep -qE "^  (-[a-z], )?$2( |,|$)" <<<"$help" || fail "$1 --help does not list $2"
done
echo "help: $checked options of $(wc -w <<<"$commands") commands accepted as listed"
echo "1 passed, 0 failed"
