/* Tests for the GroupQueryAttention variant and the SHARED KV mode: same logits as the concat
 * model of the same seed and as the reference, grouped-query attention, in-place cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "helpers.h"
#include "reference.h"
#include "hooks.h"

typedef struct fixture {
  char concat_dir[256], gqa_dir[256];
  kvc_model *concat, *gqa;
  kvc__ref *ref;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  kvc_build_params p = kvc_build_default_params();
  th_tmpdir(f->concat_dir, sizeof f->concat_dir, "concat");
  th_tmpdir(f->gqa_dir, sizeof f->gqa_dir, "gqa");
  assert_int_equal(kvc_build_model(f->concat_dir, &p), KVC_OK);
  p.attention = KVC_ATTENTION_GQA;
  assert_int_equal(kvc_build_model(f->gqa_dir, &p), KVC_OK);
  f->concat = th_open_model(f->concat_dir);
  f->gqa = th_open_model(f->gqa_dir);
  assert_int_equal(kvc__ref_open(f->gqa_dir, &f->ref), KVC_OK);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  kvc_model_free(f->concat);
  kvc_model_free(f->gqa);
  kvc__ref_free(f->ref);
  th_rmdir(f->concat_dir);
  th_rmdir(f->gqa_dir);
  free(f);
  return 0;
}

static void info_reports_attention(void **state) {
  fixture *f = *state;
  kvc_model_info a, b;
  kvc_model_get_info(f->gqa, &a);
  kvc_model_get_info(f->concat, &b);
  assert_int_equal(a.attention, KVC_ATTENTION_GQA);
  assert_int_equal(a.kv_mode, KVC_KV_SHARED);
  assert_int_equal(a.kv_heads, 4);
  assert_int_equal(b.attention, KVC_ATTENTION_CONCAT);
  assert_int_equal(b.kv_mode, KVC_KV_BOUND);
  /* SHARED needs a graph that writes in place */
  kvc_seq_params sp = {.kv_mode = KVC_KV_SHARED};
  kvc_seq *q = NULL;
  assert_int_equal(kvc_seq_new(f->concat, &sp, &q), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "shared"));
  assert_null(q);
}

/* Prompts of 1, 7 and 64 tokens and 300 greedy steps: the GQA model in SHARED mode gives the
 * concat model's logits (same seed: same weights, same math) and the reference's. */
static void gqa_matches_concat_and_reference(void **state) {
  fixture *f = *state;
  const int V = 1000, steps = 300;
  const int prompts[] = {1, 7, 64};
  uint64_t rng = 4242;
  for (size_t pi = 0; pi < 3; pi++) {
    const int P = prompts[pi], total = P + steps;
    kvc_seq *c = th_new_seq(f->concat, KVC_KV_BOUND), *g = th_new_seq(f->gqa, KVC_KV_SHARED),
            *gb = th_new_seq(f->gqa, KVC_KV_BOUND);
    int64_t t64[64 + 300];
    int32_t tokens[64 + 300];
    th_random_tokens(&rng, t64, P, V);
    for (int i = 0; i < P; i++)
      tokens[i] = (int32_t)t64[i];
    float *got = malloc((size_t)(steps + 1) * V * sizeof *got);
    for (int step = 0; step <= steps; step++) {
      const int32_t *t = step ? &tokens[P + step - 1] : tokens;
      const int32_t n = step ? 1 : P;
      th_append(c, t, n);
      th_append(g, t, n);
      th_append(gb, t, n);
      double d = th_max_diff(kvc_seq_logits(g), kvc_seq_logits(c), V);
      double db = th_max_diff(kvc_seq_logits(gb), kvc_seq_logits(c), V);
      if (d > 1e-4 || db > 1e-4)
        fail_msg("prompt %d, step %d: |gqa shared - concat| %.3g, |gqa bound - concat| %.3g", P,
                 step, d, db);
      memcpy(got + (size_t)step * V, kvc_seq_logits(g), V * sizeof *got);
      if (step < steps)
        tokens[P + step] = th_argmax(kvc_seq_logits(c), V);
    }
    for (int i = 0; i < total; i++)
      t64[i] = tokens[i];
    double *ref = malloc((size_t)total * V * sizeof *ref), worst = 0, scale = 0;
    assert_int_equal(kvc__ref_logits(f->ref, t64, NULL, NULL, total, ref), KVC_OK);
    for (int step = 0; step <= steps; step++)
      for (int j = 0; j < V; j++) {
        worst = fmax(worst, fabs(got[(size_t)step * V + j] - ref[(size_t)(P - 1 + step) * V + j]));
        scale = fmax(scale, fabs(ref[(size_t)(P - 1 + step) * V + j]));
      }
    if (!(worst <= 1e-4 * scale))
      fail_msg("prompt %d: |gqa - reference| %.3g > 1e-4 * %.3g", P, worst, scale);
    free(ref);
    free(got);
    kvc_seq_free(c);
    kvc_seq_free(g);
    kvc_seq_free(gb);
  }
}

/* SHARED: one buffer per tensor for the whole run, written in place, nothing allocated per
 * step; rewind is a length change that appends exactly as if the dropped tokens never were. */
static void shared_is_in_place_and_rewinds(void **state) {
  fixture *f = *state;
  kvc_seq *q = th_new_seq(f->gqa, KVC_KV_SHARED), *r = th_new_seq(f->gqa, KVC_KV_SHARED);
  const int32_t A[] = {10, 20, 30, 40, 50}, B[] = {7, 8, 9}, C[] = {600, 601, 602};
  th_append(q, A, 5);
  th_decode_in_place(q, 4, 1000, 200);
  kvc_seq_metrics m;
  assert_int_equal(kvc_seq_get_metrics(q, &m), KVC_OK);
  assert_int_equal(m.cache_addresses, 1);
  assert_int_equal(m.decode_allocations, 0);
  assert_int_equal(m.cache_bytes,
                   4LL * 2 * 4 * 513 * 64 * 4); /* one buffer per tensor, one spare position */

  /* A+B, rewind to |A|, then C == A+C */
  assert_int_equal(kvc_seq_rewind(q, 0), KVC_OK);
  th_append(q, A, 5);
  th_append(q, B, 3);
  assert_int_equal(kvc_seq_rewind(q, 5), KVC_OK);
  th_append(r, A, 5);
  for (int i = 0; i < 3; i++) {
    th_append(q, C + i, 1);
    th_append(r, C + i, 1);
    double d = th_max_diff(kvc_seq_logits(q), kvc_seq_logits(r), 1000);
    if (d > 1e-6)
      fail_msg("after rewind, step %d differs by %.3g", i, d);
  }
  /* a prompt in one call, after a past: still exact */
  assert_int_equal(kvc_seq_rewind(q, 5), KVC_OK);
  assert_int_equal(kvc_seq_rewind(r, 5), KVC_OK);
  th_append(q, C, 3);
  for (int i = 0; i < 3; i++)
    th_append(r, C + i, 1);
  assert_true(th_max_diff(kvc_seq_logits(q), kvc_seq_logits(r), 1000) <= 1e-5);
  kvc_seq_free(q);
  kvc_seq_free(r);
}

/* Grouped-query attention: 4 query heads sharing 2 K/V heads, against the reference. */
static void grouped_query_attention_matches_reference(void **state) {
  (void)state;
  char dir[256];
  th_tmpdir(dir, sizeof dir, "gqa2");
  kvc_build_params p = kvc_build_default_params();
  p.attention = KVC_ATTENTION_GQA;
  p.kv_heads = 2;
  p.seed = 5;
  assert_int_equal(kvc_build_model(dir, &p), KVC_OK);
  kvc_model *m = th_open_model(dir);
  kvc_model_info info;
  kvc_model_get_info(m, &info);
  assert_int_equal(info.kv_heads, 2);
  assert_int_equal(info.cache_bytes_per_token, 4 * 2 * 2 * 64 * 4);
  kvc__ref *ref = NULL;
  assert_int_equal(kvc__ref_open(dir, &ref), KVC_OK);
  const int V = 1000, P = 9, steps = 40, total = P + steps;
  int32_t tokens[9 + 40] = {3, 14, 159, 265, 358, 979, 323, 846, 264};
  kvc_seq *q = th_new_seq(m, KVC_KV_SHARED);
  float *got = malloc((size_t)(steps + 1) * V * sizeof *got);
  for (int step = 0; step <= steps; step++) {
    th_append(q, step ? &tokens[P + step - 1] : tokens, step ? 1 : P);
    memcpy(got + (size_t)step * V, kvc_seq_logits(q), V * sizeof *got);
    if (step < steps)
      tokens[P + step] = th_argmax(kvc_seq_logits(q), V);
  }
  int64_t t64[9 + 40];
  for (int i = 0; i < total; i++)
    t64[i] = tokens[i];
  double *r = malloc((size_t)total * V * sizeof *r), worst = 0, scale = 0;
  assert_int_equal(kvc__ref_logits(ref, t64, NULL, NULL, total, r), KVC_OK);
  for (int step = 0; step <= steps; step++)
    for (int j = 0; j < V; j++) {
      worst = fmax(worst, fabs(got[(size_t)step * V + j] - r[(size_t)(P - 1 + step) * V + j]));
      scale = fmax(scale, fabs(r[(size_t)(P - 1 + step) * V + j]));
    }
  if (!(worst <= 1e-4 * scale))
    fail_msg("kv_heads 2: |gqa - reference| %.3g > 1e-4 * %.3g", worst, scale);
  free(r);
  free(got);
  kvc_seq_free(q);
  kvc__ref_free(ref);
  kvc_model_free(m);
  th_rmdir(dir);
}

static void bad_gqa_params_are_rejected(void **state) {
  (void)state;
  char dir[256];
  th_tmpdir(dir, sizeof dir, "badgqa");
  kvc_build_params p = kvc_build_default_params();
  p.kv_heads = 2; /* fewer K/V heads need GQA */
  assert_int_equal(kvc_build_model(dir, &p), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "kv_heads = 2"));
  p.attention = KVC_ATTENTION_GQA;
  p.kv_heads = 3; /* does not divide 4 */
  assert_int_equal(kvc_build_model(dir, &p), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "divisor"));
  p.kv_heads = 8;
  assert_int_equal(kvc_build_model(dir, &p), KVC_ERR_INVALID_ARG);
  p.kv_heads = 0;
  p.attention = (kvc_attention)9;
  assert_int_equal(kvc_build_model(dir, &p), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "attention"));
}

/* The floor measurement: one value per byte count, a positive duration; bad arguments
 * refused. (Durations are not compared: timings do not go into tests.) */
static void floor_measures_and_checks_arguments(void **state) {
  fixture *f = *state;
  const int64_t bytes[2] = {1 << 20, 4 << 20};
  double ms[2] = {-1, -1};
  assert_int_equal(kvc_model_floor(f->gqa, bytes, 2, 3, ms), KVC_OK);
  assert_true(ms[0] > 0 && ms[1] > 0);
  assert_int_equal(kvc_model_floor(f->gqa, bytes, 0, 3, ms), KVC_ERR_INVALID_ARG);
  assert_int_equal(kvc_model_floor(f->gqa, bytes, 2, 0, ms), KVC_ERR_INVALID_ARG);
  const int64_t tiny[1] = {16};
  assert_int_equal(kvc_model_floor(f->gqa, tiny, 1, 1, ms), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "bytes[0] = 16"));
  assert_int_equal(kvc_model_floor(NULL, bytes, 2, 3, ms), KVC_ERR_INVALID_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(info_reports_attention),
      cmocka_unit_test(gqa_matches_concat_and_reference),
      cmocka_unit_test(shared_is_in_place_and_rewinds),
      cmocka_unit_test(grouped_query_attention_matches_reference),
      cmocka_unit_test(bad_gqa_params_are_rejected),
      cmocka_unit_test(floor_measures_and_checks_arguments),
  };
  return cmocka_run_group_tests_name("gqa", tests, setup, teardown);
}
