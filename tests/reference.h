/* reference.h: the builder's decoder computed in plain C with double accumulation,
 * straight from config.json and model.onnx.data, without ONNX Runtime. The numeric oracle
 * of the tests. */
#ifndef KVC_BUILD_REFERENCE_H
#define KVC_BUILD_REFERENCE_H

#include <stdint.h>

#include "kvcache.h"
#include "layout.h"

typedef struct kvc__ref kvc__ref;

/* Load DIR/config.json and DIR/model.onnx.data. */
kvc_status kvc__ref_open(const char *dir, kvc__ref **out);
void kvc__ref_free(kvc__ref *r);

/* Logits of every position of one sequence of n tokens, computed from scratch.
 * positions: n position ids (NULL: 0..n-1). keep: n flags, 0 = padding that no position
 * may attend to (NULL: all 1). Position i attends to j <= i with keep[j] != 0.
 * logits: n * vocab doubles, row-major (position, vocab). */
kvc_status kvc__ref_logits(const kvc__ref *r, const int64_t *tokens, const int64_t *positions,
                           const int64_t *keep, int n, double *logits);

#endif
