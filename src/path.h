/* path.h: file names joined without silent truncation, regular files told from the rest,
 * and whole files read. */
#ifndef KVC_PATH_H
#define KVC_PATH_H

#include <stddef.h>

#include "kvcache.h"

/* out = dir + "/" + name. KVC_ERR_INVALID_ARG naming both when it does not fit in cap. */
kvc_status kvc__path_join(char *out, size_t cap, const char *dir, const char *name);

/* KVC_OK when `path` (links followed) is a regular file; otherwise KVC_ERR_IO naming the
 * path and what it is (a FIFO, a directory, ...): reading those would block or make no
 * sense, so they are refused before anything opens them. */
kvc_status kvc__regular_file(const char *path);

/* The most a JSON config file may hold: far above any real one, far below a mistake. */
#define KVC_CONFIG_MAX_BYTES ((size_t)64 << 20)

/* The whole regular file at `path` in *data (NUL-terminated; kvc__malloc'd, the caller
 * kvc__frees it) and its size in bytes, the NUL not counted. KVC_ERR_IO naming the path
 * and the reason: not there, not a regular file (never blocks on a FIFO), larger than
 * max_bytes, a read error. */
kvc_status kvc__file_read(const char *path, size_t max_bytes, char **data, size_t *size);

/* The whole file at `path` mapped read-only: *bytes (NULL for an empty file) and *size, for
 * kvc__file_unmap to release. KVC_ERR_IO naming the path and the reason. */
kvc_status kvc__file_map(const char *path, const uint8_t **bytes, size_t *size);
void kvc__file_unmap(const uint8_t *bytes, size_t size);

/* KVC_OK when `name`, a file name relative to the model directory `dir`, stays inside the
 * model: not absolute, no ".." part, and, where it exists, its target (links followed)
 * inside dir or inside the directory that holds the real file of `graph` (the model's .onnx
 * file; NULL: dir alone). The second is ONNX Runtime's rule for external data, and what
 * makes a Hugging Face cache work: a snapshot's files are links into its blobs directory,
 * beside the real graph. Otherwise KVC_ERR_IO naming `what` and the name, and nothing about
 * what lies outside (whether it exists, what kind of file it is). */
kvc_status kvc__path_inside(const char *dir, const char *graph, const char *name, const char *what);

/* Copy the regular file `from` (up to 2 GiB) to `to`, replacing it. KVC_ERR_IO naming the
 * path that could not be read or written. */
kvc_status kvc__file_copy(const char *from, const char *to);

/* mkdir -p: `dir` and any missing parents (mode 0777 less the umask). KVC_OK when it exists
 * as a directory afterwards; KVC_ERR_IO naming the part that could not be made and why. */
kvc_status kvc__make_dirs(const char *dir);

#endif
