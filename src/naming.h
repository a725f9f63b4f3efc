/* naming.h: the two I/O naming conventions of a decoder graph (README, "Model
 * directories"). */
#ifndef KVC_NAMING_H
#define KVC_NAMING_H

#include <stddef.h>

#include "kvcache.h"

/* An optional int64 scalar input: logits for the last N positions only (0: all), as Hugging
 * Face's models name it. build-model's graphs take it, with 0 as its default. */
#define KVC_LOGITS_TO_KEEP "logits_to_keep"

/* The names of layer `layer`'s cache tensors under `naming`, each written into a buffer of
 * `cap` bytes: past key, past value, present key, present value. */
void kvc__layer_io_names(kvc_naming naming, int layer, char *past_key, char *past_value,
                         char *present_key, char *present_value, size_t cap);

#endif
