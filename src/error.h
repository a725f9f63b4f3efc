/* error.h: the per-thread "last error" message behind kvc_last_error(). */
#ifndef KVC_ERROR_H
#define KVC_ERROR_H

#include "kvcache.h"

/* Record a printf-style message for the calling thread and return `status`, so that a
 * failure reads `return kvc__fail(KVC_ERR_IO, "cannot open %s", path);`. */
kvc_status kvc__fail(kvc_status status, const char *fmt, ...);

/* Prefix the current message with `context: `, keeping the status (for callers that add
 * what they were doing when a lower layer failed). */
kvc_status kvc__wrap(kvc_status status, const char *fmt, ...);

#endif
