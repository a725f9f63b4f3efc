/* cache_memory.c: the memory a KV cache lives in (see cache_memory.h). */
#include "cache_memory.h"

#include <string.h>

#include "error.h"
#include "pages.h"

int kvc__cache_on_host(const kvc_model *m) {
  return strcmp(m->info.provider, "cpu") == 0;
}

kvc_status kvc__cache_memory(const kvc_model *m, size_t bytes, const char *what, void **out) {
  *out = NULL;
  if (kvc__cache_on_host(m))
    *out = kvc__pages_alloc(bytes);
  else {
    kvc_status s = kvc__ort_check_as(kvc__ort()->AllocatorAlloc(m->cache_alloc, bytes, out),
                                     KVC_ERR_NO_MEMORY, what);
    if (s)
      return s;
  }
  if (!*out)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for %s (%zu bytes)", what, bytes);
  return KVC_OK;
}

void kvc__cache_memory_free(const kvc_model *m, void *p, size_t bytes) {
  if (!p)
    return;
  if (kvc__cache_on_host(m))
    kvc__pages_free(p, bytes);
  else
    kvc__ort_ignore(kvc__ort()->AllocatorFree(m->cache_alloc, p));
}
