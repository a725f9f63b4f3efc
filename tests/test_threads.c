/* Threads: 8 threads share one model; each drives its own sequences (a lone SHARED one, a
 * BOUND one) and its own context of 3 slots decoding in batches, all at once. Every thread
 * gets exactly the tokens and logits that the same work gives on one thread. `make tsan`
 * runs this under ThreadSanitizer (suppressions: ONNX Runtime's own frames only). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>

#include "helpers.h"

enum { THREADS = 8, STEPS = 40, PROMPT = 5, SLOTS = 3, V = 128 };

typedef struct work {
  kvc_model *model;
  int seed;
  kvc_status status;
  char error[256];
  int32_t lone[2][STEPS];        /* SHARED and BOUND sequences' greedy tokens */
  int32_t batched[SLOTS][STEPS]; /* the context's sequences' tokens */
  float last[SLOTS][V];          /* their last logits */
} work;

static void prompt_of(int seed, int which, int32_t *out) {
  for (int i = 0; i < PROMPT; i++)
    out[i] = (seed * 31 + which * 17 + i * 7) % V;
}

static int32_t argmax(const float *l) {
  int32_t best = 0;
  for (int32_t i = 1; i < V; i++)
    best = l[i] > l[best] ? i : best;
  return best;
}

#define TRY(call)                                                                                  \
  do {                                                                                             \
    if (!w->status && (w->status = (call)))                                                        \
      snprintf(w->error, sizeof w->error, "%s: %s", #call, kvc_last_error());                      \
  } while (0)

static void *run(void *arg) {
  work *w = arg;
  const kvc_kv_mode modes[2] = {KVC_KV_SHARED, KVC_KV_BOUND};
  for (int m = 0; m < 2; m++) {
    kvc_seq_params sp = kvc_seq_default_params();
    sp.kv_mode = modes[m];
    kvc_seq *q = NULL;
    int32_t t[PROMPT];
    prompt_of(w->seed, m, t);
    TRY(kvc_seq_new(w->model, &sp, &q));
    TRY(kvc_seq_append(q, t, PROMPT));
    for (int s = 0; s < STEPS && !w->status; s++) {
      w->lone[m][s] = argmax(kvc_seq_logits(q));
      TRY(kvc_seq_append(q, &w->lone[m][s], 1));
    }
    kvc_seq_free(q);
  }
  kvc_ctx_params cp = {.slots = SLOTS, .kv_mode = KVC_KV_SHARED};
  kvc_ctx *c = NULL;
  kvc_seq *seqs[SLOTS] = {NULL};
  TRY(kvc_ctx_new(w->model, &cp, &c));
  for (int k = 0; k < SLOTS && !w->status; k++) {
    int32_t t[PROMPT];
    prompt_of(w->seed, 2 + k, t);
    TRY(kvc_seq_new_in(c, &seqs[k]));
    TRY(kvc_seq_append(seqs[k], t, PROMPT - k)); /* different lengths */
  }
  for (int s = 0; s < STEPS && !w->status; s++) {
    kvc_batch_item items[SLOTS];
    for (int k = 0; k < SLOTS; k++) {
      w->batched[k][s] = argmax(kvc_seq_logits(seqs[k]));
      items[k] = (kvc_batch_item){seqs[k], &w->batched[k][s], 1, NULL};
    }
    TRY(kvc_seq_append_batch(items, SLOTS));
  }
  for (int k = 0; k < SLOTS && !w->status; k++)
    memcpy(w->last[k], kvc_seq_logits(seqs[k]), sizeof w->last[k]);
  for (int k = 0; k < SLOTS; k++)
    kvc_seq_free(seqs[k]);
  kvc_ctx_free(c);
  return NULL;
}

static void threads_get_the_single_threaded_results(void **state) {
  (void)state;
  char dir[256];
  kvc_build_params p = kvc_build_default_params();
  p.layers = 2, p.heads = 4, p.kv_heads = 2, p.head_dim = 16, p.vocab_size = V, p.max_seq_len = 64;
  p.attention = KVC_ATTENTION_GQA;
  th_tmpdir(dir, sizeof dir, "threads");
  assert_int_equal(kvc_build_model(dir, &p), KVC_OK);
  kvc_model *m = th_open_model(dir);
  work *alone = calloc(THREADS, sizeof *alone), *together = calloc(THREADS, sizeof *together);
  for (int i = 0; i < THREADS; i++) { /* one after another */
    alone[i] = (work){.model = m, .seed = i};
    run(&alone[i]);
    if (alone[i].status)
      fail_msg("alone %d: %s", i, alone[i].error);
  }
  pthread_t t[THREADS]; /* pthreads: ThreadSanitizer intercepts them, not C11 thrd_create */
  for (int i = 0; i < THREADS; i++) {
    together[i] = (work){.model = m, .seed = i};
    assert_int_equal(pthread_create(&t[i], NULL, run, &together[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    if (together[i].status)
      fail_msg("thread %d: %s", i, together[i].error);
    assert_memory_equal(together[i].lone, alone[i].lone, sizeof alone[i].lone);
    assert_memory_equal(together[i].batched, alone[i].batched, sizeof alone[i].batched);
    assert_memory_equal(together[i].last, alone[i].last, sizeof alone[i].last);
  }
  /* and the streams differ between workers: the comparison has something to compare */
  assert_true(memcmp(alone[0].lone, alone[1].lone, sizeof alone[0].lone) != 0);
  free(alone);
  free(together);
  kvc_model_free(m);
  th_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(threads_get_the_single_threaded_results),
  };
  return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
