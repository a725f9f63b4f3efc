/* genai_config.c: see genai_config.h. The keys are those onnxruntime-genai's model builder
 * writes (builders/base.py, make_genai_config), and those of Hugging Face's
 * generation_config.json that say how to generate (GenerationConfig). */
#include "genai_config.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "error.h"
#include "json.h"
#include "path.h"

/* A whole number in [lo, hi] at `key` of `o` into *out; absent leaves *out. */
static kvc_status number(const char *path, const cJSON *o, const char *where, const char *key,
                         double lo, double hi, int32_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v)
    return KVC_OK;
  if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
      v->valuedouble != (double)(int32_t)v->valuedouble)
    return kvc__fail(KVC_ERR_MODEL, "%s: \"%s%s\" must be a whole number in %.0f..%.0f", path,
                     where, key, lo, hi);
  *out = (int32_t)v->valuedouble;
  return KVC_OK;
}

static kvc_status real(const char *path, const cJSON *o, const char *where, const char *key,
                       double lo, double hi, float *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v)
    return KVC_OK;
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
    return kvc__fail(KVC_ERR_MODEL, "%s: \"%s%s\" must be a number in %g..%g", path, where, key, lo,
                     hi);
  *out = (float)v->valuedouble;
  return KVC_OK;
}

/* eos_token_id: one id or a list of up to KVC_MAX_EOS; each added to g's unless there. */
static kvc_status eos_ids(const char *path, const cJSON *o, const char *where, kvc__genai *g) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "eos_token_id");
  if (!v)
    return KVC_OK;
  const int list = cJSON_IsArray(v);
  const int n = list ? cJSON_GetArraySize(v) : 1;
  for (int i = 0; i < n; i++) {
    const cJSON *id = list ? cJSON_GetArrayItem(v, i) : v;
    if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > INT32_MAX ||
        id->valuedouble != (double)(int32_t)id->valuedouble)
      return kvc__fail(KVC_ERR_MODEL, "%s: \"%seos_token_id\" must be a token id or a list of them",
                       path, where);
    int known = 0;
    for (int k = 0; k < g->n_eos; k++)
      known |= g->eos[k] == (int32_t)id->valuedouble;
    if (known)
      continue;
    if (g->n_eos == KVC_MAX_EOS)
      return kvc__fail(KVC_ERR_MODEL, "%s: \"%seos_token_id\": more than %d end-of-sequence ids",
                       path, where, KVC_MAX_EOS);
    g->eos[g->n_eos++] = (int32_t)id->valuedouble;
  }
  return KVC_OK;
}

/* The sampling keys of genai_config.json's "search" or of generation_config.json (the same
 * names) into *sr; absent ones leave it. */
static kvc_status sampling(const char *p, const cJSON *o, const char *where, kvc_search *sr) {
  const double big = 1 << 24;
  kvc_status s = number(p, o, where, "max_length", 1, big, &sr->max_length);
  if (!s)
    s = number(p, o, where, "top_k", 0, INT32_MAX, &sr->top_k);
  if (!s)
    s = real(p, o, where, "temperature", 0, 1e6, &sr->temperature);
  if (!s)
    s = real(p, o, where, "top_p", 1e-9, 1, &sr->top_p);
  if (!s)
    s = real(p, o, where, "min_p", 0, 1, &sr->min_p);
  if (!s)
    s = real(p, o, where, "repetition_penalty", 1e-9, 1e6, &sr->repetition_penalty);
  const cJSON *sample = cJSON_GetObjectItemCaseSensitive(o, "do_sample");
  if (!s && sample && !cJSON_IsBool(sample))
    s = kvc__fail(KVC_ERR_MODEL, "%s: \"%sdo_sample\" must be true or false", p, where);
  if (sample)
    sr->do_sample = cJSON_IsTrue(sample);
  return s;
}

/* The decoder's I/O names must be the ones kvcache binds (the hf naming). */
static kvc_status names(const char *path, const cJSON *dec) {
  static const char *const expected[][3] = {
      {"inputs", "input_ids", "input_ids"},
      {"inputs", "attention_mask", "attention_mask"},
      {"inputs", "position_ids", "position_ids"},
      {"inputs", "past_key_names", "past_key_values.%d.key"},
      {"inputs", "past_value_names", "past_key_values.%d.value"},
      {"outputs", "logits", "logits"},
      {"outputs", "present_key_names", "present.%d.key"},
      {"outputs", "present_value_names", "present.%d.value"}};
  for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(dec, expected[i][0]), expected[i][1]);
    if (v && (!cJSON_IsString(v) || strcmp(v->valuestring, expected[i][2])))
      return kvc__fail(KVC_ERR_UNSUPPORTED,
                       "%s: \"model.decoder.%s.%s\" is %s%s%s; kvcache binds only \"%s\"", path,
                       expected[i][0], expected[i][1], cJSON_IsString(v) ? "\"" : "",
                       cJSON_IsString(v) ? v->valuestring : "not a string",
                       cJSON_IsString(v) ? "\"" : "", expected[i][2]);
  }
  return KVC_OK;
}

/* Everything but the path: the values of a file that says nothing. */
static void defaults(kvc__genai *g) {
  char path[sizeof g->path];
  memcpy(path, g->path, sizeof path);
  memset(g, 0, sizeof *g);
  memcpy(g->path, path, sizeof path);
  g->bos = g->pad = -1;
  g->search =
      (kvc_search){.temperature = 1.0f, .top_k = 50, .top_p = 1.0f, .repetition_penalty = 1.0f};
}

kvc_status kvc__genai_read(const char *dir, const char *graph, kvc__genai *g) {
  memset(g, 0, sizeof *g);
  defaults(g);
  kvc_status s = kvc__path_inside(dir, graph, "genai_config.json", "config");
  if (!s)
    s = kvc__path_join(g->path, sizeof g->path, dir, "genai_config.json");
  struct stat st;
  if (s || stat(g->path, &st) != 0)
    return s;
  char *text = NULL;
  size_t size = 0;
  if ((s = kvc__file_read(g->path, KVC_CONFIG_MAX_BYTES, &text, &size)))
    return s;
  s = kvc__genai_parse(text, size, g);
  kvc__free(text);
  return s;
}

kvc_status kvc__genai_parse(const char *text, size_t size, kvc__genai *g) {
  kvc_status s = KVC_OK;
  defaults(g);
  cJSON *c = NULL;
  s = kvc__json_parse(g->path, text, size, &c);
  g->found = 1;
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(c, "model");
  const cJSON *dec = cJSON_GetObjectItemCaseSensitive(model, "decoder");
  const cJSON *search = cJSON_GetObjectItemCaseSensitive(c, "search");
  const double big = 1 << 24;
  const char *p = g->path;
  if (!s)
    s = number(p, model, "model.", "context_length", 1, big, &g->context_length);
  if (!s)
    s = number(p, model, "model.", "vocab_size", 1, INT32_MAX, &g->vocab_size);
  if (!s)
    s = number(p, model, "model.", "bos_token_id", 0, INT32_MAX, &g->bos);
  if (!s)
    s = number(p, model, "model.", "pad_token_id", 0, INT32_MAX, &g->pad);
  if (!s)
    s = eos_ids(p, model, "model.", g);
  if (!s)
    s = number(p, dec, "model.decoder.", "head_size", 1, 1 << 16, &g->head_size);
  if (!s)
    s = number(p, dec, "model.decoder.", "num_key_value_heads", 1, 1 << 16, &g->kv_heads);
  if (!s)
    s = number(p, dec, "model.decoder.", "num_attention_heads", 1, 1 << 16, &g->heads);
  if (!s)
    s = number(p, dec, "model.decoder.", "num_hidden_layers", 1, 1 << 16, &g->layers);
  if (!s)
    s = names(p, dec);
  g->has_search = search != NULL;
  if (!s)
    s = sampling(p, search, "search.", &g->search);
  cJSON_Delete(c);
  return s;
}

kvc_status kvc__generation_read(const char *dir, const char *graph, kvc__genai *g) {
  char path[sizeof g->path];
  kvc_status s = kvc__path_inside(dir, graph, "generation_config.json", "config");
  if (!s)
    s = kvc__path_join(path, sizeof path, dir, "generation_config.json");
  struct stat st;
  if (s || stat(path, &st) != 0)
    return s;
  char *text = NULL;
  size_t size = 0;
  if ((s = kvc__file_read(path, KVC_CONFIG_MAX_BYTES, &text, &size)))
    return s;
  cJSON *c = NULL;
  s = kvc__json_parse(path, text, size, &c);
  kvc__free(text);
  if (!s && !cJSON_IsObject(c))
    s = kvc__fail(KVC_ERR_MODEL, "%s is not a JSON object", path);
  if (!s)
    s = eos_ids(path, c, "", g);
  int32_t bos = -1, pad = -1;
  if (!s)
    s = number(path, c, "", "bos_token_id", 0, INT32_MAX, &bos);
  if (!s)
    s = number(path, c, "", "pad_token_id", 0, INT32_MAX, &pad);
  if (g->bos < 0)
    g->bos = bos;
  if (g->pad < 0)
    g->pad = pad;
  kvc_search search = g->search;
  if (!s)
    s = sampling(path, c, "", &search);
  if (!s && !g->has_search) /* genai_config.json's section, where there is one, rules */
    g->search = search;
  if (!s)
    snprintf(g->generation_path, sizeof g->generation_path, "%s", path);
  cJSON_Delete(c);
  return s;
}
