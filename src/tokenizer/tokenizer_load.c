/* tokenizer_load.c: kvc_tokenizer_open(): tokenizer.json (the Hugging Face tokenizers format)
 * read with cJSON into the tables and pipeline of tokenizer.h. Every component kvcache does
 * not implement is refused here, naming it, rather than encoding differently. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "error.h"
#include "path.h"
#include "tokenizer.h"

/* tokenizer.json files reach a few hundred MB for the largest vocabularies. */
#define TOKENIZER_MAX_BYTES ((size_t)1 << 30)

struct kvc__block {
  struct kvc__block *next;
  size_t used, cap;
  char data[];
};

/* A NUL-terminated copy of n bytes that lives as long as the tokenizer. */
static const char *keep(kvc_tokenizer *t, const char *s, size_t n) {
  struct kvc__block *b = t->blocks;
  if (!b || b->cap - b->used < n + 1) {
    size_t cap = n + 1 > ((size_t)1 << 20) ? n + 1 : (size_t)1 << 20;
    if (!(b = kvc__malloc(sizeof *b + cap)))
      return NULL;
    b->next = t->blocks, b->used = 0, b->cap = cap;
    t->blocks = b;
  }
  char *out = b->data + b->used;
  memcpy(out, s, n);
  out[n] = '\0';
  b->used += n + 1;
  return out;
}

void kvc_tokenizer_free(kvc_tokenizer *t) {
  if (!t)
    return;
  HASH_CLEAR(hh, t->vocab);
  HASH_CLEAR(hh, t->merges);
  kvc__free(t->entries);
  kvc__free(t->merge_pool);
  kvc__free(t->text);
  kvc__free(t->text_len);
  kvc__free(t->special);
  kvc__free(t->added_flags);
  kvc__word_cache_free(t->cache);
  HASH_CLEAR(hh, t->edges);
  kvc__free(t->edge_pool);
  kvc__free(t->node_token);
  kvc__free(t->node_depth);
  kvc__free(t->node_fail);
  kvc__free(t->node_longest);
  for (int i = 0; i < t->n_pre; i++)
    if (t->pre[i].re)
      pcre2_code_free(t->pre[i].re);
  while (t->blocks) {
    struct kvc__block *next = t->blocks->next;
    kvc__free(t->blocks);
    t->blocks = next;
  }
  kvc__free(t);
}

int32_t kvc_tokenizer_vocab_size(const kvc_tokenizer *t) {
  return t ? t->n_ids : 0;
}

int32_t kvc__tok_lookup(const kvc_tokenizer *t, const char *s, size_t n) {
  kvc__tok_entry *e = NULL;
  HASH_FIND(hh, t->vocab, s, (unsigned)n, e);
  return e ? e->id : -1;
}

int32_t kvc_tokenizer_token_id(const kvc_tokenizer *t, const char *text) {
  return t && text ? kvc__tok_lookup(t, text, strlen(text)) : -1;
}

/* The most characters a Strip decoder takes from either end (Hugging Face's files use 1). */
enum { MAX_STRIP = 1024 };

/* The ids a vocabulary may use: 0 to 2^24 - 1. The loader keeps tables indexed by id (texts,
 * lengths, flags), so one stray large id in a tokenizer.json would cost gigabytes (fuzz_tokenizer
 * found one: 1541298805); the largest real vocabularies hold a few hundred thousand ids. */
enum { MAX_IDS = 1 << 24 };

/* Whether v is a JSON number holding a whole number in [0, max] (1.5 is not an id). */
static int whole(const cJSON *v, double max) {
  return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= max &&
         v->valuedouble == floor(v->valuedouble);
}

/* The loader's state: the file's path for messages. */
typedef struct loader {
  kvc_tokenizer *t;
  const char *path;
  int fused; /* a decoder read so far joins the tokens into one text */
} loader;

static kvc_status bad(const loader *l, const char *what) {
  return kvc__fail(KVC_ERR_MODEL, "%s: %s", l->path, what);
}

static kvc_status unsupported(const loader *l, const char *where, const cJSON *type) {
  return kvc__fail(KVC_ERR_UNSUPPORTED, "%s: %s \"%s\" is not implemented by kvcache", l->path,
                   where, cJSON_IsString(type) ? type->valuestring : "(no type)");
}

static const char *string_of(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int is_type(const cJSON *o, const char *type) {
  const char *s = string_of(o, "type");
  return s && !strcmp(s, type);
}

/* A pattern object {"String": s} or {"Regex": r}, compiled (a String literally). */
static kvc_status compile(const loader *l, const cJSON *pattern, pcre2_code **out) {
  const char *literal = string_of(pattern, "String"), *regex = string_of(pattern, "Regex");
  if (!literal && !regex)
    return bad(l, "a pattern is neither {\"String\": ...} nor {\"Regex\": ...}");
  int err;
  PCRE2_SIZE at;
  /* a regex's work is charged through callouts (tokenizer_encode.c: charge()) */
  uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP | PCRE2_AUTO_CALLOUT);
  const char *text = literal ? literal : regex;
  *out = pcre2_compile((PCRE2_SPTR)text, PCRE2_ZERO_TERMINATED, options, &err, &at, NULL);
  if (!*out) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return kvc__fail(KVC_ERR_UNSUPPORTED, "%s: pattern \"%.60s%s\" at offset %zu: %s", l->path,
                     text, strlen(text) > 60 ? "..." : "", (size_t)at, (const char *)msg);
  }
  pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if it cannot */
  return KVC_OK;
}

static kvc_status normalizer(loader *l, const cJSON *n) {
  kvc_tokenizer *t = l->t;
  if (!n || cJSON_IsNull(n))
    return KVC_OK;
  if (is_type(n, "Sequence")) {
    const cJSON *each;
    cJSON_ArrayForEach(each, cJSON_GetObjectItemCaseSensitive(n, "normalizers")) {
      kvc_status s = normalizer(l, each);
      if (s)
        return s;
    }
    return KVC_OK;
  }
  if (t->n_norm == KVC_TOK_MAX_STEPS)
    return bad(l, "too many normalizers");
  kvc__norm *step = &t->norm[t->n_norm];
  static const char *const unicode[] = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase"};
  for (int k = 0; k < 5; k++)
    if (is_type(n, unicode[k])) {
      step->kind = (kvc__norm_kind)k;
      t->n_norm++;
      return KVC_OK;
    }
  if (is_type(n, "Replace")) {
    const char *from = string_of(cJSON_GetObjectItemCaseSensitive(n, "pattern"), "String");
    const char *to = string_of(n, "content");
    if (!from || !to || !*from)
      return kvc__fail(KVC_ERR_UNSUPPORTED,
                       "%s: normalizer Replace with a Regex pattern is not implemented by kvcache",
                       l->path);
    *step = (kvc__norm){NORM_REPLACE, keep(t, from, strlen(from)), keep(t, to, strlen(to))};
  } else if (is_type(n, "Prepend")) {
    const char *to = string_of(n, "prepend");
    if (!to)
      return bad(l, "normalizer Prepend has no \"prepend\" string");
    *step = (kvc__norm){NORM_PREPEND, NULL, keep(t, to, strlen(to))};
  } else {
    return unsupported(l, "normalizer", cJSON_GetObjectItemCaseSensitive(n, "type"));
  }
  if (!step->to || (step->kind == NORM_REPLACE && !step->from))
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory loading %s", l->path);
  t->n_norm++;
  return KVC_OK;
}

/* GPT-2's pre-tokenizer pattern, which ByteLevel applies when use_regex is true. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int flag(const cJSON *o, const char *key, int otherwise) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsBool(v) ? cJSON_IsTrue(v) : otherwise;
}

/* Metaspace's prepend_scheme (or the older add_prefix_space): 0 never, 1 first, 2 always. */
static int prepend_scheme(const cJSON *o) {
  const char *scheme = string_of(o, "prepend_scheme");
  if (scheme)
    return !strcmp(scheme, "never") ? 0 : !strcmp(scheme, "first") ? 1 : 2;
  return flag(o, "add_prefix_space", 1) ? 2 : 0;
}

static kvc_status pre_tokenizer(loader *l, const cJSON *p) {
  kvc_tokenizer *t = l->t;
  if (!p || cJSON_IsNull(p))
    return KVC_OK;
  if (is_type(p, "Sequence")) {
    const cJSON *each;
    cJSON_ArrayForEach(each, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers")) {
      kvc_status s = pre_tokenizer(l, each);
      if (s)
        return s;
    }
    return KVC_OK;
  }
  if (t->n_pre == KVC_TOK_MAX_STEPS)
    return bad(l, "too many pre-tokenizers");
  kvc__pre *step = &t->pre[t->n_pre];
  memset(step, 0, sizeof *step);
  kvc_status s = KVC_OK;
  if (is_type(p, "Split")) {
    static const char *const behaviors[] = {"Isolated", "Removed", "MergedWithPrevious",
                                            "MergedWithNext"};
    const char *behavior = string_of(p, "behavior");
    int k = 0;
    while (k < 4 && (!behavior || strcmp(behavior, behaviors[k])))
      k++;
    if (k == 4 || flag(p, "invert", 0))
      return kvc__fail(KVC_ERR_UNSUPPORTED,
                       "%s: pre-tokenizer Split with behavior \"%s\"%s is not implemented by "
                       "kvcache (Isolated, Removed, MergedWithPrevious, MergedWithNext are)",
                       l->path, behavior ? behavior : "(none)",
                       flag(p, "invert", 0) ? " inverted" : "");
    step->kind = PRE_SPLIT;
    step->behavior = (kvc__split_behavior)k;
    s = compile(l, cJSON_GetObjectItemCaseSensitive(p, "pattern"), &step->re);
  } else if (is_type(p, "ByteLevel")) {
    step->kind = PRE_BYTE_LEVEL;
    step->add_prefix_space = flag(p, "add_prefix_space", 1);
    if (flag(p, "use_regex", 1)) {
      cJSON *pattern = cJSON_CreateObject();
      cJSON_AddStringToObject(pattern, "Regex", gpt2_pattern);
      s = compile(l, pattern, &step->re);
      cJSON_Delete(pattern);
    }
  } else if (is_type(p, "Metaspace")) {
    const char *r = string_of(p, "replacement");
    if (r && !*r) /* replacing "" would match everywhere, forever */
      return bad(l, "pre-tokenizer Metaspace needs a non-empty replacement");
    step->kind = PRE_METASPACE;
    step->replacement = keep(t, r ? r : "\xe2\x96\x81", strlen(r ? r : "\xe2\x96\x81"));
    if (!step->replacement)
      return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory loading %s", l->path);
    step->prepend = prepend_scheme(p);
    step->split = flag(p, "split", 1);
    if (step->split) { /* words begin at each replacement */
      cJSON *pattern = cJSON_CreateObject();
      cJSON_AddStringToObject(pattern, "String", step->replacement);
      s = compile(l, pattern, &step->re);
      cJSON_Delete(pattern);
    }
  } else {
    return unsupported(l, "pre-tokenizer", cJSON_GetObjectItemCaseSensitive(p, "type"));
  }
  t->n_pre += !s; /* a compiled pattern is freed with the step */
  if (s && step->re)
    pcre2_code_free(step->re);
  return s;
}

static kvc_status decoder(loader *l, const cJSON *d) {
  kvc_tokenizer *t = l->t;
  if (!d || cJSON_IsNull(d))
    return KVC_OK;
  if (is_type(d, "Sequence")) {
    const cJSON *each;
    cJSON_ArrayForEach(each, cJSON_GetObjectItemCaseSensitive(d, "decoders")) {
      kvc_status s = decoder(l, each);
      if (s)
        return s;
    }
    return KVC_OK;
  }
  if (t->n_dec == KVC_TOK_MAX_STEPS)
    return bad(l, "too many decoders");
  kvc__dec *step = &t->dec[t->n_dec];
  memset(step, 0, sizeof *step);
  /* after Fuse (or ByteLevel, which fuses) the one part is the text, not a token: what acts on
   * a token as a whole, or matches across tokens, would decode the incremental decoder's
   * windows otherwise than the text (tokenizer_decode.c); no tokenizer puts them there */
  const cJSON *replace = cJSON_GetObjectItemCaseSensitive(d, "pattern");
  const char *from = string_of(replace, "String");
  uint32_t cp;
  if (l->fused && (is_type(d, "ByteLevel") || is_type(d, "ByteFallback") ||
                   (is_type(d, "Replace") && from && *from &&
                    (size_t)kvc__utf8_next(from, &cp) < strlen(from))))
    return kvc__fail(KVC_ERR_UNSUPPORTED,
                     "%s: decoder %s after Fuse or ByteLevel is not implemented by kvcache%s",
                     l->path, string_of(d, "type"),
                     is_type(d, "Replace") ? " (a pattern of more than one character)" : "");
  l->fused |= is_type(d, "Fuse") || is_type(d, "ByteLevel");
  if (is_type(d, "ByteLevel")) {
    step->kind = DEC_BYTE_LEVEL;
  } else if (is_type(d, "ByteFallback")) {
    step->kind = DEC_BYTE_FALLBACK;
    t->byte_fallback_decoder = 1;
  } else if (is_type(d, "Fuse")) {
    step->kind = DEC_FUSE;
  } else if (is_type(d, "Replace")) {
    const char *from = string_of(cJSON_GetObjectItemCaseSensitive(d, "pattern"), "String");
    const char *to = string_of(d, "content");
    if (!from || !to || !*from)
      return kvc__fail(KVC_ERR_UNSUPPORTED,
                       "%s: decoder Replace with a Regex pattern is not implemented by kvcache",
                       l->path);
    *step = (kvc__dec){
        .kind = DEC_REPLACE, .from = keep(t, from, strlen(from)), .to = keep(t, to, strlen(to))};
  } else if (is_type(d, "Strip")) {
    const char *content = string_of(d, "content");
    const cJSON *start = cJSON_GetObjectItemCaseSensitive(d, "start");
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(d, "stop");
    if (!content || !*content || !whole(start, MAX_STRIP) || !whole(stop, MAX_STRIP))
      return bad(l, "decoder Strip needs a non-empty content and start and stop from 0 to 1024");
    *step = (kvc__dec){.kind = DEC_STRIP,
                       .from = keep(t, content, strlen(content)),
                       .start = start->valueint,
                       .stop = stop->valueint};
  } else if (is_type(d, "Metaspace")) {
    const char *r = string_of(d, "replacement");
    if (r && !*r)
      return bad(l, "decoder Metaspace needs a non-empty replacement");
    r = r ? r : "\xe2\x96\x81";
    *step = (kvc__dec){
        .kind = DEC_METASPACE, .from = keep(t, r, strlen(r)), .prepend = prepend_scheme(d)};
  } else {
    return unsupported(l, "decoder", cJSON_GetObjectItemCaseSensitive(d, "type"));
  }
  if ((step->kind == DEC_REPLACE && (!step->from || !step->to)) ||
      ((step->kind == DEC_STRIP || step->kind == DEC_METASPACE) && !step->from))
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory loading %s", l->path);
  t->n_dec++;
  return KVC_OK;
}

/* TemplateProcessing's "single" template: special tokens before and after sequence A. */
static kvc_status post_processor(loader *l, const cJSON *p) {
  kvc_tokenizer *t = l->t;
  if (!p || cJSON_IsNull(p) || is_type(p, "ByteLevel"))
    return KVC_OK;
  if (is_type(p, "Sequence")) {
    const cJSON *each;
    cJSON_ArrayForEach(each, cJSON_GetObjectItemCaseSensitive(p, "processors")) {
      kvc_status s = post_processor(l, each);
      if (s)
        return s;
    }
    return KVC_OK;
  }
  if (!is_type(p, "TemplateProcessing")) {
    snprintf(t->post_unsupported, sizeof t->post_unsupported, "%s",
             string_of(p, "type") ? string_of(p, "type") : "(no type)");
    return KVC_OK;
  }
  const cJSON *item, *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
  int seen_a = 0;
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(p, "single")) {
    const cJSON *special = cJSON_GetObjectItemCaseSensitive(item, "SpecialToken");
    if (!special) {
      seen_a = 1;
      continue;
    }
    const char *name = string_of(special, "id");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(specials, name ? name : ""), "ids");
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) {
      int32_t *list = seen_a ? t->suffix : t->prefix;
      int *n = seen_a ? &t->n_suffix : &t->n_prefix;
      if (*n == 8 || !whole(id, t->n_ids - 1))
        return bad(l, "post_processor TemplateProcessing: a special token id is out of range");
      list[(*n)++] = (int32_t)id->valuedouble;
    }
  }
  return KVC_OK;
}

/* The vocabulary, the added tokens and the id -> text table. */
static kvc_status vocabulary(loader *l, const cJSON *vocab, const cJSON *added) {
  kvc_tokenizer *t = l->t;
  if (!cJSON_IsObject(vocab))
    return bad(l, "model.vocab is not an object of token -> id");
  int n_vocab = cJSON_GetArraySize(vocab), n_added = cJSON_GetArraySize(added), n = 0;
  const cJSON *e;
  int32_t most = -1;
  cJSON_ArrayForEach(e, vocab) {
    if (!whole(e, MAX_IDS - 1))
      return bad(l, "model.vocab has an id that is not a whole number from 0 to 16777215 (2^24 "
                    "- 1, the largest id kvcache takes)");
    most = (int32_t)e->valuedouble > most ? (int32_t)e->valuedouble : most;
  }
  cJSON_ArrayForEach(e, added) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
    if (!whole(id, MAX_IDS - 1) || !string_of(e, "content"))
      return bad(l, "added_tokens has an entry without content or without an id from 0 to "
                    "16777215 (2^24 - 1, the largest id kvcache takes)");
    most = (int32_t)id->valuedouble > most ? (int32_t)id->valuedouble : most;
  }
  t->n_ids = most + 1;
  t->entries = kvc__calloc((size_t)(n_vocab + n_added) + 1, sizeof *t->entries);
  t->text = kvc__calloc((size_t)t->n_ids + 1, sizeof *t->text);
  t->text_len = kvc__calloc((size_t)t->n_ids + 1, sizeof *t->text_len);
  t->special = kvc__calloc((size_t)t->n_ids + 1, sizeof *t->special);
  t->added_flags = kvc__calloc((size_t)t->n_ids + 1, sizeof *t->added_flags);
  if (!t->entries || !t->text || !t->text_len || !t->special || !t->added_flags)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for %d tokens of %s", t->n_ids, l->path);
  for (int pass = 0; pass < 2; pass++) {
    cJSON_ArrayForEach(e, (pass ? added : vocab)) {
      const char *s = pass ? string_of(e, "content") : e->string;
      const int32_t id =
          (int32_t)(pass ? cJSON_GetObjectItemCaseSensitive(e, "id") : e)->valuedouble;
      const size_t len = strlen(s);
      if (pass && flag(e, "special", 0))
        t->special[id] = 1;
      if (pass)
        t->added_flags[id] = (uint8_t)((flag(e, "lstrip", 0) ? KVC_ADDED_LSTRIP : 0) |
                                       (flag(e, "rstrip", 0) ? KVC_ADDED_RSTRIP : 0) |
                                       (flag(e, "single_word", 0) ? KVC_ADDED_SINGLE_WORD : 0));
      if (kvc__tok_lookup(t, s, len) >= 0) /* an added token already in the vocabulary */
        continue;
      kvc__tok_entry *item = &t->entries[n++];
      if (!(item->text = keep(t, s, len)))
        return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory loading %s", l->path);
      item->len = (int32_t)len;
      item->id = id;
      t->text[id] = item->text;
      t->text_len[id] = item->len;
      HASH_ADD_KEYPTR(hh, t->vocab, item->text, (unsigned)len, item);
      if (kvc__hash_oom)
        return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory loading %s", l->path);
    }
  }
  return KVC_OK;
}

/* Merges, as "left right" strings or [left, right] pairs; rank = position. A merge whose
 * parts or result are not tokens can never apply and is left out. */
static kvc_status merges(loader *l, const cJSON *list) {
  kvc_tokenizer *t = l->t;
  int n = cJSON_GetArraySize(list), rank = 0;
  if (!(t->merge_pool = kvc__calloc((size_t)n + 1, sizeof *t->merge_pool)))
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for %d merges of %s", n, l->path);
  kvc__str joined = {0};
  kvc_status s = KVC_OK;
  const cJSON *m;
  cJSON_ArrayForEach(m, list) {
    const char *a = NULL, *b = NULL;
    size_t a_len = 0;
    if (cJSON_IsString(m) && (b = strchr(m->valuestring, ' '))) {
      a = m->valuestring, a_len = (size_t)(b - a), b++;
    } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 &&
               cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
               cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
      a = cJSON_GetArrayItem(m, 0)->valuestring, a_len = strlen(a);
      b = cJSON_GetArrayItem(m, 1)->valuestring;
    } else {
      s = bad(l, "model.merges has an entry that is neither \"a b\" nor [a, b]");
      break;
    }
    const size_t b_len = strlen(b);
    joined.n = 0;
    if ((s = kvc__str_add(&joined, a, a_len)) || (s = kvc__str_add(&joined, b, b_len)))
      break;
    const int32_t left = kvc__tok_lookup(t, a, a_len), right = kvc__tok_lookup(t, b, b_len);
    const int32_t merged = kvc__tok_lookup(t, joined.p, joined.n);
    const int32_t r = rank++;
    if (left < 0 || right < 0 || merged < 0)
      continue;
    kvc__merge *item = &t->merge_pool[r];
    item->pair = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    kvc__merge *dup = NULL;
    HASH_FIND(hh, t->merges, &item->pair, sizeof item->pair, dup);
    if (dup) /* the first (lowest rank) of a repeated merge counts */
      continue;
    item->rank = r;
    item->merged = merged;
    HASH_ADD(hh, t->merges, pair, sizeof item->pair, item);
    if (kvc__hash_oom) {
      s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory loading %s", l->path);
      break;
    }
  }
  kvc__str_free(&joined);
  return s;
}

static kvc_status model(loader *l, const cJSON *m) {
  kvc_tokenizer *t = l->t;
  const char *type = string_of(m, "type");
  if (!type || strcmp(type, "BPE"))
    return unsupported(l, "model", cJSON_GetObjectItemCaseSensitive(m, "type"));
  const char *prefix = string_of(m, "continuing_subword_prefix");
  const char *suffix = string_of(m, "end_of_word_suffix");
  const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(m, "dropout");
  if ((prefix && *prefix) || (suffix && *suffix) ||
      (cJSON_IsNumber(dropout) && dropout->valuedouble > 0))
    return kvc__fail(KVC_ERR_UNSUPPORTED,
                     "%s: BPE with a continuing_subword_prefix, end_of_word_suffix or dropout is "
                     "not implemented by kvcache",
                     l->path);
  t->ignore_merges = flag(m, "ignore_merges", 0);
  t->byte_fallback = flag(m, "byte_fallback", 0);
  t->fuse_unk = flag(m, "fuse_unk", 0);
  const char *unk = string_of(m, "unk_token");
  t->unk_id = unk ? kvc__tok_lookup(t, unk, strlen(unk)) : -1;
  if (unk && t->unk_id < 0)
    return bad(l, "model.unk_token is not in the vocabulary");
  for (int b = 0; b < 256; b++) {
    char name[8];
    snprintf(name, sizeof name, "<0x%02X>", b);
    t->byte_ids[b] = t->byte_fallback ? kvc__tok_lookup(t, name, 6) : -1;
  }
  return merges(l, cJSON_GetObjectItemCaseSensitive(m, "merges"));
}

/* The added tokens' automaton (see tokenizer.h): a trie of their bytes reversed, then the
 * fail links breadth first (a node's fail is found from its parent's, and is shallower). */
static kvc_status added_automaton(loader *l, const cJSON *added) {
  kvc_tokenizer *t = l->t;
  size_t bytes = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, added) bytes += strlen(string_of(e, "content"));
  if (bytes >= INT32_MAX)
    return bad(l, "added_tokens hold more than 2^31 bytes");
  const size_t nodes = bytes + 1;
  t->node_token = kvc__calloc(nodes, sizeof *t->node_token);
  t->node_depth = kvc__calloc(nodes, sizeof *t->node_depth);
  t->node_fail = kvc__calloc(nodes, sizeof *t->node_fail);
  t->node_longest = kvc__calloc(nodes, sizeof *t->node_longest);
  t->edge_pool = kvc__calloc(nodes, sizeof *t->edge_pool);
  int32_t *order = kvc__calloc(nodes, sizeof *order), *at_depth = NULL;
  kvc_status st = KVC_OK;
  if (!t->node_token || !t->node_depth || !t->node_fail || !t->node_longest || !t->edge_pool ||
      !order)
    st = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory loading %s", l->path);
  t->n_nodes = 1;
  if (!st)
    t->node_token[0] = -1;
  cJSON_ArrayForEach(e, added) {
    if (st)
      break;
    const char *c = string_of(e, "content");
    int32_t node = 0;
    for (size_t k = strlen(c); k-- > 0;) { /* an edge's child is made after its parent */
      const uint64_t key = (uint64_t)node << 8 | (unsigned char)c[k];
      kvc__edge *edge = NULL;
      HASH_FIND(hh, t->edges, &key, sizeof key, edge);
      if (!edge) {
        edge = &t->edge_pool[t->n_nodes - 1];
        edge->key = key;
        edge->child = t->n_nodes;
        t->node_token[t->n_nodes] = -1;
        t->node_depth[t->n_nodes++] = t->node_depth[node] + 1;
        HASH_ADD(hh, t->edges, key, sizeof edge->key, edge);
        if (kvc__hash_oom) {
          st = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory loading %s", l->path);
          break;
        }
      }
      node = edge->child;
    }
    if (node && !st) {
      t->node_token[node] = (int32_t)cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble;
      t->last_bytes[(unsigned char)c[strlen(c) - 1]] = 1;
    }
  }
  /* nodes by depth (a counting sort), then each node's fail link and longest token */
  int32_t max_depth = 0;
  for (int32_t v = 0; !st && v < t->n_nodes; v++)
    max_depth = t->node_depth[v] > max_depth ? t->node_depth[v] : max_depth;
  if (!st && !(at_depth = kvc__calloc((size_t)max_depth + 2, sizeof *at_depth)))
    st = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory loading %s", l->path);
  for (int32_t v = 0; !st && v < t->n_nodes; v++)
    at_depth[t->node_depth[v] + 1]++;
  for (int32_t d = 0; !st && d <= max_depth; d++)
    at_depth[d + 1] += at_depth[d];
  for (int32_t v = 0; !st && v < t->n_nodes; v++)
    order[at_depth[t->node_depth[v]]++] = v;
  for (int32_t i = 0; !st && i < t->n_nodes; i++) {
    const int32_t v = order[i];
    int32_t fail = 0;
    if (t->node_depth[v] > 1) {
      const uint64_t key = t->edge_pool[v - 1].key;
      const int32_t parent = (int32_t)(key >> 8);
      for (int32_t f = t->node_fail[parent];; f = t->node_fail[f]) {
        const uint64_t k = (uint64_t)f << 8 | (key & 0xff);
        kvc__edge *edge = NULL;
        HASH_FIND(hh, t->edges, &k, sizeof k, edge);
        if (edge || !f) {
          fail = edge ? edge->child : 0;
          break;
        }
      }
    }
    t->node_fail[v] = fail;
    t->node_longest[v] = t->node_token[v] >= 0 ? v : v ? t->node_longest[fail] : -1;
  }
  kvc__free(order);
  kvc__free(at_depth);
  return st;
}

static int is_utf8(const char *s) {
  const size_t n = strlen(s);
  return kvc__utf8_valid_prefix(s, n) == n;
}

/* Every key and string of the file is UTF-8, as JSON requires: the strings become text that
 * PCRE2 then reads without checking it again (a normalizer's replacement, a pattern, a token).
 * Returns the first key or string that is not, or NULL. */
static const cJSON *not_utf8(const cJSON *node) {
  for (; node; node = node->next) {
    if ((node->string && !is_utf8(node->string)) ||
        (cJSON_IsString(node) && node->valuestring && !is_utf8(node->valuestring)))
      return node;
    const cJSON *inner = not_utf8(node->child);
    if (inner)
      return inner;
  }
  return NULL;
}

/* A tokenizer from tokenizer.json's text; `path` names it in messages (and in t->path). */
kvc_status kvc__tokenizer_parse(const char *path, const char *text, size_t size,
                                kvc_tokenizer **out) {
  *out = NULL;
  kvc_tokenizer *t = kvc__calloc(1, sizeof *t);
  if (t && !(t->cache = kvc__word_cache_new())) {
    kvc__free(t);
    t = NULL;
  }
  if (!t)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  snprintf(t->path, sizeof t->path, "%s", path);
  kvc_status s = KVC_OK;
  cJSON *json = cJSON_ParseWithLength(text, size);
  if (!json)
    s = kvc__fail(KVC_ERR_MODEL, "%s is not valid JSON (near byte %td)", t->path,
                  cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - text : (ptrdiff_t)0);
  loader l = {.t = t, .path = t->path};
  kvc__hash_oom = 0;
  const cJSON *bad_text = s ? NULL : not_utf8(json);
  if (bad_text) {
    const char *key = bad_text->string;
    const int key_ok = key && is_utf8(key);
    s = kvc__fail(KVC_ERR_MODEL, "%s: %s%s%s is not valid UTF-8 (JSON text must be)", t->path,
                  key_ok ? "the string under \"" : "a key or string", key_ok ? key : "",
                  key_ok ? "\"" : "");
  }
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(json, "model");
  const cJSON *added = cJSON_GetObjectItemCaseSensitive(json, "added_tokens");
  if (!s && !cJSON_IsObject(m))
    s = bad(&l, "no \"model\" object");
  if (!s && added && !cJSON_IsArray(added))
    s = bad(&l, "\"added_tokens\" is not a list");
  if (!s && (!string_of(m, "type") || strcmp(string_of(m, "type"), "BPE")))
    s = unsupported(&l, "model", cJSON_GetObjectItemCaseSensitive(m, "type"));
  if (!s && (s = vocabulary(&l, cJSON_GetObjectItemCaseSensitive(m, "vocab"), added)) == KVC_OK)
    s = model(&l, m);
  if (!s)
    s = added_automaton(&l, added);
  if (!s)
    s = normalizer(&l, cJSON_GetObjectItemCaseSensitive(json, "normalizer"));
  if (!s)
    s = pre_tokenizer(&l, cJSON_GetObjectItemCaseSensitive(json, "pre_tokenizer"));
  if (!s)
    s = decoder(&l, cJSON_GetObjectItemCaseSensitive(json, "decoder"));
  if (!s)
    s = post_processor(&l, cJSON_GetObjectItemCaseSensitive(json, "post_processor"));
  cJSON_Delete(json);
  if (s) {
    kvc_tokenizer_free(t);
    return s;
  }
  *out = t;
  return KVC_OK;
}

kvc_status kvc_tokenizer_open(const char *path, kvc_tokenizer **out) {
  if (!out)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_tokenizer_open: out is NULL");
  *out = NULL;
  if (!path)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_tokenizer_open: path is NULL");
  char file[4096];
  struct stat st;
  kvc_status s = KVC_OK;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    s = kvc__path_join(file, sizeof file, path, "tokenizer.json");
  else
    snprintf(file, sizeof file, "%s", path);
  char *text = NULL;
  size_t size = 0;
  if (!s)
    s = kvc__file_read(file, TOKENIZER_MAX_BYTES, &text, &size);
  if (!s)
    s = kvc__tokenizer_parse(file, text, size, out);
  kvc__free(text);
  return s;
}
