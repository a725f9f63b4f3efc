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

/* Marks what the shared library exports; everything else in it is hidden. */
#if defined(__GNUC__) && !defined(KVCACHE_STATIC)
#define KVC_API __attribute__((visibility("default")))
#else
#define KVC_API
#endif

/* Marks a name kept for one release after it was renamed: calls compile, with a warning that
 * names the replacement. */
#if defined(__GNUC__)
#define KVC_DEPRECATED(replacement) __attribute__((deprecated("use " replacement)))
#else
#define KVC_DEPRECATED(replacement)
#endif

/* Compile-time version; kvc_version() gives the version of the library actually loaded. */
#define KVCACHE_VERSION_MAJOR 0
#define KVCACHE_VERSION_MINOR 2
#define KVCACHE_VERSION_PATCH 0
#define KVCACHE_VERSION       "0.2.0"

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
  KVC_ERR_NO_SLOT = 8,     /* every slot of the context holds a sequence */
} kvc_status;

/* Message for the last failure on the calling thread; "" if none yet. The pointer stays
 * valid until the next kvcache call on this thread. Never NULL. */
KVC_API const char *kvc_last_error(void);

/* Short name of a status ("KVC_ERR_IO"); "unknown status" for values not listed above. */
KVC_API const char *kvc_status_name(kvc_status status);

/* Version of the loaded library, e.g. "0.2.0". Static storage. */
KVC_API const char *kvc_version(void);

/* ---------------------------------------------------------------------------------------
 * Models
 *
 * A model is an ONNX decoder graph with explicit KV-cache inputs (past_*) and outputs
 * (present_*) in one of the two naming conventions below. Layers, KV heads, head size,
 * vocabulary and optional inputs are read from the graph; the maximum length comes from
 * config.json (max_seq_len, n_positions or max_position_embeddings), genai_config.json
 * (model.context_length), else from the rows of the graph's position table (gathered by
 * position_ids) or rotary cos/sin cache; kvc_model_params.max_seq_len may lower it. A
 * config length above what the graph can address is refused at open.
 *
 * A kvc_model is read-only once open and safe to share between threads.
 * ------------------------------------------------------------------------------------- */
/* I/O naming convention of a decoder graph.
 *  SEED: input_ids, position_ids, past_key_{i}, past_value_{i} -> logits, present_key_{i}, ...
 *  HF:   input_ids, attention_mask, position_ids, past_key_values.{i}.key/.value
 *        -> logits, present.{i}.key/.value  (Hugging Face Optimum / onnxruntime-genai) */
typedef enum kvc_naming { KVC_NAMING_SEED = 0, KVC_NAMING_HF = 1 } kvc_naming;

/* How the builder's graph attends over the cache.
 *  CONCAT: standard ONNX ops; present = Concat(past, new), a new tensor one step longer.
 *  GQA:    ONNX Runtime's contrib ops: com.microsoft.GroupQueryAttention, with inputs
 *          seqlens_k and total_sequence_length, so that past and present may share one
 *          max-length buffer that it writes in place; SkipLayerNormalization for the
 *          residual adds. Same weights and math as CONCAT for the same seed. No
 *          attention_mask input, whatever the naming.
 *  KVCACHE: kvcache's own operator, ai.kvcache.Attention (version 1), in GQA's place: the
 *          same inputs (and the q/k/v bias folded in as a tenth), written in place, with
 *          vectorised kernels that read the cache at memory speed. kvc_model_open registers
 *          it; a plain ONNX Runtime program loads libkvcache_ops (RegisterCustomOps). */
typedef enum kvc_attention {
  KVC_ATTENTION_CONCAT = 0,
  KVC_ATTENTION_GQA = 1,
  KVC_ATTENTION_KVCACHE = 2
} kvc_attention;

/* The builder's architectures.
 *  GPT:   the seed's: LayerNorm, learned position embedding, GELU MLP 4 x hidden wide, biases.
 *  LLAMA: RMSNorm, rotary positions applied inside GroupQueryAttention (cos/sin caches of
 *         max_seq_len rows, base 10000, halves rotated), SwiGLU MLP about 8/3 x hidden wide,
 *         no biases, no position_ids input. Needs attention GQA or KVCACHE. */
typedef enum kvc_arch { KVC_ARCH_GPT = 0, KVC_ARCH_LLAMA = 1 } kvc_arch;

/* How the builder lays out a GQA graph's inputs.
 *  KVCACHE: seqlens_k and total_sequence_length are graph inputs.
 *  GENAI:   onnxruntime-genai's model builder's layout: they are computed inside the graph
 *           from attention_mask (ReduceSum - 1; Shape[1]); the hf naming; the cache's last
 *           dimension symbolic ("kv_cache_dim"); a genai_config.json beside config.json.
 *           Needs attention GQA and naming HF. */
typedef enum kvc_layout { KVC_LAYOUT_KVCACHE = 0, KVC_LAYOUT_GENAI = 1 } kvc_layout;

/* "seed", "hf"; "concat", "gqa", "kvcache"; "gpt", "llama"; "kvcache", "genai". NULL for values not
 * listed above. Static storage. */
KVC_API const char *kvc_naming_name(kvc_naming naming);
KVC_API const char *kvc_attention_name(kvc_attention attention);
KVC_API const char *kvc_arch_name(kvc_arch arch);
KVC_API const char *kvc_layout_name(kvc_layout layout);

typedef struct kvc_model kvc_model;

/* How a sequence keeps its KV cache between calls. */
typedef enum kvc_kv_mode {
  KVC_KV_AUTO = 0,     /* the best mode the graph supports: SHARED where the graph can
                        * write its cache in place, BOUND otherwise */
  KVC_KV_NAIVE = 1,    /* plain Run: ONNX Runtime allocates every present and the logits,
                        * each present becomes the next past (the baseline) */
  KVC_KV_BOUND = 2,    /* IOBinding into two cache buffers per tensor, allocated once at
                        * max_seq_len, used in turn as past and present */
  KVC_KV_UNCACHED = 3, /* no cache: every call recomputes the whole sequence (the oracle) */
  KVC_KV_SHARED = 4,   /* one max-length buffer per cache tensor, bound as both past and
                        * present: the graph writes new positions in place (needs a graph
                        * with seqlens_k and total_sequence_length, e.g. GroupQueryAttention);
                        * rewind is O(1) */
} kvc_kv_mode;
/* "auto", "naive", "bound", "uncached", "shared"; NULL for other values. */
KVC_API const char *kvc_kv_mode_name(kvc_kv_mode mode);

/* What one element of the KV cache is (docs/ATTENTION.md, "Cache types").
 *  AUTO: the type the graph's cache tensors declare (float32 for every graph build-model
 *        writes).
 *  F32:  float32, 4 bytes a value.
 *  F16:  IEEE half precision, 2 bytes a value: keys and values are rounded to the nearest
 *        half (ties to even) as they are written, prefill and recompute included, and widened
 *        exactly when read.
 *  Q8:   8-bit: each position of each K/V head is stored as head size signed codes and one
 *        float scale (max |x| / 127; code = x / scale rounded to nearest even), 8 + 32 / head
 *        size bits a value (8.5 at head size 64, as llama.cpp's q8_0). Written once as each
 *        token arrives, prefill and recompute included; read as code x scale.
 * F16 and Q8 need a graph whose attention is kvcache's operator (build-model --attention
 * kvcache): kvc_model_open retypes its cache tensors as it loads it (the file is not
 * changed). A graph whose attention is ONNX Runtime's (GroupQueryAttention, Concat) keeps the
 * type it declares; asking it for another is KVC_ERR_UNSUPPORTED. */
typedef enum kvc_kv_type {
  KVC_KV_TYPE_AUTO = 0,
  KVC_KV_TYPE_F32 = 1,
  KVC_KV_TYPE_F16 = 2,
  KVC_KV_TYPE_Q8 = 3,
} kvc_kv_type;
/* "auto", "f32", "f16", "q8"; NULL for other values. */
KVC_API const char *kvc_kv_type_name(kvc_kv_type type);

/* Log levels passed to kvc_log_fn. */
enum { KVC_LOG_DEBUG = 0, KVC_LOG_INFO = 1, KVC_LOG_WARNING = 2 };
/* Called from the thread doing the work; `message` is valid only during the call. */
typedef void (*kvc_log_fn)(void *user, int level, const char *message);

/* More intra-op threads than this many per online CPU are refused: they only contend, and
 * thousands of them exhaust the process (ONNX Runtime aborts creating them). */
#define KVC_THREADS_PER_CPU 4

typedef struct kvc_model_params {
  const char *provider;     /* "cpu" (default) or "cuda"; the environment variable
                             * KVCACHE_FORCE_CPU=1 forces "cpu" */
  int32_t device_id;        /* GPU ordinal for "cuda"; default 0 */
  int32_t intra_op_threads; /* ONNX Runtime intra-op threads; 0 (default) = its default;
                             * at most KVC_THREADS_PER_CPU x the online CPUs */
  int32_t max_seq_len;      /* cache capacity in tokens; 0 (default) = the model's maximum */
  kvc_kv_mode kv_mode;      /* default mode of this model's sequences; default AUTO */
  kvc_log_fn log;           /* optional; NULL (default) = silent */
  void *log_user;           /* passed to log */
  kvc_kv_type kv_type;      /* the cache's element type; default AUTO (the graph's) */
} kvc_model_params;

KVC_API kvc_model_params kvc_model_default_params(void);

/* Open a model. `path` is a model directory (one .onnx file, external weights beside it,
 * config.json) or an .onnx file with config.json beside it. params NULL = defaults.
 * On success *out owns the model; release with kvc_model_free().
 * Errors:
 *   KVC_ERR_INVALID_ARG  NULL, bad params (an unknown provider, intra_op_threads above
 *                        the bound, max_seq_len above the model's, kv_mode SHARED on a
 *                        graph that cannot write in place)
 *   KVC_ERR_IO           no such path, no .onnx in the directory, a graph, its external
 *                        weights or a config that is not a regular file (a FIFO, a
 *                        directory: refused before reading, never waited on), a config over
 *                        64 MiB, a read error
 *   KVC_ERR_MODEL        a graph or config that does not fit the contract (the message
 *                        names the tensor or key: a length that is not a whole number, a
 *                        config length above the graph's position table), or one ONNX
 *                        Runtime cannot load, such as a truncated file or missing external
 *                        weights (its reason quoted)
 *   KVC_ERR_NO_MEMORY    on the CPU provider, a graph and weights larger than the memory
 *                        the process may use (physical memory, a cgroup's memory.max, or
 *                        the environment variable KVCACHE_MEMORY_LIMIT in bytes), refused
 *                        before ONNX Runtime reads them
 *   KVC_ERR_UNSUPPORTED  a kv_type the graph's attention cannot take (see kvc_kv_type), a
 *                        bfloat16 cache; a provider this ONNX Runtime cannot create
 *   KVC_ERR_RUNTIME      anything else ONNX Runtime reports */
KVC_API kvc_status kvc_model_open(const char *path, const kvc_model_params *params,
                                  kvc_model **out);

/* Release a model. Its sequences must have been freed before. NULL is a no-op. */
KVC_API void kvc_model_free(kvc_model *model);

/* The most end-of-sequence ids a model may state. */
enum { KVC_MAX_EOS = 8 };

/* Generation defaults a model directory states: genai_config.json's "search" section, else
 * generation_config.json's keys of the same names, or these values without either. */
typedef struct kvc_search {
  int32_t max_length;       /* total tokens (prompt + generated); 0 = not stated */
  int do_sample;            /* 0 (default): greedy; 1: sample with the values below */
  float temperature;        /* 1 */
  int32_t top_k;            /* 50 (0 = all) */
  float top_p;              /* 1 */
  float repetition_penalty; /* 1 = none; kvc_search_sampler_params passes it on */
  float min_p;              /* 0 = off (see kvc_sampler_params.min_p) */
} kvc_search;

typedef struct kvc_model_info {
  kvc_naming naming;             /* detected I/O naming convention */
  int32_t layers;                /* number of past/present pairs */
  int32_t kv_heads;              /* heads of the cache tensors */
  int32_t head_dim;              /* head size: the cache tensors' last dimension (an 8-bit
                                  * cache's is 4 more: each row's scale) */
  int32_t vocab_size;            /* last dimension of logits */
  int32_t max_seq_len;           /* cache capacity in tokens */
  int32_t model_max_seq_len;     /* the model's own maximum (config, else graph), 0 if unknown */
  int32_t graph_max_seq_len;     /* positions the graph's position table or rotary cache
                                  * holds; 0 when the graph does not say */
  int has_attention_mask;        /* graph input attention_mask exists */
  int has_position_ids;          /* graph input position_ids exists */
  int has_seqlens;               /* graph inputs seqlens_k and total_sequence_length exist */
  int32_t matmuls;               /* MatMul and MatMulNBits nodes of the graph */
  int32_t quantized_matmuls;     /* of which MatMulNBits */
  int32_t weight_bits;           /* the MatMulNBits' bits (the fewest if they differ); 32 when
                                  * none is quantised */
  int32_t weight_accuracy_level; /* the MatMulNBits' accuracy_level (the largest if they
                                  * differ; 4: int8 activations, 0: float); -1 when none */
  int input_ids_int32;           /* input_ids is int32 (else int64) */
  kvc_kv_mode kv_mode;           /* the mode its sequences get by default (never AUTO) */
  int64_t param_bytes;           /* bytes of the model files (graph + external weights) */
  int64_t cache_bytes_per_token; /* keys + values of all layers for one position */
  char provider[16];             /* "cpu" or "cuda" */
  char onnx_path[4096];          /* the .onnx file that was loaded */
  kvc_attention attention;       /* KVCACHE when its attention nodes are kvcache's operator;
                                  * else GQA when the graph takes seqlens_k and
                                  * total_sequence_length (its present may share past's
                                  * buffer), CONCAT otherwise (present is a new tensor) */
  int batches;                   /* 1 when one run can decode many sequences at their own
                                  * lengths (a GQA graph in SHARED mode); 0 when a batch
                                  * call runs its sequences one after another */
  char attention_note[256];      /* why the graph can or cannot write its cache in place */
  char attention_kernel[16];     /* KVCACHE attention: the kernel its sessions run ("avx512",
                                  * "avx2", "portable": the CPU's best, or KVCACHE_ATTENTION's
                                  * choice, narrowed by the head size); "" for other graphs */
  /* From genai_config.json (onnxruntime-genai's), when the model's directory has one: */
  char genai_config[4096]; /* its path; "" when there is none */
  int32_t bos_token_id;    /* -1 when not stated */
  int32_t pad_token_id;    /* -1 when not stated */
  int32_t n_eos;           /* kvc_generate stops after any of eos_token_ids[0..n_eos) */
  int32_t eos_token_ids[KVC_MAX_EOS];
  kvc_search search;      /* generation defaults (the "search" section) */
  char matmul_kernel[16]; /* kvcache's int8-activation products (quantize's accuracy_level 4):
                           * the kernel its sessions run ("avx512" (VNNI), "avx2", "portable":
                           * the CPU's best, or KVCACHE_MATMUL's choice); "" when the graph
                           * has none */
  char weights_note[160]; /* what config.json says of the weights ("weights"): kvcache
                           * build-model writes that they are random; "" when it says nothing */
  int64_t lookup_bytes;   /* of param_bytes, the tables a decode step reads one row of (the
                           * embedding, a learned position table: initializers Gather reads);
                           * a step streams param_bytes - lookup_bytes of weights */
  int64_t quantized_macs; /* multiply-adds per token of the MatMulNBits nodes: the sum
                           * of their K x N (the logits' at every position run) */
  kvc_kv_type kv_type;    /* the cache's element type (never AUTO): cache_bytes_per_token
                           * and state files follow it */
} kvc_model_info;

/* Describe an open model. */
KVC_API kvc_status kvc_model_get_info(const kvc_model *model, kvc_model_info *info);

/* The path of file `name` (e.g. "tokenizer.json") of the model's directory, written to path
 * (cap bytes, NUL included), for reading files that come with the model as kvcache reads its
 * own: the name must stay inside the model (no "..", not absolute, and with links followed,
 * inside the directory or the one that holds the real .onnx file, as a Hugging Face cache's
 * links lead). Errors: KVC_ERR_INVALID_ARG (NULL, cap too small), KVC_ERR_IO (no such file,
 * or it leads outside the model: the message says which). */
KVC_API kvc_status kvc_model_file(const kvc_model *model, const char *name, char *path, size_t cap);

/* ---------------------------------------------------------------------------------------
 * Contexts: many sequences over one cache
 *
 * A context owns the KV cache of `slots` sequences, allocated once when it is made, and the
 * buffers and binding of the runs over it. A sequence made in a context takes a free slot and
 * gives it back when freed; sequences join and leave between any two calls without touching
 * each other's caches and without allocating cache memory. kvc_seq_append_batch() appends to
 * several sequences of one context in one ONNX Runtime run where the graph allows it (see
 * kvc_model_info.batches). A context and its sequences belong to one thread at a time;
 * different contexts of one model may run on different threads at once.
 * ------------------------------------------------------------------------------------- */
typedef struct kvc_ctx kvc_ctx;
typedef struct kvc_seq kvc_seq;

enum { KVC_MAX_SLOTS = 4096 };

typedef struct kvc_ctx_params {
  int32_t slots;       /* sequences the context holds at once, 1..KVC_MAX_SLOTS; default 1 */
  kvc_kv_mode kv_mode; /* AUTO (default) = the model's kv_mode */
} kvc_ctx_params;

KVC_API kvc_ctx_params kvc_ctx_default_params(void);

/* A context on `model` (which must outlive it): the cache of every slot (max_seq_len tokens
 * each; SHARED keeps one more position per slot) is allocated and touched here.
 * params NULL = defaults. Errors: KVC_ERR_INVALID_ARG (slots out of range, an unknown mode,
 * SHARED on a graph that cannot share its cache), KVC_ERR_NO_MEMORY (also for a host cache
 * larger than the machine's memory, refused before allocating), KVC_ERR_RUNTIME. */
KVC_API kvc_status kvc_ctx_new(kvc_model *model, const kvc_ctx_params *params, kvc_ctx **out);

/* Release a context and its cache. Sequences still in it are not freed: they are detached
 * (their cache is gone; every call on them fails with KVC_ERR_INVALID_ARG saying so, and
 * kvc_seq_len gives 0), and each must still be freed with kvc_seq_free, before or after.
 * NULL is a no-op. */
KVC_API void kvc_ctx_free(kvc_ctx *ctx);

typedef struct kvc_ctx_info {
  int32_t slots;       /* as made */
  int32_t slots_used;  /* slots holding a sequence now */
  int32_t max_seq_len; /* tokens per slot */
  kvc_kv_mode kv_mode; /* never AUTO */
  int batches;         /* one run decodes many of its sequences (see kvc_seq_append_batch) */
  int64_t cache_bytes; /* KV cache allocated for all slots (0 for NAIVE and UNCACHED) */
} kvc_ctx_info;

KVC_API kvc_status kvc_ctx_get_info(const kvc_ctx *ctx, kvc_ctx_info *info);

/* ---------------------------------------------------------------------------------------
 * Sequences
 *
 * A sequence is one stream of tokens: a slot of a context, a length and its tokens. Every
 * buffer it needs (cache, inputs, logits) is allocated when its context is made; appending
 * afterwards allocates nothing in kvcache (ONNX Runtime's own per-run bookkeeping aside).
 * A sequence belongs to one thread at a time, with its context; sequences of different
 * contexts (those of kvc_seq_new each have their own) may run on different threads at once.
 * ------------------------------------------------------------------------------------- */
typedef struct kvc_seq_params {
  kvc_kv_mode kv_mode; /* AUTO (default) = the model's kv_mode */
} kvc_seq_params;

KVC_API kvc_seq_params kvc_seq_default_params(void);

/* New empty sequence on `model` (which must outlive it), with a context of one slot of its
 * own (made and freed with it). params NULL = defaults.
 * Errors: KVC_ERR_INVALID_ARG (also: SHARED on a graph that cannot share its cache),
 * KVC_ERR_NO_MEMORY, KVC_ERR_RUNTIME. */
KVC_API kvc_status kvc_seq_new(kvc_model *model, const kvc_seq_params *params, kvc_seq **out);

/* New empty sequence in the lowest free slot of `ctx` (its sequences batch together and share
 * its cache); release with kvc_seq_free(), which gives the slot back. Allocates only the
 * sequence's handle and its metrics (not cache memory). KVC_ERR_NO_SLOT when every slot
 * holds a sequence; the context is unchanged. */
KVC_API kvc_status kvc_seq_new_in(kvc_ctx *ctx, kvc_seq **out);

/* Release a sequence: its slot goes back to its context (and a context of its own is freed).
 * NULL is a no-op. */
KVC_API void kvc_seq_free(kvc_seq *seq);

/* The context the sequence lives in (its own, for kvc_seq_new). */
KVC_API kvc_ctx *kvc_seq_ctx(const kvc_seq *seq);

/* The slot the sequence holds in its context: 0 .. slots - 1; -1 for NULL or a sequence whose
 * context was freed. A run of kvc_seq_append_batch spans the slots from its lowest to its
 * highest, and a slot in between that is not in the call costs that run as much as one that
 * is: a caller keeping more sequences than it runs together (finished ones kept for their
 * prefix, say) keeps those that run in neighbouring slots (sequences take the lowest free
 * slot: kvc_seq_new_in, kvc_seq_fork). */
KVC_API int32_t kvc_seq_slot(const kvc_seq *seq);

/* Run the model on n new tokens at positions len .. len + n - 1 (a prefill when the
 * sequence is empty, a decode step after), extending the cache by n.
 * Errors, all leaving the sequence exactly as it was:
 *   KVC_ERR_INVALID_ARG  seq or tokens NULL, n <= 0, a token outside [0, vocab_size)
 *   KVC_ERR_CACHE_FULL   len + n > max_seq_len
 *   KVC_ERR_RUNTIME      ONNX Runtime failed */
KVC_API kvc_status kvc_seq_append(kvc_seq *seq, const int32_t *tokens, int32_t n);

/* kvc_seq_append, also writing the logits of every one of the n positions into all_logits
 * (n * vocab_size floats, the caller's; NULL = not wanted), for scoring and perplexity.
 * After a failure its contents are unspecified. */
KVC_API kvc_status kvc_seq_append_all(kvc_seq *seq, const int32_t *tokens, int32_t n,
                                      float *all_logits);

/* One sequence's part of kvc_seq_append_batch. */
typedef struct kvc_batch_item {
  kvc_seq *seq;
  const int32_t *tokens; /* n_tokens >= 1 token ids */
  int32_t n_tokens;
  float *all_logits; /* NULL, or n_tokens * vocab_size floats for every position's logits */
} kvc_batch_item;

/* Append to n sequences of one context, each its own tokens at its own length, and give each
 * its logits (kvc_seq_logits). Where the context batches, the sequences' last tokens run
 * together in one ONNX Runtime run over the slot range they span (slots in that range not in
 * the call ride along with a placeholder that leaves their caches as they were). The earlier
 * tokens of multi-token items (prompts) run first: on graphs with kvcache's attention
 * operator several sequences' together, in one run over their slot range with each row
 * padded to the longest, where every row of the range has room for that and the padding and
 * rows not in the call cost fewer tokens than the runs saved (a run counted as 16 tokens);
 * else each sequence's alone. Where the context does not batch, the sequences run one after
 * another. Either way each sequence's logits are those it would get alone, within the 1e-4
 * of kvcache verify (float products over more rows may round differently). The call
 * allocates nothing in kvcache.
 * All or nothing: on any error no sequence changes (lengths, caches, logits).
 * Errors: KVC_ERR_INVALID_ARG naming the item (NULL, n < 1, no tokens, a token outside
 * [0, vocab_size), the same sequence twice, sequences of different contexts),
 * KVC_ERR_CACHE_FULL naming the item whose tokens do not fit, KVC_ERR_RUNTIME. */
KVC_API kvc_status kvc_seq_append_batch(const kvc_batch_item *items, int32_t n);

/* Logits (vocab_size floats) after the last appended token; NULL when the sequence is empty
 * or was rewound or reset since. Valid until the next call that changes the sequence. */
KVC_API const float *kvc_seq_logits(const kvc_seq *seq);

/* Number of tokens in the sequence (and positions in its cache); 0 for NULL. */
KVC_API int32_t kvc_seq_len(const kvc_seq *seq);

/* The mode the sequence runs in (never AUTO for a usable sequence; AUTO for NULL or a
 * sequence whose context was freed). */
KVC_API kvc_kv_mode kvc_seq_kv_mode(const kvc_seq *seq);

/* Empty the sequence; keeps its buffers. */
KVC_API kvc_status kvc_seq_reset(kvc_seq *seq);

/* Keep the first `len` tokens ([0, len)) and drop the rest: appending afterwards gives the
 * logits the sequence would give had the dropped tokens never been appended.
 * Cost: SHARED and UNCACHED change a length (O(1)); BOUND repacks the kept positions in
 * place; NAIVE copies them into new tensors.
 * KVC_ERR_INVALID_ARG when len < 0 or len > kvc_seq_len(seq); KVC_ERR_UNSUPPORTED for a
 * BOUND cache in device memory (reset and append again instead). */
KVC_API kvc_status kvc_seq_rewind(kvc_seq *seq, int32_t len);

/* The sequence's tokens, kvc_seq_len of them (NULL for a NULL sequence); valid until the
 * sequence next changes. */
KVC_API const int32_t *kvc_seq_tokens(const kvc_seq *seq);

/* Make the sequence hold exactly tokens[0, n) (n >= 1), its logits those of the last: the
 * longest prefix it already holds is kept (at most n - 1 positions: the last token is always
 * run again, for its logits), the rest dropped (kvc_seq_rewind) and the remainder appended.
 * This is how a conversation's next turn costs only its own tokens: render the whole
 * conversation, assign it. *reused (NULL: not wanted) receives the positions kept. Errors:
 * KVC_ERR_INVALID_ARG (NULL, n < 1), and those of kvc_seq_rewind and kvc_seq_append; after a
 * failed append the sequence holds the kept prefix. */
KVC_API kvc_status kvc_seq_assign(kvc_seq *seq, const int32_t *tokens, int32_t n, int32_t *reused);

/* A new sequence holding the first len tokens of `parent` (their cache copied; the parent is
 * untouched): a shared system prompt prefilled once. The child has logits only when len is
 * the parent's whole length. It takes the lowest free slot of the parent's context, or, for a
 * parent made by kvc_seq_new, gets a context of its own in the parent's mode. Errors:
 * KVC_ERR_INVALID_ARG (len outside 0..kvc_seq_len(parent)), KVC_ERR_NO_SLOT, KVC_ERR_NO_MEMORY,
 * KVC_ERR_UNSUPPORTED (a cache in device memory). */
KVC_API kvc_status kvc_seq_fork(const kvc_seq *parent, int32_t len, kvc_seq **out);

/* The tree-search primitive: evaluate k candidate continuations of `seq`, each `len` tokens
 * (tokens: k rows of len), and write the logits after each one's last token into logits
 * (k * vocab_size floats). The sequence is left exactly as it was (length, cache, logits).
 * Where the context batches and has k - 1 free slots, the candidates run together (copies of
 * the sequence's cache go into those slots for the call: k single tokens take one run);
 * otherwise one after another, each appended and rewound.
 * Errors: KVC_ERR_INVALID_ARG (NULL, k or len < 1, a token out of range, naming the
 * candidate), KVC_ERR_CACHE_FULL, KVC_ERR_RUNTIME. */
KVC_API kvc_status kvc_seq_eval_candidates(kvc_seq *seq, const int32_t *tokens, int32_t k,
                                           int32_t len, float *logits);

typedef struct kvc_seq_metrics {
  double prefill_ms;          /* time of the first append to an empty sequence */
  int32_t prefill_tokens;     /* tokens in that append */
  int32_t decode_steps;       /* appends of one token to a non-empty sequence since then */
  const double *decode_ms;    /* decode_steps durations in ms, in order; valid until the
                               * next call that changes the sequence */
  int64_t cache_bytes;        /* bytes of KV cache of this sequence's slot (0 for NAIVE and
                               * UNCACHED, whose tensors ONNX Runtime allocates per run) */
  int32_t cache_addresses;    /* distinct addresses its first cache tensor was at after each
                               * append since the sequence was made (capped at 64) */
  int64_t decode_allocations; /* heap allocations kvcache made inside the decode steps
                               * (ONNX Runtime's own not counted). The counter is process-wide:
                               * exact while one thread at a time appends */
} kvc_seq_metrics;

/* Timings and counters since kvc_seq_new() or the last kvc_seq_reset(). */
KVC_API kvc_status kvc_seq_get_metrics(const kvc_seq *seq, kvc_seq_metrics *metrics);

/* ---------------------------------------------------------------------------------------
 * Sampling and generation
 * ------------------------------------------------------------------------------------- */
typedef struct kvc_sampler kvc_sampler;

typedef struct kvc_sampler_params {
  float temperature;        /* 0 (default) = greedy (argmax, lowest id on ties); > 0 samples */
  int32_t top_k;            /* keep the k most likely tokens; 0 (default) = all */
  float top_p;              /* keep the smallest set with probability >= top_p; 1 (default) = all */
  uint64_t seed;            /* random seed; same seed and logits -> same tokens. Default 0 */
  float repetition_penalty; /* 1 (default) or 0 = none; > 1 discourages the sequence's tokens:
                             * kvc_sampler_sample_seq and kvc_generate divide a positive
                             * logit of an id already in the sequence (prompt included) by
                             * it and multiply a negative one, once per distinct id (the CTRL
                             * paper's rule, as onnxruntime-genai and Hugging Face apply it),
                             * greedy or sampling. kvc_sampler_sample has no history: it
                             * ignores it */
  float min_p;              /* 0 (default) = off; in (0, 1]: keep only the tokens whose
                             * probability (at the temperature) is at least min_p times the
                             * most likely token's, applied after top_k and top_p as Hugging
                             * Face's MinPLogitsWarper; sampling only */
} kvc_sampler_params;

KVC_API kvc_sampler_params kvc_sampler_default_params(void);

/* Sampler parameters for a model's generation defaults (kvc_model_info.search): greedy
 * unless do_sample; its repetition_penalty either way; seed 0. */
KVC_API kvc_sampler_params kvc_search_sampler_params(const kvc_search *search);

/* A sampler for logits of `vocab_size` entries (its scratch space is allocated here).
 * KVC_ERR_INVALID_ARG for temperature < 0, top_k < 0, top_p outside (0, 1], min_p outside
 * [0, 1], repetition_penalty negative or not finite. */
KVC_API kvc_status kvc_sampler_new(const kvc_sampler_params *params, int32_t vocab_size,
                                   kvc_sampler **out);
KVC_API void kvc_sampler_free(kvc_sampler *sampler);

/* Pick the next token from vocab_size logits. Non-finite logits: NaN is never chosen;
 * -inf has probability 0; when some logits are +inf, the token is one of those (the lowest
 * id greedily, each equally likely when sampling). KVC_ERR_INVALID_ARG for a NULL argument,
 * or when every logit is NaN or -inf (no token can be chosen). */
KVC_API kvc_status kvc_sampler_sample(kvc_sampler *sampler, const float *logits, int32_t *token);

/* Pick the next token of `seq` from its logits (kvc_seq_logits), the repetition penalty, if
 * the sampler has one, applied over the sequence's tokens first; the sequence is not changed.
 * Errors: KVC_ERR_INVALID_ARG for a NULL argument, a sampler made for another vocab_size, a
 * sequence without logits (nothing appended since it was made or rewound), and those of
 * kvc_sampler_sample. */
KVC_API kvc_status kvc_sampler_sample_seq(kvc_sampler *sampler, const kvc_seq *seq, int32_t *token);

/* Called after each generated token; return non-zero to stop generating. */
typedef int (*kvc_token_fn)(void *user, int32_t token, int32_t index);

/* Append `prompt` (n_prompt >= 1 tokens; n_prompt 0 continues from the sequence's current
 * logits), then generate up to max_new tokens (each picked by kvc_sampler_sample_seq),
 * appending each but the last. Generation
 * stops after an end-of-sequence token of the model (kvc_model_info.eos_token_ids, from
 * genai_config.json), which is in `out` but not appended.
 * out (max_new entries) receives the generated tokens and *n_out their number.
 * on_token may be NULL. Returns KVC_ERR_CACHE_FULL (with *n_out tokens valid) when the
 * cache fills up first. Errors: KVC_ERR_INVALID_ARG (NULL, negative counts, a sampler made
 * for another vocab_size than the model's: refused before anything is appended; no logits
 * to continue from), and those of kvc_seq_append and kvc_sampler_sample. */
KVC_API kvc_status kvc_generate(kvc_seq *seq, const int32_t *prompt, int32_t n_prompt,
                                int32_t max_new, kvc_sampler *sampler, int32_t *out, int32_t *n_out,
                                kvc_token_fn on_token, void *user);

/* ---------------------------------------------------------------------------------------
 * State files: a sequence saved, and loaded back later or in another process (docs/STATE.md)
 * ------------------------------------------------------------------------------------- */

/* Save the sequence (its tokens, length, last logits, and every layer's keys and values up to
 * its length) to `path`: written to a temporary file beside it, flushed to disk (fsync) and
 * renamed into place, so that a crash or a full disk leaves any previous file intact.
 * Errors: KVC_ERR_INVALID_ARG (NULL), KVC_ERR_UNSUPPORTED (an UNCACHED sequence keeps no
 * cache; a cache in device memory), KVC_ERR_IO (naming the file), KVC_ERR_NO_MEMORY. */
KVC_API kvc_status kvc_seq_save(kvc_seq *seq, const char *path);

/* The same into memory: *size receives the state's size; it is written to buf only when cap
 * is at least that (cap 0 asks the size alone; a smaller cap is KVC_ERR_INVALID_ARG). */
KVC_API kvc_status kvc_seq_save_buffer(kvc_seq *seq, void *buf, size_t cap, size_t *size);

/* Replace the sequence's contents with a saved state, in any KV mode, on the same model or
 * one with the same weights and cache layout (the state's fingerprint says which). Every
 * check comes before the sequence is touched: on any error it is unchanged. Errors:
 * KVC_ERR_INVALID_ARG (NULL; a state of another model, both fingerprints named),
 * KVC_ERR_IO (unreadable, not a state, truncated, altered: a checksum mismatch),
 * KVC_ERR_UNSUPPORTED (a newer format version; a cache in device memory),
 * KVC_ERR_CACHE_FULL (longer than the sequence holds), KVC_ERR_NO_MEMORY. */
KVC_API kvc_status kvc_seq_load(kvc_seq *seq, const char *path);
KVC_API kvc_status kvc_seq_load_buffer(kvc_seq *seq, const void *buf, size_t size);

/* ---------------------------------------------------------------------------------------
 * Tokenizers: Hugging Face's tokenizer.json, BPE models (Llama 3, Qwen, Gemma, GPT-2 ...).
 * Normalizers NFC/NFD/NFKC/NFKD, Lowercase, Replace (string), Prepend; pre-tokenizers Split
 * (regex or string; Isolated, Removed, MergedWithPrevious, MergedWithNext), ByteLevel,
 * Metaspace; byte fallback; added and special tokens (matched leftmost-longest in the raw
 * text, with their lstrip, rstrip and single_word flags); decoders ByteLevel, Replace,
 * ByteFallback, Fuse, Strip, Metaspace; post-processor TemplateProcessing (for add_special).
 * Anything else is refused when the file is opened. Not done here: tokenizer_config.json (its
 * chat template: kvc_chat_template_open; bos/eos ids come from genai_config), WordPiece and Unigram
 * models, added tokens' normalized flag (every added token is matched in the text before
 * normalization). A kvc_tokenizer is read-only once open and safe to share between threads.
 * ------------------------------------------------------------------------------------- */
typedef struct kvc_tokenizer kvc_tokenizer;

/* Open `path`: a tokenizer.json, or a directory holding one. *out owns it; release with
 * kvc_tokenizer_free(). Errors: KVC_ERR_INVALID_ARG (NULL), KVC_ERR_IO (missing, not a
 * regular file, unreadable), KVC_ERR_MODEL (not JSON, or not the format: the message names
 * the key), KVC_ERR_UNSUPPORTED (a component listed above as not implemented, named),
 * KVC_ERR_NO_MEMORY. */
KVC_API kvc_status kvc_tokenizer_open(const char *path, kvc_tokenizer **out);
KVC_API void kvc_tokenizer_free(kvc_tokenizer *tokenizer);

/* Largest token id + 1. */
KVC_API int32_t kvc_tokenizer_vocab_size(const kvc_tokenizer *tokenizer);

/* The id of the token (of the vocabulary or an added one) whose text is exactly `text`
 * (NUL-terminated), e.g. "<|end_of_text|>"; -1 when there is none (or an argument is NULL). */
KVC_API int32_t kvc_tokenizer_token_id(const kvc_tokenizer *tokenizer, const char *text);

/* Encode `len` bytes of UTF-8 `text` (no NUL needed). add_special: also the post-processor's
 * special tokens (e.g. BOS); 0: none are added (added tokens written in the text are still
 * recognised). *n_ids receives the number of ids of the text; the first min(*n_ids, cap) are
 * written to ids (call with cap 0 to size the array). Time is linear in the text, except
 * that a pre-tokenizer pattern that backtracks (a*a*b, (a+)+) may do at most about 64 steps
 * per byte: past that the text is refused. Errors: KVC_ERR_INVALID_ARG (NULL, invalid UTF-8:
 * the message gives the byte offset; a text on which the pattern needs too much work),
 * KVC_ERR_UNSUPPORTED (add_special with a post-processor kvcache cannot apply),
 * KVC_ERR_NO_MEMORY. */
KVC_API kvc_status kvc_tokenize(const kvc_tokenizer *tokenizer, const char *text, size_t len,
                                int add_special, int32_t *ids, int32_t cap, int32_t *n_ids);

/* kvc_tokenize for a context that holds `cap` tokens: encoding stops at the first word that
 * takes the text past cap ids, so a text far longer than the context costs little more than
 * what fits (the text is still checked as UTF-8 and split into words whole). *n_ids receives
 * min(ids of the text, cap), all written to ids; *more 1 when the text has more than cap ids
 * (then the ids are its first cap, without the post-processor's closing special tokens),
 * else 0. Errors as kvc_tokenize, and KVC_ERR_INVALID_ARG for a NULL `more`. */
KVC_API kvc_status kvc_tokenize_at_most(const kvc_tokenizer *tokenizer, const char *text,
                                        size_t len, int add_special, int32_t *ids, int32_t cap,
                                        int32_t *n_ids, int *more);

/* Decode n ids to UTF-8 text (a byte sequence that is not valid UTF-8 becomes U+FFFD).
 * skip_special: leave out special tokens. *len receives the text's length in bytes; the
 * first min(*len, cap - 1) bytes and a NUL are written to text (cap 0 writes nothing).
 * Errors: KVC_ERR_INVALID_ARG (NULL, n < 0, an id outside the vocabulary, named),
 * KVC_ERR_NO_MEMORY. */
KVC_API kvc_status kvc_detokenize(const kvc_tokenizer *tokenizer, const int32_t *ids, int32_t n,
                                  int skip_special, char *text, size_t cap, size_t *len);

/* Incremental decoding for streaming: push one id at a time; each push gives the text that
 * became complete (never half a UTF-8 character; possibly empty). The concatenation of all
 * pushes' text and kvc_detokenizer_flush's equals kvc_detokenize of all ids (fuzz_decoder
 * checks it): text that a later id could still change is held back until it cannot (a
 * character still incomplete, a run of <0xXX> byte tokens, which decodes to U+FFFD per byte
 * unless the whole run is UTF-8, what a Strip decoder would strip at the text's end), and
 * flush gives what is held at the end. The tokenizer must outlive it. */
typedef struct kvc_detokenizer kvc_detokenizer;
KVC_API kvc_status kvc_detokenizer_new(const kvc_tokenizer *tokenizer, int skip_special,
                                       kvc_detokenizer **out);
/* *text (valid until the next push or free) and *len: the new text. KVC_ERR_INVALID_ARG for
 * an id outside the vocabulary (the detokenizer is unchanged). */
KVC_API kvc_status kvc_detokenizer_push(kvc_detokenizer *detokenizer, int32_t id, const char **text,
                                        size_t *len);
/* The text still held back (a character cut at the end, as U+FFFD), at the end of a stream:
 * after it, all pushes' text equals kvc_detokenize of all ids. */
KVC_API kvc_status kvc_detokenizer_flush(kvc_detokenizer *detokenizer, const char **text,
                                         size_t *len);
KVC_API void kvc_detokenizer_free(kvc_detokenizer *detokenizer);

/* ---------------------------------------------------------------------------------------
 * Chat templates: a conversation rendered to the text a chat model was trained on, by the
 * Jinja template of its tokenizer_config.json, as Hugging Face's @huggingface/jinja (the
 * renderer of transformers.js) renders it, byte for byte (docs/CHAT.md lists the constructs
 * and the JavaScript behaviours kept). A construct the engine does not implement is refused
 * when the template is opened, with its line and column, never rendered differently.
 * Templates are untrusted: a render is bounded in output, memory, work and macro depth, and
 * reads no file and no environment variable (strftime_now reads the clock).
 * A kvc_chat_template is read-only once open and safe to share between threads.
 * ------------------------------------------------------------------------------------- */
typedef struct kvc_chat_template kvc_chat_template;

/* Open the chat template of `path`: a model directory (its tokenizer_config.json), or a
 * tokenizer_config.json. Its "chat_template" (a string, or a list of {name, template} of
 * which "default" is taken) is parsed; its bos_token, eos_token, unk_token and pad_token
 * (strings, or {"content": ...}) become the template's variables of those names (null where
 * the file says null). *out owns it; release with kvc_chat_template_free(). Errors:
 * KVC_ERR_INVALID_ARG (NULL; a syntax error or an unsupported construct: "line L, column C"
 * of the template), KVC_ERR_IO (no tokenizer_config.json), KVC_ERR_MODEL (not JSON; no
 * chat_template, or not of those forms), KVC_ERR_NO_MEMORY. */
KVC_API kvc_status kvc_chat_template_open(const char *path, kvc_chat_template **out);

/* A template from `len` bytes of source; bos_token and eos_token may be NULL (then the
 * variables are not set). Errors as kvc_chat_template_open, less the file's. */
KVC_API kvc_status kvc_chat_template_new(const char *source, size_t len, const char *bos_token,
                                         const char *eos_token, kvc_chat_template **out);
KVC_API void kvc_chat_template_free(kvc_chat_template *tmpl);

typedef struct kvc_chat_params {
  const char *messages;      /* required: a JSON array of OpenAI-style messages, each an object
                              * with a string "role" ({"role": "user", "content": "Hi"}; tool
                              * calls, content parts and other keys are passed through) */
  const char *tools;         /* NULL (default: the variable is not set) or a JSON array of tool
                              * definitions, the template's `tools` */
  const char *variables;     /* NULL (default) or a JSON object of more variables, e.g.
                              * {"enable_thinking": false} (Qwen 3) */
  int add_generation_prompt; /* 1 (default): end with the opening of the assistant's turn */
  size_t max_bytes;          /* the longest text a render may make; 0 (default) = 16 MiB */
} kvc_chat_params;

KVC_API kvc_chat_params kvc_chat_default_params(void);

/* Render the conversation. *len receives the text's length in bytes; the first
 * min(*len, cap - 1) bytes and a NUL are written to text (cap 0 writes nothing: call with
 * cap 0 to size the buffer). Errors: KVC_ERR_INVALID_ARG (NULL; messages, tools or
 * variables not JSON of the form above, named; a variable named twice or naming a built-in;
 * the template failed: its raise_exception message, or the operation and the line and
 * column; a limit passed), KVC_ERR_NO_MEMORY. */
KVC_API kvc_status kvc_chat_render(const kvc_chat_template *tmpl, const kvc_chat_params *params,
                                   char *text, size_t cap, size_t *len);

/* Render and encode the text (kvc_tokenize, add_special 0: the template writes the special
 * tokens itself). *n_ids receives the number of ids; the first min(*n_ids, cap) are written
 * to ids. Errors: those of kvc_chat_render and kvc_tokenize. */
KVC_API kvc_status kvc_chat_tokenize(const kvc_chat_template *tmpl, const kvc_tokenizer *tokenizer,
                                     const kvc_chat_params *params, int32_t *ids, int32_t cap,
                                     int32_t *n_ids);

/* ---------------------------------------------------------------------------------------
 * Stop strings: generated text cut at the first of a set of strings, matched on the decoded
 * text across token boundaries (feed it what kvc_detokenizer_push gives).
 * ------------------------------------------------------------------------------------- */
typedef struct kvc_stop kvc_stop;

/* A matcher of n stop strings (UTF-8, each non-empty; n 0 matches nothing), copied. *out owns
 * it; release with kvc_stop_free(). KVC_ERR_INVALID_ARG (NULL, an empty string),
 * KVC_ERR_NO_MEMORY. */
KVC_API kvc_status kvc_stop_new(const char *const *stops, int32_t n, kvc_stop **out);
KVC_API void kvc_stop_free(kvc_stop *stop);

/* Feed `len` bytes of text (a token's). *out and *out_len: the text that can be shown now
 * (valid until the next push, flush or free): everything so far but what could still begin a
 * stop string, which is held back until it cannot. When the text first holds a stop string,
 * *stopped is 1 and *out ends before the earliest-beginning stop string it holds (the match
 * and anything after it are dropped): generation should stop there (a longer stop string
 * that began earlier but is not complete yet does not count). Every later push gives nothing
 * and *stopped 1. Errors: KVC_ERR_INVALID_ARG
 * (NULL), KVC_ERR_NO_MEMORY. */
KVC_API kvc_status kvc_stop_push(kvc_stop *stop, const char *text, size_t len, const char **out,
                                 size_t *out_len, int *stopped);

/* At the end of the text: what is still held back (nothing after a match). */
KVC_API kvc_status kvc_stop_flush(kvc_stop *stop, const char **out, size_t *out_len);

/* Forget the text and any match: ready for a new stream. */
KVC_API void kvc_stop_reset(kvc_stop *stop);

/* ---------------------------------------------------------------------------------------
 * Quantisation: a decoder's MatMul weights as 8- or 4-bit blocks (com.microsoft.MatMulNBits)
 * ------------------------------------------------------------------------------------- */
typedef struct kvc_quantize_params {
  int32_t bits;           /* 8 or 4; default 4 */
  int32_t block_size;     /* weights per scale along K: a power of two in 16..256; default 32 */
  int symmetric;          /* 1: no zero points (MatMulNBits' default 2^(bits-1)); default 0 */
  int include_lm_head;    /* 1 (default since 0.2): also the MatMul that produces "logits" (at
                           * 243 M parameters a third of the 4-bit model's bytes when kept);
                           * 0: keep it float */
  int32_t accuracy_level; /* MatMulNBits' accuracy_level, 0..4 (4: int8 activations, faster), or
                           * -1 (default): 4 where the graph's attention is kvcache's operator
                           * (everything before each product is then bit-exact between a decode
                           * step and a recompute, so the cache stays exact), else 0 (with
                           * GroupQueryAttention, int8 activations turn its ~1e-6 differences
                           * between prefill and decode into ~1e-2: docs/QUANTIZATION.md) */
  int32_t lm_head_bits;   /* the LM head's bits when it is quantised: 8 or 4; 0 (default): 8,
                           * whatever `bits`, where the products take int8 activations
                           * (accuracy_level 4), else the head stays float (ONNX Runtime's
                           * 8-bit kernel for float activations is slower than float; at 4 bits
                           * the head's errors cost 3.5x the KL of the rest:
                           * docs/QUANTIZATION.md) */
} kvc_quantize_params;

typedef struct kvc_quantize_report {
  int32_t quantized;      /* MatMuls rewritten */
  int32_t skipped;        /* MatMuls left float (not constant weights, or the LM head) */
  int64_t bytes_before;   /* initializer bytes of the input graph */
  int64_t bytes_after;    /* model.onnx + model.onnx.data written */
  int32_t accuracy_level; /* the accuracy_level written (-1 resolved) */
  int32_t lm_head_bits;   /* the LM head's bits as written; 0: kept float (or none found) */
} kvc_quantize_report;

KVC_API kvc_quantize_params kvc_quantize_default_params(void);

/* Rewrite the model in directory in_dir into the new directory out_dir: every MatMul whose B
 * is a constant float (K, N) matrix (an initializer, or a Concat of them along axis 1)
 * becomes MatMulNBits with round-to-nearest block quantisation (the scheme is in
 * src/onnx/quant.h and docs/QUANTIZATION.md); embeddings, norms, biases and, by default, the LM
 * head stay float. The directory's other files (config.json, genai_config.json, tokenizer)
 * are copied. out_dir is written under a temporary name and renamed: on failure nothing is
 * left. report (may be NULL) receives the counts. Errors: KVC_ERR_INVALID_ARG (params),
 * KVC_ERR_IO (out_dir exists, unreadable or unwritable files), KVC_ERR_MODEL (not an ONNX
 * model, or no MatMul with constant weights), KVC_ERR_NO_MEMORY. */
KVC_API kvc_status kvc_quantize(const char *in_dir, const char *out_dir,
                                const kvc_quantize_params *params, kvc_quantize_report *report);

/* ---------------------------------------------------------------------------------------
 * Model builder: writes the seed's decoder (a small GPT-style transformer with explicit
 * KV-cache inputs and outputs), or a Llama-style one, as DIR/model.onnx +
 * DIR/model.onnx.data + DIR/config.json (+ DIR/genai_config.json in the genai layout).
 * Opset 17, IR version 8; standard ONNX ops only, unless attention is GQA or KVCACHE.
 * ------------------------------------------------------------------------------------- */

typedef struct kvc_build_params {
  int32_t layers;          /* decoder blocks; default 4 */
  int32_t heads;           /* attention heads; default 4 */
  int32_t head_dim;        /* size of one head; default 64 (hidden = heads * head_dim) */
  int32_t vocab_size;      /* default 1000 */
  int32_t max_seq_len;     /* positions the model knows (learned position embedding); default 512 */
  uint64_t seed;           /* weights are a pure function of the sizes and this; default 1 */
  kvc_naming naming;       /* default KVC_NAMING_SEED */
  kvc_attention attention; /* default KVC_ATTENTION_CONCAT (the seed's graph) */
  int32_t kv_heads;        /* heads of K and V; 0 (default) = heads. Below heads (grouped-query
                            * attention) needs GQA or KVCACHE attention and must divide heads */
  kvc_arch arch;           /* default KVC_ARCH_GPT */
  kvc_layout layout;       /* default KVC_LAYOUT_KVCACHE */
  int32_t weight_bits;     /* 32 (default): float MatMul weights; 8 or 4: the same weights
                            * quantised as by kvc_quantize with its defaults (MatMulNBits) */
  const char *tokenizer;   /* NULL (default), or a tokenizer.json (or a directory holding
                            * one): copied into the model's directory, with the
                            * tokenizer_config.json beside it; vocab_size must cover its ids */
  int32_t bos_token_id;    /* the ids genai_config.json states (layout GENAI): */
  int32_t eos_token_id;    /*   KVC_BUILD_TOKEN_AUTO (default): the tokens tokenizer_config.json */
  int32_t pad_token_id;    /*   names (none where it names none), or without a tokenizer 1, 2, 2
                            *   (the random models have no vocabulary: these are placeholders);
                            *   -1: none (generation stops only at its length); else the id */
  int32_t ff;              /* the MLP's width; 0 (default): 4 x hidden (gpt), 8/3 x hidden rounded
                            * up to a multiple of 64 (llama) */
} kvc_build_params;

/* kvc_build_params' token ids: taken from the tokenizer, or the builder's placeholders. */
#define KVC_BUILD_TOKEN_AUTO (-2)

/* The seed's model: 4 layers, 4 heads of 64, vocabulary 1000, 512 positions, seed 1. */
KVC_API kvc_build_params kvc_build_default_params(void);

/* Number of parameters (floats) a model with these sizes has; 0 if a size is invalid. */
KVC_API int64_t kvc_build_param_count(const kvc_build_params *params);

/* Write the model into directory `dir` (created if missing; its parent must exist).
 * The three files are written under temporary names and renamed into place, so a failure
 * leaves no partial model behind. Same params -> byte-identical files.
 * Returns KVC_ERR_INVALID_ARG naming the field for a size <= 0 or beyond the limits
 * (layers, heads <= 256; head_dim <= 1024; vocab_size, max_seq_len <= 1048576;
 * at most 2^31 parameters; kv_heads dividing heads, below heads only with GQA),
 * KVC_ERR_IO naming the path it could not write. */
KVC_API kvc_status kvc_build_model(const char *dir, const kvc_build_params *params);

/* ---------------------------------------------------------------------------------------
 * ONNX Runtime, as loaded
 * ------------------------------------------------------------------------------------- */
typedef struct kvc_runtime_info {
  int api_version;           /* ORT_API_VERSION of the header kvcache was compiled against */
  const char *ort_version;   /* version string of the loaded runtime; static storage */
  char library_path[4096];   /* file the runtime was loaded from ("" if unknown) */
  char providers[512];       /* execution providers built into the runtime, comma-separated:
                              * not all can be created (a CUDA provider needs its library and
                              * a GPU); see usable_providers */
  char usable_providers[64]; /* kvcache's providers that can be created here: "cpu" or
                              * "cpu,cuda" (kvc_model_params.provider) */
  char cuda_note[512];       /* why "cuda" cannot be created, "" when it can */
} kvc_runtime_info;

/* Telemetry: ONNX Runtime 1.30's Linux builds send Microsoft usage telemetry by default (a
 * device id and an event database under $XDG_CACHE_HOME/Microsoft/DeveloperTools, threads
 * that upload them). The first kvc_model_open, which creates kvcache's ONNX Runtime
 * environment, sets ORT_DISABLE_TELEMETRY=1 (1.30's name) and ORT_TELEMETRY_DISABLED=1 (later
 * versions') in the process environment when neither is set, so none of that starts; a
 * program that wants it sets one of them to 0 before. Like any setenv, it races with other
 * threads reading the environment at that moment: such a program sets the variable itself
 * before starting them. An environment the program created through ONNX Runtime before
 * kvcache's is not changed. */

/* Fill *info from the loaded ONNX Runtime. Fails with KVC_ERR_RUNTIME when the runtime is
 * older than the header's API version. */
KVC_API kvc_status kvc_runtime_get_info(kvc_runtime_info *info);

/* ---------------------------------------------------------------------------------------
 * Probes: the timings behind `kvcache bench` (what a step can cost at best on this machine)
 * ------------------------------------------------------------------------------------- */

/* The memory floor of a decode step: for each of n byte counts, the median time in ms (into
 * ms[i]) that one ONNX Runtime Run on this model's provider and threads takes to read that
 * many bytes once (a MatMul of a 1 x 64 row by a 64-row matrix of that size: the
 * matrix-vector kernel a decode step streams its weights through; after as many untimed
 * reads to bring the matrix into the caches). A step reading its weights and a cache of p
 * positions can be no faster than the floor of param_bytes - lookup_bytes +
 * p * cache_bytes_per_token.
 * Makes a small session and a buffer of max(bytes) for the call; KVC_ERR_INVALID_ARG for
 * n < 1, reads < 1 or a byte count below 256. */
KVC_API kvc_status kvc_model_floor(kvc_model *model, const int64_t *bytes, int32_t n, int32_t reads,
                                   double *ms);

/* The attention alone, as ONNX Runtime runs it on this model's provider and threads: for each
 * of n positions, the median time in ms (into ms[i]) of one run of a graph holding only the
 * model's attention, one node per layer (`attention`: KVC_ATTENTION_GQA for
 * com.microsoft.GroupQueryAttention, KVC_ATTENTION_KVCACHE for kvcache's operator), each
 * decoding one token at that position over its own layer's cache (the model's heads, K/V
 * heads and head size; in place), after as many untimed runs. kvcache's operator reads a
 * cache of the model's kv_type, GroupQueryAttention a float32 one. Such a step reads
 * cache_bytes_per_token (of that type) x (position + 1) bytes of cache: bytes / time is the
 * attention's cache read rate, comparable between the two operators in one process.
 * Makes a small session and a cache of max(positions) + 2 positions for the call.
 * KVC_ERR_INVALID_ARG for another attention, n < 1, reads < 1 or a position outside
 * 0 .. max_seq_len - 1; KVC_ERR_UNSUPPORTED for kvcache's operator on a non-CPU provider. */
KVC_API kvc_status kvc_model_attention_ms(kvc_model *model, kvc_attention attention,
                                          const int32_t *positions, int32_t n, int32_t reads,
                                          double *ms);

/* The int8 products' ceiling: the median time in ms (into *ms) of one Run, on this
 * model's threads, of a graph holding one ai.kvcache.MatMulNBits node (the kernel path the
 * model's products run: kvc_model_info.matmul_kernel) that multiplies `rows` rows by a 4-bit,
 * block-32 matrix of K 1024 x N 1024 held in the caches (0.5 MB of codes), after as many
 * untimed runs: rows x 2^20 multiply-adds with nothing to wait for. A step of B rows through
 * a model's quantized_macs can go no faster than B x quantized_macs / (rows x 2^20) times it.
 * Makes a small session for the call. KVC_ERR_INVALID_ARG for rows < 1 or reads < 1;
 * KVC_ERR_UNSUPPORTED on a provider other than the CPU. */
KVC_API kvc_status kvc_model_products_ms(kvc_model *model, int32_t rows, int32_t reads, double *ms);

/* ---------------------------------------------------------------------------------------
 * Deprecated names: renamed in 0.2, kept until 0.3 (each calls its replacement)
 * ------------------------------------------------------------------------------------- */
KVC_API kvc_status kvc_runtime_info_get(kvc_runtime_info *info)
    KVC_DEPRECATED("kvc_runtime_get_info");
KVC_API kvc_status kvc_append_batch(const kvc_batch_item *items, int32_t n)
    KVC_DEPRECATED("kvc_seq_append_batch");
KVC_API kvc_status kvc_ctx_seq_new(kvc_ctx *ctx, kvc_seq **out) KVC_DEPRECATED("kvc_seq_new_in");

#ifdef __cplusplus
}
#endif
#endif /* KVCACHE_H */
