/* libFuzzer: the "decoder" of a tokenizer.json. The input is the decoder's JSON (a component
 * or a Sequence of them), then optionally a NUL and token ids (one byte each, taken modulo
 * the vocabulary; without them: every id three times over). The decoder goes into a fixed
 * tokenizer whose vocabulary holds what decoders act on (the byte-level alphabet, the
 * metaspace, <0xXX> byte tokens, a special token, a multi-byte character, text of the seeds'
 * patterns), and the ids are decoded whole and incrementally, with and without special
 * tokens. Decoding must terminate, stay inside its buffers, and agree: the incremental
 * pieces add up to the whole text. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvcache.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char head[] =
    "{\"added_tokens\": [{\"id\": 1, \"content\": \"<s>\", \"special\": true}],"
    " \"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"unk_token\": \"<unk>\","
    " \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"\xe2\x96\x81\": 2, \"a\": 3, \"\xe2\x96\x81"
    "a\": 4,"
    " \"<0x41>\": 5, \"<0xC3>\": 6, \"<0xA9>\": 7, \"<0xE4>\": 8, \"\xc4\xa0\": 9,"
    " \"\xc4\x8a\": 10, \"\xc4\xa0\xc4\xa0\": 11, \"\xc3\xa9\": 12, \" \": 13, \"##b\": 14,"
    " \"\xe2\x96\x81\xe2\x96\x81\": 15, \"x y\": 16, \"\xe4\xb8\xad\": 17},"
    " \"merges\": []}, \"decoder\": ";
enum { N_IDS = 18 };

static void differ(const int32_t *ids, int32_t n, int skip, const char *whole, size_t len,
                   const char *pieces, size_t at) {
  fprintf(stderr, "fuzz_decoder: ids");
  for (int32_t i = 0; i < n; i++)
    fprintf(stderr, " %d", ids[i]);
  fprintf(stderr, " (skip %d): whole \"%.*s\", pieces \"%.*s\"\n", skip, (int)len, whole, (int)at,
          pieces);
  abort();
}

/* Decode ids[0..n) whole and one at a time; the pieces must add up to the whole. */
static void decode(const kvc_tokenizer *t, const int32_t *ids, int32_t n, int skip) {
  static char whole[1 << 16];
  size_t len = 0;
  if (kvc_detokenize(t, ids, n, skip, whole, sizeof whole, &len) != KVC_OK)
    return;
  if (len >= sizeof whole)
    return; /* cut: nothing to compare with */
  kvc_detokenizer *d = NULL;
  if (kvc_detokenizer_new(t, skip, &d) != KVC_OK)
    return;
  static char pieces[1 << 16];
  size_t at = 0;
  for (int32_t i = 0; i < n; i++) {
    const char *piece;
    size_t piece_len;
    if (kvc_detokenizer_push(d, ids[i], &piece, &piece_len) != KVC_OK)
      abort(); /* the whole decoded: so must every piece */
    if (at + piece_len <= len)
      memcpy(pieces + at, piece, piece_len);
    if (at + piece_len > len || memcmp(whole + at, piece, piece_len))
      differ(ids, n, skip, whole, len, pieces, at + piece_len > len ? at : at + piece_len);
    at += piece_len;
  }
  const char *rest;
  size_t rest_len;
  if (kvc_detokenizer_flush(d, &rest, &rest_len) != KVC_OK)
    abort();
  if (at + rest_len != len || memcmp(whole + at, rest, rest_len))
    differ(ids, n, skip, whole, len, pieces, at);
  kvc_detokenizer_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096)
    return 0;
  const uint8_t *nul = memchr(data, 0, size);
  const size_t json_len = nul ? (size_t)(nul - data) : size, head_len = sizeof head - 1;
  char *text = malloc(head_len + json_len + 2);
  memcpy(text, head, head_len);
  memcpy(text + head_len, data, json_len);
  memcpy(text + head_len + json_len, "}", 2);
  kvc_tokenizer *t = NULL;
  kvc_status s = kvc__tokenizer_parse("tokenizer.json", text, head_len + json_len + 1, &t);
  free(text);
  if (s != KVC_OK)
    return 0;
  int32_t ids[3 * N_IDS > 4096 ? 3 * N_IDS : 4096], n = 0;
  if (nul)
    for (const uint8_t *p = nul + 1; p < data + size; p++)
      ids[n++] = *p % N_IDS;
  else
    for (; n < 3 * N_IDS; n++)
      ids[n] = n % N_IDS;
  for (int skip = 0; skip < 2; skip++)
    decode(t, ids, n, skip);
  kvc_tokenizer_free(t);
  return 0;
}
