/* ops_common.c: what kvcache's operators share: which kernel path runs, and the callbacks
 * every one of them gives ONNX Runtime alike (see ops.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

static const char *const path_names[] = {"portable", "avx2", "avx512"};
enum { PATHS = sizeof path_names / sizeof path_names[0] };

const char *kvc__op_path_name(int path) {
  return path >= 0 && path < PATHS ? path_names[path] : "?";
}

int kvc__op_pick_path(const char *var, int (*runs)(int path), int *path, char *why, size_t cap) {
  const char *forced = getenv(var);
  if (!forced || !*forced) {
    for (*path = PATHS - 1; *path > 0 && !runs(*path); --*path) {
    }
    return 0;
  }
  for (int p = 0; p < PATHS; p++) {
    if (strcmp(forced, path_names[p]) != 0)
      continue;
    if (!runs(p)) {
      snprintf(why, cap, "%s=%s: this CPU or build has no %s path", var, forced, path_names[p]);
      return -1;
    }
    *path = p;
    return 0;
  }
  snprintf(why, cap, "%s=%.64s: expected portable, avx2 or avx512", var, forced);
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
