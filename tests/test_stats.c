/* Tests for tools/stats.c: the benchmark's statistics on known inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "stats.h"

#define NEAR(a, b) assert_true(((a) - (b)) < 1e-12 && ((b) - (a)) < 1e-12)

static void percentiles_interpolate_like_numpy(void **state) {
  (void)state;
  double x[] = {4, 1, 3, 2}; /* numpy.percentile([1,2,3,4], p) */
  NEAR(kvc_stat_percentile(x, 4, 50), 2.5);
  NEAR(kvc_stat_percentile(x, 4, 90), 3.7);
  NEAR(kvc_stat_percentile(x, 4, 99), 3.97);
  NEAR(kvc_stat_percentile(x, 4, 0), 1.0);
  NEAR(kvc_stat_percentile(x, 4, 100), 4.0);
  assert_true(x[0] == 1 && x[3] == 4); /* sorted in place */
  double one[] = {7};
  NEAR(kvc_stat_percentile(one, 1, 99), 7.0);
  NEAR(kvc_stat_percentile(one, 0, 50), 0.0);
  double odd[] = {10, 30, 20, 50, 40};
  NEAR(kvc_stat_percentile(odd, 5, 50), 30.0);
  NEAR(kvc_stat_percentile(odd, 5, 25), 20.0);
}

static void mean_and_ratio(void **state) {
  (void)state;
  const double x[] = {1, 2, 3, 10};
  NEAR(kvc_stat_mean(x, 4), 4.0);
  NEAR(kvc_stat_mean(x, 0), 0.0);
  NEAR(kvc_stat_ratio(10, 4), 2.5);
  NEAR(kvc_stat_ratio(10, 0), 0.0);
  NEAR(kvc_stat_ratio(10, -1), 0.0);
}

static void buckets_within_the_decode_range(void **state) {
  (void)state;
  int32_t b[8];
  assert_int_equal(kvc_stat_buckets(128, 511, b, 8), 3);
  assert_int_equal(b[0], 128);
  assert_int_equal(b[1], 256);
  assert_int_equal(b[2], 511); /* 511 is also the last: listed once */
  assert_int_equal(kvc_stat_buckets(0, 600, b, 8), 5);
  assert_int_equal(b[0], 16);
  assert_int_equal(b[3], 511);
  assert_int_equal(b[4], 600);
  assert_int_equal(kvc_stat_buckets(10, 20, b, 8), 2);
  assert_int_equal(b[0], 16);
  assert_int_equal(b[1], 20);
  assert_int_equal(kvc_stat_buckets(17, 100, b, 8), 1);
  assert_int_equal(b[0], 100);
  assert_int_equal(kvc_stat_buckets(0, 600, b, 2), 2); /* capped */
}

static void windows_are_clipped(void **state) {
  (void)state;
  int32_t lo, hi;
  kvc_stat_window(256, 4, 128, 511, &lo, &hi);
  assert_int_equal(lo, 252);
  assert_int_equal(hi, 261);
  kvc_stat_window(128, 4, 128, 511, &lo, &hi);
  assert_int_equal(lo, 128);
  assert_int_equal(hi, 133);
  kvc_stat_window(511, 4, 128, 511, &lo, &hi);
  assert_int_equal(lo, 507);
  assert_int_equal(hi, 512);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(percentiles_interpolate_like_numpy),
      cmocka_unit_test(mean_and_ratio),
      cmocka_unit_test(buckets_within_the_decode_range),
      cmocka_unit_test(windows_are_clipped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
