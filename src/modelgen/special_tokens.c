/* special_tokens.c: see special_tokens.h. */
#include "special_tokens.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "error.h"
#include "path.h"

/* A tokenizer_config.json entry: "text" or {"content": "text"}; NULL when absent. */
static const char *token_text(const cJSON *config, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
  if (cJSON_IsObject(v))
    v = cJSON_GetObjectItemCaseSensitive(v, "content");
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* *id for `field` from the config's `key` (auto) or as given, checked against the vocabulary. */
static kvc_status pick(const char *field, int32_t given, int32_t fallback, const cJSON *config,
                       const char *key, const kvc_tokenizer *tok, const char *tok_path,
                       int32_t vocab, int32_t *id) {
  *id = given;
  if (given == KVC_BUILD_TOKEN_AUTO) { /* with a tokenizer: its role, or none */
    *id = tok ? -1 : fallback;
    const char *text = tok ? token_text(config, key) : NULL;
    if (tok && text && (*id = kvc_tokenizer_token_id(tok, text)) < 0)
      return kvc__fail(KVC_ERR_INVALID_ARG,
                       "%s: tokenizer_config.json names %s \"%.64s\", which "
                       "%s does not have",
                       field, key, text, tok_path);
  }
  if (*id < -1 || *id >= vocab)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "%s = %d: expected a token id below vocab_size %d (or -1: none, or "
                     "KVC_BUILD_TOKEN_AUTO)",
                     field, *id, vocab);
  return KVC_OK;
}

kvc_status kvc__special_resolve(const kvc_build_params *p, kvc__special *out) {
  memset(out, 0, sizeof *out);
  kvc_tokenizer *tok = NULL;
  cJSON *config = NULL;
  kvc_status s = KVC_OK;
  if (p->tokenizer && *p->tokenizer) {
    struct stat st;
    const int is_dir = stat(p->tokenizer, &st) == 0 && S_ISDIR(st.st_mode);
    s = is_dir
            ? kvc__path_join(out->tokenizer, sizeof out->tokenizer, p->tokenizer, "tokenizer.json")
            : (snprintf(out->tokenizer, sizeof out->tokenizer, "%s", p->tokenizer) <
                       (int)sizeof out->tokenizer
                   ? KVC_OK
                   : kvc__fail(KVC_ERR_INVALID_ARG, "tokenizer path is too long"));
    if (!s)
      s = kvc_tokenizer_open(out->tokenizer, &tok);
    if (!s && kvc_tokenizer_vocab_size(tok) > p->vocab_size)
      s = kvc__fail(KVC_ERR_INVALID_ARG,
                    "vocab_size = %d: the tokenizer %s has ids up to %d: expected at least %d",
                    p->vocab_size, out->tokenizer, kvc_tokenizer_vocab_size(tok) - 1,
                    kvc_tokenizer_vocab_size(tok));
    /* tokenizer_config.json beside it, where Hugging Face keeps the special tokens' roles */
    char *slash = strrchr(out->tokenizer, '/');
    if (!s)
      snprintf(out->tokenizer_config, sizeof out->tokenizer_config, "%.*s%s",
               slash ? (int)(slash - out->tokenizer + 1) : 0, out->tokenizer,
               "tokenizer_config.json");
    char *text = NULL;
    size_t size = 0;
    if (!s && stat(out->tokenizer_config, &st) != 0)
      out->tokenizer_config[0] = '\0'; /* none: no roles known */
    else if (!s &&
             !(s = kvc__file_read(out->tokenizer_config, KVC_CONFIG_MAX_BYTES, &text, &size)) &&
             !(config = cJSON_Parse(text)))
      s = kvc__fail(KVC_ERR_MODEL, "%s: not JSON", out->tokenizer_config);
    kvc__free(text);
  }
  if (!s)
    s = pick("bos_token_id", p->bos_token_id, 1, config, "bos_token", tok, out->tokenizer,
             p->vocab_size, &out->bos);
  if (!s)
    s = pick("eos_token_id", p->eos_token_id, 2, config, "eos_token", tok, out->tokenizer,
             p->vocab_size, &out->eos);
  if (!s)
    s = pick("pad_token_id", p->pad_token_id, 2, config, "pad_token", tok, out->tokenizer,
             p->vocab_size, &out->pad);
  cJSON_Delete(config);
  kvc_tokenizer_free(tok);
  return s;
}
