/* tokenizer_encode.c: text -> ids. Added tokens are cut out first; every other section is
 * normalised (utf8proc), pre-tokenised into words (PCRE2 patterns, the byte-level alphabet,
 * Metaspace), and each word goes through BPE: its characters become tokens, and the adjacent
 * pair with the lowest merge rank (the leftmost among equals) is merged until none is left. */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "alloc.h"
#include "error.h"
#include "tokenizer.h"

/* ---- the encoder's working state -------------------------------------------------------- */

typedef struct pieces {
  kvc__str text; /* the pieces' bytes, one after another */
  size_t *end;   /* (n) where each piece ends in text */
  int n, cap;
} pieces;

typedef struct symbol {
  int32_t id;         /* -1: a character the vocabulary lacks */
  int32_t start, len; /* bytes of the word */
  int32_t prev, next; /* neighbours, -1 at the ends */
  int32_t rank;       /* of the pair (this, next); INT32_MAX: none */
  int32_t merged;     /* that pair's token */
  uint32_t stamp;     /* bumped whenever the pair (this, next) changes: older queue entries
                         are stale */
} symbol;

/* A queued pair (syms[at], its next), as it was at `stamp`: merges are taken lowest rank
 * first, the leftmost among equals (the lower index: merges keep the left symbol's). */
typedef struct candidate {
  int32_t rank, at;
  uint32_t stamp;
} candidate;

/* The longest added token starting at byte `at` of the text: the automaton's node. */
typedef struct added_match {
  size_t at;
  int32_t node;
} added_match;

typedef struct encoder {
  const kvc_tokenizer *t;
  int32_t *ids;
  size_t n_ids, cap_ids;
  pieces a, b;   /* the pre-tokeniser's input and output, swapped after each step */
  kvc__str norm; /* a section after normalisation */
  symbol *syms;
  size_t cap_syms;
  candidate *heap; /* a binary min-heap of the word's pairs */
  size_t n_heap, cap_heap;
  pcre2_match_data *md;
  pcre2_match_context *mc;
  uint64_t work, work_left;  /* the patterns' budget (see charge()), and its whole */
  size_t position, text_len; /* where the last callout saw a match; the text's bytes */
  added_match *found;        /* the added tokens in the text, from its end to its start */
  size_t n_found, cap_found;
  size_t limit; /* encoding stops at the first word that takes the ids past this */
} encoder;

static kvc_status push_id(encoder *e, int32_t id) {
  if (e->n_ids == e->cap_ids) {
    size_t cap = e->cap_ids ? 2 * e->cap_ids : 256;
    int32_t *p = kvc__realloc(e->ids, cap * sizeof *p);
    if (!p)
      return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for %zu token ids", cap);
    e->ids = p, e->cap_ids = cap;
  }
  e->ids[e->n_ids++] = id;
  return KVC_OK;
}

static void pieces_clear(pieces *p) {
  p->text.n = 0;
  p->n = 0;
}

/* Close the bytes appended since the last piece as one piece (empty ones are dropped). */
static kvc_status piece_end(pieces *p) {
  size_t start = p->n ? p->end[p->n - 1] : 0;
  if (p->text.n == start)
    return KVC_OK;
  if (p->n == p->cap) {
    int cap = p->cap ? 2 * p->cap : 64;
    size_t *end = kvc__realloc(p->end, (size_t)cap * sizeof *end);
    if (!end)
      return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory splitting text");
    p->end = end, p->cap = cap;
  }
  p->end[p->n++] = p->text.n;
  return KVC_OK;
}

static kvc_status piece_add(pieces *p, const char *s, size_t n) {
  kvc_status st = kvc__str_add(&p->text, s, n);
  return st ? st : piece_end(p);
}

static const char *piece(const pieces *p, int i, size_t *len) {
  size_t start = i ? p->end[i - 1] : 0;
  *len = p->end[i] - start;
  return p->text.p + start;
}

/* ---- normalisation ---------------------------------------------------------------------- */

static kvc_status replace_all(kvc__str *out, const char *s, size_t n, const char *from,
                              const char *to) {
  const size_t fl = strlen(from), tl = strlen(to);
  kvc_status st = KVC_OK;
  for (size_t i = 0; i < n && !st;) {
    if (n - i >= fl && !memcmp(s + i, from, fl)) {
      st = kvc__str_add(out, to, tl);
      i += fl;
    } else {
      st = kvc__str_add(out, s + i, 1);
      i++;
    }
  }
  return st;
}

/* e->norm = the section s after every normaliser. */
static kvc_status normalize(encoder *e, const char *s, size_t n) {
  const kvc_tokenizer *t = e->t;
  e->norm.n = 0;
  kvc_status st = kvc__str_add(&e->norm, s, n);
  for (int k = 0; k < t->n_norm && !st; k++) {
    const kvc__norm *step = &t->norm[k];
    kvc__str out = {0};
    if (step->kind == NORM_REPLACE) {
      st = replace_all(&out, e->norm.p, e->norm.n, step->from, step->to);
    } else if (step->kind == NORM_PREPEND) {
      if (e->norm.n && !(st = kvc__str_add(&out, step->to, strlen(step->to))))
        st = kvc__str_add(&out, e->norm.p, e->norm.n);
    } else if (step->kind == NORM_LOWERCASE) {
      for (size_t i = 0; i < e->norm.n && !st;) {
        uint32_t cp;
        i += (size_t)kvc__utf8_next(e->norm.p + i, &cp);
        st = kvc__str_add_char(&out, (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp));
      }
    } else {
      static const utf8proc_option_t forms[] = {
          UTF8PROC_STABLE | UTF8PROC_COMPOSE, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE,
          UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT,
          UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT};
      utf8proc_uint8_t *mapped = NULL;
      utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)e->norm.p,
                                        (utf8proc_ssize_t)e->norm.n, &mapped, forms[step->kind]);
      if (m < 0)
        st = kvc__fail(KVC_ERR_INVALID_ARG, "normalising text: %s", utf8proc_errmsg(m));
      else
        st = kvc__str_add(&out, mapped, (size_t)m);
      free(mapped); /* utf8proc's own allocation */
    }
    if (!st) {
      kvc__str_free(&e->norm);
      e->norm = out;
    } else {
      kvc__str_free(&out);
    }
  }
  return st;
}

/* ---- pre-tokenisation --------------------------------------------------------------------- */

/* How much work the pre-tokenizer's patterns may do. A pattern such as a*a*b|a takes time
 * quadratic in the text every time it is tried, and a split tries it from every match's end:
 * a few kilobytes of "a" then run for minutes, one megabyte for days, and PCRE2's match limit
 * does not see it (a greedy scan counts once however far it goes). So patterns are compiled
 * with a callout before each item (PCRE2_AUTO_CALLOUT), and each callout charges one step
 * plus the distance the match position moved since the last one (what the scans in between
 * read) to one budget per kvc_tokenize call: WORK_PER_BYTE for each byte through each
 * pre-tokenizer, plus WORK_BASE. Real tokenizers' patterns spend 3-7 per byte (Llama 3's on
 * its test corpus: 3.4 callouts per byte); with the budget spent, the text is refused. */
enum { WORK_PER_BYTE = 64, WORK_BASE = 1 << 22 };

static int charge(pcre2_callout_block *b, void *data) {
  encoder *e = data;
  const size_t at = b->current_position;
  const uint64_t work = 1 + (at > e->position ? at - e->position : e->position - at);
  e->position = at;
  if (work > e->work_left)
    return PCRE2_ERROR_CALLOUT; /* abandons the match */
  e->work_left -= work;
  return 0;
}

/* Split s at the matches of re, keeping them as `behavior` says, into out. */
static kvc_status split(encoder *e, const pcre2_code *re, kvc__split_behavior behavior,
                        const char *s, size_t n, pieces *out) {
  size_t carry = 0, at = 0;
  kvc_status st = KVC_OK;
  while (!st && at <= n) {
    e->position = at;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, e->md, e->mc);
    if (rc == PCRE2_ERROR_CALLOUT)
      return kvc__fail(KVC_ERR_INVALID_ARG,
                       "%s: the pre-tokenizer's pattern needs too much work on this text "
                       "(refused at byte %zu of a %zu-byte piece, past %llu steps for %zu bytes of "
                       "input): it backtracks, likely through nested or chained unbounded "
                       "repeats (as in (a+)+ or a*a*b)",
                       e->t->path, at, n, (unsigned long long)e->work, e->text_len);
    if (rc == PCRE2_ERROR_NOMATCH)
      break;
    if (rc < 0)
      return kvc__fail(KVC_ERR_RUNTIME, "pre-tokenizer pattern failed (PCRE2 error %d)", rc);
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
    const size_t ms = ov[0], me = ov[1];
    if (ms < carry || me < ms || me > n) /* \K and the like: a match before where we stand */
      return kvc__fail(KVC_ERR_UNSUPPORTED,
                       "pre-tokenizer pattern matched [%zu, %zu) behind position %zu: patterns "
                       "that move a match's start (\\K) are not supported",
                       ms, me, carry);
    if (me == ms) { /* an empty match splits nothing: step over one character */
      uint32_t cp;
      at = ms + (ms < n ? (size_t)kvc__utf8_next(s + ms, &cp) : 1);
      continue;
    }
    switch (behavior) {
    case SPLIT_ISOLATED:
      if (!(st = piece_add(out, s + carry, ms - carry)))
        st = piece_add(out, s + ms, me - ms);
      carry = me;
      break;
    case SPLIT_REMOVED:
      st = piece_add(out, s + carry, ms - carry);
      carry = me;
      break;
    case SPLIT_MERGED_PREVIOUS:
      st = piece_add(out, s + carry, me - carry);
      carry = me;
      break;
    case SPLIT_MERGED_NEXT:
      st = piece_add(out, s + carry, ms - carry);
      carry = ms;
      break;
    }
    at = me;
  }
  return st ? st : piece_add(out, s + carry, n - carry);
}

/* A piece in the byte-level alphabet: every byte written as its character. */
static kvc_status byte_level(pieces *out, const char *s, size_t n, int prefix_space) {
  kvc_status st = KVC_OK;
  if (prefix_space)
    st = kvc__str_add_char(&out->text, kvc__byte_char(' '));
  for (size_t i = 0; i < n && !st; i++)
    st = kvc__str_add_char(&out->text, kvc__byte_char((uint8_t)s[i]));
  return st ? st : piece_end(out);
}

static kvc_status pre_step(encoder *e, const kvc__pre *step, int section, pieces *in, pieces *out) {
  kvc_status st = KVC_OK;
  pieces_clear(out);
  for (int i = 0; i < in->n && !st; i++) {
    size_t n;
    const char *s = piece(in, i, &n);
    if (step->kind == PRE_SPLIT) {
      st = split(e, step->re, step->behavior, s, n, out);
    } else if (step->kind == PRE_BYTE_LEVEL) {
      const int space = step->add_prefix_space && (n == 0 || s[0] != ' ');
      if (!step->re) {
        st = byte_level(out, s, n, space);
        continue;
      }
      /* the pattern sees the prefix space too: split a copy that has it */
      pieces words = {0};
      kvc__str with_space = {0};
      if (space && !(st = kvc__str_add(&with_space, " ", 1)))
        st = kvc__str_add(&with_space, s, n);
      if (!st)
        st =
            split(e, step->re, SPLIT_ISOLATED, space ? with_space.p : s, space ? n + 1 : n, &words);
      for (int w = 0; w < words.n && !st; w++) {
        size_t wn;
        const char *ws = piece(&words, w, &wn);
        st = byte_level(out, ws, wn, 0);
      }
      kvc__str_free(&with_space);
      kvc__str_free(&words.text);
      kvc__free(words.end);
    } else { /* METASPACE */
      const size_t rl = strlen(step->replacement);
      kvc__str m = {0};
      const int prepend = (step->prepend == 2 || (step->prepend == 1 && section == 0 && i == 0)) &&
                          !(n >= 1 && s[0] == ' ') &&
                          !(n >= rl && !memcmp(s, step->replacement, rl));
      if (prepend)
        st = kvc__str_add(&m, step->replacement, rl);
      if (!st)
        st = replace_all(&m, s, n, " ", step->replacement);
      if (!st && step->split)
        st = split(e, step->re, SPLIT_MERGED_NEXT, m.p, m.n, out);
      else if (!st) {
        st = piece_add(out, m.p, m.n);
      }
      kvc__str_free(&m);
    }
  }
  return st;
}

/* ---- BPE ---------------------------------------------------------------------------------- */

static int before(const candidate *a, const candidate *b) {
  return a->rank < b->rank || (a->rank == b->rank && a->at < b->at);
}

static void heap_push(encoder *e, candidate c) { /* room was made for every push of a word */
  size_t i = e->n_heap++;
  for (; i > 0 && before(&c, &e->heap[(i - 1) / 2]); i = (i - 1) / 2)
    e->heap[i] = e->heap[(i - 1) / 2];
  e->heap[i] = c;
}

static candidate heap_pop(encoder *e) {
  const candidate top = e->heap[0], last = e->heap[--e->n_heap];
  size_t i = 0;
  for (size_t child; (child = 2 * i + 1) < e->n_heap; i = child) {
    if (child + 1 < e->n_heap && before(&e->heap[child + 1], &e->heap[child]))
      child++;
    if (!before(&e->heap[child], &last))
      break;
    e->heap[i] = e->heap[child];
  }
  if (e->n_heap)
    e->heap[i] = last;
  return top;
}

/* The rank and token of the pair (syms[i], its next), queued when it has one; any entry
 * queued for i before is stale from now on. */
static void pair_rank(encoder *e, symbol *syms, int32_t i) {
  symbol *a = &syms[i];
  a->rank = INT32_MAX;
  a->stamp++;
  if (a->next < 0 || a->id < 0 || syms[a->next].id < 0)
    return;
  const uint64_t key = (uint64_t)(uint32_t)a->id << 32 | (uint32_t)syms[a->next].id;
  kvc__merge *m = NULL;
  HASH_FIND(hh, e->t->merges, &key, sizeof key, m);
  if (m) {
    a->rank = m->rank;
    a->merged = m->merged;
    heap_push(e, (candidate){a->rank, i, a->stamp});
  }
}

static kvc_status unknown(encoder *e, const char *w, size_t n, int32_t *last_unk) {
  const kvc_tokenizer *t = e->t;
  if (t->byte_fallback) {
    int all = 1;
    for (size_t i = 0; i < n; i++)
      all &= t->byte_ids[(uint8_t)w[i]] >= 0;
    for (size_t i = 0; all && i < n; i++) {
      kvc_status st = push_id(e, t->byte_ids[(uint8_t)w[i]]);
      if (st)
        return st;
    }
    if (all)
      return KVC_OK;
  }
  if (t->unk_id < 0)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "text has \"%.*s\", which the vocabulary lacks, and the tokenizer has no "
                     "unk_token",
                     (int)n, w);
  if (t->fuse_unk && *last_unk)
    return KVC_OK;
  *last_unk = 1;
  return push_id(e, t->unk_id);
}

static kvc_status merge_word(encoder *e, const char *w, size_t n);

static kvc_status bpe(encoder *e, const char *w, size_t n) {
  const kvc_tokenizer *t = e->t;
  if (t->ignore_merges) {
    const int32_t id = kvc__tok_lookup(t, w, n);
    if (id >= 0)
      return push_id(e, id);
  }
  kvc_status st = KVC_OK;
  int32_t cached[KVC_WORD_CACHE_BYTES];
  const int hit = kvc__word_cache_get(t->cache, w, n, cached);
  for (int i = 0; i < hit && !st; i++)
    st = push_id(e, cached[i]);
  if (hit >= 0)
    return st;
  const size_t before = e->n_ids;
  st = merge_word(e, w, n);
  if (!st)
    kvc__word_cache_put(t->cache, w, n, e->ids + before, e->n_ids - before);
  return st;
}

/* Characters to tokens, then merges, lowest rank first (the leftmost among equals), taken
 * from a queue: O(n log n) in the word's length, where rescanning the word for each merge
 * was quadratic (300,000 '!' took minutes). */
static kvc_status merge_word(encoder *e, const char *w, size_t n) {
  if (n > e->cap_syms) {
    symbol *p = kvc__realloc(e->syms, n * sizeof *p);
    if (!p)
      return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for a word of %zu bytes", n);
    e->syms = p, e->cap_syms = n;
  }
  if (3 * n > e->cap_heap) { /* n pairs at first, then at most two per merge */
    candidate *p = kvc__realloc(e->heap, 3 * n * sizeof *p);
    if (!p)
      return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory for a word of %zu bytes", n);
    e->heap = p, e->cap_heap = 3 * n;
  }
  symbol *syms = e->syms;
  int32_t count = 0;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    const int len = kvc__utf8_next(w + i, &cp);
    syms[count] = (symbol){kvc__tok_lookup(e->t, w + i, (size_t)len),
                           (int32_t)i,
                           len,
                           count - 1,
                           count + 1,
                           INT32_MAX,
                           -1,
                           0};
    count++;
    i += (size_t)len;
  }
  syms[count - 1].next = -1;
  e->n_heap = 0;
  for (int32_t i = 0; i < count; i++)
    pair_rank(e, syms, i);
  while (e->n_heap) {
    const candidate c = heap_pop(e);
    symbol *a = &syms[c.at];
    if (c.stamp != a->stamp) /* the pair changed since it was queued */
      continue;
    symbol *b = &syms[a->next];
    a->id = a->merged;
    a->len += b->len;
    a->next = b->next;
    b->stamp++; /* b is gone: its own entry is stale */
    if (b->next >= 0)
      syms[b->next].prev = c.at;
    pair_rank(e, syms, c.at);
    if (a->prev >= 0)
      pair_rank(e, syms, a->prev);
  }
  int32_t last_unk = 0;
  kvc_status st = KVC_OK;
  for (int32_t i = 0; i >= 0 && !st; i = syms[i].next) {
    if (syms[i].id >= 0) {
      last_unk = 0;
      st = push_id(e, syms[i].id);
    } else {
      st = unknown(e, w + syms[i].start, (size_t)syms[i].len, &last_unk);
    }
  }
  return st;
}

/* A section of text between added tokens. */
static kvc_status section(encoder *e, const char *s, size_t n, int index) {
  const kvc_tokenizer *t = e->t;
  kvc_status st = t->n_norm ? normalize(e, s, n) : KVC_OK;
  if (t->n_norm) /* else the text goes on as it is */
    s = e->norm.p, n = e->norm.n;
  if (st || n == 0)
    return st;
  pieces_clear(&e->a);
  st = piece_add(&e->a, s, n);
  for (int k = 0; k < t->n_pre && !st; k++) {
    st = pre_step(e, &t->pre[k], index, &e->a, &e->b);
    pieces swap = e->a;
    e->a = e->b;
    e->b = swap;
  }
  for (int i = 0; i < e->a.n && !st && e->n_ids <= e->limit; i++) {
    size_t wn;
    const char *w = piece(&e->a, i, &wn);
    st = bpe(e, w, wn);
  }
  return st;
}

/* Unicode's White_Space property (what \s matches in Hugging Face's Rust regexes). */
static int is_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
         c == 0x3000;
}

/* A word character as \w: alphabetic, a mark, a decimal digit, a connector punctuation, or a
 * joiner. */
static int is_word(uint32_t c) {
  switch (utf8proc_category((utf8proc_int32_t)c)) {
  case UTF8PROC_CATEGORY_LU:
  case UTF8PROC_CATEGORY_LL:
  case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM:
  case UTF8PROC_CATEGORY_LO:
  case UTF8PROC_CATEGORY_NL:
  case UTF8PROC_CATEGORY_MN:
  case UTF8PROC_CATEGORY_MC:
  case UTF8PROC_CATEGORY_ME:
  case UTF8PROC_CATEGORY_ND:
  case UTF8PROC_CATEGORY_PC:
    return 1;
  default:
    return c == 0x200c || c == 0x200d;
  }
}

/* The code point at s (valid UTF-8). */
static uint32_t char_at(const char *s) {
  uint32_t c;
  kvc__utf8_next(s, &c);
  return c;
}

/* The start of the code point that ends at text[at] (at > 0; the text is valid UTF-8). */
static size_t char_before(const char *text, size_t at) {
  do
    at--;
  while (at > 0 && ((unsigned char)text[at] & 0xc0) == 0x80);
  return at;
}

/* Where an added token found at [at, end) takes effect, by its flags: -1 when single_word
 * rules the match out (a word character touches it), else its span widened over the
 * whitespace before (lstrip, not before `from`) and after (rstrip). */
static int added_span(const char *text, size_t len, size_t from, uint8_t flags, size_t *at,
                      size_t *end) {
  if ((flags & KVC_ADDED_SINGLE_WORD) &&
      ((*at > 0 && is_word(char_at(text + char_before(text, *at)))) ||
       (*end < len && is_word(char_at(text + *end)))))
    return -1;
  if (flags & KVC_ADDED_LSTRIP)
    while (*at > from && is_space(char_at(text + char_before(text, *at))))
      *at = char_before(text, *at);
  uint32_t c;
  if (flags & KVC_ADDED_RSTRIP)
    while (*end < len && is_space(char_at(text + *end)))
      *end += (size_t)kvc__utf8_next(text + *end, &c);
  return 0;
}

/* e->found: at each byte where an added token starts, the longest one, listed from the text's
 * end to its start (the automaton reads the text backwards: see tokenizer.h). */
static kvc_status find_added(encoder *e, const char *text, size_t len) {
  const kvc_tokenizer *t = e->t;
  int32_t node = 0;
  for (size_t at = len; at-- > 0;) {
    const unsigned char c = (unsigned char)text[at];
    if (!node && !t->last_bytes[c])
      continue;
    for (;;) {
      const uint64_t key = (uint64_t)node << 8 | c;
      kvc__edge *edge = NULL;
      HASH_FIND(hh, t->edges, &key, sizeof key, edge);
      if (edge || !node) {
        node = edge ? edge->child : 0;
        break;
      }
      node = t->node_fail[node];
    }
    if (t->node_longest[node] < 0)
      continue;
    if (e->n_found == e->cap_found) {
      const size_t cap = e->cap_found ? 2 * e->cap_found : 64;
      added_match *grown = kvc__realloc(e->found, cap * sizeof *grown);
      if (!grown)
        return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory tokenizing");
      e->found = grown, e->cap_found = cap;
    }
    e->found[e->n_found++] = (added_match){at, t->node_longest[node]};
  }
  return KVC_OK;
}

static kvc_status encode(encoder *e, const char *text, size_t len, int add_special) {
  const kvc_tokenizer *t = e->t;
  kvc_status st = KVC_OK;
  for (int i = 0; add_special && i < t->n_prefix && !st; i++)
    st = push_id(e, t->prefix[i]);
  if (!st && t->n_nodes > 1)
    st = find_added(e, text, len);
  size_t carry = 0, next = 0; /* the next section starts at carry; the next token at >= next */
  int index = 0;
  for (size_t k = e->n_found; k-- > 0 && !st && e->n_ids <= e->limit;) { /* leftmost first */
    size_t start = e->found[k].at, end = start + (size_t)t->node_depth[e->found[k].node];
    const int32_t token = t->node_token[e->found[k].node];
    if (start < next)
      continue;
    if (t->added_flags[token] &&
        added_span(text, len, carry, t->added_flags[token], &start, &end)) {
      next = end; /* not a single word: its text stays in the section, searched past it */
      continue;
    }
    if (start > carry)
      st = section(e, text + carry, start - carry, index++);
    if (!st)
      st = push_id(e, token);
    carry = next = end;
  }
  if (!st && carry < len && e->n_ids <= e->limit)
    st = section(e, text + carry, len - carry, index);
  for (int i = 0; add_special && i < t->n_suffix && !st && e->n_ids <= e->limit; i++)
    st = push_id(e, t->suffix[i]);
  return st;
}

/* kvc_tokenize and kvc_tokenize_at_most: encode until more than `limit` ids are known (SIZE_MAX:
 * the whole text); the first min(ids, cap) are written, *n_ids = min(ids, n_cap). */
static kvc_status tokenize(const char *fn, const kvc_tokenizer *t, const char *text, size_t len,
                           int add_special, size_t limit, int32_t *ids, int32_t cap,
                           size_t *n_ids) {
  if (!t || (!text && len) || !n_ids || (!ids && cap > 0) || cap < 0)
    return kvc__fail(KVC_ERR_INVALID_ARG, "%s: %s", fn,
                     !t        ? "tokenizer is NULL"
                     : !n_ids  ? "n_ids is NULL"
                     : cap < 0 ? "cap < 0"
                     : !text   ? "text is NULL"
                               : "ids is NULL");
  const size_t valid = kvc__utf8_valid_prefix(text, len);
  if (valid < len)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "%s: text is not valid UTF-8 at byte %zu (0x%02x); expected UTF-8", fn, valid,
                     (unsigned char)text[valid]);
  if (add_special && t->post_unsupported[0])
    return kvc__fail(KVC_ERR_UNSUPPORTED,
                     "%s: post_processor \"%s\" is not implemented by kvcache: encode without "
                     "special tokens",
                     t->path, t->post_unsupported);
  encoder e = {.t = t, .limit = limit};
  e.work = e.work_left = (uint64_t)WORK_PER_BYTE * len * (uint64_t)(t->n_pre + 1) + WORK_BASE;
  e.text_len = len;
  e.md = pcre2_match_data_create(16, NULL);
  if ((e.mc = pcre2_match_context_create(NULL)))
    pcre2_set_callout(e.mc, charge, &e);
  kvc_status st = e.md && e.mc ? encode(&e, text, len, add_special)
                               : kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  if (!st) {
    if (e.n_ids > INT32_MAX && limit > INT32_MAX)
      st = kvc__fail(KVC_ERR_INVALID_ARG, "%s: the text is more than 2^31 tokens", fn);
    else {
      if (cap > 0 && e.n_ids > 0)
        memcpy(ids, e.ids, (e.n_ids < (size_t)cap ? e.n_ids : (size_t)cap) * sizeof *ids);
      *n_ids = e.n_ids;
    }
  }
  pcre2_match_data_free(e.md);
  kvc__free(e.ids);
  kvc__free(e.syms);
  kvc__free(e.heap);
  kvc__free(e.found);
  pcre2_match_context_free(e.mc);
  kvc__str_free(&e.norm);
  kvc__str_free(&e.a.text);
  kvc__str_free(&e.b.text);
  kvc__free(e.a.end);
  kvc__free(e.b.end);
  return st;
}

kvc_status kvc_tokenize(const kvc_tokenizer *t, const char *text, size_t len, int add_special,
                        int32_t *ids, int32_t cap, int32_t *n_ids) {
  if (n_ids)
    *n_ids = 0;
  size_t n = 0;
  const kvc_status st =
      tokenize("kvc_tokenize", t, text, len, add_special, SIZE_MAX, ids, cap, n_ids ? &n : NULL);
  if (!st)
    *n_ids = (int32_t)n;
  return st;
}

kvc_status kvc_tokenize_at_most(const kvc_tokenizer *t, const char *text, size_t len,
                                int add_special, int32_t *ids, int32_t cap, int32_t *n_ids,
                                int *more) {
  if (n_ids)
    *n_ids = 0;
  if (more)
    *more = 0;
  if (!more)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_tokenize_at_most: more is NULL");
  size_t n = 0;
  const kvc_status st = tokenize("kvc_tokenize_at_most", t, text, len, add_special,
                                 cap >= 0 ? (size_t)cap : 0, ids, cap, n_ids ? &n : NULL);
  if (!st) {
    *more = n > (size_t)cap;
    *n_ids = *more ? cap : (int32_t)n;
  }
  return st;
}
