/* tokenizer_decode.c: ids -> text through the tokenizer's decoders (ByteLevel, Replace,
 * ByteFallback, Fuse, Strip, Metaspace), and the incremental decoder that emits only
 * complete UTF-8. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "tokenizer.h"

/* The decoders work on a list of strings, one per token at first. */
typedef struct parts {
  kvc__str *s;
  int n;
} parts;

static void parts_free(parts *p) {
  for (int i = 0; i < p->n; i++)
    kvc__str_free(&p->s[i]);
  kvc__free(p->s);
  *p = (parts){0};
}

/* Invalid UTF-8 becomes U+FFFD, one per byte that cannot start or continue a character. */
static kvc_status lossy(kvc__str *out, const char *s, size_t n) {
  kvc_status st = KVC_OK;
  for (size_t i = 0; i < n && !st;) {
    size_t valid = kvc__utf8_valid_prefix(s + i, n - i);
    st = kvc__str_add(out, s + i, valid);
    i += valid;
    if (i < n && !st) {
      st = kvc__str_add(out, "\xef\xbf\xbd", 3);
      i++;
    }
  }
  return st;
}

static kvc_status replace_in(kvc__str *s, const char *from, const char *to) {
  kvc__str out = {0};
  const size_t fl = strlen(from), tl = strlen(to);
  kvc_status st = kvc__str_add(&out, "", 0);
  for (size_t i = 0; i < s->n && !st;) {
    if (s->n - i >= fl && !memcmp(s->p + i, from, fl)) {
      st = kvc__str_add(&out, to, tl);
      i += fl;
    } else {
      st = kvc__str_add(&out, s->p + i, 1);
      i++;
    }
  }
  kvc__str_free(st ? &out : s);
  if (!st)
    *s = out;
  return st;
}

/* Every part joined into one. */
static kvc_status fuse(parts *p) {
  kvc__str all = {0};
  kvc_status st = kvc__str_add(&all, "", 0);
  for (int i = 0; i < p->n && !st; i++)
    st = kvc__str_add(&all, p->s[i].p, p->s[i].n);
  if (st) {
    kvc__str_free(&all);
    return st;
  }
  for (int i = 0; i < p->n; i++)
    kvc__str_free(&p->s[i]);
  p->s[0] = all;
  p->n = 1;
  return KVC_OK;
}

/* ByteLevel: each token's characters back to bytes (a token with a character outside the
 * byte-level alphabet keeps its own bytes), all joined (read as UTF-8 at the end). */
static kvc_status byte_level(parts *p) {
  kvc_status st = KVC_OK;
  for (int i = 0; i < p->n && !st; i++) {
    kvc__str bytes = {0};
    int all = 1;
    for (size_t k = 0; k < p->s[i].n && all && !st;) {
      uint32_t cp;
      k += (size_t)kvc__utf8_next(p->s[i].p + k, &cp);
      const int b = kvc__char_byte(cp);
      all = b >= 0;
      const char c = (char)b;
      if (all)
        st = kvc__str_add(&bytes, &c, 1);
    }
    if (!st && all) {
      kvc__str_free(&p->s[i]);
      p->s[i] = bytes;
    } else {
      kvc__str_free(&bytes);
    }
  }
  return st ? st : fuse(p);
}

static int hex(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The byte a token's text "<0xXX>" stands for (ByteFallback's rule), or -1. */
static int byte_token(const char *s, size_t n) {
  return n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && hex(s[3]) >= 0 && hex(s[4]) >= 0
             ? hex(s[3]) * 16 + hex(s[4])
             : -1;
}

/* ByteFallback: runs of <0xXX> tokens become their bytes, read as UTF-8 (a run that is not
 * valid UTF-8 becomes one U+FFFD per byte). */
static kvc_status byte_fallback(parts *p) {
  parts out = {kvc__calloc((size_t)p->n + 1, sizeof *out.s), 0};
  if (!out.s)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory decoding");
  kvc__str run = {0};
  kvc_status st = KVC_OK;
  for (int i = 0; i <= p->n && !st; i++) {
    const kvc__str *s = i < p->n ? &p->s[i] : NULL;
    const int byte = s ? byte_token(s->p, s->n) : -1;
    if (byte >= 0) {
      const char c = (char)byte;
      st = kvc__str_add(&run, &c, 1);
      continue;
    }
    if (run.n) {
      kvc__str *dst = &out.s[out.n++];
      const int valid = kvc__utf8_valid_prefix(run.p, run.n) == run.n;
      if (valid)
        st = kvc__str_add(dst, run.p, run.n);
      for (size_t k = 0; !st && !valid && k < run.n; k++) /* one per byte, as Hugging Face */
        st = kvc__str_add(dst, "\xef\xbf\xbd", 3);
      run.n = 0;
    }
    if (s && !st)
      st = kvc__str_add(&out.s[out.n++], s->p, s->n);
  }
  kvc__str_free(&run);
  parts_free(p);
  *p = out;
  return st;
}

static kvc_status strip(kvc__str *s, const char *content, int start, int stop) {
  const size_t cl = strlen(content);
  size_t from = 0, to = s->n;
  for (int k = 0; k < start && to - from >= cl && !memcmp(s->p + from, content, cl); k++)
    from += cl;
  for (int k = 0; k < stop && to - from >= cl && !memcmp(s->p + to - cl, content, cl); k++)
    to -= cl;
  memmove(s->p, s->p + from, to - from);
  s->n = to - from;
  if (s->p)
    s->p[s->n] = '\0';
  return KVC_OK;
}

kvc_status kvc__decode(const kvc_tokenizer *t, const int32_t *ids, int32_t n, int skip_special,
                       int first, kvc__str *out) {
  parts p = {kvc__calloc((size_t)n + 1, sizeof *p.s), 0};
  if (!p.s)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory decoding %d tokens", n);
  kvc_status st = KVC_OK;
  for (int32_t i = 0; i < n && !st; i++) {
    if (ids[i] < 0 || ids[i] >= t->n_ids || !t->text[ids[i]])
      st = kvc__fail(KVC_ERR_INVALID_ARG, "token %d (at index %d) is not in the vocabulary [0, %d)",
                     ids[i], i, t->n_ids);
    else if (!(skip_special && t->special[ids[i]]))
      st = kvc__str_add(&p.s[p.n++], t->text[ids[i]], (size_t)t->text_len[ids[i]]);
  }
  int fused = 0; /* one part: the whole window's text, no longer its tokens */
  for (int k = 0; k < t->n_dec && !st; k++) {
    const kvc__dec *d = &t->dec[k];
    switch (d->kind) {
    case DEC_BYTE_LEVEL:
      st = byte_level(&p);
      fused = 1;
      break;
    case DEC_BYTE_FALLBACK:
      st = byte_fallback(&p);
      break;
    case DEC_FUSE:
      st = p.n ? fuse(&p) : KVC_OK;
      fused = 1;
      break;
    case DEC_REPLACE:
      for (int i = 0; i < p.n && !st; i++)
        st = replace_in(&p.s[i], d->from, d->to);
      break;
    case DEC_STRIP:
      /* each token's ends; once fused, the text's: its start only if the ids begin it (its
       * end is stripped always: a window decodes as if it ended the text, so that the
       * incremental decoder holds back what the end would strip until more comes) */
      for (int i = 0; i < p.n && !st; i++)
        st = strip(&p.s[i], d->from, fused && !first ? 0 : d->start, d->stop);
      break;
    case DEC_METASPACE:
      for (int i = 0; i < p.n && !st; i++) {
        st = replace_in(&p.s[i], d->from, " ");
        if (!st && i == 0 && first && d->prepend && p.s[0].n && p.s[0].p[0] == ' ')
          st = strip(&p.s[0], " ", 1, 0);
      }
      break;
    }
  }
  out->n = 0;
  if (!st)
    st = kvc__str_add(out, "", 0);
  if (!st && p.n) /* one string, then valid UTF-8: a character may span parts */
    st = fuse(&p);
  if (!st && p.n)
    st = lossy(out, p.s[0].p, p.s[0].n);
  parts_free(&p);
  return st;
}

kvc_status kvc_detokenize(const kvc_tokenizer *t, const int32_t *ids, int32_t n, int skip_special,
                          char *text, size_t cap, size_t *len) {
  if (len)
    *len = 0;
  if (!t || (!ids && n > 0) || n < 0 || !len || (!text && cap > 0))
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_detokenize: %s",
                     !t      ? "tokenizer is NULL"
                     : !len  ? "len is NULL"
                     : n < 0 ? "n < 0"
                     : !ids  ? "ids is NULL"
                             : "text is NULL");
  kvc__str out = {0};
  kvc_status st = kvc__decode(t, ids, n, skip_special, 1, &out);
  if (!st) {
    *len = out.n;
    if (cap > 0) {
      const size_t k = out.n < cap - 1 ? out.n : cap - 1;
      memcpy(text, out.p, k);
      text[k] = '\0';
    }
  }
  kvc__str_free(&out);
  return st;
}

/* ---- incremental decoding -------------------------------------------------------------------
 * Text is emitted once it is complete: the tokens from prefix_offset decode to more than those
 * up to read_offset did, and the result does not end in U+FFFD (a character still cut). */

/* Whether the ByteFallback decoder takes token `id` as a byte (<0xXX>). A run of them decodes
 * as a whole, each byte a U+FFFD unless the run is valid UTF-8 (Hugging Face's rule): the
 * incremental decoder holds its text until the run ends, or a later byte could turn what it
 * gave out into U+FFFD. */
static int in_byte_run(const kvc_tokenizer *t, int32_t id) {
  return t->byte_fallback_decoder && byte_token(t->text[id], (size_t)t->text_len[id]) >= 0;
}

struct kvc_detokenizer {
  const kvc_tokenizer *t;
  int skip_special;
  int32_t *ids;
  size_t n, cap, prefix_offset, read_offset;
  size_t before; /* tokens before the window that decoding keeps (not skipped): 0 while the
                  * window starts the text, where Metaspace drops the space it prepended */
  int in_run;    /* the last token kept is a byte token: its run may go on */
  kvc__str prefix_text, new_text, out;
};

kvc_status kvc_detokenizer_new(const kvc_tokenizer *t, int skip_special, kvc_detokenizer **out) {
  if (!out)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_detokenizer_new: out is NULL");
  *out = NULL;
  if (!t)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_detokenizer_new: tokenizer is NULL");
  kvc_detokenizer *d = kvc__calloc(1, sizeof *d);
  if (!d)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  d->t = t;
  d->skip_special = skip_special;
  *out = d;
  return KVC_OK;
}

void kvc_detokenizer_free(kvc_detokenizer *d) {
  if (!d)
    return;
  kvc__free(d->ids);
  kvc__str_free(&d->prefix_text);
  kvc__str_free(&d->new_text);
  kvc__str_free(&d->out);
  kvc__free(d);
}

kvc_status kvc_detokenizer_push(kvc_detokenizer *d, int32_t id, const char **text, size_t *len) {
  if (!d || !text || !len)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_detokenizer_push: %s is NULL",
                     !d      ? "detokenizer"
                     : !text ? "text"
                             : "len");
  *text = "";
  *len = 0;
  if (id < 0 || id >= d->t->n_ids || !d->t->text[id])
    return kvc__fail(KVC_ERR_INVALID_ARG, "token %d is not in the vocabulary [0, %d)", id,
                     d->t->n_ids);
  if (d->prefix_offset > 0 && d->n == d->cap) { /* drop what no window reads again */
    memmove(d->ids, d->ids + d->prefix_offset, (d->n - d->prefix_offset) * sizeof *d->ids);
    d->n -= d->prefix_offset, d->read_offset -= d->prefix_offset, d->prefix_offset = 0;
  }
  if (d->n == d->cap) {
    size_t cap = d->cap ? 2 * d->cap : 16;
    int32_t *p = kvc__realloc(d->ids, cap * sizeof *p);
    if (!p)
      return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
    d->ids = p, d->cap = cap;
  }
  d->ids[d->n++] = id;
  const int32_t *window = d->ids + d->prefix_offset;
  kvc_status st = kvc__decode(d->t, window, (int32_t)(d->read_offset - d->prefix_offset),
                              d->skip_special, !d->before, &d->prefix_text);
  if (!st)
    st = kvc__decode(d->t, window, (int32_t)(d->n - d->prefix_offset), d->skip_special, !d->before,
                     &d->new_text);
  if (st) {
    d->n--; /* as if it had not been pushed */
    return st;
  }
  const kvc__str *nt = &d->new_text;
  const int cut = nt->n >= 3 && !memcmp(nt->p + nt->n - 3, "\xef\xbf\xbd", 3);
  if (!(d->skip_special && d->t->special[id])) /* a skipped token ends no run */
    d->in_run = in_byte_run(d->t, id);
  if (nt->n > d->prefix_text.n && !cut && !d->in_run) {
    d->out.n = 0;
    if ((st = kvc__str_add(&d->out, nt->p + d->prefix_text.n, nt->n - d->prefix_text.n)))
      return st;
    for (size_t i = d->prefix_offset; i < d->read_offset; i++)
      d->before += !(d->skip_special && d->t->special[d->ids[i]]);
    d->prefix_offset = d->read_offset;
    d->read_offset = d->n;
    *text = d->out.p;
    *len = d->out.n;
  }
  return KVC_OK;
}

kvc_status kvc_detokenizer_flush(kvc_detokenizer *d, const char **text, size_t *len) {
  if (!d || !text || !len)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_detokenizer_flush: %s is NULL",
                     !d      ? "detokenizer"
                     : !text ? "text"
                             : "len");
  *text = "";
  *len = 0;
  const int32_t *window = d->ids ? d->ids + d->prefix_offset : d->ids;
  kvc_status st = kvc__decode(d->t, window, (int32_t)(d->read_offset - d->prefix_offset),
                              d->skip_special, !d->before, &d->prefix_text);
  if (!st)
    st = kvc__decode(d->t, window, (int32_t)(d->n - d->prefix_offset), d->skip_special, !d->before,
                     &d->new_text);
  if (st)
    return st;
  d->out.n = 0;
  if (d->new_text.n > d->prefix_text.n &&
      (st = kvc__str_add(&d->out, d->new_text.p + d->prefix_text.n,
                         d->new_text.n - d->prefix_text.n)))
    return st;
  d->prefix_offset = d->read_offset = d->n;
  *text = d->out.p ? d->out.p : "";
  *len = d->out.n;
  return KVC_OK;
}
