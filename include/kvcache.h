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
#define KVCACHE_VERSION       "0.1.0"

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
  int api_version;         /* ORT_API_VERSION of the header kvcache was compiled against */
  const char *ort_version; /* version string of the loaded runtime; static storage */
  char library_path[4096]; /* file the runtime was loaded from ("" if unknown) */
  char providers[512];     /* available execution providers, comma-separated */
} kvc_runtime_info;

/* Fill *info from the loaded ONNX Runtime. Fails with KVC_ERR_RUNTIME when the runtime is
 * older than the header's API version. */
kvc_status kvc_runtime_info_get(kvc_runtime_info *info);

/* ---------------------------------------------------------------------------------------
 * Model builder: writes the seed's decoder (a small GPT-style transformer with explicit
 * KV-cache inputs and outputs) as DIR/model.onnx + DIR/model.onnx.data + DIR/config.json.
 * Standard ONNX ops only (opset 17, IR version 8).
 * ------------------------------------------------------------------------------------- */

/* I/O naming convention of a decoder graph.
 *  SEED: input_ids, position_ids, past_key_{i}, past_value_{i} -> logits, present_key_{i}, ...
 *  HF:   input_ids, attention_mask, position_ids, past_key_values.{i}.key/.value
 *        -> logits, present.{i}.key/.value  (Hugging Face Optimum / onnxruntime-genai) */
typedef enum kvc_naming { KVC_NAMING_SEED = 0, KVC_NAMING_HF = 1 } kvc_naming;

typedef struct kvc_build_params {
  int32_t layers;      /* decoder blocks; default 4 */
  int32_t heads;       /* attention heads; default 4 */
  int32_t head_dim;    /* size of one head; default 64 (hidden = heads * head_dim) */
  int32_t vocab_size;  /* default 1000 */
  int32_t max_seq_len; /* positions the model knows (learned position embedding); default 512 */
  uint64_t seed;       /* weights are a pure function of the sizes and this; default 1 */
  kvc_naming naming;   /* default KVC_NAMING_SEED */
} kvc_build_params;

/* The seed's model: 4 layers, 4 heads of 64, vocabulary 1000, 512 positions, seed 1. */
kvc_build_params kvc_build_default_params(void);

/* Number of parameters (floats) a model with these sizes has; 0 if a size is invalid. */
int64_t kvc_build_param_count(const kvc_build_params *params);

/* Write the model into directory `dir` (created if missing; its parent must exist).
 * The three files are written under temporary names and renamed into place, so a failure
 * leaves no partial model behind. Same params -> byte-identical files.
 * Returns KVC_ERR_INVALID_ARG naming the field for a size <= 0 or beyond the limits
 * (layers, heads <= 256; head_dim <= 1024; vocab_size, max_seq_len <= 1048576;
 * at most 2^31 parameters), KVC_ERR_IO naming the path it could not write. */
kvc_status kvc_build_model(const char *dir, const kvc_build_params *params);

#ifdef __cplusplus
}
#endif
#endif /* KVCACHE_H */
