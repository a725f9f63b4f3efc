#!/usr/bin/env bash
# Beyond one machine: nginx (Debian's) on loopback in front of two kvcache serve processes, as
# docs/SERVER.md configures it. The official OpenAI client's requests (completions and chat,
# streamed and not) through nginx all succeed and reach both replicas (their /metrics count
# them); one replica killed mid-test, the requests that follow still succeed (nginx tries the
# other), with the text a single server gives.
# usage: test_serve_nginx.sh FETCH_TOKENIZERS FETCH_OPENAI KVCACHE
set -euo pipefail
fetch="$1" fetch_openai="$2" kvcache="$3"
fail() { echo "FAIL: $*"; exit 1; }
command -v nginx >/dev/null || command -v /usr/sbin/nginx >/dev/null ||
  fail "nginx is not installed (scripts/setup.sh installs it)"
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
dir=$("$fetch") || fail "could not fetch the tokenizer files"
node_path=$("$fetch_openai") || fail "could not fetch the OpenAI client"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
"$kvcache" build-model -o "$tmp/m" --arch llama --layout genai --layers 1 --heads 2 --head-dim 16 \
  --max-seq 256 --tokenizer "$dir/llama3" >/dev/null
ports=()
for i in 1 2; do
  "$kvcache" serve -m "$tmp/m" --port 0 --parallel 2 2>"$tmp/serve$i.err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q "ready" "$tmp/serve$i.err" && break; sleep 0.1; done
  ports+=("$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/serve$i.err" | head -1 | cut -d: -f3)")
done
front=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 256; }
http {
  access_log $tmp/nginx/access.log;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  upstream kvcache {
    server 127.0.0.1:${ports[0]} max_fails=1 fail_timeout=30s;
    server 127.0.0.1:${ports[1]} max_fails=1 fail_timeout=30s;
  }
  server {
    listen 127.0.0.1:$front;
    location / {
      proxy_pass http://kvcache;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 300s;
      proxy_next_upstream error timeout http_503 non_idempotent;
      client_max_body_size 2m;
    }
  }
}
EOF
"$nginx_bin" -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" &
pids+=($!)
for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $front))" 2>/dev/null && break; sleep 0.1; done

cat >"$tmp/client.mjs" <<'JS'
import OpenAI from "openai";
import { execSync } from "child_process";
import fs from "fs";
const [front, p1, p2, killPid, nginxLog] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${front}/v1`, apiKey: "none", maxRetries: 0 });
const direct = new OpenAI({ baseURL: `http://127.0.0.1:${p1}/v1`, apiKey: "none", maxRetries: 0 });
function check(what, ok, detail) {
  if (!ok) { console.log(`FAIL: ${what}: ${detail}`); process.exit(1); }
}
const ask = { model: "m", prompt: "Once upon a time", max_tokens: 10, temperature: 0 };
const want = (await direct.completions.create(ask)).choices[0].text;
async function round(n) {
  const jobs = [];
  for (let i = 0; i < n; i++) {
    if (i % 3 === 0)
      jobs.push((async () => {
        let t = "";
        for await (const c of await client.completions.create({ ...ask, stream: true })) t += c.choices[0].text;
        return t;
      })());
    else if (i % 3 === 1)
      jobs.push(client.completions.create(ask).then((r) => r.choices[0].text));
    else
      jobs.push(client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hi" }], max_tokens: 5 })
        .then((r) => (r.choices[0].message.role === "assistant" ? want : "not a chat answer")));
  }
  const got = await Promise.all(jobs);
  got.forEach((t, i) => check(`request ${i} through nginx`, t === want, JSON.stringify(t)));
}
await round(24);
const served = async (port) => {
  const m = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return +(/kvcache_requests_total\{status="200"\} (\d+)/.exec(m)?.[1] ?? 0);
};
const [a, b] = [await served(p1), await served(p2)];
check("both replicas served", a > 1 && b > 1, `${a} and ${b} requests`);
const log = fs.existsSync(nginxLog) ? fs.readFileSync(nginxLog, "utf8") : "";
check("no upstream error while both ran (none hidden by a retry)", !/\[error\]/.test(log), log.slice(0, 300));
execSync(`kill -9 ${killPid}`);
await round(12);
console.log(`nginx before two replicas: ${a - 1} and ${b} requests each; one killed, 12 more all answered: ok`);
JS
ln -s "$node_path" "$tmp/node_modules"
node "$tmp/client.mjs" "$front" "${ports[0]}" "${ports[1]}" "${pids[1]}" "$tmp/nginx/error.log" ||
  fail "through nginx (its log: $(tail -5 "$tmp/nginx/error.log"); the servers: $(cat "$tmp"/serve*.err))"
echo "serve behind nginx: ok"
