/* bench_types.c: `kvcache bench --kv-types f32,f16,q8`: one model with its cache in each
 * element type, side by side in one process. A type's figures from separate runs move with the
 * machine's speed between them (on a shared host by a third from one minute to the next:
 * PERFORMANCE #75-#81); here every repeat runs each type's decode steps and batches in turn, the
 * order rotating, so that drift hits them alike, and the ratios to the first type come from the
 * same minutes. The models stay open together: each type's weights are packed once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "bench.h"
#include "progress.h"
#include "stats.h"

enum {
  WARMUP_STEPS = 16, /* as the strategies' (cmd_bench.c): the steady state is measured */
  FLOOR_READS = 20,  /* timed reads of a floor, right after the run it is the floor of */
};

static int fail(const char *what, kvc_kv_type type) {
  fprintf(stderr, "kvcache bench --kv-types: %s (%s cache): %s\n", what, kvc_kv_type_name(type),
          kvc_last_error());
  return 1;
}

/* One repeat of a type's decode: the prompt, warm-up steps, a rewind to the prompt, then the
 * timed steps of all's tokens after it (their ms into ms). */
static int decode(kvc_model *model, const bench_result *r, kvc_kv_type type, const int32_t *all,
                  double *ms) {
  kvc_seq *seq = NULL;
  int rc = kvc_seq_new(model, NULL, &seq) || kvc_seq_append(seq, all, r->prompt_len);
  for (int32_t i = 0; !rc && i < WARMUP_STEPS && i < r->gen; i++)
    rc = kvc_seq_append(seq, all + r->prompt_len + i, 1) != KVC_OK;
  rc = rc || kvc_seq_rewind(seq, r->prompt_len);
  for (int32_t i = 0; !rc && i < r->gen; i++) {
    const double t = kvc_stat_now_ms();
    rc = kvc_seq_append(seq, all + r->prompt_len + i, 1) != KVC_OK;
    ms[i] = kvc_stat_now_ms() - t;
  }
  kvc_seq_free(seq);
  return rc ? fail("decoding", type) : 0;
}

/* The prompt (seeded) and the first type's greedy continuation: every type decodes the same
 * tokens, so each step's work is the same. */
static int32_t *tokens(kvc_model *model, const bench_result *r, uint64_t seed) {
  int32_t *all = malloc((size_t)(r->prompt_len + r->gen) * sizeof *all);
  kvc_seq *seq = NULL;
  int rc = !all;
  if (all)
    kvc_arg_random_tokens(seed, all, r->prompt_len, r->model.vocab_size);
  rc = rc || kvc_seq_new(model, NULL, &seq) || kvc_seq_append(seq, all, r->prompt_len);
  for (int32_t i = 0; !rc && i < r->gen; i++) {
    all[r->prompt_len + i] = kvc_stat_argmax(kvc_seq_logits(seq), r->model.vocab_size);
    rc = kvc_seq_append(seq, all + r->prompt_len + i, 1) != KVC_OK;
  }
  kvc_seq_free(seq);
  if (rc) {
    fprintf(stderr, "kvcache bench --kv-types: choosing the greedy tokens: %s\n",
            all ? kvc_last_error() : "out of memory");
    free(all);
    return NULL;
  }
  return all;
}

/* The floor of a run that reads `cache` bytes of type t's cache a step beside the weights,
 * into *ms: read right after the run, as the strategies' are (cmd_bench.c). */
static int floor_of(kvc_model *model, const bench_result *r, int t, double cache, double *ms) {
  const int64_t bytes = bench_step_weight_bytes(r) + (int64_t)cache;
  return kvc_model_floor(model, &bytes, 1, FLOOR_READS, ms)
             ? fail("measuring the floor", r->types[t].type)
             : 0;
}

/* The timed repeats: decode_ms[t][rep * gen + i]; batch_ms[t * n_batches + k] holds size k's
 * steps (batch_steps a repeat). Per repeat, at [t * (1 + n_batches) + j] * repeats + rep with
 * j = 0 for the decode and 1 + k for size k: floors, and tokens/s in tps (decode: 0). */
static int measure(kvc_model **models, bench_result *r, const int32_t *all, const int32_t *prompts,
                   double **decode_ms, double **batch_ms, double *tps, double *floors) {
  const int T = r->n_types, R = r->repeats;
  kvc_progress bar; /* a run: one type's decode steps, or one batch size's */
  kvc_progress_start(&bar, "bench", "cache types in turn", "runs",
                     (int64_t)T * R * (1 + r->n_batches));
  for (int rep = 0; rep < R; rep++)
    for (int j = 0; j < T; j++) {
      const int t = (rep + j) % T; /* rotate which type goes first */
      const kvc_kv_type type = r->types[t].type;
      char now[64];
      snprintf(now, sizeof now, "repeat %d/%d, %s cache", rep + 1, R, kvc_kv_type_name(type));
      const int64_t per_token = r->types[t].cache_bytes_per_token;
      const size_t first = (size_t)t * (1 + r->n_batches) * R + rep; /* this decode's */
      if (decode(models[t], r, type, all, decode_ms[t] + (size_t)rep * r->gen) ||
          floor_of(models[t], r, t, (r->prompt_len + (r->gen - 1) / 2.0) * per_token,
                   &floors[first]))
        return 1;
      kvc_progress_step(&bar, now);
      for (int k = 0; k < r->n_batches; k++) {
        const size_t at = first + (size_t)(1 + k) * R;
        double *mine = batch_ms[t * r->n_batches + k] + (size_t)rep * r->batch_steps;
        const int32_t B = r->batch[k].size;
        const double mean = r->batch_first + (r->batch_steps - 1) / 2.0;
        if (bench_batch_size(models[t], r, B, prompts, mine) ||
            floor_of(models[t], r, t, B * mean * per_token, &floors[at]))
          return 1;
        double total = 0;
        for (int32_t i = 0; i < r->batch_steps; i++)
          total += mine[i];
        tps[at] = kvc_stat_ratio((double)B * r->batch_steps * 1e3, total);
        kvc_progress_step(&bar, now);
      }
    }
  return 0;
}

static void print_table(const bench_result *r, FILE *out) {
  const bench_type *first = &r->types[0];
  const char *f = kvc_kv_type_name(first->type);
  fprintf(out, "machine: ");
  bench_machine_line(r, out);
  fprintf(out, "model: %s\n", r->model.onnx_path);
  fprintf(out,
          "cache types side by side: %d repeats, the types in turn; decode p50 over %d steps after "
          "a %d-token prompt",
          r->repeats, r->gen, r->prompt_len);
  if (r->n_batches)
    fprintf(out, "; batches at mean position %.1f", r->batch_first + (r->batch_steps - 1) / 2.0);
  fprintf(out,
          "\n(x %s: bytes as a share of %s's; times and tokens/s as speed-ups over %s's, with the "
          "least and the most of them one repeat at a time. /floor: the step over the time to "
          "read the weights and its cache once)\n",
          f, f, f);
  fprintf(out, "%-5s %12s %7s %14s %7s %17s", "type", "bytes/token", "x", "decode p50 ms", "/floor",
          "x (range)");
  for (int k = 0; k < r->n_batches; k++) {
    char head[32];
    snprintf(head, sizeof head, "batch %d tok/s", r->batch[k].size);
    fprintf(out, " %15s %7s %17s", head, "/floor", "x (range)");
  }
  fputc('\n', out);
  for (int t = 0; t < r->n_types; t++) {
    const bench_type *b = &r->types[t];
    fprintf(out, "%-5s %12lld %6.2fx %14.3f %7.2f %6.2fx (%.2f-%.2f)", kvc_kv_type_name(b->type),
            (long long)b->cache_bytes_per_token,
            (double)b->cache_bytes_per_token / (double)first->cache_bytes_per_token, b->decode_p50,
            kvc_stat_ratio(b->decode_p50, b->decode_floor),
            kvc_stat_ratio(first->decode_p50, b->decode_p50), b->decode_range[0],
            b->decode_range[1]);
    for (int k = 0; k < r->n_batches; k++)
      fprintf(out, " %15.1f %7.2f %6.2fx (%.2f-%.2f)", b->tokens_per_s[k],
              kvc_stat_ratio(b->step_p50[k], b->batch_floor[k]),
              kvc_stat_ratio(b->tokens_per_s[k], first->tokens_per_s[k]), b->batch_range[k][0],
              b->batch_range[k][1]);
    fputc('\n', out);
  }
}

static int write_json(const bench_result *r, const char *path) {
  const bench_type *first = &r->types[0];
  cJSON *root = bench_json_root(r);
  cJSON *model = cJSON_AddObjectToObject(root, "model");
  cJSON_AddStringToObject(model, "path", r->model.onnx_path);
  cJSON_AddNumberToObject(model, "param_bytes", (double)r->model.param_bytes);
  cJSON_AddNumberToObject(model, "weight_bits", r->model.weight_bits);
  bench_json_name(model, "attention_kernel", r->model.attention_kernel);
  bench_json_name(model, "matmul_kernel", r->model.matmul_kernel);
  cJSON *run = cJSON_AddObjectToObject(root, "run");
  cJSON_AddNumberToObject(run, "prompt_len", r->prompt_len);
  cJSON_AddNumberToObject(run, "gen", r->gen);
  cJSON_AddNumberToObject(run, "repeats", r->repeats);
  if (r->n_batches)
    cJSON_AddNumberToObject(run, "batch_mean_position",
                            r->batch_first + (r->batch_steps - 1) / 2.0);
  cJSON_AddStringToObject(root, "first", kvc_kv_type_name(first->type));
  cJSON *types = cJSON_AddObjectToObject(root, "kv_types");
  for (int t = 0; t < r->n_types; t++) {
    const bench_type *b = &r->types[t];
    cJSON *o = cJSON_AddObjectToObject(types, kvc_kv_type_name(b->type));
    cJSON_AddNumberToObject(o, "cache_bytes_per_token", (double)b->cache_bytes_per_token);
    cJSON_AddNumberToObject(o, "bytes_vs_first",
                            (double)b->cache_bytes_per_token /
                                (double)first->cache_bytes_per_token);
    cJSON_AddNumberToObject(o, "decode_ms_p50", b->decode_p50);
    cJSON_AddNumberToObject(o, "decode_floor_ms", b->decode_floor);
    cJSON_AddNumberToObject(o, "decode_over_floor", kvc_stat_ratio(b->decode_p50, b->decode_floor));
    cJSON_AddNumberToObject(o, "decode_speedup_vs_first",
                            kvc_stat_ratio(first->decode_p50, b->decode_p50));
    cJSON_AddItemToObject(o, "decode_speedup_range", cJSON_CreateDoubleArray(b->decode_range, 2));
    cJSON *batch = cJSON_AddObjectToObject(o, "batch");
    for (int k = 0; k < r->n_batches; k++) {
      char key[16];
      snprintf(key, sizeof key, "%d", r->batch[k].size);
      cJSON *s = cJSON_AddObjectToObject(batch, key);
      cJSON_AddNumberToObject(s, "tokens_per_s", b->tokens_per_s[k]);
      cJSON_AddNumberToObject(s, "step_ms_p50", b->step_p50[k]);
      cJSON_AddNumberToObject(s, "floor_ms", b->batch_floor[k]);
      cJSON_AddNumberToObject(s, "step_over_floor",
                              kvc_stat_ratio(b->step_p50[k], b->batch_floor[k]));
      cJSON_AddNumberToObject(s, "tokens_per_s_vs_first",
                              kvc_stat_ratio(b->tokens_per_s[k], first->tokens_per_s[k]));
      cJSON_AddItemToObject(s, "tokens_per_s_vs_first_range",
                            cJSON_CreateDoubleArray(b->batch_range[k], 2));
    }
  }
  if (bench_json_write(root, path))
    return 1;
  fprintf(stderr, "wrote %s\n", path);
  return 0;
}

/* The median of a repeat's n steps (tmp: n values of scratch). */
static double median(const double *ms, size_t n, double *tmp) {
  memcpy(tmp, ms, n * sizeof *tmp);
  return kvc_stat_percentile(tmp, n, 50);
}

/* range[0..1] = the least and the most of speedup(rep) over the repeats. */
static void spread(double range[2], int repeats, double (*speedup)(const void *, int),
                   const void *data) {
  range[0] = range[1] = speedup(data, 0);
  for (int rep = 1; rep < repeats; rep++) {
    const double x = speedup(data, rep);
    range[0] = x < range[0] ? x : range[0];
    range[1] = x > range[1] ? x : range[1];
  }
}

typedef struct pair {
  const double *first, *mine; /* the first type's and this type's figures, per repeat */
  size_t n;                   /* decode steps a repeat; 0: one tokens/s a repeat */
  double *tmp;
} pair;

static double speedup_of(const void *data, int rep) {
  const pair *p = data;
  if (!p->n)
    return kvc_stat_ratio(p->mine[rep], p->first[rep]);
  return kvc_stat_ratio(median(p->first + rep * p->n, p->n, p->tmp),
                        median(p->mine + rep * p->n, p->n, p->tmp));
}

/* Type t's figures from its raw times (see measure). */
static void summarise(bench_result *r, int t, double **decode_ms, double **batch_ms, double *tps,
                      double *floors, double *tmp) {
  bench_type *b = &r->types[t];
  const size_t R = (size_t)r->repeats, first = (size_t)t * (1 + r->n_batches) * R;
  const pair d = {decode_ms[0], decode_ms[t], (size_t)r->gen, tmp};
  spread(b->decode_range, r->repeats, speedup_of, &d);
  for (int k = 0; k < r->n_batches; k++) {
    const pair p = {tps + (size_t)(1 + k) * R, tps + first + (size_t)(1 + k) * R, 0, tmp};
    spread(b->batch_range[k], r->repeats, speedup_of, &p);
  }
  b->decode_p50 = kvc_stat_percentile(decode_ms[t], R * r->gen, 50);
  b->decode_floor = kvc_stat_percentile(floors + first, R, 50);
  for (int k = 0; k < r->n_batches; k++) {
    const size_t at = first + (size_t)(1 + k) * R;
    b->step_p50[k] = kvc_stat_percentile(batch_ms[t * r->n_batches + k], R * r->batch_steps, 50);
    b->tokens_per_s[k] = kvc_stat_percentile(tps + at, R, 50);
    b->batch_floor[k] = kvc_stat_percentile(floors + at, R, 50);
  }
}

int bench_types(const char *dir, const kvc_model_params *mp, bench_result *r, uint64_t seed,
                const char *json, int quiet) {
  const int T = r->n_types;
  kvc_model *models[BENCH_MAX_TYPES] = {0};
  int rc = 0;
  for (int t = 0; t < T && !rc; t++) {
    kvc_model_params p = *mp;
    p.kv_type = r->types[t].type;
    const double t0 = kvc_stat_now_ms();
    rc = kvc_arg_open_model("bench", dir, &p, &models[t]);
    kvc_model_info info;
    if (!rc && !kvc_model_get_info(models[t], &info)) {
      r->types[t].cache_bytes_per_token = info.cache_bytes_per_token;
      if (t == 0)
        r->model = info, r->load_ms = kvc_stat_now_ms() - t0;
    }
  }
  if (!rc && r->prompt_len + r->gen > r->model.max_seq_len) {
    fprintf(stderr, "kvcache bench: --prompt-len %d + --gen %d exceeds the max length %d\n",
            r->prompt_len, r->gen, r->model.max_seq_len);
    rc = KVC_EXIT_USAGE;
  }
  int32_t most = 0;
  for (int k = 0; k < r->n_batches; k++)
    most = r->batch[k].size > most ? r->batch[k].size : most;
  int32_t *all = NULL, *prompts = NULL;
  double *decode_ms[BENCH_MAX_TYPES] = {0}, *batch_ms[BENCH_MAX_TYPES * BENCH_MAX_BATCHES] = {0};
  double *tps = NULL, *floors = NULL;
  if (!rc) {
    bench_machine(r, mp);
    all = tokens(models[0], r, seed);
    prompts = bench_batch_plan(r, most > 0 ? most : 1, seed);
    tps = calloc((size_t)T * (r->n_batches + 1) * r->repeats, sizeof *tps);
    floors = calloc((size_t)T * (r->n_batches + 1) * r->repeats, sizeof *floors);
    int missing = !prompts || !tps || !floors;
    for (int t = 0; t < T; t++) {
      decode_ms[t] = calloc((size_t)r->repeats * r->gen, sizeof *decode_ms[t]);
      missing |= !decode_ms[t];
      for (int k = 0; k < r->n_batches; k++) {
        double **b = &batch_ms[t * r->n_batches + k];
        *b = calloc((size_t)r->repeats * r->batch_steps, sizeof **b);
        missing |= !*b;
      }
    }
    if (missing)
      fprintf(stderr, "kvcache bench --kv-types: out of memory\n");
    rc = !all || missing;
  }
  if (!rc)
    rc = measure(models, r, all, prompts, decode_ms, batch_ms, tps, floors);
  double *tmp = rc ? NULL : malloc((size_t)r->gen * sizeof *tmp);
  if (!rc && !tmp) {
    fprintf(stderr, "kvcache bench --kv-types: out of memory\n");
    rc = 1;
  }
  if (!rc) {
    /* the first type's raw figures last: every type's spread compares with them unsorted */
    for (int t = T - 1; t >= 0; t--)
      summarise(r, t, decode_ms, batch_ms, tps, floors, tmp);
    if (!quiet)
      print_table(r, stdout);
    if (json)
      rc = write_json(r, json);
  }
  for (int t = 0; t < T; t++) {
    free(decode_ms[t]);
    for (int k = 0; k < r->n_batches; k++)
      free(batch_ms[t * r->n_batches + k]);
    kvc_model_free(models[t]);
  }
  free(all), free(prompts), free(tps), free(floors), free(tmp);
  return rc;
}
