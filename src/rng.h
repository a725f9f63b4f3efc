/* rng.h: a small seeded random number generator (SplitMix64), the same on every platform,
 * so that one seed gives byte-identical models and identical samples run after run. */
#ifndef KVC_RNG_H
#define KVC_RNG_H

#include <stdint.h>

typedef struct kvc__rng {
  uint64_t state;
} kvc__rng;

static inline kvc__rng kvc__rng_seeded(uint64_t seed) {
  return (kvc__rng){seed};
}

/* Next 64 random bits (SplitMix64: Steele, Lea & Flood, 2014). */
static inline uint64_t kvc__rng_u64(kvc__rng *r) {
  uint64_t z = (r->state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double kvc__rng_uniform(kvc__rng *r) {
  return (double)(kvc__rng_u64(r) >> 11) * 0x1.0p-53;
}

/* Standard normal, by Box-Muller (one of the pair is used; simplicity over speed). */
double kvc__rng_normal(kvc__rng *r);

#endif
