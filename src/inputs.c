/* inputs.c: the graph's run inputs other than the cache, in one place: input_ids and, as the
 * signature says the graph takes them, attention_mask, position_ids, seqlens_k and
 * total_sequence_length. Their host buffers are the context's (allocated at capacity by
 * ctx.c); here they are filled for a run's rows and described, once, for every mode: BOUND
 * and SHARED bind the descriptions, NAIVE and UNCACHED wrap them as tensors for a plain Run,
 * so adding an input is one edit here. */
#include "ctx.h"

static void put_id(const kvc_ctx *c, void *buf, size_t i, int64_t v) {
  if (c->id_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32)
    ((int32_t *)buf)[i] = (int32_t)v;
  else
    ((int64_t *)buf)[i] = v;
}

void kvc__fill_rows(kvc_ctx *c, const kvc__rows *r) {
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
      put_id(c, c->ids, at, r->live[row] ? tokens[i] : 0);
      put_id(c, c->positions, at, r->live[row] ? past + i : 0);
    }
    c->seqlens_k[row] = past + r->n - 1;
    for (int32_t j = 0; c->model->sig.has_attention_mask && j < total; j++)
      put_id(c, c->mask, (size_t)row * total + j, j < past + r->n);
  }
  c->total_len[0] = total;
}

int kvc__run_inputs(kvc_ctx *c, int32_t rows, int32_t n, int32_t total, kvc__run_input *out) {
  const kvc__signature *sig = &c->model->sig;
  const size_t ids_bytes = (size_t)rows * n * c->id_size;
  const ONNXTensorElementDataType i32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
  int k = 0;
  out[k++] = (kvc__run_input){"input_ids", c->ids, ids_bytes, {rows, n}, 2, c->id_type};
  if (sig->has_attention_mask)
    out[k++] = (kvc__run_input){"attention_mask", c->mask, (size_t)rows * total * c->id_size,
                                {rows, total},    2,       c->id_type};
  if (sig->has_position_ids)
    out[k++] = (kvc__run_input){"position_ids", c->positions, ids_bytes, {rows, n}, 2, c->id_type};
  if (sig->has_seqlens) { /* else the graph computes them from attention_mask */
    out[k++] = (kvc__run_input){
        "seqlens_k", c->seqlens_k, (size_t)rows * sizeof *c->seqlens_k, {rows}, 1, i32};
    out[k++] = (kvc__run_input){"total_sequence_length", c->total_len, sizeof c->total_len, {1},
                                (size_t)sig->total_rank, i32};
  }
  return k;
}

kvc_status kvc__bind_run_inputs(kvc_ctx *c, int32_t rows, int32_t n, int32_t total, int which) {
  kvc__run_input in[KVC_RUN_INPUTS];
  const int count = kvc__run_inputs(c, rows, n, total, in);
  kvc_status s = KVC_OK;
  for (int i = 0; i < count && !s; i++) {
    const int mask = in[i].data == c->mask;
    if (which == KVC_INPUTS_ALL || (which == KVC_INPUTS_MASK) == mask)
      s = kvc__bind(c->binding, 0, in[i].name, c->model->host_mem, in[i].data, in[i].bytes,
                    in[i].shape, in[i].rank, in[i].type);
  }
  return s;
}
