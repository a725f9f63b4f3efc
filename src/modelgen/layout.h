/* layout.h: the builder's architectures and where each weight lives in model.onnx.data.
 * Shared by the ONNX writer and the reference forward pass, so both read one layout. */
#ifndef KVC_BUILD_LAYOUT_H
#define KVC_BUILD_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* Sizes of the builder's decoder. hidden = heads * head_dim. */
typedef struct kvc__arch {
  int32_t layers;
  int32_t heads;
  int32_t kv_heads; /* heads of K and V; divides heads (grouped-query attention when smaller) */
  int32_t head_dim;
  int32_t vocab;
  int32_t max_seq; /* rows of the learned position embedding, or of the rotary caches */
  int llama;       /* 0: GPT-2 style (LayerNorm, learned positions, GELU MLP 4 x hidden wide);
                    * 1: Llama style (RMSNorm, rotary positions, SwiGLU MLP, no biases) */
  int32_t ff;      /* the MLP's width; 0: the arch's default (kvc__arch_ff) */
} kvc__arch;

/* GPT per-layer weights, in file order. W* are [in, out] matrices applied as x @ W. */
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

/* Llama per-layer weights, in file order. */
typedef enum kvc__llama_weight {
  KVC_L_ATTN_NORM, /* (hidden) RMSNorm gain */
  KVC_L_Q,         /* (hidden, heads * head_dim) */
  KVC_L_K,         /* (hidden, kv_heads * head_dim) */
  KVC_L_V,         /* (hidden, kv_heads * head_dim) */
  KVC_L_O,         /* (heads * head_dim, hidden) */
  KVC_L_MLP_NORM,  /* (hidden) */
  KVC_L_GATE,      /* (hidden, ff) */
  KVC_L_UP,        /* (hidden, ff) */
  KVC_L_DOWN,      /* (ff, hidden) */
  KVC_L_PER_LAYER
} kvc__llama_weight;

/* Whole-model weights before the layers: two for GPT, three for Llama. */
enum {
  KVC_W_TOK_EMB = 0, /* (vocab, hidden) */
  KVC_W_POS_EMB = 1, /* GPT: (max_seq, hidden) */
  KVC_W_COS = 1,     /* Llama: (max_seq, head_dim / 2) cos(p * theta^(-2i / head_dim)) */
  KVC_W_SIN = 2,     /* Llama: (max_seq, head_dim / 2) sin of the same */
};
/* Whole-model weights after the layers. */
typedef enum kvc__final_weight {
  KVC_W_LNF_G,   /* (hidden) GPT */
  KVC_W_LNF_B,   /* (hidden) GPT */
  KVC_W_LM_HEAD, /* (hidden, vocab) GPT */
  KVC_W_FINAL
} kvc__final_weight;
enum {
  KVC_LF_NORM = 0,    /* (hidden) Llama RMSNorm gain */
  KVC_LF_LM_HEAD = 1, /* (hidden, vocab) Llama */
};

/* Llama's rotary base and its norms' epsilon. */
#define KVC_ROPE_THETA 10000.0
#define KVC_RMS_EPS    1e-5f

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

/* Width of the MLP: 4 x hidden (GPT); about 8/3 x hidden rounded up to a multiple of 64
 * (Llama's SwiGLU, which has three matrices instead of two). */
int64_t kvc__arch_ff(const kvc__arch *a);

/* Number of weight tensors. */
int kvc__layout_count(const kvc__arch *a);

/* Index of a layer's weight (a kvc__layer_weight or kvc__llama_weight), or of a final weight
 * (a kvc__final_weight or KVC_LF_*), in the layout. */
int kvc__layout_layer(const kvc__arch *a, int layer, int w);
int kvc__layout_final(const kvc__arch *a, int w);

/* Fill specs[kvc__layout_count(a)] in file order; returns the total number of floats. */
size_t kvc__layout(const kvc__arch *a, kvc__tensor_spec *specs);

#endif
