/* genai_config.h: what kvcache reads from onnxruntime-genai's genai_config.json. */
#ifndef KVC_GENAI_CONFIG_H
#define KVC_GENAI_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "kvcache.h"

typedef struct kvc__genai {
  int found;                                  /* the file exists (the rest is 0 / -1 if not) */
  char path[4096];                            /* DIR/genai_config.json */
  int32_t context_length;                     /* model.context_length; 0 if absent */
  int32_t head_size, kv_heads, heads, layers; /* model.decoder.*; 0 if absent */
  int32_t vocab_size;                         /* model.vocab_size; 0 if absent */
  int32_t bos, pad;                           /* model.{bos,pad}_token_id; -1 if absent */
  int32_t n_eos, eos[KVC_MAX_EOS];            /* model.eos_token_id: a number or a list */
  kvc_search search;                          /* the search section, defaults where absent */
  int has_search;                             /* the file has a "search" section */
  char generation_path[4096];                 /* DIR/generation_config.json when read, else "" */
} kvc__genai;

/* Read DIR/genai_config.json into *out (out->found = 0 when there is none); like every file
 * of the model it must stay inside it (kvc__path_inside, with `graph` the model's .onnx file:
 * KVC_ERR_IO otherwise). KVC_ERR_MODEL
 * naming the file and key for a value of the wrong type or range; the decoder's input and
 * output name templates must be those of the hf naming (past_key_values.%d.key ...), the
 * only ones kvcache binds. KVC_ERR_IO as kvc__file_read. */
kvc_status kvc__genai_read(const char *dir, const char *graph, kvc__genai *out);

/* The same from the file's text (size bytes, no NUL needed) into *out; out->path names the
 * file in messages. */
kvc_status kvc__genai_parse(const char *text, size_t size, kvc__genai *out);

/* Add DIR/generation_config.json's (Hugging Face) to *g, read by kvc__genai_read before:
 * its eos_token_id (one or a list) joins g's end-of-sequence ids; its bos_token_id and
 * pad_token_id count where genai_config.json states none; its sampling keys (do_sample,
 * temperature, top_k, top_p, min_p, repetition_penalty, max_length) where genai_config.json
 * has no "search" section. No file: KVC_OK, *g unchanged. Errors as kvc__genai_read's. */
kvc_status kvc__generation_read(const char *dir, const char *graph, kvc__genai *g);

#endif
