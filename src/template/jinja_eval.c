/* jinja_eval.c: the interpreter. Statements write into an output buffer; expressions give
 * values. Scopes follow @huggingface/jinja: a for loop opens one scope for all its
 * iterations (a {% set %} in its body lasts from one iteration to the next, not after the
 * loop), a macro call opens one under the scope the macro was defined in, {% if %} opens
 * none. An iteration left by {% break %} or {% continue %} loses the text it wrote, as there.
 * Operators keep that renderer's rules (JavaScript's == between values, + joining a string to
 * a number); a mix of types it would print JavaScript's internals for is refused. */
#include <math.h>
#include <string.h>

#include "jinja_impl.h"

/* ---- scopes ---- */

jenv *ji_env_new(jrender *r, jenv *parent) {
  jenv *e = jr_alloc(r, sizeof *e);
  e->parent = parent;
  return e;
}

void ji_env_set(jrender *r, jenv *env, const char *name, jval v) {
  for (size_t i = 0; i < env->n; i++)
    if (!strcmp(env->names[i], name)) {
      env->vals[i] = v;
      return;
    }
  if (env->n == env->cap)
    env->names = jr_reserve_pairs(r, env->names, sizeof *env->names, &env->vals, env->n, &env->cap);
  env->names[env->n] = name;
  env->vals[env->n++] = v;
}

jval ji_env_get(const jenv *env, const char *name) {
  for (; env; env = env->parent)
    for (size_t i = 0; i < env->n; i++)
      if (!strcmp(env->names[i], name))
        return env->vals[i];
  return jv_undefined();
}

static void step(jrender *r, jpos at) {
  if (++r->steps > r->max_steps)
    jfail(r, at, "the template took more than %zu steps (the work limit)", r->max_steps);
}

/* ---- operators ---- */

static jval concat(jrender *r, jpos at, jval a, jval b) {
  jbuf out;
  jb_init(&out, r, 0);
  if (a.kind != JV_UNDEFINED)
    jv_write_plain(&out, at, a);
  if (b.kind != JV_UNDEFINED)
    jv_write_plain(&out, at, b);
  return jb_value(&out);
}

static int contains(jval haystack, jval needle) {
  if (jv_is_array(haystack)) {
    for (size_t i = 0; i < haystack.u.a->n; i++)
      if (jv_strict_equal(haystack.u.a->items[i], needle))
        return 1;
    return 0;
  }
  if (haystack.kind == JV_STRING) {
    const jstr *h = haystack.u.s, *n = needle.u.s;
    if (!n->len)
      return 1;
    for (size_t i = 0; i + n->len <= h->len; i++)
      if (!memcmp(h->data + i, n->data, n->len))
        return 1;
    return 0;
  }
  return jo_get(haystack.u.o, needle.u.s->data, needle.u.s->len) != NULL;
}

static const char *op_text(jop op) {
  static const char *names[] = {"",   "and", "or", "not", "in", "not in", "==", "!=", "<", ">",
                                "<=", ">=",  "+",  "-",   "~",  "*",      "/",  "//", "%", "**"};
  return names[op];
}

static jval binary(jrender *r, const jnode *n, jenv *env) {
  jval a = ji_eval(r, n->a, env);
  if (n->op == JO_AND)
    return jv_truthy(a) ? ji_eval(r, n->b, env) : a;
  if (n->op == JO_OR)
    return jv_truthy(a) ? a : ji_eval(r, n->b, env);
  jval b = ji_eval(r, n->b, env);
  jop op = n->op;
  if (op == JO_EQ || op == JO_NE)
    return jv_bool(jv_loose_equal(r, n->pos, a, b) == (op == JO_EQ));
  if (jv_is_number(a) && jv_is_number(b) && op != JO_CONCAT && op != JO_POW) {
    double x = a.u.num, y = b.u.num;
    int is_float = a.kind == JV_FLOAT || b.kind == JV_FLOAT;
    switch (op) {
    case JO_ADD:
      return is_float ? jv_float(x + y) : jv_int(x + y);
    case JO_SUB:
      return is_float ? jv_float(x - y) : jv_int(x - y);
    case JO_MUL:
      return is_float ? jv_float(x * y) : jv_int(x * y);
    case JO_DIV:
      return jv_float(x / y);
    case JO_FLOORDIV:
      return is_float ? jv_float(floor(x / y)) : jv_int(floor(x / y));
    case JO_MOD:
      return is_float ? jv_float(fmod(x, y)) : jv_int(fmod(x, y));
    case JO_LT:
      return jv_bool(x < y);
    case JO_GT:
      return jv_bool(x > y);
    case JO_LE:
      return jv_bool(x <= y);
    case JO_GE:
      return jv_bool(x >= y);
    default:
      break;
    }
  } else if (a.kind == JV_UNDEFINED || b.kind == JV_UNDEFINED) {
    if (b.kind == JV_UNDEFINED && (op == JO_IN || op == JO_NOT_IN))
      return jv_bool(op == JO_NOT_IN);
    if (op == JO_CONCAT && a.kind != JV_NULL && b.kind != JV_NULL)
      return concat(r, n->pos, a, b);
    jfail(r, n->pos, "'%s' on an undefined value (a name or attribute that does not exist)",
          op_text(op));
  } else if (a.kind == JV_NULL || b.kind == JV_NULL) {
    jfail(r, n->pos, "'%s' on none", op_text(op));
  } else if (op == JO_CONCAT) {
    return concat(r, n->pos, a, b);
  } else if (op == JO_POW && (jv_is_number(a) || a.kind == JV_BOOL) &&
             (jv_is_number(b) || b.kind == JV_BOOL)) {
    double x = a.kind == JV_BOOL ? a.u.b : a.u.num, y = b.kind == JV_BOOL ? b.u.b : b.u.num;
    if (x == 0 && y < 0)
      jfail(r, n->pos, "0.0 cannot be raised to a negative power");
    double v = pow(x, y);
    if (!isfinite(v))
      jfail(r, n->pos, "'**' gives a number that is not finite");
    return a.kind == JV_FLOAT || b.kind == JV_FLOAT || y < 0 ? jv_float(v) : jv_int(v);
  } else if (jv_is_array(a) && jv_is_array(b)) {
    if (op == JO_ADD) {
      jval c = jv_array(r, JV_ARRAY, a.u.a->n + b.u.a->n);
      for (size_t i = 0; i < a.u.a->n; i++)
        ja_push(r, c.u.a, a.u.a->items[i]);
      for (size_t i = 0; i < b.u.a->n; i++)
        ja_push(r, c.u.a, b.u.a->items[i]);
      return c;
    }
  } else if (jv_is_array(b) && (op == JO_IN || op == JO_NOT_IN)) {
    return jv_bool(contains(b, a) == (op == JO_IN));
  }
  if ((a.kind == JV_STRING || b.kind == JV_STRING) && op == JO_ADD)
    return concat(r, n->pos, a, b);
  if (a.kind == JV_STRING && (b.kind == JV_STRING || b.kind == JV_OBJECT) &&
      (op == JO_IN || op == JO_NOT_IN))
    return jv_bool(contains(b, a) == (op == JO_IN));
  jfail(r, n->pos, "'%s' between a %s and a %s is not supported", op_text(op), jv_kind_name(a.kind),
        jv_kind_name(b.kind));
}

static jval unary(jrender *r, const jnode *n, jenv *env) {
  jval a = ji_eval(r, n->a, env);
  if (n->op == JO_NOT)
    return jv_bool(!jv_truthy(a));
  if (!jv_is_number(a) && a.kind != JV_BOOL)
    jfail(r, n->pos, "unary '%s' on a %s", op_text(n->op), jv_kind_name(a.kind));
  double v = (a.kind == JV_BOOL ? a.u.b : a.u.num) * (n->op == JO_SUB ? -1 : 1);
  return a.kind == JV_FLOAT ? jv_float(v) : jv_int(v);
}

/* ---- calls ---- */

static void eval_args(jrender *r, jnode *const *nodes, size_t n, jenv *env, jargs *out) {
  jval *pos = n ? jr_alloc(r, n * sizeof *pos) : NULL;
  size_t n_pos = 0;
  jobject *kw = NULL;
  for (size_t i = 0; i < n; i++) {
    if (nodes[i]->type != JN_KWARG) {
      pos[n_pos++] = ji_eval(r, nodes[i], env);
      continue;
    }
    if (!kw)
      kw = jv_object(r, JV_OBJECT).u.o;
    if (jo_get(kw, nodes[i]->str, nodes[i]->len))
      jfail(r, nodes[i]->pos, "keyword argument '%s' given twice", nodes[i]->str);
    jo_set(r, kw, nodes[i]->str, nodes[i]->len, ji_eval(r, nodes[i]->a, env));
  }
  *out = (jargs){pos, n_pos, kw};
}

static size_t render_block(jrender *r, jnode *const *body, size_t n, jenv *env, jbuf *out);

enum { FLOW_NEXT, FLOW_BREAK, FLOW_CONTINUE };

jval ji_call_macro(jrender *r, jpos at, const jfunc *fn, const jargs *args) {
  const jnode *m = fn->macro;
  if (++r->depth > r->max_depth)
    jfail(r, at, "macros call each other more than %d deep (the depth limit)", r->max_depth);
  jenv *scope = ji_env_new(r, fn->closure);
  if (args->n > m->n_args)
    jfail(r, at, "macro '%s' takes not more than %zu argument(s)", m->str, m->n_args);
  size_t used_kw = 0;
  for (size_t i = 0; i < m->n_args; i++) {
    const jnode *param = m->args[i];
    jval v = jv_undefined();
    jval *kw = args->kw ? jo_get(args->kw, param->str, strlen(param->str)) : NULL;
    if (i < args->n)
      v = args->pos[i];
    else if (kw) {
      v = *kw;
      used_kw++;
    }
    ji_env_set(r, scope, param->str, v);
  }
  if (args->kw && used_kw < args->kw->n)
    for (size_t k = 0; k < args->kw->n; k++) {
      int known = 0;
      for (size_t i = args->n; i < m->n_args; i++)
        known |= !strcmp(m->args[i]->str, args->kw->keys[k]->data);
      if (!known)
        jfail(r, at, "macro '%s' takes no keyword argument '%s'", m->str, args->kw->keys[k]->data);
    }
  /* defaults last, in the macro's scope, as @huggingface/jinja evaluates them */
  for (size_t i = 0; i < m->n_args; i++) {
    const jnode *param = m->args[i];
    int given =
        i < args->n || (args->kw && jo_get(args->kw, param->str, strlen(param->str)) != NULL);
    if (!given && param->type == JN_KWARG)
      ji_env_set(r, scope, param->str, ji_eval(r, param->a, scope));
  }
  jbuf out;
  jb_init(&out, r, r->max_output);
  render_block(r, m->body, m->n_body, scope, &out);
  r->depth--;
  return jb_value(&out);
}

jval ji_call(jrender *r, jpos at, jval fn, const jargs *args) {
  if (fn.kind != JV_FUNCTION)
    jfail(r, at, "cannot call a %s", jv_kind_name(fn.kind));
  if (fn.u.f->builtin)
    return fn.u.f->builtin(r, at, fn.u.f->self, args);
  return ji_call_macro(r, at, fn.u.f, args);
}

/* ---- member access ---- */

static jval member(jrender *r, const jnode *n, jenv *env) {
  jval object = ji_eval(r, n->a, env);
  const jnode *p = n->b;
  if (n->flag && p->type == JN_SLICE) {
    jval parts[3];
    const jnode *nodes[3] = {p->a, p->b, p->c};
    for (int i = 0; i < 3; i++) {
      parts[i] = nodes[i] ? ji_eval(r, nodes[i], env) : jv_undefined();
      if (parts[i].kind != JV_INT && parts[i].kind != JV_UNDEFINED)
        jfail(r, n->pos, "a slice's bounds and step are integers");
    }
    if (!jv_is_array(object) && object.kind != JV_STRING)
      jfail(r, n->pos, "cannot slice a %s", jv_kind_name(object.kind));
    return jb_slice(r, object, parts);
  }
  jval property;
  if (n->flag)
    property = ji_eval(r, p, env);
  else if (p->type == JN_INT)
    property = jv_int(p->num);
  else
    property = jv_str(r, p->str, p->len);
  return jb_member(r, n->pos, object, property);
}

/* A filter (NAME or CALL) on a value, its arguments evaluated here. */
static jval apply_filter(jrender *r, const jnode *filter, jval operand, jenv *env) {
  jargs args = {0};
  if (filter->type == JN_CALL)
    eval_args(r, filter->args, filter->n_args, env, &args);
  return jb_apply_filter(r, filter, operand, &args);
}

/* ---- statements ---- */

static void assign(jrender *r, const jnode *target, jval v, jenv *env) {
  if (target->type == JN_NAME) {
    ji_env_set(r, env, target->str, v);
    return;
  }
  if (target->type == JN_TUPLE) {
    if (!jv_is_array(v))
      jfail(r, target->pos, "cannot unpack a %s", jv_kind_name(v.kind));
    if (v.u.a->n != target->n_args)
      jfail(r, target->pos, "too %s items to unpack (%zu for %zu names)",
            v.u.a->n < target->n_args ? "few" : "many", v.u.a->n, target->n_args);
    for (size_t i = 0; i < target->n_args; i++) {
      if (target->args[i]->type != JN_NAME)
        jfail(r, target->args[i]->pos, "can only unpack into names");
      ji_env_set(r, env, target->args[i]->str, v.u.a->items[i]);
    }
    return;
  }
  if (target->type == JN_MEMBER && !target->flag && target->b->type == JN_NAME) {
    jval object = ji_eval(r, target->a, env);
    if (object.kind != JV_NAMESPACE)
      jfail(r, target->pos, "cannot set an attribute of a %s (only of a namespace)",
            jv_kind_name(object.kind));
    jo_set(r, object.u.o, target->b->str, target->b->len, v);
    return;
  }
  jfail(r, target->pos, "cannot assign to this expression");
}

static void bind_loop_target(jrender *r, const jnode *target, jval item, jenv *scope) {
  if (target->type == JN_NAME) {
    ji_env_set(r, scope, target->str, item);
    return;
  }
  for (size_t j = 0; j < target->n_args; j++) {
    if (target->args[j]->type != JN_NAME)
      jfail(r, target->args[j]->pos, "can only unpack into names");
    ji_env_set(r, scope, target->args[j]->str, item.u.a->items[j]);
  }
}

static jval loop_object(jrender *r, size_t i, size_t n, const jval *items) {
  static const char *const names[9] = {"index", "index0", "revindex", "revindex0", "first",
                                       "last",  "length", "previtem", "nextitem"};
  if (!r->loop_keys[0])
    for (int k = 0; k < 9; k++)
      r->loop_keys[k] = jv_cstr(r, names[k]).u.s;
  jval values[9] = {jv_int((double)i + 1),
                    jv_int((double)i),
                    jv_int((double)(n - i)),
                    jv_int((double)(n - i - 1)),
                    jv_bool(i == 0),
                    jv_bool(i == n - 1),
                    jv_int((double)n),
                    i > 0 ? items[i - 1] : jv_undefined(),
                    i + 1 < n ? items[i + 1] : jv_undefined()};
  jval o = jv_object(r, JV_OBJECT);
  o.u.o->keys = jr_alloc(r, 9 * sizeof *o.u.o->keys);
  o.u.o->vals = jr_alloc(r, 9 * sizeof *o.u.o->vals);
  o.u.o->cap = 9;
  for (int k = 0; k < 9; k++)
    jo_append(r, o.u.o, r->loop_keys[k], values[k]);
  return o;
}

static size_t render_for(jrender *r, const jnode *n, jenv *env, jbuf *out) {
  jenv *scope = ji_env_new(r, env);
  jval iterable = ji_eval(r, n->b, scope);
  if (iterable.kind == JV_OBJECT) {
    jval keys = jv_array(r, JV_ARRAY, iterable.u.o->n);
    for (size_t i = 0; i < iterable.u.o->n; i++)
      ja_push(r, keys.u.a, (jval){.kind = JV_STRING, .u.s = iterable.u.o->keys[i]});
    iterable = keys;
  }
  if (!jv_is_array(iterable))
    jfail(r, n->b->pos, "a for loop goes over an array or an object, not a %s",
          jv_kind_name(iterable.kind));
  jarray *all = iterable.u.a;
  jval *items = all->n ? jr_alloc(r, all->n * sizeof *items) : NULL;
  size_t count = 0;
  for (size_t i = 0; i < all->n; i++) {
    jval item = all->items[i];
    if (n->a->type == JN_TUPLE) {
      if (item.kind != JV_ARRAY)
        jfail(r, n->a->pos, "cannot unpack a %s", jv_kind_name(item.kind));
      if (item.u.a->n != n->a->n_args)
        jfail(r, n->a->pos, "too %s items to unpack", item.u.a->n < n->a->n_args ? "few" : "many");
    }
    if (n->c) {
      jenv *test_scope = ji_env_new(r, scope);
      bind_loop_target(r, n->a, item, test_scope);
      if (!jv_truthy(ji_eval(r, n->c, test_scope)))
        continue;
    }
    items[count++] = item;
  }
  int iterated = 0;
  for (size_t i = 0; i < count; i++) {
    step(r, n->pos);
    ji_env_set(r, scope, "loop", loop_object(r, i, count, items));
    bind_loop_target(r, n->a, items[i], scope);
    size_t mark = out->len;
    size_t flow = render_block(r, n->body, n->n_body, scope, out);
    if (flow != FLOW_NEXT) {
      out->len = mark; /* the iteration's text is dropped, as @huggingface/jinja drops it */
      if (out->data)
        out->data[mark] = 0;
      if (flow == FLOW_BREAK)
        break;
      continue;
    }
    iterated = 1;
  }
  if (!iterated)
    return render_block(r, n->alt, n->n_alt, scope, out);
  return FLOW_NEXT;
}

static size_t render_statement(jrender *r, const jnode *n, jenv *env, jbuf *out) {
  step(r, n->pos);
  switch (n->type) {
  case JN_TEXT:
    jb_add(out, n->str, n->len);
    return FLOW_NEXT;
  case JN_COMMENT:
    return FLOW_NEXT;
  case JN_IF:
    if (jv_truthy(ji_eval(r, n->a, env)))
      return render_block(r, n->body, n->n_body, env, out);
    return render_block(r, n->alt, n->n_alt, env, out);
  case JN_FOR:
    return render_for(r, n, env, out);
  case JN_SET: {
    jval v;
    if (n->b) {
      v = ji_eval(r, n->b, env);
    } else {
      jbuf block;
      jb_init(&block, r, r->max_output);
      size_t flow = render_block(r, n->body, n->n_body, env, &block);
      if (flow != FLOW_NEXT)
        return flow;
      v = jb_value(&block);
    }
    assign(r, n->a, v, env);
    return FLOW_NEXT;
  }
  case JN_MACRO: {
    jfunc *f = jr_alloc(r, sizeof *f);
    f->macro = n;
    f->closure = env;
    ji_env_set(r, env, n->str, (jval){.kind = JV_FUNCTION, .u.f = f});
    return FLOW_NEXT;
  }
  case JN_BREAK:
    return FLOW_BREAK;
  case JN_CONTINUE:
    return FLOW_CONTINUE;
  case JN_FILTER_BLOCK: {
    jbuf block;
    jb_init(&block, r, r->max_output);
    size_t flow = render_block(r, n->body, n->n_body, env, &block);
    if (flow != FLOW_NEXT)
      return flow;
    jv_write(out, n->pos, apply_filter(r, n->a, jb_value(&block), env));
    return FLOW_NEXT;
  }
  default: {
    jval v = ji_eval(r, n, env);
    if (v.kind == JV_FUNCTION)
      jfail(r, n->pos, "cannot print a function (call it)");
    jv_write(out, n->pos, v);
    return FLOW_NEXT;
  }
  }
}

static size_t render_block(jrender *r, jnode *const *body, size_t n, jenv *env, jbuf *out) {
  for (size_t i = 0; i < n; i++) {
    size_t flow = render_statement(r, body[i], env, out);
    if (flow != FLOW_NEXT)
      return flow;
  }
  return FLOW_NEXT;
}

void ji_render(jrender *r, jnode *const *body, size_t n, jenv *env, jbuf *out) {
  render_block(r, body, n, env, out); /* the parser keeps break and continue inside loops */
}

/* ---- expressions ---- */

jval ji_eval(jrender *r, const jnode *n, jenv *env) {
  step(r, n->pos);
  switch (n->type) {
  case JN_NAME:
    return ji_env_get(env, n->str);
  case JN_INT:
    return jv_int(n->num);
  case JN_FLOAT:
    return jv_float(n->num);
  case JN_STRING:
    return jv_str(r, n->str, n->len);
  case JN_ARRAY:
  case JN_TUPLE: {
    jval a = jv_array(r, n->type == JN_ARRAY ? JV_ARRAY : JV_TUPLE, n->n_args);
    for (size_t i = 0; i < n->n_args; i++)
      ja_push(r, a.u.a, ji_eval(r, n->args[i], env));
    return a;
  }
  case JN_OBJECT: {
    jval o = jv_object(r, JV_OBJECT);
    for (size_t i = 0; i + 1 < n->n_args; i += 2) {
      jval key = ji_eval(r, n->args[i], env);
      if (key.kind != JV_STRING)
        jfail(r, n->args[i]->pos, "an object's keys are strings, not a %s", jv_kind_name(key.kind));
      jo_set(r, o.u.o, key.u.s->data, key.u.s->len, ji_eval(r, n->args[i + 1], env));
    }
    return o;
  }
  case JN_BINARY:
    return binary(r, n, env);
  case JN_UNARY:
    return unary(r, n, env);
  case JN_MEMBER:
    return member(r, n, env);
  case JN_CALL: {
    jargs args;
    eval_args(r, n->args, n->n_args, env, &args);
    return ji_call(r, n->pos, ji_eval(r, n->a, env), &args);
  }
  case JN_FILTER:
    return apply_filter(r, n->b, ji_eval(r, n->a, env), env);
  case JN_TEST: {
    int result = jb_test(r, n->pos, n->str, ji_eval(r, n->a, env));
    return jv_bool(n->flag ? !result : result);
  }
  case JN_TERNARY:
    return ji_eval(r, jv_truthy(ji_eval(r, n->a, env)) ? n->b : n->c, env);
  case JN_SELECT:
    return jv_truthy(ji_eval(r, n->b, env)) ? ji_eval(r, n->a, env) : jv_undefined();
  case JN_IF:
  case JN_FOR:
  case JN_SET:
  case JN_MACRO:
  case JN_TEXT:
  case JN_COMMENT:
  case JN_BREAK:
  case JN_CONTINUE:
  case JN_FILTER_BLOCK:
  case JN_SLICE:
  case JN_KWARG:
    break;
  }
  jfail(r, n->pos, "this expression cannot be evaluated here");
}
