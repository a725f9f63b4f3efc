/* path.c: see path.h. */
#include "path.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

kvc_status kvc__path_join(char *out, size_t cap, const char *dir, const char *name) {
  int n = snprintf(out, cap, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= cap)
    return kvc__fail(KVC_ERR_INVALID_ARG, "path %s/%s is longer than %zu bytes", dir, name,
                     cap - 1);
  return KVC_OK;
}

kvc_status kvc__file_read(const char *path, char **data, size_t *size) {
  *data = NULL;
  FILE *f = fopen(path, "rb");
  if (!f)
    return kvc__fail(KVC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
  char *buf = NULL;
  long n = -1;
  kvc_status s = KVC_OK;
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
    s = kvc__fail(KVC_ERR_IO, "cannot read %s: %s", path, strerror(errno));
  else if (!(buf = kvc__malloc((size_t)n + 1)))
    s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory reading %ld bytes of %s", n, path);
  else if (fread(buf, 1, (size_t)n, f) != (size_t)n)
    s = kvc__fail(KVC_ERR_IO, "cannot read %s: short read", path);
  fclose(f);
  if (s) {
    kvc__free(buf);
    return s;
  }
  buf[n] = '\0';
  *data = buf;
  *size = (size_t)n;
  return KVC_OK;
}
