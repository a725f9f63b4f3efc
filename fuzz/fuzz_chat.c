/* libFuzzer: chat templates and conversations. The first byte chooses: even, the rest is a
 * template, parsed and rendered over a fixed conversation; odd, the rest is a conversation
 * (messages JSON), rendered by one of the four real templates (Llama 3, Qwen 3, Gemma 3,
 * Mistral NeMo, from $KVCACHE_TOKENIZERS: the directory scripts/fetch-tokenizers.sh prints),
 * with tools or without. Either may fail, but within small limits, never crashing, and a
 * rendering is UTF-8 no longer than its limit. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jinja.h"
#include "kvcache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const NAMES[] = {"llama3", "qwen3", "gemma3", "mistral_nemo"};
static kvc_chat_template *templates[4];
static cJSON *fixed_vars;

static void load(void) {
  const char *dir = getenv("KVCACHE_TOKENIZERS");
  if (!dir) {
    fprintf(stderr, "fuzz_chat: set KVCACHE_TOKENIZERS to scripts/fetch-tokenizers.sh's output\n");
    abort();
  }
  for (int i = 0; i < 4; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, NAMES[i]);
    if (kvc_chat_template_open(path, &templates[i]) != KVC_OK) {
      fprintf(stderr, "fuzz_chat: %s: %s\n", path, kvc_last_error());
      abort();
    }
  }
  fixed_vars = cJSON_Parse(
      "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
      "\"content\": \"Hi \\u00e9\"}, {\"role\": \"assistant\", \"content\": \"<think>x</think>Yo\","
      " \"tool_calls\": [{\"id\": \"abcdefghi\", \"function\": {\"name\": \"f\", \"arguments\":"
      " {\"a\": [1, 2.5, null]}}}]}, {\"role\": \"tool\", \"content\": \"42\"}], \"tools\": [{"
      "\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {}}}], "
      "\"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"n\": 3, \"f\": -0.5}");
  if (!fixed_vars)
    abort();
}

static void check_text(const char *text, size_t len, size_t limit) {
  if (len > limit)
    abort();
  /* UTF-8: the engine's strings stay valid whatever the template does */
  for (size_t i = 0; i < len;) {
    unsigned char c = (unsigned char)text[i];
    size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!k || i + k > len)
      abort();
    for (size_t j = 1; j < k; j++)
      if (((unsigned char)text[i + j] & 0xC0) != 0x80)
        abort();
    i += k;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!templates[0])
    load();
  if (size < 1)
    return 0;
  const char *rest = (const char *)data + 1;
  size_t len = size - 1;
  if (data[0] % 2 == 0) {
    kvc__jinja *t = NULL;
    if (kvc__jinja_parse(rest, len, &t) != KVC_OK)
      return 0;
    kvc__jinja_var vars[16];
    size_t n = 0;
    for (const cJSON *v = fixed_vars->child; v; v = v->next)
      vars[n++] = (kvc__jinja_var){v->string, v};
    kvc__jinja_limits limits = {
        .output = 1 << 16, .memory = 16 << 20, .steps = 100000, .depth = 16};
    char *text = NULL;
    size_t out = 0;
    if (kvc__jinja_render(t, vars, n, &limits, &text, &out) == KVC_OK)
      check_text(text, out, limits.output);
    free(text);
    kvc__jinja_free(t);
    return 0;
  }
  char *messages = malloc(len + 1);
  if (!messages)
    return 0;
  memcpy(messages, rest, len);
  messages[len] = 0;
  kvc_chat_params p = kvc_chat_default_params();
  p.messages = messages;
  p.add_generation_prompt = (data[0] >> 1) & 1;
  p.tools =
      (data[0] >> 2) & 1 ? cJSON_PrintUnformatted(cJSON_GetObjectItem(fixed_vars, "tools")) : NULL;
  p.max_bytes = 1 << 16;
  const kvc_chat_template *t = templates[(data[0] >> 3) % 4];
  static char text[(1 << 16) + 1];
  size_t out = 0;
  if (kvc_chat_render(t, &p, text, sizeof text, &out) == KVC_OK)
    check_text(text, out, p.max_bytes);
  free((char *)p.tools);
  free(messages);
  return 0;
}
