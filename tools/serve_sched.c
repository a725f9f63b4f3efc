/* serve_sched.c: the scheduler of kvcache serve (serve.h). One thread owns the context. Each
 * step: take queued requests into slots; for every running request either run its next
 * chunk of prompt or sample its next token (and stream its text); then one
 * kvc_seq_append_batch for all of them, so that every stream advances by a token per step
 * whatever joins or leaves. Prompts go in chunks: at most `chunk` prompt tokens a step, all
 * new requests together (the earliest first), so that prompts arriving at once delay the
 * running streams by a chunk per step, not by all their lengths.
 * A new request's sequence goes to the lowest slot no running request holds, so that a step's
 * run spans no more slots than it runs sequences. A finished request's sequence stays in its
 * slot, idle, until the slot is wanted (then it moves to a free slot, or the oldest idle one
 * goes): a new request whose prompt begins as an idle or running sequence does takes that
 * prefix from the cache (taking the idle sequence over where it is in the slot the request
 * goes to, else forking that prefix) and runs only the rest. This is an optimisation only:
 * every request's tokens are those it would get alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"
#include "stats.h"
#include "text_stream.h"

struct srv_sched {
  kvc_tokenizer *tok;
  kvc_ctx *ctx;
  srv_metrics *metrics;
  int32_t slots, queue_cap, chunk, max_seq;
  kvc_model_info info;
  pthread_t thread;
  pthread_mutex_t mu; /* guards the queue, the counts and the flags below */
  pthread_cond_t cv;
  srv_request **queue; /* (queue_cap) a ring */
  int32_t q_head, q_len;
  int32_t n_active;
  int accepting, stopping;
  double deadline;      /* while stopping: when running requests are cut */
  srv_request **active; /* (slots) the scheduler thread's */
  kvc_seq **idle;       /* (slots) finished requests' sequences, oldest first */
  int32_t n_idle;
  kvc_batch_item *items; /* (slots) */
  uint8_t *running;      /* (slots) packed_slot's scratch */
  srv_request **item_req;
};

srv_request *srv_request_new(void) {
  srv_request *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  r->refs = 1;
  return r;
}

void srv_request_release(srv_request *r) {
  if (!r)
    return;
  pthread_mutex_lock(&r->mu);
  int last = --r->refs == 0;
  pthread_mutex_unlock(&r->mu);
  if (!last)
    return;
  kvc_stop_free(r->stop);
  kvc_detokenizer_free(r->detok);
  kvc_sampler_free(r->sampler);
  kvc_seq_free(r->seq);
  for (int i = 0; i < r->n_stops; i++)
    free(r->stops[i]);
  free(r->prompt);
  free(r->text);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r);
}

/* Text for the connection (under the request's lock). */
static int add_text(void *user, const char *text, size_t len) {
  srv_request *r = user;
  pthread_mutex_lock(&r->mu);
  int failed = 0;
  if (r->text_len + len + 1 > r->text_cap) {
    size_t cap = r->text_cap ? r->text_cap * 2 : 256;
    while (cap < r->text_len + len + 1)
      cap *= 2;
    char *grown = realloc(r->text, cap);
    if (grown) {
      r->text = grown;
      r->text_cap = cap;
    } else {
      failed = 1;
    }
  }
  if (!failed) {
    memcpy(r->text + r->text_len, text, len);
    r->text_len += len;
    r->text[r->text_len] = 0;
    pthread_cond_broadcast(&r->cv);
  }
  pthread_mutex_unlock(&r->mu);
  return failed;
}

/* The request is over: what the detokenizer and the stop strings still hold goes out (unless
 * a stop string ended it), then the reason; the slot is given back. */
static void finish(srv_sched *s, srv_request *r, const char *reason, const char *error) {
  if (!error && r->detok) {
    kvc_text_stream text = {r->detok, r->stop, kvc_tokenizer_vocab_size(s->tok), 0};
    kvc_text_end(&text, add_text, r); /* what cannot be kept is lost with the reply's end */
  }
  if (r->seq && !error && kvc_seq_len(r->seq) > 0)
    s->idle[s->n_idle++] = r->seq; /* kept for a later prompt that begins the same */
  else
    kvc_seq_free(r->seq);
  r->seq = NULL;
  r->phase = SRV_DONE;
  pthread_mutex_lock(&r->mu);
  r->done = 1;
  r->finish_reason = reason;
  if (error)
    snprintf(r->error, sizeof r->error, "%s", error);
  int cancelled = r->cancelled;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  if (cancelled)
    srv_metrics_cancelled(s->metrics);
  else if (!error)
    srv_metrics_tokens(s->metrics, r->n_prompt, r->generated);
}

/* How many of tokens[0, n) begin `seq`. */
static int32_t common(const kvc_seq *seq, const int32_t *tokens, int32_t n) {
  const int32_t *have = kvc_seq_tokens(seq), len = kvc_seq_len(seq);
  int32_t k = 0;
  while (k < n && k < len && have[k] == tokens[k])
    k++;
  return k;
}

static void drop_idle(srv_sched *s, int32_t i) {
  memmove(s->idle + i, s->idle + i + 1, (size_t)(s->n_idle - i - 1) * sizeof *s->idle);
  s->n_idle--;
}

/* The lowest slot no running request holds: where a new request's sequence goes, so that
 * running sequences stay side by side (a step's run spans the slots from the lowest running
 * sequence to the highest, each slot between costing it a row). */
static int32_t packed_slot(srv_sched *s, int32_t n_running) {
  uint8_t *running = s->running; /* (slots) */
  memset(running, 0, (size_t)s->slots);
  for (int32_t i = 0; i < n_running; i++)
    if (s->active[i]->seq)
      running[kvc_seq_slot(s->active[i]->seq)] = 1;
  int32_t slot = 0;
  while (slot < s->slots && running[slot])
    slot++;
  return slot;
}

/* Free `slot` for the sequence about to be made there (kvc_seq_new_in and kvc_seq_fork take
 * the lowest free slot, and every slot below it is running): the idle sequence in it moves to
 * another free slot (kvc_seq_fork copies its cache: cheaper than a row in every step), the
 * oldest idle one other than `keep` giving its slot up when none is free. */
static void free_slot(srv_sched *s, int32_t slot, const kvc_seq *keep) {
  int32_t at = -1;
  for (int32_t i = 0; i < s->n_idle && at < 0; i++)
    if (kvc_seq_slot(s->idle[i]) == slot)
      at = i;
  if (at < 0)
    return; /* free already */
  kvc_ctx_info info;
  kvc_ctx_get_info(s->ctx, &info);
  if (info.slots_used == info.slots) { /* none free: the oldest idle sequence goes */
    const int32_t gone = s->idle[0] == keep ? 1 : 0;
    if (gone >= s->n_idle)
      return; /* cannot happen: `keep` in `slot` is taken over, not forked */
    kvc_seq_free(s->idle[gone]);
    drop_idle(s, gone);
    if (at == gone)
      return;
    at -= at > gone;
  }
  kvc_seq *moved = NULL;
  if (kvc_seq_fork(s->idle[at], kvc_seq_len(s->idle[at]), &moved) == KVC_OK) {
    kvc_seq_free(s->idle[at]);
    s->idle[at] = moved;
  } else { /* out of memory: dropped rather than moved */
    kvc_seq_free(s->idle[at]);
    drop_idle(s, at);
  }
}

/* The request's sequence, in the lowest slot no running request holds (packed_slot), holding
 * the longest prefix of its prompt that an idle or running sequence holds: the idle sequence
 * itself when it is in that slot (taken over and cut to the prefix), else a fork of that
 * prefix (the idle sequence stays, for later prompts); or a new sequence. At least the last
 * prompt token is always run, for its logits. */
static kvc_status take_seq(srv_sched *s, srv_request *r, int32_t n_running) {
  const int32_t want = r->n_prompt - 1, slot = packed_slot(s, n_running);
  int32_t best = 0, idle_at = -1;
  const kvc_seq *parent = NULL;
  for (int32_t i = 0; i < s->n_idle; i++) {
    int32_t k = common(s->idle[i], r->prompt, want);
    if (k > best || (k == best && k > 0 && kvc_seq_slot(s->idle[i]) == slot))
      best = k, idle_at = i, parent = s->idle[i];
  }
  for (int32_t i = 0; i < n_running; i++) {
    const srv_request *o = s->active[i];
    if (o == r || !o->seq)
      continue;
    int32_t k = common(o->seq, r->prompt, want);
    if (k > best)
      best = k, idle_at = -1, parent = o->seq;
  }
  kvc_status st;
  if (idle_at >= 0 && kvc_seq_slot(parent) == slot) {
    r->seq = s->idle[idle_at];
    drop_idle(s, idle_at);
    st = kvc_seq_rewind(r->seq, best);
  } else {
    free_slot(s, slot, parent);
    st = parent ? kvc_seq_fork(parent, best, &r->seq) : kvc_seq_new_in(s->ctx, &r->seq);
  }
  if (!st && best) {
    r->prefilled = r->cached = best;
    srv_metrics_prefix(s->metrics, best);
  }
  return st;
}

/* A request taken from the queue: its sequence, its sampler, decoder and stop strings. 0, or
 * -1 after finishing it with the error. */
static int admit(srv_sched *s, srv_request *r, int32_t n_running) {
  kvc_status st = take_seq(s, r, n_running);
  if (!st)
    st = kvc_sampler_new(&r->sampling, s->info.vocab_size, &r->sampler);
  if (!st)
    st = kvc_detokenizer_new(s->tok, 1, &r->detok);
  if (!st)
    st = kvc_stop_new((const char *const *)r->stops, r->n_stops, &r->stop);
  if (st) {
    finish(s, r, NULL, kvc_last_error());
    return -1;
  }
  r->phase = SRV_PREFILL;
  return 0;
}

static int is_eos(const srv_sched *s, int32_t token) {
  for (int32_t i = 0; i < s->info.n_eos; i++)
    if (s->info.eos_token_ids[i] == token)
      return 1;
  return 0;
}

/* Sample the request's next token and stream its text. Returns the finish reason when the
 * request ends here, else NULL (the token is then appended at this step). */
static const char *next_token(srv_sched *s, srv_request *r, const char **error) {
  kvc_status st = kvc_sampler_sample_seq(r->sampler, r->seq, &r->token);
  if (st) {
    *error = kvc_last_error();
    return NULL;
  }
  pthread_mutex_lock(&r->mu);
  int first = r->generated++ == 0;
  if (first)
    r->ttft_ms = kvc_stat_now_ms() - r->submitted;
  pthread_mutex_unlock(&r->mu);
  if (first)
    srv_metrics_ttft(s->metrics, r->ttft_ms);
  if (!r->ignore_eos && is_eos(s, r->token))
    return "stop";
  kvc_text_stream text = {r->detok, r->stop, kvc_tokenizer_vocab_size(s->tok), 0};
  if ((st = kvc_text_token(&text, r->token, add_text, r))) {
    *error = st == KVC_ERR_NO_MEMORY ? "out of memory" : kvc_last_error();
    return NULL;
  }
  if (text.stopped)
    return "stop";
  if (r->generated >= r->max_tokens || kvc_seq_len(r->seq) + 1 > s->max_seq)
    return "length";
  return NULL;
}

/* A step's metrics: its sequences against the slots its run spanned, and, when it decoded,
 * each stream's time for the token (ms; negative when it only prefilled). */
static void step_metrics(srv_sched *s, int32_t n_items, double ms) {
  int32_t lo = s->slots, hi = -1;
  for (int32_t i = 0; i < n_items; i++) {
    const int32_t slot = kvc_seq_slot(s->items[i].seq);
    lo = slot < lo ? slot : lo;
    hi = slot > hi ? slot : hi;
  }
  srv_metrics_step(s->metrics, n_items, hi - lo + 1);
  if (ms >= 0)
    srv_metrics_token_latency(s->metrics, ms);
}

static void *run(void *arg) {
  srv_sched *s = arg;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    while (!s->stopping && !s->n_active && !s->q_len)
      pthread_cond_wait(&s->cv, &s->mu);
    if (s->stopping && !s->n_active && !s->q_len) {
      pthread_mutex_unlock(&s->mu);
      break;
    }
    int32_t n_active = s->n_active;
    while (s->q_len && n_active < s->slots) { /* join between steps */
      s->active[n_active++] = s->queue[s->q_head];
      s->q_head = (s->q_head + 1) % s->queue_cap;
      s->q_len--;
    }
    s->n_active = n_active;
    int cut = s->stopping && kvc_stat_now_ms() > s->deadline;
    pthread_mutex_unlock(&s->mu);

    int32_t n_items = 0, n_decode = 0;
    int32_t budget = s->chunk; /* prompt tokens this step, all requests together */
    for (int32_t i = 0; i < n_active; i++) {
      srv_request *r = s->active[i];
      if (r->phase == SRV_QUEUED && admit(s, r, n_active))
        continue;
      pthread_mutex_lock(&r->mu);
      int cancelled = r->cancelled;
      pthread_mutex_unlock(&r->mu);
      if (cancelled || cut) {
        finish(s, r, "length", cancelled ? "cancelled" : NULL);
        continue;
      }
      kvc_batch_item item = {.seq = r->seq};
      if (r->phase == SRV_PREFILL) {
        int32_t n = r->n_prompt - r->prefilled;
        if (!budget)
          continue; /* its turn comes at a later step: the running streams keep their pace */
        item.tokens = r->prompt + r->prefilled;
        item.n_tokens = n < budget ? n : budget;
        budget -= item.n_tokens;
      } else {
        const char *error = NULL, *reason = next_token(s, r, &error);
        if (reason || error) {
          finish(s, r, reason, error);
          continue;
        }
        item.tokens = &r->token;
        item.n_tokens = 1;
        n_decode++;
      }
      s->items[n_items] = item;
      s->item_req[n_items++] = r;
    }
    if (n_items) {
      double t0 = kvc_stat_now_ms();
      kvc_status st = kvc_seq_append_batch(s->items, n_items);
      double ms = kvc_stat_now_ms() - t0;
      for (int32_t i = 0; i < n_items; i++) {
        srv_request *r = s->item_req[i];
        if (st)
          finish(s, r, NULL, kvc_last_error());
        else if (r->phase == SRV_PREFILL && (r->prefilled += s->items[i].n_tokens) == r->n_prompt)
          r->phase = SRV_DECODE; /* its logits are ready: it samples at the next step */
      }
      if (!st)
        step_metrics(s, n_items, n_decode ? ms : -1.0);
    }
    /* leave between steps: the finished give their slots back */
    pthread_mutex_lock(&s->mu);
    int32_t kept = 0;
    for (int32_t i = 0; i < s->n_active; i++) {
      if (s->active[i]->phase == SRV_DONE)
        srv_request_release(s->active[i]);
      else
        s->active[kept++] = s->active[i];
    }
    s->n_active = kept;
    pthread_mutex_unlock(&s->mu);
  }
  return NULL;
}

static void release(srv_sched *s) {
  free(s->queue);
  free(s->active);
  free(s->idle);
  free(s->items);
  free(s->running);
  free(s->item_req);
  free(s);
}

srv_sched *srv_sched_start(kvc_model *model, kvc_tokenizer *tok, int32_t slots, int32_t queue,
                           int32_t chunk, srv_metrics *metrics) {
  srv_sched *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->tok = tok;
  s->metrics = metrics;
  s->slots = slots;
  s->queue_cap = queue > 0 ? queue : 1;
  s->chunk = chunk;
  kvc_model_get_info(model, &s->info);
  s->max_seq = s->info.max_seq_len;
  kvc_ctx_params cp = kvc_ctx_default_params();
  cp.slots = slots;
  kvc_status st = kvc_ctx_new(model, &cp, &s->ctx);
  s->queue = calloc((size_t)s->queue_cap, sizeof *s->queue);
  s->active = calloc((size_t)slots, sizeof *s->active);
  s->idle = calloc((size_t)slots, sizeof *s->idle);
  s->items = calloc((size_t)slots, sizeof *s->items);
  s->item_req = calloc((size_t)slots, sizeof *s->item_req);
  s->running = calloc((size_t)slots, sizeof *s->running);
  if (st || !s->queue || !s->active || !s->idle || !s->items || !s->item_req || !s->running) {
    fprintf(stderr, "kvcache serve: %s\n", st ? kvc_last_error() : "out of memory");
    kvc_ctx_free(s->ctx);
    release(s);
    return NULL;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->accepting = 1;
  if (pthread_create(&s->thread, NULL, run, s)) {
    fprintf(stderr, "kvcache serve: cannot start the scheduler thread\n");
    kvc_ctx_free(s->ctx);
    release(s);
    return NULL;
  }
  return s;
}

int srv_sched_submit(srv_sched *s, srv_request *r) {
  pthread_mutex_lock(&s->mu);
  int ok = s->accepting && s->q_len < s->queue_cap;
  if (ok) {
    pthread_mutex_lock(&r->mu);
    r->refs++;
    r->submitted = kvc_stat_now_ms();
    pthread_mutex_unlock(&r->mu);
    s->queue[(s->q_head + s->q_len) % s->queue_cap] = r;
    s->q_len++;
    pthread_cond_signal(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  return ok ? 0 : -1;
}

void srv_sched_load(srv_sched *s, int32_t *busy, int32_t *queued) {
  pthread_mutex_lock(&s->mu);
  *busy = s->n_active;
  *queued = s->q_len;
  pthread_mutex_unlock(&s->mu);
}

void srv_sched_stop(srv_sched *s, double grace_ms) {
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->accepting = 0;
  s->stopping = 1;
  s->deadline = kvc_stat_now_ms() + grace_ms;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  for (int32_t i = 0; i < s->n_idle; i++)
    kvc_seq_free(s->idle[i]);
  kvc_ctx_free(s->ctx);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  release(s);
}
