/* serve.h: `kvcache serve`, an OpenAI-compatible HTTP server. Three parts share these types:
 * the HTTP layer (serve_http.c: libmicrohttpd, a thread per connection, routes, limits), the
 * API (serve_api.c: OpenAI's requests parsed and checked, its responses written) and the
 * scheduler (serve_sched.c: one context of P slots, every step one batched run for all
 * running requests, prompts prefilled in chunks, requests joining and leaving between
 * steps). A request is handed from the connection to the scheduler through a bounded queue;
 * its text comes back through its own buffer, under its own lock. */
#ifndef KVC_TOOLS_SERVE_H
#define KVC_TOOLS_SERVE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "kvcache.h"

enum { SRV_MAX_STOPS = 4 };

typedef enum srv_phase { SRV_QUEUED, SRV_PREFILL, SRV_DECODE, SRV_DONE } srv_phase;

typedef struct srv_request {
  /* what was asked: set by the API before submit, read-only afterwards */
  int chat;   /* /v1/chat/completions (else /v1/completions) */
  int stream; /* server-sent events */
  int include_usage;
  int ignore_eos;  /* kvcache's extra: generate max_tokens whatever comes (for measuring) */
  int32_t *prompt; /* (n_prompt) the prompt's ids */
  int32_t n_prompt;
  int32_t max_tokens;
  kvc_sampler_params sampling;
  char *stops[SRV_MAX_STOPS];
  int n_stops;
  char id[48];
  int64_t created;

  /* the scheduler's (its thread alone) */
  srv_phase phase;
  kvc_seq *seq;
  kvc_sampler *sampler;
  kvc_detokenizer *detok;
  kvc_stop *stop;
  int32_t prefilled; /* prompt tokens run so far (or found in the cache) */
  int32_t cached;    /* prompt tokens found in the cache (another request's prefix) */
  int32_t token;     /* the last sampled token, appended at the next step */

  /* shared with the connection, under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *text; /* the completion's text so far */
  size_t text_len, text_cap;
  int32_t generated; /* completion tokens */
  int done;
  const char *finish_reason; /* "stop", "length", or NULL while running */
  char error[256];           /* set when the request failed inside the scheduler */
  int cancelled;             /* the client went away */
  int refs;                  /* the connection's and the scheduler's */
  double ttft_ms;            /* time to the first token, from submit */
  double submitted;
} srv_request;

/* A reference dropped; the last one frees the request. */
void srv_request_release(srv_request *r);
srv_request *srv_request_new(void);

typedef struct srv_metrics srv_metrics;

typedef struct srv_sched srv_sched;

/* The scheduler: one context of `slots` slots on `model`, a queue of `queue` requests beyond
 * them. NULL after printing why. */
srv_sched *srv_sched_start(kvc_model *model, kvc_tokenizer *tok, int32_t slots, int32_t queue,
                           int32_t chunk, srv_metrics *metrics);
/* Stop taking requests, let the running ones finish (at most grace_ms), stop the thread. */
void srv_sched_stop(srv_sched *s, double grace_ms);
/* Hand a request over (the scheduler takes a reference). 0, or -1 when the queue is full
 * (the caller answers 429) or the scheduler stopped. */
int srv_sched_submit(srv_sched *s, srv_request *r);
/* Running requests and queued ones, for /metrics. */
void srv_sched_load(srv_sched *s, int32_t *busy, int32_t *queued);

/* ---- metrics (serve_metrics.c) ---- */
srv_metrics *srv_metrics_new(void);
void srv_metrics_free(srv_metrics *m);
void srv_metrics_request(srv_metrics *m, int status);
void srv_metrics_tokens(srv_metrics *m, int64_t prompt, int64_t completion);
void srv_metrics_ttft(srv_metrics *m, double ms);
void srv_metrics_token_latency(srv_metrics *m, double ms);
void srv_metrics_cancelled(srv_metrics *m);
void srv_metrics_prefix(srv_metrics *m, int32_t cached_tokens);
/* A step's sequences and the slots its run spans (kvc_seq_slot: lowest to highest). */
void srv_metrics_step(srv_metrics *m, int32_t sequences, int32_t rows);
/* The Prometheus text (malloc'd). */
char *srv_metrics_text(srv_metrics *m, int32_t busy, int32_t queued, int32_t slots);

/* ---- the API (serve_api.c) ---- */
typedef struct srv_api {
  kvc_tokenizer *tok;
  kvc_chat_template *tmpl; /* NULL: the model has none (chat completions answer 400) */
  const char *model_name;
  int32_t max_tokens_limit;
  int32_t vocab, max_seq;
} srv_api;

/* An HTTP answer: status, content (malloc'd JSON), and for 429 a Retry-After. */
typedef struct srv_reply {
  int status;
  char *body;
} srv_reply;

/* OpenAI's error object as a reply. */
srv_reply srv_error(int status, const char *type, const char *param, const char *fmt, ...);

/* Parse and check a completion request's JSON body into *out (a new request: prompt ids,
 * limits, sampling, stops). 0, or the 400 reply to send. */
int srv_api_parse(const srv_api *api, int chat, const char *body, size_t len, srv_request **out,
                  srv_reply *error);
/* The whole answer of a finished non-streamed request. */
char *srv_api_response(const srv_api *api, srv_request *r);
/* One server-sent event for the text [from, to) of a streamed request; `final` adds the
 * finish reason (and the usage, when asked). malloc'd "data: ...\n\n". */
char *srv_api_chunk(const srv_api *api, srv_request *r, const char *text, size_t len, int first,
                    int final);
/* GET /v1/models, POST /tokenize, POST /detokenize. */
srv_reply srv_api_models(const srv_api *api);
srv_reply srv_api_tokenize(const srv_api *api, const char *body, size_t len);
srv_reply srv_api_detokenize(const srv_api *api, const char *body, size_t len);

#endif
