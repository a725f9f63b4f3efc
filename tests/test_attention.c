/* Tests for kvcache's attention operator (ai.kvcache.Attention): its kernels against a
 * double-precision softmax, the --attention kvcache graph against the GQA and Concat graphs
 * of the same seed and the reference on every kernel path, a plain ONNX Runtime program
 * loading libkvcache_ops, and bad inputs refused with the input named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "attention_kernel.h"
#include "attention_op.h"
#include "half.h"
#include "q8.h"
#include "helpers.h"
#include "onnx.h"
#include "naming.h"
#include "reference.h"
#include "rng.h"

#define CHECK(call) assert_int_equal(kvc__ort_check((call), #call), KVC_OK)

enum { VOCAB = 1000 };

static const char *const paths[] = {"portable", "avx2", "avx512"};

/* Force kernel path p for sessions made from now on; 0 when this CPU or build lacks it. */
static int use_path(int p) {
  setenv("KVCACHE_ATTENTION", paths[p], 1);
  kvc__attend_path got;
  char why[160];
  if (kvc__attend_pick(&got, why, sizeof why) != 0) {
    print_message("kernel path %s not run here: %s\n", paths[p], why);
    return 0;
  }
  assert_int_equal((int)got, p);
  return 1;
}

static float uniform(kvc__rng *r) {
  return (float)((double)(kvc__rng_u64(r) >> 11) / 9007199254740992.0) - 0.5f;
}

/* A narrow cache (kn, vn of `kind`) gives, bit for bit, what a float cache holding its values
 * widened (kw, vw) gives, on `path`. */
static void same_as_float(kvc__attend_path path, const float *q, int g, int d, int64_t n,
                          const float *kw, const float *vw, const void *kn, const void *vn,
                          kvc__cache_kind kind, float *out, float *out_narrow) {
  kvc__attend_for(path, d)(q, g, d, kw, vw, KVC_CACHE_F32, n, out);
  kvc__attend_for(path, d)(q, g, d, kn, vn, kind, n, out_narrow);
  if (memcmp(out, out_narrow, (size_t)(g * d) * sizeof *out) != 0)
    fail_msg("%s, head size %d, %lld keys, group %d: a %s cache is not its values' float cache",
             paths[path], d, (long long)n, g, kind == KVC_CACHE_F16 ? "float16" : "8-bit");
}

/* Every path, head sizes that are and are not multiples of the vector widths (and of the
 * AVX-512 path's 64-column slices: 80), lengths around the block and vector edges, groups of
 * 1 to 16 heads (AVX-512: 4 and 16 every head's scores four at a time in full blocks, 6 four,
 * then two one at a time; AVX2: heads in fours, then a pair, then one, so 3 and 6 run the
 * pair, and the 16 to 64 columns a pass of its sums holds leave tails at head sizes 8 to 80),
 * flat and peaked scores: within 4e-6 of
 * softmax(q k^T) v computed in double (the portable path's plain float sums reach 2.1e-6 on
 * these draws, the AVX2 path's 6.7e-7, the AVX-512 path's 4.4e-7). */
static void kernels_match_a_double_softmax(void **state) {
  (void)state;
  const int dims[] = {8, 16, 24, 40, 64, 72, 80, 128};
  const int64_t lens[] = {1, 2, 7, 8, 9, 31, 32, 33, 64, 100, 511};
  const int groups[] = {1, 2, 3, 4, 6, 16};
  kvc__rng r = kvc__rng_seeded(7);
  float *q = malloc(16 * 128 * sizeof *q), *out = malloc(16 * 128 * sizeof *out);
  float *k = malloc(511 * 128 * sizeof *k), *v = malloc(511 * 128 * sizeof *v);
  double *want = malloc(16 * 128 * sizeof *want), *s = malloc(511 * sizeof *s);
  /* the same keys and values as halves or 8-bit rows, and those widened: a float16 or 8-bit
   * cache */
  uint16_t *k16 = malloc(511 * 128 * sizeof *k16), *v16 = malloc(511 * 128 * sizeof *v16);
  int8_t *k8 = malloc(511 * (128 + 4)), *v8 = malloc(511 * (128 + 4));
  float *kw = malloc(511 * 128 * sizeof *kw), *vw = malloc(511 * 128 * sizeof *vw);
  float *out16 = malloc(16 * 128 * sizeof *out16);
  int runs = 0;
  for (int p = 0; p < 3; p++) {
    if (!use_path(p))
      continue;
    kvc__attend_path path = (kvc__attend_path)p;
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++)
      for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
        for (size_t gi = 0; gi < sizeof groups / sizeof *groups; gi++) {
          const int d = dims[di], g = groups[gi];
          const int64_t n = lens[li];
          const float sharp = (li % 2) ? 8.0f : 0.5f; /* peaked or flat softmax */
          for (int i = 0; i < g * d; i++)
            q[i] = sharp * uniform(&r);
          for (int64_t i = 0; i < n * d; i++) {
            k[i] = uniform(&r);
            v[i] = uniform(&r);
          }
          for (int h = 0; h < g; h++) {
            double m = -INFINITY, z = 0;
            for (int64_t j = 0; j < n; j++) {
              s[j] = 0;
              for (int i = 0; i < d; i++)
                s[j] += (double)q[h * d + i] * k[j * d + i];
              m = fmax(m, s[j]);
            }
            for (int64_t j = 0; j < n; j++)
              z += s[j] = exp(s[j] - m);
            for (int i = 0; i < d; i++) {
              double acc = 0;
              for (int64_t j = 0; j < n; j++)
                acc += s[j] * v[j * d + i];
              want[h * d + i] = acc / z;
            }
          }
          kvc__attend_for(path, d)(q, g, d, k, v, KVC_CACHE_F32, n, out);
          double worst = 0;
          for (int i = 0; i < g * d; i++)
            worst = fmax(worst, fabs(out[i] - want[i]));
          if (!(worst <= 4e-6))
            fail_msg("%s, head size %d, %lld keys, group %d: off by %.3g", paths[p], d,
                     (long long)n, g, worst);
          /* a float16 cache: the bits of a float cache holding the halves' values */
          for (int64_t i = 0; i < n * d; i++) {
            k16[i] = kvc__half_from_float(k[i]), v16[i] = kvc__half_from_float(v[i]);
            kw[i] = kvc__half_to_float(k16[i]), vw[i] = kvc__half_to_float(v16[i]);
          }
          same_as_float(path, q, g, d, n, kw, vw, k16, v16, KVC_CACHE_F16, out, out16);
          /* an 8-bit cache: the bits of a float cache holding code x scale */
          const size_t row = kvc__q8_row_bytes(d);
          for (int64_t j = 0; j < n; j++) {
            kvc__q8_quantize_row(k + j * d, d, k8 + (size_t)j * row);
            kvc__q8_quantize_row(v + j * d, d, v8 + (size_t)j * row);
            kvc__q8_dequantize_row(k8 + (size_t)j * row, d, kw + j * d);
            kvc__q8_dequantize_row(v8 + (size_t)j * row, d, vw + j * d);
          }
          same_as_float(path, q, g, d, n, kw, vw, k8, v8, KVC_CACHE_Q8, out, out16);
          runs++;
        }
  }
  unsetenv("KVCACHE_ATTENTION");
  assert_true(runs >= (int)(sizeof dims / sizeof *dims * sizeof lens / sizeof *lens * 4));
  free(q), free(out), free(k), free(v), free(want), free(s);
  free(k16), free(v16), free(kw), free(vw), free(out16), free(k8), free(v8);
}

/* The half conversions of a float16 cache: every half widens to its value (sign x 2^e x
 * significand, computed apart), and floats round to the nearest half, ties to even, with
 * overflow to infinity and NaN kept NaN. */
static void halves_convert_exactly(void **state) {
  (void)state;
  for (uint32_t h = 0; h < 0x10000; h++) {
    const int e = (h >> 10) & 31, m = h & 1023;
    const double sign = h & 0x8000 ? -1 : 1;
    const float f = kvc__half_to_float((uint16_t)h);
    if (e == 31)
      assert_true(m ? isnan(f) : isinf(f) && (f < 0) == (sign < 0));
    else
      assert_true(f == sign * (e ? ldexp(1024 + m, e - 25) : ldexp(m, -24)));
    if (e < 31) /* round trip */
      assert_int_equal(kvc__half_from_float(f), h);
    if ((h & 0x7fff) < 0x7bff) { /* halfway to the next half (of larger magnitude): the even */
      const float mid = (float)(((double)f + kvc__half_to_float((uint16_t)(h + 1))) / 2);
      assert_int_equal(kvc__half_from_float(mid), h & 1 ? h + 1 : h);
    }
  }
  kvc__rng r = kvc__rng_seeded(3);
  for (int i = 0; i < 200000; i++) {
    uint32_t u = (uint32_t)kvc__rng_u64(&r);
    if (i % 4 == 0) /* near the halves' range: normal, subnormal and overflowing */
      u = (u & 0x807fffffu) | (uint32_t)(100 + i % 44) << 23;
    float f;
    memcpy(&f, &u, sizeof f);
    const uint16_t h = kvc__half_from_float(f);
    if (isnan(f)) {
      assert_true(isnan(kvc__half_to_float(h)));
      continue;
    }
    const double x = f, got = kvc__half_to_float(h);
    if (fabs(x) >= 65520.0) { /* beyond the largest half by half a step: infinity */
      assert_true(isinf(got) && (got < 0) == (x < 0));
      continue;
    }
    /* nearest: no other half closer; ties to the even one */
    const uint16_t below = (uint16_t)(h - 1), above = (uint16_t)(h + 1);
    const double err = fabs(x - got);
    if ((h & 0x7fff) != 0 && (h & 0x7fff) != 0x7c00)
      assert_true(fabs(x - kvc__half_to_float(below)) >= err);
    if ((h & 0x7fff) < 0x7bff)
      assert_true(fabs(x - kvc__half_to_float(above)) >= err);
    const int tie = ((h & 0x7fff) && fabs(x - kvc__half_to_float(below)) == err) ||
                    ((h & 0x7fff) < 0x7bff && fabs(x - kvc__half_to_float(above)) == err);
    if (tie && err > 0)
      assert_int_equal(h & 1, 0);
  }
}

/* The 8-bit cache's rows: the scale is max |x| / 127, every code the nearest integer to
 * x / scale (ties to even) within -127..127, the largest value's code +-127, a value read back
 * as code x scale; a zero row keeps scale 0, and NaN and a row's infinities store 0. */
static void q8_rows_round_to_nearest(void **state) {
  (void)state;
  enum { D = 64 };
  kvc__rng r = kvc__rng_seeded(9);
  float x[D], back[D];
  int8_t row[D + KVC_Q8_SCALE_BYTES];
  for (int t = 0; t < 20000; t++) {
    const float spread = ldexpf(1.0f, t % 40 - 20);
    int at_max = 0;
    for (int i = 0; i < D; i++) {
      x[i] = spread * uniform(&r);
      /* exact ties: the largest 127 x spread (a power of two), so scale = spread and these
       * are k + 1/2 scales */
      if (t % 7 == 0)
        x[i] = i == 0 ? 127.0f * spread : ((float)(i % 64) - 32.5f) * spread;
      if (fabsf(x[i]) > fabsf(x[at_max]))
        at_max = i;
    }
    kvc__q8_quantize_row(x, D, row);
    const float scale = kvc__q8_scale(row, D);
    assert_true(scale == fabsf(x[at_max]) / 127.0f);
    assert_int_equal(abs(row[at_max]), 127);
    kvc__q8_dequantize_row(row, D, back);
    for (int i = 0; i < D; i++) {
      const double exact = (double)x[i] / scale, err = fabs(exact - row[i]);
      assert_true(row[i] >= -127 && row[i] <= 127);
      if (!(err <= 0.5 + 1e-6))
        fail_msg("t %d i %d: x %.9g scale %.9g exact %.9g code %d", t, i, (double)x[i],
                 (double)scale, exact, row[i]);
      if (fabs(fabs(exact - floor(exact)) - 0.5) < 1e-9) /* a tie: the even code */
        assert_int_equal(row[i] & 1, 0);
      assert_true(back[i] == (float)row[i] * scale);
    }
  }
  for (int i = 0; i < D; i++)
    x[i] = 0.0f;
  kvc__q8_quantize_row(x, D, row);
  assert_true(kvc__q8_scale(row, D) == 0.0f);
  x[3] = NAN, x[4] = 1.0f;
  kvc__q8_quantize_row(x, D, row);
  assert_int_equal(row[3], 0);
  assert_int_equal(row[4], 127);
  x[3] = INFINITY;
  kvc__q8_quantize_row(x, D, row);
  assert_true(kvc__q8_scale(row, D) == 0.0f);
  for (int i = 0; i < D; i++)
    assert_int_equal(row[i], 0);
}

static kvc_model *open_with_threads(const char *dir, int threads) {
  kvc_model_params p = kvc_model_default_params();
  p.intra_op_threads = threads;
  kvc_model *m = NULL;
  if (kvc_model_open(dir, &p, &m) != KVC_OK)
    fail_msg("kvc_model_open(%s): %s", dir, kvc_last_error());
  return m;
}

/* A random prompt of P tokens, then `steps` greedy steps (chosen by the GQA graph), fed to
 * the kvcache-attention graph in SHARED mode, the GQA graph and (when given) the Concat graph
 * and a BOUND sequence of the kvcache graph: every step's logits within 1e-4 of each other,
 * and the kvcache graph's within 1e-4 of the reference's scale. */
static void agree(kvc_model *own, kvc_model *gqa, kvc_model *concat, kvc__ref *ref, uint64_t *rng,
                  int P, int steps, int with_bound, const char *what) {
  const int total = P + steps;
  kvc_seq *o = th_new_seq(own, KVC_KV_SHARED), *g = th_new_seq(gqa, KVC_KV_SHARED);
  kvc_seq *c = concat ? th_new_seq(concat, KVC_KV_BOUND) : NULL;
  kvc_seq *ob = with_bound ? th_new_seq(own, KVC_KV_BOUND) : NULL;
  int64_t *t64 = malloc((size_t)total * sizeof *t64);
  int32_t *tokens = malloc((size_t)total * sizeof *tokens);
  th_random_tokens(rng, t64, P, VOCAB);
  for (int i = 0; i < P; i++)
    tokens[i] = (int32_t)t64[i];
  float *got = malloc((size_t)(steps + 1) * VOCAB * sizeof *got);
  for (int step = 0; step <= steps; step++) {
    const int32_t *t = step ? &tokens[P + step - 1] : tokens;
    const int32_t n = step ? 1 : P;
    th_append(o, t, n);
    th_append(g, t, n);
    double dc = 0, db = 0, dg = th_max_diff(kvc_seq_logits(o), kvc_seq_logits(g), VOCAB);
    if (c) {
      th_append(c, t, n);
      dc = th_max_diff(kvc_seq_logits(o), kvc_seq_logits(c), VOCAB);
    }
    if (ob) {
      th_append(ob, t, n);
      db = th_max_diff(kvc_seq_logits(o), kvc_seq_logits(ob), VOCAB);
    }
    if (dg > 1e-4 || dc > 1e-4 || db > 1e-4)
      fail_msg("%s, prompt %d, step %d: |own - gqa| %.3g, |own - concat| %.3g, |shared - bound| "
               "%.3g",
               what, P, step, dg, dc, db);
    memcpy(got + (size_t)step * VOCAB, kvc_seq_logits(o), VOCAB * sizeof *got);
    if (step < steps)
      tokens[P + step] = th_argmax(kvc_seq_logits(g), VOCAB);
  }
  for (int i = 0; i < total; i++)
    t64[i] = tokens[i];
  double *want = malloc((size_t)total * VOCAB * sizeof *want), worst = 0, scale = 0;
  assert_int_equal(kvc__ref_logits(ref, t64, NULL, NULL, total, want), KVC_OK);
  for (int step = 0; step <= steps; step++)
    for (int j = 0; j < VOCAB; j++) {
      const double w = want[(size_t)(P - 1 + step) * VOCAB + j];
      worst = fmax(worst, fabs(got[(size_t)step * VOCAB + j] - w));
      scale = fmax(scale, fabs(w));
    }
  if (!(worst <= 1e-4 * scale))
    fail_msg("%s, prompt %d: |own - reference| %.3g > 1e-4 * %.3g", what, P, worst, scale);
  free(want), free(got), free(t64), free(tokens);
  kvc_seq_free(o);
  kvc_seq_free(g);
  kvc_seq_free(c);
  kvc_seq_free(ob);
}

/* must-show 1: for kv_heads 4 and 2, prompts of 1, 7 and 64 tokens and 300 greedy steps, the
 * kvcache-attention graph (SHARED, in place) gives the GQA graph's logits, the Concat
 * graph's (kv_heads 4: Concat has no grouped heads) and the reference's, on every kernel path
 * (one intra-op thread) and on the fastest with two threads (the work split over ONNX
 * Runtime's pool). BOUND (present a new buffer: the past copied) once per graph too. */
static void graphs_agree_on_every_path(void **state) {
  (void)state;
  const int steps = 300, prompts[] = {1, 7, 64};
  for (int kv = 4; kv >= 2; kv -= 2) {
    char own_dir[256], gqa_dir[256], concat_dir[256];
    kvc_build_params p = kvc_build_default_params();
    p.kv_heads = kv;
    th_tmpdir(own_dir, sizeof own_dir, "attn_own");
    th_tmpdir(gqa_dir, sizeof gqa_dir, "attn_gqa");
    th_tmpdir(concat_dir, sizeof concat_dir, "attn_concat");
    if (kv == 4)
      assert_int_equal(kvc_build_model(concat_dir, &p), KVC_OK);
    p.attention = KVC_ATTENTION_GQA;
    assert_int_equal(kvc_build_model(gqa_dir, &p), KVC_OK);
    p.attention = KVC_ATTENTION_KVCACHE;
    assert_int_equal(kvc_build_model(own_dir, &p), KVC_OK);
    kvc_model *gqa = th_open_model(gqa_dir), *concat = kv == 4 ? th_open_model(concat_dir) : NULL;
    kvc__ref *ref = NULL;
    assert_int_equal(kvc__ref_open(gqa_dir, &ref), KVC_OK);
    for (int variant = 0; variant < 4; variant++) {
      const int path = variant < 3 ? variant : 2, threads = variant < 3 ? 1 : 2;
      if (variant == 3) /* the fastest path this CPU has, two threads */
        unsetenv("KVCACHE_ATTENTION");
      else if (!use_path(path))
        continue;
      kvc_model *own = open_with_threads(own_dir, threads);
      kvc_model_info info;
      kvc_model_get_info(own, &info);
      assert_int_equal(info.attention, KVC_ATTENTION_KVCACHE);
      assert_int_equal(info.kv_mode, KVC_KV_SHARED);
      assert_int_equal(info.kv_heads, kv);
      if (variant < 3)
        assert_string_equal(info.attention_kernel, paths[path]);
      uint64_t rng = 4242;
      for (size_t pi = 0; pi < 3; pi++) {
        char what[96];
        snprintf(what, sizeof what, "kv_heads %d, %s, %d thread(s)", kv,
                 variant < 3 ? paths[path] : "default", threads);
        agree(own, gqa, concat, ref, &rng, prompts[pi], steps, variant == 0 && pi == 1, what);
      }
      kvc_model_free(own);
    }
    unsetenv("KVCACHE_ATTENTION");
    kvc__ref_free(ref);
    kvc_model_free(gqa);
    kvc_model_free(concat);
    th_rmdir(own_dir);
    th_rmdir(gqa_dir);
    if (kv == 4)
      th_rmdir(concat_dir);
  }
}

/* Llama (rotary inside the attention node, no biases, 2 K/V heads for 4 query heads): the
 * kvcache-attention graph equals the GQA graph and the reference, on every path. */
/* info names the kernel that runs, not the one chosen: a head size of 24 runs AVX2 where
 * AVX-512 is chosen, 12 runs portable where either vector path is. */
static void info_names_the_kernel_that_runs(void **state) {
  (void)state;
  static const struct {
    int head_dim, chosen;
    const char *runs;
  } cases[] = {{16, KVC_ATTEND_AVX512, "avx512"}, {24, KVC_ATTEND_AVX512, "avx2"},
               {24, KVC_ATTEND_AVX2, "avx2"},     {12, KVC_ATTEND_AVX512, "portable"},
               {12, KVC_ATTEND_AVX2, "portable"}, {16, KVC_ATTEND_PORTABLE, "portable"}};
  int checked = 0;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    if (!use_path(cases[c].chosen))
      continue;
    char dir[256];
    kvc_build_params p = kvc_build_default_params();
    p.layers = 1, p.heads = 2, p.head_dim = cases[c].head_dim, p.vocab_size = 50;
    p.max_seq_len = 32, p.attention = KVC_ATTENTION_KVCACHE;
    th_tmpdir(dir, sizeof dir, "attn_kernel");
    assert_int_equal(kvc_build_model(dir, &p), KVC_OK);
    kvc_model *m = th_open_model(dir);
    kvc_model_info info;
    kvc_model_get_info(m, &info);
    if (strcmp(info.attention_kernel, cases[c].runs))
      fail_msg("head size %d, %s chosen: info says %s, %s runs", cases[c].head_dim,
               paths[cases[c].chosen], info.attention_kernel, cases[c].runs);
    assert_string_equal(info.matmul_kernel, ""); /* float weights */
    kvc_model_free(m);
    th_rmdir(dir);
    checked++;
  }
  unsetenv("KVCACHE_ATTENTION");
  assert_true(checked >= 1);
}

static void llama_rotary_agrees(void **state) {
  (void)state;
  char own_dir[256], gqa_dir[256];
  kvc_build_params p = kvc_build_default_params();
  p.arch = KVC_ARCH_LLAMA;
  p.kv_heads = 2;
  th_tmpdir(own_dir, sizeof own_dir, "attn_llama_own");
  th_tmpdir(gqa_dir, sizeof gqa_dir, "attn_llama_gqa");
  p.attention = KVC_ATTENTION_GQA;
  assert_int_equal(kvc_build_model(gqa_dir, &p), KVC_OK);
  p.attention = KVC_ATTENTION_KVCACHE;
  assert_int_equal(kvc_build_model(own_dir, &p), KVC_OK);
  kvc_model *gqa = th_open_model(gqa_dir);
  kvc__ref *ref = NULL;
  assert_int_equal(kvc__ref_open(gqa_dir, &ref), KVC_OK);
  uint64_t rng = 77;
  for (int path = 0; path < 3; path++) {
    if (!use_path(path))
      continue;
    kvc_model *own = th_open_model(own_dir);
    char what[64];
    snprintf(what, sizeof what, "llama, %s", paths[path]);
    agree(own, gqa, NULL, ref, &rng, 7, 100, path == 0, what);
    kvc_model_free(own);
  }
  unsetenv("KVCACHE_ATTENTION");
  kvc__ref_free(ref);
  kvc_model_free(gqa);
  th_rmdir(own_dir);
  th_rmdir(gqa_dir);
}

/* A plain ONNX Runtime session (no kvcache library code on its path) over the kvcache-
 * attention graph, its operator registered from libkvcache_ops. */
typedef struct raw {
  const OrtApi *ort;
  OrtEnv *env;
  OrtSession *session;
  OrtMemoryInfo *mem;
} raw;

static OrtStatus *raw_open(raw *r, const char *dir, int with_library) {
  r->ort = OrtGetApiBase()->GetApi(ORT_API_VERSION);
  CHECK(r->ort->CreateEnv(ORT_LOGGING_LEVEL_FATAL, "raw", &r->env));
  CHECK(r->ort->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &r->mem));
  OrtSessionOptions *o = NULL;
  CHECK(r->ort->CreateSessionOptions(&o));
  CHECK(r->ort->SetIntraOpNumThreads(o, 1));
  if (with_library)
    CHECK(r->ort->RegisterCustomOpsLibrary_V2(o, KVC_OPS_LIBRARY));
  char path[4096];
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  r->session = NULL;
  OrtStatus *st = r->ort->CreateSession(r->env, path, o, &r->session);
  r->ort->ReleaseSessionOptions(o);
  return st;
}

static void raw_close(raw *r) {
  if (r->session)
    r->ort->ReleaseSession(r->session);
  r->ort->ReleaseMemoryInfo(r->mem);
  r->ort->ReleaseEnv(r->env);
}

/* One run of n tokens after `past` positions (past caches: 8 arrays of 4 x past x 64, key
 * then value per layer). seqlens_k and the past's time axis may be overridden to make bad
 * inputs (seqlens < -1: past + n - 1; head < 0: 64). Returns the status; on success the
 * logits (n x VOCAB) and, when `present` is not NULL, the presents (malloc'd). */
static OrtStatus *raw_run(raw *r, const int64_t *tokens, int n, float **caches, int past,
                          int32_t seqlens, int head, float *logits, float **present) {
  const OrtApi *ort = r->ort;
  const int L = 4, D = head < 0 ? 64 : head;
  int64_t pos[64];
  for (int i = 0; i < n; i++)
    pos[i] = past + i;
  int32_t lens = seqlens < -1 ? past + n - 1 : seqlens, total = past + n;
  static float empty[1];
  const int64_t seq_shape[2] = {1, n}, one[1] = {1}, past_shape[4] = {1, 4, past, D};
  const char *in_names[4 + 8], *out_names[1 + 8];
  OrtValue *in[4 + 8] = {NULL}, *out[1 + 8] = {NULL};
  char names[4][4][64];
  CHECK(ort->CreateTensorWithDataAsOrtValue(r->mem, (void *)tokens, n * sizeof *tokens, seq_shape,
                                            2, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, &in[0]));
  CHECK(ort->CreateTensorWithDataAsOrtValue(r->mem, pos, n * sizeof *pos, seq_shape, 2,
                                            ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, &in[1]));
  CHECK(ort->CreateTensorWithDataAsOrtValue(r->mem, &lens, sizeof lens, one, 1,
                                            ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, &in[2]));
  CHECK(ort->CreateTensorWithDataAsOrtValue(r->mem, &total, sizeof total, NULL, 0,
                                            ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, &in[3]));
  in_names[0] = "input_ids", in_names[1] = "position_ids", in_names[2] = "seqlens_k";
  in_names[3] = "total_sequence_length", out_names[0] = "logits";
  for (int l = 0; l < L; l++) {
    kvc__layer_io_names(KVC_NAMING_SEED, l, names[l][0], names[l][1], names[l][2], names[l][3], 64);
    for (int kv = 0; kv < 2; kv++) {
      in_names[4 + 2 * l + kv] = names[l][kv];
      out_names[1 + 2 * l + kv] = names[l][2 + kv];
      CHECK(ort->CreateTensorWithDataAsOrtValue(
          r->mem, caches ? caches[2 * l + kv] : empty, (size_t)4 * past * D * sizeof(float),
          past_shape, 4, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in[4 + 2 * l + kv]));
    }
  }
  OrtStatus *st =
      ort->Run(r->session, NULL, in_names, (const OrtValue *const *)in, 12, out_names, 9, out);
  for (int i = 0; !st && i < 9; i++) {
    float *data = NULL;
    CHECK(ort->GetTensorMutableData(out[i], (void **)&data));
    const size_t bytes =
        i ? (size_t)4 * (past + n) * 64 * sizeof(float) : (size_t)n * VOCAB * sizeof(float);
    if (i == 0)
      memcpy(logits, data, bytes);
    else if (present)
      memcpy(present[i - 1] = malloc(bytes), data, bytes);
  }
  for (int i = 0; i < 12; i++)
    ort->ReleaseValue(in[i]);
  for (int i = 0; i < 9; i++)
    if (out[i])
      ort->ReleaseValue(out[i]);
  return st;
}

static void free_caches(float **c) {
  for (int i = 0; i < 8; i++)
    free(c[i]);
}

/* A plain ONNX Runtime session over dir with the library: a prompt and then two steps fed
 * the presents back as past (present a new tensor: the past copied), each equal to
 * kvcache's own SHARED sequence within `tolerance`. */
static void plain_equals_kvcache(const char *dir, double tolerance) {
  raw r;
  CHECK(raw_open(&r, dir, 1));
  kvc_model *m = th_open_model(dir);
  kvc_seq *q = th_new_seq(m, KVC_KV_SHARED);
  int64_t tokens[7 + 2];
  uint64_t rng = 99;
  th_random_tokens(&rng, tokens, 9, VOCAB);
  float *logits = malloc(7 * VOCAB * sizeof *logits), *a[8] = {0}, *b[8] = {0};
  int32_t t32[9];
  for (int i = 0; i < 9; i++)
    t32[i] = (int32_t)tokens[i];
  CHECK(raw_run(&r, tokens, 7, NULL, 0, -2, -1, logits, a));
  th_append(q, t32, 7);
  double d = th_max_diff(logits + 6 * VOCAB, kvc_seq_logits(q), VOCAB);
  CHECK(raw_run(&r, tokens + 7, 1, a, 7, -2, -1, logits, b));
  th_append(q, t32 + 7, 1);
  d = fmax(d, th_max_diff(logits, kvc_seq_logits(q), VOCAB));
  free_caches(a);
  CHECK(raw_run(&r, tokens + 8, 1, b, 8, -2, -1, logits, a));
  th_append(q, t32 + 8, 1);
  d = fmax(d, th_max_diff(logits, kvc_seq_logits(q), VOCAB));
  if (d > tolerance)
    fail_msg("%s: plain ONNX Runtime vs kvcache: logits differ by %.3g", dir, d);
  free_caches(a);
  free_caches(b);
  free(logits);
  kvc_seq_free(q);
  kvc_model_free(m);
  raw_close(&r);
}

/* The library's RegisterCustomOps makes the graph runnable by any ONNX Runtime program, its
 * 4-bit version too (int8 activations: with the operator's past copied, each row still
 * sees the same bits, so the logits are kvcache's exactly). Without the library the
 * session is refused, naming the domain. */
static void plain_onnxruntime_loads_the_library(void **state) {
  (void)state;
  char dir[256], q4[300];
  kvc_build_params p = kvc_build_default_params();
  p.attention = KVC_ATTENTION_KVCACHE;
  th_tmpdir(dir, sizeof dir, "attn_raw");
  assert_int_equal(kvc_build_model(dir, &p), KVC_OK);
  raw r;
  OrtStatus *st = raw_open(&r, dir, 0);
  assert_non_null(st);
  assert_non_null(strstr(r.ort->GetErrorMessage(st), "ai.kvcache"));
  r.ort->ReleaseStatus(st);
  raw_close(&r);
  plain_equals_kvcache(dir, 1e-5);
  snprintf(q4, sizeof q4, "%s-q4", dir);
  kvc_quantize_report report;
  assert_int_equal(kvc_quantize(dir, q4, NULL, &report), KVC_OK);
  assert_int_equal(report.accuracy_level, 4);
  plain_equals_kvcache(q4, 0.0);
  th_rmdir(q4);
  th_rmdir(dir);
}

/* Bad lengths and shapes into the operator: an ONNX Runtime error naming the input, no
 * crash (the sanitizer build runs this too); a bad KVCACHE_ATTENTION is named when a
 * session is made. */
static void bad_inputs_name_the_input(void **state) {
  (void)state;
  char dir[256];
  kvc_build_params p = kvc_build_default_params();
  p.attention = KVC_ATTENTION_KVCACHE;
  th_tmpdir(dir, sizeof dir, "attn_bad");
  assert_int_equal(kvc_build_model(dir, &p), KVC_OK);
  raw r;
  CHECK(raw_open(&r, dir, 1));
  float *logits = malloc(4 * VOCAB * sizeof *logits), *past[8];
  for (int i = 0; i < 8; i++)
    past[i] = calloc(4 * 8 * 64, sizeof(float));
  const int64_t tokens[4] = {1, 2, 3, 4};
  const struct {
    int32_t seqlens;
    int past, head;
    const char *named;
  } cases[] = {
      {9, 0, -1, "seqlens_k"},  /* 10 positions in a present of 4 */
      {1, 0, -1, "seqlens_k"},  /* fewer positions than its 4 new tokens */
      {-1, 0, -1, "seqlens_k"}, /* length 0 */
      {-2, 8, 32, "past_key"},  /* head size 32, the graph's 64 */
      {100000, 8, -1, "seqlens_k"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    OrtStatus *st = raw_run(&r, tokens, 4, cases[i].past ? past : NULL, cases[i].past,
                            cases[i].seqlens, cases[i].head, logits, NULL);
    if (!st)
      fail_msg("case %zu ran", i);
    const char *msg = r.ort->GetErrorMessage(st);
    if (!strstr(msg, cases[i].named))
      fail_msg("case %zu: \"%s\" does not name %s", i, msg, cases[i].named);
    r.ort->ReleaseStatus(st);
  }
  for (int i = 0; i < 8; i++)
    free(past[i]);
  free(logits);
  raw_close(&r);

  setenv("KVCACHE_ATTENTION", "sse9", 1);
  kvc_model *m = NULL;
  assert_int_not_equal(kvc_model_open(dir, NULL, &m), KVC_OK);
  assert_null(m);
  assert_non_null(strstr(kvc_last_error(), "KVCACHE_ATTENTION=sse9"));
  unsetenv("KVCACHE_ATTENTION");
  th_rmdir(dir);
}

/* One ai.kvcache.Attention node as a graph of its own: H 4, KV 2, head size 16, packed q|k|v
 * in "query" or separate "query", "key", "value"; the cache of `kind` (float, float16, or
 * 8-bit rows of 16 codes and a scale). */
static OrtSession *single_node_of(OrtEnv *env, int packed, kvc__cache_kind kind) {
  enum { T_FLOAT = 1, T_INT8 = 3, T_INT32 = 6, T_FLOAT16 = 10 };
  const int32_t T_CACHE = kind == KVC_CACHE_F16  ? T_FLOAT16
                          : kind == KVC_CACHE_Q8 ? T_INT8
                                                 : T_FLOAT;
  const int64_t last = kind == KVC_CACHE_Q8 ? 16 + KVC_Q8_SCALE_BYTES : 16;
  kvc__onnx *m = kvc__onnx_new("attention");
  kvc__onnx_opset(m, KVC_OP_DOMAIN, 1);
  const kvc__dim q[] = {{"b", 0}, {"s", 0}, {NULL, packed ? 8 * 16 : 4 * 16}};
  const kvc__dim kv[] = {{"b", 0}, {"s", 0}, {NULL, 2 * 16}};
  const kvc__dim cache[] = {{"b", 0}, {NULL, 2}, {"pk", 0}, {NULL, last}};
  const kvc__dim cache_v[] = {{"b", 0}, {NULL, 2}, {"pv", 0}, {NULL, last}};
  const kvc__dim out[] = {{"b", 0}, {"s", 0}, {NULL, 4 * 16}}, rows[] = {{"b", 0}};
  kvc__onnx_input(m, "query", T_FLOAT, q, 3);
  if (!packed) {
    kvc__onnx_input(m, "key", T_FLOAT, kv, 3);
    kvc__onnx_input(m, "value", T_FLOAT, kv, 3);
  }
  kvc__onnx_input(m, "past_key", T_CACHE, cache, 4);
  kvc__onnx_input(m, "past_value", T_CACHE, cache_v, 4);
  kvc__onnx_input(m, "seqlens_k", T_INT32, rows, 1);
  kvc__onnx_input(m, "total_sequence_length", T_INT32, NULL, 0);
  kvc__onnx_output(m, "out", T_FLOAT, out, 3);
  kvc__onnx_output(m, "present_key", T_CACHE, cache, 4);
  kvc__onnx_output(m, "present_value", T_CACHE, cache, 4);
  const char *ins[] = {"query",      packed ? "" : "key", packed ? "" : "value",  "past_key",
                       "past_value", "seqlens_k",         "total_sequence_length"};
  const char *outs[] = {"out", "present_key", "present_value"};
  const kvc__attr attrs[] = {KVC_ATTR_I("num_heads", 4), KVC_ATTR_I("kv_num_heads", 2)};
  kvc__onnx_node(m, KVC_OP_ATTENTION, KVC_OP_DOMAIN, ins, 7, outs, 3, attrs, 2);
  OrtStatus *st = NULL;
  OrtSession *session = th_ops_session(env, m, &st);
  CHECK(st);
  return session;
}

static OrtSession *single_node(OrtEnv *env, int packed) {
  return single_node_of(env, packed, KVC_CACHE_F32);
}

/* Separate q, k, v give what packed q|k|v gives; present (a new tensor here) holds each
 * row's past, then its new keys; two rows at different lengths, three new tokens each. A
 * past_value whose time axis is not past_key's is refused, naming it. */
static void separate_inputs_equal_packed(void **state) {
  (void)state;
  const OrtApi *ort = kvc__ort();
  OrtEnv *env = NULL;
  OrtMemoryInfo *mem = NULL;
  CHECK(ort->CreateEnv(ORT_LOGGING_LEVEL_FATAL, "single", &env));
  CHECK(ort->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &mem));
  enum { B = 2, S = 3, H = 4, KV = 2, D = 16, P = 8 };
  static float qkv[B][S][(H + 2 * KV) * D], q[B][S][H * D], k[B][S][KV * D], v[B][S][KV * D];
  static float past_k[B][KV][P][D], past_v[B][KV][P][D];
  int32_t seqlens[B] = {4, 7}, total = P; /* rows hold 2 and 5 positions before this run */
  kvc__rng r = kvc__rng_seeded(5);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < S; t++)
      for (int i = 0; i < (H + 2 * KV) * D; i++) {
        const float x = uniform(&r);
        qkv[b][t][i] = x;
        if (i < H * D)
          q[b][t][i] = x;
        else if (i < (H + KV) * D)
          k[b][t][i - H * D] = x;
        else
          v[b][t][i - (H + KV) * D] = x;
      }
  for (size_t i = 0; i < sizeof past_k / sizeof(float); i++) {
    (&past_k[0][0][0][0])[i] = uniform(&r);
    (&past_v[0][0][0][0])[i] = uniform(&r);
  }
  float results[2][B * S * H * D], present[2][B * KV * P * D];
  for (int packed = 0; packed < 2; packed++) {
    OrtSession *session = single_node(env, packed);
    const int64_t q_shape[3] = {B, S, packed ? (H + 2 * KV) * D : H * D};
    const int64_t kv_shape[3] = {B, S, KV * D}, cache_shape[4] = {B, KV, P, D}, rows[1] = {B};
    OrtValue *in[7] = {NULL}, *out[3] = {NULL};
    const char *names[7] = {
        "query", "key", "value", "past_key", "past_value", "seqlens_k", "total_sequence_length"};
    CHECK(ort->CreateTensorWithDataAsOrtValue(mem, packed ? (void *)qkv : (void *)q,
                                              packed ? sizeof qkv : sizeof q, q_shape, 3,
                                              ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in[0]));
    CHECK(ort->CreateTensorWithDataAsOrtValue(mem, k, sizeof k, kv_shape, 3,
                                              ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in[1]));
    CHECK(ort->CreateTensorWithDataAsOrtValue(mem, v, sizeof v, kv_shape, 3,
                                              ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in[2]));
    CHECK(ort->CreateTensorWithDataAsOrtValue(mem, past_k, sizeof past_k, cache_shape, 4,
                                              ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in[3]));
    CHECK(ort->CreateTensorWithDataAsOrtValue(mem, past_v, sizeof past_v, cache_shape, 4,
                                              ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in[4]));
    CHECK(ort->CreateTensorWithDataAsOrtValue(mem, seqlens, sizeof seqlens, rows, 1,
                                              ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, &in[5]));
    CHECK(ort->CreateTensorWithDataAsOrtValue(mem, &total, sizeof total, NULL, 0,
                                              ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, &in[6]));
    const char *out_names[3] = {"out", "present_key", "present_value"};
    /* packed: inputs 0, 3..6 under their names (key and value are not graph inputs) */
    const char *use_names[7];
    OrtValue *use[7];
    int n = 0;
    for (int i = 0; i < 7; i++)
      if (!packed || (i != 1 && i != 2)) {
        use_names[n] = names[i];
        use[n++] = in[i];
      }
    CHECK(ort->Run(session, NULL, use_names, (const OrtValue *const *)use, (size_t)n, out_names, 3,
                   out));
    float *data = NULL;
    CHECK(ort->GetTensorMutableData(out[0], (void **)&data));
    memcpy(results[packed], data, sizeof results[packed]);
    CHECK(ort->GetTensorMutableData(out[1], (void **)&data));
    memcpy(present[packed], data, sizeof present[packed]);
    for (int i = 0; i < 3; i++)
      ort->ReleaseValue(out[i]);
    total = -1; /* a negative total length: refused, naming it */
    memset(out, 0, sizeof out);
    OrtStatus *negative = ort->Run(session, NULL, use_names, (const OrtValue *const *)use,
                                   (size_t)n, out_names, 3, out);
    assert_non_null(negative);
    if (!strstr(ort->GetErrorMessage(negative), "total_sequence_length = -1"))
      fail_msg("\"%s\" does not name total_sequence_length", ort->GetErrorMessage(negative));
    ort->ReleaseStatus(negative);
    total = P;
    if (packed) { /* a past_value one position shorter than past_key */
      const int64_t short_shape[4] = {B, KV, P - 1, D};
      ort->ReleaseValue(in[4]);
      CHECK(ort->CreateTensorWithDataAsOrtValue(mem, past_v, sizeof past_v - D * KV * B * 4,
                                                short_shape, 4, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                                &in[4]));
      use[2] = in[4];
      memset(out, 0, sizeof out);
      OrtStatus *st = ort->Run(session, NULL, use_names, (const OrtValue *const *)use, (size_t)n,
                               out_names, 3, out);
      assert_non_null(st);
      if (!strstr(ort->GetErrorMessage(st), "past_value"))
        fail_msg("\"%s\" does not name past_value", ort->GetErrorMessage(st));
      ort->ReleaseStatus(st);
    }
    for (int i = 0; i < 7; i++)
      ort->ReleaseValue(in[i]);
    ort->ReleaseSession(session);
  }
  assert_true(th_max_diff(results[0], results[1], B * S * H * D) <= 1e-6);
  assert_true(th_max_diff(present[0], present[1], B * KV * P * D) <= 1e-6);
  for (int b = 0; b < B; b++) /* present = past, then the new keys, row by row */
    for (int h = 0; h < KV; h++)
      for (int t = 0; t < seqlens[b] + 1; t++) {
        const int first = seqlens[b] + 1 - S;
        const float *want = t < first ? past_k[b][h][t] : &k[b][t - first][h * D];
        const float *got = present[0] + (((size_t)b * KV + h) * P + t) * D;
        if (th_max_diff(got, want, D) != 0)
          fail_msg("row %d, head %d, position %d: present differs", b, h, t);
      }
  ort->ReleaseMemoryInfo(mem);
  ort->ReleaseEnv(env);
}

enum { F_H = 4, F_KV = 2, F_D = 16, F_S = 5 }; /* single_node's sizes, 5 tokens */

/* One run of a packed single node on tokens [t0, t0 + n) of qkv after a past of t0
 * positions (past_k, past_v: rows of the cache's kind, (1, KV, t0, D or D + 4)); out gets the
 * context rows, the presents come back as values the caller releases. */
static void run_tokens(OrtSession *session, OrtMemoryInfo *mem, const float *qkv, int t0, int n,
                       kvc__cache_kind kind, void *past_k, void *past_v, float *out,
                       OrtValue **present) {
  const OrtApi *ort = kvc__ort();
  const ONNXTensorElementDataType cache =
      kind == KVC_CACHE_F16  ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16
      : kind == KVC_CACHE_Q8 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8
                             : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  const size_t row_bytes = kvc__cache_row_bytes(kind, F_D), row = (F_H + 2 * F_KV) * F_D;
  const int64_t last = kind == KVC_CACHE_Q8 ? F_D + KVC_Q8_SCALE_BYTES : F_D;
  const int64_t q_shape[3] = {1, n, (int64_t)row}, past_shape[4] = {1, F_KV, t0, last},
                one[1] = {1};
  int32_t seqlens = t0 + n - 1, total = t0 + n;
  static uint16_t none[1]; /* an empty past still needs an address */
  OrtValue *in[5] = {NULL}, *outs[3] = {NULL};
  CHECK(ort->CreateTensorWithDataAsOrtValue(mem, (void *)(qkv + (size_t)t0 * row),
                                            (size_t)n * row * sizeof(float), q_shape, 3,
                                            ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in[0]));
  const size_t past_bytes = (size_t)(F_KV * t0) * row_bytes;
  CHECK(ort->CreateTensorWithDataAsOrtValue(mem, t0 ? past_k : none, past_bytes, past_shape, 4,
                                            cache, &in[1]));
  CHECK(ort->CreateTensorWithDataAsOrtValue(mem, t0 ? past_v : none, past_bytes, past_shape, 4,
                                            cache, &in[2]));
  CHECK(ort->CreateTensorWithDataAsOrtValue(mem, &seqlens, sizeof seqlens, one, 1,
                                            ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, &in[3]));
  CHECK(ort->CreateTensorWithDataAsOrtValue(mem, &total, sizeof total, NULL, 0,
                                            ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, &in[4]));
  const char *names[5] = {"query", "past_key", "past_value", "seqlens_k", "total_sequence_length"};
  const char *out_names[3] = {"out", "present_key", "present_value"};
  CHECK(ort->Run(session, NULL, names, (const OrtValue *const *)in, 5, out_names, 3, outs));
  float *ctx = NULL;
  CHECK(ort->GetTensorMutableData(outs[0], (void **)&ctx));
  memcpy(out, ctx, (size_t)n * F_H * F_D * sizeof *out);
  ort->ReleaseValue(outs[0]);
  present[0] = outs[1], present[1] = outs[2];
  for (int i = 0; i < 5; i++)
    ort->ReleaseValue(in[i]);
}

/* A narrow cache: present holds the new keys and values rounded (the float operator's, as
 * halves or as 8-bit rows), and a prompt attends to those: five tokens in one run give, bit
 * for bit, the contexts and cache of five runs of one token each. */
static void narrow_cache_decodes_as_its_prompt(kvc__cache_kind kind) {
  const OrtApi *ort = kvc__ort();
  OrtEnv *env = NULL;
  OrtMemoryInfo *mem = NULL;
  CHECK(ort->CreateEnv(ORT_LOGGING_LEVEL_FATAL, "narrow", &env));
  CHECK(ort->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &mem));
  enum { ROW = (F_H + 2 * F_KV) * F_D, CTX = F_H * F_D, ROWS = F_KV * F_S };
  const size_t row_bytes = kvc__cache_row_bytes(kind, F_D);
  static float qkv[F_S * ROW], prompt[2][F_S * CTX], steps[F_S * CTX];
  kvc__rng r = kvc__rng_seeded(17);
  for (int i = 0; i < F_S * ROW; i++)
    qkv[i] = uniform(&r);
  const char *name = kind == KVC_CACHE_F16 ? "float16" : "8-bit";
  for (int p = 0; p < 3; p++) {
    if (!use_path(p))
      continue;
    OrtSession *f32 = single_node_of(env, 1, KVC_CACHE_F32), *narrow = single_node_of(env, 1, kind);
    OrtValue *pf[2], *pn[2];
    run_tokens(f32, mem, qkv, 0, F_S, KVC_CACHE_F32, NULL, NULL, prompt[0], pf);
    run_tokens(narrow, mem, qkv, 0, F_S, kind, NULL, NULL, prompt[1], pn);
    for (int kv = 0; kv < 2; kv++) {
      const float *want = NULL;
      const uint8_t *got = NULL;
      CHECK(ort->GetTensorMutableData(pf[kv], (void **)&want));
      CHECK(ort->GetTensorMutableData(pn[kv], (void **)&got));
      for (int j = 0; j < ROWS; j++) { /* each row: the float row, rounded */
        uint8_t expect[F_D * 2 + KVC_Q8_SCALE_BYTES];
        for (int i = 0; i < F_D && kind == KVC_CACHE_F16; i++) {
          const uint16_t h = kvc__half_from_float(want[j * F_D + i]);
          memcpy(expect + 2 * i, &h, 2);
        }
        if (kind == KVC_CACHE_Q8)
          kvc__q8_quantize_row(want + j * F_D, F_D, (int8_t *)expect);
        if (memcmp(got + j * row_bytes, expect, row_bytes) != 0)
          fail_msg("%s: present %s row %d is not the float present's rounded to %s", paths[p],
                   kv ? "value" : "key", j, name);
      }
    }
    double worst = 0;
    for (int i = 0; i < F_S * CTX; i++)
      worst = fmax(worst, fabs(prompt[0][i] - prompt[1][i]));
    if (!(worst > 0 && worst < (kind == KVC_CACHE_F16 ? 1e-2 : 3e-2)))
      fail_msg("%s, %s cache: the contexts differ from the float cache's by %.3g: expected the "
               "rounding, and only that",
               paths[p], name, worst);
    /* token by token, each run's presents the next one's pasts */
    OrtValue *cache[2] = {NULL, NULL};
    for (int t = 0; t < F_S; t++) {
      void *pk = NULL, *pv = NULL;
      if (t) {
        CHECK(ort->GetTensorMutableData(cache[0], &pk));
        CHECK(ort->GetTensorMutableData(cache[1], &pv));
      }
      OrtValue *next[2];
      run_tokens(narrow, mem, qkv, t, 1, kind, pk, pv, steps + (size_t)t * CTX, next);
      for (int kv = 0; kv < 2; kv++) {
        if (cache[kv])
          ort->ReleaseValue(cache[kv]);
        cache[kv] = next[kv];
      }
    }
    assert_memory_equal(steps, prompt[1], sizeof steps);
    for (int kv = 0; kv < 2; kv++) {
      const void *a = NULL, *b = NULL;
      CHECK(ort->GetTensorMutableData(cache[kv], (void **)&a));
      CHECK(ort->GetTensorMutableData(pn[kv], (void **)&b));
      assert_memory_equal(a, b, ROWS * row_bytes);
      ort->ReleaseValue(cache[kv]), ort->ReleaseValue(pf[kv]), ort->ReleaseValue(pn[kv]);
    }
    ort->ReleaseSession(f32);
    ort->ReleaseSession(narrow);
  }
  unsetenv("KVCACHE_ATTENTION");
  ort->ReleaseMemoryInfo(mem);
  ort->ReleaseEnv(env);
}

static void a_float16_cache_decodes_as_its_prompt(void **state) {
  (void)state;
  narrow_cache_decodes_as_its_prompt(KVC_CACHE_F16);
}

static void an_8bit_cache_decodes_as_its_prompt(void **state) {
  (void)state;
  narrow_cache_decodes_as_its_prompt(KVC_CACHE_Q8);
}

/* kvc_model_attention_ms times both operators on a model's sizes, kvc_model_products_ms the
 * int8 products; their arguments are checked. */
static void attention_alone_is_timed(void **state) {
  (void)state;
  char dir[256];
  kvc_build_params p = kvc_build_default_params();
  p.attention = KVC_ATTENTION_KVCACHE;
  p.kv_heads = 2;
  th_tmpdir(dir, sizeof dir, "attn_probe");
  assert_int_equal(kvc_build_model(dir, &p), KVC_OK);
  kvc_model *m = th_open_model(dir);
  const int32_t at[2] = {0, 511};
  for (int k = 0; k < 2; k++) {
    double ms[2] = {0, 0};
    const kvc_attention kind = k ? KVC_ATTENTION_KVCACHE : KVC_ATTENTION_GQA;
    if (kvc_model_attention_ms(m, kind, at, 2, 3, ms) != KVC_OK)
      fail_msg("%s: %s", kvc_attention_name(kind), kvc_last_error());
    assert_true(ms[0] > 0 && ms[1] > 0 && ms[1] < 1e4);
  }
  double ms[2];
  assert_int_equal(kvc_model_attention_ms(m, KVC_ATTENTION_CONCAT, at, 2, 3, ms),
                   KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "attention = 0"));
  const int32_t past_end[1] = {512};
  assert_int_equal(kvc_model_attention_ms(m, KVC_ATTENTION_GQA, past_end, 1, 3, ms),
                   KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "positions[0] = 512"));
  assert_int_equal(kvc_model_attention_ms(m, KVC_ATTENTION_GQA, at, 0, 3, ms), KVC_ERR_INVALID_ARG);
  /* the products' probe likewise: 1 and 16 rows (the AMX path's first tile), bad arguments */
  double one = 0, sixteen = 0;
  assert_int_equal(kvc_model_products_ms(m, 1, 3, &one), KVC_OK);
  assert_int_equal(kvc_model_products_ms(m, 16, 3, &sixteen), KVC_OK);
  assert_true(one > 0 && sixteen > 0 && sixteen < 1e4);
  assert_int_equal(kvc_model_products_ms(m, 0, 3, &one), KVC_ERR_INVALID_ARG);
  assert_int_equal(kvc_model_products_ms(m, 1, 0, &one), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "rows >= 1, reads >= 1"));
  kvc_model_free(m);
  th_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(kernels_match_a_double_softmax),
      cmocka_unit_test(halves_convert_exactly),
      cmocka_unit_test(q8_rows_round_to_nearest),
      cmocka_unit_test(graphs_agree_on_every_path),
      cmocka_unit_test(info_names_the_kernel_that_runs),
      cmocka_unit_test(llama_rotary_agrees),
      cmocka_unit_test(plain_onnxruntime_loads_the_library),
      cmocka_unit_test(bad_inputs_name_the_input),
      cmocka_unit_test(separate_inputs_equal_packed),
      cmocka_unit_test(a_float16_cache_decodes_as_its_prompt),
      cmocka_unit_test(an_8bit_cache_decodes_as_its_prompt),
      cmocka_unit_test(attention_alone_is_timed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
