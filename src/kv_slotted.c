/* kv_slotted.c: the two modes whose cache kvcache allocates once, at capacity, in slotted
 * buffers (cache.c), and binds for ONNX Runtime to read and write (IoBinding).
 *
 *  BOUND:  two buffers per cache tensor and slot: one holds the slot's past, the graph writes
 *          the present (one run longer) into the other, and they swap after every run. One
 *          row per run: the graph (Concat) makes every row of a run as long as the longest.
 *  SHARED: one buffer per cache tensor holds every slot, (slots, kv_heads, capacity + 1,
 *          head_dim), bound as both past and present: the graph (GroupQueryAttention or
 *          kvcache's attention) writes each row's new keys and values in place at positions
 *          seqlens_k - n + 1 .. seqlens_k of that row (seqlens_k given, or computed by the
 *          graph from the attention_mask). A run binds the rows of a slot range as one view of
 *          those buffers, so several sequences at their own lengths decode in one run. */
#include "alloc.h"
#include "error.h"
#include "kv_state.h"

static kvc__slotted *state_of(const kvc_ctx *c) {
  return (kvc__slotted *)c->kv;
}

static void slotted_release(kvc_ctx *c) {
  kvc__slotted *k = state_of(c);
  if (!k)
    return;
  if (k->binding)
    kvc__ort()->ReleaseIoBinding(k->binding);
  kvc__cache_release(&k->cache);
  kvc__free(k->run_logits);
  kvc__free(k);
  c->kv = NULL;
  c->cache_bytes = 0;
}

/* The cache of `copies` buffers of `stride` positions per tensor, the run's logits and the
 * binding. */
static kvc_status slotted_init(kvc_ctx *c, int stride, int copies) {
  kvc__slotted *k = kvc__calloc(1, sizeof *k);
  if (!(c->kv = k))
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for a context");
  kvc_status s = kvc__cache_init(&k->cache, c->model, c->slots, stride, copies);
  if (!s && !(k->run_logits = kvc__calloc((size_t)c->rows * c->vocab, sizeof *k->run_logits)))
    s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for logits (%d x %d)", c->rows, c->vocab);
  if (!s)
    s = kvc__ort_check(kvc__ort()->CreateIoBinding(c->model->session, &k->binding),
                       "CreateIoBinding");
  if (!s)
    c->cache_bytes = kvc__cache_bytes(&k->cache);
  return s;
}

static kvc_status slotted_copy(kvc_ctx *dst, int32_t dst_slot, const kvc_ctx *src, int32_t src_slot,
                               int32_t len) {
  return kvc__cache_copy(&state_of(dst)->cache, dst_slot, &state_of(src)->cache, src_slot,
                         src->lens[src_slot], len);
}

static kvc_status slotted_dense(kvc_ctx *c, int32_t slot, int32_t len, void *dense, int to_dense) {
  return kvc__cache_dense(&state_of(c)->cache, slot, len, dense, to_dense);
}

/* BOUND: one of its two buffers, in turn; SHARED: the only one. */
static const void *slotted_address(const kvc_ctx *c, int32_t slot) {
  return kvc__cache_past(&state_of(c)->cache, 0, 0, slot);
}

/* ---- BOUND ----------------------------------------------------------------------------- */

static kvc_status bound_run(kvc_ctx *c, const kvc__rows *r, const float **logits) {
  kvc__slotted *k = state_of(c);
  const kvc_model *m = c->model;
  const int32_t slot = r->first_slot, past = r->past[0], total = past + r->n;
  kvc__fill_rows(c, r);
  kvc_status s = kvc__bind_run_inputs(c, k->binding, 1, r->n, total, KVC_INPUTS_ALL);

  /* past: the first `past` positions of one buffer; present: the other, n longer */
  const kvc__cache *cache = &k->cache;
  const int64_t past_shape[4] = {1, cache->kv_heads, past, cache->dim};
  const int64_t present_shape[4] = {1, cache->kv_heads, total, cache->dim};
  const size_t row = (size_t)cache->kv_heads * cache->row_bytes;
  const ONNXTensorElementDataType type = m->sig.cache_type;
  for (int l = 0; l < cache->layers && !s; l++) {
    for (int kv = 0; kv < 2 && !s; kv++) {
      const kvc__layer_names *nm = &m->sig.names[l];
      s = kvc__bind(k->binding, 0, nm->past[kv], m->cache_mem, kvc__cache_past(cache, l, kv, slot),
                    (size_t)past * row, past_shape, 4, type);
      if (!s)
        s = kvc__bind(k->binding, 1, nm->present[kv], m->cache_mem,
                      kvc__cache_present(cache, l, kv, slot), (size_t)total * row, present_shape, 4,
                      type);
    }
  }
  const int32_t rows = kvc__logits_rows(c, r);
  const int64_t logits_shape[3] = {1, rows, c->vocab};
  if (!s)
    s = kvc__bind(k->binding, 1, "logits", m->host_mem, k->run_logits,
                  (size_t)rows * c->vocab * sizeof(float), logits_shape, 3,
                  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
  if (!s)
    s = kvc__ort_check_as(kvc__ort()->RunWithBinding(m->session, NULL, k->binding), KVC_ERR_RUNTIME,
                          "RunWithBinding");
  if (s)
    return s;
  k->cache.cur[slot] = (uint8_t)(1 - k->cache.cur[slot]);
  *logits = k->run_logits + (size_t)(rows - r->keep) * c->vocab;
  return KVC_OK;
}

static kvc_status bound_truncate(kvc_ctx *c, int32_t slot, int32_t len, int32_t new_len) {
  return kvc__cache_repack(&state_of(c)->cache, slot, len, new_len);
}

static kvc_status bound_init(kvc_ctx *c) {
  return slotted_init(c, c->capacity, 2);
}

const kvc__kv_ops kvc__kv_bound = {
    .mode = KVC_KV_BOUND,
    .batches = 0,
    .init = bound_init,
    .release = slotted_release,
    .run = bound_run,
    .truncate = bound_truncate,
    .copy = slotted_copy,
    .address = slotted_address,
    .dense = slotted_dense,
};

/* ---- SHARED ---------------------------------------------------------------------------- */

/* Bind the cache views of rows [first, first + count), the run inputs but the mask
 * (inputs.c) and logits of (count, logits_rows, V). These stay bound until the rows, n or
 * logits_rows change. */
static kvc_status bind_rows(kvc_ctx *c, int32_t first, int32_t count, int32_t n,
                            int32_t logits_rows) {
  kvc__slotted *k = state_of(c);
  const kvc_model *m = c->model;
  const kvc__cache *cache = &k->cache;
  const int64_t shape[4] = {count, cache->kv_heads, cache->stride, cache->dim};
  const size_t bytes = cache->slot_bytes * (size_t)count;
  k->bound_count = 0;
  kvc_status s = KVC_OK;
  for (int l = 0; l < cache->layers && !s; l++) {
    for (int kv = 0; kv < 2 && !s; kv++) {
      const kvc__layer_names *nm = &m->sig.names[l];
      void *buf = kvc__cache_past(cache, l, kv, first);
      s = kvc__bind(k->binding, 0, nm->past[kv], m->cache_mem, buf, bytes, shape, 4,
                    m->sig.cache_type);
      if (!s)
        s = kvc__bind(k->binding, 1, nm->present[kv], m->cache_mem, buf, bytes, shape, 4,
                      m->sig.cache_type);
    }
  }
  const int64_t logits_shape[3] = {count, logits_rows, c->vocab};
  if (!s) /* the mask's shape changes with every run's length: shared_run binds it */
    s = kvc__bind_run_inputs(c, k->binding, count, n, 0, KVC_INPUTS_BUT_MASK);
  if (!s)
    s = kvc__bind(k->binding, 1, "logits", m->host_mem, k->run_logits,
                  (size_t)count * logits_rows * c->vocab * sizeof(float), logits_shape, 3,
                  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
  if (!s) {
    k->bound_first = first;
    k->bound_count = count;
    k->bound_n = n;
    k->bound_logits_rows = logits_rows;
  }
  return s;
}

static kvc_status shared_run(kvc_ctx *c, const kvc__rows *r, const float **logits) {
  kvc__slotted *k = state_of(c);
  kvc__fill_rows(c, r);
  kvc_status s = KVC_OK;
  const int32_t rows = kvc__logits_rows(c, r);
  /* a device session copies host inputs when they are bound, so it binds every run */
  if (!k->cache.on_host || r->first_slot != k->bound_first || r->count != k->bound_count ||
      r->n != k->bound_n || rows != k->bound_logits_rows)
    s = bind_rows(c, r->first_slot, r->count, r->n, rows);
  if (!s)
    s = kvc__bind_run_inputs(c, k->binding, r->count, r->n, c->in.total_len[0], KVC_INPUTS_MASK);
  if (!s)
    s = kvc__ort_check_as(kvc__ort()->RunWithBinding(c->model->session, NULL, k->binding),
                          KVC_ERR_RUNTIME, "RunWithBinding");
  /* one row, or rows of one token each (keep = n) */
  *logits = s ? NULL : k->run_logits + (size_t)(rows - r->keep) * c->vocab;
  return s;
}

static kvc_status shared_init(kvc_ctx *c) { /* the graph writes in place: kvc__kv_ops_resolve */
  kvc_status s = slotted_init(c, c->capacity + 1, 1);
  if (!s) /* bind the common case now: one row, one token */
    s = bind_rows(c, 0, 1, 1, 1);
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
    .release = slotted_release,
    .run = shared_run,
    .truncate = shared_truncate,
    .copy = slotted_copy,
    .address = slotted_address,
    .dense = slotted_dense,
};
