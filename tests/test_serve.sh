#!/usr/bin/env bash
# kvcache serve against the official OpenAI client (npm `openai`, pinned: scripts/fetch-openai.sh)
# on loopback: completions and chat completions, streamed and not; greedy requests give the
# text and token counts of `kvcache generate` on the same prompt; stop strings, the models
# list, the API key (401 without it), bad parameters (400 naming them), /health, /metrics,
# /tokenize; SIGTERM exits 0.
# usage: test_serve.sh FETCH_TOKENIZERS FETCH_OPENAI KVCACHE
set -euo pipefail
fetch="$1" fetch_openai="$2" kvcache="$3"
fail() { echo "FAIL: $*"; exit 1; }
dir=$("$fetch") || fail "could not fetch the tokenizer files"
node_path=$("$fetch_openai") || fail "could not fetch the OpenAI client"
tmp=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
"$kvcache" build-model -o "$tmp/m" --arch llama --layout genai --layers 1 --heads 2 --head-dim 16 \
  --max-seq 1024 --tokenizer "$dir/llama3" >/dev/null

"$kvcache" serve -m "$tmp/m" --port 0 --parallel 4 --api-key secret-key 2>"$tmp/serve.err" &
server=$!
for _ in $(seq 100); do grep -q "ready" "$tmp/serve.err" && break; sleep 0.1; done
port=$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/serve.err" | head -1 | cut -d: -f3)
[ -n "$port" ] && grep -q ready "$tmp/serve.err" || fail "the server did not start: $(cat "$tmp/serve.err")"

# what kvcache generate gives greedily for the same prompts
prompt="Once upon a time"
"$kvcache" generate -m "$tmp/m" --prompt "$prompt" -n 12 --greedy >"$tmp/gen.txt" 2>/dev/null
ids=$(echo "$prompt" | "$kvcache" tokenize --tokenizer "$tmp/m" --special)
gen_ids=$("$kvcache" generate -m "$tmp/m" --prompt-ids "$ids" -n 12 --greedy 2>/dev/null)
printf '[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]' >"$tmp/chat.json"
"$kvcache" generate -m "$tmp/m" --messages "$tmp/chat.json" -n 10 --greedy >"$tmp/chat.txt" 2>"$tmp/chat.err"
chat_prompt=$("$kvcache" render -m "$tmp/m" --messages "$tmp/chat.json" --tokens | wc -w)
chat_generated=$(grep -o '[0-9]* generated' "$tmp/chat.err" | cut -d' ' -f1)

cat >"$tmp/client.mjs" <<'JS'
import OpenAI from "openai";
import fs from "fs";
const [port, tmp, prompt, nPrompt, nGenerated, chatPrompt, chatGenerated] = process.argv.slice(2);
const want = fs.readFileSync(`${tmp}/gen.txt`, "utf8").replace(/\n$/, "");
const wantChat = fs.readFileSync(`${tmp}/chat.txt`, "utf8").replace(/\n$/, "");
const messages = JSON.parse(fs.readFileSync(`${tmp}/chat.json`, "utf8"));
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "secret-key", maxRetries: 0 });
function check(what, ok, detail) {
  if (!ok) { console.log(`FAIL: ${what}: ${detail}`); process.exit(1); }
}
const models = await client.models.list();
check("models", models.data.length === 1 && models.data[0].id === "m", JSON.stringify(models.data));
// completions, not streamed and streamed
const c = await client.completions.create({ model: "m", prompt, max_tokens: 12, temperature: 0 });
check("completion text", c.choices[0].text === want, `${JSON.stringify(c.choices[0].text)} vs ${JSON.stringify(want)}`);
check("completion usage", c.usage.prompt_tokens === +nPrompt && c.usage.completion_tokens === +nGenerated,
  `${JSON.stringify(c.usage)} vs ${nPrompt} + ${nGenerated}`);
check("completion finish", ["stop", "length"].includes(c.choices[0].finish_reason), c.choices[0].finish_reason);
let streamed = "", finish = null;
for await (const chunk of await client.completions.create({ model: "m", prompt, max_tokens: 12, temperature: 0, stream: true })) {
  streamed += chunk.choices[0].text;
  finish = chunk.choices[0].finish_reason ?? finish;
}
check("streamed completion", streamed === want && finish === c.choices[0].finish_reason, `${JSON.stringify(streamed)} ${finish}`);
// chat completions, not streamed and streamed
const r = await client.chat.completions.create({ model: "m", messages, max_tokens: 10, temperature: 0 });
check("chat text", r.choices[0].message.content === wantChat && r.choices[0].message.role === "assistant",
  `${JSON.stringify(r.choices[0].message)} vs ${JSON.stringify(wantChat)}`);
check("chat usage", r.usage.prompt_tokens === +chatPrompt && r.usage.completion_tokens === +chatGenerated,
  `${JSON.stringify(r.usage)} vs ${chatPrompt} + ${chatGenerated}`);
let content = "", role = null, usage = null;
for await (const chunk of await client.chat.completions.create({ model: "m", messages, max_tokens: 10, temperature: 0, stream: true, stream_options: { include_usage: true } })) {
  if (chunk.choices.length) {
    content += chunk.choices[0].delta.content ?? "";
    role = chunk.choices[0].delta.role ?? role;
  }
  usage = chunk.usage ?? usage;
}
check("streamed chat", content === wantChat && role === "assistant", JSON.stringify(content));
check("streamed chat usage", usage && usage.completion_tokens === +chatGenerated, JSON.stringify(usage));
// a stop string: the text before it, finish_reason stop
if (want.length > 4) {
  const stop = want.slice(Math.floor(want.length / 2), Math.floor(want.length / 2) + 2);
  const s = await client.completions.create({ model: "m", prompt, max_tokens: 12, temperature: 0, stop: [stop] });
  check("stop", s.choices[0].text === want.slice(0, want.indexOf(stop)) && s.choices[0].finish_reason === "stop",
    `${JSON.stringify(s.choices[0].text)} for stop ${JSON.stringify(stop)}`);
}
// sampling with a seed: the same twice
const a = await client.completions.create({ model: "m", prompt, max_tokens: 8, temperature: 0.9, seed: 7, top_p: 0.9 });
const b = await client.completions.create({ model: "m", prompt, max_tokens: 8, temperature: 0.9, seed: 7, top_p: 0.9 });
check("seeded sampling", a.choices[0].text === b.choices[0].text, `${a.choices[0].text} vs ${b.choices[0].text}`);
// bad parameters: 400 naming them
for (const [body, param] of [[{ temperature: 5 }, "temperature"], [{ max_tokens: -1 }, "max_tokens"],
                             [{ n: 2 }, "n"], [{ stop: 3 }, "stop"], [{ prompt: [1e9] }, "prompt"]]) {
  try {
    await client.completions.create({ model: "m", prompt, ...body });
    check(`bad ${param}`, false, "accepted");
  } catch (e) {
    check(`bad ${param}`, e.status === 400 && e.error?.param === param, `${e.status} ${JSON.stringify(e.error)}`);
  }
}
// without the key, or with another: 401
const wrong = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "not-the-key", maxRetries: 0 });
try {
  await wrong.models.list();
  check("wrong key", false, "accepted");
} catch (e) {
  check("wrong key", e.status === 401, String(e.status));
}
const noKey = await fetch(`http://127.0.0.1:${port}/v1/models`);
check("no key", noKey.status === 401, String(noKey.status));
const health = await fetch(`http://127.0.0.1:${port}/health`);
check("health", health.status === 200, String(health.status));
const tok = await fetch(`http://127.0.0.1:${port}/tokenize`, { method: "POST", headers: { Authorization: "Bearer secret-key" },
  body: JSON.stringify({ content: prompt, add_special: true }) });
check("tokenize", JSON.stringify((await tok.json()).tokens) === JSON.stringify(process.argv[10].split(" ").map(Number)), "ids differ");
const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { Authorization: "Bearer secret-key" } })).text();
check("metrics", /kvcache_requests_total\{status="400"\} 5/.test(metrics) && /kvcache_slots 4/.test(metrics) &&
  /kvcache_completion_tokens_total [1-9]/.test(metrics), metrics.slice(0, 400));
console.log("OpenAI client: completions, chat, streamed and not, equal kvcache generate; stop, seed, 400, 401, health, tokenize, metrics: ok");
JS
ln -s "$node_path" "$tmp/node_modules" # ES modules resolve from the script's directory up
node "$tmp/client.mjs" "$port" "$tmp" "$prompt" "$(wc -w <<<"$ids")" \
  "$(wc -w <<<"$gen_ids")" "$chat_prompt" "$chat_generated" unused "$ids" || fail "the OpenAI client's checks"

kill -TERM "$server"
rc=0
wait "$server" || rc=$?
server=
[ "$rc" -eq 0 ] || fail "SIGTERM: the server exited $rc: $(cat "$tmp/serve.err")"
grep -q "stopped" "$tmp/serve.err" || fail "SIGTERM: $(cat "$tmp/serve.err")"

# 32 streaming clients against 8 slots (24 queued at first), prompts of 1 to 60 tokens, 6 of
# them going away after their second chunk: every stream that completes equals the same
# request run alone; the cancelled free their slots (the metrics say 6 cancelled, no slot
# busy, no queue); every id answered once. Then a long stream with others joining and leaving
# around it: the steps span no more slots than they run sequences.
"$kvcache" serve -m "$tmp/m" --port 0 --parallel 8 --chunk 16 2>"$tmp/serve8.err" &
server=$!
for _ in $(seq 100); do grep -q "ready" "$tmp/serve8.err" && break; sleep 0.1; done
port=$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/serve8.err" | head -1 | cut -d: -f3)
cat >"$tmp/load.mjs" <<'JS'
import OpenAI from "openai";
const port = process.argv[2];
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "none", maxRetries: 0 });
function check(what, ok, detail) {
  if (!ok) { console.log(`FAIL: ${what}: ${detail}`); process.exit(1); }
}
// prefix reuse: B's prompt shares A's first 200+ tokens; B alone first (nothing cached), then
// A, then B again: it reports the shared tokens as cached and gives the same text
const shared = Array.from({ length: 200 }, (_, k) => ["alpha", "beta", "gamma", "delta"][k % 4]).join(" ");
const B = { model: "m", prompt: shared + " and then B", max_tokens: 12, temperature: 0 };
const first = await client.completions.create(B);
check("B's first run", first.usage.prompt_tokens_details.cached_tokens === 0, JSON.stringify(first.usage));
await client.completions.create({ model: "m", prompt: shared + " while A", max_tokens: 4, temperature: 0 });
const again = await client.completions.create(B);
const cached = again.usage.prompt_tokens_details.cached_tokens;
check("B's prefix cached", cached >= 200 && cached < again.usage.prompt_tokens, JSON.stringify(again.usage));
check("B's text with the prefix cached", again.choices[0].text === first.choices[0].text,
  `${JSON.stringify(again.choices[0].text)} vs ${JSON.stringify(first.choices[0].text)}`);
const requests = [];
for (let i = 0; i < 32; i++) {
  const words = ["once", "upon", "a", "time", "there", "was", "a", "cache"];
  const prompt = Array.from({ length: 1 + ((i * 7) % 60) }, (_, k) => words[(i + k) % 8]).join(" ");
  /* the ones that go away ask for 900 tokens: their streams outlast the client's reaction */
  requests.push({ prompt, max_tokens: i % 5 === 0 ? 900 : 8 + (i % 17), abort: i % 5 === 0 && i > 0 });
}
async function run(req, abort) {
  const controller = new AbortController();
  let text = "", chunks = 0, id = null, finish = null;
  try {
    const stream = await client.completions.create({ model: "m", prompt: req.prompt, max_tokens: req.max_tokens, ignore_eos: true,
      temperature: 0, stream: true }, { signal: controller.signal });
    for await (const chunk of stream) {
      id = chunk.id;
      text += chunk.choices[0].text;
      finish = chunk.choices[0].finish_reason ?? finish;
      if (abort && ++chunks === 2) controller.abort();
    }
  } catch (e) {
    if (!abort) throw e;
  }
  if (abort) /* the client's stream ends quietly or throws; chunks already read may follow */
    return { aborted: chunks >= 2 && !finish, id, chunks, finish, text };
  return { text, id, finish };
}
const solo = [];
for (const req of requests) solo.push(await run(req, false));
const together = await Promise.all(requests.map((req) => run(req, req.abort)));
const aborted = requests.filter((r) => r.abort).length;
const ids = new Set();
for (let i = 0; i < 32; i++) {
  if (requests[i].abort) {
    check(`request ${i} aborted`, together[i].aborted,
      `it completed: ${together[i].chunks} chunks, finish ${together[i].finish}, ${JSON.stringify(together[i].text)}`);
    continue;
  }
  check(`request ${i}`, together[i].text === solo[i].text && together[i].finish === solo[i].finish,
    `${JSON.stringify(together[i].text)} vs alone ${JSON.stringify(solo[i].text)}`);
  check(`request ${i}'s id`, !ids.has(together[i].id), "answered twice");
  ids.add(together[i].id);
}
let metrics = "", polls = 0; /* each earlier /metrics is a 200 too */
for (let t = 0; t < 50; t++) { /* the cancelled leave at the scheduler's next step */
  polls = t;
  metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  if (/kvcache_slots_busy 0\n/.test(metrics) && new RegExp(`kvcache_requests_cancelled_total ${aborted}\n`).test(metrics)) break;
  await new Promise((r) => setTimeout(r, 100));
}
check("slots freed", /kvcache_slots_busy 0\n/.test(metrics) && /kvcache_queue_length 0\n/.test(metrics), metrics);
check("cancelled counted", new RegExp(`kvcache_requests_cancelled_total ${aborted}\n`).test(metrics), metrics);
check("answered", new RegExp(`kvcache_requests_total\\{status="200"\\} ${67 + polls}\n`).test(metrics), metrics);
check("prefixes reused", /kvcache_prefix_cache_hits_total [1-9]/.test(metrics), metrics);
console.log(`32 streams on 8 slots: ${32 - aborted} equal their solo runs, ${aborted} cancelled and freed: ok`);
// running sequences side by side: with every slot holding an idle sequence from above, a long
// stream A runs while B comes and goes and C comes after it (its slot is B's): each step's
// run spans as many slots as it runs sequences
const counter = (text, name) => +text.match(new RegExp(`^${name} (\\d+)$`, "m"))[1];
const before = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
const controller = new AbortController();
const long = await client.completions.create({ model: "m", prompt: "Zebras graze on the plain", max_tokens: 900,
  ignore_eos: true, temperature: 0, stream: true }, { signal: controller.signal });
const reader = long[Symbol.asyncIterator]();
await reader.next();
await client.completions.create({ model: "m", prompt: "Yaks climb", max_tokens: 3, temperature: 0 });
const c = await client.completions.create({ model: "m", prompt: "Voles dig tunnels under the snow", max_tokens: 20,
  ignore_eos: true, temperature: 0 });
const after = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
const a = await reader.next();
check("the long stream ran throughout", !a.done && c.usage.completion_tokens === 20, JSON.stringify(a));
controller.abort();
const rows = counter(after, "kvcache_step_rows_total") - counter(before, "kvcache_step_rows_total");
const runs = counter(after, "kvcache_step_sequences_total") - counter(before, "kvcache_step_sequences_total");
check("running sequences side by side", runs > 20 && rows === runs, `${rows} slots spanned for ${runs} sequences`);
console.log(`A, B and C: ${runs} sequences in steps spanning ${rows} slots: ok`);
JS
ln -sf "$node_path" "$tmp/node_modules"
node "$tmp/load.mjs" "$port" || fail "32 clients on 8 slots"
kill -TERM "$server"
wait "$server" || fail "SIGTERM after the load: $(cat "$tmp/serve8.err")"
server=
echo "serve: ok"
