/* jinja_impl.h: the template engine's parts (lexer, parser, values, interpreter, built-ins)
 * and what they share. Not used outside src/template/. */
#ifndef KVC_JINJA_IMPL_H
#define KVC_JINJA_IMPL_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "jinja.h"

/* ---- arena: every allocation of a parse or a render; freed at once ---- */
typedef struct jarena {
  struct jblock *blocks;
  size_t used;  /* bytes handed out */
  size_t limit; /* 0: none */
} jarena;

void *ja_alloc(jarena *arena, size_t size); /* zeroed; NULL past the limit or out of memory */
void ja_free(jarena *arena);

/* ---- source positions ---- */
typedef struct jpos {
  int line, col; /* 1-based, in the original template */
} jpos;

/* ---- lexer ---- */
typedef enum jtok_type {
  JT_TEXT,
  JT_NUMBER,
  JT_STRING,
  JT_NAME,
  JT_EQUALS,
  JT_LPAREN,
  JT_RPAREN,
  JT_OPEN_STMT,
  JT_CLOSE_STMT,
  JT_OPEN_EXPR,
  JT_CLOSE_EXPR,
  JT_LBRACKET,
  JT_RBRACKET,
  JT_LBRACE,
  JT_RBRACE,
  JT_COMMA,
  JT_DOT,
  JT_COLON,
  JT_PIPE,
  JT_ADD,     /* + - ~ */
  JT_MUL,     /* * / // % */
  JT_POW,     /* ** */
  JT_COMPARE, /* < > <= >= == != */
  JT_UNARY,   /* a lone - or + */
  JT_COMMENT
} jtok_type;

typedef struct jtok {
  jtok_type type;
  const char *text; /* arena copy, NUL-terminated; string literals unescaped */
  size_t len;
  jpos pos;
} jtok;

/* Tokenize as @huggingface/jinja does with lstrip_blocks and trim_blocks. On failure returns
 * non-zero with message (a static-length buffer of `cap` bytes) filled. */
int kvc__jinja_lex(jarena *arena, const char *source, size_t len, jtok **tokens, size_t *n,
                   char *message, size_t cap);

/* ---- syntax tree ---- */
typedef enum jnode_type {
  /* statements */
  JN_TEXT,         /* str */
  JN_IF,           /* a test, body, alt */
  JN_FOR,          /* a target (NAME or TUPLE), b iterable, c loop filter or NULL, body, alt */
  JN_SET,          /* a target, b value (NULL: body is the value) */
  JN_MACRO,        /* str name, args (NAME or KWARG), body */
  JN_BREAK,        /* - */
  JN_CONTINUE,     /* - */
  JN_FILTER_BLOCK, /* a filter (NAME or CALL), body */
  JN_COMMENT,
  /* expressions */
  JN_NAME,    /* str */
  JN_INT,     /* num */
  JN_FLOAT,   /* num */
  JN_STRING,  /* str */
  JN_ARRAY,   /* args */
  JN_TUPLE,   /* args */
  JN_OBJECT,  /* args: key, value, key, value ... */
  JN_BINARY,  /* op, a, b */
  JN_UNARY,   /* op, a */
  JN_MEMBER,  /* a object, b property; flag 1: computed ([...]) */
  JN_SLICE,   /* a start, b stop, c step (each may be NULL) */
  JN_CALL,    /* a callee, args */
  JN_FILTER,  /* a operand, b filter (NAME or CALL) */
  JN_TEST,    /* a operand, str test name, flag 1: negated */
  JN_TERNARY, /* a condition, b if true, c if false */
  JN_SELECT,  /* a value, b condition (value if condition, else undefined) */
  JN_KWARG    /* str name, a value */
} jnode_type;

typedef enum jop {
  JO_NONE,
  JO_AND,
  JO_OR,
  JO_NOT,
  JO_IN,
  JO_NOT_IN,
  JO_EQ,
  JO_NE,
  JO_LT,
  JO_GT,
  JO_LE,
  JO_GE,
  JO_ADD,
  JO_SUB,
  JO_CONCAT,
  JO_MUL,
  JO_DIV,
  JO_FLOORDIV,
  JO_MOD,
  JO_POW
} jop;

typedef struct jnode jnode;
struct jnode {
  jnode_type type;
  jpos pos;
  jop op;
  int flag;
  const char *str; /* NUL-terminated */
  size_t len;
  double num;
  jnode *a, *b, *c;
  jnode **args; /* call arguments, literal items, macro parameters */
  size_t n_args;
  jnode **body;
  size_t n_body;
  jnode **alt; /* else / elif branch */
  size_t n_alt;
};

int kvc__jinja_parse_tokens(jarena *arena, const jtok *tokens, size_t n, jnode ***body,
                            size_t *n_body, char *message, size_t cap);

/* ---- values ---- */
typedef enum jkind {
  JV_UNDEFINED,
  JV_NULL,
  JV_BOOL,
  JV_INT,   /* num holds an integral double (JavaScript's number) */
  JV_FLOAT, /* num */
  JV_STRING,
  JV_ARRAY,
  JV_TUPLE,
  JV_OBJECT,
  JV_NAMESPACE,
  JV_FUNCTION
} jkind;

typedef struct jstr {
  size_t len;
  char data[]; /* NUL-terminated */
} jstr;

typedef struct jval jval;
typedef struct jarray jarray;
typedef struct jobject jobject;
typedef struct jfunc jfunc;

struct jval {
  jkind kind;
  union {
    int b;
    double num;
    const jstr *s;
    jarray *a;  /* ARRAY, TUPLE */
    jobject *o; /* OBJECT, NAMESPACE */
    jfunc *f;
  } u;
};

struct jarray {
  size_t n, cap;
  jval *items;
};

struct jobject {
  size_t n, cap;
  const jstr **keys;
  jval *vals;
};

/* ---- the interpreter's state ---- */
typedef struct jenv jenv;
struct jenv {
  jenv *parent;
  size_t n, cap;
  const char **names;
  jval *vals;
};

typedef struct jrender {
  jarena arena;
  jmp_buf fail; /* every error longjmps here: the values made so far are in the arena */
  char message[512];
  size_t steps, max_steps;
  int depth, max_depth;
  size_t max_output;
  const jstr *loop_keys[9]; /* made once per render: a loop makes an object per iteration */
} jrender;

/* A function's arguments: positional ones, then the keyword ones (NULL when none). */
typedef struct jargs {
  const jval *pos;
  size_t n;
  jobject *kw;
} jargs;

typedef jval (*jbuiltin_fn)(jrender *r, jpos at, jval self, const jargs *args);

struct jfunc {
  jbuiltin_fn builtin; /* or NULL for a macro */
  jval self;           /* the string or object a method is bound to */
  const jnode *macro;
  jenv *closure;
};

_Noreturn void jfail(jrender *r, jpos at, const char *fmt, ...);

/* values */
jval jv_undefined(void);
jval jv_null(void);
jval jv_bool(int b);
jval jv_int(double v);
jval jv_float(double v);
jval jv_str(jrender *r, const char *s, size_t len);
jval jv_cstr(jrender *r, const char *s);
jval jv_array(jrender *r, jkind kind, size_t cap);
jval jv_object(jrender *r, jkind kind);
jval jv_builtin(jrender *r, jbuiltin_fn fn, jval self);
void *jr_alloc(jrender *r, size_t size); /* fails the render past the memory limit */
/* Parallel arrays (keys of key_size bytes, *vals) of n used, grown: the new keys array is
 * returned, *vals and *cap updated (the old arrays stay in the arena). */
void *jr_reserve_pairs(jrender *r, const void *keys, size_t key_size, jval **vals, size_t n,
                       size_t *cap);
void ja_push(jrender *r, jarray *a, jval v);
jval *jo_get(const jobject *o, const char *key, size_t len);
void jo_set(jrender *r, jobject *o, const char *key, size_t len, jval v);
void jo_append(jrender *r, jobject *o, const jstr *key, jval v); /* a key not yet there */
int jv_truthy(jval v);
int jv_is_array(jval v);  /* ARRAY or TUPLE */
int jv_is_number(jval v); /* INT or FLOAT */
const char *jv_kind_name(jkind kind);
jval jv_from_json(jrender *r, const cJSON *json);

/* text */
typedef struct jbuf {
  jrender *r;
  char *data;
  size_t len, cap, limit;
} jbuf;
void jb_init(jbuf *b, jrender *r, size_t limit);
void jb_add(jbuf *b, const char *s, size_t len);
void jb_addc(jbuf *b, const char *s);
jval jb_value(jbuf *b);
void jv_format_number(double v, char out[40]); /* JavaScript's Number#toString */
void jv_write(jbuf *b, jpos at, jval v);       /* as {{ v }} prints it */
void jv_write_plain(jbuf *b, jpos at, jval v); /* JavaScript's String(value) for + and ~ */
typedef struct jjson_style {
  int indent; /* 0: none */
  int ensure_ascii;
  int sort_keys; /* refused when it would reorder anything: the reference sorts by the locale */
  const char *item_sep, *key_sep; /* NULL: the defaults for the indent */
} jjson_style;
void jv_write_json(jbuf *b, jpos at, jval v, const jjson_style *style, int depth,
                   int undefined_as_null);

/* strings as JavaScript sees them */
int ju_is_space(uint32_t c);
size_t ju_decode(const char *s, size_t len, size_t i, uint32_t *c); /* bytes of the character */
size_t ju_utf16_length(const char *s, size_t len);
int ju_compare(const char *a, size_t alen, const char *b, size_t blen); /* UTF-16 order */
void ju_trim(const char *s, size_t len, int start, int end, size_t *from, size_t *to);
jval ju_case(jrender *r, jpos at, jval s, int upper);

/* built-ins */
/* filter: a NAME, or a CALL whose arguments the caller evaluated into args */
jval jb_apply_filter(jrender *r, const jnode *filter, jval operand, const jargs *args);
int jb_test(jrender *r, jpos at, const char *name, jval operand);
int jb_known_test(const char *name);
int jb_known_filter(const char *name);
jval jb_member(jrender *r, jpos at, jval object, jval property);
/* The global names and values (at most JB_GLOBALS); returns their number. */
enum { JB_GLOBALS = 16 };
size_t jb_globals(jrender *r, const char **names, jval *values);
jval ji_call(jrender *r, jpos at, jval fn, const jargs *args);
jval jb_slice(jrender *r, jval object, const jval parts[3]); /* start, stop, step */
int jv_loose_equal(jrender *r, jpos at, jval a, jval b);
int jv_strict_equal(jval a, jval b);

/* interpreter */
jval ji_eval(jrender *r, const jnode *node, jenv *env);
jval ji_call_macro(jrender *r, jpos at, const jfunc *fn, const jargs *args);
void ji_env_set(jrender *r, jenv *env, const char *name, jval v);
jval ji_env_get(const jenv *env, const char *name);
jenv *ji_env_new(jrender *r, jenv *parent);
void ji_render(jrender *r, jnode *const *body, size_t n, jenv *env, jbuf *out);

#endif
