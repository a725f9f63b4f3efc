/* builder.c: kvc_build_model(): validate sizes, draw the weights, write the three files.
 *
 * Initialisation (deterministic: every tensor has its own SplitMix64 stream seeded from
 * the model seed and the tensor's index, so a tensor does not depend on the ones before it).
 * Scales keep each layer's activations near unit variance and the logits spread out:
 *   token embedding N(0, 1); position embedding N(0, 0.5^2);
 *   LayerNorm gain 1 + N(0, 0.1^2), bias N(0, 0.1^2); other biases N(0, 0.02^2);
 *   Wq, Wk, Wv, W1: N(0, 1/fan_in), so q.k / sqrt(head_dim) is ~N(0, 1);
 *   Wo, W2: N(0, 1/fan_in) / sqrt(2 * layers), GPT-2's damping of residual branches;
 *   LM head: N(0, 4/hidden), logits with a standard deviation near 2, so greedy
 *   decoding does not collapse onto one token. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "graph.h"
#include "layout.h"
#include "naming.h"
#include "onnx.h"
#include "path.h"
#include "rng.h"
#include "special_tokens.h"

#define DATA_FILE "model.onnx.data"

kvc_build_params kvc_build_default_params(void) {
  return (kvc_build_params){.layers = 4,
                            .heads = 4,
                            .head_dim = 64,
                            .vocab_size = 1000,
                            .max_seq_len = 512,
                            .seed = 1,
                            .naming = KVC_NAMING_SEED,
                            .attention = KVC_ATTENTION_CONCAT,
                            .bos_token_id = KVC_BUILD_TOKEN_AUTO,
                            .eos_token_id = KVC_BUILD_TOKEN_AUTO,
                            .pad_token_id = KVC_BUILD_TOKEN_AUTO,
                            .kv_heads = 0,
                            .weight_bits = 32};
}

static kvc__arch arch_of(const kvc_build_params *p) {
  return (kvc__arch){.layers = p->layers,
                     .heads = p->heads,
                     .kv_heads = p->kv_heads ? p->kv_heads : p->heads,
                     .head_dim = p->head_dim,
                     .vocab = p->vocab_size,
                     .max_seq = p->max_seq_len,
                     .llama = p->arch == KVC_ARCH_LLAMA,
                     .ff = p->ff};
}

static int64_t count_params(const kvc__arch *a) {
  const int64_t e = kvc__arch_hidden(a), kv = (int64_t)a->kv_heads * a->head_dim,
                ff = kvc__arch_ff(a);
  if (a->llama)
    return (int64_t)a->vocab * e + (int64_t)a->max_seq * a->head_dim /* cos, sin */
           + a->layers * (2 * e + 2 * e * e + 2 * e * kv + 3 * e * ff) + e + e * a->vocab;
  const int64_t per_layer = 4 * e                       /* two LayerNorms */
                            + e * e + e                 /* q */
                            + 2 * (e * kv + kv)         /* k, v */
                            + e * e + e                 /* o */
                            + e * ff + ff + ff * e + e; /* MLP */
  return (int64_t)a->vocab * e + (int64_t)a->max_seq * e + a->layers * per_layer + 2 * e +
         e * a->vocab;
}

static kvc_status validate(const kvc_build_params *p) {
  const struct {
    const char *name;
    int32_t value, max;
  } sizes[] = {{"layers", p->layers, 256},
               {"heads", p->heads, 256},
               {"head_dim", p->head_dim, 1024},
               {"vocab_size", p->vocab_size, 1 << 20},
               {"max_seq_len", p->max_seq_len, 1 << 20}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    if (sizes[i].value <= 0 || sizes[i].value > sizes[i].max)
      return kvc__fail(KVC_ERR_INVALID_ARG, "%s = %" PRId32 ": expected 1..%" PRId32, sizes[i].name,
                       sizes[i].value, sizes[i].max);
  if (p->ff < 0 || p->ff > (1 << 20))
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "ff = %" PRId32 ": expected 0 (the arch's default) or 1..%d", p->ff, 1 << 20);
  if (!kvc_attention_name(p->attention))
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "attention = %d: expected KVC_ATTENTION_CONCAT, _GQA or _KVCACHE",
                     (int)p->attention);
  const int in_place = p->attention != KVC_ATTENTION_CONCAT;
  int32_t kv = p->kv_heads ? p->kv_heads : p->heads;
  if (kv <= 0 || kv > p->heads || p->heads % kv != 0)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "kv_heads = %" PRId32 ": expected a divisor of heads = %" PRId32
                     " (0 = heads)",
                     p->kv_heads, p->heads);
  if (kv != p->heads && !in_place)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "kv_heads = %" PRId32 " < heads = %" PRId32
                     " needs grouped-query attention (attention = GQA or KVCACHE)",
                     p->kv_heads, p->heads);
  if (p->naming != KVC_NAMING_SEED && p->naming != KVC_NAMING_HF)
    return kvc__fail(KVC_ERR_INVALID_ARG, "naming = %d: expected KVC_NAMING_SEED or KVC_NAMING_HF",
                     (int)p->naming);
  if (!kvc_arch_name(p->arch))
    return kvc__fail(KVC_ERR_INVALID_ARG, "arch = %d: expected KVC_ARCH_GPT or KVC_ARCH_LLAMA",
                     (int)p->arch);
  if (!kvc_layout_name(p->layout))
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "layout = %d: expected KVC_LAYOUT_KVCACHE or KVC_LAYOUT_GENAI",
                     (int)p->layout);
  if (p->arch == KVC_ARCH_LLAMA && !in_place)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "arch llama needs attention = GQA or KVCACHE: its rotary positions are "
                     "applied by the attention node");
  if (p->arch == KVC_ARCH_LLAMA && p->head_dim % 2)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "head_dim = %" PRId32 ": arch llama rotates pairs, expected an even number",
                     p->head_dim);
  if (p->weight_bits != 32 && p->weight_bits != 8 && p->weight_bits != 4)
    return kvc__fail(KVC_ERR_INVALID_ARG, "weight_bits = %" PRId32 ": expected 32, 8 or 4",
                     p->weight_bits);
  if (p->weight_bits == 8 && p->attention != KVC_ATTENTION_KVCACHE)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "weight_bits = 8 needs attention = KVCACHE: with another attention the cache "
                     "stays exact only with float activations, where ONNX Runtime's 8-bit kernel "
                     "is slower than float weights (use 4 bits, or kvcache quantize "
                     "--accuracy-level to choose)");
  if (p->layout == KVC_LAYOUT_GENAI &&
      (p->attention != KVC_ATTENTION_GQA || p->naming != KVC_NAMING_HF))
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "layout genai needs attention = GQA and naming = HF (onnxruntime-genai's "
                     "builder writes GroupQueryAttention and past_key_values.{i}.key names)");
  kvc__arch a = arch_of(p);
  int64_t n = count_params(&a);
  if (n > ((int64_t)1 << 31))
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "%" PRId64 " parameters: expected at most 2^31 (reduce layers, heads, "
                     "head_dim, vocab_size or max_seq_len)",
                     n);
  return KVC_OK;
}

int64_t kvc_build_param_count(const kvc_build_params *params) {
  if (!params || validate(params) != KVC_OK)
    return 0;
  kvc__arch a = arch_of(params);
  return count_params(&a);
}

/* The same scheme for Llama's weights: RMSNorm gains 1 + N(0, 0.1^2); Wq, Wk, Wv, Wgate,
 * Wup N(0, 1/fan_in); Wo, Wdown N(0, 1/fan_in) / sqrt(2 * layers); LM head N(0, 4/hidden). */
static void llama_scale(const kvc__arch *a, int index, double *mean, double *std) {
  const double e = kvc__arch_hidden(a), damp = 1.0 / sqrt(2.0 * a->layers);
  *mean = 0.0;
  int first_final = kvc__layout_final(a, 0);
  if (index >= first_final) {
    *mean = index == first_final + KVC_LF_NORM ? 1.0 : 0.0;
    *std = index == first_final + KVC_LF_NORM ? 0.1 : 2.0 / sqrt(e);
    return;
  }
  switch ((kvc__llama_weight)((index - kvc__layout_layer(a, 0, 0)) % KVC_L_PER_LAYER)) {
  case KVC_L_ATTN_NORM:
  case KVC_L_MLP_NORM:
    *mean = 1.0;
    *std = 0.1;
    return;
  case KVC_L_O:
    *std = damp / sqrt((double)a->heads * a->head_dim);
    return;
  case KVC_L_DOWN:
    *std = damp / sqrt((double)kvc__arch_ff(a));
    return;
  default: /* q, k, v, gate, up */
    *std = 1.0 / sqrt(e);
    return;
  }
}

/* Rotary caches: row p, column i holds cos (or sin) of p * theta^(-2i / head_dim). */
static void rotary_cache(const kvc__arch *a, int sine, float *out) {
  const int half = a->head_dim / 2;
  for (int p = 0; p < a->max_seq; p++)
    for (int i = 0; i < half; i++) {
      const double angle = p * pow(KVC_ROPE_THETA, -2.0 * i / a->head_dim);
      out[(size_t)p * half + i] = (float)(sine ? sin(angle) : cos(angle));
    }
}

/* Standard deviation and mean of weight `index` (see the scheme at the top). */
static void init_scale(const kvc__arch *a, int index, double *mean, double *std) {
  const double e = kvc__arch_hidden(a), damp = 1.0 / sqrt(2.0 * a->layers);
  *mean = 0.0;
  if (index == KVC_W_TOK_EMB) {
    *std = 1.0;
    return;
  }
  if (index == KVC_W_POS_EMB) {
    *std = 0.5;
    return;
  }
  if (a->llama) {
    llama_scale(a, index, mean, std);
    return;
  }
  int first_final = kvc__layout_final(a, 0);
  if (index >= first_final) {
    switch ((kvc__final_weight)(index - first_final)) {
    case KVC_W_LNF_G:
      *mean = 1.0;
      *std = 0.1;
      return;
    case KVC_W_LNF_B:
      *std = 0.1;
      return;
    default:
      *std = 2.0 / sqrt(e);
      return;
    }
  }
  switch ((kvc__layer_weight)((index - kvc__layout_layer(a, 0, 0)) % KVC_W_PER_LAYER)) {
  case KVC_W_LN1_G:
  case KVC_W_LN2_G:
    *mean = 1.0;
    *std = 0.1;
    return;
  case KVC_W_LN1_B:
  case KVC_W_LN2_B:
    *std = 0.1;
    return;
  case KVC_W_Q:
  case KVC_W_K:
  case KVC_W_V:
  case KVC_W_FC1:
    *std = 1.0 / sqrt(e);
    return;
  case KVC_W_O:
    *std = damp / sqrt((double)a->heads * a->head_dim);
    return;
  case KVC_W_FC2:
    *std = damp / sqrt(4.0 * e);
    return;
  default: /* biases */
    *std = 0.02;
    return;
  }
}

static kvc_status write_weights(const char *path, const kvc__arch *a, const kvc__tensor_spec *specs,
                                uint64_t seed) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return kvc__fail(KVC_ERR_IO, "cannot create %s: %s", path, strerror(errno));
  kvc_status s = KVC_OK;
  float *buf = NULL;
  size_t cap = 0;
  for (int i = 0; i < kvc__layout_count(a) && s == KVC_OK; i++) {
    if (specs[i].count > cap) {
      float *grown = realloc(buf, specs[i].count * sizeof *buf);
      if (!grown) {
        s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for weight %s", specs[i].name);
        break;
      }
      buf = grown;
      cap = specs[i].count;
    }
    if (a->llama && (i == KVC_W_COS || i == KVC_W_SIN)) {
      rotary_cache(a, i == KVC_W_SIN, buf);
    } else {
      double mean, std;
      init_scale(a, i, &mean, &std);
      kvc__rng rng = kvc__rng_seeded(seed * 0x100000001b3u + (uint64_t)i);
      for (size_t j = 0; j < specs[i].count; j++)
        buf[j] = (float)(mean + std * kvc__rng_normal(&rng));
    }
    if (fwrite(buf, sizeof *buf, specs[i].count, f) != specs[i].count)
      s = kvc__fail(KVC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
  }
  free(buf);
  if (fclose(f) != 0 && s == KVC_OK)
    s = kvc__fail(KVC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
  return s;
}

/* Write `c` (consumed) as indented JSON to `path`. */
static kvc_status write_json(const char *path, cJSON *c, int ok) {
  char *text = ok ? cJSON_Print(c) : NULL;
  cJSON_Delete(c);
  if (!text)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory writing %s", path);
  kvc_status s = KVC_OK;
  FILE *f = fopen(path, "w");
  if (!f)
    s = kvc__fail(KVC_ERR_IO, "cannot create %s: %s", path, strerror(errno));
  else if (fputs(text, f) < 0 || fputc('\n', f) < 0)
    s = kvc__fail(KVC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
  if (f && fclose(f) != 0 && s == KVC_OK)
    s = kvc__fail(KVC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
  cJSON_free(text);
  return s;
}

static kvc_status write_config(const char *path, const kvc_build_params *p, int64_t params) {
  const kvc__arch a = arch_of(p);
  cJSON *c = cJSON_CreateObject();
  char seed[32];
  snprintf(seed, sizeof seed, "%" PRIu64, p->seed);
  int ok = c && cJSON_AddStringToObject(c, "model_name", "kvcache_transformer") &&
           cJSON_AddNumberToObject(c, "num_layers", p->layers) &&
           cJSON_AddNumberToObject(c, "num_heads", p->heads) &&
           cJSON_AddNumberToObject(c, "num_kv_heads", p->kv_heads ? p->kv_heads : p->heads) &&
           cJSON_AddNumberToObject(c, "head_dim", p->head_dim) &&
           cJSON_AddNumberToObject(c, "hidden_dim", (double)p->heads * p->head_dim) &&
           cJSON_AddNumberToObject(c, "vocab_size", p->vocab_size) &&
           cJSON_AddNumberToObject(c, "max_seq_len", p->max_seq_len) &&
           cJSON_AddNumberToObject(c, "ff_dim", (double)kvc__arch_ff(&a)) &&
           cJSON_AddStringToObject(c, "naming", kvc_naming_name(p->naming)) &&
           cJSON_AddStringToObject(c, "attention", kvc_attention_name(p->attention)) &&
           cJSON_AddStringToObject(c, "arch", kvc_arch_name(p->arch)) &&
           cJSON_AddStringToObject(c, "layout", kvc_layout_name(p->layout)) &&
           cJSON_AddRawToObject(c, "seed", seed) &&
           cJSON_AddNumberToObject(c, "parameters", (double)params) &&
           cJSON_AddStringToObject(c, "weights",
                                   "random (kvcache build-model: no vocabulary, no "
                                   "training; for measuring, not for text)");
  return write_json(path, c, ok);
}

/* genai_config.json as onnxruntime-genai's model builder writes it (the keys it reads for a
 * decoder); the BOS, EOS and pad ids where the model states them (special_tokens.h). */
static kvc_status write_genai_config(const char *path, const kvc_build_params *p,
                                     const kvc__special *ids) {
  const int kv = p->kv_heads ? p->kv_heads : p->heads;
  cJSON *c = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(c, "model");
  cJSON *dec = cJSON_AddObjectToObject(model, "decoder");
  cJSON *in = cJSON_AddObjectToObject(dec, "inputs"),
        *out = cJSON_AddObjectToObject(dec, "outputs");
  cJSON *search = cJSON_AddObjectToObject(c, "search");
  int ok =
      c && model && dec && in && out && search &&
      (ids->bos < 0 || cJSON_AddNumberToObject(model, "bos_token_id", ids->bos)) &&
      cJSON_AddNumberToObject(model, "context_length", p->max_seq_len) &&
      cJSON_AddStringToObject(dec, "filename", "model.onnx") &&
      cJSON_AddNumberToObject(dec, "head_size", p->head_dim) &&
      cJSON_AddNumberToObject(dec, "hidden_size", (double)p->heads * p->head_dim) &&
      cJSON_AddStringToObject(in, "input_ids", "input_ids") &&
      cJSON_AddStringToObject(in, "attention_mask", "attention_mask") &&
      (p->arch == KVC_ARCH_LLAMA || cJSON_AddStringToObject(in, "position_ids", "position_ids")) &&
      cJSON_AddStringToObject(in, "past_key_names", "past_key_values.%d.key") &&
      cJSON_AddStringToObject(in, "past_value_names", "past_key_values.%d.value") &&
      cJSON_AddStringToObject(out, "logits", "logits") &&
      cJSON_AddStringToObject(out, "present_key_names", "present.%d.key") &&
      cJSON_AddStringToObject(out, "present_value_names", "present.%d.value") &&
      cJSON_AddNumberToObject(dec, "num_attention_heads", p->heads) &&
      cJSON_AddNumberToObject(dec, "num_hidden_layers", p->layers) &&
      cJSON_AddNumberToObject(dec, "num_key_value_heads", kv) &&
      (ids->eos < 0 || cJSON_AddNumberToObject(model, "eos_token_id", ids->eos)) &&
      (ids->pad < 0 || cJSON_AddNumberToObject(model, "pad_token_id", ids->pad)) &&
      cJSON_AddStringToObject(model, "type", kvc_arch_name(p->arch)) &&
      cJSON_AddNumberToObject(model, "vocab_size", p->vocab_size) &&
      cJSON_AddBoolToObject(search, "do_sample", 0) &&
      cJSON_AddNumberToObject(search, "max_length", p->max_seq_len) &&
      cJSON_AddNumberToObject(search, "num_beams", 1) &&
      cJSON_AddBoolToObject(search, "past_present_share_buffer", 1) &&
      cJSON_AddNumberToObject(search, "repetition_penalty", 1.0) &&
      cJSON_AddNumberToObject(search, "temperature", 1.0) &&
      cJSON_AddNumberToObject(search, "top_k", 50) && cJSON_AddNumberToObject(search, "top_p", 1.0);
  return write_json(path, c, ok);
}

static kvc_status write_graph(const char *path, const kvc__arch *a, const kvc_build_params *p,
                              const kvc__tensor_spec *specs) {
  kvc__onnx *m = kvc__onnx_new("kvcache_decoder");
  if (!m)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory building the ONNX graph");
  kvc__graph_decoder(m, a, p->naming, p->attention, p->layout, specs, DATA_FILE);
  kvc_status s = kvc__onnx_write(m, path);
  kvc__onnx_free(m);
  return s;
}

/* Written under temporary names, renamed in this order: the graph last, so that a directory
 * with model.onnx is complete. genai_config.json only for the genai layout, the tokenizer's
 * files only when one is given. */
enum { F_DATA, F_CONFIG, F_GENAI, F_TOKENIZER, F_TOKENIZER_CONFIG, F_GRAPH, N_FILES };
static const char *const final_names[N_FILES] = {
    DATA_FILE,        "config.json",           "genai_config.json",
    "tokenizer.json", "tokenizer_config.json", "model.onnx"};

/* weight_bits 8 or 4: the float model in a temporary directory, quantised into another,
 * whose files then move into dir (the graph last). */
static kvc_status build_quantized(const char *dir, const kvc_build_params *params) {
  char f32[4200], q[4200];
  snprintf(f32, sizeof f32, "%s.f32.tmp.%ld", dir, (long)getpid());
  snprintf(q, sizeof q, "%s.q.tmp.%ld", dir, (long)getpid());
  kvc_build_params p = *params;
  p.weight_bits = 32;
  kvc_quantize_params qp = kvc_quantize_default_params();
  qp.bits = params->weight_bits;
  kvc_status s = kvc_build_model(f32, &p);
  if (!s)
    s = kvc_quantize(f32, q, &qp, NULL);
  static const char *const *files = final_names;
  int made_dir = 0;
  struct stat st;
  if (!s && stat(dir, &st) != 0) {
    s = kvc__make_dirs(dir);
    made_dir = !s;
  }
  for (size_t i = 0; !s && i < N_FILES; i++) {
    char from[4400], to[4400];
    snprintf(from, sizeof from, "%s/%s", q, files[i]);
    snprintf(to, sizeof to, "%s/%s", dir, files[i]);
    if (stat(from, &st) == 0 && rename(from, to) != 0)
      s = kvc__fail(KVC_ERR_IO, "cannot rename %s to %s: %s", from, to, strerror(errno));
  }
  for (size_t i = 0; i < N_FILES; i++) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", f32, files[i]);
    remove(path);
    snprintf(path, sizeof path, "%s/%s", q, files[i]);
    remove(path);
  }
  rmdir(f32);
  rmdir(q);
  if (s && made_dir)
    rmdir(dir);
  return s;
}

kvc_status kvc_build_model(const char *dir, const kvc_build_params *params) {
  if (!dir || !*dir)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_build_model: dir is NULL or empty");
  if (!params)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_build_model: params is NULL");
  kvc_status s = validate(params);
  kvc__special ids;
  if (!s)
    s = kvc__special_resolve(params, &ids);
  if (s)
    return s;
  if (params->weight_bits != 32)
    return build_quantized(dir, params);

  int made_dir = 0;
  struct stat st;
  if (stat(dir, &st) != 0) {
    if ((s = kvc__make_dirs(dir)))
      return s;
    made_dir = 1;
  } else if (!S_ISDIR(st.st_mode)) {
    return kvc__fail(KVC_ERR_IO, "%s exists and is not a directory", dir);
  }

  kvc__arch a = arch_of(params);
  kvc__tensor_spec *specs = calloc((size_t)kvc__layout_count(&a), sizeof *specs);
  char tmp[N_FILES][4096], final[N_FILES][4096];
  for (int i = 0; i < N_FILES; i++) {
    snprintf(tmp[i], sizeof tmp[i], "%s/.%s.tmp.%ld", dir, final_names[i], (long)getpid());
    snprintf(final[i], sizeof final[i], "%s/%s", dir, final_names[i]);
  }
  if (!specs)
    s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for the weight layout");
  if (!s) {
    kvc__layout(&a, specs);
    s = write_weights(tmp[F_DATA], &a, specs, params->seed);
  }
  const int wanted[N_FILES] = {[F_DATA] = 1,
                               [F_CONFIG] = 1,
                               [F_GENAI] = params->layout == KVC_LAYOUT_GENAI,
                               [F_TOKENIZER] = *ids.tokenizer != '\0',
                               [F_TOKENIZER_CONFIG] = *ids.tokenizer_config != '\0',
                               [F_GRAPH] = 1};
  if (!s)
    s = write_config(tmp[F_CONFIG], params, count_params(&a));
  if (!s && wanted[F_GENAI])
    s = write_genai_config(tmp[F_GENAI], params, &ids);
  if (!s && wanted[F_TOKENIZER])
    s = kvc__file_copy(ids.tokenizer, tmp[F_TOKENIZER]);
  if (!s && wanted[F_TOKENIZER_CONFIG])
    s = kvc__file_copy(ids.tokenizer_config, tmp[F_TOKENIZER_CONFIG]);
  if (!s)
    s = write_graph(tmp[F_GRAPH], &a, params, specs);
  int renamed = 0;
  while (!s && renamed < N_FILES) {
    if (wanted[renamed] && rename(tmp[renamed], final[renamed]) != 0)
      s = kvc__fail(KVC_ERR_IO, "cannot rename %s to %s: %s", tmp[renamed], final[renamed],
                    strerror(errno));
    else
      renamed++;
  }
  if (s) {
    for (int i = 0; i < N_FILES; i++)
      if (wanted[i])
        remove(i < renamed ? final[i] : tmp[i]);
    if (made_dir)
      rmdir(dir);
  }
  free(specs);
  return s;
}
