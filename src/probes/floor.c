/* floor.c: kvc_model_floor(): how long ONNX Runtime takes, on this model's provider and
 * threads, to read a number of bytes once. A decode step must at least read its weights and
 * the cache so far; this is that cost with nothing else to do, measured by the same runtime
 * (its thread pool, its kernels) that runs the step.
 *
 * The graph is one MatMul, y (1, n) = ones (1, 64) x x (64, n): a matrix-vector product, the
 * kernel a decode step streams its weights through, reading x once. It is the fastest reader
 * ONNX Runtime offers that we found: a ReduceSum over the same bytes takes twice as long on
 * AVX2 (its summing, not the memory, is the limit), which made an earlier floor too high
 * (docs/PERFORMANCE.md #18). */
#include <string.h>

#include "alloc.h"
#include "cache_memory.h"
#include "clock.h"
#include "error.h"
#include "model.h"
#include "onnx.h"
#include "probe.h"
#include "onnx/onnx.pb-c.h"

enum { ROWS = 64 };

static kvc_status floor_session(kvc_model *m, OrtSession **out) {
  kvc__onnx *g = kvc__onnx_new("kvcache_floor");
  if (!g)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory building the floor graph");
  const int32_t f32 = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  const int64_t two = 2, ones_shape[2] = {1, ROWS};
  kvc__onnx_input(g, "x", f32, (kvc__dim[]){{NULL, ROWS}, {"cols", 0}}, 2);
  kvc__onnx_output(g, "y", f32, (kvc__dim[]){{NULL, 1}, {"cols", 0}}, 2);
  kvc__onnx_const_f32(g, "one", 1.0f);
  kvc__onnx_const_i64(g, "ones_shape", ones_shape, 2, &two, 1);
  /* a constant: ONNX Runtime folds the Expand when it loads the graph */
  kvc__onnx_node(g, "Expand", NULL, (const char *[]){"one", "ones_shape"}, 2,
                 (const char *[]){"ones"}, 1, NULL, 0);
  kvc__onnx_node(g, "MatMul", NULL, (const char *[]){"ones", "x"}, 2, (const char *[]){"y"}, 1,
                 NULL, 0);
  return kvc__probe_session(m, g, "creating the floor session", out);
}

/* Binds a float tensor of the given shape over data as the session's input or output. */
static kvc_status bind(const kvc_model *m, OrtIoBinding *binding, int output, const char *name,
                       void *data, const int64_t shape[2]) {
  return kvc__probe_bind(binding, output, name, output ? "floor output" : "floor input",
                         m->cache_mem, data, (size_t)(shape[0] * shape[1]) * sizeof(float), shape,
                         2, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
}

kvc_status kvc_model_floor(kvc_model *model, const int64_t *bytes, int32_t n, int32_t reads,
                           double *ms) {
  if (!model || !bytes || !ms || n <= 0 || reads <= 0)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "kvc_model_floor: expected a model, n >= 1 byte counts, reads >= 1 and ms");
  int64_t most = 0;
  for (int32_t i = 0; i < n; i++) {
    if (bytes[i] < ROWS * (int64_t)sizeof(float))
      return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_model_floor: bytes[%d] = %lld: expected >= %d", i,
                       (long long)bytes[i], ROWS * (int)sizeof(float));
    most = bytes[i] > most ? bytes[i] : most;
  }
  const OrtApi *ort = kvc__ort();
  OrtSession *session = NULL;
  OrtIoBinding *binding = NULL;
  void *buf = NULL, *out = NULL; /* x, and y (one float per column of x) */
  double *times = kvc__calloc((size_t)n * (size_t)reads, sizeof *times);
  kvc_status s =
      times ? floor_session(model, &session) : kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  /* where the cache lives, on the pages it and the weights are on (huge where granted) */
  if (!s)
    s = kvc__cache_memory(model, (size_t)most, "the floor's buffer", &buf);
  if (!s)
    s = kvc__cache_memory(model, (size_t)(most / ROWS), "the floor's output buffer", &out);
  if (!s && kvc__cache_on_host(model))
    memset(buf, 0, (size_t)most); /* resident, like the weights */
  if (!s)
    s = kvc__ort_check(ort->CreateIoBinding(session, &binding), "floor binding");
  /* Rounds of one read per byte count, so that the machine's drift hits every count alike;
   * as many untimed rounds first, to bring the buffer into the caches, as the weights are
   * for a decode step that follows another. */
  for (int32_t r = -reads; r < reads && !s; r++) {
    for (int32_t i = 0; i < n && !s; i++) {
      const int64_t cols = bytes[i] / (int64_t)sizeof(float) / ROWS;
      s = bind(model, binding, 0, "x", buf, (int64_t[]){ROWS, cols});
      if (!s)
        s = bind(model, binding, 1, "y", out, (int64_t[]){1, cols});
      double t = kvc__now_ms();
      if (!s)
        s = kvc__ort_check(ort->RunWithBinding(session, NULL, binding), "floor run");
      if (r >= 0)
        times[(size_t)i * reads + r] = kvc__now_ms() - t;
    }
  }
  if (!s)
    kvc__probe_medians(times, n, reads, ms);
  if (binding)
    ort->ReleaseIoBinding(binding);
  kvc__cache_memory_free(model, buf, (size_t)most);
  kvc__cache_memory_free(model, out, (size_t)(most / ROWS));
  if (session)
    ort->ReleaseSession(session);
  kvc__free(times);
  return s;
}
