/* stats.h: the few statistics the benchmark and eval report. */
#ifndef KVC_TOOLS_STATS_H
#define KVC_TOOLS_STATS_H

#include <stddef.h>
#include <stdint.h>

/* The monotonic clock, in milliseconds. */
double kvc_stat_now_ms(void);

/* Arithmetic mean; 0 for n == 0. */
double kvc_stat_mean(const double *x, size_t n);

/* The index of the largest of n logits, the first among equals (greedy decoding's token). */
int32_t kvc_stat_argmax(const float *logits, int32_t n);

/* The p-th percentile (0 <= p <= 100) by linear interpolation between closest ranks
 * (rank = p/100 * (n - 1)), the definition numpy uses by default. Sorts x in place.
 * 0 for n == 0. */
double kvc_stat_percentile(double *x, size_t n, double p);

/* a / b, or 0 when b is not positive. */
double kvc_stat_ratio(double a, double b);

/* The positions the benchmark reports on within decode positions [first, last]:
 * 16, 128, 256 and 511 where they fall inside, and `last`, ascending, without repeats.
 * Writes at most cap entries to out; returns how many. */
size_t kvc_stat_buckets(int32_t first, int32_t last, int32_t *out, size_t cap);

/* Samples around a position: the indices [pos - half, pos + half] clipped to [first, last],
 * as a half-open range [*lo, *hi) of positions. */
void kvc_stat_window(int32_t pos, int32_t half, int32_t first, int32_t last, int32_t *lo,
                     int32_t *hi);

#endif
