/* chat_files.c: see chat_files.h. */
#include "chat_files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

enum { MAX_TEXT = 64 << 20 };

int kvc_chat_read_text(const char *cmd, const char *option, const char *path, char **text) {
  *text = NULL;
  FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
  if (!f) {
    fprintf(stderr, "kvcache %s: %s %s: %s\n", cmd, option, path, strerror(errno));
    return KVC_EXIT_USAGE;
  }
  size_t len = 0, cap = 4096;
  char *buf = malloc(cap);
  int rc = 0;
  for (size_t n; buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
    len += n;
    if (len > MAX_TEXT) {
      fprintf(stderr, "kvcache %s: %s %s: more than %d MiB\n", cmd, option, path, MAX_TEXT >> 20);
      rc = KVC_EXIT_USAGE;
      break;
    }
    if (cap - len - 1 == 0) {
      char *grown = realloc(buf, cap * 2);
      if (!grown) {
        free(buf);
        buf = NULL;
      }
      buf = grown;
      cap *= 2;
    }
  }
  if (!rc && !buf) {
    fprintf(stderr, "kvcache %s: out of memory\n", cmd);
    rc = 1;
  } else if (!rc && ferror(f)) {
    fprintf(stderr, "kvcache %s: %s %s: read error\n", cmd, option, path);
    rc = KVC_EXIT_USAGE;
  }
  if (f != stdin)
    fclose(f);
  if (rc) {
    free(buf);
    return rc;
  }
  buf[len] = 0;
  *text = buf;
  return 0;
}
