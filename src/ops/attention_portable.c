/* attention_portable.c: the attention kernel in plain C (any CPU; the reference the
 * vectorised paths are tested against). See attention_kernel.h. */
#include <math.h>
#include <string.h>

#include "attention_kernel.h"
#include "half.h"
#include "q8.h"

static float dot(const float *a, const float *b, int d) {
  float s = 0.0f;
  for (int i = 0; i < d; i++)
    s += a[i] * b[i];
  return s;
}

/* `rows` rows of d values of a narrow kind (F16, Q8) at src as floats at dst: the values every
 * vector path converts as it loads them. */
static void widen(float *dst, const void *src, kvc__cache_kind kind, int d, int rows) {
  if (kind == KVC_CACHE_F16) {
    for (size_t i = 0; i < (size_t)rows * (size_t)d; i++)
      dst[i] = kvc__half_to_float(((const uint16_t *)src)[i]);
    return;
  }
  for (int r = 0; r < rows; r++)
    kvc__q8_dequantize_row((const int8_t *)src + (size_t)r * kvc__q8_row_bytes(d), d,
                           dst + (size_t)r * d);
}

/* Block j0's (nb rows) keys and values as floats: the cache's own rows, or (a narrow kind)
 * its rows widened into kw and vw (KVC_ATTN_BLOCK x head_dim floats each). */
static void block_as_floats(const void *k, const void *v, kvc__cache_kind kind, int d, int64_t j0,
                            int nb, float *kw, float *vw, const float **kb, const float **vb) {
  if (kind == KVC_CACHE_F32) {
    *kb = (const float *)k + j0 * d;
    *vb = (const float *)v + j0 * d;
    return;
  }
  const size_t row = kvc__cache_row_bytes(kind, d);
  widen(kw, (const char *)k + (size_t)j0 * row, kind, d, nb);
  widen(vw, (const char *)v + (size_t)j0 * row, kind, d, nb);
  *kb = kw;
  *vb = vw;
}

void kvc__attend_portable(const float *q, int group, int d, const void *k, const void *v,
                          kvc__cache_kind kind, int64_t n, float *out) {
  float kw[KVC_ATTN_BLOCK * KVC_ATTN_NARROW_MAX_DIM], vw[KVC_ATTN_BLOCK * KVC_ATTN_NARROW_MAX_DIM];
  float max[KVC_ATTN_MAX_GROUP], sum[KVC_ATTN_MAX_GROUP];
  float p[KVC_ATTN_MAX_GROUP][KVC_ATTN_BLOCK];
  for (int g = 0; g < group; g++) {
    max[g] = -INFINITY;
    sum[g] = 0.0f;
  }
  memset(out, 0, (size_t)group * (size_t)d * sizeof *out);
  for (int64_t j0 = 0; j0 < n; j0 += KVC_ATTN_BLOCK) {
    const int nb = n - j0 < KVC_ATTN_BLOCK ? (int)(n - j0) : KVC_ATTN_BLOCK;
    const float *kb, *vb;
    block_as_floats(k, v, kind, d, j0, nb, kw, vw, &kb, &vb);
    for (int g = 0; g < group; g++) {
      float block_max = -INFINITY;
      for (int j = 0; j < nb; j++) {
        p[g][j] = dot(q + (size_t)g * d, kb + (size_t)j * d, d);
        block_max = p[g][j] > block_max ? p[g][j] : block_max;
      }
      /* scores are finite (finite inputs), so the new maximum is too */
      const float new_max = block_max > max[g] ? block_max : max[g];
      const float rescale = expf(max[g] - new_max); /* 0 on the first block */
      float block_sum = 0.0f;
      for (int j = 0; j < nb; j++) {
        p[g][j] = expf(p[g][j] - new_max);
        block_sum += p[g][j];
      }
      sum[g] = sum[g] * rescale + block_sum;
      max[g] = new_max;
      float *o = out + (size_t)g * d;
      for (int i = 0; i < d; i++)
        o[i] *= rescale;
      for (int j = 0; j < nb; j++)
        for (int i = 0; i < d; i++)
          o[i] += p[g][j] * vb[(size_t)j * d + i];
    }
  }
  for (int g = 0; g < group; g++) {
    const float inv = 1.0f / sum[g];
    for (int i = 0; i < d; i++)
      out[(size_t)g * d + i] *= inv;
  }
}
