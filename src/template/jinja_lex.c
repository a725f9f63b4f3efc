/* jinja_lex.c: template source to tokens, as @huggingface/jinja's lexer makes them with
 * lstrip_blocks and trim_blocks on (transformers renders chat templates so): its text
 * rewrites first (one trailing newline dropped; blanks before a {% or {# at a line's start
 * dropped; the newline after %} or #} dropped; {% generation %} tags removed), then the
 * tokens. Every byte kept remembers where it was, so tokens carry their line and column in
 * the template as written. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jinja_impl.h"

/* The text being rewritten: bytes and, for each, its offset in the original source. */
typedef struct jsrc {
  char *s;
  size_t *at;
  size_t n;
} jsrc;

static int src_alloc(jarena *arena, jsrc *out, size_t cap) {
  out->s = ja_alloc(arena, cap + 1);
  out->at = ja_alloc(arena, (cap + 1) * sizeof *out->at);
  out->n = 0;
  return out->s && out->at ? 0 : -1;
}

static void src_put(jsrc *out, const jsrc *in, size_t i) {
  out->s[out->n] = in->s[i];
  out->at[out->n++] = in->at[i];
}

static int is_line_start(const jsrc *in, size_t i) {
  if (i == 0)
    return 1;
  char p = in->s[i - 1];
  if (p == '\n' || p == '\r')
    return 1;
  /* U+2028 and U+2029 end lines too (JavaScript's ^ in multiline mode) */
  return i >= 3 && (unsigned char)in->s[i - 3] == 0xE2 && (unsigned char)in->s[i - 2] == 0x80 &&
         ((unsigned char)p == 0xA8 || (unsigned char)p == 0xA9);
}

/* /^[ \t]*({[#%-])/gm -> "$1" */
static int lstrip_blocks(jarena *arena, jsrc *in) {
  jsrc out;
  if (src_alloc(arena, &out, in->n))
    return -1;
  for (size_t i = 0; i < in->n;) {
    if (is_line_start(in, i)) {
      size_t j = i;
      while (j < in->n && (in->s[j] == ' ' || in->s[j] == '\t'))
        j++;
      if (j + 1 < in->n && in->s[j] == '{' && strchr("#%-", in->s[j + 1]) && in->s[j + 1]) {
        src_put(&out, in, j);
        src_put(&out, in, j + 1);
        i = j + 2;
        continue;
      }
    }
    src_put(&out, in, i++);
  }
  *in = out;
  return 0;
}

/* /([#%-]})\n/g -> "$1" */
static int trim_blocks(jarena *arena, jsrc *in) {
  jsrc out;
  if (src_alloc(arena, &out, in->n))
    return -1;
  for (size_t i = 0; i < in->n;) {
    if (i + 2 < in->n && in->s[i] && strchr("#%-", in->s[i]) && in->s[i + 1] == '}' &&
        in->s[i + 2] == '\n') {
      src_put(&out, in, i);
      src_put(&out, in, i + 1);
      i += 3;
      continue;
    }
    src_put(&out, in, i++);
  }
  *in = out;
  return 0;
}

static size_t space_at(const char *s, size_t n, size_t i) {
  uint32_t c;
  size_t k = ju_decode(s, n, i, &c);
  return k && ju_is_space(c) ? k : 0;
}

static size_t skip_spaces(const char *s, size_t n, size_t i) {
  size_t k;
  while (i < n && (k = space_at(s, n, i)))
    i += k;
  return i;
}

/* Where /{%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)/ matches at i: its end, the end of the
 * tag itself (before the trailing blanks) and its two '-' flags; 0 when it does not. */
static size_t generation_tag(const jsrc *in, size_t i, size_t *tag_end, int *lstrip, int *rstrip) {
  const char *s = in->s;
  size_t n = in->n;
  if (i + 1 >= n || s[i] != '{' || s[i + 1] != '%')
    return 0;
  size_t j = i + 2;
  *lstrip = j < n && s[j] == '-';
  j = skip_spaces(s, n, j + (size_t)*lstrip);
  if (j + 3 <= n && !memcmp(s + j, "end", 3) && j + 13 <= n && !memcmp(s + j + 3, "generation", 10))
    j += 3;
  if (j + 10 > n || memcmp(s + j, "generation", 10))
    return 0;
  j = skip_spaces(s, n, j + 10);
  *rstrip = j < n && s[j] == '-';
  j += (size_t)*rstrip;
  if (j + 2 > n || s[j] != '%' || s[j + 1] != '}')
    return 0;
  *tag_end = j + 2;
  return skip_spaces(s, n, j + 2);
}

static int remove_generation_tags(jarena *arena, jsrc *in) {
  jsrc out;
  if (src_alloc(arena, &out, in->n))
    return -1;
  size_t last = 0; /* the end of the previous match */
  for (size_t i = 0; i < in->n; i++) {
    size_t tag_end, end;
    int lstrip, rstrip;
    if (!(end = generation_tag(in, i, &tag_end, &lstrip, &rstrip)))
      continue;
    size_t keep = i;
    /* {%- strips the blanks before the tag, back to the previous match */
    while (lstrip && keep > last) {
      size_t back = keep - 1;
      while (back > last && ((unsigned char)in->s[back] & 0xC0) == 0x80)
        back--;
      if (!space_at(in->s, in->n, back))
        break;
      keep = back;
    }
    for (size_t k = last; k < keep; k++)
      src_put(&out, in, k);
    if (!rstrip)
      for (size_t k = tag_end; k < end; k++)
        src_put(&out, in, k);
    last = end;
    i = end - 1;
  }
  for (size_t k = last; k < in->n; k++)
    src_put(&out, in, k);
  *in = out;
  return 0;
}

/* ---- tokens ---- */

typedef struct jlex {
  jarena *arena;
  const char *orig;
  jsrc src;
  size_t cur;
  jtok *toks;
  size_t n, cap;
  int depth; /* curly brackets open in the current expression */
  /* the position of `pos_at` in the original text, advanced as tokens are made */
  size_t pos_at;
  jpos pos;
  char *message;
  size_t message_cap;
} jlex;

static jpos position(jlex *lx, size_t i) {
  size_t target = i < lx->src.n ? lx->src.at[i] : (lx->src.n ? lx->src.at[lx->src.n - 1] + 1 : 0);
  for (; lx->pos_at < target; lx->pos_at++) {
    unsigned char c = (unsigned char)lx->orig[lx->pos_at];
    if (c == '\n') {
      lx->pos.line++;
      lx->pos.col = 1;
    } else if ((c & 0xC0) != 0x80) {
      lx->pos.col++;
    }
  }
  return lx->pos;
}

static int lex_fail(jlex *lx, size_t i, const char *fmt, ...) {
  jpos p = position(lx, i);
  int k = snprintf(lx->message, lx->message_cap, "line %d, column %d: ", p.line, p.col);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(lx->message + k, lx->message_cap - (size_t)k, fmt, ap);
  va_end(ap);
  return -1;
}

static int push(jlex *lx, jtok_type type, const char *text, size_t len, size_t at) {
  if (lx->n == lx->cap) {
    size_t cap = lx->cap ? 2 * lx->cap : 64;
    jtok *toks = ja_alloc(lx->arena, cap * sizeof *toks);
    if (!toks)
      return lex_fail(lx, at, "out of memory");
    if (lx->n)
      memcpy(toks, lx->toks, lx->n * sizeof *toks);
    lx->toks = toks;
    lx->cap = cap;
  }
  char *copy = ja_alloc(lx->arena, len + 1);
  if (!copy)
    return lex_fail(lx, at, "out of memory");
  memcpy(copy, text, len);
  lx->toks[lx->n++] = (jtok){type, copy, len, position(lx, at)};
  return 0;
}

static jtok_type last_type(const jlex *lx) {
  return lx->n ? lx->toks[lx->n - 1].type : (jtok_type)-1;
}

/* JavaScript's trimEnd on the last text token ({%- and friends); dropped when emptied. */
static void strip_trailing(jlex *lx) {
  if (!lx->n || lx->toks[lx->n - 1].type != JT_TEXT)
    return;
  jtok *t = &lx->toks[lx->n - 1];
  size_t from, to;
  ju_trim(t->text, t->len, 0, 1, &from, &to);
  t->len = to;
  ((char *)t->text)[to] = 0;
  if (!to)
    lx->n--;
}

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

static int is_word(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static void append_utf8(char *out, size_t *n, uint32_t c) {
  if (c < 0x80) {
    out[(*n)++] = (char)c;
  } else if (c < 0x800) {
    out[(*n)++] = (char)(0xC0 | (c >> 6));
    out[(*n)++] = (char)(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out[(*n)++] = (char)(0xE0 | (c >> 12));
    out[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[(*n)++] = (char)(0x80 | (c & 0x3F));
  } else {
    out[(*n)++] = (char)(0xF0 | (c >> 18));
    out[(*n)++] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[(*n)++] = (char)(0x80 | (c & 0x3F));
  }
}

static int hex_value(const char *s, size_t n, uint32_t *v) {
  *v = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int d = is_digit(c)              ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                     : -1;
    if (d < 0)
      return -1;
    *v = *v * 16 + (uint32_t)d;
  }
  return 0;
}

/* A string literal from after its opening quote; lx->cur ends on the closing quote. */
static int lex_string(jlex *lx, char quote) {
  const char *s = lx->src.s;
  size_t n = lx->src.n, start = lx->cur - 1;
  char *out = ja_alloc(lx->arena, n - lx->cur + 1);
  size_t len = 0;
  if (!out)
    return lex_fail(lx, start, "out of memory");
  for (;;) {
    if (lx->cur >= n)
      return lex_fail(lx, start, "a string literal is not closed");
    char c = s[lx->cur];
    if (c == quote)
      break;
    lx->cur++;
    if (c != '\\') {
      out[len++] = c;
      continue;
    }
    if (lx->cur >= n)
      return lex_fail(lx, start, "a string literal is not closed");
    char e = s[lx->cur++];
    static const char from[] = "ntrbfv'\"\\", to[] = "\n\t\r\b\f\v'\"\\";
    const char *hit = strchr(from, e);
    if (e && hit) {
      out[len++] = to[hit - from];
      continue;
    }
    if (e != 'x' && e != 'u')
      return lex_fail(lx, lx->cur - 2, "unknown escape \\%c in a string literal", e);
    size_t digits = e == 'x' ? 2 : 4;
    uint32_t v;
    if (lx->cur + digits > n || hex_value(s + lx->cur, digits, &v))
      return lex_fail(lx, lx->cur - 2, "\\%c needs %zu hexadecimal digits", e, digits);
    lx->cur += digits;
    if (v >= 0xD800 && v <= 0xDBFF && lx->cur + 6 <= n && s[lx->cur] == '\\' &&
        s[lx->cur + 1] == 'u') {
      uint32_t low;
      if (!hex_value(s + lx->cur + 2, 4, &low) && low >= 0xDC00 && low <= 0xDFFF) {
        v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00);
        lx->cur += 6;
      }
    }
    if (v >= 0xD800 && v <= 0xDFFF)
      return lex_fail(lx, lx->cur - 6, "a lone surrogate \\u%04X is not supported", (unsigned)v);
    append_utf8(out, &len, v);
  }
  lx->cur++; /* the closing quote */
  return push(lx, JT_STRING, out, len, start);
}

static size_t digits_from(const char *s, size_t n, size_t i) {
  while (i < n && is_digit(s[i]))
    i++;
  return i;
}

static const struct {
  const char *text;
  jtok_type type;
} symbols[] = {
    {"{%", JT_OPEN_STMT}, {"%}", JT_CLOSE_STMT}, {"{{", JT_OPEN_EXPR}, {"}}", JT_CLOSE_EXPR},
    {"(", JT_LPAREN},     {")", JT_RPAREN},      {"{", JT_LBRACE},     {"}", JT_RBRACE},
    {"[", JT_LBRACKET},   {"]", JT_RBRACKET},    {",", JT_COMMA},      {".", JT_DOT},
    {":", JT_COLON},      {"|", JT_PIPE},        {"<=", JT_COMPARE},   {">=", JT_COMPARE},
    {"==", JT_COMPARE},   {"!=", JT_COMPARE},    {"<", JT_COMPARE},    {">", JT_COMPARE},
    {"+", JT_ADD},        {"-", JT_ADD},         {"~", JT_ADD},        {"**", JT_POW},
    {"*", JT_MUL},        {"//", JT_MUL},        {"/", JT_MUL},        {"%", JT_MUL},
    {"=", JT_EQUALS},
};

static int lex_tokens(jlex *lx) {
  const char *s = lx->src.s;
  size_t n = lx->src.n;
  while (lx->cur < n) {
    jtok_type last = last_type(lx);
    if (!lx->n || last == JT_CLOSE_STMT || last == JT_CLOSE_EXPR || last == JT_COMMENT) {
      size_t end = lx->cur;
      for (;;) {
        const char *brace = memchr(s + end, '{', n - end);
        if (!brace) {
          end = n;
          break;
        }
        end = (size_t)(brace - s);
        if (end + 1 < n && (s[end + 1] == '%' || s[end + 1] == '{' || s[end + 1] == '#'))
          break;
        end++;
      }
      if (end > lx->cur) {
        if (push(lx, JT_TEXT, s + lx->cur, end - lx->cur, lx->cur))
          return -1;
        lx->cur = end;
        continue;
      }
    }
    if (s[lx->cur] == '{' && lx->cur + 1 < n) {
      char next = s[lx->cur + 1];
      if (next == '#') {
        size_t start = lx->cur, from = lx->cur + 2;
        int before = from < n && s[from] == '-';
        from += (size_t)before;
        const char *close = NULL;
        for (size_t k = from; k + 1 < n; k++)
          if (s[k] == '#' && s[k + 1] == '}') {
            close = s + k;
            break;
          }
        if (!close)
          return lex_fail(lx, start, "a comment {# is not closed");
        size_t end = (size_t)(close - s);
        int after = end > from && s[end - 1] == '-';
        if (before)
          strip_trailing(lx);
        if (push(lx, JT_COMMENT, s + from, end - from - (size_t)after, start))
          return -1;
        lx->cur = end + 2;
        if (after)
          lx->cur = skip_spaces(s, n, lx->cur);
        continue;
      }
      if (lx->cur + 2 < n && s[lx->cur + 2] == '-' && (next == '%' || next == '{')) {
        strip_trailing(lx);
        if (push(lx, next == '%' ? JT_OPEN_STMT : JT_OPEN_EXPR, s + lx->cur, 2, lx->cur))
          return -1;
        if (next == '{')
          lx->depth = 0;
        lx->cur += 3;
        continue;
      }
    }
    lx->cur = skip_spaces(s, n, lx->cur);
    if (lx->cur >= n)
      return lex_fail(lx, n, "the template ends inside a tag");
    char c = s[lx->cur];
    if (c == '-' && lx->cur + 2 < n && s[lx->cur + 2] == '}' &&
        (s[lx->cur + 1] == '%' || s[lx->cur + 1] == '}')) {
      if (push(lx, s[lx->cur + 1] == '%' ? JT_CLOSE_STMT : JT_CLOSE_EXPR, s + lx->cur + 1, 2,
               lx->cur))
        return -1;
      lx->cur = skip_spaces(s, n, lx->cur + 3);
      continue;
    }
    if (c == '-' || c == '+') {
      if (!lx->n || last == JT_TEXT)
        return lex_fail(lx, lx->cur, "unexpected '%c'", c);
      if (last != JT_NAME && last != JT_NUMBER && last != JT_STRING && last != JT_RPAREN &&
          last != JT_RBRACKET) {
        size_t start = lx->cur++, end = digits_from(s, n, lx->cur);
        if (end >= n && end > lx->cur)
          return lex_fail(lx, start, "the template ends inside a tag");
        if (end > lx->cur && end + 1 < n && s[end] == '.' && is_digit(s[end + 1]))
          end = digits_from(s, n, end + 1);
        if (end >= n && end > lx->cur)
          return lex_fail(lx, start, "the template ends inside a tag");
        if (push(lx, end > lx->cur ? JT_NUMBER : JT_UNARY, s + start, end - start, start))
          return -1;
        lx->cur = end;
        continue;
      }
    }
    int matched = 0;
    for (size_t k = 0; k < sizeof symbols / sizeof symbols[0] && !matched; k++) {
      size_t len = strlen(symbols[k].text);
      if (symbols[k].type == JT_CLOSE_EXPR && lx->depth > 0)
        continue;
      if (lx->cur + len > n || memcmp(s + lx->cur, symbols[k].text, len))
        continue;
      if (push(lx, symbols[k].type, s + lx->cur, len, lx->cur))
        return -1;
      if (symbols[k].type == JT_OPEN_EXPR)
        lx->depth = 0;
      else if (symbols[k].type == JT_LBRACE)
        lx->depth++;
      else if (symbols[k].type == JT_RBRACE)
        lx->depth--;
      lx->cur += len;
      matched = 1;
    }
    if (matched)
      continue;
    if (c == '\'' || c == '"') {
      lx->cur++;
      if (lex_string(lx, c))
        return -1;
      continue;
    }
    if (is_digit(c)) {
      size_t start = lx->cur, end = digits_from(s, n, lx->cur);
      if (end >= n)
        return lex_fail(lx, start, "the template ends inside a tag");
      if (last != JT_DOT && s[end] == '.' && end + 1 < n && is_digit(s[end + 1])) {
        end = digits_from(s, n, end + 1);
        if (end >= n)
          return lex_fail(lx, start, "the template ends inside a tag");
      }
      if (push(lx, JT_NUMBER, s + start, end - start, start))
        return -1;
      lx->cur = end;
      continue;
    }
    if (is_word(c)) {
      size_t start = lx->cur, end = start;
      while (end < n && is_word(s[end]))
        end++;
      if (end >= n)
        return lex_fail(lx, start, "the template ends inside a tag");
      if (push(lx, JT_NAME, s + start, end - start, start))
        return -1;
      lx->cur = end;
      continue;
    }
    uint32_t cp;
    size_t k = ju_decode(s, n, lx->cur, &cp);
    return lex_fail(lx, lx->cur, "unexpected character '%.*s'", (int)(k ? k : 1), s + lx->cur);
  }
  return 0;
}

int kvc__jinja_lex(jarena *arena, const char *source, size_t len, jtok **tokens, size_t *n,
                   char *message, size_t cap) {
  jlex lx = {.arena = arena, .orig = source, .pos = {1, 1}, .message = message, .message_cap = cap};
  if (src_alloc(arena, &lx.src, len))
    return lex_fail(&lx, 0, "out of memory");
  memcpy(lx.src.s, source, len);
  for (size_t i = 0; i < len; i++)
    lx.src.at[i] = i;
  lx.src.n = len;
  if (lx.src.n && lx.src.s[lx.src.n - 1] == '\n')
    lx.src.n--;
  if (lstrip_blocks(arena, &lx.src) || trim_blocks(arena, &lx.src) ||
      remove_generation_tags(arena, &lx.src))
    return lex_fail(&lx, 0, "out of memory");
  lx.src.s[lx.src.n] = 0;
  if (lex_tokens(&lx))
    return -1;
  *tokens = lx.toks;
  *n = lx.n;
  return 0;
}
