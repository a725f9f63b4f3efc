/* special_tokens.h: the BOS, EOS and pad ids a built model states (its genai_config.json),
 * and the tokenizer files it carries (kvc_build_params.tokenizer). */
#ifndef KVC_SPECIAL_TOKENS_H
#define KVC_SPECIAL_TOKENS_H

#include <stdint.h>

#include "kvcache.h"

typedef struct kvc__special {
  int32_t bos, eos, pad;       /* -1: none stated */
  char tokenizer[4096];        /* the tokenizer.json to copy; "" when none */
  char tokenizer_config[4096]; /* the tokenizer_config.json beside it; "" when none */
} kvc__special;

/* Each id as params says: an id >= 0 as given (below vocab_size), -1 none, or
 * KVC_BUILD_TOKEN_AUTO: with a tokenizer, the token its tokenizer_config.json names as
 * bos_token / eos_token / pad_token (none when the file or the key is absent); without one,
 * the builder's own 1 / 2 / 2. Errors name the field or file: KVC_ERR_INVALID_ARG (an id out
 * of range, a vocabulary smaller than the tokenizer's, a named token the tokenizer lacks),
 * those of kvc_tokenizer_open and of reading tokenizer_config.json. */
kvc_status kvc__special_resolve(const kvc_build_params *params, kvc__special *out);

#endif
