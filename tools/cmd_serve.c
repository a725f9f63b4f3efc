/* kvcache serve: an OpenAI-compatible HTTP server over one context of P slots (serve.h). */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "kvcache.h"
#include "serve_http.h"

static const char usage[] =
    "usage: kvcache serve -m DIR [--host 127.0.0.1] [--port 8080] [--parallel 4] [options]\n"
    "\n"
    "Serves the model over HTTP with OpenAI's API: POST /v1/completions and\n"
    "/v1/chat/completions (streamed as server-sent events with \"stream\": true),\n"
    "GET /v1/models, GET /health, GET /metrics (Prometheus), POST /tokenize and\n"
    "/detokenize. Up to --parallel requests decode together, one batched run a step, each\n"
    "joining and leaving between steps; more wait in a queue of --queue, and past it the\n"
    "server answers 429. SIGTERM (or Ctrl-C) answers new requests 503, lets the running\n"
    "ones finish within --grace seconds, and exits 0. docs/SERVER.md has the details.\n"
    "\n";

static int parse_host(const char *cmd, const char *value, void *target) {
  struct sockaddr_in *addr = target;
  if (inet_pton(AF_INET, value, &addr->sin_addr) != 1) {
    fprintf(stderr, "kvcache %s: --host expects an IPv4 address (127.0.0.1, 0.0.0.0), got '%s'\n",
            cmd, value);
    return 1;
  }
  return 0;
}

int kvc_cmd_serve(int argc, char **argv) {
  const char *cmd = "serve", *dir = NULL, *name = NULL, *api_key = NULL;
  int64_t port = 8080, parallel = 4, queue = 64, max_tokens = 4096, max_body = 1 << 20, chunk = 256,
          timeout = 60;
  double grace = 30;
  struct sockaddr_in addr = {.sin_family = AF_INET};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  kvc_model_params mp = kvc_model_default_params();
  kvc_opt opts[] = {
      KVC_CUSTOM("--host", "ADDR", &addr, parse_host,
                 "the IPv4 address to listen on (127.0.0.1: this machine only;\n"
                 "0.0.0.0: every interface)"),
      KVC_INT64("--port", "N", &port, 0, 65535, "the TCP port (8080; 0: any free one, printed)"),
      KVC_INT64("--parallel", "P", &parallel, 1, KVC_MAX_SLOTS,
                "requests decoding at once: the context's slots (4)"),
      KVC_INT64("--queue", "N", &queue, 1, 1 << 20,
                "requests waiting for a slot before the server answers 429 (64)"),
      KVC_TEXT("--api-key", "KEY", &api_key,
               "require 'Authorization: Bearer KEY' (default: the environment's\n"
               "KVCACHE_API_KEY, else none)"),
      KVC_TEXT("--name", "NAME", &name, "the model's name in the API (the directory's name)"),
      KVC_INT64("--max-tokens", "N", &max_tokens, 1, 1 << 24,
                "the most tokens a request may ask for (4096; a chat request that\n"
                "gives none gets this)"),
      KVC_INT64("--max-body", "BYTES", &max_body, 1024, 1 << 30,
                "the largest request body (1 MiB); larger ones get 413"),
      KVC_INT64("--chunk", "N", &chunk, 1, 1 << 20,
                "prompt tokens run per step, all new requests together (256):\n"
                "running streams wait at most one chunk per step"),
      KVC_INT64("--timeout", "S", &timeout, 1, 3600,
                "close a connection idle this many seconds (60)"),
      KVC_NUMBER("--grace", "S", &grace, 0, 3600,
                 "after SIGTERM, how long running requests may go on (30)"),
  };
  kvc_args args = KVC_ARGS_MODEL(cmd, usage, opts, &mp, &dir);
  const int parsed = kvc_args_parse(&args, argc, argv);
  if (parsed != KVC_ARGS_GO)
    return parsed;
  if (!api_key)
    api_key = getenv("KVCACHE_API_KEY");
  if (api_key && !*api_key) {
    fprintf(stderr, "kvcache %s: --api-key: an empty key would let everyone in\n", cmd);
    return KVC_EXIT_USAGE;
  }
  addr.sin_port = htons((uint16_t)port);

  /* the signals go to this thread alone (sigwait below); a client gone is not a signal */
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
  signal(SIGPIPE, SIG_IGN);

  srv_metrics *metrics = srv_metrics_new();
  srv_api api = {.max_tokens_limit = (int32_t)max_tokens};
  srv_server srv = {.api = &api,
                    .metrics = metrics,
                    .api_key = api_key,
                    .max_body = (size_t)max_body,
                    .slots = (int32_t)parallel,
                    .timeout_s = (int)timeout,
                    .max_connections = 512};
  if (!metrics || srv_http_start(&srv, &addr)) {
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &addr.sin_addr, host, sizeof host);
    fprintf(stderr, "kvcache %s: cannot listen on %s:%lld (in use, or not this machine's)\n", cmd,
            host, (long long)port);
    srv_metrics_free(metrics);
    return 1;
  }
  char host[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr.sin_addr, host, sizeof host);
  fprintf(stderr, "kvcache serve: listening on http://%s:%d (loading the model)\n", host, srv.port);

  kvc_model *model = NULL;
  int rc = kvc_arg_open_model(cmd, dir, &mp, &model);
  char path[4200];
  kvc_status st = KVC_OK;
  if (!rc && ((st = kvc_model_file(model, "tokenizer.json", path, sizeof path)) ||
              (st = kvc_tokenizer_open(path, &api.tok)))) {
    fprintf(stderr, "kvcache %s: the server needs the model's tokenizer: %s\n", cmd,
            kvc_last_error());
    rc = KVC_EXIT_USAGE;
  }
  if (!rc && !kvc_model_file(model, "tokenizer_config.json", path, sizeof path) &&
      kvc_chat_template_open(path, &api.tmpl))
    fprintf(stderr, "kvcache %s: no chat completions: %s\n", cmd, kvc_last_error());
  if (!rc) {
    kvc_model_info info;
    kvc_model_get_info(model, &info);
    api.vocab = info.vocab_size;
    api.max_seq = info.max_seq_len;
    if (!name) {
      const char *slash = strrchr(dir, '/');
      name = slash && slash[1] ? slash + 1 : dir;
    }
    api.model_name = name;
    if (!(srv.sched = srv_sched_start(model, api.tok, (int32_t)parallel, (int32_t)queue,
                                      (int32_t)chunk, metrics)))
      rc = 1;
  }
  if (!rc) {
    atomic_store(&srv.ready, 1);
    fprintf(stderr, "kvcache serve: ready: model %s, %lld slots, %s%s\n", api.model_name,
            (long long)parallel, api.tmpl ? "chat template" : "no chat template",
            api_key ? ", API key required" : "");
    int sig = 0;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "kvcache serve: %s: finishing the running requests (at most %g s)\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", grace);
    atomic_store(&srv.stopping, 1); /* new requests get 503 (a balancer retries elsewhere) */
  }
  srv_sched_stop(srv.sched, grace * 1e3);
  srv_http_stop(&srv);
  kvc_chat_template_free(api.tmpl);
  kvc_tokenizer_free(api.tok);
  kvc_model_free(model);
  srv_metrics_free(metrics);
  if (!rc)
    fprintf(stderr, "kvcache serve: stopped\n");
  return rc;
}
