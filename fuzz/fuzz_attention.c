/* libFuzzer: kvcache's attention operator (ai.kvcache.Attention) fed tensors of any shapes,
 * lengths and values through ONNX Runtime: one-node graphs with every dimension symbolic
 * (packed or separate q/k/v, with or without the bias, with or without rotary), so every
 * shape reaches the operator's own checks. A run may fail with a status; it must never read
 * or write out of bounds (ASan) nor crash. FUZZ_ATTENTION_VERBOSE=1 prints each run's status. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention_op.h"
#include "onnx.h"
#include "onnx/onnx.pb-c.h"
#include "ort.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { VARIANTS = 4 }; /* packed; packed + bias; separate; packed + rotary */
static const OrtApi *ort;
static OrtEnv *env;
static OrtMemoryInfo *mem;
static OrtSession *sessions[VARIANTS];

static OrtSession *make_session(int variant) {
  const int packed = variant != 2, bias = variant == 1, rotary = variant == 3;
  enum {
    T_FLOAT = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
    T_INT32 = ONNX__TENSOR_PROTO__DATA_TYPE__INT32
  };
  kvc__onnx *m = kvc__onnx_new("fuzz_attention");
  kvc__onnx_opset(m, KVC_OP_DOMAIN, 1);
  const kvc__dim d3[] = {{"a", 0}, {"b", 0}, {"c", 0}},
                 d4[] = {{"a", 0}, {"b", 0}, {"c", 0}, {"d", 0}};
  const kvc__dim d4v[] = {{"e", 0}, {"f", 0}, {"g", 0}, {"h", 0}}, d1[] = {{"n", 0}};
  const kvc__dim d2[] = {{"r", 0}, {"s", 0}}, d1b[] = {{"z", 0}};
  const char *ins[10] = {
      "query", "", "", "past_key", "past_value", "seqlens_k", "total_sequence_length", "", "", ""};
  kvc__onnx_input(m, "query", T_FLOAT, d3, 3);
  if (!packed) {
    kvc__onnx_input(m, "key", T_FLOAT, d3, 3);
    kvc__onnx_input(m, "value", T_FLOAT, d3, 3);
    ins[1] = "key", ins[2] = "value";
  }
  kvc__onnx_input(m, "past_key", T_FLOAT, d4, 4);
  kvc__onnx_input(m, "past_value", T_FLOAT, d4v, 4);
  kvc__onnx_input(m, "seqlens_k", T_INT32, d1, 1);
  kvc__onnx_input(m, "total_sequence_length", T_INT32, NULL, 0);
  if (rotary) {
    kvc__onnx_input(m, "cos_cache", T_FLOAT, d2, 2);
    kvc__onnx_input(m, "sin_cache", T_FLOAT, d2, 2);
    ins[7] = "cos_cache", ins[8] = "sin_cache";
  }
  if (bias) {
    kvc__onnx_input(m, "qkv_bias", T_FLOAT, d1b, 1);
    ins[9] = "qkv_bias";
  }
  kvc__onnx_output(m, "out", T_FLOAT, d3, 3);
  kvc__onnx_output(m, "present_key", T_FLOAT, d4, 4);
  kvc__onnx_output(m, "present_value", T_FLOAT, d4, 4);
  const char *outs[] = {"out", "present_key", "present_value"};
  const kvc__attr attrs[] = {KVC_ATTR_I("num_heads", 4), KVC_ATTR_I("kv_num_heads", 2),
                             KVC_ATTR_I("do_rotary", rotary)};
  kvc__onnx_node(m, KVC_OP_ATTENTION, KVC_OP_DOMAIN, ins,
                 bias     ? 10
                 : rotary ? 9
                          : 7,
                 outs, 3, attrs, 3);
  uint8_t *bytes = NULL;
  size_t size = 0;
  OrtSession *s = NULL;
  OrtSessionOptions *o = NULL;
  OrtStatus *st = NULL;
  /* every input has new shapes: no memory patterns or arena to plan and grow per shape */
  if (kvc__onnx_pack(m, &bytes, &size) == KVC_OK && !ort->CreateSessionOptions(&o) &&
      !ort->SetIntraOpNumThreads(o, 1) && !ort->DisableMemPattern(o) &&
      !ort->DisableCpuMemArena(o)) {
    OrtCustomOpDomain *domain = kvc__ops_domain(ort, &st);
    if (!st && !(st = ort->AddCustomOpDomain(o, domain)))
      st = ort->CreateSessionFromArray(env, bytes, size, o, &s);
  }
  if (st) {
    fprintf(stderr, "fuzz_attention: %s\n", ort->GetErrorMessage(st));
    ort->ReleaseStatus(st);
  }
  if (o)
    ort->ReleaseSessionOptions(o);
  free(bytes);
  kvc__onnx_free(m);
  return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  ort = kvc__ort();
  if (ort->CreateEnv(ORT_LOGGING_LEVEL_FATAL, "fuzz", &env) ||
      ort->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &mem))
    return 1;
  for (int v = 0; v < VARIANTS; v++)
    if (!(sessions[v] = make_session(v)))
      return 1;
  return 0;
}

/* The input, read as small numbers (0 past its end). */
typedef struct reader {
  const uint8_t *data;
  size_t size, at;
} reader;

/* *v, or NULL when making it failed (the status released). */
static OrtValue *made(OrtStatus *st, OrtValue **v) {
  if (!st)
    return *v;
  ort->ReleaseStatus(st);
  return NULL;
}

static int next(reader *r, int mod) {
  const int v = r->at < r->size ? r->data[r->at] : 0;
  r->at++;
  return mod ? v % mod : v;
}

/* A float tensor of the given dims (each >= 0), filled from the input; NULL past 64 Ki floats. */
static OrtValue *floats(reader *r, const int64_t *dims, size_t rank, float **keep) {
  size_t n = 1;
  for (size_t i = 0; i < rank; i++)
    n *= (size_t)dims[i];
  if (n > 65536)
    return NULL;
  float *buf = calloc(n ? n : 1, sizeof *buf);
  for (size_t i = 0; i < n && r->at < r->size; i++)
    buf[i] = (float)(next(r, 0) - 128) / 32.0f;
  *keep = buf;
  OrtValue *v = NULL;
  return made(ort->CreateTensorWithDataAsOrtValue(mem, buf, n * sizeof *buf, dims, rank,
                                                  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &v),
              &v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r = {data, size, 0};
  const int variant = next(&r, VARIANTS), packed = variant != 2;
  const int64_t b = next(&r, 4), s = next(&r, 6), hidden = next(&r, 200);
  const int64_t q_dims[3] = {b, s, hidden}, kv_dims[3] = {b, s, next(&r, 80)};
  const int64_t pk[4] = {next(&r, 4), next(&r, 4), next(&r, 14), next(&r, 70)};
  const int sameshape = next(&r, 2);
  const int64_t pv[4] = {sameshape ? pk[0] : next(&r, 4), sameshape ? pk[1] : next(&r, 4),
                         sameshape ? pk[2] : next(&r, 14), sameshape ? pk[3] : next(&r, 70)};
  const int64_t n_lens = next(&r, 4);
  int32_t lens[3], total = next(&r, 40) - 4;
  for (int i = 0; i < 3; i++)
    lens[i] = next(&r, 40) - 4;
  const int64_t rot[2] = {next(&r, 20), next(&r, 40)}, bias_dims[1] = {next(&r, 0) * 2};
  float *bufs[10] = {NULL};
  OrtValue *in[10] = {NULL};
  const char *names[10];
  size_t n = 0;
  names[n] = "query", in[n] = floats(&r, q_dims, 3, &bufs[n]), n++;
  if (!packed) {
    names[n] = "key", in[n] = floats(&r, kv_dims, 3, &bufs[n]), n++;
    names[n] = "value", in[n] = floats(&r, kv_dims, 3, &bufs[n]), n++;
  }
  names[n] = "past_key", in[n] = floats(&r, pk, 4, &bufs[n]), n++;
  names[n] = "past_value", in[n] = floats(&r, pv, 4, &bufs[n]), n++;
  const int64_t lens_dims[1] = {n_lens};
  OrtValue *v = NULL;
  names[n] = "seqlens_k";
  in[n++] = made(ort->CreateTensorWithDataAsOrtValue(mem, lens, sizeof lens[0] * (size_t)n_lens,
                                                     lens_dims, 1,
                                                     ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, &v),
                 &v);
  names[n] = "total_sequence_length";
  in[n++] = made(ort->CreateTensorWithDataAsOrtValue(mem, &total, sizeof total, NULL, 0,
                                                     ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, &v),
                 &v);
  if (variant == 3) {
    names[n] = "cos_cache", in[n] = floats(&r, rot, 2, &bufs[n]), n++;
    names[n] = "sin_cache", in[n] = floats(&r, rot, 2, &bufs[n]), n++;
  }
  if (variant == 1)
    names[n] = "qkv_bias", in[n] = floats(&r, bias_dims, 1, &bufs[n]), n++;
  int complete = 1;
  for (size_t i = 0; i < n; i++)
    complete &= in[i] != NULL;
  if (complete) {
    const char *out_names[3] = {"out", "present_key", "present_value"};
    OrtValue *out[3] = {NULL};
    OrtStatus *st =
        ort->Run(sessions[variant], NULL, names, (const OrtValue *const *)in, n, out_names, 3, out);
    if (getenv("FUZZ_ATTENTION_VERBOSE")) /* which inputs reach the kernel (corpus work) */
      fprintf(stderr, "variant %d: %s\n", variant, st ? ort->GetErrorMessage(st) : "ran");
    if (st)
      ort->ReleaseStatus(st);
    for (int i = 0; i < 3; i++)
      if (out[i])
        ort->ReleaseValue(out[i]);
  }
  for (size_t i = 0; i < n; i++) {
    if (in[i])
      ort->ReleaseValue(in[i]);
    free(bufs[i]);
  }
  return 0;
}
