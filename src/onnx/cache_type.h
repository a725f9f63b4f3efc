/* cache_type.h: a graph's cache tensors retyped as the graph is loaded (kvc_kv_type). */
#ifndef KVC_CACHE_TYPE_H
#define KVC_CACHE_TYPE_H

#include <stddef.h>
#include <stdint.h>

#include "kvcache.h"

/* The graph file `onnx_path` with every past and present tensor of its ai.kvcache.Attention
 * nodes declared of ONNX element type `type` (FLOAT, FLOAT16, or INT8: an 8-bit cache, its
 * last dimension head size + 4), packed into *bytes (*size;
 * the caller frees it with kvc__free): kvcache's operator is registered for either type, and
 * ONNX Runtime picks the registration by the tensors' type. *bytes is NULL when they already
 * are of that type. KVC_ERR_UNSUPPORTED (naming the node) when the graph has no such node, or
 * when a cache tensor is not a graph input or output that only those nodes read or write:
 * then nothing else in the graph may rely on its type. KVC_ERR_MODEL for a file that does not
 * parse. */
kvc_status kvc__graph_retype_cache(const char *onnx_path, int32_t type, uint8_t **bytes,
                                   size_t *size);

/* The same from a graph's bytes (`name` for messages). */
kvc_status kvc__graph_retype_cache_bytes(const void *graph, size_t graph_size, const char *name,
                                         int32_t type, uint8_t **bytes, size_t *size);

#endif
