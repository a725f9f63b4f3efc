#!/usr/bin/env bash
# kvcache serve against hostile clients: connections that send their headers a byte at a
# time (closed at --timeout while others are served), a 10 MB body (413), a body that is not
# JSON, JSON nested 100,000 deep, text that is not UTF-8, values of the wrong type, negative
# and huge max_tokens (400 naming the parameter), unknown fields (ignored), no key or a wrong
# one (401), an unknown route (404), a wrong method (405); after each, a normal request is still
# answered. Then SIGTERM with a stream running: the stream ends with [DONE], a request on an
# open connection gets 503, the server exits 0 (in the sanitizer build: nothing leaked).
# usage: test_serve_hostile.sh FETCH_TOKENIZERS KVCACHE
set -euo pipefail
fetch="$1" kvcache="$2"
fail() { echo "FAIL: $*"; exit 1; }
dir=$("$fetch") || fail "could not fetch the tokenizer files"
tmp=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill -9 "$server" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
"$kvcache" build-model -o "$tmp/m" --arch llama --layout genai --layers 1 --heads 2 --head-dim 16 \
  --max-seq 4096 --tokenizer "$dir/llama3" >/dev/null
"$kvcache" serve -m "$tmp/m" --port 0 --parallel 2 --api-key k3y --timeout 2 2>"$tmp/serve.err" &
server=$!
for _ in $(seq 100); do grep -q "ready" "$tmp/serve.err" && break; sleep 0.1; done
port=$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/serve.err" | head -1 | cut -d: -f3)
[ -n "$port" ] || fail "the server did not start: $(cat "$tmp/serve.err")"

set +e
python3 - "$port" "$server" <<'PY'
import http.client, json, os, signal, socket, sys, threading, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
KEY = {"Authorization": "Bearer k3y", "Content-Type": "application/json"}
def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)
def request(method, path, body=None, headers=KEY, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    if not conn:
        c.close()
    return r.status, data
def normal():
    status, data = request("POST", "/v1/completions",
                           json.dumps({"prompt": "Hello", "max_tokens": 4, "temperature": 0}))
    if status != 200 or json.loads(data)["usage"]["completion_tokens"] < 1:
        fail(f"a normal request after the hostile ones: {status} {data[:200]}")
def expect(what, status, data, want, needle=None):
    if status != want:
        fail(f"{what}: status {status}, expected {want}: {data[:300]}")
    if want >= 400 and b'"error"' not in data:
        fail(f"{what}: no error object: {data[:300]}")
    if needle and needle.encode() not in data:
        fail(f"{what}: the answer lacks {needle!r}: {data[:300]}")
    normal()

# slowloris: 20 connections that send their headers a byte at a time
slow = []
for _ in range(20):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
    slow.append(s)
normal()  # served while they dawdle
time.sleep(3.5)  # past --timeout 2
closed = 0
for s in slow:
    try:
        s.settimeout(1)
        s.sendall(b"X")
        closed += s.recv(100) == b""
    except OSError:
        closed += 1
    s.close()
if closed != 20:
    fail(f"slowloris: {closed} of 20 idle connections closed after --timeout")
normal()

big = json.dumps({"prompt": "a" * (10 << 20)})
expect("a 10 MB body", *request("POST", "/v1/completions", big), 413, "max-body")
expect("not JSON", *request("POST", "/v1/completions", "{\"prompt\": "), 400)
expect("an empty body", *request("POST", "/v1/chat/completions", ""), 400)
expect("JSON 100,000 deep", *request("POST", "/v1/completions", "[" * 100000 + "]" * 100000), 400)
expect("a prompt not UTF-8", *request("POST", "/v1/completions", b'{"prompt": "\xff\xfe"}'), 400,
       "UTF-8")
expect("a message not UTF-8", *request("POST", "/v1/chat/completions",
       b'{"messages": [{"role": "user", "content": "\xc3"}]}'), 400, "UTF-8")
for body, param in [({"prompt": "x", "max_tokens": "ten"}, "max_tokens"),
                    ({"prompt": "x", "max_tokens": -5}, "max_tokens"),
                    ({"prompt": "x", "max_tokens": 10**12}, "max_tokens"),
                    ({"prompt": "x", "temperature": "hot"}, "temperature"),
                    ({"prompt": "x", "stream": "yes"}, "stream"),
                    ({"prompt": {"text": "x"}}, "prompt"),
                    ({"prompt": [-1]}, "prompt"),
                    ({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
                    ({"prompt": "x " * 5000}, "prompt"),
                    ({"prompt": "x", "logprobs": 2}, "logprobs"),
                    ({"prompt": "x", "logit_bias": {"5": 100}}, "logit_bias"),
                    ({"prompt": "x", "presence_penalty": 0.5}, "presence_penalty")]:
    expect(f"{body} (400)", *request("POST", "/v1/completions", json.dumps(body)), 400,
           f'"param":"{param}"')
for body in [{"messages": "hi"}, {"messages": []}, {"messages": [{"content": "no role"}]},
             {"messages": [{"role": "user", "content": "x"}], "tools": "none"}]:
    expect(f"{body} (400)", *request("POST", "/v1/chat/completions", json.dumps(body)), 400)
expect("unknown fields", *request("POST", "/v1/completions", json.dumps(
    {"prompt": "x", "max_tokens": 2, "frobnicate": [1, {"a": None}], "logit_bias": {},
     "user": "u", "presence_penalty": 0, "logprobs": None})), 200)
expect("no key", *request("GET", "/v1/models", headers={}), 401)
expect("a wrong key", *request("GET", "/v1/models", headers={"Authorization": "Bearer k3z"}), 401)
expect("a key not Bearer", *request("GET", "/v1/models", headers={"Authorization": "k3y"}), 401)
expect("an unknown route", *request("GET", "/v2/everything"), 404)
expect("a wrong method", *request("GET", "/v1/completions"), 405)

# SIGTERM with a stream running: it ends with [DONE]; a request on an open connection after
# it gets 503; the server exits 0 (checked by the shell)
kept = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
request("GET", "/health", headers=KEY, conn=kept)
stream = socket.create_connection(("127.0.0.1", port))
body = json.dumps({"prompt": "Once", "max_tokens": 4000, "temperature": 0, "stream": True}).encode()
stream.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
first = stream.recv(4096)
if b"200" not in first.split(b"\r\n")[0]:
    fail(f"the stream before SIGTERM: {first[:200]}")
os.kill(pid, signal.SIGTERM)
for _ in range(100):  # the server says it is stopping while the stream drains
    status, data = request("GET", "/health", headers=KEY, conn=kept)
    if status == 503:
        break
    time.sleep(0.01)
if b"stopping" not in data:
    fail(f"/health after SIGTERM: {status} {data[:200]}")
status, data = request("POST", "/v1/completions", json.dumps({"prompt": "x"}), conn=kept)
if status != 503:
    fail(f"a request after SIGTERM: {status} {data[:200]}")
got = first
stream.settimeout(30)
while b"data: [DONE]" not in got:
    piece = stream.recv(65536)
    if not piece:
        break
    got += piece
if b"data: [DONE]" not in got:
    fail(f"the stream running at SIGTERM did not finish: {got[-300:]}")
print("hostile clients: slowloris, 10 MB, not JSON, 100,000 deep, not UTF-8, wrong types and "
      "ranges, unknown fields, keys, routes, methods, SIGTERM: each its status, the rest served")
PY
[ $? -eq 0 ] || fail "the hostile clients' checks (the server's log: $(tail -5 "$tmp/serve.err"))"
rc=0
wait "$server" || rc=$?
server=
[ "$rc" -eq 0 ] || fail "the server exited $rc after SIGTERM: $(tail -20 "$tmp/serve.err")"
echo "serve hostile: ok"
