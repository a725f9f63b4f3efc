/* onnx.h: build an ONNX ModelProto with protobuf-c (bindings generated from Debian's
 * onnx.proto) and serialise it. Every message and string lives in one arena owned by the
 * kvc__onnx object, so a graph is built with plain calls and freed in one go. */
#ifndef KVC_BUILD_ONNX_H
#define KVC_BUILD_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "kvcache.h"

typedef struct kvc__onnx kvc__onnx;

typedef enum kvc__attr_kind { KVC_ATTR_INT, KVC_ATTR_FLOAT, KVC_ATTR_INTS } kvc__attr_kind;
typedef struct kvc__attr {
  const char *name;
  kvc__attr_kind kind;
  int64_t i;
  float f;
  const int64_t *ints;
  size_t n_ints;
} kvc__attr;
#define KVC_ATTR_I(n, v) ((kvc__attr){.name = (n), .kind = KVC_ATTR_INT, .i = (v)})
#define KVC_ATTR_F(n, v) ((kvc__attr){.name = (n), .kind = KVC_ATTR_FLOAT, .f = (v)})
#define KVC_ATTR_INTS(n, arr, cnt)                                                                 \
  ((kvc__attr){.name = (n), .kind = KVC_ATTR_INTS, .ints = (arr), .n_ints = (cnt)})

/* A dimension of a graph input or output: a fixed value, or a symbolic name when param. */
typedef struct kvc__dim {
  const char *param;
  int64_t value;
} kvc__dim;

/* A new, empty model: opset 17 of the default domain, IR version 8. NULL when out of memory. */
kvc__onnx *kvc__onnx_new(const char *graph_name);
void kvc__onnx_free(kvc__onnx *m);

/* Also import an operator set of another domain (e.g. "com.microsoft", 1). */
void kvc__onnx_opset(kvc__onnx *m, const char *domain, int64_t version);

/* Declare a graph input or output with element type (ONNX data type) and shape. */
void kvc__onnx_input(kvc__onnx *m, const char *name, int32_t elem_type, const kvc__dim *dims,
                     int ndims);
void kvc__onnx_output(kvc__onnx *m, const char *name, int32_t elem_type, const kvc__dim *dims,
                      int ndims);

/* Add a node. inputs/outputs are arrays of names ("" for an omitted optional input).
 * domain NULL is the default domain. Returns the arena copy of outputs[0], for chaining
 * ("" when out of memory; kvc__onnx_write then reports it). */
const char *kvc__onnx_node(kvc__onnx *m, const char *op, const char *domain,
                           const char *const *inputs, int n_in, const char *const *outputs,
                           int n_out, const kvc__attr *attrs, int n_attrs);

/* The arena copy of output `index` of the node added last ("" if out of range). */
const char *kvc__onnx_last_output(const kvc__onnx *m, int index);

/* A float initializer stored in the external data file `location` at byte `offset`. */
void kvc__onnx_external(kvc__onnx *m, const char *name, const int64_t *dims, int ndims,
                        const char *location, size_t offset, size_t bytes);

/* Small constant initializers kept inside the graph (ndims 0 is a scalar). */
void kvc__onnx_const_i64(kvc__onnx *m, const char *name, const int64_t *values, size_t n,
                         const int64_t *dims, int ndims);
void kvc__onnx_const_f32(kvc__onnx *m, const char *name, float value);
/* A constant initializer of `bytes` bytes of elem_type values (little-endian), kept inside
 * the graph. */
void kvc__onnx_const_raw(kvc__onnx *m, const char *name, int32_t elem_type, const void *data,
                         size_t bytes, const int64_t *dims, int ndims);

/* Serialise into a malloc'd buffer (*out, *size; the caller frees it). */
kvc_status kvc__onnx_pack(kvc__onnx *m, uint8_t **out, size_t *size);

/* Serialise to `path` (written as given: the caller handles temporary names).
 * Fails with KVC_ERR_NO_MEMORY if any earlier call ran out of memory, or KVC_ERR_IO. */
kvc_status kvc__onnx_write(kvc__onnx *m, const char *path);

#endif
