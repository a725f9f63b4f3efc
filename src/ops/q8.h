/* q8.h: the 8-bit cache's rows in plain C. A row (one position of one K/V head) is head_dim
 * signed 8-bit codes followed by its scale, a float (4 bytes, native byte order):
 *
 *   value[i] = code[i] x scale,   scale = max |x| / 127,   code[i] = round(x[i] / scale)
 *
 * symmetric (no zero point: keys and values centre on zero), rounded to nearest, ties to
 * even; 8 + 32 / head_dim bits a value (8.5 at head size 64, as llama.cpp's q8_0). One scale
 * per position and head, not per block of positions: a row is written once, as its token
 * arrives, and never requantised when a later token is larger. attention_op.c quantises rows
 * as it writes them; each kernel path dequantises with one float multiplication a value
 * (a single rounding: every path's floats are the same). */
#ifndef KVC_Q8_H
#define KVC_Q8_H

#include <math.h>
#include <stdint.h>
#include <string.h>

enum { KVC_Q8_SCALE_BYTES = 4, KVC_Q8_MAX = 127 };

/* Bytes of a row of d values. */
static inline size_t kvc__q8_row_bytes(int d) {
  return (size_t)d + KVC_Q8_SCALE_BYTES;
}

/* The row's scale (stored after its d codes). */
static inline float kvc__q8_scale(const int8_t *row, int d) {
  float s;
  memcpy(&s, row + d, sizeof s);
  return s;
}

/* x[0..d) quantised into row (kvc__q8_row_bytes(d) bytes). A NaN, and every value of a row
 * holding an infinity, are not representable: they are stored as 0 (the row's other values
 * as they would be). */
static inline void kvc__q8_quantize_row(const float *x, int d, int8_t *row) {
  float amax = 0.0f;
  for (int i = 0; i < d; i++) {
    const float a = fabsf(x[i]);
    amax = a > amax ? a : amax; /* a NaN compares false: skipped */
  }
  const float scale = isfinite(amax) ? amax / (float)KVC_Q8_MAX : 0.0f;
  for (int i = 0; i < d; i++) {
    /* in double: a float quotient could round onto k + 1/2 from just above or below it (and
     * then go to the even side, the wrong one); a double quotient of two floats is within
     * 2^-53 of the truth, far closer than any true quotient below 128 comes to k + 1/2
     * without being it */
    const double t = scale > 0.0f ? (double)x[i] / scale : 0.0;
    /* |t| <= 127; a NaN fails both tests and the last */
    row[i] = (int8_t)(t >= KVC_Q8_MAX    ? KVC_Q8_MAX
                      : t <= -KVC_Q8_MAX ? -KVC_Q8_MAX
                      : t == t           ? (int)nearbyint(t)
                                         : 0);
  }
  memcpy(row + d, &scale, sizeof scale);
}

/* Row `row`'s d values as floats. */
static inline void kvc__q8_dequantize_row(const int8_t *row, int d, float *out) {
  const float s = kvc__q8_scale(row, d);
  for (int i = 0; i < d; i++)
    out[i] = (float)row[i] * s;
}

#endif
