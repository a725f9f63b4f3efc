/* args.c: the CLI's command lines: options parsed from and help printed from one table per
 * command, and strict number parsing. */
#include "args.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kvc_arg_int(const char *cmd, const char *option, const char *text, int64_t min, int64_t max,
                int64_t *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (end == text || *end != '\0' || errno == ERANGE || v < min || v > max) {
    fprintf(stderr, "kvcache %s: %s expects an integer in %" PRId64 "..%" PRId64 ", got '%s'\n",
            cmd, option, min, max, text);
    return 0;
  }
  *out = v;
  return 1;
}

int kvc_arg_u64(const char *cmd, const char *option, const char *text, uint64_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (end == text || *end != '\0' || errno == ERANGE || text[0] == '-') {
    fprintf(stderr, "kvcache %s: %s expects a non-negative integer, got '%s'\n", cmd, option, text);
    return 0;
  }
  *out = v;
  return 1;
}

int kvc_arg_double(const char *cmd, const char *option, const char *text, double min, double max,
                   double *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end);
  if (end == text || *end != '\0' || errno == ERANGE || !(v >= min && v <= max)) {
    fprintf(stderr, "kvcache %s: %s expects a number in %g..%g, got '%s'\n", cmd, option, min, max,
            text);
    return 0;
  }
  *out = v;
  return 1;
}

/* The help's second column: where each option's text starts. */
enum { HELP_COLUMN = 23 };

static void help_line(FILE *f, const kvc_opt *o) {
  char left[160];
  size_t n = (size_t)snprintf(left, sizeof left, "  %s%s%s", o->alias ? o->alias : "",
                              o->alias ? ", " : "", o->name);
  if (o->meta)
    n += (size_t)snprintf(left + n, sizeof left - n, " %s", o->meta);
  for (int k = 0; !o->meta && o->kind == KVC_OPT_CHOICE && o->choices[k] && n < sizeof left; k++)
    n += (size_t)snprintf(left + n, sizeof left - n, "%c%s", k ? '|' : ' ', o->choices[k]);
  if (n + 2 <= HELP_COLUMN)
    fprintf(f, "%-*s", HELP_COLUMN, left);
  else /* too wide: the text starts on the next line */
    fprintf(f, "%s\n%*s", left, HELP_COLUMN, "");
  for (const char *h = o->help; *h; h++) {
    fputc(*h, f);
    if (*h == '\n' && h[1])
      fprintf(f, "%*s", HELP_COLUMN, "");
  }
  fputc('\n', f);
}

static const char *const providers[] = {"cpu", "cuda", NULL};
static const kvc_kv_mode modes[] = {KVC_KV_AUTO, KVC_KV_NAIVE, KVC_KV_BOUND, KVC_KV_SHARED,
                                    KVC_KV_UNCACHED};
enum { N_MODEL_OPTS = 6, N_MODES = sizeof modes / sizeof modes[0] };

const char *const *kvc_arg_kv_type_names(void) {
  static const char *names[KVC_KV_TYPE_Q8 + 2];
  for (int t = 0; t <= KVC_KV_TYPE_Q8; t++)
    names[t] = kvc_kv_type_name((kvc_kv_type)t);
  return names;
}

/* The model options' rows; picks[0], [1] and [2] take the provider's, the mode's and the
 * cache type's index. */
static void model_opts(kvc_opt *o, kvc_model_params *p, const char **dir, int *picks) {
  static const char *mode_names[N_MODES + 1];
  for (int k = 0; k < N_MODES; k++)
    mode_names[k] = kvc_kv_mode_name(modes[k]);
  const kvc_opt rows[N_MODEL_OPTS] = {
      {.name = "--model",
       .alias = "-m",
       .meta = "DIR",
       .kind = KVC_OPT_TEXT,
       .target = dir,
       .help = "model directory (or .onnx file) to run (required)"},
      {.name = "--provider",
       .kind = KVC_OPT_CHOICE,
       .target = &picks[0],
       .choices = providers,
       .help = "execution provider (cpu); KVCACHE_FORCE_CPU=1 forces cpu"},
      {.name = "--threads",
       .meta = "N",
       .kind = KVC_OPT_I32,
       .target = &p->intra_op_threads,
       .min = 0,
       .max = 1024,
       .help = "ONNX Runtime intra-op threads (0 = its default)"},
      {.name = "--kv",
       .meta = "MODE",
       .kind = KVC_OPT_CHOICE,
       .target = &picks[1],
       .choices = mode_names,
       .help = "KV cache mode: auto, naive, bound, shared, uncached (auto: shared\n"
               "where the graph writes its cache in place, else bound)"},
      {.name = "--kv-type",
       .kind = KVC_OPT_CHOICE,
       .target = &picks[2],
       .choices = kvc_arg_kv_type_names(),
       .help = "cache element type (auto: the graph's, float32 for build-model's);\n"
               "f16 (half the bytes) and q8 (8.5 bits a value at head size 64)\n"
               "need --attention kvcache graphs"},
      {.name = "--max-seq",
       .meta = "N",
       .kind = KVC_OPT_I32,
       .target = &p->max_seq_len,
       .min = 0,
       .max = 1 << 24,
       .help = "cache capacity in tokens (0 = the model's maximum)"},
  };
  for (int k = 0; k < N_MODEL_OPTS; k++)
    o[k] = rows[k];
}

void kvc_args_help(const kvc_args *a, FILE *f) {
  fprintf(f, "%s%s\n", a->usage, a->heading ? a->heading : "options:");
  for (int k = 0; k < a->n_opts; k++)
    help_line(f, &a->opts[k]);
  if (a->model) {
    kvc_opt model[N_MODEL_OPTS];
    kvc_model_params p;
    const char *dir;
    int picks[3];
    model_opts(model, &p, &dir, picks);
    for (int k = 0; k < N_MODEL_OPTS; k++)
      help_line(f, &model[k]);
  }
}

static kvc_opt *find(kvc_opt *o, int n, const char *arg) {
  for (int k = 0; k < n; k++)
    if (!strcmp(arg, o[k].name) || (o[k].alias && !strcmp(arg, o[k].alias)))
      return &o[k];
  return NULL;
}

const char *kvc_args_given(const kvc_args *a, const char *name) {
  const kvc_opt *o = find(a->opts, a->n_opts, name);
  return o ? o->given : NULL;
}

/* Store value v of option `opt` (as written) into o's target; 0 after printing why not. */
static int take(const char *cmd, const char *opt, const kvc_opt *o, const char *v) {
  int64_t n;
  switch (o->kind) {
  case KVC_OPT_FLAG:
    *(int *)o->target = 1;
    return 1;
  case KVC_OPT_TEXT:
    *(const char **)o->target = v;
    return 1;
  case KVC_OPT_I32:
  case KVC_OPT_I64:
    if (!kvc_arg_int(cmd, opt, v, (int64_t)o->min, (int64_t)o->max, &n))
      return 0;
    if (o->kind == KVC_OPT_I32)
      *(int32_t *)o->target = (int32_t)n;
    else
      *(int64_t *)o->target = n;
    return 1;
  case KVC_OPT_U64:
    return kvc_arg_u64(cmd, opt, v, o->target);
  case KVC_OPT_F64:
    return kvc_arg_double(cmd, opt, v, o->min, o->max, o->target);
  case KVC_OPT_CHOICE: {
    int count = 0;
    for (; o->choices[count]; count++)
      if (!strcmp(v, o->choices[count])) {
        *(int *)o->target = count;
        return 1;
      }
    fprintf(stderr, "kvcache %s: %s expects ", cmd, opt);
    for (int k = 0; k < count; k++)
      fprintf(stderr, "%s'%s'", k == 0 ? "" : k == count - 1 ? " or " : ", ", o->choices[k]);
    fprintf(stderr, ", got '%s'\n", v);
    return 0;
  }
  case KVC_OPT_CUSTOM:
    return o->parse(cmd, v, o->target) == 0;
  }
  return 0;
}

int kvc_args_parse(kvc_args *a, int argc, char **argv) {
  kvc_opt model[N_MODEL_OPTS];
  int picks[3] = {-1, -1, -1};
  const int n_model = a->model ? N_MODEL_OPTS : 0;
  if (a->model)
    model_opts(model, a->model, a->model_dir, picks);
  for (int k = 0; k < a->n_opts; k++)
    a->opts[k].given = NULL;
  a->n_words = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
      kvc_args_help(a, stdout);
      return 0;
    }
    kvc_opt *o = find(a->opts, a->n_opts, arg);
    if (!o)
      o = find(model, n_model, arg);
    if (!o && arg[0] != '-' && a->n_words < a->max_words) {
      a->words[a->n_words++] = arg;
      continue;
    }
    if (!o) {
      fprintf(stderr, "kvcache %s: unknown option '%s'\n\n", a->cmd, arg);
      kvc_args_help(a, stderr);
      return KVC_EXIT_USAGE;
    }
    const char *v = arg;
    if (o->kind != KVC_OPT_FLAG) {
      if (i + 1 >= argc) {
        fprintf(stderr, "kvcache %s: %s expects a value\n", a->cmd, arg);
        return KVC_EXIT_USAGE;
      }
      v = argv[++i];
    }
    if (!take(a->cmd, arg, o, v))
      return KVC_EXIT_USAGE;
    o->given = v;
  }
  if (picks[0] >= 0)
    a->model->provider = providers[picks[0]];
  if (picks[1] >= 0)
    a->model->kv_mode = modes[picks[1]];
  if (picks[2] >= 0)
    a->model->kv_type = (kvc_kv_type)picks[2]; /* the names' index is the type */
  return KVC_ARGS_GO;
}

int kvc_arg_open_model(const char *cmd, const char *dir, const kvc_model_params *params,
                       kvc_model **model) {
  if (!dir) {
    fprintf(stderr,
            "kvcache %s: -m DIR is required (build one with `kvcache build-model -o DIR`)\n", cmd);
    return KVC_EXIT_USAGE;
  }
  kvc_status s = kvc_model_open(dir, params, model);
  if (s) {
    fprintf(stderr, "kvcache %s: %s\n", cmd, kvc_last_error());
    return s == KVC_ERR_INVALID_ARG ? KVC_EXIT_USAGE : 1;
  }
  return 0;
}

void kvc_arg_random_tokens(uint64_t seed, int32_t *out, int64_t n, int32_t vocab) {
  uint64_t state = seed * 6364136223846793005u + 1442695040888963407u;
  for (int64_t i = 0; i < n; i++) {
    state = state * 6364136223846793005u + 1442695040888963407u;
    out[i] = (int32_t)((state >> 33) % (uint64_t)vocab);
  }
}

/* Parse "1 2 3" or "1,2,3" into a malloc'd array; returns the count or -1. */
int kvc_arg_parse_ids(const char *text, int32_t **out) {
  size_t cap = strlen(text) / 2 + 1;
  int32_t *ids = malloc(cap * sizeof *ids);
  int n = 0;
  const char *p = text;
  while (ids) {
    while (*p == ' ' || *p == ',' || *p == '\t')
      p++;
    if (!*p)
      break;
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || (*end && *end != ' ' && *end != ',' && *end != '\t') || v < INT32_MIN ||
        v > INT32_MAX) {
      free(ids);
      return -1;
    }
    ids[n++] = (int32_t)v;
    p = end;
  }
  *out = ids;
  return ids ? n : -1;
}
