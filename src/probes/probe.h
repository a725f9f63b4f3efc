/* probe.h: what kvcache's timing probes share (floor.c: the memory floor; attention_probe.c:
 * the attention alone): a session over a small graph built in memory, with the model's own
 * session options, tensors bound over caller memory, and medians of timed rounds. */
#ifndef KVC_PROBE_H
#define KVC_PROBE_H

#include "model.h"
#include "onnx.h"

/* A session over graph g (packed, then freed here whatever happens), made with the model's
 * provider and session options. `what` names it in errors. */
kvc_status kvc__probe_session(kvc_model *m, kvc__onnx *g, const char *what, OrtSession **out);

/* Bind `bytes` at data, of the given shape and element type, as the binding's input or
 * (output != 0) output `name`; `what` names it in errors. */
kvc_status kvc__probe_bind(OrtIoBinding *binding, int output, const char *name, const char *what,
                           OrtMemoryInfo *mem, void *data, size_t bytes, const int64_t *shape,
                           size_t rank, ONNXTensorElementDataType type);

/* ms[i] = the median of times[i * reads .. i * reads + reads - 1] (sorted in place). */
void kvc__probe_medians(double *times, int32_t n, int32_t reads, double *ms);

#endif
