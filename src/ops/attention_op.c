/* attention_op.c: ai.kvcache.Attention on ONNX Runtime's custom-operator C API (see
 * attention_op.h). A run checks every input's shape and lengths first (a bad one is an
 * ORT_INVALID_ARGUMENT status naming it; nothing is written), then writes the new keys and
 * values into present (bias added, keys rotated), then attends: one task per (row, new
 * token, K/V head, group of query heads) on ONNX Runtime's own thread pool, each task one
 * call of the kernel chosen for this CPU (attention_kernel.h). */
#include "attention_op.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention_kernel.h"
#include "half.h"
#include "q8.h"

enum {
  IN_QUERY,
  IN_KEY,
  IN_VALUE,
  IN_PAST_K,
  IN_PAST_V,
  IN_SEQLENS,
  IN_TOTAL,
  IN_COS,
  IN_SIN,
  IN_BIAS,
  N_IN
};
enum { OUT_CONTEXT, OUT_PRESENT_K, OUT_PRESENT_V, N_OUT };

static const char *const input_names[N_IN] = {"query",
                                              "key",
                                              "value",
                                              "past_key",
                                              "past_value",
                                              "seqlens_k",
                                              "total_sequence_length",
                                              "cos_cache",
                                              "sin_cache",
                                              "qkv_bias"};

typedef struct kernel {
  const OrtApi *ort;
  int64_t heads, kv_heads;
  float scale; /* 0: 1 / sqrt(head_dim) */
  int rotary;
  kvc__attend_path path;
} kernel;

/* The custom-operator interface's version this file is written against: 16 brought
 * CreateKernelV2/KernelComputeV2 (errors as statuses); later fields are left unset. */
enum { OP_VERSION = 16, MAX_HEAD_DIM = 4096, Q_SCRATCH = 4096 };

typedef struct tensor { /* one input; data NULL when an optional input is absent */
  const void *data;
  int64_t dims[4];
  size_t rank;
  ONNXTensorElementDataType type;
} tensor;

static OrtStatus *fail(const OrtApi *ort, const char *fmt, ...) {
  char msg[512];
  int n = snprintf(msg, sizeof msg, "%s.%s: ", KVC_OP_DOMAIN, KVC_OP_ATTENTION);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
  va_end(ap);
  return ort->CreateStatus(ORT_INVALID_ARGUMENT, msg);
}

static OrtStatus *read_input(const OrtApi *ort, OrtKernelContext *ctx, size_t count, int index,
                             tensor *t) {
  memset(t, 0, sizeof *t);
  const OrtValue *value = NULL;
  OrtStatus *st = NULL;
  if ((size_t)index < count)
    st = ort->KernelContext_GetInput(ctx, (size_t)index, &value);
  if (st || !value)
    return st;
  OrtTensorTypeAndShapeInfo *info = NULL;
  st = ort->GetTensorTypeAndShape(value, &info);
  if (!st)
    st = ort->GetDimensionsCount(info, &t->rank);
  if (!st && t->rank > 4)
    st = fail(ort, "%s has %zu dimensions: expected at most 4", input_names[index], t->rank);
  if (!st)
    st = ort->GetDimensions(info, t->dims, t->rank);
  if (!st)
    st = ort->GetTensorElementType(info, &t->type);
  if (info)
    ort->ReleaseTensorTypeAndShapeInfo(info);
  void *data = NULL; /* read only: this API version has no const accessor */
  if (!st)
    st = ort->GetTensorMutableData((OrtValue *)value, &data);
  t->data = data;
  return st;
}

static void shape_text(const tensor *t, char *out, size_t cap) {
  size_t n = (size_t)snprintf(out, cap, "(");
  for (size_t i = 0; i < t->rank && n < cap; i++)
    n += (size_t)snprintf(out + n, cap - n, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
  if (n < cap)
    snprintf(out + n, cap - n, ")");
}

/* Input `index` must have `rank` dims equal to want[] (-1: any). */
static OrtStatus *expect_shape(const OrtApi *ort, const tensor *t, int index, size_t rank,
                               const int64_t *want, const char *meaning) {
  int ok = t->rank == rank;
  for (size_t i = 0; ok && i < rank; i++)
    ok = want[i] < 0 ? t->dims[i] >= 0 : t->dims[i] == want[i];
  if (ok)
    return NULL;
  char got[96];
  shape_text(t, got, sizeof got);
  return fail(ort, "%s has shape %s: expected %s", input_names[index], got, meaning);
}

/* The sizes of one run, all checked. */
typedef struct run {
  const kernel *kn;
  int64_t batch, seq, heads, kv_heads, group, head_dim, past, present;
  int64_t q_stride; /* floats per token in query: (H + 2 KV) D packed, H D otherwise */
  float scale;
  const float *query, *key, *value, *cos, *sin, *bias;
  const int32_t *seqlens;
  float *out;
  void *present_k, *present_v; /* rows of the cache's kind */
  kvc__cache_kind kind;        /* float32, float16 or 8-bit: past's type */
  size_t row_bytes;            /* of one cache row (a position of a K/V head) */
  int64_t sub;                 /* query heads per task */
  kvc__attend_fn *attend;
} run;

/* Row b's first new position (its length before this run). */
static int64_t first_pos(const run *r, int64_t b) {
  return (int64_t)r->seqlens[b] + 1 - r->seq;
}

static OrtStatus *check(const OrtApi *ort, const kernel *kn, const tensor *in, run *r) {
  const tensor *q = &in[IN_QUERY];
  if (!q->data || q->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || q->rank != 3)
    return fail(ort, "query must be a float tensor (batch, seq, hidden)");
  r->batch = q->dims[0];
  r->seq = q->dims[1];
  r->heads = kn->heads;
  r->kv_heads = kn->kv_heads;
  r->group = kn->heads / kn->kv_heads;
  const int packed = !in[IN_KEY].data;
  if (packed != !in[IN_VALUE].data)
    return fail(ort, "key and value must be given together (or neither, for packed q|k|v)");
  const int64_t parts = packed ? kn->heads + 2 * kn->kv_heads : kn->heads;
  if (r->batch < 1 || r->seq < 1 || q->dims[2] < parts || q->dims[2] % parts != 0)
    return fail(ort,
                "query has shape (%lld, %lld, %lld): expected batch >= 1, seq >= 1 and hidden a "
                "multiple of %lld (%s)",
                (long long)r->batch, (long long)r->seq, (long long)q->dims[2], (long long)parts,
                packed ? "num_heads + 2 kv_num_heads, packed" : "num_heads");
  r->head_dim = q->dims[2] / parts;
  r->q_stride = q->dims[2];
  if (r->head_dim > MAX_HEAD_DIM)
    return fail(ort, "head size %lld: expected at most %d", (long long)r->head_dim, MAX_HEAD_DIM);
  const int64_t kv_shape[3] = {r->batch, r->seq, kn->kv_heads * r->head_dim};
  OrtStatus *st = NULL;
  for (int i = IN_KEY; i <= IN_VALUE && !packed && !st; i++)
    st = in[i].type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT
             ? fail(ort, "%s must be float", input_names[i])
             : expect_shape(ort, &in[i], i, 3, kv_shape, "(batch, seq, kv_num_heads x head size)");
  /* the cache: float, float16 or 8-bit rows (one registration each: ONNX Runtime picks by
   * type); an 8-bit row holds head size codes and a float scale */
  const ONNXTensorElementDataType type = in[IN_PAST_K].type;
  r->kind = type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 ? KVC_CACHE_F16
            : type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8  ? KVC_CACHE_Q8
                                                          : KVC_CACHE_F32;
  r->row_bytes = kvc__cache_row_bytes(r->kind, (int)r->head_dim);
  const int64_t cache_dim = kvc__cache_dim(r->kind, (int)r->head_dim);
  for (int i = IN_PAST_K; i <= IN_PAST_V && !st; i++) {
    const int64_t want[4] = {r->batch, kn->kv_heads, i == IN_PAST_K ? -1 : in[IN_PAST_K].dims[2],
                             cache_dim};
    st = !in[i].data ||
                 (type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT &&
                  type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 &&
                  type != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8) ||
                 in[i].type != type
             ? fail(ort, "%s must be a float, float16 or int8 tensor, past_value as past_key",
                    input_names[i])
             : expect_shape(ort, &in[i], i, 4, want,
                            r->kind == KVC_CACHE_Q8
                                ? "(batch, kv_num_heads, time, head size + 4), past_value as "
                                  "past_key"
                                : "(batch, kv_num_heads, time, head size), past_value as "
                                  "past_key");
  }
  if (!st && r->kind != KVC_CACHE_F32 && r->head_dim > KVC_ATTN_NARROW_MAX_DIM)
    st = fail(ort, "a %s cache with head size %lld: expected at most %d",
              r->kind == KVC_CACHE_F16 ? "float16" : "8-bit", (long long)r->head_dim,
              KVC_ATTN_NARROW_MAX_DIM);
  if (st)
    return st;
  r->past = in[IN_PAST_K].dims[2];
  const int64_t rows[1] = {r->batch};
  const tensor *lens = &in[IN_SEQLENS], *total = &in[IN_TOTAL];
  if (!lens->data || lens->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32)
    return fail(ort, "seqlens_k must be an int32 tensor (batch)");
  if ((st = expect_shape(ort, lens, IN_SEQLENS, 1, rows, "(batch)")))
    return st;
  if (!total->data || total->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 ||
      (total->rank > 1 || (total->rank == 1 && total->dims[0] != 1)))
    return fail(ort, "total_sequence_length must be one int32");
  const int32_t total_len = *(const int32_t *)total->data;
  if (total_len < 0 || total_len > r->past + r->seq) /* present grows by at most this run */
    return fail(ort, "total_sequence_length = %d: expected 0 to past (%lld) + seq (%lld)",
                total_len, (long long)r->past, (long long)r->seq);
  r->present = total_len > r->past ? total_len : r->past;
  r->seqlens = lens->data;
  const tensor *cos = &in[IN_COS], *sin = &in[IN_SIN];
  if (kn->rotary) {
    if (r->head_dim % 2)
      return fail(ort, "do_rotary with head size %lld: expected an even head size",
                  (long long)r->head_dim);
    const int64_t want[2] = {-1, r->head_dim / 2};
    for (int i = IN_COS; i <= IN_SIN && !st; i++)
      st = !in[i].data || in[i].type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT
               ? fail(ort, "do_rotary = 1 needs %s, a float tensor", input_names[i])
               : expect_shape(ort, &in[i], i, 2, want, "(positions, head size / 2)");
    if (!st && sin->dims[0] != cos->dims[0])
      st = fail(ort, "sin_cache has %lld rows: expected cos_cache's %lld", (long long)sin->dims[0],
                (long long)cos->dims[0]);
    if (st)
      return st;
  }
  const tensor *bias = &in[IN_BIAS];
  if (bias->data) {
    const int64_t want[1] = {r->q_stride};
    if (!packed)
      return fail(ort, "qkv_bias needs packed q|k|v in query (key and value absent)");
    if (bias->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
      return fail(ort, "qkv_bias must be float");
    if ((st = expect_shape(ort, bias, IN_BIAS, 1, want,
                           "((num_heads + 2 kv_num_heads) x head size)")))
      return st;
  }
  for (int64_t b = 0; b < r->batch; b++) {
    const int64_t len = (int64_t)r->seqlens[b] + 1;
    if (len < r->seq || len > r->present)
      return fail(ort,
                  "seqlens_k[%lld] = %d: row %lld would hold %lld positions, expected %lld (its "
                  "new tokens) to %lld (present's time axis, max(past %lld, "
                  "total_sequence_length %d))",
                  (long long)b, r->seqlens[b], (long long)b, (long long)len, (long long)r->seq,
                  (long long)r->present, (long long)r->past, total_len);
    if (kn->rotary && len > cos->dims[0])
      return fail(ort, "seqlens_k[%lld] = %d: past the %lld positions of cos_cache", (long long)b,
                  r->seqlens[b], (long long)cos->dims[0]);
  }
  r->kn = kn;
  r->scale = kn->scale > 0.0f ? kn->scale : 1.0f / sqrtf((float)r->head_dim);
  r->query = q->data;
  r->key = in[IN_KEY].data;
  r->value = in[IN_VALUE].data;
  r->cos = cos->data;
  r->sin = sin->data;
  r->bias = bias->data;
  r->sub = r->group < KVC_ATTN_MAX_GROUP ? r->group : KVC_ATTN_MAX_GROUP;
  if (r->sub * r->head_dim > Q_SCRATCH)
    r->sub = Q_SCRATCH / r->head_dim > 0 ? Q_SCRATCH / r->head_dim : 1;
  r->attend = kvc__attend_for(kn->path, (int)r->head_dim);
  return NULL;
}

/* dst = src (+ bias), rotated to position pos when the run rotates, times scale. */
static void prepare(const run *r, const float *src, const float *bias, int64_t pos, float scale,
                    float *dst) {
  const int64_t d = r->head_dim, half = d / 2;
  for (int64_t i = 0; i < d; i++)
    dst[i] = src[i] + (bias ? bias[i] : 0.0f);
  if (r->kn->rotary) {
    const float *c = r->cos + pos * half, *s = r->sin + pos * half;
    for (int64_t i = 0; i < half; i++) {
      const float x1 = dst[i], x2 = dst[i + half];
      dst[i] = x1 * c[i] - x2 * s[i];
      dst[i + half] = x2 * c[i] + x1 * s[i];
    }
  }
  if (scale != 1.0f)
    for (int64_t i = 0; i < d; i++)
      dst[i] *= scale;
}

/* Row `row` of the cache: `values` (head size floats) as they are, rounded to halves, or
 * quantised to 8 bits. */
static void store_row(const run *r, void *cache, size_t row, const float *values) {
  const size_t d = (size_t)r->head_dim;
  char *at = (char *)cache + row * r->row_bytes;
  if (r->kind == KVC_CACHE_F32)
    memcpy(at, values, d * sizeof(float));
  else if (r->kind == KVC_CACHE_Q8)
    kvc__q8_quantize_row(values, (int)d, (int8_t *)at);
  else
    for (size_t i = 0; i < d; i++)
      ((uint16_t *)(void *)at)[i] = kvc__half_from_float(values[i]);
}

/* The new tokens' keys and values into present, after the copied past where present is
 * not past's buffer. There, ONNX Runtime allocated present, so the positions past each row's
 * length are zeroed: outputs never carry uninitialized memory. A narrow cache holds them
 * rounded (halves, 8-bit codes), and attention reads them back from present: a prompt's
 * tokens attend to the same values a later step will. */
static void write_cache(const run *r, const void *past_k, const void *past_v) {
  const int64_t d = r->head_dim, kvh = r->kv_heads, h = r->heads;
  char *pk = r->present_k, *pv = r->present_v;
  const char *qk = past_k, *qv = past_v;
  for (int64_t b = 0; b < r->batch; b++) {
    const int64_t first = first_pos(r, b);
    for (int64_t k = 0; k < kvh; k++) {
      const size_t head = (size_t)((b * kvh + k) * r->present) * r->row_bytes;
      const size_t past_head = (size_t)((b * kvh + k) * r->past) * r->row_bytes;
      if (past_k != r->present_k)
        memcpy(pk + head, qk + past_head, (size_t)first * r->row_bytes);
      if (past_v != r->present_v)
        memcpy(pv + head, qv + past_head, (size_t)first * r->row_bytes);
      const int64_t end = first + r->seq; /* <= present: checked with the lengths */
      const size_t tail = (size_t)(r->present - end) * r->row_bytes;
      if (past_k != r->present_k)
        memset(pk + head + (size_t)end * r->row_bytes, 0, tail);
      if (past_v != r->present_v)
        memset(pv + head + (size_t)end * r->row_bytes, 0, tail);
      for (int64_t i = 0; i < r->seq; i++) {
        const int64_t token = b * r->seq + i, pos = first + i;
        const float *ksrc, *vsrc, *kbias = NULL, *vbias = NULL;
        if (r->key) {
          ksrc = r->key + (token * kvh + k) * d;
          vsrc = r->value + (token * kvh + k) * d;
        } else {
          ksrc = r->query + token * r->q_stride + (h + k) * d;
          vsrc = r->query + token * r->q_stride + (h + kvh + k) * d;
          if (r->bias) {
            kbias = r->bias + (h + k) * d;
            vbias = r->bias + (h + kvh + k) * d;
          }
        }
        const size_t row = (size_t)((b * kvh + k) * r->present + pos);
        float kx[MAX_HEAD_DIM], vx[MAX_HEAD_DIM];
        prepare(r, ksrc, kbias, pos, 1.0f, kx);
        for (int64_t j = 0; j < d; j++)
          vx[j] = vsrc[j] + (vbias ? vbias[j] : 0.0f);
        store_row(r, r->present_k, row, kx);
        store_row(r, r->present_v, row, vx);
      }
    }
  }
}

/* Task t: (row, new token, K/V head, group part) in that order of significance. */
static void attend_task(void *data, size_t t) {
  const run *r = data;
  const int64_t parts = (r->group + r->sub - 1) / r->sub, d = r->head_dim;
  const int64_t part = (int64_t)t % parts, k = (int64_t)t / parts % r->kv_heads;
  const int64_t token = (int64_t)t / parts / r->kv_heads, b = token / r->seq;
  const int64_t pos = first_pos(r, b) + token % r->seq;
  const int64_t h0 = k * r->group + part * r->sub;
  const int64_t count = r->group - part * r->sub < r->sub ? r->group - part * r->sub : r->sub;
  float q[Q_SCRATCH];
  for (int64_t g = 0; g < count; g++) {
    const int64_t h = h0 + g;
    const float *src =
        r->key ? r->query + (token * r->heads + h) * d : r->query + token * r->q_stride + h * d;
    prepare(r, src, r->bias ? r->bias + h * d : NULL, pos, r->scale, q + g * d);
  }
  const size_t head = (size_t)((b * r->kv_heads + k) * r->present) * r->row_bytes;
  r->attend(q, (int)count, (int)d, (const char *)r->present_k + head,
            (const char *)r->present_v + head, r->kind, pos + 1,
            r->out + (token * r->heads + h0) * d);
}

static OrtStatus *compute(void *state, OrtKernelContext *ctx) {
  const kernel *kn = state;
  const OrtApi *ort = kn->ort;
  size_t count = 0;
  OrtStatus *st = ort->KernelContext_GetInputCount(ctx, &count);
  tensor in[N_IN];
  for (int i = 0; i < N_IN && !st; i++)
    st = read_input(ort, ctx, count, i, &in[i]);
  run r;
  if (!st)
    st = check(ort, kn, in, &r);
  if (st)
    return st;
  const int64_t out_shape[3] = {r.batch, r.seq, r.heads * r.head_dim};
  const int64_t cache_shape[4] = {r.batch, r.kv_heads, r.present,
                                  kvc__cache_dim(r.kind, (int)r.head_dim)};
  OrtValue *outs[N_OUT] = {NULL};
  st = ort->KernelContext_GetOutput(ctx, OUT_CONTEXT, out_shape, 3, &outs[OUT_CONTEXT]);
  for (int o = OUT_PRESENT_K; o <= OUT_PRESENT_V && !st; o++)
    st = ort->KernelContext_GetOutput(ctx, (size_t)o, cache_shape, 4, &outs[o]);
  void *data[N_OUT] = {NULL};
  for (int o = 0; o < N_OUT && !st; o++)
    st = ort->GetTensorMutableData(outs[o], &data[o]);
  if (st)
    return st;
  r.out = data[OUT_CONTEXT];
  r.present_k = data[OUT_PRESENT_K];
  r.present_v = data[OUT_PRESENT_V];
  write_cache(&r, in[IN_PAST_K].data, in[IN_PAST_V].data);
  const size_t tasks = (size_t)(r.batch * r.seq * r.kv_heads * ((r.group + r.sub - 1) / r.sub));
  if (tasks == 1) {
    attend_task(&r, 0);
    return NULL;
  }
  return ort->KernelContext_ParallelFor(ctx, attend_task, tasks, 0, &r);
}

static OrtStatus *create(const OrtCustomOp *op, const OrtApi *ort, const OrtKernelInfo *info,
                         void **out) {
  (void)op;
  kernel k = {.ort = ort};
  char why[160];
  OrtStatus *st = ort->KernelInfoGetAttribute_int64(info, "num_heads", &k.heads);
  if (!st)
    st = ort->KernelInfoGetAttribute_int64(info, "kv_num_heads", &k.kv_heads);
  if (st) {
    ort->ReleaseStatus(st);
    return fail(ort, "attributes num_heads and kv_num_heads are required");
  }
  if (k.heads < 1 || k.kv_heads < 1 || k.heads % k.kv_heads != 0)
    return fail(ort,
                "num_heads = %lld, kv_num_heads = %lld: expected kv_num_heads >= 1 dividing "
                "num_heads",
                (long long)k.heads, (long long)k.kv_heads);
  int64_t rotary = 0;
  if ((st = ort->KernelInfoGetAttribute_int64(info, "do_rotary", &rotary))) {
    ort->ReleaseStatus(st); /* absent: no rotary */
    rotary = 0;
  }
  if ((st = ort->KernelInfoGetAttribute_float(info, "scale", &k.scale))) {
    ort->ReleaseStatus(st); /* absent: 1 / sqrt(head size) */
    k.scale = 0.0f;
  }
  if (rotary != 0 && rotary != 1)
    return fail(ort, "do_rotary = %lld: expected 0 or 1", (long long)rotary);
  if (k.scale < 0.0f || !isfinite(k.scale))
    return fail(ort, "scale = %g: expected a positive number (or absent)", (double)k.scale);
  k.rotary = (int)rotary;
  if (kvc__attend_pick(&k.path, why, sizeof why) != 0)
    return ort->CreateStatus(ORT_INVALID_ARGUMENT, why);
  kernel *made = malloc(sizeof *made);
  if (!made)
    return ort->CreateStatus(ORT_FAIL, "ai.kvcache.Attention: out of memory");
  *made = k;
  *out = made;
  return NULL;
}

static void destroy(void *state) {
  free(state);
}

static const char *op_name(const OrtCustomOp *op) {
  (void)op;
  return KVC_OP_ATTENTION;
}

static ONNXTensorElementDataType input_type(const OrtCustomOp *op, size_t index) {
  (void)op;
  return index == IN_SEQLENS || index == IN_TOTAL ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32
                                                  : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}

/* The narrow caches' registrations: past and present of the cache's type, the rest as
 * above. */
static ONNXTensorElementDataType narrow_input(size_t index, ONNXTensorElementDataType cache) {
  return index == IN_PAST_K || index == IN_PAST_V ? cache : input_type(NULL, index);
}

static ONNXTensorElementDataType narrow_output(size_t index, ONNXTensorElementDataType cache) {
  return index == OUT_CONTEXT ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT : cache;
}

static ONNXTensorElementDataType input_type_f16(const OrtCustomOp *op, size_t index) {
  (void)op;
  return narrow_input(index, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16);
}

static ONNXTensorElementDataType output_type_f16(const OrtCustomOp *op, size_t index) {
  (void)op;
  return narrow_output(index, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16);
}

/* 8-bit: int8 rows of codes and a scale */
static ONNXTensorElementDataType input_type_q8(const OrtCustomOp *op, size_t index) {
  (void)op;
  return narrow_input(index, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8);
}

static ONNXTensorElementDataType output_type_q8(const OrtCustomOp *op, size_t index) {
  (void)op;
  return narrow_output(index, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8);
}

static size_t input_count(const OrtCustomOp *op) {
  (void)op;
  return N_IN;
}

static size_t output_count(const OrtCustomOp *op) {
  (void)op;
  return N_OUT;
}

static OrtCustomOpInputOutputCharacteristic input_kind(const OrtCustomOp *op, size_t index) {
  (void)op;
  switch (index) {
  case IN_KEY:
  case IN_VALUE:
  case IN_COS:
  case IN_SIN:
  case IN_BIAS:
    return INPUT_OUTPUT_OPTIONAL;
  default:
    return INPUT_OUTPUT_REQUIRED;
  }
}

/* The operator's registration, by the types of its cache (past and present); CreateKernel and
 * KernelCompute (version 1) stay unset. */
#define ATTENTION_OP(input_types, output_types)                                                    \
  {                                                                                                \
    .version = OP_VERSION, .GetName = op_name, .GetExecutionProviderType = kvc__op_cpu,            \
    .GetInputType = input_types, .GetInputTypeCount = input_count, .GetOutputType = output_types,  \
    .GetOutputTypeCount = output_count, .KernelDestroy = destroy,                                  \
    .GetInputCharacteristic = input_kind, .GetOutputCharacteristic = kvc__op_required,             \
    .GetInputMemoryType = kvc__op_cpu_memory, .CreateKernelV2 = create,                            \
    .KernelComputeV2 = compute,                                                                    \
  }

const OrtCustomOp kvc__attention_op = ATTENTION_OP(input_type, kvc__op_float);

/* The same operator over a float16 cache: ONNX Runtime merges registrations of one name whose
 * input types differ into one schema and picks the kernel by the node's types. */
const OrtCustomOp kvc__attention_f16_op = ATTENTION_OP(input_type_f16, output_type_f16);

/* ... and over an 8-bit cache. */
const OrtCustomOp kvc__attention_q8_op = ATTENTION_OP(input_type_q8, output_type_q8);
