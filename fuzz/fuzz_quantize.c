/* libFuzzer: kvcache quantize over any model.onnx bytes (the graph reading, the weights'
 * shapes and bytes, the rewrite, the writing of the result). Each input is written as
 * DIR/model.onnx beside a small model.onnx.data of zeros and quantised into DIR-out, both
 * removed after. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvcache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], out[80], graph[96], weights[96];

static void write_file(const char *path, const void *bytes, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f) {
    fwrite(bytes, 1, n, f);
    fclose(f);
  }
}

static void remove_out(void) {
  static const char *const names[] = {"model.onnx", "model.onnx.data", "config.json"};
  char path[160];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", out, names[i]);
    remove(path);
  }
  rmdir(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!dir[0]) {
    snprintf(dir, sizeof dir, "/tmp/kvc-fuzz-quantize-%ld", (long)getpid());
    snprintf(out, sizeof out, "%s-out", dir);
    snprintf(graph, sizeof graph, "%s/model.onnx", dir);
    snprintf(weights, sizeof weights, "%s/model.onnx.data", dir);
    mkdir(dir, 0777);
    static const uint8_t zeros[65536]; /* covers the corpus models' 15,808 bytes */
    write_file(weights, zeros, sizeof zeros);
  }
  write_file(graph, data, size);
  remove_out();
  kvc_quantize_params p = kvc_quantize_default_params();
  p.bits = size % 2 ? 8 : 4;
  kvc_quantize(dir, out, &p, NULL);
  remove_out();
  return 0;
}
