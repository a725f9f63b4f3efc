/* seq.c: the public verbs on sequences: make one (in a context's slot, or with a context of
 * its own), append to one or many, rewind, fork, evaluate K candidates, metrics. The runs
 * themselves are decode.c's. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "ctx.h"
#include "error.h"

kvc_seq_params kvc_seq_default_params(void) {
  return (kvc_seq_params){.kv_mode = KVC_KV_AUTO};
}

/* A sequence in a free slot of c. */
static kvc_status seq_in(kvc_ctx *c, int owns_ctx, kvc_seq **out) {
  kvc_seq *q = kvc__calloc(1, sizeof *q);
  if (q)
    q->m.decode_ms = kvc__calloc((size_t)c->capacity, sizeof *q->m.decode_ms);
  if (!q || !q->m.decode_ms) {
    kvc__free(q);
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for a sequence");
  }
  q->slot = kvc__ctx_take_slot(c, KVC_SLOT_SEQ, q);
  if (q->slot < 0) {
    kvc__free(q->m.decode_ms);
    kvc__free(q);
    return kvc__fail(KVC_ERR_NO_SLOT, "every one of the context's %d slots holds a sequence",
                     c->slots);
  }
  q->ctx = c;
  q->owns_ctx = owns_ctx;
  *out = q;
  return KVC_OK;
}

kvc_status kvc_seq_new_in(kvc_ctx *ctx, kvc_seq **out) {
  if (!out)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_new_in: out is NULL");
  *out = NULL;
  if (!ctx)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_new_in: ctx is NULL");
  return seq_in(ctx, 0, out);
}

kvc_status kvc_seq_new(kvc_model *model, const kvc_seq_params *params, kvc_seq **out) {
  if (!out)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_new: out is NULL");
  *out = NULL;
  if (!model)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_new: model is NULL");
  const kvc_seq_params p = params ? *params : kvc_seq_default_params();
  kvc_ctx *c = NULL;
  kvc_status s = kvc__ctx_make(model, 1, p.kv_mode, &c);
  if (!s && (s = seq_in(c, 1, out)))
    kvc_ctx_free(c);
  return s;
}

void kvc_seq_free(kvc_seq *q) {
  if (!q)
    return;
  if (q->ctx) {
    kvc__ctx_give_slot(q->ctx, q->slot);
    if (q->owns_ctx)
      kvc_ctx_free(q->ctx);
  }
  kvc__free(q->m.decode_ms);
  kvc__free(q);
}

kvc_status kvc__seq_check(const kvc_seq *q, const char *fn) {
  if (!q)
    return kvc__fail(KVC_ERR_INVALID_ARG, "%s: seq is NULL", fn);
  if (!q->ctx)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "%s: the sequence's context was freed (kvc_ctx_free): only kvc_seq_free "
                     "applies to it",
                     fn);
  return KVC_OK;
}

kvc_ctx *kvc_seq_ctx(const kvc_seq *q) {
  return q ? q->ctx : NULL;
}

int32_t kvc_seq_slot(const kvc_seq *q) {
  return q && q->ctx ? q->slot : -1;
}

/* ---- appending ------------------------------------------------------------------------- */

static void note_address(kvc_seq *q) {
  const void *p = q->ctx->ops->address(q->ctx, q->slot);
  for (int i = 0; p && i < q->m.n_addresses; i++)
    if (q->m.addresses[i] == p)
      return;
  if (p && q->m.n_addresses < KVC_MAX_ADDRESSES)
    q->m.addresses[q->m.n_addresses++] = p;
}

/* Check a call's items against each other and the context; nothing is changed. */
static kvc_status check_items(const kvc_batch_item *items, int32_t count) {
  if (!items)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_append_batch: items is NULL");
  if (count < 1)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_append_batch: n = %d: expected at least 1 item",
                     count);
  for (int32_t i = 0; i < count; i++) {
    if (items[i].seq && items[i].seq->ctx)
      continue;
    char what[64]; /* the message is made only for the item that fails */
    snprintf(what, sizeof what, "kvc_seq_append_batch: item %d", i);
    return kvc__seq_check(items[i].seq, what);
  }
  kvc_ctx *c = items[0].seq->ctx;
  if (count > c->slots)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "kvc_seq_append_batch: %d items for a context of %d slots: a sequence "
                     "appears twice, or sequences of other contexts are mixed in",
                     count, c->slots);
  kvc_status s = KVC_OK;
  for (int32_t i = 0; i < count && !s; i++) {
    const kvc_batch_item *it = &items[i];
    const kvc_seq *q = it->seq;
    const int32_t len = c->lens[q->slot];
    char who[32] = ""; /* which item, when there are several */
    if (count > 1)
      snprintf(who, sizeof who, "item %d: ", i);
    if (q->ctx != c)
      s = kvc__fail(KVC_ERR_INVALID_ARG,
                    "%sits sequence belongs to another context than item 0's; one call appends "
                    "to the sequences of one context",
                    who);
    else if (c->plan_mark[q->slot])
      s = kvc__fail(KVC_ERR_INVALID_ARG,
                    "%sthe same sequence as an earlier item; a sequence may appear once per call",
                    who);
    else if (!it->tokens)
      s = kvc__fail(KVC_ERR_INVALID_ARG, "%stokens is NULL", who);
    else if (it->n_tokens <= 0)
      s = kvc__fail(KVC_ERR_INVALID_ARG, "%sn = %d: expected at least 1 token", who, it->n_tokens);
    else if (it->n_tokens > c->capacity - len)
      s = kvc__fail(KVC_ERR_CACHE_FULL,
                    "%sappending %d tokens to a sequence of %d would exceed max_seq_len %d", who,
                    it->n_tokens, len, c->capacity);
    for (int32_t k = 0; !s && k < it->n_tokens; k++)
      if (it->tokens[k] < 0 || it->tokens[k] >= c->vocab)
        s = kvc__fail(KVC_ERR_INVALID_ARG,
                      "%stoken %d (at index %d) is outside [0, %d): vocab_size is %d", who,
                      it->tokens[k], k, c->vocab, c->vocab);
    if (q->ctx == c)
      c->plan_mark[q->slot] = 1;
  }
  for (int32_t i = 0; i < count; i++)
    if (items[i].seq->ctx == c)
      c->plan_mark[items[i].seq->slot] = 0;
  return s;
}

kvc_status kvc_seq_append_batch(const kvc_batch_item *items, int32_t count) {
  kvc_status s = check_items(items, count);
  if (s)
    return s;
  kvc_ctx *c = items[0].seq->ctx;
  const double start = kvc__now_ms();
  const uint64_t allocations_before = kvc__alloc_count();
  int any_all = 0;
  for (int32_t i = 0; i < count; i++) { /* the context's scratch rows carry the call */
    c->plan_slot[i] = items[i].seq->slot;
    c->plan_tokens[i] = items[i].tokens;
    c->plan_n[i] = items[i].n_tokens;
    c->plan_all[i] = items[i].all_logits;
    any_all |= items[i].all_logits != NULL;
  }
  s = kvc__append_slots(c, c->plan_slot, c->plan_tokens, c->plan_n, any_all ? c->plan_all : NULL,
                        count, 1);
  if (s)
    return s;
  const double ms = kvc__now_ms() - start;
  const int64_t allocations = (int64_t)(kvc__alloc_count() - allocations_before);
  for (int32_t i = 0; i < count; i++) {
    kvc_seq *q = items[i].seq;
    const int32_t len = c->lens[q->slot];
    note_address(q);
    if (len == items[i].n_tokens) {
      q->m.prefill_ms = ms;
      q->m.prefill_tokens = items[i].n_tokens;
    } else if (items[i].n_tokens == 1 && q->m.decode_steps < c->capacity) {
      q->m.decode_ms[q->m.decode_steps++] = ms;
      q->m.decode_allocations += allocations;
    }
  }
  return KVC_OK;
}

kvc_status kvc_seq_append_all(kvc_seq *q, const int32_t *tokens, int32_t n, float *all_logits) {
  kvc_status s = kvc__seq_check(q, "kvc_seq_append");
  if (s)
    return s;
  const kvc_batch_item item = {q, tokens, n, all_logits};
  return kvc_seq_append_batch(&item, 1);
}

kvc_status kvc_seq_append(kvc_seq *q, const int32_t *tokens, int32_t n) {
  return kvc_seq_append_all(q, tokens, n, NULL);
}

const float *kvc_seq_logits(const kvc_seq *q) {
  return q && q->ctx && q->ctx->has_logits[q->slot] ? kvc__ctx_logits(q->ctx, q->slot) : NULL;
}

int32_t kvc_seq_len(const kvc_seq *q) {
  return q && q->ctx ? q->ctx->lens[q->slot] : 0;
}

const int32_t *kvc_seq_tokens(const kvc_seq *q) {
  return q && q->ctx ? q->ctx->tokens + (size_t)q->slot * q->ctx->capacity : NULL;
}

kvc_kv_mode kvc_seq_kv_mode(const kvc_seq *q) {
  return q && q->ctx ? q->ctx->ops->mode : KVC_KV_AUTO;
}

/* ---- rewinding and forking ------------------------------------------------------------- */

static void reset_metrics(kvc_seq *q) {
  q->m.prefill_ms = 0;
  q->m.prefill_tokens = 0;
  q->m.decode_steps = 0;
  q->m.decode_allocations = 0;
}

kvc_status kvc_seq_reset(kvc_seq *q) {
  kvc_status s = kvc__seq_check(q, "kvc_seq_reset");
  if (s)
    return s;
  kvc__ctx_truncate(q->ctx, q->slot, 0, 0); /* to 0 cannot fail */
  reset_metrics(q);
  return KVC_OK;
}

kvc_status kvc_seq_rewind(kvc_seq *q, int32_t len) {
  kvc_status s = kvc__seq_check(q, "kvc_seq_rewind");
  if (s)
    return s;
  const int32_t now = q->ctx->lens[q->slot];
  if (len < 0 || len > now)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_rewind: len = %d: expected 0..%d (the length)",
                     len, now);
  if (len == now)
    return KVC_OK;
  if (len == 0)
    return kvc_seq_reset(q);
  return kvc__ctx_truncate(q->ctx, q->slot, len, 0);
}

kvc_status kvc_seq_assign(kvc_seq *q, const int32_t *tokens, int32_t n, int32_t *reused) {
  kvc_status s = kvc__seq_check(q, "kvc_seq_assign");
  if (s)
    return s;
  if (!tokens || n <= 0)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_assign: %s",
                     !tokens ? "tokens is NULL" : "n must be >= 1");
  const int32_t len = kvc_seq_len(q), *have = kvc_seq_tokens(q);
  int32_t keep = 0;
  while (keep < len && keep < n - 1 && have[keep] == tokens[keep])
    keep++; /* at least the last token is appended again: its logits are wanted */
  if ((s = kvc_seq_rewind(q, keep)))
    return s;
  if (reused)
    *reused = keep;
  return kvc_seq_append(q, tokens + keep, n - keep);
}

/* Make dst's slot a copy of the first len positions of src's: cache, tokens, length, and the
 * logits when len is src's whole length. */
static kvc_status copy_slot(kvc_ctx *dst, int32_t dst_slot, const kvc_ctx *src, int32_t src_slot,
                            int32_t len) {
  kvc_status s = dst->ops->copy(dst, dst_slot, src, src_slot, len);
  if (s)
    return s;
  const int whole = len == src->lens[src_slot] && src->has_logits[src_slot];
  kvc__slot_set(dst, dst_slot, src->tokens + (size_t)src_slot * src->capacity, len,
                whole ? kvc__ctx_logits(src, src_slot) : NULL);
  return KVC_OK;
}

kvc_status kvc_seq_fork(const kvc_seq *parent, int32_t len, kvc_seq **out) {
  if (!out)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_fork: out is NULL");
  *out = NULL;
  kvc_status s = kvc__seq_check(parent, "kvc_seq_fork: parent");
  if (s)
    return s;
  kvc_ctx *pc = parent->ctx;
  if (len < 0 || len > pc->lens[parent->slot])
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "kvc_seq_fork: len = %d: expected 0..%d (the parent's "
                     "length)",
                     len, pc->lens[parent->slot]);
  kvc_seq *child = NULL;
  if (parent->owns_ctx) {
    const kvc_seq_params p = {.kv_mode = pc->ops->mode};
    s = kvc_seq_new(pc->model, &p, &child);
  } else {
    s = kvc_seq_new_in(pc, &child);
  }
  if (!s)
    s = copy_slot(child->ctx, child->slot, pc, parent->slot, len);
  if (s) {
    kvc_seq_free(child);
    return s;
  }
  *out = child;
  return KVC_OK;
}

/* ---- K candidates ---------------------------------------------------------------------- */

/* Batched: candidate 0 in the sequence's own slot, the others in borrowed slots holding a
 * copy of its cache, then one append over all of them. */
static kvc_status candidates_together(kvc_seq *q, const int32_t *tokens, int32_t k, int32_t len,
                                      float *out) {
  kvc_ctx *c = q->ctx;
  const int32_t start = c->lens[q->slot];
  int32_t *slots = c->plan_slot, *n = c->plan_n;
  const int32_t **rows = c->plan_tokens;
  kvc_status s = KVC_OK;
  int32_t taken = 0;
  slots[0] = q->slot;
  for (int32_t i = 1; i < k && !s; i++) {
    slots[i] = kvc__ctx_take_slot(c, KVC_SLOT_BORROWED, NULL);
    taken = i;
    s = copy_slot(c, slots[i], c, q->slot, start);
  }
  for (int32_t i = 0; i < k; i++) {
    rows[i] = tokens + (size_t)i * len;
    n[i] = len;
  }
  if (!s)
    s = kvc__append_slots(c, slots, rows, n, NULL, k, 0);
  for (int32_t i = 0; i < k && !s; i++)
    memcpy(out + (size_t)i * c->vocab, kvc__ctx_pending_logits(c, slots[i]),
           (size_t)c->vocab * sizeof(float));
  for (int32_t i = 1; i <= taken; i++)
    kvc__ctx_give_slot(c, slots[i]);
  return s;
}

kvc_status kvc_seq_eval_candidates(kvc_seq *q, const int32_t *tokens, int32_t k, int32_t len,
                                   float *logits) {
  kvc_status s = kvc__seq_check(q, "kvc_seq_eval_candidates");
  if (s)
    return s;
  if (!tokens || !logits)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_eval_candidates: %s is NULL",
                     !tokens ? "tokens" : "logits");
  kvc_ctx *c = q->ctx;
  const int32_t start = c->lens[q->slot];
  if (k < 1 || len < 1)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "kvc_seq_eval_candidates: k = %d, len = %d: expected at least 1 each", k, len);
  if (len > c->capacity - start)
    return kvc__fail(KVC_ERR_CACHE_FULL,
                     "candidates of %d tokens after a sequence of %d would exceed max_seq_len %d",
                     len, start, c->capacity);
  for (int64_t i = 0; i < (int64_t)k * len; i++)
    if (tokens[i] < 0 || tokens[i] >= c->vocab)
      return kvc__fail(KVC_ERR_INVALID_ARG,
                       "candidate %lld: token %d (at index %lld) is outside [0, %d)",
                       (long long)(i / len), tokens[i], (long long)(i % len), c->vocab);
  int32_t free_slots = 0;
  for (int32_t slot = 0; slot < c->slots; slot++)
    free_slots += c->state[slot] == KVC_SLOT_FREE;
  if (c->ops->batches && k > 1 && free_slots >= k - 1) {
    s = candidates_together(q, tokens, k, len, logits);
  } else {
    /* one after another: append, read the logits, rewind */
    for (int32_t i = 0; i < k && !s; i++) {
      const int32_t slot = q->slot;
      const int32_t *row = tokens + (size_t)i * len;
      s = kvc__append_slots(c, &slot, &row, &len, NULL, 1, 0);
      if (!s)
        memcpy(logits + (size_t)i * c->vocab, kvc__ctx_pending_logits(c, slot),
               (size_t)c->vocab * sizeof(float));
      if (!s)
        s = kvc__ctx_truncate(c, slot, start, 1);
    }
  }
  if (c->lens[q->slot] != start) { /* a batched append succeeded */
    kvc_status t = kvc__ctx_truncate(c, q->slot, start, 1);
    s = s ? s : t;
  }
  return s;
}

/* ---- metrics --------------------------------------------------------------------------- */

kvc_status kvc_seq_get_metrics(const kvc_seq *q, kvc_seq_metrics *out) {
  kvc_status s = kvc__seq_check(q, "kvc_seq_get_metrics");
  if (s)
    return s;
  if (!out)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_get_metrics: metrics is NULL");
  const kvc_ctx *c = q->ctx;
  *out = (kvc_seq_metrics){
      .prefill_ms = q->m.prefill_ms,
      .prefill_tokens = q->m.prefill_tokens,
      .decode_steps = q->m.decode_steps,
      .decode_ms = q->m.decode_ms,
      .cache_bytes = c->cache_bytes / c->slots,
      .cache_addresses = q->m.n_addresses,
      .decode_allocations = q->m.decode_allocations,
  };
  return KVC_OK;
}
