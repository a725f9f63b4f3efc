/* progress.h: a long command's progress on stderr. On a terminal one line redrawn (5 times a
 * second at most) and cleared at the end; in a log a line every KVC_PROGRESS_EVERY_S seconds
 * and one at the end: what runs, how far, the rate and the time left at that rate. */
#ifndef KVC_TOOLS_PROGRESS_H
#define KVC_TOOLS_PROGRESS_H

#include <stdint.h>

enum { KVC_PROGRESS_EVERY_S = 10 };

typedef struct kvc_progress {
  const char *cmd;  /* "bench" */
  const char *what; /* "uncached, alone" */
  const char *unit; /* "steps" */
  int64_t done, total;
  double start_ms, shown_ms;
} kvc_progress;

void kvc_progress_start(kvc_progress *p, const char *cmd, const char *what, const char *unit,
                        int64_t total);

/* One more unit done; `now` says where (e.g. "position 512"). */
void kvc_progress_step(kvc_progress *p, const char *now);

#endif
