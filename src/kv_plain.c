/* kv_plain.c: the two modes that use a plain Run, whose outputs ONNX Runtime allocates.
 *  NAIVE:    each present becomes the slot's next past (the baseline).
 *  UNCACHED: no cache; every run recomputes the slot's whole sequence (the oracle).
 * One row per run. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "kv_state.h"

static kvc__plain *state_of(const kvc_ctx *c) {
  return (kvc__plain *)c->kv;
}

/* The run inputs of one row of n tokens (inputs.c) as tensors over the host buffers, into
 * the mode's in_values. */
static kvc_status input_views(kvc_ctx *c, int32_t n, int32_t total) {
  kvc__plain *k = state_of(c);
  kvc__run_input in[KVC_RUN_INPUTS];
  const int count = kvc__run_inputs(c, 1, n, total, in);
  kvc_status s = KVC_OK;
  for (int i = 0; i < count && !s; i++)
    s = kvc__view(c->model->host_mem, in[i].data, in[i].bytes, in[i].shape, in[i].rank, in[i].type,
                  &k->in_values[i]);
  return s;
}

/* KVC_OK when output `name`, as ONNX Runtime returned it, is a tensor of `want_type` and
 * exactly the shape `want` (rank 3 or 4): a graph may declare one shape and return another (a
 * Slice whose end is computed at run time), and nothing is read from a tensor that is smaller
 * than it must be. */
static kvc_status check_output(const OrtValue *v, const char *name,
                               ONNXTensorElementDataType want_type, const int64_t *want,
                               size_t rank) {
  const OrtApi *ort = kvc__ort();
  OrtTensorTypeAndShapeInfo *info = NULL;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  size_t got_rank = 0;
  int64_t got[8] = {0};
  kvc_status s = kvc__ort_check(ort->GetTensorTypeAndShape(v, &info), name);
  if (!s)
    s = kvc__ort_check(ort->GetTensorElementType(info, &type), name);
  if (!s)
    s = kvc__ort_check(ort->GetDimensionsCount(info, &got_rank), name);
  if (!s && got_rank <= 8)
    s = kvc__ort_check(ort->GetDimensions(info, got, got_rank), name);
  if (info)
    ort->ReleaseTensorTypeAndShapeInfo(info);
  int ok = !s && type == want_type && got_rank == rank;
  for (size_t i = 0; ok && i < rank; i++)
    ok = got[i] == want[i];
  if (s || ok)
    return s;
  char text[2][128];
  for (int t = 0; t < 2; t++) {
    const int64_t *d = t ? want : got;
    const size_t r = t ? rank : (got_rank <= 8 ? got_rank : 0);
    size_t n = (size_t)snprintf(text[t], sizeof text[t], "(");
    for (size_t i = 0; i < r && n < sizeof text[t]; i++)
      n += (size_t)snprintf(text[t] + n, sizeof text[t] - n, "%s%lld", i ? ", " : "",
                            (long long)d[i]);
    if (n < sizeof text[t])
      snprintf(text[t] + n, sizeof text[t] - n, ")");
  }
  return kvc__fail(KVC_ERR_MODEL,
                   "the graph's output '%s' came back from the run as %s%s: expected a %s "
                   "tensor %s",
                   name, type == want_type ? "" : "a tensor of another type ", text[0],
                   kvc__cache_type_name(want_type), text[1]);
}

/* Run one row with the slot's pasts; with `presents`, the run's presents replace them (each
 * checked to be (1, kv_heads, past + n, head_dim)). On success *logits points at the logits
 * of the row's last keep tokens (the run's checked to be (1, kvc__logits_rows, vocab)). */
static kvc_status plain_run(kvc_ctx *c, const kvc__rows *r, int presents, const float **logits) {
  kvc__plain *k = state_of(c);
  const OrtApi *ort = kvc__ort();
  OrtValue **past = k->past + (size_t)r->first_slot * (k->n_in - k->first_past);
  const int32_t total = r->past[0] + r->n;
  kvc__fill_rows(c, r);
  kvc_status s = input_views(c, r->n, total);
  for (int i = 0; i < k->n_in - k->first_past; i++)
    k->in_values[k->first_past + i] = past[i];
  const int n_out = presents ? k->n_out : 1;
  for (int i = 0; i < n_out; i++)
    k->out_values[i] = NULL;
  if (!s)
    s = kvc__ort_check_as(ort->Run(c->model->session, NULL, k->in_names,
                                   (const OrtValue *const *)k->in_values, (size_t)k->n_in,
                                   k->out_names, (size_t)n_out, k->out_values),
                          KVC_ERR_RUNTIME, "Run");
  for (int i = 0; i < k->first_past; i++)
    kvc__release_value(&k->in_values[i]);
  const kvc__signature *sig = &c->model->sig;
  const int32_t rows = kvc__logits_rows(c, r);
  const int64_t logits_shape[3] = {1, rows, c->vocab},
                cache_shape[4] = {1, sig->kv_heads, total, sig->cache_dim};
  if (!s)
    s = check_output(k->out_values[0], "logits", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, logits_shape,
                     3);
  for (int i = 1; !s && i < n_out; i++)
    s = check_output(k->out_values[i], k->out_names[i], sig->cache_type, cache_shape, 4);
  float *data = NULL;
  if (!s)
    s = kvc__ort_check(ort->GetTensorMutableData(k->out_values[0], (void **)&data), "logits");
  if (s) {
    for (int i = 0; i < n_out; i++)
      kvc__release_value(&k->out_values[i]);
    return s;
  }
  kvc__release_value(&k->logits_value);
  k->logits_value = k->out_values[0];
  *logits = data + (size_t)(rows - r->keep) * c->vocab;
  for (int i = 1; presents && i < n_out; i++) {
    if (past[i - 1] != k->empty)
      kvc__release_value(&past[i - 1]);
    past[i - 1] = k->out_values[i];
  }
  return KVC_OK;
}

static kvc_status naive_run(kvc_ctx *c, const kvc__rows *r, const float **logits) {
  return plain_run(c, r, 1, logits);
}

/* The whole sequence, from position 0; the logits wanted are its last keep rows. */
static kvc_status uncached_run(kvc_ctx *c, const kvc__rows *r, const float **logits) {
  const int32_t zero = 0;
  const uint8_t live = 1;
  const kvc__rows whole = {r->first_slot, 1, r->past[0] + r->n, &zero, &live, r->keep};
  return plain_run(c, &whole, 0, logits);
}

static void drop_pasts(kvc_ctx *c, int32_t slot) {
  kvc__plain *k = state_of(c);
  const int per_slot = k->n_in - k->first_past;
  for (int i = 0; k->past && i < per_slot; i++) {
    OrtValue **v = &k->past[(size_t)slot * per_slot + i];
    if (*v != k->empty)
      kvc__release_value(v);
    *v = k->empty;
  }
}

static kvc_status plain_init(kvc_ctx *c) {
  const kvc_model *m = c->model;
  const int L = m->sig.layers;
  kvc__plain *k = kvc__calloc(1, sizeof *k);
  if (!(c->kv = k))
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for a context");
  kvc__run_input in[KVC_RUN_INPUTS];
  k->first_past = kvc__run_inputs(c, 1, 1, 1, in);
  k->n_in = k->first_past + 2 * L;
  k->n_out = 1 + 2 * L;
  k->in_names = kvc__calloc((size_t)k->n_in, sizeof *k->in_names);
  k->out_names = kvc__calloc((size_t)k->n_out, sizeof *k->out_names);
  k->in_values = kvc__calloc((size_t)k->n_in, sizeof *k->in_values);
  k->out_values = kvc__calloc((size_t)k->n_out, sizeof *k->out_values);
  k->past = kvc__calloc((size_t)c->slots * 2 * L, sizeof *k->past);
  k->fresh = kvc__calloc((size_t)2 * L, sizeof *k->fresh);
  if (!k->in_names || !k->out_names || !k->in_values || !k->out_values || !k->past || !k->fresh)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for a context of %d slots", c->slots);
  int at = 0;
  for (; at < k->first_past; at++)
    k->in_names[at] = in[at].name;
  k->out_names[0] = "logits";
  for (int l = 0; l < L; l++) {
    for (int kv = 0; kv < 2; kv++) {
      k->in_names[at++] = m->sig.names[l].past[kv];
      k->out_names[1 + 2 * l + kv] = m->sig.names[l].present[kv];
    }
  }
  const int64_t shape[4] = {1, m->sig.kv_heads, 0, m->sig.cache_dim};
  kvc_status s = kvc__view(m->host_mem, k->empty_data, 0, shape, 4, m->sig.cache_type, &k->empty);
  for (int32_t i = 0; i < c->slots * 2 * L; i++)
    k->past[i] = k->empty;
  return s;
}

static void plain_release(kvc_ctx *c) {
  kvc__plain *k = state_of(c);
  if (!k)
    return;
  for (int32_t slot = 0; k->past && slot < c->slots; slot++)
    drop_pasts(c, slot);
  kvc__release_value(&k->empty);
  kvc__release_value(&k->logits_value);
  kvc__free(k->past);
  kvc__free(k->fresh);
  kvc__free(k->in_names);
  kvc__free(k->out_names);
  kvc__free(k->in_values);
  kvc__free(k->out_values);
  kvc__free(k);
  c->kv = NULL;
}

/* A new (1, kv_heads, len, head_dim) tensor holding the first len of `from`'s from_len
 * positions. */
static kvc_status prefix_copy(const kvc_ctx *c, const OrtValue *from, int32_t from_len, int32_t len,
                              OrtValue **out) {
  const OrtApi *ort = kvc__ort();
  const kvc__signature *sig = &c->model->sig;
  OrtAllocator *alloc = NULL;
  const int64_t shape[4] = {1, sig->kv_heads, len, sig->cache_dim};
  const size_t row = sig->row_bytes;
  char *dst = NULL, *src = NULL;
  *out = NULL;
  kvc_status s = kvc__ort_check(ort->GetAllocatorWithDefaultOptions(&alloc), "allocator");
  if (!s)
    s = kvc__ort_check_as(ort->CreateTensorAsOrtValue(alloc, shape, 4, sig->cache_type, out),
                          KVC_ERR_NO_MEMORY, "copying a cache tensor");
  if (!s)
    s = kvc__ort_check(ort->GetTensorMutableData(*out, (void **)&dst), "copying a cache tensor");
  if (!s)
    s = kvc__ort_check(ort->GetTensorMutableData((OrtValue *)from, (void **)&src),
                       "copying a cache tensor");
  if (s) {
    kvc__release_value(out);
    return s;
  }
  for (int h = 0; h < sig->kv_heads; h++)
    memcpy(dst + (size_t)h * len * row, src + (size_t)h * from_len * row, (size_t)len * row);
  return KVC_OK;
}

/* dst's pasts become copies of the first len positions of src's. On failure dst is as it
 * was. */
static kvc_status naive_copy(kvc_ctx *dst, int32_t dst_slot, const kvc_ctx *src, int32_t src_slot,
                             int32_t len) {
  const kvc__plain *ks = state_of(src);
  kvc__plain *kd = state_of(dst);
  const int per_slot = ks->n_in - ks->first_past;
  OrtValue **fresh = kd->fresh;
  for (int i = 0; i < per_slot; i++)
    fresh[i] = NULL;
  kvc_status s = KVC_OK;
  OrtValue *const *from = ks->past + (size_t)src_slot * per_slot;
  for (int i = 0; i < per_slot && !s && len > 0; i++)
    s = prefix_copy(src, from[i], src->lens[src_slot], len, &fresh[i]);
  if (s) {
    for (int i = 0; i < per_slot; i++)
      kvc__release_value(&fresh[i]);
    return s;
  }
  drop_pasts(dst, dst_slot);
  for (int i = 0; i < per_slot && len > 0; i++)
    kd->past[(size_t)dst_slot * per_slot + i] = fresh[i];
  return KVC_OK;
}

static kvc_status naive_truncate(kvc_ctx *c, int32_t slot, int32_t len, int32_t new_len) {
  (void)len;
  return naive_copy(c, slot, c, slot, new_len);
}

static const void *naive_address(const kvc_ctx *c, int32_t slot) {
  kvc__plain *k = state_of(c);
  void *p = NULL;
  const OrtValue *v = k->past[(size_t)slot * (k->n_in - k->first_past)];
  if (v != k->empty)
    kvc__ort_ignore(kvc__ort()->GetTensorMutableData((OrtValue *)v, &p));
  return p;
}

/* A state's cache to or from the slot's pasts, (1, kv_heads, len, head_dim) each. Loading
 * makes every new tensor before the old ones go. */
static kvc_status naive_dense(kvc_ctx *c, int32_t slot, int32_t len, void *dense, int to_dense) {
  kvc__plain *k = state_of(c);
  const OrtApi *ort = kvc__ort();
  const kvc__signature *sig = &c->model->sig;
  const int per_slot = k->n_in - k->first_past;
  const size_t bytes = (size_t)sig->kv_heads * (size_t)len * sig->row_bytes;
  OrtValue **past = k->past + (size_t)slot * per_slot;
  kvc_status s = KVC_OK;
  for (int i = 0; i < per_slot && len > 0 && !s; i++) {
    char *data = NULL;
    if (!to_dense) {
      OrtAllocator *alloc = NULL;
      const int64_t shape[4] = {1, sig->kv_heads, len, sig->cache_dim};
      k->fresh[i] = NULL;
      s = kvc__ort_check(ort->GetAllocatorWithDefaultOptions(&alloc), "allocator");
      if (!s)
        s = kvc__ort_check_as(
            ort->CreateTensorAsOrtValue(alloc, shape, 4, sig->cache_type, &k->fresh[i]),
            KVC_ERR_NO_MEMORY, "loading a cache tensor");
    }
    OrtValue *v = to_dense ? past[i] : k->fresh[i];
    if (!s)
      s = kvc__ort_check(ort->GetTensorMutableData(v, (void **)&data), "a cache tensor");
    if (!s)
      memcpy(to_dense ? (char *)dense + i * bytes : data,
             to_dense ? data : (const char *)dense + i * bytes, bytes);
  }
  if (to_dense)
    return s;
  if (s) {
    for (int i = 0; i < per_slot; i++)
      kvc__release_value(&k->fresh[i]);
    return s;
  }
  drop_pasts(c, slot);
  for (int i = 0; i < per_slot && len > 0; i++)
    past[i] = k->fresh[i];
  return KVC_OK;
}

/* No cache to save; loading takes the tokens alone. */
static kvc_status uncached_dense(kvc_ctx *c, int32_t slot, int32_t len, void *dense, int to_dense) {
  (void)c, (void)slot, (void)len, (void)dense;
  if (to_dense)
    return kvc__fail(KVC_ERR_UNSUPPORTED,
                     "an UNCACHED sequence keeps no cache to save: save from a cached mode");
  return KVC_OK;
}

static kvc_status uncached_truncate(kvc_ctx *c, int32_t slot, int32_t len, int32_t new_len) {
  (void)c, (void)slot, (void)len, (void)new_len;
  return KVC_OK;
}

static kvc_status uncached_copy(kvc_ctx *dst, int32_t dst_slot, const kvc_ctx *src,
                                int32_t src_slot, int32_t len) {
  (void)dst, (void)dst_slot, (void)src, (void)src_slot, (void)len;
  return KVC_OK; /* the tokens are the whole state; the caller copies them */
}

static const void *uncached_address(const kvc_ctx *c, int32_t slot) {
  (void)c, (void)slot;
  return NULL;
}

const kvc__kv_ops kvc__kv_naive = {
    .mode = KVC_KV_NAIVE,
    .batches = 0,
    .init = plain_init,
    .release = plain_release,
    .run = naive_run,
    .truncate = naive_truncate,
    .copy = naive_copy,
    .address = naive_address,
    .dense = naive_dense,
};

const kvc__kv_ops kvc__kv_uncached = {
    .mode = KVC_KV_UNCACHED,
    .batches = 0,
    .init = plain_init,
    .release = plain_release,
    .run = uncached_run,
    .truncate = uncached_truncate,
    .copy = uncached_copy,
    .address = uncached_address,
    .dense = uncached_dense,
};
