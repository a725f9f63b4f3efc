/* path.h: joining directory and file names without silent truncation. */
#ifndef KVC_PATH_H
#define KVC_PATH_H

#include <stddef.h>

#include "kvcache.h"

/* out = dir + "/" + name. KVC_ERR_INVALID_ARG naming both when it does not fit in cap. */
kvc_status kvc__path_join(char *out, size_t cap, const char *dir, const char *name);

#endif
