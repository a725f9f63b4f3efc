/* kvcache bench: the cache designs side by side on one machine, in one run.
 *
 * Every strategy decodes the same prompt and the same greedy tokens (chosen once, up
 * front). A first pass runs each strategy alone: it warms up, gives the memory figures,
 * and the uncached one records the oracle's logits at every position. Timed repeats then
 * run the strategies in turn, A B C A B C ..., each repeat rotating which goes first, so
 * that drift in the machine's speed hits all alike. Within a repeat a strategy decodes its
 * whole generation at once, as a program using one model would: stepping the strategies in
 * lockstep instead makes each evict the others' weights from the caches and turns a
 * benchmark of the cache designs into one of the machine's last-level cache.
 * An uncached step at position p is a recompute of p + 1 tokens, independent of the steps
 * before it, so it is timed only at every UNCACHED_STRIDE-th position and at the report's
 * positions: it costs the run more than everything else together. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "bench.h"
#include "commands.h"
#include "kvcache.h"
#include "progress.h"
#include "stats.h"

static const char usage[] =
    "usage: kvcache bench -m DIR [options]\n"
    "\n"
    "Measures the KV-cache designs side by side on one prompt and one greedy continuation:\n"
    "  uncached  the whole sequence recomputed for every token\n"
    "  naive     plain Run; ONNX Runtime allocates each present, which becomes the next past\n"
    "  bound     IOBinding into two preallocated buffers per cache tensor, used in turn\n"
    "  shared    one buffer per cache tensor, bound as past and present, written in place\n"
    "            (graphs with seqlens_k / total_sequence_length, e.g. --attention gqa)\n"
    "and reports cold start, prefill, per-token decode time (mean, p50, p90, p99 and at\n"
    "positions 16, 128, 256, 511 and the last), decode time over the machine's floor (the\n"
    "time to stream the weights and the cache once), logit agreement with uncached, cache\n"
    "bytes, resident-set growth, cache addresses and kvcache's heap allocations per step.\n"
    "Exits 1, after writing its outputs, when a cached strategy's logits differ from the\n"
    "uncached recompute by more than 1e-4 (the limit `kvcache verify` applies).\n"
    "\n";

enum { UNCACHED_STRIDE = 8, WARMUP_STEPS = 16 };

typedef struct run {
  kvc_model *model;
  kvc_seq *seq;
} run;

static int64_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
      resident = 0;
    fclose(f);
  }
  return (int64_t)resident * sysconf(_SC_PAGESIZE);
}

int bench_state(kvc_model *model, bench_result *r, const int32_t *tokens) {
  enum { TIMES = 5 };
  char path[64];
  snprintf(path, sizeof path, "/tmp/kvcache-bench-state-%ld", (long)getpid());
  kvc_seq *q = NULL;
  kvc_status s = kvc_seq_new(model, NULL, &q);
  if (!s)
    s = kvc_seq_append(q, tokens, r->prompt_len + r->gen);
  double save[TIMES], load[TIMES];
  for (int i = 0; i < TIMES && !s; i++) {
    double t0 = kvc_stat_now_ms();
    if (!(s = kvc_seq_save(q, path))) {
      double t1 = kvc_stat_now_ms();
      s = kvc_seq_load(q, path);
      save[i] = t1 - t0;
      load[i] = kvc_stat_now_ms() - t1;
    }
  }
  struct stat st;
  if (!s && stat(path, &st) == 0)
    r->state_bytes = (int64_t)st.st_size;
  remove(path);
  kvc_seq_free(q);
  if (s) {
    fprintf(stderr, "kvcache bench: saving and loading a state: %s\n", kvc_last_error());
    return 1;
  }
  r->state_save_mb_s = r->state_bytes / 1e3 / kvc_stat_percentile(save, TIMES, 50);
  r->state_load_mb_s = r->state_bytes / 1e3 / kvc_stat_percentile(load, TIMES, 50);
  return 0;
}

static int fail(const char *what) {
  fprintf(stderr, "kvcache bench: %s: %s\n", what, kvc_last_error());
  return 1;
}

static int open_run(const char *dir, kvc_model_params mp, kvc_kv_mode mode, run *r) {
  mp.kv_mode = mode;
  if (kvc_model_open(dir, &mp, &r->model))
    return fail("opening the model");
  if (kvc_seq_new(r->model, NULL, &r->seq))
    return fail("making a sequence");
  return 0;
}

static void close_run(run *r) {
  kvc_seq_free(r->seq);
  kvc_model_free(r->model);
  *r = (run){0};
}

enum { FLOOR_READS = 20 }; /* timed floor reads per bucket after each generation */

/* Bytes a decode step at position p must at least read: the weights (a row of each lookup
 * table), and the cache so far. */
static int64_t floor_bytes(const bench_result *r, int32_t position) {
  return bench_step_weight_bytes(r) + r->model.cache_bytes_per_token * position;
}

/* Whether uncached runs (always first): the other strategies' logits are checked against it. */
static int checked(const bench_result *r) {
  return r->n_strategies > 0 && r->s[0].mode == KVC_KV_UNCACHED;
}

/* Run each strategy alone once: warms up, and gives the memory figures. The uncached run
 * (strategy 0, when measured) stores its logits after the prompt and after every step in
 * oracle. */
static int memory_pass(const char *dir, const kvc_model_params *mp, bench_result *r,
                       const int32_t *prompt, const int32_t *tokens, float *oracle) {
  const size_t V = (size_t)r->model.vocab_size;
  kvc_progress bar;
  for (int k = 0; k < r->n_strategies; k++) {
    const int keep = k == 0 && checked(r);
    char what[64];
    snprintf(what, sizeof what, "%s alone (memory, warm-up)", r->s[k].name);
    kvc_progress_start(&bar, "bench", what, "steps", r->gen);
    bench_strategy *s = &r->s[k];
    run x = {0};
    if (open_run(dir, *mp, s->mode, &x))
      return 1;
    if (kvc_seq_append(x.seq, prompt, r->prompt_len))
      return fail(s->name);
    if (keep)
      memcpy(oracle, kvc_seq_logits(x.seq), V * sizeof *oracle);
    int64_t before = rss_bytes();
    for (int32_t i = 0; i < r->gen; i++) {
      if (kvc_seq_append(x.seq, &tokens[i], 1))
        return fail(s->name);
      if (keep)
        memcpy(oracle + (i + 1) * V, kvc_seq_logits(x.seq), V * sizeof *oracle);
      char now[48];
      snprintf(now, sizeof now, "position %d", r->prompt_len + i);
      kvc_progress_step(&bar, now);
    }
    s->rss_growth_bytes = rss_bytes() - before;
    kvc_seq_metrics m;
    kvc_seq_get_metrics(x.seq, &m);
    s->cache_bytes = m.cache_bytes;
    s->cache_addresses = m.cache_addresses;
    s->heap_allocs_per_step = m.decode_steps ? (double)m.decode_allocations / m.decode_steps : 0;
    close_run(&x);
  }
  return 0;
}

/* Whether the uncached strategy is timed at decode step i. */
static int uncached_sampled(const bench_result *r, int32_t i) {
  for (int b = 0; b < r->n_buckets; b++)
    if (r->prompt_len + i == r->buckets[b])
      return 1;
  return i % UNCACHED_STRIDE == 0;
}

static double max_diff(const float *a, const float *b, int32_t n) {
  double d = 0;
  for (int32_t i = 0; i < n; i++)
    d = fmax(d, fabs((double)a[i] - (double)b[i]));
  return d;
}

/* The timed repeats. steps[k][rep * gen + i]: strategy k's time for decode step i (NAN
 * where not timed). all: the prompt followed by the tokens. */
static int timed_pass(const char *dir, const kvc_model_params *mp, bench_result *r,
                      const int32_t *all, const float *oracle, double **steps, double *cold,
                      double *prefill, kvc_model *floor_model, double *floor_samples) {
  const int K = r->n_strategies, V = r->model.vocab_size;
  const int32_t *tokens = all + r->prompt_len;
  run x[BENCH_MAX_STRATEGIES] = {{0}};
  int64_t timed_steps = 0;
  for (int k = 0; k < K; k++)
    for (int32_t i = 0; i < r->gen; i++)
      timed_steps += r->s[k].mode != KVC_KV_UNCACHED || uncached_sampled(r, i);
  kvc_progress bar;
  kvc_progress_start(&bar, "bench", "timed repeats", "steps", timed_steps * r->repeats);
  for (int rep = 0; rep < r->repeats; rep++) {
    for (int k = 0; k < K; k++) {
      double t = kvc_stat_now_ms();
      if (open_run(dir, *mp, r->s[k].mode, &x[k]) || kvc_seq_append(x[k].seq, all, r->prompt_len))
        return fail(r->s[k].name);
      cold[k * r->repeats + rep] = kvc_stat_now_ms() - t;
    }
    /* each strategy's prompt and whole generation in turn (the order rotating with the
     * repeat), as a program decoding with one model runs; then the floor */
    for (int j = 0; j < K; j++) {
      const int k = (rep + j) % K, uncached = r->s[k].mode == KVC_KV_UNCACHED;
      kvc_seq_reset(x[k].seq);
      double t0 = kvc_stat_now_ms();
      if (kvc_seq_append(x[k].seq, all, r->prompt_len))
        return fail(r->s[k].name);
      prefill[k * r->repeats + rep] = kvc_stat_now_ms() - t0;
      if (checked(r))
        r->s[k].max_abs_logit_diff =
            fmax(r->s[k].max_abs_logit_diff, max_diff(kvc_seq_logits(x[k].seq), oracle, V));
      /* untimed warm-up steps, then rewound: the first steps after a prompt run up to twice
       * as slow while the caches refill with the weights, and the figures are meant to be
       * the steady state (rewinding is exact: tested) */
      for (int32_t i = 0; !uncached && i < WARMUP_STEPS && i < r->gen; i++)
        if (kvc_seq_append(x[k].seq, &tokens[i], 1))
          return fail(r->s[k].name);
      if (!uncached && kvc_seq_rewind(x[k].seq, r->prompt_len))
        return fail(r->s[k].name);
      for (int32_t i = 0; i < r->gen; i++) {
        double *slot = &steps[k][(size_t)rep * r->gen + i];
        if (uncached && !uncached_sampled(r, i)) {
          *slot = NAN;
          continue;
        }
        if (uncached) /* the step at position p: p + 1 tokens afresh */
          kvc_seq_reset(x[k].seq);
        double t = kvc_stat_now_ms();
        kvc_status st = uncached ? kvc_seq_append(x[k].seq, all, r->prompt_len + i + 1)
                                 : kvc_seq_append(x[k].seq, &tokens[i], 1);
        *slot = kvc_stat_now_ms() - t;
        if (st)
          return fail(r->s[k].name);
        if (checked(r))
          r->s[k].max_abs_logit_diff =
              fmax(r->s[k].max_abs_logit_diff,
                   max_diff(kvc_seq_logits(x[k].seq), oracle + (size_t)(i + 1) * V, V));
        char now[64];
        snprintf(now, sizeof now, "repeat %d/%d, %s, position %d", rep + 1, r->repeats,
                 r->s[k].name, r->prompt_len + i);
        kvc_progress_step(&bar, now);
      }
      /* the floor, read right after each generation: the machine's speed drifts (its last
       * level cache is shared with other tenants), and reads taken all through the run
       * drift with the steps they are compared with */
      int64_t bytes[BENCH_MAX_BUCKETS];
      double ms[BENCH_MAX_BUCKETS];
      for (int b = 0; b < r->n_buckets; b++)
        bytes[b] = floor_bytes(r, r->buckets[b]);
      if (kvc_model_floor(floor_model, bytes, r->n_buckets, FLOOR_READS, ms))
        return fail("measuring the floor");
      for (int b = 0; b < r->n_buckets; b++)
        floor_samples[((size_t)b * r->repeats + rep) * K + j] = ms[b];
    }
    for (int k = 0; k < K; k++)
      close_run(&x[k]);
  }
  return 0;
}

/* The timed values of x[0..n) (not NAN) moved to the front; returns how many. */
static size_t timed_only(double *x, size_t n) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (!isnan(x[i]))
      x[m++] = x[i];
  return m;
}

/* Figures of strategy k from its raw step times. */
static void summarise(bench_result *r, int k, double *steps, double *cold, double *prefill) {
  bench_strategy *s = &r->s[k];
  const size_t n = (size_t)r->repeats * r->gen;
  double *tmp = malloc(n * sizeof *tmp);
  s->by_position = calloc((size_t)r->gen, sizeof *s->by_position);
  if (!tmp || !s->by_position) {
    free(tmp);
    return;
  }
  for (int32_t i = 0; i < r->gen; i++) {
    for (int rep = 0; rep < r->repeats; rep++)
      tmp[rep] = steps[(size_t)rep * r->gen + i];
    size_t m = timed_only(tmp, (size_t)r->repeats);
    s->by_position[i] = m ? kvc_stat_percentile(tmp, m, 50) : NAN;
  }
  for (int b = 0; b < r->n_buckets; b++) {
    int32_t lo, hi;
    kvc_stat_window(r->buckets[b], 4, r->prompt_len, r->prompt_len + r->gen - 1, &lo, &hi);
    size_t m = 0;
    for (int rep = 0; rep < r->repeats; rep++)
      for (int32_t p = lo; p < hi; p++)
        tmp[m++] = steps[(size_t)rep * r->gen + (p - r->prompt_len)];
    m = timed_only(tmp, m);
    s->decode_at[b] = kvc_stat_percentile(tmp, m, 50);
  }
  memcpy(tmp, steps, n * sizeof *tmp);
  size_t m = timed_only(tmp, n);
  s->decode_mean = kvc_stat_mean(tmp, m);
  s->decode_total_ms = s->decode_mean * r->gen;
  s->tokens_per_s = kvc_stat_ratio(1000.0, s->decode_mean);
  s->decode_p50 = kvc_stat_percentile(tmp, m, 50);
  s->decode_p90 = kvc_stat_percentile(tmp, m, 90);
  s->decode_p99 = kvc_stat_percentile(tmp, m, 99);
  s->cold_start_ms = kvc_stat_percentile(cold + k * r->repeats, (size_t)r->repeats, 50);
  s->prefill_ms = kvc_stat_percentile(prefill + k * r->repeats, (size_t)r->repeats, 50);
  free(tmp);
}

/* Both attention operators alone on this model's sizes, side by side (see bench.h). */
static int bench_attention(kvc_model *model, bench_result *r) {
  if (r->model.attention == KVC_ATTENTION_CONCAT || strcmp(r->model.provider, "cpu") != 0)
    return 0;
  const int32_t at[2] = {r->buckets[0], r->buckets[r->n_buckets - 1]};
  const kvc_attention kinds[2] = {KVC_ATTENTION_GQA, KVC_ATTENTION_KVCACHE};
  for (int k = 0; k < 2; k++)
    if (kvc_model_attention_ms(model, kinds[k], at, 2, 40, r->attention_ms[k]))
      return fail("timing the attention alone");
  const int64_t f32_bytes =
      (int64_t)2 * r->model.layers * r->model.kv_heads * r->model.head_dim * 4;
  r->attention_cache_bytes[0] = f32_bytes * (at[1] + 1);
  r->attention_cache_bytes[1] = r->model.cache_bytes_per_token * (at[1] + 1);
  return 0;
}

static int parse_batches(const char *cmd, const char *text, void *target) {
  (void)cmd;
  bench_result *r = target;
  int32_t *ids = NULL;
  const int n = kvc_arg_parse_ids(text, &ids);
  int bad = n < 1 || n > BENCH_MAX_BATCHES;
  for (const char *c = text; *c && !bad; c++) /* sizes and single commas between them only */
    bad = *c == ',' ? c == text || c[1] == ',' || c[1] == '\0' : *c < '0' || *c > '9';
  for (int i = 0; i < n && !bad; i++) {
    bad = ids[i] < 1 || ids[i] > 256;
    r->batch[i].size = ids[i];
  }
  free(ids);
  if (bad) {
    fprintf(stderr,
            "kvcache bench: --batch expects 1 to %d sizes in 1..256 separated by commas, got "
            "'%s'\n",
            BENCH_MAX_BATCHES, text);
    return 1;
  }
  r->n_batches = n;
  return 0;
}

/* --kv-types: cache element types (not auto) separated by commas, each once, into r->types. */
static int parse_kv_types(const char *cmd, const char *text, void *target) {
  bench_result *r = target;
  const char *const *names = kvc_arg_kv_type_names();
  int bad = !*text;
  r->n_types = 0;
  for (const char *p = text; *p && !bad;) {
    const size_t n = strcspn(p, ",");
    int found = -1;
    for (int t = KVC_KV_TYPE_AUTO + 1; names[t]; t++)
      if (n == strlen(names[t]) && !strncmp(p, names[t], n))
        found = t;
    for (int k = 0; k < r->n_types && found >= 0; k++)
      found = r->types[k].type == (kvc_kv_type)found ? -1 : found;
    bad = found < 0 || r->n_types == BENCH_MAX_TYPES || (p[n] == ',' && !p[n + 1]);
    if (!bad)
      r->types[r->n_types++] = (bench_type){.type = (kvc_kv_type)found};
    p += n + (p[n] == ',');
  }
  if (bad)
    fprintf(stderr,
            "kvcache %s: --kv-types expects cache types among f32, f16 and q8, each once, "
            "separated by commas, got '%s'\n",
            cmd, text);
  return bad;
}

/* The strategies, in the order they are measured (uncached first: its logits are the oracle). */
static const struct {
  const char *name;
  kvc_kv_mode mode;
} strategies[BENCH_MAX_STRATEGIES] = {{"uncached", KVC_KV_UNCACHED},
                                      {"naive", KVC_KV_NAIVE},
                                      {"bound", KVC_KV_BOUND},
                                      {"shared", KVC_KV_SHARED}};

/* Above this many bytes of weights uncached is left out unless asked for: its steps are
 * whole-sequence recomputes (at 243 M parameters, hours for a default run). */
#define UNCACHED_DEFAULT_MAX_BYTES (256.0 * 1024 * 1024)

/* --strategies: names separated by commas, into a bit mask of strategies[]. */
static int parse_strategies(const char *cmd, const char *text, void *target) {
  int *mask = target, bad = !*text;
  *mask = 0;
  for (const char *p = text; *p && !bad;) {
    const size_t n = strcspn(p, ",");
    int found = -1;
    for (int k = 0; k < BENCH_MAX_STRATEGIES; k++)
      if (n == strlen(strategies[k].name) && !strncmp(p, strategies[k].name, n))
        found = k;
    bad = found < 0 || (*mask & (1 << found)) || (p[n] == ',' && !p[n + 1]);
    *mask |= found >= 0 ? 1 << found : 0;
    p += n + (p[n] == ',');
  }
  if (bad)
    fprintf(stderr,
            "kvcache %s: --strategies expects names among uncached, naive, bound and shared, "
            "each once, separated by commas, got '%s'\n",
            cmd, text);
  return bad;
}

/* The output files, in the order of kvc_cmd_bench's out[]. */
static const char *const output_options[4] = {"--json", "--csv", "--plot", "--report"};

static int parse(int argc, char **argv, kvc_model_params *mp, const char **dir, bench_result *r,
                 uint64_t *seed, const char *out[4], int *quiet, int *chosen) {
  kvc_opt opts[] = {
      KVC_CUSTOM("--strategies", "LIST", chosen, parse_strategies,
                 "the strategies to measure, e.g. naive,shared (default: every one\n"
                 "the graph supports; uncached only for weights up to 256 MiB, as\n"
                 "its steps recompute the whole sequence: name it to measure it.\n"
                 "Without uncached the logits are not checked)"),
      KVC_INT32("--prompt-len", "N", &r->prompt_len, 1, 1 << 24, "prompt tokens (128)"),
      KVC_INT32("--gen", "N", &r->gen, 1, 1 << 24, "decode steps after the prompt (384)"),
      KVC_INT32("--repeats", "N", &r->repeats, 1, 1 << 24, "timed repeats, interleaved (5)"),
      KVC_UINT64("--seed", "S", seed, "seed of the random prompt (1)"),
      KVC_CUSTOM("--batch", "LIST", r, parse_batches,
                 "also measure many sequences decoding together, e.g. 1,2,4,8,16:\n"
                 "tokens/s, step p50/p99 and the floor (weights + every row's\n"
                 "cache) per batch size, at mean position 3/8 + 1/8 of max length"),
      KVC_CUSTOM("--kv-types", "LIST", r, parse_kv_types,
                 "instead of the strategies, the cache element types side by side,\n"
                 "e.g. f32,f16,q8: one model opened with each, their decode p50\n"
                 "after the prompt and their --batch tokens/s, the types taking\n"
                 "turns every repeat, and each type's ratio to the first's (the\n"
                 "table and --json only; not with --kv-type or --strategies)"),
      KVC_TEXT(output_options[0], "FILE", &out[0], "write the results as JSON"),
      KVC_TEXT(output_options[1], "FILE", &out[1],
               "write one row per strategy and decode position"),
      KVC_TEXT(output_options[2], "FILE.png", &out[2],
               "plot per-token latency against position (gnuplot)"),
      KVC_TEXT(output_options[3], "FILE.md", &out[3],
               "write a markdown report (with the plot, if --plot is given)"),
      KVC_FLAG("--quiet", quiet, "no table on stdout"),
  };
  kvc_args args = KVC_ARGS_MODEL("bench", usage, opts, mp, dir);
  const int parsed = kvc_args_parse(&args, argc, argv);
  return parsed == KVC_ARGS_GO ? 0 : parsed == 0 ? -1 : parsed; /* -1: the help was printed */
}

/* r->s from the --strategies mask (0: the default). 0, or 1 after printing why not. */
static int pick_strategies(bench_result *r, int chosen) {
  const int in_place = r->model.attention != KVC_ATTENTION_CONCAT; /* shared needs it */
  if (chosen & (1 << 3) && !in_place) {
    fprintf(stderr,
            "kvcache bench: --strategies shared needs a graph that writes its cache in place "
            "(build-model --attention gqa or kvcache); %s's attention is concat\n",
            r->model.onnx_path);
    return 1;
  }
  if (!chosen) {
    chosen = in_place ? 0xf : 0x7;
    if (r->model.param_bytes > UNCACHED_DEFAULT_MAX_BYTES) {
      chosen &= ~1;
      snprintf(r->left_out, sizeof r->left_out,
               "uncached left out: each of its steps recomputes the whole sequence of a %.0f MB "
               "model (--strategies uncached,... measures it); logits not checked",
               r->model.param_bytes / 1e6);
    }
  } else if (!(chosen & 1))
    snprintf(r->left_out, sizeof r->left_out,
             "uncached not asked for (--strategies): logits not checked against it");
  for (int k = 0; k < BENCH_MAX_STRATEGIES; k++)
    if (chosen & (1 << k))
      r->s[r->n_strategies++] = (bench_strategy){.name = strategies[k].name,
                                                 .mode = strategies[k].mode,
                                                 .max_abs_logit_diff = (chosen & 1) ? 0 : NAN};
  if (*r->left_out)
    fprintf(stderr, "kvcache bench: %s\n", r->left_out);
  return 0;
}

/* --kv-types with an option it cannot take: KVC_EXIT_USAGE after saying which; else 0. */
static int types_usage(const kvc_model_params *mp, int chosen, const char *out[4]) {
  const char *clash = mp->kv_type != KVC_KV_TYPE_AUTO ? "--kv-type"
                      : chosen                        ? "--strategies"
                      : out[1]                        ? output_options[1]
                      : out[2]                        ? output_options[2]
                      : out[3]                        ? output_options[3]
                                                      : NULL;
  if (!clash)
    return 0;
  fprintf(stderr,
          "kvcache bench: --kv-types sets each model's cache type and measures one cache "
          "mode (--kv, auto by default), writing the table and --json only: drop %s\n",
          clash);
  return KVC_EXIT_USAGE;
}

int kvc_cmd_bench(int argc, char **argv) {
  const char *dir = NULL, *out[4] = {NULL}; /* json, csv, plot, report */
  kvc_model_params mp = kvc_model_default_params();
  bench_result *r = calloc(1, sizeof *r);
  uint64_t seed = 1;
  int quiet = 0, chosen = 0;
  if (!r)
    return 1;
  r->prompt_len = 128, r->gen = 384, r->repeats = 5;
  int rc = parse(argc, argv, &mp, &dir, r, &seed, out, &quiet, &chosen);
  for (int f = 0; f < 4 && !rc; f++)
    if (out[f] && bench_check_output(output_options[f], out[f]))
      rc = KVC_EXIT_USAGE;
  if (rc) {
    free(r);
    return rc < 0 ? 0 : rc;
  }
  if (r->n_types) {
    rc = types_usage(&mp, chosen, out);
    if (!rc)
      rc = bench_types(dir, &mp, r, seed, out[0], quiet);
    free(r);
    return rc;
  }
  kvc_model *model = NULL;
  const double open_start = kvc_stat_now_ms();
  if ((rc = kvc_arg_open_model("bench", dir, &mp, &model))) {
    free(r);
    return rc;
  }
  r->load_ms = kvc_stat_now_ms() - open_start;
  r->resident_after_open_bytes = rss_bytes();
  kvc_model_get_info(model, &r->model);
  if (r->prompt_len + r->gen > r->model.max_seq_len) {
    fprintf(stderr, "kvcache bench: --prompt-len %d + --gen %d exceeds the max length %d\n",
            r->prompt_len, r->gen, r->model.max_seq_len);
    kvc_model_free(model);
    free(r);
    return KVC_EXIT_USAGE;
  }
  if (pick_strategies(r, chosen)) {
    kvc_model_free(model);
    free(r);
    return KVC_EXIT_USAGE;
  }
  bench_machine(r, &mp);
  r->n_buckets = (int)kvc_stat_buckets(r->prompt_len, r->prompt_len + r->gen - 1, r->buckets,
                                       BENCH_MAX_BUCKETS);

  /* the prompt (seeded) and its greedy continuation, chosen once */
  int32_t *all = bench_greedy_tokens(model, r, seed);
  int32_t *prompt = all, *tokens = all ? all + r->prompt_len : NULL;
  float *oracle = malloc((size_t)(r->gen + 1) * r->model.vocab_size * sizeof *oracle);
  const int K = r->n_strategies;
  int disagree = 0; /* a cached strategy beyond KVC_AGREEMENT_LIMIT from the recompute */
  double *steps[BENCH_MAX_STRATEGIES] = {0};
  double *cold = calloc((size_t)K * r->repeats, sizeof *cold);
  double *prefill = calloc((size_t)K * r->repeats, sizeof *prefill);
  for (int k = 0; k < K; k++)
    steps[k] = calloc((size_t)r->repeats * r->gen, sizeof *steps[k]);
  rc = !oracle || !cold || !prefill;
  for (int k = 0; k < K; k++)
    rc |= !steps[k];
  if (rc)
    fprintf(stderr, "kvcache bench: out of memory\n");
  rc |= !all; /* bench_greedy_tokens said why */

  if (!rc)
    rc = memory_pass(dir, &mp, r, prompt, tokens, oracle);
  const size_t floor_n = (size_t)r->repeats * K; /* floor medians per bucket */
  double *floor_samples = calloc((size_t)r->n_buckets * floor_n, sizeof(double));
  if (!rc && !floor_samples) {
    fprintf(stderr, "kvcache bench: out of memory\n");
    rc = 1;
  }
  if (!rc)
    rc = timed_pass(dir, &mp, r, all, oracle, steps, cold, prefill, model, floor_samples);
  for (int b = 0; !rc && b < r->n_buckets; b++)
    r->floor_at[b] = kvc_stat_percentile(floor_samples + (size_t)b * floor_n, floor_n, 50);
  free(floor_samples);
  if (!rc)
    rc = bench_attention(model, r);
  if (!rc && r->n_batches)
    rc = bench_batches(model, r, r->repeats < 3 ? r->repeats : 3, seed);
  if (!rc)
    rc = bench_state(model, r, all);
  kvc_model_free(model);
  if (!rc) {
    for (int k = 0; k < K; k++)
      summarise(r, k, steps[k], cold, prefill);
    int u = bench_find(r, "uncached"), b = bench_find(r, "bound");
    if (b >= 0)
      r->first_vs_subsequent = kvc_stat_ratio(r->s[b].prefill_ms, r->s[b].decode_p50);
    if (u >= 0 && b >= 0) {
      r->cached_vs_uncached_last =
          kvc_stat_ratio(r->s[u].decode_at[r->n_buckets - 1], r->s[b].decode_at[r->n_buckets - 1]);
      r->cached_vs_uncached_total =
          kvc_stat_ratio(r->s[u].decode_total_ms, r->s[b].decode_total_ms);
    }
    int sh = bench_find(r, "shared");
    r->shared_vs_bound_last = sh < 0 || b < 0
                                  ? 0
                                  : kvc_stat_ratio(r->s[b].decode_at[r->n_buckets - 1],
                                                   r->s[sh].decode_at[r->n_buckets - 1]);
    if (sh >= 0 && r->n_buckets > 1) {
      const int last = r->n_buckets - 1;
      const double step = r->s[sh].decode_at[last] - r->s[sh].decode_at[0];
      const double floor = r->floor_at[last] - r->floor_at[0];
      r->cache_growth_bytes =
          (int64_t)(r->buckets[last] - r->buckets[0]) * r->model.cache_bytes_per_token;
      r->cache_step_growth_ms = step;
      r->cache_floor_growth_ms = floor;
      r->cache_read_gb_s = step > 0 ? r->cache_growth_bytes / (step * 1e6) : 0;
      r->floor_cache_read_gb_s = floor > 0 ? r->cache_growth_bytes / (floor * 1e6) : 0;
      r->cache_growth_vs_floor = floor > 0 ? step / floor : 0;
    }
    if (!quiet)
      bench_print_table(r, stdout);
    for (int k = 0; k < K; k++)
      if (r->s[k].max_abs_logit_diff > KVC_AGREEMENT_LIMIT) {
        fprintf(stderr,
                "kvcache bench: FAIL: %s's logits differ from the uncached recompute by %.3g "
                "(limit %g; `kvcache verify -m %s` names the position)\n",
                r->s[k].name, r->s[k].max_abs_logit_diff, KVC_AGREEMENT_LIMIT, dir);
        disagree = 1;
      }
    if (out[0])
      rc |= bench_write_json(r, out[0]);
    if (out[1])
      rc |= bench_write_csv(r, out[1]);
    if (out[2])
      rc |= bench_write_plot(r, out[2]);
    if (out[3])
      rc |= bench_write_report(r, out[3], out[2]);
    for (int f = 0; f < 4; f++)
      if (out[f] && !rc)
        fprintf(stderr, "wrote %s\n", out[f]);
  }
  for (int k = 0; k < K; k++) {
    free(steps[k]);
    free(r->s[k].by_position);
  }
  free(cold), free(prefill), free(all), free(oracle), free(r);
  return rc ? rc : disagree;
}
