/* matmul_op.c: ai.kvcache.MatMulNBits on ONNX Runtime's custom-operator C API (see ops.h).
 * com.microsoft.MatMulNBits' inputs and attributes, so that `kvcache quantize` writes the same
 * initializers for either:
 *   0 A            (..., K) float
 *   1 B            (N, blocks, block_size * bits / 8) uint8 codes
 *   2 scales       N * blocks floats
 *   3 zero_points  optional uint8: (N, blocks) for 8 bits, N * ceil(blocks / 2) for 4
 * Output (..., N). Attributes K, N, bits (4 or 8), block_size (a multiple of 16, at most
 * KVC_QMM_MAX_BLOCK); accuracy_level is accepted and ignored: activations are always int8,
 * with the arithmetic of matmul_kernel.h, so that one row and many rows give the same bits.
 * A run quantises each row of A once (rows split into tasks on ONNX Runtime's thread pool),
 * then splits the columns into tasks; small products run on the calling thread alone. */
#define _DEFAULT_SOURCE /* madvise's MADV_PAGEOUT (release_pages) */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "matmul_kernel.h"
#include "ops.h"

enum { IN_A, IN_B, IN_SCALES, IN_ZERO_POINTS, N_IN };
enum {
  OP_VERSION = 16,           /* CreateKernelV2/KernelComputeV2, as attention_op.c */
  STACK_SCRATCH = 64 * 1024, /* bytes of quantised rows kept on the stack (decode steps) */
  SERIAL_WORK = 1 << 20,     /* multiply-adds below which the pool costs more than it gives */
  MAX_TASKS = 32,
  QUANTIZE_ROWS = 32, /* rows of A a quantising task takes */
};

typedef struct kernel {
  const OrtApi *ort;
  kvc__qweights shape; /* sizes only; the data pointers are set per run */
  kvc__qmm_impl impl;
  kvc__qpanels panels; /* packed once when B, scales and zero points are constant */
  int packed;          /* ... and then runs read only A */
} kernel;

static OrtStatus *fail(const OrtApi *ort, OrtErrorCode code, const char *fmt, ...) {
  char msg[512];
  int n = snprintf(msg, sizeof msg, "%s.%s: ", KVC_OP_DOMAIN, KVC_OP_MATMUL);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
  va_end(ap);
  return ort->CreateStatus(code, msg);
}

typedef struct input {
  const void *data; /* NULL: an absent optional input */
  int64_t dims[8];
  size_t rank, count;
  ONNXTensorElementDataType type;
} input;

/* Type, shape and data of tensor `value`, input i. */
static OrtStatus *describe(const OrtApi *ort, const OrtValue *value, size_t i, input *t) {
  OrtTensorTypeAndShapeInfo *info = NULL;
  OrtStatus *st = ort->GetTensorTypeAndShape(value, &info);
  if (!st)
    st = ort->GetDimensionsCount(info, &t->rank);
  if (!st && t->rank > 8)
    st = fail(ort, ORT_INVALID_ARGUMENT, "input %zu has %zu dimensions: expected at most 8", i,
              t->rank);
  if (!st)
    st = ort->GetDimensions(info, t->dims, t->rank);
  if (!st)
    st = ort->GetTensorShapeElementCount(info, &t->count);
  if (!st)
    st = ort->GetTensorElementType(info, &t->type);
  if (info)
    ort->ReleaseTensorTypeAndShapeInfo(info);
  void *data = NULL; /* read only: this API version has no const accessor */
  if (!st)
    st = ort->GetTensorMutableData((OrtValue *)value, &data);
  t->data = data;
  return st;
}

static OrtStatus *read_input(const OrtApi *ort, OrtKernelContext *ctx, size_t present, size_t i,
                             input *t) {
  memset(t, 0, sizeof *t);
  const OrtValue *value = NULL;
  OrtStatus *st = i < present ? ort->KernelContext_GetInput(ctx, i, &value) : NULL;
  return st || !value ? st : describe(ort, value, i, t);
}

/* The weights' inputs against the attributes. */
static OrtStatus *check_weights(const kernel *kn, const input *in, kvc__qweights *w) {
  const OrtApi *ort = kn->ort;
  *w = kn->shape;
  const int64_t blob = w->block * w->bits / 8;
  const input *b = &in[IN_B], *s = &in[IN_SCALES], *z = &in[IN_ZERO_POINTS];
  if (b->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 || b->rank != 3 || b->dims[0] != w->n ||
      b->dims[1] != w->blocks || b->dims[2] != blob)
    return fail(ort, ORT_INVALID_ARGUMENT,
                "B must be uint8 of shape (N %lld, blocks %lld, block_size x bits / 8 = %lld)",
                (long long)w->n, (long long)w->blocks, (long long)blob);
  if (s->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || s->count != (size_t)(w->n * w->blocks))
    return fail(ort, ORT_INVALID_ARGUMENT, "scales must be %lld floats (N x blocks), not %zu",
                (long long)(w->n * w->blocks), s->count);
  const size_t zeros = (size_t)(w->n * (w->bits == 8 ? w->blocks : (w->blocks + 1) / 2));
  if (z->data && (z->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 || z->count != zeros))
    return fail(ort, ORT_INVALID_ARGUMENT, "zero_points must be %zu uint8 values, not %zu", zeros,
                z->count);
  w->codes = b->data;
  w->scales = s->data;
  w->zero_points = z->data;
  return NULL;
}

typedef struct run {
  const kernel *kn;
  kvc__qweights w;
  const kvc__qpanels *panels;
  kvc__qrow *rows;
  int64_t nrows, tile;
  float *y;
  const float *a; /* the rows of A, */
  int8_t *q;      /* their codes, */
  float *scale;   /* scales and */
  int32_t *sum;   /* code sums, block by block (matmul_kernel.h) */
} run;

static void quantize_task(void *data, size_t t) {
  const run *r = data;
  const kvc__qweights *w = &r->w;
  const size_t codes = (size_t)(w->blocks * w->block);
  const int64_t i0 = (int64_t)t * QUANTIZE_ROWS;
  const int64_t i1 = i0 + QUANTIZE_ROWS < r->nrows ? i0 + QUANTIZE_ROWS : r->nrows;
  for (int64_t i = i0; i < i1; i++) {
    int8_t *qi = r->q + (size_t)i * codes;
    r->kn->impl.quantize(r->a + i * w->k, w->k, w->block, w->blocks, qi, r->scale + i, r->sum + i,
                         r->nrows);
    r->rows[i] = (kvc__qrow){qi, r->scale + i, r->sum + i, r->nrows};
  }
}

static void product_task(void *data, size_t t) {
  const run *r = data;
  const int64_t n0 = (int64_t)t * r->tile;
  const int64_t n1 = n0 + r->tile < r->w.n ? n0 + r->tile : r->w.n;
  kvc__qmm_fn *product = r->nrows == 1 ? r->kn->impl.one_row : r->kn->impl.product;
  product(&r->w, r->panels, r->rows, r->nrows, n0, n1, r->y, r->w.n);
}

/* Quantises the rows into `scratch` (in tasks of QUANTIZE_ROWS rows on the pool: a prompt's
 * rows are a tenth of a 2-thread prefill's products otherwise) and runs the product. */
static OrtStatus *multiply(OrtKernelContext *ctx, run *r, const float *a, void *scratch) {
  const kvc__qweights *w = &r->w;
  const size_t codes = (size_t)(w->blocks * w->block);
  r->a = a;
  r->rows = scratch;
  r->q = (int8_t *)(r->rows + r->nrows);
  r->scale = (float *)(r->q + (size_t)r->nrows * codes); /* codes: a multiple of 16 */
  r->sum = (int32_t *)(r->scale + (size_t)(r->nrows * w->blocks));
  const size_t quantize_tasks = (size_t)((r->nrows + QUANTIZE_ROWS - 1) / QUANTIZE_ROWS);
  if (quantize_tasks == 1)
    quantize_task(r, 0);
  else {
    OrtStatus *st = r->kn->ort->KernelContext_ParallelFor(ctx, quantize_task, quantize_tasks, 0, r);
    if (st)
      return st;
  }
  const int64_t groups = (w->n + KVC_QMM_COLUMNS - 1) / KVC_QMM_COLUMNS;
  int64_t tasks = groups < MAX_TASKS ? groups : MAX_TASKS;
  if ((double)r->nrows * (double)w->n * (double)w->k < SERIAL_WORK)
    tasks = 1;
  int64_t per_task = (groups + tasks - 1) / tasks;
  if (r->kn->impl.path >= KVC_QMM_AVX512) /* 512-bit paths take panels in pairs */
    per_task += per_task % 2;
  r->tile = per_task * KVC_QMM_COLUMNS;
  tasks = (w->n + r->tile - 1) / r->tile;
  if (tasks == 1) {
    product_task(r, 0);
    return NULL;
  }
  return r->kn->ort->KernelContext_ParallelFor(ctx, product_task, (size_t)tasks, 0, r);
}

static OrtStatus *compute(void *state, OrtKernelContext *ctx) {
  const kernel *kn = state;
  const OrtApi *ort = kn->ort;
  size_t present = 0;
  OrtStatus *st = ort->KernelContext_GetInputCount(ctx, &present);
  input in[N_IN];
  const size_t reads = kn->packed ? 1 : N_IN; /* packed constants: a run reads A alone */
  for (size_t i = 0; i < reads && !st; i++)
    st = read_input(ort, ctx, present, i, &in[i]);
  run r = {.kn = kn, .w = kn->shape, .panels = &kn->panels};
  if (!st && !kn->packed)
    st = check_weights(kn, in, &r.w);
  if (st)
    return st;
  const input *a = &in[IN_A];
  if (a->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || a->rank < 1 ||
      a->dims[a->rank - 1] != r.w.k)
    return fail(ort, ORT_INVALID_ARGUMENT, "A must be float with a last dimension of K = %lld",
                (long long)r.w.k);
  r.nrows = (int64_t)(a->count / (size_t)r.w.k);
  int64_t out_dims[8];
  memcpy(out_dims, a->dims, a->rank * sizeof *out_dims);
  out_dims[a->rank - 1] = r.w.n;
  OrtValue *out = NULL;
  void *y = NULL;
  st = ort->KernelContext_GetOutput(ctx, 0, out_dims, a->rank, &out);
  if (!st)
    st = ort->GetTensorMutableData(out, &y);
  if (st || !r.nrows)
    return st;
  r.y = y;
  kvc__qpanels own = {0}; /* weights that are not constant: packed for this run alone */
  if (kn->impl.path != KVC_QMM_PORTABLE && !kn->packed) {
    if (kvc__qmm_pack(&r.w, 0, &own) != 0)
      return fail(ort, ORT_FAIL, "out of memory packing %lld x %lld weights", (long long)r.w.k,
                  (long long)r.w.n);
    r.panels = &own;
  }
  const size_t bytes = (size_t)r.nrows * (sizeof(kvc__qrow) + (size_t)(r.w.blocks * r.w.block) +
                                          (size_t)r.w.blocks * (sizeof(float) + sizeof(int32_t)));
  _Alignas(64) unsigned char stack[STACK_SCRATCH];
  void *scratch = bytes <= sizeof stack ? stack : malloc(bytes);
  st = scratch ? multiply(ctx, &r, a->data, scratch)
               : fail(ort, ORT_FAIL, "out of memory for %zu bytes of quantised rows", bytes);
  if (scratch != stack)
    free(scratch);
  kvc__qmm_unpack(&own);
  return st;
}

static OrtStatus *attribute(const OrtApi *ort, const OrtKernelInfo *info, const char *name,
                            int64_t *value) {
  OrtStatus *st = ort->KernelInfoGetAttribute_int64(info, name, value);
  if (!st)
    return NULL;
  ort->ReleaseStatus(st);
  return fail(ort, ORT_INVALID_ARGUMENT, "attribute %s is required", name);
}

/* Once packed, ONNX Runtime's copy of the codes is not read again (the vectorised paths read
 * the panels). Where ONNX Runtime maps it from the model's external data file, the pages the
 * packing read stay in the resident set: a second copy of the weights (the 243 M model at 8
 * bits: 1.16x the weights and a full cache after open). MADV_PAGEOUT lets the kernel reclaim
 * them: a hint that changes no value (a page touched again is read back from the file), and
 * one that does nothing for memory no file backs where there is no swap. */
static void release_pages(const void *data, size_t bytes) {
#ifdef MADV_PAGEOUT
  const long page = sysconf(_SC_PAGESIZE);
  if (page <= 0)
    return;
  const uintptr_t p = (uintptr_t)page;
  const uintptr_t from = ((uintptr_t)data + p - 1) / p * p, to = ((uintptr_t)data + bytes) / p * p;
  if (to > from)
    (void)madvise((void *)from, to - from, MADV_PAGEOUT); /* a hint: its result is not needed */
#else
  (void)data, (void)bytes;
#endif
}

/* The weights in panels, once, when B, scales and any zero points are initializers (their
 * shapes checked as a run checks them): runs then read neither. ONNX Runtime keeps its own
 * copy of the initializers, whose codes' pages the packing read are then released
 * (release_pages). */
static OrtStatus *pack_constants(const OrtApi *ort, const OrtKernelInfo *info, kernel *kn) {
  size_t count = 0;
  OrtStatus *st = ort->KernelInfo_GetInputCount(info, &count);
  input in[N_IN];
  memset(in, 0, sizeof in);
  for (size_t i = IN_B; i < N_IN && i < count && !st; i++) {
    int constant = 0;
    const OrtValue *value = NULL;
    st = ort->KernelInfoGetConstantInput_tensor(info, i, &constant, &value);
    if (st || !constant || !value)
      return st; /* not constant: packed per run */
    st = describe(ort, value, i, &in[i]);
  }
  kvc__qweights w;
  if (!st)
    st = check_weights(kn, in, &w);
  if (!st && kvc__qmm_pack(&w, 1, &kn->panels) != 0)
    st = fail(ort, ORT_FAIL, "out of memory packing %lld x %lld weights", (long long)w.k,
              (long long)w.n);
  if (!st)
    release_pages(w.codes, in[IN_B].count);
  kn->packed = !st;
  return st;
}

static OrtStatus *create(const OrtCustomOp *op, const OrtApi *ort, const OrtKernelInfo *info,
                         void **out) {
  (void)op;
  int64_t k = 0, n = 0, bits = 0, block = 0;
  OrtStatus *st = attribute(ort, info, "K", &k);
  if (!st)
    st = attribute(ort, info, "N", &n);
  if (!st)
    st = attribute(ort, info, "bits", &bits);
  if (!st)
    st = attribute(ort, info, "block_size", &block);
  if (st)
    return st;
  if (k < 1 || n < 1 || k > INT32_MAX || n > INT32_MAX)
    return fail(ort, ORT_INVALID_ARGUMENT, "K = %lld, N = %lld: expected 1 to 2^31 - 1 each",
                (long long)k, (long long)n);
  if (bits != 4 && bits != 8)
    return fail(ort, ORT_INVALID_ARGUMENT, "bits = %lld: expected 4 or 8", (long long)bits);
  if (block < 16 || block > KVC_QMM_MAX_BLOCK || block % 16)
    return fail(ort, ORT_INVALID_ARGUMENT,
                "block_size = %lld: expected a multiple of 16 from 16 to %d", (long long)block,
                KVC_QMM_MAX_BLOCK);
  kvc__qmm_path path;
  char why[160];
  if (kvc__qmm_pick(&path, why, sizeof why) != 0)
    return ort->CreateStatus(ORT_INVALID_ARGUMENT, why);
  kernel *made = malloc(sizeof *made);
  if (!made)
    return fail(ort, ORT_FAIL, "out of memory");
  *made = (kernel){.ort = ort, .impl = kvc__qmm_for(path)};
  made->shape = (kvc__qweights){
      .k = k, .n = n, .blocks = (k + block - 1) / block, .bits = (int)bits, .block = (int)block};
  if (made->impl.path != KVC_QMM_PORTABLE && (st = pack_constants(ort, info, made))) {
    free(made);
    return st;
  }
  *out = made;
  return NULL;
}

static void destroy(void *state) {
  kernel *kn = state;
  kvc__qmm_unpack(&kn->panels);
  free(kn);
}

static const char *op_name(const OrtCustomOp *op) {
  (void)op;
  return KVC_OP_MATMUL;
}

static ONNXTensorElementDataType input_type(const OrtCustomOp *op, size_t index) {
  (void)op;
  return index == IN_A || index == IN_SCALES ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT
                                             : ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
}

static size_t input_count(const OrtCustomOp *op) {
  (void)op;
  return N_IN;
}

static size_t output_count(const OrtCustomOp *op) {
  (void)op;
  return 1;
}

static OrtCustomOpInputOutputCharacteristic input_kind(const OrtCustomOp *op, size_t index) {
  (void)op;
  return index == IN_ZERO_POINTS ? INPUT_OUTPUT_OPTIONAL : INPUT_OUTPUT_REQUIRED;
}

const OrtCustomOp kvc__matmul_op = {
    .version = OP_VERSION, /* CreateKernel and KernelCompute (version 1) stay unset */
    .GetName = op_name,
    .GetExecutionProviderType = kvc__op_cpu,
    .GetInputType = input_type,
    .GetInputTypeCount = input_count,
    .GetOutputType = kvc__op_float,
    .GetOutputTypeCount = output_count,
    .KernelDestroy = destroy,
    .GetInputCharacteristic = input_kind,
    .GetOutputCharacteristic = kvc__op_required,
    .GetInputMemoryType = kvc__op_cpu_memory,
    .CreateKernelV2 = create,
    .KernelComputeV2 = compute,
};
