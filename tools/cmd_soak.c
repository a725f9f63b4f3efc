/* kvcache soak: a long random run of appends, rewinds, forks and state round trips on one
 * context, watching the resident set and checking the logits against fresh sequences. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "kvcache.h"

static const char usage[] =
    "usage: kvcache soak -m DIR [--steps N] [--check-every K] [--seed S] [--rss-limit KB]\n"
    "\n"
    "Drives one context of 2 slots for N steps: mostly one-token appends, with random rewinds\n"
    "(2%), forks into the second slot and back (2%), and state save/load round trips through\n"
    "memory (2%). Every K steps the sequence's logits are checked against a fresh sequence fed\n"
    "the same tokens. Prints the resident set after the first 1,000 steps and at the end, and\n"
    "fails (exit 1) when it grew by --rss-limit or more, or a check differs by more than 1e-4. A\n"
    "warm-up first runs every length and every token id once and saves and loads the longest\n"
    "state, so that what the run reads and writes has been touched (ONNX Runtime's working\n"
    "memory at its largest, every embedding row paged in, the state buffer written) before the\n"
    "resident set is watched.\n"
    "\n";

static int64_t rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long long pages = 0, resident = 0;
  if (f && fscanf(f, "%lld %lld", &pages, &resident) != 2)
    resident = 0;
  if (f)
    fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static uint64_t next(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 33;
}

typedef struct counts {
  long appends, rewinds, forks, states, checks;
  double worst;
} counts;

/* The logits of `fresh` (a sequence of its own context, emptied) fed tokens[0, n) in runs of
 * 16, against q's. Runs of one size keep ONNX Runtime's working memory the same, however long
 * the sequence. */
static kvc_status check(kvc_seq *fresh, kvc_seq *q, const int32_t *tokens, int32_t n, int32_t vocab,
                        counts *c) {
  kvc_status s = kvc_seq_rewind(fresh, 0);
  for (int32_t at = 0; !s && at < n; at += 16)
    s = kvc_seq_append(fresh, tokens + at, n - at < 16 ? n - at : 16);
  const float *a = s ? NULL : kvc_seq_logits(fresh), *b = kvc_seq_logits(q);
  for (int32_t i = 0; a && b && i < vocab; i++)
    c->worst = fmax(c->worst, fabs((double)a[i] - b[i]));
  c->checks += !s;
  return s;
}

int kvc_cmd_soak(int argc, char **argv) {
  const char *cmd = "soak", *dir = NULL;
  kvc_model_params mp = kvc_model_default_params();
  int64_t steps = 50000, every = 1000, rss_limit = 1024;
  uint64_t seed = 1;
  kvc_opt opts[] = {
      KVC_INT64("--steps", "N", &steps, 1, INT32_MAX, "steps (50000)"),
      KVC_INT64("--check-every", "K", &every, 1, INT32_MAX,
                "steps between checks against a fresh sequence (1000)"),
      KVC_UINT64("--seed", "S", &seed, "the run's random choices (1)"),
      KVC_INT64("--rss-limit", "KB", &rss_limit, 0, INT32_MAX,
                "the resident set growth that fails the run (1024; 0: do not judge\n"
                "it, as under a sanitizer, whose allocator keeps freed memory)"),
  };
  kvc_args args = KVC_ARGS_MODEL(cmd, usage, opts, &mp, &dir);
  const int parsed = kvc_args_parse(&args, argc, argv);
  if (parsed != KVC_ARGS_GO)
    return parsed;
  kvc_model *m = NULL;
  int rc = kvc_arg_open_model(cmd, dir, &mp, &m);
  if (rc)
    return rc;
  kvc_model_info info;
  kvc_model_get_info(m, &info);
  const int32_t cap = info.max_seq_len, V = info.vocab_size;
  kvc_ctx_params cp = kvc_ctx_default_params();
  cp.slots = 2;
  kvc_ctx *ctx = NULL;
  kvc_seq *q = NULL, *fresh = NULL;
  int32_t *tokens = malloc((size_t)cap * sizeof *tokens);
  kvc_status s = tokens ? kvc_ctx_new(m, &cp, &ctx) : KVC_ERR_NO_MEMORY;
  if (!s)
    s = kvc_seq_new_in(ctx, &q);
  if (!s)
    s = kvc_seq_new(m, NULL, &fresh);
  /* warm-up, so that what a long run reads has been read once before the resident set is
   * watched: every length, one token at a time and in the check's runs of 16 (ONNX Runtime's
   * working memory at its largest), and every token id (every row of the embedding table) */
  for (int32_t i = 0; tokens && i < cap - 1; i++)
    tokens[i] = i % V;
  for (int32_t i = 0; !s && i < cap - 1; i++)
    s = kvc_seq_append(fresh, tokens + i, 1);
  counts warm = {0};
  for (int32_t first = 0; !s && first < V; first += cap - 1) {
    for (int32_t i = 0; i < cap - 1; i++)
      tokens[i] = (first + i) % V;
    s = check(fresh, fresh, tokens, cap - 1, V, &warm);
  }
  /* and the longest state (the run rewinds at cap tokens, so it saves at most cap - 1): the
   * buffer sized by it, written once and loaded into the other slot, so that every page of it
   * is touched (a memset after malloc would not do it: the compiler may turn the pair into
   * calloc, which leaves fresh pages untouched) */
  size_t state_cap = 0, size = 0;
  void *state = NULL;
  kvc_seq *other = NULL;
  if (!s && !(s = kvc_seq_append(q, tokens, cap - 1)) &&
      !(s = kvc_seq_save_buffer(q, NULL, 0, &state_cap)))
    s = (state = malloc(state_cap)) ? KVC_OK : KVC_ERR_NO_MEMORY;
  if (!s && !(s = kvc_seq_save_buffer(q, state, state_cap, &size)) &&
      !(s = kvc_seq_new_in(ctx, &other)))
    s = kvc_seq_load_buffer(other, state, size);
  kvc_seq_free(other);
  if (!s)
    s = kvc_seq_rewind(q, 0);
  uint64_t rng = seed;
  int32_t n = 0;
  counts c = {0};
  int64_t rss_early = 0, rss_end = 0;
  for (int64_t step = 0; !s && step < steps; step++) {
    const uint64_t pick = next(&rng) % 100;
    if (n > 0 && (pick < 2 || n >= cap)) { /* rewind */
      n = (int32_t)(next(&rng) % (uint64_t)n);
      s = kvc_seq_rewind(q, n);
      c.rewinds++;
    } else if (n > 0 && pick < 4) { /* fork into the other slot, then go on from the fork */
      kvc_seq *child = NULL;
      if (!(s = kvc_seq_fork(q, n, &child))) {
        kvc_seq_free(q);
        q = child;
      }
      c.forks++;
    } else if (n > 0 && pick < 6) { /* save and load back, through memory */
      size_t size = 0;
      s = kvc_seq_save_buffer(q, state, state_cap, &size);
      kvc_seq *loaded = NULL;
      if (!s && !(s = kvc_seq_new_in(ctx, &loaded)) &&
          !(s = kvc_seq_load_buffer(loaded, state, size))) {
        kvc_seq_free(q);
        q = loaded;
      } else {
        kvc_seq_free(loaded);
      }
      c.states++;
    } else { /* one token: the most likely, now and then a random one */
      const float *logits = kvc_seq_logits(q);
      int32_t t = (int32_t)(next(&rng) % (uint64_t)V);
      for (int32_t i = 0; logits && pick % 4 && i < V; i++)
        t = logits[i] > logits[t] ? i : t;
      tokens[n] = t;
      if (!(s = kvc_seq_append(q, &t, 1)))
        n++;
      c.appends++;
    }
    if (!s && n > 0 && (step + 1) % every == 0)
      s = check(fresh, q, tokens, n, V, &c);
    if (step + 1 == 1000 || step + 1 == steps)
      rss_early = step + 1 == 1000 ? rss_kb() : rss_early;
  }
  rss_end = rss_kb();
  if (s) {
    fprintf(stderr, "kvcache %s: %s\n", cmd, kvc_last_error());
    rc = 1;
  } else {
    const int64_t growth = rss_early ? rss_end - rss_early : 0;
    printf("soak: %lld steps: %ld appends, %ld rewinds, %ld forks, %ld state round trips; "
           "%ld checks against a fresh sequence, max |dlogit| %.3g\n",
           (long long)steps, c.appends, c.rewinds, c.forks, c.states, c.checks, c.worst);
    printf("resident set: %lld KB after 1,000 steps, %lld KB at the end: %+lld KB\n",
           (long long)rss_early, (long long)rss_end, (long long)growth);
    const int rss_failed = rss_limit > 0 && growth >= rss_limit;
    if (rss_failed || c.worst > 1e-4) {
      fprintf(stderr, "kvcache %s: FAILED: %s\n", cmd,
              rss_failed ? "the resident set grew by --rss-limit or more"
                         : "a check differs by more than 1e-4");
      rc = 1;
    }
  }
  kvc_seq_free(q);
  kvc_seq_free(fresh);
  kvc_ctx_free(ctx);
  kvc_model_free(m);
  free(tokens);
  free(state);
  return rc;
}
