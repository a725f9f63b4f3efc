/* sampling_args.c: see sampling_args.h. */
#include "sampling_args.h"

#include <stdio.h>

/* whether a sampling option was given: then the model's sampling mode is not taken */
static int chose(const kvc_args *args) {
  static const char *const names[] = {"--greedy", "--temperature", "--top-k", "--top-p", "--min-p"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (kvc_args_given(args, names[i]))
      return 1;
  return 0;
}

int kvc_sampling_check(const char *cmd, const kvc_args *args, kvc_sampling_args *sa) {
  const char *greedy_by = kvc_args_given(args, "--greedy");
  const char *temperature_text = kvc_args_given(args, "--temperature");
  const char *filter = kvc_args_given(args, "--top-k")   ? "--top-k"
                       : kvc_args_given(args, "--top-p") ? "--top-p"
                       : kvc_args_given(args, "--min-p") ? "--min-p"
                                                         : NULL;
  sa->sp.temperature = (float)sa->temperature;
  sa->sp.top_p = (float)sa->top_p;
  sa->sp.min_p = (float)sa->min_p;
  if (greedy_by && temperature_text && sa->sp.temperature > 0) {
    fprintf(stderr, "kvcache %s: --greedy and --temperature %s contradict each other: give one\n",
            cmd, temperature_text);
    return KVC_EXIT_USAGE;
  }
  if (!greedy_by && temperature_text && sa->sp.temperature == 0)
    greedy_by = "--temperature 0";
  if (greedy_by && filter) {
    fprintf(stderr,
            "kvcache %s: %s picks the most likely token, so %s would do nothing: drop one\n", cmd,
            greedy_by, filter);
    return KVC_EXIT_USAGE;
  }
  if (greedy_by)
    sa->sp.temperature = 0;
  else if (filter && !temperature_text)
    sa->sp.temperature = 1; /* --top-k / --top-p / --min-p sample, at temperature 1 unless told */
  sa->chose = chose(args);
  return 0;
}

kvc_sampler_params kvc_sampling_params(const kvc_sampling_args *sa, const kvc_model *model) {
  kvc_model_info info;
  kvc_model_get_info(model, &info);
  kvc_sampler_params sp = sa->sp;
  const kvc_sampler_params own = kvc_search_sampler_params(&info.search);
  if (!sa->chose) {
    sp = own;
    sp.seed = sa->sp.seed;
  }
  sp.repetition_penalty = sa->penalty >= 0 ? (float)sa->penalty : own.repetition_penalty;
  return sp;
}
