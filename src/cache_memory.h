/* cache_memory.h: the memory a KV cache lives in, for the cache (cache.c) and for the probes
 * that stand in for it (probes/). */
#ifndef KVC_CACHE_MEMORY_H
#define KVC_CACHE_MEMORY_H

#include <stddef.h>

#include "model.h"

/* `bytes` of the memory the model's cache lives in, for the cache and for the probes that stand
 * in for it: on the host, zeroed and on 2 MB huge pages where the system grants them
 * (ops/pages.h: a step streams the cache as it streams the weights); on a GPU, cache_alloc's.
 * KVC_ERR_NO_MEMORY naming `what`. kvc__cache_memory_free, with the same bytes, releases it. */
/* Whether the model's cache lives in host memory (the CPU provider): then its buffers are
 * kvcache's own and copies between them are memcpy. */
int kvc__cache_on_host(const kvc_model *m);

kvc_status kvc__cache_memory(const kvc_model *m, size_t bytes, const char *what, void **out);
void kvc__cache_memory_free(const kvc_model *m, void *p, size_t bytes);

#endif
