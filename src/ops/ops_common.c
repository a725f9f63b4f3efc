/* ops_common.c: what kvcache's operators share: which kernel path runs, and the callbacks
 * every one of them gives ONNX Runtime alike (see ops.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

int kvc__op_has_f16c(void) {
#if defined(__x86_64__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
#else
  return 0;
#endif
}

int kvc__op_halves_512(void) {
#if defined(__x86_64__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d) || b != 0x68747541u /* "AuthenticAMD" */ ||
      !__get_cpuid(1, &a, &b, &c, &d))
    return 0;
  const unsigned base = (a >> 8) & 0xfu, extended = (a >> 20) & 0xffu;
  const unsigned family = base == 0xfu ? base + extended : base;
  __builtin_cpu_init();
  return family == 0x19u && __builtin_cpu_supports("avx512f");
#else
  return 0;
#endif
}

static const char *const path_names[] = {"portable", "avx2", "avx512", "amx"};
enum { PATHS = sizeof path_names / sizeof path_names[0] };

const char *kvc__op_path_name(int path) {
  return path >= 0 && path < PATHS ? path_names[path] : "?";
}

int kvc__op_pick_path(const char *var, int paths, int (*runs)(int path), int *path, char *why,
                      size_t cap) {
  paths = paths < PATHS ? paths : PATHS;
  const char *forced = getenv(var);
  if (!forced || !*forced) {
    for (*path = paths - 1; *path > 0 && !runs(*path); --*path) {
    }
    return 0;
  }
  for (int p = 0; p < paths; p++) {
    if (strcmp(forced, path_names[p]) != 0)
      continue;
    if (!runs(p)) {
      snprintf(why, cap, "%s=%s: this CPU or build has no %s path", var, forced, path_names[p]);
      return -1;
    }
    *path = p;
    return 0;
  }
  int n = snprintf(why, cap, "%s=%.64s: expected ", var, forced);
  for (int p = 0; p < paths && n >= 0 && (size_t)n < cap; p++)
    n += snprintf(why + n, cap - (size_t)n, "%s%s", path_names[p],
                  p + 2 < paths   ? ", "
                  : p + 1 < paths ? " or "
                                  : "");
  return -1;
}

const char *kvc__op_cpu(const OrtCustomOp *op) {
  (void)op;
  return NULL; /* the CPU execution provider */
}

ONNXTensorElementDataType kvc__op_float(const OrtCustomOp *op, size_t index) {
  (void)op, (void)index;
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}

OrtCustomOpInputOutputCharacteristic kvc__op_required(const OrtCustomOp *op, size_t index) {
  (void)op, (void)index;
  return INPUT_OUTPUT_REQUIRED;
}

OrtMemType kvc__op_cpu_memory(const OrtCustomOp *op, size_t index) {
  (void)op, (void)index;
  return OrtMemTypeDefault;
}
