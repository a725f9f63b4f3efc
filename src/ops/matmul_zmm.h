/* matmul_zmm.h: what the two 512-bit paths of the int8-activation products share
 * (matmul_avx512.c, matmul_amx.c): two neighbouring 8-column panels (matmul_kernel.h) taken
 * as one 16-column pair. Included after matmul_x86.h, in files built with AVX-512 flags. */
#ifndef KVC_MATMUL_ZMM_H
#define KVC_MATMUL_ZMM_H

#include <immintrin.h>

#include "matmul_kernel.h"

enum { KVC_QMM_PAIR = 2 * KVC_QMM_COLUMNS }; /* columns of a pair of panels: one zmm of int32 */

/* The same 32 bytes of panels p and p + 1, side by side. */
static inline __m512i kvc__qmm_pair_load(const uint8_t *a, const uint8_t *b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                            _mm256_loadu_si256((const __m256i *)b), 1);
}

/* The scales of 8 columns at `cell` and of the next panel's 8, as 16 floats. */
static inline __m512 kvc__qmm_scales16(const kvc__qpanels *p, size_t cell, size_t panel_cells) {
  return _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(kvc__qmm_scales8(p, cell))),
                         _mm256_castps_pd(kvc__qmm_scales8(p, cell + panel_cells)), 1));
}

/* The zero points of 8 columns at `z` and of the next panel's 8, as 16 int32. */
static inline __m512i kvc__qmm_zeros16(const uint8_t *z, size_t panel_cells) {
  return _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(
      _mm_loadl_epi64((const __m128i *)z), _mm_loadl_epi64((const __m128i *)(z + panel_cells))));
}

/* Step 3 for one row and one block of a pair, given the exact d of each column, the row's
 * scale sa and the columns' sw: acc + (float)d x (sa x sw). */
static inline __m512 kvc__qmm_scale_add16(__m512 acc, __m512i d, __m512 sw, float sa) {
  const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(sa), sw);
  return _mm512_add_ps(acc, _mm512_mul_ps(_mm512_cvtepi32_ps(d), scale));
}

/* The same from the block's sums of row codes x weight codes: d = sums less zero point x the
 * row's code sum (row_sum). |sum| <= 127 x 256 and |zero point| <= 255 fit 16 bits, so vpmaddwd
 * (low halves multiplied, high halves 0 x 0) gives the exact 32-bit product, without vpmulld's two
 * micro-ops on the dot products' port. */
static inline __m512 kvc__qmm_step3_16(__m512 acc, __m512i sums, __m512i zp, __m512 sw, float sa,
                                       int32_t row_sum) {
  const __m512i d =
      _mm512_sub_epi32(sums, _mm512_madd_epi16(zp, _mm512_set1_epi32(row_sum & 0xffff)));
  return kvc__qmm_scale_add16(acc, d, sw, sa);
}

/* - zero point x row_sum in each column (vpmaddwd, as in step3_16; -row_sum fits 16 bits too):
 * a block's sums started here and added the products to are d itself, one subtraction fewer
 * a row and block. */
static inline __m512i kvc__qmm_zero_correction16(__m512i zp, int32_t row_sum) {
  return _mm512_madd_epi16(zp, _mm512_set1_epi32(-row_sum & 0xffff));
}

/* Row `row`'s 16 results of the pair at column c0 into y, those below n1. */
static inline void kvc__qmm_store16(float *y, __m512 acc, int64_t c0, int64_t n1) {
  if (n1 - c0 >= KVC_QMM_PAIR) {
    _mm512_storeu_ps(y + c0, acc);
    return;
  }
  float out[KVC_QMM_PAIR];
  _mm512_storeu_ps(out, acc);
  for (int j = 0; c0 + j < n1; j++)
    y[c0 + j] = out[j];
}

#endif
