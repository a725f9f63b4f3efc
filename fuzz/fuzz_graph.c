/* libFuzzer: the ONNX bytes kvcache reads itself (positions, external files, attention), and
 * rewrites as it opens a model with another cache type (float16, 8-bit). */
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "cache_type.h"
#include "graph_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kvc__graph_file g;
  kvc__graph_file_parse(data, size, "/nonexistent-kvcache-fuzz", NULL, &g);
  const int32_t types[2] = {10 /* FLOAT16 */, 3 /* INT8 */};
  for (int t = 0; t < 2; t++) {
    uint8_t *out = NULL;
    size_t out_size = 0;
    kvc__graph_retype_cache_bytes(data, size, "fuzz", types[t], &out, &out_size);
    kvc__free(out);
  }
  return 0;
}
