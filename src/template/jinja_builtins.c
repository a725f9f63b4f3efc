/* jinja_builtins.c: the filters, tests, methods and global functions of @huggingface/jinja,
 * each with its rules (a filter's behaviour depends on its operand's type and on whether it
 * is called with arguments; `x|first` of an empty list fails; selectattr skips an item without
 * the attribute whatever the test). Where that renderer would expose a JavaScript detail this
 * engine cannot reproduce (tojson(sort_keys=true) sorts by the locale), the call fails. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja_impl.h"

/* HF passes keyword arguments as one more positional value (a mapping) at the end. */
static jval arg(const jargs *a, size_t i, int *present) {
  if (i < a->n) {
    *present = 1;
    return a->pos[i];
  }
  if (i == a->n && a->kw) {
    *present = 1;
    return (jval){.kind = JV_OBJECT, .u.o = a->kw};
  }
  *present = 0;
  return jv_undefined();
}

static int is_kwargs(const jargs *a, size_t i) {
  return i == a->n && a->kw;
}

/* An argument given by position or else by keyword, or `fallback`. */
static jval param(const jargs *a, size_t i, const char *name, jval fallback) {
  if (i < a->n)
    return a->pos[i];
  jval *v = a->kw ? jo_get(a->kw, name, strlen(name)) : NULL;
  return v ? *v : fallback;
}

static jval str_of(jrender *r, const char *s, size_t len) {
  return jv_str(r, s, len);
}

/* ---- tests ---- */

static const char *const TESTS[] = {"boolean",  "callable",  "odd",      "even",   "false",
                                    "true",     "none",      "string",   "number", "integer",
                                    "iterable", "mapping",   "sequence", "lower",  "upper",
                                    "defined",  "undefined", "equalto",  "eq",     NULL};

int jb_known_test(const char *name) {
  for (const char *const *t = TESTS; *t; t++)
    if (!strcmp(*t, name))
      return 1;
  return 0;
}

static int test2(jrender *r, jpos at, const char *name, jval v, jval other, int has_other) {
  if (!strcmp(name, "boolean"))
    return v.kind == JV_BOOL;
  if (!strcmp(name, "callable"))
    return v.kind == JV_FUNCTION;
  if (!strcmp(name, "odd") || !strcmp(name, "even")) {
    if (v.kind != JV_INT)
      jfail(r, at, "cannot test '%s' on a %s", name, jv_kind_name(v.kind));
    int odd = fmod(v.u.num, 2) != 0;
    return name[0] == 'o' ? odd : !odd;
  }
  if (!strcmp(name, "false") || !strcmp(name, "true"))
    return v.kind == JV_BOOL && v.u.b == (name[0] == 't');
  if (!strcmp(name, "none"))
    return v.kind == JV_NULL;
  if (!strcmp(name, "string"))
    return v.kind == JV_STRING;
  if (!strcmp(name, "number"))
    return jv_is_number(v);
  if (!strcmp(name, "integer"))
    return v.kind == JV_INT;
  if (!strcmp(name, "iterable"))
    return v.kind == JV_ARRAY || v.kind == JV_STRING;
  if (!strcmp(name, "mapping"))
    return v.kind == JV_OBJECT;
  if (!strcmp(name, "sequence"))
    return jv_is_array(v) || v.kind == JV_OBJECT || v.kind == JV_STRING;
  if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
    if (v.kind != JV_STRING)
      return 0;
    jval c = ju_case(r, at, v, name[0] == 'u');
    return jv_strict_equal(c, v);
  }
  if (!strcmp(name, "defined"))
    return v.kind != JV_UNDEFINED;
  if (!strcmp(name, "undefined"))
    return v.kind == JV_UNDEFINED;
  /* equalto, eq: JavaScript's === between the payloads */
  if (!has_other)
    jfail(r, at, "the test '%s' needs a value to compare with", name);
  return jv_strict_equal(v, other);
}

int jb_test(jrender *r, jpos at, const char *name, jval operand) {
  return test2(r, at, name, operand, jv_undefined(), 0);
}

/* ---- comparing and sorting ---- */

static int numeric_like(jval v) {
  return jv_is_number(v) || v.kind == JV_BOOL;
}

static int compare(jrender *r, jpos at, jval a, jval b, int case_sensitive) {
  if (a.kind == JV_NULL && b.kind == JV_NULL)
    return 0;
  if (a.kind == JV_UNDEFINED && b.kind == JV_UNDEFINED)
    return 0;
  if (a.kind == JV_NULL || b.kind == JV_NULL || a.kind == JV_UNDEFINED || b.kind == JV_UNDEFINED)
    jfail(r, at, "cannot compare a %s with a %s", jv_kind_name(a.kind), jv_kind_name(b.kind));
  if (numeric_like(a) && numeric_like(b)) {
    double x = a.kind == JV_BOOL ? a.u.b : a.u.num, y = b.kind == JV_BOOL ? b.u.b : b.u.num;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind != b.kind || a.kind != JV_STRING)
    jfail(r, at, "cannot compare a %s with a %s", jv_kind_name(a.kind), jv_kind_name(b.kind));
  if (!case_sensitive) {
    a = ju_case(r, at, a, 0);
    b = ju_case(r, at, b, 0);
  }
  return ju_compare(a.u.s->data, a.u.s->len, b.u.s->data, b.u.s->len);
}

typedef struct sort_ctx {
  jrender *r;
  jpos at;
  int case_sensitive, reverse;
  const jval *keys; /* the values compared, one per item */
} sort_ctx;

/* A stable merge sort of indexes (Array#sort is stable). */
static void merge_sort(sort_ctx *c, size_t *idx, size_t *tmp, size_t n) {
  if (n < 2)
    return;
  size_t h = n / 2;
  merge_sort(c, idx, tmp, h);
  merge_sort(c, idx + h, tmp, n - h);
  size_t i = 0, j = h, k = 0;
  while (i < h && j < n) {
    int d = compare(c->r, c->at, c->keys[idx[j]], c->keys[idx[i]], c->case_sensitive);
    if (c->reverse ? d > 0 : d < 0)
      tmp[k++] = idx[j++];
    else
      tmp[k++] = idx[i++];
  }
  while (i < h)
    tmp[k++] = idx[i++];
  while (j < n)
    tmp[k++] = idx[j++];
  memcpy(idx, tmp, n * sizeof *idx);
}

static jval sorted(sort_ctx *c, const jval *items, size_t n) {
  size_t *idx = jr_alloc(c->r, (n + 1) * sizeof *idx), *tmp = jr_alloc(c->r, (n + 1) * sizeof *tmp);
  for (size_t i = 0; i < n; i++)
    idx[i] = i;
  merge_sort(c, idx, tmp, n);
  jval out = jv_array(c->r, JV_ARRAY, n);
  for (size_t i = 0; i < n; i++)
    ja_push(c->r, out.u.a, items[idx[i]]);
  return out;
}

static jval attribute_path(jval item, const char *path) {
  jval v = item;
  const char *p = path;
  for (;;) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    if (v.kind == JV_OBJECT || v.kind == JV_NAMESPACE) {
      jval *found = jo_get(v.u.o, p, len);
      v = found ? *found : jv_undefined();
    } else if (jv_is_array(v)) {
      char *end;
      char part[32] = "";
      memcpy(part, p, len < 31 ? len : 31);
      long i = strtol(part, &end, 10);
      if (end == part || i < 0 || (size_t)i >= v.u.a->n)
        return jv_undefined();
      v = v.u.a->items[i];
    } else {
      return jv_undefined();
    }
    if (!dot)
      return v;
    p = dot + 1;
  }
}

/* ---- strings ---- */

static jval m_upper(jrender *r, jpos at, jval self, const jargs *a) {
  (void)a;
  return ju_case(r, at, self, 1);
}

static jval m_lower(jrender *r, jpos at, jval self, const jargs *a) {
  (void)a;
  return ju_case(r, at, self, 0);
}

static jval trimmed(jrender *r, jval self, int start, int end) {
  size_t from, to;
  ju_trim(self.u.s->data, self.u.s->len, start, end, &from, &to);
  return str_of(r, self.u.s->data + from, to - from);
}

/* strip, lstrip, rstrip: any argument is ignored (white space is stripped), as there */
static jval m_strip(jrender *r, jpos at, jval self, const jargs *a) {
  (void)at, (void)a;
  return trimmed(r, self, 1, 1);
}

static jval m_lstrip(jrender *r, jpos at, jval self, const jargs *a) {
  (void)at, (void)a;
  return trimmed(r, self, 1, 0);
}

static jval m_rstrip(jrender *r, jpos at, jval self, const jargs *a) {
  (void)at, (void)a;
  return trimmed(r, self, 0, 1);
}

static int ascii_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* /\b\w/g upper-cased: an ASCII letter that starts a word */
static jval m_title(jrender *r, jpos at, jval self, const jargs *a) {
  (void)at, (void)a;
  jval out = str_of(r, self.u.s->data, self.u.s->len);
  char *d = (char *)out.u.s->data;
  for (size_t i = 0; i < out.u.s->len; i++)
    if (ascii_word(d[i]) && (i == 0 || !ascii_word(d[i - 1])) && d[i] >= 'a' && d[i] <= 'z')
      d[i] = (char)(d[i] - 'a' + 'A');
  return out;
}

/* the first UTF-16 unit upper-cased, the rest unchanged */
static jval m_capitalize(jrender *r, jpos at, jval self, const jargs *a) {
  (void)a;
  if (!self.u.s->len)
    return self;
  uint32_t c;
  size_t k = ju_decode(self.u.s->data, self.u.s->len, 0, &c);
  if (c >= 0x10000)
    return self;
  jval head = ju_case(r, at, str_of(r, self.u.s->data, k), 1);
  jbuf b;
  jb_init(&b, r, 0);
  jb_add(&b, head.u.s->data, head.u.s->len);
  jb_add(&b, self.u.s->data + k, self.u.s->len - k);
  return jb_value(&b);
}

static int starts_at(const jstr *s, size_t at, const jstr *p) {
  return p->len <= s->len - at && !memcmp(s->data + at, p->data, p->len);
}

static jval affix(jrender *r, jpos at, jval self, const jargs *a, int end) {
  const char *name = end ? "endswith" : "startswith";
  int present;
  jval p = arg(a, 0, &present);
  if (!present)
    jfail(r, at, "%s() needs an argument", name);
  size_t n = p.kind == JV_STRING ? 1 : jv_is_array(p) && !is_kwargs(a, 0) ? p.u.a->n : 0;
  if (p.kind != JV_STRING && !(jv_is_array(p) && !is_kwargs(a, 0)))
    jfail(r, at, "%s() takes a string or a tuple of strings", name);
  for (size_t i = 0; i < n; i++) {
    jval item = p.kind == JV_STRING ? p : p.u.a->items[i];
    if (item.kind != JV_STRING)
      jfail(r, at, "%s(): the tuple holds a %s", name, jv_kind_name(item.kind));
    const jstr *s = self.u.s, *x = item.u.s;
    if (x->len <= s->len && starts_at(s, end ? s->len - x->len : 0, x))
      return jv_bool(1);
  }
  return jv_bool(0);
}

static jval m_startswith(jrender *r, jpos at, jval self, const jargs *a) {
  return affix(r, at, self, a, 0);
}

static jval m_endswith(jrender *r, jpos at, jval self, const jargs *a) {
  return affix(r, at, self, a, 1);
}

static jval m_split(jrender *r, jpos at, jval self, const jargs *a) {
  int present;
  jval sep = arg(a, 0, &present);
  if (!present)
    sep = jv_null();
  if ((sep.kind != JV_STRING && sep.kind != JV_NULL) || is_kwargs(a, 0))
    jfail(r, at, "split(): the separator must be a string or none");
  jval maxv = arg(a, 1, &present);
  if (!present)
    maxv = jv_int(-1);
  if (maxv.kind != JV_INT || is_kwargs(a, 1))
    jfail(r, at, "split(): maxsplit must be an integer");
  double max = maxv.u.num;
  const char *s = self.u.s->data;
  size_t len = self.u.s->len;
  jval out = jv_array(r, JV_ARRAY, 4);
  if (sep.kind == JV_NULL) {
    size_t from, to;
    ju_trim(s, len, 1, 0, &from, &to);
    size_t i = from;
    while (i < len) {
      uint32_t c;
      size_t k, start = i;
      while (i < len && (k = ju_decode(s, len, i, &c)) && !ju_is_space(c))
        i += k;
      if (max >= 0 && (double)out.u.a->n >= max) {
        ja_push(r, out.u.a, str_of(r, s + start, len - start));
        break;
      }
      ja_push(r, out.u.a, str_of(r, s + start, i - start));
      while (i < len && (k = ju_decode(s, len, i, &c)) && ju_is_space(c))
        i += k;
    }
    return out;
  }
  const jstr *p = sep.u.s;
  if (!p->len)
    jfail(r, at, "split(): empty separator");
  size_t start = 0;
  for (size_t i = 0; i + p->len <= len;) {
    if (!memcmp(s + i, p->data, p->len)) {
      ja_push(r, out.u.a, str_of(r, s + start, i - start));
      i += p->len;
      start = i;
    } else {
      i++;
    }
  }
  ja_push(r, out.u.a, str_of(r, s + start, len - start));
  if (max >= 0 && (double)out.u.a->n > max) {
    /* the parts past maxsplit joined back with the separator */
    size_t keep = (size_t)max;
    jbuf rest;
    jb_init(&rest, r, 0);
    for (size_t i = keep; i < out.u.a->n; i++) {
      if (i > keep)
        jb_add(&rest, p->data, p->len);
      jb_add(&rest, out.u.a->items[i].u.s->data, out.u.a->items[i].u.s->len);
    }
    out.u.a->n = keep;
    ja_push(r, out.u.a, jb_value(&rest));
  }
  return out;
}

static jval m_replace(jrender *r, jpos at, jval self, const jargs *a) {
  int p0, p1, p2;
  jval old = arg(a, 0, &p0), new_ = arg(a, 1, &p1);
  if (!p0 || !p1)
    jfail(r, at, "replace() needs two arguments");
  if (old.kind != JV_STRING || new_.kind != JV_STRING || is_kwargs(a, 0) || is_kwargs(a, 1))
    jfail(r, at, "replace(): its arguments must be strings");
  jval count = arg(a, 2, &p2);
  if (!p2) {
    count = jv_null();
  } else if (is_kwargs(a, 2)) {
    jval *c = jo_get(a->kw, "count", 5);
    count = c ? *c : jv_null();
  }
  if (count.kind != JV_INT && count.kind != JV_NULL)
    jfail(r, at, "replace(): count must be an integer or none");
  double remaining = count.kind == JV_NULL || count.u.num < 0 ? INFINITY : count.u.num;
  const jstr *s = self.u.s, *o = old.u.s, *w = new_.u.s;
  jbuf b;
  jb_init(&b, r, r->max_output);
  if (!o->len) { /* before every character and at the end */
    for (size_t i = 0; i <= s->len;) {
      if (remaining > 0) {
        jb_add(&b, w->data, w->len);
        remaining--;
      }
      if (i == s->len)
        break;
      uint32_t c;
      size_t k = ju_decode(s->data, s->len, i, &c);
      jb_add(&b, s->data + i, k);
      i += k;
    }
    return jb_value(&b);
  }
  size_t i = 0;
  while (i < s->len) {
    if (remaining > 0 && starts_at(s, i, o)) {
      jb_add(&b, w->data, w->len);
      i += o->len;
      remaining--;
    } else {
      jb_add(&b, s->data + i, 1);
      i++;
    }
  }
  return jb_value(&b);
}

/* ---- objects ---- */

static jval pairs(jrender *r, jobject *o) {
  jval out = jv_array(r, JV_ARRAY, o->n);
  for (size_t i = 0; i < o->n; i++) {
    jval pair = jv_array(r, JV_ARRAY, 2);
    ja_push(r, pair.u.a, (jval){.kind = JV_STRING, .u.s = o->keys[i]});
    ja_push(r, pair.u.a, o->vals[i]);
    ja_push(r, out.u.a, pair);
  }
  return out;
}

static jval m_items(jrender *r, jpos at, jval self, const jargs *a) {
  (void)at, (void)a;
  return pairs(r, self.u.o);
}

static jval m_keys(jrender *r, jpos at, jval self, const jargs *a) {
  (void)at, (void)a;
  jval out = jv_array(r, JV_ARRAY, self.u.o->n);
  for (size_t i = 0; i < self.u.o->n; i++)
    ja_push(r, out.u.a, (jval){.kind = JV_STRING, .u.s = self.u.o->keys[i]});
  return out;
}

static jval m_values(jrender *r, jpos at, jval self, const jargs *a) {
  (void)at, (void)a;
  jval out = jv_array(r, JV_ARRAY, self.u.o->n);
  for (size_t i = 0; i < self.u.o->n; i++)
    ja_push(r, out.u.a, self.u.o->vals[i]);
  return out;
}

static jval m_get(jrender *r, jpos at, jval self, const jargs *a) {
  int present, has_default;
  jval key = arg(a, 0, &present), fallback = arg(a, 1, &has_default);
  if (key.kind != JV_STRING || is_kwargs(a, 0))
    jfail(r, at, "get(): the key must be a string");
  jval *v = jo_get(self.u.o, key.u.s->data, key.u.s->len);
  return v ? *v : has_default ? fallback : jv_null();
}

static jval m_dictsort(jrender *r, jpos at, jval self, const jargs *a) {
  jval cs = param(a, 0, "case_sensitive", jv_bool(0)), by = param(a, 1, "by", jv_cstr(r, "key")),
       rev = param(a, 2, "reverse", jv_bool(0));
  if (cs.kind != JV_BOOL || rev.kind != JV_BOOL)
    jfail(r, at, "dictsort(): case_sensitive and reverse are booleans");
  if (by.kind != JV_STRING || (strcmp(by.u.s->data, "key") && strcmp(by.u.s->data, "value")))
    jfail(r, at, "dictsort(): by is 'key' or 'value'");
  jval items = pairs(r, self.u.o);
  size_t n = items.u.a->n;
  jval *keys = jr_alloc(r, (n + 1) * sizeof *keys);
  int column = by.u.s->data[0] == 'v';
  for (size_t i = 0; i < n; i++)
    keys[i] = items.u.a->items[i].u.a->items[column];
  sort_ctx c = {r, at, cs.u.b, rev.u.b, keys};
  return sorted(&c, items.u.a->items, n);
}

typedef struct jmethod {
  const char *name;
  jbuiltin_fn fn;
} jmethod;

static const jmethod STRING_METHODS[] = {
    {"upper", m_upper},   {"lower", m_lower},           {"strip", m_strip},
    {"title", m_title},   {"capitalize", m_capitalize}, {"rstrip", m_rstrip},
    {"lstrip", m_lstrip}, {"startswith", m_startswith}, {"endswith", m_endswith},
    {"split", m_split},   {"replace", m_replace},       {NULL, NULL}};

static const jmethod OBJECT_METHODS[] = {{"get", m_get},           {"items", m_items},
                                         {"keys", m_keys},         {"values", m_values},
                                         {"dictsort", m_dictsort}, {NULL, NULL}};

static jbuiltin_fn find_method(const jmethod *table, const char *name) {
  for (; table->name; table++)
    if (!strcmp(table->name, name))
      return table->fn;
  return NULL;
}

/* The UTF-16 unit at `index` of a string (negative from the end), as String#at. */
static jval string_at(jrender *r, jpos at, jval s, double index) {
  const char *d = s.u.s->data;
  size_t len = s.u.s->len;
  double units = (double)ju_utf16_length(d, len);
  if (index < 0)
    index += units;
  if (index < 0 || index >= units)
    return jv_undefined();
  size_t unit = 0;
  for (size_t i = 0; i < len;) {
    uint32_t c;
    size_t k = ju_decode(d, len, i, &c);
    size_t width = c >= 0x10000 ? 2 : 1;
    if ((double)(unit + width) > index) {
      if (width == 2)
        jfail(r, at,
              "indexing into a character outside the Basic Multilingual Plane (half of a "
              "UTF-16 pair) is not supported");
      return str_of(r, d + i, k);
    }
    unit += width;
    i += k;
  }
  return jv_undefined();
}

jval jb_member(jrender *r, jpos at, jval object, jval property) {
  if (object.kind == JV_OBJECT || object.kind == JV_NAMESPACE) {
    if (property.kind != JV_STRING)
      jfail(r, at, "an object's attributes are named by strings, not by a %s",
            jv_kind_name(property.kind));
    jval *v = jo_get(object.u.o, property.u.s->data, property.u.s->len);
    if (v)
      return *v;
    jbuiltin_fn fn =
        object.kind == JV_OBJECT ? find_method(OBJECT_METHODS, property.u.s->data) : NULL;
    return fn ? jv_builtin(r, fn, object) : jv_undefined();
  }
  if (jv_is_array(object) || object.kind == JV_STRING) {
    if (property.kind == JV_INT) {
      if (object.kind == JV_STRING)
        return string_at(r, at, object, property.u.num);
      double i = property.u.num < 0 ? property.u.num + (double)object.u.a->n : property.u.num;
      return i >= 0 && i < (double)object.u.a->n ? object.u.a->items[(size_t)i] : jv_undefined();
    }
    if (property.kind != JV_STRING)
      jfail(r, at, "an index is an integer or a string, not a %s", jv_kind_name(property.kind));
    if (!strcmp(property.u.s->data, "length"))
      return jv_int(object.kind == JV_STRING
                        ? (double)ju_utf16_length(object.u.s->data, object.u.s->len)
                        : (double)object.u.a->n);
    jbuiltin_fn fn =
        object.kind == JV_STRING ? find_method(STRING_METHODS, property.u.s->data) : NULL;
    return fn ? jv_builtin(r, fn, object) : jv_undefined();
  }
  if (property.kind != JV_STRING)
    jfail(r, at, "an attribute is named by a string, not by a %s", jv_kind_name(property.kind));
  return jv_undefined();
}

/* JavaScript's slice with a Python step (utils.ts's rules); strings by code point. */
jval jb_slice(jrender *r, jval object, const jval parts[3]) {
  size_t n;
  size_t *offsets = NULL; /* for a string: the byte offset of each code point, and the end */
  if (object.kind == JV_STRING) {
    const char *d = object.u.s->data;
    size_t len = object.u.s->len;
    offsets = jr_alloc(r, (len + 1) * sizeof *offsets);
    n = 0;
    for (size_t i = 0; i < len;) {
      uint32_t c;
      size_t k = ju_decode(d, len, i, &c);
      offsets[n++] = i;
      i += k ? k : 1;
    }
    offsets[n] = len;
  } else {
    n = object.u.a->n;
  }
  double len = (double)n, step = parts[2].kind == JV_INT ? parts[2].u.num : 1;
  double start, stop;
  int up = step >= 0;
  if (up) {
    start = parts[0].kind == JV_INT ? parts[0].u.num : 0;
    stop = parts[1].kind == JV_INT ? parts[1].u.num : len;
    start = start < 0 ? fmax(len + start, 0) : fmin(start, len);
    stop = stop < 0 ? fmax(len + stop, 0) : fmin(stop, len);
  } else {
    start = parts[0].kind == JV_INT ? parts[0].u.num : len - 1;
    stop = parts[1].kind == JV_INT ? parts[1].u.num : -1;
    start = start < 0 ? fmax(len + start, -1) : fmin(start, len - 1);
    stop = stop < -1 ? fmax(len + stop, -1) : fmin(stop, len - 1);
  }
  double dir = step > 0 ? 1 : step < 0 ? -1 : 0;
  jbuf b;
  jb_init(&b, r, 0);
  jval out = object.kind == JV_STRING ? jv_undefined() : jv_array(r, JV_ARRAY, 0);
  for (double i = start; dir * i < dir * stop; i += step) {
    size_t k = (size_t)i;
    if (object.kind == JV_STRING)
      jb_add(&b, object.u.s->data + offsets[k], offsets[k + 1] - offsets[k]);
    else
      ja_push(r, out.u.a, object.u.a->items[k]);
  }
  return object.kind == JV_STRING ? jb_value(&b) : out;
}

/* ---- filters ---- */

static const char *const FILTERS[] = {
    "safe",       "tojson", "list",    "first", "last",  "length", "reverse",    "sort",
    "join",       "string", "unique",  "upper", "lower", "title",  "capitalize", "trim",
    "indent",     "int",    "float",   "abs",   "items", "bool",   "default",    "selectattr",
    "rejectattr", "map",    "replace", "get",   "keys",  "values", "dictsort",   NULL};

int jb_known_filter(const char *name) {
  for (const char *const *f = FILTERS; *f; f++)
    if (!strcmp(*f, name))
      return 1;
  return 0;
}

/* parseInt(s, 10) and parseFloat(s): the longest number at the start, after white space. */
static int parse_number(jval s, int integer, double *out) {
  const char *d = s.u.s->data;
  size_t len = s.u.s->len, from, to;
  ju_trim(d, len, 1, 0, &from, &to);
  const char *p = d + from, *end = d + len;
  char buf[400];
  size_t n = 0;
  if (p < end && (*p == '+' || *p == '-'))
    buf[n++] = *p++;
  if (!integer && (size_t)(end - p) >= 8 && !memcmp(p, "Infinity", 8)) {
    *out = buf[0] == '-' ? -INFINITY : INFINITY;
    return 1;
  }
  size_t digits = 0;
  while (p < end && *p >= '0' && *p <= '9' && n < sizeof buf - 8) {
    buf[n++] = *p++;
    digits++;
  }
  if (!integer) {
    if (p < end && *p == '.') {
      size_t frac = 0;
      const char *q = p + 1;
      while (q < end && *q >= '0' && *q <= '9' && n + frac < sizeof buf - 10)
        q++, frac++;
      if (digits || frac) {
        buf[n++] = '.';
        memcpy(buf + n, p + 1, frac);
        n += frac;
        digits += frac;
        p = q;
      }
    }
    if (digits && p < end && (*p == 'e' || *p == 'E')) {
      const char *q = p + 1;
      size_t k = 0;
      char e[16] = "e";
      if (q < end && (*q == '+' || *q == '-'))
        e[1] = *q++, k = 1;
      size_t ed = 0;
      while (q < end && *q >= '0' && *q <= '9' && ed < 6)
        e[1 + k + ed++] = *q++;
      if (ed) {
        memcpy(buf + n, e, 1 + k + ed);
        n += 1 + k + ed;
      }
    }
  }
  if (!digits)
    return 0;
  buf[n] = 0;
  *out = strtod(buf, NULL);
  return 1;
}

/* The int and float filters: a string parsed (fallback where it holds no number), a number
 * truncated or kept, a boolean as 0 or 1. */
static jval to_number(jrender *r, jpos at, jval v, jval fallback, int integer) {
  double x;
  switch (v.kind) {
  case JV_STRING:
    if (!parse_number(v, integer, &x))
      return fallback;
    break;
  case JV_INT:
  case JV_FLOAT:
    x = integer ? trunc(v.u.num) + 0.0 : v.u.num;
    break;
  case JV_BOOL:
    x = v.u.b;
    break;
  default:
    jfail(r, at, "cannot apply the filter '%s' to a %s", integer ? "int" : "float",
          jv_kind_name(v.kind));
  }
  return integer ? jv_int(x) : jv_float(x);
}

static jval join(jrender *r, jpos at, jval v, const char *sep, size_t sep_len) {
  jbuf b;
  jb_init(&b, r, r->max_output);
  if (v.kind == JV_STRING) {
    const char *d = v.u.s->data;
    size_t len = v.u.s->len;
    for (size_t i = 0; i < len;) {
      uint32_t c;
      size_t k = ju_decode(d, len, i, &c);
      if (i)
        jb_add(&b, sep, sep_len);
      jb_add(&b, d + i, k);
      i += k;
    }
    return jb_value(&b);
  }
  for (size_t i = 0; i < v.u.a->n; i++) {
    if (i)
      jb_add(&b, sep, sep_len);
    jval item = v.u.a->items[i];
    if (item.kind != JV_NULL && item.kind != JV_UNDEFINED)
      jv_write_plain(&b, at, item);
  }
  return jb_value(&b);
}

static jval indent(jrender *r, jval s, const char *pad, size_t pad_len, int first, int blank) {
  jbuf b;
  jb_init(&b, r, r->max_output);
  const char *d = s.u.s->data, *end = d + s.u.s->len;
  for (int line = 0;; line++) {
    const char *nl = memchr(d, '\n', (size_t)(end - d));
    size_t len = nl ? (size_t)(nl - d) : (size_t)(end - d);
    if (!((!first && line == 0) || (!blank && len == 0)))
      jb_add(&b, pad, pad_len);
    jb_add(&b, d, len);
    if (!nl)
      break;
    jb_add(&b, "\n", 1);
    d = nl + 1;
  }
  return jb_value(&b);
}

static jval simple_filter(jrender *r, jpos at, const char *f, jval v) {
  if (!strcmp(f, "safe"))
    return v;
  if (!strcmp(f, "tojson")) {
    jbuf b;
    jb_init(&b, r, r->max_output);
    jv_write_json(&b, at, v, &(jjson_style){0}, 0, 1);
    return jb_value(&b);
  }
  if (jv_is_array(v)) {
    jarray *a = v.u.a;
    if (!strcmp(f, "list"))
      return v;
    if (!strcmp(f, "first") || !strcmp(f, "last")) {
      if (!a->n)
        jfail(r, at, "'%s' of an empty list", f);
      return a->items[f[0] == 'f' ? 0 : a->n - 1];
    }
    if (!strcmp(f, "length"))
      return jv_int((double)a->n);
    if (!strcmp(f, "reverse")) {
      jval out = jv_array(r, JV_ARRAY, a->n);
      for (size_t i = a->n; i-- > 0;)
        ja_push(r, out.u.a, a->items[i]);
      return out;
    }
    if (!strcmp(f, "sort")) {
      sort_ctx c = {r, at, 0, 0, a->items};
      return sorted(&c, a->items, a->n);
    }
    if (!strcmp(f, "join"))
      return join(r, at, v, "", 0);
    if (!strcmp(f, "string")) {
      jbuf b;
      jb_init(&b, r, r->max_output);
      jv_write_json(&b, at, v, &(jjson_style){0}, 0, 0);
      return jb_value(&b);
    }
    if (!strcmp(f, "unique")) {
      jval out = jv_array(r, JV_ARRAY, a->n);
      for (size_t i = 0; i < a->n; i++) {
        int seen = 0;
        for (size_t j = 0; j < out.u.a->n && !seen; j++)
          seen = jv_strict_equal(out.u.a->items[j], a->items[i]) ||
                 (jv_is_number(a->items[i]) && isnan(a->items[i].u.num) &&
                  jv_is_number(out.u.a->items[j]) && isnan(out.u.a->items[j].u.num));
        if (!seen)
          ja_push(r, out.u.a, a->items[i]);
      }
      return out;
    }
    jfail(r, at, "the filter '%s' does not apply to a list", f);
  }
  if (v.kind == JV_STRING) {
    static const jargs none = {0};
    if (!strcmp(f, "length"))
      return jv_int((double)ju_utf16_length(v.u.s->data, v.u.s->len));
    jbuiltin_fn m =
        strcmp(f, "upper") && strcmp(f, "lower") && strcmp(f, "title") && strcmp(f, "capitalize")
            ? NULL
            : find_method(STRING_METHODS, f);
    if (m)
      return m(r, at, v, &none);
    if (!strcmp(f, "trim"))
      return trimmed(r, v, 1, 1);
    if (!strcmp(f, "indent"))
      return indent(r, v, "    ", 4, 0, 0);
    if (!strcmp(f, "join") || !strcmp(f, "string"))
      return v;
    if (!strcmp(f, "int"))
      return to_number(r, at, v, jv_int(0), 1);
    if (!strcmp(f, "float"))
      return to_number(r, at, v, jv_float(0), 0);
    jfail(r, at, "the filter '%s' does not apply to a string", f);
  }
  if (jv_is_number(v)) {
    if (!strcmp(f, "abs"))
      return v.kind == JV_INT ? jv_int(fabs(v.u.num)) : jv_float(fabs(v.u.num));
    if (!strcmp(f, "int"))
      return to_number(r, at, v, jv_int(0), 1);
    if (!strcmp(f, "float"))
      return jv_float(v.u.num);
    if (!strcmp(f, "string")) {
      jbuf b;
      jb_init(&b, r, 0);
      jv_write(&b, at, v);
      return jb_value(&b);
    }
    jfail(r, at, "the filter '%s' does not apply to a number", f);
  }
  if (v.kind == JV_OBJECT) {
    static const jargs none = {0};
    if (!strcmp(f, "items"))
      return pairs(r, v.u.o);
    if (!strcmp(f, "length"))
      return jv_int((double)v.u.o->n);
    jbuiltin_fn m = find_method(OBJECT_METHODS, f);
    if (m)
      return m(r, at, v, &none);
    jfail(r, at, "the filter '%s' does not apply to an object", f);
  }
  if (v.kind == JV_BOOL) {
    if (!strcmp(f, "bool"))
      return v;
    if (!strcmp(f, "int"))
      return jv_int(v.u.b);
    if (!strcmp(f, "float"))
      return jv_float(v.u.b);
    if (!strcmp(f, "string"))
      return jv_cstr(r, v.u.b ? "true" : "false");
    jfail(r, at, "the filter '%s' does not apply to a boolean", f);
  }
  jfail(r, at, "cannot apply the filter '%s' to a%s %s", f, v.kind == JV_UNDEFINED ? "n" : "",
        jv_kind_name(v.kind));
}

static jval select_filter(jrender *r, const jnode *call, jval v, const jargs *a, int select) {
  const char *f = select ? "selectattr" : "rejectattr";
  for (size_t i = 0; i < v.u.a->n; i++)
    if (v.u.a->items[i].kind != JV_OBJECT && v.u.a->items[i].kind != JV_NAMESPACE)
      jfail(r, call->pos, "'%s' applies to a list of objects", f);
  for (size_t i = 0; i < call->n_args; i++)
    if (call->args[i]->type != JN_STRING)
      jfail(r, call->args[i]->pos, "the arguments of '%s' are strings", f);
  if (!call->n_args)
    jfail(r, call->pos, "'%s' needs an attribute name", f);
  jval attr = a->pos[0];
  const char *test = call->n_args > 1 ? call->args[1]->str : NULL;
  if (test && !jb_known_test(test))
    jfail(r, call->args[1]->pos, "unknown test '%s'", test);
  jval other = call->n_args > 2 ? a->pos[2] : jv_undefined();
  jval out = jv_array(r, JV_ARRAY, v.u.a->n);
  for (size_t i = 0; i < v.u.a->n; i++) {
    jval item = v.u.a->items[i];
    jval *a = jo_get(item.u.o, attr.u.s->data, attr.u.s->len);
    int result = 0;
    if (a) /* an item without the attribute never passes, whatever the test */
      result = test ? test2(r, call->pos, test, *a, other, call->n_args > 2) : jv_truthy(*a);
    if (select ? result : !result)
      ja_push(r, out.u.a, item);
  }
  return out;
}

static jval tojson_filter(jrender *r, jpos at, jval v, const jargs *a) {
  jval ind = param(&(jargs){0, 0, a->kw}, 0, "indent", jv_null()),
       ascii = param(&(jargs){0, 0, a->kw}, 0, "ensure_ascii", jv_bool(0)),
       sort = param(&(jargs){0, 0, a->kw}, 0, "sort_keys", jv_bool(0)),
       seps = param(&(jargs){0, 0, a->kw}, 0, "separators", jv_null());
  if ((ind.kind != JV_INT && ind.kind != JV_NULL) || (ind.kind == JV_INT && ind.u.num < 0) ||
      (ind.kind == JV_INT && ind.u.num > 64))
    jfail(r, at, "tojson(): indent is none or an integer in 0..64");
  if (ascii.kind != JV_BOOL || sort.kind != JV_BOOL)
    jfail(r, at, "tojson(): ensure_ascii and sort_keys are booleans");
  jjson_style style = {.indent = ind.kind == JV_INT ? (int)ind.u.num : 0,
                       .ensure_ascii = ascii.u.b,
                       .sort_keys = sort.u.b};
  if (seps.kind != JV_NULL) {
    if (!jv_is_array(seps) || seps.u.a->n != 2 || seps.u.a->items[0].kind != JV_STRING ||
        seps.u.a->items[1].kind != JV_STRING)
      jfail(r, at, "tojson(): separators is a pair of strings");
    style.item_sep = seps.u.a->items[0].u.s->data;
    style.key_sep = seps.u.a->items[1].u.s->data;
  }
  jbuf b;
  jb_init(&b, r, r->max_output);
  jv_write_json(&b, at, v, &style, 0, 1);
  return jb_value(&b);
}

jval jb_apply_filter(jrender *r, const jnode *filter, jval v, const jargs *args) {
  if (filter->type == JN_NAME)
    return simple_filter(r, filter->pos, filter->str, v);
  const char *f = filter->a->str;
  jpos at = filter->pos;
  jargs a = *args;
  if (!strcmp(f, "selectattr") || !strcmp(f, "rejectattr")) {
    if (!jv_is_array(v))
      jfail(r, at, "'%s' applies to a list", f);
    return select_filter(r, filter, v, &a, f[0] == 's');
  }
  if (!strcmp(f, "tojson"))
    return tojson_filter(r, at, v, &a);
  if (!strcmp(f, "join")) {
    if (v.kind != JV_STRING && !jv_is_array(v))
      jfail(r, at, "cannot apply the filter 'join' to a %s", jv_kind_name(v.kind));
    jval sep = param(&a, 0, "separator", jv_cstr(r, ""));
    if (sep.kind != JV_STRING)
      jfail(r, at, "join(): the separator must be a string");
    return join(r, at, v, sep.u.s->data, sep.u.s->len);
  }
  if (!strcmp(f, "int"))
    return to_number(r, at, v, param(&a, 0, "default", jv_int(0)), 1);
  if (!strcmp(f, "float"))
    return to_number(r, at, v, param(&a, 0, "default", jv_float(0)), 0);
  if (!strcmp(f, "default")) {
    jval fallback = a.n ? a.pos[0] : jv_cstr(r, "");
    jval boolean = param(&a, 1, "boolean", jv_bool(0));
    if (boolean.kind != JV_BOOL)
      jfail(r, at, "default(): its second argument is a boolean");
    return v.kind == JV_UNDEFINED || (boolean.u.b && !jv_truthy(v)) ? fallback : v;
  }
  if (jv_is_array(v)) {
    if (!strcmp(f, "sort")) {
      jval rev = param(&a, 0, "reverse", jv_bool(0)),
           cs = param(&a, 1, "case_sensitive", jv_bool(0)),
           attr = param(&a, 2, "attribute", jv_null());
      if (rev.kind != JV_BOOL || cs.kind != JV_BOOL)
        jfail(r, at, "sort(): reverse and case_sensitive are booleans");
      if (attr.kind != JV_STRING && attr.kind != JV_INT && attr.kind != JV_NULL)
        jfail(r, at, "sort(): attribute is a string, an integer or none");
      jval *keys = jr_alloc(r, (v.u.a->n + 1) * sizeof *keys);
      char path[40];
      if (attr.kind == JV_INT)
        jv_format_number(attr.u.num, path);
      for (size_t i = 0; i < v.u.a->n; i++)
        keys[i] =
            attr.kind == JV_NULL
                ? v.u.a->items[i]
                : attribute_path(v.u.a->items[i], attr.kind == JV_INT ? path : attr.u.s->data);
      sort_ctx c = {r, at, cs.u.b, rev.u.b, keys};
      return sorted(&c, v.u.a->items, v.u.a->n);
    }
    if (!strcmp(f, "map")) {
      jval *attr = a.kw ? jo_get(a.kw, "attribute", 9) : NULL;
      if (!attr)
        jfail(r, at, "map() without attribute= is not supported");
      if (attr->kind != JV_STRING)
        jfail(r, at, "map(): attribute is a string");
      jval *fallback = jo_get(a.kw, "default", 7);
      jval out = jv_array(r, JV_ARRAY, v.u.a->n);
      for (size_t i = 0; i < v.u.a->n; i++) {
        jval item = v.u.a->items[i];
        if (item.kind != JV_OBJECT && item.kind != JV_NAMESPACE)
          jfail(r, at, "map(): the list's items are objects");
        jval got = attribute_path(item, attr->u.s->data);
        ja_push(r, out.u.a, got.kind == JV_UNDEFINED && fallback ? *fallback : got);
      }
      return out;
    }
    jfail(r, at, "the filter '%s' does not apply to a list", f);
  }
  if (v.kind == JV_STRING) {
    if (!strcmp(f, "indent")) {
      jval width = param(&a, 0, "width", jv_int(4)), first = param(&a, 1, "first", jv_bool(0)),
           blank = param(&a, 2, "blank", jv_bool(0));
      if (width.kind != JV_INT && width.kind != JV_STRING)
        jfail(r, at, "indent(): width is an integer or a string");
      char spaces[257];
      size_t n = width.kind == JV_INT ? (size_t)fmax(0, fmin(width.u.num, 256)) : 0;
      if (width.kind == JV_INT && width.u.num > 256)
        jfail(r, at, "indent(): width above 256 is not supported");
      memset(spaces, ' ', n);
      return indent(r, v, width.kind == JV_STRING ? width.u.s->data : spaces,
                    width.kind == JV_STRING ? width.u.s->len : n, jv_truthy(first),
                    jv_truthy(blank));
    }
    if (!strcmp(f, "replace"))
      return m_replace(r, at, v, &(jargs){a.pos, a.n, a.kw ? a.kw : jv_object(r, JV_OBJECT).u.o});
    jfail(r, at, "the filter '%s' does not apply to a string", f);
  }
  if (v.kind == JV_OBJECT) {
    jbuiltin_fn m = find_method(OBJECT_METHODS, f);
    if (m)
      return m(r, at, v, &a);
    jfail(r, at, "the filter '%s' does not apply to an object", f);
  }
  jfail(r, at, "cannot apply the filter '%s' to a%s %s", f, v.kind == JV_UNDEFINED ? "n" : "",
        jv_kind_name(v.kind));
}

/* ---- global functions ---- */

static jval g_namespace(jrender *r, jpos at, jval self, const jargs *a) {
  (void)self;
  if (a->n > 1)
    jfail(r, at, "namespace() takes at most one positional argument");
  jval ns = jv_object(r, JV_NAMESPACE);
  if (a->n == 1) {
    jval src = a->pos[0];
    if (src.kind == JV_OBJECT) {
      for (size_t i = 0; i < src.u.o->n; i++)
        jo_set(r, ns.u.o, src.u.o->keys[i]->data, src.u.o->keys[i]->len, src.u.o->vals[i]);
    } else if (jv_is_array(src)) {
      for (size_t i = 0; i < src.u.a->n; i++) {
        jval pair = src.u.a->items[i];
        if (!jv_is_array(pair) || pair.u.a->n != 2 || pair.u.a->items[0].kind != JV_STRING)
          jfail(r, at, "namespace() takes an object or a list of [name, value] pairs");
        const jstr *k = pair.u.a->items[0].u.s;
        jo_set(r, ns.u.o, k->data, k->len, pair.u.a->items[1]);
      }
    } else {
      jfail(r, at, "namespace() takes an object or a list of pairs, not a %s",
            jv_kind_name(src.kind));
    }
  }
  if (a->kw)
    for (size_t i = 0; i < a->kw->n; i++)
      jo_set(r, ns.u.o, a->kw->keys[i]->data, a->kw->keys[i]->len, a->kw->vals[i]);
  return ns;
}

static jval g_raise_exception(jrender *r, jpos at, jval self, const jargs *a) {
  (void)self;
  jbuf b;
  jb_init(&b, r, 400);
  if (a->n && a->pos[0].kind == JV_STRING)
    jb_add(&b, a->pos[0].u.s->data, a->pos[0].u.s->len < 400 ? a->pos[0].u.s->len : 400);
  jfail(r, at, "raise_exception: %s", b.data ? b.data : "");
}

static jval g_range(jrender *r, jpos at, jval self, const jargs *a) {
  (void)self;
  if (a->kw || a->n < 1 || a->n > 3)
    jfail(r, at, "range() takes 1 to 3 numbers");
  for (size_t i = 0; i < a->n; i++)
    if (!jv_is_number(a->pos[i]))
      jfail(r, at, "range() takes numbers, not a %s", jv_kind_name(a->pos[i].kind));
  double start = a->n > 1 ? a->pos[0].u.num : 0,
         stop = a->n > 1 ? a->pos[1].u.num : a->pos[0].u.num,
         step_ = a->n > 2 ? a->pos[2].u.num : 1;
  if (step_ == 0)
    jfail(r, at, "range() step must not be zero");
  jval out = jv_array(r, JV_ARRAY, 0);
  for (double i = start; step_ > 0 ? i < stop : i > stop; i += step_) {
    if (++r->steps > r->max_steps)
      jfail(r, at, "the template took more than %zu steps (the work limit)", r->max_steps);
    ja_push(r, out.u.a, i == floor(i) ? jv_int(i) : jv_float(i));
  }
  return out;
}

static jval g_strftime_now(jrender *r, jpos at, jval self, const jargs *a) {
  (void)self;
  if (a->n != 1 || a->pos[0].kind != JV_STRING)
    jfail(r, at, "strftime_now() takes a format string");
  static const char *const months[] = {"January",   "February", "March",    "April",
                                       "May",       "June",     "July",     "August",
                                       "September", "October",  "November", "December"};
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  jbuf b;
  jb_init(&b, r, 0);
  const char *f = a->pos[0].u.s->data;
  for (size_t i = 0; i < a->pos[0].u.s->len; i++) {
    char num[16];
    if (f[i] != '%' || i + 1 >= a->pos[0].u.s->len || !strchr("YmdbBHM%", f[i + 1]) || !f[i + 1]) {
      jb_add(&b, f + i, 1);
      continue;
    }
    switch (f[++i]) {
    case 'Y':
      snprintf(num, sizeof num, "%d", tm.tm_year + 1900);
      break;
    case 'm':
      snprintf(num, sizeof num, "%02d", tm.tm_mon + 1);
      break;
    case 'd':
      snprintf(num, sizeof num, "%02d", tm.tm_mday);
      break;
    case 'b':
      snprintf(num, sizeof num, "%.3s", months[tm.tm_mon]);
      break;
    case 'B':
      snprintf(num, sizeof num, "%s", months[tm.tm_mon]);
      break;
    case 'H':
      snprintf(num, sizeof num, "%02d", tm.tm_hour);
      break;
    case 'M':
      snprintf(num, sizeof num, "%02d", tm.tm_min);
      break;
    default:
      snprintf(num, sizeof num, "%%");
    }
    jb_addc(&b, num);
  }
  return jb_value(&b);
}

size_t jb_globals(jrender *r, const char **names, jval *values) {
  static const char *const all[] = {"false", "true",        "none",      "False",
                                    "True",  "None",        "namespace", "raise_exception",
                                    "range", "strftime_now"};
  const jval v[] = {jv_bool(0),
                    jv_bool(1),
                    jv_null(),
                    jv_bool(0),
                    jv_bool(1),
                    jv_null(),
                    jv_builtin(r, g_namespace, jv_undefined()),
                    jv_builtin(r, g_raise_exception, jv_undefined()),
                    jv_builtin(r, g_range, jv_undefined()),
                    jv_builtin(r, g_strftime_now, jv_undefined())};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    names[i] = all[i];
    values[i] = v[i];
  }
  return sizeof all / sizeof all[0];
}
