/* model.h: an open model (shared, read-only after kvc_model_open) and its graph signature. */
#ifndef KVC_MODEL_H
#define KVC_MODEL_H

#include <pthread.h>
#include <stdint.h>

#include "attention_kernel.h"
#include "graph_file.h"
#include "kvcache.h"
#include "ort.h"

enum { KVC_NAME_CAP = 128 };

/* Names of one layer's cache tensors in the graph. */
typedef struct kvc__layer_names {
  char past[2][KVC_NAME_CAP];    /* [0] key, [1] value */
  char present[2][KVC_NAME_CAP]; /* [0] key, [1] value */
} kvc__layer_names;

/* What the graph asks for and gives, read from the session's inputs and outputs. */
typedef struct kvc__signature {
  kvc_naming naming;
  int layers, kv_heads, head_dim, vocab;
  int has_attention_mask, has_position_ids;
  int has_seqlens;        /* seqlens_k and total_sequence_length are inputs (GroupQueryAttention) */
  int in_place;           /* present may share past's buffer, written in place: has_seqlens, or
                           * GroupQueryAttention computing them from attention_mask (genai layout) */
  int total_rank;         /* rank of total_sequence_length: 0 (scalar) or 1 */
  int has_logits_to_keep; /* an input, or an initializer a run may override (build-model's) */
  int keep_rank;          /* its rank: 0 (scalar) or 1 */
  ONNXTensorElementDataType ids_type;   /* of input_ids, position_ids and attention_mask */
  ONNXTensorElementDataType cache_type; /* of every past and present: float, float16, int8 */
  int cache_dim;           /* their last dimension: head_dim, or head_dim + 4 for int8 (q8.h) */
  size_t row_bytes;        /* of one position of one head in the cache */
  kvc__layer_names *names; /* layers entries, owned */
} kvc__signature;

/* Sizes the graph may leave symbolic, from genai_config.json (`source`, named in messages);
 * 0 = not given. One given must equal the graph's where the graph fixes it. */
typedef struct kvc__signature_hints {
  int32_t kv_heads, head_dim;
  const char *source;
} kvc__signature_hints;

/* Read and check the signature of `session`; on failure the message names the tensor. */
kvc_status kvc__signature_read(OrtSession *session, const kvc__signature_hints *hints,
                               kvc__signature *sig);
void kvc__signature_free(kvc__signature *sig);

/* The kernels' kind of a cache of ONNX element type `type` (float, float16, int8), and its
 * name ("float32", "float16", "8-bit ...") for messages. */
kvc__cache_kind kvc__cache_kind_of(ONNXTensorElementDataType type);
const char *kvc__cache_type_name(ONNXTensorElementDataType type);

struct kvc_model {
  kvc_model_info info;
  kvc_model_params params; /* as opened; provider points at info.provider */
  kvc__signature sig;
  kvc_log_fn log;
  void *log_user;
  OrtSession *session;
  OrtMemoryInfo *host_mem;   /* inputs and logits live on the host */
  OrtMemoryInfo *cache_mem;  /* the KV cache lives here: host on CPU, device on CUDA */
  OrtAllocator *cache_alloc; /* for cache_mem on a GPU: the session's (NULL on the CPU) */
  int owns_cache_alloc;      /* 1: the session's, released with the model */
  int attention_heads;       /* query heads (num_heads of its attention nodes; else kv_heads) */
  /* the graph's directory and the external data files its initializers name (inside it) */
  char dir[4096];
  char weight_files[KVC_MAX_WEIGHT_FILES][256];
  int n_weight_files;
  /* the fingerprint of the cache layout and the weights (state files), made on first use */
  pthread_mutex_t fingerprint_lock;
  int has_fingerprint;
  uint64_t fingerprint;
};

/* *out = the model's fingerprint: a hash of its cache layout (layers, kv heads, head size,
 * vocabulary; not the cache's type, which a state records) and of its weights: the external data
 * files its initializers name, whatever their names (not other files that merely look like them),
 * or the graph file when it names none; computed once. (Small initializers kept inside a graph that
 * also has external data are not covered.) KVC_ERR_IO reading them. */
kvc_status kvc__model_fingerprint(kvc_model *m, uint64_t *out);

/* Session options for `params` (threads, optimisation level, the provider when cuda). */
kvc_status kvc__session_options(const kvc_model_params *params, int cuda, OrtSessionOptions **out);

/* The maximum length config.json's text (size bytes) states (max_seq_len, n_positions or
 * max_position_embeddings; *out 0 when none), and in `source` where; its "weights" note into
 * weights (cap_w bytes; "" when none or not a string); KVC_ERR_MODEL naming `path` for text
 * that is not JSON or a length that is not a whole number in 1..2^24. */
kvc_status kvc__config_parse(const char *path, const char *text, size_t size, int32_t *out,
                             char *source, size_t cap, char *weights, size_t cap_w);

/* Log through the model's callback, if any (printf-style). */
void kvc__log(const kvc_model *m, int level, const char *fmt, ...);

#endif
