/* libFuzzer: tokenizer.json text, as kvc_tokenizer_open reads it. A file that opens then
 * encodes a fixed sample and its own first bytes, and decodes what it got back. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvcache.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const kvc_tokenizer *t, const char *text, size_t len) {
  int32_t ids[512], n = 0;
  if (kvc_tokenize(t, text, len, 1, ids, 512, &n) != KVC_OK)
    return;
  n = n < 512 ? n : 512; /* the ids written */
  char out[4096];
  size_t out_len = 0;
  kvc_detokenize(t, ids, n, 0, out, sizeof out, &out_len);
  kvc_detokenize(t, ids, n, 1, out, sizeof out, &out_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kvc_tokenizer *t = NULL;
  if (kvc__tokenizer_parse("tokenizer.json", (const char *)data, size, &t) != KVC_OK)
    return 0;
  static const char sample[] = "Hello world, it's 2024! <s>\n\t  spaced \xc3\xa9 \xe4\xb8\xad";
  round_trip(t, sample, sizeof sample - 1);
  round_trip(t, (const char *)data, size < 64 ? size : 64); /* not UTF-8: refused, not read */
  kvc_tokenizer_free(t);
  return 0;
}
