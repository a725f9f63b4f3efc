/* text_stream.c: see text_stream.h. */
#include "text_stream.h"

/* text through the stop strings to the sink */
static kvc_status pass(kvc_text_stream *t, const char *text, size_t len, kvc_text_sink sink,
                       void *user) {
  const char *shown;
  size_t shown_len;
  kvc_status st = kvc_stop_push(t->stop, text, len, &shown, &shown_len, &t->stopped);
  if (!st && shown_len && sink(user, shown, shown_len))
    st = KVC_ERR_NO_MEMORY;
  return st;
}

kvc_status kvc_text_token(kvc_text_stream *t, int32_t token, kvc_text_sink sink, void *user) {
  const char *text;
  size_t len;
  if (token >= t->text_ids)
    return KVC_OK;
  kvc_status st = kvc_detokenizer_push(t->detok, token, &text, &len);
  return st ? st : pass(t, text, len, sink, user);
}

kvc_status kvc_text_end(kvc_text_stream *t, kvc_text_sink sink, void *user) {
  const char *rest;
  size_t len;
  kvc_status st = kvc_detokenizer_flush(t->detok, &rest, &len);
  if (!st && !t->stopped)
    st = pass(t, rest, len, sink, user);
  if (!st && !t->stopped && !(st = kvc_stop_flush(t->stop, &rest, &len)) && len &&
      sink(user, rest, len))
    st = KVC_ERR_NO_MEMORY;
  return st;
}
