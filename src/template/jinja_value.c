/* jinja_value.c: the values a template works with, the arena they live in, and how they
 * print: numbers as JavaScript's Number#toString, {{ value }} and tojson as
 * @huggingface/jinja writes them, strings measured and compared in UTF-16 code units as
 * JavaScript does. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "jinja_impl.h"

/* ---- arena ---- */

struct jblock {
  struct jblock *next;
  size_t used, cap;
  max_align_t data[];
};

void *ja_alloc(jarena *arena, size_t size) {
  size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
  if (size == 0)
    size = sizeof(max_align_t);
  if (arena->limit && (size > arena->limit || arena->used > arena->limit - size))
    return NULL;
  struct jblock *b = arena->blocks;
  if (!b || b->cap - b->used < size) {
    size_t cap = size > 60000 ? size : 60000;
    b = malloc(sizeof *b + cap);
    if (!b)
      return NULL;
    b->used = 0;
    b->cap = cap;
    b->next = arena->blocks;
    arena->blocks = b;
  }
  void *p = (char *)b->data + b->used;
  b->used += size;
  arena->used += size;
  memset(p, 0, size);
  return p;
}

void ja_free(jarena *arena) {
  for (struct jblock *b = arena->blocks, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  arena->blocks = NULL;
  arena->used = 0;
}

_Noreturn void jfail(jrender *r, jpos at, const char *fmt, ...) {
  int k = at.line ? snprintf(r->message, sizeof r->message, "line %d, column %d: ", at.line, at.col)
                  : 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->message + k, sizeof r->message - (size_t)k, fmt, ap);
  va_end(ap);
  longjmp(r->fail, 1);
}

void *jr_alloc(jrender *r, size_t size) {
  void *p = ja_alloc(&r->arena, size);
  if (!p) {
    snprintf(r->message, sizeof r->message,
             "the template made more than %zu bytes of values (the memory limit)", r->arena.limit);
    longjmp(r->fail, 1);
  }
  return p;
}

/* ---- values ---- */

jval jv_undefined(void) {
  return (jval){.kind = JV_UNDEFINED};
}

jval jv_null(void) {
  return (jval){.kind = JV_NULL};
}

jval jv_bool(int b) {
  return (jval){.kind = JV_BOOL, .u.b = !!b};
}

jval jv_int(double v) {
  return (jval){.kind = JV_INT, .u.num = v};
}

jval jv_float(double v) {
  return (jval){.kind = JV_FLOAT, .u.num = v};
}

jval jv_str(jrender *r, const char *s, size_t len) {
  jstr *str = jr_alloc(r, sizeof *str + len + 1);
  str->len = len;
  if (len)
    memcpy(str->data, s, len);
  return (jval){.kind = JV_STRING, .u.s = str};
}

jval jv_cstr(jrender *r, const char *s) {
  return jv_str(r, s, strlen(s));
}

jval jv_array(jrender *r, jkind kind, size_t cap) {
  jarray *a = jr_alloc(r, sizeof *a);
  a->cap = cap;
  a->items = cap ? jr_alloc(r, cap * sizeof *a->items) : NULL;
  return (jval){.kind = kind, .u.a = a};
}

jval jv_object(jrender *r, jkind kind) {
  return (jval){.kind = kind, .u.o = jr_alloc(r, sizeof(jobject))};
}

jval jv_builtin(jrender *r, jbuiltin_fn fn, jval self) {
  jfunc *f = jr_alloc(r, sizeof *f);
  f->builtin = fn;
  f->self = self;
  return (jval){.kind = JV_FUNCTION, .u.f = f};
}

void ja_push(jrender *r, jarray *a, jval v) {
  if (a->n == a->cap) {
    size_t cap = a->cap ? 2 * a->cap : 4;
    jval *items = jr_alloc(r, cap * sizeof *items);
    if (a->n)
      memcpy(items, a->items, a->n * sizeof *items);
    a->items = items;
    a->cap = cap;
  }
  a->items[a->n++] = v;
}

jval *jo_get(const jobject *o, const char *key, size_t len) {
  for (size_t i = 0; i < o->n; i++)
    if (o->keys[i]->len == len && !memcmp(o->keys[i]->data, key, len))
      return &o->vals[i];
  return NULL;
}

void jo_set(jrender *r, jobject *o, const char *key, size_t len, jval v) {
  jval *old = jo_get(o, key, len);
  if (old)
    *old = v;
  else
    jo_append(r, o, jv_str(r, key, len).u.s, v);
}

void *jr_reserve_pairs(jrender *r, const void *keys, size_t key_size, jval **vals, size_t n,
                       size_t *cap) {
  size_t c = *cap ? 2 * *cap : 4;
  void *k = jr_alloc(r, c * key_size);
  jval *v = jr_alloc(r, c * sizeof *v);
  if (n) {
    memcpy(k, keys, n * key_size);
    memcpy(v, *vals, n * sizeof *v);
  }
  *vals = v;
  *cap = c;
  return k;
}

void jo_append(jrender *r, jobject *o, const jstr *key, jval v) {
  if (o->n == o->cap)
    o->keys = jr_reserve_pairs(r, o->keys, sizeof *o->keys, &o->vals, o->n, &o->cap);
  o->keys[o->n] = key;
  o->vals[o->n++] = v;
}

int jv_truthy(jval v) {
  switch (v.kind) {
  case JV_UNDEFINED:
  case JV_NULL:
    return 0;
  case JV_BOOL:
    return v.u.b;
  case JV_INT:
  case JV_FLOAT:
    return v.u.num != 0 && !isnan(v.u.num);
  case JV_STRING:
    return v.u.s->len > 0;
  case JV_ARRAY:
  case JV_TUPLE:
    return v.u.a->n > 0;
  case JV_OBJECT:
    return v.u.o->n > 0;
  case JV_NAMESPACE:
  case JV_FUNCTION:
    return 1;
  }
  return 0;
}

int jv_is_array(jval v) {
  return v.kind == JV_ARRAY || v.kind == JV_TUPLE;
}

int jv_is_number(jval v) {
  return v.kind == JV_INT || v.kind == JV_FLOAT;
}

const char *jv_kind_name(jkind kind) {
  static const char *names[] = {"undefined", "none",  "boolean", "integer",   "float",   "string",
                                "array",     "tuple", "object",  "namespace", "function"};
  return names[kind];
}

/* Integer-like keys ("0", "17", below 2^32 - 1) come first, ascending, as Object.entries
 * orders them; a key given twice keeps its first place and its last value (JSON.parse). */
static int array_index(const char *key, uint32_t *index) {
  size_t n = strlen(key);
  if (!n || n > 10 || (n > 1 && key[0] == '0'))
    return 0;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (key[i] < '0' || key[i] > '9')
      return 0;
    v = v * 10 + (uint64_t)(key[i] - '0');
  }
  if (v >= 0xFFFFFFFFu)
    return 0;
  *index = (uint32_t)v;
  return 1;
}

static void check_utf8(jrender *r, const char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    uint32_t c;
    size_t k = ju_decode(s, len, i, &c);
    if (!k)
      jfail(r, (jpos){0, 0}, "a string of the variables is not valid UTF-8 (byte %zu: '%.20s')", i,
            s);
    i += k;
  }
}

jval jv_from_json(jrender *r, const cJSON *json) {
  if (cJSON_IsNull(json))
    return jv_null();
  if (cJSON_IsBool(json))
    return jv_bool(cJSON_IsTrue(json));
  if (cJSON_IsNumber(json)) {
    double v = json->valuedouble;
    return v == floor(v) && isfinite(v) ? jv_int(v) : jv_float(v);
  }
  if (cJSON_IsString(json)) {
    size_t len = strlen(json->valuestring);
    check_utf8(r, json->valuestring, len);
    return jv_str(r, json->valuestring, len);
  }
  if (cJSON_IsArray(json)) {
    jval a = jv_array(r, JV_ARRAY, (size_t)cJSON_GetArraySize(json));
    for (const cJSON *item = json->child; item; item = item->next)
      ja_push(r, a.u.a, jv_from_json(r, item));
    return a;
  }
  if (cJSON_IsObject(json)) {
    jval o = jv_object(r, JV_OBJECT);
    /* integer-like keys, ascending (a selection sort: objects are small) */
    int64_t last = -1;
    for (;;) {
      int64_t next = -1;
      for (const cJSON *item = json->child; item; item = item->next) {
        uint32_t index;
        if (array_index(item->string, &index) && (int64_t)index > last &&
            (next < 0 || (int64_t)index < next))
          next = index;
      }
      if (next < 0)
        break;
      for (const cJSON *item = json->child; item; item = item->next) {
        uint32_t index;
        if (array_index(item->string, &index) && (int64_t)index == next)
          jo_set(r, o.u.o, item->string, strlen(item->string), jv_from_json(r, item));
      }
      last = next;
    }
    for (const cJSON *item = json->child; item; item = item->next) {
      uint32_t index;
      if (array_index(item->string, &index))
        continue;
      size_t len = strlen(item->string);
      check_utf8(r, item->string, len);
      jo_set(r, o.u.o, item->string, len, jv_from_json(r, item));
    }
    return o;
  }
  return jv_undefined();
}

/* ---- equality ---- */

static int is_nullish(jval v) {
  return v.kind == JV_UNDEFINED || v.kind == JV_NULL;
}

static int is_reference(jval v) {
  return v.kind >= JV_ARRAY;
}

int jv_strict_equal(jval a, jval b) {
  if (jv_is_number(a) && jv_is_number(b))
    return a.u.num == b.u.num;
  if (a.kind != b.kind && !(jv_is_array(a) && jv_is_array(b)))
    return 0;
  switch (a.kind) {
  case JV_UNDEFINED:
  case JV_NULL:
    return 1;
  case JV_BOOL:
    return a.u.b == b.u.b;
  case JV_STRING:
    return a.u.s->len == b.u.s->len && !memcmp(a.u.s->data, b.u.s->data, a.u.s->len);
  case JV_ARRAY:
  case JV_TUPLE:
    return a.u.a == b.u.a;
  case JV_OBJECT:
  case JV_NAMESPACE:
    return a.u.o == b.u.o;
  default:
    return a.u.f == b.u.f;
  }
}

/* JavaScript's == between the two values' payloads. */
int jv_loose_equal(jrender *r, jpos at, jval a, jval b) {
  if (is_nullish(a) || is_nullish(b))
    return is_nullish(a) && is_nullish(b);
  if (a.kind == JV_FUNCTION || b.kind == JV_FUNCTION)
    jfail(r, at, "cannot compare functions");
  if (is_reference(a) && is_reference(b))
    return jv_strict_equal(a, b);
  if (is_reference(a) || is_reference(b))
    jfail(r, at, "comparing a%s %s with a %s is not supported", a.kind == JV_ARRAY ? "n" : "",
          jv_kind_name(a.kind), jv_kind_name(b.kind));
  if (a.kind == JV_STRING || b.kind == JV_STRING) {
    if (a.kind != b.kind)
      jfail(r, at, "comparing a %s with a %s is not supported", jv_kind_name(a.kind),
            jv_kind_name(b.kind));
    return jv_strict_equal(a, b);
  }
  double x = a.kind == JV_BOOL ? a.u.b : a.u.num, y = b.kind == JV_BOOL ? b.u.b : b.u.num;
  return x == y;
}

/* ---- text ---- */

void jb_init(jbuf *b, jrender *r, size_t limit) {
  *b = (jbuf){.r = r, .limit = limit};
}

void jb_add(jbuf *b, const char *s, size_t len) {
  if (!len)
    return;
  if (b->limit && (len > b->limit || b->len > b->limit - len)) {
    snprintf(b->r->message, sizeof b->r->message,
             "the rendered text passed %zu bytes (the output limit)", b->limit);
    longjmp(b->r->fail, 1);
  }
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + len + 1)
      cap *= 2;
    char *data = jr_alloc(b->r, cap);
    if (b->len)
      memcpy(data, b->data, b->len);
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, len);
  b->len += len;
  b->data[b->len] = 0;
}

void jb_addc(jbuf *b, const char *s) {
  jb_add(b, s, strlen(s));
}

jval jb_value(jbuf *b) {
  return jv_str(b->r, b->data ? b->data : "", b->len);
}

void jv_format_number(double v, char out[40]) {
  if (isnan(v)) {
    strcpy(out, "NaN");
    return;
  }
  if (isinf(v)) {
    strcpy(out, v > 0 ? "Infinity" : "-Infinity");
    return;
  }
  if (v == 0) {
    strcpy(out, "0");
    return;
  }
  /* the fewest significant digits that read back as v (ECMAScript's Number::toString) */
  char e[40];
  int p = 0;
  for (; p < 17; p++) {
    snprintf(e, sizeof e, "%.*e", p, v);
    if (strtod(e, NULL) == v)
      break;
  }
  char digits[24];
  size_t k = 0;
  const char *c = e + (v < 0);
  for (; *c && *c != 'e'; c++)
    if (*c >= '0' && *c <= '9')
      digits[k++] = *c;
  digits[k] = 0;
  int n = atoi(c + 1) + 1; /* the decimal point sits after n digits */
  char *o = out;
  if (v < 0)
    *o++ = '-';
  if ((int)k <= n && n <= 21) {
    o += sprintf(o, "%s", digits);
    for (int z = 0; z < n - (int)k; z++)
      *o++ = '0';
    *o = 0;
  } else if (0 < n && n <= 21) {
    sprintf(o, "%.*s.%s", n, digits, digits + n);
  } else if (-6 < n && n <= 0) {
    o += sprintf(o, "0.");
    for (int z = 0; z < -n; z++)
      *o++ = '0';
    sprintf(o, "%s", digits);
  } else {
    int exp = n - 1;
    if (k == 1)
      sprintf(o, "%se%c%d", digits, exp < 0 ? '-' : '+', abs(exp));
    else
      sprintf(o, "%c.%se%c%d", digits[0], digits + 1, exp < 0 ? '-' : '+', abs(exp));
  }
}

/* FloatValue#toString: an integral float keeps ".0" (toFixed(1)). */
static void format_float(double v, char out[40]) {
  if (v == 0 && signbit(v))
    strcpy(out, "-0.0");
  else if (isfinite(v) && v == floor(v) && fabs(v) < 1e21)
    snprintf(out, 40, "%.1f", v);
  else
    jv_format_number(v, out);
}

void jv_write_plain(jbuf *b, jpos at, jval v) {
  char num[40];
  switch (v.kind) {
  case JV_INT:
  case JV_FLOAT:
    jv_format_number(v.u.num, num);
    jb_addc(b, num);
    return;
  case JV_BOOL:
    jb_addc(b, v.u.b ? "true" : "false");
    return;
  case JV_STRING:
    jb_add(b, v.u.s->data, v.u.s->len);
    return;
  case JV_ARRAY: /* Array#toString: each item's toString, joined by commas */
    for (size_t i = 0; i < v.u.a->n; i++) {
      jval item = v.u.a->items[i];
      if (i)
        jb_add(b, ",", 1);
      if (item.kind == JV_NULL || item.kind == JV_UNDEFINED)
        jb_addc(b, item.kind == JV_NULL ? "null" : "undefined");
      else
        jv_write(b, at, item);
    }
    return;
  case JV_OBJECT:
  case JV_NAMESPACE: /* a Map's toString */
    jb_addc(b, "[object Map]");
    return;
  default:
    jfail(b->r, at, "cannot join a %s to a string", jv_kind_name(v.kind));
  }
}

void jv_write(jbuf *b, jpos at, jval v) {
  char num[40];
  switch (v.kind) {
  case JV_UNDEFINED:
  case JV_NULL:
    return;
  case JV_FLOAT:
    format_float(v.u.num, num);
    jb_addc(b, num);
    return;
  case JV_ARRAY:
  case JV_TUPLE:
  case JV_OBJECT:
  case JV_NAMESPACE:
    jv_write_json(b, at, v, &(jjson_style){0}, 0, 0);
    return;
  case JV_FUNCTION:
    jfail(b->r, at, "cannot print a function");
  default:
    jv_write_plain(b, at, v);
  }
}

static void write_json_string(jbuf *b, const char *s, size_t len, int ensure_ascii) {
  jb_add(b, "\"", 1);
  size_t run = 0; /* bytes copied as they are */
  for (size_t i = 0; i < len;) {
    uint32_t c;
    size_t k = ju_decode(s, len, i, &c);
    char esc[16] = "";
    if (c == '"' || c == '\\')
      snprintf(esc, sizeof esc, "\\%c", (char)c);
    else if (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
      snprintf(esc, sizeof esc, "\\%c",
               "bfnrt"[c == '\b'   ? 0
                       : c == '\f' ? 1
                       : c == '\n' ? 2
                       : c == '\r' ? 3
                                   : 4]);
    else if (c < 0x20 || (ensure_ascii && c >= 0x7F && c < 0x10000))
      snprintf(esc, sizeof esc, "\\u%04x", (unsigned)c);
    else if (ensure_ascii && c >= 0x10000)
      snprintf(esc, sizeof esc, "\\u%04x\\u%04x", (unsigned)(0xD800 + ((c - 0x10000) >> 10)),
               (unsigned)(0xDC00 + ((c - 0x10000) & 0x3FF)));
    if (esc[0]) {
      jb_add(b, s + i - run, run);
      run = 0;
      jb_addc(b, esc);
    } else {
      run += k;
    }
    i += k;
  }
  jb_add(b, s + len - run, run);
  jb_add(b, "\"", 1);
}

void jv_write_json(jbuf *b, jpos at, jval v, const jjson_style *style, int depth,
                   int undefined_as_null) {
  char num[40];
  const char *item_sep = style->item_sep ? style->item_sep : style->indent ? "," : ", ";
  const char *key_sep = style->key_sep ? style->key_sep : ": ";
  switch (v.kind) {
  case JV_NULL:
    jb_addc(b, "null");
    return;
  case JV_UNDEFINED:
    jb_addc(b, undefined_as_null ? "null" : "undefined");
    return;
  case JV_INT:
  case JV_FLOAT:
    if (!isfinite(v.u.num)) {
      jb_addc(b, "null");
      return;
    }
    jv_format_number(v.u.num, num);
    jb_addc(b, num);
    return;
  case JV_BOOL:
    jb_addc(b, v.u.b ? "true" : "false");
    return;
  case JV_STRING:
    write_json_string(b, v.u.s->data, v.u.s->len, style->ensure_ascii);
    return;
  case JV_ARRAY:
  case JV_OBJECT:
  case JV_NAMESPACE: {
    if (depth > 512)
      jfail(b->r, at, "tojson: nested deeper than 512");
    int array = v.kind == JV_ARRAY;
    size_t n = array ? v.u.a->n : v.u.o->n;
    if (!array && n > 1 && style->sort_keys)
      jfail(b->r, at,
            "tojson(sort_keys=true) of an object of several keys is not supported "
            "(the reference orders them by the locale's collation)");
    jb_addc(b, array ? "[" : "{");
    for (size_t i = 0; i < n; i++) {
      if (i)
        jb_addc(b, item_sep);
      if (style->indent) {
        jb_addc(b, "\n");
        for (int d = 0; d < (depth + 1) * style->indent; d++)
          jb_addc(b, " ");
      }
      if (array) {
        jv_write_json(b, at, v.u.a->items[i], style, depth + 1, undefined_as_null);
      } else {
        write_json_string(b, v.u.o->keys[i]->data, v.u.o->keys[i]->len, style->ensure_ascii);
        jb_addc(b, key_sep);
        jv_write_json(b, at, v.u.o->vals[i], style, depth + 1, undefined_as_null);
      }
    }
    if (style->indent && n) {
      jb_addc(b, "\n");
      for (int d = 0; d < depth * style->indent; d++)
        jb_addc(b, " ");
    }
    jb_addc(b, array ? "]" : "}");
    return;
  }
  case JV_TUPLE:
  case JV_FUNCTION:
    jfail(b->r, at, "cannot convert a %s to JSON", jv_kind_name(v.kind));
  }
}

/* ---- strings as JavaScript sees them ---- */

size_t ju_decode(const char *s, size_t len, size_t i, uint32_t *c) {
  utf8proc_int32_t cp;
  utf8proc_ssize_t k =
      utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
  if (k <= 0 || cp < 0) {
    *c = 0xFFFD;
    return 0;
  }
  *c = (uint32_t)cp;
  return (size_t)k;
}

int ju_is_space(uint32_t c) {
  if (c <= 32)
    return c == 32 || (c >= 9 && c <= 13);
  return c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

size_t ju_utf16_length(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    uint32_t c;
    size_t k = ju_decode(s, len, i, &c);
    i += k ? k : 1;
    n += c >= 0x10000 ? 2 : 1;
  }
  return n;
}

/* The UTF-16 code unit at index `unit` of character c. */
static uint32_t utf16_unit(uint32_t c, int unit) {
  if (c < 0x10000)
    return c;
  return unit ? 0xDC00 + ((c - 0x10000) & 0x3FF) : 0xD800 + ((c - 0x10000) >> 10);
}

int ju_compare(const char *a, size_t alen, const char *b, size_t blen) {
  size_t i = 0, j = 0;
  int ui = 0, uj = 0; /* which unit of a surrogate pair */
  while (i < alen && j < blen) {
    uint32_t ca, cb;
    size_t ka = ju_decode(a, alen, i, &ca), kb = ju_decode(b, blen, j, &cb);
    uint32_t x = utf16_unit(ca, ui), y = utf16_unit(cb, uj);
    if (x != y)
      return x < y ? -1 : 1;
    if (ca >= 0x10000 && !ui)
      ui = 1;
    else {
      ui = 0;
      i += ka ? ka : 1;
    }
    if (cb >= 0x10000 && !uj)
      uj = 1;
    else {
      uj = 0;
      j += kb ? kb : 1;
    }
  }
  return (i < alen) - (j < blen);
}

void ju_trim(const char *s, size_t len, int start, int end, size_t *from, size_t *to) {
  size_t i = 0, j = len;
  uint32_t c;
  size_t k;
  while (start && i < len && (k = ju_decode(s, len, i, &c)) && ju_is_space(c))
    i += k;
  while (end && j > i) {
    size_t back = j - 1;
    while (back > i && ((unsigned char)s[back] & 0xC0) == 0x80)
      back--;
    if (!ju_decode(s, len, back, &c) || !ju_is_space(c))
      break;
    j = back;
  }
  *from = i;
  *to = j;
}

/* Characters whose JavaScript case mapping is more than one character or depends on the
 * context (SpecialCasing.txt): utf8proc maps one to one, so these are refused rather than
 * mapped differently. */
static int special_case(uint32_t c, int upper) {
  if (!upper)
    return c == 0x130 || c == 0x3A3;
  return c == 0xDF || c == 0x149 || c == 0x1F0 || c == 0x390 || c == 0x3B0 || c == 0x587 ||
         (c >= 0x1E96 && c <= 0x1E9A) || (c >= 0x1F50 && c <= 0x1FFF) ||
         (c >= 0xFB00 && c <= 0xFB17);
}

jval ju_case(jrender *r, jpos at, jval s, int upper) {
  jbuf b;
  jb_init(&b, r, 0);
  const char *d = s.u.s->data;
  size_t len = s.u.s->len;
  for (size_t i = 0; i < len;) {
    uint32_t c;
    size_t k = ju_decode(d, len, i, &c);
    if (special_case(c, upper))
      jfail(r, at,
            "%s() of U+%04X is not supported (JavaScript maps it to several characters, or by its "
            "neighbours)",
            upper ? "upper" : "lower", (unsigned)c);
    utf8proc_int32_t m =
        upper ? utf8proc_toupper((utf8proc_int32_t)c) : utf8proc_tolower((utf8proc_int32_t)c);
    utf8proc_uint8_t out[4];
    utf8proc_ssize_t n = utf8proc_encode_char(m, out);
    jb_add(&b, (const char *)out, (size_t)n);
    i += k;
  }
  return jb_value(&b);
}
