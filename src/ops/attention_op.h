/* attention_op.h: kvcache's attention as an ONNX Runtime custom operator,
 * ai.kvcache.Attention (version 1), for the CPU execution provider.
 *
 * Inputs (GroupQueryAttention's order, so that graphs and the engine treat both alike):
 *   0 query        (B, S, (H + 2 KV) D) packed q|k|v, or (B, S, H D) with inputs 1 and 2
 *   1 key          (B, S, KV D)   optional
 *   2 value        (B, S, KV D)   optional
 *   3 past_key     (B, KV, P, D)
 *   4 past_value   (B, KV, P, D)
 *   5 seqlens_k    (B) int32      each row's length after this run, minus one
 *   6 total_sequence_length  int32 scalar: present's time axis is max(P, this)
 *   7 cos_cache    (positions, D / 2)  optional: rotary (do_rotary = 1, halves rotated)
 *   8 sin_cache    (positions, D / 2)  optional
 *   9 qkv_bias     ((H + 2 KV) D)      optional, added to the packed query (folded Add)
 * Outputs:
 *   0 output       (B, S, H D)
 *   1 present_key  (B, KV, max(P, total), D)
 *   2 present_value
 * Attributes: num_heads, kv_num_heads (dividing num_heads), scale (default 1/sqrt(D)),
 * do_rotary (default 0).
 *
 * Row b's S new tokens take positions L - S .. L - 1 (L = seqlens_k[b] + 1); their keys and
 * values are written there, and each attends causally to positions 0 .. its own. When
 * present is bound to past's buffer (kvcache's SHARED mode) nothing else is written: the
 * cache is updated in place. Otherwise the first L - S positions are copied from past.
 *
 * The cache (past and present) is float; float16; or int8 rows of head size + 4 bytes, the
 * codes of an 8-bit cache and their float scale (q8.h). One registration of the operator per
 * type, which ONNX Runtime picks by the node's types; a narrow cache needs a head size of at
 * most 256. New keys and values are rounded to the cache's type as they are written, and
 * every query, a prompt's too, attends to the stored values, widened, so that a prompt and
 * the steps after it see the same values. Everything else stays float. */
#ifndef KVC_ATTENTION_OP_H
#define KVC_ATTENTION_OP_H

#include "ops.h"

#endif
