/* sample.c: choosing the next token from logits: greedy, or temperature with top-k, top-p
 * (nucleus) and min-p filtering, from a seeded generator; a repetition penalty over the
 * sequence's tokens first, when asked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ctx.h"
#include "model.h"
#include "error.h"
#include "kvcache.h"
#include "rng.h"

struct kvc_sampler {
  kvc_sampler_params params;
  int32_t vocab;
  kvc__rng rng;
  int32_t *order;      /* (vocab) token ids, sorted by logit when filtering */
  float *probs;        /* (vocab) */
  float *penalized;    /* (vocab) the logits after the repetition penalty; only with one */
  unsigned char *seen; /* (vocab) which ids the penalty has already touched; only with one */
};

kvc_sampler_params kvc_sampler_default_params(void) {
  return (kvc_sampler_params){
      .temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .seed = 0, .repetition_penalty = 1.0f};
}

kvc_sampler_params kvc_search_sampler_params(const kvc_search *search) {
  kvc_sampler_params p = kvc_sampler_default_params();
  if (search && search->do_sample) {
    p.temperature = search->temperature;
    p.top_k = search->top_k;
    p.top_p = search->top_p;
    p.min_p = search->min_p;
  }
  if (search) /* greedy or not: onnxruntime-genai applies it before either */
    p.repetition_penalty = search->repetition_penalty;
  return p;
}

kvc_status kvc_sampler_new(const kvc_sampler_params *params, int32_t vocab, kvc_sampler **out) {
  if (!out)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_sampler_new: out is NULL");
  *out = NULL;
  kvc_sampler_params p = params ? *params : kvc_sampler_default_params();
  if (vocab <= 0)
    return kvc__fail(KVC_ERR_INVALID_ARG, "vocab_size = %d: expected >= 1", vocab);
  if (!(p.temperature >= 0.0f) || isinf(p.temperature))
    return kvc__fail(KVC_ERR_INVALID_ARG, "temperature = %g: expected >= 0 (0 = greedy)",
                     (double)p.temperature);
  if (p.top_k < 0)
    return kvc__fail(KVC_ERR_INVALID_ARG, "top_k = %d: expected >= 0 (0 = off)", p.top_k);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    return kvc__fail(KVC_ERR_INVALID_ARG, "top_p = %g: expected in (0, 1] (1 = off)",
                     (double)p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
    return kvc__fail(KVC_ERR_INVALID_ARG, "min_p = %g: expected in [0, 1] (0 = off)",
                     (double)p.min_p);
  if (!(p.repetition_penalty >= 0.0f) || isinf(p.repetition_penalty))
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "repetition_penalty = %g: expected a finite value > 0 (1 or 0 = off, > 1 "
                     "discourages repeats)",
                     (double)p.repetition_penalty);
  if (p.repetition_penalty == 0.0f) /* the field's zero value: parameters made before it */
    p.repetition_penalty = 1.0f;
  const int penalty = p.repetition_penalty != 1.0f;
  kvc_sampler *s = kvc__calloc(1, sizeof *s);
  if (s) {
    s->order = kvc__calloc((size_t)vocab, sizeof *s->order);
    s->probs = kvc__calloc((size_t)vocab, sizeof *s->probs);
    s->penalized = penalty ? kvc__calloc((size_t)vocab, sizeof *s->penalized) : NULL;
    s->seen = penalty ? kvc__calloc((size_t)vocab, sizeof *s->seen) : NULL;
  }
  if (!s || !s->order || !s->probs || (penalty && (!s->penalized || !s->seen))) {
    kvc_sampler_free(s);
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for a sampler over %d tokens", vocab);
  }
  s->params = p;
  s->vocab = vocab;
  s->rng = kvc__rng_seeded(p.seed);
  *out = s;
  return KVC_OK;
}

void kvc_sampler_free(kvc_sampler *s) {
  if (!s)
    return;
  kvc__free(s->order);
  kvc__free(s->probs);
  kvc__free(s->penalized);
  kvc__free(s->seen);
  kvc__free(s);
}

/* Logits as the sampler orders them: NaN ranks below everything (it is never chosen). */
static float rank_of(float logit) {
  return isnan(logit) ? -INFINITY : logit;
}

/* The lowest id of the largest logit; -1 when every logit is NaN or -inf. Two passes: the
 * largest value, in 32 independent lanes of `l > top ? l : top` (a NaN never wins a
 * comparison, as rank_of would have it; the compiler makes the lanes maxps), then the first
 * id holding it: 8 us for a 32000-word vocabulary, against 24 us comparing each logit with
 * the best so far. */
static int32_t argmax(const float *logits, int32_t n) {
  enum { LANES = 32 };
  float lane[LANES];
  for (int j = 0; j < LANES; j++)
    lane[j] = -INFINITY;
  int32_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int j = 0; j < LANES; j++)
      lane[j] = logits[i + j] > lane[j] ? logits[i + j] : lane[j];
  float top = -INFINITY;
  for (int j = 0; j < LANES; j++)
    top = lane[j] > top ? lane[j] : top;
  for (; i < n; i++)
    top = logits[i] > top ? logits[i] : top;
  for (i = 0; i < n && top > -INFINITY; i++)
    if (logits[i] == top)
      return i;
  return -1;
}

/* Sort order[0..n) by logit, descending, ties by id (insertion into a max-heap-free
 * quicksort would need a comparator context; a shell sort keeps it self-contained). */
static void sort_by_logit(int32_t *order, int32_t n, const float *logits) {
  static const int32_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
  for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
    for (int32_t i = gaps[g]; i < n; i++) {
      int32_t t = order[i], j = i;
      for (; j >= gaps[g]; j -= gaps[g]) {
        int32_t o = order[j - gaps[g]];
        float lo = rank_of(logits[o]), lt = rank_of(logits[t]);
        if (lo > lt || (lo == lt && o < t))
          break;
        order[j] = o;
      }
      order[j] = t;
    }
  }
}

kvc_status kvc_sampler_sample(kvc_sampler *s, const float *logits, int32_t *token) {
  if (!s || !logits || !token)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_sampler_sample: %s is NULL",
                     !s        ? "sampler"
                     : !logits ? "logits"
                               : "token");
  const kvc_sampler_params *p = &s->params;
  const int32_t best = argmax(logits, s->vocab);
  if (best < 0)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "kvc_sampler_sample: all %d logits are NaN or -inf: no token can be chosen",
                     s->vocab);
  if (p->temperature == 0.0f) {
    *token = best;
    return KVC_OK;
  }
  int32_t n = s->vocab;
  for (int32_t i = 0; i < n; i++)
    s->order[i] = i;
  if (p->top_k > 0 || p->top_p < 1.0f)
    sort_by_logit(s->order, n, logits);
  if (p->top_k > 0 && p->top_k < n)
    n = p->top_k;
  /* softmax over the candidates at the temperature, max-subtracted for stability; when some
   * logits are +inf, the limit of the softmax: those share all the probability equally */
  const float max = logits[best];
  double sum = 0;
  for (int32_t i = 0; i < n; i++) {
    const float l = rank_of(logits[s->order[i]]);
    s->probs[i] = isinf(max) ? (l == max ? 1.0f : 0.0f) : expf((l - max) / p->temperature);
    sum += s->probs[i];
  }
  if (p->top_p < 1.0f) { /* smallest prefix (by probability) whose mass reaches top_p */
    double mass = 0;
    int32_t keep = 0;
    while (keep < n && mass < p->top_p * sum)
      mass += s->probs[keep++];
    n = keep > 0 ? keep : 1;
    sum = mass > 0 ? mass : s->probs[0];
  }
  if (p->min_p > 0.0f) { /* the most likely token's weight is exp(0) = 1 (or 1 when +inf) */
    sum = 0;
    for (int32_t i = 0; i < n; i++) {
      if (s->probs[i] < p->min_p)
        s->probs[i] = 0.0f;
      sum += s->probs[i];
    }
  }
  double r = kvc__rng_uniform(&s->rng) * sum, acc = 0;
  int32_t last = -1; /* the last candidate with any probability */
  for (int32_t i = 0; i < n; i++) {
    if (s->probs[i] <= 0.0f)
      continue;
    acc += s->probs[i];
    last = i;
    if (r < acc) {
      *token = s->order[i];
      return KVC_OK;
    }
  }
  *token = last >= 0 ? s->order[last] : best; /* rounding left r at the very top */
  return KVC_OK;
}

/* KVC_OK when the sampler was made for the sequence's model's vocabulary. */
static kvc_status fits(const kvc_sampler *sampler, const kvc_seq *seq, const char *who) {
  kvc_status s = kvc__seq_check(seq, who);
  if (s)
    return s;
  if (sampler->vocab == seq->ctx->vocab)
    return KVC_OK;
  return kvc__fail(KVC_ERR_INVALID_ARG,
                   "%s: the sampler was made for %d logits, the model has %d: make it with the "
                   "model's vocab_size",
                   who, sampler->vocab, seq->ctx->vocab);
}

/* The repetition penalty of the CTRL paper (Keskar et al. 2019), as onnxruntime-genai and
 * Hugging Face apply it: each distinct id in history has its logit divided by the penalty
 * when positive, multiplied when negative. Returns the logits to sample from. */
static const float *penalize(kvc_sampler *s, const float *logits, const int32_t *history,
                             int32_t n) {
  if (!s->penalized || n == 0)
    return logits;
  const float penalty = s->params.repetition_penalty;
  memcpy(s->penalized, logits, (size_t)s->vocab * sizeof *logits);
  for (int32_t i = 0; i < n; i++) {
    const int32_t id = history[i];
    if (s->seen[id])
      continue;
    s->seen[id] = 1;
    const float l = s->penalized[id];
    s->penalized[id] = l < 0.0f ? l * penalty : l / penalty;
  }
  for (int32_t i = 0; i < n; i++) /* cleared for the next call: touches n ids, not vocab */
    s->seen[history[i]] = 0;
  return s->penalized;
}

kvc_status kvc_sampler_sample_seq(kvc_sampler *sampler, const kvc_seq *seq, int32_t *token) {
  if (!sampler || !seq || !token)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_sampler_sample_seq: %s is NULL",
                     !sampler ? "sampler"
                     : !seq   ? "seq"
                              : "token");
  const kvc_ctx *c = seq->ctx;
  kvc_status s = fits(sampler, seq, "kvc_sampler_sample_seq");
  if (s)
    return s;
  const float *logits = kvc_seq_logits(seq);
  if (!logits)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "kvc_sampler_sample_seq: the sequence has no logits (nothing appended "
                     "since it was made or rewound)");
  const int32_t *history = c->tokens + (size_t)seq->slot * (size_t)c->capacity;
  return kvc_sampler_sample(sampler, penalize(sampler, logits, history, kvc_seq_len(seq)), token);
}

static int is_eos(const kvc_model_info *info, int32_t token) {
  for (int32_t i = 0; i < info->n_eos; i++)
    if (info->eos_token_ids[i] == token)
      return 1;
  return 0;
}

kvc_status kvc_generate(kvc_seq *seq, const int32_t *prompt, int32_t n_prompt, int32_t max_new,
                        kvc_sampler *sampler, int32_t *out, int32_t *n_out, kvc_token_fn on_token,
                        void *user) {
  if (n_out)
    *n_out = 0;
  if (!seq || !sampler || !out || !n_out || (n_prompt > 0 && !prompt))
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_generate: %s is NULL",
                     !seq       ? "seq"
                     : !sampler ? "sampler"
                     : !out     ? "out"
                     : !n_out   ? "n_out"
                                : "prompt");
  if (n_prompt < 0 || max_new < 0)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "kvc_generate: n_prompt = %d, max_new = %d: expected >= 0", n_prompt, max_new);
  kvc_status s = fits(sampler, seq, "kvc_generate"); /* first: the sequence stays as it was */
  if (!s && n_prompt > 0)
    s = kvc_seq_append(seq, prompt, n_prompt);
  if (s)
    return s;
  if (max_new > 0 && !kvc_seq_logits(seq))
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "kvc_generate: the sequence has no logits to continue from (empty "
                     "prompt on an empty or rewound sequence)");
  for (int32_t i = 0; i < max_new; i++) {
    int32_t token;
    if ((s = kvc_sampler_sample_seq(sampler, seq, &token)))
      return s;
    out[i] = token;
    *n_out = i + 1;
    if ((on_token && on_token(user, token, i)) || is_eos(&seq->ctx->model->info, token))
      break;
    if (i + 1 < max_new && (s = kvc_seq_append(seq, &token, 1)))
      return s;
  }
  return KVC_OK;
}
