/* llama_peer: llama.cpp measured the way `kvcache bench` measures kvcache, on a GGUF of the
 * same dimensions (peers/gguf_llama.py), through llama.cpp's own library (the prebuilt one in
 * node-llama-cpp: scripts/fetch-llama-cpp.sh). What llama.cpp's llama-bench and
 * llama-batched-bench report, from one program:
 *
 *   llama_peer --quantize q8_0|q4_0 IN.gguf OUT.gguf    llama.cpp's own quantisation
 *   llama_peer MODEL.gguf [--threads N] [--positions 0,512,1536] [--steps 32] [--prefill 512]
 *              [--batch 8,16] [--gen 32] [--repeats 3] [--extra-bufts 0|1]
 *
 * and prints one JSON object per line:
 *   {"what":"decode","position":P,"ms":M}    median ms of one token's decode at positions
 *                                            P .. P+steps-1, after a prefill of P tokens
 *   {"what":"prefill","tokens":N,"tokens_per_s":R}   one batch of N tokens, median of repeats
 *   {"what":"batch","size":B,"tokens_per_s":R}  B sequences of 16-token prompts generating
 *                                            `gen` tokens each together (generation only)
 * Token ids are arbitrary (the GGUF's weights are random); no sampling is timed.
 * --extra-bufts 0 loads the weights without llama.cpp's extra buffer types: no repacking into
 * its AMX or interleaved layouts, the plain ggml kernels only (what its default gains there). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-backend.h"
#include "llama.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, by_value);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void quiet(enum ggml_log_level level, const char *text, void *user) {
  (void)user;
  if (level >= GGML_LOG_LEVEL_ERROR)
    fputs(text, stderr);
}

static bool silent(float progress, void *user) {
  (void)progress, (void)user;
  return true;
}

static int fail(const char *what) {
  fprintf(stderr, "llama_peer: %s\n", what);
  return 1;
}

/* Parse "a,b,c" into at most cap ints; returns the count, -1 when malformed. */
static int ints(const char *text, int *out, int cap) {
  int n = 0;
  for (const char *p = text; *p && n < cap;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 0 || v > 1 << 20 || (*end && *end != ','))
      return -1;
    out[n++] = (int)v;
    p = *end ? end + 1 : end;
  }
  return n;
}

/* Decode tokens [0, n) of sequence `seq` at positions from `pos`, in batches of at most
 * `chunk`, with logits for the last only. */
static int feed(struct llama_context *ctx, struct llama_batch *b, int n, int pos, int seq,
                int chunk) {
  for (int done = 0; done < n;) {
    const int m = n - done < chunk ? n - done : chunk;
    b->n_tokens = m;
    for (int i = 0; i < m; i++) {
      b->token[i] = 3 + (pos + done + i) % 250; /* any ids: the weights are random */
      b->pos[i] = pos + done + i;
      b->n_seq_id[i] = 1;
      b->seq_id[i][0] = seq;
      b->logits[i] = done + i == n - 1;
    }
    if (llama_decode(ctx, *b))
      return 1;
    done += m;
  }
  return 0;
}

static struct llama_context *context(struct llama_model *model, int n_ctx, int seqs, int threads) {
  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = (uint32_t)n_ctx;
  cp.n_batch = cp.n_ubatch = 512;
  cp.n_seq_max = (uint32_t)seqs;
  cp.kv_unified = true;
  cp.no_perf = true;
  if (threads > 0)
    cp.n_threads = cp.n_threads_batch = threads;
  return llama_init_from_model(model, cp);
}

int main(int argc, char **argv) {
  llama_log_set(quiet, NULL);
  if (argc == 5 && !strcmp(argv[1], "--quantize")) {
    struct llama_model_quantize_params qp = llama_model_quantize_default_params();
    if (!strcmp(argv[2], "q8_0"))
      qp.ftype = LLAMA_FTYPE_MOSTLY_Q8_0;
    else if (!strcmp(argv[2], "q4_0"))
      qp.ftype = LLAMA_FTYPE_MOSTLY_Q4_0;
    else
      return fail("--quantize expects q8_0 or q4_0");
    return llama_model_quantize(argv[3], argv[4], &qp) ? fail("quantizing failed") : 0;
  }
  if (argc < 2)
    return fail("usage: llama_peer MODEL.gguf [--threads N] [--positions LIST] [--steps N] "
                "[--prefill N] [--batch LIST] [--gen N] [--repeats N] [--extra-bufts 0|1]");
  int threads = 0, positions[8] = {0}, n_positions = 1, steps = 32, prefill = 512;
  int batches[8], n_batches = 0, gen = 32, repeats = 3, extra_bufts = 1;
  const struct {
    const char *name;
    int *value;
  } numbers[] = {{"--threads", &threads}, {"--steps", &steps},     {"--prefill", &prefill},
                 {"--gen", &gen},         {"--repeats", &repeats}, {"--extra-bufts", &extra_bufts}};
  for (int i = 2; i < argc; i += 2) {
    const char *v = i + 1 < argc ? argv[i + 1] : "";
    int ok = 0;
    if (!strcmp(argv[i], "--positions"))
      ok = (n_positions = ints(v, positions, 8)) > 0;
    else if (!strcmp(argv[i], "--batch"))
      ok = (n_batches = ints(v, batches, 8)) >= 0;
    for (size_t k = 0; k < sizeof numbers / sizeof numbers[0]; k++)
      if (!strcmp(argv[i], numbers[k].name))
        ok = ints(v, numbers[k].value, 1) == 1;
    if (!ok) {
      fprintf(stderr, "llama_peer: bad option '%s' (or its value '%s')\n", argv[i], v);
      return 2;
    }
  }
  if (steps < 1 || repeats < 1)
    return fail("--steps and --repeats must be at least 1");

  /* ggml's CPU backends, one per x86 level, sit beside libllama: the best for this CPU */
  char dir[4096];
  const char *lib = getenv("LLAMA_PEER_LIB");
  snprintf(dir, sizeof dir, "%s", lib ? lib : ".");
  ggml_backend_load_all_from_path(dir);
  llama_backend_init();
  struct llama_model_params mp = llama_model_default_params();
  mp.progress_callback = silent;         /* not llama.cpp's dots on stderr */
  mp.use_extra_bufts = extra_bufts != 0; /* 0: no repacked weights (AMX, interleaved blocks) */
  struct llama_model *model = llama_model_load_from_file(argv[1], mp);
  if (!model)
    return fail("cannot load the model");

  int most = prefill;
  for (int i = 0; i < n_positions; i++)
    most = positions[i] + steps > most ? positions[i] + steps : most;
  struct llama_context *ctx = context(model, (most + 255) / 256 * 256, 1, threads);
  struct llama_batch b = llama_batch_init(512 > most ? 512 : most, 0, 1);
  if (!ctx)
    return fail("cannot make a context");
  double *t = malloc(sizeof(double) * (size_t)(steps > repeats ? steps : repeats));

  /* one token at a time at each position, as a decode step */
  for (int p = 0; p < n_positions; p++) {
    llama_memory_clear(llama_get_memory(ctx), true);
    if (positions[p] && feed(ctx, &b, positions[p], 0, 0, 512))
      return fail("prefill failed");
    for (int s = 0; s < 4 + steps; s++) { /* 4 untimed: the caches refill with the weights */
      double t0 = now_ms();
      if (feed(ctx, &b, 1, positions[p] + s, 0, 1))
        return fail("decode failed");
      llama_synchronize(ctx);
      if (s >= 4)
        t[s - 4] = now_ms() - t0;
    }
    printf("{\"what\":\"decode\",\"position\":%d,\"steps\":%d,\"ms\":%.4f}\n", positions[p], steps,
           median(t, steps));
    fflush(stdout);
    llama_memory_seq_rm(llama_get_memory(ctx), 0, positions[p], -1);
  }
  /* a prompt in one batch */
  for (int r = 0; prefill > 0 && r < repeats; r++) {
    llama_memory_clear(llama_get_memory(ctx), true);
    double t0 = now_ms();
    if (feed(ctx, &b, prefill, 0, 0, 512))
      return fail("prefill failed");
    llama_synchronize(ctx);
    t[r] = now_ms() - t0;
  }
  if (prefill > 0)
    printf("{\"what\":\"prefill\",\"tokens\":%d,\"tokens_per_s\":%.2f}\n", prefill,
           prefill * 1e3 / median(t, repeats));
  fflush(stdout);
  llama_batch_free(b);
  llama_free(ctx);

  /* B sequences generating together: each step one batch of one token per sequence */
  for (int k = 0; k < n_batches; k++) {
    const int B = batches[k], prompt = 16;
    struct llama_context *c = context(model, (B * (prompt + gen) + 255) / 256 * 256, B, threads);
    struct llama_batch bb = llama_batch_init(B * prompt, 0, B);
    if (!c)
      return fail("cannot make a batched context");
    for (int r = 0; r < repeats; r++) {
      llama_memory_clear(llama_get_memory(c), true);
      for (int s = 0; s < B; s++)
        if (feed(c, &bb, prompt, 0, s, 512))
          return fail("batched prompt failed");
      double t0 = now_ms();
      for (int g = 0; g < gen; g++) {
        bb.n_tokens = B;
        for (int s = 0; s < B; s++) {
          bb.token[s] = 3 + (g * 7 + s) % 250;
          bb.pos[s] = prompt + g;
          bb.n_seq_id[s] = 1;
          bb.seq_id[s][0] = s;
          bb.logits[s] = 1;
        }
        if (llama_decode(c, bb))
          return fail("batched decode failed");
      }
      llama_synchronize(c);
      t[r] = now_ms() - t0;
    }
    printf("{\"what\":\"batch\",\"size\":%d,\"gen\":%d,\"tokens_per_s\":%.2f}\n", B, gen,
           B * gen * 1e3 / median(t, repeats));
    fflush(stdout);
    llama_batch_free(bb);
    llama_free(c);
  }
  free(t);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
