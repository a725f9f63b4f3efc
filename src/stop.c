/* stop.c: stop strings over streamed text. The text a stop string might still begin is held
 * back until it cannot (a suffix of what came that is a prefix of a stop string), so that a
 * match split across tokens is found, and nothing of it is ever shown. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "kvcache.h"

struct kvc_stop {
  char **stops;
  size_t *sizes; /* each stop string's bytes */
  int32_t n;
  size_t longest;
  char *held; /* text not shown yet: at most the longest stop string less one byte, then the
               * new text */
  size_t held_len, held_cap;
  char *out; /* what the last push or flush gives */
  size_t out_cap;
  int stopped;
};

void kvc_stop_free(kvc_stop *stop) {
  if (!stop)
    return;
  for (int32_t i = 0; i < stop->n; i++)
    kvc__free(stop->stops[i]);
  kvc__free(stop->stops);
  kvc__free(stop->sizes);
  kvc__free(stop->held);
  kvc__free(stop->out);
  kvc__free(stop);
}

kvc_status kvc_stop_new(const char *const *stops, int32_t n, kvc_stop **out) {
  if (!out || n < 0 || (n && !stops))
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_stop_new: NULL argument or n < 0");
  *out = NULL;
  for (int32_t i = 0; i < n; i++)
    if (!stops[i] || !*stops[i])
      return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_stop_new: stop string %d is %s", i,
                       stops[i] ? "empty" : "NULL");
  kvc_stop *s = kvc__calloc(1, sizeof *s);
  if (!s)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  s->stops = kvc__calloc((size_t)n + 1, sizeof *s->stops);
  s->sizes = kvc__calloc((size_t)n + 1, sizeof *s->sizes);
  int ok = s->stops && s->sizes;
  for (int32_t i = 0; ok && i < n; i++) {
    s->sizes[i] = strlen(stops[i]);
    s->stops[i] = kvc__malloc(s->sizes[i] + 1);
    ok = s->stops[i] != NULL;
    if (ok)
      memcpy(s->stops[i], stops[i], s->sizes[i] + 1);
    s->n = i + 1;
    if (s->sizes[i] > s->longest)
      s->longest = s->sizes[i];
  }
  if (!ok) {
    kvc_stop_free(s);
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  }
  *out = s;
  return KVC_OK;
}

void kvc_stop_reset(kvc_stop *stop) {
  if (stop) {
    stop->held_len = 0;
    stop->stopped = 0;
  }
}

static int grow(char **buf, size_t *cap, size_t need) {
  if (need <= *cap)
    return 0;
  size_t c = *cap ? *cap : 64;
  while (c < need)
    c *= 2;
  char *b = kvc__malloc(c);
  if (!b)
    return -1;
  if (*buf)
    memcpy(b, *buf, *cap);
  kvc__free(*buf);
  *buf = b;
  *cap = c;
  return 0;
}

/* Give the first n held bytes as the output, keeping the rest held. */
static kvc_status give(kvc_stop *s, size_t n, const char **text, size_t *len) {
  if (grow(&s->out, &s->out_cap, n + 1))
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  memcpy(s->out, s->held, n);
  s->out[n] = 0;
  memmove(s->held, s->held + n, s->held_len - n);
  s->held_len -= n;
  *text = s->out;
  *len = n;
  return KVC_OK;
}

kvc_status kvc_stop_push(kvc_stop *s, const char *text, size_t len, const char **out,
                         size_t *out_len, int *stopped) {
  if (!s || (!text && len) || !out || !out_len || !stopped)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_stop_push: NULL argument");
  *stopped = s->stopped;
  if (s->stopped)
    return give(s, 0, out, out_len);
  if (grow(&s->held, &s->held_cap, s->held_len + len + 1))
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  if (len)
    memcpy(s->held + s->held_len, text, len);
  size_t old = s->held_len;
  s->held_len += len;
  /* the first match: it can only end in the new text (none was whole before) */
  size_t first = s->held_len;
  for (int32_t i = 0; i < s->n; i++) {
    size_t from = old >= s->sizes[i] ? old - s->sizes[i] + 1 : 0;
    for (size_t at = from; at + s->sizes[i] <= s->held_len && at < first; at++)
      if (!memcmp(s->held + at, s->stops[i], s->sizes[i])) {
        first = at;
        break;
      }
  }
  if (first < s->held_len) {
    s->stopped = *stopped = 1;
    kvc_status st = give(s, first, out, out_len);
    s->held_len = 0; /* the match and what followed it are dropped */
    return st;
  }
  /* hold back the longest suffix that begins a stop string */
  size_t keep = 0;
  for (size_t k = s->longest > 1 ? s->longest - 1 : 0; k > 0 && !keep; k--) {
    if (k > s->held_len)
      continue;
    for (int32_t i = 0; i < s->n && !keep; i++)
      if (s->sizes[i] > k && !memcmp(s->held + s->held_len - k, s->stops[i], k))
        keep = k;
  }
  return give(s, s->held_len - keep, out, out_len);
}

kvc_status kvc_stop_flush(kvc_stop *s, const char **out, size_t *out_len) {
  if (!s || !out || !out_len)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_stop_flush: NULL argument");
  return give(s, s->stopped ? 0 : s->held_len, out, out_len);
}
