/* layout.h: the builder's architecture and where each weight lives in model.onnx.data.
 * Shared by the ONNX writer and the reference forward pass, so both read one layout. */
#ifndef KVC_BUILD_LAYOUT_H
#define KVC_BUILD_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* Sizes of the builder's decoder. hidden = heads * head_dim; the MLP is 4 * hidden wide. */
typedef struct kvc__arch {
  int32_t layers;
  int32_t heads;
  int32_t kv_heads; /* heads of K and V; divides heads (grouped-query attention when smaller) */
  int32_t head_dim;
  int32_t vocab;
  int32_t max_seq; /* rows of the learned position embedding */
} kvc__arch;

/* Per-layer weights, in file order. W* are [in, out] matrices applied as x @ W. */
typedef enum kvc__layer_weight {
  KVC_W_LN1_G, /* (hidden) */
  KVC_W_LN1_B, /* (hidden) */
  KVC_W_Q,     /* (hidden, heads * head_dim) */
  KVC_W_BQ,    /* (heads * head_dim) */
  KVC_W_K,     /* (hidden, kv_heads * head_dim) */
  KVC_W_BK,    /* (kv_heads * head_dim) */
  KVC_W_V,     /* (hidden, kv_heads * head_dim) */
  KVC_W_BV,    /* (kv_heads * head_dim) */
  KVC_W_O,     /* (heads * head_dim, hidden) */
  KVC_W_BO,    /* (hidden) */
  KVC_W_LN2_G, /* (hidden) */
  KVC_W_LN2_B, /* (hidden) */
  KVC_W_FC1,   /* (hidden, 4 * hidden) */
  KVC_W_BFC1,  /* (4 * hidden) */
  KVC_W_FC2,   /* (4 * hidden, hidden) */
  KVC_W_BFC2,  /* (hidden) */
  KVC_W_PER_LAYER
} kvc__layer_weight;

/* Whole-model weights: two before the layers, three after. */
enum {
  KVC_W_TOK_EMB = 0, /* (vocab, hidden) */
  KVC_W_POS_EMB = 1, /* (max_seq, hidden) */
};
typedef enum kvc__final_weight {
  KVC_W_LNF_G,   /* (hidden) */
  KVC_W_LNF_B,   /* (hidden) */
  KVC_W_LM_HEAD, /* (hidden, vocab) */
  KVC_W_FINAL
} kvc__final_weight;

typedef struct kvc__tensor_spec {
  char name[48];   /* initializer name in the graph, e.g. "layers.0.attn.q.weight" */
  int ndims;       /* 1 or 2 */
  int64_t dims[2]; /* shape */
  size_t offset;   /* in floats, from the start of model.onnx.data */
  size_t count;    /* number of floats */
} kvc__tensor_spec;

static inline int32_t kvc__arch_hidden(const kvc__arch *a) {
  return a->heads * a->head_dim;
}

/* Number of weight tensors. */
int kvc__layout_count(const kvc__arch *a);

/* Index of a layer's weight, or of a final weight, in the layout. */
int kvc__layout_layer(int layer, kvc__layer_weight w);
int kvc__layout_final(const kvc__arch *a, kvc__final_weight w);

/* Fill specs[kvc__layout_count(a)] in file order; returns the total number of floats. */
size_t kvc__layout(const kvc__arch *a, kvc__tensor_spec *specs);

#endif
