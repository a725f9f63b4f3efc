/* graph.h: the builder's decoders as ONNX graphs (opset 17; com.microsoft ops for GQA). */
#ifndef KVC_BUILD_GRAPH_H
#define KVC_BUILD_GRAPH_H

#include "kvcache.h"
#include "layout.h"
#include "onnx.h"

/* Add the decoder's inputs, outputs, initializers (external, in `data_file`) and nodes. */
void kvc__graph_decoder(kvc__onnx *m, const kvc__arch *a, kvc_naming naming,
                        kvc_attention attention, kvc_layout layout, const kvc__tensor_spec *specs,
                        const char *data_file);

#endif
