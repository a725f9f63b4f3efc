/* serve_metrics.c: kvcache serve's counters and histograms, in Prometheus' text format. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

enum { N_STATUS = 16, N_BUCKETS = 11 };

typedef struct histogram {
  const double *bounds; /* N_BUCKETS - 1 upper bounds, ms; the last bucket is +Inf */
  int64_t counts[N_BUCKETS];
  double sum;
  int64_t n;
} histogram;

static const double TTFT_MS[N_BUCKETS - 1] = {10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
static const double TOKEN_MS[N_BUCKETS - 1] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};

struct srv_metrics {
  pthread_mutex_t mu;
  int statuses[N_STATUS];
  int64_t status_counts[N_STATUS];
  int64_t prompt_tokens, completion_tokens, cancelled, prefix_hits, prefix_tokens;
  int64_t step_sequences, step_rows;
  histogram ttft, token;
};

srv_metrics *srv_metrics_new(void) {
  srv_metrics *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  pthread_mutex_init(&m->mu, NULL);
  m->ttft.bounds = TTFT_MS;
  m->token.bounds = TOKEN_MS;
  return m;
}

void srv_metrics_free(srv_metrics *m) {
  if (!m)
    return;
  pthread_mutex_destroy(&m->mu);
  free(m);
}

void srv_metrics_request(srv_metrics *m, int status) {
  pthread_mutex_lock(&m->mu);
  for (int i = 0; i < N_STATUS; i++)
    if (m->statuses[i] == status || !m->statuses[i]) {
      m->statuses[i] = status;
      m->status_counts[i]++;
      break;
    }
  pthread_mutex_unlock(&m->mu);
}

void srv_metrics_tokens(srv_metrics *m, int64_t prompt, int64_t completion) {
  pthread_mutex_lock(&m->mu);
  m->prompt_tokens += prompt;
  m->completion_tokens += completion;
  pthread_mutex_unlock(&m->mu);
}

void srv_metrics_cancelled(srv_metrics *m) {
  pthread_mutex_lock(&m->mu);
  m->cancelled++;
  pthread_mutex_unlock(&m->mu);
}

void srv_metrics_prefix(srv_metrics *m, int32_t cached_tokens) {
  pthread_mutex_lock(&m->mu);
  m->prefix_hits++;
  m->prefix_tokens += cached_tokens;
  pthread_mutex_unlock(&m->mu);
}

void srv_metrics_step(srv_metrics *m, int32_t sequences, int32_t rows) {
  pthread_mutex_lock(&m->mu);
  m->step_sequences += sequences;
  m->step_rows += rows;
  pthread_mutex_unlock(&m->mu);
}

static void observe(srv_metrics *m, histogram *h, double ms) {
  pthread_mutex_lock(&m->mu);
  int b = 0;
  while (b < N_BUCKETS - 1 && ms > h->bounds[b])
    b++;
  h->counts[b]++;
  h->sum += ms;
  h->n++;
  pthread_mutex_unlock(&m->mu);
}

void srv_metrics_ttft(srv_metrics *m, double ms) {
  observe(m, &m->ttft, ms);
}

void srv_metrics_token_latency(srv_metrics *m, double ms) {
  observe(m, &m->token, ms);
}

static size_t put(char *out, size_t cap, size_t at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(out + at, at < cap ? cap - at : 0, fmt, ap);
  va_end(ap);
  return at + (k > 0 ? (size_t)k : 0);
}

static size_t put_histogram(char *out, size_t cap, size_t at, const char *name, const char *help,
                            const histogram *h) {
  at = put(out, cap, at, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  int64_t total = 0;
  for (int b = 0; b < N_BUCKETS; b++) {
    total += h->counts[b];
    if (b < N_BUCKETS - 1)
      at = put(out, cap, at, "%s_bucket{le=\"%g\"} %lld\n", name, h->bounds[b] / 1e3,
               (long long)total);
    else
      at = put(out, cap, at, "%s_bucket{le=\"+Inf\"} %lld\n", name, (long long)total);
  }
  return put(out, cap, at, "%s_sum %.6f\n%s_count %lld\n", name, h->sum / 1e3, name,
             (long long)h->n);
}

char *srv_metrics_text(srv_metrics *m, int32_t busy, int32_t queued, int32_t slots) {
  size_t cap = 8192;
  char *out = malloc(cap);
  if (!out)
    return NULL;
  pthread_mutex_lock(&m->mu);
  size_t at = 0;
  at = put(out, cap, at,
           "# HELP kvcache_requests_total HTTP requests answered, by status.\n"
           "# TYPE kvcache_requests_total counter\n");
  for (int i = 0; i < N_STATUS && m->statuses[i]; i++)
    at = put(out, cap, at, "kvcache_requests_total{status=\"%d\"} %lld\n", m->statuses[i],
             (long long)m->status_counts[i]);
  at = put(out, cap, at,
           "# HELP kvcache_prompt_tokens_total Prompt tokens of completed requests.\n"
           "# TYPE kvcache_prompt_tokens_total counter\nkvcache_prompt_tokens_total %lld\n"
           "# HELP kvcache_completion_tokens_total Tokens generated for completed requests.\n"
           "# TYPE kvcache_completion_tokens_total counter\nkvcache_completion_tokens_total %lld\n"
           "# HELP kvcache_requests_cancelled_total Requests whose client went away first.\n"
           "# TYPE kvcache_requests_cancelled_total counter\n"
           "kvcache_requests_cancelled_total %lld\n"
           "# HELP kvcache_prefix_cache_hits_total Requests whose prompt began with tokens "
           "already in the cache.\n# TYPE kvcache_prefix_cache_hits_total counter\n"
           "kvcache_prefix_cache_hits_total %lld\n"
           "# HELP kvcache_prefix_cached_tokens_total Prompt tokens taken from the cache.\n"
           "# TYPE kvcache_prefix_cached_tokens_total counter\n"
           "kvcache_prefix_cached_tokens_total %lld\n"
           "# HELP kvcache_step_sequences_total Sequences the steps ran, summed over steps.\n"
           "# TYPE kvcache_step_sequences_total counter\nkvcache_step_sequences_total %lld\n"
           "# HELP kvcache_step_rows_total Slots the steps' runs spanned (their sequences and "
           "the idle slots between), summed over steps.\n"
           "# TYPE kvcache_step_rows_total counter\nkvcache_step_rows_total %lld\n",
           (long long)m->prompt_tokens, (long long)m->completion_tokens, (long long)m->cancelled,
           (long long)m->prefix_hits, (long long)m->prefix_tokens, (long long)m->step_sequences,
           (long long)m->step_rows);
  at = put_histogram(out, cap, at, "kvcache_time_to_first_token_seconds",
                     "From a request's arrival to its first token.", &m->ttft);
  at = put_histogram(out, cap, at, "kvcache_step_seconds",
                     "One scheduler step that decoded: each running stream's time per token.",
                     &m->token);
  at = put(out, cap, at,
           "# HELP kvcache_slots_busy Slots holding a request.\n# TYPE kvcache_slots_busy gauge\n"
           "kvcache_slots_busy %d\n# HELP kvcache_slots Slots of the context.\n"
           "# TYPE kvcache_slots gauge\nkvcache_slots %d\n"
           "# HELP kvcache_queue_length Requests waiting for a slot.\n"
           "# TYPE kvcache_queue_length gauge\nkvcache_queue_length %d\n",
           busy, slots, queued);
  pthread_mutex_unlock(&m->mu);
  if (at >= cap) {
    free(out);
    return NULL;
  }
  return out;
}
