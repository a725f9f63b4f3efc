/* args.h: strict option parsing for the CLI. Every malformed value is reported with the
 * option's name and what was expected; the caller exits with code 2. */
#ifndef KVC_TOOLS_ARGS_H
#define KVC_TOOLS_ARGS_H

#include <stdint.h>

/* Exit status for bad usage. */
enum { KVC_EXIT_USAGE = 2 };

/* Parse `text` as a decimal integer in [min, max]. On failure print
 * "kvcache <cmd>: <option> expects ..., got '<text>'" to stderr and return 0. */
int kvc_arg_int(const char *cmd, const char *option, const char *text, int64_t min, int64_t max,
                int64_t *out);
int kvc_arg_u64(const char *cmd, const char *option, const char *text, uint64_t *out);
int kvc_arg_double(const char *cmd, const char *option, const char *text, double min, double max,
                   double *out);

/* Report an option `cmd` does not know, with its usage (and the model options' help when
 * with_model); returns KVC_EXIT_USAGE. */
int kvc_arg_unknown(const char *cmd, const char *option, const char *usage, int with_model);

/* Which of n names `text` is, for an option taking one of a few words (--kv, --naming ...).
 * On no match print "kvcache <cmd>: <option> expects a, b or c, got '<text>'" and return -1. */
int kvc_arg_choice(const char *cmd, const char *option, const char *text, const char *const *names,
                   int n);

/* The value after option argv[*i] (advancing *i), or NULL after printing that it is missing. */
const char *kvc_arg_value(const char *cmd, int argc, char **argv, int *i);

#include "kvcache.h"

/* Options shared by the verbs that open a model:
 *   -m/--model DIR, --provider cpu|cuda, --threads N, --kv auto|naive|bound, --max-seq N
 * and -h/--help (prints `usage` and these options' help).
 * Returns 1 when argv[*i] was one of them (consumed, with its value), 0 when it is not,
 * KVC_ARG_HELP after printing the help (the verb exits with 0), -1 after printing why its
 * value is bad (the verb exits with KVC_EXIT_USAGE). */
enum { KVC_ARG_HELP = -2 };
int kvc_arg_model(const char *cmd, const char *usage, int argc, char **argv, int *i,
                  kvc_model_params *params, const char **model_dir);

/* The help lines for those options. */
extern const char kvc_arg_model_help[];

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
