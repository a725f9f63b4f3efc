/*
 * kvcache.h: cached autoregressive decoding of ONNX transformer decoders on ONNX Runtime.
 *
 * This header is the manual. Conventions, for every function below:
 *  - Every fallible call returns a kvc_status; KVC_OK is 0. After a failure,
 *    kvc_last_error() says exactly what was wrong (the file, tensor, option or value at
 *    fault and what was expected). The message is per thread.
 *  - The library never prints, never exits and never aborts on bad input.
 *  - Every object made by a kvc_*_new / kvc_*_open call is released by the matching
 *    kvc_*_free, which accepts NULL.
 */
#ifndef KVCACHE_H
#define KVCACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Compile-time version; kvc_version() gives the version of the library actually loaded. */
#define KVCACHE_VERSION_MAJOR 0
#define KVCACHE_VERSION_MINOR 1
#define KVCACHE_VERSION_PATCH 0
#define KVCACHE_VERSION "0.1.0"

/* ---------------------------------------------------------------------------------------
 * Status codes
 * ------------------------------------------------------------------------------------- */
typedef enum kvc_status {
  KVC_OK = 0,              /* success */
  KVC_ERR_INVALID_ARG = 1, /* an argument is NULL, zero, negative or out of range */
  KVC_ERR_IO = 2,          /* a file could not be opened, read or written */
  KVC_ERR_MODEL = 3,       /* a model file or graph does not fit the model contract */
  KVC_ERR_RUNTIME = 4,     /* ONNX Runtime reported a failure */
  KVC_ERR_NO_MEMORY = 5,   /* an allocation failed */
  KVC_ERR_CACHE_FULL = 6,  /* no room left in the KV cache; the sequence is unchanged */
  KVC_ERR_UNSUPPORTED = 7, /* valid, but not supported here (e.g. a provider not built in) */
} kvc_status;

/* Message for the last failure on the calling thread; "" if none yet. The pointer stays
 * valid until the next kvcache call on this thread. Never NULL. */
const char *kvc_last_error(void);

/* Short name of a status ("KVC_ERR_IO"); "unknown status" for values not listed above. */
const char *kvc_status_name(kvc_status status);

/* Version of the loaded library, e.g. "0.1.0". Static storage. */
const char *kvc_version(void);

/* ---------------------------------------------------------------------------------------
 * ONNX Runtime, as loaded
 * ------------------------------------------------------------------------------------- */
typedef struct kvc_runtime_info {
  int api_version;          /* ORT_API_VERSION of the header kvcache was compiled against */
  const char *ort_version;  /* version string of the loaded runtime; static storage */
  char library_path[4096];  /* file the runtime was loaded from ("" if unknown) */
  char providers[512];      /* available execution providers, comma-separated */
} kvc_runtime_info;

/* Fill *info from the loaded ONNX Runtime. Fails with KVC_ERR_RUNTIME when the runtime is
 * older than the header's API version. */
kvc_status kvc_runtime_info_get(kvc_runtime_info *info);

#ifdef __cplusplus
}
#endif
#endif /* KVCACHE_H */
