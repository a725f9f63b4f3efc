/* seq.c: a sequence and the path of one append through ONNX Runtime, in each KV mode.
 *
 * Buffers, all made in kvc_seq_new and sized by the model's max_seq_len (T) and vocab (V):
 *   tokens     (T)              tokens appended so far
 *   ids        (T)              input_ids of the next run, int64 or int32 as the graph says
 *   positions  (T)              position_ids of the next run
 *   mask       (T)              attention_mask: ones, of which a run uses the first len + n
 *   logits     (rows, V)        BOUND, SHARED: logits of one run, bound as the graph's output
 *   cache                       BOUND: two (1, kv_heads, T, head_dim) buffers per tensor;
 *                               SHARED: one, bound as both past and present
 *   decode_ms  (T)              per-step timings */
#include "seq.h"

#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "cache.h"
#include "error.h"
#include "model.h"

enum { MAX_ADDRESSES = 64 };

struct kvc_seq {
  kvc_model *model;
  kvc_kv_mode mode;
  int32_t len, capacity, rows, vocab;
  int32_t *tokens;
  void *ids, *positions, *mask;
  int32_t seqlens_k[1], total_len[1]; /* GQA-style graphs: total - 1, and total */
  size_t id_size;
  ONNXTensorElementDataType id_type;
  const float *last_logits;

  /* names and values of one plain Run, in graph-independent order:
   * input_ids, [attention_mask], [position_ids], [seqlens_k, total_sequence_length],
   * past (layer, kv)...;
   * logits, present (layer, kv)... */
  const char **in_names, **out_names;
  OrtValue **in_values, **out_values;
  int n_in, n_out, first_past;

  /* BOUND and SHARED */
  kvc__cache cache;
  OrtIoBinding *binding;
  float *logits;
  int32_t bound_n; /* SHARED: the n that input_ids, position_ids and logits are bound for */

  /* NAIVE and UNCACHED */
  OrtValue **past;        /* (layers * 2) current pasts: ORT's presents, or `empty` */
  OrtValue *empty;        /* (1, kv_heads, 0, head_dim) */
  float empty_data[1];    /* what `empty` points at */
  OrtValue *logits_value; /* logits of the last run, held until the next */

  /* metrics */
  double prefill_ms, *decode_ms;
  int32_t prefill_tokens, decode_steps;
  int64_t decode_allocations;
  const void *addresses[MAX_ADDRESSES];
  int32_t n_addresses;
};

kvc_seq_params kvc_seq_default_params(void) {
  return (kvc_seq_params){.kv_mode = KVC_KV_AUTO};
}

static void put_id(const kvc_seq *q, void *buf, int32_t i, int64_t v) {
  if (q->id_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32)
    ((int32_t *)buf)[i] = (int32_t)v;
  else
    ((int64_t *)buf)[i] = v;
}

/* An OrtValue viewing `data` (no copy). */
static kvc_status view(const OrtMemoryInfo *mem, void *data, size_t bytes, const int64_t *shape,
                       size_t rank, ONNXTensorElementDataType type, OrtValue **out) {
  return kvc__ort_check(
      kvc__ort()->CreateTensorWithDataAsOrtValue(mem, data, bytes, shape, rank, type, out),
      "creating a tensor view");
}

static void release(OrtValue **v) {
  if (*v)
    kvc__ort()->ReleaseValue(*v);
  *v = NULL;
}

static void note_address(kvc_seq *q, const void *p) {
  for (int i = 0; i < q->n_addresses; i++)
    if (q->addresses[i] == p)
      return;
  if (q->n_addresses < MAX_ADDRESSES)
    q->addresses[q->n_addresses++] = p;
}

/* ---- one run's inputs ------------------------------------------------------------------ */

/* Views of seqlens_k (1) and total_sequence_length (a scalar, or (1)); the values are the
 * caller's to write: total - 1 and total. */
static kvc_status seqlens_views(kvc_seq *q, OrtValue **seqlens, OrtValue **tot) {
  const kvc_model *m = q->model;
  const int64_t one[1] = {1};
  kvc_status s = view(m->host_mem, q->seqlens_k, sizeof q->seqlens_k, one, 1,
                      ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, seqlens);
  if (!s)
    s = view(m->host_mem, q->total_len, sizeof q->total_len, one, (size_t)m->sig.total_rank,
             ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, tot);
  return s;
}

/* Views of input_ids (n tokens starting at ids[0]), position_ids (n), attention_mask (total),
 * seqlens_k and total_sequence_length, stored in q->in_values[0 .. first_past). */
static kvc_status input_views(kvc_seq *q, int32_t n, int32_t total) {
  const kvc_model *m = q->model;
  int64_t seq_shape[2] = {1, n}, mask_shape[2] = {1, total};
  int k = 0;
  kvc_status s = view(m->host_mem, q->ids, (size_t)n * q->id_size, seq_shape, 2, q->id_type,
                      &q->in_values[k++]);
  if (!s && m->sig.has_attention_mask)
    s = view(m->host_mem, q->mask, (size_t)total * q->id_size, mask_shape, 2, q->id_type,
             &q->in_values[k++]);
  if (!s && m->sig.has_position_ids)
    s = view(m->host_mem, q->positions, (size_t)n * q->id_size, seq_shape, 2, q->id_type,
             &q->in_values[k++]);
  q->seqlens_k[0] = total - 1;
  q->total_len[0] = total;
  if (!s && m->sig.has_seqlens)
    s = seqlens_views(q, &q->in_values[k], &q->in_values[k + 1]);
  return s;
}

static void release_inputs(kvc_seq *q) {
  for (int i = 0; i < q->first_past; i++)
    release(&q->in_values[i]);
}

/* ---- BOUND: IOBinding into the cache buffers --------------------------------------------- */

/* Bind a view of `data` as input or output `name` of the sequence's binding. */
static kvc_status bind(kvc_seq *q, int output, const char *name, const OrtMemoryInfo *mem,
                       void *data, size_t bytes, const int64_t *shape, size_t rank,
                       ONNXTensorElementDataType type) {
  const OrtApi *ort = kvc__ort();
  OrtValue *v = NULL;
  kvc_status s = view(mem, data, bytes, shape, rank, type, &v);
  if (!s)
    s = kvc__ort_check(
        output ? ort->BindOutput(q->binding, name, v) : ort->BindInput(q->binding, name, v), name);
  release(&v); /* the binding keeps its own reference */
  return s;
}

static kvc_status run_bound(kvc_seq *q, const int32_t *tokens, int32_t n) {
  const OrtApi *ort = kvc__ort();
  kvc_model *m = q->model;
  const int32_t past = q->len, total = past + n;
  for (int32_t i = 0; i < n; i++) {
    put_id(q, q->ids, i, tokens[i]);
    put_id(q, q->positions, i, past + i);
  }
  kvc_status s = input_views(q, n, total);
  for (int i = 0; i < q->first_past && !s; i++)
    s = kvc__ort_check(ort->BindInput(q->binding, q->in_names[i], q->in_values[i]), q->in_names[i]);
  release_inputs(q);

  /* past: the first `past` positions of one buffer; present: the other, one step longer */
  const kvc__cache *c = &q->cache;
  const int64_t past_shape[4] = {1, c->kv_heads, past, c->head_dim};
  const int64_t present_shape[4] = {1, c->kv_heads, total, c->head_dim};
  const size_t row = (size_t)c->kv_heads * c->head_dim * sizeof(float);
  for (int l = 0; l < c->layers && !s; l++) {
    for (int kv = 0; kv < 2 && !s; kv++) {
      const kvc__layer_names *nm = &m->sig.names[l];
      s = bind(q, 0, nm->past[kv], m->cache_mem, kvc__cache_past(c, l, kv), (size_t)past * row,
               past_shape, 4, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
      if (!s)
        s = bind(q, 1, nm->present[kv], m->cache_mem, kvc__cache_present(c, l, kv),
                 (size_t)total * row, present_shape, 4, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
    }
  }
  const int64_t logits_shape[3] = {1, n, q->vocab};
  if (!s)
    s = bind(q, 1, "logits", m->host_mem, q->logits, (size_t)n * q->vocab * sizeof(float),
             logits_shape, 3, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
  if (!s)
    s = kvc__ort_check(ort->RunWithBinding(m->session, NULL, q->binding), "RunWithBinding");
  if (s)
    return s;
  note_address(q, kvc__cache_present(c, 0, 0));
  kvc__cache_swap(&q->cache);
  q->last_logits = q->logits + (size_t)(n - 1) * q->vocab;
  return KVC_OK;
}

/* ---- SHARED: one buffer per tensor, written in place by the graph -------------------------- */

/* Bind what stays put for the life of the sequence: every cache buffer as both its past and
 * its present, (1, kv_heads, max_seq_len, head_dim); and seqlens_k, total_sequence_length,
 * whose values run_shared rewrites in place. */
static kvc_status bind_shared(kvc_seq *q) {
  const kvc_model *m = q->model;
  const kvc__cache *c = &q->cache;
  const int64_t shape[4] = {1, c->kv_heads, c->capacity, c->head_dim};
  kvc_status s = KVC_OK;
  for (int l = 0; l < c->layers && !s; l++) {
    for (int kv = 0; kv < 2 && !s; kv++) {
      const kvc__layer_names *nm = &m->sig.names[l];
      void *buf = kvc__cache_past(c, l, kv);
      s = bind(q, 0, nm->past[kv], m->cache_mem, buf, c->buffer_bytes, shape, 4,
               ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
      if (!s)
        s = bind(q, 1, nm->present[kv], m->cache_mem, buf, c->buffer_bytes, shape, 4,
                 ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
    }
  }
  OrtValue *seqlens = NULL, *total = NULL;
  if (!s)
    s = seqlens_views(q, &seqlens, &total);
  if (!s)
    s = kvc__ort_check(kvc__ort()->BindInput(q->binding, "seqlens_k", seqlens), "seqlens_k");
  if (!s)
    s = kvc__ort_check(kvc__ort()->BindInput(q->binding, "total_sequence_length", total),
                       "total_sequence_length");
  release(&seqlens);
  release(&total);
  q->bound_n = 0;
  return s;
}

/* A step writes token ids, positions and the two lengths into buffers that are already
 * bound; it binds again only what changed shape (n, and an attention_mask's length). */
static kvc_status run_shared(kvc_seq *q, const int32_t *tokens, int32_t n) {
  const OrtApi *ort = kvc__ort();
  const kvc_model *m = q->model;
  const int32_t past = q->len, total = past + n;
  for (int32_t i = 0; i < n; i++) {
    put_id(q, q->ids, i, tokens[i]);
    put_id(q, q->positions, i, past + i);
  }
  q->seqlens_k[0] = total - 1;
  q->total_len[0] = total;
  kvc_status s = KVC_OK;
  if (!q->cache.on_host) /* a device session copies host inputs when they are bound */
    s = bind_shared(q);
  if (!s && n != q->bound_n) {
    const int64_t seq_shape[2] = {1, n}, logits_shape[3] = {1, n, q->vocab};
    q->bound_n = 0;
    s = bind(q, 0, "input_ids", m->host_mem, q->ids, (size_t)n * q->id_size, seq_shape, 2,
             q->id_type);
    if (!s && m->sig.has_position_ids)
      s = bind(q, 0, "position_ids", m->host_mem, q->positions, (size_t)n * q->id_size, seq_shape,
               2, q->id_type);
    if (!s)
      s = bind(q, 1, "logits", m->host_mem, q->logits, (size_t)n * q->vocab * sizeof(float),
               logits_shape, 3, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
    if (!s)
      q->bound_n = n;
  }
  if (!s && m->sig.has_attention_mask) {
    const int64_t mask_shape[2] = {1, total};
    s = bind(q, 0, "attention_mask", m->host_mem, q->mask, (size_t)total * q->id_size, mask_shape,
             2, q->id_type);
  }
  if (!s)
    s = kvc__ort_check(ort->RunWithBinding(m->session, NULL, q->binding), "RunWithBinding");
  if (s)
    return s;
  note_address(q, kvc__cache_present(&q->cache, 0, 0));
  q->last_logits = q->logits + (size_t)(n - 1) * q->vocab;
  return KVC_OK;
}

/* ---- NAIVE and UNCACHED: plain Run, outputs allocated by ONNX Runtime --------------------- */

/* Run on ids[0..n) at positions first_pos.., with q->past as past (whose length is
 * first_pos). With presents, the run's presents replace q->past. */
static kvc_status run_plain(kvc_seq *q, int32_t n, int32_t first_pos, int presents) {
  const OrtApi *ort = kvc__ort();
  const int32_t total = first_pos + n;
  for (int32_t i = 0; i < n; i++)
    put_id(q, q->positions, i, first_pos + i);
  kvc_status s = input_views(q, n, total);
  for (int i = 0; i < q->n_in - q->first_past; i++)
    q->in_values[q->first_past + i] = q->past[i];
  int n_out = presents ? q->n_out : 1;
  for (int i = 0; i < n_out; i++)
    q->out_values[i] = NULL;
  if (!s)
    s = kvc__ort_check(ort->Run(q->model->session, NULL, q->in_names,
                                (const OrtValue *const *)q->in_values, (size_t)q->n_in,
                                q->out_names, (size_t)n_out, q->out_values),
                       "Run");
  release_inputs(q);
  if (s) {
    for (int i = 0; i < n_out; i++)
      release(&q->out_values[i]);
    return s;
  }
  release(&q->logits_value);
  q->logits_value = q->out_values[0];
  float *logits = NULL;
  s = kvc__ort_check(ort->GetTensorMutableData(q->logits_value, (void **)&logits), "logits");
  q->last_logits = s ? NULL : logits + (size_t)(n - 1) * q->vocab;
  for (int i = 1; presents && i < n_out; i++) {
    if (q->past[i - 1] != q->empty)
      release(&q->past[i - 1]);
    q->past[i - 1] = q->out_values[i];
  }
  if (presents) {
    void *p = NULL;
    kvc__ort_ignore(ort->GetTensorMutableData(q->past[0], &p));
    if (p)
      note_address(q, p);
  }
  return s;
}

static kvc_status run_naive(kvc_seq *q, const int32_t *tokens, int32_t n) {
  for (int32_t i = 0; i < n; i++)
    put_id(q, q->ids, i, tokens[i]);
  return run_plain(q, n, q->len, 1);
}

static kvc_status run_uncached(kvc_seq *q, const int32_t *tokens, int32_t n) {
  for (int32_t i = 0; i < q->len; i++)
    put_id(q, q->ids, i, q->tokens[i]);
  for (int32_t i = 0; i < n; i++)
    put_id(q, q->ids, q->len + i, tokens[i]);
  return run_plain(q, q->len + n, 0, 0);
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static void drop_naive_past(kvc_seq *q) {
  for (int i = 0; q->past && i < q->n_in - q->first_past; i++) {
    if (q->past[i] != q->empty)
      release(&q->past[i]);
    q->past[i] = q->empty;
  }
}

void kvc_seq_free(kvc_seq *q) {
  if (!q)
    return;
  const OrtApi *ort = kvc__ort();
  drop_naive_past(q);
  release(&q->empty);
  release(&q->logits_value);
  if (q->binding)
    ort->ReleaseIoBinding(q->binding);
  kvc__cache_release(&q->cache);
  kvc__free(q->past);
  kvc__free(q->in_names);
  kvc__free(q->out_names);
  kvc__free(q->in_values);
  kvc__free(q->out_values);
  kvc__free(q->tokens);
  kvc__free(q->ids);
  kvc__free(q->positions);
  kvc__free(q->mask);
  kvc__free(q->logits);
  kvc__free(q->decode_ms);
  kvc__free(q);
}

static kvc_status alloc_buffers(kvc_seq *q) {
  const kvc_model *m = q->model;
  const int32_t T = q->capacity, L = m->sig.layers;
  q->n_in =
      1 + m->sig.has_attention_mask + m->sig.has_position_ids + 2 * m->sig.has_seqlens + 2 * L;
  q->first_past = q->n_in - 2 * L;
  q->n_out = 1 + 2 * L;
  q->tokens = kvc__calloc((size_t)T, sizeof *q->tokens);
  q->ids = kvc__calloc((size_t)T, q->id_size);
  q->positions = kvc__calloc((size_t)T, q->id_size);
  q->mask = kvc__calloc((size_t)T, q->id_size);
  q->decode_ms = kvc__calloc((size_t)T, sizeof *q->decode_ms);
  q->in_names = kvc__calloc((size_t)q->n_in, sizeof *q->in_names);
  q->out_names = kvc__calloc((size_t)q->n_out, sizeof *q->out_names);
  q->in_values = kvc__calloc((size_t)q->n_in, sizeof *q->in_values);
  q->out_values = kvc__calloc((size_t)q->n_out, sizeof *q->out_values);
  q->past = kvc__calloc((size_t)(2 * L), sizeof *q->past);
  if (!q->tokens || !q->ids || !q->positions || !q->mask || !q->decode_ms || !q->in_names ||
      !q->out_names || !q->in_values || !q->out_values || !q->past)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for a sequence of %d positions", T);
  for (int32_t i = 0; i < T; i++)
    put_id(q, q->mask, i, 1);
  int k = 0;
  q->in_names[k++] = "input_ids";
  if (m->sig.has_attention_mask)
    q->in_names[k++] = "attention_mask";
  if (m->sig.has_position_ids)
    q->in_names[k++] = "position_ids";
  if (m->sig.has_seqlens) {
    q->in_names[k++] = "seqlens_k";
    q->in_names[k++] = "total_sequence_length";
  }
  q->out_names[0] = "logits";
  for (int l = 0; l < L; l++) {
    for (int kv = 0; kv < 2; kv++) {
      q->in_names[k++] = m->sig.names[l].past[kv];
      q->out_names[1 + 2 * l + kv] = m->sig.names[l].present[kv];
    }
  }
  return KVC_OK;
}

kvc_status kvc_seq_new(kvc_model *model, const kvc_seq_params *params, kvc_seq **out) {
  if (!out)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_new: out is NULL");
  *out = NULL;
  if (!model)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_new: model is NULL");
  kvc_seq_params p = params ? *params : kvc_seq_default_params();
  if (!kvc_kv_mode_name(p.kv_mode))
    return kvc__fail(KVC_ERR_INVALID_ARG, "kv_mode = %d: expected a kvc_kv_mode", (int)p.kv_mode);
  kvc_seq *q = kvc__calloc(1, sizeof *q);
  if (!q)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  const kvc__signature *sig = &model->sig;
  q->model = model;
  q->mode = p.kv_mode == KVC_KV_AUTO ? model->info.kv_mode : p.kv_mode;
  q->capacity = model->info.max_seq_len;
  q->vocab = sig->vocab;
  q->id_type = sig->ids_type;
  q->id_size = q->id_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 ? 4 : 8;
  /* logits of one BOUND run: up to 64 MiB, at least one row; longer prompts are split */
  int64_t rows = ((int64_t)16 << 20) / q->vocab;
  q->rows = (int32_t)(rows < 1 ? 1 : rows > q->capacity ? q->capacity : rows);

  const OrtApi *ort = kvc__ort();
  kvc_status s = alloc_buffers(q);
  if (!s) {
    int64_t shape[4] = {1, sig->kv_heads, 0, sig->head_dim};
    s = view(model->host_mem, q->empty_data, 0, shape, 4, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
             &q->empty);
    for (int i = 0; i < 2 * sig->layers; i++)
      q->past[i] = q->empty;
  }
  if (!s && q->mode == KVC_KV_SHARED && !sig->has_seqlens)
    s = kvc__fail(KVC_ERR_INVALID_ARG,
                  "kv_mode shared needs a graph that writes its cache in place (inputs "
                  "seqlens_k and total_sequence_length); this one concatenates: use bound");
  const int bound = q->mode == KVC_KV_BOUND || q->mode == KVC_KV_SHARED;
  if (!s && bound) {
    s = kvc__cache_init(&q->cache, model, q->mode == KVC_KV_SHARED ? 1 : 2);
    if (!s && !(q->logits = kvc__calloc((size_t)q->rows * q->vocab, sizeof *q->logits)))
      s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for logits (%d x %d)", q->rows, q->vocab);
    if (!s)
      s = kvc__ort_check(ort->CreateIoBinding(model->session, &q->binding), "CreateIoBinding");
    if (!s && q->mode == KVC_KV_SHARED)
      s = bind_shared(q);
  }
  if (s) {
    kvc_seq_free(q);
    return s;
  }
  *out = q;
  return KVC_OK;
}

/* ---- the public verbs ------------------------------------------------------------------ */

kvc_status kvc_seq_append(kvc_seq *q, const int32_t *tokens, int32_t n) {
  if (!q || !tokens)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_append: %s is NULL", q ? "tokens" : "seq");
  if (n <= 0)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_append: n = %d: expected at least 1 token", n);
  for (int32_t i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= q->vocab)
      return kvc__fail(KVC_ERR_INVALID_ARG,
                       "token %d (at index %d) is outside [0, %d): vocab_size is %d", tokens[i], i,
                       q->vocab, q->vocab);
  if (n > q->capacity - q->len)
    return kvc__fail(KVC_ERR_CACHE_FULL,
                     "appending %d tokens to a sequence of %d would exceed max_seq_len %d", n,
                     q->len, q->capacity);
  const double start = kvc__now_ms();
  const uint64_t allocations_before = kvc__alloc_count();
  const int32_t len_before = q->len;
  kvc_status s = KVC_OK;
  for (int32_t done = 0; done < n && !s;) {
    const int bound = q->mode == KVC_KV_BOUND || q->mode == KVC_KV_SHARED;
    int32_t chunk = bound && n - done > q->rows ? q->rows : n - done;
    switch (q->mode) {
    case KVC_KV_SHARED:
      s = run_shared(q, tokens + done, chunk);
      break;
    case KVC_KV_BOUND:
      s = run_bound(q, tokens + done, chunk);
      break;
    case KVC_KV_NAIVE:
      s = run_naive(q, tokens + done, chunk);
      break;
    default:
      s = run_uncached(q, tokens + done, chunk);
      break;
    }
    if (!s) {
      memcpy(q->tokens + q->len, tokens + done, (size_t)chunk * sizeof *tokens);
      q->len += chunk;
      done += chunk;
    }
  }
  if (s) {
    /* a failed chunk leaves the cache as it was before that chunk; earlier chunks of a
     * split prompt are undone so that the whole call leaves nothing behind */
    if (q->len != len_before)
      kvc_seq_rewind(q, len_before);
    return s;
  }
  const double ms = kvc__now_ms() - start;
  if (len_before == 0) {
    q->prefill_ms = ms;
    q->prefill_tokens = n;
  } else if (n == 1 && q->decode_steps < q->capacity) {
    q->decode_ms[q->decode_steps++] = ms;
    q->decode_allocations += (int64_t)(kvc__alloc_count() - allocations_before);
  }
  return KVC_OK;
}

const float *kvc_seq_logits(const kvc_seq *q) {
  return q && q->len > 0 ? q->last_logits : NULL;
}

int32_t kvc_seq_len(const kvc_seq *q) {
  return q ? q->len : 0;
}

kvc_kv_mode kvc_seq_kv_mode(const kvc_seq *q) {
  return q ? q->mode : KVC_KV_AUTO;
}

kvc_status kvc_seq_reset(kvc_seq *q) {
  if (!q)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_reset: seq is NULL");
  drop_naive_past(q);
  release(&q->logits_value);
  q->len = 0;
  q->last_logits = NULL;
  q->prefill_ms = 0;
  q->prefill_tokens = 0;
  q->decode_steps = 0;
  q->decode_allocations = 0;
  return KVC_OK;
}

/* NAIVE: replace each past with a copy of its first len positions. */
static kvc_status truncate_naive(kvc_seq *q, int32_t len) {
  const OrtApi *ort = kvc__ort();
  const kvc__signature *sig = &q->model->sig;
  OrtAllocator *alloc = NULL;
  kvc_status s = kvc__ort_check(ort->GetAllocatorWithDefaultOptions(&alloc), "allocator");
  int64_t shape[4] = {1, sig->kv_heads, len, sig->head_dim};
  const size_t row = (size_t)sig->head_dim * sizeof(float);
  for (int i = 0; i < 2 * sig->layers && !s; i++) {
    OrtValue *v = NULL;
    char *dst = NULL, *src = NULL;
    s = kvc__ort_check(
        ort->CreateTensorAsOrtValue(alloc, shape, 4, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &v),
        "rewind");
    if (!s)
      s = kvc__ort_check(ort->GetTensorMutableData(v, (void **)&dst), "rewind");
    if (!s)
      s = kvc__ort_check(ort->GetTensorMutableData(q->past[i], (void **)&src), "rewind");
    if (s) {
      release(&v);
      break;
    }
    for (int h = 0; h < sig->kv_heads; h++)
      memcpy(dst + (size_t)h * len * row, src + (size_t)h * q->len * row, (size_t)len * row);
    release(&q->past[i]);
    q->past[i] = v;
  }
  return s;
}

kvc_status kvc_seq_rewind(kvc_seq *q, int32_t len) {
  if (!q)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_rewind: seq is NULL");
  if (len < 0 || len > q->len)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_rewind: len = %d: expected 0..%d (the length)",
                     len, q->len);
  if (len == q->len)
    return KVC_OK;
  if (len == 0)
    return kvc_seq_reset(q);
  kvc_status s = KVC_OK;
  if (q->mode == KVC_KV_BOUND)
    s = kvc__cache_truncate(&q->cache, q->len, len);
  else if (q->mode == KVC_KV_NAIVE)
    s = truncate_naive(q, len);
  if (s)
    return s;
  q->len = len;
  q->last_logits = NULL;
  return KVC_OK;
}

kvc_status kvc_seq_get_metrics(const kvc_seq *q, kvc_seq_metrics *out) {
  if (!q || !out)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_get_metrics: %s is NULL", q ? "metrics" : "seq");
  *out = (kvc_seq_metrics){.prefill_ms = q->prefill_ms,
                           .prefill_tokens = q->prefill_tokens,
                           .decode_steps = q->decode_steps,
                           .decode_ms = q->decode_ms,
                           .cache_bytes = q->cache.buf ? kvc__cache_bytes(&q->cache) : 0,
                           .cache_addresses = q->n_addresses,
                           .decode_allocations = q->decode_allocations};
  return KVC_OK;
}

/* ---- test hooks ------------------------------------------------------------------------ */

const void *kvc__seq_cache_address(const kvc_seq *q, int layer, int kv) {
  if (q->len == 0 || q->mode == KVC_KV_UNCACHED)
    return NULL;
  if (q->mode == KVC_KV_BOUND || q->mode == KVC_KV_SHARED)
    return kvc__cache_past(&q->cache, layer, kv);
  void *p = NULL;
  kvc__ort_ignore(kvc__ort()->GetTensorMutableData(q->past[2 * layer + kv], &p));
  return p;
}

kvc_status kvc__seq_check_binding(kvc_seq *q) {
  if (q->mode != KVC_KV_BOUND && q->mode != KVC_KV_SHARED)
    return kvc__fail(KVC_ERR_INVALID_ARG, "not a BOUND or SHARED sequence");
  const OrtApi *ort = kvc__ort();
  OrtAllocator *alloc = NULL;
  OrtValue **values = NULL;
  size_t count = 0;
  kvc_status s = kvc__ort_check(ort->GetAllocatorWithDefaultOptions(&alloc), "allocator");
  if (!s)
    s = kvc__ort_check(ort->GetBoundOutputValues(q->binding, alloc, &values, &count), "outputs");
  for (size_t i = 0; i < count; i++) {
    void *data = NULL;
    if (!s)
      s = kvc__ort_check(ort->GetTensorMutableData(values[i], &data), "output data");
    int ok = 0;
    for (int l = 0; l < q->cache.layers && !s; l++)
      for (int kv = 0; kv < 2; kv++)
        ok |= data == kvc__cache_past(&q->cache, l, kv); /* swapped: last present */
    ok |= data == (void *)q->logits;
    if (!s && !ok)
      s = kvc__fail(KVC_ERR_RUNTIME, "bound output %zu lives at %p, outside kvcache's buffers", i,
                    data);
    ort->ReleaseValue(values[i]);
  }
  if (values)
    kvc__ort_ignore(ort->AllocatorFree(alloc, values));
  return s;
}
