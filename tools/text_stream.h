/* text_stream.h: a generated token's text, ready to show: the detokenizer's complete
 * characters through the stop strings (generate --prompt, chat, serve share it). */
#ifndef KVC_TOOLS_TEXT_STREAM_H
#define KVC_TOOLS_TEXT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "kvcache.h"

/* Where the text goes: 0, or non-zero when it could not be kept (out of memory). */
typedef int (*kvc_text_sink)(void *user, const char *text, size_t len);

typedef struct kvc_text_stream {
  kvc_detokenizer *detok; /* the caller's */
  kvc_stop *stop;         /* the caller's */
  int32_t text_ids;       /* the tokenizer's ids; the model's past them have no text */
  int stopped;            /* a stop string came: nothing more is shown */
} kvc_text_stream;

/* The text `token` completes, less what may still begin a stop string, to sink. Errors:
 * those of the detokenizer and the stop strings; KVC_ERR_NO_MEMORY when the sink fails. */
kvc_status kvc_text_token(kvc_text_stream *t, int32_t token, kvc_text_sink sink, void *user);

/* The end of the text: what the detokenizer and the stop strings still hold, to sink (nothing
 * once a stop string came). Errors as kvc_text_token. */
kvc_status kvc_text_end(kvc_text_stream *t, kvc_text_sink sink, void *user);

#endif
