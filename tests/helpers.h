/* helpers.h: test-only helpers to run a built decoder directly through ONNX Runtime
 * (plain Run, outputs allocated by ORT), independent of the engine under test. */
#ifndef KVC_TESTS_HELPERS_H
#define KVC_TESTS_HELPERS_H

#include <stdint.h>

#include "kvcache.h"
#include "onnx/onnx.pb-c.h"
#include "modelgen/onnx.h"
#include "ort.h"

typedef struct th_session {
  OrtEnv *env;
  OrtSession *session;
  kvc_naming naming;
  int layers, heads, head_dim, vocab;
} th_session;

/* Open DIR/model.onnx with one intra-op thread; asserts on failure. */
void th_open(th_session *t, const char *dir, kvc_naming naming, int layers, int heads, int head_dim,
             int vocab);
void th_close(th_session *t);

/* One batch-1 step: n tokens at positions (NULL: past_len..past_len+n-1), keep flags for
 * all past_len + n positions (NULL: all 1; only used in the hf naming), past caches
 * (layers * 2 arrays of heads*past_len*head_dim floats, key then value; NULL when
 * past_len is 0). Writes logits (n * vocab) and, when present is not NULL, the present
 * caches (layers * 2 arrays, malloc'd, heads*(past_len+n)*head_dim floats each). */
void th_step(th_session *t, const int64_t *tokens, int n, const int64_t *positions,
             const int64_t *keep, float *const *past, int past_len, float *logits, float **present);

/* Seeded random tokens in [0, vocab). */
void th_random_tokens(uint64_t *state, int64_t *tokens, int n, int vocab);

/* A fresh temporary directory path (not created) under /tmp; static per call site buffer. */
void th_tmpdir(char *buf, size_t cap, const char *tag);

/* rm -rf for a model directory we made (three known files + the directory). */
void th_rmdir(const char *dir);

/* The whole file at `path` (malloc'd with a NUL after it, the caller frees it; *size its
 * bytes); fails the test when it cannot be read. */
uint8_t *th_slurp(const char *path, size_t *size);

/* kvc_model_open with one intra-op thread (tests run side by side); the test fails with
 * kvc_last_error() if it cannot. */
kvc_model *th_open_model(const char *dir);
/* ... with the cache of element type `type`. */
kvc_model *th_open_model_typed(const char *dir, kvc_kv_type type);

/* A new context of `slots` slots (the model's mode); the test fails if it cannot be made. */
kvc_ctx *th_new_ctx(kvc_model *m, int32_t slots);

/* A new sequence in `mode`; the test fails (with kvc_last_error()) if it cannot be made. */
kvc_seq *th_new_seq(kvc_model *m, kvc_kv_mode mode);

/* kvc_seq_append, the test failing with the mode, position and message on any error. */
void th_append(kvc_seq *q, const int32_t *tokens, int32_t n);

/* DIR/model.onnx (at most 1 MiB), unpacked; free with onnx__model_proto__free_unpacked. */
Onnx__ModelProto *th_load_graph(const char *dir);

/* `steps` greedy decode steps of q (which holds tokens): every layer's cache stays at one
 * address, no step allocates, every output was written where it was bound. */
void th_decode_in_place(kvc_seq *q, int layers, int vocab, int steps);

/* max |a[i] - b[i]| over n values. */
double th_max_diff(const float *a, const float *b, int n);

/* Index of the largest of n logits (the lowest on ties). */
int32_t th_argmax(const float *logits, int n);

/* A session over graph m (packed, then freed here) with kvcache's operators registered and
 * 2 intra-op threads; NULL with *failure set when ONNX Runtime refuses the graph. */
OrtSession *th_ops_session(OrtEnv *env, kvc__onnx *m, OrtStatus **failure);

#endif
