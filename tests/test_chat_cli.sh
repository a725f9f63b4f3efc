#!/usr/bin/env bash
# `kvcache chat` driven through a pseudo-terminal (python3's pty), on a small model that
# carries Llama 3's tokenizer and chat template: three turns, each turn's counts checked
# (turn 1 prefills the whole conversation; turns 2 and 3 keep at least the whole previous
# conversation from the cache and prefill only the rest), each conversation's length checked
# against `kvcache render --tokens` of the messages /save wrote, and after every prefill the
# logits equal a fresh uncached sequence's within 1e-4 (--check). Then /load goes on from a
# saved conversation, generate --messages and --stop.
# usage: test_chat_cli.sh FETCH_SCRIPT KVCACHE
set -euo pipefail
fetch="$1" kvcache="$2"
fail() { echo "FAIL: $*"; exit 1; }
dir=$("$fetch") || fail "could not fetch the tokenizer files"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$kvcache" build-model -o "$tmp/m" --arch llama --layout genai --layers 1 --heads 2 --head-dim 16 \
  --max-seq 512 --tokenizer "$dir/llama3" >/dev/null

python3 - "$kvcache" "$tmp" <<'PY'
import os, pty, re, select, sys, time
kvcache, tmp = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(kvcache, [kvcache, "chat", "-m", f"{tmp}/m", "--system", "Be brief.", "-n", "6",
                       "--check"])
seen = b""
def until(pattern, timeout=60):
    global seen
    end = time.time() + timeout
    while time.time() < end:
        m = re.search(pattern, seen)
        if m:
            seen = seen[m.end():]
            return m
        r, _, _ = select.select([fd], [], [], 1)
        if r:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    sys.exit(f"FAIL: no {pattern!r} in {seen[-400:]!r}")
turns = []
for line in ["Hello there", "How are you? ¿Qué tal?", "Tell me more."]:
    until(rb"> ")
    os.write(fd, line.encode() + b"\n")
    m = until(rb"\[turn (\d+): conversation (\d+) tokens, (\d+) reused from the cache, prefill (\d+) tokens [0-9.]+ ms; (\d+) generated, .*max \|diff\| ([0-9.e+-]+)\]")
    turns.append(tuple(float(x) if i == 5 else int(x) for i, x in enumerate(m.groups())))
until(rb"> ")
os.write(fd, f"/save {tmp}/conv.state\n".encode())
until(rb"\[saved (\d+) tokens")
until(rb"> ")
os.write(fd, b"/quit\n")
_, status = os.waitpid(pid, 0)
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit(f"FAIL: chat exited {status}")
prev = None
for number, total, reused, prefill, generated, diff in turns:
    if prefill != total - reused:
        sys.exit(f"FAIL: turn {number}: prefill {prefill} != {total} - {reused}")
    if diff > 1e-4:
        sys.exit(f"FAIL: turn {number}: logits differ from a fresh sequence's by {diff}")
    if prev is None and reused != 0:
        sys.exit(f"FAIL: turn 1 reused {reused} tokens of an empty cache")
    if prev is not None:
        p_total, p_generated = prev
        # the cache held the previous conversation and all but the last generated token
        if not (p_total <= reused <= p_total + p_generated - 1):
            sys.exit(f"FAIL: turn {number}: reused {reused}, expected {p_total}.."
                     f"{p_total + p_generated - 1}: not only the new tokens were prefilled")
    prev = (total, generated)
open(f"{tmp}/turns", "w").write("\n".join(" ".join(str(x) for x in t) for t in turns) + "\n")
print("chat through a pty:", "; ".join(f"turn {t[0]}: {t[1]} tokens, {t[2]} reused, "
                                        f"{t[3]} prefilled, max |diff| {t[5]}" for t in turns))
PY

# each turn's conversation length as `render --tokens` counts it, from the saved messages
python3 - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
messages = json.load(open(f"{tmp}/conv.state.json"))
roles = [m["role"] for m in messages]
if roles != ["system", "user", "assistant", "user", "assistant", "user", "assistant"]:
    sys.exit(f"FAIL: saved roles {roles}")
for k, end in enumerate([2, 4, 6]):
    json.dump(messages[:end], open(f"{tmp}/turn{k + 1}.json", "w"))
PY
k=0
while read -r number total _; do
  k=$((k + 1))
  n=$("$kvcache" render -m "$tmp/m" --messages "$tmp/turn$k.json" --tokens | wc -w)
  [ "$n" -eq "$total" ] || fail "turn $number: chat counted $total tokens, render --tokens $n"
done <"$tmp/turns"
echo "chat's counts match render --tokens"

# /load: a new session goes on from the saved one, keeping its cache
printf '/load %s\nAnd then?\n' "$tmp/conv.state" |
  "$kvcache" chat -m "$tmp/m" -n 4 --check >"$tmp/out" 2>"$tmp/err" || fail "chat /load: $(cat "$tmp/err")"
last=$(tail -1 "$tmp/turns" | cut -d' ' -f2) # the saved conversation's last rendering
reused=$(grep -o 'conversation [0-9]* tokens, [0-9]* reused' "$tmp/err" | grep -o '[0-9]* reused' | grep -o '[0-9]*')
[ -n "$reused" ] && [ "$reused" -ge "$last" ] ||
  fail "after /load, the turn reused ${reused:-no} tokens, not the saved conversation's $last: $(cat "$tmp/err")"

# generate --messages: one reply, streamed; --stop cuts it where the text holds the string
printf '[{"role": "user", "content": "Hi"}]' >"$tmp/hi.json"
"$kvcache" generate -m "$tmp/m" --messages "$tmp/hi.json" -n 12 >"$tmp/reply" 2>"$tmp/err" ||
  fail "generate --messages: $(cat "$tmp/err")"
grep -q "^\[turn 1: conversation 11 tokens, 0 reused" "$tmp/err" || fail "generate --messages: $(cat "$tmp/err")"
reply=$(head -c -1 "$tmp/reply")
[ -n "$reply" ] || fail "generate --messages printed nothing"
stop=$(python3 -c 'import sys; t = sys.argv[1]; print(t[len(t) // 2:len(t) // 2 + 2])' "$reply")
"$kvcache" generate -m "$tmp/m" --messages "$tmp/hi.json" -n 12 --stop "$stop" >"$tmp/cut" 2>"$tmp/err" ||
  fail "generate --stop: $(cat "$tmp/err")"
want=$(python3 -c 'import sys; t, s = sys.argv[1], sys.argv[2]; print(t[:t.index(s)], end="")' "$reply" "$stop")
[ "$(head -c -1 "$tmp/cut")" = "$want" ] || fail "--stop '$stop': '$(cat "$tmp/cut")', expected '$want'"
grep -q "stopped at a stop string" "$tmp/err" || fail "--stop: $(cat "$tmp/err")"
rc=0
"$kvcache" generate -m "$tmp/m" --prompt-ids "1 2" --stop x >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "stop goes with --prompt or --messages" "$tmp/err" || fail "--stop with ids: $rc"
rc=0
"$kvcache" chat -m "$tmp/m" --greedy --min-p 0.1 </dev/null >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "so --min-p would do nothing" "$tmp/err" || fail "--greedy --min-p: $rc $(cat "$tmp/err")"
echo "chat /load, generate --messages and --stop: ok"
