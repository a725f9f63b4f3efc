/* ctx.h: a context (the slotted cache, the run's buffers and the binding of one model) and
 * its sequences (a slot, a length and its tokens), with the one interface every KV mode
 * implements.
 *
 * Buffers of a context, all made in kvc_ctx_new; S = slots, T = capacity (tokens per slot),
 * V = vocab, R = rows of one run (max(chunk, S)):
 *   tokens       (S, T)        each slot's tokens
 *   lens         (S)           each slot's length: positions [0, len) of its cache are valid
 *   logits       (2, S, V)     each slot's logits after its last token, in two banks: a call
 *                              writes the bank not in use and flips it only on success
 *   ids          (R, T + 1)    input_ids of one run, int64 or int32 as the graph says
 *   positions    (R, T + 1)    position_ids of one run
 *   mask         (R, T + 1)    attention_mask of one run
 *   seqlens_k    (R)           GroupQueryAttention-style graphs: each row's total - 1
 *   kv                         the mode's own (kv_state.h): BOUND and SHARED a slotted cache
 *                              and the logits output of one run (R, V); NAIVE the tensors
 *                              ONNX Runtime made
 *
 * Who writes what: the slot state (state, owner, tokens, lens, logits, bank, has_logits) only
 * ctx.c and the kvc__slot_* functions below; the run inputs only inputs.c; c->kv only the
 * mode's file. */
#ifndef KVC_CTX_H
#define KVC_CTX_H

#include <string.h>

#include "model.h"

enum { KVC_MAX_ADDRESSES = 64 };

/* The rows of one ONNX Runtime run: slots [first_slot, first_slot + count), each appending
 * n tokens after its first past[i] positions. A live row's tokens are in the context's token
 * table at [past, past + n); an idle row (a slot inside the range that is not part of the
 * call) is fed a placeholder whose keys and values land at positions >= its length, where
 * they are never read as valid. */
typedef struct kvc__rows {
  int32_t first_slot, count, n;
  const int32_t *past; /* (count) */
  const uint8_t *live; /* (count) */
  int32_t keep; /* logits wanted: each row's last `keep` positions (1..n; n when count > 1) */
} kvc__rows;

typedef struct kvc_ctx kvc_ctx;

/* What each KV mode does; one table per mode, one file per table (kv_plain.c, kv_bound.c,
 * kv_shared.c), chosen in one place (kvc__kv_ops_resolve in ctx.c). */
typedef struct kvc__kv_ops {
  kvc_kv_mode mode;
  int batches;                    /* one run may hold many rows of different lengths */
  kvc_status (*init)(kvc_ctx *c); /* allocate the cache of every slot and bind what stays */
  void (*release)(kvc_ctx *c);    /* free what init made (also after a failed init) */
  /* Run the model on `r` (count > 1 only when `batches`). On success *logits points at
   * (count, keep, V) floats, valid until the next run. On failure nothing outside positions
   * >= each row's past has changed. */
  kvc_status (*run)(kvc_ctx *c, const kvc__rows *r, const float **logits);
  /* Keep the first new_len of a slot's len positions. */
  kvc_status (*truncate)(kvc_ctx *c, int32_t slot, int32_t len, int32_t new_len);
  /* Make dst's slot hold the first len positions of src's slot (same model and mode). */
  kvc_status (*copy)(kvc_ctx *dst, int32_t dst_slot, const kvc_ctx *src, int32_t src_slot,
                     int32_t len);
  /* Where the slot's first cache tensor lives now; NULL when it keeps none. */
  const void *(*address)(const kvc_ctx *c, int32_t slot);
  /* The slot's first len positions to (to_dense) or from a dense array (layers, 2, kv_heads,
   * len, head_dim) of the cache's element type: a state file's cache. Loading either
   * succeeds or leaves the slot as it was. */
  kvc_status (*dense)(kvc_ctx *c, int32_t slot, int32_t len, void *dense, int to_dense);
} kvc__kv_ops;

/* kv_plain.c: NAIVE, UNCACHED; kv_slotted.c: BOUND, SHARED. */
extern const kvc__kv_ops kvc__kv_naive, kvc__kv_uncached, kvc__kv_bound, kvc__kv_shared;

typedef struct kvc__metrics {
  double prefill_ms, *decode_ms; /* decode_ms: (T) */
  int32_t prefill_tokens, decode_steps;
  int64_t decode_allocations;
  const void *addresses[KVC_MAX_ADDRESSES];
  int32_t n_addresses;
} kvc__metrics;

struct kvc_seq {
  kvc_ctx *ctx;
  int32_t slot;
  int owns_ctx; /* made by kvc_seq_new: the context is the sequence's own, freed with it */
  kvc__metrics m;
};

enum { KVC_SLOT_FREE = 0, KVC_SLOT_SEQ = 1, KVC_SLOT_BORROWED = 2 };

/* The graph's run inputs other than the cache, for one run (inputs.c owns them). */
typedef struct kvc__inputs {
  size_t id_size; /* 4 or 8: input_ids, position_ids and attention_mask are int32 or int64 */
  ONNXTensorElementDataType id_type;
  void *ids, *positions, *mask;
  int32_t *seqlens_k, total_len[1];
  int64_t logits_to_keep[1];
} kvc__inputs;

struct kvc_ctx {
  kvc_model *model;
  const kvc__kv_ops *ops;
  void *kv;            /* the mode's own state (kv_state.h): made by ops->init */
  int64_t cache_bytes; /* what the mode allocated for the cache of every slot (0: none) */
  int32_t slots, capacity, vocab;
  int32_t chunk;     /* most tokens one single-row run takes (its logits must fit the run buffer) */
  int32_t rows;      /* rows of the run buffers */
  int group_prompts; /* several sequences' prompts may run together (decode.c run_prompts) */

  /* the slots: written by ctx.c and the kvc__slot_* functions alone */
  uint8_t *state;      /* (S) KVC_SLOT_* */
  kvc_seq **owner;     /* (S) the sequence in each slot */
  int32_t *tokens;     /* (S, T) */
  int32_t *lens;       /* (S) */
  float *logits;       /* (2, S, V) */
  uint8_t *bank;       /* (S) which bank holds the slot's logits */
  uint8_t *has_logits; /* (S) */

  kvc__inputs in; /* one run's host inputs */

  /* per call scratch, so that a call allocates nothing: (S) each */
  int32_t *plan_past, *plan_before, *plan_slot, *plan_n, *plan_group_slot, *plan_group_end;
  const int32_t **plan_tokens;
  float **plan_all;
  uint8_t *plan_live, *plan_mark;

  int32_t fail_at_run;       /* tests: the n-th run from now fails (0 = never) */
  int64_t runs, prompt_runs; /* runs made; of them, runs of several sequences' prompts */
};

/* The ops of the mode a context of m runs when asked for `mode` (AUTO: SHARED where the
 * graph writes its cache in place, else BOUND); KVC_ERR_INVALID_ARG naming the graph for
 * SHARED on one that cannot, or a value that is no mode. The one place modes are decided:
 * kvc_model_open reports what AUTO gives and whether it batches from these ops. */
kvc_status kvc__kv_ops_resolve(const kvc_model *m, kvc_kv_mode mode, const kvc__kv_ops **out);

/* Make a context of `slots` slots in `mode` (AUTO: the model's). */
kvc_status kvc__ctx_make(kvc_model *m, int32_t slots, kvc_kv_mode mode, kvc_ctx **out);

/* A free slot, marked `state` and held by `owner` (a sequence, or NULL for a slot borrowed
 * within a call); -1 when none. */
int32_t kvc__ctx_take_slot(kvc_ctx *c, uint8_t state, kvc_seq *owner);
/* Give a slot back: empty, no logits. */
void kvc__ctx_give_slot(kvc_ctx *c, int32_t slot);

/* Put a slot back at new_len (<= its length) through its mode; no logits after unless
 * keep_logits (a rollback to where the logits were made). */
kvc_status kvc__ctx_truncate(kvc_ctx *c, int32_t slot, int32_t new_len, int keep_logits);

/* Make a slot hold len tokens whose cache the mode already holds (copied or loaded), and
 * `logits` (V floats) after the last of them, or none for NULL. */
void kvc__slot_set(kvc_ctx *c, int32_t slot, const int32_t *tokens, int32_t len,
                   const float *logits);

/* KVC_OK for a sequence whose context lives; KVC_ERR_INVALID_ARG naming `fn` for NULL, or
 * for a sequence detached by kvc_ctx_free (only kvc_seq_free applies to it). */
kvc_status kvc__seq_check(const kvc_seq *q, const char *fn);

/* The slot's logits in the bank a call writes (the one not in use). */
static inline float *kvc__ctx_pending_logits(kvc_ctx *c, int32_t slot) {
  return c->logits + ((size_t)(1 - c->bank[slot]) * c->slots + slot) * c->vocab;
}
static inline const float *kvc__ctx_logits(const kvc_ctx *c, int32_t slot) {
  return c->logits + ((size_t)c->bank[slot] * c->slots + slot) * c->vocab;
}

/* The step's writes to a slot: its next n tokens put after its length (not yet part of it),
 * n positions made part of it once their cache is written, and its pending logits made its
 * own. */
static inline void kvc__slot_put_tokens(kvc_ctx *c, int32_t slot, const int32_t *tokens,
                                        int32_t n) {
  memcpy(c->tokens + (size_t)slot * c->capacity + c->lens[slot], tokens,
         (size_t)n * sizeof *tokens);
}
static inline void kvc__slot_grow(kvc_ctx *c, int32_t slot, int32_t n) {
  c->lens[slot] += n;
}
static inline void kvc__slot_commit(kvc_ctx *c, int32_t slot) {
  c->bank[slot] = (uint8_t)(1 - c->bank[slot]);
  c->has_logits[slot] = 1;
}

/* ---- inputs.c: the graph's run inputs other than the cache ----------------------------- */

/* Allocate the host inputs for the runs of a context of `slots` slots of `capacity` tokens (one
 * row of up to capacity + 1 tokens, or a row per slot) (KVC_ERR_NO_MEMORY), and free them. */
kvc_status kvc__inputs_init(kvc__inputs *in, const kvc_model *m, int32_t slots, int32_t capacity);
void kvc__inputs_release(kvc__inputs *in);

/* Write the host inputs of `r`: ids, positions, attention mask, seqlens_k and
 * total_sequence_length. */
void kvc__fill_rows(kvc_ctx *c, const kvc__rows *r);

/* The logits rows a run of `r` gives for each of its rows: r->keep where the graph takes
 * logits_to_keep, else all n (of which the last keep are wanted). */
int32_t kvc__logits_rows(const kvc_ctx *c, const kvc__rows *r);

/* One run input: a view of its host buffer as the tensor the graph takes. */
enum { KVC_RUN_INPUTS = 6 };
typedef struct kvc__run_input {
  const char *name;
  void *data;
  size_t bytes;
  int64_t shape[2];
  size_t rank;
  ONNXTensorElementDataType type;
} kvc__run_input;

/* The inputs the graph takes for a run of `rows` rows of n tokens, the longest row `total`
 * long, in its input order (input_ids, attention_mask, position_ids, seqlens_k,
 * total_sequence_length, logits_to_keep, those it has); returns how many (at most
 * KVC_RUN_INPUTS). */
int kvc__run_inputs(kvc_ctx *c, int32_t rows, int32_t n, int32_t total, kvc__run_input *out);

/* Bind them to `binding`: all, all but the attention mask, or the mask alone (whose shape
 * changes with every run's length). */
enum { KVC_INPUTS_ALL, KVC_INPUTS_BUT_MASK, KVC_INPUTS_MASK };
kvc_status kvc__bind_run_inputs(kvc_ctx *c, OrtIoBinding *binding, int32_t rows, int32_t n,
                                int32_t total, int which);

/* ---- decode.c: the path of one append ---------------------------------------------------- */

/* Append tokens[i] (n[i] of them, already in range and within capacity) to slots[i], the
 * slots distinct. Each slot's logits after its last token go to its pending bank, and every
 * position's logits to all_logits[i] (n[i] * V floats) when that is not NULL. commit: flip
 * the banks so those logits become the slots'; without it the slots keep their logits.
 * On failure every slot is back at its length before the call. */
kvc_status kvc__append_slots(kvc_ctx *c, const int32_t *slots, const int32_t *const *tokens,
                             const int32_t *n, float *const *all_logits, int32_t count, int commit);

#endif
