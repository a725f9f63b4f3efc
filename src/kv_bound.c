/* kv_bound.c: KVC_KV_BOUND. IOBinding into two buffers per cache tensor and slot, allocated
 * once at capacity: one holds the slot's past, the graph writes the present (one run longer)
 * into the other, and they swap after every run. One row per run: the graph (Concat) makes
 * every row of a run as long as the longest. */
#include "alloc.h"
#include "ctx.h"
#include "error.h"

static kvc_status bound_run(kvc_ctx *c, const kvc__rows *r, const float **logits) {
  const OrtApi *ort = kvc__ort();
  const kvc_model *m = c->model;
  const int32_t slot = r->first_slot, past = r->past[0], total = past + r->n;
  kvc__fill_rows(c, r);
  kvc_status s = kvc__bind_run_inputs(c, 1, r->n, total, KVC_INPUTS_ALL);

  /* past: the first `past` positions of one buffer; present: the other, n longer */
  const kvc__cache *cache = &c->cache;
  const int64_t past_shape[4] = {1, cache->kv_heads, past, cache->head_dim};
  const int64_t present_shape[4] = {1, cache->kv_heads, total, cache->head_dim};
  const size_t row = (size_t)cache->kv_heads * cache->head_dim * sizeof(float);
  for (int l = 0; l < cache->layers && !s; l++) {
    for (int kv = 0; kv < 2 && !s; kv++) {
      const kvc__layer_names *nm = &m->sig.names[l];
      s = kvc__bind(c->binding, 0, nm->past[kv], m->cache_mem, kvc__cache_past(cache, l, kv, slot),
                    (size_t)past * row, past_shape, 4, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
      if (!s)
        s = kvc__bind(c->binding, 1, nm->present[kv], m->cache_mem,
                      kvc__cache_present(cache, l, kv, slot), (size_t)total * row, present_shape, 4,
                      ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
    }
  }
  const int64_t logits_shape[3] = {1, r->n, c->vocab};
  if (!s)
    s = kvc__bind(c->binding, 1, "logits", m->host_mem, c->run_logits,
                  (size_t)r->n * c->vocab * sizeof(float), logits_shape, 3,
                  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
  if (!s)
    s = kvc__ort_check_as(ort->RunWithBinding(m->session, NULL, c->binding), KVC_ERR_RUNTIME,
                          "RunWithBinding");
  if (s)
    return s;
  c->cache.cur[slot] = (uint8_t)(1 - c->cache.cur[slot]);
  *logits = c->run_logits;
  return KVC_OK;
}

static kvc_status bound_truncate(kvc_ctx *c, int32_t slot, int32_t len, int32_t new_len) {
  return kvc__cache_repack(&c->cache, slot, len, new_len);
}

static kvc_status bound_init(kvc_ctx *c) {
  return kvc__slotted_init(c, c->capacity, 2);
}

const kvc__kv_ops kvc__kv_bound = {
    .mode = KVC_KV_BOUND,
    .batches = 0,
    .init = bound_init,
    .release = kvc__slotted_release,
    .run = bound_run,
    .truncate = bound_truncate,
    .copy = kvc__slotted_copy,
    .address = kvc__slotted_address,
    .dense = kvc__slotted_dense,
};
