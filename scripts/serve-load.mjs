// The load behind docs/SERVER.md's tables (scripts/bench-serve.sh runs it): against a running
// kvcache serve, C clients at once, each sending streamed completions one after another
// (prompts of PROMPT token ids, GEN tokens each with ignore_eos, greedy), for C in the levels
// given; then the prompt-prefix reuse: a 200-token prefix sent once, then requests sharing it
// against requests with a prefix never seen. Prints one JSON object.
//   node scripts/serve-load.mjs PORT VOCAB [--levels 1,4,8,16] [--requests 3] [--prompt 64] [--gen 64]
const args = process.argv.slice(2);
const port = +args[0], vocab = +args[1];
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const levels = opt("--levels", "1,4,8,16").split(",").map(Number);
const perClient = +opt("--requests", "3"), promptLen = +opt("--prompt", "64"), gen = +opt("--gen", "64");
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) % (vocab - 10)) + 5;
const ids = (n) => Array.from({ length: n }, rand);

async function stream(prompt, maxTokens) {
  const t0 = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, stream: true, ignore_eos: true,
                           stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "", first = null, usage = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let k;
    while ((k = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, k);
      buf = buf.slice(k + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const chunk = JSON.parse(event.slice(6));
      if (first === null) first = performance.now();
      if (chunk.usage) usage = chunk.usage;
    }
  }
  const t1 = performance.now();
  return { ttft: first - t0, total: t1 - t0, tokens: usage.completion_tokens, cached: usage.prompt_tokens_details.cached_tokens,
           decode: usage.completion_tokens > 1 ? (t1 - first) / (usage.completion_tokens - 1) : 0 };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const out = { prompt: promptLen, gen, levels: [] };
await stream(ids(promptLen), 4); // warm-up
for (const c of levels) {
  const results = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: c }, async () => {
    for (let i = 0; i < perClient; i++) results.push(await stream(ids(promptLen), gen));
  }));
  const wall = (performance.now() - t0) / 1e3;
  const tokens = results.reduce((a, r) => a + r.tokens, 0);
  out.levels.push({
    clients: c, requests: results.length, tokens_per_s: tokens / wall,
    per_stream_tokens_per_s: results.reduce((a, r) => a + 1e3 / r.decode, 0) / results.length,
    ttft_p50_ms: pct(results.map((r) => r.ttft), 50), ttft_p99_ms: pct(results.map((r) => r.ttft), 99),
  });
}
// prefix reuse: the same 200-token prefix again vs a new one each time, alone on the server
const prefix = ids(200);
await stream([...prefix, ...ids(8)], 1);
const reused = [], fresh = [];
for (let i = 0; i < 5; i++) {
  reused.push(await stream([...prefix, ...ids(8)], 8));
  fresh.push(await stream([...ids(200), ...ids(8)], 8));
}
out.prefix = {
  cached_tokens: Math.min(...reused.map((r) => r.cached)), fresh_cached: Math.max(...fresh.map((r) => r.cached)),
  ttft_reused_ms: pct(reused.map((r) => r.ttft), 50), ttft_fresh_ms: pct(fresh.map((r) => r.ttft), 50),
};
console.log(JSON.stringify(out));
