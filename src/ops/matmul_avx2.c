/* matmul_avx2.c: the int8-activation products with AVX2 (compiled with -mavx2; run only where
 * the CPU has it). pmaddubsw multiplies unsigned by signed bytes into saturating int16 pairs:
 * 4-bit codes (<= 15) times |q| <= 127 never saturate; 8-bit codes are taken as code - 128
 * (-128..127) with their sign moved onto q, so each pair stays within 2 x 128 x 127. See
 * matmul_x86.h and matmul_kernel.h. */
#include <immintrin.h>

#define KVC_QMM_NAME kvc__qmm_avx2
#define KVC_QMM_DOT4(acc, w, a)                                                                    \
  _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1)))
#define KVC_QMM_DOT8(acc, w, a) dot8(acc, w, a)
#define KVC_QMM_BIAS8           128
#define KVC_QMM_QUANTIZE        kvc__qmm_quantize_avx2

static inline __m256i dot8(__m256i acc, __m256i w, __m256i a) {
  const __m256i centred = _mm256_xor_si256(w, _mm256_set1_epi8((char)0x80));
  const __m256i pairs =
      _mm256_maddubs_epi16(_mm256_abs_epi8(centred), _mm256_sign_epi8(a, centred));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

#include "matmul_x86.h"
