/* quant.h: block quantisation of a weight matrix into the layout of ONNX Runtime's
 * com.microsoft.MatMulNBits, and back (for tests and evaluation).
 *
 * W is (K, N), applied as x W. For each output column n and each block of `block` rows of K:
 *   asymmetric: the block's range, widened to include 0, split into 2^bits - 1 steps:
 *               scale = (max - min) / (2^bits - 1), zero point = round(-min / scale)
 *   symmetric:  the value of largest magnitude m maps to code 0: scale = m / -2^(bits-1),
 *               zero point 2^(bits-1) (MatMulNBits' default, so none is stored)
 *   code = clamp(round(w / scale) + zero point, 0, 2^bits - 1); w ~ (code - zero point) * scale
 * Each scale is first rounded up in magnitude to an IEEE half float's value (kvc__q_half_up;
 * up, so that the block's range still fits its codes): stored as a float, as MatMulNBits
 * takes it, but exactly a half, so that kvcache's products keep it in two bytes (the panels,
 * matmul_kernel.h) and stream fewer bytes per weight; llama.cpp's blocks hold fp16 scales.
 * Codes are packed low bits first along K; rows past K pad with the zero point (value 0). */
#ifndef KVC_QUANT_H
#define KVC_QUANT_H

#include <stddef.h>
#include <stdint.h>

typedef struct kvc__qshape {
  int64_t k, n;
  int bits;  /* 4 or 8 */
  int block; /* a power of two >= 16 */
  int symmetric;
} kvc__qshape;

static inline int64_t kvc__q_blocks(const kvc__qshape *s) {
  return (s->k + s->block - 1) / s->block;
}
/* Bytes of B (N, blocks, block * bits / 8), of the scales (N * blocks floats), of the zero
 * points (N * blocks bytes for 8 bits, N * ceil(blocks / 2) for 4; 0 when symmetric). */
size_t kvc__q_weight_bytes(const kvc__qshape *s);
size_t kvc__q_scale_count(const kvc__qshape *s);
size_t kvc__q_zero_bytes(const kvc__qshape *s);

/* f rounded up in magnitude to an IEEE half float's value, when f is finite and within the
 * half floats' normal range (2^-14 to 65504); otherwise f itself (a relative change of at
 * most 2^-10). */
float kvc__q_half_up(float f);

/* Quantise w (K * N floats, row-major) into b, scales and zero_points (NULL when symmetric),
 * all of the sizes above, zeroed by the caller. */
void kvc__quantize(const kvc__qshape *s, const float *w, uint8_t *b, float *scales,
                   uint8_t *zero_points);

/* The value the quantised matrix holds at (k, n). */
float kvc__dequantize(const kvc__qshape *s, const uint8_t *b, const float *scales,
                      const uint8_t *zero_points, int64_t k, int64_t n);

/* The step (|scale|) of the block holding (k, n). */
float kvc__q_step(const kvc__qshape *s, const float *scales, int64_t k, int64_t n);

#endif
