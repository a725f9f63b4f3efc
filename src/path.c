/* path.c: see path.h. */
#define _XOPEN_SOURCE 700 /* realpath: the target of a link, to tell inside from outside */
#include "path.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"

kvc_status kvc__path_join(char *out, size_t cap, const char *dir, const char *name) {
  int n = snprintf(out, cap, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= cap)
    return kvc__fail(KVC_ERR_INVALID_ARG, "path %s/%s is longer than %zu bytes", dir, name,
                     cap - 1);
  return KVC_OK;
}

static const char *kind_of(mode_t mode) {
  return S_ISDIR(mode)    ? "a directory"
         : S_ISFIFO(mode) ? "a FIFO"
         : S_ISSOCK(mode) ? "a socket"
         : S_ISCHR(mode)  ? "a character device"
         : S_ISBLK(mode)  ? "a block device"
                          : "not a regular file";
}

kvc_status kvc__regular_file(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return kvc__fail(KVC_ERR_IO, "%s: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return kvc__fail(KVC_ERR_IO, "%s is %s: expected a regular file", path, kind_of(st.st_mode));
  return KVC_OK;
}

kvc_status kvc__file_read(const char *path, size_t max_bytes, char **data, size_t *size) {
  *data = NULL;
  /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return kvc__fail(KVC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  char *buf = NULL;
  kvc_status s = KVC_OK;
  if (fstat(fd, &st) != 0)
    s = kvc__fail(KVC_ERR_IO, "cannot read %s: %s", path, strerror(errno));
  else if (!S_ISREG(st.st_mode))
    s = kvc__fail(KVC_ERR_IO, "%s is %s: expected a regular file", path, kind_of(st.st_mode));
  else if ((uint64_t)st.st_size > max_bytes)
    s = kvc__fail(KVC_ERR_IO, "%s has %lld bytes, more than the %zu accepted", path,
                  (long long)st.st_size, max_bytes);
  else if (!(buf = kvc__malloc((size_t)st.st_size + 1)))
    s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory reading %lld bytes of %s",
                  (long long)st.st_size, path);
  size_t got = 0;
  while (!s && got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      s = kvc__fail(KVC_ERR_IO, "cannot read %s: %s", path, n < 0 ? strerror(errno) : "short read");
    else
      got += (size_t)n;
  }
  close(fd);
  if (s) {
    kvc__free(buf);
    return s;
  }
  buf[got] = '\0';
  *data = buf;
  *size = got;
  return KVC_OK;
}

kvc_status kvc__make_dirs(const char *dir) {
  char part[4096];
  const size_t len = strlen(dir);
  if (len >= sizeof part)
    return kvc__fail(KVC_ERR_INVALID_ARG, "directory name %.64s... is too long (%zu bytes)", dir,
                     len);
  for (size_t i = 1; i <= len; i++) {
    if (dir[i] != '/' && dir[i] != '\0')
      continue;
    memcpy(part, dir, i);
    part[i] = '\0';
    struct stat st;
    if (mkdir(part, 0777) != 0 && (errno != EEXIST || stat(part, &st) != 0 || !S_ISDIR(st.st_mode)))
      return kvc__fail(KVC_ERR_IO, "cannot create directory %s: %s %s", dir, part,
                       errno == EEXIST ? "exists and is not a directory" : strerror(errno));
  }
  return KVC_OK;
}

kvc_status kvc__file_copy(const char *from, const char *to) {
  char *text = NULL;
  size_t size = 0;
  kvc_status s = kvc__file_read(from, (size_t)1 << 31, &text, &size);
  if (s)
    return s;
  FILE *f = fopen(to, "wb");
  if (!f || fwrite(text, 1, size, f) != size)
    s = kvc__fail(KVC_ERR_IO, "cannot write %s: %s", to, strerror(errno));
  if (f && fclose(f) != 0 && !s)
    s = kvc__fail(KVC_ERR_IO, "cannot write %s: %s", to, strerror(errno));
  kvc__free(text);
  return s;
}

/* Whether the real path `real` lies in the real directory `root`. */
static int under(const char *real, const char *root) {
  const size_t n = strlen(root);
  return !strncmp(real, root, n) && (real[n] == '/' || (n == 1 && root[0] == '/'));
}

kvc_status kvc__path_inside(const char *dir, const char *graph, const char *name,
                            const char *what) {
  int escapes = name[0] == '/';
  for (const char *part = name; !escapes && *part;) { /* ".." as a whole component */
    const size_t len = strcspn(part, "/");
    escapes = len == 2 && part[0] == '.' && part[1] == '.';
    part += len + (part[len] == '/');
  }
  char path[4096], root[PATH_MAX], real[PATH_MAX];
  if (!escapes && kvc__path_join(path, sizeof path, dir, name) == KVC_OK && realpath(path, real)) {
    escapes = !realpath(dir, root) || !under(real, root);
    if (escapes && graph && realpath(graph, root)) { /* the real graph's directory */
      *strrchr(root, '/') = '\0';
      escapes = !under(real, root[0] ? root : "/");
    }
  }
  return escapes ? kvc__fail(KVC_ERR_IO, "%s %s leads outside the model directory %s: refused",
                             what, name, dir)
                 : KVC_OK;
}

kvc_status kvc__file_map(const char *path, const uint8_t **bytes, size_t *size) {
  *bytes = NULL;
  *size = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    const int err = errno;
    if (fd >= 0)
      close(fd);
    return kvc__fail(KVC_ERR_IO, "cannot open %s: %s", path, strerror(err));
  }
  void *m = st.st_size > 0 ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
  const int err = errno;
  close(fd);
  if (m == MAP_FAILED)
    return kvc__fail(KVC_ERR_IO, "cannot map %s: %s", path, strerror(err));
  *bytes = m;
  *size = st.st_size > 0 ? (size_t)st.st_size : 0;
  return KVC_OK;
}

void kvc__file_unmap(const uint8_t *bytes, size_t size) {
  if (bytes)
    munmap((void *)bytes, size);
}
