/* path.c: see path.h. */
#include "path.h"

#include <stdio.h>

#include "error.h"

kvc_status kvc__path_join(char *out, size_t cap, const char *dir, const char *name) {
  int n = snprintf(out, cap, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= cap)
    return kvc__fail(KVC_ERR_INVALID_ARG, "path %s/%s is longer than %zu bytes", dir, name,
                     cap - 1);
  return KVC_OK;
}
