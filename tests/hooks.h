/* hooks.h: test-only views into the engine's internals (compiled into the tests, never into
 * the shipped library). */
#ifndef KVC_TESTS_HOOKS_H
#define KVC_TESTS_HOOKS_H

#include "kvcache.h"

/* Address of the memory now holding layer `layer`'s past (kv 0 key, 1 value) of the
 * sequence's slot; NULL when the sequence keeps no cache (UNCACHED) or is empty. */
const void *kvc__seq_cache_address(const kvc_seq *seq, int layer, int kv);

/* BOUND and SHARED only: KVC_OK when every output ONNX Runtime reports for the last run of
 * the sequence's context lives in the buffers kvcache bound (the cache and logits were
 * written in place, not copied); KVC_ERR_RUNTIME naming the first output that does not. */
kvc_status kvc__seq_check_binding(kvc_seq *seq);

/* BOUND and SHARED only: the positions whose logits the last run of the sequence's context
 * computed (the logits output's second dimension, as ONNX Runtime reports it); -1 when not
 * known. */
int64_t kvc__seq_logits_rows(kvc_seq *seq);

/* Make the n-th run of the sequence's context from now fail (0 = none), and cap the tokens
 * one single-sequence run takes at `chunk` (0 = leave it): how a test reaches the rollback
 * of an append split into several runs. */
void kvc__seq_inject(kvc_seq *seq, int32_t fail_at_run, int32_t chunk);

/* The most tokens one single-sequence run of the sequence's context takes (its logits must
 * fit the run buffer: fewer, the larger the vocabulary). */
int32_t kvc__seq_chunk(const kvc_seq *seq);

/* The runs the sequence's context has made so far; *prompt_runs: of them, those that ran
 * several sequences' prompt tokens together (decode.c run_prompts). */
int64_t kvc__seq_runs(const kvc_seq *seq, int64_t *prompt_runs);

#endif
