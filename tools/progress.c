/* progress.c: see progress.h. */
#define _POSIX_C_SOURCE 200809L
#include "progress.h"

#include <stdio.h>
#include <unistd.h>

#include "stats.h"

void kvc_progress_start(kvc_progress *p, const char *cmd, const char *what, const char *unit,
                        int64_t total) {
  *p = (kvc_progress){cmd, what, unit, 0, total, kvc_stat_now_ms(), kvc_stat_now_ms()};
}

void kvc_progress_step(kvc_progress *p, const char *now) {
  const double t = kvc_stat_now_ms(), elapsed = (t - p->start_ms) / 1e3;
  const int tty = isatty(STDERR_FILENO);
  p->done++;
  if (p->done < p->total && t - p->shown_ms < (tty ? 200 : KVC_PROGRESS_EVERY_S * 1e3))
    return;
  p->shown_ms = t;
  const double rate = elapsed > 0 ? p->done / elapsed : 0;
  char line[160];
  snprintf(line, sizeof line, "%s: %s: %s, %lld/%lld %s, %.1f/s, about %.0f s left", p->cmd,
           p->what, now, (long long)p->done, (long long)p->total, p->unit, rate,
           rate > 0 ? (p->total - p->done) / rate : 0.0);
  if (!tty)
    fprintf(stderr, "%s\n", line);
  else if (p->done < p->total)
    fprintf(stderr, "\r%-100.100s", line);
  else
    fprintf(stderr, "\r%100s\r", "");
  fflush(stderr);
}
