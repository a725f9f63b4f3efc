/* positions.h: how many positions a graph can address, read from its ONNX file. */
#ifndef KVC_POSITIONS_H
#define KVC_POSITIONS_H

#include <stddef.h>
#include <stdint.h>

#include "kvcache.h"

/* *rows = the fewest rows among what the graph indexes by position: a learned position
 * table (an initializer or Constant gathered by the input position_ids) and the cos/sin
 * caches of a rotary operator (com.microsoft GroupQueryAttention with do_rotary,
 * RotaryEmbedding of either domain). 0 when the graph states none, or when the file does
 * not parse (ONNX Runtime, which loaded it, is then the judge). `what` receives the
 * tensor that set the limit, for messages. KVC_ERR_IO or KVC_ERR_NO_MEMORY reading it. */
kvc_status kvc__graph_positions(const char *onnx_path, int32_t *rows, char *what, size_t cap);

#endif
