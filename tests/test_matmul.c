/* test_matmul.c: kvcache's int8-activation block products (matmul_kernel.h, matmul_op.c).
 * Every path this CPU has (KVCACHE_MATMUL's: portable, avx2, avx512, amx) gives the portable path's
 * bits, whatever the row count and the column split; the result stays within what rounding the
 * activations to int8 can move it from the product in double; the operator in ONNX Runtime gives
 * the kernels' bits, one row alone as among others, and refuses bad attributes and inputs by name.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "matmul_kernel.h"
#include "modelgen/onnx.h"
#include "ops.h"
#include "ort.h"
#include "quant.h"
#include "rng.h"

#define CHECK(call) assert_int_equal(kvc__ort_check((call), #call), KVC_OK)

static float uniform(kvc__rng *r) {
  return (float)kvc__rng_uniform(r) - 0.5f;
}

/* A quantised (K, N) matrix and `rows` rows of x. */
typedef struct case_ {
  kvc__qshape shape;
  kvc__qweights w;
  uint8_t *codes, *zero_points;
  float *scales, *x;
  int64_t rows;
  int half_scales; /* every scale an IEEE half's value, as quantize writes them */
} case_;

static case_ make_case(int bits, int block, int symmetric, int64_t k, int64_t n, int64_t rows,
                       uint64_t seed) {
  case_ c = {.shape = {k, n, bits, block, symmetric}, .rows = rows, .half_scales = 1};
  kvc__rng r = kvc__rng_seeded(seed);
  float *w = malloc((size_t)(k * n) * sizeof *w);
  for (int64_t i = 0; i < k * n; i++)
    w[i] = uniform(&r) * (i % 7 == 0 ? 4.0f : 1.0f) + (symmetric ? 0.0f : 0.2f);
  c.codes = calloc(kvc__q_weight_bytes(&c.shape), 1);
  c.scales = calloc(kvc__q_scale_count(&c.shape), sizeof(float));
  c.zero_points = symmetric ? NULL : calloc(kvc__q_zero_bytes(&c.shape), 1);
  kvc__quantize(&c.shape, w, c.codes, c.scales, c.zero_points);
  free(w);
  c.x = malloc((size_t)(rows * k) * sizeof *c.x);
  for (int64_t i = 0; i < rows * k; i++)
    c.x[i] = uniform(&r) * (i % 5 == 0 ? 3.0f : 1.0f);
  if (rows > 2) /* a row of zeros: scale 0, codes 0 */
    memset(c.x + k, 0, (size_t)k * sizeof *c.x);
  c.w = (kvc__qweights){.k = k,
                        .n = n,
                        .blocks = kvc__q_blocks(&c.shape),
                        .bits = bits,
                        .block = block,
                        .codes = c.codes,
                        .scales = c.scales,
                        .zero_points = c.zero_points};
  return c;
}

/* The same case with scales that are not half floats' values (as another quantiser may
 * write them): the panels keep them as floats. */
static void unround_scales(case_ *c) {
  for (size_t i = 0; i < kvc__q_scale_count(&c->shape); i++) {
    assert_true(kvc__q_half_up(c->scales[i]) == c->scales[i]);
    c->scales[i] = nextafterf(c->scales[i], INFINITY);
    assert_true(kvc__q_half_up(c->scales[i]) != c->scales[i]);
  }
  c->half_scales = 0;
}

static void free_case(case_ *c) {
  free(c->codes), free(c->scales), free(c->zero_points), free(c->x);
}

/* y = x W through implementation `impl`, rows [r0, r0 + nrows), columns [n0, n1). */
static void product(const case_ *c, kvc__qmm_impl impl, int64_t r0, int64_t nrows, int64_t n0,
                    int64_t n1, float *y) {
  const int64_t codes = c->w.blocks * c->w.block;
  int8_t *q = malloc((size_t)(nrows * codes));
  float *scale = malloc((size_t)(nrows * c->w.blocks) * sizeof *scale);
  int32_t *sum = malloc((size_t)(nrows * c->w.blocks) * sizeof *sum);
  kvc__qrow *rows = malloc((size_t)nrows * sizeof *rows);
  for (int64_t i = 0; i < nrows; i++) {
    /* as the operator lays them out: scales and sums block by block */
    impl.quantize(c->x + (r0 + i) * c->w.k, c->w.k, c->w.block, c->w.blocks, q + i * codes,
                  scale + i, sum + i, nrows);
    rows[i] = (kvc__qrow){q + i * codes, scale + i, sum + i, nrows};
  }
  kvc__qpanels panels = {0};
  if (impl.path != KVC_QMM_PORTABLE) {
    /* kept (huge pages) or malloc'd alike: the same panels */
    assert_int_equal(kvc__qmm_pack(&c->w, (int)(nrows & 1), &panels), 0);
    assert_int_equal(panels.half_scales, c->half_scales); /* in two bytes when exact */
  }
  impl.product(&c->w, &panels, rows, nrows, n0, n1, y + r0 * c->w.n, c->w.n);
  kvc__qmm_unpack(&panels);
  free(q), free(scale), free(sum), free(rows);
}

static const int64_t ks[] = {100, 256, 1000}, ns[] = {1, 13, 40, 72};
static const int blocks[] = {16, 32, 64, 128, 256};

/* Every path: bit for bit the portable result, for all rows at once, one row at a time, and
 * the columns split unevenly. */
static void paths_rows_and_splits_give_the_same_bits(void **state) {
  (void)state;
  int compared = 0;
  for (int bits = 4; bits <= 8; bits += 4)
    for (int symmetric = 0; symmetric < 2; symmetric++)
      for (size_t bi = 0; bi < sizeof blocks / sizeof *blocks; bi++)
        for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++)
          for (int half = 1; half >= 0; half--) {
            /* the AMX path's tiles: 2 or 7 rows (a decode step of several sequences: tiles of
             * fewer rows), 17 (a tile of 16 and one of 1), 37 (two of 16 and one of 5) */
            static const int64_t row_counts[] = {7, 37, 2, 17};
            const int64_t n = ns[(bi + ki + (size_t)half) % 4];
            const int64_t rows = row_counts[(ki + (size_t)half + 2 * (bi % 2)) % 4];
            case_ c = make_case(bits, blocks[bi], symmetric, ks[ki], n, rows, 11 + bi * 7 + ki);
            if (!half)
              unround_scales(&c);
            float *want = calloc((size_t)(rows * n), sizeof *want);
            float *got = calloc((size_t)(rows * n), sizeof *got);
            product(&c, kvc__qmm_for(KVC_QMM_PORTABLE), 0, rows, 0, n, want);
            for (int p = KVC_QMM_PORTABLE; p < KVC_QMM_PATHS; p++) {
              if (!kvc__qmm_runs(p))
                continue;
              const kvc__qmm_impl impl = kvc__qmm_for((kvc__qmm_path)p);
              for (int way = 0; way < 4; way++) {
                if (way == 3 && impl.one_row == impl.product)
                  continue; /* way 1 ran it */
                memset(got, 0xff, (size_t)(rows * n) * sizeof *got);
                if (way == 0)
                  product(&c, impl, 0, rows, 0, n, got);
                for (int64_t r = 0; way == 1 && r < rows; r++)
                  product(&c, impl, r, 1, 0, n, got);
                if (way == 3) { /* one row at a time as a decode step runs it (one_row) */
                  kvc__qmm_impl row = impl;
                  row.product = impl.one_row;
                  for (int64_t r = 0; r < rows; r++)
                    product(&c, row, r, 1, 0, n, got);
                }
                if (way == 2) { /* splits fall on panels */
                  const int64_t cut = n > 8 ? 8 : n;
                  product(&c, impl, 0, rows, 0, cut, got);
                  if (cut < n)
                    product(&c, impl, 0, rows, cut, n, got);
                }
                if (memcmp(want, got, (size_t)(rows * n) * sizeof *got) != 0)
                  fail_msg("path %s (%s), %d bits, block %d, K %lld, N %lld, %s scales, way %d: "
                           "not the portable path's bits",
                           kvc__qmm_path_name((kvc__qmm_path)p), kvc__qmm_path_name(impl.path),
                           bits, blocks[bi], (long long)ks[ki], (long long)n,
                           half ? "half" : "float", way);
                compared++;
              }
            }
            free(want), free(got);
            free_case(&c);
          }
  print_message("%d comparisons\n", compared);
  assert_true(compared >= 2 * 2 * 5 * 3 * 2 * 3);
}

/* quantize's scales in two bytes: rounded up in magnitude to the next half float's value
 * within the halves' normal range (so that a block's range still fits its codes), kept
 * outside it. */
static void scales_round_up_to_half_floats(void **state) {
  (void)state;
  assert_true(kvc__q_half_up(1.0f) == 1.0f);
  assert_true(kvc__q_half_up(nextafterf(1.0f, 2.0f)) == 1.0f + 0x1p-10f);
  assert_true(kvc__q_half_up(-0.1f) == -0.10003662109375f);    /* magnitude up */
  assert_true(kvc__q_half_up(nextafterf(2.0f, 0.0f)) == 2.0f); /* carry into the exponent */
  assert_true(kvc__q_half_up(65504.0f) == 65504.0f);
  assert_true(kvc__q_half_up(65505.0f) == 65505.0f); /* would round past the largest half */
  assert_true(kvc__q_half_up(0x1p-15f + 0x1p-30f) == 0x1p-15f + 0x1p-30f); /* subnormal */
  assert_true(kvc__q_half_up(0x1p-14f) == 0x1p-14f);
  assert_true(isnan(kvc__q_half_up(NAN)));
  kvc__rng r = kvc__rng_seeded(5);
  for (int i = 0; i < 100000; i++) {
    const float f = (float)kvc__rng_uniform(&r) * 8.0f + 0x1p-14f, h = kvc__q_half_up(f);
    assert_true(h >= f && h - f <= f * 0x1p-10f);
  }
}

/* Against x W in double, W as quantised: rounding x to int8 moves each term by at most half a
 * step of its block (amax / 254) times |w|; float sums add a little more. */
static void products_stay_within_the_int8_bound(void **state) {
  (void)state;
  for (int bits = 4; bits <= 8; bits += 4)
    for (size_t bi = 0; bi < sizeof blocks / sizeof *blocks; bi++) {
      const int64_t k = 1000, n = 13, rows = 4;
      case_ c = make_case(bits, blocks[bi], bits == 8, k, n, rows, 100 + bi);
      float *y = calloc((size_t)(rows * n), sizeof *y);
      product(&c, kvc__qmm_for(KVC_QMM_PORTABLE), 0, rows, 0, n, y);
      double worst = 0;
      for (int64_t r = 0; r < rows; r++)
        for (int64_t col = 0; col < n; col++) {
          double ref = 0, bound = 0, mass = 0;
          for (int64_t b = 0; b < c.w.blocks; b++) {
            double amax = 0, wsum = 0;
            for (int64_t i = b * blocks[bi]; i < k && i < (b + 1) * blocks[bi]; i++) {
              const double x = c.x[r * k + i];
              const double w = kvc__dequantize(&c.shape, c.codes, c.scales, c.zero_points, i, col);
              ref += x * w, mass += fabs(x * w), wsum += fabs(w);
              amax = fabs(x) > amax ? fabs(x) : amax;
            }
            bound += amax / 254.0 * wsum;
          }
          const double err = fabs(y[r * n + col] - ref);
          if (err > bound + 1e-5 * mass + 1e-30)
            fail_msg("%d bits, block %d, row %lld, column %lld: %g from the double product, "
                     "bound %g",
                     bits, blocks[bi], (long long)r, (long long)col, err, bound);
          if (r == 1)
            assert_true(y[r * n + col] == 0.0f); /* the row of zeros */
          worst = err / (bound + 1e-30) > worst ? err / (bound + 1e-30) : worst;
        }
      assert_true(worst > 0.0); /* the int8 rounding is there, and inside its bound */
      free(y);
      free_case(&c);
    }
}

/* Step 1 on every path gives the portable path's codes, scales (bit for bit) and code sums,
 * whatever the values: ties at half a step (which round to even), zeros, subnormals, huge
 * values, infinities and NaNs, in whole blocks and in a last short one. */
static void every_path_quantizes_alike(void **state) {
  (void)state;
  static const int64_t lengths[] = {16, 47, 100, 1000};
  static const int qblocks[] = {16, 32, 48, 256};
  kvc__rng r = kvc__rng_seeded(21);
  int compared = 0;
  for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++)
    for (size_t bi = 0; bi < sizeof qblocks / sizeof *qblocks; bi++)
      for (int kind = 0; kind < 6; kind++) {
        const int64_t k = lengths[li], block = qblocks[bi], nb = (k + block - 1) / block;
        float x[1000];
        for (int64_t i = 0; i < k; i++) {
          const float u = (float)kvc__rng_uniform(&r) - 0.5f;
          /* kind 1: amax 127, so x x 127 / amax = x: halves are ties */
          x[i] = kind == 1 ? (float)((int)(u * 200.0f)) * 0.5f : u * 3.0f;
          x[i] = kind == 2 ? u * 0x1p-140f : kind == 3 ? u * 0x1p120f : x[i];
        }
        if (kind == 1)
          for (int64_t b = 0; b < nb; b++)
            x[b * block] = 127.0f;
        if (kind == 4)
          x[k / 3] = INFINITY, x[k - 1] = -INFINITY;
        if (kind == 5)
          x[k / 2] = NAN, x[k - 1] = -NAN, x[0] = 0.0f;
        int8_t want_q[1024], got_q[1024];
        float want_s[64], got_s[64];
        int32_t want_sum[64], got_sum[64];
        kvc__qmm_quantize_row(x, k, (int)block, nb, want_q, want_s, want_sum, 1);
        for (int p = KVC_QMM_PORTABLE + 1; p < KVC_QMM_PATHS; p++) {
          if (!kvc__qmm_runs(p))
            continue;
          memset(got_q, 0x55, sizeof got_q);
          kvc__qmm_for((kvc__qmm_path)p).quantize(x, k, (int)block, nb, got_q, got_s, got_sum, 1);
          if (memcmp(want_q, got_q, (size_t)(nb * block)) ||
              memcmp(want_s, got_s, (size_t)nb * sizeof *got_s) ||
              memcmp(want_sum, got_sum, (size_t)nb * sizeof *got_sum))
            fail_msg("path %s, K %lld, block %lld, values of kind %d: not the portable codes",
                     kvc__qmm_path_name((kvc__qmm_path)p), (long long)k, (long long)block, kind);
          compared++;
        }
      }
  print_message("%d comparisons\n", compared);
}

/* A NaN in a row reaches every product of that row, on every path, as it would in float;
 * the other rows are untouched. */
static void a_nan_reaches_its_rows_products(void **state) {
  (void)state;
  enum { ROWS = 19, N = 40 }; /* a tile of 16 rows and 3 more */
  case_ c = make_case(4, 32, 0, 100, N, ROWS, 9);
  c.x[2 * 100 + 40] = NAN;
  float y[ROWS * N];
  for (int p = KVC_QMM_PORTABLE; p < KVC_QMM_PATHS; p++) {
    if (!kvc__qmm_runs(p))
      continue;
    product(&c, kvc__qmm_for((kvc__qmm_path)p), 0, ROWS, 0, N, y);
    for (int r = 0; r < ROWS; r++)
      for (int n = 0; n < N; n++)
        assert_true(r == 2 ? isnan(y[r * N + n]) : !isnan(y[r * N + n]));
  }
  free_case(&c);
}

/* One ai.kvcache.MatMulNBits node over graph inputs A, B, scales (and zero points). */
static OrtSession *single_node(OrtEnv *env, const case_ *c, int64_t bits_attr,
                               OrtStatus **failure) {
  enum { T_FLOAT = 1, T_UINT8 = 2 };
  kvc__onnx *m = kvc__onnx_new("matmul");
  kvc__onnx_opset(m, KVC_OP_DOMAIN, 1);
  const kvc__dim a[] = {{"m", 0}, {NULL, c->w.k}}, y[] = {{"m", 0}, {NULL, c->w.n}};
  const kvc__dim b[] = {{NULL, c->w.n}, {NULL, c->w.blocks}, {NULL, c->w.block * c->w.bits / 8}};
  const kvc__dim s[] = {{"scales", 0}}; /* symbolic: a run may give the wrong count */
  const kvc__dim z[] = {{NULL, (int64_t)kvc__q_zero_bytes(&c->shape)}};
  kvc__onnx_input(m, "A", T_FLOAT, a, 2);
  kvc__onnx_input(m, "B", T_UINT8, b, 3);
  kvc__onnx_input(m, "scales", T_FLOAT, s, 1);
  if (c->zero_points)
    kvc__onnx_input(m, "zero_points", T_UINT8, z, 1);
  kvc__onnx_output(m, "Y", T_FLOAT, y, 2);
  const char *ins[] = {"A", "B", "scales", "zero_points"}, *outs[] = {"Y"};
  const kvc__attr attrs[] = {KVC_ATTR_I("K", c->w.k), KVC_ATTR_I("N", c->w.n),
                             KVC_ATTR_I("bits", bits_attr), KVC_ATTR_I("block_size", c->w.block),
                             KVC_ATTR_I("accuracy_level", 4)};
  kvc__onnx_node(m, KVC_OP_MATMUL, KVC_OP_DOMAIN, ins, c->zero_points ? 4 : 3, outs, 1, attrs, 5);
  return th_ops_session(env, m, failure);
}

/* Runs the node over rows [r0, r0 + rows) of x into y; the status of the run. */
static OrtStatus *run_node(const OrtApi *ort, OrtSession *session, const case_ *c, int64_t r0,
                           int64_t rows, int64_t scales_given, float *y) {
  OrtMemoryInfo *mem = NULL;
  CHECK(ort->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &mem));
  const int64_t a_dims[2] = {rows, c->w.k}, y_dims[2] = {rows, c->w.n};
  const int64_t b_dims[3] = {c->w.n, c->w.blocks, c->w.block * c->w.bits / 8};
  const int64_t s_dims[1] = {scales_given}, z_dims[1] = {(int64_t)kvc__q_zero_bytes(&c->shape)};
  OrtValue *in[4] = {NULL}, *out = NULL;
  CHECK(ort->CreateTensorWithDataAsOrtValue(mem, c->x + r0 * c->w.k,
                                            (size_t)(rows * c->w.k) * sizeof(float), a_dims, 2,
                                            ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in[0]));
  CHECK(ort->CreateTensorWithDataAsOrtValue(mem, c->codes, kvc__q_weight_bytes(&c->shape), b_dims,
                                            3, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, &in[1]));
  CHECK(ort->CreateTensorWithDataAsOrtValue(mem, c->scales, (size_t)scales_given * sizeof(float),
                                            s_dims, 1, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                            &in[2]));
  if (c->zero_points)
    CHECK(ort->CreateTensorWithDataAsOrtValue(mem, c->zero_points, kvc__q_zero_bytes(&c->shape),
                                              z_dims, 1, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8,
                                              &in[3]));
  CHECK(ort->CreateTensorWithDataAsOrtValue(mem, y, (size_t)(rows * c->w.n) * sizeof(float), y_dims,
                                            2, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &out));
  const char *in_names[] = {"A", "B", "scales", "zero_points"}, *out_names[] = {"Y"};
  OrtStatus *st = ort->Run(session, NULL, in_names, (const OrtValue *const *)in,
                           c->zero_points ? 4 : 3, out_names, 1, &out);
  for (int i = 0; i < 4; i++)
    if (in[i])
      ort->ReleaseValue(in[i]);
  ort->ReleaseValue(out);
  ort->ReleaseMemoryInfo(mem);
  return st;
}

/* Through ONNX Runtime with each path forced: the kernels' bits for 300 rows (the pool splits
 * the 400 columns into pairs of panels) and for one row alone. */
static void the_operator_gives_the_kernels_bits(void **state) {
  (void)state;
  const OrtApi *ort = kvc__ort();
  OrtEnv *env = NULL;
  CHECK(ort->CreateEnv(ORT_LOGGING_LEVEL_FATAL, "matmul", &env));
  for (int bits = 4; bits <= 8; bits += 4) {
    const int64_t rows = 300;
    case_ c = make_case(bits, 32, bits == 4, 512, 400, rows, 77 + bits);
    float *want = calloc((size_t)(rows * c.w.n), sizeof *want);
    float *got = calloc((size_t)(rows * c.w.n), sizeof *got);
    product(&c, kvc__qmm_for(KVC_QMM_PORTABLE), 0, rows, 0, c.w.n, want);
    for (int p = 0; p < KVC_QMM_PATHS; p++) {
      if (!kvc__qmm_runs(p))
        continue;
      setenv("KVCACHE_MATMUL", kvc__qmm_path_name((kvc__qmm_path)p), 1);
      OrtStatus *st = NULL;
      OrtSession *session = single_node(env, &c, bits, &st);
      CHECK(st);
      CHECK(run_node(ort, session, &c, 0, rows, c.w.n * c.w.blocks, got));
      assert_memory_equal(want, got, (size_t)(rows * c.w.n) * sizeof *got);
      memset(got, 0, (size_t)c.w.n * sizeof *got);
      CHECK(run_node(ort, session, &c, 5, 1, c.w.n * c.w.blocks, got));
      assert_memory_equal(want + 5 * c.w.n, got, (size_t)c.w.n * sizeof *got);
      /* scales of the wrong size: refused by name, nothing computed */
      st = run_node(ort, session, &c, 0, 1, c.w.n * c.w.blocks - 1, got);
      assert_non_null(st);
      assert_non_null(strstr(ort->GetErrorMessage(st), "scales must be"));
      ort->ReleaseStatus(st);
      ort->ReleaseSession(session);
    }
    unsetenv("KVCACHE_MATMUL");
    free(want), free(got);
    free_case(&c);
  }
  ort->ReleaseEnv(env);
}

/* Bad attributes and an unknown forced path are refused when the session is made. */
static void bad_attributes_are_refused(void **state) {
  (void)state;
  const OrtApi *ort = kvc__ort();
  OrtEnv *env = NULL;
  CHECK(ort->CreateEnv(ORT_LOGGING_LEVEL_FATAL, "matmul", &env));
  case_ c = make_case(4, 32, 1, 64, 8, 1, 3);
  OrtStatus *st = NULL;
  OrtSession *session = single_node(env, &c, 3, &st);
  assert_null(session);
  assert_non_null(st);
  assert_non_null(strstr(ort->GetErrorMessage(st), "bits = 3: expected 4 or 8"));
  ort->ReleaseStatus(st);
  setenv("KVCACHE_MATMUL", "sse9", 1);
  session = single_node(env, &c, 4, &st);
  assert_null(session);
  assert_non_null(st);
  assert_non_null(strstr(ort->GetErrorMessage(st), "KVCACHE_MATMUL=sse9"));
  ort->ReleaseStatus(st);
  unsetenv("KVCACHE_MATMUL");
  free_case(&c);
  ort->ReleaseEnv(env);
}

/* kvc__op_halves_512 (which sends one row to the AVX2 kernel on the AVX-512 path) against what
 * Linux reads of the CPU: AMD, family 25 (0x19), and the avx512f flag. */
static void halves_512_is_amd_family_25_with_avx512(void **state) {
  (void)state;
  FILE *f = fopen("/proc/cpuinfo", "r");
  assert_non_null(f); /* the project builds on Linux */
  char line[4096];
  int amd = 0, family = -1, avx512 = 0;
  while (fgets(line, sizeof line, f) && !(family >= 0 && strncmp(line, "processor", 9) == 0)) {
    if (strncmp(line, "vendor_id", 9) == 0)
      amd = strstr(line, "AuthenticAMD") != NULL;
    else if (strncmp(line, "cpu family", 10) == 0)
      family = atoi(strchr(line, ':') + 1);
    else if (strncmp(line, "flags", 5) == 0)
      avx512 = strstr(line, " avx512f ") != NULL || strstr(line, " avx512f\n") != NULL;
  }
  fclose(f);
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (avx512 != !!__builtin_cpu_supports("avx512f")) {
    /* /proc/cpuinfo is another CPU's than the one this runs on (qemu-user passes the host's):
     * only the flag can be checked */
    assert_false(kvc__op_halves_512() && !__builtin_cpu_supports("avx512f"));
    return;
  }
  assert_int_equal(kvc__op_halves_512(), amd && family == 25 && avx512);
#else
  assert_int_equal(kvc__op_halves_512(), 0);
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(halves_512_is_amd_family_25_with_avx512),
      cmocka_unit_test(paths_rows_and_splits_give_the_same_bits),
      cmocka_unit_test(every_path_quantizes_alike),
      cmocka_unit_test(scales_round_up_to_half_floats),
      cmocka_unit_test(products_stay_within_the_int8_bound),
      cmocka_unit_test(a_nan_reaches_its_rows_products),
      cmocka_unit_test(the_operator_gives_the_kernels_bits),
      cmocka_unit_test(bad_attributes_are_refused),
  };
  return cmocka_run_group_tests_name("int8-activation products", tests, NULL, NULL);
}
