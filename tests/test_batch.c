/* Tests for many sequences over one context: batched appends, joining and leaving, forks,
 * rewinds and K-candidate evaluation, each checked against lone sequences fed the same
 * tokens (the oracle), on the GQA model (one run for many rows), the model with kvcache's
 * own attention operator (the same, on its kernel; and with float16 and 8-bit caches) and the
 * Concat model (the fallback: one run per sequence). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "helpers.h"
#include "hooks.h"
#include "rng.h"

enum { VOCAB = 1000, SLOTS = 16 };

typedef struct fixture {
  char concat_dir[256], gqa_dir[256], own_dir[256];
  kvc_model *concat, *gqa, *own, *own_f16, *own_q8; /* own_dir with a float16, 8-bit cache */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  kvc_build_params p = kvc_build_default_params();
  th_tmpdir(f->concat_dir, sizeof f->concat_dir, "batch_concat");
  th_tmpdir(f->gqa_dir, sizeof f->gqa_dir, "batch_gqa");
  assert_int_equal(kvc_build_model(f->concat_dir, &p), KVC_OK);
  p.attention = KVC_ATTENTION_GQA;
  assert_int_equal(kvc_build_model(f->gqa_dir, &p), KVC_OK);
  th_tmpdir(f->own_dir, sizeof f->own_dir, "batch_own");
  p.attention = KVC_ATTENTION_KVCACHE;
  assert_int_equal(kvc_build_model(f->own_dir, &p), KVC_OK);
  f->concat = th_open_model(f->concat_dir);
  f->gqa = th_open_model(f->gqa_dir);
  f->own = th_open_model(f->own_dir);
  f->own_f16 = th_open_model_typed(f->own_dir, KVC_KV_TYPE_F16);
  f->own_q8 = th_open_model_typed(f->own_dir, KVC_KV_TYPE_Q8);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  kvc_model_free(f->concat);
  kvc_model_free(f->gqa);
  kvc_model_free(f->own);
  kvc_model_free(f->own_f16);
  kvc_model_free(f->own_q8);
  th_rmdir(f->concat_dir);
  th_rmdir(f->gqa_dir);
  th_rmdir(f->own_dir);
  free(f);
  return 0;
}

static kvc_seq *seq_in(kvc_ctx *c) {
  kvc_seq *q = NULL;
  if (kvc_seq_new_in(c, &q) != KVC_OK)
    fail_msg("kvc_seq_new_in: %s", kvc_last_error());
  return q;
}

/* A lone sequence (a context of its own) in the context's mode, fed `tokens`. */
static kvc_seq *lone(kvc_model *m, kvc_kv_mode mode, const int32_t *tokens, int32_t n) {
  kvc_seq *q = th_new_seq(m, mode);
  if (n > 0)
    th_append(q, tokens, n);
  return q;
}

static void expect_close(const float *got, const float *want, const char *what, int step) {
  assert_non_null(got);
  assert_non_null(want);
  const double d = th_max_diff(got, want, VOCAB);
  if (d > 1e-4)
    fail_msg("%s at step %d: logits differ from the lone sequence's by %.3g", what, step, d);
  if (th_argmax(got, VOCAB) != th_argmax(want, VOCAB))
    fail_msg("%s at step %d: greedy token %d, lone sequence %d", what, step, th_argmax(got, VOCAB),
             th_argmax(want, VOCAB));
}

/* ---- the randomized test ------------------------------------------------------------------- */

typedef struct live {
  kvc_seq *seq, *oracle;  /* the sequence in the context; a lone sequence fed the same */
  int32_t tokens[512], n; /* everything appended so far (for forks and rewinds) */
  int32_t pending[256], n_pending;
} live;

static int32_t rnd(kvc__rng *r, int32_t lo, int32_t hi) { /* [lo, hi] */
  return lo + (int32_t)(kvc__rng_u64(r) % (uint64_t)(hi - lo + 1));
}

static void random_prompt(kvc__rng *r, live *s, int32_t n) {
  for (int32_t i = 0; i < n; i++)
    s->pending[i] = rnd(r, 0, VOCAB - 1);
  s->n_pending = n;
}

static void drop(live *all, int *n, int i) {
  kvc_seq_free(all[i].seq);
  kvc_seq_free(all[i].oracle);
  all[i] = all[--*n];
}

/* Joins, leaves, forks and rewinds at random between batched appends of random subsets. */
static void random_schedule(kvc_model *m, uint64_t seed, int steps, int max_prompt) {
  kvc__rng r = kvc__rng_seeded(seed);
  kvc_ctx *c = th_new_ctx(m, SLOTS);
  kvc_ctx_info info;
  assert_int_equal(kvc_ctx_get_info(c, &info), KVC_OK);
  live *all = calloc(SLOTS, sizeof *all);
  kvc_batch_item items[SLOTS];
  int n = 0, calls = 0, batched_rows = 0;
  for (int step = 0; step < steps; step++) {
    /* join: a new sequence with a prompt of 1..max_prompt tokens */
    if (n < SLOTS && (n == 0 || kvc__rng_uniform(&r) < 0.3)) {
      live *s = &all[n++];
      memset(s, 0, sizeof *s);
      s->seq = seq_in(c);
      s->oracle = lone(m, info.kv_mode, NULL, 0);
      random_prompt(&r, s, rnd(&r, 1, max_prompt));
    }
    /* a burst: up to three join at once with prompts of about one length (as a server's
     * clients do), which run together where their slots are near */
    if (n < SLOTS && kvc__rng_uniform(&r) < 0.3) {
      const int32_t len = rnd(&r, 3, max_prompt);
      for (int b = rnd(&r, 2, 3); b > 0 && n < SLOTS; b--) {
        live *s = &all[n++];
        memset(s, 0, sizeof *s);
        s->seq = seq_in(c);
        s->oracle = lone(m, info.kv_mode, NULL, 0);
        random_prompt(&r, s, len - rnd(&r, 0, 2));
      }
    }
    /* fork: a child holding the first p tokens of a random sequence */
    if (n > 0 && n < SLOTS && kvc__rng_uniform(&r) < 0.2) {
      live *parent = &all[rnd(&r, 0, n - 1)];
      const int32_t p = rnd(&r, 0, parent->n);
      const float *before = kvc_seq_logits(parent->seq);
      float saved[VOCAB];
      if (before)
        memcpy(saved, before, sizeof saved);
      live *child = &all[n++];
      memset(child, 0, sizeof *child);
      if (kvc_seq_fork(parent->seq, p, &child->seq) != KVC_OK)
        fail_msg("fork at %d of %d: %s", p, parent->n, kvc_last_error());
      memcpy(child->tokens, parent->tokens, (size_t)p * sizeof *child->tokens);
      child->n = p;
      child->oracle = lone(m, info.kv_mode, child->tokens, p);
      assert_int_equal(kvc_seq_len(child->seq), p);
      if (before) /* the parent is untouched */
        assert_memory_equal(kvc_seq_logits(parent->seq), saved, sizeof saved);
      if (p == parent->n && before)
        expect_close(kvc_seq_logits(child->seq), kvc_seq_logits(child->oracle), "fork", step);
      if (p == 0)
        random_prompt(&r, child, rnd(&r, 1, 8));
    }
    /* rewind: keep a random prefix; the oracle is rebuilt from the tokens alone */
    if (n > 0 && kvc__rng_uniform(&r) < 0.15) {
      live *s = &all[rnd(&r, 0, n - 1)];
      if (s->n > 1 && s->n_pending == 0) {
        s->n = rnd(&r, 1, s->n - 1);
        assert_int_equal(kvc_seq_rewind(s->seq, s->n), KVC_OK);
        assert_null(kvc_seq_logits(s->seq));
        kvc_seq_free(s->oracle);
        s->oracle = lone(m, info.kv_mode, s->tokens, s->n);
        s->pending[0] = rnd(&r, 0, VOCAB - 1);
        s->n_pending = 1;
      }
    }
    /* leave */
    if (n > 1 && kvc__rng_uniform(&r) < 0.15)
      drop(all, &n, rnd(&r, 0, n - 1));

    /* one call: a random subset (never empty); the others' slots ride along idle */
    int k = 0;
    for (int i = 0; i < n; i++) {
      live *s = &all[i];
      if (s->n_pending == 0 && kvc__rng_uniform(&r) < 0.25)
        continue;
      if (s->n_pending == 0) { /* greedy where there are logits (a fork has none) */
        const float *l = kvc_seq_logits(s->seq);
        s->pending[0] = l ? th_argmax(l, VOCAB) : rnd(&r, 0, VOCAB - 1);
        s->n_pending = 1;
      }
      if (s->n + s->n_pending > 512) {
        s->n_pending = 0;
        continue;
      }
      items[k++] = (kvc_batch_item){s->seq, s->pending, s->n_pending, NULL};
    }
    if (k == 0)
      continue;
    if (kvc_seq_append_batch(items, k) != KVC_OK)
      fail_msg("step %d, %d items: %s", step, k, kvc_last_error());
    calls++;
    batched_rows += k;
    for (int i = 0; i < n; i++) {
      live *s = &all[i];
      int in_call = 0;
      for (int j = 0; j < k; j++)
        in_call |= items[j].seq == s->seq;
      if (!in_call)
        continue;
      th_append(s->oracle, s->pending, s->n_pending);
      memcpy(s->tokens + s->n, s->pending, (size_t)s->n_pending * sizeof *s->tokens);
      s->n += s->n_pending;
      s->n_pending = 0;
      assert_int_equal(kvc_seq_len(s->seq), s->n);
      expect_close(kvc_seq_logits(s->seq), kvc_seq_logits(s->oracle), "batched append", step);
    }
  }
  assert_true(calls > steps / 2);
  assert_true(batched_rows > calls); /* many calls held several sequences */
  int64_t together = 0;
  assert_true(n > 0);
  kvc__seq_runs(all[0].seq, &together);
  kvc_model_info mi;
  assert_int_equal(kvc_model_get_info(m, &mi), KVC_OK);
  print_message("%d calls of %d rows in all; %lld runs of several sequences' prompts\n", calls,
                batched_rows, (long long)together);
  if (info.kv_mode == KVC_KV_SHARED && mi.attention == KVC_ATTENTION_KVCACHE)
    assert_true(together > 0); /* some calls ran several sequences' prompts together */
  else
    assert_int_equal(together, 0);
  while (n > 0)
    drop(all, &n, 0);
  free(all);
  kvc_ctx_free(c);
}

static void random_schedule_gqa(void **state) {
  fixture *f = *state;
  random_schedule(f->gqa, 11, 60, 200);
  random_schedule(f->gqa, 12, 40, 16);
}

static void random_schedule_own_attention(void **state) {
  fixture *f = *state;
  random_schedule(f->own, 11, 60, 200);
  random_schedule(f->own, 12, 40, 16);
}

static void random_schedule_narrow_caches(void **state) {
  fixture *f = *state;
  random_schedule(f->own_f16, 13, 60, 200);
  random_schedule(f->own_q8, 14, 60, 200);
}

static void random_schedule_concat(void **state) {
  fixture *f = *state;
  random_schedule(f->concat, 21, 30, 64);
}

/* ---- fork and K candidates ---------------------------------------------------------------- */

static void fork_copies_the_prefix_and_leaves_the_parent(void **state) {
  fixture *f = *state;
  kvc_model *models[2] = {f->gqa, f->concat};
  int32_t prompt[40];
  for (int i = 0; i < 40; i++)
    prompt[i] = (i * 37 + 5) % VOCAB;
  for (int mi = 0; mi < 2; mi++) {
    for (int shared_ctx = 0; shared_ctx < 2; shared_ctx++) {
      kvc_ctx *c = shared_ctx ? th_new_ctx(models[mi], 4) : NULL;
      kvc_seq *parent = c ? seq_in(c) : th_new_seq(models[mi], KVC_KV_AUTO);
      th_append(parent, prompt, 40);
      float before[VOCAB];
      memcpy(before, kvc_seq_logits(parent), sizeof before);
      kvc_seq *child = NULL;
      assert_int_equal(kvc_seq_fork(parent, 25, &child), KVC_OK);
      assert_int_equal(kvc_seq_len(child), 25);
      assert_null(kvc_seq_logits(child)); /* not at the parent's end: no logits yet */
      assert_ptr_equal(kvc_seq_ctx(child) == kvc_seq_ctx(parent), shared_ctx);
      kvc_seq *fresh = lone(models[mi], kvc_seq_kv_mode(parent), prompt, 25);
      assert_memory_equal(kvc_seq_logits(parent), before, sizeof before);
      for (int32_t t = 0; t < 5; t++) {
        const int32_t tok = 100 + t;
        th_append(child, &tok, 1);
        th_append(fresh, &tok, 1);
        expect_close(kvc_seq_logits(child), kvc_seq_logits(fresh), "forked child", t);
      }
      /* the parent decodes on as if nothing happened */
      kvc_seq *whole = lone(models[mi], kvc_seq_kv_mode(parent), prompt, 40);
      const int32_t tok = 7;
      th_append(parent, &tok, 1);
      th_append(whole, &tok, 1);
      expect_close(kvc_seq_logits(parent), kvc_seq_logits(whole), "parent after fork", 0);
      /* a fork at the whole length has the parent's logits */
      kvc_seq *twin = NULL;
      assert_int_equal(kvc_seq_fork(parent, 41, &twin), KVC_OK);
      assert_memory_equal(kvc_seq_logits(twin), kvc_seq_logits(parent), VOCAB * sizeof(float));
      kvc_seq *none = twin;
      assert_int_equal(kvc_seq_fork(parent, 42, &none), KVC_ERR_INVALID_ARG);
      assert_null(none);
      kvc_seq_free(twin);
      kvc_seq_free(whole);
      kvc_seq_free(fresh);
      kvc_seq_free(child);
      kvc_seq_free(parent);
      kvc_ctx_free(c);
    }
  }
}

/* K candidates against K separate append-and-rewind, and the sequence unchanged after. */
static void check_candidates(kvc_seq *q, int32_t k, int32_t len) {
  const int32_t start = kvc_seq_len(q);
  float *got = calloc((size_t)k * VOCAB, sizeof *got), before[VOCAB];
  int32_t *cand = calloc((size_t)k * len, sizeof *cand);
  memcpy(before, kvc_seq_logits(q), sizeof before);
  for (int32_t i = 0; i < k * len; i++)
    cand[i] = (i * 131 + 17) % VOCAB;
  assert_int_equal(kvc_seq_eval_candidates(q, cand, k, len, got), KVC_OK);
  assert_int_equal(kvc_seq_len(q), start);
  assert_memory_equal(kvc_seq_logits(q), before, sizeof before);
  /* the oracle: a copy of q (fork is tested above), append and rewind per candidate */
  kvc_seq *copy = NULL;
  assert_int_equal(kvc_seq_fork(q, start, &copy), KVC_OK);
  for (int32_t i = 0; i < k; i++) {
    assert_int_equal(kvc_seq_rewind(copy, start), KVC_OK);
    th_append(copy, cand + (size_t)i * len, len);
    expect_close(got + (size_t)i * VOCAB, kvc_seq_logits(copy), "candidate", i);
  }
  /* and the sequence still decodes as before */
  const int32_t tok = 3;
  th_append(copy, &tok, 1); /* copy is at start + len; compare q against a rewound copy */
  assert_int_equal(kvc_seq_rewind(copy, start), KVC_OK);
  th_append(copy, &tok, 1);
  th_append(q, &tok, 1);
  expect_close(kvc_seq_logits(q), kvc_seq_logits(copy), "after candidates", 0);
  kvc_seq_free(copy);
  free(cand);
  free(got);
}

static void candidates_equal_separate_appends(void **state) {
  fixture *f = *state;
  int32_t prompt[30];
  for (int i = 0; i < 30; i++)
    prompt[i] = (i * 53 + 1) % VOCAB;
  kvc_model *models[4] = {f->gqa, f->concat, f->own_f16, f->own_q8};
  for (int mi = 0; mi < 4; mi++) {
    kvc_ctx *c = th_new_ctx(models[mi], 8);
    kvc_seq *q = seq_in(c);
    th_append(q, prompt, 30);
    check_candidates(q, 6, 1); /* together where the context batches */
    check_candidates(q, 3, 4);
    check_candidates(q, 12, 1); /* more than the free slots: one after another */
    kvc_seq *alone = th_new_seq(models[mi], KVC_KV_AUTO);
    th_append(alone, prompt, 30);
    check_candidates(alone, 4, 2);
    const int32_t bad[2] = {5, VOCAB};
    float out[2 * VOCAB];
    assert_int_equal(kvc_seq_eval_candidates(q, bad, 2, 1, out), KVC_ERR_INVALID_ARG);
    assert_non_null(strstr(kvc_last_error(), "candidate 1"));
    assert_int_equal(kvc_seq_len(q), 33);
    kvc_seq_free(alone);
    kvc_seq_free(q);
    kvc_ctx_free(c);
  }
}

/* ---- persistence, bad input, rollback --------------------------------------------------- */

static void batched_steps_allocate_nothing_and_stay_put(void **state) {
  fixture *f = *state;
  kvc_ctx *c = th_new_ctx(f->gqa, 8);
  kvc_seq *q[8];
  kvc_batch_item items[8];
  int32_t tok[8];
  const int32_t prompt[8] = {10, 11, 12, 13, 14, 15, 16, 17};
  for (int i = 0; i < 8; i++) {
    q[i] = seq_in(c);
    th_append(q[i], prompt, 1 + i); /* lengths 1..8 */
  }
  kvc_ctx_info info;
  assert_int_equal(kvc_ctx_get_info(c, &info), KVC_OK);
  assert_int_equal(info.batches, 1);
  assert_int_equal(info.slots_used, 8);
  assert_int_equal(info.cache_bytes, 8LL * 4 * 2 * 4 * 513 * 64 * 4);
  const void *addr[8];
  for (int i = 0; i < 8; i++)
    addr[i] = kvc__seq_cache_address(q[i], 0, 0);
  const uint64_t before = kvc__alloc_count();
  for (int step = 0; step < 50; step++) {
    for (int i = 0; i < 8; i++) {
      tok[i] = th_argmax(kvc_seq_logits(q[i]), VOCAB);
      items[i] = (kvc_batch_item){q[i], &tok[i], 1, NULL};
    }
    assert_int_equal(kvc_seq_append_batch(items, 8), KVC_OK);
    for (int i = 0; i < 8; i++)
      assert_ptr_equal(kvc__seq_cache_address(q[i], 0, 0), addr[i]);
  }
  assert_int_equal(kvc__alloc_count() - before, 0);
  assert_int_equal(kvc__seq_check_binding(q[0]), KVC_OK);
  for (int i = 0; i < 8; i++) {
    kvc_seq_metrics m;
    assert_int_equal(kvc_seq_get_metrics(q[i], &m), KVC_OK);
    assert_int_equal(m.cache_addresses, 1);
    assert_int_equal(m.decode_allocations, 0);
    assert_int_equal(m.cache_bytes, 4LL * 2 * 4 * 513 * 64 * 4);
    assert_int_equal(kvc_seq_len(q[i]), 1 + i + 50);
    kvc_seq_free(q[i]);
  }
  kvc_ctx_free(c);
}

static void bad_batches_change_nothing(void **state) {
  fixture *f = *state;
  kvc_ctx *c = th_new_ctx(f->gqa, 3), *other = th_new_ctx(f->gqa, 1);
  kvc_seq *a = seq_in(c), *b = seq_in(c), *x = seq_in(other);
  const int32_t pa[3] = {1, 2, 3}, pb[2] = {4, 5}, good = 9, bad = VOCAB + 5;
  th_append(a, pa, 3);
  th_append(b, pb, 2);
  float la[VOCAB], lb[VOCAB];
  memcpy(la, kvc_seq_logits(a), sizeof la);
  memcpy(lb, kvc_seq_logits(b), sizeof lb);
  kvc_batch_item items[3] = {{a, &good, 1, NULL}, {b, &bad, 1, NULL}};
  assert_int_equal(kvc_seq_append_batch(items, 2), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "item 1"));
  assert_non_null(strstr(kvc_last_error(), "1005"));
  items[1] = (kvc_batch_item){a, &good, 1, NULL};
  assert_int_equal(kvc_seq_append_batch(items, 2), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "same sequence"));
  items[1] = (kvc_batch_item){x, &good, 1, NULL};
  assert_int_equal(kvc_seq_append_batch(items, 2), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "another context"));
  assert_int_equal(kvc_seq_append_batch(items, 0), KVC_ERR_INVALID_ARG);
  assert_int_equal(kvc_seq_append_batch(NULL, 1), KVC_ERR_INVALID_ARG);
  assert_int_equal(kvc_seq_len(a), 3);
  assert_int_equal(kvc_seq_len(b), 2);
  assert_memory_equal(kvc_seq_logits(a), la, sizeof la);
  assert_memory_equal(kvc_seq_logits(b), lb, sizeof lb);

  /* no free slot */
  kvc_seq *third = seq_in(c), *fourth = NULL;
  assert_int_equal(kvc_seq_new_in(c, &fourth), KVC_ERR_NO_SLOT);
  assert_null(fourth);
  assert_non_null(strstr(kvc_last_error(), "3 slots"));
  assert_int_equal(kvc_seq_fork(a, 1, &fourth), KVC_ERR_NO_SLOT);
  kvc_seq_free(third); /* a slot comes back */
  assert_int_equal(kvc_seq_new_in(c, &fourth), KVC_OK);
  assert_int_equal(kvc_seq_len(fourth), 0);
  assert_null(kvc_seq_logits(fourth));
  kvc_seq_free(fourth);

  kvc_ctx_params p = kvc_ctx_default_params();
  kvc_ctx *none = NULL;
  p.slots = 0;
  assert_int_equal(kvc_ctx_new(f->gqa, &p, &none), KVC_ERR_INVALID_ARG);
  p.slots = KVC_MAX_SLOTS + 1;
  assert_int_equal(kvc_ctx_new(f->gqa, &p, &none), KVC_ERR_INVALID_ARG);
  p.slots = 2;
  p.kv_mode = KVC_KV_SHARED;
  assert_int_equal(kvc_ctx_new(f->concat, &p, &none), KVC_ERR_INVALID_ARG);
  assert_null(none);
  kvc_seq_free(x);
  kvc_ctx_free(other);
  kvc_seq_free(b);
  /* a context freed under a sequence leaves the handle to its owner, detached: every call
   * fails saying so (it used to free the handle, so that the owner's kvc_seq_free was a
   * double free), kvc_seq_free still frees it */
  kvc_ctx_free(c);
  const int32_t one = 1;
  assert_int_equal(kvc_seq_append(a, &one, 1), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "kvc_seq_append: the sequence's context was freed"));
  kvc_seq *child = (kvc_seq *)&child;
  assert_int_equal(kvc_seq_fork(a, 0, &child), KVC_ERR_INVALID_ARG);
  assert_null(child);
  size_t size = 1;
  assert_int_equal(kvc_seq_save_buffer(a, NULL, 0, &size), KVC_ERR_INVALID_ARG);
  assert_int_equal(kvc_seq_rewind(a, 0), KVC_ERR_INVALID_ARG);
  assert_int_equal(kvc_seq_len(a), 0);
  assert_null(kvc_seq_logits(a));
  assert_null(kvc_seq_ctx(a));
  kvc_seq_free(a);
}

/* A failure in a later run of a call puts every sequence back: length, cache and logits. */
static void failed_runs_roll_back(void **state) {
  fixture *f = *state;
  const kvc_kv_mode modes[] = {KVC_KV_SHARED, KVC_KV_BOUND, KVC_KV_NAIVE, KVC_KV_UNCACHED};
  int32_t prompt[7];
  for (int i = 0; i < 7; i++)
    prompt[i] = 40 + i;
  for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
    kvc_seq *q = th_new_seq(f->gqa, modes[mi]);
    th_append(q, prompt, 3);
    float before[VOCAB];
    memcpy(before, kvc_seq_logits(q), sizeof before);
    kvc__seq_inject(q, 2, 3); /* chunks of 3 tokens; the second run fails */
    assert_int_equal(kvc_seq_append(q, prompt, 7), KVC_ERR_RUNTIME);
    assert_int_equal(kvc_seq_len(q), 3);
    assert_non_null(kvc_seq_logits(q));
    assert_memory_equal(kvc_seq_logits(q), before, sizeof before);
    /* and it goes on exactly as a sequence that never failed */
    th_append(q, prompt, 7);
    kvc_seq *ref = th_new_seq(f->gqa, modes[mi]);
    th_append(ref, prompt, 3);
    th_append(ref, prompt, 7);
    expect_close(kvc_seq_logits(q), kvc_seq_logits(ref), kvc_kv_mode_name(modes[mi]), 0);
    kvc_seq_free(ref);
    kvc_seq_free(q);
  }
  /* batched: the prefills succeed, the run together fails */
  kvc_ctx *c = th_new_ctx(f->gqa, 4);
  kvc_seq *a = seq_in(c), *b = seq_in(c);
  th_append(a, prompt, 2);
  float before[VOCAB];
  memcpy(before, kvc_seq_logits(a), sizeof before);
  kvc_batch_item items[2] = {{a, prompt, 5, NULL}, {b, prompt, 4, NULL}};
  kvc__seq_inject(a, 3, 0);
  assert_int_equal(kvc_seq_append_batch(items, 2), KVC_ERR_RUNTIME);
  assert_int_equal(kvc_seq_len(a), 2);
  assert_int_equal(kvc_seq_len(b), 0);
  assert_null(kvc_seq_logits(b));
  assert_memory_equal(kvc_seq_logits(a), before, sizeof before);
  assert_int_equal(kvc_seq_append_batch(items, 2), KVC_OK);
  kvc_seq *ref = lone(f->gqa, KVC_KV_SHARED, prompt, 2);
  th_append(ref, prompt, 5);
  expect_close(kvc_seq_logits(a), kvc_seq_logits(ref), "batched after a failure", 0);
  kvc_seq_free(ref);
  kvc_seq_free(a);
  kvc_seq_free(b);
  kvc_ctx_free(c);
}

/* Appends `n` tokens (pattern `seed`) to each of the k sequences in one call, then checks each
 * against a lone sequence fed the same, and that the call made `runs` runs, `together` of them
 * of several sequences' prompts. */
static void append_prompts(kvc_seq *const *q, kvc_seq *const *oracle, const int32_t *n, int k,
                           int64_t runs, int64_t together, const char *what) {
  int32_t tokens[4][600];
  kvc_batch_item items[4];
  for (int i = 0; i < k; i++) {
    for (int32_t t = 0; t < n[i]; t++)
      tokens[i][t] = (int32_t)((kvc_seq_len(q[i]) + t) * 29 + i * 7) % VOCAB;
    items[i] = (kvc_batch_item){q[i], tokens[i], n[i], NULL};
  }
  int64_t together_before = 0, together_after = 0;
  const int64_t runs_before = kvc__seq_runs(q[0], &together_before);
  if (kvc_seq_append_batch(items, k) != KVC_OK)
    fail_msg("%s: %s", what, kvc_last_error());
  const int64_t made = kvc__seq_runs(q[0], &together_after) - runs_before;
  if (made != runs || together_after - together_before != together)
    fail_msg("%s: %lld runs, %lld of prompts together; expected %lld and %lld", what,
             (long long)made, (long long)(together_after - together_before), (long long)runs,
             (long long)together);
  for (int i = 0; i < k; i++) {
    th_append(oracle[i], tokens[i], n[i]);
    assert_int_equal(kvc_seq_len(q[i]), kvc_seq_len(oracle[i]));
    expect_close(kvc_seq_logits(q[i]), kvc_seq_logits(oracle[i]), what, i);
  }
}

/* Several sequences' prompts in one call run together, padded to the longest, where the graph
 * is kvcache's attention, every row of their slot range has room, and the padding and idle
 * rows cost less than the runs saved; else each alone. Either way each sequence's logits are
 * a lone sequence's. */
static void prompts_run_together_where_it_pays(void **state) {
  fixture *f = *state;
  kvc_model *models[] = {f->own, f->own_q8, f->gqa};
  for (int mi = 0; mi < 3; mi++) {
    kvc_model *m = models[mi];
    const int own = m != f->gqa;
    kvc_ctx *c = th_new_ctx(m, 4);
    kvc_ctx_info info;
    assert_int_equal(kvc_ctx_get_info(c, &info), KVC_OK);
    kvc_seq *q[4], *oracle[4];
    for (int i = 0; i < 4; i++) {
      q[i] = seq_in(c);
      oracle[i] = lone(m, info.kv_mode, NULL, 0);
    }
    /* two prompts of 20 and 17 in neighbouring slots: one run for both, then the step */
    append_prompts(q, oracle, (int32_t[]){20, 17}, 2, own ? 2 : 3, own ? 1 : 0, "together");
    /* three, one of them a single token (it waits for the step) */
    append_prompts(q, oracle, (int32_t[]){6, 1, 9}, 3, own ? 2 : 3, own ? 1 : 0,
                   "with a decode step");
    /* chunks of 8 tokens over two rows: 12 and 8 prompt tokens in 3 runs of 4 (alone: 8 + 4,
     * and 8) */
    kvc__seq_inject(q[0], 0, 8);
    append_prompts(q, oracle, (int32_t[]){13, 9}, 2, 4, own ? 3 : 0, "in chunks");
    kvc__seq_inject(q[0], 0, info.max_seq_len);
    /* slots 0 and 3 with two idle rows between: 4 x 29 tokens for 58: each alone */
    kvc_seq *ends[2] = {q[0], q[3]}, *end_oracles[2] = {oracle[0], oracle[3]};
    append_prompts(ends, end_oracles, (int32_t[]){30, 30}, 2, 3, 0, "far apart");
    /* slot 1 left too little room for slot 0's longer prompt as padding: each alone */
    const int32_t room = info.max_seq_len - kvc_seq_len(q[1]) - 3;
    append_prompts(&q[1], &oracle[1], (int32_t[]){room}, 1, 1, 0, "filling slot 1");
    append_prompts(q, oracle, (int32_t[]){10, 3}, 2, 3, 0, "no room");
    for (int i = 0; i < 4; i++) {
      kvc_seq_free(q[i]);
      kvc_seq_free(oracle[i]);
    }
    /* a failure in the run of both prompts puts both back */
    kvc_seq *a = seq_in(c), *b = seq_in(c);
    th_append(a, (int32_t[]){5, 6}, 2);
    float before[VOCAB];
    memcpy(before, kvc_seq_logits(a), sizeof before);
    const int32_t prompt[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    kvc_batch_item items[2] = {{a, prompt, 8, NULL}, {b, prompt, 6, NULL}};
    kvc__seq_inject(a, 1, 0);
    assert_int_equal(kvc_seq_append_batch(items, 2), KVC_ERR_RUNTIME);
    assert_int_equal(kvc_seq_len(a), 2);
    assert_int_equal(kvc_seq_len(b), 0);
    assert_memory_equal(kvc_seq_logits(a), before, sizeof before);
    assert_int_equal(kvc_seq_append_batch(items, 2), KVC_OK);
    kvc_seq *ref = lone(m, info.kv_mode, (int32_t[]){5, 6}, 2);
    th_append(ref, prompt, 8);
    expect_close(kvc_seq_logits(a), kvc_seq_logits(ref), "together after a failure", 0);
    kvc_seq_free(ref);
    kvc_seq_free(a);
    kvc_seq_free(b);
    kvc_ctx_free(c);
  }
}

/* A sequence takes the lowest free slot (new or forked), which kvc_seq_slot reports. */
static void sequences_take_the_lowest_free_slot(void **state) {
  fixture *f = *state;
  kvc_ctx *c = th_new_ctx(f->own, 4);
  kvc_seq *q[3];
  for (int i = 0; i < 3; i++) {
    q[i] = seq_in(c);
    assert_int_equal(kvc_seq_slot(q[i]), i);
  }
  th_append(q[2], (int32_t[]){1, 2, 3}, 3);
  kvc_seq_free(q[1]);
  kvc_seq *child = NULL;
  assert_int_equal(kvc_seq_fork(q[2], 2, &child), KVC_OK);
  assert_int_equal(kvc_seq_slot(child), 1);
  kvc_seq *last = seq_in(c);
  assert_int_equal(kvc_seq_slot(last), 3);
  assert_int_equal(kvc_seq_slot(NULL), -1);
  kvc_seq_free(q[0]);
  kvc_seq_free(q[2]);
  kvc_seq_free(child);
  kvc_ctx_free(c);
  assert_int_equal(kvc_seq_slot(last), -1); /* its context is gone */
  kvc_seq_free(last);
}

/* Every position's logits on request equal those of token-by-token appends. */
static void all_logits_match_single_steps(void **state) {
  fixture *f = *state;
  int32_t prompt[9];
  for (int i = 0; i < 9; i++)
    prompt[i] = 300 + 11 * i;
  kvc_kv_mode modes[] = {KVC_KV_SHARED, KVC_KV_BOUND, KVC_KV_UNCACHED};
  for (int mi = 0; mi < 3; mi++) {
    float *all = calloc(9 * VOCAB, sizeof *all);
    kvc_seq *q = th_new_seq(f->gqa, modes[mi]), *ref = th_new_seq(f->gqa, modes[mi]);
    th_append(q, prompt, 2);
    th_append(ref, prompt, 2);
    kvc__seq_inject(q, 0, 4); /* several chunks */
    assert_int_equal(kvc_seq_append_all(q, prompt, 9, all), KVC_OK);
    for (int i = 0; i < 9; i++) {
      th_append(ref, prompt + i, 1);
      expect_close(all + (size_t)i * VOCAB, kvc_seq_logits(ref), "position", i);
    }
    kvc_seq_free(q);
    kvc_seq_free(ref);
    free(all);
  }
}

/* build-model's graphs take logits_to_keep: an append computes its last position's logits
 * alone (the LM head on one row), kvc_seq_append_all every position's; the genai layout, as
 * onnxruntime-genai writes it, does not take it, and every position comes back. */
static void appends_compute_the_logits_they_return(void **state) {
  fixture *f = *state;
  char dir[256];
  th_tmpdir(dir, sizeof dir, "batch_genai");
  kvc_build_params p = kvc_build_default_params();
  p.attention = KVC_ATTENTION_GQA;
  p.layout = KVC_LAYOUT_GENAI;
  p.naming = KVC_NAMING_HF;
  assert_int_equal(kvc_build_model(dir, &p), KVC_OK);
  kvc_model *genai = th_open_model(dir);
  const kvc_model *models[] = {f->concat, f->gqa, f->own, genai};
  int32_t prompt[7];
  for (int i = 0; i < 7; i++)
    prompt[i] = 40 + 3 * i;
  float all[7 * VOCAB];
  for (int mi = 0; mi < 4; mi++)
    for (int mode = 0; mode < (models[mi] == f->concat ? 1 : 2); mode++) { /* concat: no SHARED */
      kvc_seq *q = th_new_seq((kvc_model *)models[mi], mode ? KVC_KV_SHARED : KVC_KV_BOUND);
      th_append(q, prompt, 7);
      assert_int_equal(kvc__seq_logits_rows(q), mi == 3 ? 7 : 1);
      assert_int_equal(kvc_seq_append_all(q, prompt, 7, all), KVC_OK);
      assert_int_equal(kvc__seq_logits_rows(q), 7);
      kvc_seq_free(q);
    }
  kvc_model_free(genai);
  th_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(random_schedule_gqa),
      cmocka_unit_test(random_schedule_own_attention),
      cmocka_unit_test(random_schedule_narrow_caches),
      cmocka_unit_test(random_schedule_concat),
      cmocka_unit_test(fork_copies_the_prefix_and_leaves_the_parent),
      cmocka_unit_test(candidates_equal_separate_appends),
      cmocka_unit_test(batched_steps_allocate_nothing_and_stay_put),
      cmocka_unit_test(bad_batches_change_nothing),
      cmocka_unit_test(failed_runs_roll_back),
      cmocka_unit_test(prompts_run_together_where_it_pays),
      cmocka_unit_test(sequences_take_the_lowest_free_slot),
      cmocka_unit_test(all_logits_match_single_steps),
      cmocka_unit_test(appends_compute_the_logits_they_return),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
