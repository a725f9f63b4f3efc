/* attention_kernel.c: which attention kernel runs (see attention_kernel.h). */
#include "attention_kernel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"portable", "avx2", "avx512"};

const char *kvc__attend_path_name(kvc__attend_path path) {
  return (unsigned)path < sizeof names / sizeof names[0] ? names[path] : "?";
}

/* Whether this CPU (and build) runs `path`. */
static int runs(kvc__attend_path path) {
#if defined(KVC_X86_KERNELS)
  __builtin_cpu_init();
  if (path == KVC_ATTEND_AVX512)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
  if (path == KVC_ATTEND_AVX2)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return path == KVC_ATTEND_PORTABLE;
}

int kvc__attend_pick(kvc__attend_path *path, char *why, size_t cap) {
  const char *forced = getenv("KVCACHE_ATTENTION");
  if (!forced || !*forced) {
    *path = runs(KVC_ATTEND_AVX512) ? KVC_ATTEND_AVX512
            : runs(KVC_ATTEND_AVX2) ? KVC_ATTEND_AVX2
                                    : KVC_ATTEND_PORTABLE;
    return 0;
  }
  for (int p = 0; p < (int)(sizeof names / sizeof names[0]); p++) {
    if (strcmp(forced, names[p]) != 0)
      continue;
    if (!runs((kvc__attend_path)p)) {
      snprintf(why, cap, "KVCACHE_ATTENTION=%s: this CPU or build has no %s path", forced,
               names[p]);
      return -1;
    }
    *path = (kvc__attend_path)p;
    return 0;
  }
  snprintf(why, cap, "KVCACHE_ATTENTION=%.64s: expected portable, avx2 or avx512", forced);
  return -1;
}

kvc__attend_fn *kvc__attend_for(kvc__attend_path path, int head_dim) {
#if defined(KVC_X86_KERNELS)
  if (path == KVC_ATTEND_AVX512 && head_dim % 16 == 0)
    return kvc__attend_avx512;
  if (path >= KVC_ATTEND_AVX2 && head_dim % 8 == 0)
    return kvc__attend_avx2;
#else
  (void)path, (void)head_dim;
#endif
  return kvc__attend_portable;
}
