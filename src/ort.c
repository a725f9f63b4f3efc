/* ort.c: ONNX Runtime API table and status conversion. */
#include "ort.h"

#include <stdlib.h>
#include <threads.h>

#include "error.h"

static const OrtApi *api;
static once_flag api_once = ONCE_FLAG_INIT;
static OrtEnv *env;
static OrtStatus *env_status;
static once_flag env_once = ONCE_FLAG_INIT;

static void load_api(void) {
  api = OrtGetApiBase()->GetApi(ORT_API_VERSION);
}

const OrtApi *kvc__ort(void) {
  call_once(&api_once, load_api);
  return api;
}

kvc_status kvc__ort_init(void) {
  if (kvc__ort())
    return KVC_OK;
  return kvc__fail(KVC_ERR_RUNTIME,
                   "ONNX Runtime %s does not serve API version %d (kvcache's header); "
                   "use a runtime >= 1.%d",
                   OrtGetApiBase()->GetVersionString(), ORT_API_VERSION, ORT_API_VERSION);
}

static kvc_status status_of(OrtErrorCode code) {
  switch (code) {
  case ORT_OK:
    return KVC_OK;
  case ORT_INVALID_ARGUMENT:
    return KVC_ERR_INVALID_ARG;
  case ORT_NO_SUCHFILE:
    return KVC_ERR_IO;
  case ORT_NO_MODEL:
  case ORT_INVALID_PROTOBUF:
  case ORT_INVALID_GRAPH:
  case ORT_MODEL_LOADED:
    return KVC_ERR_MODEL;
  case ORT_NOT_IMPLEMENTED:
  case ORT_EP_FAIL:
    return KVC_ERR_UNSUPPORTED;
  default:
    return KVC_ERR_RUNTIME;
  }
}

kvc_status kvc__ort_check(OrtStatus *st, const char *what) {
  if (!st)
    return KVC_OK;
  const OrtApi *ort = kvc__ort();
  kvc_status status = status_of(ort->GetErrorCode(st));
  if (status == KVC_OK) /* an OrtStatus with ORT_OK is still a failure report */
    status = KVC_ERR_RUNTIME;
  kvc__fail(status, "%s: %s", what, ort->GetErrorMessage(st));
  ort->ReleaseStatus(st);
  return status;
}

kvc_status kvc__ort_check_as(OrtStatus *st, kvc_status status, const char *what) {
  if (!st)
    return KVC_OK;
  kvc__ort_check(st, what); /* the message; the status is the caller's */
  return status;
}

static void discard_log(void *param, OrtLoggingLevel severity, const char *category,
                        const char *logid, const char *code_location, const char *message) {
  (void)param, (void)severity, (void)category, (void)logid, (void)code_location, (void)message;
}

/* ONNX Runtime's Linux builds (1.30) carry Microsoft's usage telemetry, on by default: making
 * the environment writes a device id and an event database under
 * $XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime, and threads wake every few seconds
 * to upload what the sessions report (docs/SOAK.md measured their memory). A library inside
 * someone else's program should not start that unasked, so kvcache turns it off unless the
 * program has chosen: 1.30 reads ORT_DISABLE_TELEMETRY, later sources ORT_TELEMETRY_DISABLED;
 * if either is set it is the program's choice, else both are set to 1. The runtime reads them
 * once, when the environment is made; if setenv fails (no memory) the default stands. */
static void telemetry_off_unless_chosen(void) {
  if (getenv("ORT_DISABLE_TELEMETRY") || getenv("ORT_TELEMETRY_DISABLED"))
    return;
  (void)setenv("ORT_DISABLE_TELEMETRY", "1", 0);
  (void)setenv("ORT_TELEMETRY_DISABLED", "1", 0);
}

static void make_env(void) {
  telemetry_off_unless_chosen();
  env_status =
      api->CreateEnvWithCustomLogger(discard_log, NULL, ORT_LOGGING_LEVEL_WARNING, "kvcache", &env);
}

kvc_status kvc__ort_env(OrtEnv **out) {
  kvc_status s = kvc__ort_init();
  if (s)
    return s;
  call_once(&env_once, make_env);
  if (env_status) /* kept: every later call reports the same failure */
    return kvc__fail(KVC_ERR_RUNTIME, "creating the ONNX Runtime environment: %s",
                     api->GetErrorMessage(env_status));
  *out = env;
  return KVC_OK;
}

void kvc__ort_ignore(OrtStatus *st) {
  if (st)
    kvc__ort()->ReleaseStatus(st);
}

kvc_status kvc__view(const OrtMemoryInfo *mem, void *data, size_t bytes, const int64_t *shape,
                     size_t rank, ONNXTensorElementDataType type, OrtValue **out) {
  return kvc__ort_check_as(
      kvc__ort()->CreateTensorWithDataAsOrtValue(mem, data, bytes, shape, rank, type, out),
      KVC_ERR_RUNTIME, "creating a tensor view");
}

void kvc__release_value(OrtValue **v) {
  if (*v)
    kvc__ort()->ReleaseValue(*v);
  *v = NULL;
}

kvc_status kvc__bind(OrtIoBinding *binding, int output, const char *name, const OrtMemoryInfo *mem,
                     void *data, size_t bytes, const int64_t *shape, size_t rank,
                     ONNXTensorElementDataType type) {
  const OrtApi *ort = kvc__ort();
  OrtValue *v = NULL;
  kvc_status s = kvc__view(mem, data, bytes, shape, rank, type, &v);
  if (!s)
    s = kvc__ort_check_as(output ? ort->BindOutput(binding, name, v)
                                 : ort->BindInput(binding, name, v),
                          KVC_ERR_RUNTIME, name);
  kvc__release_value(&v); /* the binding keeps its own reference */
  return s;
}
