/* matmul_kernel.c: step 1 of the int8-activation products, shared by every path, and which
 * path runs (see matmul_kernel.h). */
#include "matmul_kernel.h"

#include "ops.h"
#include "pages.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *kvc__qmm_path_name(kvc__qmm_path path) {
  return kvc__op_path_name((int)path);
}

void kvc__qmm_quantize_row(const float *x, int64_t k, int block, int64_t blocks, int8_t *q,
                           float *scale, int32_t *sum, int64_t step) {
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t k0 = b * block, len = k - k0 < block ? k - k0 : block;
    float amax = 0.0f;
    for (int64_t i = 0; i < len; i++) {
      const float a = fabsf(x[k0 + i]);
      amax = a > amax || a != a ? a : amax; /* a NaN stays: the products become NaN */
    }
    const float inv = kvc__qmm_inverse(amax);
    int32_t s = 0;
    for (int64_t i = 0; i < len; i++) {
      const int8_t c = kvc__qmm_code_of(x[k0 + i], inv);
      q[k0 + i] = c;
      s += c;
    }
    memset(q + k0 + len, 0, (size_t)(block - len));
    scale[b * step] = amax / 127.0f;
    sum[b * step] = s;
  }
}

int kvc__qmm_runs(int path) {
#if defined(KVC_X86_KERNELS)
  __builtin_cpu_init();
  if (path == KVC_QMM_AMX)
    return kvc__qmm_runs(KVC_QMM_AVX512) && kvc__qmm_amx_allowed();
  if (path == KVC_QMM_AVX512)
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx2") && kvc__op_has_f16c();
  if (path == KVC_QMM_AVX2)
    return __builtin_cpu_supports("avx2") && kvc__op_has_f16c();
#endif
  return path == KVC_QMM_PORTABLE;
}

int kvc__qmm_pick(kvc__qmm_path *path, char *why, size_t cap) {
  int p = 0;
  const int rc = kvc__op_pick_path("KVCACHE_MATMUL", KVC_QMM_PATHS, kvc__qmm_runs, &p, why, cap);
  *path = (kvc__qmm_path)p;
  return rc;
}

kvc__qmm_impl kvc__qmm_for(kvc__qmm_path path) {
#if defined(KVC_X86_KERNELS)
  if (path == KVC_QMM_AMX)
    return (kvc__qmm_impl){KVC_QMM_AMX, kvc__qmm_quantize_avx512, kvc__qmm_amx, kvc__qmm_amx};
  if (path == KVC_QMM_AVX512)
    return (kvc__qmm_impl){KVC_QMM_AVX512, kvc__qmm_quantize_avx512, kvc__qmm_avx512,
                           kvc__op_halves_512() ? kvc__qmm_avx2 : kvc__qmm_avx512};
  if (path == KVC_QMM_AVX2)
    return (kvc__qmm_impl){KVC_QMM_AVX2, kvc__qmm_quantize_avx2, kvc__qmm_avx2, kvc__qmm_avx2};
#else
  (void)path;
#endif
  return (kvc__qmm_impl){KVC_QMM_PORTABLE, kvc__qmm_quantize_row, kvc__qmm_portable,
                         kvc__qmm_portable};
}

/* f's bits as an IEEE half float when f is exactly one (finite; normal or subnormal as a
 * half), in *h; 0 otherwise. */
static int exact_half(float f, uint16_t *h) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  const int32_t exp = (int32_t)((u >> 23) & 0xffu) - 127;
  const uint32_t mantissa = u & 0x7fffffu;
  if ((u & 0x7fffffffu) == 0) {
    *h = sign;
    return 1;
  }
  if (exp > 15 || exp < -24)
    return 0; /* too large, infinite, NaN, or below the half floats */
  if (exp >= -14) {
    if (mantissa & 0x1fffu)
      return 0;
    *h = (uint16_t)(sign | (uint32_t)(exp + 15) << 10 | mantissa >> 13);
    return 1;
  }
  const uint32_t significand = mantissa | 0x800000u; /* a half subnormal: m x 2^-24 */
  const int shift = -(exp + 1);                      /* 14 to 23 */
  if (significand & ((1u << shift) - 1))
    return 0;
  *h = (uint16_t)(sign | significand >> shift);
  return 1;
}

static void *panel_array(int kept, size_t bytes) {
  return kept ? kvc__pages_take(bytes) : malloc(bytes);
}

int kvc__qmm_pack(const kvc__qweights *w, int kept, kvc__qpanels *out) {
  const int64_t panels = (w->n + KVC_QMM_COLUMNS - 1) / KVC_QMM_COLUMNS;
  const size_t per_block = (size_t)w->block * (size_t)w->bits; /* 8 columns x bits / 8 */
  const size_t cells = (size_t)(panels * w->blocks) * KVC_QMM_COLUMNS;
  uint16_t h = 0;
  int half = 1;
  for (int64_t i = 0; half && i < w->n * w->blocks; i++)
    half = exact_half(w->scales[i], &h);
  out->half_scales = half;
  out->kept = kept;
  out->codes = panel_array(kept, (size_t)(panels * w->blocks) * per_block);
  out->scales = panel_array(kept, cells * (half ? sizeof(uint16_t) : sizeof(float)));
  out->zero_points = panel_array(kept, cells * sizeof *out->zero_points);
  if (!out->codes || !out->scales || !out->zero_points) {
    kvc__qmm_unpack(out);
    return -1;
  }
  for (int64_t p = 0; p < panels; p++)
    for (int64_t b = 0; b < w->blocks; b++) {
      uint8_t *dst = out->codes + (size_t)(p * w->blocks + b) * per_block;
      memset(dst, 0, per_block);
      const size_t cell = (size_t)(p * w->blocks + b) * KVC_QMM_COLUMNS;
      for (int j = 0; j < KVC_QMM_COLUMNS; j++) {
        const int64_t n = p * KVC_QMM_COLUMNS + j < w->n ? p * KVC_QMM_COLUMNS + j : w->n - 1;
        const float scale = w->scales[n * w->blocks + b];
        if (half) {
          exact_half(scale, &h);
          ((uint16_t *)out->scales)[cell + (size_t)j] = h;
        } else
          ((float *)out->scales)[cell + (size_t)j] = scale;
        out->zero_points[cell + (size_t)j] = (uint8_t)kvc__qmm_zero_point(w, n, b);
        const uint8_t *blob = kvc__qmm_blob(w, n, b);
        for (int i = 0; i < w->block; i++) {
          const int32_t c = kvc__qmm_code(blob, w->bits, i);
          if (w->bits == 8)
            dst[(i / 4) * 32 + j * 4 + i % 4] = (uint8_t)c;
          else /* rows 0-3 of a group of 8 in the low nibbles, 4-7 in the high */
            dst[(i / 8) * 32 + j * 4 + i % 4] |= (uint8_t)(i % 8 < 4 ? c : c << 4);
        }
      }
    }
  return 0;
}

void kvc__qmm_unpack(kvc__qpanels *p) {
  if (p->kept)
    kvc__pages_give(p->codes), kvc__pages_give(p->scales), kvc__pages_give(p->zero_points);
  else
    free(p->codes), free(p->scales), free(p->zero_points);
  p->codes = NULL, p->scales = NULL, p->zero_points = NULL;
}
