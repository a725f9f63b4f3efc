/* attention_avx512.c: the attention kernel with AVX-512F (compiled with -mavx512f -mavx2
 * -mfma; run only where the CPU has them). head_dim is a multiple of 16. A block's 32 scores
 * of a head are two vectors (sixteen keys' sums reduced by one transposing tree); a full
 * block's keys are loaded (and converted) once for four heads at a time; every head's maximum
 * and exp then follow, and the value rows are taken once for up to four heads, whose 64-column
 * slices of the output stay in registers. See attention_kernel.h. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "attention_exp.h"
#include "attention_kernel.h"
#include "q8.h"

/* Lane j of the result: the sum of the sixteen lanes of a[j]. A transposing tree: pairs of
 * vectors interleaved and added (sixteen to eight, then four, each 128-bit lane holding
 * partial sums of four keys), then the 128-bit lanes of pairs gathered and added twice. */
static inline __m512 sum16x16(const __m512 a[16]) {
  __m512 b[8], c[4];
  for (int i = 0; i < 8; i++)
    b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]),
                         _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
  for (int i = 0; i < 4; i++) {
    const __m512d x = _mm512_castps_pd(b[2 * i]), y = _mm512_castps_pd(b[2 * i + 1]);
    c[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  const __m512 d0 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512 d1 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_shuffle_f32x4(c[2], c[3], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(d0, d1, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(d0, d1, _MM_SHUFFLE(3, 1, 3, 1)));
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

/* Lane j: q . k[j] for j < count (<= 16), 0 past it. */
static inline __m512 scores16(const float *q, int d, const float *k, int count) {
  __m512 acc[16];
  for (int r = 0; r < 16; r++)
    acc[r] = _mm512_setzero_ps();
  for (int i = 0; i < d; i += 16) {
    const __m512 qi = _mm512_loadu_ps(q + i);
    for (int r = 0; r < 16; r++)
      if (r < count)
        acc[r] = _mm512_fmadd_ps(qi, _mm512_loadu_ps(k + (size_t)r * d + i), acc[r]);
  }
  return sum16x16(acc);
}

/* A block's scores of one head: keys 0-15 in s[0], 16-31 in s[1] (0 past nb). Head size 64
 * (the common one) a constant: the sixteen rows' offsets fold into the loads. */
static inline void block_scores(const float *q, int d, const float *k, int nb, __m512 s[2]) {
  if (nb == KVC_ATTN_BLOCK && d == 64) {
    s[0] = scores16(q, 64, k, 16);
    s[1] = scores16(q, 64, k + 16 * 64, 16);
  } else if (nb == KVC_ATTN_BLOCK) {
    s[0] = scores16(q, d, k, 16);
    s[1] = scores16(q, d, k + (size_t)16 * d, 16);
  } else {
    s[0] = scores16(q, d, k, nb < 16 ? nb : 16);
    s[1] = nb > 16 ? scores16(q, d, k + (size_t)16 * d, nb - 16) : _mm512_setzero_ps();
  }
}

/* Values i..i+15 of row j of v, rows of the cache's kind: floats; halves converted as they
 * are loaded (exact); 8-bit codes sign-extended, converted (exact) and multiplied by their
 * row's scale. */
static inline __m512 value16(const void *v, kvc__cache_kind kind, int d, int j, int i) {
  if (kind == KVC_CACHE_F16)
    return _mm512_cvtph_ps(
        _mm256_loadu_si256((const __m256i *)((const uint16_t *)v + (size_t)j * d + i)));
  if (kind == KVC_CACHE_Q8) {
    const int8_t *row = (const int8_t *)v + (size_t)j * kvc__q8_row_bytes(d);
    const __m512i codes = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(row + i)));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(codes), _mm512_set1_ps(kvc__q8_scale(row, d)));
  }
  return _mm512_loadu_ps((const float *)v + (size_t)j * d + i);
}

/* How many of a block's rows ahead are asked for with the heads' scores, a share per head;
 * the sums ask for the rest as they take each value row (PERFORMANCE #72: the split measured
 * fastest for each kind on the Xeon; all with the scores was 10 % slower for float32). */
static inline int asked_with_scores(kvc__cache_kind kind) {
  return kind == KVC_CACHE_F16 ? 16 : 8;
}

/* The sums' request for row j ahead (none without `ahead`). */
static inline void ask_with_sums(const kvc__attend_ahead *ahead, kvc__cache_kind kind, int j) {
  if (ahead && j >= asked_with_scores(kind))
    kvc__attend_prefetch_row(ahead, j);
}

/* The scores of four heads (q: their four rows) against a full block's keys (rows of `kind`):
 * s[h][0] keys 0-15, s[h][1] keys 16-31. Each 16 values of a key are loaded and converted
 * once for the four heads, not widened into a block of floats that each head reads again
 * (PERFORMANCE #79: a float16 cache's attention at 8 sequences 1.16x faster). Every sum is the
 * one block_scores makes (the same products in the same order, the same tree): the tree of
 * keys 4m..4m+3 of the four heads gives lane 4h + r, and a transpose of 128-bit lanes puts
 * head h's sixteen keys in one vector. Heads g0..g0+3's shares of the rows ahead are asked
 * for as their keys are taken. */
static inline void scores_of_four(const float *q, int d, const void *k, kvc__cache_kind kind,
                                  __m512 s[4][2], const kvc__attend_ahead *ahead, int g0, int share,
                                  int early) {
  for (int half = 0; half < 2; half++) {
    __m512 t[4];
    for (int m = 0; m < 4; m++) {
      if (m % 2 == 0)
        kvc__attend_prefetch_share(ahead, g0 + 2 * half + m / 2, share, early);
      __m512 a[16];
      for (int i = 0; i < 16; i++)
        a[i] = _mm512_setzero_ps();
      for (int i = 0; i < d; i += 16)
        for (int r = 0; r < 4; r++) {
          const __m512 key = value16(k, kind, d, 16 * half + 4 * m + r, i);
          for (int h = 0; h < 4; h++)
            a[4 * h + r] =
                _mm512_fmadd_ps(_mm512_loadu_ps(q + (size_t)h * d + i), key, a[4 * h + r]);
        }
      t[m] = sum16x16(a);
    }
    const __m512 lo01 = _mm512_shuffle_f32x4(t[0], t[1], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512 hi01 = _mm512_shuffle_f32x4(t[0], t[1], _MM_SHUFFLE(3, 2, 3, 2));
    const __m512 lo23 = _mm512_shuffle_f32x4(t[2], t[3], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512 hi23 = _mm512_shuffle_f32x4(t[2], t[3], _MM_SHUFFLE(3, 2, 3, 2));
    s[0][half] = _mm512_shuffle_f32x4(lo01, lo23, _MM_SHUFFLE(2, 0, 2, 0));
    s[1][half] = _mm512_shuffle_f32x4(lo01, lo23, _MM_SHUFFLE(3, 1, 3, 1));
    s[2][half] = _mm512_shuffle_f32x4(hi01, hi23, _MM_SHUFFLE(2, 0, 2, 0));
    s[3][half] = _mm512_shuffle_f32x4(hi01, hi23, _MM_SHUFFLE(3, 1, 3, 1));
  }
}

/* scores_of_four with the kind (and head size 64, the common one) a constant in each copy. */
static void scores_of_four_any(const float *q, int d, const void *k, kvc__cache_kind kind,
                               __m512 s[4][2], const kvc__attend_ahead *ahead, int g0, int share,
                               int early) {
  if (d != 64)
    scores_of_four(q, d, k, kind, s, ahead, g0, share, early);
  else if (kind == KVC_CACHE_F16)
    scores_of_four(q, 64, k, KVC_CACHE_F16, s, ahead, g0, share, early);
  else if (kind == KVC_CACHE_Q8)
    scores_of_four(q, 64, k, KVC_CACHE_Q8, s, ahead, g0, share, early);
  else
    scores_of_four(q, 64, k, KVC_CACHE_F32, s, ahead, g0, share, early);
}

/* out[h] = out[h] * rescale[h] + sum_j p[h][j] v[j] for h < heads (1 to 4) with v's rows of
 * `kind` (both constants where inlined): 64 columns of every head in
 * registers, each value row loaded once for all of them; one head splits its keys in even
 * and odd (eight FMA chains in flight either way). With `ahead`, the sums' share of the rows
 * ahead is asked for as value row j is taken. */
static inline void accumulate(float *out, int heads, int d, const float *rescale,
                              const float (*p)[KVC_ATTN_BLOCK], const void *v, kvc__cache_kind kind,
                              int nb, const kvc__attend_ahead *ahead) {
  const int split = heads == 1;
  int i = 0;
  for (; i + 64 <= d; i += 64) {
    __m512 acc[4][4], odd[4];
    for (int h = 0; h < heads; h++)
      for (int c = 0; c < 4; c++)
        acc[h][c] = _mm512_mul_ps(_mm512_loadu_ps(out + (size_t)h * d + i + 16 * c),
                                  _mm512_set1_ps(rescale[h]));
    for (int c = 0; c < 4; c++)
      odd[c] = _mm512_setzero_ps();
    int j = 0;
    for (; split && j + 2 <= nb; j += 2) {
      if (i == 0) {
        ask_with_sums(ahead, kind, j);
        ask_with_sums(ahead, kind, j + 1);
      }
      const __m512 p0 = _mm512_set1_ps(p[0][j]), p1 = _mm512_set1_ps(p[0][j + 1]);
      for (int c = 0; c < 4; c++) {
        acc[0][c] = _mm512_fmadd_ps(p0, value16(v, kind, d, j, i + 16 * c), acc[0][c]);
        odd[c] = _mm512_fmadd_ps(p1, value16(v, kind, d, j + 1, i + 16 * c), odd[c]);
      }
    }
    for (; j < nb; j++) {
      if (i == 0)
        ask_with_sums(ahead, kind, j);
      __m512 x[4];
      for (int c = 0; c < 4; c++)
        x[c] = value16(v, kind, d, j, i + 16 * c);
      for (int h = 0; h < heads; h++) {
        const __m512 pj = _mm512_set1_ps(p[h][j]);
        for (int c = 0; c < 4; c++)
          acc[h][c] = _mm512_fmadd_ps(pj, x[c], acc[h][c]);
      }
    }
    for (int c = 0; c < 4 && split; c++)
      acc[0][c] = _mm512_add_ps(acc[0][c], odd[c]);
    for (int h = 0; h < heads; h++)
      for (int c = 0; c < 4; c++)
        _mm512_storeu_ps(out + (size_t)h * d + i + 16 * c, acc[h][c]);
  }
  for (; i < d; i += 16) {
    __m512 acc[4];
    for (int h = 0; h < heads; h++)
      acc[h] = _mm512_mul_ps(_mm512_loadu_ps(out + (size_t)h * d + i), _mm512_set1_ps(rescale[h]));
    for (int j = 0; j < nb; j++) {
      if (i == 0) /* head sizes below 64 */
        ask_with_sums(ahead, kind, j);
      const __m512 x = value16(v, kind, d, j, i);
      for (int h = 0; h < heads; h++)
        acc[h] = _mm512_fmadd_ps(_mm512_set1_ps(p[h][j]), x, acc[h]);
    }
    for (int h = 0; h < heads; h++)
      _mm512_storeu_ps(out + (size_t)h * d + i, acc[h]);
  }
}

/* accumulate for every head of the group: four at a time, then the rest (each count a
 * constant in its copy); the first call prefetches. */
static inline void accumulate_group(float *out, int group, int d, const float *rescale,
                                    const float (*p)[KVC_ATTN_BLOCK], const void *v,
                                    kvc__cache_kind kind, int nb, const kvc__attend_ahead *ahead) {
  int g = 0;
  for (; g + 4 <= group; g += 4)
    accumulate(out + (size_t)g * d, 4, d, rescale + g, p + g, v, kind, nb, g ? NULL : ahead);
  ahead = g ? NULL : ahead;
  switch (group - g) {
  case 3:
    accumulate(out + (size_t)g * d, 3, d, rescale + g, p + g, v, kind, nb, ahead);
    break;
  case 2:
    accumulate(out + (size_t)g * d, 2, d, rescale + g, p + g, v, kind, nb, ahead);
    break;
  case 1:
    accumulate(out + (size_t)g * d, 1, d, rescale + g, p + g, v, kind, nb, ahead);
    break;
  }
}

/* A narrow cache's rows as floats (value16's, sixteen at a time). d is a multiple of 16. */
static void widen(float *dst, const void *src, kvc__cache_kind kind, int d, int rows) {
  for (int r = 0; r < rows; r++)
    for (int i = 0; i < d; i += 16)
      _mm512_storeu_ps(dst + (size_t)r * d + i, value16(src, kind, d, r, i));
}

void kvc__attend_avx512(const float *q, int group, int d, const void *k, const void *v,
                        kvc__cache_kind kind, int64_t n, float *out) {
  _Alignas(64) float kw[KVC_ATTN_BLOCK * KVC_ATTN_NARROW_MAX_DIM];
  _Alignas(64) float max[KVC_ATTN_MAX_GROUP], top[KVC_ATTN_MAX_GROUP];
  float sum[KVC_ATTN_MAX_GROUP], rescale[KVC_ATTN_MAX_GROUP];
  _Alignas(64) float p[KVC_ATTN_MAX_GROUP][KVC_ATTN_BLOCK];
  _Static_assert(KVC_ATTN_BLOCK == 32, "a block is two vectors of scores");
  _Static_assert(KVC_ATTN_MAX_GROUP == 16, "the heads' maxima are one vector");
  const __mmask16 heads = (__mmask16)((1u << group) - 1);
  for (int g = 0; g < group; g++) {
    max[g] = -INFINITY;
    sum[g] = 0.0f;
  }
  memset(out, 0, (size_t)group * (size_t)d * sizeof *out);
  const int early = asked_with_scores(kind), share = (early + group - 1) / group;
  const size_t row = kvc__cache_row_bytes(kind, d);
  for (int64_t j0 = 0; j0 < n; j0 += KVC_ATTN_BLOCK) {
    const int nb = n - j0 < KVC_ATTN_BLOCK ? (int)(n - j0) : KVC_ATTN_BLOCK;
    const void *keys = (const char *)k + (size_t)j0 * row;
    const kvc__attend_ahead ahead = kvc__attend_ahead_of(k, v, kind, d, j0, n);
    /* a full block's scores four heads at a time; the other heads' (and a last block's) from
     * the keys as floats, a narrow cache's widened once for all of them */
    const int fours = nb == KVC_ATTN_BLOCK ? group / 4 * 4 : 0;
    const float *kb = keys;
    if (kind != KVC_CACHE_F32 && fours < group) {
      widen(kw, keys, kind, d, nb);
      kb = kw;
    }
    /* lanes past nb are neither kept nor counted: probability 0 */
    const __mmask16 live[2] = {nb >= 16 ? 0xffff : (__mmask16)((1u << nb) - 1),
                               nb >= 32  ? 0xffff
                               : nb > 16 ? (__mmask16)((1u << (nb - 16)) - 1)
                                         : 0};
    for (int g = 0; g < fours; g += 4) {
      __m512 s[4][2];
      scores_of_four_any(q + (size_t)g * d, d, keys, kind, s, &ahead, g, share, early);
      for (int h = 0; h < 4; h++) {
        _mm512_store_ps(p[g + h], s[h][0]);
        _mm512_store_ps(p[g + h] + 16, s[h][1]);
        top[g + h] = _mm512_reduce_max_ps(
            _mm512_max_ps(_mm512_set1_ps(max[g + h]), _mm512_max_ps(s[h][0], s[h][1])));
      }
    }
    for (int g = fours; g < group; g++) {
      kvc__attend_prefetch_share(&ahead, g, share, early);
      __m512 s[2];
      block_scores(q + (size_t)g * d, d, kb, nb, s);
      _mm512_store_ps(p[g], s[0]);
      _mm512_store_ps(p[g] + 16, s[1]);
      __m512 t = _mm512_set1_ps(max[g]);
      t = _mm512_mask_max_ps(t, live[0], t, s[0]);
      top[g] = _mm512_reduce_max_ps(_mm512_mask_max_ps(t, live[1], t, s[1]));
    }
    /* every head's rescale by one exp (the first block's is exp(-inf) clamped, ~1e-38, times
     * nothing accumulated yet), then each head's probabilities */
    _mm512_mask_storeu_ps(
        rescale, heads,
        exp16(_mm512_sub_ps(_mm512_maskz_load_ps(heads, max), _mm512_maskz_load_ps(heads, top))));
    for (int g = 0; g < group; g++) {
      const __m512 m = _mm512_set1_ps(top[g]);
      const __m512 e0 = _mm512_maskz_mov_ps(live[0], exp16(_mm512_sub_ps(_mm512_load_ps(p[g]), m)));
      const __m512 e1 =
          _mm512_maskz_mov_ps(live[1], exp16(_mm512_sub_ps(_mm512_load_ps(p[g] + 16), m)));
      _mm512_store_ps(p[g], e0);
      _mm512_store_ps(p[g] + 16, e1);
      sum[g] = sum[g] * rescale[g] + _mm512_reduce_add_ps(_mm512_add_ps(e0, e1));
      max[g] = top[g];
    }
    const void *values = (const char *)v + (size_t)j0 * row;
    switch (kind) { /* the kind a constant in each copy */
    case KVC_CACHE_F16:
      accumulate_group(out, group, d, rescale, p, values, KVC_CACHE_F16, nb, &ahead);
      break;
    case KVC_CACHE_Q8:
      accumulate_group(out, group, d, rescale, p, values, KVC_CACHE_Q8, nb, &ahead);
      break;
    default:
      accumulate_group(out, group, d, rescale, p, values, KVC_CACHE_F32, nb, &ahead);
    }
  }
  for (int g = 0; g < group; g++) {
    const __m512 inv = _mm512_set1_ps(1.0f / sum[g]);
    for (int i = 0; i < d; i += 16)
      _mm512_storeu_ps(out + (size_t)g * d + i,
                       _mm512_mul_ps(_mm512_loadu_ps(out + (size_t)g * d + i), inv));
  }
}
