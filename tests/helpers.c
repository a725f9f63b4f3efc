/* helpers.c: see helpers.h. */
#include "helpers.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "hooks.h"
#include "naming.h"
#include "ops.h"
#include "rng.h"

#define CHECK(call) assert_int_equal(kvc__ort_check((call), #call), KVC_OK)

void th_open(th_session *t, const char *dir, kvc_naming naming, int layers, int heads, int head_dim,
             int vocab) {
  const OrtApi *ort = kvc__ort();
  memset(t, 0, sizeof *t);
  t->naming = naming;
  t->layers = layers;
  t->heads = heads;
  t->head_dim = head_dim;
  t->vocab = vocab;
  CHECK(ort->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "test", &t->env));
  OrtSessionOptions *opts;
  CHECK(ort->CreateSessionOptions(&opts));
  CHECK(ort->SetIntraOpNumThreads(opts, 1));
  char path[4096];
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  CHECK(ort->CreateSession(t->env, path, opts, &t->session));
  ort->ReleaseSessionOptions(opts);
}

void th_close(th_session *t) {
  const OrtApi *ort = kvc__ort();
  ort->ReleaseSession(t->session);
  ort->ReleaseEnv(t->env);
}

static OrtValue *tensor(const OrtMemoryInfo *mem, void *data, size_t bytes, const int64_t *shape,
                        size_t rank, ONNXTensorElementDataType type) {
  OrtValue *v = NULL;
  CHECK(kvc__ort()->CreateTensorWithDataAsOrtValue(mem, data, bytes, shape, rank, type, &v));
  return v;
}

void th_step(th_session *t, const int64_t *tokens, int n, const int64_t *positions,
             const int64_t *keep, float *const *past, int past_len, float *logits,
             float **present) {
  const OrtApi *ort = kvc__ort();
  OrtMemoryInfo *mem;
  CHECK(ort->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mem));
  const int hf = t->naming == KVC_NAMING_HF, total = past_len + n, L = t->layers;
  int64_t *pos = malloc((size_t)n * sizeof *pos), *mask = malloc((size_t)total * sizeof *mask);
  for (int i = 0; i < n; i++)
    pos[i] = positions ? positions[i] : past_len + i;
  for (int i = 0; i < total; i++)
    mask[i] = keep ? keep[i] : 1;
  static float empty[1];
  int64_t seq_shape[2] = {1, n}, mask_shape[2] = {1, total};
  int64_t past_shape[4] = {1, t->heads, past_len, t->head_dim};
  size_t past_bytes = (size_t)t->heads * past_len * t->head_dim * sizeof(float);

  int n_in = 2 + hf + 2 * L, n_out = 1 + 2 * L;
  const char **in_names = calloc((size_t)n_in, sizeof *in_names);
  const char **out_names = calloc((size_t)n_out, sizeof *out_names);
  OrtValue **in = calloc((size_t)n_in, sizeof *in), **out = calloc((size_t)n_out, sizeof *out);
  char(*names)[4][64] = calloc((size_t)L, sizeof *names);
  int k = 0;
  in_names[k] = "input_ids";
  in[k++] = tensor(mem, (void *)tokens, (size_t)n * sizeof *tokens, seq_shape, 2,
                   ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64);
  in_names[k] = "position_ids";
  in[k++] =
      tensor(mem, pos, (size_t)n * sizeof *pos, seq_shape, 2, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64);
  if (hf) {
    in_names[k] = "attention_mask";
    in[k++] = tensor(mem, mask, (size_t)total * sizeof *mask, mask_shape, 2,
                     ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64);
  }
  out_names[0] = "logits";
  for (int l = 0; l < L; l++) {
    kvc__layer_io_names(t->naming, l, names[l][0], names[l][1], names[l][2], names[l][3], 64);
    for (int kv = 0; kv < 2; kv++) {
      in_names[k] = names[l][kv];
      in[k++] = tensor(mem, past_len ? past[2 * l + kv] : empty, past_bytes, past_shape, 4,
                       ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
      out_names[1 + 2 * l + kv] = names[l][2 + kv];
    }
  }
  CHECK(ort->Run(t->session, NULL, in_names, (const OrtValue *const *)in, (size_t)n_in, out_names,
                 (size_t)n_out, out));
  float *data;
  CHECK(ort->GetTensorMutableData(out[0], (void **)&data));
  memcpy(logits, data, (size_t)n * t->vocab * sizeof *logits);
  size_t present_bytes = (size_t)t->heads * total * t->head_dim * sizeof(float);
  for (int i = 0; present && i < 2 * L; i++) {
    CHECK(ort->GetTensorMutableData(out[1 + i], (void **)&data));
    present[i] = malloc(present_bytes);
    memcpy(present[i], data, present_bytes);
  }
  for (int i = 0; i < n_in; i++)
    ort->ReleaseValue(in[i]);
  for (int i = 0; i < n_out; i++)
    ort->ReleaseValue(out[i]);
  free(in), free(out), free(in_names), free(out_names), free(names), free(pos), free(mask);
  ort->ReleaseMemoryInfo(mem);
}

void th_random_tokens(uint64_t *state, int64_t *tokens, int n, int vocab) {
  kvc__rng r = kvc__rng_seeded(*state);
  for (int i = 0; i < n; i++)
    tokens[i] = (int64_t)(kvc__rng_u64(&r) % (uint64_t)vocab);
  *state = r.state;
}

void th_tmpdir(char *buf, size_t cap, const char *tag) {
  static int counter;
  snprintf(buf, cap, "/tmp/kvc-test-%s-%ld-%d", tag, (long)getpid(), counter++);
}

void th_rmdir(const char *dir) {
  const char *files[] = {"model.onnx", "model.onnx.data", "config.json"};
  char path[4096];
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    remove(path);
  }
  rmdir(dir);
}

Onnx__ModelProto *th_load_graph(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static uint8_t buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  assert_true(n < sizeof buf);
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, n, buf);
  assert_non_null(m);
  return m;
}

void th_decode_in_place(kvc_seq *q, int layers, int vocab, int steps) {
  const void **addr = malloc((size_t)layers * 2 * sizeof *addr);
  for (int l = 0; l < layers; l++)
    for (int kv = 0; kv < 2; kv++)
      addr[l * 2 + kv] = kvc__seq_cache_address(q, l, kv);
  uint64_t before = kvc__alloc_count();
  for (int i = 0; i < steps; i++) {
    int32_t t = th_argmax(kvc_seq_logits(q), vocab);
    th_append(q, &t, 1);
    for (int l = 0; l < layers; l++)
      for (int kv = 0; kv < 2; kv++)
        assert_ptr_equal(kvc__seq_cache_address(q, l, kv), addr[l * 2 + kv]);
  }
  assert_int_equal(kvc__alloc_count() - before, 0);
  assert_int_equal(kvc__seq_check_binding(q), KVC_OK);
  free(addr);
}

kvc_model *th_open_model(const char *dir) {
  return th_open_model_typed(dir, KVC_KV_TYPE_AUTO);
}

kvc_model *th_open_model_typed(const char *dir, kvc_kv_type type) {
  kvc_model_params mp = kvc_model_default_params();
  mp.intra_op_threads = 1;
  mp.kv_type = type;
  kvc_model *m = NULL;
  if (kvc_model_open(dir, &mp, &m) != KVC_OK)
    fail_msg("kvc_model_open(%s, %s cache): %s", dir, kvc_kv_type_name(type), kvc_last_error());
  return m;
}

kvc_ctx *th_new_ctx(kvc_model *m, int32_t slots) {
  kvc_ctx_params p = kvc_ctx_default_params();
  p.slots = slots;
  kvc_ctx *c = NULL;
  if (kvc_ctx_new(m, &p, &c) != KVC_OK)
    fail_msg("kvc_ctx_new(%d slots): %s", slots, kvc_last_error());
  return c;
}

kvc_seq *th_new_seq(kvc_model *m, kvc_kv_mode mode) {
  kvc_seq_params p = kvc_seq_default_params();
  p.kv_mode = mode;
  kvc_seq *q = NULL;
  if (kvc_seq_new(m, &p, &q) != KVC_OK)
    fail_msg("kvc_seq_new(%s): %s", kvc_kv_mode_name(mode), kvc_last_error());
  return q;
}

void th_append(kvc_seq *q, const int32_t *tokens, int32_t n) {
  if (kvc_seq_append(q, tokens, n) != KVC_OK)
    fail_msg("kvc_seq_append(%s, %d tokens at %d): %s", kvc_kv_mode_name(kvc_seq_kv_mode(q)), n,
             kvc_seq_len(q), kvc_last_error());
}

double th_max_diff(const float *a, const float *b, int n) {
  double d = 0;
  for (int i = 0; i < n; i++)
    d = fmax(d, fabs((double)a[i] - (double)b[i]));
  return d;
}

int32_t th_argmax(const float *logits, int n) {
  int32_t best = 0;
  for (int i = 1; i < n; i++)
    best = logits[i] > logits[best] ? i : best;
  return best;
}

OrtSession *th_ops_session(OrtEnv *env, kvc__onnx *m, OrtStatus **failure) {
  const OrtApi *ort = kvc__ort();
  uint8_t *bytes = NULL;
  size_t size = 0;
  assert_int_equal(kvc__onnx_pack(m, &bytes, &size), KVC_OK);
  kvc__onnx_free(m);
  OrtSessionOptions *o = NULL;
  OrtStatus *st = NULL;
  assert_int_equal(kvc__ort_check(ort->CreateSessionOptions(&o), "CreateSessionOptions"), KVC_OK);
  assert_int_equal(kvc__ort_check(ort->SetIntraOpNumThreads(o, 2), "SetIntraOpNumThreads"), KVC_OK);
  OrtCustomOpDomain *domain = kvc__ops_domain(ort, &st);
  assert_int_equal(kvc__ort_check(st, "kvc__ops_domain"), KVC_OK);
  assert_int_equal(kvc__ort_check(ort->AddCustomOpDomain(o, domain), "AddCustomOpDomain"), KVC_OK);
  OrtSession *session = NULL;
  *failure = ort->CreateSessionFromArray(env, bytes, size, o, &session);
  ort->ReleaseSessionOptions(o);
  free(bytes);
  return session;
}

uint8_t *th_slurp(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot read %s", path);
  fseek(f, 0, SEEK_END);
  const long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *bytes = malloc((size_t)n + 1);
  assert_non_null(bytes);
  assert_int_equal(fread(bytes, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  bytes[n] = 0;
  *size = (size_t)n;
  return bytes;
}
