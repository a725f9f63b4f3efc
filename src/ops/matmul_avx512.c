/* matmul_avx512.c: the int8-activation products with AVX-512 VNNI (compiled with -mavx512vnni
 * -mavx512vl -mavx512bw -mavx512f -mavx2; run only where the CPU has them): vpdpbusd
 * multiplies unsigned by signed bytes and adds each four into an int32 lane, exactly, so
 * 8-bit codes need no centring. Two neighbouring 8-column panels are taken together in one
 * 512-bit vector (16 columns: each broadcast of a row's codes serves twice the columns of a
 * 256-bit one); a last odd panel runs on 256 bits (matmul_x86.h). Every column's arithmetic
 * is the same as on the other paths (matmul_kernel.h), so the bits are too. */
#define KVC_QMM_NAME            kvc__qmm_avx512_ymm
#define KVC_QMM_DOT4(acc, w, a) _mm256_dpbusd_epi32(acc, w, a)
#define KVC_QMM_DOT8(acc, w, a) _mm256_dpbusd_epi32(acc, w, a)
#define KVC_QMM_BIAS8           0
#define KVC_QMM_ROWS            8
#define KVC_QMM_QUANTIZE        kvc__qmm_quantize_avx512

#include "matmul_x86.h"
#include "matmul_zmm.h"

void kvc__qmm_avx512_ymm(const kvc__qweights *w, const kvc__qpanels *panels, const kvc__qrow *rows,
                         int64_t nrows, int64_t n0, int64_t n1, float *y, int64_t ldy);

enum { ZROWS = 8 };

static inline __m512i broadcast4_512(const int8_t *q) {
  int32_t v;
  memcpy(&v, q, sizeof v);
  return _mm512_set1_epi32(v);
}

/* One row's exact integer sums over one block of two panels (codes c, the second panel
 * panel_codes further): four independent chains of vpdpbusd, added at the end (integer
 * sums: any order gives the same value). Blocks are multiples of 16. */
static inline __m512i one_row(const kvc__qweights *w, const uint8_t *c, size_t panel_codes,
                              const int8_t *q, __m512i low4) {
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
  if (w->bits == 4)
    for (int g = 0; g < w->block; g += 16, c += 64) {
      const __m512i r0 = kvc__qmm_pair_load(c, c + panel_codes),
                    r1 = kvc__qmm_pair_load(c + 32, c + 32 + panel_codes);
      s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(r0, low4), broadcast4_512(q + g));
      s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(r0, 4), low4),
                               broadcast4_512(q + g + 4));
      s2 = _mm512_dpbusd_epi32(s2, _mm512_and_si512(r1, low4), broadcast4_512(q + g + 8));
      s3 = _mm512_dpbusd_epi32(s3, _mm512_and_si512(_mm512_srli_epi16(r1, 4), low4),
                               broadcast4_512(q + g + 12));
    }
  else
    for (int g = 0; g < w->block; g += 16, c += 128) {
      s0 = _mm512_dpbusd_epi32(s0, kvc__qmm_pair_load(c, c + panel_codes), broadcast4_512(q + g));
      s1 = _mm512_dpbusd_epi32(s1, kvc__qmm_pair_load(c + 32, c + 32 + panel_codes),
                               broadcast4_512(q + g + 4));
      s2 = _mm512_dpbusd_epi32(s2, kvc__qmm_pair_load(c + 64, c + 64 + panel_codes),
                               broadcast4_512(q + g + 8));
      s3 = _mm512_dpbusd_epi32(s3, kvc__qmm_pair_load(c + 96, c + 96 + panel_codes),
                               broadcast4_512(q + g + 12));
    }
  return _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3));
}

/* Where a pair of panels and its columns' scales and zero points start. */
typedef struct pair {
  const uint8_t *codes, *zeros;
  size_t first, panel_codes, panel_cells, per_block;
} pair;

/* NR rows (1..8) of one pair: every block's exact sums, then step 3, into y. Called with a
 * constant NR, so that the sums and results stay in registers: with a variable count GCC kept
 * them on the stack, a load and a store around every two vpdpbusd (PERFORMANCE.md #62). One
 * row (a decode step) takes its sums in four independent chains (one_row). */
static inline void rows_of_pair(const kvc__qweights *w, const kvc__qpanels *panels, const pair *pr,
                                const kvc__qrow *rows, const int NR, int64_t c0, int64_t n1,
                                float *y, int64_t ldy, int prefetch) {
  const __m512i low4 = _mm512_set1_epi8(15);
  __m512 acc[ZROWS];
  for (int i = 0; i < NR; i++)
    acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < w->blocks; b++) {
    const uint8_t *c = pr->codes + (size_t)b * pr->per_block;
    if (prefetch) { /* the next pair's same block; later passes find this pair cached */
      kvc__qmm_prefetch(c, 2 * pr->panel_codes, pr->per_block);
      kvc__qmm_prefetch(c, 3 * pr->panel_codes, pr->per_block);
      const size_t cell = pr->first + (size_t)b * KVC_QMM_COLUMNS;
      kvc__qmm_prefetch_cell(panels, cell + 2 * pr->panel_cells);
      kvc__qmm_prefetch_cell(panels, cell + 3 * pr->panel_cells);
    }
    const __m512i zp = kvc__qmm_zeros16(pr->zeros + b * KVC_QMM_COLUMNS, pr->panel_cells);
    const int8_t *q[ZROWS];
    __m512i sum[ZROWS];
    for (int i = 0; i < NR; i++) { /* each sum starts at its zero-point correction */
      q[i] = rows[i].q + b * w->block;
      sum[i] = kvc__qmm_zero_correction16(zp, rows[i].sum[b * rows[i].step]);
    }
    if (NR == 1)
      sum[0] = _mm512_add_epi32(sum[0], one_row(w, c, pr->panel_codes, q[0], low4));
    else if (w->bits == 4)
      for (int g = 0; g < w->block; g += 8, c += 32) {
        const __m512i raw = kvc__qmm_pair_load(c, c + pr->panel_codes);
        const __m512i lo = _mm512_and_si512(raw, low4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
        for (int i = 0; i < NR; i++) {
          sum[i] = _mm512_dpbusd_epi32(sum[i], lo, broadcast4_512(q[i] + g));
          sum[i] = _mm512_dpbusd_epi32(sum[i], hi, broadcast4_512(q[i] + g + 4));
        }
      }
    else
      for (int g = 0; g < w->block; g += 4, c += 32) {
        const __m512i codes8 = kvc__qmm_pair_load(c, c + pr->panel_codes);
        for (int i = 0; i < NR; i++)
          sum[i] = _mm512_dpbusd_epi32(sum[i], codes8, broadcast4_512(q[i] + g));
      }
    const __m512 sw =
        kvc__qmm_scales16(panels, pr->first + (size_t)b * KVC_QMM_COLUMNS, pr->panel_cells);
    for (int i = 0; i < NR; i++) /* sum is d already */
      acc[i] = kvc__qmm_scale_add16(acc[i], sum[i], sw, rows[i].scale[b * rows[i].step]);
  }
  for (int i = 0; i < NR; i++)
    kvc__qmm_store16(y + i * ldy, acc[i], c0, n1);
}

void kvc__qmm_avx512(const kvc__qweights *w, const kvc__qpanels *panels, const kvc__qrow *rows,
                     int64_t nrows, int64_t n0, int64_t n1, float *y, int64_t ldy) {
  pair pr = {.per_block = (size_t)w->block * (size_t)w->bits,
             .panel_cells = (size_t)w->blocks * KVC_QMM_COLUMNS};
  pr.panel_codes = (size_t)w->blocks * pr.per_block;
  int64_t c0 = n0;
  for (; n1 - c0 > KVC_QMM_COLUMNS;
       c0 += KVC_QMM_PAIR) { /* the second panel has a column in range */
    const int64_t p = c0 / KVC_QMM_COLUMNS;
    pr.codes = panels->codes + (size_t)p * pr.panel_codes;
    pr.first = (size_t)p * pr.panel_cells; /* the first panel's scales */
    pr.zeros = panels->zero_points + pr.first;
    for (int64_t r0 = 0; r0 < nrows; r0 += ZROWS) {
      const kvc__qrow *r = rows + r0;
      float *yr = y + r0 * ldy;
      const int first = r0 == 0;
      // clang-format off
      /* one inlined copy of rows_of_pair per row count (#62) */
#define ROWS_OF_PAIR(n) rows_of_pair(w, panels, &pr, r, n, c0, n1, yr, ldy, first)
      switch (nrows - r0 < ZROWS ? (int)(nrows - r0) : ZROWS) {
      case 1: ROWS_OF_PAIR(1); break;
      case 2: ROWS_OF_PAIR(2); break;
      case 3: ROWS_OF_PAIR(3); break;
      case 4: ROWS_OF_PAIR(4); break;
      case 5: ROWS_OF_PAIR(5); break;
      case 6: ROWS_OF_PAIR(6); break;
      case 7: ROWS_OF_PAIR(7); break;
      default: ROWS_OF_PAIR(8); break;
      }
#undef ROWS_OF_PAIR
      // clang-format on
    }
  }
  if (c0 < n1)
    kvc__qmm_avx512_ymm(w, panels, rows, nrows, c0, n1, y, ldy);
}
