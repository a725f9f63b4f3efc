/* matmul_portable.c: the int8-activation products in plain C (any CPU; the definition the
 * vectorised paths are tested against). See matmul_kernel.h. */
#include "matmul_kernel.h"

/* Step 2: the exact integer product of one block of row codes with column n's codes. */
static int32_t block_dot(const kvc__qweights *w, const int8_t *q, int64_t n, int64_t b) {
  const uint8_t *blob = kvc__qmm_blob(w, n, b);
  int32_t d = 0;
  for (int i = 0; i < w->block; i++)
    d += q[i] * kvc__qmm_code(blob, w->bits, i);
  return d;
}

void kvc__qmm_portable(const kvc__qweights *w, const kvc__qpanels *panels, const kvc__qrow *rows,
                       int64_t nrows, int64_t n0, int64_t n1, float *y, int64_t ldy) {
  (void)panels;
  for (int64_t r = 0; r < nrows; r++)
    for (int64_t n = n0; n < n1; n++) {
      float acc = 0.0f;
      for (int64_t b = 0; b < w->blocks; b++) {
        const int32_t d = block_dot(w, rows[r].q + b * w->block, n, b) -
                          kvc__qmm_zero_point(w, n, b) * rows[r].sum[b * rows[r].step];
        const float scale = rows[r].scale[b * rows[r].step] * w->scales[n * w->blocks + b];
        const float term = (float)d * scale;
        acc = acc + term; /* step 3: two roundings, never one fused */
      }
      y[r * ldy + n] = acc;
    }
}
