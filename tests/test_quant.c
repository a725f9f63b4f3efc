/* Tests for quantisation (src/onnx/quant.c, src/onnx/quantize.c): the block codes give back every
 * weight within its block's step, in memory and as written to the model's files; quantised
 * models decode with the cache exactly as without it (the cache is exact even when the weights
 * are not), in every KV mode, in place; what cannot be quantised is refused and nothing is
 * written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "helpers.h"
#include "modelgen/onnx.h"
#include "matmul_kernel.h"
#include "quant.h"
#include "rng.h"

/* In memory: random weights (and a zero, and a lone large value) over K not a multiple of
 * the block, for 4 and 8 bits, three block sizes, both schemes. */
static void codes_give_back_each_weight_within_its_step(void **state) {
  (void)state;
  const int64_t ks[] = {64, 100}, n = 7;
  for (size_t ki = 0; ki < 2; ki++) {
    const int64_t k = ks[ki];
    float *w = malloc((size_t)(k * n) * sizeof *w);
    kvc__rng rng = kvc__rng_seeded(3 + ki);
    for (int64_t i = 0; i < k * n; i++)
      w[i] = (float)kvc__rng_normal(&rng);
    w[5] = 0.0f;
    w[9 * n + 2] = 40.0f; /* an outlier: its block's step is large, the others' are not */
    for (int bits = 4; bits <= 8; bits += 4) {
      for (int block = 32; block <= 128; block *= 2) {
        for (int sym = 0; sym < 2; sym++) {
          const kvc__qshape s = {k, n, bits, block, sym};
          uint8_t *b = calloc(kvc__q_weight_bytes(&s), 1);
          float *scales = calloc(kvc__q_scale_count(&s), sizeof *scales);
          uint8_t *zp = sym ? NULL : calloc(kvc__q_zero_bytes(&s), 1);
          kvc__quantize(&s, w, b, scales, zp);
          for (int64_t kk = 0; kk < k; kk++) {
            for (int64_t nn = 0; nn < n; nn++) {
              const float got = kvc__dequantize(&s, b, scales, zp, kk, nn);
              const float step = kvc__q_step(&s, scales, kk, nn), want = w[kk * n + nn];
              /* asymmetric: rounding only (half a step); symmetric: the top code may clip */
              const float bound = (sym ? 1.0f : 0.5f) * step * (1 + 1e-5f) + 1e-7f;
              if (!(fabsf(got - want) <= bound))
                fail_msg("bits %d block %d %s: w[%lld][%lld] = %g comes back as %g (step %g)", bits,
                         block, sym ? "symmetric" : "asymmetric", (long long)kk, (long long)nn,
                         (double)want, (double)got, (double)step);
            }
          }
          if (!sym) /* zero is in every block's range: exact */
            assert_true(kvc__dequantize(&s, b, scales, zp, 0, 5) == 0.0f);
          /* the outlier's block is coarse, its neighbours' are not */
          assert_true(kvc__q_step(&s, scales, 9, 2) > 4 * kvc__q_step(&s, scales, 9, 1));
          free(b), free(scales), free(zp);
        }
      }
    }
    free(w);
  }
}

typedef struct fixture {
  char dir[4][256]; /* gqa, concat, llama (genai layout), kvcache's attention (kv heads 2) */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  for (int i = 0; i < 4; i++) {
    kvc_build_params p = kvc_build_default_params();
    p.layers = 2, p.heads = 4, p.head_dim = 16, p.vocab_size = 120, p.max_seq_len = 96;
    p.attention = i == 1   ? KVC_ATTENTION_CONCAT
                  : i == 3 ? KVC_ATTENTION_KVCACHE
                           : KVC_ATTENTION_GQA;
    p.kv_heads = i >= 2 ? 2 : 0;
    if (i == 2)
      p.arch = KVC_ARCH_LLAMA, p.layout = KVC_LAYOUT_GENAI, p.naming = KVC_NAMING_HF;
    th_tmpdir(f->dir[i], sizeof f->dir[i], "quant");
    assert_int_equal(kvc_build_model(f->dir[i], &p), KVC_OK);
  }
  *state = f;
  return 0;
}

static void remove_tree(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* Also the directories the tests derive from the fixture's (DIR-q4, DIR-bad, ...), which a
 * failed test (cmocka leaves it at the failed assertion) did not remove. */
static int teardown(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 4; i++) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'-*", f->dir[i], f->dir[i]);
    assert_int_equal(system(cmd), 0);
  }
  free(f);
  return 0;
}

/* The bytes of initializer `name` of DIR's graph m (in the graph, or in DIR/model.onnx.data). */
static uint8_t *initializer_bytes(const char *dir, const Onnx__ModelProto *m, const char *name,
                                  size_t *size) {
  for (size_t i = 0; i < m->graph->n_initializer; i++) {
    const Onnx__TensorProto *t = m->graph->initializer[i];
    if (strcmp(t->name, name))
      continue;
    if (t->n_external_data == 0) { /* kept in the graph */
      assert_true(t->has_raw_data);
      uint8_t *out = malloc(t->raw_data.len + 1);
      memcpy(out, t->raw_data.data, t->raw_data.len);
      *size = t->raw_data.len;
      return out;
    }
    size_t offset = 0, length = 0;
    for (size_t e = 0; e < t->n_external_data; e++) {
      if (!strcmp(t->external_data[e]->key, "offset"))
        offset = strtoull(t->external_data[e]->value, NULL, 10);
      if (!strcmp(t->external_data[e]->key, "length"))
        length = strtoull(t->external_data[e]->value, NULL, 10);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/model.onnx.data", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *out = malloc(length + 1);
    assert_int_equal(fseek(f, (long)offset, SEEK_SET), 0);
    assert_int_equal(fread(out, 1, length, f), length);
    fclose(f);
    *size = length;
    return out;
  }
  return NULL;
}

static const Onnx__NodeProto *producing(const Onnx__ModelProto *m, const char *out) {
  for (size_t i = 0; i < m->graph->n_node; i++)
    for (size_t o = 0; o < m->graph->node[i]->n_output; o++)
      if (!strcmp(m->graph->node[i]->output[o], out))
        return m->graph->node[i];
  return NULL;
}

static int64_t attr(const Onnx__NodeProto *n, const char *name) {
  for (size_t a = 0; a < n->n_attribute; a++)
    if (!strcmp(n->attribute[a]->name, name))
      return n->attribute[a]->i;
  fail_msg("node %s has no attribute %s", n->output[0], name);
  return 0;
}

/* As written: every MatMulNBits of the quantised graph, dequantised from OUT's files, gives
 * the float weights of the original MatMul with the same output (one initializer, or the
 * Concat of q, k and v) within its block's step; `bits` bits each, the LM head (the product
 * writing "logits") head_bits. */
static void check_written(const char *in, const char *out, int bits, int head_bits, int symmetric,
                          int accuracy_level) {
  Onnx__ModelProto *a = th_load_graph(in), *b = th_load_graph(out);
  int checked = 0;
  for (size_t i = 0; i < b->graph->n_node; i++) {
    const Onnx__NodeProto *q = b->graph->node[i];
    if (strcmp(q->op_type, "MatMulNBits"))
      continue;
    const kvc__qshape s = {attr(q, "K"), attr(q, "N"), (int)attr(q, "bits"),
                           (int)attr(q, "block_size"), q->n_input < 4};
    assert_int_equal(s.bits, strcmp(q->output[0], "logits") ? bits : head_bits);
    assert_int_equal(attr(q, "accuracy_level"), accuracy_level);
    assert_int_equal(s.symmetric, symmetric);
    size_t nb, ns, nz = 0;
    uint8_t *qb = initializer_bytes(out, b, q->input[1], &nb);
    float *scales = (float *)initializer_bytes(out, b, q->input[2], &ns);
    uint8_t *zp = q->n_input > 3 ? initializer_bytes(out, b, q->input[3], &nz) : NULL;
    assert_int_equal(nb, kvc__q_weight_bytes(&s));
    assert_int_equal(ns, kvc__q_scale_count(&s) * sizeof(float));
    assert_int_equal(nz, kvc__q_zero_bytes(&s));
    /* the original: MatMul(A, W) or MatMul(A, Concat(W1, W2, W3)) */
    const Onnx__NodeProto *orig = producing(a, q->output[0]);
    assert_non_null(orig);
    assert_string_equal(orig->op_type, "MatMul");
    const Onnx__NodeProto *concat = producing(a, orig->input[1]);
    const size_t parts = concat ? concat->n_input : 1;
    int64_t col = 0;
    for (size_t p = 0; p < parts; p++) {
      size_t n_bytes;
      float *w =
          (float *)initializer_bytes(in, a, concat ? concat->input[p] : orig->input[1], &n_bytes);
      assert_non_null(w);
      const int64_t cols = (int64_t)(n_bytes / sizeof(float)) / s.k;
      for (int64_t k = 0; k < s.k; k++)
        for (int64_t c = 0; c < cols; c++) {
          const float got = kvc__dequantize(&s, qb, scales, zp, k, col + c);
          const float step = kvc__q_step(&s, scales, k, col + c);
          if (!(fabsf(got - w[k * cols + c]) <= step * (1 + 1e-5f) + 1e-7f))
            fail_msg("%s: weight (%lld, %lld) %g comes back as %g (step %g)", q->output[0],
                     (long long)k, (long long)(col + c), (double)w[k * cols + c], (double)got,
                     (double)step);
        }
      col += cols;
      free(w);
    }
    assert_int_equal(col, s.n);
    free(qb), free(scales), free(zp);
    checked++;
  }
  assert_true(checked >= 2 * 4); /* every layer's attention and MLP matrices */
  onnx__model_proto__free_unpacked(a, NULL);
  onnx__model_proto__free_unpacked(b, NULL);
}

static void expect_refused(const char *in, const char *out, const kvc_quantize_params *p,
                           kvc_status want, const char *needle) {
  kvc_status s = kvc_quantize(in, out, p, NULL);
  struct stat st;
  if (s != want || !strstr(kvc_last_error(), needle))
    fail_msg("quantize %s: got %s \"%s\", expected %s naming \"%s\"", in, kvc_status_name(s),
             kvc_last_error(), kvc_status_name(want), needle);
  if (want != KVC_ERR_IO || !strstr(needle, "exists"))
    assert_int_equal(stat(out, &st), -1); /* nothing written */
}

/* q8 and q4 of each model: the written blocks, then decoding in every KV mode: cached logits
 * equal the uncached recompute within 1e-4 at every step, SHARED in place without allocating;
 * the config files came along. The graph with kvcache's attention gets int8 activations
 * (accuracy_level 4) and, everything before each product being bit-exact, cached = uncached
 * exactly, on each path of kvcache's products (KVCACHE_MATMUL) this CPU has; the others float
 * activations (accuracy_level 0). */
static void quantised_models_decode_exactly(void **state) {
  fixture *f = *state;
  const kvc_kv_mode modes[] = {KVC_KV_SHARED, KVC_KV_BOUND, KVC_KV_NAIVE};
  for (int mi = 0; mi < 4; mi++) {
    for (int bits = 4; bits <= 8; bits += 4) {
      char out[300];
      snprintf(out, sizeof out, "%s-q%d", f->dir[mi], bits);
      kvc_quantize_params p = kvc_quantize_default_params();
      p.bits = bits;
      p.symmetric = bits == 8; /* one of each scheme */
      /* the LM head: the default at 4 bits (quantised, at 8 bits); at 8 bits kept float in
       * half the models and at 4 bits in the other half */
      p.include_lm_head = bits == 4 || mi % 2;
      p.lm_head_bits = bits == 4 ? 0 : 4;
      const int own = mi == 3;
      if (bits == 8 && !own) { /* float activations at 8 bits only when asked for (slow) */
        char refused[300];
        snprintf(refused, sizeof refused, "%s-q8-refused", f->dir[mi]);
        expect_refused(f->dir[mi], refused, &p, KVC_ERR_INVALID_ARG,
                       "8-bit weights keep the cache exact only with float activations");
        p.accuracy_level = 0;
      }
      kvc_quantize_report r;
      if (kvc_quantize(f->dir[mi], out, &p, &r) != KVC_OK)
        fail_msg("quantize %s: %s", f->dir[mi], kvc_last_error());
      assert_true(r.quantized >= 2 * 4);
      assert_true(r.skipped >= !p.include_lm_head); /* the LM head kept (and attention
                                                     * products in concat graphs) */
      assert_true(r.bytes_after < r.bytes_before);
      assert_int_equal(r.accuracy_level, own ? 4 : 0);
      /* the head: 8 bits by default with int8 activations, float by default without them */
      const int head_bits = !p.include_lm_head ? 0 : p.lm_head_bits ? p.lm_head_bits : own ? 8 : 0;
      assert_int_equal(r.lm_head_bits, head_bits);
      check_written(f->dir[mi], out, bits, head_bits, p.symmetric, r.accuracy_level);
      char path[512];
      struct stat st;
      snprintf(path, sizeof path, "%s/config.json", out);
      assert_int_equal(stat(path, &st), 0);
      /* kvcache's products are exact on every path: each one this CPU has, forced in turn */
      for (int kp = KVC_QMM_PORTABLE; kp < (own ? KVC_QMM_PATHS : KVC_QMM_PORTABLE + 1); kp++) {
        if (own && !kvc__qmm_runs(kp))
          continue;
        if (own)
          setenv("KVCACHE_MATMUL", kvc__qmm_path_name((kvc__qmm_path)kp), 1);
        kvc_model *m = th_open_model(out);
        kvc_model_info info;
        kvc_model_get_info(m, &info);
        assert_int_equal(info.weight_accuracy_level, r.accuracy_level);
        assert_string_equal(info.matmul_kernel, own ? kvc__qmm_path_name((kvc__qmm_path)kp) : "");
        if (own) { /* every product of the GPT (width E = 64, 2 K/V heads of 16, MLP 4E) */
          const int64_t E = 64, layers = 2, head = p.include_lm_head ? E * 120 : 0;
          assert_int_equal(info.quantized_macs,
                           layers * (E * (E + 2 * 32) + E * E + 2 * E * 4 * E) + head);
        }
        int32_t tokens[7 + 40] = {3, 1, 4, 1, 5, 9, 2};
        for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
          if (modes[k] == KVC_KV_SHARED && info.attention == KVC_ATTENTION_CONCAT)
            continue;
          kvc_seq *q = th_new_seq(m, modes[k]), *u = th_new_seq(m, KVC_KV_UNCACHED);
          for (int step = 0; step <= 40; step++) {
            const int32_t *t = step ? &tokens[7 + step - 1] : tokens;
            th_append(q, t, step ? 1 : 7);
            th_append(u, t, step ? 1 : 7);
            const double d = th_max_diff(kvc_seq_logits(q), kvc_seq_logits(u), info.vocab_size);
            if (d > (own ? 0.0 : 1e-4))
              fail_msg("%s q%d %s (products: %s), step %d: cached differs from uncached by %.3g",
                       f->dir[mi], bits, kvc_kv_mode_name(modes[k]),
                       own ? kvc__qmm_path_name((kvc__qmm_path)kp) : "ONNX Runtime", step, d);
            if (step < 40)
              tokens[7 + step] = th_argmax(kvc_seq_logits(q), info.vocab_size);
          }
          if (modes[k] == KVC_KV_SHARED)
            th_decode_in_place(q, info.layers, info.vocab_size, 30);
          kvc_seq_free(q);
          kvc_seq_free(u);
        }
        kvc_model_free(m);
        unsetenv("KVCACHE_MATMUL");
      }
      remove_tree(out);
    }
  }
}

/* DIR/model.onnx: y = x W, W an external initializer of shape (k, n) whose data file holds
 * `bytes` zero bytes, but for a NaN as the float at index nan_at (-1: none). */
static void weight_model(const char *dir, int64_t k, int64_t n, size_t bytes, long nan_at) {
  enum { T_FLOAT = 1 };
  char path[400];
  assert_int_equal(mkdir(dir, 0777), 0);
  snprintf(path, sizeof path, "%s/model.onnx.data", dir);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  for (size_t i = 0; i < bytes; i += sizeof(float)) {
    const float v = (long)(i / sizeof(float)) == nan_at ? NAN : 0.0f;
    fwrite(&v, 1, bytes - i < sizeof v ? bytes - i : sizeof v, f);
  }
  fclose(f);
  kvc__onnx *m = kvc__onnx_new("weights");
  const kvc__dim x[] = {{NULL, 1}, {NULL, 4}}, y[] = {{NULL, 1}, {NULL, 4}};
  const int64_t dims[2] = {k, n};
  kvc__onnx_input(m, "x", T_FLOAT, x, 2);
  kvc__onnx_output(m, "y", T_FLOAT, y, 2);
  kvc__onnx_external(m, "w", dims, 2, "model.onnx.data", 0, bytes);
  const char *ins[] = {"x", "w"}, *outs[] = {"y"};
  kvc__onnx_node(m, "MatMul", NULL, ins, 2, outs, 1, NULL, 0);
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  assert_int_equal(kvc__onnx_write(m, path), KVC_OK);
  kvc__onnx_free(m);
}

/* Weight shapes that overflow, or that name bytes the file lacks, are refused by name before
 * anything is allocated (they crashed in memcpy: k * n wrapped to 0). */
static void impossible_weight_shapes_are_refused(void **state) {
  fixture *f = *state;
  const struct {
    int64_t k, n;
    size_t bytes;
    long nan_at;
    const char *needle;
  } cases[] = {{(int64_t)1 << 32, (int64_t)1 << 32, 0, -1, "of shape (4294967296, 4294967296)"},
               {(int64_t)1 << 62, 4, 0, -1, "at most 2^31 - 1 rows and columns"},
               {(int64_t)1 << 20, (int64_t)1 << 20, 0, -1,
                "has 0 bytes; its shape (1048576, 1048576) needs 4398046511104"},
               {4, 4, 60, -1, "has 60 bytes; its shape (4, 4) needs 64"},
               /* found by fuzz_quantize: a NaN weight was cast to a code (undefined) */
               {4, 4, 64, 6, "holds NaN at row 1, column 2: it cannot be quantised"}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char in[300], out[300];
    snprintf(in, sizeof in, "%s-w%zu", f->dir[0], c);
    snprintf(out, sizeof out, "%s-w%zu-q", f->dir[0], c);
    weight_model(in, cases[c].k, cases[c].n, cases[c].bytes, cases[c].nan_at);
    expect_refused(in, out, NULL, KVC_ERR_MODEL, cases[c].needle);
    remove_tree(in);
  }
}

/* What cannot be quantised is refused with the reason, and no directory appears. */
static void bad_quantisations_are_refused(void **state) {
  fixture *f = *state;
  char out[300], bad[300], cmd[700];
  snprintf(out, sizeof out, "%s-never", f->dir[0]);
  kvc_quantize_params p = kvc_quantize_default_params();
  p.bits = 3;
  expect_refused(f->dir[0], out, &p, KVC_ERR_INVALID_ARG, "bits = 3");
  p = kvc_quantize_default_params();
  p.block_size = 48;
  expect_refused(f->dir[0], out, &p, KVC_ERR_INVALID_ARG, "block_size = 48");
  p = kvc_quantize_default_params();
  p.accuracy_level = 5;
  expect_refused(f->dir[0], out, &p, KVC_ERR_INVALID_ARG, "accuracy_level = 5");
  p = kvc_quantize_default_params();
  p.lm_head_bits = 2;
  expect_refused(f->dir[0], out, &p, KVC_ERR_INVALID_ARG, "lm_head_bits = 2");
  expect_refused(f->dir[0], f->dir[1], NULL, KVC_ERR_IO, "exists");
  expect_refused("/nonexistent", out, NULL, KVC_ERR_IO, "/nonexistent/model.onnx");
  /* not ONNX */
  snprintf(bad, sizeof bad, "%s-bad", f->dir[0]);
  snprintf(cmd, sizeof cmd, "mkdir '%s' && echo 'not a model' > '%s/model.onnx'", bad, bad);
  assert_int_equal(system(cmd), 0);
  expect_refused(bad, out, NULL, KVC_ERR_MODEL, "not an ONNX model");
  /* an already quantised model has no float MatMul weights left (the LM head aside) */
  char q[300];
  snprintf(q, sizeof q, "%s-q", f->dir[0]);
  p = kvc_quantize_default_params();
  p.include_lm_head = 1;
  assert_int_equal(kvc_quantize(f->dir[0], q, &p, NULL), KVC_OK);
  expect_refused(q, out, NULL, KVC_ERR_MODEL, "no MatMul");
  remove_tree(q);
  remove_tree(bad);
  /* an output path with a trailing slash names the same directory (it failed) */
  char slash[320];
  snprintf(slash, sizeof slash, "%s-slash//", f->dir[0]);
  if (kvc_quantize(f->dir[0], slash, NULL, NULL) != KVC_OK)
    fail_msg("quantize into %s: %s", slash, kvc_last_error());
  slash[strlen(slash) - 2] = '\0';
  struct stat st;
  assert_int_equal(stat(slash, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  remove_tree(slash);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(codes_give_back_each_weight_within_its_step),
      cmocka_unit_test(quantised_models_decode_exactly),
      cmocka_unit_test(bad_quantisations_are_refused),
      cmocka_unit_test(impossible_weight_shapes_are_refused),
  };
  return cmocka_run_group_tests_name("quantisation", tests, setup, teardown);
}
