/* layout.c: names, shapes and offsets of the builder's weights, in file order. */
#include "layout.h"

#include <stdio.h>

static int n_before(const kvc__arch *a) {
  return a->llama ? 3 : 2;
}

static int per_layer(const kvc__arch *a) {
  return a->llama ? KVC_L_PER_LAYER : KVC_W_PER_LAYER;
}

int64_t kvc__arch_ff(const kvc__arch *a) {
  const int64_t e = kvc__arch_hidden(a);
  if (a->ff > 0)
    return a->ff;
  return a->llama ? (8 * e / 3 + 63) / 64 * 64 : 4 * e;
}

int kvc__layout_count(const kvc__arch *a) {
  return n_before(a) + a->layers * per_layer(a) + (a->llama ? 2 : KVC_W_FINAL);
}

int kvc__layout_layer(const kvc__arch *a, int layer, int w) {
  return n_before(a) + layer * per_layer(a) + w;
}

int kvc__layout_final(const kvc__arch *a, int w) {
  return n_before(a) + a->layers * per_layer(a) + w;
}

static void set(kvc__tensor_spec *s, const char *name, int64_t d0, int64_t d1) {
  snprintf(s->name, sizeof s->name, "%s", name);
  s->ndims = d1 ? 2 : 1;
  s->dims[0] = d0;
  s->dims[1] = d1;
  s->count = (size_t)d0 * (size_t)(d1 ? d1 : 1);
}

size_t kvc__layout(const kvc__arch *a, kvc__tensor_spec *specs) {
  const int64_t e = kvc__arch_hidden(a), qd = (int64_t)a->heads * a->head_dim,
                kvd = (int64_t)a->kv_heads * a->head_dim, ff = kvc__arch_ff(a);
  static const char *const gpt_names[KVC_W_PER_LAYER] = {
      "ln1.weight",     "ln1.bias",     "attn.q.weight",  "attn.q.bias",
      "attn.k.weight",  "attn.k.bias",  "attn.v.weight",  "attn.v.bias",
      "attn.o.weight",  "attn.o.bias",  "ln2.weight",     "ln2.bias",
      "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"};
  const int64_t gpt_dims[KVC_W_PER_LAYER][2] = {
      {e, 0},  {e, 0}, {e, qd}, {qd, 0}, {e, kvd}, {kvd, 0}, {e, kvd}, {kvd, 0},
      {qd, e}, {e, 0}, {e, 0},  {e, 0},  {e, ff},  {ff, 0},  {ff, e},  {e, 0}};
  static const char *const llama_names[KVC_L_PER_LAYER] = {
      "attn_norm.weight", "attn.q.weight",   "attn.k.weight", "attn.v.weight",  "attn.o.weight",
      "mlp_norm.weight",  "mlp.gate.weight", "mlp.up.weight", "mlp.down.weight"};
  const int64_t llama_dims[KVC_L_PER_LAYER][2] = {{e, 0}, {e, qd}, {e, kvd}, {e, kvd}, {qd, e},
                                                  {e, 0}, {e, ff}, {e, ff},  {ff, e}};

  set(&specs[KVC_W_TOK_EMB], "embed.tokens", a->vocab, e);
  if (a->llama) {
    set(&specs[KVC_W_COS], "cos_cache", a->max_seq, a->head_dim / 2);
    set(&specs[KVC_W_SIN], "sin_cache", a->max_seq, a->head_dim / 2);
  } else {
    set(&specs[KVC_W_POS_EMB], "embed.positions", a->max_seq, e);
  }
  for (int l = 0; l < a->layers; l++) {
    for (int w = 0; w < per_layer(a); w++) {
      char name[48];
      snprintf(name, sizeof name, "layers.%d.%s", l, a->llama ? llama_names[w] : gpt_names[w]);
      const int64_t *d = a->llama ? llama_dims[w] : gpt_dims[w];
      set(&specs[kvc__layout_layer(a, l, w)], name, d[0], d[1]);
    }
  }
  if (a->llama) {
    set(&specs[kvc__layout_final(a, KVC_LF_NORM)], "final_norm.weight", e, 0);
    set(&specs[kvc__layout_final(a, KVC_LF_LM_HEAD)], "lm_head.weight", e, a->vocab);
  } else {
    set(&specs[kvc__layout_final(a, KVC_W_LNF_G)], "final_norm.weight", e, 0);
    set(&specs[kvc__layout_final(a, KVC_W_LNF_B)], "final_norm.bias", e, 0);
    set(&specs[kvc__layout_final(a, KVC_W_LM_HEAD)], "lm_head.weight", e, a->vocab);
  }

  size_t offset = 0;
  for (int i = 0; i < kvc__layout_count(a); i++) {
    specs[i].offset = offset;
    offset += specs[i].count;
  }
  return offset;
}
