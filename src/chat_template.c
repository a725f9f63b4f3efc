/* chat_template.c: a model's chat template (tokenizer_config.json) and a conversation
 * rendered with it, over the Jinja engine in template/. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "error.h"
#include "jinja.h"
#include "json.h"
#include "path.h"

/* The special tokens tokenizer_config.json may name, passed to the template as variables. */
static const char *const TOKEN_NAMES[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
enum { N_TOKENS = sizeof TOKEN_NAMES / sizeof TOKEN_NAMES[0] };

struct kvc_chat_template {
  kvc__jinja *jinja;
  cJSON *tokens; /* an object: the names above that are set, each a string or null */
};

void kvc_chat_template_free(kvc_chat_template *tmpl) {
  if (!tmpl)
    return;
  kvc__jinja_free(tmpl->jinja);
  cJSON_Delete(tmpl->tokens);
  free(tmpl);
}

static kvc_status make(const char *source, size_t len, cJSON *tokens, kvc_chat_template **out) {
  kvc_chat_template *t = calloc(1, sizeof *t);
  if (!t) {
    cJSON_Delete(tokens);
    return kvc__fail(KVC_ERR_NO_MEMORY, "chat template: out of memory");
  }
  t->tokens = tokens;
  kvc_status st = kvc__jinja_parse(source, len, &t->jinja);
  if (st) {
    kvc_chat_template_free(t);
    return st;
  }
  *out = t;
  return KVC_OK;
}

kvc_status kvc_chat_template_new(const char *source, size_t len, const char *bos_token,
                                 const char *eos_token, kvc_chat_template **out) {
  if (!source || !out)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_chat_template_new: NULL argument");
  *out = NULL;
  cJSON *tokens = cJSON_CreateObject();
  if (!tokens || (bos_token && !cJSON_AddStringToObject(tokens, "bos_token", bos_token)) ||
      (eos_token && !cJSON_AddStringToObject(tokens, "eos_token", eos_token))) {
    cJSON_Delete(tokens);
    return kvc__fail(KVC_ERR_NO_MEMORY, "chat template: out of memory");
  }
  return make(source, len, tokens, out);
}

/* A special token's text: a string, {"content": string}, or null. */
static kvc_status token_value(const char *path, const char *name, const cJSON *v, cJSON **out) {
  if (cJSON_IsObject(v))
    v = cJSON_GetObjectItemCaseSensitive(v, "content");
  if (cJSON_IsNull(v))
    *out = cJSON_CreateNull();
  else if (cJSON_IsString(v))
    *out = cJSON_CreateString(v->valuestring);
  else
    return kvc__fail(KVC_ERR_MODEL, "%s: \"%s\" is not a string, {\"content\": string} or null",
                     path, name);
  return *out ? KVC_OK : kvc__fail(KVC_ERR_NO_MEMORY, "chat template: out of memory");
}

static kvc_status open_config(const char *path, const cJSON *root, kvc_chat_template **out) {
  const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
  if (cJSON_IsArray(tmpl)) {
    const cJSON *named = NULL;
    for (const cJSON *item = tmpl->child; item; item = item->next) {
      const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
      if (cJSON_IsString(name) && !strcmp(name->valuestring, "default"))
        named = cJSON_GetObjectItemCaseSensitive(item, "template");
    }
    if (!named)
      return kvc__fail(KVC_ERR_MODEL,
                       "%s: \"chat_template\" is a list without one named "
                       "\"default\"",
                       path);
    tmpl = named;
  }
  if (!tmpl)
    return kvc__fail(KVC_ERR_MODEL,
                     "%s has no \"chat_template\" (the model is not a chat model, "
                     "or its template is in another file)",
                     path);
  if (!cJSON_IsString(tmpl))
    return kvc__fail(KVC_ERR_MODEL, "%s: \"chat_template\" is not a string", path);
  cJSON *tokens = cJSON_CreateObject();
  if (!tokens)
    return kvc__fail(KVC_ERR_NO_MEMORY, "chat template: out of memory");
  for (int i = 0; i < N_TOKENS; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, TOKEN_NAMES[i]);
    cJSON *value;
    if (!v)
      continue;
    kvc_status st = token_value(path, TOKEN_NAMES[i], v, &value);
    if (st) {
      cJSON_Delete(tokens);
      return st;
    }
    cJSON_AddItemToObject(tokens, TOKEN_NAMES[i], value);
  }
  kvc_status st = make(tmpl->valuestring, strlen(tmpl->valuestring), tokens, out);
  return st ? kvc__wrap(st, "%s", path) : KVC_OK;
}

kvc_status kvc_chat_template_open(const char *path, kvc_chat_template **out) {
  if (!path || !out)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_chat_template_open: NULL argument");
  *out = NULL;
  char file[4096];
  struct stat sb;
  kvc_status st = KVC_OK;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
    st = kvc__path_join(file, sizeof file, path, "tokenizer_config.json");
  else if (strlen(path) < sizeof file)
    strcpy(file, path);
  else
    st = kvc__fail(KVC_ERR_INVALID_ARG, "path too long: %.64s...", path);
  if (st)
    return st;
  char *text;
  size_t size;
  if ((st = kvc__file_read(file, KVC_CONFIG_MAX_BYTES, &text, &size)))
    return st;
  cJSON *root;
  st = kvc__json_parse(file, text, size, &root);
  kvc__free(text);
  if (st)
    return st;
  st = cJSON_IsObject(root) ? open_config(file, root, out)
                            : kvc__fail(KVC_ERR_MODEL, "%s is not a JSON object", file);
  cJSON_Delete(root);
  return st;
}

kvc_chat_params kvc_chat_default_params(void) {
  return (kvc_chat_params){.add_generation_prompt = 1};
}

/* Parse one JSON argument; `kind` 'a' wants an array, 'o' an object. */
static kvc_status parse_arg(const char *what, const char *text, char kind, cJSON **out) {
  *out = NULL;
  kvc_status st = kvc__json_parse(what, text, strlen(text), out);
  if (st)
    return kvc__fail(KVC_ERR_INVALID_ARG, "%s", kvc_last_error());
  if (kind == 'a' ? !cJSON_IsArray(*out) : !cJSON_IsObject(*out)) {
    cJSON_Delete(*out);
    *out = NULL;
    return kvc__fail(KVC_ERR_INVALID_ARG, "%s: expected a JSON %s", what,
                     kind == 'a' ? "array" : "object");
  }
  return KVC_OK;
}

static kvc_status check_messages(const cJSON *messages) {
  int i = 0;
  for (const cJSON *m = messages->child; m; m = m->next, i++) {
    if (!cJSON_IsObject(m))
      return kvc__fail(KVC_ERR_INVALID_ARG, "messages[%d]: expected an object", i);
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "role")))
      return kvc__fail(KVC_ERR_INVALID_ARG, "messages[%d]: expected a string \"role\"", i);
  }
  return KVC_OK;
}

/* The rendered text in *text (malloc'd) and *len. */
static kvc_status render(const kvc_chat_template *tmpl, const kvc_chat_params *params, char **text,
                         size_t *len) {
  if (!tmpl || !params || !params->messages)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_chat_render: NULL argument (messages are required)");
  cJSON *messages = NULL, *tools = NULL, *variables = NULL;
  cJSON *flag = cJSON_CreateBool(params->add_generation_prompt != 0);
  kvc__jinja_var vars[64];
  size_t n = 0;
  kvc_status st = parse_arg("messages", params->messages, 'a', &messages);
  if (!st)
    st = check_messages(messages);
  if (!st && params->tools)
    st = parse_arg("tools", params->tools, 'a', &tools);
  if (!st && params->variables)
    st = parse_arg("variables", params->variables, 'o', &variables);
  if (!st && !flag)
    st = kvc__fail(KVC_ERR_NO_MEMORY, "chat template: out of memory");
  if (!st) {
    vars[n++] = (kvc__jinja_var){"messages", messages};
    if (tools)
      vars[n++] = (kvc__jinja_var){"tools", tools};
    vars[n++] = (kvc__jinja_var){"add_generation_prompt", flag};
    for (const cJSON *t = tmpl->tokens->child; t; t = t->next)
      vars[n++] = (kvc__jinja_var){t->string, t};
    for (const cJSON *v = variables ? variables->child : NULL; v && !st; v = v->next) {
      if (n == sizeof vars / sizeof vars[0])
        st = kvc__fail(KVC_ERR_INVALID_ARG, "variables: more than %zu",
                       sizeof vars / sizeof vars[0] - 8);
      else
        vars[n++] = (kvc__jinja_var){v->string, v};
    }
  }
  if (!st) {
    kvc__jinja_limits limits = kvc__jinja_default_limits();
    if (params->max_bytes)
      limits.output = params->max_bytes;
    st = kvc__jinja_render(tmpl->jinja, vars, n, &limits, text, len);
  }
  cJSON_Delete(messages);
  cJSON_Delete(tools);
  cJSON_Delete(variables);
  cJSON_Delete(flag);
  return st;
}

kvc_status kvc_chat_render(const kvc_chat_template *tmpl, const kvc_chat_params *params, char *text,
                           size_t cap, size_t *len) {
  if (!len)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_chat_render: NULL len");
  char *out;
  kvc_status st = render(tmpl, params, &out, len);
  if (st)
    return st;
  if (cap && text) {
    size_t k = *len < cap - 1 ? *len : cap - 1;
    memcpy(text, out, k);
    text[k] = 0;
  }
  free(out);
  return KVC_OK;
}

kvc_status kvc_chat_tokenize(const kvc_chat_template *tmpl, const kvc_tokenizer *tokenizer,
                             const kvc_chat_params *params, int32_t *ids, int32_t cap,
                             int32_t *n_ids) {
  if (!tokenizer || !n_ids)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_chat_tokenize: NULL argument");
  char *text;
  size_t len;
  kvc_status st = render(tmpl, params, &text, &len);
  if (st)
    return st;
  st = kvc_tokenize(tokenizer, text, len, 0, ids, cap, n_ids);
  free(text);
  return st;
}
