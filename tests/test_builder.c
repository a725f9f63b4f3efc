/* Tests for the model builder (src/modelgen/) against ONNX Runtime and the reference pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "reference.h"

typedef struct fixture {
  char dir[256];
  kvc_build_params params;
  th_session ort;
  kvc__ref *ref;
} fixture;

static int setup_model(void **state, kvc_naming naming) {
  fixture *f = calloc(1, sizeof *f);
  f->params = kvc_build_default_params();
  f->params.naming = naming;
  th_tmpdir(f->dir, sizeof f->dir, naming == KVC_NAMING_HF ? "hf" : "seed");
  assert_int_equal(kvc_build_model(f->dir, &f->params), KVC_OK);
  th_open(&f->ort, f->dir, naming, 4, 4, 64, 1000);
  assert_int_equal(kvc__ref_open(f->dir, &f->ref), KVC_OK);
  *state = f;
  return 0;
}
static int setup_seed(void **state) {
  return setup_model(state, KVC_NAMING_SEED);
}
static int setup_hf(void **state) {
  return setup_model(state, KVC_NAMING_HF);
}
static int teardown(void **state) {
  fixture *f = *state;
  th_close(&f->ort);
  kvc__ref_free(f->ref);
  th_rmdir(f->dir);
  free(f);
  return 0;
}

/* max |a - b| over n values, and max |b| */
static void compare(const float *a, const double *b, size_t n, double *diff, double *scale) {
  *diff = 0, *scale = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    *diff = d > *diff ? d : *diff;
    *scale = fabs(b[i]) > *scale ? fabs(b[i]) : *scale;
  }
}

#define ASSERT_CLOSE(ort, ref, n, what)                                                            \
  do {                                                                                             \
    double diff_, scale_;                                                                          \
    compare((ort), (ref), (n), &diff_, &scale_);                                                   \
    if (!(diff_ <= 1e-4 * scale_))                                                                 \
      fail_msg("%s: max |delta| %.3g > 1e-4 * max |logit| %.3g", (what), diff_, scale_);           \
  } while (0)

/* ---- signature ------------------------------------------------------------------------ */

static void expect_io(OrtSession *s, int input, size_t index, const char *name,
                      ONNXTensorElementDataType type, size_t rank, const int64_t *dims) {
  const OrtApi *ort = kvc__ort();
  OrtAllocator *alloc;
  assert_null(ort->GetAllocatorWithDefaultOptions(&alloc));
  char *got = NULL;
  OrtTypeInfo *info = NULL;
  if (input) {
    assert_null(ort->SessionGetInputName(s, index, alloc, &got));
    assert_null(ort->SessionGetInputTypeInfo(s, index, &info));
  } else {
    assert_null(ort->SessionGetOutputName(s, index, alloc, &got));
    assert_null(ort->SessionGetOutputTypeInfo(s, index, &info));
  }
  assert_string_equal(got, name);
  const OrtTensorTypeAndShapeInfo *tinfo;
  assert_null(ort->CastTypeInfoToTensorInfo(info, &tinfo));
  ONNXTensorElementDataType t;
  size_t r;
  assert_null(ort->GetTensorElementType(tinfo, &t));
  assert_null(ort->GetDimensionsCount(tinfo, &r));
  assert_int_equal(t, type);
  assert_int_equal(r, rank);
  int64_t got_dims[8];
  assert_null(ort->GetDimensions(tinfo, got_dims, r));
  for (size_t i = 0; i < r; i++)
    if (got_dims[i] != dims[i])
      fail_msg("%s dim %zu: got %lld, expected %lld", name, i, (long long)got_dims[i],
               (long long)dims[i]);
  ort->ReleaseTypeInfo(info);
  assert_null(ort->AllocatorFree(alloc, got));
}

static void signature(fixture *f, const char *const *inputs, size_t n_inputs,
                      const char *const *outputs) {
  const OrtApi *ort = kvc__ort();
  size_t n_in, n_out;
  assert_null(ort->SessionGetInputCount(f->ort.session, &n_in));
  assert_null(ort->SessionGetOutputCount(f->ort.session, &n_out));
  assert_int_equal(n_in, n_inputs + 8);
  assert_int_equal(n_out, 1 + 8);
  const int64_t seq[2] = {-1, -1}, mask[2] = {-1, -1}, cache[4] = {-1, 4, -1, 64},
                logits[3] = {-1, -1, 1000};
  for (size_t i = 0; i < n_inputs; i++)
    expect_io(f->ort.session, 1, i, inputs[i], ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, 2,
              strcmp(inputs[i], "attention_mask") ? seq : mask);
  for (size_t i = 0; i < 8; i++)
    expect_io(f->ort.session, 1, n_inputs + i, inputs[n_inputs + i],
              ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, 4, cache);
  expect_io(f->ort.session, 0, 0, "logits", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, 3, logits);
  for (size_t i = 0; i < 8; i++)
    expect_io(f->ort.session, 0, 1 + i, outputs[i], ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, 4, cache);
}

static void signature_seed(void **state) {
  const char *in[] = {"input_ids",  "position_ids", "past_key_0", "past_value_0",
                      "past_key_1", "past_value_1", "past_key_2", "past_value_2",
                      "past_key_3", "past_value_3"};
  const char *out[] = {"present_key_0", "present_value_0", "present_key_1", "present_value_1",
                       "present_key_2", "present_value_2", "present_key_3", "present_value_3"};
  signature(*state, in, 2, out);
}

static void signature_hf(void **state) {
  const char *in[] = {"input_ids",
                      "attention_mask",
                      "position_ids",
                      "past_key_values.0.key",
                      "past_key_values.0.value",
                      "past_key_values.1.key",
                      "past_key_values.1.value",
                      "past_key_values.2.key",
                      "past_key_values.2.value",
                      "past_key_values.3.key",
                      "past_key_values.3.value"};
  const char *out[] = {"present.0.key", "present.0.value", "present.1.key", "present.1.value",
                       "present.2.key", "present.2.value", "present.3.key", "present.3.value"};
  signature(*state, in, 3, out);
}

/* ---- numerics ------------------------------------------------------------------------- */

/* 20 random sequences of 1..64 tokens: without a past, then split at a random k with the
 * first k tokens' present fed back as past; both against the reference at every position. */
static void logits_match_reference(void **state) {
  fixture *f = *state;
  const int V = 1000;
  uint64_t rng = 12345;
  float *logits = malloc(64 * V * sizeof *logits);
  double *ref = malloc(64 * V * sizeof *ref);
  for (int trial = 0; trial < 20; trial++) {
    int64_t len;
    th_random_tokens(&rng, &len, 1, 64);
    int n = (int)len + 1;
    int64_t tokens[64];
    th_random_tokens(&rng, tokens, n, V);
    assert_int_equal(kvc__ref_logits(f->ref, tokens, NULL, NULL, n, ref), KVC_OK);

    th_step(&f->ort, tokens, n, NULL, NULL, NULL, 0, logits, NULL);
    char what[64];
    snprintf(what, sizeof what, "trial %d, %d tokens, no past", trial, n);
    ASSERT_CLOSE(logits, ref, (size_t)n * V, what);

    if (n < 2)
      continue;
    int64_t split;
    th_random_tokens(&rng, &split, 1, n - 1);
    int k = (int)split + 1; /* 1..n-1 */
    float *present[8];
    th_step(&f->ort, tokens, k, NULL, NULL, NULL, 0, logits, present);
    th_step(&f->ort, tokens + k, n - k, NULL, NULL, present, k, logits, NULL);
    snprintf(what, sizeof what, "trial %d, %d tokens after a past of %d", trial, n - k, k);
    ASSERT_CLOSE(logits, ref + (size_t)k * V, (size_t)(n - k) * V, what);
    for (int i = 0; i < 8; i++)
      free(present[i]);
  }
  free(logits);
  free(ref);
}

/* hf: a padded position (attention_mask 0) changes nothing for the others, whatever its
 * token, with or without a past, and the logits match the reference with that mask. */
static void padding_is_masked(void **state) {
  fixture *f = *state;
  const int V = 1000, n = 12, pad = 4;
  int64_t tokens[12] = {5, 17, 250, 3, 999, 42, 7, 7, 600, 1, 2, 3}, keep[12];
  for (int i = 0; i < n; i++)
    keep[i] = i != pad;
  float *a = malloc(n * V * sizeof *a), *b = malloc(n * V * sizeof *b);
  double *ref = malloc(n * V * sizeof *ref);
  assert_int_equal(kvc__ref_logits(f->ref, tokens, NULL, keep, n, ref), KVC_OK);
  th_step(&f->ort, tokens, n, NULL, keep, NULL, 0, a, NULL);
  tokens[pad] = 123;
  th_step(&f->ort, tokens, n, NULL, keep, NULL, 0, b, NULL);
  for (int i = 0; i < n; i++) {
    if (i == pad)
      continue;
    ASSERT_CLOSE(a + i * V, ref + i * V, V, "padded prompt vs reference");
    for (int j = 0; j < V; j++)
      assert_true(fabsf(a[i * V + j] - b[i * V + j]) <= 1e-5f);
  }
  /* Changing the padded token does change its own row: the mask is not hiding everything. */
  int differs = 0;
  for (int j = 0; j < V; j++)
    differs |= a[pad * V + j] != b[pad * V + j];
  assert_true(differs);

  /* The same with the pad inside a past: prefix of 6 (pad at 4), then 6 more tokens. */
  float *present[8];
  th_step(&f->ort, tokens, 6, NULL, keep, NULL, 0, a, present);
  th_step(&f->ort, tokens + 6, n - 6, NULL, keep, present, 6, b, NULL);
  ASSERT_CLOSE(b, ref + 6 * V, (size_t)(n - 6) * V, "padded past vs reference");
  for (int i = 0; i < 8; i++)
    free(present[i]);

  /* Without the mask the logits differ: the mask is what did it. */
  th_step(&f->ort, tokens, n, NULL, NULL, NULL, 0, a, NULL);
  double diff, scale;
  compare(a + (n - 1) * V, ref + (n - 1) * V, V, &diff, &scale);
  assert_true(diff > 1e-3 * scale);
  free(a), free(b), free(ref);
}

/* Greedy decoding from a short prompt does not settle into one repeated token. */
static void greedy_does_not_collapse(void **state) {
  fixture *f = *state;
  const int V = 1000, prompt = 3, steps = 16;
  int64_t tokens[3 + 16] = {1, 2, 3};
  float *logits = malloc((prompt + steps) * V * sizeof *logits);
  for (int s = 0; s < steps; s++) {
    int n = prompt + s;
    th_step(&f->ort, tokens, n, NULL, NULL, NULL, 0, logits, NULL);
    const float *last = logits + (size_t)(n - 1) * V;
    int best = 0;
    for (int j = 1; j < V; j++)
      best = last[j] > last[best] ? j : best;
    tokens[n] = best;
  }
  int distinct = 0;
  for (int i = prompt; i < prompt + steps; i++) {
    int seen = 0;
    for (int j = prompt; j < i; j++)
      seen |= tokens[j] == tokens[i];
    distinct += !seen;
  }
  printf("greedy from 1 2 3:");
  for (int i = prompt; i < prompt + steps; i++)
    printf(" %lld", (long long)tokens[i]);
  printf(" (%d distinct)\n", distinct);
  int tail_repeats = 1;
  for (int i = prompt + steps - 2; i >= prompt && tokens[i] == tokens[prompt + steps - 1]; i--)
    tail_repeats++;
  assert_true(tail_repeats < 4);
  assert_true(distinct >= 4);
  free(logits);
}

/* ---- files ---------------------------------------------------------------------------- */

static unsigned char *slurp(const char *dir, const char *file, size_t *n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(*n + 1);
  assert_int_equal(fread(buf, 1, *n, f), *n);
  fclose(f);
  return buf;
}

static int same_file(const char *a, const char *b, const char *file) {
  size_t na, nb;
  unsigned char *x = slurp(a, file, &na), *y = slurp(b, file, &nb);
  int same = na == nb && memcmp(x, y, na) == 0;
  free(x), free(y);
  return same;
}

static void builds_are_deterministic(void **state) {
  (void)state;
  char a[256], b[256], c[256];
  th_tmpdir(a, sizeof a, "det"), th_tmpdir(b, sizeof b, "det"), th_tmpdir(c, sizeof c, "det");
  kvc_build_params p = kvc_build_default_params();
  p.layers = 2, p.vocab_size = 300, p.seed = 77;
  assert_int_equal(kvc_build_model(a, &p), KVC_OK);
  assert_int_equal(kvc_build_model(b, &p), KVC_OK);
  p.seed = 78;
  assert_int_equal(kvc_build_model(c, &p), KVC_OK);
  assert_true(same_file(a, b, "model.onnx"));
  assert_true(same_file(a, b, "model.onnx.data"));
  assert_true(same_file(a, b, "config.json"));
  assert_false(same_file(a, c, "model.onnx.data"));
  th_rmdir(a), th_rmdir(b), th_rmdir(c);
}

static void default_parameter_count(void **state) {
  fixture *f = *state;
  /* counted from the architecture: embeddings, 4 blocks, final norm, LM head */
  const int64_t E = 256, V = 1000, M = 512, L = 4;
  const int64_t block = 2 * 2 * E + 4 * (E * E + E) + (E * 4 * E + 4 * E) + (4 * E * E + E);
  const int64_t expected = V * E + M * E + L * block + 2 * E + E * V;
  int64_t n = kvc_build_param_count(&f->params);
  printf("default model: %lld parameters (%.1f MB)\n", (long long)n, (double)n * 4 / 1e6);
  assert_int_equal(n, expected);
  assert_true(n > 3700000 && n < 3900000);
  size_t bytes;
  free(slurp(f->dir, "model.onnx.data", &bytes));
  assert_int_equal(bytes, (size_t)n * 4);
}

/* ff: the MLP is as wide as asked, in the parameter count, the weights file and the graph,
 * whose logits match the reference pass (which reads the width from config.json's ff_dim),
 * for both architectures. */
static void mlp_width_is_chosen(void **state) {
  (void)state;
  const int V = 100, n = 12;
  for (int llama = 0; llama < 2; llama++) {
    char dir[256];
    th_tmpdir(dir, sizeof dir, llama ? "ff-llama" : "ff-gpt");
    kvc_build_params p = kvc_build_default_params();
    p.layers = 2, p.heads = 2, p.head_dim = 16, p.vocab_size = V, p.max_seq_len = 32;
    p.ff = llama ? 40 : 72; /* neither arch's default (128 and 96) */
    p.arch = llama ? KVC_ARCH_LLAMA : KVC_ARCH_GPT;
    p.attention = llama ? KVC_ATTENTION_GQA : KVC_ATTENTION_CONCAT;
    assert_int_equal(kvc_build_model(dir, &p), KVC_OK);
    const int64_t E = 32, F = p.ff, L = 2, M = 32;
    const int64_t expected =
        llama
            ? V * E + M * 16 + L * (2 * E + 4 * E * E + 3 * E * F) + E + E * V
            : V * E + M * E + L * (4 * E + 4 * (E * E + E) + E * F + F + F * E + E) + 2 * E + E * V;
    assert_int_equal(kvc_build_param_count(&p), expected);
    size_t bytes;
    free(slurp(dir, "model.onnx.data", &bytes));
    assert_int_equal(bytes, (size_t)expected * 4);

    kvc__ref *ref = NULL;
    kvc_model *m = NULL;
    kvc_seq *q = NULL;
    assert_int_equal(kvc__ref_open(dir, &ref), KVC_OK);
    assert_int_equal(kvc_model_open(dir, NULL, &m), KVC_OK);
    kvc_model_info info;
    assert_int_equal(kvc_model_get_info(m, &info), KVC_OK);
    /* the tables a step reads a row of: the embedding, and gpt's position table */
    assert_int_equal(info.lookup_bytes, (V * E + (llama ? 0 : M * E)) * 4);
    assert_int_equal(kvc_seq_new(m, NULL, &q), KVC_OK);
    int64_t tokens[12];
    int32_t ids[12];
    uint64_t rng = 99;
    th_random_tokens(&rng, tokens, n, V);
    for (int i = 0; i < n; i++)
      ids[i] = (int32_t)tokens[i];
    float logits[12 * 100];
    double want[12 * 100];
    assert_int_equal(kvc_seq_append_all(q, ids, n, logits), KVC_OK);
    assert_int_equal(kvc__ref_logits(ref, tokens, NULL, NULL, n, want), KVC_OK);
    ASSERT_CLOSE(logits, want, (size_t)n * V, llama ? "llama, ff 40" : "gpt, ff 72");
    kvc_seq_free(q);
    kvc_model_free(m);
    kvc__ref_free(ref);
    th_rmdir(dir);
  }
}

static void bad_params_are_rejected(void **state) {
  (void)state;
  char dir[256];
  th_tmpdir(dir, sizeof dir, "bad");
  struct {
    const char *field;
    int32_t value;
    size_t offset;
  } cases[] = {
      {"layers", 0, offsetof(kvc_build_params, layers)},
      {"heads", -1, offsetof(kvc_build_params, heads)},
      {"head_dim", 0, offsetof(kvc_build_params, head_dim)},
      {"vocab_size", -5, offsetof(kvc_build_params, vocab_size)},
      {"max_seq_len", 0, offsetof(kvc_build_params, max_seq_len)},
      {"layers", 100000, offsetof(kvc_build_params, layers)},
      {"ff", -1, offsetof(kvc_build_params, ff)},
      {"weight_bits = 8 needs attention = KVCACHE", 8, offsetof(kvc_build_params, weight_bits)},
  };
  struct stat st;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    kvc_build_params p = kvc_build_default_params();
    memcpy((char *)&p + cases[i].offset, &cases[i].value, sizeof(int32_t));
    assert_int_equal(kvc_build_model(dir, &p), KVC_ERR_INVALID_ARG);
    assert_non_null(strstr(kvc_last_error(), cases[i].field));
    assert_int_not_equal(stat(dir, &st), 0); /* nothing created */
  }
  kvc_build_params p = kvc_build_default_params();
  p.naming = (kvc_naming)7;
  assert_int_equal(kvc_build_model(dir, &p), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "naming"));
  assert_int_equal(kvc_build_model(NULL, &p), KVC_ERR_INVALID_ARG);
  assert_int_equal(kvc_build_model(dir, NULL), KVC_ERR_INVALID_ARG);
  assert_int_equal(kvc_build_param_count(NULL), 0);

  /* unwritable: a directory under a regular file */
  p = kvc_build_default_params();
  assert_int_equal(kvc_build_model("/dev/null/model", &p), KVC_ERR_IO);
  assert_non_null(strstr(kvc_last_error(), "/dev/null/model"));
}

/* A directory that exists but cannot be written: nothing is left in it. */
static void unwritable_directory_keeps_nothing(void **state) {
  (void)state;
  char dir[256];
  th_tmpdir(dir, sizeof dir, "ro");
  assert_int_equal(mkdir(dir, 0555), 0);
  kvc_build_params p = kvc_build_default_params();
  p.layers = 1;
  kvc_status s = kvc_build_model(dir, &p);
  if (access(dir, W_OK) == 0) {
    /* root ignores permission bits; make the last step (the graph) fail instead by
     * occupying its final name with a directory */
    char graph[512];
    snprintf(graph, sizeof graph, "%s/model.onnx", dir);
    th_rmdir(dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(mkdir(graph, 0755), 0);
    s = kvc_build_model(dir, &p);
    assert_int_equal(s, KVC_ERR_IO);
    assert_non_null(strstr(kvc_last_error(), "model.onnx"));
    rmdir(graph);
  } else {
    assert_int_equal(s, KVC_ERR_IO);
  }
  /* no temporary or final files remain */
  char path[512];
  const char *left[] = {"model.onnx.data", "config.json", "model.onnx"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, left[i]);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
      fail_msg("%s left behind", path);
  }
  assert_int_equal(rmdir(dir), 0); /* empty: no temporary files either */
}

int main(void) {
  const struct CMUnitTest seed[] = {
      cmocka_unit_test(signature_seed),
      cmocka_unit_test(logits_match_reference),
      cmocka_unit_test(greedy_does_not_collapse),
      cmocka_unit_test(default_parameter_count),
  };
  const struct CMUnitTest hf[] = {
      cmocka_unit_test(signature_hf),
      cmocka_unit_test(logits_match_reference),
      cmocka_unit_test(padding_is_masked),
  };
  const struct CMUnitTest files[] = {
      cmocka_unit_test(builds_are_deterministic),
      cmocka_unit_test(mlp_width_is_chosen),
      cmocka_unit_test(bad_params_are_rejected),
      cmocka_unit_test(unwritable_directory_keeps_nothing),
  };
  int failed = cmocka_run_group_tests_name("seed naming", seed, setup_seed, teardown);
  failed += cmocka_run_group_tests_name("hf naming", hf, setup_hf, teardown);
  failed += cmocka_run_group_tests_name("files", files, NULL, NULL);
  return failed;
}
