/* serve_http.h: kvcache serve's HTTP layer (serve_http.c) and the server it serves. */
#ifndef KVC_TOOLS_SERVE_HTTP_H
#define KVC_TOOLS_SERVE_HTTP_H

#include <netinet/in.h>
#include <stdatomic.h>

#include "serve.h"

typedef struct srv_server {
  srv_api *api;
  srv_sched *sched;
  srv_metrics *metrics;
  const char *api_key; /* NULL: none asked */
  size_t max_body;
  int32_t slots;
  int timeout_s, max_connections;
  atomic_int ready;     /* the model is loaded: requests are taken */
  atomic_int stopping;  /* SIGTERM: new requests are refused */
  atomic_int answering; /* requests whose answer is not yet sent (stopping waits for them) */
  struct MHD_Daemon *daemon;
  int port; /* bound (the one asked, or the system's pick for 0) */
} srv_server;

/* Listen on addr (0 after storing the port; -1 when it cannot). */
int srv_http_start(srv_server *s, const struct sockaddr_in *addr);
/* Close everything, once the scheduler is stopped: the answers still being sent (a stream's
 * last events) first, for at most 10 s. */
void srv_http_stop(srv_server *s);

#endif
