/* libFuzzer: kvcache serve's request parser. The first byte chooses the route
 * (/v1/completions, /v1/chat/completions, /tokenize, /detokenize), the rest is the body, parsed
 * against Llama 3's tokenizer and chat template (from $KVCACHE_TOKENIZERS, the directory
 * scripts/fetch-tokenizers.sh prints). A body is either accepted, with a prompt that fits and
 * limits in range, or answered with a status and OpenAI's error object; an accepted request's
 * response and stream chunks are written too. Nothing may crash or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static srv_api api;

static void load(void) {
  const char *dir = getenv("KVCACHE_TOKENIZERS");
  char path[4096];
  if (!dir) {
    fprintf(stderr, "fuzz_serve: set KVCACHE_TOKENIZERS to scripts/fetch-tokenizers.sh's output\n");
    abort();
  }
  snprintf(path, sizeof path, "%s/llama3", dir);
  if (kvc_tokenizer_open(path, &api.tok) || kvc_chat_template_open(path, &api.tmpl)) {
    fprintf(stderr, "fuzz_serve: %s: %s\n", path, kvc_last_error());
    abort();
  }
  api.model_name = "fuzz";
  api.max_tokens_limit = 512;
  api.vocab = kvc_tokenizer_vocab_size(api.tok);
  api.max_seq = 1024;
}

static void check_reply(srv_reply reply) {
  if (reply.status < 200 || reply.status > 599 || !reply.body)
    abort();
  cJSON *json = cJSON_Parse(reply.body);
  if (!json || (reply.status >= 400 && !cJSON_GetObjectItem(json, "error")))
    abort();
  cJSON_Delete(json);
  free(reply.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!api.tok)
    load();
  if (size < 1)
    return 0;
  const char *body = (const char *)data + 1;
  size_t len = size - 1;
  int route = data[0] % 4;
  if (route == 2) {
    check_reply(srv_api_tokenize(&api, body, len));
    return 0;
  }
  if (route == 3) {
    check_reply(srv_api_detokenize(&api, body, len));
    return 0;
  }
  srv_request *r = NULL;
  srv_reply error = {0};
  if (srv_api_parse(&api, route == 1, body, len, &r, &error)) {
    check_reply(error);
    return 0;
  }
  if (r->n_prompt < 1 || r->n_prompt >= api.max_seq || r->max_tokens < 1 ||
      r->max_tokens > api.max_tokens_limit || r->n_stops > SRV_MAX_STOPS)
    abort();
  for (int32_t i = 0; i < r->n_prompt; i++)
    if (r->prompt[i] < 0 || r->prompt[i] >= api.vocab)
      abort();
  r->text = strdup("some text \xc3\xa9");
  r->text_len = strlen(r->text);
  r->generated = 3;
  r->finish_reason = "stop";
  char *whole = srv_api_response(&api, r);
  char *chunk = srv_api_chunk(&api, r, r->text, r->text_len, 1, 1);
  if (!whole || !chunk)
    abort();
  free(whole);
  free(chunk);
  srv_request_release(r);
  return 0;
}
