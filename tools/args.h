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

/* The value after option argv[*i] (advancing *i), or NULL after printing that it is missing. */
const char *kvc_arg_value(const char *cmd, int argc, char **argv, int *i);

#endif
