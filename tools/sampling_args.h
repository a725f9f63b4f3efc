/* sampling_args.h: the sampling options of the commands that generate (generate, chat): one
 * table of rows, one resolution of what was given against the model's own defaults. */
#ifndef KVC_TOOLS_SAMPLING_ARGS_H
#define KVC_TOOLS_SAMPLING_ARGS_H

#include "args.h"
#include "kvcache.h"

typedef struct kvc_sampling_args {
  kvc_sampler_params sp; /* top_k and seed parsed straight in */
  int greedy;
  double temperature, top_p, min_p, penalty; /* penalty < 0: not given */
  int chose; /* set by kvc_sampling_check: an option chose the sampling mode */
} kvc_sampling_args;

/* A command's defaults: greedy unless the model says otherwise, no option given. */
#define KVC_SAMPLING_ARGS_INIT                                                                     \
  { kvc_sampler_default_params(), 0, 0, 1, 0, -1, 0 }

/* The rows, spliced into a command's table: KVC_SAMPLING_OPTS(&sa), */
#define KVC_SAMPLING_OPTS(sa)                                                                      \
  KVC_FLAG("--greedy", &(sa)->greedy,                                                              \
           "pick the most likely token (the default, unless the model's\n"                         \
           "genai_config.json search section or generation_config.json says\n"                     \
           "do_sample: then its temperature, top_k, top_p and min_p are the\n"                     \
           "defaults)"),                                                                           \
      KVC_NUMBER("--temperature", "T", &(sa)->temperature, 0, 1e6,                                 \
                 "sample at temperature T > 0 (0 = greedy)"),                                      \
      KVC_INT32("--top-k", "K", &(sa)->sp.top_k, 0, INT32_MAX,                                     \
                "sample among the K most likely tokens (0 = all)"),                                \
      KVC_NUMBER("--top-p", "P", &(sa)->top_p, 1e-9, 1.0,                                          \
                 "sample within probability mass P, 0 < P <= 1 (1 = all)"),                        \
      KVC_NUMBER("--min-p", "P", &(sa)->min_p, 0, 1.0,                                             \
                 "sample among the tokens at least P times as likely as the most\n"                \
                 "likely one (0 = all); --top-k, --top-p or --min-p without\n"                     \
                 "--temperature samples at temperature 1; with --greedy or\n"                      \
                 "--temperature 0 they are an error (greedy ignores them)"),                       \
      KVC_NUMBER("--repetition-penalty", "R", &(sa)->penalty, 1e-6, 1e6,                           \
                 "divide a positive logit of a token already in the sequence by R,\n"              \
                 "multiply a negative one (R > 1 discourages repeats; greedy or\n"                 \
                 "sampling); default: the model's (genai_config.json, else\n"                      \
                 "generation_config.json), else 1"),                                               \
      KVC_UINT64("--seed", "S", &(sa)->sp.seed, "sampling seed (0)")

/* After kvc_args_parse: check what was given (contradictions are named); 0 or
 * KVC_EXIT_USAGE after printing why. */
int kvc_sampling_check(const char *cmd, const kvc_args *args, kvc_sampling_args *sa);

/* The sampler's parameters for `model`: what the command line gave, the model's own defaults
 * for what it left open (the sampling mode when no sampling option was given, the repetition
 * penalty when --repetition-penalty was not). */
kvc_sampler_params kvc_sampling_params(const kvc_sampling_args *sa, const kvc_model *model);

#endif
