/* Tests for the cache's element type (kvc_kv_type): a float16 or 8-bit cache on a graph whose
 * attention is kvcache's operator takes half (8.5 / 32 of) the bytes, decodes in every KV mode
 * exactly as its own recompute does, stays close to the float32 cache, and keeps its type in
 * state files; graphs whose attention is ONNX Runtime's keep the type they declare. (The
 * many-sequence test with each type: test_batch; the operator's conversions on every kernel
 * path: test_attention.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"

enum { V = 1000, PROMPT = 20, STEPS = 40 };

typedef struct fixture {
  char own_dir[256], gqa_dir[256];
  kvc_model *f32, *f16, *q8, *gqa;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  kvc_build_params p = kvc_build_default_params();
  p.attention = KVC_ATTENTION_KVCACHE;
  th_tmpdir(f->own_dir, sizeof f->own_dir, "cache_type_own");
  assert_int_equal(kvc_build_model(f->own_dir, &p), KVC_OK);
  p.attention = KVC_ATTENTION_GQA;
  th_tmpdir(f->gqa_dir, sizeof f->gqa_dir, "cache_type_gqa");
  assert_int_equal(kvc_build_model(f->gqa_dir, &p), KVC_OK);
  f->f32 = th_open_model(f->own_dir);
  f->f16 = th_open_model_typed(f->own_dir, KVC_KV_TYPE_F16);
  f->q8 = th_open_model_typed(f->own_dir, KVC_KV_TYPE_Q8);
  f->gqa = th_open_model(f->gqa_dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  kvc_model_free(f->f32), kvc_model_free(f->f16), kvc_model_free(f->q8), kvc_model_free(f->gqa);
  th_rmdir(f->own_dir), th_rmdir(f->gqa_dir);
  free(f);
  return 0;
}

static void prompt_of(int32_t *tokens, int n, uint32_t seed) {
  for (int i = 0; i < n; i++)
    tokens[i] = (int32_t)((seed = seed * 1664525u + 1013904223u) >> 8) % V;
}

/* Bytes of a cache of `m`'s type and of its float32 cache, for one token and in a context */
static void a_narrow_cache_takes_its_bytes(void **state) {
  fixture *f = *state;
  kvc_model_info a, b, c;
  assert_int_equal(kvc_model_get_info(f->f32, &a), KVC_OK);
  assert_int_equal(kvc_model_get_info(f->f16, &b), KVC_OK);
  assert_int_equal(kvc_model_get_info(f->q8, &c), KVC_OK);
  assert_int_equal(a.kv_type, KVC_KV_TYPE_F32); /* AUTO: what build-model's graph declares */
  assert_int_equal(b.kv_type, KVC_KV_TYPE_F16);
  assert_int_equal(c.kv_type, KVC_KV_TYPE_Q8);
  const int64_t rows = 2 * a.layers * a.kv_heads; /* keys and values of every layer's heads */
  assert_int_equal(a.cache_bytes_per_token, rows * a.head_dim * 4);
  assert_int_equal(b.cache_bytes_per_token, rows * a.head_dim * 2);
  assert_int_equal(c.cache_bytes_per_token, rows * (a.head_dim + 4)); /* codes and a scale */
  assert_int_equal(c.head_dim, a.head_dim);
  kvc_model *models[3] = {f->f32, f->f16, f->q8};
  int64_t bytes[3];
  for (int i = 0; i < 3; i++) {
    kvc_seq *q = th_new_seq(models[i], KVC_KV_SHARED);
    kvc_seq_metrics mt;
    assert_int_equal(kvc_seq_get_metrics(q, &mt), KVC_OK);
    bytes[i] = mt.cache_bytes;
    kvc_seq_free(q);
  }
  assert_true(bytes[1] > 0);
  assert_int_equal(bytes[1] * 2, bytes[0]);
  assert_int_equal(bytes[2] * a.head_dim * 4, bytes[0] * (a.head_dim + 4));
}

/* Greedy decoding in `mode` with a narrow cache, against its own recompute (UNCACHED: the
 * operator rounds the keys and values it writes, prefill included, so both see the same
 * values) at every step; and against the float32 cache, which it must not equal but follow
 * within `close`. */
static void decode_as_the_recompute(kvc_model *narrow, kvc_model *f32, kvc_kv_mode mode,
                                    double close) {
  int32_t tokens[PROMPT];
  prompt_of(tokens, PROMPT, (uint32_t)mode);
  kvc_seq *q = th_new_seq(narrow, mode), *oracle = th_new_seq(narrow, KVC_KV_UNCACHED),
          *wide = th_new_seq(f32, mode);
  th_append(q, tokens, PROMPT), th_append(oracle, tokens, PROMPT), th_append(wide, tokens, PROMPT);
  double worst = 0, off_f32 = 0;
  for (int step = 0; step < STEPS; step++) {
    const double d = th_max_diff(kvc_seq_logits(q), kvc_seq_logits(oracle), V);
    worst = d > worst ? d : worst;
    const double w = th_max_diff(kvc_seq_logits(q), kvc_seq_logits(wide), V);
    off_f32 = w > off_f32 ? w : off_f32;
    const int32_t next = th_argmax(kvc_seq_logits(q), V);
    th_append(q, &next, 1), th_append(oracle, &next, 1), th_append(wide, &next, 1);
  }
  kvc_model_info info;
  kvc_model_get_info(narrow, &info);
  const char *type = kvc_kv_type_name(info.kv_type);
  if (worst > 1e-4)
    fail_msg("%s, %s cache: logits differ from its recompute by %.3g", kvc_kv_mode_name(mode), type,
             worst);
  if (!(off_f32 > 0 && off_f32 < close))
    fail_msg("%s: the %s cache's logits differ from the float32 cache's by %.3g: expected a "
             "rounding's worth (0 < d < %g)",
             kvc_kv_mode_name(mode), type, off_f32, close);
  kvc_seq_free(q), kvc_seq_free(oracle), kvc_seq_free(wide);
}

static void every_mode_decodes_as_its_recompute(void **state) {
  fixture *f = *state;
  const kvc_kv_mode modes[] = {KVC_KV_NAIVE, KVC_KV_BOUND, KVC_KV_SHARED};
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    decode_as_the_recompute(f->f16, f->f32, modes[i], 1e-2);
    decode_as_the_recompute(f->q8, f->f32, modes[i], 5e-2);
  }
}

static uint8_t *saved(kvc_seq *q, size_t *size) {
  assert_int_equal(kvc_seq_save_buffer(q, NULL, 0, size), KVC_OK);
  uint8_t *buf = malloc(*size);
  assert_int_equal(kvc_seq_save_buffer(q, buf, *size, size), KVC_OK);
  return buf;
}

/* A narrow cache's state: its cache bytes are its type's, it loads into a sequence of that
 * type (another mode) and goes on as the saved one does; into a cache of another type it is
 * refused, naming both types, the sequence untouched. */
static void narrow_state(kvc_model *narrow, kvc_model *f32, kvc_model *other) {
  int32_t tokens[PROMPT];
  prompt_of(tokens, PROMPT, 7);
  kvc_seq *qn = th_new_seq(narrow, KVC_KV_SHARED), *q32 = th_new_seq(f32, KVC_KV_SHARED);
  th_append(qn, tokens, PROMPT), th_append(q32, tokens, PROMPT);
  size_t nn, n32;
  uint8_t *sn = saved(qn, &nn), *s32 = saved(q32, &n32);
  kvc_model_info in, i32;
  kvc_model_get_info(narrow, &in), kvc_model_get_info(f32, &i32);
  assert_int_equal(n32 - nn,
                   (size_t)(i32.cache_bytes_per_token - in.cache_bytes_per_token) * PROMPT);

  kvc_seq *back = th_new_seq(narrow, KVC_KV_BOUND);
  assert_int_equal(kvc_seq_load_buffer(back, sn, nn), KVC_OK);
  assert_memory_equal(kvc_seq_logits(back), kvc_seq_logits(qn), V * sizeof(float));
  const int32_t next = th_argmax(kvc_seq_logits(qn), V);
  th_append(back, &next, 1), th_append(qn, &next, 1);
  assert_true(th_max_diff(kvc_seq_logits(back), kvc_seq_logits(qn), V) <= 1e-4);

  char held[64], flag[32];
  snprintf(held, sizeof held, "state holds a %s cache", kvc_kv_type_name(in.kv_type));
  snprintf(flag, sizeof flag, "--kv-type %s", kvc_kv_type_name(in.kv_type));
  kvc_model *others[2] = {f32, other};
  for (int i = 0; i < 2; i++) {
    kvc_seq *q = th_new_seq(others[i], KVC_KV_SHARED);
    assert_int_equal(kvc_seq_load_buffer(q, sn, nn), KVC_ERR_INVALID_ARG);
    assert_non_null(strstr(kvc_last_error(), held));
    assert_non_null(strstr(kvc_last_error(), flag));
    assert_int_equal(kvc_seq_len(q), 0);
    kvc_seq_free(q);
  }
  kvc_seq *q = th_new_seq(narrow, KVC_KV_SHARED);
  assert_int_equal(kvc_seq_load_buffer(q, s32, n32), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "state holds a f32 cache"));
  assert_int_equal(kvc_seq_len(q), 0);
  free(sn), free(s32);
  kvc_seq_free(qn), kvc_seq_free(q32), kvc_seq_free(back), kvc_seq_free(q);
}

static void states_keep_their_cache_type(void **state) {
  fixture *f = *state;
  narrow_state(f->f16, f->f32, f->q8);
  narrow_state(f->q8, f->f32, f->f16);
}

/* Sixteen sequences at full length with a narrow cache in the bytes of eight float32 ones:
 * each filled to the context, together, and each one's logits those of a lone sequence of
 * its type fed the same tokens. */
static void sixteen_narrow_sequences_fit_in_eight_f32(void **state) {
  fixture *f = *state;
  kvc_ctx *wide = th_new_ctx(f->f32, 8);
  kvc_ctx_info wi;
  assert_int_equal(kvc_ctx_get_info(wide, &wi), KVC_OK);
  kvc_ctx_free(wide);
  kvc_model *narrow[2] = {f->f16, f->q8};
  for (int t = 0; t < 2; t++) {
    kvc_ctx *c = th_new_ctx(narrow[t], 16);
    kvc_ctx_info ci;
    assert_int_equal(kvc_ctx_get_info(c, &ci), KVC_OK);
    assert_true(ci.cache_bytes > 0 && ci.cache_bytes <= wi.cache_bytes);
    kvc_seq *q[16];
    int32_t *tokens = malloc((size_t)ci.max_seq_len * sizeof *tokens);
    kvc_batch_item items[16];
    int32_t next[16];
    for (int i = 0; i < 16; i++) {
      assert_int_equal(kvc_seq_new_in(c, &q[i]), KVC_OK);
      prompt_of(tokens, ci.max_seq_len - 1, (uint32_t)(100 + i));
      th_append(q[i], tokens, ci.max_seq_len - 1);
    }
    for (int i = 0; i < 16; i++) { /* the last position of all sixteen in one call */
      next[i] = (int32_t)(i * 37 % V);
      items[i] = (kvc_batch_item){q[i], &next[i], 1, NULL};
    }
    assert_int_equal(kvc_seq_append_batch(items, 16), KVC_OK);
    for (int i = 0; i < 16; i += 5) {
      assert_int_equal(kvc_seq_len(q[i]), ci.max_seq_len);
      prompt_of(tokens, ci.max_seq_len - 1, (uint32_t)(100 + i));
      kvc_seq *lone = th_new_seq(narrow[t], KVC_KV_SHARED);
      th_append(lone, tokens, ci.max_seq_len - 1);
      th_append(lone, &next[i], 1);
      assert_true(th_max_diff(kvc_seq_logits(q[i]), kvc_seq_logits(lone), V) <= 1e-4);
      kvc_seq_free(lone);
    }
    for (int i = 0; i < 16; i++)
      kvc_seq_free(q[i]);
    free(tokens);
    kvc_ctx_free(c);
  }
}

/* The attention alone is timed over a cache of the model's type (kvcache's operator) and a
 * float32 one (GroupQueryAttention). */
static void the_attention_probe_reads_the_models_type(void **state) {
  fixture *f = *state;
  kvc_model *models[2] = {f->f16, f->q8};
  const int32_t at[2] = {0, 300};
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 2; k++) {
      double ms[2] = {0, 0};
      const kvc_attention kind = k ? KVC_ATTENTION_KVCACHE : KVC_ATTENTION_GQA;
      if (kvc_model_attention_ms(models[i], kind, at, 2, 2, ms) != KVC_OK)
        fail_msg("%s: %s", kvc_attention_name(kind), kvc_last_error());
      assert_true(ms[0] > 0 && ms[1] > 0);
    }
}

static void onnx_runtime_attention_keeps_its_type(void **state) {
  fixture *f = *state;
  kvc_model_params mp = kvc_model_default_params();
  mp.intra_op_threads = 1;
  kvc_model *m = NULL;
  mp.kv_type = KVC_KV_TYPE_F16;
  assert_int_equal(kvc_model_open(f->gqa_dir, &mp, &m), KVC_ERR_UNSUPPORTED);
  assert_null(m);
  assert_non_null(strstr(kvc_last_error(), "float32"));
  assert_non_null(strstr(kvc_last_error(), "--attention kvcache"));
  mp.kv_type = KVC_KV_TYPE_F32; /* what it declares: fine */
  assert_int_equal(kvc_model_open(f->gqa_dir, &mp, &m), KVC_OK);
  kvc_model_free(m), m = NULL;
  mp.kv_type = (kvc_kv_type)9;
  assert_int_equal(kvc_model_open(f->own_dir, &mp, &m), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "kv_type = 9"));
  assert_string_equal(kvc_kv_type_name(KVC_KV_TYPE_F16), "f16");
  assert_null(kvc_kv_type_name((kvc_kv_type)9));
  (void)f;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_narrow_cache_takes_its_bytes),
      cmocka_unit_test(every_mode_decodes_as_its_recompute),
      cmocka_unit_test(states_keep_their_cache_type),
      cmocka_unit_test(sixteen_narrow_sequences_fit_in_eight_f32),
      cmocka_unit_test(the_attention_probe_reads_the_models_type),
      cmocka_unit_test(onnx_runtime_attention_keeps_its_type),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
