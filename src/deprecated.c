/* deprecated.c: names renamed in 0.2, kept until 0.3 so that programs written against 0.1
 * still build and link (the header marks them KVC_DEPRECATED, naming the replacement). */
#include "kvcache.h"

kvc_status kvc_runtime_info_get(kvc_runtime_info *info) {
  return kvc_runtime_get_info(info);
}

kvc_status kvc_append_batch(const kvc_batch_item *items, int32_t n) {
  return kvc_seq_append_batch(items, n);
}

kvc_status kvc_ctx_seq_new(kvc_ctx *ctx, kvc_seq **out) {
  return kvc_seq_new_in(ctx, out);
}
