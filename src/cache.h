/* cache.h: the slotted KV buffers of a BOUND or SHARED context, allocated once where the
 * model's cache lives (kvc__cache_memory: huge pages on the host, the provider's allocator on a
 * GPU; the views and bindings made over them: ort.h).
 *
 * One buffer per cache tensor and copy holds every slot: (slots, kv_heads, stride, head_dim).
 *
 * SHARED: one copy; stride = capacity + 1. A slot's positions [0, len) are valid; the graph
 * writes new positions in place. The extra position is where an idle row of a batched run
 * writes its placeholder when its slot is full.
 *
 * BOUND: two copies (ping, pong) per tensor; stride = capacity. One holds a slot's past, the
 * graph writes the present into the other, and they swap after every run of that slot. A
 * slot holding `len` positions is laid out as the graph writes a present of that length:
 * (kv_heads, len, head_dim), densely packed, so the stride between heads is len * head_dim
 * and changes with len. */
#ifndef KVC_CACHE_H
#define KVC_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct kvc__cache {
  int layers, kv_heads, slots;
  int dim;            /* the cache tensors' last dimension (head size; + 4 for 8-bit rows) */
  int stride;         /* positions per slot */
  int copies;         /* 2 for BOUND (ping, pong), 1 for SHARED */
  void **buf;         /* (layers, 2 [key, value], copies) buffers of all slots */
  uint8_t *cur;       /* (slots) BOUND: which copy holds the slot's past */
  size_t row_bytes;   /* one position of one head: a row of the cache's type */
  size_t slot_bytes;  /* kv_heads * stride rows */
  const kvc_model *m; /* where the buffers come from (kvc__cache_memory; not owned) */
  int on_host;        /* host memory: repacks and copies are memcpy */
} kvc__cache;

kvc_status kvc__cache_init(kvc__cache *c, const kvc_model *m, int slots, int stride, int copies);
void kvc__cache_release(kvc__cache *c);

/* Slot `slot` of layer `layer`'s key (kv 0) or value (kv 1) buffer, copy `copy`. */
static inline char *kvc__cache_at(const kvc__cache *c, int layer, int kv, int copy, int slot) {
  return (char *)c->buf[(layer * 2 + kv) * c->copies + copy] + (size_t)slot * c->slot_bytes;
}
/* BOUND: the slot's past, and where its next present goes. SHARED: both the same. */
static inline char *kvc__cache_past(const kvc__cache *c, int layer, int kv, int slot) {
  return kvc__cache_at(c, layer, kv, c->copies == 2 ? c->cur[slot] : 0, slot);
}
static inline char *kvc__cache_present(const kvc__cache *c, int layer, int kv, int slot) {
  return kvc__cache_at(c, layer, kv, c->copies == 2 ? 1 - c->cur[slot] : 0, slot);
}

/* Total bytes allocated. */
static inline int64_t kvc__cache_bytes(const kvc__cache *c) {
  return (int64_t)c->slot_bytes * c->slots * c->layers * 2 * c->copies;
}

/* BOUND: keep the first new_len of a slot's len positions, repacking its past in place from
 * (kv_heads, len, head_dim) to (kv_heads, new_len, head_dim). */
kvc_status kvc__cache_repack(kvc__cache *c, int slot, int len, int new_len);

/* Copy the first len of the src_len positions of src's slot into dst's slot (each buffer in
 * its own layout: a dense past for BOUND, stride rows for SHARED). */
kvc_status kvc__cache_copy(kvc__cache *dst, int dst_slot, const kvc__cache *src, int src_slot,
                           int src_len, int len);

/* The first len positions of a slot to (to_dense) or from a dense array
 * (layers, 2 [key, value], kv_heads, len, head_dim) of the cache's element type, each side in
 * its own layout. A cache in device memory: KVC_ERR_UNSUPPORTED. */
kvc_status kvc__cache_dense(kvc__cache *c, int slot, int len, void *dense, int to_dense);

#endif
