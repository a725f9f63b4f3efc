/* seq.h: internals of a sequence that tests inspect. */
#ifndef KVC_SEQ_H
#define KVC_SEQ_H

#include "kvcache.h"

/* Address of the memory now holding layer `layer`'s past (kv 0 key, 1 value);
 * NULL when the sequence keeps no cache (UNCACHED) or is empty. */
const void *kvc__seq_cache_address(const kvc_seq *seq, int layer, int kv);

/* BOUND and SHARED only: KVC_OK when every output ONNX Runtime reports for the last run lives in
 * the buffers kvcache bound (the cache and logits were written in place, not copied);
 * KVC_ERR_RUNTIME naming the first output that does not. */
kvc_status kvc__seq_check_binding(kvc_seq *seq);

#endif
