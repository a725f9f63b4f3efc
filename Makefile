# Thin wrapper over CMake. The README's two commands: `make run` and `make test`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
PREFIX     ?= /usr/local

SANITIZER_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

.PHONY: all deps build run bench-scale bench-serve bench-tokenizer docs-benchmark docs-reliability fuzz fuzz-build fuzz-short test test-fast test-avx2 test-asan tsan install clean format

all: build

# Install missing Debian packages (idempotent; a no-op when everything is there).
deps:
	@scripts/setup.sh --check 2>/dev/null || scripts/setup.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS)

# The main job: write the default model (the seed's sizes and weights, with its attention
# as GroupQueryAttention so that all four cache designs run on one graph) if missing, then
# benchmark the designs side by side on it.
MODEL       ?= $(BUILD)/model
MODEL_FLAGS ?= --attention gqa
BENCH_FLAGS ?= --batch 1,2,4,8,16
$(MODEL)/model.onnx: $(BUILD)/kvcache   # written anew when the builder changes
	$(BUILD)/kvcache build-model -o $(MODEL) $(MODEL_FLAGS)

# ... and a Llama-style model of the same size (RMSNorm, rotary, SwiGLU, 2 K/V heads) in
# onnxruntime-genai's builder's layout, the architecture most users run.
LLAMA       ?= $(BUILD)/model-llama
LLAMA_FLAGS ?= --arch llama --layout genai --kv-heads 2
$(LLAMA)/model.onnx: $(BUILD)/kvcache
	$(BUILD)/kvcache build-model -o $(LLAMA) $(LLAMA_FLAGS)

# ... and the default model with kvcache's own attention operator in GroupQueryAttention's
# place (same weights and math): its cache read rate beside GroupQueryAttention's.
OWN         ?= $(BUILD)/model-kvattn
OWN_FLAGS   ?= --attention kvcache
$(OWN)/model.onnx: $(BUILD)/kvcache
	$(BUILD)/kvcache build-model -o $(OWN) $(OWN_FLAGS)

# ... and that model with 4-bit weights (int8 activations, chosen because its attention is
# bit-exact: the cache stays exact), against the floor of its own weight bytes.
OWN_Q4      ?= $(BUILD)/model-kvattn-q4
$(OWN_Q4)/model.onnx: $(BUILD)/kvcache
	$(BUILD)/kvcache build-model -o $(OWN_Q4) $(OWN_FLAGS) --weights q4

run: build
	@$(MAKE) --no-print-directory $(MODEL)/model.onnx $(OWN)/model.onnx $(OWN_Q4)/model.onnx \
	  $(LLAMA)/model.onnx
	$(BUILD)/kvcache bench -m $(MODEL) $(BENCH_FLAGS) --json $(BUILD)/bench.json \
	  --csv $(BUILD)/bench.csv --plot $(BUILD)/bench.png --report $(BUILD)/BENCHMARK.md
	$(BUILD)/kvcache bench -m $(OWN) $(BENCH_FLAGS) --json $(BUILD)/bench-kvattn.json \
	  --plot $(BUILD)/bench-kvattn.png --report $(BUILD)/BENCHMARK-kvattn.md
	$(BUILD)/kvcache bench -m $(OWN_Q4) --json $(BUILD)/bench-kvattn-q4.json \
	  --plot $(BUILD)/bench-kvattn-q4.png --report $(BUILD)/BENCHMARK-kvattn-q4.md
	$(BUILD)/kvcache bench -m $(LLAMA) --json $(BUILD)/bench-llama.json \
	  --plot $(BUILD)/bench-llama.png --report $(BUILD)/BENCHMARK-llama.md

# kvcache at the 243 M Llama shape beside llama.cpp on identical dimensions (scripts/bench-scale.sh:
# builds the models, fetches llama.cpp, about 25-30 minutes and 4 GB of disk; not part of make
# test). Writes $(SCALE_REPORT) and its plots $(SCALE_PLOTS)-decode.png and -batch.png: another
# machine's run goes beside this one's, e.g. SCALE_REPORT=docs/BENCHMARK-243M-zen4.md
# SCALE_PLOTS=docs/benchmark-243m-zen4.
SCALE        ?= $(BUILD)/scale
SCALE_REPORT ?= docs/BENCHMARK-243M.md
SCALE_PLOTS  ?= docs/benchmark-243m
# kvcache serve under load (docs/SERVER.md's tables): the default model and the 243 M one that
# make bench-scale builds, 1 to 16 streaming clients, and prompt-prefix reuse.
bench-serve: build
	bash scripts/bench-serve.sh $(CURDIR)/$(BUILD)/kvcache

bench-scale: build
	bash scripts/bench-scale.sh $(BUILD)/kvcache $(SCALE) $(SCALE_REPORT) $(SCALE_PLOTS)

# 1 MB of one character through each pinned tokenizer, and a backtracking pattern: each within
# 2 s (a benchmark: its times are not asserted by make test)
bench-tokenizer: build
	bash scripts/bench-tokenizer.sh $(BUILD)/kvcache

# Regenerate the committed report from a real run on this machine.
docs-benchmark: build
	@$(MAKE) --no-print-directory $(MODEL)/model.onnx $(OWN)/model.onnx $(OWN_Q4)/model.onnx
	$(BUILD)/kvcache bench -m $(MODEL) $(BENCH_FLAGS) --json $(BUILD)/bench.json \
	  --plot docs/benchmark.png --report docs/BENCHMARK.md
	$(BUILD)/kvcache bench -m $(OWN) $(BENCH_FLAGS) --json $(BUILD)/bench-kvattn.json \
	  --plot docs/benchmark-kvattn.png --report docs/BENCHMARK-kvattn.md
	$(BUILD)/kvcache bench -m $(OWN_Q4) --json $(BUILD)/bench-kvattn-q4.json \
	  --plot docs/benchmark-kvattn-q4.png --report docs/BENCHMARK-kvattn-q4.md

# The hostile-input suite's table of cases and outcomes.
docs-reliability: build
	bash tests/hostile.sh $(CURDIR)/$(BUILD)/kvcache $(CURDIR)/docs/RELIABILITY.md
	bash scripts/fuzz-report.sh $(FUZZ_BUILD) "$(FUZZ_HARNESSES)" $(FUZZ_RUNS) $(FUZZ_ATTENTION_RUNS) \
	  >>docs/RELIABILITY.md

# libFuzzer harnesses (fuzz/): config text, ONNX bytes, state files, token lists, the attention
# operator, tokenizer.json text, text through a tokenizer, quantize over ONNX bytes, the
# decoders of a tokenizer.json, chat templates and conversations (fuzz_chat, over the real
# templates of the fetched tokenizer packages), kvcache serve's request bodies. fuzz-short
# (part of make test) replays the seed corpus (fuzz/corpus, regressions included) and runs a
# few thousand new inputs each; make fuzz runs FUZZ_RUNS executions of each.
FUZZ_BUILD ?= build-fuzz
FUZZ_RUNS  ?= 1000000
FUZZ_ATTENTION_RUNS ?= 100000
FUZZ_HARNESSES = config graph state ids attention tokenizer tokenize quantize decoder chat serve
FUZZ_ENV = LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp:print_suppressions=0 \
  ORT_DISABLE_TELEMETRY=1 ORT_TELEMETRY_DISABLED=1 KVCACHE_TOKENIZERS=$$(bash scripts/fetch-tokenizers.sh)
fuzz-build: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVCACHE_FUZZ=ON \
	  -DKVCACHE_TESTS=OFF $(CMAKE_ARGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) $(addprefix --target fuzz_,$(FUZZ_HARNESSES))

# (fuzz_attention runs a real ONNX Runtime session per input, 25 ms early on under the
# sanitizers: fewer new inputs for it; fuzz_decoder's inputs are held to 512 bytes in make
# fuzz: a held-back stream re-decodes its window per token, and 4 KB inputs ran at 200/s)
fuzz-short: fuzz-build
	@for h in $(FUZZ_HARNESSES); do mkdir -p $(FUZZ_BUILD)/new/$$h; \
	  runs=20000; [ $$h = attention ] && runs=500; [ $$h = quantize ] && runs=2000; \
	  [ $$h = decoder ] && runs=5000; \
	  $(FUZZ_ENV) $(FUZZ_BUILD)/fuzz_$$h -runs=$$runs -seed=1 $(FUZZ_BUILD)/new/$$h fuzz/corpus/$$h \
	    2>$(FUZZ_BUILD)/fuzz_$$h.short.log || { tail -40 $(FUZZ_BUILD)/fuzz_$$h.short.log; exit 1; }; \
	  echo "fuzz_$$h: $$(grep -o 'Done [0-9]* runs.*' $(FUZZ_BUILD)/fuzz_$$h.short.log)"; done

fuzz: fuzz-build
	@for h in $(FUZZ_HARNESSES); do mkdir -p $(FUZZ_BUILD)/new/$$h; \
	  runs=$(FUZZ_RUNS); [ $$h = attention ] && runs=$(FUZZ_ATTENTION_RUNS); \
	  opts=; [ $$h = decoder ] && opts=-max_len=512; \
	  $(FUZZ_ENV) $(FUZZ_BUILD)/fuzz_$$h -runs=$$runs $$opts $(FUZZ_BUILD)/new/$$h fuzz/corpus/$$h \
	    2>$(FUZZ_BUILD)/fuzz_$$h.log || { tail -40 $(FUZZ_BUILD)/fuzz_$$h.log; exit 1; }; \
	  echo "fuzz_$$h: $$(grep -o 'Done [0-9]* runs.*' $(FUZZ_BUILD)/fuzz_$$h.log)"; done

test: test-fast test-avx2 test-asan tsan fuzz-short

test-fast: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The plain suite again with kvcache's kernels forced to their AVX2 paths, on a CPU with
# AVX-512: what a CPU without it runs, so that every claim the engine's tests check (cached =
# uncached, the narrow caches' bits, batches, forks, state files) holds on that path too, not
# only in test_attention and test_matmul, which force every path themselves. An AVX2 CPU
# without AVX-512 ran these paths in test-fast already; a CPU without AVX2 has none to force.
test-avx2: build
	@if ! grep -qw avx2 /proc/cpuinfo 2>/dev/null || ! grep -qw fma /proc/cpuinfo; then \
	  echo "test-avx2: this CPU has no AVX2 and FMA, so no AVX2 path to force"; \
	elif ! grep -qw avx512f /proc/cpuinfo; then \
	  echo "test-avx2: no AVX-512 here: test-fast ran the AVX2 paths"; \
	else KVCACHE_MATMUL=avx2 KVCACHE_ATTENTION=avx2 \
	  ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS); fi

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVCACHE_SANITIZE=ON $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	$(SANITIZER_ENV) ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

# ThreadSanitizer: the threads test (8 threads on one model, each with its own sequences and
# context), the engine's tests (4 threads sharing a model among them), and kvcache serve (its
# connection threads and scheduler) under the OpenAI client's and the hostile clients' tests. ONNX Runtime is not built with TSan; scripts/tsan.supp silences races inside its
# frames only.
TSAN_BUILD ?= build-tsan
tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVCACHE_TSAN=ON $(CMAKE_ARGS)
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target test_threads test_engine kvcache_cli
	TSAN_OPTIONS="suppressions=$(CURDIR)/scripts/tsan.supp halt_on_error=1" \
	  $(TSAN_BUILD)/tests/test_threads
	TSAN_OPTIONS="suppressions=$(CURDIR)/scripts/tsan.supp halt_on_error=1" \
	  $(TSAN_BUILD)/tests/test_engine
	TSAN_OPTIONS="suppressions=$(CURDIR)/scripts/tsan.supp halt_on_error=1" bash tests/test_serve.sh \
	  scripts/fetch-tokenizers.sh scripts/fetch-openai.sh $(TSAN_BUILD)/kvcache
	TSAN_OPTIONS="suppressions=$(CURDIR)/scripts/tsan.supp halt_on_error=1" bash \
	  tests/test_serve_hostile.sh scripts/fetch-tokenizers.sh $(TSAN_BUILD)/kvcache

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i include/*.h src/*.[ch] src/*/*.[ch] tools/*.[ch] tests/*.[ch] fuzz/*.c peers/*.c examples/*.c

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
