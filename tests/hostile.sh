#!/usr/bin/env bash
# The hostile-input suite through the CLI: every case must exit with its expected status, print
# a message naming the culprit, neither crash (a signal) nor hang (30 s), and leave every file
# of the workspace byte-for-byte as it was (in the sanitizer build, also no sanitizer report).
# With REPORT, the table of cases and outcomes is
# written there as markdown (make docs-reliability writes docs/RELIABILITY.md).
# usage: hostile.sh KVCACHE [REPORT.md]
set -uo pipefail
kvcache="$1" report="${2:-}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

# ---- the workspace ----------------------------------------------------------------------
"$kvcache" build-model -o m --attention gqa --layers 2 --heads 2 --head-dim 16 --vocab 100 \
  --max-seq 64 >/dev/null || { echo "FAIL: building the model"; exit 1; }
"$kvcache" build-model -o l --arch llama --layout genai --layers 1 --heads 2 --head-dim 16 \
  --vocab 100 --max-seq 64 >/dev/null || { echo "FAIL: building the llama model"; exit 1; }
"$kvcache" generate -m m --prompt-ids "1 2 3" -n 4 --save-state state >/dev/null 2>&1
mkdir -p fifo-config fifo-graph dir-config truncated garbage no-onnx two-onnx bad-json \
  frac-len big-len genai-eos genai-head genai-names huge-config nul-key qlink wout escape-abs \
  escape-up unreadable genai-head8
cp m/* fifo-config/ && rm fifo-config/config.json && mkfifo fifo-config/config.json
cp m/* fifo-graph/ && rm fifo-graph/model.onnx && mkfifo fifo-graph/model.onnx
cp m/* dir-config/ && rm dir-config/config.json && mkdir dir-config/config.json
cp m/* truncated/ && head -c 3000 m/model.onnx >truncated/model.onnx
cp m/config.json garbage/ && echo "not a model" >garbage/model.onnx
cp m/config.json no-onnx/
cp m/* two-onnx/ && mv two-onnx/model.onnx two-onnx/a.onnx && cp two-onnx/a.onnx two-onnx/b.onnx
cp m/* bad-json/ && echo '{"max_seq_len": ' >bad-json/config.json
cp m/* frac-len/ && echo '{"max_seq_len": 1.5}' >frac-len/config.json
cp m/* big-len/ && echo '{"max_seq_len": 128}' >big-len/config.json
cp m/* qlink/ && ln -s /etc/passwd qlink/notes.txt
cp m/config.json m/model.onnx wout/ && ln -s "$PWD/m/model.onnx.data" wout/model.onnx.data
# external data locations of the same length as model.onnx.data, leading out of the directory
cp m/* escape-abs/ && LC_ALL=C sed -i 's|model\.onnx\.data|/dev/./././zero|g' escape-abs/model.onnx
cp m/* escape-up/ && LC_ALL=C sed -i 's|model\.onnx\.data|../m/model.onnx|g' escape-up/model.onnx
cp m/* nul-key/ && echo '{"max_seq_len\u0000x": 16, "max_seq_len": 64}' >nul-key/config.json
cp m/* huge-config/ && truncate -s 70000000 huge-config/config.json
cp m/* unreadable/ && chmod 000 unreadable/model.onnx.data
cp l/* genai-head8/ && sed -i 's/"head_size":[[:space:]]*16/"head_size": 8/' genai-head8/genai_config.json
cp l/* genai-eos/ && sed -i 's/"eos_token_id":[[:space:]]*2/"eos_token_id": "two"/' genai-eos/genai_config.json
cp l/* genai-head/ && sed -i 's/"head_size":[[:space:]]*16/"head_size": 16.5/' genai-head/genai_config.json
cp l/* genai-names/ &&
  sed -i 's/"past_key_values.%d.key"/"past.%d.k"/' genai-names/genai_config.json
# chat templates that recurse forever, write without end, use what is not implemented, or
# add to an undefined name; messages that are not a conversation
for t in 'recursion|{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}' \
  'endless|{% for i in range(100000000) %}{{ i }}{% endfor %}' \
  'call|{% call f() %}x{% endcall %}' 'undefined|{{ nothing.foo + 1 }}'; do
  mkdir -p "tpl-${t%%|*}"
  printf '{"chat_template": %s}' "$(printf '%s' "${t#*|}" | sed 's/"/\\"/g; s/^/"/; s/$/"/')" \
    >"tpl-${t%%|*}/tokenizer_config.json"
done
printf '[{"role": "user", "content": "hi"}]' >msgs.json
printf '{"role": "user"}' >msgs-object.json
head -c 2000 state >state-cut
cp state state-flip && printf '\xff' | dd of=state-flip bs=1 seek=500 conv=notrunc 2>/dev/null
head -c 200 m/config.json >state-junk
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [' >tok-bad.json
printf '{"model": {"type": "Unigram", "vocab": []}}' >tok-unigram.json
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\xe4\xb8"}}' >tok-utf8.json
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}}' >tok.json
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1541298805}, "merges": []}}' >tok-huge-id.json
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "a*a*b|a"}, "behavior": "Isolated"}}' >tok-split.json
head -c 1048576 /dev/zero | tr '\0' a >a-1mb.txt
printf 'ab\n\xc3\x28\n' >bad-utf8.txt
echo "1 two 3" >bad-ids.txt
printf '5 6\n\n7 x 8\n' >bad-prompts.txt
snapshot() { find . -type f ! -name '*.out' -print0 | sort -z | xargs -0 md5sum 2>/dev/null | md5sum; }

# ---- the cases: surface | input | expected exit | a needle the message must hold | args --
cases=(
  "paths|model directory that does not exist|1|/nonexistent/model|info -m /nonexistent/model"
  "paths|config.json is a FIFO|1|is a FIFO|info -m fifo-config"
  "paths|model.onnx is a FIFO|1|is a FIFO|info -m fifo-graph"
  "paths|config.json is a directory|1|is a directory|info -m dir-config"
  "paths|a directory without .onnx|1|no .onnx file|info -m no-onnx"
  "paths|two .onnx files, none model.onnx|1|none is model.onnx|info -m two-onnx"
  "paths|model path is a plain file that is not ONNX|1|state|info -m state"
  "model bytes|model.onnx cut at 3000 bytes|1|model.onnx|info -m truncated"
  "model bytes|model.onnx is text|1|model.onnx|info -m garbage"
  "config.json|invalid JSON|1|not valid JSON|info -m bad-json"
  "config.json|max_seq_len 1.5|1|whole number|info -m frac-len"
  "config.json|max_seq_len above the position table|1|addresses only 64 positions|info -m big-len"
  "config.json|70 MB|1|more than the 67108864 accepted|info -m huge-config"
  "config.json|a key with an escaped NUL|1|holds \\u0000|info -m nul-key"
  "paths|external data linked from outside the directory|1|model.onnx.data leads outside the model directory|info -m wout"
  "paths|an external data location that is absolute|1|/dev/./././zero leads outside the model directory|info -m escape-abs"
  "paths|an external data location with ..|1|../m/model.onnx leads outside the model directory|info -m escape-up"
  "quantize|a file that links outside the directory|2|notes.txt leads outside the model directory|quantize qlink never"
  "quantize|external data linked from outside the directory|2|model.onnx.data leads outside|quantize wout never"
  "genai_config.json|eos_token_id a string|1|model.eos_token_id|info -m genai-eos"
  "genai_config.json|head_size 16.5|1|model.decoder.head_size|info -m genai-head"
  "genai_config.json|head_size 8 for a graph of 16|1|model.decoder.head_size is 8, but the graph's|info -m genai-head8"
  "paths|model.onnx.data unreadable (mode 000)|1|cannot read external data file unreadable/model.onnx.data: Permission denied|nodac info -m unreadable"
  "genai_config.json|a name template kvcache does not bind|1|past_key_names|info -m genai-names"
  "tokens|a token id at the vocabulary size|2|token 100|generate -m m --prompt-ids 1,100"
  "tokens|a negative token id|2|token -1|generate -m m --prompt-ids 1,-1"
  "tokens|a token that is not a number|2|--prompt-ids|generate -m m --prompt-ids 1,x"
  "tokens|a token id past int32|2|--prompt-ids|generate -m m --prompt-ids 99999999999"
  "tokens|an empty prompt|2|--prompt-ids|generate -m m --prompt-ids ,"
  "tokens|a prompts file with a bad line|2|bad-prompts.txt line 3|generate -m m --prompts bad-prompts.txt"
  "lengths|-n 0|2|-n|generate -m m --prompt-ids 1 -n 0"
  "lengths|prompt beyond the cache|2|max length|verify -m m --prompt-len 60 --steps 10"
  "lengths|bench prompt + gen beyond the cache|2|exceeds the max length|bench -m m --prompt-len 60 --gen 10"
  "lengths|--max-seq above the model's|2|exceeds the model's maximum 64|info -m m --max-seq 65"
  "sampler|temperature -1|2|--temperature|generate -m m --prompt-ids 1 --temperature -1"
  "sampler|temperature NaN|2|--temperature|generate -m m --prompt-ids 1 --temperature nan"
  "sampler|temperature infinity|2|--temperature|generate -m m --prompt-ids 1 --temperature inf"
  "sampler|top-p 0|2|--top-p|generate -m m --prompt-ids 1 --temperature 1 --top-p 0"
  "sampler|top-p 1.5|2|--top-p|generate -m m --prompt-ids 1 --temperature 1 --top-p 1.5"
  "sampler|top-k -3|2|--top-k|generate -m m --prompt-ids 1 --temperature 1 --top-k -3"
  "sampler|repetition penalty NaN|2|--repetition-penalty|generate -m m --prompt-ids 1 --repetition-penalty nan"
  "sampler|repetition penalty -1|2|--repetition-penalty|generate -m m --prompt-ids 1 --repetition-penalty -1"
  "state files|a state cut at 2000 bytes|1|truncated|generate -m m --load-state state-cut -n 1"
  "state files|one byte of a state changed|1|checksum|generate -m m --load-state state-flip -n 1"
  "state files|a file that is not a state|1|not a kvcache state|generate -m m --load-state state-junk -n 1"
  "state files|another model's state|2|another model|generate -m l --load-state state -n 1"
  "state files|a state that does not exist|1|nothing-here|generate -m m --load-state nothing-here -n 1"
  "state files|a state that is a directory|1|is a directory|generate -m m --load-state m -n 1"
  "state files|saving into a missing directory|1|no/such/dir|generate -m m --prompt-ids 1 -n 1 --save-state no/such/dir/s"
  "CLI numbers|--threads past int32|2|--threads|info -m m --threads 99999999999999"
  "CLI numbers|--threads above 4 per CPU|2|intra_op_threads|info -m m --threads 1024"
  "CLI numbers|--layers 2^31|2|--layers|build-model -o never --layers 2147483648"
  "CLI numbers|--max-seq 1e99|2|--max-seq|build-model -o never --max-seq 1e99"
  "CLI numbers|--batch 0|2|--batch|bench -m m --batch 0,2"
  "CLI numbers|--seed -1|2|--seed|build-model -o never --seed -1"
  "CLI numbers|-n with a trailing letter|2|-n|generate -m m --prompt-ids 1 -n 5x"
  "quantize|--bits 3|2|bits = 3|quantize m never --bits 3"
  "quantize|--block 48|2|block_size = 48|quantize m never --block 48"
  "quantize|an output that exists|2|exists|quantize m l"
  "quantize|a model that is not ONNX|1|not an ONNX model|quantize garbage never"
  "tokenizer|a tokenizer.json cut short|1|not valid JSON|tokenize --tokenizer tok-bad.json"
  "tokenizer|a Unigram model|1|model \"Unigram\"|tokenize --tokenizer tok-unigram.json"
  "tokenizer|a string that is not UTF-8|1|not valid UTF-8|tokenize --tokenizer tok-utf8.json"
  "tokenizer|a vocabulary id of 1541298805|1|from 0 to 16777215|tokenize --tokenizer tok-huge-id.json"
  "tokenizer|text that is not UTF-8|2|not valid UTF-8 at byte 0|tokenize --tokenizer tok.json @bad-utf8.txt"
  "tokenizer|ids that are not ids|2|expected token ids|detokenize --tokenizer tok.json @bad-ids.txt"
  "tokenizer|an id outside the vocabulary|2|token 7 (at index 0)|detokenize --tokenizer tok.json @seven"
  "tokenizer|1 MB of a through the pattern a*a*b or a (it backtracks)|2|needs too much work|tokenize --tokenizer tok-split.json @a-1mb.txt"
  "chat template|a macro that calls itself forever|2|macros call each other more than 16 deep|render -m tpl-recursion --messages msgs.json"
  "chat template|a loop over 100 million numbers|2|limit|render -m tpl-endless --messages msgs.json"
  "chat template|{% call %}, not implemented|2|line 1, column 4: {% call %} is not supported|render -m tpl-call --messages msgs.json"
  "chat template|adding to an undefined name|2|'+' on an undefined value|render -m tpl-undefined --messages msgs.json"
  "chat template|messages that are an object|2|messages: expected a JSON array|render -m tpl-undefined --messages msgs-object.json"
  "chat template|a model without tokenizer_config.json|2|tokenizer_config.json|render -m m --messages msgs.json"
  "bench|an output in a missing directory|2|no/dir/b.json|bench -m m --json no/dir/b.json"
  "CLI|an unknown command|2|unknown command|frobnicate"
  "CLI|an unknown option|2|--frobnicate|info -m m --frobnicate"
)
echo 7 >seven

run_case() { # ARGS...: runs the CLI with stdin from @FILE in the last argument, if any; a
  # first argument "nodac" runs it without root's power to read any file (as any other user)
  local args=("$@") input=/dev/null prefix=()
  if [[ "${args[-1]}" == @* ]]; then
    input="${args[-1]#@}"
    unset 'args[-1]'
  fi
  if [ "${args[0]}" = nodac ]; then
    args=("${args[@]:1}")
    [ "$(id -u)" -ne 0 ] || prefix=(setpriv --bounding-set -dac_override,-dac_read_search --)
  fi
  timeout 30 "${prefix[@]}" "$kvcache" "${args[@]}" <"$input" >/dev/null 2>"$tmp/err.out"
}

passed=0 failed=0
rows=""
before=$(snapshot)
for c in "${cases[@]}"; do
  IFS='|' read -r surface input want needle argline <<<"$c"
  read -r -a args <<<"$argline"
  run_case "${args[@]}"
  got=$?
  msg=$(head -c 300 "$tmp/err.out" | tr '\n|' '  ')
  verdict=ok
  if [ "$got" -ge 124 ]; then
    verdict="CRASH or HANG (exit $got)"
  elif grep -qE "ERROR: (Address|Leak|Thread)Sanitizer|runtime error:" "$tmp/err.out"; then
    verdict="sanitizer report"
  elif [ "$got" -ne "$want" ]; then
    verdict="exit $got, expected $want"
  elif ! grep -qF -- "$needle" "$tmp/err.out"; then
    verdict="message lacks '$needle'"
  fi
  now=$(snapshot)
  if [ "$verdict" = ok ] && [ "$now" != "$before" ]; then
    verdict="changed the workspace"
  fi
  before="$now"
  rm -rf never
  if [ "$verdict" = ok ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $surface: $input: $verdict ($msg)"
  fi
  shown="${argline% @*}"      # a command that can be pasted: @FILE is stdin from FILE
  [ "$shown" = "$argline" ] || shown+=" < ${argline##* @}"
  rows+="| $((passed + failed)) | $surface | $input | \`kvcache ${shown//|/\\|}\` | $got | $msg | $verdict |"$'\n'
done

if [ -n "$report" ]; then
  {
    echo "# Reliability"
    echo
    echo "Generated by \`make docs-reliability\` (\`tests/hostile.sh\`; \`make test\` runs the same"
    echo "cases) on $(date -u +%Y-%m-%d). Each case runs the CLI on a hostile input and must exit"
    echo "with the expected status, print a message naming the culprit, neither crash nor hang"
    echo "(30 s), and leave every file of the workspace byte-for-byte as it was (an md5 of all of"
    echo "them before and after). $passed of $((passed + failed)) cases hold."
    echo
    echo "| # | surface | input | command | exit | message | outcome |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s' "$rows"
    echo
    echo "The C API's hostile cases are cmocka tests run by \`make test\`, plain and under"
    echo "ASan/UBSan: \`tests/test_hostile.c\` (FIFOs, directories, oversized configs, lengths the"
    echo "graph cannot address, thread counts, samplers of another vocabulary, runtime and"
    echo "allocation failures, a failed second run of a split prompt), \`tests/test_sample.c\`"
    echo "(NaN and infinite logits), \`tests/test_state.c\` (a state cut at every 4 KiB, 1,000"
    echo "bit flips, another layout, a writer killed during 200+ saves), \`tests/test_tokenizer.c\`"
    echo "and \`tests/test_quant.c\` (malformed files), \`tests/test_engine.c\` and"
    echo "\`tests/test_batch.c\` (bad appends and batches)."
  } >"$report"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
