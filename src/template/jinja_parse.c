/* jinja_parse.c: tokens to a syntax tree, with @huggingface/jinja's grammar (its precedence
 * included: a filter binds tighter than a unary minus, `is` tighter than `*`). What the
 * engine does not implement is refused here, with its line and column: {% call %}, argument
 * unpacking (*args, **kwargs), a macro that reads varargs, kwargs or caller, and any filter or
 * test name the built-ins do not have. Nesting is bounded (a hostile template cannot exhaust
 * the stack). Errors longjmp out: everything made so far is in the template's arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

/* The deepest a tree may be, counted along the parse: blocks, brackets, unary operators and
 * each link of a left-to-right chain (a + b + c is two deep): rendering recurses as deep. */
enum { MAX_NESTING = 128 };

typedef struct jparser {
  jarena *arena;
  const jtok *t;
  size_t n, cur;
  int nesting;
  int in_macro;
  int loops; /* for-loop bodies open around the current statement (in this macro) */
  jmp_buf fail;
  char *message;
  size_t cap;
} jparser;

static _Noreturn void perr(jparser *p, jpos at, const char *fmt, ...) {
  int k = snprintf(p->message, p->cap, "line %d, column %d: ", at.line, at.col);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->message + k, p->cap - (size_t)k, fmt, ap);
  va_end(ap);
  longjmp(p->fail, 1);
}

static jpos here(const jparser *p) {
  if (p->cur < p->n)
    return p->t[p->cur].pos;
  return p->n ? p->t[p->n - 1].pos : (jpos){1, 1};
}

static const jtok *peek(jparser *p) {
  if (p->cur >= p->n)
    perr(p, here(p), "the template ends in the middle of a tag or block");
  return &p->t[p->cur];
}

static int is(const jparser *p, jtok_type type) {
  return p->cur < p->n && p->t[p->cur].type == type;
}

static int is_name_at(const jparser *p, size_t k, const char *name) {
  return p->cur + k < p->n && p->t[p->cur + k].type == JT_NAME &&
         !strcmp(p->t[p->cur + k].text, name);
}

static int is_name(const jparser *p, const char *name) {
  return is_name_at(p, 0, name);
}

static const char *type_text(jtok_type t) {
  static const char *names[] = {"text",        "number", "string",       "name",   "'='",
                                "'('",         "')'",    "'{%'",         "'%}'",   "'{{'",
                                "'}}'",        "'['",    "']'",          "'{'",    "'}'",
                                "','",         "'.'",    "':'",          "'|'",    "an operator",
                                "an operator", "'**'",   "a comparison", "a sign", "a comment"};
  return names[t];
}

static const jtok *expect(jparser *p, jtok_type type, const char *what) {
  const jtok *t = peek(p);
  if (t->type != type)
    perr(p, t->pos, "expected %s, found %s%s%.*s%s", what, type_text(t->type), t->len ? " '" : "",
         (int)(t->len > 40 ? 40 : t->len), t->text, t->len ? "'" : "");
  p->cur++;
  return t;
}

static void expect_name(jparser *p, const char *name) {
  if (!is_name(p, name))
    perr(p, here(p), "expected '%s'", name);
  p->cur++;
}

static int is_statement(const jparser *p, const char *const *names) {
  if (!is(p, JT_OPEN_STMT))
    return 0;
  for (; *names; names++)
    if (is_name_at(p, 1, *names))
      return 1;
  return 0;
}

static jnode *node(jparser *p, jnode_type type, jpos at) {
  jnode *n = ja_alloc(p->arena, sizeof *n);
  if (!n)
    perr(p, at, "out of memory");
  n->type = type;
  n->pos = at;
  return n;
}

/* A growing list of nodes. */
typedef struct jlist {
  jnode **items;
  size_t n, cap;
} jlist;

static void list_push(jparser *p, jlist *l, jnode *item) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 4;
    jnode **items = ja_alloc(p->arena, cap * sizeof *items);
    if (!items)
      perr(p, item->pos, "out of memory");
    if (l->n)
      memcpy(items, l->items, l->n * sizeof *items);
    l->items = items;
    l->cap = cap;
  }
  l->items[l->n++] = item;
}

static void enter(jparser *p) {
  if (++p->nesting > MAX_NESTING)
    perr(p, here(p), "nested more than %d deep", MAX_NESTING);
}

/* One more link of a chain: as deep as one more level. */
static void link(jparser *p, int *links) {
  enter(p);
  (*links)++;
}

static jnode *parse_any(jparser *p);
static jnode *parse_expression(jparser *p);
static jnode *parse_primary(jparser *p);

/* Statements until one of `names` opens a tag. */
static void parse_body(jparser *p, const char *const *names, jnode ***body, size_t *n) {
  jlist l = {0};
  while (!is_statement(p, names)) {
    if (p->cur >= p->n) {
      char all[96] = "";
      for (const char *const *k = names; *k; k++)
        snprintf(all + strlen(all), sizeof all - strlen(all), "%s{%% %s %%}",
                 k == names ? "" : " or ", *k);
      perr(p, here(p), "the template ends before %s", all);
    }
    list_push(p, &l, parse_any(p));
  }
  *body = l.items;
  *n = l.n;
}

static jnode *binary(jparser *p, jop op, jpos at, jnode *a, jnode *b) {
  jnode *n = node(p, JN_BINARY, at);
  n->op = op;
  n->a = a;
  n->b = b;
  return n;
}

static jnode *parse_sequence(jparser *p, int primary) {
  jpos at = here(p);
  jnode *first = primary ? parse_primary(p) : parse_expression(p);
  if (!is(p, JT_COMMA))
    return first;
  jlist l = {0};
  list_push(p, &l, first);
  while (is(p, JT_COMMA)) {
    p->cur++;
    list_push(p, &l, primary ? parse_primary(p) : parse_expression(p));
  }
  jnode *t = node(p, JN_TUPLE, at);
  t->args = l.items;
  t->n_args = l.n;
  return t;
}

/* (a, b=1, ...): in "parameters" mode names with optional defaults. */
static void parse_args(jparser *p, int parameters, jnode ***args, size_t *n) {
  expect(p, JT_LPAREN, "'('");
  jlist l = {0};
  int keyword_seen = 0;
  while (!is(p, JT_RPAREN)) {
    jpos at = here(p);
    if (is(p, JT_POW) || (is(p, JT_MUL) && !strcmp(peek(p)->text, "*")))
      perr(p, at, "argument unpacking (*args, **kwargs) is not supported");
    jnode *arg = parse_expression(p);
    if (is(p, JT_EQUALS)) {
      p->cur++;
      if (arg->type != JN_NAME)
        perr(p, at, parameters ? "expected a parameter name" : "expected a keyword argument name");
      jnode *kw = node(p, JN_KWARG, at);
      kw->str = arg->str;
      kw->len = arg->len;
      kw->a = parse_expression(p);
      arg = kw;
    }
    if (parameters) {
      if (arg->type != JN_NAME && arg->type != JN_KWARG)
        perr(p, at, "expected a parameter name");
      for (size_t k = 0; k < l.n; k++)
        if (!strcmp(l.items[k]->str, arg->str))
          perr(p, at, "parameter '%s' named twice", arg->str);
    }
    if (arg->type == JN_KWARG)
      keyword_seen = 1;
    else if (keyword_seen)
      perr(p, at,
           parameters ? "a parameter without a default follows one with a default"
                      : "a positional argument follows a keyword argument");
    list_push(p, &l, arg);
    if (is(p, JT_COMMA))
      p->cur++;
    else if (!is(p, JT_RPAREN))
      peek(p); /* fails at the end */
  }
  p->cur++;
  *args = l.items;
  *n = l.n;
}

static jnode *parse_call(jparser *p, jnode *callee);

static jnode *parse_member(jparser *p, jnode *object) {
  int links = 0;
  while (is(p, JT_DOT) || is(p, JT_LBRACKET)) {
    jpos at = here(p);
    link(p, &links);
    int computed = is(p, JT_LBRACKET);
    p->cur++;
    jnode *property;
    if (computed) {
      jnode *parts[3] = {0};
      size_t n = 0;
      int slice = 0;
      while (!is(p, JT_RBRACKET)) {
        if (n == 3)
          perr(p, at, "a slice takes at most three parts");
        if (is(p, JT_COLON)) {
          parts[n++] = NULL;
          p->cur++;
          slice = 1;
        } else {
          parts[n++] = parse_expression(p);
          if (is(p, JT_COLON)) {
            p->cur++;
            slice = 1;
          }
        }
      }
      if (!n)
        perr(p, at, "[] needs an index");
      if (slice) {
        property = node(p, JN_SLICE, at);
        property->a = parts[0];
        property->b = n > 1 ? parts[1] : NULL;
        property->c = n > 2 ? parts[2] : NULL;
      } else {
        property = parts[0];
      }
      expect(p, JT_RBRACKET, "']'");
    } else {
      property = parse_primary(p);
      if (property->type != JN_NAME && property->type != JN_INT)
        perr(p, at, "expected a name or an integer after '.'");
    }
    jnode *m = node(p, JN_MEMBER, at);
    m->a = object;
    m->b = property;
    m->flag = computed;
    object = m;
  }
  p->nesting -= links;
  return object;
}

static jnode *parse_call(jparser *p, jnode *callee) {
  enter(p);
  jnode *c = node(p, JN_CALL, callee->pos);
  c->a = callee;
  parse_args(p, 0, &c->args, &c->n_args);
  jnode *e = parse_member(p, c);
  if (is(p, JT_LPAREN))
    e = parse_call(p, e);
  p->nesting--;
  return e;
}

static jnode *parse_call_member(jparser *p) {
  jnode *m = parse_member(p, parse_primary(p));
  return is(p, JT_LPAREN) ? parse_call(p, m) : m;
}

static jnode *parse_unary_sign(jparser *p) {
  if (p->cur < p->n && (is(p, JT_UNARY) || is(p, JT_ADD)) &&
      (!strcmp(peek(p)->text, "-") || !strcmp(peek(p)->text, "+"))) {
    enter(p);
    jnode *u = node(p, JN_UNARY, here(p));
    u->op = peek(p)->text[0] == '-' ? JO_SUB : JO_ADD;
    p->cur++;
    u->a = parse_unary_sign(p);
    p->nesting--;
    return u;
  }
  return parse_call_member(p);
}

/* name(args): parse_call goes on to members and further calls, which a filter cannot be */
static jnode *filter_call(jparser *p, jnode *name) {
  jnode *call = parse_call(p, name);
  if (call->type != JN_CALL || call->a != name)
    perr(p, call->pos, "a filter's arguments cannot be followed by '.', '[' or '('");
  return call;
}

static jnode *parse_filter(jparser *p) {
  jnode *operand = parse_unary_sign(p);
  int links = 0;
  while (is(p, JT_PIPE)) {
    jpos at = here(p);
    link(p, &links);
    p->cur++;
    jnode *filter = parse_primary(p);
    if (filter->type != JN_NAME)
      perr(p, at, "expected a filter name after '|'");
    if (!jb_known_filter(filter->str))
      perr(p, filter->pos, "unknown filter '%s'", filter->str);
    if (is(p, JT_LPAREN))
      filter = filter_call(p, filter);
    jnode *f = node(p, JN_FILTER, at);
    f->a = operand;
    f->b = filter;
    operand = f;
  }
  p->nesting -= links;
  return operand;
}

static jnode *parse_test(jparser *p) {
  jnode *operand = parse_filter(p);
  int links = 0;
  while (is_name(p, "is")) {
    jpos at = here(p);
    link(p, &links);
    p->cur++;
    int negate = is_name(p, "not");
    p->cur += (size_t)negate;
    jnode *test = parse_primary(p);
    if (test->type != JN_NAME)
      perr(p, at, "expected a test name after 'is'");
    if (!jb_known_test(test->str))
      perr(p, test->pos, "unknown test '%s'", test->str);
    jnode *t = node(p, JN_TEST, at);
    t->a = operand;
    t->str = test->str;
    t->flag = negate;
    operand = t;
  }
  p->nesting -= links;
  return operand;
}

static jnode *parse_power(jparser *p) {
  jnode *left = parse_test(p);
  int links = 0;
  while (is(p, JT_POW)) {
    link(p, &links);
    jpos at = here(p);
    p->cur++;
    left = binary(p, JO_POW, at, left, parse_test(p));
  }
  p->nesting -= links;
  return left;
}

static jnode *parse_multiplicative(jparser *p) {
  jnode *left = parse_power(p);
  int links = 0;
  while (is(p, JT_MUL)) {
    link(p, &links);
    const jtok *t = peek(p);
    p->cur++;
    jop op = !strcmp(t->text, "*")    ? JO_MUL
             : !strcmp(t->text, "/")  ? JO_DIV
             : !strcmp(t->text, "//") ? JO_FLOORDIV
                                      : JO_MOD;
    left = binary(p, op, t->pos, left, parse_power(p));
  }
  p->nesting -= links;
  return left;
}

static jnode *parse_additive(jparser *p) {
  jnode *left = parse_multiplicative(p);
  int links = 0;
  while (is(p, JT_ADD)) {
    link(p, &links);
    const jtok *t = peek(p);
    p->cur++;
    jop op = t->text[0] == '+' ? JO_ADD : t->text[0] == '-' ? JO_SUB : JO_CONCAT;
    left = binary(p, op, t->pos, left, parse_multiplicative(p));
  }
  p->nesting -= links;
  return left;
}

static jnode *parse_comparison(jparser *p) {
  jnode *left = parse_additive(p);
  int links = 0;
  for (;;) {
    jpos at = here(p);
    jop op;
    if (is_name(p, "not") && is_name_at(p, 1, "in")) {
      op = JO_NOT_IN;
      p->cur += 2;
    } else if (is_name(p, "in")) {
      op = JO_IN;
      p->cur++;
    } else if (is(p, JT_COMPARE)) {
      const char *t = peek(p)->text;
      op = !strcmp(t, "==")   ? JO_EQ
           : !strcmp(t, "!=") ? JO_NE
           : !strcmp(t, "<")  ? JO_LT
           : !strcmp(t, ">")  ? JO_GT
           : !strcmp(t, "<=") ? JO_LE
                              : JO_GE;
      p->cur++;
    } else {
      p->nesting -= links;
      return left;
    }
    link(p, &links);
    left = binary(p, op, at, left, parse_additive(p));
  }
}

static jnode *parse_not(jparser *p) {
  if (!is_name(p, "not"))
    return parse_comparison(p);
  enter(p);
  jnode *u = node(p, JN_UNARY, here(p));
  u->op = JO_NOT;
  p->cur++;
  u->a = parse_not(p);
  p->nesting--;
  return u;
}

static jnode *parse_and(jparser *p) {
  jnode *left = parse_not(p);
  int links = 0;
  while (is_name(p, "and")) {
    link(p, &links);
    jpos at = here(p);
    p->cur++;
    left = binary(p, JO_AND, at, left, parse_not(p));
  }
  p->nesting -= links;
  return left;
}

static jnode *parse_or(jparser *p) {
  jnode *left = parse_and(p);
  int links = 0;
  while (is_name(p, "or")) {
    link(p, &links);
    jpos at = here(p);
    p->cur++;
    left = binary(p, JO_OR, at, left, parse_and(p));
  }
  p->nesting -= links;
  return left;
}

static jnode *parse_expression(jparser *p) {
  enter(p);
  jnode *a = parse_or(p);
  if (is_name(p, "if")) {
    jpos at = here(p);
    p->cur++;
    jnode *test = parse_or(p);
    if (is_name(p, "else")) {
      p->cur++;
      jnode *t = node(p, JN_TERNARY, at);
      t->a = test;
      t->b = a;
      t->c = parse_expression(p);
      a = t;
    } else {
      jnode *s = node(p, JN_SELECT, at);
      s->a = a;
      s->b = test;
      a = s;
    }
  }
  p->nesting--;
  return a;
}

static jnode *parse_primary(jparser *p) {
  const jtok *t = peek(p);
  p->cur++;
  switch (t->type) {
  case JT_NUMBER: {
    jnode *n = node(p, strchr(t->text, '.') ? JN_FLOAT : JN_INT, t->pos);
    n->num = strtod(t->text, NULL);
    return n;
  }
  case JT_STRING: {
    size_t len = t->len, k = p->cur;
    while (k < p->n && p->t[k].type == JT_STRING)
      len += p->t[k++].len;
    char *s = ja_alloc(p->arena, len + 1);
    if (!s)
      perr(p, t->pos, "out of memory");
    memcpy(s, t->text, t->len);
    for (size_t off = t->len; p->cur < k; p->cur++) {
      memcpy(s + off, p->t[p->cur].text, p->t[p->cur].len);
      off += p->t[p->cur].len;
    }
    jnode *n = node(p, JN_STRING, t->pos);
    n->str = s;
    n->len = len;
    return n;
  }
  case JT_NAME: {
    if (p->in_macro &&
        (!strcmp(t->text, "varargs") || !strcmp(t->text, "kwargs") || !strcmp(t->text, "caller")))
      perr(p, t->pos, "a macro's '%s' is not supported", t->text);
    jnode *n = node(p, JN_NAME, t->pos);
    n->str = t->text;
    n->len = t->len;
    return n;
  }
  case JT_LPAREN: {
    enter(p);
    jnode *e = parse_sequence(p, 0);
    expect(p, JT_RPAREN, "')'");
    p->nesting--;
    return e;
  }
  case JT_LBRACKET:
  case JT_LBRACE: {
    enter(p);
    int object = t->type == JT_LBRACE;
    jtok_type close = object ? JT_RBRACE : JT_RBRACKET;
    jlist l = {0};
    while (!is(p, close)) {
      list_push(p, &l, parse_expression(p));
      if (object) {
        expect(p, JT_COLON, "':' between a key and its value");
        list_push(p, &l, parse_expression(p));
      }
      if (is(p, JT_COMMA))
        p->cur++;
      else if (!is(p, close))
        peek(p);
    }
    p->cur++;
    jnode *n = node(p, object ? JN_OBJECT : JN_ARRAY, t->pos);
    n->args = l.items;
    n->n_args = l.n;
    p->nesting--;
    return n;
  }
  default:
    perr(p, t->pos, "unexpected %s%s%.*s%s", type_text(t->type), t->len ? " '" : "",
         (int)(t->len > 40 ? 40 : t->len), t->text, t->len ? "'" : "");
  }
}

static const char *const END_IF[] = {"elif", "else", "endif", NULL};
static const char *const ENDIF[] = {"endif", NULL};
static const char *const END_FOR[] = {"endfor", "else", NULL};
static const char *const ENDFOR[] = {"endfor", NULL};
static const char *const ENDSET[] = {"endset", NULL};
static const char *const ENDMACRO[] = {"endmacro", NULL};
static const char *const ENDFILTER[] = {"endfilter", NULL};

static jnode *parse_if(jparser *p, jpos at) {
  enter(p);
  jnode *n = node(p, JN_IF, at);
  n->a = parse_expression(p);
  expect(p, JT_CLOSE_STMT, "'%}'");
  parse_body(p, END_IF, &n->body, &n->n_body);
  if (is_name_at(p, 1, "elif")) {
    jpos elif = p->t[p->cur + 1].pos;
    p->cur += 2;
    n->alt = ja_alloc(p->arena, sizeof *n->alt);
    if (!n->alt)
      perr(p, elif, "out of memory");
    n->alt[0] = parse_if(p, elif);
    n->n_alt = 1;
  } else if (is_name_at(p, 1, "else")) {
    p->cur += 2;
    expect(p, JT_CLOSE_STMT, "'%}'");
    parse_body(p, ENDIF, &n->alt, &n->n_alt);
  }
  p->nesting--;
  return n;
}

static void end_block(jparser *p, const char *name) {
  expect(p, JT_OPEN_STMT, "'{%'");
  expect_name(p, name);
  expect(p, JT_CLOSE_STMT, "'%}'");
}

static jnode *parse_statement(jparser *p) {
  expect(p, JT_OPEN_STMT, "'{%'");
  const jtok *name = peek(p);
  if (name->type != JT_NAME)
    perr(p, name->pos, "expected a statement name after '{%%'");
  p->cur++;
  jpos at = name->pos;
  const char *s = name->text;
  jnode *n;
  if (!strcmp(s, "set")) {
    n = node(p, JN_SET, at);
    n->a = parse_sequence(p, 0);
    if (n->a->type != JN_NAME && n->a->type != JN_TUPLE && n->a->type != JN_MEMBER)
      perr(p, at, "{%% set %%} assigns to a name, names or a namespace's attribute");
    if (is(p, JT_EQUALS)) {
      p->cur++;
      n->b = parse_sequence(p, 0);
    } else {
      expect(p, JT_CLOSE_STMT, "'=' or '%}'");
      enter(p);
      parse_body(p, ENDSET, &n->body, &n->n_body);
      p->nesting--;
      expect(p, JT_OPEN_STMT, "'{%'");
      expect_name(p, "endset");
    }
    expect(p, JT_CLOSE_STMT, "'%}'");
  } else if (!strcmp(s, "if")) {
    n = parse_if(p, at);
    end_block(p, "endif");
  } else if (!strcmp(s, "for")) {
    enter(p);
    n = node(p, JN_FOR, at);
    n->a = parse_sequence(p, 1);
    if (n->a->type != JN_NAME && n->a->type != JN_TUPLE)
      perr(p, at, "expected a name or names after 'for'");
    expect_name(p, "in");
    jnode *iterable = parse_expression(p);
    if (iterable->type == JN_SELECT) {
      n->b = iterable->a;
      n->c = iterable->b;
    } else {
      n->b = iterable;
    }
    expect(p, JT_CLOSE_STMT, "'%}'");
    p->loops++;
    parse_body(p, END_FOR, &n->body, &n->n_body);
    p->loops--;
    if (is_name_at(p, 1, "else")) {
      p->cur += 2;
      expect(p, JT_CLOSE_STMT, "'%}'");
      parse_body(p, ENDFOR, &n->alt, &n->n_alt);
    }
    p->nesting--;
    end_block(p, "endfor");
  } else if (!strcmp(s, "macro")) {
    if (p->in_macro)
      perr(p, at, "a macro defined inside a macro is not supported");
    n = node(p, JN_MACRO, at);
    jnode *name_node = parse_primary(p);
    if (name_node->type != JN_NAME)
      perr(p, at, "expected the macro's name");
    n->str = name_node->str;
    n->len = name_node->len;
    parse_args(p, 1, &n->args, &n->n_args);
    expect(p, JT_CLOSE_STMT, "'%}'");
    int loops = p->loops;
    p->in_macro = 1;
    p->loops = 0;
    enter(p);
    parse_body(p, ENDMACRO, &n->body, &n->n_body);
    p->nesting--;
    p->in_macro = 0;
    p->loops = loops;
    end_block(p, "endmacro");
  } else if (!strcmp(s, "break") || !strcmp(s, "continue")) {
    if (!p->loops)
      perr(p, at, "{%% %s %%} outside a for loop", s);
    n = node(p, s[0] == 'b' ? JN_BREAK : JN_CONTINUE, at);
    expect(p, JT_CLOSE_STMT, "'%}'");
  } else if (!strcmp(s, "filter")) {
    n = node(p, JN_FILTER_BLOCK, at);
    jnode *filter = parse_primary(p);
    if (filter->type != JN_NAME)
      perr(p, at, "expected a filter name after 'filter'");
    if (!jb_known_filter(filter->str))
      perr(p, filter->pos, "unknown filter '%s'", filter->str);
    n->a = is(p, JT_LPAREN) ? filter_call(p, filter) : filter;
    expect(p, JT_CLOSE_STMT, "'%}'");
    enter(p);
    parse_body(p, ENDFILTER, &n->body, &n->n_body);
    p->nesting--;
    end_block(p, "endfilter");
  } else if (!strcmp(s, "call")) {
    perr(p, at, "{%% call %%} is not supported");
  } else {
    perr(p, at, "unknown statement '%s'", s);
  }
  return n;
}

static jnode *parse_any(jparser *p) {
  const jtok *t = peek(p);
  switch (t->type) {
  case JT_COMMENT:
    p->cur++;
    return node(p, JN_COMMENT, t->pos);
  case JT_TEXT: {
    p->cur++;
    jnode *n = node(p, JN_TEXT, t->pos);
    n->str = t->text;
    n->len = t->len;
    return n;
  }
  case JT_OPEN_STMT:
    return parse_statement(p);
  case JT_OPEN_EXPR: {
    p->cur++;
    jnode *e = parse_expression(p);
    expect(p, JT_CLOSE_EXPR, "'}}'");
    return e;
  }
  default:
    perr(p, t->pos, "unexpected %s", type_text(t->type));
  }
}

int kvc__jinja_parse_tokens(jarena *arena, const jtok *tokens, size_t n, jnode ***body,
                            size_t *n_body, char *message, size_t cap) {
  jparser p = {.arena = arena, .t = tokens, .n = n, .message = message, .cap = cap};
  if (setjmp(p.fail))
    return -1;
  jlist l = {0};
  while (p.cur < p.n)
    list_push(&p, &l, parse_any(&p));
  *body = l.items;
  *n_body = l.n;
  return 0;
}
