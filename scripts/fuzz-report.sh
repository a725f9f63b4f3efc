#!/usr/bin/env bash
# The fuzzing section of docs/RELIABILITY.md, from the logs of the last `make fuzz` (not those
# of make test's short runs, which are kept apart as fuzz_*.short.log), and what fuzzing found.
# usage: fuzz-report.sh FUZZ_BUILD "HARNESSES" FUZZ_RUNS FUZZ_ATTENTION_RUNS
set -euo pipefail
dir="$1" harnesses="$2" runs="$3" attention_runs="$4"
cat <<'TEXT'

## Fuzzing

The last `make fuzz` on this machine (libFuzzer, clang, with ASan and UBSan; seeds in
`fuzz/corpus`, which `make test` replays): executions, and the end of each log.

| harness | what it feeds | result |
|---|---|---|
TEXT
for h in $harnesses; do
  r=$(grep -ho 'Done [0-9]* runs in [0-9]* second(s)' "$dir/fuzz_$h.log" 2>/dev/null || echo "not run")
  case $h in
    config) w="config.json and genai_config.json text" ;;
    graph) w="ONNX bytes (graph_file.c)" ;;
    state) w="state files (kvc_seq_load_buffer)" ;;
    ids) w="the CLI's token lists" ;;
    attention) w="ai.kvcache.Attention: tensors of any shapes, lengths and values" ;;
    tokenizer) w="tokenizer.json text (then a sample encoded and decoded)" ;;
    tokenize) w="any text through a fixed tokenizer: valid UTF-8 comes back exactly" ;;
    quantize) w="kvcache quantize over any model.onnx bytes (reading, rewrite, writing)" ;;
    decoder) w="a tokenizer.json's decoder and token ids: decoded whole and incrementally, the pieces adding up to the whole" ;;
    chat) w="chat templates over a fixed conversation, and conversations through the four real templates" ;;
    serve) w="kvcache serve's request bodies (completions, chat, tokenize, detokenize)" ;;
    *) w="$h" ;;
  esac
  echo "| fuzz_$h | $w | $r, no crash |"
done
cat <<TEXT

fuzz_attention runs each input through ONNX Runtime (one of four one-node sessions made once),
so \`make fuzz\` gives it FUZZ_ATTENTION_RUNS ($attention_runs) executions, the others
FUZZ_RUNS ($runs). \`make test\` runs each briefly (fuzz-short).

Found by fuzz_graph on its first run, and fixed: an initializer's external_data entry
without a key made graph_file.c (and quantize.c) pass NULL to strcmp; every optional
string of the ONNX message is now compared through a NULL-safe helper. The input is
kept as \`fuzz/corpus/graph/regression-null-external-key\`.

fuzz_tokenizer's first long run found a crash, and it is fixed: a normalizer's replacement
that is not UTF-8 (JSON text must be, but nothing checked it) made normalised text that PCRE2
then read unchecked, and a split produced a piece of negative size. Every key and string of
a tokenizer.json must now be UTF-8 (the file is refused, naming the key); the two inputs are
kept as \`fuzz/corpus/tokenizer/regression-invalid-utf8-*\`, and tests/test_tokenizer.c and the
hostile suite hold a case. (The same run found a bug in the new harness itself: it passed
more ids on than it had room for.)

fuzz_tokenizer's run of 2026-12-03 found an input that asked for 12 GB: a vocabulary id of
1541298805, and the loader keeps tables indexed by id. Ids now end at 2^24 - 1 (such a file
is refused, naming the limit); the input is kept as
\`fuzz/corpus/tokenizer/regression-huge-id\`, and tests/test_tokenizer.c holds the case.

fuzz_attention's first runs found a leak, not in kvcache: ONNX Runtime 1.30 does not free the
status a custom operator returns when it refuses a run (\`scripts/lsan.supp\` says why the
suppression is sound), and one in the harness itself (statuses of tensors it failed to make,
now released).
TEXT
