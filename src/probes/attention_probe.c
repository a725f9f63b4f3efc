/* attention_probe.c: kvc_model_attention_ms(): the model's attention alone, timed by the
 * same runtime, threads and session options as its decode step, so that GroupQueryAttention
 * and kvcache's operator can be compared in one process on the same cache bytes.
 *
 * The graph: one packed query (1, 1, (H + 2 KV) D) shared by `layers` attention nodes, each
 * with its own past/present (1, KV, T, D) bound to one buffer (in place, as SHARED binds a
 * step), seqlens_k and total_sequence_length given. kvcache's operator gets the model's cache
 * type (float16, 8-bit rows of D + 4 bytes), GroupQueryAttention float32. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "attention_op.h"
#include "cache_memory.h"
#include "clock.h"
#include "error.h"
#include "half.h"
#include "model.h"
#include "onnx.h"
#include "probe.h"
#include "onnx/onnx.pb-c.h"

typedef struct probe {
  int layers, heads, kv_heads, head_dim;
  int64_t time;                   /* the cache buffers' time axis */
  ONNXTensorElementDataType type; /* the cache's */
  int64_t dim;                    /* its last dimension */
  size_t row_bytes;               /* of one position of one K/V head */
} probe;

/* A small value per position and head, written as the cache's type writes it (a narrow
 * cache's head size is at most KVC_ATTN_NARROW_MAX_DIM: the operator refuses more). */
static void fill_row(const probe *p, char *row, size_t seed) {
  float x[KVC_ATTN_NARROW_MAX_DIM];
  float *values = p->type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT ? (float *)(void *)row : x;
  const int d =
      values == x && p->head_dim > KVC_ATTN_NARROW_MAX_DIM ? KVC_ATTN_NARROW_MAX_DIM : p->head_dim;
  for (int i = 0; i < d; i++)
    values[i] = (float)((seed + (size_t)i) % 17) * 0.01f - 0.08f;
  if (p->type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8)
    kvc__q8_quantize_row(x, d, (int8_t *)row);
  else if (p->type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16)
    for (int i = 0; i < d; i++)
      ((uint16_t *)(void *)row)[i] = kvc__half_from_float(x[i]);
}

static kvc_status probe_session(kvc_model *m, const probe *p, kvc_attention attention,
                                OrtSession **out) {
  kvc__onnx *g = kvc__onnx_new("kvcache_attention_probe");
  if (!g)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory building the attention probe");
  const int32_t f32 = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
                i32 = ONNX__TENSOR_PROTO__DATA_TYPE__INT32, type = (int32_t)p->type;
  const int own = attention == KVC_ATTENTION_KVCACHE;
  kvc__onnx_opset(g, own ? KVC_OP_DOMAIN : "com.microsoft", 1);
  const int64_t packed = (int64_t)(p->heads + 2 * p->kv_heads) * p->head_dim;
  const kvc__dim q[] = {{NULL, 1}, {NULL, 1}, {NULL, packed}};
  const kvc__dim cache[] = {{NULL, 1}, {NULL, p->kv_heads}, {NULL, p->time}, {NULL, p->dim}};
  const kvc__dim ctx[] = {{NULL, 1}, {NULL, 1}, {NULL, (int64_t)p->heads * p->head_dim}};
  kvc__onnx_input(g, "query", f32, q, 3);
  kvc__onnx_input(g, "seqlens_k", i32, (kvc__dim[]){{NULL, 1}}, 1);
  kvc__onnx_input(g, "total_sequence_length", i32, NULL, 0);
  const kvc__attr attrs[] = {KVC_ATTR_I("num_heads", p->heads),
                             KVC_ATTR_I("kv_num_heads", p->kv_heads)};
  for (int l = 0; l < p->layers; l++) {
    char pk[32], pv[32], ck[32], cv[32], o[32];
    snprintf(pk, sizeof pk, "past_key_%d", l);
    snprintf(pv, sizeof pv, "past_value_%d", l);
    snprintf(ck, sizeof ck, "present_key_%d", l);
    snprintf(cv, sizeof cv, "present_value_%d", l);
    snprintf(o, sizeof o, "context_%d", l);
    kvc__onnx_input(g, pk, type, cache, 4);
    kvc__onnx_input(g, pv, type, cache, 4);
    kvc__onnx_output(g, o, f32, ctx, 3);
    kvc__onnx_output(g, ck, type, cache, 4);
    kvc__onnx_output(g, cv, type, cache, 4);
    const char *ins[] = {"query", "", "", pk, pv, "seqlens_k", "total_sequence_length"};
    const char *outs[] = {o, ck, cv};
    kvc__onnx_node(g, own ? KVC_OP_ATTENTION : "GroupQueryAttention",
                   own ? KVC_OP_DOMAIN : "com.microsoft", ins, 7, outs, 3, attrs, 2);
  }
  return kvc__probe_session(m, g, "creating the attention probe session", out);
}

kvc_status kvc_model_attention_ms(kvc_model *model, kvc_attention attention,
                                  const int32_t *positions, int32_t n, int32_t reads, double *ms) {
  if (!model || !positions || !ms || n <= 0 || reads <= 0)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_model_attention_ms: expected a model, n >= 1 "
                                          "positions, reads >= 1 and ms");
  if (attention != KVC_ATTENTION_GQA && attention != KVC_ATTENTION_KVCACHE)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "kvc_model_attention_ms: attention = %d: expected KVC_ATTENTION_GQA or "
                     "KVC_ATTENTION_KVCACHE",
                     (int)attention);
  const int cuda = strcmp(model->info.provider, "cuda") == 0;
  if (cuda && attention == KVC_ATTENTION_KVCACHE)
    return kvc__fail(KVC_ERR_UNSUPPORTED,
                     "kvc_model_attention_ms: kvcache's attention operator runs on the CPU "
                     "provider only (this model: %s)",
                     model->info.provider);
  int32_t most = 0;
  for (int32_t i = 0; i < n; i++) {
    if (positions[i] < 0 || positions[i] >= model->info.max_seq_len)
      return kvc__fail(KVC_ERR_INVALID_ARG,
                       "kvc_model_attention_ms: positions[%d] = %d: expected 0..%d", i,
                       positions[i], model->info.max_seq_len - 1);
    most = positions[i] > most ? positions[i] : most;
  }
  const int own = attention == KVC_ATTENTION_KVCACHE;
  const probe p = {model->sig.layers,
                   model->attention_heads,
                   model->sig.kv_heads,
                   model->sig.head_dim,
                   (int64_t)most + 2,
                   own ? model->sig.cache_type : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                   own ? model->sig.cache_dim : model->sig.head_dim,
                   own ? model->sig.row_bytes : (size_t)model->sig.head_dim * sizeof(float)};
  const size_t rows = (size_t)p.kv_heads * (size_t)p.time; /* of one layer's key or value */
  const size_t cache_bytes = rows * p.row_bytes;
  const size_t q_floats = (size_t)(p.heads + 2 * p.kv_heads) * (size_t)p.head_dim;
  const size_t ctx_bytes = (size_t)p.heads * (size_t)p.head_dim * sizeof(float);
  const OrtApi *ort = kvc__ort();
  OrtSession *session = NULL;
  OrtIoBinding *binding = NULL;
  void *cache = NULL;
  float *query = kvc__calloc(q_floats, sizeof *query);
  float *ctx = kvc__calloc((size_t)p.layers, ctx_bytes);
  double *times = kvc__calloc((size_t)n * (size_t)reads, sizeof *times);
  int32_t seqlens = 0, total = 0;
  kvc_status s = query && ctx && times ? probe_session(model, &p, attention, &session)
                                       : kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  if (!s)
    s = kvc__cache_memory(model, cache_bytes * 2 * (size_t)p.layers, "the attention probe's cache",
                          &cache);
  if (!s && !cuda) /* resident, small values: what a decode step's cache holds */
    for (size_t r = 0; r < rows * 2 * (size_t)p.layers; r++)
      fill_row(&p, (char *)cache + r * p.row_bytes, r);
  for (size_t i = 0; i < q_floats; i++)
    query[i] = (float)(i % 13) * 0.01f - 0.06f;
  if (!s)
    s = kvc__ort_check(ort->CreateIoBinding(session, &binding), "attention probe binding");
  const int64_t q_shape[3] = {1, 1, (int64_t)q_floats}, one[1] = {1};
  const int64_t cache_shape[4] = {1, p.kv_heads, p.time, p.dim};
  const int64_t ctx_shape[3] = {1, 1, (int64_t)p.heads * p.head_dim};
  const ONNXTensorElementDataType f32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                  i32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
  if (!s)
    s = kvc__probe_bind(binding, 0, "query", "query", model->host_mem, query,
                        q_floats * sizeof *query, q_shape, 3, f32);
  if (!s)
    s = kvc__probe_bind(binding, 0, "seqlens_k", "seqlens_k", model->host_mem, &seqlens,
                        sizeof seqlens, one, 1, i32);
  if (!s)
    s = kvc__probe_bind(binding, 0, "total_sequence_length", "total_sequence_length",
                        model->host_mem, &total, sizeof total, NULL, 0, i32);
  for (int l = 0; l < p.layers && !s; l++) {
    for (int kv = 0; kv < 2 && !s; kv++) {
      char past[32], present[32];
      snprintf(past, sizeof past, "past_%s_%d", kv ? "value" : "key", l);
      snprintf(present, sizeof present, "present_%s_%d", kv ? "value" : "key", l);
      void *buf = (char *)cache + cache_bytes * (size_t)(2 * l + kv);
      s = kvc__probe_bind(binding, 0, past, past, model->cache_mem, buf, cache_bytes, cache_shape,
                          4, p.type);
      if (!s)
        s = kvc__probe_bind(binding, 1, present, present, model->cache_mem, buf, cache_bytes,
                            cache_shape, 4, p.type);
    }
    char name[32];
    snprintf(name, sizeof name, "context_%d", l);
    if (!s)
      s = kvc__probe_bind(binding, 1, name, name, model->host_mem,
                          (char *)ctx + ctx_bytes * (size_t)l, ctx_bytes, ctx_shape, 3, f32);
  }
  /* rounds of one run per position (drift hits every position alike), untimed ones first */
  for (int32_t r = -reads; r < reads && !s; r++) {
    for (int32_t i = 0; i < n && !s; i++) {
      seqlens =
          positions[i]; /* the new token lands at the position, attends to it and all before */
      total = positions[i] + 1;
      const double t = kvc__now_ms();
      s = kvc__ort_check_as(ort->RunWithBinding(session, NULL, binding), KVC_ERR_RUNTIME,
                            "attention probe run");
      if (r >= 0)
        times[(size_t)i * reads + r] = kvc__now_ms() - t;
    }
  }
  if (!s)
    kvc__probe_medians(times, n, reads, ms);
  if (binding)
    ort->ReleaseIoBinding(binding);
  kvc__cache_memory_free(model, cache, cache_bytes * 2 * (size_t)p.layers);
  if (session)
    ort->ReleaseSession(session);
  kvc__free(query);
  kvc__free(ctx);
  kvc__free(times);
  return s;
}
