/* cache.c: the slotted KV buffers of a BOUND or SHARED context. */
#include "cache.h"

#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "cache_memory.h"
#include "error.h"
#include "memory.h"

kvc_status kvc__cache_init(kvc__cache *c, const kvc_model *m, int slots, int stride, int copies) {
  memset(c, 0, sizeof *c);
  c->layers = m->sig.layers;
  c->kv_heads = m->sig.kv_heads;
  c->dim = m->sig.cache_dim;
  c->slots = slots;
  c->stride = stride;
  c->copies = copies;
  c->m = m;
  c->on_host = kvc__cache_on_host(m);
  c->row_bytes = m->sig.row_bytes;
  c->slot_bytes = (size_t)c->kv_heads * (size_t)stride * c->row_bytes;
  const size_t n = (size_t)c->layers * 2 * (size_t)copies, bytes = c->slot_bytes * (size_t)slots;
  /* every page is touched below: a host cache larger than the machine's memory would not
   * fail here but be killed there (or swap), so it is refused first */
  const double total = (double)bytes * (double)n, ram = kvc__memory_bytes();
  if (c->on_host && ram > 0 && total > ram)
    return kvc__fail(KVC_ERR_NO_MEMORY,
                     "the KV cache needs %.1f GiB (%d slots of %d positions, %d layers), more "
                     "than the %.1f GiB of memory this process may use",
                     total / (1 << 30), slots, stride, c->layers, ram / (1 << 30));
  c->buf = kvc__calloc(n, sizeof *c->buf);
  c->cur = kvc__calloc((size_t)slots, sizeof *c->cur);
  if (!c->buf || !c->cur) {
    kvc__cache_release(c);
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for the cache table");
  }
  for (size_t i = 0; i < n; i++) {
    kvc_status s = kvc__cache_memory(m, bytes, "a KV cache buffer", &c->buf[i]);
    if (s) {
      kvc__cache_release(c);
      return s;
    }
    /* touch every page now, so that no decode step takes a page fault (or grows the
     * resident set) when the cache first reaches it */
    if (c->on_host)
      memset(c->buf[i], 0, bytes);
  }
  return KVC_OK;
}

void kvc__cache_release(kvc__cache *c) {
  for (int i = 0; c->buf && i < c->layers * 2 * c->copies; i++)
    kvc__cache_memory_free(c->m, c->buf[i], c->slot_bytes * (size_t)c->slots);
  kvc__free(c->buf);
  kvc__free(c->cur);
  c->buf = NULL;
  c->cur = NULL;
}

static kvc_status host_only(const kvc__cache *c, const char *what) {
  if (c->on_host)
    return KVC_OK;
  return kvc__fail(KVC_ERR_UNSUPPORTED,
                   "%s a cache in device memory is not supported yet; use kvc_seq_reset and "
                   "append again",
                   what);
}

kvc_status kvc__cache_repack(kvc__cache *c, int slot, int len, int new_len) {
  if (new_len == len || new_len == 0)
    return KVC_OK;
  kvc_status s = host_only(c, "rewinding a BOUND sequence with");
  if (s)
    return s;
  const size_t row = c->row_bytes;
  for (int l = 0; l < c->layers; l++) {
    for (int kv = 0; kv < 2; kv++) {
      char *b = kvc__cache_past(c, l, kv, slot);
      /* head h moves from h * len rows to h * new_len rows: always towards the start, so
       * ascending order never overwrites a head before it has moved */
      for (int h = 1; h < c->kv_heads; h++)
        memmove(b + (size_t)h * new_len * row, b + (size_t)h * len * row, (size_t)new_len * row);
    }
  }
  return KVC_OK;
}

kvc_status kvc__cache_copy(kvc__cache *dst, int dst_slot, const kvc__cache *src, int src_slot,
                           int src_len, int len) {
  kvc_status s = host_only(src, "copying");
  if (s || len == 0)
    return s;
  const size_t row = src->row_bytes;
  /* BOUND packs a past densely (head stride = its length); SHARED keeps a fixed stride */
  const size_t from_stride = src->copies == 2 ? (size_t)src_len : (size_t)src->stride;
  const size_t to_stride = dst->copies == 2 ? (size_t)len : (size_t)dst->stride;
  for (int l = 0; l < src->layers; l++) {
    for (int kv = 0; kv < 2; kv++) {
      const char *from = kvc__cache_past(src, l, kv, src_slot);
      char *to = kvc__cache_past(dst, l, kv, dst_slot);
      for (int h = 0; h < src->kv_heads; h++)
        memcpy(to + h * to_stride * row, from + h * from_stride * row, (size_t)len * row);
    }
  }
  return KVC_OK;
}

kvc_status kvc__cache_dense(kvc__cache *c, int slot, int len, void *dense, int to_dense) {
  kvc_status s = host_only(c, "saving or loading the state of");
  if (s || len == 0)
    return s;
  const size_t row = c->row_bytes, head = (size_t)len * row;
  const size_t stride = c->copies == 2 ? (size_t)len : (size_t)c->stride; /* positions */
  char *d = dense;
  for (int l = 0; l < c->layers; l++) {
    for (int kv = 0; kv < 2; kv++) {
      char *b = kvc__cache_past(c, l, kv, slot);
      for (int h = 0; h < c->kv_heads; h++, d += head) {
        char *at = b + (size_t)h * stride * row;
        memcpy(to_dense ? d : at, to_dense ? at : d, head);
      }
    }
  }
  return KVC_OK;
}
