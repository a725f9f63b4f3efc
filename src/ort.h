/* ort.h: the one place where ONNX Runtime's C API meets kvcache: the API table, OrtStatus
 * turned into kvc_status + message, and tensors that view kvcache's buffers. */
#ifndef KVC_ORT_H
#define KVC_ORT_H

#include <onnxruntime_c_api.h>

#include "kvcache.h"

/* The API table for ORT_API_VERSION, or NULL when the loaded runtime is older than the
 * header (kvc__ort_init says so in kvc_last_error()). */
const OrtApi *kvc__ort(void);

/* KVC_OK when the API table is available; KVC_ERR_RUNTIME with a message otherwise. */
kvc_status kvc__ort_init(void);

/* Turn `st` into a kvc_status. NULL is KVC_OK. Otherwise the message becomes
 * "<what>: <ONNX Runtime's message>", the OrtStatus is released, and the ORT error code
 * picks the status (missing file -> KVC_ERR_IO, bad graph -> KVC_ERR_MODEL, ...). */
kvc_status kvc__ort_check(OrtStatus *st, const char *what);

/* As kvc__ort_check, but any failure becomes `status`: for calls whose failure means one
 * thing whatever code ONNX Runtime picks (a Run on inputs kvcache has checked fails for
 * a runtime reason -> KVC_ERR_RUNTIME; an allocation of a valid size -> KVC_ERR_NO_MEMORY). */
kvc_status kvc__ort_check_as(OrtStatus *st, kvc_status status, const char *what);

/* Release the status of a cleanup call whose failure nothing could act on
 * (AllocatorFree of memory we own, say). */
void kvc__ort_ignore(OrtStatus *st);

/* The process's one OrtEnv (ONNX Runtime wants one per process), made on first use and
 * kept for the life of the process. Its log messages are discarded: the library never
 * prints. */
kvc_status kvc__ort_env(OrtEnv **env);

/* An OrtValue viewing `data` (no copy). */
kvc_status kvc__view(const OrtMemoryInfo *mem, void *data, size_t bytes, const int64_t *shape,
                     size_t rank, ONNXTensorElementDataType type, OrtValue **out);

/* Bind a view of `data` as input (output = 0) or output `name` of `binding`. */
kvc_status kvc__bind(OrtIoBinding *binding, int output, const char *name, const OrtMemoryInfo *mem,
                     void *data, size_t bytes, const int64_t *shape, size_t rank,
                     ONNXTensorElementDataType type);

/* Release *v if set, and clear it. */
void kvc__release_value(OrtValue **v);

#endif
