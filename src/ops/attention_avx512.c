/* attention_avx512.c: the attention kernel with AVX-512F (compiled with -mavx512f -mavx2
 * -mfma; run only where the CPU has them). head_dim is a multiple of 16. Same structure as
 * attention_avx2.c, sixteen floats per vector: scores eight keys at a time (each key's
 * 16-wide sum folded to 8 lanes, then one horizontal-add tree), exp over sixteen scores,
 * the output kept in registers one 16-float column at a time. See attention_kernel.h. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "attention_exp.h"
#include "attention_kernel.h"
#include "q8.h"

static inline __m256 fold(__m512 a) {
  return _mm256_add_ps(_mm512_castps512_ps256(a),
                       _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}

/* Lane j of the result: the sum of the sixteen lanes of a[j]. */
static inline __m256 sum8x16(const __m512 a[8]) {
  const __m256 s01 = _mm256_hadd_ps(fold(a[0]), fold(a[1]));
  const __m256 s23 = _mm256_hadd_ps(fold(a[2]), fold(a[3]));
  const __m256 s45 = _mm256_hadd_ps(fold(a[4]), fold(a[5]));
  const __m256 s67 = _mm256_hadd_ps(fold(a[6]), fold(a[7]));
  const __m256 s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
  return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20),
                       _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

static inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(KVC_EXP_LO)), _mm512_set1_ps(KVC_EXP_HI));
  const __m512 t = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(KVC_EXP_LOG2E)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(t, _mm512_set1_ps(KVC_EXP_LN2_HI), x);
  r = _mm512_fnmadd_ps(t, _mm512_set1_ps(KVC_EXP_LN2_LO), r);
  __m512 y = _mm512_set1_ps(KVC_EXP_P0);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(KVC_EXP_P1));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(KVC_EXP_P2));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(KVC_EXP_P3));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(KVC_EXP_P4));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(KVC_EXP_P5));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(y, t); /* y * 2^t */
}

/* scores[j] = q . k[j] for j < nb */
static void scores(const float *q, int d, const float *k, int nb, float *out) {
  int j = 0;
  for (; j + 8 <= nb; j += 8) {
    __m512 acc[8];
    for (int r = 0; r < 8; r++)
      acc[r] = _mm512_setzero_ps();
    for (int i = 0; i < d; i += 16) {
      const __m512 qi = _mm512_loadu_ps(q + i);
      for (int r = 0; r < 8; r++)
        acc[r] = _mm512_fmadd_ps(qi, _mm512_loadu_ps(k + (size_t)(j + r) * d + i), acc[r]);
    }
    _mm256_storeu_ps(out + j, sum8x16(acc));
  }
  for (; j < nb; j++) {
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < d; i += 16)
      acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(k + (size_t)j * d + i), acc);
    out[j] = _mm512_reduce_add_ps(acc);
  }
}

/* o = o * rescale + sum_j p[j] v[j]: 64 columns at a time in four registers, two keys in
 * flight (eight independent FMA chains), the rest 16 at a time. */
static void accumulate(float *o, int d, float rescale, const float *p, const float *v, int nb) {
  const __m512 r = _mm512_set1_ps(rescale);
  int i = 0;
  for (; i + 64 <= d; i += 64) {
    __m512 even[4], odd[4];
    for (int c = 0; c < 4; c++) {
      even[c] = _mm512_mul_ps(_mm512_loadu_ps(o + i + 16 * c), r);
      odd[c] = _mm512_setzero_ps();
    }
    int j = 0;
    for (; j + 2 <= nb; j += 2) {
      const __m512 p0 = _mm512_set1_ps(p[j]), p1 = _mm512_set1_ps(p[j + 1]);
      const float *row0 = v + (size_t)j * d + i, *row1 = row0 + d;
      for (int c = 0; c < 4; c++) {
        even[c] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(row0 + 16 * c), even[c]);
        odd[c] = _mm512_fmadd_ps(p1, _mm512_loadu_ps(row1 + 16 * c), odd[c]);
      }
    }
    if (j < nb) {
      const __m512 p0 = _mm512_set1_ps(p[j]);
      for (int c = 0; c < 4; c++)
        even[c] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v + (size_t)j * d + i + 16 * c), even[c]);
    }
    for (int c = 0; c < 4; c++)
      _mm512_storeu_ps(o + i + 16 * c, _mm512_add_ps(even[c], odd[c]));
  }
  for (; i < d; i += 16) {
    __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(o + i), r);
    for (int j = 0; j < nb; j++)
      acc = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), _mm512_loadu_ps(v + (size_t)j * d + i), acc);
    _mm512_storeu_ps(o + i, acc);
  }
}

/* A narrow cache's rows as floats, sixteen at a time: halves by vcvtph2ps (exact), 8-bit
 * codes sign-extended, converted (exact) and multiplied by the row's scale. d is a multiple
 * of 16. */
static void widen(float *dst, const void *src, kvc__cache_kind kind, int d, int rows) {
  if (kind == KVC_CACHE_F16) {
    const uint16_t *h = src;
    for (size_t i = 0; i < (size_t)rows * (size_t)d; i += 16)
      _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
    return;
  }
  const size_t bytes = kvc__q8_row_bytes(d);
  for (int r = 0; r < rows; r++, dst += d) {
    const int8_t *row = (const int8_t *)src + (size_t)r * bytes;
    const __m512 scale = _mm512_set1_ps(kvc__q8_scale(row, d));
    for (int i = 0; i < d; i += 16) {
      const __m512i codes = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(row + i)));
      _mm512_storeu_ps(dst + i, _mm512_mul_ps(_mm512_cvtepi32_ps(codes), scale));
    }
  }
}

void kvc__attend_avx512(const float *q, int group, int d, const void *k, const void *v,
                        kvc__cache_kind kind, int64_t n, float *out) {
  _Alignas(64) float kw[KVC_ATTN_BLOCK * KVC_ATTN_NARROW_MAX_DIM];
  _Alignas(64) float vw[KVC_ATTN_BLOCK * KVC_ATTN_NARROW_MAX_DIM];
  float max[KVC_ATTN_MAX_GROUP], sum[KVC_ATTN_MAX_GROUP];
  _Alignas(64) float p[KVC_ATTN_MAX_GROUP][KVC_ATTN_BLOCK];
  for (int g = 0; g < group; g++) {
    max[g] = -INFINITY;
    sum[g] = 0.0f;
  }
  memset(out, 0, (size_t)group * (size_t)d * sizeof *out);
  for (int64_t j0 = 0; j0 < n; j0 += KVC_ATTN_BLOCK) {
    const int nb = n - j0 < KVC_ATTN_BLOCK ? (int)(n - j0) : KVC_ATTN_BLOCK;
    const float *kb, *vb;
    kvc__attend_block(k, v, kind, d, j0, nb, widen, kw, vw, &kb, &vb);
    kvc__attend_prefetch_next(k, v, d, kind, j0, n);
    for (int g = 0; g < group; g++) {
      float *pg = p[g];
      scores(q + (size_t)g * d, d, kb, nb, pg);
      __m512 vmax = _mm512_set1_ps(max[g]);
      for (int j = 0; j < nb; j += 16) {
        const __mmask16 live = nb - j >= 16 ? 0xffff : (__mmask16)((1u << (nb - j)) - 1);
        vmax = _mm512_mask_max_ps(vmax, live, vmax, _mm512_maskz_loadu_ps(live, pg + j));
      }
      const float new_max = _mm512_reduce_max_ps(vmax);
      const float rescale = expf(max[g] - new_max);
      const __m512 m = _mm512_set1_ps(new_max);
      __m512 total = _mm512_setzero_ps();
      for (int j = 0; j < nb; j += 16) {
        /* lanes past nb are neither read nor kept: probability 0 */
        const __mmask16 live = nb - j >= 16 ? 0xffff : (__mmask16)((1u << (nb - j)) - 1);
        const __m512 e =
            _mm512_maskz_mov_ps(live, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(live, pg + j), m)));
        _mm512_store_ps(pg + j, e);
        total = _mm512_add_ps(total, e);
      }
      sum[g] = sum[g] * rescale + _mm512_reduce_add_ps(total);
      max[g] = new_max;
      accumulate(out + (size_t)g * d, d, rescale, pg, vb, nb);
    }
  }
  for (int g = 0; g < group; g++) {
    const __m512 inv = _mm512_set1_ps(1.0f / sum[g]);
    for (int i = 0; i < d; i += 16)
      _mm512_storeu_ps(out + (size_t)g * d + i,
                       _mm512_mul_ps(_mm512_loadu_ps(out + (size_t)g * d + i), inv));
  }
}
