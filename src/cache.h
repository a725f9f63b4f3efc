/* cache.h: the KV buffers of a BOUND or SHARED sequence, allocated once at max_seq_len
 * through the provider's allocator.
 *
 * BOUND: two buffers per cache tensor; one holds the past, the graph writes the present
 * into the other, and they swap after every step. A buffer holding `len` positions is laid
 * out as the graph writes a present of that length: (1, kv_heads, len, head_dim), densely
 * packed. So the stride between heads is len * head_dim and changes with len; each buffer
 * is always read with the shape it was last written with.
 *
 * SHARED: one buffer per cache tensor, (1, kv_heads, max_seq_len, head_dim), both past and
 * present; the graph writes the new positions into it in place. */
#ifndef KVC_CACHE_H
#define KVC_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct kvc__cache {
  int layers, kv_heads, head_dim, capacity;
  int copies;          /* buffers per tensor: 2 for BOUND (ping, pong), 1 for SHARED */
  void **buf;          /* (layers, 2 [key, value], copies) buffers of capacity */
  int cur;             /* BOUND: which of ping/pong holds the past */
  size_t buffer_bytes; /* bytes of one buffer: kv_heads * capacity * head_dim floats */
  OrtAllocator *alloc; /* the model's cache allocator (not owned) */
  int on_host;         /* buffers are host memory (rewind can repack them in place) */
} kvc__cache;

kvc_status kvc__cache_init(kvc__cache *c, const kvc_model *m, int copies);
void kvc__cache_release(kvc__cache *c);

/* The buffer holding the past of layer `layer`, kv 0 (key) or 1 (value). */
static inline void *kvc__cache_past(const kvc__cache *c, int layer, int kv) {
  return c->buf[(layer * 2 + kv) * c->copies + (c->copies == 2 ? c->cur : 0)];
}
/* The buffer the next present goes to (SHARED: the past's own). */
static inline void *kvc__cache_present(const kvc__cache *c, int layer, int kv) {
  return c->buf[(layer * 2 + kv) * c->copies + (c->copies == 2 ? 1 - c->cur : 0)];
}
static inline void kvc__cache_swap(kvc__cache *c) {
  c->cur = 1 - c->cur;
}

/* Keep the first new_len of old_len positions: repack each past buffer from
 * (kv_heads, old_len, head_dim) to (kv_heads, new_len, head_dim) in place. */
kvc_status kvc__cache_truncate(kvc__cache *c, int old_len, int new_len);

/* Total bytes allocated. */
static inline int64_t kvc__cache_bytes(const kvc__cache *c) {
  return (int64_t)c->buffer_bytes * c->layers * 2 * c->copies;
}

#endif
