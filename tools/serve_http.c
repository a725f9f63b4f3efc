/* serve_http.c: the HTTP side of kvcache serve (serve.h) on libmicrohttpd, one thread per
 * connection: a non-streamed completion waits in its connection's thread, a streamed one
 * hands libmicrohttpd a reader that waits for the request's next text. Bodies beyond the
 * limit are refused (413) without being kept; the API key is compared in constant time; a
 * client that goes away mid-stream cancels its request (the scheduler frees the slot at its
 * next step). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "serve_http.h"

typedef struct conn {
  char *body;
  size_t len, cap;
  int too_big;
} conn;

/* A streamed request's state, owned by its response. */
typedef struct stream {
  srv_server *srv;
  srv_request *r;
  char *pending; /* SSE bytes not yet handed to libmicrohttpd */
  size_t pending_len, pending_at;
  size_t sent; /* of r->text */
  int started, finished, ended;
} stream;

static enum MHD_Result send_body(srv_server *s, struct MHD_Connection *c, int status,
                                 const char *type, char *body, int retry_after) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(body ? strlen(body) : 0, body ? body : (char *)"",
                                      body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(resp, "Content-Type", type);
  if (retry_after)
    MHD_add_response_header(resp, "Retry-After", "1");
  if (status == 401)
    MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
  MHD_destroy_response(resp);
  srv_metrics_request(s->metrics, status);
  return ret;
}

static enum MHD_Result send_reply(srv_server *s, struct MHD_Connection *c, srv_reply reply) {
  return send_body(s, c, reply.status, "application/json", reply.body, reply.status == 429);
}

/* Equal keys take the same time whatever their bytes (an attacker learns nothing from it). */
static int same_key(const char *given, const char *key) {
  size_t n = strlen(key), m = given ? strlen(given) : 0;
  unsigned char diff = (unsigned char)(n != m);
  for (size_t i = 0; i < n; i++)
    diff |= (unsigned char)(key[i] ^ (i < m ? given[i] : 0));
  return diff == 0;
}

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  stream *st = cls;
  for (;;) {
    if (st->pending_at < st->pending_len) {
      size_t n = st->pending_len - st->pending_at;
      n = n < max ? n : max;
      memcpy(buf, st->pending + st->pending_at, n);
      st->pending_at += n;
      return (ssize_t)n;
    }
    if (st->ended)
      return MHD_CONTENT_READER_END_OF_STREAM;
    srv_request *r = st->r;
    char *chunk = NULL;
    pthread_mutex_lock(&r->mu);
    while (st->started && r->text_len == st->sent && !r->done) {
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_sec += 1;
      pthread_cond_timedwait(&r->cv, &r->mu, &until);
    }
    size_t from = st->sent, to = r->text_len;
    int done = r->done;
    int failed = r->error[0] != 0;
    /* the text added since the last event, copied under the lock: the scheduler may move the
     * buffer as it grows */
    char *fresh = to > from ? malloc(to - from) : NULL;
    if (fresh)
      memcpy(fresh, r->text + from, to - from);
    pthread_mutex_unlock(&r->mu);
    if (to > from && !fresh)
      return MHD_CONTENT_READER_END_WITH_ERROR;
    int first = !st->started;
    st->started = 1;
    if (to > from || (first && r->chat)) /* a chat stream opens with the role */
      chunk = srv_api_chunk(st->srv->api, r, fresh ? fresh : "", to - from, first, 0);
    free(fresh);
    st->sent = to;
    size_t need = (chunk ? strlen(chunk) : 0) + 1024;
    char *p = malloc(need);
    if (!p) {
      free(chunk);
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = chunk ? (size_t)snprintf(p, need, "%s", chunk) : 0;
    free(chunk);
    if (done) {
      char *last = NULL;
      if (failed)
        n += (size_t)snprintf(p + n, need - n,
                              "data: {\"error\": {\"message\": \"the request failed in the "
                              "server\", \"type\": \"server_error\"}}\n\n");
      else if ((last = srv_api_chunk(st->srv->api, r, "", 0, 0, 1))) {
        char *grown = realloc(p, n + strlen(last) + 32);
        if (grown) {
          p = grown;
          n += (size_t)sprintf(p + n, "%s", last);
        }
      }
      free(last);
      n += (size_t)sprintf(p + n, "data: [DONE]\n\n");
      st->finished = st->ended = 1;
    }
    free(st->pending);
    st->pending = p;
    st->pending_len = n;
    st->pending_at = 0;
  }
}

static void free_stream(void *cls) {
  stream *st = cls;
  if (!st->finished) { /* the client went away: the scheduler drops the request */
    pthread_mutex_lock(&st->r->mu);
    st->r->cancelled = 1;
    pthread_mutex_unlock(&st->r->mu);
  }
  srv_request_release(st->r);
  free(st->pending);
  free(st);
}

static enum MHD_Result complete(srv_server *s, struct MHD_Connection *c, int chat, conn *k) {
  srv_request *r = NULL;
  srv_reply error;
  if (srv_api_parse(s->api, chat, k->body ? k->body : "", k->len, &r, &error))
    return send_reply(s, c, error);
  if (srv_sched_submit(s->sched, r)) {
    srv_request_release(r);
    return send_reply(s, c,
                      srv_error(atomic_load(&s->stopping) ? 503 : 429,
                                atomic_load(&s->stopping) ? "server_error" : "rate_limit_error",
                                NULL,
                                atomic_load(&s->stopping)
                                    ? "the server is shutting down"
                                    : "every slot is busy and the queue is full: retry later"));
  }
  if (r->stream) {
    stream *st = calloc(1, sizeof *st);
    if (!st) {
      srv_request_release(r);
      return MHD_NO;
    }
    st->srv = s;
    st->r = r;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_stream, st, free_stream);
    if (!resp) {
      free_stream(st);
      return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    srv_metrics_request(s->metrics, 200);
    return ret;
  }
  pthread_mutex_lock(&r->mu);
  while (!r->done)
    pthread_cond_wait(&r->cv, &r->mu);
  pthread_mutex_unlock(&r->mu);
  enum MHD_Result ret;
  if (r->error[0])
    ret = send_reply(s, c, srv_error(500, "server_error", NULL, "%s", r->error));
  else
    ret = send_body(s, c, 200, "application/json", srv_api_response(s->api, r), 0);
  srv_request_release(r);
  return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
  (void)version;
  srv_server *s = cls;
  conn *k = *con_cls;
  if (!k) {
    if (!(k = calloc(1, sizeof *k)))
      return MHD_NO;
    *con_cls = k;
    atomic_fetch_add(&s->answering, 1);
    return MHD_YES;
  }
  if (*upload_size) { /* the body, kept up to the limit */
    if (!k->too_big && k->len + *upload_size > s->max_body) {
      k->too_big = 1;
      free(k->body);
      k->body = NULL;
      k->len = 0;
    }
    if (!k->too_big) {
      if (k->len + *upload_size + 1 > k->cap) {
        size_t cap = k->cap ? k->cap : 4096;
        while (cap < k->len + *upload_size + 1)
          cap *= 2;
        char *grown = realloc(k->body, cap);
        if (!grown)
          return MHD_NO;
        k->body = grown;
        k->cap = cap;
      }
      memcpy(k->body + k->len, upload, *upload_size);
      k->len += *upload_size;
      k->body[k->len] = 0;
    }
    *upload_size = 0;
    return MHD_YES;
  }
  int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
  if (!strcmp(url, "/health") && get) {
    int ready = atomic_load(&s->ready) && !atomic_load(&s->stopping);
    return send_body(s, c, ready ? 200 : 503, "application/json",
                     strdup(ready                       ? "{\"status\": \"ok\"}"
                            : atomic_load(&s->stopping) ? "{\"status\": \"stopping\"}"
                                                        : "{\"status\": \"loading\"}"),
                     0);
  }
  if (!atomic_load(&s->ready))
    return send_reply(s, c, srv_error(503, "server_error", NULL, "the model is loading"));
  if (s->api_key) {
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *given = auth && !strncmp(auth, "Bearer ", 7) ? auth + 7 : NULL;
    if (!same_key(given, s->api_key))
      return send_reply(s, c,
                        srv_error(401, "invalid_request_error", NULL,
                                  auth ? "the API key is not this server's"
                                       : "no API key: send 'Authorization: Bearer KEY'"));
  }
  if (k->too_big)
    return send_reply(s, c,
                      srv_error(413, "invalid_request_error", NULL,
                                "the body is larger than %zu bytes (--max-body)", s->max_body));
  static const struct {
    const char *path;
    int post;
  } routes[] = {{"/v1/completions", 1}, {"/v1/chat/completions", 1},
                {"/v1/models", 0},      {"/metrics", 0},
                {"/tokenize", 1},       {"/detokenize", 1}};
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    if (strcmp(url, routes[i].path))
      continue;
    if (routes[i].post ? !post : !get)
      return send_reply(s, c,
                        srv_error(405, "invalid_request_error", NULL, "%s takes %s", url,
                                  routes[i].post ? "POST" : "GET"));
    switch (i) {
    case 0:
    case 1:
      return complete(s, c, i == 1, k);
    case 2:
      return send_reply(s, c, srv_api_models(s->api));
    case 3: {
      int32_t busy, queued;
      srv_sched_load(s->sched, &busy, &queued);
      return send_body(s, c, 200, "text/plain; version=0.0.4",
                       srv_metrics_text(s->metrics, busy, queued, s->slots), 0);
    }
    case 4:
      return send_reply(s, c, srv_api_tokenize(s->api, k->body ? k->body : "", k->len));
    default:
      return send_reply(s, c, srv_api_detokenize(s->api, k->body ? k->body : "", k->len));
    }
  }
  return send_reply(s, c,
                    srv_error(404, "invalid_request_error", NULL, "no route %s %s", method, url));
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode why) {
  (void)c, (void)why;
  srv_server *s = cls;
  conn *k = *con_cls;
  if (k) {
    atomic_fetch_sub(&s->answering, 1);
    free(k->body);
    free(k);
    *con_cls = NULL;
  }
}

/* MHD_USE_ITC: without it, under CPU load, the first connections to a fresh daemon were
 * sometimes reset (tests/test_serve_nginx.sh, 3 runs of 3 with a busy core; with it, none). */
int srv_http_start(srv_server *s, const struct sockaddr_in *addr) {
  s->daemon =
      MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                           MHD_USE_ITC | MHD_USE_ERROR_LOG,
                       0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR,
                       (const struct sockaddr *)addr, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->timeout_s,
                       MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->max_connections, MHD_OPTION_END);
  if (!s->daemon)
    return -1;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : 0;
  return 0;
}

void srv_http_stop(srv_server *s) {
  for (int i = 0; i < 1000 && atomic_load(&s->answering) > 0; i++)
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  MHD_stop_daemon(s->daemon);
}
