/* kv_shared.c: KVC_KV_SHARED. One buffer per cache tensor holds every slot,
 * (slots, kv_heads, capacity + 1, head_dim), and is bound as both past and present: the
 * graph (GroupQueryAttention) writes each row's new keys and values in place at positions
 * seqlens_k - n + 1 .. seqlens_k of that row (seqlens_k given, or computed by the graph from
 * the attention_mask bound here). A run binds the rows of a slot range as one
 * view of those buffers, so several sequences at their own lengths decode in one run. */
#include "ctx.h"
#include "error.h"

/* Bind the cache views of rows [first, first + count), the run inputs but the mask
 * (inputs.c) and logits of (count, n, V). These stay bound until the rows or n change. */
static kvc_status bind_rows(kvc_ctx *c, int32_t first, int32_t count, int32_t n) {
  const kvc_model *m = c->model;
  const kvc__cache *cache = &c->cache;
  const int64_t shape[4] = {count, cache->kv_heads, cache->stride, cache->head_dim};
  const size_t bytes = cache->slot_bytes * (size_t)count;
  c->bound_count = 0;
  kvc_status s = KVC_OK;
  for (int l = 0; l < cache->layers && !s; l++) {
    for (int kv = 0; kv < 2 && !s; kv++) {
      const kvc__layer_names *nm = &m->sig.names[l];
      void *buf = kvc__cache_past(cache, l, kv, first);
      s = kvc__bind(c->binding, 0, nm->past[kv], m->cache_mem, buf, bytes, shape, 4,
                    ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
      if (!s)
        s = kvc__bind(c->binding, 1, nm->present[kv], m->cache_mem, buf, bytes, shape, 4,
                      ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
    }
  }
  const int64_t logits_shape[3] = {count, n, c->vocab};
  if (!s) /* the mask's shape changes with every run's length: shared_run binds it */
    s = kvc__bind_run_inputs(c, count, n, 0, KVC_INPUTS_BUT_MASK);
  if (!s)
    s = kvc__bind(c->binding, 1, "logits", m->host_mem, c->run_logits,
                  (size_t)count * n * c->vocab * sizeof(float), logits_shape, 3,
                  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
  if (!s) {
    c->bound_first = first;
    c->bound_count = count;
    c->bound_n = n;
  }
  return s;
}

static kvc_status shared_run(kvc_ctx *c, const kvc__rows *r, const float **logits) {
  const kvc_model *m = c->model;
  kvc__fill_rows(c, r);
  kvc_status s = KVC_OK;
  /* a device session copies host inputs when they are bound, so it binds every run */
  if (!c->cache.on_host || r->first_slot != c->bound_first || r->count != c->bound_count ||
      r->n != c->bound_n)
    s = bind_rows(c, r->first_slot, r->count, r->n);
  if (!s)
    s = kvc__bind_run_inputs(c, r->count, r->n, c->total_len[0], KVC_INPUTS_MASK);
  if (!s)
    s = kvc__ort_check_as(kvc__ort()->RunWithBinding(m->session, NULL, c->binding), KVC_ERR_RUNTIME,
                          "RunWithBinding");
  *logits = s ? NULL : c->run_logits;
  return s;
}

static kvc_status shared_init(kvc_ctx *c) { /* the graph writes in place: kvc__kv_ops_resolve */
  kvc_status s = kvc__slotted_init(c, c->capacity + 1, 1);
  if (!s) /* bind the common case now: one row, one token */
    s = bind_rows(c, 0, 1, 1);
  return s;
}

/* Positions at and after new_len are simply not read again. */
static kvc_status shared_truncate(kvc_ctx *c, int32_t slot, int32_t len, int32_t new_len) {
  (void)c, (void)slot, (void)len, (void)new_len;
  return KVC_OK;
}

const kvc__kv_ops kvc__kv_shared = {
    .mode = KVC_KV_SHARED,
    .batches = 1,
    .init = shared_init,
    .release = kvc__slotted_release,
    .run = shared_run,
    .truncate = shared_truncate,
    .copy = kvc__slotted_copy,
    .address = kvc__slotted_address,
    .dense = kvc__slotted_dense,
};
