/* Tests for src/sample.c: greedy, temperature, top-k, top-p, min-p, seeding, non-finite logits, and
 * bad parameters (the repetition penalty over a real sequence: tests/test_engine.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "kvcache.h"

static kvc_sampler *make(float temperature, int32_t top_k, float top_p, uint64_t seed,
                         int32_t vocab) {
  kvc_sampler_params p = kvc_sampler_default_params();
  p.temperature = temperature, p.top_k = top_k, p.top_p = top_p, p.seed = seed;
  kvc_sampler *s = NULL;
  assert_int_equal(kvc_sampler_new(&p, vocab, &s), KVC_OK);
  return s;
}

static int32_t draw(kvc_sampler *s, const float *logits) {
  int32_t t = -1;
  assert_int_equal(kvc_sampler_sample(s, logits, &t), KVC_OK);
  return t;
}

static void greedy_is_argmax_lowest_id_on_ties(void **state) {
  (void)state;
  const float logits[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f, 0.0f};
  kvc_sampler *s = make(0, 0, 1, 0, 6);
  assert_int_equal(draw(s, logits), 1);
  kvc_sampler_free(s);
}

/* Two tokens with logits 0 and ln 3: at temperature 1, token 1 has probability 3/4;
 * at temperature 2, sqrt(3) / (1 + sqrt(3)) = 0.634. */
static void temperature_gives_softmax_frequencies(void **state) {
  (void)state;
  const float logits[2] = {0.0f, (float)log(3.0)};
  const struct {
    float t;
    double p;
  } cases[] = {{1.0f, 0.75}, {2.0f, 1.7320508 / 2.7320508}};
  for (int c = 0; c < 2; c++) {
    kvc_sampler *s = make(cases[c].t, 0, 1, 7, 2);
    int ones = 0;
    for (int i = 0; i < 20000; i++)
      ones += draw(s, logits);
    double freq = ones / 20000.0;
    if (fabs(freq - cases[c].p) > 0.015)
      fail_msg("temperature %g: P(token 1) = %.4f, expected %.4f", (double)cases[c].t, freq,
               cases[c].p);
    kvc_sampler_free(s);
  }
}

static void top_k_and_top_p_restrict_the_candidates(void **state) {
  (void)state;
  /* probabilities at temperature 1 proportional to 8, 4, 2, 1, 1 */
  const float logits[5] = {(float)log(2.0), (float)log(8.0), (float)log(1.0), (float)log(4.0),
                           (float)log(1.0)};
  kvc_sampler *k2 = make(1, 2, 1, 3, 5), *p05 = make(1, 0, 0.5f, 3, 5),
              *p07 = make(1, 0, 0.7f, 3, 5);
  int seen_k[5] = {0}, seen_p05[5] = {0}, seen_p07[5] = {0};
  for (int i = 0; i < 4000; i++) {
    seen_k[draw(k2, logits)]++;
    seen_p05[draw(p05, logits)]++;
    seen_p07[draw(p07, logits)]++;
  }
  /* top-k 2: tokens 1 and 3 only, in ratio 2:1 */
  assert_int_equal(seen_k[0] + seen_k[2] + seen_k[4], 0);
  assert_true(fabs(seen_k[1] / 4000.0 - 2.0 / 3.0) < 0.03);
  /* top-p 0.5: token 1 alone has 8/16 = 0.5 */
  assert_int_equal(seen_p05[1], 4000);
  /* top-p 0.7: tokens 1 and 3 (8/16 + 4/16 = 0.75 >= 0.7), in ratio 2:1 */
  assert_int_equal(seen_p07[0] + seen_p07[2] + seen_p07[4], 0);
  assert_true(seen_p07[3] > 1000);
  kvc_sampler_free(k2), kvc_sampler_free(p05), kvc_sampler_free(p07);
}

/* min-p by its definition: at temperature T the kept tokens are those with
 * softmax_i >= min_p * max_j softmax_j, drawn in proportion to their probabilities. Logits
 * with weights (at T = 1) 10, 5, 2, 1, 0.5, and 0.9 at T = 2 (weights sqrt of those). */
static void min_p_keeps_tokens_near_the_most_likely(void **state) {
  (void)state;
  const double w[5] = {10, 5, 2, 1, 0.5};
  float logits[5];
  for (int i = 0; i < 5; i++)
    logits[i] = (float)log(w[i]);
  const struct {
    float t, min_p;
  } cases[] = {{1, 0.15f}, {1, 0.5f}, {1, 0.05f}, {2, 0.3f}, {1, 1.0f}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    kvc_sampler_params p = kvc_sampler_default_params();
    p.temperature = cases[c].t, p.min_p = cases[c].min_p, p.seed = 11;
    kvc_sampler *s = NULL;
    assert_int_equal(kvc_sampler_new(&p, 5, &s), KVC_OK);
    double prob[5], kept_mass = 0, max = 0;
    for (int i = 0; i < 5; i++)
      max = fmax(max, prob[i] = pow(w[i], 1.0 / cases[c].t));
    for (int i = 0; i < 5; i++) {
      prob[i] = prob[i] >= cases[c].min_p * max ? prob[i] : 0; /* the definition */
      kept_mass += prob[i];
    }
    int seen[5] = {0};
    const int draws = 20000;
    for (int i = 0; i < draws; i++)
      seen[draw(s, logits)]++;
    for (int i = 0; i < 5; i++) {
      double want = prob[i] / kept_mass, got = seen[i] / (double)draws;
      if (want == 0 ? seen[i] != 0 : fabs(got - want) > 4 * sqrt(want * (1 - want) / draws) + 1e-9)
        fail_msg("T %g, min_p %g: token %d drawn %.4f of the time, expected %.4f",
                 (double)cases[c].t, (double)cases[c].min_p, i, got, want);
    }
    kvc_sampler_free(s);
  }
}

static void same_seed_same_tokens(void **state) {
  (void)state;
  float logits[100];
  for (int i = 0; i < 100; i++)
    logits[i] = (float)sin(i * 0.37) * 3;
  kvc_sampler *a = make(0.8f, 40, 0.95f, 123, 100), *b = make(0.8f, 40, 0.95f, 123, 100),
              *c = make(0.8f, 40, 0.95f, 124, 100);
  int differs = 0;
  for (int i = 0; i < 200; i++) {
    int32_t x = draw(a, logits), y = draw(b, logits), z = draw(c, logits);
    assert_int_equal(x, y);
    differs |= x != z;
  }
  assert_true(differs);
  kvc_sampler_free(a), kvc_sampler_free(b), kvc_sampler_free(c);
}

/* Non-finite logits, as documented: NaN is never chosen (a NaN at id 0 used to win every
 * greedy pick), -inf has probability 0, and +inf entries share all the probability (one
 * +inf at temperature 1 used to give the last id, or the 10th-ranked under top-k 10). */
static void non_finite_logits(void **state) {
  (void)state;
  enum { V = 20 };
  float logits[V];
  for (int i = 0; i < V; i++)
    logits[i] = (float)(i % 5); /* 4 is the largest, first at id 4 */
  logits[0] = NAN;
  logits[4] = NAN;
  logits[1] = -INFINITY;
  const struct {
    float t;
    int32_t k;
    float p;
  } samplers[] = {{0, 0, 1}, {1, 0, 1}, {1, 10, 1}, {1, 0, 0.9f}, {2, 3, 0.5f}};
  for (size_t c = 0; c < sizeof samplers / sizeof samplers[0]; c++) {
    kvc_sampler *s = make(samplers[c].t, samplers[c].k, samplers[c].p, 5, V);
    for (int i = 0; i < 2000; i++) {
      int32_t t = draw(s, logits);
      if (t == 0 || t == 4 || t == 1)
        fail_msg("sampler %zu drew id %d (NaN or -inf)", c, t);
    }
    kvc_sampler_free(s);
  }
  kvc_sampler *greedy = make(0, 0, 1, 0, V);
  assert_int_equal(draw(greedy, logits), 9); /* the next 4, NaNs skipped */

  /* +inf at ids 7 and 13: greedy takes 7; sampling takes each about half the time, under any
   * filter, and nothing else */
  logits[7] = logits[13] = INFINITY;
  assert_int_equal(draw(greedy, logits), 7);
  for (size_t c = 1; c < sizeof samplers / sizeof samplers[0]; c++) {
    kvc_sampler *s = make(samplers[c].t, samplers[c].k, samplers[c].p, 9, V);
    int seven = 0;
    for (int i = 0; i < 2000; i++) {
      int32_t t = draw(s, logits);
      if (t != 7 && t != 13)
        fail_msg("sampler %zu drew id %d beside two +inf logits", c, t);
      seven += t == 7;
    }
    if (samplers[c].p <= 0.5f) /* half the mass: the first of the two (ties by id) alone */
      assert_int_equal(seven, 2000);
    else if (seven < 900 || seven > 1100)
      fail_msg("sampler %zu: id 7 drawn %d times in 2000, expected about 1000", c, seven);
    kvc_sampler_free(s);
  }
  /* one +inf: always it, also when it is not among the first ids */
  logits[7] = 0;
  kvc_sampler *k10 = make(1, 10, 1, 11, V);
  for (int i = 0; i < 200; i++)
    assert_int_equal(draw(k10, logits), 13);
  kvc_sampler_free(k10);

  /* greedy over a long vocabulary (the argmax runs in lanes of 32, then a tail): the lowest id
   * of the largest, NaNs anywhere skipped, against a plain scan */
  enum { LONG = 1000 };
  float many[LONG];
  kvc_sampler *long_greedy = make(0, 0, 1, 0, LONG);
  for (int round = 0; round < 200; round++) {
    for (int i = 0; i < LONG; i++)
      many[i] = (float)((i * 7919 + round * 104729) % 613) - 300.0f;
    for (int i = round % 7; i < LONG; i += 11 + round % 5)
      many[i] = NAN;
    if (round % 3 == 0)
      many[LONG - 1 - round % 40] = 1000.0f; /* in the tail, or the last lanes */
    int32_t want = -1;
    for (int i = 0; i < LONG; i++)
      if (many[i] == many[i] && (want < 0 || many[i] > many[want]))
        want = i;
    assert_int_equal(draw(long_greedy, many), want);
  }
  kvc_sampler_free(long_greedy);

  /* nothing choosable: every logit NaN or -inf */
  for (int i = 0; i < V; i++)
    logits[i] = i % 2 ? NAN : -INFINITY;
  int32_t t = -1;
  for (int c = 0; c < 2; c++) {
    kvc_sampler *s = c ? make(1, 0, 1, 0, V) : greedy;
    assert_int_equal(kvc_sampler_sample(s, logits, &t), KVC_ERR_INVALID_ARG);
    assert_non_null(strstr(kvc_last_error(), "NaN or -inf"));
    if (c)
      kvc_sampler_free(s);
  }
  kvc_sampler_free(greedy);
}

static void bad_parameters(void **state) {
  (void)state;
  kvc_sampler_params p = kvc_sampler_default_params();
  kvc_sampler *s = NULL;
  p.temperature = -1;
  assert_int_equal(kvc_sampler_new(&p, 10, &s), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "temperature"));
  p = kvc_sampler_default_params();
  p.top_k = -2;
  assert_int_equal(kvc_sampler_new(&p, 10, &s), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "top_k"));
  p = kvc_sampler_default_params();
  p.top_p = 0;
  assert_int_equal(kvc_sampler_new(&p, 10, &s), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "top_p"));
  p.top_p = 1.5f;
  assert_int_equal(kvc_sampler_new(&p, 10, &s), KVC_ERR_INVALID_ARG);
  const float bad_min_p[] = {-0.1f, 1.5f, NAN};
  for (int i = 0; i < 3; i++) {
    p = kvc_sampler_default_params();
    p.min_p = bad_min_p[i];
    assert_int_equal(kvc_sampler_new(&p, 10, &s), KVC_ERR_INVALID_ARG);
    assert_non_null(strstr(kvc_last_error(), "min_p"));
  }
  const float bad_penalties[] = {-1.0f, NAN, INFINITY};
  for (int i = 0; i < 3; i++) {
    p = kvc_sampler_default_params();
    p.repetition_penalty = bad_penalties[i];
    assert_int_equal(kvc_sampler_new(&p, 10, &s), KVC_ERR_INVALID_ARG);
    assert_non_null(strstr(kvc_last_error(), "repetition_penalty"));
    assert_null(s);
  }
  p = kvc_sampler_default_params();
  p.repetition_penalty = 0; /* the field's zero value: off, as in parameters made before it */
  assert_int_equal(kvc_sampler_new(&p, 10, &s), KVC_OK);
  kvc_sampler_free(s);
  s = NULL;
  assert_int_equal(kvc_sampler_new(&p, 0, &s), KVC_ERR_INVALID_ARG);
  assert_null(s);
  assert_int_equal(kvc_sampler_new(&p, 10, NULL), KVC_ERR_INVALID_ARG);
  int32_t t;
  assert_int_equal(kvc_sampler_sample(NULL, NULL, &t), KVC_ERR_INVALID_ARG);
  assert_int_equal(kvc_sampler_sample_seq(NULL, NULL, &t), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "sampler is NULL"));
  kvc_sampler_free(NULL);
}

/* The model's search section's penalty reaches the sampler, greedy or not. */
static void search_defaults_carry_the_penalty(void **state) {
  (void)state;
  kvc_search search = {.do_sample = 0,
                       .temperature = 0.7f,
                       .top_k = 5,
                       .top_p = 0.9f,
                       .repetition_penalty = 1.3f,
                       .min_p = 0.05f};
  kvc_sampler_params p = kvc_search_sampler_params(&search);
  assert_true(p.temperature == 0.0f);
  assert_true(p.repetition_penalty == 1.3f);
  search.do_sample = 1;
  p = kvc_search_sampler_params(&search);
  assert_true(p.temperature == 0.7f && p.top_k == 5 && p.top_p == 0.9f && p.min_p == 0.05f);
  assert_true(p.repetition_penalty == 1.3f);
  assert_true(kvc_sampler_default_params().repetition_penalty == 1.0f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(greedy_is_argmax_lowest_id_on_ties),
      cmocka_unit_test(temperature_gives_softmax_frequencies),
      cmocka_unit_test(top_k_and_top_p_restrict_the_candidates),
      cmocka_unit_test(min_p_keeps_tokens_near_the_most_likely),
      cmocka_unit_test(same_seed_same_tokens),
      cmocka_unit_test(non_finite_logits),
      cmocka_unit_test(bad_parameters),
      cmocka_unit_test(search_defaults_carry_the_penalty),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
