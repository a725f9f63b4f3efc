/* path.h: file names joined without silent truncation, and whole files read. */
#ifndef KVC_PATH_H
#define KVC_PATH_H

#include <stddef.h>

#include "kvcache.h"

/* out = dir + "/" + name. KVC_ERR_INVALID_ARG naming both when it does not fit in cap. */
kvc_status kvc__path_join(char *out, size_t cap, const char *dir, const char *name);

/* The whole file at `path` in *data (NUL-terminated; kvc__malloc'd, the caller kvc__frees it)
 * and its size in bytes, the NUL not counted. KVC_ERR_IO naming the path and the reason. */
kvc_status kvc__file_read(const char *path, char **data, size_t *size);

#endif
