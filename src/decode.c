/* decode.c: the path of one append, for one sequence or many: which runs to make, the host
 * inputs of each, and putting every sequence back when a run fails.
 *
 * A sequence appending alone runs its tokens in chunks of at most c->chunk (the logits of a
 * chunk must fit the run's logits buffer). Several sequences in a mode that batches (SHARED)
 * first run all but the last of their tokens, then take one decode step together: one run
 * over the slot range they span, each row at its own length. Those earlier tokens (prompts)
 * run together too where the graph's attention is kvcache's own and it pays (run_prompts);
 * else each sequence's alone. (GroupQueryAttention takes several rows only when each has one
 * new token.) In other modes the sequences run one after another. */
#include <string.h>

#include "ctx.h"
#include "error.h"

static kvc_status run(kvc_ctx *c, const kvc__rows *r, const float **logits) {
  if (c->fail_at_run > 0 && --c->fail_at_run == 0)
    return kvc__fail(KVC_ERR_RUNTIME, "a failure injected by a test");
  c->runs++;
  return c->ops->run(c, r, logits);
}

/* Run n tokens of one slot (already in its token table after its length), in chunks.
 * all_logits: every position's logits (n rows), or NULL; last: the last one's, or NULL. */
static kvc_status run_alone(kvc_ctx *c, int32_t slot, int32_t n, float *all_logits, float *last) {
  static const uint8_t live = 1;
  const float *logits = NULL;
  kvc_status s = KVC_OK;
  for (int32_t done = 0, chunk; done < n && !s; done += chunk) {
    chunk = n - done < c->chunk ? n - done : c->chunk;
    /* the logits read: every position's, or the last's (graphs that take logits_to_keep
     * then compute no others) */
    const int32_t keep = all_logits ? chunk : 1;
    const kvc__rows r = {slot, 1, chunk, &c->lens[slot], &live, keep};
    if ((s = run(c, &r, &logits)))
      break;
    if (all_logits)
      memcpy(all_logits + (size_t)done * c->vocab, logits,
             (size_t)chunk * c->vocab * sizeof(float));
    kvc__slot_grow(c, slot, chunk);
    if (last && done + chunk == n)
      memcpy(last, logits + (size_t)(keep - 1) * c->vocab, (size_t)c->vocab * sizeof(float));
  }
  return s;
}

/* A run costs about as much as this many more tokens in a run: the weights are read once
 * more, and every node dispatched once more. (243 M parameters, 2 threads: a 4-bit model
 * reads its weights in the time it computes 6 prompt tokens, a float32 one in that of 24.) */
enum { RUN_COST_TOKENS = 16 };

/* Whether the k sequences in slots[i], each to run up to length end[i], run together: one
 * run over the slot range [lo, hi] they span, every row padded to the longest (a row's
 * padding, like an idle row's placeholder, lands at positions past its length, where it is
 * never read as valid), in chunks. They do where every row of the range has room for the
 * longest after its length, and the padding and idle rows cost fewer tokens than the runs
 * saved. */
static int prompts_together(const kvc_ctx *c, const int32_t *slots, const int32_t *end, int32_t k,
                            int32_t lo, int32_t hi) {
  int64_t longest = 0, tokens = 0;
  for (int32_t i = 0; i < k; i++) {
    const int32_t n = end[i] - c->lens[slots[i]];
    longest = n > longest ? n : longest;
    tokens += n;
  }
  const int64_t rows = hi - lo + 1;
  if (k < 2 || c->chunk / rows < 1 || rows * longest - tokens > (int64_t)RUN_COST_TOKENS * (k - 1))
    return 0;
  for (int32_t slot = lo; slot <= hi; slot++)
    if (c->lens[slot] + longest > c->capacity)
      return 0;
  return 1;
}

/* Run all but the last of the tokens of the items with n[i] > 1: together where the graph's
 * attention takes rows of several tokens and prompts_together says so, else each alone (as
 * every item that wants all_logits). */
static kvc_status run_prompts(kvc_ctx *c, const int32_t *slots, const int32_t *n,
                              float *const *all_logits, int32_t count) {
  int32_t *group = c->plan_group_slot, *end = c->plan_group_end;
  int32_t k = 0, lo = c->slots, hi = -1;
  kvc_status s = KVC_OK;
  for (int32_t i = 0; i < count && !s; i++) {
    if (n[i] < 2)
      continue;
    if (!c->group_prompts || (all_logits && all_logits[i])) {
      s = run_alone(c, slots[i], n[i] - 1, all_logits ? all_logits[i] : NULL, NULL);
      continue;
    }
    group[k] = slots[i];
    end[k++] = c->lens[slots[i]] + n[i] - 1;
    lo = slots[i] < lo ? slots[i] : lo;
    hi = slots[i] > hi ? slots[i] : hi;
  }
  if (s)
    return s;
  if (!prompts_together(c, group, end, k, lo, hi)) {
    for (int32_t i = 0; i < k && !s; i++)
      s = run_alone(c, group[i], end[i] - c->lens[group[i]], NULL, NULL);
    return s;
  }
  const int32_t limit = c->chunk / (hi - lo + 1); /* prompts_together: at least 1 */
  while (!s) {
    int32_t chunk = 0;
    for (int32_t i = 0; i < k; i++)
      chunk = end[i] - c->lens[group[i]] > chunk ? end[i] - c->lens[group[i]] : chunk;
    if (chunk == 0)
      break;
    chunk = chunk < limit ? chunk : limit;
    for (int32_t slot = lo; slot <= hi; slot++) {
      c->plan_live[slot - lo] = 0;
      c->plan_past[slot - lo] = c->lens[slot];
    }
    for (int32_t i = 0; i < k; i++) /* a row done in an earlier chunk rides along idle */
      c->plan_live[group[i] - lo] = c->lens[group[i]] < end[i];
    const kvc__rows r = {lo, hi - lo + 1, chunk, c->plan_past, c->plan_live, 1};
    const float *logits = NULL; /* none wanted: no row's last token is in this run */
    c->prompt_runs++;
    if (!(s = run(c, &r, &logits)))
      for (int32_t i = 0; i < k; i++) {
        const int32_t left = end[i] - c->lens[group[i]];
        kvc__slot_grow(c, group[i], left < chunk ? left : chunk);
      }
  }
  return s;
}

/* One run in which every given slot appends its last token (the one at its length). */
static kvc_status run_together(kvc_ctx *c, const int32_t *slots, const int32_t *n,
                               float *const *all_logits, int32_t count) {
  int32_t lo = slots[0], hi = slots[0];
  for (int32_t i = 1; i < count; i++) {
    lo = slots[i] < lo ? slots[i] : lo;
    hi = slots[i] > hi ? slots[i] : hi;
  }
  for (int32_t slot = lo; slot <= hi; slot++) {
    c->plan_live[slot - lo] = 0;
    c->plan_past[slot - lo] = c->lens[slot];
  }
  for (int32_t i = 0; i < count; i++)
    c->plan_live[slots[i] - lo] = 1;
  const kvc__rows r = {lo, hi - lo + 1, 1, c->plan_past, c->plan_live, 1};
  const float *logits = NULL;
  kvc_status s = run(c, &r, &logits);
  for (int32_t i = 0; i < count && !s; i++) {
    const float *row = logits + (size_t)(slots[i] - lo) * c->vocab;
    const size_t bytes = (size_t)c->vocab * sizeof(float);
    memcpy(kvc__ctx_pending_logits(c, slots[i]), row, bytes);
    if (all_logits && all_logits[i])
      memcpy(all_logits[i] + (size_t)(n[i] - 1) * c->vocab, row, bytes);
    kvc__slot_grow(c, slots[i], 1);
  }
  return s;
}

kvc_status kvc__append_slots(kvc_ctx *c, const int32_t *slots, const int32_t *const *tokens,
                             const int32_t *n, float *const *all_logits, int32_t count,
                             int commit) {
  for (int32_t i = 0; i < count; i++) {
    c->plan_before[i] = c->lens[slots[i]];
    kvc__slot_put_tokens(c, slots[i], tokens[i], n[i]);
  }
  kvc_status s = KVC_OK;
  if (count == 1 || !c->ops->batches) {
    for (int32_t i = 0; i < count && !s; i++)
      s = run_alone(c, slots[i], n[i], all_logits ? all_logits[i] : NULL,
                    kvc__ctx_pending_logits(c, slots[i]));
  } else {
    s = run_prompts(c, slots, n, all_logits, count);
    if (!s)
      s = run_together(c, slots, n, all_logits, count);
  }
  if (s) {
    /* every slot back at its length before the call; its logits were never replaced */
    for (int32_t i = 0; i < count; i++) {
      const int32_t slot = slots[i], before = c->plan_before[i];
      if (c->lens[slot] == before)
        continue;
      if (kvc__ctx_truncate(c, slot, before, 1) == KVC_OK)
        continue;
      /* only a NAIVE cache (a copy ONNX Runtime could not allocate) or a BOUND cache in
       * device memory gets here: the slot cannot be put back, so it is emptied (to 0 cannot
       * fail) */
      kvc__ctx_truncate(c, slot, 0, 0);
      s = kvc__wrap(s,
                    "the call failed and sequence %d (slot %d) could not be put back at "
                    "length %d, so it was emptied; the failure",
                    i, slot, before);
    }
    return s;
  }
  for (int32_t i = 0; i < count && commit; i++)
    kvc__slot_commit(c, slots[i]);
  return KVC_OK;
}
