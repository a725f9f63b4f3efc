/* reference.c: a direct, unoptimised forward pass of the builder's decoder (double math).
 * Written from the architecture, not from the graph: it shares only the weight layout. */
#include "reference.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "error.h"
#include "path.h"

struct kvc__ref {
  kvc__arch arch;
  kvc__tensor_spec *specs;
  float *weights; /* the whole of model.onnx.data */
};

void kvc__ref_free(kvc__ref *r) {
  if (!r)
    return;
  kvc__free(r->weights);
  kvc__free(r->specs);
  kvc__free(r);
}

static int json_int(const cJSON *c, const char *key, int32_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, key);
  if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1 << 30)
    return 0;
  *out = (int32_t)v->valuedouble;
  return 1;
}

kvc_status kvc__ref_open(const char *dir, kvc__ref **out) {
  *out = NULL;
  char path[4096], *text = NULL;
  size_t size = 0;
  kvc_status s = kvc__path_join(path, sizeof path, dir, "config.json");
  if (!s)
    s = kvc__file_read(path, KVC_CONFIG_MAX_BYTES, &text, &size);
  if (s)
    return s;
  cJSON *c = cJSON_ParseWithLength(text, size);
  kvc__free(text);
  kvc__ref *r = kvc__calloc(1, sizeof *r);
  if (!r)
    s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  else if (!c || !json_int(c, "num_layers", &r->arch.layers) ||
           !json_int(c, "num_heads", &r->arch.heads) ||
           !json_int(c, "num_kv_heads", &r->arch.kv_heads) ||
           !json_int(c, "head_dim", &r->arch.head_dim) ||
           !json_int(c, "vocab_size", &r->arch.vocab) ||
           !json_int(c, "max_seq_len", &r->arch.max_seq))
    s = kvc__fail(KVC_ERR_MODEL,
                  "%s: expected num_layers, num_heads, num_kv_heads, head_dim, vocab_size "
                  "and max_seq_len as positive numbers",
                  path);
  const cJSON *arch = c ? cJSON_GetObjectItemCaseSensitive(c, "arch") : NULL;
  if (!s && cJSON_IsString(arch) && strcmp(arch->valuestring, "gpt") &&
      strcmp(arch->valuestring, "llama"))
    s = kvc__fail(KVC_ERR_MODEL, "%s: arch \"%s\": expected \"gpt\" or \"llama\"", path,
                  arch->valuestring);
  if (!s)
    r->arch.llama = cJSON_IsString(arch) && !strcmp(arch->valuestring, "llama");
  const cJSON *ff = c ? cJSON_GetObjectItemCaseSensitive(c, "ff_dim") : NULL;
  if (!s && cJSON_IsNumber(ff)) /* absent before it could be chosen: the arch's default */
    r->arch.ff = (int32_t)ff->valuedouble;
  cJSON_Delete(c);
  if (!s && !(r->specs = kvc__calloc((size_t)kvc__layout_count(&r->arch), sizeof *r->specs)))
    s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  if (!s) {
    size_t floats = kvc__layout(&r->arch, r->specs);
    s = kvc__path_join(path, sizeof path, dir, "model.onnx.data");
    if (!s)
      s = kvc__file_read(path, floats * sizeof(float), &text, &size);
    r->weights = (float *)text;
    if (!s && size != floats * sizeof(float))
      s = kvc__fail(KVC_ERR_MODEL, "%s has %zu bytes; config.json implies %zu", path, size,
                    floats * sizeof(float));
  }
  if (s) {
    kvc__ref_free(r);
    return s;
  }
  *out = r;
  return KVC_OK;
}

static const float *w(const kvc__ref *r, int index) {
  return r->weights + r->specs[index].offset;
}

/* y[out] = x[in] W[in, out] + b[out] */
static void linear(const double *x, const float *W, const float *b, int in, int out, double *y) {
  for (int o = 0; o < out; o++)
    y[o] = b ? b[o] : 0.0;
  for (int i = 0; i < in; i++)
    for (int o = 0; o < out; o++)
      y[o] += x[i] * W[(size_t)i * out + o];
}

static void layer_norm(const double *x, const float *g, const float *b, int n, double *y) {
  double mean = 0, var = 0;
  for (int i = 0; i < n; i++)
    mean += x[i];
  mean /= n;
  for (int i = 0; i < n; i++)
    var += (x[i] - mean) * (x[i] - mean);
  var /= n;
  double inv = 1.0 / sqrt(var + 1e-5);
  for (int i = 0; i < n; i++)
    y[i] = (x[i] - mean) * inv * g[i] + b[i];
}

/* x / sqrt(mean(x^2) + eps) * g */
static void rms_norm(const double *x, const float *g, int n, double *y) {
  double ss = 0;
  for (int i = 0; i < n; i++)
    ss += x[i] * x[i];
  double inv = 1.0 / sqrt(ss / n + (double)KVC_RMS_EPS);
  for (int i = 0; i < n; i++)
    y[i] = x[i] * inv * g[i];
}

/* Rotate the pairs (v[i], v[i + D/2]) of one head by pos * theta^(-2i/D): Llama's rotary
 * position embedding, in the halves-split ("rotate_half") form. */
static void rotate(double *v, int D, int64_t pos) {
  for (int i = 0; i < D / 2; i++) {
    const double angle = (double)pos * pow(KVC_ROPE_THETA, -2.0 * i / D);
    const double c = cos(angle), s = sin(angle), a = v[i], b = v[i + D / 2];
    v[i] = a * c - b * s;
    v[i + D / 2] = b * c + a * s;
  }
}

/* Causal attention of position i over 0..i (those with keep), one head at a time; ctx
 * receives (H * D). q: (n, H*D); k, v: (n, KH*D); p: n doubles of scratch. */
static void attend(const kvc__arch *a, const double *q, const double *k, const double *v,
                   const int64_t *keep, int i, double *p, double *ctx) {
  const int H = a->heads, KH = a->kv_heads, D = a->head_dim, group = H / KH;
  const double scale = 1.0 / sqrt((double)D);
  for (int hd = 0; hd < H; hd++) {
    const int kh = hd / group; /* the K/V head this query head shares */
    const double *qi = q + (size_t)i * H * D + (size_t)hd * D;
    double max = -INFINITY, sum = 0;
    for (int j = 0; j <= i; j++) {
      p[j] = -INFINITY;
      if (keep && !keep[j])
        continue;
      double dot = 0;
      for (int d = 0; d < D; d++)
        dot += qi[d] * k[(size_t)j * KH * D + (size_t)kh * D + d];
      p[j] = dot * scale;
      max = p[j] > max ? p[j] : max;
    }
    for (int j = 0; j <= i; j++) {
      p[j] = p[j] == -INFINITY ? 0.0 : exp(p[j] - max);
      sum += p[j];
    }
    for (int d = 0; d < D; d++) {
      double acc = 0;
      for (int j = 0; j <= i; j++)
        acc += p[j] * v[(size_t)j * KH * D + (size_t)kh * D + d];
      ctx[(size_t)hd * D + d] = sum > 0 ? acc / sum : 0.0;
    }
  }
}

kvc_status kvc__ref_logits(const kvc__ref *r, const int64_t *tokens, const int64_t *positions,
                           const int64_t *keep, int n, double *logits) {
  const kvc__arch *a = &r->arch;
  const int E = kvc__arch_hidden(a), H = a->heads, KH = a->kv_heads, D = a->head_dim;
  const int F = (int)kvc__arch_ff(a), llama = a->llama;
  for (int i = 0; i < n; i++) {
    int64_t pos = positions ? positions[i] : i;
    if (tokens[i] < 0 || tokens[i] >= a->vocab || pos < 0 || pos >= a->max_seq)
      return kvc__fail(KVC_ERR_INVALID_ARG, "reference: token %lld or position %lld out of range",
                       (long long)tokens[i], (long long)pos);
  }
  /* x: (n, E) residual stream; q: (n, H*D); k, v: (n, KH*D); f: the MLP (2F for SwiGLU) */
  size_t nE = (size_t)n * E;
  double *x = malloc(nE * sizeof *x), *h = malloc(nE * sizeof *h);
  double *q = malloc((size_t)n * H * D * sizeof *q), *k = malloc((size_t)n * KH * D * sizeof *k);
  double *v = malloc((size_t)n * KH * D * sizeof *v), *ctx = malloc((size_t)H * D * sizeof *ctx);
  double *p = malloc((size_t)n * sizeof *p), *f = malloc((size_t)2 * F * sizeof *f);
  double *tmp = malloc((size_t)E * sizeof *tmp);
  if (!x || !h || !q || !k || !v || !ctx || !p || !f || !tmp) {
    free(x), free(h), free(q), free(k), free(v), free(ctx), free(p), free(f), free(tmp);
    return kvc__fail(KVC_ERR_NO_MEMORY, "reference: out of memory for %d positions", n);
  }

  for (int i = 0; i < n; i++) {
    const float *te = w(r, KVC_W_TOK_EMB) + (size_t)tokens[i] * E;
    const float *pe =
        llama ? NULL : w(r, KVC_W_POS_EMB) + (size_t)(positions ? positions[i] : i) * E;
    for (int e = 0; e < E; e++)
      x[(size_t)i * E + e] = (double)te[e] + (pe ? (double)pe[e] : 0.0);
  }
  for (int l = 0; l < a->layers; l++) {
#define LW(kind) w(r, kvc__layout_layer(a, l, kind))
    for (int i = 0; i < n; i++) {
      double *hi = h + (size_t)i * E, *qi = q + (size_t)i * H * D, *ki = k + (size_t)i * KH * D;
      if (llama) {
        rms_norm(x + (size_t)i * E, LW(KVC_L_ATTN_NORM), E, hi);
        linear(hi, LW(KVC_L_Q), NULL, E, H * D, qi);
        linear(hi, LW(KVC_L_K), NULL, E, KH * D, ki);
        linear(hi, LW(KVC_L_V), NULL, E, KH * D, v + (size_t)i * KH * D);
        const int64_t pos = positions ? positions[i] : i;
        for (int hd = 0; hd < H; hd++)
          rotate(qi + (size_t)hd * D, D, pos);
        for (int hd = 0; hd < KH; hd++)
          rotate(ki + (size_t)hd * D, D, pos);
      } else {
        layer_norm(x + (size_t)i * E, LW(KVC_W_LN1_G), LW(KVC_W_LN1_B), E, hi);
        linear(hi, LW(KVC_W_Q), LW(KVC_W_BQ), E, H * D, qi);
        linear(hi, LW(KVC_W_K), LW(KVC_W_BK), E, KH * D, ki);
        linear(hi, LW(KVC_W_V), LW(KVC_W_BV), E, KH * D, v + (size_t)i * KH * D);
      }
    }
    for (int i = 0; i < n; i++) {
      attend(a, q, k, v, keep, i, p, ctx);
      linear(ctx, llama ? LW(KVC_L_O) : LW(KVC_W_O), llama ? NULL : LW(KVC_W_BO), H * D, E, tmp);
      for (int e = 0; e < E; e++)
        x[(size_t)i * E + e] += tmp[e];
    }
    for (int i = 0; i < n; i++) {
      double *xi = x + (size_t)i * E;
      if (llama) { /* SwiGLU: (silu(h Wg) * (h Wu)) Wd */
        rms_norm(xi, LW(KVC_L_MLP_NORM), E, h);
        linear(h, LW(KVC_L_GATE), NULL, E, F, f);
        linear(h, LW(KVC_L_UP), NULL, E, F, f + F);
        for (int j = 0; j < F; j++)
          f[j] = f[j] / (1.0 + exp(-f[j])) * f[F + j];
        linear(f, LW(KVC_L_DOWN), NULL, F, E, tmp);
      } else {
        layer_norm(xi, LW(KVC_W_LN2_G), LW(KVC_W_LN2_B), E, h);
        linear(h, LW(KVC_W_FC1), LW(KVC_W_BFC1), E, F, f);
        for (int j = 0; j < F; j++) /* exact GELU */
          f[j] = 0.5 * f[j] * (1.0 + erf(f[j] / sqrt(2.0)));
        linear(f, LW(KVC_W_FC2), LW(KVC_W_BFC2), F, E, tmp);
      }
      for (int e = 0; e < E; e++)
        xi[e] += tmp[e];
    }
#undef LW
  }
  for (int i = 0; i < n; i++) {
    if (llama)
      rms_norm(x + (size_t)i * E, w(r, kvc__layout_final(a, KVC_LF_NORM)), E, h);
    else
      layer_norm(x + (size_t)i * E, w(r, kvc__layout_final(a, KVC_W_LNF_G)),
                 w(r, kvc__layout_final(a, KVC_W_LNF_B)), E, h);
    const int head = kvc__layout_final(a, llama ? KVC_LF_LM_HEAD : KVC_W_LM_HEAD);
    linear(h, w(r, head), NULL, E, a->vocab, logits + (size_t)i * a->vocab);
  }
  free(x), free(h), free(q), free(k), free(v), free(ctx), free(p), free(f), free(tmp);
  return KVC_OK;
}
