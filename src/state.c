/* state.c: a sequence saved to a file or a buffer, and loaded back (docs/STATE.md). Loading
 * checks everything (size, magic, version, checksum, model fingerprint, sizes, tokens) before
 * it touches the sequence; saving to a file writes a temporary file, flushes it to disk and
 * renames it over the old one. */
#define _GNU_SOURCE /* O_TMPFILE: a state being written has no name (write_replacing) */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "alloc.h"
#include "ctx.h"
#include "error.h"
#include "path.h"

#define STATE_MAGIC "KVCSTATE"
enum { STATE_VERSION = 1, HEADER = 48, CHECKSUM = 8 };
/* the header's element_type: the cache's, as kvc_kv_type numbers it (1 = float32, 2 =
 * float16, 3 = 8-bit rows); a state loads only into a cache of its type */
enum { F32 = KVC_KV_TYPE_F32, F16 = KVC_KV_TYPE_F16, Q8 = KVC_KV_TYPE_Q8 };

/* The header, as stored (little-endian, 48 bytes). */
typedef struct header {
  char magic[8];
  uint32_t version, element_type;
  uint64_t fingerprint;
  uint32_t layers, kv_heads, head_dim, vocab;
  uint32_t length, has_logits;
} header;
_Static_assert(sizeof(header) == HEADER, "the state header is 48 bytes");

/* Bytes of one cache row of the header's type. */
static size_t row_bytes(const header *h) {
  const kvc__cache_kind kind = h->element_type == Q8    ? KVC_CACHE_Q8
                               : h->element_type == F16 ? KVC_CACHE_F16
                                                        : KVC_CACHE_F32;
  return kvc__cache_row_bytes(kind, (int)h->head_dim);
}

static size_t cache_bytes(const header *h) {
  return (size_t)h->layers * 2 * h->kv_heads * h->length * row_bytes(h);
}

static size_t total_bytes(const header *h) {
  return HEADER + (size_t)h->length * sizeof(int32_t) +
         (h->has_logits ? (size_t)h->vocab * sizeof(float) : 0) + cache_bytes(h) + CHECKSUM;
}

static kvc_status header_of(kvc_seq *q, header *h) {
  kvc_ctx *c = q->ctx;
  const kvc_model_info *i = &c->model->info;
  memset(h, 0, sizeof *h);
  memcpy(h->magic, STATE_MAGIC, 8);
  h->version = STATE_VERSION;
  h->element_type = (uint32_t)i->kv_type;
  h->layers = (uint32_t)i->layers, h->kv_heads = (uint32_t)i->kv_heads;
  h->head_dim = (uint32_t)i->head_dim, h->vocab = (uint32_t)i->vocab_size;
  h->length = (uint32_t)c->lens[q->slot];
  h->has_logits = c->has_logits[q->slot];
  return kvc__model_fingerprint(c->model, &h->fingerprint);
}

kvc_status kvc_seq_save_buffer(kvc_seq *q, void *buf, size_t cap, size_t *size) {
  if (size)
    *size = 0;
  if (!q || !size || (!buf && cap))
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_save_buffer: %s is NULL",
                     !q      ? "seq"
                     : !size ? "size"
                             : "buf");
  header h;
  kvc_status s = kvc__seq_check(q, "kvc_seq_save_buffer");
  if (!s)
    s = header_of(q, &h);
  if (s)
    return s;
  *size = total_bytes(&h);
  if (cap < *size) /* a size query, or too small: nothing written */
    return cap ? kvc__fail(KVC_ERR_INVALID_ARG,
                           "kvc_seq_save_buffer: the state takes %zu bytes, the buffer has %zu",
                           *size, cap)
               : KVC_OK;
  kvc_ctx *c = q->ctx;
  char *p = buf;
  memcpy(p, &h, HEADER);
  p += HEADER;
  memcpy(p, c->tokens + (size_t)q->slot * c->capacity, (size_t)h.length * sizeof(int32_t));
  p += (size_t)h.length * sizeof(int32_t);
  if (h.has_logits) {
    memcpy(p, kvc__ctx_logits(c, q->slot), (size_t)h.vocab * sizeof(float));
    p += (size_t)h.vocab * sizeof(float);
  }
  if ((s = c->ops->dense(c, q->slot, (int32_t)h.length, p, 1)))
    return s;
  p += cache_bytes(&h);
  const uint64_t sum = XXH3_64bits(buf, (size_t)(p - (char *)buf));
  memcpy(p, &sum, CHECKSUM);
  return KVC_OK;
}

/* Write n bytes to fd, through short writes. */
static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    p += k, n -= (size_t)k;
  }
  return 0;
}

/* Write size bytes to fd and sync them; errors name `path` (the user's). */
static kvc_status write_synced(int fd, const char *buf, size_t size, const char *path) {
  return write_all(fd, buf, size) || fsync(fd)
             ? kvc__fail(KVC_ERR_IO, "cannot write state file %s: %s", path, strerror(errno))
             : KVC_OK;
}

/* Close fd; a failure becomes the status unless there already is one. */
static kvc_status close_file(int fd, kvc_status s, const char *path) {
  if (close(fd) && !s)
    s = kvc__fail(KVC_ERR_IO, "cannot write state file %s: %s", path, strerror(errno));
  return s;
}

/* On Linux: the bytes written, synced and only then linked as `tmp`, from a file made without
 * a name (O_TMPFILE), so that a save killed while writing leaves nothing behind. -1 where
 * that cannot be done (no O_TMPFILE here or on this filesystem, no /proc): nothing made. */
static int write_nameless(const char *path, const char *tmp, const char *buf, size_t size,
                          kvc_status *s) {
#ifdef O_TMPFILE
  char dir[4200], self[64];
  const char *slash = strrchr(path, '/');
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
           slash ? path : ".");
  const int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0)
    return -1;
  snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
  *s = write_synced(fd, buf, size, path);
  int linked = 0;
  if (!*s) {
    unlink(tmp); /* a leftover of a process that had this pid */
    linked = linkat(AT_FDCWD, self, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0;
    if (!linked && errno == ENOENT) { /* no /proc: the caller writes tmp itself */
      close(fd);
      return -1;
    }
    if (!linked)
      *s = kvc__fail(KVC_ERR_IO, "cannot create state file %s: %s", path, strerror(errno));
  }
  *s = close_file(fd, *s, path);
  return 0;
#else
  (void)path, (void)tmp, (void)buf, (void)size, (void)s;
  return -1;
#endif
}

/* Write size bytes to a new file that then replaces `path` (rename: a reader sees the old
 * file or the new one, whole; synced first, so that a crash cannot leave the new name on
 * unwritten blocks), through `tmp` beside it: written nameless where the system allows
 * (write_nameless), else under that name from the start, which a kill then leaves. Errors
 * name the user's path; tmp is an implementation detail. */
static kvc_status write_replacing(const char *path, const char *tmp, const char *buf, size_t size) {
  kvc_status s = KVC_OK;
  if (write_nameless(path, tmp, buf, size, &s) != 0) {
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      return kvc__fail(KVC_ERR_IO, "cannot create state file %s: %s", path, strerror(errno));
    s = close_file(fd, write_synced(fd, buf, size, path), path);
  }
  if (!s && rename(tmp, path))
    s = kvc__fail(KVC_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
  if (s)
    unlink(tmp); /* whatever of it was made */
  return s;
}

kvc_status kvc_seq_save(kvc_seq *q, const char *path) {
  if (!q || !path)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_save: %s is NULL", q ? "path" : "seq");
  size_t size = 0;
  kvc_status s = kvc_seq_save_buffer(q, NULL, 0, &size); /* checks q is usable */
  char *buf = s ? NULL : kvc__malloc(size);
  if (!s && !buf)
    s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for a %zu-byte state", size);
  if (!s)
    s = kvc_seq_save_buffer(q, buf, size, &size);
  char tmp[4200];
  if (!s && snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
    s = kvc__fail(KVC_ERR_INVALID_ARG, "state path %s is too long", path);
  if (!s)
    s = write_replacing(path, tmp, buf, size);
  kvc__free(buf);
  return s;
}

kvc_status kvc_seq_load_buffer(kvc_seq *q, const void *buf, size_t size) {
  if (!q || (!buf && size))
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_load_buffer: %s is NULL", q ? "buf" : "seq");
  kvc_ctx *c = q->ctx;
  header h, want;
  kvc_status s = kvc__seq_check(q, "kvc_seq_load_buffer");
  if (!s)
    s = header_of(q, &want);
  if (s)
    return s;
  if (size < HEADER + CHECKSUM)
    return kvc__fail(KVC_ERR_IO, "state of %zu bytes: truncated (a state has at least %d)", size,
                     HEADER + CHECKSUM);
  memcpy(&h, buf, HEADER);
  if (memcmp(h.magic, STATE_MAGIC, 8))
    return kvc__fail(KVC_ERR_IO, "not a kvcache state (no \"%s\" at its start)", STATE_MAGIC);
  if (h.version != STATE_VERSION)
    return kvc__fail(h.version > STATE_VERSION ? KVC_ERR_UNSUPPORTED : KVC_ERR_IO,
                     "state version %u: this kvcache reads version %d", h.version, STATE_VERSION);
  if (h.element_type < F32 || h.element_type > Q8 || h.length > (uint32_t)INT32_MAX ||
      h.has_logits > 1 ||
      (uint64_t)h.layers * h.kv_heads * h.head_dim * h.length > ((uint64_t)1 << 40))
    return kvc__fail(KVC_ERR_IO, "state header is damaged (element type %u, length %u)",
                     h.element_type, h.length);
  if (size != total_bytes(&h))
    return kvc__fail(KVC_ERR_IO,
                     "state of %zu bytes: its header implies %zu (truncated or extended)", size,
                     total_bytes(&h));
  uint64_t sum;
  memcpy(&sum, (const char *)buf + size - CHECKSUM, CHECKSUM);
  if (sum != XXH3_64bits(buf, size - CHECKSUM))
    return kvc__fail(KVC_ERR_IO, "state checksum mismatch: the data was altered or damaged");
  if (h.fingerprint != want.fingerprint || h.layers != want.layers || h.kv_heads != want.kv_heads ||
      h.head_dim != want.head_dim || h.vocab != want.vocab)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "state is of another model: fingerprint %016llx, %u layers, %u kv heads x "
                     "%u, vocab %u; this model: %016llx, %u layers, %u kv heads x %u, vocab %u",
                     (unsigned long long)h.fingerprint, h.layers, h.kv_heads, h.head_dim, h.vocab,
                     (unsigned long long)want.fingerprint, want.layers, want.kv_heads,
                     want.head_dim, want.vocab);
  if (h.element_type != want.element_type)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "state holds a %s cache; this sequence's cache is %s: open the model with "
                     "kv_type %s (--kv-type %s) to load it",
                     kvc_kv_type_name((kvc_kv_type)h.element_type),
                     kvc_kv_type_name((kvc_kv_type)want.element_type),
                     kvc_kv_type_name((kvc_kv_type)h.element_type),
                     kvc_kv_type_name((kvc_kv_type)h.element_type));
  if (h.length > (uint32_t)c->capacity)
    return kvc__fail(KVC_ERR_CACHE_FULL, "state holds %u tokens; the sequence holds at most %d",
                     h.length, c->capacity);
  const char *p = (const char *)buf + HEADER;
  const int32_t *tokens = (const int32_t *)(const void *)p;
  for (uint32_t i = 0; i < h.length; i++) {
    int32_t t;
    memcpy(&t, tokens + i, sizeof t);
    if (t < 0 || t >= (int32_t)h.vocab)
      return kvc__fail(KVC_ERR_IO, "state token %u is %d, outside the vocabulary", i, t);
  }
  p += (size_t)h.length * sizeof(int32_t);
  const char *logits = h.has_logits ? p : NULL;
  p += h.has_logits ? (size_t)h.vocab * sizeof(float) : 0;
  /* the cache first: the one step that can fail, and it leaves the slot as it was. dense()
   * only reads when loading (byte copies: any alignment) */
  if ((s = c->ops->dense(c, q->slot, (int32_t)h.length, (void *)(uintptr_t)p, 0)))
    return s;
  kvc__slot_set(c, q->slot, tokens, (int32_t)h.length, (const float *)(const void *)logits);
  return KVC_OK;
}

kvc_status kvc_seq_load(kvc_seq *q, const char *path) {
  if (!q || !path)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_seq_load: %s is NULL", q ? "path" : "seq");
  char *buf = NULL;
  size_t size = 0;
  kvc_status s = kvc__seq_check(q, "kvc_seq_load");
  if (!s)
    s = kvc__file_read(path, (size_t)1 << 40, &buf, &size);
  if (!s) {
    s = kvc_seq_load_buffer(q, buf, size);
    if (s)
      s = kvc__wrap(s, "%s", path);
  }
  kvc__free(buf);
  return s;
}
