/* rng.c: the non-inline part of rng.h. */
#include "rng.h"

#include <math.h>

double kvc__rng_normal(kvc__rng *r) {
  double u1 = 1.0 - kvc__rng_uniform(r); /* (0, 1]: log(u1) is finite */
  double u2 = kvc__rng_uniform(r);
  return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}
