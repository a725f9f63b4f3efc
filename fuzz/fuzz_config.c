/* libFuzzer: config.json and genai_config.json text, as kvc_model_open reads them. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "genai_config.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int32_t max = 0;
  char source[256], weights[160];
  kvc__config_parse("config.json", (const char *)data, size, &max, source, sizeof source, weights,
                    sizeof weights);
  kvc__genai g;
  snprintf(g.path, sizeof g.path, "genai_config.json");
  if (kvc__genai_parse((const char *)data, size, &g) == KVC_OK && g.n_eos > KVC_MAX_EOS)
    __builtin_trap(); /* the eos list overflowed */
  return 0;
}
