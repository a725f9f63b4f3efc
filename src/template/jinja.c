/* jinja.c: a template's life: parsed once into its own arena, rendered into a fresh one
 * each time (see jinja.h). */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "jinja_impl.h"

enum { MAX_SOURCE = 1 << 20 };

struct kvc__jinja {
  jarena arena;
  jnode **body;
  size_t n_body;
};

kvc__jinja_limits kvc__jinja_default_limits(void) {
  return (kvc__jinja_limits){
      .output = 16u << 20, .memory = 256u << 20, .steps = 10000000, .depth = 16};
}

kvc_status kvc__jinja_parse(const char *source, size_t len, kvc__jinja **out) {
  if (!source || !out)
    return kvc__fail(KVC_ERR_INVALID_ARG, "template: NULL argument");
  *out = NULL;
  if (len > MAX_SOURCE)
    return kvc__fail(KVC_ERR_INVALID_ARG, "template: %zu bytes, more than the %d allowed", len,
                     MAX_SOURCE);
  int line = 1, col = 1;
  for (size_t i = 0; i < len;) {
    uint32_t c;
    size_t k = ju_decode(source, len, i, &c);
    if (!k)
      return kvc__fail(KVC_ERR_INVALID_ARG,
                       "template: line %d, column %d: not valid UTF-8 (byte 0x%02X)", line, col,
                       (unsigned char)source[i]);
    if (c == '\n')
      line++, col = 1;
    else
      col++;
    i += k;
  }
  kvc__jinja *t = calloc(1, sizeof *t);
  if (!t)
    return kvc__fail(KVC_ERR_NO_MEMORY, "template: out of memory");
  char message[512];
  jtok *tokens;
  size_t n_tokens;
  if (kvc__jinja_lex(&t->arena, source, len, &tokens, &n_tokens, message, sizeof message) ||
      kvc__jinja_parse_tokens(&t->arena, tokens, n_tokens, &t->body, &t->n_body, message,
                              sizeof message)) {
    kvc__jinja_free(t);
    return kvc__fail(strstr(message, "out of memory") ? KVC_ERR_NO_MEMORY : KVC_ERR_INVALID_ARG,
                     "template: %s", message);
  }
  *out = t;
  return KVC_OK;
}

void kvc__jinja_free(kvc__jinja *tmpl) {
  if (!tmpl)
    return;
  ja_free(&tmpl->arena);
  free(tmpl);
}

kvc_status kvc__jinja_render(const kvc__jinja *tmpl, const kvc__jinja_var *vars, size_t n_vars,
                             const kvc__jinja_limits *limits, char **text, size_t *len) {
  if (!tmpl || !text || !len || (n_vars && !vars))
    return kvc__fail(KVC_ERR_INVALID_ARG, "template: NULL argument");
  *text = NULL;
  *len = 0;
  kvc__jinja_limits lim = limits ? *limits : kvc__jinja_default_limits();
  /* volatile: read after longjmp */
  jrender *volatile r = calloc(1, sizeof *r);
  if (!r)
    return kvc__fail(KVC_ERR_NO_MEMORY, "template: out of memory");
  r->arena.limit = lim.memory;
  r->max_steps = lim.steps;
  r->max_depth = lim.depth;
  r->max_output = lim.output;
  if (setjmp(r->fail)) {
    kvc_status status =
        strstr(r->message, "out of memory") ? KVC_ERR_NO_MEMORY : KVC_ERR_INVALID_ARG;
    kvc__fail(status, "template: %s", r->message);
    ja_free(&r->arena);
    free(r);
    return status;
  }
  jenv *env = ji_env_new(r, NULL);
  const char *names[JB_GLOBALS];
  jval values[JB_GLOBALS];
  for (size_t i = 0, n = jb_globals(r, names, values); i < n; i++)
    ji_env_set(r, env, names[i], values[i]);
  for (size_t i = 0; i < n_vars; i++) {
    for (size_t k = 0; k < env->n; k++)
      if (!strcmp(env->names[k], vars[i].name))
        jfail(r, (jpos){0, 0}, "the variable '%s' is given twice or names a built-in",
              vars[i].name);
    ji_env_set(r, env, vars[i].name, jv_from_json(r, vars[i].value));
  }
  jbuf out;
  jb_init(&out, r, lim.output);
  ji_render(r, tmpl->body, tmpl->n_body, env, &out);
  char *copy = malloc(out.len + 1);
  if (!copy) {
    ja_free(&r->arena);
    free(r);
    return kvc__fail(KVC_ERR_NO_MEMORY, "template: out of memory");
  }
  if (out.len)
    memcpy(copy, out.data, out.len);
  copy[out.len] = 0;
  *text = copy;
  *len = out.len;
  ja_free(&r->arena);
  free(r);
  return KVC_OK;
}
