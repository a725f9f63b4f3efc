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

/* Store `full` (n bytes) as the message; one too long keeps its beginning and its end (the
 * culprit is often a long path first, the reason last) around " ... ". */
static void set_message(const char *full, size_t n) {
  enum { HEAD = KVC_ERROR_CAP / 2 - 8 };
  static const char gap[] = " ... ";
  if (n < KVC_ERROR_CAP) {
    memcpy(last_error, full, n);
    last_error[n] = '\0';
    return;
  }
  const size_t tail = KVC_ERROR_CAP - 1 - HEAD - (sizeof gap - 1);
  memcpy(last_error, full, HEAD);
  memcpy(last_error + HEAD, gap, sizeof gap - 1);
  memcpy(last_error + HEAD + sizeof gap - 1, full + n - tail, tail);
  last_error[KVC_ERROR_CAP - 1] = '\0';
}

enum { FULL_CAP = 4 * KVC_ERROR_CAP + 8192 }; /* a message is composed whole, then fitted */

kvc_status kvc__fail(kvc_status status, const char *fmt, ...) {
  char full[FULL_CAP];
  va_list ap;
  va_start(ap, fmt);
  const int n = vsnprintf(full, sizeof full, fmt, ap);
  va_end(ap);
  set_message(full, n < 0 ? 0 : (size_t)n < sizeof full ? (size_t)n : sizeof full - 1);
  return status;
}

kvc_status kvc__wrap(kvc_status status, const char *fmt, ...) {
  char full[FULL_CAP];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(full, sizeof full, fmt, ap);
  va_end(ap);
  size_t used = n < 0 ? 0 : (size_t)n < sizeof full ? (size_t)n : sizeof full - 1;
  const char *tail[] = {": ", last_error};
  for (size_t i = 0; i < 2; i++) {
    size_t len = strlen(tail[i]), room = sizeof full - 1 - used;
    len = len < room ? len : room;
    memcpy(full + used, tail[i], len);
    used += len;
  }
  set_message(full, used);
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
