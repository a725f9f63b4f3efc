/* args.h: the CLI's command lines. Each command lists its options once, as a table of kvc_opt
 * rows: the parser reads argv from the table and the help is printed from it, so no option is
 * parsed and missing from the help, or the other way round. Every malformed value is reported
 * with the option's name and what was expected; the command exits with code 2. */
#ifndef KVC_TOOLS_ARGS_H
#define KVC_TOOLS_ARGS_H

#include <stdint.h>
#include <stdio.h>

#include "kvcache.h"

/* Exit status for bad usage. */
enum { KVC_EXIT_USAGE = 2 };

typedef enum kvc_opt_kind {
  KVC_OPT_FLAG,   /* no value: *(int *)target = 1 */
  KVC_OPT_TEXT,   /* *(const char **)target = the value */
  KVC_OPT_I32,    /* *(int32_t *)target = an integer in [min, max] */
  KVC_OPT_I64,    /* *(int64_t *)target = an integer in [min, max] */
  KVC_OPT_U64,    /* *(uint64_t *)target = a non-negative integer */
  KVC_OPT_F64,    /* *(double *)target = a number in [min, max] */
  KVC_OPT_CHOICE, /* *(int *)target = the index of the value among `choices` */
  KVC_OPT_CUSTOM, /* parse(cmd, value, target): 0, or nonzero after printing why not */
} kvc_opt_kind;

typedef struct kvc_opt {
  const char *name;  /* "--top-k", "-n" */
  const char *alias; /* a short spelling shown first ("-m" of "--model"), or NULL */
  const char *meta;  /* the value's name in the help ("N", "DIR"); NULL: a flag, or for a
                      * choice its words joined by '|' */
  kvc_opt_kind kind;
  void *target;
  double min, max;                                                /* I32, I64, F64 */
  const char *const *choices;                                     /* CHOICE: NULL-terminated */
  int (*parse)(const char *cmd, const char *value, void *target); /* CUSTOM */
  const char *help;                                               /* lines separated by '\n' */
  const char *given; /* set by the parser: the value as written (a flag: its name); NULL when
                      * the option was not given */
} kvc_opt;

/* Rows of a table, one per kind (the help's text last; alias, when wanted, set by name). */
#define KVC_FLAG(name, target, help)                                                               \
  { name, NULL, NULL, KVC_OPT_FLAG, target, 0, 0, NULL, NULL, help, NULL }
#define KVC_TEXT(name, meta, target, help)                                                         \
  { name, NULL, meta, KVC_OPT_TEXT, target, 0, 0, NULL, NULL, help, NULL }
#define KVC_INT32(name, meta, target, min, max, help)                                              \
  { name, NULL, meta, KVC_OPT_I32, target, min, max, NULL, NULL, help, NULL }
#define KVC_INT64(name, meta, target, min, max, help)                                              \
  { name, NULL, meta, KVC_OPT_I64, target, min, max, NULL, NULL, help, NULL }
#define KVC_UINT64(name, meta, target, help)                                                       \
  { name, NULL, meta, KVC_OPT_U64, target, 0, 0, NULL, NULL, help, NULL }
#define KVC_NUMBER(name, meta, target, min, max, help)                                             \
  { name, NULL, meta, KVC_OPT_F64, target, min, max, NULL, NULL, help, NULL }
#define KVC_CHOICE(name, meta, target, choices, help)                                              \
  { name, NULL, meta, KVC_OPT_CHOICE, target, 0, 0, choices, NULL, help, NULL }
#define KVC_CUSTOM(name, meta, target, parse, help)                                                \
  { name, NULL, meta, KVC_OPT_CUSTOM, target, 0, 0, NULL, parse, help, NULL }

/* One command's command line. */
typedef struct kvc_args {
  const char *cmd;     /* "generate" */
  const char *usage;   /* the usage lines and the description; the options' help follows */
  const char *heading; /* the line above the options; NULL = "options:" */
  kvc_opt *opts;
  int n_opts;
  /* when not NULL, the options of every command that opens a model (-m/--model DIR,
   * --provider, --threads, --kv, --kv-type, --max-seq) into *model and *model_dir */
  kvc_model_params *model;
  const char **model_dir;
  /* words that are not options (quantize's IN_DIR OUT_DIR): at most max_words, into words */
  const char **words;
  int max_words, n_words;
} kvc_args;

/* kvc_kv_type's names, NULL-terminated, indexed by the type's value ("auto", "f32", ...):
 * the choices of --kv-type and of options like it. */
const char *const *kvc_arg_kv_type_names(void);

/* A command's line over a table of options: kvc_args args = KVC_ARGS("info", usage, opts);
 * KVC_ARGS_MODEL also takes the model options into *mp and *dir. */
#define KVC_ARGS(cmd, usage, opts)                                                                 \
  { cmd, usage, NULL, opts, (int)(sizeof opts / sizeof opts[0]), NULL, NULL, NULL, 0, 0 }
#define KVC_ARGS_MODEL(cmd, usage, opts, mp, dir)                                                  \
  { cmd, usage, NULL, opts, (int)(sizeof opts / sizeof opts[0]), mp, dir, NULL, 0, 0 }

/* Parse argv[1 .. argc) against a's options and -h/--help. Returns KVC_ARGS_GO when the
 * command goes on; else the command's exit code: 0 after printing the help to stdout,
 * KVC_EXIT_USAGE after printing to stderr what was wrong (an unknown option, then the help;
 * a missing value or a bad one, naming the option and what it expects). */
enum { KVC_ARGS_GO = -1 };
int kvc_args_parse(kvc_args *a, int argc, char **argv);

/* The usage, then the options' help, to f. */
void kvc_args_help(const kvc_args *a, FILE *f);

/* After kvc_args_parse: the value option `name` was given (a flag: its name), or NULL. */
const char *kvc_args_given(const kvc_args *a, const char *name);

/* Parse `text` as a decimal integer in [min, max], a non-negative integer, a number in
 * [min, max]. On failure print "kvcache <cmd>: <option> expects ..., got '<text>'" to stderr
 * and return 0. */
int kvc_arg_int(const char *cmd, const char *option, const char *text, int64_t min, int64_t max,
                int64_t *out);
int kvc_arg_u64(const char *cmd, const char *option, const char *text, uint64_t *out);
int kvc_arg_double(const char *cmd, const char *option, const char *text, double min, double max,
                   double *out);

/* n pseudo-random token ids in [0, vocab) from `seed` (a 64-bit LCG): the same prompt for
 * the same seed, for verify and bench. */
void kvc_arg_random_tokens(uint64_t seed, int32_t *out, int64_t n, int32_t vocab);

/* Parse "1 2 3" or "1,2,3" into a malloc'd array (the caller frees it); returns the count,
 * or -1 for text that is not such a list. */
int kvc_arg_parse_ids(const char *text, int32_t **out);

/* Open the model (printing kvc_last_error() on failure); returns the exit code (0 = ok). */
int kvc_arg_open_model(const char *cmd, const char *dir, const kvc_model_params *params,
                       kvc_model **model);

#endif
