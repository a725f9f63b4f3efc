/* jinja.h: the Jinja subset chat templates are written in, rendered as @huggingface/jinja
 * renders them (the renderer transformers.js uses; docs/CHAT.md says which constructs and
 * which of its behaviours are kept, and which are refused).
 *
 * A template is parsed once (kvc__jinja_parse: anything this engine does not implement is
 * refused there, with its line and column) and rendered any number of times, each render with
 * its own variables. Rendering is bounded: every value it makes comes from one arena capped at
 * `memory` bytes, the output at `output` bytes, the work at `steps` evaluations and macro calls
 * at `depth`; past a bound the render fails, naming it. Nothing is read from files or the
 * environment (strftime_now reads the clock).
 *
 * Semantics are JavaScript's where @huggingface/jinja inherits them: numbers are doubles (an
 * "integer" is a double with no fraction that was made as one), string lengths and indexes
 * count UTF-16 code units, slices count code points, trim() strips Unicode white space,
 * `.strip(chars)` ignores its argument, `%` keeps the dividend's sign. */
#ifndef KVC_JINJA_H
#define KVC_JINJA_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "kvcache.h"

typedef struct kvc__jinja kvc__jinja;

/* Parse `len` bytes of UTF-8 template source. *out owns the template (kvc__jinja_free).
 * KVC_ERR_INVALID_ARG: not UTF-8, a syntax error or an unsupported construct; the message
 * gives "line L, column C" of the source. */
kvc_status kvc__jinja_parse(const char *source, size_t len, kvc__jinja **out);
void kvc__jinja_free(kvc__jinja *tmpl);

typedef struct kvc__jinja_limits {
  size_t output; /* bytes of rendered text */
  size_t memory; /* bytes of values made while rendering */
  size_t steps;  /* expressions and statements evaluated */
  int depth;     /* nested macro calls */
} kvc__jinja_limits;

kvc__jinja_limits kvc__jinja_default_limits(void);

/* One variable of a render: `value` a cJSON tree (converted as JSON.parse and
 * Object.entries would give it to @huggingface/jinja: integer-like keys first). */
typedef struct kvc__jinja_var {
  const char *name;
  const cJSON *value;
} kvc__jinja_var;

/* Render with n_vars variables. *text (malloc'd, NUL-terminated, the caller frees it) and
 * *len receive the output. KVC_ERR_INVALID_ARG: the template failed (raise_exception's
 * message, a type error, an undefined operation; "line L, column C"), a limit was passed, a
 * variable is named twice or names a global (true, none, range ...); KVC_ERR_NO_MEMORY. */
kvc_status kvc__jinja_render(const kvc__jinja *tmpl, const kvc__jinja_var *vars, size_t n_vars,
                             const kvc__jinja_limits *limits, char **text, size_t *len);

#endif
