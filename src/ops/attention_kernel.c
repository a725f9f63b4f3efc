/* attention_kernel.c: which attention kernel runs (see attention_kernel.h). */
#include "attention_kernel.h"

#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *kvc__attend_path_name(kvc__attend_path path) {
  return kvc__op_path_name((int)path);
}

/* Whether this CPU (and build) runs `path`. */
static int runs(int path) {
#if defined(KVC_X86_KERNELS)
  __builtin_cpu_init();
  if (path == KVC_ATTEND_AVX512)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma") && kvc__op_has_f16c();
  if (path == KVC_ATTEND_AVX2) /* F16C: a float16 cache's conversions */
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && kvc__op_has_f16c();
#endif
  return path == KVC_ATTEND_PORTABLE;
}

int kvc__attend_pick(kvc__attend_path *path, char *why, size_t cap) {
  int p = 0;
  const int rc = kvc__op_pick_path("KVCACHE_ATTENTION", KVC_ATTEND_AVX512 + 1, runs, &p, why, cap);
  *path = (kvc__attend_path)p;
  return rc;
}

kvc__attend_path kvc__attend_effective(kvc__attend_path path, int head_dim) {
#if defined(KVC_X86_KERNELS)
  if (path == KVC_ATTEND_AVX512 && head_dim % 16 == 0)
    return KVC_ATTEND_AVX512;
  if (path >= KVC_ATTEND_AVX2 && head_dim % 8 == 0)
    return KVC_ATTEND_AVX2;
#else
  (void)path, (void)head_dim;
#endif
  return KVC_ATTEND_PORTABLE;
}

kvc__attend_fn *kvc__attend_for(kvc__attend_path path, int head_dim) {
  switch (kvc__attend_effective(path, head_dim)) {
#if defined(KVC_X86_KERNELS)
  case KVC_ATTEND_AVX512:
    return kvc__attend_avx512;
  case KVC_ATTEND_AVX2:
    return kvc__attend_avx2;
#endif
  default:
    return kvc__attend_portable;
  }
}
