/* products_probe.c: kvc_model_products_ms(): kvcache's int8 products with nothing to wait for
 * (their codes in the caches), timed by the same runtime, threads and kernel path as the
 * model's steps: what a step of many rows, whose products are compute- rather than
 * memory-bound, is to be compared with.
 *
 * The graph: one ai.kvcache.MatMulNBits node, y (rows, N) = x (rows, K) W, W 4-bit in blocks
 * of 32 with zero points (quantize's defaults), constant: packed once when the session is
 * made, as a model's are. */
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "model.h"
#include "onnx.h"
#include "ops.h"
#include "probe.h"
#include "onnx/onnx.pb-c.h"

enum { K = 1024, N = 1024, BLOCK = 32, BLOCKS = K / BLOCK };

static kvc_status products_session(kvc_model *m, OrtSession **out) {
  kvc__onnx *g = kvc__onnx_new("kvcache_products_probe");
  uint8_t *codes = kvc__malloc((size_t)N * K / 2), *zeros = kvc__malloc((size_t)N * BLOCKS / 2);
  float *scales = kvc__malloc((size_t)N * BLOCKS * sizeof *scales);
  kvc_status s = KVC_OK;
  if (!g || !codes || !zeros || !scales) {
    kvc__onnx_free(g);
    s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory building the products probe");
  }
  if (!s) {
    uint32_t x = 12345; /* any codes: the products take as long whatever they are */
    for (size_t i = 0; i < (size_t)N * K / 2; i++)
      codes[i] = (uint8_t)((x = x * 1664525u + 1013904223u) >> 24);
    memset(zeros, 0x88, (size_t)N * BLOCKS / 2);
    for (size_t i = 0; i < (size_t)N * BLOCKS; i++)
      scales[i] = 0x1p-7f;
    const int32_t f32 = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
                  u8 = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    kvc__onnx_opset(g, KVC_OP_DOMAIN, 1);
    kvc__onnx_input(g, "x", f32, (kvc__dim[]){{"rows", 0}, {NULL, K}}, 2);
    kvc__onnx_output(g, "y", f32, (kvc__dim[]){{"rows", 0}, {NULL, N}}, 2);
    kvc__onnx_const_raw(g, "codes", u8, codes, (size_t)N * K / 2, (int64_t[]){N, BLOCKS, BLOCK / 2},
                        3);
    kvc__onnx_const_raw(g, "scales", f32, scales, (size_t)N * BLOCKS * sizeof *scales,
                        (int64_t[]){N * BLOCKS}, 1);
    kvc__onnx_const_raw(g, "zero_points", u8, zeros, (size_t)N * BLOCKS / 2,
                        (int64_t[]){N * BLOCKS / 2}, 1);
    const kvc__attr attrs[] = {KVC_ATTR_I("K", K), KVC_ATTR_I("N", N), KVC_ATTR_I("bits", 4),
                               KVC_ATTR_I("block_size", BLOCK), KVC_ATTR_I("accuracy_level", 4)};
    kvc__onnx_node(g, KVC_OP_MATMUL, KVC_OP_DOMAIN,
                   (const char *[]){"x", "codes", "scales", "zero_points"}, 4,
                   (const char *[]){"y"}, 1, attrs, 5);
    s = kvc__probe_session(m, g, "creating the products probe session", out);
  }
  kvc__free(codes), kvc__free(zeros), kvc__free(scales);
  return s;
}

kvc_status kvc_model_products_ms(kvc_model *model, int32_t rows, int32_t reads, double *ms) {
  if (!model || !ms || rows < 1 || reads < 1)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "kvc_model_products_ms: expected a model, rows >= 1, reads >= 1 and ms");
  if (strcmp(model->info.provider, "cpu") != 0)
    return kvc__fail(KVC_ERR_UNSUPPORTED,
                     "kvc_model_products_ms: kvcache's products run on the CPU provider only");
  const OrtApi *ort = kvc__ort();
  OrtSession *session = NULL;
  OrtIoBinding *binding = NULL;
  float *x = kvc__calloc((size_t)rows * K, sizeof *x),
        *y = kvc__calloc((size_t)rows * N, sizeof *y);
  double *times = kvc__calloc((size_t)reads, sizeof *times);
  kvc_status s = x && y && times ? products_session(model, &session)
                                 : kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  for (size_t i = 0; x && i < (size_t)rows * K; i++)
    x[i] = (float)(i % 17) - 8.0f; /* rows of nonzero codes */
  if (!s)
    s = kvc__ort_check(ort->CreateIoBinding(session, &binding), "products probe binding");
  const int64_t x_shape[2] = {rows, K}, y_shape[2] = {rows, N};
  const ONNXTensorElementDataType f32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  if (!s)
    s = kvc__probe_bind(binding, 0, "x", "products probe input", model->host_mem, x,
                        (size_t)rows * K * sizeof *x, x_shape, 2, f32);
  if (!s)
    s = kvc__probe_bind(binding, 1, "y", "products probe output", model->host_mem, y,
                        (size_t)rows * N * sizeof *y, y_shape, 2, f32);
  for (int32_t r = -reads; r < reads && !s; r++) { /* untimed runs first: codes in the caches */
    const double t = kvc__now_ms();
    s = kvc__ort_check(ort->RunWithBinding(session, NULL, binding), "products probe run");
    if (r >= 0)
      times[r] = kvc__now_ms() - t;
  }
  if (!s)
    kvc__probe_medians(times, 1, reads, ms);
  if (binding)
    ort->ReleaseIoBinding(binding);
  if (session)
    ort->ReleaseSession(session);
  kvc__free(x), kvc__free(y), kvc__free(times);
  return s;
}
