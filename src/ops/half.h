/* half.h: IEEE 754 binary16 ("half float") to and from float in plain C: the float16 cache's
 * conversions (attention_op.c writes keys and values rounded to halves; the portable kernel
 * widens them back). Round to nearest, ties to even, as F16C's vcvtps2ph with rounding
 * mode 0: the vectorised kernels' conversions give the same bits (test_attention checks
 * every half and a spread of floats). */
#ifndef KVC_HALF_H
#define KVC_HALF_H

#include <stdint.h>
#include <string.h>

/* The half h as a float (exact: every half is a float). */
static inline float kvc__half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0x1f) /* infinity, NaN (payload kept) */
    u = sign | 0x7f800000u | man << 13;
  else if (exp) /* normal: rebias 15 -> 127 */
    u = sign | (exp + 112) << 23 | man << 13;
  else if (!man)
    u = sign;
  else { /* subnormal man x 2^-24: normalised */
    uint32_t m = man, e = 113;
    while (!(m & 0x400u))
      m <<= 1, e--;
    u = sign | e << 23 | (m & 0x3ffu) << 13;
  }
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* f rounded to the nearest half, ties to even; beyond the halves' range, an infinity; a NaN
 * stays a (quiet) NaN. */
static inline uint16_t kvc__half_from_float(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) /* NaN: quiet, the payload's high bits kept */
    return (uint16_t)(sign | 0x7e00u | (a >> 13 & 0x3ffu));
  if (a >= 0x477ff000u) /* 65520 and above (and infinity) round to infinity */
    return (uint16_t)(sign | 0x7c00u);
  if (a >= 0x38800000u) { /* a normal half: exponent rebiased, 13 bits rounded off */
    uint32_t r = a - 0x38000000u;
    r += 0x0fffu + ((r >> 13) & 1u);
    return (uint16_t)(sign | r >> 13);
  }
  const uint32_t e = a >> 23;
  if (e < 102) /* below 2^-25: rounds to zero */
    return sign;
  /* a subnormal half (or the smallest normal, by carry): m x 2^(e - 150) in units of 2^-24 */
  const uint32_t m = (a & 0x7fffffu) | 0x800000u, shift = 126 - e; /* 14 to 24 */
  uint32_t q = m >> shift;
  const uint32_t rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
  q += rest > half || (rest == half && (q & 1u));
  return (uint16_t)(sign | q);
}

#endif
