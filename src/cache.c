/* cache.c: allocation and repacking of a BOUND sequence's KV buffers. */
#include "cache.h"

#include <string.h>

#include "alloc.h"
#include "error.h"

kvc_status kvc__cache_init(kvc__cache *c, const kvc_model *m, int copies) {
  const OrtApi *ort = kvc__ort();
  memset(c, 0, sizeof *c);
  c->layers = m->sig.layers;
  c->kv_heads = m->sig.kv_heads;
  c->head_dim = m->sig.head_dim;
  c->capacity = m->info.max_seq_len;
  c->copies = copies;
  c->alloc = m->cache_alloc;
  c->on_host = strcmp(m->info.provider, "cpu") == 0;
  c->buffer_bytes = (size_t)c->kv_heads * (size_t)c->capacity * (size_t)c->head_dim * sizeof(float);
  size_t n = (size_t)c->layers * 2 * (size_t)copies;
  c->buf = kvc__calloc(n, sizeof *c->buf);
  if (!c->buf)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for the cache table");
  for (size_t i = 0; i < n; i++) {
    kvc_status s = kvc__ort_check(ort->AllocatorAlloc(c->alloc, c->buffer_bytes, &c->buf[i]),
                                  "allocating a KV cache buffer");
    if (!s && !c->buf[i])
      s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for %zu-byte KV cache buffers (%d layers)",
                    c->buffer_bytes, c->layers);
    if (s) {
      kvc__cache_release(c);
      return s;
    }
    /* touch every page now, so that no decode step takes a page fault (or grows the
     * resident set) when the cache first reaches it */
    if (c->on_host)
      memset(c->buf[i], 0, c->buffer_bytes);
  }
  return KVC_OK;
}

void kvc__cache_release(kvc__cache *c) {
  if (!c->buf)
    return;
  for (int i = 0; i < c->layers * 2 * c->copies; i++)
    if (c->buf[i])
      kvc__ort_ignore(kvc__ort()->AllocatorFree(c->alloc, c->buf[i]));
  kvc__free(c->buf);
  c->buf = NULL;
}

kvc_status kvc__cache_truncate(kvc__cache *c, int old_len, int new_len) {
  if (new_len == old_len || new_len == 0)
    return KVC_OK;
  if (!c->on_host)
    return kvc__fail(KVC_ERR_UNSUPPORTED,
                     "rewinding a BOUND cache in device memory is not supported yet; use "
                     "kvc_seq_reset and append again");
  const size_t row = (size_t)c->head_dim * sizeof(float);
  for (int l = 0; l < c->layers; l++) {
    for (int kv = 0; kv < 2; kv++) {
      char *b = kvc__cache_past(c, l, kv);
      /* head h moves from h * old_len rows to h * new_len rows: always towards the start,
       * so ascending order never overwrites a head before it has moved */
      for (int h = 1; h < c->kv_heads; h++)
        memmove(b + (size_t)h * new_len * row, b + (size_t)h * old_len * row, new_len * row);
    }
  }
  return KVC_OK;
}
