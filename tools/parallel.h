/* parallel.h: many prompts decoding together (kvcache generate --prompts). */
#ifndef KVC_TOOLS_PARALLEL_H
#define KVC_TOOLS_PARALLEL_H

#include <stdint.h>

#include "kvcache.h"

/* Generate n_new tokens for every prompt in the file at `path` (one per line, token ids),
 * up to `parallel` at once; print one line of generated ids per prompt in file order.
 * Returns the exit code (0, or KVC_EXIT_USAGE / 1 after printing why). */
int kvc_generate_prompts(const char *cmd, kvc_model *model, const char *path, int parallel,
                         int32_t n_new, const kvc_sampler_params *sp);

#endif
