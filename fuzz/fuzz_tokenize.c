/* libFuzzer: any text through one fixed tokenizer (a byte-fallback BPE with a few merges, a
 * special token and a single_word one): valid UTF-8 must encode, and decode back to itself
 * exactly; anything else must be refused. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvcache.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ids 0..255 the bytes <0x00>..<0xFF>, then a few words and their merges */
static kvc_tokenizer *make(void) {
  static char json[32768];
  size_t at = (size_t)snprintf(json, sizeof json,
                               "{\"model\": {\"type\": \"BPE\", "
                               "\"byte_fallback\": true, \"vocab\": {");
  for (int b = 0; b < 256; b++)
    at += (size_t)snprintf(json + at, sizeof json - at, "\"<0x%02X>\": %d, ", b, b);
  snprintf(json + at, sizeof json - at,
           "\"c\": 256, \"a\": 257, \"t\": 258, \"ca\": 259, \"cat\": 260, \" \": 261},"
           " \"merges\": [\"c a\", \"ca t\"]},"
           " \"added_tokens\": [{\"id\": 262, \"content\": \"<s>\", \"special\": true},"
           " {\"id\": 263, \"content\": \"dog\", \"single_word\": true}],"
           " \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"ByteFallback\"},"
           " {\"type\": \"Fuse\"}]}}");
  kvc_tokenizer *t = NULL;
  if (kvc__tokenizer_parse("fixed", json, strlen(json), &t) != KVC_OK) {
    fprintf(stderr, "fuzz_tokenize: the fixed tokenizer does not open: %s\n", kvc_last_error());
    abort();
  }
  return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static kvc_tokenizer *t;
  if (!t)
    t = make();
  const char *text = (const char *)data;
  int32_t n = 0;
  const kvc_status s = kvc_tokenize(t, text, size, 0, NULL, 0, &n);
  if (s != KVC_OK)
    return 0; /* invalid UTF-8, refused */
  int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
  char *back = malloc(size + 1);
  size_t len = 0;
  if (!ids || !back || kvc_tokenize(t, text, size, 0, ids, n, &n) != KVC_OK ||
      kvc_detokenize(t, ids, n, 0, back, size + 1, &len) != KVC_OK || len != size ||
      memcmp(back, text, size) != 0)
    __builtin_trap(); /* valid text that does not come back */
  free(ids);
  free(back);
  return 0;
}
