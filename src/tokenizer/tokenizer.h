/* tokenizer.h: a Hugging Face tokenizer.json (BPE model) in memory, shared by the loader
 * (tokenizer_load.c), the encoder (tokenizer_encode.c) and the decoder (tokenizer_decode.c).
 *
 * Encoding, as the tokenizers library does it: the text is split around added tokens
 * (leftmost-longest), each other section is normalised, pre-tokenised into words, and each
 * word is turned into ids by BPE merges; the post-processor may add special tokens. */
#ifndef KVC_TOKENIZER_H
#define KVC_TOKENIZER_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>
/* uthash must not exit the process when memory runs out: an add that fails sets this flag */
extern _Thread_local int kvc__hash_oom;
#define HASH_NONFATAL_OOM        1
#define HASH_FUNCTION            HASH_SFH
#define uthash_nonfatal_oom(elt) (kvc__hash_oom = 1)
#include <uthash.h>

#include "kvcache.h"

/* A token's text -> id (the vocabulary and the added tokens). */
typedef struct kvc__tok_entry {
  const char *text; /* in the tokenizer's arena */
  int32_t len, id;
  UT_hash_handle hh;
} kvc__tok_entry;

/* A merge: the pair (left id, right id) -> its rank and the merged token's id. */
typedef struct kvc__merge {
  uint64_t pair;
  int32_t rank, merged;
  UT_hash_handle hh;
} kvc__merge;

/* An edge of the added tokens' trie. */
typedef struct kvc__edge {
  uint64_t key; /* parent node << 8 | byte */
  int32_t child;
  UT_hash_handle hh;
} kvc__edge;

enum { KVC_TOK_MAX_STEPS = 8 };

typedef enum {
  NORM_NFC,
  NORM_NFD,
  NORM_NFKC,
  NORM_NFKD,
  NORM_LOWERCASE,
  NORM_REPLACE,
  NORM_PREPEND
} kvc__norm_kind;
typedef struct kvc__norm {
  kvc__norm_kind kind;
  const char *from, *to; /* REPLACE: literal from -> to; PREPEND: to */
} kvc__norm;

/* How a Split keeps what its pattern matched (the tokenizers library's SplitDelimiterBehavior). */
typedef enum {
  SPLIT_ISOLATED,
  SPLIT_REMOVED,
  SPLIT_MERGED_PREVIOUS,
  SPLIT_MERGED_NEXT
} kvc__split_behavior;
typedef enum { PRE_SPLIT, PRE_BYTE_LEVEL, PRE_METASPACE } kvc__pre_kind;
typedef struct kvc__pre {
  kvc__pre_kind kind;
  pcre2_code *re;               /* SPLIT, BYTE_LEVEL with use_regex: the pattern */
  kvc__split_behavior behavior; /* SPLIT */
  int add_prefix_space;         /* BYTE_LEVEL */
  const char *replacement;      /* METASPACE, e.g. "\u2581" */
  int prepend;                  /* METASPACE: 0 never, 1 first section only, 2 always */
  int split;                    /* METASPACE: split into words after each replacement */
} kvc__pre;

typedef enum {
  DEC_BYTE_LEVEL,
  DEC_REPLACE,
  DEC_BYTE_FALLBACK,
  DEC_FUSE,
  DEC_STRIP,
  DEC_METASPACE
} kvc__dec_kind;
typedef struct kvc__dec {
  kvc__dec_kind kind;
  const char *from, *to; /* REPLACE; METASPACE: from = the replacement character */
  int start, stop;       /* STRIP: characters `from` removed at each end, at most */
  int prepend;           /* METASPACE: as kvc__pre.prepend (0 keeps a leading space) */
} kvc__dec;

/* How an added token matches (tokenizer.json's flags): it takes the whitespace on its left or
 * right with it, or matches only where no word character touches it. */
enum { KVC_ADDED_LSTRIP = 1, KVC_ADDED_RSTRIP = 2, KVC_ADDED_SINGLE_WORD = 4 };

struct kvc_tokenizer {
  char path[4096];
  int32_t n_ids;           /* largest id + 1 */
  const char **text;       /* (n_ids) each id's text, NULL for an unused id */
  int32_t *text_len;       /* (n_ids) */
  uint8_t *special;        /* (n_ids) 1: an added token marked special */
  uint8_t *added_flags;    /* (n_ids) an added token's KVC_ADDED_* matching flags */
  kvc__tok_entry *vocab;   /* every id's text -> id (uthash) */
  kvc__tok_entry *entries; /* the vocabulary's items, one allocation */
  kvc__merge *merges, *merge_pool;
  struct kvc__block *blocks; /* every string above lives in these */
  /* the BPE model */
  int ignore_merges, byte_fallback, fuse_unk;
  int32_t unk_id;        /* -1: none */
  int32_t byte_ids[256]; /* <0xXX> tokens for byte fallback, -1 where absent */
  /* added tokens, as an Aho-Corasick automaton over their bytes reversed: read once from
   * a text's end to its start, it names the longest added token starting at each position,
   * so that the text is cut at the leftmost-longest ones in time linear in the text (a trie
   * walk from every position costs the text's length times the longest token's). Node 0 is
   * the root; edges (node << 8 | byte) -> child node; a node stands for the bytes on its
   * path, which are the end of some token read backwards. */
  kvc__edge *edges, *edge_pool;
  int32_t *node_token;   /* (n_nodes) the added token whose bytes the node spells, or -1 */
  int32_t *node_depth;   /* (n_nodes) bytes on the node's path */
  int32_t *node_fail;    /* (n_nodes) the node spelling the longest proper suffix of its path */
  int32_t *node_longest; /* (n_nodes) the deepest node on its fail chain (itself included)
                            that spells a whole token, or -1 */
  int32_t n_nodes;
  uint8_t last_bytes[256]; /* 1 for a byte that ends some added token (a root edge) */
  /* the pipeline */
  kvc__norm norm[KVC_TOK_MAX_STEPS];
  int n_norm;
  kvc__pre pre[KVC_TOK_MAX_STEPS];
  int n_pre;
  kvc__dec dec[KVC_TOK_MAX_STEPS];
  int n_dec;
  int byte_fallback_decoder; /* a ByteFallback among the decoders */
  /* the post-processor's special tokens around one sequence (TemplateProcessing "single") */
  int32_t prefix[8], suffix[8];
  int n_prefix, n_suffix;
  char post_unsupported[64];     /* a post-processor kvcache cannot apply: add_special fails */
  struct kvc__word_cache *cache; /* words already encoded (tokenizer_text.c) */
};

/* The word cache (tokenizer_text.c): the ids of words already encoded, made with the
 * tokenizer, shared by the threads that encode with it, emptied when it holds too many. Words
 * of more than KVC_WORD_CACHE_BYTES bytes are not cached (a word gives at most one id per
 * byte). get copies the ids of w to ids and returns their count, or -1 when w is not there. */
enum { KVC_WORD_CACHE_BYTES = 256 };
struct kvc__word_cache *kvc__word_cache_new(void);
void kvc__word_cache_free(struct kvc__word_cache *c);
int kvc__word_cache_get(struct kvc__word_cache *c, const char *w, size_t n, int32_t *ids);
void kvc__word_cache_put(struct kvc__word_cache *c, const char *w, size_t n, const int32_t *ids,
                         size_t n_ids);

/* A growable byte string. */
typedef struct kvc__str {
  char *p;
  size_t n, cap;
} kvc__str;

/* Append n bytes; KVC_ERR_NO_MEMORY when it cannot grow. */
kvc_status kvc__str_add(kvc__str *s, const void *bytes, size_t n);
void kvc__str_free(kvc__str *s);

/* The byte-level alphabet (GPT-2's bytes_to_unicode): byte b is written as the UTF-8 of
 * code point kvc__byte_char(b); kvc__char_byte maps back (-1 for other code points). */
uint32_t kvc__byte_char(uint8_t b);
int kvc__char_byte(uint32_t code_point);

/* Append the UTF-8 of code point cp. */
kvc_status kvc__str_add_char(kvc__str *s, uint32_t cp);

/* Length of the UTF-8 sequence starting at s (1..4), given at least that many bytes are
 * valid UTF-8; the code point in *cp. */
int kvc__utf8_next(const char *s, uint32_t *cp);

/* A tokenizer from the text of a tokenizer.json (kvc_tokenizer_open reads the file); `path`
 * names it in messages. */
kvc_status kvc__tokenizer_parse(const char *path, const char *text, size_t size,
                                kvc_tokenizer **out);

/* Decode ids into *out (replaced), through the tokenizer's decoders; invalid UTF-8 becomes
 * U+FFFD. first: the ids begin the text (a Metaspace decoder then drops the space it
 * prepended); 0 for a window further in. KVC_ERR_INVALID_ARG naming an id outside the
 * vocabulary. */
kvc_status kvc__decode(const kvc_tokenizer *t, const int32_t *ids, int32_t n, int skip_special,
                       int first, kvc__str *out);

/* The first byte offset at which the n bytes are not valid UTF-8, or n. */
size_t kvc__utf8_valid_prefix(const char *s, size_t n);

/* The id of the token whose text is s (n bytes): vocabulary or added token; -1 when none. */
int32_t kvc__tok_lookup(const kvc_tokenizer *t, const char *s, size_t n);

#endif
