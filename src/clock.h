/* clock.h: the monotonic clock the library times its runs with. */
#ifndef KVC_CLOCK_H
#define KVC_CLOCK_H

#include <time.h>

/* Milliseconds since an arbitrary start, never going back. */
static inline double kvc__now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

#endif
