/* tokenizer_text.c: what loading and encoding share: growable strings, UTF-8 and the
 * byte-level alphabet, and the word cache. */
#include <pthread.h>
#include <string.h>

#include <utf8proc.h>

#include "alloc.h"
#include "error.h"
#include "tokenizer.h"

_Thread_local int kvc__hash_oom;

kvc_status kvc__str_add(kvc__str *s, const void *bytes, size_t n) {
  if (s->n + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 256;
    while (cap < s->n + n + 1)
      cap *= 2;
    char *p = kvc__realloc(s->p, cap);
    if (!p)
      return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for %zu bytes of text", cap);
    s->p = p, s->cap = cap;
  }
  if (n)
    memcpy(s->p + s->n, bytes, n);
  s->n += n;
  s->p[s->n] = '\0';
  return KVC_OK;
}

void kvc__str_free(kvc__str *s) {
  kvc__free(s->p);
  *s = (kvc__str){0};
}

kvc_status kvc__str_add_char(kvc__str *s, uint32_t cp) {
  utf8proc_uint8_t buf[4];
  utf8proc_ssize_t n = utf8proc_encode_char((utf8proc_int32_t)cp, buf);
  return kvc__str_add(s, buf, (size_t)n);
}

/* Bytes printed as themselves: '!'..'~', U+00A1..U+00AC, U+00AE..U+00FF. The other 68 bytes
 * become U+0100 + their rank among those 68. */
static int printable(unsigned b) {
  return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

uint32_t kvc__byte_char(uint8_t b) {
  if (printable(b))
    return b;
  return 256u + (b <= 32 ? b : b <= 160 ? 33u + (b - 127u) : 67u);
}

int kvc__char_byte(uint32_t cp) {
  if (cp < 256)
    return printable(cp) ? (int)cp : -1;
  if (cp >= 256 + 68)
    return -1;
  const unsigned n = cp - 256;
  return n < 33 ? (int)n : n < 67 ? (int)(127 + (n - 33)) : 173;
}

int kvc__utf8_next(const char *s, uint32_t *cp) {
  utf8proc_int32_t c = 0;
  utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s, 4, &c);
  if (n <= 0) { /* only on bytes already known to be valid: never, but stay in bounds */
    *cp = (unsigned char)*s;
    return 1;
  }
  *cp = (uint32_t)c;
  return (int)n;
}

size_t kvc__utf8_valid_prefix(const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k =
        utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
    if (k <= 0)
      return i;
    i += (size_t)k;
  }
  return n;
}

/* ---- the word cache: the ids of words already encoded, shared by the threads that encode
 * with one tokenizer (behind a mutex), emptied when full --------------------------------- */

enum { CACHE_WORDS = 1 << 16 };

typedef struct cached_word {
  UT_hash_handle hh;
  int32_t n_ids, len;
  int32_t *ids;
  char *word; /* ids and word live after the struct, in its allocation */
} cached_word;

struct kvc__word_cache {
  pthread_mutex_t lock; /* POSIX rather than C11's mtx_t: ThreadSanitizer intercepts it */
  cached_word *words;
  unsigned count;
};

struct kvc__word_cache *kvc__word_cache_new(void) {
  struct kvc__word_cache *c = kvc__calloc(1, sizeof *c);
  if (c && pthread_mutex_init(&c->lock, NULL) != 0) {
    kvc__free(c);
    c = NULL;
  }
  return c;
}

static void cache_clear(struct kvc__word_cache *c) {
  cached_word *w, *tmp;
  HASH_ITER(hh, c->words, w, tmp) {
    HASH_DEL(c->words, w);
    kvc__free(w);
  }
  c->count = 0;
}

void kvc__word_cache_free(struct kvc__word_cache *c) {
  if (!c)
    return;
  cache_clear(c);
  pthread_mutex_destroy(&c->lock);
  kvc__free(c);
}

int kvc__word_cache_get(struct kvc__word_cache *c, const char *w, size_t n, int32_t *ids) {
  if (n > KVC_WORD_CACHE_BYTES)
    return -1;
  pthread_mutex_lock(&c->lock);
  cached_word *hit = NULL;
  HASH_FIND(hh, c->words, w, (unsigned)n, hit);
  const int count = hit ? hit->n_ids : -1;
  if (hit)
    memcpy(ids, hit->ids, (size_t)count * sizeof *ids);
  pthread_mutex_unlock(&c->lock);
  return count;
}

void kvc__word_cache_put(struct kvc__word_cache *c, const char *w, size_t n, const int32_t *ids,
                         size_t n_ids) {
  if (n > KVC_WORD_CACHE_BYTES || n_ids > KVC_WORD_CACHE_BYTES)
    return;
  cached_word *item = kvc__malloc(sizeof *item + n_ids * sizeof *ids + n);
  if (!item) /* a cache that cannot grow is only slower */
    return;
  item->n_ids = (int32_t)n_ids, item->len = (int32_t)n;
  item->ids = (int32_t *)(item + 1);
  item->word = (char *)(item->ids + n_ids);
  memcpy(item->ids, ids, n_ids * sizeof *ids);
  memcpy(item->word, w, n);
  pthread_mutex_lock(&c->lock);
  cached_word *old = NULL;
  HASH_FIND(hh, c->words, w, (unsigned)n, old);
  if (!old && c->count == CACHE_WORDS)
    cache_clear(c);
  if (!old) {
    kvc__hash_oom = 0;
    HASH_ADD_KEYPTR(hh, c->words, item->word, (unsigned)n, item);
    c->count += !kvc__hash_oom;
  }
  pthread_mutex_unlock(&c->lock);
  if (old || kvc__hash_oom)
    kvc__free(item);
}
