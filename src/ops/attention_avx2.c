/* attention_avx2.c: the attention kernel with AVX2 and FMA (compiled with -mavx2 -mfma; run
 * only where the CPU has both, and F16C for a float16 cache). head_dim is a multiple of 8. See
 * attention_kernel.h.
 *
 * Scores: eight dot products at a time (eight keys of one head, four keys of two heads or two
 * of four), each with its own accumulator over head_dim, reduced together by one
 * horizontal-add tree that sums every lane in the same order: each vector of a key is loaded
 * (a float16 or 8-bit cache's converted) once for up to four heads, and a score's bits do not
 * depend on how many heads shared its key. Probabilities: a polynomial exp over eight scores
 * at once. Values: eight vectors of output columns kept in registers (64 columns of one head,
 * 32 of two, 16 of four) while the block's value rows stream past, each row's values loaded
 * (converted) once for those heads. No block is widened onto the stack (PERFORMANCE #81). */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "attention_exp.h"
#include "attention_kernel.h"
#include "q8.h"

/* Lane j of the result: the sum of the eight lanes of a[j], every lane by the same tree
 * ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)). */
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

/* Values i..i+7 of row j of x, rows of the cache's kind: floats; halves converted by F16C's
 * vcvtph2ps (exact); 8-bit codes sign-extended, converted (exact) and multiplied by their
 * row's scale. */
static inline __m256 row8(const void *x, kvc__cache_kind kind, int d, int j, int i) {
  if (kind == KVC_CACHE_F16)
    return _mm256_cvtph_ps(
        _mm_loadu_si128((const __m128i *)((const uint16_t *)x + (size_t)j * d + i)));
  if (kind == KVC_CACHE_Q8) {
    const int8_t *row = (const int8_t *)x + (size_t)j * kvc__q8_row_bytes(d);
    const __m256i codes = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(row + i)));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(codes), _mm256_set1_ps(kvc__q8_scale(row, d)));
  }
  return _mm256_loadu_ps((const float *)x + (size_t)j * d + i);
}

/* p[h][j] = q[h] . k[j] for h < heads (1, 2 or 4) and j < full (a multiple of 8), with k's
 * rows of `kind` (heads and kind constants where inlined): 8 / heads keys at a time, each
 * loaded once for the heads, into lanes h * (8 / heads) + r of one tree. With `ahead`, the
 * rows ahead of the same index as the keys taken are asked for (all of a block's with its
 * first heads' scores: no split of #72's with the sums was clearly faster, PERFORMANCE #81). */
static inline void scores(const float *q, int heads, int d, const void *k, kvc__cache_kind kind,
                          int full, float (*p)[KVC_ATTN_BLOCK], const kvc__attend_ahead *ahead) {
  const int keys = 8 / heads;
  for (int j = 0; j < full; j += keys) {
    for (int r = 0; ahead && r < keys; r++)
      kvc__attend_prefetch_row(ahead, j + r);
    __m256 acc[8];
    for (int a = 0; a < 8; a++)
      acc[a] = _mm256_setzero_ps();
    for (int i = 0; i < d; i += 8)
      for (int r = 0; r < keys; r++) {
        const __m256 key = row8(k, kind, d, j + r, i);
        for (int h = 0; h < heads; h++)
          acc[h * keys + r] =
              _mm256_fmadd_ps(_mm256_loadu_ps(q + (size_t)h * d + i), key, acc[h * keys + r]);
      }
    const __m256 s = sum8x8(acc);
    const __m128 lo = _mm256_castps256_ps128(s), hi = _mm256_extractf128_ps(s, 1);
    if (heads == 1) {
      _mm256_storeu_ps(p[0] + j, s);
    } else if (heads == 2) {
      _mm_storeu_ps(p[0] + j, lo);
      _mm_storeu_ps(p[1] + j, hi);
    } else {
      _mm_storel_pi((__m64 *)(p[0] + j), lo);
      _mm_storeh_pi((__m64 *)(p[1] + j), lo);
      _mm_storel_pi((__m64 *)(p[2] + j), hi);
      _mm_storeh_pi((__m64 *)(p[3] + j), hi);
    }
  }
}

/* scores for every head of the group: four at a time, then two, then one; the first call
 * asks for the rows ahead. */
static inline void scores_group(const float *q, int group, int d, const void *k,
                                kvc__cache_kind kind, int full, float (*p)[KVC_ATTN_BLOCK],
                                const kvc__attend_ahead *ahead) {
  int g = 0;
  for (; g + 4 <= group; g += 4, ahead = NULL)
    scores(q + (size_t)g * d, 4, d, k, kind, full, p + g, ahead);
  for (; g + 2 <= group; g += 2, ahead = NULL)
    scores(q + (size_t)g * d, 2, d, k, kind, full, p + g, ahead);
  for (; g < group; g++, ahead = NULL)
    scores(q + (size_t)g * d, 1, d, k, kind, full, p + g, ahead);
}

/* out[h] = out[h] * rescale[h] + sum_j p[h][j] v[j] for h < heads (1, 2 or 4) with v's rows of
 * `kind` (both constants where inlined): 8 / heads vectors of each head's columns in
 * registers while the block's value rows stream past, each row's values loaded once for the
 * heads; columns past the last such slice 8 at a time. */
static inline void accumulate(float *out, int heads, int d, const float *rescale,
                              const float (*p)[KVC_ATTN_BLOCK], const void *v, kvc__cache_kind kind,
                              int nb) {
  const int cols = 8 / heads;
  int i = 0;
  for (; i + 8 * cols <= d; i += 8 * cols) {
    __m256 acc[8];
    for (int h = 0; h < heads; h++)
      for (int c = 0; c < cols; c++)
        acc[h * cols + c] = _mm256_mul_ps(_mm256_loadu_ps(out + (size_t)h * d + i + 8 * c),
                                          _mm256_set1_ps(rescale[h]));
    for (int j = 0; j < nb; j++) {
      __m256 x[8];
      for (int c = 0; c < cols; c++)
        x[c] = row8(v, kind, d, j, i + 8 * c);
      for (int h = 0; h < heads; h++) {
        const __m256 pj = _mm256_set1_ps(p[h][j]);
        for (int c = 0; c < cols; c++)
          acc[h * cols + c] = _mm256_fmadd_ps(pj, x[c], acc[h * cols + c]);
      }
    }
    for (int h = 0; h < heads; h++)
      for (int c = 0; c < cols; c++)
        _mm256_storeu_ps(out + (size_t)h * d + i + 8 * c, acc[h * cols + c]);
  }
  for (; i < d; i += 8) {
    __m256 acc[4];
    for (int h = 0; h < heads; h++)
      acc[h] = _mm256_mul_ps(_mm256_loadu_ps(out + (size_t)h * d + i), _mm256_set1_ps(rescale[h]));
    for (int j = 0; j < nb; j++) {
      const __m256 x = row8(v, kind, d, j, i);
      for (int h = 0; h < heads; h++)
        acc[h] = _mm256_fmadd_ps(_mm256_set1_ps(p[h][j]), x, acc[h]);
    }
    for (int h = 0; h < heads; h++)
      _mm256_storeu_ps(out + (size_t)h * d + i, acc[h]);
  }
}

/* How many heads' sums share a pass over the value rows. Up to four (fewer columns of each in
 * registers: 16 of four heads) for 8-bit rows, whose conversion is the dearest; two for
 * halves; one (each head's 64 columns a pass) for floats, which need no conversion and, a
 * cache line of a row per pass when four heads share it, waited longest on L1 misses
 * (PERFORMANCE #81). */
static inline int heads_per_sum(kvc__cache_kind kind) {
  return kind == KVC_CACHE_Q8 ? 4 : kind == KVC_CACHE_F16 ? 2 : 1;
}

/* accumulate for every head of the group, heads_per_sum(kind) or fewer at a time. */
static inline void accumulate_group(float *out, int group, int d, const float *rescale,
                                    const float (*p)[KVC_ATTN_BLOCK], const void *v,
                                    kvc__cache_kind kind, int nb) {
  const int most = heads_per_sum(kind);
  int g = 0;
  for (; most == 4 && g + 4 <= group; g += 4)
    accumulate(out + (size_t)g * d, 4, d, rescale + g, p + g, v, kind, nb);
  for (; most >= 2 && g + 2 <= group; g += 2)
    accumulate(out + (size_t)g * d, 2, d, rescale + g, p + g, v, kind, nb);
  for (; g < group; g++)
    accumulate(out + (size_t)g * d, 1, d, rescale + g, p + g, v, kind, nb);
}

/* One block of a head: the scores of keys past the last whole eight (one at a time, each by
 * its own sum), then the running maximum, the probabilities and the rescale of what was
 * accumulated. */
static inline void block_softmax(const float *q, int d, const void *k, kvc__cache_kind kind, int nb,
                                 float *pg, float *max, float *sum, float *rescale) {
  const int padded = (nb + 7) & ~7;
  for (int j = nb & ~7; j < nb; j++) {
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < d; i += 8)
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), row8(k, kind, d, j, i), acc);
    pg[j] = sum8(acc);
  }
  for (int j = nb; j < padded; j++)
    pg[j] = -INFINITY;
  __m256 vmax = _mm256_set1_ps(*max);
  for (int j = 0; j < padded; j += 8)
    vmax = _mm256_max_ps(vmax, _mm256_load_ps(pg + j));
  const float new_max = max8(vmax);
  *rescale = expf(*max - new_max);
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
  *sum = *sum * *rescale + sum8(total);
  *max = new_max;
}

/* The kernel with the cache's kind a constant (one copy a kind). */
static inline void attend(const float *q, int group, int d, const void *k, const void *v,
                          kvc__cache_kind kind, int64_t n, float *out) {
  float max[KVC_ATTN_MAX_GROUP], sum[KVC_ATTN_MAX_GROUP], rescale[KVC_ATTN_MAX_GROUP];
  /* rows padded to whole vectors; the padding holds probability 0 */
  _Alignas(32) float p[KVC_ATTN_MAX_GROUP][KVC_ATTN_BLOCK];
  for (int g = 0; g < group; g++) {
    max[g] = -INFINITY;
    sum[g] = 0.0f;
  }
  memset(out, 0, (size_t)group * (size_t)d * sizeof *out);
  const size_t row = kvc__cache_row_bytes(kind, d);
  for (int64_t j0 = 0; j0 < n; j0 += KVC_ATTN_BLOCK) {
    const int nb = n - j0 < KVC_ATTN_BLOCK ? (int)(n - j0) : KVC_ATTN_BLOCK;
    const void *keys = (const char *)k + (size_t)j0 * row;
    const kvc__attend_ahead ahead = kvc__attend_ahead_of(k, v, kind, d, j0, n);
    scores_group(q, group, d, keys, kind, nb & ~7, p, &ahead);
    for (int g = 0; g < group; g++)
      block_softmax(q + (size_t)g * d, d, keys, kind, nb, p[g], max + g, sum + g, rescale + g);
    accumulate_group(out, group, d, rescale, p, (const char *)v + (size_t)j0 * row, kind, nb);
  }
  for (int g = 0; g < group; g++) {
    const __m256 inv = _mm256_set1_ps(1.0f / sum[g]);
    for (int i = 0; i < d; i += 8)
      _mm256_storeu_ps(out + (size_t)g * d + i,
                       _mm256_mul_ps(_mm256_loadu_ps(out + (size_t)g * d + i), inv));
  }
}

void kvc__attend_avx2(const float *q, int group, int d, const void *k, const void *v,
                      kvc__cache_kind kind, int64_t n, float *out) {
  switch (kind) {
  case KVC_CACHE_F16:
    attend(q, group, d, k, v, KVC_CACHE_F16, n, out);
    break;
  case KVC_CACHE_Q8:
    attend(q, group, d, k, v, KVC_CACHE_Q8, n, out);
    break;
  default:
    attend(q, group, d, k, v, KVC_CACHE_F32, n, out);
  }
}
