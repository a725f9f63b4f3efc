/* matmul_kernel.h: the arithmetic of kvcache's int8-activation block products
 * (ai.kvcache.MatMulNBits, matmul_op.c): y = x W, W (K, N) held as MatMulNBits holds it,
 * 4- or 8-bit codes in blocks of `block` along K, one float scale (and a zero point) per
 * column and block (quant.h).
 *
 * The result is a function of x and W alone: every path below, every row count and every
 * split of the columns among threads gives the same bits. That is what keeps a cache exact
 * with int8 activations: a decode step (one row) and the uncached recompute of the same
 * prefix (many rows) compute each product identically. The steps, in this order:
 *   1. each row of x, per block of K: amax = max |x|, sa = amax / 127,
 *      q = round-half-even(x * (127 / amax)) as int8 (all 0 when amax is 0; a block holding
 *      a NaN or an infinity gets a scale that is not finite, so its products are not either);
 *   2. per column n and block b, an exact integer: d = sum q * code - zero_point * sum q;
 *   3. per column, blocks in order from y = 0: y = y + (float)d * (sa * sw), each
 *      multiplication and addition rounded to float on its own (no fused multiply-add).
 * Integer sums are exact in any order, so the vectorised paths are free in step 2; step 3
 * is the same sequence of float operations on every path.
 *
 * One implementation per instruction set, each in its own file (compiled with that set's
 * flags), chosen at run time from the CPU's features (kvc__qmm_pick). */
#ifndef KVC_MATMUL_KERNEL_H
#define KVC_MATMUL_KERNEL_H

#include <stddef.h>
#include <stdint.h>

enum {
  KVC_QMM_MAX_BLOCK = 256, /* |d| < 2^24: exact as a float */
  KVC_QMM_COLUMNS = 8,     /* columns of a panel */
};

typedef struct kvc__qweights {
  int64_t k, n, blocks;
  int bits;                   /* 4 or 8 */
  int block;                  /* a multiple of 16, at most KVC_QMM_MAX_BLOCK */
  const uint8_t *codes;       /* (n, blocks, block * bits / 8), low bits first along K */
  const float *scales;        /* (n, blocks) */
  const uint8_t *zero_points; /* NULL: 2^(bits - 1); 8 bits: (n, blocks); 4 bits: (n,
                                 ceil(blocks / 2)) bytes, two per byte, low nibble first */
} kvc__qweights;

/* The bytes of column n's block b. */
static inline const uint8_t *kvc__qmm_blob(const kvc__qweights *w, int64_t n, int64_t b) {
  return w->codes + (n * w->blocks + b) * (w->block * w->bits / 8);
}

/* Code i of a block's bytes. */
static inline int32_t kvc__qmm_code(const uint8_t *blob, int bits, int i) {
  return bits == 8 ? blob[i] : i % 2 ? blob[i / 2] >> 4 : blob[i / 2] & 15;
}

/* Column n's zero point in block b. */
static inline int32_t kvc__qmm_zero_point(const kvc__qweights *w, int64_t n, int64_t b) {
  if (!w->zero_points)
    return 1 << (w->bits - 1);
  if (w->bits == 8)
    return w->zero_points[n * w->blocks + b];
  const uint8_t z = w->zero_points[n * ((w->blocks + 1) / 2) + b / 2];
  return b % 2 ? z >> 4 : z & 15;
}

/* The same weights in panels for the vectorised paths: eight columns side by side (a last
 * panel past N repeats column N - 1), so that one 32-byte load holds four rows of K for each
 * of the eight and each 32-bit lane sums one column, with no horizontal sums. Per panel and
 * block: the codes (8-bit: groups of 4 rows of K, byte 4 j + i = column j, row i; 4-bit:
 * groups of 8 rows, byte 4 j + i = row i in the low nibble, row 4 + i in the high one), then
 * separately the 8 columns' scales and zero points. The scales are IEEE half floats when
 * every one of them is exactly one (quantize writes such scales, quant.h): the same values
 * in half the bytes, which a decode step streams with the codes. Codes, scales and zero
 * points in three arrays are three streams per panel, six per pair of panels: more than one
 * stream a panel reads faster from DRAM (PERFORMANCE #46). */
typedef struct kvc__qpanels {
  uint8_t *codes;       /* panels * blocks * block * bits bytes */
  void *scales;         /* panels * blocks * 8: uint16_t (half_scales) or float */
  uint8_t *zero_points; /* panels * blocks * 8 (a byte each) */
  int half_scales;
  int kept; /* the arrays are taken from huge pages (pages.h), not malloc'd */
} kvc__qpanels;

/* Fills `out`; kvc__qmm_unpack frees its three arrays. `kept`: panels that live as long as a
 * session and are streamed by every step (a constant matrix's), taken from huge pages shared
 * with the other matrices (kvc__pages_take); otherwise malloc'd (a run's own, given back at
 * its end). 0, or -1 when out of memory (nothing left allocated). */
int kvc__qmm_pack(const kvc__qweights *w, int kept, kvc__qpanels *out);
void kvc__qmm_unpack(kvc__qpanels *p);

/* One quantised row of x (step 1): blocks * block codes (zero past K), and per block its
 * scale and the sum of its codes, block b's at [b * step]. The operator stores the rows'
 * scales (and sums) block by block, step = the row count, so that a block's are side by
 * side for every row (what the AMX path reads). */
typedef struct kvc__qrow {
  const int8_t *q;
  const float *scale;
  const int32_t *sum;
  int64_t step;
} kvc__qrow;

/* Step 1 for one row (x: k floats): q (blocks * block), scale and sum (block b's at
 * [b * step]). One implementation per path (the vectorised ones: the same operations on 8
 * values at a time, so the same bits). */
typedef void kvc__qmm_quantize_fn(const float *x, int64_t k, int block, int64_t blocks, int8_t *q,
                                  float *scale, int32_t *sum, int64_t step);
kvc__qmm_quantize_fn kvc__qmm_quantize_row;    /* portable */
kvc__qmm_quantize_fn kvc__qmm_quantize_avx2;   /* x86-64 builds only */
kvc__qmm_quantize_fn kvc__qmm_quantize_avx512; /* x86-64 builds only */

/* Step 1's code for x, given 127 / amax (inv): round-half-even of x * inv within +-127, 0 for
 * a NaN. v + 1.5 x 2^23 - 1.5 x 2^23 rounds |v| < 2^22 half to even, as cvtps2dq does. */
static inline int8_t kvc__qmm_code_of(float x, float inv) {
  const float round = 0x1.8p23f;
  float v = x * inv; /* |v| <= 127 for finite x */
  v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
  v = (v + round) - round;
  return v == v ? (int8_t)v : 0;
}

/* Step 1's 127 / amax: 0 when amax is 0 (a block of zeros), not finite when amax is not. */
static inline float kvc__qmm_inverse(float amax) {
  return amax > 0.0f ? 127.0f / amax : 0.0f;
}

/* Steps 2 and 3: y[r * ldy + c] for each of `rows` rows and each column c in [n0, n1); n0 a
 * multiple of 8. The portable path reads w, the vectorised ones the panels. */
typedef void kvc__qmm_fn(const kvc__qweights *w, const kvc__qpanels *panels, const kvc__qrow *rows,
                         int64_t nrows, int64_t n0, int64_t n1, float *y, int64_t ldy);

typedef enum kvc__qmm_path {
  KVC_QMM_PORTABLE = 0,
  KVC_QMM_AVX2 = 1,   /* AVX2 (pmaddubsw) and F16C */
  KVC_QMM_AVX512 = 2, /* AVX-512 VNNI (vpdpbusd on 512 bits, two panels at once) */
  KVC_QMM_AMX = 3,    /* AVX-512's and AMX-INT8 tiles (tdpbsud) for 16 rows at a time */
  KVC_QMM_PATHS
} kvc__qmm_path;

typedef struct kvc__qmm_impl {
  kvc__qmm_path path; /* every path but the portable one reads kvc__qmm_pack's panels */
  kvc__qmm_quantize_fn *quantize;
  kvc__qmm_fn *product;
  kvc__qmm_fn *one_row; /* the product of a single row (a decode step): `product`, but the AVX2
                         * kernel on the AVX-512 path of a CPU that runs 512-bit operations as
                         * two 256-bit halves (AMD Zen 4, kvc__op_halves_512): there one row
                         * is memory-bound and the pairs' extra shuffles only cost (PERFORMANCE
                         * #76). The same bits either way. */
} kvc__qmm_impl;

kvc__qmm_fn kvc__qmm_portable;
kvc__qmm_fn kvc__qmm_avx2;   /* x86-64 builds only */
kvc__qmm_fn kvc__qmm_avx512; /* x86-64 builds only */
kvc__qmm_fn kvc__qmm_amx;    /* x86-64 builds only */

/* Whether the CPU has AMX-TILE and AMX-INT8 and Linux lets this process use the tiles (it
 * grants them once per process, for every thread; asking again returns the same answer;
 * x86-64 builds only). */
int kvc__qmm_amx_allowed(void);

/* The fastest path this CPU runs, or the one named by the environment variable
 * KVCACHE_MATMUL ("portable", "avx2", "avx512", "amx"). Returns 0; or -1, with a message in `why`,
 * when the variable names an unknown path or one this CPU (or build) lacks. */
int kvc__qmm_pick(kvc__qmm_path *path, char *why, size_t cap);

/* Whether this CPU (and build) runs `path` (a kvc__qmm_path). */
int kvc__qmm_runs(int path);

/* The implementation of `path`. */
kvc__qmm_impl kvc__qmm_for(kvc__qmm_path path);

/* "portable", "avx2", "avx512", "amx". */
const char *kvc__qmm_path_name(kvc__qmm_path path);

#endif
