/* kv_state.h: each KV mode's own state, the context's `kv`. Only the mode's file writes it
 * (and the test hooks read it): the rest of the engine sees a mode through its ops alone. */
#ifndef KVC_KV_STATE_H
#define KVC_KV_STATE_H

#include "cache.h"
#include "ctx.h"

/* BOUND and SHARED (kv_slotted.c): the slotted cache, the logits output of one run, and the
 * one IoBinding every run goes through. */
typedef struct kvc__slotted {
  kvc__cache cache;
  float *run_logits; /* (R, V) */
  OrtIoBinding *binding;
  int32_t bound_first, bound_count, bound_n; /* SHARED: the rows the binding holds now */
  int32_t bound_logits_rows;                 /* ... and the logits rows of each */
} kvc__slotted;

/* NAIVE and UNCACHED (kv_plain.c): a plain Run, whose outputs ONNX Runtime allocates. */
typedef struct kvc__plain {
  const char **in_names, **out_names; /* the run inputs (inputs.c), pasts...; logits,
                                       * presents... */
  OrtValue **in_values, **out_values;
  int n_in, n_out, first_past;
  OrtValue **past;  /* (S, layers * 2) each slot's pasts: ONNX Runtime's presents */
  OrtValue **fresh; /* (layers * 2) copies being made, before they replace pasts */
  OrtValue *empty;  /* (1, kv_heads, 0, head_dim) */
  float empty_data[1];
  OrtValue *logits_value; /* logits of the last run, held until the next */
} kvc__plain;

#endif
