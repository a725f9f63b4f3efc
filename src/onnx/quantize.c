/* quantize.c: kvc_quantize(): rewrite a decoder's MatMuls whose weights are constants into
 * com.microsoft.MatMulNBits with block-quantised weights (quant.c), in any naming or layout
 * kvcache opens. The graph is read and rewritten with protobuf-c; every initializer of the
 * result goes to OUT/model.onnx.data; the other files of the directory are copied. The output
 * directory is written under a temporary name and renamed into place: on any failure nothing
 * is left behind.
 *
 * What is quantised: MatMul nodes whose B is a float (K, N) initializer or a Concat along
 * axis 1 of such initializers (kvcache's packed q/k/v), except the one producing the graph
 * output "logits" unless asked. Embeddings (Gather), norms and biases stay float. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "ops.h"
#include "error.h"
#include "onnx/onnx.pb-c.h"
#include "path.h"
#include "quant.h"

kvc_quantize_params kvc_quantize_default_params(void) {
  return (kvc_quantize_params){
      .bits = 4, .block_size = 32, .accuracy_level = -1, .include_lm_head = 1};
}

/* A mapped external data file. */
typedef struct mapped {
  char name[512];
  const uint8_t *bytes;
  size_t size;
} mapped;

typedef struct job {
  const char *in_dir;
  const char *graph; /* in_dir/model.onnx */
  kvc_quantize_params p;
  Onnx__ModelProto *model;
  Onnx__GraphProto *g;
  mapped files[8];
  int n_files;
  /* data of the initializers made here, freed at the end */
  void **owned;
  size_t n_owned, cap_owned;
  kvc_quantize_report report;
} job;

static char *copy_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n); /* protobuf-c frees the message's strings with free() */
  if (d)
    memcpy(d, s, n);
  return d;
}

static kvc_status oom(void) {
  return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory quantising");
}

static kvc_status own(job *j, void *p) {
  if (j->n_owned == j->cap_owned) {
    size_t cap = j->cap_owned ? 2 * j->cap_owned : 32;
    void **grown = kvc__realloc(j->owned, cap * sizeof *grown);
    if (!grown)
      return oom();
    j->owned = grown, j->cap_owned = cap;
  }
  j->owned[j->n_owned++] = p;
  return KVC_OK;
}

/* Zeroed bytes that the job frees at its end; NULL when out of memory. */
static void *owned_calloc(job *j, size_t n) {
  void *p = kvc__calloc(n ? n : 1, 1);
  if (p && own(j, p)) {
    kvc__free(p);
    p = NULL;
  }
  return p;
}

/* s equals lit; NULL (a field the file leaves out) equals nothing. */
static int is(const char *s, const char *lit) {
  return s && lit && !strcmp(s, lit);
}

static int is_owned(const job *j, const void *p) {
  for (size_t k = 0; p && k < j->n_owned; k++)
    if (j->owned[k] == p)
      return 1;
  return 0;
}

/* Where t's data lives: ext (n entries, taken over) in an external file, or (NULL) in the
 * graph. The old entries go; the bytes themselves are freed with the message. */
static void set_location(Onnx__TensorProto *t, Onnx__StringStringEntryProto **ext, size_t n) {
  for (size_t k = 0; k < t->n_external_data; k++)
    onnx__string_string_entry_proto__free_unpacked(t->external_data[k], NULL);
  free(t->external_data);
  t->external_data = ext;
  t->n_external_data = n;
  t->has_data_location = ext != NULL;
  t->data_location = ext ? ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
                         : ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
}

static const char *entry(const Onnx__TensorProto *t, const char *key) {
  for (size_t i = 0; i < t->n_external_data; i++)
    if (is(t->external_data[i]->key, key))
      return t->external_data[i]->value;
  return NULL;
}

/* The bytes of an initializer, wherever they are (raw, float_data, or an external file). */
static kvc_status data_of(job *j, const Onnx__TensorProto *t, const uint8_t **bytes, size_t *size) {
  if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
    const char *location = entry(t, "location"), *off = entry(t, "offset"),
               *len = entry(t, "length");
    if (!location || strchr(location, '/'))
      return kvc__fail(KVC_ERR_MODEL,
                       "initializer '%s': external data location %s%s%s: expected a file name "
                       "in the model directory",
                       t->name ? t->name : "(unnamed)", location ? "\"" : "",
                       location ? location : "missing", location ? "\"" : "");
    int f = 0;
    while (f < j->n_files && strcmp(j->files[f].name, location))
      f++;
    if (f == j->n_files) {
      if (f == 8)
        return kvc__fail(KVC_ERR_UNSUPPORTED, "more than 8 external data files");
      char path[4096];
      kvc_status s = kvc__path_inside(j->in_dir, j->graph, location, "external data file");
      if (!s)
        s = kvc__path_join(path, sizeof path, j->in_dir, location);
      if (!s)
        s = kvc__regular_file(path);
      if (s)
        return s;
      if ((s = kvc__file_map(path, &j->files[f].bytes, &j->files[f].size)))
        return s;
      snprintf(j->files[f].name, sizeof j->files[f].name, "%s", location);
      j->n_files++;
    }
    const size_t offset = off ? strtoull(off, NULL, 10) : 0;
    size_t length = len ? strtoull(len, NULL, 10) : j->files[f].size - offset;
    if (offset > j->files[f].size || length > j->files[f].size - offset)
      return kvc__fail(KVC_ERR_MODEL, "initializer '%s': bytes %zu..%zu are beyond %s (%zu bytes)",
                       t->name ? t->name : "(unnamed)", offset, offset + length, location,
                       j->files[f].size);
    *bytes = j->files[f].bytes + offset;
    *size = length;
    return KVC_OK;
  }
  if (t->has_raw_data) {
    *bytes = t->raw_data.data;
    *size = t->raw_data.len;
  } else if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
    *bytes = (const uint8_t *)t->float_data;
    *size = t->n_float_data * sizeof(float);
  } else if (t->n_int64_data) {
    *bytes = (const uint8_t *)t->int64_data;
    *size = t->n_int64_data * sizeof(int64_t);
  } else if (t->n_int32_data) {
    *bytes = (const uint8_t *)t->int32_data;
    *size = t->n_int32_data * sizeof(int32_t);
  } else {
    *bytes = NULL;
    *size = 0;
  }
  return KVC_OK;
}

static Onnx__TensorProto *initializer(const job *j, const char *name) {
  for (size_t i = 0; i < j->g->n_initializer; i++)
    if (is(j->g->initializer[i]->name, name))
      return j->g->initializer[i];
  return NULL;
}

static Onnx__NodeProto *producer(const job *j, const char *name) {
  for (size_t i = 0; i < j->g->n_node; i++)
    for (size_t o = 0; o < j->g->node[i]->n_output; o++)
      if (is(j->g->node[i]->output[o], name))
        return j->g->node[i];
  return NULL;
}

static int is_matrix(const Onnx__TensorProto *t) {
  return t && t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && t->n_dims == 2 &&
         t->dims[0] > 0 && t->dims[1] > 0;
}

static int64_t int_attribute(const Onnx__NodeProto *n, const char *name, int64_t otherwise) {
  for (size_t a = 0; a < n->n_attribute; a++)
    if (is(n->attribute[a]->name, name))
      return n->attribute[a]->i;
  return otherwise;
}

/* The (K, N) weight B of a MatMul, gathered from its initializer or from a Concat of them
 * along axis 1; *w is kvc__malloc'd. 0 when B is not such a constant. */
static kvc_status weight_of(job *j, const char *b, float **w, int64_t *k, int64_t *n) {
  *w = NULL;
  const Onnx__TensorProto *parts[16] = {0};
  int n_parts = 0;
  const Onnx__TensorProto *t = initializer(j, b);
  const Onnx__NodeProto *concat = t ? NULL : producer(j, b);
  if (is_matrix(t)) {
    parts[n_parts++] = t;
  } else if (concat && is(concat->op_type, "Concat") && concat->n_input <= 16 &&
             (int_attribute(concat, "axis", 0) == 1 || int_attribute(concat, "axis", 0) == -1)) {
    for (size_t i = 0; i < concat->n_input; i++) {
      const Onnx__TensorProto *p = initializer(j, concat->input[i]);
      if (!is_matrix(p) || (n_parts && p->dims[0] != parts[0]->dims[0]))
        return KVC_OK;
      parts[n_parts++] = p;
    }
  } else {
    return KVC_OK;
  }
  if (n_parts == 0)
    return KVC_OK;
  /* sizes first, then the bytes each part holds, then the one allocation: a shape that
   * overflows or names bytes the file does not have is refused before anything is made */
  const uint8_t *bytes[16];
  *k = parts[0]->dims[0];
  *n = 0;
  for (int i = 0; i < n_parts; i++) {
    const int64_t cols = parts[i]->dims[1];
    if (*k > INT32_MAX || cols > INT32_MAX || (*n += cols) > INT32_MAX)
      return kvc__fail(KVC_ERR_MODEL,
                       "initializer '%s' of shape (%lld, %lld): a MatMul weight of at most "
                       "2^31 - 1 rows and columns (all parts together) was expected",
                       parts[i]->name, (long long)*k, (long long)cols);
    size_t size;
    kvc_status s = data_of(j, parts[i], &bytes[i], &size);
    if (!s && size != (size_t)(*k * cols) * sizeof(float))
      s = kvc__fail(KVC_ERR_MODEL,
                    "initializer '%s' has %zu bytes; its shape (%lld, %lld) needs %llu",
                    parts[i]->name, size, (long long)*k, (long long)cols,
                    (unsigned long long)(*k * cols) * sizeof(float));
    if (s)
      return s;
  }
  float *out = kvc__malloc((size_t)(*k * *n) * sizeof *out);
  if (!out)
    return oom();
  int64_t col = 0;
  for (int i = 0; i < n_parts; i++) {
    const int64_t cols = parts[i]->dims[1];
    for (int64_t r = 0; r < *k; r++)
      memcpy(out + r * *n + col, bytes[i] + (size_t)(r * cols) * sizeof(float),
             (size_t)cols * sizeof(float));
    col += cols;
  }
  for (int64_t i = 0; i < *k * *n; i++) /* a block's scale cannot hold these */
    if (!isfinite(out[i])) {
      const char *what = isnan(out[i]) ? "NaN" : "an infinity";
      kvc__free(out);
      return kvc__fail(KVC_ERR_MODEL,
                       "MatMul weight '%s' holds %s at row %lld, column %lld: it cannot be "
                       "quantised",
                       b, what, (long long)(i / *n), (long long)(i % *n));
    }
  *w = out;
  return KVC_OK;
}

/* A new initializer `name` of `type` and dims over `bytes` (owned by the job). */
static kvc_status add_initializer(job *j, const char *name, int type, const int64_t *dims,
                                  int n_dims, void *bytes, size_t size) {
  Onnx__TensorProto *t = malloc(sizeof *t);
  Onnx__TensorProto **list = realloc(j->g->initializer, (j->g->n_initializer + 1) * sizeof *list);
  if (list)
    j->g->initializer = list;
  if (!t || !list) {
    free(t);
    return oom();
  }
  onnx__tensor_proto__init(t);
  t->name = copy_str(name);
  t->dims = malloc((size_t)n_dims * sizeof *t->dims);
  if (!t->name || !t->dims) {
    free(t->name), free(t->dims), free(t);
    return oom();
  }
  memcpy(t->dims, dims, (size_t)n_dims * sizeof *dims);
  t->n_dims = (size_t)n_dims;
  t->has_data_type = 1;
  t->data_type = type;
  /* kept as raw data until written out; the bytes are the job's */
  t->has_raw_data = 1;
  t->raw_data.data = bytes;
  t->raw_data.len = size;
  j->g->initializer[j->g->n_initializer++] = t;
  return KVC_OK;
}

static Onnx__AttributeProto *int_attr(const char *name, int64_t value) {
  Onnx__AttributeProto *a = malloc(sizeof *a);
  if (!a)
    return NULL;
  onnx__attribute_proto__init(a);
  if (!(a->name = copy_str(name))) {
    free(a);
    return NULL;
  }
  a->has_type = 1;
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  a->has_i = 1;
  a->i = value;
  return a;
}

/* Int8 activations run on kvcache's MatMulNBits, whose result does not depend on the number
 * of rows or the CPU (matmul_kernel.h): ONNX Runtime's own int8 kernels for one row and for
 * many differ on some CPUs (AVX2 without VNNI), which breaks an exact cache there. Float
 * activations run on ONNX Runtime's. */
static const char *matmul_domain(const job *j) {
  return j->p.accuracy_level == 4 ? KVC_OP_DOMAIN : "com.microsoft";
}

/* Replace MatMul node m (B = w, K x N) by MatMulNBits over new initializers. */
static kvc_status rewrite(job *j, Onnx__NodeProto *m, const float *w, int64_t k, int64_t n,
                          int bits) {
  const kvc__qshape q = {k, n, bits, j->p.block_size, j->p.symmetric};
  const size_t wb = kvc__q_weight_bytes(&q), sc = kvc__q_scale_count(&q),
               zb = kvc__q_zero_bytes(&q);
  uint8_t *b = owned_calloc(j, wb), *zp = zb ? owned_calloc(j, zb) : NULL;
  float *scales = owned_calloc(j, sc * sizeof(float));
  kvc_status s = !b || !scales || (zb && !zp) ? oom() : KVC_OK;
  if (s)
    return s;
  kvc__quantize(&q, w, b, scales, zp);
  char names[3][512];
  static const char *const suffix[3] = {"qweight", "scales", "zero_points"};
  for (int i = 0; i < 3; i++)
    snprintf(names[i], sizeof names[i], "%s.%s", m->output[0], suffix[i]);
  const int64_t blocks = kvc__q_blocks(&q);
  const int64_t bdims[3] = {n, blocks, j->p.block_size * bits / 8}, sdims[1] = {(int64_t)sc},
                zdims[1] = {(int64_t)zb};
  s = add_initializer(j, names[0], ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, bdims, 3, b, wb);
  if (!s)
    s = add_initializer(j, names[1], ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, sdims, 1, scales,
                        sc * sizeof *scales);
  if (!s && zp)
    s = add_initializer(j, names[2], ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, zdims, 1, zp, zb);
  char **inputs = s ? NULL : malloc(4 * sizeof *inputs);
  Onnx__AttributeProto **attrs = s ? NULL : malloc(5 * sizeof *attrs);
  if (!s && (!inputs || !attrs))
    s = oom();
  if (s) {
    free(inputs), free(attrs);
    return s;
  }
  inputs[0] = m->input[0];
  inputs[1] = copy_str(names[0]), inputs[2] = copy_str(names[1]),
  inputs[3] = zp ? copy_str(names[2]) : NULL;
  attrs[0] = int_attr("K", k), attrs[1] = int_attr("N", n), attrs[2] = int_attr("bits", q.bits);
  attrs[3] = int_attr("block_size", q.block);
  attrs[4] = int_attr("accuracy_level", j->p.accuracy_level);
  int bad = !inputs[1] || !inputs[2] || (zp && !inputs[3]);
  for (int i = 0; i < 5; i++)
    bad |= !attrs[i];
  char *op = copy_str("MatMulNBits"), *domain = copy_str(matmul_domain(j));
  if (bad || !op || !domain) {
    for (int i = 1; i < 4; i++)
      free(inputs[i]);
    for (int i = 0; i < 5; i++)
      if (attrs[i])
        onnx__attribute_proto__free_unpacked(attrs[i], NULL);
    free(inputs), free(attrs), free(op), free(domain);
    return oom();
  }
  for (size_t i = 1; i < m->n_input; i++)
    free(m->input[i]);
  free(m->input);
  m->input = inputs;
  m->n_input = zp ? 4 : 3;
  for (size_t i = 0; i < m->n_attribute; i++)
    onnx__attribute_proto__free_unpacked(m->attribute[i], NULL);
  free(m->attribute);
  m->attribute = attrs;
  m->n_attribute = 5;
  free(m->op_type), free(m->domain);
  m->op_type = op;
  m->domain = domain;
  return KVC_OK;
}

static int used(const job *j, const char *name) {
  for (size_t i = 0; i < j->g->n_node; i++)
    for (size_t k = 0; k < j->g->node[i]->n_input; k++)
      if (is(j->g->node[i]->input[k], name))
        return 1;
  for (size_t i = 0; i < j->g->n_output; i++)
    if (is(j->g->output[i]->name, name))
      return 1;
  return 0;
}

/* Drop nodes whose outputs nobody reads (the Concats of packed weights), then initializers
 * nobody reads (the float weights). */
static void prune(job *j) {
  Onnx__GraphProto *g = j->g;
  for (int again = 1; again;) {
    again = 0;
    for (size_t i = 0; i < g->n_node; i++) {
      Onnx__NodeProto *node = g->node[i];
      int live = 0;
      for (size_t o = 0; o < node->n_output && !live; o++)
        live = !*node->output[o] || used(j, node->output[o]);
      if (live || !is(node->op_type, "Concat"))
        continue;
      onnx__node_proto__free_unpacked(node, NULL);
      memmove(g->node + i, g->node + i + 1, (g->n_node - i - 1) * sizeof *g->node);
      g->n_node--, i--, again = 1;
    }
  }
  for (size_t i = 0; i < g->n_initializer; i++) {
    if (used(j, g->initializer[i]->name))
      continue;
    Onnx__TensorProto *t = g->initializer[i];
    if (is_owned(j, t->raw_data.data))
      t->raw_data.data = NULL, t->has_raw_data = 0; /* the job frees it */
    onnx__tensor_proto__free_unpacked(t, NULL);
    memmove(g->initializer + i, g->initializer + i + 1,
            (g->n_initializer - i - 1) * sizeof *g->initializer);
    g->n_initializer--, i--;
  }
}

/* Whether the graph's attention is kvcache's operator. */
static int own_attention(const job *j) {
  for (size_t i = 0; i < j->g->n_node; i++)
    if (is(j->g->node[i]->op_type, KVC_OP_ATTENTION) && is(j->g->node[i]->domain, KVC_OP_DOMAIN))
      return 1;
  return 0;
}

static kvc_status quantize_graph(job *j) {
  const int chosen = j->p.accuracy_level < 0;
  if (chosen) /* int8 activations only where the cache stays exact with them */
    j->p.accuracy_level = own_attention(j) ? 4 : 0;
  j->report.accuracy_level = j->p.accuracy_level;
  const int int8 = j->p.accuracy_level == 4;
  /* never slower than the float model: ONNX Runtime's 8-bit kernel for float activations
   * is (6.6x slower than float on the default GQA model, 9.5x at 243 M parameters) */
  if (chosen && !int8 && j->p.bits == 8)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "bits = 8: on %s, whose attention is not kvcache's operator, 8-bit "
                     "weights keep the cache exact only with float activations (accuracy_level "
                     "0), and ONNX Runtime's kernel for those is several times slower than the "
                     "float model; use 4 bits, or accuracy_level 4 (int8 activations: fast, but "
                     "cached logits then differ from a recompute by ~1e-2), or a graph with "
                     "kvcache's attention (build-model --attention kvcache), or ask for "
                     "accuracy_level 0 to have it anyway",
                     j->in_dir);
  /* the LM head: 8 bits by default where the products are int8 (fast and next to exact),
   * float where they are not (the same 8-bit kernel) */
  int head_bits = j->p.include_lm_head ? j->p.lm_head_bits : -1;
  if (head_bits == 0)
    head_bits = int8 ? 8 : -1;
  const char *logits_producer = NULL;
  for (size_t i = 0; i < j->g->n_node && !logits_producer; i++)
    for (size_t o = 0; o < j->g->node[i]->n_output; o++)
      if (is(j->g->node[i]->output[o], "logits"))
        logits_producer = j->g->node[i]->output[o];
  for (size_t i = 0; i < j->g->n_node; i++) {
    Onnx__NodeProto *m = j->g->node[i];
    if (!is(m->op_type, "MatMul") || (m->domain && *m->domain) || m->n_input != 2 ||
        m->n_output != 1)
      continue;
    const int lm_head = logits_producer && is(m->output[0], "logits");
    if (lm_head && head_bits < 0) {
      j->report.skipped++;
      continue;
    }
    float *w = NULL;
    int64_t k = 0, n = 0;
    kvc_status s = weight_of(j, m->input[1], &w, &k, &n);
    if (!s && w)
      s = rewrite(j, m, w, k, n, lm_head ? head_bits : j->p.bits);
    if (!s && w)
      j->report.quantized++;
    else if (!s)
      j->report.skipped++;
    if (!s && w && lm_head)
      j->report.lm_head_bits = head_bits;
    kvc__free(w);
    if (s)
      return s;
  }
  if (!j->report.quantized)
    return kvc__fail(KVC_ERR_MODEL,
                     "no MatMul in the graph has constant float weights (a (K, N) initializer, "
                     "or a Concat of them): nothing kvcache can quantise");
  prune(j);
  /* the domain of the MatMulNBits written must be imported */
  Onnx__ModelProto *model = j->model;
  for (size_t i = 0; i < model->n_opset_import; i++)
    if (is(model->opset_import[i]->domain, matmul_domain(j)))
      return KVC_OK;
  Onnx__OperatorSetIdProto *op = malloc(sizeof *op);
  Onnx__OperatorSetIdProto **list =
      realloc(model->opset_import, (model->n_opset_import + 1) * sizeof *list);
  if (list)
    model->opset_import = list;
  if (!op || !list) {
    free(op);
    return oom();
  }
  onnx__operator_set_id_proto__init(op);
  op->domain = copy_str(matmul_domain(j));
  op->has_version = 1;
  op->version = 1;
  model->opset_import[model->n_opset_import++] = op;
  return op->domain ? KVC_OK : oom();
}

static Onnx__StringStringEntryProto *new_entry(const char *key, const char *value) {
  Onnx__StringStringEntryProto *e = malloc(sizeof *e);
  if (!e)
    return NULL;
  onnx__string_string_entry_proto__init(e);
  e->key = copy_str(key);
  e->value = copy_str(value);
  if (!e->key || !e->value) {
    onnx__string_string_entry_proto__free_unpacked(e, NULL);
    return NULL;
  }
  return e;
}

/* Every initializer's bytes into DIR/model.onnx.data (64-byte aligned), the graph pointing
 * there, then the graph into DIR/model.onnx. */
static kvc_status write_model(job *j, const char *dir) {
  char data_path[4096], graph_path[4096];
  kvc_status s = kvc__path_join(data_path, sizeof data_path, dir, "model.onnx.data");
  if (!s)
    s = kvc__path_join(graph_path, sizeof graph_path, dir, "model.onnx");
  FILE *f = s ? NULL : fopen(data_path, "wb");
  if (!s && !f)
    s = kvc__fail(KVC_ERR_IO, "cannot create %s: %s", data_path, strerror(errno));
  size_t offset = 0;
  static const uint8_t zeros[64];
  for (size_t i = 0; !s && i < j->g->n_initializer; i++) {
    Onnx__TensorProto *t = j->g->initializer[i];
    const uint8_t *bytes;
    size_t size;
    if ((s = data_of(j, t, &bytes, &size)))
      break;
    if (size < 1024 || t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64) {
      /* small constants (shapes, axes) stay in the graph, where ONNX Runtime's shape
       * inference can read them */
      if (!t->has_raw_data || !t->raw_data.data) {
        uint8_t *copy = owned_calloc(j, size);
        if (!copy) {
          s = oom();
          break;
        }
        if (size) /* an empty tensor has no bytes to point at */
          memcpy(copy, bytes, size);
        set_location(t, NULL, 0);
        t->has_raw_data = 1;
        t->raw_data.data = copy; /* the job frees it; unhooked before the message is freed */
        t->raw_data.len = size;
        t->n_float_data = t->n_int64_data = t->n_int32_data = 0;
      }
      continue;
    }
    const size_t pad = (64 - offset % 64) % 64;
    if ((pad && fwrite(zeros, 1, pad, f) != pad) || (size && fwrite(bytes, 1, size, f) != size)) {
      s = kvc__fail(KVC_ERR_IO, "cannot write %s: %s", data_path, strerror(errno));
      break;
    }
    offset += pad;
    char off[32], len[32];
    snprintf(off, sizeof off, "%zu", offset);
    snprintf(len, sizeof len, "%zu", size);
    Onnx__StringStringEntryProto **ext = malloc(3 * sizeof *ext);
    if (ext) {
      ext[0] = new_entry("location", "model.onnx.data");
      ext[1] = new_entry("offset", off);
      ext[2] = new_entry("length", len);
    }
    if (!ext || !ext[0] || !ext[1] || !ext[2]) {
      for (int k = 0; ext && k < 3; k++)
        if (ext[k])
          onnx__string_string_entry_proto__free_unpacked(ext[k], NULL);
      free(ext);
      s = oom();
      break;
    }
    offset += size;
    set_location(t, ext, 3);
    if (is_owned(j, t->raw_data.data))
      t->raw_data.data = NULL;
    t->has_raw_data = 0;
    t->n_float_data = t->n_int64_data = t->n_int32_data = 0;
  }
  if (f && fclose(f) != 0 && !s)
    s = kvc__fail(KVC_ERR_IO, "cannot write %s: %s", data_path, strerror(errno));
  if (s)
    return s;
  const size_t size = onnx__model_proto__get_packed_size(j->model);
  uint8_t *packed = kvc__malloc(size ? size : 1);
  if (!packed)
    return oom();
  onnx__model_proto__pack(j->model, packed);
  f = fopen(graph_path, "wb");
  if (!f || fwrite(packed, 1, size, f) != size)
    s = kvc__fail(KVC_ERR_IO, "cannot write %s: %s", graph_path, strerror(errno));
  if (f && fclose(f) != 0 && !s)
    s = kvc__fail(KVC_ERR_IO, "cannot write %s: %s", graph_path, strerror(errno));
  kvc__free(packed);
  j->report.bytes_after = (int64_t)(offset + size);
  return s;
}

/* The directory's other files (configs, tokenizer): everything but .onnx files and the
 * external data they name; a link that leads out of the directory is refused, not followed. */
static kvc_status copy_others(const job *j, const char *in, const char *out) {
  DIR *d = opendir(in);
  if (!d)
    return kvc__fail(KVC_ERR_IO, "cannot read directory %s: %s", in, strerror(errno));
  kvc_status s = KVC_OK;
  for (struct dirent *e; !s && (e = readdir(d));) {
    const size_t n = strlen(e->d_name);
    int skip = e->d_name[0] == '.' || (n > 5 && !strcmp(e->d_name + n - 5, ".onnx"));
    for (int f = 0; f < j->n_files && !skip; f++)
      skip = !strcmp(e->d_name, j->files[f].name);
    char from[4096], to[4096];
    struct stat st;
    if (skip || kvc__path_join(from, sizeof from, in, e->d_name) ||
        kvc__path_join(to, sizeof to, out, e->d_name) || stat(from, &st) != 0 ||
        !S_ISREG(st.st_mode))
      continue;
    /* a link out of the model: not copied */
    s = kvc__path_inside(in, j->graph, e->d_name, "the file");
    if (!s)
      s = kvc__file_copy(from, to);
  }
  closedir(d);
  return s;
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));) {
    char path[4096];
    if (e->d_name[0] != '.' && !kvc__path_join(path, sizeof path, dir, e->d_name))
      remove(path);
  }
  if (d)
    closedir(d);
  rmdir(dir);
}

kvc_status kvc_quantize(const char *in_dir, const char *out_dir, const kvc_quantize_params *params,
                        kvc_quantize_report *report) {
  if (report)
    memset(report, 0, sizeof *report);
  if (!in_dir || !out_dir)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_quantize: %s is NULL",
                     in_dir ? "out_dir" : "in_dir");
  job j = {.in_dir = in_dir, .p = params ? *params : kvc_quantize_default_params()};
  const int b = j.p.block_size;
  if (j.p.bits != 4 && j.p.bits != 8)
    return kvc__fail(KVC_ERR_INVALID_ARG, "bits = %d: expected 4 or 8", j.p.bits);
  if (j.p.lm_head_bits != 0 && j.p.lm_head_bits != 4 && j.p.lm_head_bits != 8)
    return kvc__fail(KVC_ERR_INVALID_ARG, "lm_head_bits = %d: expected 4, 8 or 0 (the default)",
                     j.p.lm_head_bits);
  if (b < 16 || b > 256 || (b & (b - 1)))
    return kvc__fail(KVC_ERR_INVALID_ARG, "block_size = %d: expected a power of two in 16..256", b);
  if (j.p.accuracy_level < -1 || j.p.accuracy_level > 4)
    return kvc__fail(KVC_ERR_INVALID_ARG, "accuracy_level = %d: expected 0..4 (or -1: automatic)",
                     j.p.accuracy_level);
  struct stat st;
  if (stat(out_dir, &st) == 0)
    return kvc__fail(KVC_ERR_IO, "%s exists: kvcache quantize writes a new directory", out_dir);
  char graph[4096], tmp[4096];
  kvc_status s = kvc__path_join(graph, sizeof graph, in_dir, "model.onnx");
  j.graph = graph;
  char *bytes = NULL;
  size_t size = 0;
  if (!s)
    s = kvc__file_read(graph, (size_t)1 << 31, &bytes, &size);
  if (!s && !(j.model = onnx__model_proto__unpack(NULL, size, (const uint8_t *)bytes)))
    s = kvc__fail(KVC_ERR_MODEL, "%s is not an ONNX model (protobuf ModelProto)", graph);
  kvc__free(bytes);
  if (!s && !(j.g = j.model->graph))
    s = kvc__fail(KVC_ERR_MODEL, "%s has no graph", graph);
  if (!s) {
    for (size_t i = 0; i < j.g->n_initializer; i++) {
      const uint8_t *data;
      size_t n;
      if (!data_of(&j, j.g->initializer[i], &data, &n))
        j.report.bytes_before += (int64_t)n;
    }
    s = quantize_graph(&j);
  }
  int made = 0;
  if (!s) { /* beside out_dir, named without its trailing slashes ("out/q/" is out/q) */
    size_t len = strlen(out_dir);
    while (len > 1 && out_dir[len - 1] == '/')
      len--;
    int n = snprintf(tmp, sizeof tmp, "%.*s.tmp.%ld", (int)len, out_dir, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
      s = kvc__fail(KVC_ERR_INVALID_ARG, "output path %s is too long", out_dir);
    else if (mkdir(tmp, 0777) != 0)
      s = kvc__fail(KVC_ERR_IO, "cannot create directory %s: %s", tmp, strerror(errno));
    else
      made = 1;
  }
  if (!s)
    s = write_model(&j, tmp);
  if (!s)
    s = copy_others(&j, in_dir, tmp);
  if (!s && rename(tmp, out_dir) != 0)
    s = kvc__fail(KVC_ERR_IO, "cannot rename %s to %s: %s", tmp, out_dir, strerror(errno));
  if (s && made)
    remove_dir(tmp);
  if (j.model) {
    /* initializers made here point at the job's bytes: not protobuf-c's to free */
    for (size_t i = 0; j.g && i < j.g->n_initializer; i++)
      if (is_owned(&j, j.g->initializer[i]->raw_data.data))
        j.g->initializer[i]->raw_data.data = NULL;
    onnx__model_proto__free_unpacked(j.model, NULL);
  }
  for (size_t k = 0; k < j.n_owned; k++)
    kvc__free(j.owned[k]);
  kvc__free(j.owned);
  for (int f = 0; f < j.n_files; f++)
    kvc__file_unmap(j.files[f].bytes, j.files[f].size);
  if (report && !s)
    *report = j.report;
  return s;
}
