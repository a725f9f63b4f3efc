/* inputs.c: the graph's run inputs other than the cache, in one place: input_ids and, as the
 * signature says the graph takes them, attention_mask, position_ids, seqlens_k and
 * total_sequence_length. Their host buffers (the context's `in`) are allocated here once, at
 * capacity, filled for a run's rows and described, once, for every mode: BOUND and SHARED
 * bind the descriptions, NAIVE and UNCACHED wrap them as tensors for a plain Run, so adding
 * an input is one edit here. logits_to_keep, where the graph takes it, asks for the logits of
 * the positions the caller reads: the last one, but for kvc_seq_append_all. */
#include "alloc.h"
#include "ctx.h"
#include "error.h"
#include "naming.h"

kvc_status kvc__inputs_init(kvc__inputs *in, const kvc_model *m, int32_t slots, int32_t capacity) {
  const size_t S = (size_t)slots, T = (size_t)capacity;
  const size_t ids = T + 1 > S ? T + 1 : S; /* one row of up to T + 1, or S rows of 1 */
  in->id_type = m->sig.ids_type;
  in->id_size = in->id_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 ? 4 : 8;
  in->ids = kvc__calloc(ids, in->id_size);
  in->positions = kvc__calloc(ids, in->id_size);
  in->mask = kvc__calloc(S * (T + 1), in->id_size); /* S rows, each up to T + 1 long */
  in->seqlens_k = kvc__calloc(S, sizeof *in->seqlens_k);
  if (!in->ids || !in->positions || !in->mask || !in->seqlens_k)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for the inputs of %d slots of %d tokens",
                     slots, capacity);
  return KVC_OK;
}

void kvc__inputs_release(kvc__inputs *in) {
  kvc__free(in->ids);
  kvc__free(in->positions);
  kvc__free(in->mask);
  kvc__free(in->seqlens_k);
  in->ids = in->positions = in->mask = NULL;
  in->seqlens_k = NULL;
}

static void put_id(const kvc__inputs *in, void *buf, size_t i, int64_t v) {
  if (in->id_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32)
    ((int32_t *)buf)[i] = (int32_t)v;
  else
    ((int64_t *)buf)[i] = v;
}

void kvc__fill_rows(kvc_ctx *c, const kvc__rows *r) {
  kvc__inputs *in = &c->in;
  int32_t total = 0;
  for (int32_t row = 0; row < r->count; row++)
    total = r->past[row] + r->n > total ? r->past[row] + r->n : total;
  for (int32_t row = 0; row < r->count; row++) {
    const int32_t slot = r->first_slot + row, past = r->past[row];
    const int32_t *tokens = c->tokens + (size_t)slot * c->capacity + past;
    for (int32_t i = 0; i < r->n; i++) {
      const size_t at = (size_t)row * r->n + i;
      /* an idle row: token 0 at position 0 (a position every model has); its keys and
       * values land at positions >= its length */
      put_id(in, in->ids, at, r->live[row] ? tokens[i] : 0);
      put_id(in, in->positions, at, r->live[row] ? past + i : 0);
    }
    in->seqlens_k[row] = past + r->n - 1;
    for (int32_t j = 0; c->model->sig.has_attention_mask && j < total; j++)
      put_id(in, in->mask, (size_t)row * total + j, j < past + r->n);
  }
  in->total_len[0] = total;
  in->logits_to_keep[0] = r->keep;
}

int32_t kvc__logits_rows(const kvc_ctx *c, const kvc__rows *r) {
  return c->model->sig.has_logits_to_keep ? r->keep : r->n;
}

int kvc__run_inputs(kvc_ctx *c, int32_t rows, int32_t n, int32_t total, kvc__run_input *out) {
  const kvc__signature *sig = &c->model->sig;
  kvc__inputs *in = &c->in;
  const size_t ids_bytes = (size_t)rows * n * in->id_size;
  const ONNXTensorElementDataType i32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
  int k = 0;
  out[k++] = (kvc__run_input){"input_ids", in->ids, ids_bytes, {rows, n}, 2, in->id_type};
  if (sig->has_attention_mask)
    out[k++] = (kvc__run_input){"attention_mask", in->mask, (size_t)rows * total * in->id_size,
                                {rows, total},    2,        in->id_type};
  if (sig->has_position_ids)
    out[k++] =
        (kvc__run_input){"position_ids", in->positions, ids_bytes, {rows, n}, 2, in->id_type};
  if (sig->has_seqlens) { /* else the graph computes them from attention_mask */
    out[k++] = (kvc__run_input){
        "seqlens_k", in->seqlens_k, (size_t)rows * sizeof *in->seqlens_k, {rows}, 1, i32};
    out[k++] = (kvc__run_input){"total_sequence_length", in->total_len,
                                sizeof in->total_len,    {1},
                                (size_t)sig->total_rank, i32};
  }
  if (sig->has_logits_to_keep)
    out[k++] = (kvc__run_input){KVC_LOGITS_TO_KEEP,        in->logits_to_keep,
                                sizeof in->logits_to_keep, {1},
                                (size_t)sig->keep_rank,    ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64};
  return k;
}

kvc_status kvc__bind_run_inputs(kvc_ctx *c, OrtIoBinding *binding, int32_t rows, int32_t n,
                                int32_t total, int which) {
  kvc__run_input in[KVC_RUN_INPUTS];
  const int count = kvc__run_inputs(c, rows, n, total, in);
  kvc_status s = KVC_OK;
  for (int i = 0; i < count && !s; i++) {
    const int mask = in[i].data == c->in.mask;
    if (which == KVC_INPUTS_ALL || (which == KVC_INPUTS_MASK) == mask)
      s = kvc__bind(binding, 0, in[i].name, c->model->host_mem, in[i].data, in[i].bytes,
                    in[i].shape, in[i].rank, in[i].type);
  }
  return s;
}
