/* serve_api.c: OpenAI's completion and chat completion requests, parsed and checked (every
 * bad value answered 400 with OpenAI's error object, naming the parameter), and their
 * responses and stream chunks written. */
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

srv_reply srv_error(int status, const char *type, const char *param, const char *fmt, ...) {
  char message[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
  cJSON_AddStringToObject(e, "message", message);
  cJSON_AddStringToObject(e, "type", type);
  if (param)
    cJSON_AddStringToObject(e, "param", param);
  else
    cJSON_AddNullToObject(e, "param");
  cJSON_AddNullToObject(e, "code");
  srv_reply reply = {status, cJSON_PrintUnformatted(root)};
  cJSON_Delete(root);
  return reply;
}

static srv_reply bad(const char *param, const char *fmt, ...) {
  char message[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  return srv_error(400, "invalid_request_error", param, "%s", message);
}

/* A number at `key` within [lo, hi] (hi_open: below hi), or the default when absent. */
static int number(const cJSON *o, const char *key, double lo, double hi, int integer, double *v,
                  srv_reply *error) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!x || cJSON_IsNull(x))
    return 0;
  if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < lo ||
      x->valuedouble > hi || (integer && x->valuedouble != floor(x->valuedouble))) {
    *error =
        bad(key, "'%s' must be %s in %g..%g", key, integer ? "an integer" : "a number", lo, hi);
    return -1;
  }
  *v = x->valuedouble;
  return 0;
}

static int prompt_ids(const srv_api *api, const cJSON *prompt, srv_request *r, srv_reply *error) {
  if (cJSON_IsArray(prompt) && cJSON_GetArraySize(prompt) == 1 && cJSON_IsString(prompt->child))
    prompt = prompt->child; /* ["text"]: one prompt */
  if (cJSON_IsString(prompt)) {
    const char *text = prompt->valuestring;
    int32_t n = 0;
    kvc_status st = kvc_tokenize(api->tok, text, strlen(text), 1, NULL, 0, &n);
    if (st) {
      *error = bad("prompt", "prompt: %s", kvc_last_error());
      return -1;
    }
    r->prompt = malloc(((size_t)n + 1) * sizeof *r->prompt);
    if (!r->prompt || kvc_tokenize(api->tok, text, strlen(text), 1, r->prompt, n, &n)) {
      *error = srv_error(500, "server_error", NULL, "out of memory");
      return -1;
    }
    r->n_prompt = n;
    return 0;
  }
  if (!cJSON_IsArray(prompt)) {
    *error = bad("prompt", "'prompt' must be a string or an array of token ids");
    return -1;
  }
  int n = cJSON_GetArraySize(prompt);
  if (n > api->max_seq) {
    *error = bad("prompt", "the prompt is %d tokens: the context holds %d", n, api->max_seq);
    return -1;
  }
  r->prompt = malloc(((size_t)n + 1) * sizeof *r->prompt);
  if (!r->prompt) {
    *error = srv_error(500, "server_error", NULL, "out of memory");
    return -1;
  }
  int i = 0;
  for (const cJSON *x = prompt->child; x; x = x->next, i++) {
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble >= api->vocab ||
        x->valuedouble != floor(x->valuedouble)) {
      *error = bad("prompt", "prompt[%d] is not a token id in 0..%d", i, api->vocab - 1);
      return -1;
    }
    r->prompt[i] = (int32_t)x->valuedouble;
  }
  r->n_prompt = n;
  return 0;
}

static int chat_ids(const srv_api *api, const cJSON *root, srv_request *r, srv_reply *error) {
  if (!api->tmpl) {
    *error = bad("messages", "the model has no chat template (tokenizer_config.json)");
    return -1;
  }
  const cJSON *messages = cJSON_GetObjectItemCaseSensitive(root, "messages");
  const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
  if (!cJSON_IsArray(messages) || !cJSON_GetArraySize(messages)) {
    *error = bad("messages", "'messages' must be a non-empty array of messages");
    return -1;
  }
  if (tools && !cJSON_IsNull(tools) && !cJSON_IsArray(tools)) {
    *error = bad("tools", "'tools' must be an array");
    return -1;
  }
  char *m = cJSON_PrintUnformatted(messages);
  char *t = cJSON_IsArray(tools) ? cJSON_PrintUnformatted(tools) : NULL;
  kvc_chat_params p = kvc_chat_default_params();
  p.messages = m;
  p.tools = t;
  int32_t n = 0;
  kvc_status st = m ? kvc_chat_tokenize(api->tmpl, api->tok, &p, NULL, 0, &n) : KVC_ERR_NO_MEMORY;
  if (!st && !(r->prompt = malloc(((size_t)n + 1) * sizeof *r->prompt)))
    st = KVC_ERR_NO_MEMORY;
  if (!st)
    st = kvc_chat_tokenize(api->tmpl, api->tok, &p, r->prompt, n, &n);
  free(m);
  free(t);
  if (st) {
    *error = st == KVC_ERR_NO_MEMORY ? srv_error(500, "server_error", NULL, "out of memory")
                                     : bad("messages", "%s", kvc_last_error());
    return -1;
  }
  r->n_prompt = n;
  return 0;
}

static int stops(const cJSON *root, srv_request *r, srv_reply *error) {
  const cJSON *stop = cJSON_GetObjectItemCaseSensitive(root, "stop");
  if (!stop || cJSON_IsNull(stop))
    return 0;
  int n = cJSON_IsString(stop) ? 1 : cJSON_IsArray(stop) ? cJSON_GetArraySize(stop) : -1;
  if (n < 0 || n > SRV_MAX_STOPS) {
    *error =
        bad("stop", "'stop' must be a string or an array of at most %d strings", SRV_MAX_STOPS);
    return -1;
  }
  for (int i = 0; i < n; i++) {
    const cJSON *s = cJSON_IsString(stop) ? stop : cJSON_GetArrayItem(stop, i);
    if (!cJSON_IsString(s) || !*s->valuestring) {
      *error = bad("stop", "'stop' must hold non-empty strings");
      return -1;
    }
    if (!(r->stops[r->n_stops] = strdup(s->valuestring))) {
      *error = srv_error(500, "server_error", NULL, "out of memory");
      return -1;
    }
    r->n_stops++;
  }
  return 0;
}

/* OpenAI parameters kvcache does not implement: refused when set to anything but their
 * default (ignoring them would give another answer than the one asked for). */
static int unsupported(const cJSON *root, srv_reply *error) {
  static const char *const names[] = {
      "logprobs",        "top_logprobs", "logit_bias",         "echo",
      "suffix",          "best_of",      "frequency_penalty",  "presence_penalty",
      "response_format", "tool_choice",  "parallel_tool_calls"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, names[i]);
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
      continue;
    if (cJSON_IsNumber(v) && (v->valuedouble == 0 || (i == 5 && v->valuedouble == 1)))
      continue; /* penalties of 0, best_of 1 */
    if (cJSON_IsObject(v) && !v->child)
      continue; /* logit_bias {} */
    if (cJSON_IsString(v) && (!strcmp(v->valuestring, "auto") || !strcmp(v->valuestring, "none")))
      continue; /* tool_choice: the template decides */
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
    if (i == 8 && cJSON_IsString(type) && !strcmp(type->valuestring, "text"))
      continue;
    if (i == 10 && cJSON_IsTrue(v))
      continue;
    *error = bad(names[i], "'%s' is not supported by kvcache serve (docs/SERVER.md lists what is)",
                 names[i]);
    return -1;
  }
  return 0;
}

int srv_api_parse(const srv_api *api, int chat, const char *body, size_t len, srv_request **out,
                  srv_reply *error) {
  *out = NULL;
  cJSON *root = cJSON_ParseWithLength(body, len);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    *error = bad(NULL, "the body is not a JSON object");
    return -1;
  }
  srv_request *r = srv_request_new();
  if (!r) {
    cJSON_Delete(root);
    *error = srv_error(500, "server_error", NULL, "out of memory");
    return -1;
  }
  r->chat = chat;
  r->sampling = kvc_sampler_default_params();
  double temperature = 1, top_p = 1, top_k = 0, min_p = 0, penalty = 1, seed = 0, n = 1;
  double max_tokens = chat ? api->max_tokens_limit : 16;
  int rc = unsupported(root, error);
  if (!rc)
    rc = number(root, "temperature", 0, 2, 0, &temperature, error);
  if (!rc)
    rc = number(root, "top_p", 1e-9, 1, 0, &top_p, error);
  if (!rc)
    rc = number(root, "top_k", 0, 1e9, 1, &top_k, error);
  if (!rc)
    rc = number(root, "min_p", 0, 1, 0, &min_p, error);
  if (!rc)
    rc = number(root, "repetition_penalty", 1e-6, 1e6, 0, &penalty, error);
  if (!rc)
    rc = number(root, "seed", -9007199254740991.0, 9007199254740991.0, 1, &seed, error);
  if (!rc)
    rc = number(root, "n", 1, 1, 1, &n, error);
  if (!rc)
    rc = number(root, "max_tokens", 1, api->max_tokens_limit, 1, &max_tokens, error);
  if (!rc && chat)
    rc = number(root, "max_completion_tokens", 1, api->max_tokens_limit, 1, &max_tokens, error);
  const cJSON *stream = cJSON_GetObjectItemCaseSensitive(root, "stream");
  if (!rc && stream && !cJSON_IsNull(stream) && !cJSON_IsBool(stream)) {
    *error = bad("stream", "'stream' must be true or false");
    rc = -1;
  }
  r->stream = cJSON_IsTrue(stream);
  const cJSON *ignore = cJSON_GetObjectItemCaseSensitive(root, "ignore_eos");
  if (!rc && ignore && !cJSON_IsBool(ignore)) {
    *error = bad("ignore_eos", "'ignore_eos' must be true or false");
    rc = -1;
  }
  r->ignore_eos = cJSON_IsTrue(ignore);
  const cJSON *options = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
  r->include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(options, "include_usage"));
  if (!rc)
    rc = stops(root, r, error);
  if (!rc && !chat) {
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!prompt) {
      *error = bad("prompt", "'prompt' is required");
      rc = -1;
    } else {
      rc = prompt_ids(api, prompt, r, error);
    }
  }
  if (!rc && chat)
    rc = chat_ids(api, root, r, error);
  if (!rc && r->n_prompt < 1) {
    *error = bad(chat ? "messages" : "prompt", "the prompt is empty");
    rc = -1;
  }
  if (!rc && r->n_prompt >= api->max_seq) {
    *error = srv_error(400, "invalid_request_error", chat ? "messages" : "prompt",
                       "the prompt is %d tokens: the context holds %d, with room for at least "
                       "one more",
                       r->n_prompt, api->max_seq);
    rc = -1;
  }
  cJSON_Delete(root);
  if (rc) {
    srv_request_release(r);
    return -1;
  }
  r->max_tokens = (int32_t)max_tokens;
  r->sampling.temperature = (float)temperature;
  if (temperature > 0) {
    r->sampling.top_p = (float)top_p;
    r->sampling.top_k = (int32_t)top_k;
    r->sampling.min_p = (float)min_p;
  }
  r->sampling.repetition_penalty = (float)penalty;
  r->sampling.seed = (uint64_t)(int64_t)seed;
  static atomic_ulong counter;
  snprintf(r->id, sizeof r->id, "%s-%lx%04lx", chat ? "chatcmpl" : "cmpl",
           (unsigned long)time(NULL), (atomic_fetch_add(&counter, 1) + 1) & 0xffff);
  r->created = (int64_t)time(NULL);
  *out = r;
  return 0;
}

static cJSON *usage(const srv_request *r) {
  cJSON *u = cJSON_CreateObject();
  cJSON_AddNumberToObject(u, "prompt_tokens", r->n_prompt);
  cJSON_AddNumberToObject(u, "completion_tokens", r->generated);
  cJSON_AddNumberToObject(u, "total_tokens", r->n_prompt + r->generated);
  cJSON *details = cJSON_AddObjectToObject(u, "prompt_tokens_details");
  cJSON_AddNumberToObject(details, "cached_tokens", r->cached);
  return u;
}

static cJSON *head(const srv_api *api, const srv_request *r, int chunk) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "id", r->id);
  cJSON_AddStringToObject(root, "object",
                          r->chat ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                  : "text_completion");
  cJSON_AddNumberToObject(root, "created", (double)r->created);
  cJSON_AddStringToObject(root, "model", api->model_name);
  return root;
}

char *srv_api_response(const srv_api *api, srv_request *r) {
  cJSON *root = head(api, r, 0), *choices = cJSON_AddArrayToObject(root, "choices");
  cJSON *c = cJSON_CreateObject();
  cJSON_AddNumberToObject(c, "index", 0);
  if (r->chat) {
    cJSON *m = cJSON_AddObjectToObject(c, "message");
    cJSON_AddStringToObject(m, "role", "assistant");
    cJSON_AddStringToObject(m, "content", r->text ? r->text : "");
  } else {
    cJSON_AddStringToObject(c, "text", r->text ? r->text : "");
    cJSON_AddNullToObject(c, "logprobs");
  }
  cJSON_AddStringToObject(c, "finish_reason", r->finish_reason ? r->finish_reason : "stop");
  cJSON_AddItemToArray(choices, c);
  cJSON_AddItemToObject(root, "usage", usage(r));
  char *text = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return text;
}

char *srv_api_chunk(const srv_api *api, srv_request *r, const char *text, size_t len, int first,
                    int final) {
  cJSON *root = head(api, r, 1), *choices = cJSON_AddArrayToObject(root, "choices");
  cJSON *c = cJSON_CreateObject();
  cJSON_AddNumberToObject(c, "index", 0);
  char *piece = malloc(len + 1);
  if (piece) {
    memcpy(piece, text, len);
    piece[len] = 0;
  }
  if (r->chat) {
    cJSON *d = cJSON_AddObjectToObject(c, "delta");
    if (first)
      cJSON_AddStringToObject(d, "role", "assistant");
    if (len || first)
      cJSON_AddStringToObject(d, "content", piece ? piece : "");
  } else {
    cJSON_AddStringToObject(c, "text", piece ? piece : "");
    cJSON_AddNullToObject(c, "logprobs");
  }
  free(piece);
  if (final)
    cJSON_AddStringToObject(c, "finish_reason", r->finish_reason ? r->finish_reason : "stop");
  else
    cJSON_AddNullToObject(c, "finish_reason");
  cJSON_AddItemToArray(choices, c);
  if (final && r->include_usage)
    cJSON_AddItemToObject(root, "usage", usage(r));
  char *json = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!json)
    return NULL;
  size_t n = strlen(json);
  char *event = malloc(n + 9);
  if (event)
    snprintf(event, n + 9, "data: %s\n\n", json);
  free(json);
  return event;
}

srv_reply srv_api_models(const srv_api *api) {
  cJSON *root = cJSON_CreateObject(), *data = cJSON_AddArrayToObject(root, "data");
  cJSON_AddStringToObject(root, "object", "list");
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "id", api->model_name);
  cJSON_AddStringToObject(m, "object", "model");
  cJSON_AddNumberToObject(m, "created", 0);
  cJSON_AddStringToObject(m, "owned_by", "kvcache");
  cJSON_AddItemToArray(data, m);
  srv_reply reply = {200, cJSON_PrintUnformatted(root)};
  cJSON_Delete(root);
  return reply;
}

srv_reply srv_api_tokenize(const srv_api *api, const char *body, size_t len) {
  cJSON *root = cJSON_ParseWithLength(body, len);
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(root, "content");
  const cJSON *special = cJSON_GetObjectItemCaseSensitive(root, "add_special");
  if (!cJSON_IsString(content)) {
    cJSON_Delete(root);
    return bad("content", "'content' must be a string");
  }
  int32_t n = 0;
  const char *text = content->valuestring;
  kvc_status st = kvc_tokenize(api->tok, text, strlen(text), cJSON_IsTrue(special), NULL, 0, &n);
  int32_t *ids = st ? NULL : malloc(((size_t)n + 1) * sizeof *ids);
  if (!st && ids)
    st = kvc_tokenize(api->tok, text, strlen(text), cJSON_IsTrue(special), ids, n, &n);
  srv_reply reply;
  if (st || !ids) {
    reply = bad("content", "%s", st ? kvc_last_error() : "out of memory");
  } else {
    cJSON *out = cJSON_CreateObject(), *tokens = cJSON_AddArrayToObject(out, "tokens");
    for (int32_t i = 0; i < n; i++)
      cJSON_AddItemToArray(tokens, cJSON_CreateNumber(ids[i]));
    reply = (srv_reply){200, cJSON_PrintUnformatted(out)};
    cJSON_Delete(out);
  }
  free(ids);
  cJSON_Delete(root);
  return reply;
}

srv_reply srv_api_detokenize(const srv_api *api, const char *body, size_t len) {
  cJSON *root = cJSON_ParseWithLength(body, len);
  const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(root, "tokens");
  if (!cJSON_IsArray(tokens)) {
    cJSON_Delete(root);
    return bad("tokens", "'tokens' must be an array of token ids");
  }
  int n = cJSON_GetArraySize(tokens), i = 0;
  int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
  srv_reply reply = {0};
  for (const cJSON *x = tokens->child; ids && x; x = x->next, i++) {
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 ||
        x->valuedouble >= kvc_tokenizer_vocab_size(api->tok) ||
        x->valuedouble != floor(x->valuedouble)) {
      reply = bad("tokens", "tokens[%d] is not a token id in 0..%d", i,
                  kvc_tokenizer_vocab_size(api->tok) - 1);
      break;
    }
    ids[i] = (int32_t)x->valuedouble;
  }
  size_t text_len = 0;
  char *text = NULL;
  if (!reply.status && ids && !kvc_detokenize(api->tok, ids, n, 0, NULL, 0, &text_len) &&
      (text = malloc(text_len + 1)) &&
      !kvc_detokenize(api->tok, ids, n, 0, text, text_len + 1, &text_len)) {
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "content", text);
    reply = (srv_reply){200, cJSON_PrintUnformatted(out)};
    cJSON_Delete(out);
  } else if (!reply.status) {
    reply = bad("tokens", "%s", ids ? kvc_last_error() : "out of memory");
  }
  free(text);
  free(ids);
  cJSON_Delete(root);
  return reply;
}
