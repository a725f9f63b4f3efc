/* matmul_amx.c: the int8-activation products on AMX tiles (compiled with -mamx-tile
 * -mamx-int8 and the AVX-512 path's flags; run only where the CPU has them and Linux lets the
 * process use the tile registers). One tdpbsud (8-bit codes, unsigned) or tdpbssd (4-bit codes
 * less their zero point, signed) multiplies a tile of 16 rows of signed row codes by a tile of
 * weight codes for 16 columns (a pair of panels), adding each four products into an int32 of
 * a 16 x 16 tile, exactly: step 2 of matmul_kernel.h for 16 rows and 16 columns at once, the
 * work of 16 x min(block, 64) / 4 vpdpbusd. Step 3 is the AVX-512
 * path's (matmul_zmm.h), the same float operations in the same order, so the bits are the
 * same as on every other path.
 *
 * The tiles want each column's four codes side by side in 64-byte rows of 16 columns: a pair
 * of panels' codes are unpacked once (4-bit codes to a byte each) into that layout, then serve
 * every group of 16 rows; the last rows of a prompt, fewer than 16, run on tiles configured
 * for the rows there are. A product of fewer than 16 rows in all (a decode step, even of 8
 * sequences: there the unpacking costs more than the tiles save, PERFORMANCE.md #61) and a
 * last odd panel go to the AVX-512 path. */
#define _GNU_SOURCE /* syscall: Linux hands out the tile registers on request */
#include <cpuid.h>
#include <immintrin.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "matmul_x86.h"
#include "matmul_zmm.h"

enum {
  TILE_ROWS = 16,     /* rows of row codes (and of results) in a tile, at most */
  AMX_MIN_ROWS = 16,  /* fewer rows run on the AVX-512 path (PERFORMANCE.md #61) */
  TILE_BYTES = 64,    /* bytes of a tile row: 16 columns x 4 codes, or 64 row codes */
  XFEATURE_TILE = 18, /* Linux's number for the tile data state */
  ARCH_REQ_XCOMP_PERM = 0x1023,
};

/* Tile registers, by number (macros, not an enum: GCC's intrinsics paste them into the
 * instruction's text). Two sets, for even and odd blocks: while one block's products go to
 * one set, the other's sums are stored and scaled (tile_block). */
#define SUMS_0E   0 /* int32 sums of the rows by pair 0, even blocks, */
#define SUMS_1E   1 /* by pair 1, even blocks, */
#define SUMS_0O   2 /* by pair 0, odd blocks, */
#define SUMS_1O   3 /* by pair 1, odd blocks */
#define CODES_E   4 /* the rows' codes, `step` each: even blocks, */
#define CODES_O   5 /* odd blocks */
#define WEIGHTS_0 6 /* pair 0's codes: `step` of each of 16 columns, four to a 32-bit lane */
#define WEIGHTS_1 7 /* pair 1's codes */

/* ldtilecfg's 64 bytes (palette 1). */
typedef struct tile_config {
  uint8_t palette, start_row, reserved[14];
  uint16_t bytes_per_row[16];
  uint8_t rows[16];
} tile_config;

int kvc__qmm_amx_allowed(void) {
  /* CPUID leaf 7: EDX bit 24 AMX-TILE, bit 25 AMX-INT8 */
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25)))
    return 0;
  /* granted once per process, for every thread; 0 again on later requests */
  return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_TILE) == 0;
}

/* The pair of panels from panel p's on (panel p + 1 panel_codes bytes further) as tile rows:
 * row r holds codes 4r..4r + 3 of each of the 16 columns, a byte each. 8-bit codes as they
 * are (0..255, unsigned: tdpbsud); 4-bit codes less their column's zero point in the block
 * (-15..15, signed: tdpbssd), so that the tiles' sums are step 2's d already. */
static void unpack_pair(const kvc__qweights *w, const kvc__qpanels *panels, int64_t p,
                        uint8_t *out) {
  const size_t per_block = (size_t)w->block * (size_t)w->bits;
  const size_t panel_codes = (size_t)w->blocks * per_block, panel_cells = (size_t)w->blocks * 8;
  const uint8_t *codes = panels->codes + (size_t)p * panel_codes;
  if (w->bits == 8) {
    for (size_t o = 0; o < panel_codes; o += 32, out += TILE_BYTES)
      _mm512_storeu_si512(out, kvc__qmm_pair_load(codes + o, codes + o + panel_codes));
    return;
  }
  const __m512i low4 = _mm512_set1_epi8(15);
  for (int64_t b = 0; b < w->blocks; b++) {
    const uint8_t *zeros = panels->zero_points + (size_t)p * panel_cells + (size_t)b * 8;
    /* each column's zero point in the four bytes of its 32-bit lane */
    const __m512i zp =
        _mm512_mullo_epi32(kvc__qmm_zeros16(zeros, panel_cells), _mm512_set1_epi32(0x01010101));
    const uint8_t *c = codes + (size_t)b * per_block;
    for (size_t o = 0; o < per_block; o += 32, out += 2 * TILE_BYTES) {
      /* codes 8g..8g + 3 in the low nibbles, 8g + 4..8g + 7 in the high ones */
      const __m512i raw = kvc__qmm_pair_load(c + o, c + o + panel_codes);
      _mm512_storeu_si512(out, _mm512_sub_epi8(_mm512_and_si512(raw, low4), zp));
      _mm512_storeu_si512(out + TILE_BYTES,
                          _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(raw, 4), low4), zp));
    }
  }
}

/* One product into a tile of sums: codes signed by weights unsigned (8-bit) or signed
 * (4-bit, centred by unpack_pair). A macro: the tile numbers must be literal. */
#define PRODUCT(bits, sums, codes, weights)                                                        \
  do {                                                                                             \
    if ((bits) == 4)                                                                               \
      _tile_dpbssd(sums, codes, weights);                                                          \
    else                                                                                           \
      _tile_dpbsud(sums, codes, weights);                                                          \
  } while (0)

/* Whether rows[0..n) are laid out as the operator lays them out: codes `stride` bytes apart
 * (tile loads take one stride), scales and sums block by block, the rows side by side. */
static int rows_fit(const kvc__qrow *rows, int n, ptrdiff_t *stride) {
  *stride = n > 1 ? rows[1].q - rows[0].q : TILE_BYTES;
  for (int i = 1; i < n; i++)
    if (rows[i].q - rows[0].q != (ptrdiff_t)i * *stride || rows[i].scale != rows[0].scale + i ||
        rows[i].sum != rows[0].sum + i || rows[i].step != rows[0].step)
      return 0;
  return 1;
}

/* A block of work: up to 16 rows by one or two pairs of panels. */
typedef struct tiles {
  const kvc__qweights *w;
  const kvc__qpanels *panels;
  const uint8_t *unpacked[2]; /* each pair's codes as tile rows (unpack_pair) */
  const kvc__qrow *rows;
  ptrdiff_t stride;    /* between the rows' codes */
  const uint8_t *next; /* the next four panels' codes, asked for block by block; or NULL */
  int step;            /* codes of K per product: 16, 32 or 64, dividing the block */
  int height;          /* rows: 16, or fewer for the last rows (configure) */
  int pairs;
} tiles;

/* Configure the tiles for `height` rows (loading a configuration zeroes them). */
static void configure(tiles *t, int height) {
  tile_config config = {.palette = 1};
  for (int i = SUMS_0E; i <= SUMS_1O; i++)
    config.rows[i] = (uint8_t)height, config.bytes_per_row[i] = TILE_BYTES;
  for (int i = CODES_E; i <= CODES_O; i++)
    config.rows[i] = (uint8_t)height, config.bytes_per_row[i] = (uint16_t)t->step;
  for (int i = WEIGHTS_0; i <= WEIGHTS_1; i++)
    config.rows[i] = (uint8_t)(t->step / 4), config.bytes_per_row[i] = TILE_BYTES;
  _tile_loadconfig(&config);
  t->height = height;
}

/* Block b's products into one set of tiles (S0, S1: pairs 0 and 1; C: the rows' codes). */
#define ISSUE(t, b, S0, S1, C)                                                                     \
  do {                                                                                             \
    _tile_zero(S0);                                                                                \
    _tile_zero(S1);                                                                                \
    for (int s = 0; s < (t)->w->block; s += (t)->step) {                                           \
      const size_t k = (size_t)((b) * (t)->w->block + s);                                          \
      _tile_loadd(C, (t)->rows[0].q + k, (t)->stride);                                             \
      _tile_loadd(WEIGHTS_0, (t)->unpacked[0] + k / 4 * TILE_BYTES, TILE_BYTES);                   \
      PRODUCT((t)->w->bits, S0, C, WEIGHTS_0);                                                     \
      if ((t)->pairs == 2) {                                                                       \
        _tile_loadd(WEIGHTS_1, (t)->unpacked[1] + k / 4 * TILE_BYTES, TILE_BYTES);                 \
        PRODUCT((t)->w->bits, S1, C, WEIGHTS_1);                                                   \
      }                                                                                            \
    }                                                                                              \
  } while (0)

static void issue_block(const tiles *t, int64_t b) {
  if (b % 2 == 0)
    ISSUE(t, b, SUMS_0E, SUMS_1E, CODES_E);
  else
    ISSUE(t, b, SUMS_0O, SUMS_1O, CODES_O);
}

/* Block b's exact sums into sums[pair] (rows x 16 int32 each). */
static void store_block(const tiles *t, int64_t b, int32_t sums[2][TILE_ROWS][KVC_QMM_PAIR]) {
  const size_t row_bytes = KVC_QMM_PAIR * sizeof(int32_t);
  if (b % 2 == 0) {
    _tile_stored(SUMS_0E, sums[0], row_bytes);
    if (t->pairs == 2)
      _tile_stored(SUMS_1E, sums[1], row_bytes);
  } else {
    _tile_stored(SUMS_0O, sums[0], row_bytes);
    if (t->pairs == 2)
      _tile_stored(SUMS_1O, sums[1], row_bytes);
  }
}

/* The block of work at column c0 into y (row 0 of the block at y), its blocks pipelined:
 * block b + 1's products go to one set of tiles while block b's sums, in the other, are
 * stored and scaled, so that storing a block's sums does not wait on its products (#64:
 * 1.1x over two groups of 16 rows sharing each weight load without it). */
static void tile_block(const tiles *t, int64_t c0, int64_t n1, float *y, int64_t ldy) {
  const kvc__qweights *w = t->w;
  const size_t panel_cells = (size_t)w->blocks * KVC_QMM_COLUMNS;
  const size_t first = (size_t)(c0 / KVC_QMM_COLUMNS) * panel_cells;
  _Alignas(64) int32_t sums[2][TILE_ROWS][KVC_QMM_PAIR];
  __m512 acc[2][TILE_ROWS];
  for (int p = 0; p < 2; p++)
    for (int i = 0; i < TILE_ROWS; i++)
      acc[p][i] = _mm512_setzero_ps();
  const size_t per_block = (size_t)w->block * (size_t)w->bits;
  const size_t panel_codes = (size_t)w->blocks * per_block;
  issue_block(t, 0);
  for (int64_t b = 0; b < w->blocks; b++) {
    for (int j = 0; t->next && j < 4; j++)
      kvc__qmm_prefetch(t->next + (size_t)b * per_block, (size_t)j * panel_codes, per_block);
    if (b + 1 < w->blocks)
      issue_block(t, b + 1);
    store_block(t, b, sums);
    for (int p = 0; p < t->pairs; p++) {
      const size_t cell = first + (size_t)(2 * p) * panel_cells + (size_t)b * KVC_QMM_COLUMNS;
      const __m512i zp = kvc__qmm_zeros16(t->panels->zero_points + cell, panel_cells);
      const __m512 sw = kvc__qmm_scales16(t->panels, cell, panel_cells);
      /* the rows' scales and code sums in block b, side by side (rows_fit) */
      const float *sa = t->rows[0].scale + b * t->rows[0].step;
      const int32_t *row_sum = t->rows[0].sum + b * t->rows[0].step;
      for (int i = 0; i < t->height; i++) {
        const __m512i d = _mm512_load_si512(sums[p][i]);
        acc[p][i] = w->bits == 4 ? kvc__qmm_scale_add16(acc[p][i], d, sw, sa[i])
                                 : kvc__qmm_step3_16(acc[p][i], d, zp, sw, sa[i], row_sum[i]);
      }
    }
  }
  for (int p = 0; p < t->pairs; p++)
    for (int i = 0; i < t->height; i++)
      kvc__qmm_store16(y + i * ldy, acc[p][i], c0 + p * KVC_QMM_PAIR, n1);
}

void kvc__qmm_amx(const kvc__qweights *w, const kvc__qpanels *panels, const kvc__qrow *rows,
                  int64_t nrows, int64_t n0, int64_t n1, float *y, int64_t ldy) {
  const size_t unpacked_bytes =
      (size_t)(w->blocks * w->block) * KVC_QMM_PAIR; /* K codes x 16 columns */
  const size_t panel_codes = (size_t)w->blocks * (size_t)w->block * (size_t)w->bits;
  uint8_t *unpacked = nrows >= AMX_MIN_ROWS && n1 - n0 > KVC_QMM_COLUMNS
                          ? aligned_alloc(64, 2 * unpacked_bytes)
                          : NULL;
  if (!unpacked) { /* a decode step, or out of memory: the same bits without tiles */
    kvc__qmm_avx512(w, panels, rows, nrows, n0, n1, y, ldy);
    return;
  }
  tiles t = {.w = w, .panels = panels, .unpacked = {unpacked, unpacked + unpacked_bytes}};

  t.step = w->block % 64 == 0 ? 64 : w->block % 32 == 0 ? 32 : 16;
  configure(&t, TILE_ROWS); /* nrows >= AMX_MIN_ROWS = TILE_ROWS */
  int64_t c0 = n0;
  for (; n1 - c0 > KVC_QMM_COLUMNS;
       c0 += t.pairs * KVC_QMM_PAIR) { /* a pair with a column in range */
    t.pairs = n1 - c0 > KVC_QMM_PAIR + KVC_QMM_COLUMNS ? 2 : 1;
    for (int p = 0; p < t.pairs; p++)
      unpack_pair(w, panels, c0 / KVC_QMM_COLUMNS + 2 * p, unpacked + (size_t)p * unpacked_bytes);
    /* GCC's tile loads do not tell the compiler they read memory: the unpacked codes must be
     * written before them */
    atomic_signal_fence(memory_order_seq_cst);
    /* the next four panels' codes (p + 4 on), asked for while these multiply their first
     * rows: a panel's codes are too short a stream for the hardware prefetchers (#46) */
    const uint8_t *next = panels->codes + (size_t)(c0 / KVC_QMM_COLUMNS + 4) * panel_codes;
    int64_t r0 = 0;
    for (; r0 < nrows; r0 += t.height) {
      if (nrows - r0 < t.height) /* the last rows: tiles of fewer rows */
        configure(&t, (int)(nrows - r0));
      t.next = r0 == 0 ? next : NULL;
      t.rows = rows + r0;
      if (!rows_fit(t.rows, t.height, &t.stride))
        break;
      tile_block(&t, c0, n1, y + r0 * ldy, ldy);
    }
    if (t.height != TILE_ROWS) /* the next pair starts at row 0 again */
      configure(&t, TILE_ROWS);
    const int64_t c1 = c0 + t.pairs * KVC_QMM_PAIR < n1 ? c0 + t.pairs * KVC_QMM_PAIR : n1;
    if (r0 < nrows)
      kvc__qmm_avx512(w, panels, rows + r0, nrows - r0, c0, c1, y + r0 * ldy, ldy);
  }
  _tile_release();
  free(unpacked);
  if (c0 < n1)
    kvc__qmm_avx512(w, panels, rows, nrows, c0, n1, y, ldy);
}
