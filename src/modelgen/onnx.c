/* onnx.c: protobuf-c ModelProto construction from an arena, and serialisation. */
#include "onnx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "onnx/onnx.pb-c.h"

/* Bump allocator: blocks chained in a list, all freed together. */
typedef struct block {
  struct block *next;
  size_t used, cap;
  _Alignas(max_align_t) unsigned char data[];
} block;

/* A growable array of message pointers that lives in the arena until serialisation. */
typedef struct ptrs {
  void **items;
  size_t n, cap;
} ptrs;

struct kvc__onnx {
  block *blocks;
  int out_of_memory;
  Onnx__ModelProto model;
  Onnx__GraphProto graph;
  ptrs nodes, inits, inputs, outputs, opsets;
};

static void *alloc(kvc__onnx *m, size_t size) {
  size = (size + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) * _Alignof(max_align_t);
  block *b = m->blocks;
  if (!b || b->cap - b->used < size) {
    size_t cap = size > 65536 ? size : 65536;
    b = malloc(sizeof *b + cap);
    if (!b) {
      m->out_of_memory = 1;
      return NULL;
    }
    b->next = m->blocks;
    b->used = 0;
    b->cap = cap;
    m->blocks = b;
  }
  void *p = b->data + b->used;
  b->used += size;
  memset(p, 0, size);
  return p;
}

static char *dup(kvc__onnx *m, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = alloc(m, n);
  if (p)
    memcpy(p, s, n);
  return p;
}

static void push(kvc__onnx *m, ptrs *a, void *item) {
  if (!item)
    return;
  if (a->n == a->cap) {
    size_t cap = a->cap ? 2 * a->cap : 64;
    void **items = alloc(m, cap * sizeof *items);
    if (!items)
      return;
    if (a->n)
      memcpy(items, a->items, a->n * sizeof *items);
    a->items = items;
    a->cap = cap;
  }
  a->items[a->n++] = item;
}

/* One constructor per message type: arena memory, then protobuf-c's initialiser. */
#define ARENA_NEW(fn, type, init)                                                                  \
  static type *fn(kvc__onnx *m) {                                                                  \
    type *p = alloc(m, sizeof(type));                                                              \
    if (p)                                                                                         \
      init(p);                                                                                     \
    return p;                                                                                      \
  }
ARENA_NEW(new_node, Onnx__NodeProto, onnx__node_proto__init)
ARENA_NEW(new_attr, Onnx__AttributeProto, onnx__attribute_proto__init)
ARENA_NEW(new_tensor, Onnx__TensorProto, onnx__tensor_proto__init)
ARENA_NEW(new_entry, Onnx__StringStringEntryProto, onnx__string_string_entry_proto__init)
ARENA_NEW(new_value_info, Onnx__ValueInfoProto, onnx__value_info_proto__init)
ARENA_NEW(new_type, Onnx__TypeProto, onnx__type_proto__init)
ARENA_NEW(new_tensor_type, Onnx__TypeProto__Tensor, onnx__type_proto__tensor__init)
ARENA_NEW(new_shape, Onnx__TensorShapeProto, onnx__tensor_shape_proto__init)
ARENA_NEW(new_dim, Onnx__TensorShapeProto__Dimension, onnx__tensor_shape_proto__dimension__init)
ARENA_NEW(new_opset, Onnx__OperatorSetIdProto, onnx__operator_set_id_proto__init)

kvc__onnx *kvc__onnx_new(const char *graph_name) {
  kvc__onnx *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  onnx__model_proto__init(&m->model);
  onnx__graph_proto__init(&m->graph);
  m->model.has_ir_version = 1;
  m->model.ir_version = 8;
  m->model.producer_name = dup(m, "kvcache");
  m->model.producer_version = dup(m, KVCACHE_VERSION);
  m->model.graph = &m->graph;
  m->graph.name = dup(m, graph_name);
  kvc__onnx_opset(m, "", 17);
  if (m->out_of_memory) {
    kvc__onnx_free(m);
    return NULL;
  }
  return m;
}

void kvc__onnx_free(kvc__onnx *m) {
  if (!m)
    return;
  for (block *b = m->blocks, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  free(m);
}

void kvc__onnx_opset(kvc__onnx *m, const char *domain, int64_t version) {
  Onnx__OperatorSetIdProto *o = new_opset(m);
  if (!o)
    return;
  o->domain = dup(m, domain);
  o->has_version = 1;
  o->version = version;
  push(m, &m->opsets, o);
}

static Onnx__ValueInfoProto *value_info(kvc__onnx *m, const char *name, int32_t elem_type,
                                        const kvc__dim *dims, int ndims) {
  Onnx__ValueInfoProto *vi = new_value_info(m);
  Onnx__TypeProto *type = new_type(m);
  Onnx__TypeProto__Tensor *tt = new_tensor_type(m);
  Onnx__TensorShapeProto *shape = new_shape(m);
  Onnx__TensorShapeProto__Dimension **dv = alloc(m, (size_t)(ndims + 1) * sizeof *dv);
  if (!vi || !type || !tt || !shape || !dv)
    return NULL;
  for (int i = 0; i < ndims; i++) {
    if (!(dv[i] = new_dim(m)))
      return NULL;
    if (dims[i].param) {
      dv[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      dv[i]->dim_param = dup(m, dims[i].param);
    } else {
      dv[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      dv[i]->dim_value = dims[i].value;
    }
  }
  shape->n_dim = (size_t)ndims;
  shape->dim = dv;
  tt->has_elem_type = 1;
  tt->elem_type = elem_type;
  tt->shape = shape;
  type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  type->tensor_type = tt;
  vi->name = dup(m, name);
  vi->type = type;
  return vi;
}

void kvc__onnx_input(kvc__onnx *m, const char *name, int32_t elem_type, const kvc__dim *dims,
                     int ndims) {
  push(m, &m->inputs, value_info(m, name, elem_type, dims, ndims));
}

void kvc__onnx_output(kvc__onnx *m, const char *name, int32_t elem_type, const kvc__dim *dims,
                      int ndims) {
  push(m, &m->outputs, value_info(m, name, elem_type, dims, ndims));
}

static char **names(kvc__onnx *m, const char *const *src, int n) {
  char **out = alloc(m, (size_t)(n + 1) * sizeof *out);
  for (int i = 0; out && i < n; i++)
    out[i] = dup(m, src[i]);
  return out;
}

const char *kvc__onnx_node(kvc__onnx *m, const char *op, const char *domain,
                           const char *const *inputs, int n_in, const char *const *outputs,
                           int n_out, const kvc__attr *attrs, int n_attrs) {
  Onnx__NodeProto *node = new_node(m);
  Onnx__AttributeProto **av = alloc(m, (size_t)(n_attrs + 1) * sizeof *av);
  if (!node || !av)
    return "";
  node->op_type = dup(m, op);
  node->domain = domain ? dup(m, domain) : NULL;
  node->name = dup(m, outputs[0]);
  node->n_input = (size_t)n_in;
  node->input = names(m, inputs, n_in);
  node->n_output = (size_t)n_out;
  node->output = names(m, outputs, n_out);
  for (int i = 0; i < n_attrs; i++) {
    Onnx__AttributeProto *a = av[i] = new_attr(m);
    if (!a)
      return "";
    a->name = dup(m, attrs[i].name);
    a->has_type = 1;
    switch (attrs[i].kind) {
    case KVC_ATTR_INT:
      a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
      a->has_i = 1;
      a->i = attrs[i].i;
      break;
    case KVC_ATTR_FLOAT:
      a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
      a->has_f = 1;
      a->f = attrs[i].f;
      break;
    case KVC_ATTR_INTS:
      a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
      a->n_ints = attrs[i].n_ints;
      a->ints = alloc(m, attrs[i].n_ints * sizeof *a->ints);
      if (a->ints)
        memcpy(a->ints, attrs[i].ints, attrs[i].n_ints * sizeof *a->ints);
      break;
    }
  }
  node->n_attribute = (size_t)n_attrs;
  node->attribute = av;
  push(m, &m->nodes, node);
  return node->output && node->output[0] ? node->output[0] : "";
}

const char *kvc__onnx_last_output(const kvc__onnx *m, int index) {
  if (m->nodes.n == 0)
    return "";
  const Onnx__NodeProto *node = m->nodes.items[m->nodes.n - 1];
  return index >= 0 && (size_t)index < node->n_output && node->output ? node->output[index] : "";
}

static Onnx__TensorProto *tensor(kvc__onnx *m, const char *name, int32_t type, const int64_t *dims,
                                 int ndims) {
  Onnx__TensorProto *t = new_tensor(m);
  if (!t)
    return NULL;
  t->name = dup(m, name);
  t->has_data_type = 1;
  t->data_type = type;
  t->n_dims = (size_t)ndims;
  t->dims = alloc(m, (size_t)(ndims + 1) * sizeof *t->dims);
  if (t->dims && ndims)
    memcpy(t->dims, dims, (size_t)ndims * sizeof *dims);
  return t;
}

static Onnx__StringStringEntryProto *entry(kvc__onnx *m, const char *key, const char *value) {
  Onnx__StringStringEntryProto *e = new_entry(m);
  if (e) {
    e->key = dup(m, key);
    e->value = dup(m, value);
  }
  return e;
}

void kvc__onnx_external(kvc__onnx *m, const char *name, const int64_t *dims, int ndims,
                        const char *location, size_t offset, size_t bytes) {
  Onnx__TensorProto *t = tensor(m, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, dims, ndims);
  Onnx__StringStringEntryProto **ext = alloc(m, 3 * sizeof *ext);
  if (!t || !ext)
    return;
  char num[2][32];
  snprintf(num[0], sizeof num[0], "%zu", offset);
  snprintf(num[1], sizeof num[1], "%zu", bytes);
  ext[0] = entry(m, "location", location);
  ext[1] = entry(m, "offset", num[0]);
  ext[2] = entry(m, "length", num[1]);
  t->n_external_data = 3;
  t->external_data = ext;
  t->has_data_location = 1;
  t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  push(m, &m->inits, t);
}

void kvc__onnx_const_i64(kvc__onnx *m, const char *name, const int64_t *values, size_t n,
                         const int64_t *dims, int ndims) {
  Onnx__TensorProto *t = tensor(m, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, dims, ndims);
  if (!t || !(t->int64_data = alloc(m, n * sizeof *values)))
    return;
  memcpy(t->int64_data, values, n * sizeof *values);
  t->n_int64_data = n;
  push(m, &m->inits, t);
}

void kvc__onnx_const_raw(kvc__onnx *m, const char *name, int32_t elem_type, const void *data,
                         size_t bytes, const int64_t *dims, int ndims) {
  Onnx__TensorProto *t = tensor(m, name, elem_type, dims, ndims);
  if (!t || !(t->raw_data.data = alloc(m, bytes ? bytes : 1)))
    return;
  memcpy(t->raw_data.data, data, bytes);
  t->raw_data.len = bytes;
  t->has_raw_data = 1;
  push(m, &m->inits, t);
}

void kvc__onnx_const_f32(kvc__onnx *m, const char *name, float value) {
  Onnx__TensorProto *t = tensor(m, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, NULL, 0);
  if (!t || !(t->float_data = alloc(m, sizeof value)))
    return;
  t->float_data[0] = value;
  t->n_float_data = 1;
  push(m, &m->inits, t);
}

kvc_status kvc__onnx_pack(kvc__onnx *m, uint8_t **out, size_t *out_size) {
  if (m->out_of_memory)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory while building the ONNX graph");
  m->graph.n_node = m->nodes.n;
  m->graph.node = (Onnx__NodeProto **)m->nodes.items;
  m->graph.n_initializer = m->inits.n;
  m->graph.initializer = (Onnx__TensorProto **)m->inits.items;
  m->graph.n_input = m->inputs.n;
  m->graph.input = (Onnx__ValueInfoProto **)m->inputs.items;
  m->graph.n_output = m->outputs.n;
  m->graph.output = (Onnx__ValueInfoProto **)m->outputs.items;
  m->model.n_opset_import = m->opsets.n;
  m->model.opset_import = (Onnx__OperatorSetIdProto **)m->opsets.items;
  size_t size = onnx__model_proto__get_packed_size(&m->model);
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory serialising %zu bytes of ONNX", size);
  onnx__model_proto__pack(&m->model, buf);
  *out = buf;
  *out_size = size;
  return KVC_OK;
}

kvc_status kvc__onnx_write(kvc__onnx *m, const char *path) {
  uint8_t *buf = NULL;
  size_t size = 0;
  kvc_status s = kvc__onnx_pack(m, &buf, &size);
  if (s)
    return s;
  FILE *f = fopen(path, "wb");
  if (!f)
    s = kvc__fail(KVC_ERR_IO, "cannot create %s: %s", path, strerror(errno));
  else if (fwrite(buf, 1, size, f) != size)
    s = kvc__fail(KVC_ERR_IO, "cannot write %zu bytes to %s: %s", size, path, strerror(errno));
  if (f && fclose(f) != 0 && s == KVC_OK)
    s = kvc__fail(KVC_ERR_IO, "cannot write %s", path);
  free(buf);
  return s;
}
