/* memory.c: see memory.h. */
#define _POSIX_C_SOURCE 200809L
#include "memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

double kvc__memory_bytes(void) {
  const char *budget = getenv("KVCACHE_MEMORY_LIMIT");
  if (budget && *budget) {
    char *end = NULL;
    const double b = strtod(budget, &end);
    if (end && !*end && b > 0)
      return b;
  }
  double bytes = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
  if (bytes < 0)
    bytes = 0;
  FILE *f = fopen("/sys/fs/cgroup/memory.max", "r"); /* "max" when unlimited */
  double limit = 0;
  if (f && fscanf(f, "%lf", &limit) == 1 && limit > 0 && (bytes == 0 || limit < bytes))
    bytes = limit;
  if (f)
    fclose(f);
  return bytes;
}
