/* matmul_x86.h: steps 2 and 3 of the int8-activation products on 256-bit integer vectors,
 * over the weights' panels (see matmul_kernel.h), included by one file per instruction set,
 * which first defines
 *   KVC_QMM_NAME              the function's name;
 *   KVC_QMM_DOT4(acc, w, a)   acc plus, in each int32 lane, the products of its 4 unsigned
 *                             4-bit codes w (0..15, one per byte) with 4 signed codes a;
 *   KVC_QMM_DOT8(acc, w, a)   the same for 8-bit codes w (0..255);
 *   KVC_QMM_BIAS8             what the DOT8 products leave out of each code (0 or 128).
 * Lane j of a panel's sum is column j's exact block product; the float step 3 is then one
 * vector operation per block for the eight columns, in block order, exactly as the portable
 * path does it per column. A file that defines no KVC_QMM_NAME gets the helpers alone. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "matmul_kernel.h"

/* Asks for `bytes` from `ahead` bytes past `at` on, a cache line at a time. A panel's codes
 * are a stream of a few KB (one page at K = 1024, 4 bits), too short for the hardware
 * prefetchers to reach full speed before it ends; asking for the next panel's block while
 * multiplying this one's keeps the memory busy across panels: the 243 M model's 4-bit decode
 * step 1.16x faster on 1 and 2 threads (PERFORMANCE #46). Past the last panel the addresses
 * are outside the panels (computed as integers, never dereferenced): a prefetch never faults. */
static inline void kvc__qmm_prefetch(const uint8_t *at, size_t ahead, size_t bytes) {
  const uintptr_t from = (uintptr_t)at + ahead;
  for (size_t o = 0; o < bytes; o += 64)
    _mm_prefetch((const char *)(from + o), _MM_HINT_T0);
}

/* Asks for the scales and zero points of the panel block at `cell`: arrays of their own, so
 * two streams beside each panel's codes, which the hardware prefetchers of some CPUs do not
 * follow (PERFORMANCE #76). Addresses past the arrays are asked for, never read. */
static inline void kvc__qmm_prefetch_cell(const kvc__qpanels *p, size_t cell) {
  const size_t scale_bytes = p->half_scales ? 2 : 4;
  _mm_prefetch((const char *)((uintptr_t)p->scales + cell * scale_bytes), _MM_HINT_T0);
  _mm_prefetch((const char *)((uintptr_t)p->zero_points + cell), _MM_HINT_T0);
}

/* The 8 scales of a panel's block at `cell`, as floats (half floats converted exactly). */
static inline __m256 kvc__qmm_scales8(const kvc__qpanels *p, size_t cell) {
  return p->half_scales ? _mm256_cvtph_ps(_mm_loadu_si128(
                              (const __m128i *)((const uint16_t *)p->scales + cell)))
                        : _mm256_loadu_ps((const float *)p->scales + cell);
}

#ifdef KVC_QMM_NAME
/* rows taken together: each unpacked vector of codes serves that many (16 vector registers
 * hold AVX2's 4 rows' sums and accumulators; AVX-512 has 32) */
#ifndef KVC_QMM_ROWS
#define KVC_QMM_ROWS 4
#endif
enum { ROWS = KVC_QMM_ROWS };

/* Four row codes, the same in every lane. */
static inline __m256i broadcast4(const int8_t *q) {
  int32_t v;
  memcpy(&v, q, sizeof v);
  return _mm256_set1_epi32(v);
}

/* NR rows (1..ROWS) of one panel at column c0: every block's exact sums, then step 3, into y.
 * Called with a constant NR, so that the sums and results stay in registers (with a variable
 * count they went to the stack, a load and a store around every dot product: #62). */
static inline void panel_rows(const kvc__qweights *w, const kvc__qpanels *panels,
                              const kvc__qrow *rows, const int NR, int64_t c0, int64_t n1, float *y,
                              int64_t ldy, int prefetch) {
  const size_t per_block = (size_t)w->block * (size_t)w->bits;
  const size_t panel_codes = (size_t)w->blocks * per_block;
  const int64_t p = c0 / KVC_QMM_COLUMNS;
  const uint8_t *codes = panels->codes + (size_t)(p * w->blocks) * per_block;
  const size_t first = (size_t)(p * w->blocks) * KVC_QMM_COLUMNS; /* the panel's scales */
  const uint8_t *zeros = panels->zero_points + (size_t)(p * w->blocks) * KVC_QMM_COLUMNS;
  const __m256i low4 = _mm256_set1_epi8(15);
  const __m256i bias = _mm256_set1_epi32(w->bits == 8 ? KVC_QMM_BIAS8 : 0);
  __m256 acc[ROWS];
  for (int i = 0; i < NR; i++)
    acc[i] = _mm256_setzero_ps();
  for (int64_t b = 0; b < w->blocks; b++) {
    const uint8_t *c = codes + (size_t)b * per_block;
    if (prefetch) { /* the next panel's same block; later passes over the panel find it cached */
      kvc__qmm_prefetch(c, panel_codes, per_block);
      kvc__qmm_prefetch_cell(panels, first + (size_t)w->blocks * KVC_QMM_COLUMNS +
                                         (size_t)b * KVC_QMM_COLUMNS);
    }
    const int8_t *q[ROWS];
    __m256i sum[ROWS];
    for (int i = 0; i < NR; i++) {
      q[i] = rows[i].q + b * w->block;
      sum[i] = _mm256_setzero_si256();
    }
    if (w->bits == 4)
      for (int g = 0; g < w->block; g += 8, c += 32) {
        const __m256i raw = _mm256_loadu_si256((const __m256i *)c);
        const __m256i lo = _mm256_and_si256(raw, low4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
        for (int i = 0; i < NR; i++) {
          sum[i] = KVC_QMM_DOT4(sum[i], lo, broadcast4(q[i] + g));
          sum[i] = KVC_QMM_DOT4(sum[i], hi, broadcast4(q[i] + g + 4));
        }
      }
    else
      for (int g = 0; g < w->block; g += 4, c += 32) {
        const __m256i codes8 = _mm256_loadu_si256((const __m256i *)c);
        for (int i = 0; i < NR; i++)
          sum[i] = KVC_QMM_DOT8(sum[i], codes8, broadcast4(q[i] + g));
      }
    const __m256i zp = _mm256_sub_epi32(
        _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(zeros + b * KVC_QMM_COLUMNS))),
        bias);
    const __m256 sw = kvc__qmm_scales8(panels, first + (size_t)b * KVC_QMM_COLUMNS);
    for (int i = 0; i < NR; i++) {
      const kvc__qrow *row = &rows[i];
      /* zero point x the row's code sum: |sum| <= 127 x 256 and |zero point| <= 255 fit
       * 16 bits, so vpmaddwd (low halves multiplied, high halves 0 x 0) gives the exact
       * 32-bit product, without vpmulld's two micro-ops on the dot products' port */
      const __m256i d = _mm256_sub_epi32(
          sum[i], _mm256_madd_epi16(zp, _mm256_set1_epi32(row->sum[b * row->step] & 0xffff)));
      const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(row->scale[b * row->step]), sw);
      acc[i] = _mm256_add_ps(acc[i], _mm256_mul_ps(_mm256_cvtepi32_ps(d), scale));
    }
  }
  for (int i = 0; i < NR; i++) {
    float out[KVC_QMM_COLUMNS];
    _mm256_storeu_ps(out, acc[i]);
    for (int j = 0; j < KVC_QMM_COLUMNS && c0 + j < n1; j++)
      y[i * ldy + c0 + j] = out[j];
  }
}

void KVC_QMM_NAME(const kvc__qweights *w, const kvc__qpanels *panels, const kvc__qrow *rows,
                  int64_t nrows, int64_t n0, int64_t n1, float *y, int64_t ldy) {
  for (int64_t c0 = n0; c0 < n1; c0 += KVC_QMM_COLUMNS)
    for (int64_t r0 = 0; r0 < nrows; r0 += ROWS) { /* the unpacked codes serve ROWS rows */
      const kvc__qrow *r = rows + r0;
      float *yr = y + r0 * ldy;
      const int first = r0 == 0;
      // clang-format off
      /* one inlined copy of panel_rows per row count (#62) */
#define PANEL_ROWS(n) panel_rows(w, panels, r, n, c0, n1, yr, ldy, first)
      switch (nrows - r0 < ROWS ? (int)(nrows - r0) : ROWS) {
      case 1: PANEL_ROWS(1); break;
      case 2: PANEL_ROWS(2); break;
      case 3: PANEL_ROWS(3); break;
#if KVC_QMM_ROWS > 4
      case 4: PANEL_ROWS(4); break;
      case 5: PANEL_ROWS(5); break;
      case 6: PANEL_ROWS(6); break;
      case 7: PANEL_ROWS(7); break;
#endif
      default: PANEL_ROWS(ROWS); break;
      }
#undef PANEL_ROWS
      // clang-format on
    }
}
#endif

#ifdef KVC_QMM_QUANTIZE
/* Step 1 (matmul_kernel.h) on 8 values at a time: the same multiplication, clamp and
 * round-half-even (cvtps2dq under the default rounding) per value as kvc__qmm_code_of, so
 * the same codes; a block's maximum and code sum are exact in any order. Values past the
 * block's last whole 16, and the maximum of a block holding a NaN (whose bits the portable
 * loop decides), go through the portable path's per-value steps. */
void KVC_QMM_QUANTIZE(const float *x, int64_t k, int block, int64_t blocks, int8_t *q, float *scale,
                      int32_t *sum, int64_t step) {
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 top = _mm256_set1_ps(127.0f), bottom = _mm256_set1_ps(-127.0f);
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t k0 = b * block, len = k - k0 < block ? k - k0 : block, whole = len / 16 * 16;
    const float *xb = x + k0;
    __m256 m = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    for (int64_t i = 0; i < whole; i += 8) {
      const __m256 v = _mm256_loadu_ps(xb + i);
      m = _mm256_max_ps(m, _mm256_and_ps(v, magnitude));
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    float lanes[8], amax = 0.0f;
    _mm256_storeu_ps(lanes, m);
    for (int j = 0; j < 8; j++)
      amax = lanes[j] > amax ? lanes[j] : amax;
    for (int64_t i = _mm256_movemask_ps(nan) ? 0 : whole; i < len; i++) {
      const float a = fabsf(xb[i]);
      amax = a > amax || a != a ? a : amax;
    }
    const float inv = kvc__qmm_inverse(amax);
    const __m256 vinv = _mm256_set1_ps(inv);
    __m256i s = _mm256_setzero_si256();
    for (int64_t i = 0; i < whole; i += 16) {
      __m256i c[2];
      for (int h = 0; h < 2; h++) {
        const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xb + i + 8 * h), vinv);
        const __m256 clamped = _mm256_min_ps(_mm256_max_ps(v, bottom), top);
        c[h] = _mm256_and_si256(_mm256_cvtps_epi32(clamped),
                                _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_ORD_Q)));
        s = _mm256_add_epi32(s, c[h]);
      }
      /* 16 int32 to 16 int8 in order (the packs work within 128-bit halves) */
      const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(c[0], c[1]), 0xd8);
      _mm_storeu_si128(
          (__m128i *)(q + k0 + i),
          _mm_packs_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1)));
    }
    int32_t sums[8], total = 0;
    _mm256_storeu_si256((__m256i *)sums, s);
    for (int j = 0; j < 8; j++)
      total += sums[j];
    for (int64_t i = whole; i < len; i++) {
      q[k0 + i] = kvc__qmm_code_of(xb[i], inv);
      total += q[k0 + i];
    }
    memset(q + k0 + len, 0, (size_t)(block - len));
    scale[b * step] = amax / 127.0f;
    sum[b * step] = total;
  }
}
#endif
