/* graph_file.c: see graph_file.h. ONNX Runtime's C API does not show a session's
 * initializers, so the graph file is read here with protobuf-c (kvcache's ONNX bindings).
 * Only the .onnx file is read: external weights stay on disk, and their shapes are in it. */
#include "graph_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attention_op.h"
#include "error.h"
#include "path.h"
#include "onnx/onnx.pb-c.h"

/* s equals lit; NULL (a field the file leaves out: a name, on either side) equals nothing. */
static int is(const char *s, const char *lit) {
  return s && lit && !strcmp(s, lit);
}

/* The first dimension of the constant tensor named `name`: an initializer, or the value of
 * a Constant node. 0 when `name` is neither (computed at run time). */
static int64_t rows_of(const Onnx__GraphProto *g, const char *name) {
  for (size_t i = 0; i < g->n_initializer; i++) {
    const Onnx__TensorProto *t = g->initializer[i];
    if (is(t->name, name))
      return t->n_dims > 0 ? t->dims[0] : 0;
  }
  for (size_t i = 0; i < g->n_node; i++) {
    const Onnx__NodeProto *n = g->node[i];
    if (!is(n->op_type, "Constant") || n->n_output != 1 || !is(n->output[0], name))
      continue;
    for (size_t a = 0; a < n->n_attribute; a++)
      if (is(n->attribute[a]->name, "value") && n->attribute[a]->t)
        return n->attribute[a]->t->n_dims > 0 ? n->attribute[a]->t->dims[0] : 0;
  }
  return 0;
}

static int64_t int_attribute(const Onnx__NodeProto *n, const char *name) {
  for (size_t a = 0; a < n->n_attribute; a++)
    if (is(n->attribute[a]->name, name))
      return n->attribute[a]->i;
  return 0;
}

static int is_microsoft(const Onnx__NodeProto *n) {
  return is(n->domain, "com.microsoft");
}

static int is_own_attention(const Onnx__NodeProto *n) {
  return is(n->op_type, KVC_OP_ATTENTION) && is(n->domain, KVC_OP_DOMAIN);
}

/* An attention node taking GroupQueryAttention's inputs (seqlens_k at 5, total at 6, the
 * rotary caches at 7 and 8): GroupQueryAttention itself, or kvcache's operator. */
static int is_gqa_like(const Onnx__NodeProto *n) {
  return (is(n->op_type, "GroupQueryAttention") && is_microsoft(n)) || is_own_attention(n);
}

/* Which input of node n holds a table indexed by position; -1 for none. */
static int position_table_input(const Onnx__NodeProto *n) {
  if (is(n->op_type, "Gather") && n->n_input == 2 && is(n->input[1], "position_ids"))
    return 0;
  if (is_gqa_like(n) && int_attribute(n, "do_rotary") && n->n_input > 7)
    return 7; /* cos_cache */
  if (is(n->op_type, "RotaryEmbedding"))
    return is_microsoft(n) ? (n->n_input > 2 ? 2 : -1) : (n->n_input > 1 ? 1 : -1);
  return -1;
}

/* Every external weights file named by an initializer must be a regular file. */
/* The external data files the initializers name, each checked (see graph_file.h). */
static kvc_status check_external(const Onnx__GraphProto *g, const char *dir, const char *graph,
                                 kvc__graph_file *out) {
  for (size_t i = 0; i < g->n_initializer; i++) {
    const Onnx__TensorProto *t = g->initializer[i];
    if (t->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
      continue;
    for (size_t e = 0; e < t->n_external_data; e++) {
      const char *location = t->external_data[e]->value;
      if (!is(t->external_data[e]->key, "location") || !location)
        continue;
      int seen = 0;
      for (int f = 0; f < out->n_weight_files && !seen; f++)
        seen = is(out->weight_files[f], location);
      if (seen)
        continue;
      if (out->n_weight_files == KVC_MAX_WEIGHT_FILES || strlen(location) >= 256)
        return kvc__fail(KVC_ERR_UNSUPPORTED,
                         "the graph names more than %d external data files, or one of 256 "
                         "bytes or more (%.64s)",
                         KVC_MAX_WEIGHT_FILES, location);
      char path[4096];
      struct stat st;
      kvc_status s = kvc__path_inside(dir, graph, location, "external data file");
      if (!s)
        s = kvc__path_join(path, sizeof path, dir, location);
      /* a missing file is left to ONNX Runtime, whose message is KVC_ERR_MODEL's; one it
       * cannot read it reports as "SystemError : 13", naming no file */
      const int exists = !s && stat(path, &st) == 0;
      if (exists)
        s = kvc__regular_file(path);
      FILE *f = NULL;
      if (!s && exists && !(f = fopen(path, "rb")))
        s = kvc__fail(KVC_ERR_IO, "cannot read external data file %s: %s", path, strerror(errno));
      if (f)
        fclose(f);
      if (s)
        return s;
      snprintf(out->weight_files[out->n_weight_files++], 256, "%s", location);
    }
  }
  return KVC_OK;
}

/* The fewest rows of a table indexed by position (see graph_file.h). */
static void find_positions(const Onnx__GraphProto *g, kvc__graph_file *out) {
  int64_t fewest = 0;
  for (size_t i = 0; i < g->n_node; i++) {
    const Onnx__NodeProto *n = g->node[i];
    int in = position_table_input(n);
    int64_t r = in >= 0 ? rows_of(g, n->input[in]) : 0;
    if (r > 0 && (fewest == 0 || r < fewest)) {
      fewest = r;
      snprintf(out->positions_from, sizeof out->positions_from, "%s '%s' of %s node '%s'",
               in == 0 ? "position table" : "cos cache", n->input[in], n->op_type,
               n->name ? n->name : "");
    }
  }
  out->positions = fewest > INT32_MAX ? INT32_MAX : (int32_t)fewest;
}

static int in_list(char *const *list, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (is(list[i], name))
      return 1;
  return 0;
}

/* Count the GroupQueryAttention nodes, and those whose lengths (inputs 5 and 6) are computed
 * from attention_mask: the tensors derived from it, followed through every node but the
 * attention itself (nodes are stored in topological order). */
/* The columns of a constant matrix: a rank-2 initializer, or a Concat of them along axis 1
 * (how kvcache's builder packs Wq | Wk | Wv). 0 when unknown. */
static int64_t columns_of(const Onnx__GraphProto *g, const char *name, int depth) {
  for (size_t k = 0; k < g->n_initializer; k++)
    if (is(g->initializer[k]->name, name))
      return g->initializer[k]->n_dims == 2 ? g->initializer[k]->dims[1] : 0;
  for (size_t i = 0; depth < 2 && i < g->n_node; i++) {
    const Onnx__NodeProto *n = g->node[i];
    if (n->n_output < 1 || !is(n->output[0], name))
      continue;
    const int64_t axis = int_attribute(n, "axis");
    int64_t sum = 0;
    for (size_t k = 0; is(n->op_type, "Concat") && (axis == 1 || axis == -1) && k < n->n_input;
         k++) {
      const int64_t c = columns_of(g, n->input[k], depth + 1);
      if (c <= 0 || c > INT32_MAX)
        return 0;
      sum += c;
    }
    return sum;
  }
  return 0;
}

/* The output features of the projection that makes `name`: a MatMul by a constant weight
 * (its columns) or a MatMulNBits (its N), through an Add of a bias. 0 when unknown. */
static int64_t features_of(const Onnx__GraphProto *g, const char *name, int depth) {
  for (size_t i = 0; name && *name && depth < 3 && i < g->n_node; i++) {
    const Onnx__NodeProto *n = g->node[i];
    if (n->n_output < 1 || !is(n->output[0], name))
      continue;
    if (is(n->op_type, "MatMulNBits"))
      return int_attribute(n, "N");
    if (is(n->op_type, "MatMul") && n->n_input == 2)
      return columns_of(g, n->input[1], 0);
    if (is(n->op_type, "Add") && n->n_input == 2) {
      const int64_t a = features_of(g, n->input[0], depth + 1);
      return a > 0 ? a : features_of(g, n->input[1], depth + 1);
    }
    return 0;
  }
  return 0;
}

/* The head size an attention node implies: its key projection's features over kv_num_heads,
 * or the packed query-key-value projection's over num_heads + 2 kv_num_heads. 0 if unknown. */
static int head_size_of(const Onnx__GraphProto *g, const Onnx__NodeProto *node) {
  const int64_t heads = int_attribute(node, "num_heads"), kv = int_attribute(node, "kv_num_heads");
  if (heads <= 0 || kv <= 0 || heads > 4096 || kv > 4096 || node->n_input < 2)
    return 0;
  const int packed = !node->input[1] || !*node->input[1];
  const int64_t features = features_of(g, node->input[packed ? 0 : 1], 0),
                parts = packed ? heads + 2 * kv : kv;
  return features > 0 && features % parts == 0 && features / parts <= 65536
             ? (int)(features / parts)
             : 0;
}

static kvc_status find_gqa(const Onnx__GraphProto *g, kvc__graph_file *out) {
  size_t n = 1, cap = 64;
  char **derived = malloc(cap * sizeof *derived);
  if (!derived)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory reading the graph");
  derived[0] = "attention_mask";
  for (size_t i = 0; i < g->n_node; i++) {
    const Onnx__NodeProto *node = g->node[i];
    if (is_gqa_like(node)) {
      out->gqa_nodes++;
      out->own_attention_nodes += is_own_attention(node);
      if (!out->attention_heads) {
        const int64_t heads = int_attribute(node, "num_heads");
        out->attention_heads = heads > 0 && heads <= 4096 ? (int)heads : 0;
        out->head_size = head_size_of(g, node);
        snprintf(out->head_size_from, sizeof out->head_size_from, "%s node '%.100s'", node->op_type,
                 node->name ? node->name : "");
      }
      out->gqa_lengths_from_mask += node->n_input > 6 && in_list(derived, n, node->input[5]) &&
                                    in_list(derived, n, node->input[6]);
      continue;
    }
    int from_mask = 0; /* lengths come from a few nodes; a mask that spreads into the whole
                        * graph (a concat graph's attention bias) is not followed further */
    for (size_t k = 0; k < node->n_input && !from_mask && n < 256; k++)
      from_mask = in_list(derived, n, node->input[k]);
    for (size_t k = 0; from_mask && k < node->n_output; k++) {
      if (n == cap) {
        char **grown = realloc(derived, 2 * cap * sizeof *grown);
        if (!grown) {
          free(derived);
          return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory reading the graph");
        }
        derived = grown, cap *= 2;
      }
      derived[n++] = node->output[k];
    }
  }
  free(derived);
  return KVC_OK;
}

static void find_matmuls(const Onnx__GraphProto *g, kvc__graph_file *out) {
  out->weight_bits = 32;
  out->weight_accuracy_level = -1;
  for (size_t i = 0; i < g->n_node; i++) {
    const Onnx__NodeProto *n = g->node[i];
    const int own = is(n->op_type, KVC_OP_MATMUL) && is(n->domain, KVC_OP_DOMAIN);
    const int quantized = own || (is(n->op_type, "MatMulNBits") && is_microsoft(n));
    out->own_matmuls += own;
    out->matmuls += quantized || is(n->op_type, "MatMul");
    out->quantized_matmuls += quantized;
    if (quantized)
      out->quantized_macs += int_attribute(n, "K") * int_attribute(n, "N");
    const int bits = quantized ? (int)int_attribute(n, "bits") : 32;
    out->weight_bits = bits && bits < out->weight_bits ? bits : out->weight_bits;
    const int level = quantized ? (int)int_attribute(n, "accuracy_level") : -1;
    out->weight_accuracy_level =
        level > out->weight_accuracy_level ? level : out->weight_accuracy_level;
  }
}

/* Bytes of one element of an ONNX tensor type; 0 for types of no fixed size (strings). */
static int64_t element_bytes(int32_t type) {
  switch (type) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
    return 8;
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    return 4;
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
  case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    return 2;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
  case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
    return 1;
  }
  return 0;
}

/* The tables Gather looks rows up in (input 0 an initializer), each counted once. */
static void find_lookups(const Onnx__GraphProto *g, kvc__graph_file *out) {
  for (size_t k = 0; k < g->n_initializer; k++) {
    const Onnx__TensorProto *t = g->initializer[k];
    int gathered = 0;
    for (size_t i = 0; i < g->n_node && !gathered; i++)
      gathered = is(g->node[i]->op_type, "Gather") && g->node[i]->n_input == 2 &&
                 is(g->node[i]->input[0], t->name);
    int64_t bytes = gathered ? element_bytes(t->data_type) : 0;
    for (size_t d = 0; d < t->n_dims && bytes; d++)
      bytes = t->dims[d] > 0 && bytes <= INT64_MAX / t->dims[d] ? bytes * t->dims[d] : 0;
    out->lookup_bytes += bytes;
  }
}

kvc_status kvc__graph_file_read(const char *onnx_path, const char *dir, kvc__graph_file *out) {
  memset(out, 0, sizeof *out);
  const uint8_t *bytes = NULL;
  size_t size = 0;
  kvc_status s = kvc__file_map(onnx_path, &bytes, &size);
  if (!s && bytes)
    s = kvc__graph_file_parse(bytes, size, dir, onnx_path, out);
  kvc__file_unmap(bytes, size);
  return s;
}

kvc_status kvc__graph_file_parse(const void *bytes, size_t size, const char *dir,
                                 const char *onnx_path, kvc__graph_file *out) {
  memset(out, 0, sizeof *out);
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, bytes);
  kvc_status s = KVC_OK;
  if (m && m->graph) {
    s = check_external(m->graph, dir, onnx_path, out);
    find_positions(m->graph, out);
    find_matmuls(m->graph, out);
    find_lookups(m->graph, out);
    if (!s)
      s = find_gqa(m->graph, out);
  }
  if (m)
    onnx__model_proto__free_unpacked(m, NULL);
  return s;
}
