/* quant.c: see quant.h. */
#include "quant.h"

#include <math.h>
#include <string.h>

size_t kvc__q_weight_bytes(const kvc__qshape *s) {
  return (size_t)s->n * (size_t)kvc__q_blocks(s) * (size_t)(s->block * s->bits / 8);
}

size_t kvc__q_scale_count(const kvc__qshape *s) {
  return (size_t)s->n * (size_t)kvc__q_blocks(s);
}

size_t kvc__q_zero_bytes(const kvc__qshape *s) {
  if (s->symmetric)
    return 0;
  const size_t blocks = (size_t)kvc__q_blocks(s);
  return (size_t)s->n * (s->bits == 4 ? (blocks + 1) / 2 : blocks);
}

static void put(uint8_t *bytes, int bits, int64_t index, unsigned code) {
  if (bits == 8)
    bytes[index] = (uint8_t)code;
  else
    bytes[index / 2] |= (uint8_t)(code << (4 * (index & 1)));
}

static unsigned get(const uint8_t *bytes, int bits, int64_t index) {
  return bits == 8 ? bytes[index] : (bytes[index / 2] >> (4 * (index & 1))) & 15u;
}

float kvc__q_half_up(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  const int32_t exp = (int32_t)((u >> 23) & 0xffu) - 127;
  if (exp < -14 || exp > 15)
    return f; /* outside the normal halves (or not finite): kept */
  const uint32_t low = u & 0x1fffu;
  u &= ~0x1fffu;
  if (low)
    u += 0x2000u; /* the next half up in magnitude (a carry moves to the next power of 2) */
  float up;
  memcpy(&up, &u, sizeof up);
  return fabsf(up) <= 65504.0f ? up : f;
}

void kvc__quantize(const kvc__qshape *s, const float *w, uint8_t *b, float *scales,
                   uint8_t *zero_points) {
  const int64_t blocks = kvc__q_blocks(s), per_block = s->block;
  const unsigned top = (1u << s->bits) - 1, mid = 1u << (s->bits - 1);
  const int64_t zp_row = s->bits == 4 ? (blocks + 1) / 2 * 2 : blocks; /* codes per row */
  for (int64_t n = 0; n < s->n; n++) {
    for (int64_t blk = 0; blk < blocks; blk++) {
      const int64_t k0 = blk * per_block, k1 = k0 + per_block < s->k ? k0 + per_block : s->k;
      float scale;
      unsigned zp;
      if (s->symmetric) {
        float m = 0;
        for (int64_t k = k0; k < k1; k++)
          m = fabsf(w[k * s->n + n]) > fabsf(m) ? w[k * s->n + n] : m;
        scale = m != 0 ? kvc__q_half_up(m / -(float)mid) : 1.0f;
        zp = mid;
      } else {
        float lo = 0, hi = 0;
        for (int64_t k = k0; k < k1; k++) {
          lo = fminf(lo, w[k * s->n + n]);
          hi = fmaxf(hi, w[k * s->n + n]);
        }
        scale = hi > lo ? kvc__q_half_up((hi - lo) / (float)top) : 1.0f;
        const float z = roundf(-lo / scale);
        zp = z >= 0 && z <= (float)top ? (unsigned)z : z > (float)top ? top : 0;
        put(zero_points, s->bits, n * zp_row + blk, zp);
      }
      scales[n * blocks + blk] = scale;
      uint8_t *blob = b + (n * blocks + blk) * (per_block * s->bits / 8);
      for (int64_t j = 0; j < per_block; j++) {
        unsigned code = zp;
        if (k0 + j < k1) {
          const float q = roundf(w[(k0 + j) * s->n + n] / scale) + (float)zp;
          code = q >= 0 && q <= (float)top ? (unsigned)q : q > (float)top ? top : 0; /* NaN: 0 */
        }
        put(blob, s->bits, j, code);
      }
    }
  }
}

float kvc__dequantize(const kvc__qshape *s, const uint8_t *b, const float *scales,
                      const uint8_t *zero_points, int64_t k, int64_t n) {
  const int64_t blocks = kvc__q_blocks(s), blk = k / s->block, j = k % s->block;
  const int64_t zp_row = s->bits == 4 ? (blocks + 1) / 2 * 2 : blocks;
  const unsigned zp =
      zero_points ? get(zero_points, s->bits, n * zp_row + blk) : 1u << (s->bits - 1);
  const uint8_t *blob = b + (n * blocks + blk) * (s->block * s->bits / 8);
  return ((float)get(blob, s->bits, j) - (float)zp) * scales[n * blocks + blk];
}

float kvc__q_step(const kvc__qshape *s, const float *scales, int64_t k, int64_t n) {
  return fabsf(scales[n * kvc__q_blocks(s) + k / s->block]);
}
