/* args.c: strict number parsing for command-line options. */
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

int kvc_arg_choice(const char *cmd, const char *option, const char *text, const char *const *names,
                   int n) {
  for (int i = 0; i < n; i++)
    if (!strcmp(text, names[i]))
      return i;
  fprintf(stderr, "kvcache %s: %s expects ", cmd, option);
  for (int i = 0; i < n; i++)
    fprintf(stderr, "%s'%s'", i == 0 ? "" : i == n - 1 ? " or " : ", ", names[i]);
  fprintf(stderr, ", got '%s'\n", text);
  return -1;
}

const char *kvc_arg_value(const char *cmd, int argc, char **argv, int *i) {
  if (*i + 1 >= argc) {
    fprintf(stderr, "kvcache %s: %s expects a value\n", cmd, argv[*i]);
    return NULL;
  }
  return argv[++*i];
}

const char kvc_arg_model_help[] =
    "  -m, --model DIR      model directory (or .onnx file) to run (required)\n"
    "  --provider cpu|cuda  execution provider (cpu); KVCACHE_FORCE_CPU=1 forces cpu\n"
    "  --threads N          ONNX Runtime intra-op threads (0 = its default)\n"
    "  --kv MODE            KV cache mode: auto, naive, bound, shared, uncached (auto: shared\n"
    "                       where the graph writes its cache in place, else bound)\n"
    "  --max-seq N          cache capacity in tokens (0 = the model's maximum)\n";

int kvc_arg_model(const char *cmd, const char *usage, int argc, char **argv, int *i,
                  kvc_model_params *p, const char **model_dir) {
  const char *opt = argv[*i], *v;
  int64_t n;
  if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
    printf("%s%s", usage, kvc_arg_model_help);
    return KVC_ARG_HELP;
  } else if (!strcmp(opt, "-m") || !strcmp(opt, "--model")) {
    if (!(v = kvc_arg_value(cmd, argc, argv, i)))
      return -1;
    *model_dir = v;
  } else if (!strcmp(opt, "--provider")) {
    static const char *const providers[] = {"cpu", "cuda"};
    if (!(v = kvc_arg_value(cmd, argc, argv, i)) || kvc_arg_choice(cmd, opt, v, providers, 2) < 0)
      return -1;
    p->provider = v;
  } else if (!strcmp(opt, "--threads")) {
    if (!(v = kvc_arg_value(cmd, argc, argv, i)) || !kvc_arg_int(cmd, opt, v, 0, 1024, &n))
      return -1;
    p->intra_op_threads = (int32_t)n;
  } else if (!strcmp(opt, "--max-seq")) {
    if (!(v = kvc_arg_value(cmd, argc, argv, i)) || !kvc_arg_int(cmd, opt, v, 0, 1 << 24, &n))
      return -1;
    p->max_seq_len = (int32_t)n;
  } else if (!strcmp(opt, "--kv")) {
    static const kvc_kv_mode modes[] = {KVC_KV_AUTO, KVC_KV_NAIVE, KVC_KV_BOUND, KVC_KV_SHARED,
                                        KVC_KV_UNCACHED};
    const char *names[5];
    for (int k = 0; k < 5; k++)
      names[k] = kvc_kv_mode_name(modes[k]);
    int m = -1;
    if (!(v = kvc_arg_value(cmd, argc, argv, i)) || (m = kvc_arg_choice(cmd, opt, v, names, 5)) < 0)
      return -1;
    p->kv_mode = modes[m];
  } else {
    return 0;
  }
  return 1;
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

int kvc_arg_unknown(const char *cmd, const char *option, const char *usage, int with_model) {
  fprintf(stderr, "kvcache %s: unknown option '%s'\n\n%s%s", cmd, option, usage,
          with_model ? kvc_arg_model_help : "");
  return KVC_EXIT_USAGE;
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
