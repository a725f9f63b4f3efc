/* layout.c: names, shapes and offsets of the builder's weights, in file order. */
#include "layout.h"

#include <stdio.h>

int kvc__layout_count(const kvc__arch *a) {
  return 2 + a->layers * KVC_W_PER_LAYER + KVC_W_FINAL;
}

int kvc__layout_layer(int layer, kvc__layer_weight w) {
  return 2 + layer * KVC_W_PER_LAYER + (int)w;
}

int kvc__layout_final(const kvc__arch *a, kvc__final_weight w) {
  return 2 + a->layers * KVC_W_PER_LAYER + (int)w;
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
                kvd = (int64_t)a->kv_heads * a->head_dim, ff = 4 * e;
  static const char *const layer_names[KVC_W_PER_LAYER] = {
      "ln1.weight",     "ln1.bias",     "attn.q.weight",  "attn.q.bias",
      "attn.k.weight",  "attn.k.bias",  "attn.v.weight",  "attn.v.bias",
      "attn.o.weight",  "attn.o.bias",  "ln2.weight",     "ln2.bias",
      "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"};
  const int64_t layer_dims[KVC_W_PER_LAYER][2] = {
      {e, 0},  {e, 0}, {e, qd}, {qd, 0}, {e, kvd}, {kvd, 0}, {e, kvd}, {kvd, 0},
      {qd, e}, {e, 0}, {e, 0},  {e, 0},  {e, ff},  {ff, 0},  {ff, e},  {e, 0}};

  set(&specs[KVC_W_TOK_EMB], "embed.tokens", a->vocab, e);
  set(&specs[KVC_W_POS_EMB], "embed.positions", a->max_seq, e);
  for (int l = 0; l < a->layers; l++) {
    for (int w = 0; w < KVC_W_PER_LAYER; w++) {
      char name[48];
      snprintf(name, sizeof name, "layers.%d.%s", l, layer_names[w]);
      set(&specs[kvc__layout_layer(l, w)], name, layer_dims[w][0], layer_dims[w][1]);
    }
  }
  set(&specs[kvc__layout_final(a, KVC_W_LNF_G)], "final_norm.weight", e, 0);
  set(&specs[kvc__layout_final(a, KVC_W_LNF_B)], "final_norm.bias", e, 0);
  set(&specs[kvc__layout_final(a, KVC_W_LM_HEAD)], "lm_head.weight", e, a->vocab);

  size_t offset = 0;
  for (int i = 0; i < kvc__layout_count(a); i++) {
    specs[i].offset = offset;
    offset += specs[i].count;
  }
  return offset;
}
