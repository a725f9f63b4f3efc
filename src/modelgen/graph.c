/* graph.c: the seed's decoder as an ONNX graph with explicit KV-cache inputs and outputs.
 *
 *   x = tok_emb[input_ids] + pos_emb[position_ids]                      (batch, seq, hidden)
 *   per layer:  h = LN1(x);  q, k, v = h Wq + bq, h Wk + bk, h Wv + bv
 *               present_k = concat(past_k, k), present_v = concat(past_v, v)   (axis: time)
 *               x += softmax(q present_k^T / sqrt(head_dim) + mask) present_v  Wo + bo
 *               x += GELU(LN2(x) W1 + b1) W2 + b2
 *   logits = LNF(x) W_lm                                                  (batch, seq, vocab)
 *
 * The mask lets query s (absolute position past + s) see keys 0..past + s, and, in the
 * Hugging Face naming, only keys whose attention_mask is 1.
 *
 * With --attention gqa the attention is one com.microsoft.GroupQueryAttention node per
 * layer (same weights, same math, kv_heads <= heads), fed seqlens_k and
 * total_sequence_length by the engine so that past and present can share one buffer.
 * With --attention kvcache that node is kvcache's own ai.kvcache.Attention (same inputs,
 * src/ops/attention_op.h), which also takes the q/k/v bias. */
#include "graph.h"

#include <math.h>
#include <stdio.h>

#include "attention_op.h"
#include "naming.h"
#include "onnx/onnx.pb-c.h"

enum {
  T_FLOAT = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
  T_INT64 = ONNX__TENSOR_PROTO__DATA_TYPE__INT64,
  T_BOOL = ONNX__TENSOR_PROTO__DATA_TYPE__BOOL,
  T_INT32 = ONNX__TENSOR_PROTO__DATA_TYPE__INT32,
};

typedef struct graph {
  kvc__onnx *m;
  const kvc__tensor_spec *specs;
  char scope[32];      /* prefix of node output names, e.g. "layers.2" */
  const char *seqlens; /* GroupQueryAttention's seqlens_k and total_sequence_length: graph */
  const char *total;   /* inputs, or (genai layout) computed from attention_mask */
  int own_attention;   /* ai.kvcache.Attention instead of GroupQueryAttention */
} graph;

/* A node with one output named "<scope>/<what>". */
static const char *op(graph *g, const char *type, const char *what, const char *const *in, int n_in,
                      const kvc__attr *attrs, int n_attrs) {
  char out[96];
  snprintf(out, sizeof out, "%s/%s", g->scope, what);
  const char *outs[] = {out};
  return kvc__onnx_node(g->m, type, NULL, in, n_in, outs, 1, attrs, n_attrs);
}

static const char *op1(graph *g, const char *type, const char *what, const char *a) {
  return op(g, type, what, (const char *[]){a}, 1, NULL, 0);
}

static const char *op2(graph *g, const char *type, const char *what, const char *a, const char *b) {
  return op(g, type, what, (const char *[]){a, b}, 2, NULL, 0);
}

static const char *weight(graph *g, int index) {
  return g->specs[index].name;
}

/* y = x W + b */
static const char *linear(graph *g, const char *what, const char *x, int w, int b) {
  char mm[64];
  snprintf(mm, sizeof mm, "%s_matmul", what);
  return op2(g, "Add", what, op2(g, "MatMul", mm, x, weight(g, w)), weight(g, b));
}

static const char *layer_norm(graph *g, const char *what, const char *x, int gain, int bias) {
  kvc__attr attrs[] = {KVC_ATTR_I("axis", -1), KVC_ATTR_F("epsilon", 1e-5f)};
  return op(g, "LayerNormalization", what, (const char *[]){x, weight(g, gain), weight(g, bias)}, 3,
            attrs, 2);
}

static const char *transpose(graph *g, const char *what, const char *x, const int64_t perm[4]) {
  kvc__attr attr = KVC_ATTR_INTS("perm", perm, 4);
  return op(g, "Transpose", what, (const char *[]){x}, 1, &attr, 1);
}

static const int64_t to_heads[4] = {0, 2, 1, 3}; /* (b, s, h, d) <-> (b, h, s, d) */
static const int64_t keys_t[4] = {0, 1, 3, 2};   /* (b, h, t, d) -> (b, h, d, t) */

/* (batch, seq, n*head_dim) -> (batch, n, seq, head_dim) */
static const char *split_heads(graph *g, const char *what, const char *x, const char *shape) {
  char r[64];
  snprintf(r, sizeof r, "%s_reshape", what);
  return transpose(g, what, op2(g, "Reshape", r, x, shape), to_heads);
}

/* Constants: those of GELU for GPT graphs; those of the concat attention (head shapes, the
 * mask's positions, the scale) only when it is built; those of the genai layout's lengths
 * when a GQA graph takes an attention_mask. */
static void constants(kvc__onnx *m, const kvc__arch *a, int concat, int with_mask) {
  const int64_t one = 1, two = 2, three = 3, four = 4;
  if (!a->llama) {
    kvc__onnx_const_f32(m, "c.half", 0.5f);
    kvc__onnx_const_f32(m, "c.one_f", 1.0f);
    kvc__onnx_const_f32(m, "c.sqrt2", (float)sqrt(2.0));
  }
  if (!concat && with_mask) { /* the genai layout's lengths */
    kvc__onnx_const_i64(m, "c.axes1", (int64_t[]){1}, 1, &one, 1);
    kvc__onnx_const_i64(m, "c.one_i", (int64_t[]){1}, 1, NULL, 0);
  }
  if (!concat)
    return;
  kvc__onnx_const_i64(m, "c.shape_q", (int64_t[]){0, 0, a->heads, a->head_dim}, 4, &four, 1);
  kvc__onnx_const_i64(m, "c.shape_kv", (int64_t[]){0, 0, a->kv_heads, a->head_dim}, 4, &four, 1);
  kvc__onnx_const_i64(m, "c.shape_merged", (int64_t[]){0, 0, (int64_t)a->heads * a->head_dim}, 3,
                      &three, 1);
  kvc__onnx_const_i64(m, "c.axes0", (int64_t[]){0}, 1, &one, 1);
  kvc__onnx_const_i64(m, "c.axes1", (int64_t[]){1}, 1, &one, 1);
  if (with_mask)
    kvc__onnx_const_i64(m, "c.axes12", (int64_t[]){1, 2}, 2, &two, 1);
  kvc__onnx_const_i64(m, "c.zero_i", (int64_t[]){0}, 1, NULL, 0);
  kvc__onnx_const_i64(m, "c.one_i", (int64_t[]){1}, 1, NULL, 0);
  kvc__onnx_const_f32(m, "c.scale", (float)(1.0 / sqrt((double)a->head_dim)));
  kvc__onnx_const_f32(m, "c.zero_f", 0.0f);
  /* Added to a masked score. Finite, so that a fully masked row gives no NaN; large
   * enough that exp() of it is exactly 0 next to any real score. */
  kvc__onnx_const_f32(m, "c.masked", -1e9f);
}

/* The hidden rows the LM head multiplies: the last `logits_to_keep` positions, a graph input
 * whose default (0, an initializer of the same name) keeps them all. An append needs the
 * logits of its last position only: on the 243 M model with its 32000-word head, the head's
 * product over a 512-token prompt is an eighth of the prefill (PERFORMANCE #51). The slice
 * starts at -logits_to_keep, so 0 starts at 0. */
static const char *kept_rows(graph *g, const char *h) {
  snprintf(g->scope, sizeof g->scope, "logits");
  const char *start = op(g, "Neg", "start", (const char *[]){KVC_LOGITS_TO_KEEP}, 1, NULL, 0);
  const char *starts = op2(g, "Reshape", "starts", start, "c.keep_shape");
  return op(g, "Slice", "kept", (const char *[]){h, starts, "c.keep_end", "c.keep_axis"}, 4, NULL,
            0);
}

/* Additive attention bias, 0 where a query may attend and -1e9 elsewhere:
 * (seq, total) from causality alone, (batch, 1, seq, total) with an attention_mask. */
static const char *attention_bias(graph *g, const char *input_ids, const char *past0,
                                  const char *attention_mask) {
  snprintf(g->scope, sizeof g->scope, "mask");
  kvc__attr seq_dim[] = {KVC_ATTR_I("start", 1), KVC_ATTR_I("end", 2)};
  kvc__attr past_dim[] = {KVC_ATTR_I("start", 2), KVC_ATTR_I("end", 3)};
  const char *seq = op(g, "Shape", "seq", (const char *[]){input_ids}, 1, seq_dim, 2);
  const char *past = op(g, "Shape", "past", (const char *[]){past0}, 1, past_dim, 2);
  const char *total = op2(g, "Add", "total", past, seq);
  const char *past_s = op2(g, "Squeeze", "past_scalar", past, "c.axes0");
  const char *total_s = op2(g, "Squeeze", "total_scalar", total, "c.axes0");
  /* query positions past..total-1 as a column, key positions 0..total-1 as a row */
  const char *rows =
      op(g, "Range", "query_pos", (const char *[]){past_s, total_s, "c.one_i"}, 3, NULL, 0);
  const char *cols =
      op(g, "Range", "key_pos", (const char *[]){"c.zero_i", total_s, "c.one_i"}, 3, NULL, 0);
  const char *allowed =
      op2(g, "LessOrEqual", "causal", op2(g, "Unsqueeze", "key_row", cols, "c.axes0"),
          op2(g, "Unsqueeze", "query_col", rows, "c.axes1"));
  if (attention_mask) {
    kvc__attr to_bool = KVC_ATTR_I("to", T_BOOL);
    const char *keep = op(g, "Cast", "keep", (const char *[]){attention_mask}, 1, &to_bool, 1);
    allowed = op2(g, "And", "allowed", allowed, op2(g, "Unsqueeze", "keep_4d", keep, "c.axes12"));
  }
  return op(g, "Where", "bias", (const char *[]){allowed, "c.zero_f", "c.masked"}, 3, NULL, 0);
}

/* GELU(x) = x * (1 + erf(x / sqrt 2)) * 0.5, written in the order ONNX Runtime's GeluFusion
 * recognises (Div, Erf, Add, Mul, Mul): it becomes one Gelu node, and with the bias Add
 * before it one BiasGelu. The math is the same in any order. */
static const char *gelu(graph *g, const char *x) {
  const char *erf = op1(g, "Erf", "gelu_erf", op2(g, "Div", "gelu_scaled", x, "c.sqrt2"));
  const char *x_1p = op2(g, "Mul", "gelu_x_1p", x, op2(g, "Add", "gelu_1p", erf, "c.one_f"));
  return op2(g, "Mul", "gelu", x_1p, "c.half");
}

/* Names of one layer's cache tensors. */
typedef struct cache_io {
  const char *past_k, *past_v, *present_k, *present_v;
} cache_io;

/* Concat attention: present = concat(past, new) along time; softmax(q k^T / sqrt(d) + bias) v.
 * Returns the context (batch, seq, heads * head_dim). */
static const char *concat_attention(graph *g, const char *q_proj, const char *k_proj,
                                    const char *v_proj, const char *bias, const cache_io *io) {
  const char *q = split_heads(g, "q", q_proj, "c.shape_q");
  const char *k = split_heads(g, "k", k_proj, "c.shape_kv");
  const char *v = split_heads(g, "v", v_proj, "c.shape_kv");
  kvc__attr time_axis = KVC_ATTR_I("axis", 2);
  const char *outs_k[] = {io->present_k}, *outs_v[] = {io->present_v};
  kvc__onnx_node(g->m, "Concat", NULL, (const char *[]){io->past_k, k}, 2, outs_k, 1, &time_axis,
                 1);
  kvc__onnx_node(g->m, "Concat", NULL, (const char *[]){io->past_v, v}, 2, outs_v, 1, &time_axis,
                 1);
  const char *scores = op2(g, "MatMul", "scores", q, transpose(g, "keys_t", io->present_k, keys_t));
  scores = op2(g, "Add", "scores_masked", op2(g, "Mul", "scores_scaled", scores, "c.scale"), bias);
  kvc__attr last = KVC_ATTR_I("axis", -1);
  const char *probs = op(g, "Softmax", "probs", (const char *[]){scores}, 1, &last, 1);
  const char *ctx =
      transpose(g, "context_bshd", op2(g, "MatMul", "context", probs, io->present_v), to_heads);
  return op2(g, "Reshape", "context_merged", ctx, "c.shape_merged");
}

/* The weights of one attention: Q, K, V (and their biases, -1 for none). */
typedef struct qkv_weights {
  int q, k, v, bq, bk, bv;
} qkv_weights;

/* com.microsoft.GroupQueryAttention: the same math (causal, scale 1/sqrt(head_dim)), with
 * kv_heads <= heads; when past and present are one buffer of max length, the new keys and
 * values are written in place at positions seqlens_k - seq + 1 .. seqlens_k.
 * Q, K and V come from one MatMul against [Wq | Wk | Wv] (a Concat of the stored weights
 * that ONNX Runtime folds into one constant when it loads the graph), packed as GQA takes
 * them: one pass over the input instead of three. For Llama it also rotates q and k by
 * their positions (do_rotary, from the cos/sin caches). kvcache's operator takes the same
 * inputs and the bias as its tenth, so the bias Add is not a node of its own. */
static const char *gqa_attention(graph *g, const kvc__arch *a, const qkv_weights *wt, const char *h,
                                 const cache_io *io) {
  kvc__attr cols = KVC_ATTR_I("axis", 1), rows = KVC_ATTR_I("axis", 0);
  const char *w =
      op(g, "Concat", "qkv_weight",
         (const char *[]){weight(g, wt->q), weight(g, wt->k), weight(g, wt->v)}, 3, &cols, 1);
  const char *qkv = op2(g, "MatMul", "qkv_matmul", h, w), *bias = "";
  if (wt->bq >= 0) {
    bias =
        op(g, "Concat", "qkv_bias",
           (const char *[]){weight(g, wt->bq), weight(g, wt->bk), weight(g, wt->bv)}, 3, &rows, 1);
    if (!g->own_attention)
      qkv = op2(g, "Add", "qkv", qkv, bias);
  }
  char out[96];
  snprintf(out, sizeof out, "%s/context", g->scope);
  const char *outs[] = {out, io->present_k, io->present_v};
  kvc__attr attrs[] = {KVC_ATTR_I("num_heads", a->heads), KVC_ATTR_I("kv_num_heads", a->kv_heads),
                       KVC_ATTR_I("do_rotary", 1)};
  const char *ins[] = {qkv,
                       "",
                       "",
                       io->past_k,
                       io->past_v,
                       g->seqlens,
                       g->total,
                       a->llama ? weight(g, KVC_W_COS) : "",
                       a->llama ? weight(g, KVC_W_SIN) : "",
                       bias};
  const int n_attrs = a->llama ? 3 : 2;
  if (g->own_attention)
    return kvc__onnx_node(g->m, KVC_OP_ATTENTION, KVC_OP_DOMAIN, ins,
                          *bias      ? 10
                          : a->llama ? 9
                                     : 7,
                          outs, 3, attrs, n_attrs);
  return kvc__onnx_node(g->m, "GroupQueryAttention", "com.microsoft", ins, a->llama ? 9 : 7, outs,
                        3, attrs, n_attrs);
}

static qkv_weights gpt_qkv(const kvc__arch *a, int l) {
  return (qkv_weights){kvc__layout_layer(a, l, KVC_W_Q),  kvc__layout_layer(a, l, KVC_W_K),
                       kvc__layout_layer(a, l, KVC_W_V),  kvc__layout_layer(a, l, KVC_W_BQ),
                       kvc__layout_layer(a, l, KVC_W_BK), kvc__layout_layer(a, l, KVC_W_BV)};
}

/* One pre-norm block; returns the new residual stream. bias: NULL for GQA. */
static const char *block(graph *g, const kvc__arch *a, int l, const char *x, const char *bias,
                         const cache_io *io) {
  snprintf(g->scope, sizeof g->scope, "layers.%d", l);
  const char *h = layer_norm(g, "ln1", x, kvc__layout_layer(a, l, KVC_W_LN1_G),
                             kvc__layout_layer(a, l, KVC_W_LN1_B));
  const char *ctx;
  if (bias) {
    const char *q =
        linear(g, "q_proj", h, kvc__layout_layer(a, l, KVC_W_Q), kvc__layout_layer(a, l, KVC_W_BQ));
    const char *k =
        linear(g, "k_proj", h, kvc__layout_layer(a, l, KVC_W_K), kvc__layout_layer(a, l, KVC_W_BK));
    const char *v =
        linear(g, "v_proj", h, kvc__layout_layer(a, l, KVC_W_V), kvc__layout_layer(a, l, KVC_W_BV));
    ctx = concat_attention(g, q, k, v, bias, io);
  } else {
    const qkv_weights wt = gpt_qkv(a, l);
    ctx = gqa_attention(g, a, &wt, h, io);
  }
  x = op2(g, "Add", "residual1", x,
          linear(g, "o_proj", ctx, kvc__layout_layer(a, l, KVC_W_O),
                 kvc__layout_layer(a, l, KVC_W_BO)));

  h = layer_norm(g, "ln2", x, kvc__layout_layer(a, l, KVC_W_LN2_G),
                 kvc__layout_layer(a, l, KVC_W_LN2_B));
  h = gelu(g, linear(g, "fc1", h, kvc__layout_layer(a, l, KVC_W_FC1),
                     kvc__layout_layer(a, l, KVC_W_BFC1)));
  h = linear(g, "fc2", h, kvc__layout_layer(a, l, KVC_W_FC2), kvc__layout_layer(a, l, KVC_W_BFC2));
  return op2(g, "Add", "residual2", x, h);
}

/* The concat graph's layers in standard ONNX ops; returns the final normalised stream. */
static const char *standard_stack(graph *g, const kvc__arch *a, kvc_naming naming,
                                  const char *bias) {
  snprintf(g->scope, sizeof g->scope, "embed");
  const char *x =
      op2(g, "Add", "sum", op2(g, "Gather", "tokens", weight(g, KVC_W_TOK_EMB), "input_ids"),
          op2(g, "Gather", "positions", weight(g, KVC_W_POS_EMB), "position_ids"));
  char names[4][64];
  for (int l = 0; l < a->layers; l++) {
    kvc__layer_io_names(naming, l, names[0], names[1], names[2], names[3], sizeof names[0]);
    const cache_io io = {names[0], names[1], names[2], names[3]};
    x = block(g, a, l, x, bias, &io);
  }
  snprintf(g->scope, sizeof g->scope, "final");
  return layer_norm(g, "norm", x, kvc__layout_final(a, KVC_W_LNF_G),
                    kvc__layout_final(a, KVC_W_LNF_B));
}

/* com.microsoft.SkipLayerNormalization: sum = input + skip (+ bias), out = LayerNorm(sum),
 * in one node. Returns out; *sum receives the sum (the residual stream). bias < 0: none. */
static const char *skip_layer_norm(graph *g, const char *what, const char *input, const char *skip,
                                   int gain, int beta, int bias, const char **sum) {
  char out[96], total[96];
  snprintf(out, sizeof out, "%s/%s", g->scope, what);
  snprintf(total, sizeof total, "%s/%s_sum", g->scope, what);
  const char *outs[] = {out, "", "", total};
  const char *ins[] = {input, skip, weight(g, gain), weight(g, beta),
                       bias < 0 ? "" : weight(g, bias)};
  kvc__attr eps = KVC_ATTR_F("epsilon", 1e-5f);
  const char *normalised = kvc__onnx_node(g->m, "SkipLayerNormalization", "com.microsoft", ins,
                                          bias < 0 ? 4 : 5, outs, 4, &eps, 1);
  /* the node's output list is stored in the arena; its fourth entry is the sum */
  *sum = kvc__onnx_last_output(g->m, 3);
  return normalised;
}

/* The GQA graph's layers. This graph needs ONNX Runtime's contrib domain anyway, so it uses
 * the fused nodes ORT would not form by itself here: each residual Add with the branch's
 * bias and the next LayerNorm become one SkipLayerNormalization. Same math as
 * standard_stack; returns the final normalised stream. */
static const char *gqa_stack(graph *g, const kvc__arch *a, kvc_naming naming) {
  snprintf(g->scope, sizeof g->scope, "embed");
  const char *tokens = op2(g, "Gather", "tokens", weight(g, KVC_W_TOK_EMB), "input_ids");
  const char *positions = op2(g, "Gather", "positions", weight(g, KVC_W_POS_EMB), "position_ids");
  const char *x = NULL;
  snprintf(g->scope, sizeof g->scope, "layers.0");
  const char *h = skip_layer_norm(g, "ln1", tokens, positions, kvc__layout_layer(a, 0, KVC_W_LN1_G),
                                  kvc__layout_layer(a, 0, KVC_W_LN1_B), -1, &x);
  char names[4][64];
  for (int l = 0; l < a->layers; l++) {
    snprintf(g->scope, sizeof g->scope, "layers.%d", l);
    kvc__layer_io_names(naming, l, names[0], names[1], names[2], names[3], sizeof names[0]);
    const cache_io io = {names[0], names[1], names[2], names[3]};
    const qkv_weights wt = gpt_qkv(a, l);
    const char *ctx = gqa_attention(g, a, &wt, h, &io);
    h = skip_layer_norm(
        g, "ln2", op2(g, "MatMul", "o_proj", ctx, weight(g, kvc__layout_layer(a, l, KVC_W_O))), x,
        kvc__layout_layer(a, l, KVC_W_LN2_G), kvc__layout_layer(a, l, KVC_W_LN2_B),
        kvc__layout_layer(a, l, KVC_W_BO), &x);
    h = gelu(g, linear(g, "fc1", h, kvc__layout_layer(a, l, KVC_W_FC1),
                       kvc__layout_layer(a, l, KVC_W_BFC1)));
    const int last = l + 1 == a->layers;
    h = skip_layer_norm(
        g, last ? "final_norm" : "next_ln1",
        op2(g, "MatMul", "fc2", h, weight(g, kvc__layout_layer(a, l, KVC_W_FC2))), x,
        last ? kvc__layout_final(a, KVC_W_LNF_G) : kvc__layout_layer(a, l + 1, KVC_W_LN1_G),
        last ? kvc__layout_final(a, KVC_W_LNF_B) : kvc__layout_layer(a, l + 1, KVC_W_LN1_B),
        kvc__layout_layer(a, l, KVC_W_BFC2), &x);
  }
  return h;
}

/* RMSNorm (SimplifiedLayerNormalization, ONNX Runtime's contrib op in the default domain):
 * x / sqrt(mean(x^2) + eps) * gain. */
static const char *rms_norm(graph *g, const char *what, const char *x, int gain) {
  kvc__attr attrs[] = {KVC_ATTR_I("axis", -1), KVC_ATTR_F("epsilon", KVC_RMS_EPS),
                       KVC_ATTR_I("stash_type", 1)};
  return op(g, "SimplifiedLayerNormalization", what, (const char *[]){x, weight(g, gain)}, 2, attrs,
            3);
}

/* com.microsoft.SkipSimplifiedLayerNormalization: sum = input + skip, out = RMSNorm(sum).
 * Returns out; *sum receives the sum (the residual stream). */
static const char *skip_rms_norm(graph *g, const char *what, const char *input, const char *skip,
                                 int gain, const char **sum) {
  char out[96], total[96];
  snprintf(out, sizeof out, "%s/%s", g->scope, what);
  snprintf(total, sizeof total, "%s/%s_sum", g->scope, what);
  const char *outs[] = {out, "", "", total};
  kvc__attr eps = KVC_ATTR_F("epsilon", KVC_RMS_EPS);
  const char *normalised =
      kvc__onnx_node(g->m, "SkipSimplifiedLayerNormalization", "com.microsoft",
                     (const char *[]){input, skip, weight(g, gain)}, 3, outs, 4, &eps, 1);
  *sum = kvc__onnx_last_output(g->m, 3);
  return normalised;
}

/* Llama's layers, in the nodes onnxruntime-genai's builder writes: RMSNorms fused with the
 * residual adds, GroupQueryAttention applying the rotary, SwiGLU as x * Sigmoid(x) * up.
 * Returns the final normalised stream. */
static const char *llama_stack(graph *g, const kvc__arch *a, kvc_naming naming) {
  snprintf(g->scope, sizeof g->scope, "embed");
  const char *x = op2(g, "Gather", "tokens", weight(g, KVC_W_TOK_EMB), "input_ids");
  snprintf(g->scope, sizeof g->scope, "layers.0");
  const char *h = rms_norm(g, "attn_norm", x, kvc__layout_layer(a, 0, KVC_L_ATTN_NORM));
  char names[4][64];
  for (int l = 0; l < a->layers; l++) {
#define LW(kind) kvc__layout_layer(a, l, kind)
    snprintf(g->scope, sizeof g->scope, "layers.%d", l);
    kvc__layer_io_names(naming, l, names[0], names[1], names[2], names[3], sizeof names[0]);
    const cache_io io = {names[0], names[1], names[2], names[3]};
    const qkv_weights wt = {LW(KVC_L_Q), LW(KVC_L_K), LW(KVC_L_V), -1, -1, -1};
    const char *ctx = gqa_attention(g, a, &wt, h, &io);
    h = skip_rms_norm(g, "mlp_norm", op2(g, "MatMul", "o_proj", ctx, weight(g, LW(KVC_L_O))), x,
                      LW(KVC_L_MLP_NORM), &x);
    const char *gate = op2(g, "MatMul", "gate_proj", h, weight(g, LW(KVC_L_GATE)));
    const char *up = op2(g, "MatMul", "up_proj", h, weight(g, LW(KVC_L_UP)));
    const char *act = op2(g, "Mul", "silu", gate, op1(g, "Sigmoid", "gate_sigmoid", gate));
    const char *down =
        op2(g, "MatMul", "down_proj", op2(g, "Mul", "swiglu", act, up), weight(g, LW(KVC_L_DOWN)));
    const int last = l + 1 == a->layers;
    h = skip_rms_norm(g, last ? "final_norm" : "next_attn_norm", down, x,
                      last ? kvc__layout_final(a, KVC_LF_NORM)
                           : kvc__layout_layer(a, l + 1, KVC_L_ATTN_NORM),
                      &x);
#undef LW
  }
  return h;
}

/* The genai layout: GroupQueryAttention's seqlens_k = sum(attention_mask, 1) - 1 and
 * total_sequence_length = attention_mask's second dimension, both int32, computed in the
 * graph as onnxruntime-genai's builder does. */
static void lengths_from_mask(graph *g) {
  snprintf(g->scope, sizeof g->scope, "attn_mask_reformat");
  kvc__attr no_keep = KVC_ATTR_I("keepdims", 0), to_i32 = KVC_ATTR_I("to", T_INT32);
  kvc__attr axis0 = KVC_ATTR_I("axis", 0);
  const char *sum =
      op(g, "ReduceSum", "sum", (const char *[]){"attention_mask", "c.axes1"}, 2, &no_keep, 1);
  const char *last = op2(g, "Sub", "last", sum, "c.one_i");
  g->seqlens = op(g, "Cast", "seqlens_k", (const char *[]){last}, 1, &to_i32, 1);
  const char *shape = op1(g, "Shape", "shape", "attention_mask");
  const char *total = op(g, "Gather", "total", (const char *[]){shape, "c.one_i"}, 2, &axis0, 1);
  g->total = op(g, "Cast", "total_sequence_length", (const char *[]){total}, 1, &to_i32, 1);
}

void kvc__graph_decoder(kvc__onnx *m, const kvc__arch *a, kvc_naming naming,
                        kvc_attention attention, kvc_layout layout, const kvc__tensor_spec *specs,
                        const char *data_file) {
  graph g = {.m = m,
             .specs = specs,
             .seqlens = "seqlens_k",
             .total = "total_sequence_length",
             .own_attention = attention == KVC_ATTENTION_KVCACHE};
  /* gqa: an attention node that writes the cache in place (GroupQueryAttention or kvcache's) */
  const int gqa = attention != KVC_ATTENTION_CONCAT, genai = layout == KVC_LAYOUT_GENAI;
  /* an attention_mask: concat attention in the hf naming, and the genai layout (where it
   * gives GroupQueryAttention its lengths); kvcache's GQA graphs take the lengths instead */
  const int mask = genai || (naming == KVC_NAMING_HF && !gqa);
  /* symbolic dimensions named as Optimum and onnxruntime-genai name them (transformers.js
   * matches a GQA cache's batch dimension by the name batch_size) */
  const kvc__dim batch_seq[] = {{"batch_size", 0}, {"sequence_length", 0}};
  /* the genai layout names the head size symbolically, as onnxruntime-genai's builder does
   * (one export for plain and quantised caches): kvcache then reads it from genai_config */
  const kvc__dim head = genai ? (kvc__dim){"kv_cache_dim", 0} : (kvc__dim){NULL, a->head_dim};
  const kvc__dim past[] = {
      {"batch_size", 0}, {NULL, a->kv_heads}, {"past_sequence_length", 0}, head};
  const kvc__dim present[] = {
      {"batch_size", 0}, {NULL, a->kv_heads}, {"total_sequence_length", 0}, head};
  /* GQA: past and present are (batch, kv_heads, max_seq, head_dim) when they share a buffer,
   * or past and past + seq long when they do not; either way the time axis is symbolic */
  const kvc__dim logits[] = {{"batch_size", 0}, {"sequence_length", 0}, {NULL, a->vocab}};

  kvc__onnx_input(m, "input_ids", T_INT64, batch_seq, 2);
  if (mask)
    kvc__onnx_input(m, "attention_mask", T_INT64,
                    (kvc__dim[]){{"batch_size", 0}, {"total_sequence_length", 0}}, 2);
  if (!a->llama) /* Llama's positions come from the lengths, inside GroupQueryAttention */
    kvc__onnx_input(m, "position_ids", T_INT64, batch_seq, 2);
  if (gqa)
    kvc__onnx_opset(m, "com.microsoft", 1);
  if (g.own_attention)
    kvc__onnx_opset(m, KVC_OP_DOMAIN, 1);
  if (gqa && !genai) {
    kvc__onnx_input(m, "seqlens_k", T_INT32, (kvc__dim[]){{"batch_size", 0}}, 1);
    kvc__onnx_input(m, "total_sequence_length", T_INT32, NULL, 0);
  }
  kvc__onnx_output(m, "logits", T_FLOAT, logits, 3);
  /* logits_to_keep: an input with a default, so that runtimes that do not know it need not
   * feed it (kept_rows); not in the genai layout, which onnxruntime-genai's builder writes
   * without it */
  const int64_t one = 1, keep_all = 0;
  if (!genai) {
    kvc__onnx_input(m, KVC_LOGITS_TO_KEEP, T_INT64, NULL, 0);
    kvc__onnx_const_i64(m, KVC_LOGITS_TO_KEEP, &keep_all, 1, NULL, 0);
    kvc__onnx_const_i64(m, "c.keep_shape", &one, 1, &one, 1);
    kvc__onnx_const_i64(m, "c.keep_end", (int64_t[]){INT64_MAX}, 1, &one, 1);
    kvc__onnx_const_i64(m, "c.keep_axis", &one, 1, &one, 1);
  }

  char names[4][64];
  for (int l = 0; l < a->layers; l++) {
    kvc__layer_io_names(naming, l, names[0], names[1], names[2], names[3], sizeof names[0]);
    kvc__onnx_input(m, names[0], T_FLOAT, past, 4);
    kvc__onnx_input(m, names[1], T_FLOAT, past, 4);
    kvc__onnx_output(m, names[2], T_FLOAT, present, 4);
    kvc__onnx_output(m, names[3], T_FLOAT, present, 4);
  }
  for (int i = 0; i < kvc__layout_count(a); i++)
    kvc__onnx_external(m, specs[i].name, specs[i].dims, specs[i].ndims, data_file,
                       specs[i].offset * sizeof(float), specs[i].count * sizeof(float));
  constants(m, a, !gqa, mask);
  if (genai)
    lengths_from_mask(&g);

  kvc__layer_io_names(naming, 0, names[0], names[1], names[2], names[3], sizeof names[0]);
  const char *bias =
      gqa ? NULL : attention_bias(&g, "input_ids", names[0], mask ? "attention_mask" : NULL);
  const char *h = a->llama ? llama_stack(&g, a, naming)
                  : gqa    ? gqa_stack(&g, a, naming)
                           : standard_stack(&g, a, naming, bias);
  const int lm_head =
      a->llama ? kvc__layout_final(a, KVC_LF_LM_HEAD) : kvc__layout_final(a, KVC_W_LM_HEAD);
  const char *outs[] = {"logits"};
  kvc__onnx_node(m, "MatMul", NULL,
                 (const char *[]){genai ? h : kept_rows(&g, h), weight(&g, lm_head)}, 2, outs, 1,
                 NULL, 0);
}
