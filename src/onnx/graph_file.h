/* graph_file.h: what kvcache reads from a graph's ONNX file itself, before ONNX Runtime
 * loads it: the positions the graph can address, and that its external weights are files. */
#ifndef KVC_GRAPH_FILE_H
#define KVC_GRAPH_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "kvcache.h"

enum { KVC_MAX_WEIGHT_FILES = 16 };

typedef struct kvc__graph_file {
  /* the fewest rows among what the graph indexes by position: a learned position table
   * (an initializer or Constant gathered by the input position_ids) and the cos/sin caches
   * of a rotary operator (com.microsoft GroupQueryAttention or ai.kvcache Attention with
   * do_rotary, RotaryEmbedding of either domain); 0 when the graph states none */
  int32_t positions;
  char positions_from[512]; /* the tensor and node that set it, for messages */
  /* com.microsoft.GroupQueryAttention nodes, and how many of them take seqlens_k and
   * total_sequence_length computed from the input attention_mask (onnxruntime-genai's
   * builder's layout: such a graph can write its cache in place, as one that takes them as
   * inputs can) */
  int gqa_nodes, gqa_lengths_from_mask;
  int own_attention_nodes;  /* ai.kvcache.Attention (kvcache's operator) among gqa_nodes */
  int attention_heads;      /* num_heads of the first of them; 0 when there is none */
  int head_size;            /* the head size its projections imply; 0 when unknown */
  char head_size_from[160]; /* that node, for messages */
  int matmuls, quantized_matmuls, weight_bits; /* MatMul + MatMulNBits; bits, 32 if none */
  int64_t quantized_macs;                      /* sum of the MatMulNBits' K x N */
  int own_matmuls;                             /* of the MatMulNBits, kvcache's (ai.kvcache) */
  int weight_accuracy_level; /* MatMulNBits' accuracy_level (the largest); -1 if none */
  /* bytes of the initializers Gather reads rows of (embeddings, learned position tables): a
   * decode step reads a row of each, not the whole table */
  int64_t lookup_bytes;
  /* the external data files its initializers name (locations relative to the graph's
   * directory, each inside it), once each, in the order first named: the weights ONNX
   * Runtime loads beside the graph file */
  char weight_files[KVC_MAX_WEIGHT_FILES][256];
  int n_weight_files;
} kvc__graph_file;

/* Read `onnx_path` (whose external weights live in `dir`). Every external weights file it
 * names must stay inside the model (kvc__path_inside: dir, or the real graph's directory;
 * checked before anything looks at the file)
 * and be a regular file: KVC_ERR_IO naming it otherwise (ONNX Runtime would wait forever on
 * a FIFO); at most KVC_MAX_WEIGHT_FILES of them (KVC_ERR_UNSUPPORTED). A file that does not parse
 * gives KVC_OK with nothing found: ONNX Runtime, which loads it next, is the judge of that.
 * KVC_ERR_IO reading it. */
kvc_status kvc__graph_file_read(const char *onnx_path, const char *dir, kvc__graph_file *out);

/* The same from the file's bytes (onnx_path: NULL when there is no file). */
kvc_status kvc__graph_file_parse(const void *bytes, size_t size, const char *dir,
                                 const char *onnx_path, kvc__graph_file *out);

#endif
