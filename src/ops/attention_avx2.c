/* attention_avx2.c: the attention kernel with AVX2 and FMA (compiled with -mavx2 -mfma; run
 * only where the CPU has both, and F16C for a float16 cache). head_dim is a multiple of 8. See
 * attention_kernel.h.
 *
 * Scores: eight keys at a time, each with its own accumulator over head_dim, reduced
 * together by one horizontal-add tree (three hadds and a lane swap for eight dot products).
 * Probabilities: a polynomial exp over eight scores at once. Values: the output row kept in
 * registers one 8-float column at a time while the block's keys stream past. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "attention_exp.h"
#include "attention_kernel.h"
#include "q8.h"

/* Lane j of the result: the sum of the eight lanes of a[j]. */
static inline __m256 sum8x8(const __m256 a[8]) {
  const __m256 s01 = _mm256_hadd_ps(a[0], a[1]), s23 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 s45 = _mm256_hadd_ps(a[4], a[5]), s67 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
  return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20),
                       _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

static inline float sum8(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline float max8(__m256 a) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

static inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(KVC_EXP_LO)), _mm256_set1_ps(KVC_EXP_HI));
  const __m256 t = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(KVC_EXP_LOG2E)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(t, _mm256_set1_ps(KVC_EXP_LN2_HI), x);
  r = _mm256_fnmadd_ps(t, _mm256_set1_ps(KVC_EXP_LN2_LO), r);
  __m256 y = _mm256_set1_ps(KVC_EXP_P0);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(KVC_EXP_P1));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(KVC_EXP_P2));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(KVC_EXP_P3));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(KVC_EXP_P4));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(KVC_EXP_P5));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i two_t =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(t), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(two_t));
}

/* scores[j] = q . k[j] for j < nb */
static void scores(const float *q, int d, const float *k, int nb, float *out) {
  int j = 0;
  for (; j + 8 <= nb; j += 8) {
    __m256 acc[8];
    for (int r = 0; r < 8; r++)
      acc[r] = _mm256_setzero_ps();
    for (int i = 0; i < d; i += 8) {
      const __m256 qi = _mm256_loadu_ps(q + i);
      for (int r = 0; r < 8; r++)
        acc[r] = _mm256_fmadd_ps(qi, _mm256_loadu_ps(k + (size_t)(j + r) * d + i), acc[r]);
    }
    _mm256_storeu_ps(out + j, sum8x8(acc));
  }
  for (; j < nb; j++) {
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < d; i += 8)
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + (size_t)j * d + i), acc);
    out[j] = sum8(acc);
  }
}

/* o = o * rescale + sum_j p[j] v[j]: 64 columns at a time held in eight registers while
 * the block's value rows stream past (eight independent FMA chains), the rest 8 at a time. */
static void accumulate(float *o, int d, float rescale, const float *p, const float *v, int nb) {
  const __m256 r = _mm256_set1_ps(rescale);
  int i = 0;
  for (; i + 64 <= d; i += 64) {
    __m256 acc[8];
    for (int c = 0; c < 8; c++)
      acc[c] = _mm256_mul_ps(_mm256_loadu_ps(o + i + 8 * c), r);
    for (int j = 0; j < nb; j++) {
      const __m256 pj = _mm256_set1_ps(p[j]);
      const float *row = v + (size_t)j * d + i;
      for (int c = 0; c < 8; c++)
        acc[c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(row + 8 * c), acc[c]);
    }
    for (int c = 0; c < 8; c++)
      _mm256_storeu_ps(o + i + 8 * c, acc[c]);
  }
  for (; i < d; i += 8) {
    __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(o + i), r);
    for (int j = 0; j < nb; j++)
      acc = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(v + (size_t)j * d + i), acc);
    _mm256_storeu_ps(o + i, acc);
  }
}

/* A narrow cache's rows as floats, eight at a time: halves by F16C's vcvtph2ps (exact), 8-bit
 * codes sign-extended, converted (exact) and multiplied by the row's scale. d is a multiple
 * of 8. */
static void widen(float *dst, const void *src, kvc__cache_kind kind, int d, int rows) {
  if (kind == KVC_CACHE_F16) {
    const uint16_t *h = src;
    for (size_t i = 0; i < (size_t)rows * (size_t)d; i += 8)
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    return;
  }
  const size_t bytes = kvc__q8_row_bytes(d);
  for (int r = 0; r < rows; r++, dst += d) {
    const int8_t *row = (const int8_t *)src + (size_t)r * bytes;
    const __m256 scale = _mm256_set1_ps(kvc__q8_scale(row, d));
    for (int i = 0; i < d; i += 8) {
      const __m256i codes = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(row + i)));
      _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_cvtepi32_ps(codes), scale));
    }
  }
}

void kvc__attend_avx2(const float *q, int group, int d, const void *k, const void *v,
                      kvc__cache_kind kind, int64_t n, float *out) {
  _Alignas(32) float kw[KVC_ATTN_BLOCK * KVC_ATTN_NARROW_MAX_DIM];
  _Alignas(32) float vw[KVC_ATTN_BLOCK * KVC_ATTN_NARROW_MAX_DIM];
  float max[KVC_ATTN_MAX_GROUP], sum[KVC_ATTN_MAX_GROUP];
  /* rows padded to whole vectors; the padding holds probability 0 */
  _Alignas(32) float p[KVC_ATTN_MAX_GROUP][KVC_ATTN_BLOCK];
  for (int g = 0; g < group; g++) {
    max[g] = -INFINITY;
    sum[g] = 0.0f;
  }
  memset(out, 0, (size_t)group * (size_t)d * sizeof *out);
  /* a block's rows ahead asked for a share with each head (PERFORMANCE #72) */
  const int share = (KVC_ATTN_BLOCK + group - 1) / group;
  for (int64_t j0 = 0; j0 < n; j0 += KVC_ATTN_BLOCK) {
    const int nb = n - j0 < KVC_ATTN_BLOCK ? (int)(n - j0) : KVC_ATTN_BLOCK;
    const int padded = (nb + 7) & ~7;
    const float *kb, *vb;
    kvc__attend_block(k, v, kind, d, j0, nb, widen, kw, vw, &kb, &vb);
    const kvc__attend_ahead ahead = kvc__attend_ahead_of(k, v, kind, d, j0, n);
    for (int g = 0; g < group; g++) {
      kvc__attend_prefetch_share(&ahead, g, share, KVC_ATTN_BLOCK);
      float *pg = p[g];
      scores(q + (size_t)g * d, d, kb, nb, pg);
      for (int j = nb; j < padded; j++)
        pg[j] = -INFINITY;
      __m256 vmax = _mm256_set1_ps(max[g]);
      for (int j = 0; j < padded; j += 8)
        vmax = _mm256_max_ps(vmax, _mm256_load_ps(pg + j));
      const float new_max = max8(vmax);
      const float rescale = expf(max[g] - new_max);
      const __m256 m = _mm256_set1_ps(new_max);
      __m256 total = _mm256_setzero_ps();
      for (int j = 0; j < padded; j += 8) {
        /* exp8 clamps, so padding (-inf) would give a tiny positive number: mask it */
        __m256 e = exp8(_mm256_sub_ps(_mm256_load_ps(pg + j), m));
        e = _mm256_and_ps(
            e, _mm256_cmp_ps(_mm256_load_ps(pg + j), _mm256_set1_ps(-INFINITY), _CMP_NEQ_OQ));
        _mm256_store_ps(pg + j, e);
        total = _mm256_add_ps(total, e);
      }
      sum[g] = sum[g] * rescale + sum8(total);
      max[g] = new_max;
      accumulate(out + (size_t)g * d, d, rescale, pg, vb, nb);
    }
  }
  for (int g = 0; g < group; g++) {
    const __m256 inv = _mm256_set1_ps(1.0f / sum[g]);
    for (int i = 0; i < d; i += 8)
      _mm256_storeu_ps(out + (size_t)g * d + i,
                       _mm256_mul_ps(_mm256_loadu_ps(out + (size_t)g * d + i), inv));
  }
}
