/* args.c: strict number parsing for command-line options. */
#include "args.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int kvc_arg_int(const char *cmd, const char *option, const char *text, int64_t min, int64_t max,
                int64_t *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (end == text || *end != '\0' || errno == ERANGE || v < min || v > max) {
    fprintf(stderr, "kvcache %s: %s expects an integer in %" PRId64 "..%" PRId64 ", got '%s'\n",
            cmd, option, min, max, text);
    return 0;
  }
  *out = v;
  return 1;
}

int kvc_arg_u64(const char *cmd, const char *option, const char *text, uint64_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (end == text || *end != '\0' || errno == ERANGE || text[0] == '-') {
    fprintf(stderr, "kvcache %s: %s expects a non-negative integer, got '%s'\n", cmd, option, text);
    return 0;
  }
  *out = v;
  return 1;
}

int kvc_arg_double(const char *cmd, const char *option, const char *text, double min, double max,
                   double *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end);
  if (end == text || *end != '\0' || errno == ERANGE || !(v >= min && v <= max)) {
    fprintf(stderr, "kvcache %s: %s expects a number in %g..%g, got '%s'\n", cmd, option, min, max,
            text);
    return 0;
  }
  *out = v;
  return 1;
}

const char *kvc_arg_value(const char *cmd, int argc, char **argv, int *i) {
  if (*i + 1 >= argc) {
    fprintf(stderr, "kvcache %s: %s expects a value\n", cmd, argv[*i]);
    return NULL;
  }
  return argv[++*i];
}
