/* error.c: per-thread error messages (SQLite-style: a code plus a message naming the culprit). */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { KVC_ERROR_CAP = 1024 };
static _Thread_local char last_error[KVC_ERROR_CAP];

const char *kvc_last_error(void) {
  return last_error;
}

kvc_status kvc__fail(kvc_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return status;
}

kvc_status kvc__wrap(kvc_status status, const char *fmt, ...) {
  char inner[KVC_ERROR_CAP];
  memcpy(inner, last_error, sizeof inner);
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  size_t used = n < 0 ? 0 : (size_t)n < sizeof last_error ? (size_t)n : sizeof last_error - 1;
  const char *tail[] = {": ", inner};
  for (size_t i = 0; i < 2; i++) {
    size_t len = strlen(tail[i]), room = sizeof last_error - 1 - used;
    len = len < room ? len : room;
    memcpy(last_error + used, tail[i], len);
    used += len;
  }
  last_error[used] = '\0';
  return status;
}

const char *kvc_status_name(kvc_status status) {
  switch (status) {
  case KVC_OK:
    return "KVC_OK";
  case KVC_ERR_INVALID_ARG:
    return "KVC_ERR_INVALID_ARG";
  case KVC_ERR_IO:
    return "KVC_ERR_IO";
  case KVC_ERR_MODEL:
    return "KVC_ERR_MODEL";
  case KVC_ERR_RUNTIME:
    return "KVC_ERR_RUNTIME";
  case KVC_ERR_NO_MEMORY:
    return "KVC_ERR_NO_MEMORY";
  case KVC_ERR_CACHE_FULL:
    return "KVC_ERR_CACHE_FULL";
  case KVC_ERR_UNSUPPORTED:
    return "KVC_ERR_UNSUPPORTED";
  case KVC_ERR_NO_SLOT:
    return "KVC_ERR_NO_SLOT";
  }
  return "unknown status";
}

const char *kvc_version(void) {
  return KVCACHE_VERSION;
}
