/* genai_config.c: see genai_config.h. The keys are those onnxruntime-genai's model builder
 * writes (builders/base.py, make_genai_config). */
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

static kvc_status real(const char *path, const cJSON *o, const char *key, double lo, double hi,
                       float *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v)
    return KVC_OK;
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
    return kvc__fail(KVC_ERR_MODEL, "%s: \"search.%s\" must be a number in %g..%g", path, key, lo,
                     hi);
  *out = (float)v->valuedouble;
  return KVC_OK;
}

/* model.eos_token_id: one id or a list of up to KVC_MAX_EOS. */
static kvc_status eos_ids(const char *path, const cJSON *model, kvc__genai *g) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, "eos_token_id");
  if (!v)
    return KVC_OK;
  const int list = cJSON_IsArray(v);
  const int n = list ? cJSON_GetArraySize(v) : 1;
  if (n > KVC_MAX_EOS)
    return kvc__fail(KVC_ERR_MODEL, "%s: \"model.eos_token_id\" lists %d ids; at most %d", path, n,
                     KVC_MAX_EOS);
  for (int i = 0; i < n; i++) {
    const cJSON *id = list ? cJSON_GetArrayItem(v, i) : v;
    if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > INT32_MAX ||
        id->valuedouble != (double)(int32_t)id->valuedouble)
      return kvc__fail(KVC_ERR_MODEL,
                       "%s: \"model.eos_token_id\" must be a token id or a list of them", path);
    g->eos[g->n_eos++] = (int32_t)id->valuedouble;
  }
  return KVC_OK;
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
    s = eos_ids(p, model, g);
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
  kvc_search *sr = &g->search;
  if (!s)
    s = number(p, search, "search.", "max_length", 1, big, &sr->max_length);
  if (!s)
    s = number(p, search, "search.", "top_k", 0, INT32_MAX, &sr->top_k);
  if (!s)
    s = real(p, search, "temperature", 0, 1e6, &sr->temperature);
  if (!s)
    s = real(p, search, "top_p", 1e-9, 1, &sr->top_p);
  if (!s)
    s = real(p, search, "repetition_penalty", 1e-9, 1e6, &sr->repetition_penalty);
  const cJSON *sample = cJSON_GetObjectItemCaseSensitive(search, "do_sample");
  if (!s && sample && !cJSON_IsBool(sample))
    s = kvc__fail(KVC_ERR_MODEL, "%s: \"search.do_sample\" must be true or false", p);
  sr->do_sample = cJSON_IsTrue(sample);
  cJSON_Delete(c);
  return s;
}
