/* hooks.c: test-only views into a sequence's context (see hooks.h). */
#include "hooks.h"

#include "error.h"
#include "kv_state.h"

const void *kvc__seq_cache_address(const kvc_seq *q, int layer, int kv) {
  const kvc_ctx *c = q->ctx;
  if (c->lens[q->slot] == 0 || c->ops->mode == KVC_KV_UNCACHED)
    return NULL;
  if (c->ops->mode == KVC_KV_BOUND || c->ops->mode == KVC_KV_SHARED)
    return kvc__cache_past(&((const kvc__slotted *)c->kv)->cache, layer, kv, q->slot);
  const kvc__plain *k = c->kv;
  void *p = NULL;
  const OrtValue *v = k->past[(size_t)q->slot * (k->n_in - k->first_past) + 2 * layer + kv];
  kvc__ort_ignore(kvc__ort()->GetTensorMutableData((OrtValue *)v, &p));
  return p;
}

/* The outputs ONNX Runtime reports for the last run of a BOUND or SHARED sequence's context
 * (*values, count of them; released with release_outputs). */
static kvc_status bound_outputs(const kvc_seq *q, OrtAllocator **alloc, OrtValue ***values,
                                size_t *count) {
  const kvc_ctx *c = q->ctx;
  *values = NULL, *count = 0;
  if (c->ops->mode != KVC_KV_BOUND && c->ops->mode != KVC_KV_SHARED)
    return kvc__fail(KVC_ERR_INVALID_ARG, "not a BOUND or SHARED sequence");
  const OrtApi *ort = kvc__ort();
  kvc_status s = kvc__ort_check(ort->GetAllocatorWithDefaultOptions(alloc), "allocator");
  if (!s)
    s = kvc__ort_check(
        ort->GetBoundOutputValues(((const kvc__slotted *)c->kv)->binding, *alloc, values, count),
        "outputs");
  return s;
}

static void release_outputs(OrtAllocator *alloc, OrtValue **values, size_t count) {
  for (size_t i = 0; i < count; i++)
    kvc__ort()->ReleaseValue(values[i]);
  if (values)
    kvc__ort_ignore(kvc__ort()->AllocatorFree(alloc, values));
}

kvc_status kvc__seq_check_binding(kvc_seq *q) {
  const kvc_ctx *c = q->ctx;
  OrtAllocator *alloc = NULL;
  OrtValue **values = NULL;
  size_t count = 0;
  kvc_status s = bound_outputs(q, &alloc, &values, &count);
  const kvc__slotted *k = c->kv;
  for (size_t i = 0; i < count && !s; i++) {
    void *data = NULL;
    s = kvc__ort_check(kvc__ort()->GetTensorMutableData(values[i], &data), "output data");
    int ok = data == (void *)k->run_logits;
    for (int l = 0; l < k->cache.layers && !s; l++)
      for (int kv = 0; kv < 2; kv++)
        for (int copy = 0; copy < k->cache.copies; copy++)
          for (int slot = 0; slot < c->slots; slot++)
            ok |= data == (void *)kvc__cache_at(&k->cache, l, kv, copy, slot);
    if (!s && !ok)
      s = kvc__fail(KVC_ERR_RUNTIME, "bound output %zu lives at %p, outside kvcache's buffers", i,
                    data);
  }
  release_outputs(alloc, values, count);
  return s;
}

int64_t kvc__seq_logits_rows(kvc_seq *q) {
  const OrtApi *ort = kvc__ort();
  OrtAllocator *alloc = NULL;
  OrtValue **values = NULL;
  size_t count = 0;
  int64_t rows = -1;
  if (bound_outputs(q, &alloc, &values, &count))
    return -1;
  const void *logits = ((const kvc__slotted *)q->ctx->kv)->run_logits;
  for (size_t i = 0; i < count; i++) {
    void *data = NULL;
    OrtTensorTypeAndShapeInfo *info = NULL;
    int64_t dims[3] = {0};
    size_t rank = 0;
    if (!kvc__ort_check(ort->GetTensorMutableData(values[i], &data), "output data") &&
        data == logits && !kvc__ort_check(ort->GetTensorTypeAndShape(values[i], &info), "shape") &&
        !kvc__ort_check(ort->GetDimensionsCount(info, &rank), "rank") && rank == 3 &&
        !kvc__ort_check(ort->GetDimensions(info, dims, 3), "dims"))
      rows = dims[1];
    if (info)
      ort->ReleaseTensorTypeAndShapeInfo(info);
  }
  release_outputs(alloc, values, count);
  return rows;
}

void kvc__seq_inject(kvc_seq *q, int32_t fail_at_run, int32_t chunk) {
  q->ctx->fail_at_run = fail_at_run;
  if (chunk > 0)
    q->ctx->chunk = chunk;
}

int32_t kvc__seq_chunk(const kvc_seq *q) {
  return q->ctx->chunk;
}

int64_t kvc__seq_runs(const kvc_seq *q, int64_t *prompt_runs) {
  *prompt_runs = q->ctx->prompt_runs;
  return q->ctx->runs;
}
