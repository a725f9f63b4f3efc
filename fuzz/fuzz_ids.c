/* libFuzzer: the CLI's token-list parser (--prompt-ids, --prompts lines, detokenize input). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  int32_t *ids = NULL;
  const int n = kvc_arg_parse_ids(text, &ids);
  if (n > 0 && (!ids || (size_t)n > size))
    __builtin_trap(); /* more ids than characters */
  free(ids);
  free(text);
  return 0;
}
