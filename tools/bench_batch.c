/* bench_batch.c: what every part of the benchmark decodes (the prompt and its greedy
 * continuation), and `kvcache bench --batch 1,2,4,8,16`: tokens/s of B sequences decoding
 * together, each step one kvc_seq_append_batch over a context of B slots, against the floor of
 * reading the weights and all B caches once. Every size decodes the same positions (the mean
 * position is what the report states), and the sizes take turns, repeat after repeat, so
 * that the machine's drift hits them alike. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "bench.h"
#include "stats.h"

enum { WARMUP = 8, FLOOR_READS = 20 };

static int fail(const char *what) {
  fprintf(stderr, "kvcache bench --batch: %s: %s\n", what, kvc_last_error());
  return 1;
}

/* Prefill B prompts, WARMUP untimed steps, rewind, then the timed steps. Greedy tokens, so
 * each row decodes a real continuation. */
int bench_batch_size(kvc_model *model, const bench_result *r, int32_t B, const int32_t *prompts,
                     double *step_ms) {
  const int32_t V = r->model.vocab_size, first = r->batch_first;
  kvc_ctx_params cp = kvc_ctx_default_params();
  cp.slots = B;
  kvc_ctx *ctx = NULL;
  kvc_seq **seq = calloc((size_t)B, sizeof *seq);
  kvc_batch_item *items = calloc((size_t)B, sizeof *items);
  int32_t *tok = calloc((size_t)B, sizeof *tok);
  int rc = !seq || !items || !tok;
  if (!rc && kvc_ctx_new(model, &cp, &ctx))
    rc = fail("making a context");
  for (int32_t b = 0; !rc && b < B; b++)
    if (kvc_seq_new_in(ctx, &seq[b]) || kvc_seq_append(seq[b], prompts + (size_t)b * first, first))
      rc = fail("prefilling");
  for (int pass = 0; pass < 2 && !rc; pass++) {
    const int32_t steps = pass ? r->batch_steps : WARMUP;
    for (int32_t i = 0; i < steps && !rc; i++) {
      for (int32_t b = 0; b < B; b++) {
        tok[b] = kvc_stat_argmax(kvc_seq_logits(seq[b]), V);
        items[b] = (kvc_batch_item){seq[b], &tok[b], 1, NULL};
      }
      const double t = kvc_stat_now_ms();
      if (kvc_seq_append_batch(items, B))
        rc = fail("a batched step");
      if (pass)
        step_ms[i] = kvc_stat_now_ms() - t;
    }
    /* rewinding to the prompt is O(1) in the shared cache; the prompt's last logits are
     * gone, so the first timed step takes them from one more append of its last token */
    for (int32_t b = 0; !pass && !rc && b < B; b++)
      if (kvc_seq_rewind(seq[b], first - 1) ||
          kvc_seq_append(seq[b], prompts + (size_t)b * first + first - 1, 1))
        rc = fail("rewinding");
  }
  for (int32_t b = 0; seq && b < B; b++)
    kvc_seq_free(seq[b]);
  kvc_ctx_free(ctx);
  free(seq), free(items), free(tok);
  return rc;
}

int32_t *bench_greedy_tokens(kvc_model *model, const bench_result *r, uint64_t seed) {
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
    fprintf(stderr, "kvcache bench: choosing the greedy tokens: %s\n",
            all ? kvc_last_error() : "out of memory");
    free(all);
    return NULL;
  }
  return all;
}

int32_t *bench_batch_plan(bench_result *r, int32_t most, uint64_t seed) {
  const int32_t max = r->model.max_seq_len;
  r->batch_first = max * 3 / 8; /* 192 .. 319 for 512: mean position 256 */
  r->batch_steps = max / 4;
  int32_t *prompts = malloc((size_t)most * r->batch_first * sizeof *prompts);
  if (prompts)
    kvc_arg_random_tokens(seed + 7, prompts, (int64_t)most * r->batch_first, r->model.vocab_size);
  return prompts;
}

int bench_batches(kvc_model *model, bench_result *r, int repeats, uint64_t seed) {
  const int32_t n = r->n_batches;
  int32_t most = 0;
  for (int k = 0; k < n; k++)
    most = r->batch[k].size > most ? r->batch[k].size : most;
  int32_t *prompts = bench_batch_plan(r, most, seed);
  double *steps = malloc((size_t)n * repeats * r->batch_steps * sizeof *steps);
  double *tps = malloc((size_t)n * repeats * sizeof *tps);
  double *floors = malloc((size_t)n * repeats * sizeof *floors);
  double *tmp = malloc((size_t)repeats * r->batch_steps * sizeof *tmp);
  int rc = !prompts || !steps || !tps || !floors || !tmp;
  if (rc)
    fprintf(stderr, "kvcache bench --batch: out of memory\n");
  const double mean_pos = r->batch_first + (r->batch_steps - 1) / 2.0;
  for (int rep = 0; rep < repeats && !rc; rep++) {
    for (int j = 0; j < n && !rc; j++) {
      const int k = (rep + j) % n; /* rotate which size goes first */
      const int32_t B = r->batch[k].size;
      double *mine = steps + ((size_t)k * repeats + rep) * r->batch_steps;
      rc = bench_batch_size(model, r, B, prompts, mine);
      double total = 0;
      for (int32_t i = 0; i < r->batch_steps; i++)
        total += mine[i];
      tps[k * repeats + rep] = kvc_stat_ratio((double)B * r->batch_steps * 1e3, total);
      const int64_t bytes = bench_step_weight_bytes(r) +
                            (int64_t)(B * mean_pos * (double)r->model.cache_bytes_per_token);
      if (!rc && kvc_model_floor(model, &bytes, 1, FLOOR_READS, &floors[k * repeats + rep]))
        rc = fail("measuring the floor");
    }
  }
  for (int k = 0; k < n && !rc; k++) {
    bench_batch *b = &r->batch[k];
    const size_t m = (size_t)repeats * r->batch_steps;
    memcpy(tmp, steps + (size_t)k * m, m * sizeof *tmp);
    b->step_p50 = kvc_stat_percentile(tmp, m, 50);
    b->step_p99 = kvc_stat_percentile(tmp, m, 99);
    b->tokens_per_s = kvc_stat_percentile(tps + k * repeats, (size_t)repeats, 50);
    b->floor_ms = kvc_stat_percentile(floors + k * repeats, (size_t)repeats, 50);
  }
  /* the integer ceiling: the models whose products are kvcache's int8 ones */
  for (int k = 0; k < n && !rc && r->model.quantized_macs > 0 && r->model.matmul_kernel[0]; k++) {
    double ms = 0;
    if (kvc_model_products_ms(model, r->batch[k].size, FLOOR_READS, &ms))
      rc = fail("measuring the int8 products' rate");
    r->batch[k].int8_ms = (double)r->model.quantized_macs / (1 << 20) * ms;
  }
  kvc_ctx_info info;
  kvc_ctx *probe = NULL;
  if (!rc && !kvc_ctx_new(model, NULL, &probe) && !kvc_ctx_get_info(probe, &info))
    r->batch_mode = info.kv_mode;
  kvc_ctx_free(probe);
  free(prompts), free(steps), free(tps), free(floors), free(tmp);
  return rc;
}
