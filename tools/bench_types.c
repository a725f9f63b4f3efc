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

/* The floor of a run that reads `cache` bytes of type t's cache a step beside the weights,
 * into *ms: read right after the run, as the strategies' are (cmd_bench.c). */
static int floor_of(kvc_model *model, const bench_result *r, int t, double cache, double *ms) {
  const int64_t bytes = bench_step_weight_bytes(r) + (int64_t)cache;
  return kvc_model_floor(model, &bytes, 1, FLOOR_READS, ms)
             ? fail("measuring the floor", r->types[t].type)
             : 0;
}

/* Where run j of type t keeps its figure and floor of each repeat (see measure). */
static size_t slot(const bench_result *r, int t, int j) {
  return ((size_t)t * (1 + r->n_batches) + (size_t)j) * (size_t)r->repeats;
}

/* The timed repeats: decode_ms[t][rep * gen + i]; batch_ms[t * n_batches + k] holds size k's
 * steps (batch_steps a repeat). Per repeat, at slot(t, j) + rep with j = 0 for the decode and
 * 1 + k for size k: the run's floor, and in per_rep its figure (the decode's median step, a
 * size's tokens/s), from which the ratios of each repeat follow. */
static int measure(kvc_model **models, bench_result *r, const int32_t *all, const int32_t *prompts,
                   double **decode_ms, double **batch_ms, double *per_rep, double *floors) {
  const int T = r->n_types, R = r->repeats;
  const double mean = r->batch_first + (r->batch_steps - 1) / 2.0; /* the batches' position */
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
      const size_t at = slot(r, t, 0) + (size_t)rep;
      double *steps = decode_ms[t] + (size_t)rep * r->gen;
      if (decode(models[t], r, type, all, steps) ||
          floor_of(models[t], r, t, (r->prompt_len + (r->gen - 1) / 2.0) * per_token, &floors[at]))
        return 1;
      per_rep[at] = kvc_stat_percentile(steps, (size_t)r->gen, 50); /* sorts them: no matter */
      kvc_progress_step(&bar, now);
      for (int k = 0; k < r->n_batches; k++) {
        const size_t at_k = slot(r, t, 1 + k) + (size_t)rep;
        double *mine = batch_ms[t * r->n_batches + k] + (size_t)rep * r->batch_steps;
        const int32_t B = r->batch[k].size;
        if (bench_batch_size(models[t], r, B, prompts, mine) ||
            floor_of(models[t], r, t, B * mean * per_token, &floors[at_k]))
          return 1;
        double total = 0;
        for (int32_t i = 0; i < r->batch_steps; i++)
          total += mine[i];
        per_rep[at_k] = kvc_stat_ratio((double)B * r->batch_steps * 1e3, total);
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

/* The median of n figures, left in their order (tmp: n values of scratch). */
static double median(const double *x, size_t n, double *tmp) {
  memcpy(tmp, x, n * sizeof *tmp);
  return kvc_stat_percentile(tmp, n, 50);
}

/* range = the least and the most over the repeats of run j's speed-up of type t over the first
 * (a time's first / mine, a rate's mine / first). */
static void range_of(const bench_result *r, const double *per_rep, int t, int j, int is_time,
                     double range[2]) {
  const double *first = per_rep + slot(r, 0, j), *mine = per_rep + slot(r, t, j);
  for (int rep = 0; rep < r->repeats; rep++) {
    const double x =
        is_time ? kvc_stat_ratio(first[rep], mine[rep]) : kvc_stat_ratio(mine[rep], first[rep]);
    range[0] = rep == 0 || x < range[0] ? x : range[0];
    range[1] = rep == 0 || x > range[1] ? x : range[1];
  }
}

/* Type t's figures from its raw times (see measure). */
static void summarise(bench_result *r, int t, double **decode_ms, double **batch_ms,
                      const double *per_rep, const double *floors, double *tmp) {
  bench_type *b = &r->types[t];
  const size_t R = (size_t)r->repeats;
  b->decode_p50 = kvc_stat_percentile(decode_ms[t], R * r->gen, 50);
  b->decode_floor = median(floors + slot(r, t, 0), R, tmp);
  range_of(r, per_rep, t, 0, 1, b->decode_range);
  for (int k = 0; k < r->n_batches; k++) {
    const size_t at = slot(r, t, 1 + k);
    b->step_p50[k] = kvc_stat_percentile(batch_ms[t * r->n_batches + k], R * r->batch_steps, 50);
    b->tokens_per_s[k] = median(per_rep + at, R, tmp);
    b->batch_floor[k] = median(floors + at, R, tmp);
    range_of(r, per_rep, t, 1 + k, 0, b->batch_range[k]);
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
    rc = kvc_arg_open_model("bench", dir, &p, &models[t]);
    kvc_model_info info;
    if (!rc && !kvc_model_get_info(models[t], &info)) {
      r->types[t].cache_bytes_per_token = info.cache_bytes_per_token;
      if (t == 0)
        r->model = info;
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
  double *per_rep = NULL, *floors = NULL;
  if (!rc) {
    bench_machine(r, mp);
    all = bench_greedy_tokens(models[0], r, seed);
    prompts = bench_batch_plan(r, most > 0 ? most : 1, seed);
    per_rep = calloc(slot(r, T, 0), sizeof *per_rep);
    floors = calloc(slot(r, T, 0), sizeof *floors);
    int missing = !prompts || !per_rep || !floors;
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
    rc = measure(models, r, all, prompts, decode_ms, batch_ms, per_rep, floors);
  double *tmp = rc ? NULL : malloc((size_t)r->repeats * sizeof *tmp);
  if (!rc && !tmp) {
    fprintf(stderr, "kvcache bench --kv-types: out of memory\n");
    rc = 1;
  }
  if (!rc) {
    for (int t = 0; t < T; t++)
      summarise(r, t, decode_ms, batch_ms, per_rep, floors, tmp);
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
  free(all), free(prompts), free(per_rep), free(floors), free(tmp);
  return rc;
}
