/* stats.c: see stats.h. */
#include "stats.h"

#include <stdlib.h>
#include <time.h>

double kvc_stat_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int32_t kvc_stat_argmax(const float *logits, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; i++)
    best = logits[i] > logits[best] ? i : best;
  return best;
}

double kvc_stat_mean(const double *x, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += x[i];
  return n ? sum / (double)n : 0.0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double kvc_stat_percentile(double *x, size_t n, double p) {
  if (n == 0)
    return 0.0;
  qsort(x, n, sizeof *x, cmp_double);
  double rank = p / 100.0 * (double)(n - 1);
  size_t lo = (size_t)rank;
  if (lo + 1 >= n)
    return x[n - 1];
  double frac = rank - (double)lo;
  return x[lo] + frac * (x[lo + 1] - x[lo]);
}

double kvc_stat_ratio(double a, double b) {
  return b > 0 ? a / b : 0.0;
}

size_t kvc_stat_buckets(int32_t first, int32_t last, int32_t *out, size_t cap) {
  static const int32_t fixed[] = {16, 128, 256, 511};
  size_t n = 0;
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && n < cap; i++)
    if (fixed[i] >= first && fixed[i] < last)
      out[n++] = fixed[i];
  if (n < cap && first <= last)
    out[n++] = last;
  return n;
}

void kvc_stat_window(int32_t pos, int32_t half, int32_t first, int32_t last, int32_t *lo,
                     int32_t *hi) {
  *lo = pos - half < first ? first : pos - half;
  *hi = (pos + half > last ? last : pos + half) + 1;
}
