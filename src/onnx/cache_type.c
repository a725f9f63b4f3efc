/* cache_type.c: see cache_type.h. */
#include "cache_type.h"

#include <string.h>

#include "alloc.h"
#include "attention_op.h"
#include "error.h"
#include "onnx/onnx.pb-c.h"
#include "path.h"
#include "q8.h"

/* The cache tensors of kvcache's attention node: past key and value are its inputs 3 and 4,
 * present key and value its outputs 1 and 2. */
enum { PAST_KEY = 3, PAST_VALUE = 4, PRESENT_KEY = 1, PRESENT_VALUE = 2 };

static int is(const char *s, const char *lit) {
  return s && lit && !strcmp(s, lit);
}

static int is_own_attention(const Onnx__NodeProto *n) {
  return is(n->op_type, KVC_OP_ATTENTION) && is(n->domain, KVC_OP_DOMAIN);
}

/* The node that reads or writes tensor `name` other than as kvcache's attention's cache
 * (inputs 3-4, outputs 1-2), or NULL when there is none. */
static const Onnx__NodeProto *other_user(const Onnx__GraphProto *g, const char *name) {
  for (size_t i = 0; i < g->n_node; i++) {
    const Onnx__NodeProto *n = g->node[i];
    const int own = is_own_attention(n);
    for (size_t k = 0; k < n->n_input; k++)
      if (is(n->input[k], name) && !(own && (k == PAST_KEY || k == PAST_VALUE)))
        return n;
    for (size_t k = 0; k < n->n_output; k++)
      if (is(n->output[k], name) && !(own && (k == PRESENT_KEY || k == PRESENT_VALUE)))
        return n;
  }
  return NULL;
}

/* The graph input or output (value info) named `name` among list[0..n), or NULL. */
static Onnx__TypeProto__Tensor *tensor_type(Onnx__ValueInfoProto **list, size_t n,
                                            const char *name) {
  for (size_t i = 0; i < n; i++)
    if (is(list[i]->name, name) && list[i]->type &&
        list[i]->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
      return list[i]->type->tensor_type;
  return NULL;
}

/* Declare t of element type `type`. An 8-bit cache's rows are int8 codes and a 4-byte scale
 * (q8.h): a stated last dimension becomes head size + 4 going to int8, head size coming from
 * it. Returns 1 when t changed. */
static int set_type(Onnx__TypeProto__Tensor *t, int32_t type) {
  const int32_t was = t->elem_type;
  Onnx__TensorShapeProto__Dimension *last =
      t->shape && t->shape->n_dim == 4 ? t->shape->dim[3] : NULL;
  if (last && last->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
    const int64_t head =
        last->dim_value - (was == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ? KVC_Q8_SCALE_BYTES : 0);
    last->dim_value = head + (type == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ? KVC_Q8_SCALE_BYTES : 0);
  }
  t->has_elem_type = 1;
  t->elem_type = type;
  return was != type;
}

/* Retype the cache tensors of every kvcache attention node of g; *changed counts those whose
 * type was another. */
static kvc_status retype(Onnx__GraphProto *g, int32_t type, int *changed) {
  int nodes = 0;
  for (size_t i = 0; i < g->n_node; i++) {
    const Onnx__NodeProto *n = g->node[i];
    if (!is_own_attention(n))
      continue;
    nodes++;
    const char *node = n->name ? n->name : "";
    if (n->n_input <= PAST_VALUE || n->n_output <= PRESENT_VALUE)
      return kvc__fail(KVC_ERR_UNSUPPORTED,
                       "attention node '%s' has no past and present key and value to retype", node);
    const char *names[4] = {n->input[PAST_KEY], n->input[PAST_VALUE], n->output[PRESENT_KEY],
                            n->output[PRESENT_VALUE]};
    for (int k = 0; k < 4; k++) {
      Onnx__TypeProto__Tensor *t = k < 2 ? tensor_type(g->input, g->n_input, names[k])
                                         : tensor_type(g->output, g->n_output, names[k]);
      if (!t)
        return kvc__fail(KVC_ERR_UNSUPPORTED,
                         "the %s '%s' of attention node '%s' is not a graph %s: its type is the "
                         "graph's, not the cache's",
                         k < 2 ? "past" : "present", names[k], node, k < 2 ? "input" : "output");
      const Onnx__NodeProto *other = other_user(g, names[k]);
      if (other)
        return kvc__fail(KVC_ERR_UNSUPPORTED,
                         "cache tensor '%s' is also used by %s node '%s', which would see its "
                         "type change",
                         names[k], other->op_type ? other->op_type : "a",
                         other->name ? other->name : "");
      Onnx__TypeProto__Tensor *noted = tensor_type(g->value_info, g->n_value_info, names[k]);
      if (noted) /* a shape inference's note */
        set_type(noted, type);
      *changed += set_type(t, type);
    }
  }
  if (!nodes)
    return kvc__fail(KVC_ERR_UNSUPPORTED,
                     "its attention is not kvcache's operator (%s.%s), so its cache keeps the "
                     "type the graph declares; another type needs a graph built with "
                     "--attention kvcache",
                     KVC_OP_DOMAIN, KVC_OP_ATTENTION);
  return KVC_OK;
}

kvc_status kvc__graph_retype_cache_bytes(const void *graph, size_t graph_size, const char *name,
                                         int32_t type, uint8_t **bytes, size_t *size) {
  *bytes = NULL;
  *size = 0;
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, graph_size, graph);
  kvc_status s = KVC_OK;
  if (!m || !m->graph)
    s = kvc__fail(KVC_ERR_MODEL, "%s is not an ONNX model with a graph", name);
  int changed = 0;
  if (!s)
    s = retype(m->graph, type, &changed);
  if (!s && changed) {
    *size = onnx__model_proto__get_packed_size(m);
    if (!(*bytes = kvc__malloc(*size)))
      s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for a %zu-byte graph", *size);
    else
      onnx__model_proto__pack(m, *bytes);
  }
  if (m)
    onnx__model_proto__free_unpacked(m, NULL);
  return s;
}

kvc_status kvc__graph_retype_cache(const char *onnx_path, int32_t type, uint8_t **bytes,
                                   size_t *size) {
  *bytes = NULL;
  *size = 0;
  const uint8_t *file = NULL;
  size_t file_size = 0;
  kvc_status s = kvc__file_map(onnx_path, &file, &file_size);
  if (!s) /* protobuf-c copies what it keeps: the mapping can go before the packing */
    s = kvc__graph_retype_cache_bytes(file, file_size, onnx_path, type, bytes, size);
  kvc__file_unmap(file, file_size);
  return s;
}
