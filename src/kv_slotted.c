/* kv_slotted.c: what BOUND and SHARED have in common: the cache in slotted buffers
 * (cache.c), the run's logits buffer and the one IoBinding runs go through; copying a slot's
 * prefix, reading it dense, and where its past lives. */
#include "alloc.h"
#include "ctx.h"
#include "error.h"

kvc_status kvc__slotted_init(kvc_ctx *c, int stride, int copies) {
  kvc_status s = kvc__cache_init(&c->cache, c->model, c->slots, stride, copies);
  if (!s && !(c->run_logits = kvc__calloc((size_t)c->rows * c->vocab, sizeof *c->run_logits)))
    s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for logits (%d x %d)", c->rows, c->vocab);
  if (!s)
    s = kvc__ort_check(kvc__ort()->CreateIoBinding(c->model->session, &c->binding),
                       "CreateIoBinding");
  return s;
}

void kvc__slotted_release(kvc_ctx *c) {
  if (c->binding)
    kvc__ort()->ReleaseIoBinding(c->binding);
  c->binding = NULL;
  kvc__cache_release(&c->cache);
  kvc__free(c->run_logits);
  c->run_logits = NULL;
}

kvc_status kvc__slotted_copy(kvc_ctx *dst, int32_t dst_slot, const kvc_ctx *src, int32_t src_slot,
                             int32_t len) {
  return kvc__cache_copy(&dst->cache, dst_slot, &src->cache, src_slot, src->lens[src_slot], len);
}

kvc_status kvc__slotted_dense(kvc_ctx *c, int32_t slot, int32_t len, float *dense, int to_dense) {
  return kvc__cache_dense(&c->cache, slot, len, dense, to_dense);
}
