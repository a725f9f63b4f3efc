/* libFuzzer: the ONNX bytes kvcache reads itself (positions, external files, attention). */
#include <stddef.h>
#include <stdint.h>

#include "graph_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kvc__graph_file g;
  kvc__graph_file_parse(data, size, "/nonexistent-kvcache-fuzz", NULL, &g);
  return 0;
}
