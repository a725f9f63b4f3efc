/* probe.c: see probe.h. */
#include "probe.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

kvc_status kvc__probe_session(kvc_model *m, kvc__onnx *g, const char *what, OrtSession **out) {
  uint8_t *bytes = NULL;
  size_t size = 0;
  kvc_status s = kvc__onnx_pack(g, &bytes, &size);
  kvc__onnx_free(g);
  OrtSessionOptions *opts = NULL;
  OrtEnv *env = NULL;
  if (!s)
    s = kvc__ort_env(&env);
  if (!s)
    s = kvc__session_options(&m->params, strcmp(m->info.provider, "cuda") == 0, &opts);
  if (!s)
    s = kvc__ort_check(kvc__ort()->CreateSessionFromArray(env, bytes, size, opts, out), what);
  if (opts)
    kvc__ort()->ReleaseSessionOptions(opts);
  free(bytes);
  return s;
}

kvc_status kvc__probe_bind(OrtIoBinding *binding, int output, const char *name, const char *what,
                           OrtMemoryInfo *mem, void *data, size_t bytes, const int64_t *shape,
                           size_t rank, ONNXTensorElementDataType type) {
  const OrtApi *ort = kvc__ort();
  OrtValue *v = NULL;
  kvc_status s = kvc__ort_check(
      ort->CreateTensorWithDataAsOrtValue(mem, data, bytes, shape, rank, type, &v), what);
  if (!s)
    s = kvc__ort_check(
        output ? ort->BindOutput(binding, name, v) : ort->BindInput(binding, name, v), what);
  if (v)
    ort->ReleaseValue(v);
  return s;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void kvc__probe_medians(double *times, int32_t n, int32_t reads, double *ms) {
  for (int32_t i = 0; i < n; i++) {
    double *t = times + (size_t)i * (size_t)reads;
    qsort(t, (size_t)reads, sizeof *t, cmp_double);
    ms[i] = reads % 2 ? t[reads / 2] : (t[reads / 2 - 1] + t[reads / 2]) / 2;
  }
}
