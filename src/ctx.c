/* ctx.c: a context: the slots, their tokens and logits, the run's host buffers, and the KV
 * mode's cache (allocated once, for every slot, when the context is made). */
#include <string.h>

#include "alloc.h"
#include "ctx.h"
#include "error.h"

const char *kvc_kv_mode_name(kvc_kv_mode mode) {
  switch (mode) {
  case KVC_KV_AUTO:
    return "auto";
  case KVC_KV_NAIVE:
    return "naive";
  case KVC_KV_BOUND:
    return "bound";
  case KVC_KV_UNCACHED:
    return "uncached";
  case KVC_KV_SHARED:
    return "shared";
  }
  return NULL;
}

/* The only place a mode is turned into behaviour: AUTO resolved, SHARED checked against the
 * graph, and with the table, whether the mode batches. */
kvc_status kvc__kv_ops_resolve(const kvc_model *m, kvc_kv_mode mode, const kvc__kv_ops **out) {
  *out = NULL;
  if (mode == KVC_KV_AUTO)
    mode = m->sig.in_place ? KVC_KV_SHARED : KVC_KV_BOUND;
  if (mode == KVC_KV_SHARED && !m->sig.in_place)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "kv_mode shared needs a graph that can write its cache in place; %s: %s: "
                     "use bound",
                     m->info.onnx_path, m->info.attention_note);
  switch (mode) {
  case KVC_KV_NAIVE:
    *out = &kvc__kv_naive;
    break;
  case KVC_KV_BOUND:
    *out = &kvc__kv_bound;
    break;
  case KVC_KV_UNCACHED:
    *out = &kvc__kv_uncached;
    break;
  case KVC_KV_SHARED:
    *out = &kvc__kv_shared;
    break;
  case KVC_KV_AUTO:
    break;
  }
  return *out ? KVC_OK : kvc__fail(KVC_ERR_INVALID_ARG, "kv_mode %d is not a mode", (int)mode);
}

kvc_ctx_params kvc_ctx_default_params(void) {
  return (kvc_ctx_params){.slots = 1, .kv_mode = KVC_KV_AUTO};
}

static void release(kvc_ctx *c) {
  if (c->ops)
    c->ops->release(c);
  kvc__free(c->state);
  kvc__free(c->owner);
  kvc__free(c->tokens);
  kvc__free(c->lens);
  kvc__free(c->logits);
  kvc__free(c->bank);
  kvc__free(c->has_logits);
  kvc__inputs_release(&c->in);
  kvc__free(c->plan_past);
  kvc__free(c->plan_before);
  kvc__free(c->plan_slot);
  kvc__free(c->plan_n);
  kvc__free(c->plan_group_slot);
  kvc__free(c->plan_group_end);
  kvc__free(c->plan_tokens);
  kvc__free(c->plan_all);
  kvc__free(c->plan_live);
  kvc__free(c->plan_mark);
  kvc__free(c);
}

kvc_status kvc__ctx_make(kvc_model *m, int32_t slots, kvc_kv_mode mode, kvc_ctx **out) {
  *out = NULL;
  if (!kvc_kv_mode_name(mode))
    return kvc__fail(KVC_ERR_INVALID_ARG, "kv_mode = %d: expected a kvc_kv_mode", (int)mode);
  if (slots < 1 || slots > KVC_MAX_SLOTS)
    return kvc__fail(KVC_ERR_INVALID_ARG, "slots = %d: expected 1..%d", slots, KVC_MAX_SLOTS);
  kvc_ctx *c = kvc__calloc(1, sizeof *c);
  if (!c)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  c->model = m;
  c->slots = slots;
  c->capacity = m->info.max_seq_len;
  c->vocab = m->sig.vocab;
  /* a single-row run's logits: up to 64 MiB, at least one row; longer appends are split */
  const int64_t chunk = ((int64_t)16 << 20) / c->vocab;
  c->chunk = (int32_t)(chunk < 1 ? 1 : chunk > c->capacity ? c->capacity : chunk);
  c->rows = c->chunk > slots ? c->chunk : slots;

  const size_t S = (size_t)slots, T = (size_t)c->capacity, V = (size_t)c->vocab;
  c->state = kvc__calloc(S, sizeof *c->state);
  c->owner = kvc__calloc(S, sizeof *c->owner);
  c->tokens = kvc__calloc(S * T, sizeof *c->tokens);
  c->lens = kvc__calloc(S, sizeof *c->lens);
  c->logits = kvc__calloc(2 * S * V, sizeof *c->logits);
  c->bank = kvc__calloc(S, sizeof *c->bank);
  c->has_logits = kvc__calloc(S, sizeof *c->has_logits);
  c->plan_past = kvc__calloc(S, sizeof *c->plan_past);
  c->plan_before = kvc__calloc(S, sizeof *c->plan_before);
  c->plan_slot = kvc__calloc(S, sizeof *c->plan_slot);
  c->plan_n = kvc__calloc(S, sizeof *c->plan_n);
  c->plan_group_slot = kvc__calloc(S, sizeof *c->plan_group_slot);
  c->plan_group_end = kvc__calloc(S, sizeof *c->plan_group_end);
  c->plan_tokens = kvc__calloc(S, sizeof *c->plan_tokens);
  c->plan_all = kvc__calloc(S, sizeof *c->plan_all);
  c->plan_live = kvc__calloc(S, sizeof *c->plan_live);
  c->plan_mark = kvc__calloc(S, sizeof *c->plan_mark);
  if (!c->state || !c->owner || !c->tokens || !c->lens || !c->logits || !c->bank ||
      !c->has_logits || !c->plan_past || !c->plan_before || !c->plan_slot || !c->plan_n ||
      !c->plan_group_slot || !c->plan_group_end || !c->plan_tokens || !c->plan_all ||
      !c->plan_live || !c->plan_mark) {
    release(c);
    return kvc__fail(KVC_ERR_NO_MEMORY,
                     "out of memory for a context of %d slots of %d tokens (vocabulary %d)", slots,
                     c->capacity, c->vocab);
  }
  kvc_status s = kvc__inputs_init(&c->in, m, slots, c->capacity);
  if (!s)
    s = kvc__kv_ops_resolve(m, mode == KVC_KV_AUTO ? m->info.kv_mode : mode, &c->ops);
  if (!s)
    s = c->ops->init(c);
  if (s) {
    release(c);
    return s;
  }
  /* rows of several tokens each at their own lengths: kvcache's attention takes them,
   * GroupQueryAttention only rows of one token */
  c->group_prompts = c->ops->batches && m->info.attention == KVC_ATTENTION_KVCACHE;
  *out = c;
  return KVC_OK;
}

kvc_status kvc_ctx_new(kvc_model *model, const kvc_ctx_params *params, kvc_ctx **out) {
  if (!out)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_ctx_new: out is NULL");
  *out = NULL;
  if (!model)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_ctx_new: model is NULL");
  const kvc_ctx_params p = params ? *params : kvc_ctx_default_params();
  return kvc__ctx_make(model, p.slots, p.kv_mode, out);
}

void kvc_ctx_free(kvc_ctx *c) {
  if (!c)
    return;
  /* the caller's handles are the caller's: detached, not freed (freeing them here would
   * make the caller's own kvc_seq_free a double free) */
  for (int32_t slot = 0; slot < c->slots; slot++)
    if (c->state[slot] == KVC_SLOT_SEQ)
      c->owner[slot]->ctx = NULL; /* every call but kvc_seq_free now fails on it */
  release(c);
}

kvc_status kvc__ctx_truncate(kvc_ctx *c, int32_t slot, int32_t new_len, int keep_logits) {
  kvc_status s =
      c->lens[slot] == new_len ? KVC_OK : c->ops->truncate(c, slot, c->lens[slot], new_len);
  if (!s) {
    c->lens[slot] = new_len;
    c->has_logits[slot] = (uint8_t)(keep_logits && c->has_logits[slot]);
  }
  return s;
}

void kvc__slot_set(kvc_ctx *c, int32_t slot, const int32_t *tokens, int32_t len,
                   const float *logits) {
  memcpy(c->tokens + (size_t)slot * c->capacity, tokens, (size_t)len * sizeof *tokens);
  c->lens[slot] = len;
  c->has_logits[slot] = logits != NULL;
  if (logits)
    memcpy((float *)kvc__ctx_logits(c, slot), logits, (size_t)c->vocab * sizeof *logits);
}

int32_t kvc__ctx_take_slot(kvc_ctx *c, uint8_t state, kvc_seq *owner) {
  for (int32_t slot = 0; slot < c->slots; slot++) {
    if (c->state[slot] == KVC_SLOT_FREE) {
      c->state[slot] = state;
      c->owner[slot] = owner;
      c->lens[slot] = 0;
      c->has_logits[slot] = 0;
      return slot;
    }
  }
  return -1;
}

void kvc__ctx_give_slot(kvc_ctx *c, int32_t slot) {
  kvc__ctx_truncate(c, slot, 0, 0); /* to 0 frees what a NAIVE slot holds; cannot fail */
  c->owner[slot] = NULL;
  c->state[slot] = KVC_SLOT_FREE;
}

kvc_status kvc_ctx_get_info(const kvc_ctx *c, kvc_ctx_info *info) {
  if (!c || !info)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_ctx_get_info: %s is NULL", c ? "info" : "ctx");
  int32_t used = 0;
  for (int32_t slot = 0; slot < c->slots; slot++)
    used += c->state[slot] != KVC_SLOT_FREE;
  *info = (kvc_ctx_info){.slots = c->slots,
                         .slots_used = used,
                         .max_seq_len = c->capacity,
                         .kv_mode = c->ops->mode,
                         .batches = c->ops->batches,
                         .cache_bytes = c->cache_bytes};
  return KVC_OK;
}
