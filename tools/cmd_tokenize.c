/* kvcache tokenize / detokenize: text <-> token ids through a tokenizer.json, line by line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "commands.h"
#include "kvcache.h"
#include "stats.h"

static const char tokenize_usage[] =
    "usage: kvcache tokenize --tokenizer FILE [--special] [--stats] < text\n"
    "\n"
    "Reads UTF-8 text from stdin, one text per line (the newline is not part of it), and\n"
    "prints one line of space-separated token ids per input line.\n"
    "\n";

static const char detokenize_usage[] =
    "usage: kvcache detokenize --tokenizer FILE [--skip-special] < ids\n"
    "\n"
    "Reads lines of space-separated token ids from stdin and prints each line's text.\n"
    "\n";

/* Parse the options: --tokenizer, the flag `flag_name` (--special or --skip-special) into
 * *flag, and --stats when stats is not NULL. */
static int parse(const char *cmd, const char *usage, const char *flag_name, const char *flag_help,
                 int argc, char **argv, const char **path, int *flag, int *stats) {
  kvc_opt opts[] = {
      KVC_TEXT("--tokenizer", "FILE", path,
               "a Hugging Face tokenizer.json, or a directory holding one"),
      KVC_FLAG(flag_name, flag, flag_help),
      KVC_FLAG("--stats", stats, "print the encoding speed (MB/s of text, one thread) to stderr"),
  };
  kvc_args args = KVC_ARGS(cmd, usage, opts);
  args.n_opts = stats ? 3 : 2;
  const int parsed = kvc_args_parse(&args, argc, argv);
  if (parsed != KVC_ARGS_GO)
    return parsed == 0 ? -1 : parsed; /* -1: the help was printed */
  if (!*path) {
    fprintf(stderr, "kvcache %s: --tokenizer FILE is required\n\n", cmd);
    kvc_args_help(&args, stderr);
    return KVC_EXIT_USAGE;
  }
  return 0;
}

static int open_tokenizer(const char *cmd, const char *path, kvc_tokenizer **t) {
  kvc_status s = kvc_tokenizer_open(path, t);
  if (s) {
    fprintf(stderr, "kvcache %s: %s\n", cmd, kvc_last_error());
    return s == KVC_ERR_INVALID_ARG || s == KVC_ERR_IO ? KVC_EXIT_USAGE : 1;
  }
  return 0;
}

int kvc_cmd_tokenize(int argc, char **argv) {
  const char *cmd = "tokenize", *path = NULL;
  int special = 0, stats = 0;
  int rc = parse(cmd, tokenize_usage, "--special",
                 "add the tokenizer's special tokens (e.g. BOS) around each line", argc, argv,
                 &path, &special, &stats);
  kvc_tokenizer *t = NULL;
  if (rc)
    return rc < 0 ? 0 : rc;
  if ((rc = open_tokenizer(cmd, path, &t)))
    return rc;
  char *line = NULL;
  size_t line_cap = 0, bytes = 0;
  int32_t *ids = NULL, cap = 0;
  double busy = 0;
  long number = 0;
  for (ssize_t n; !rc && (n = getline(&line, &line_cap, stdin)) >= 0;) {
    number++;
    if (n > 0 && line[n - 1] == '\n')
      n--;
    int32_t count = 0;
    const double start = kvc_stat_now_ms();
    kvc_status s = kvc_tokenize(t, line, (size_t)n, special, ids, cap, &count);
    if (!s && count > cap) { /* the array was too small: grow it and encode again */
      int32_t *grown = realloc(ids, (size_t)count * sizeof *ids);
      if (!grown) {
        fprintf(stderr, "kvcache %s: out of memory\n", cmd);
        rc = 1;
        break;
      }
      ids = grown, cap = count;
      s = kvc_tokenize(t, line, (size_t)n, special, ids, cap, &count);
    }
    busy += (kvc_stat_now_ms() - start) / 1e3;
    bytes += (size_t)n;
    if (s) {
      fprintf(stderr, "kvcache %s: line %ld: %s\n", cmd, number, kvc_last_error());
      rc = s == KVC_ERR_INVALID_ARG ? KVC_EXIT_USAGE : 1;
      break;
    }
    for (int32_t i = 0; i < count; i++)
      printf("%s%d", i ? " " : "", ids[i]);
    putchar('\n');
  }
  if (stats && !rc)
    fprintf(stderr, "encoded %ld lines, %zu bytes in %.3f s: %.2f MB/s\n", number, bytes, busy,
            busy > 0 ? bytes / busy / 1e6 : 0.0);
  free(line);
  free(ids);
  kvc_tokenizer_free(t);
  return rc;
}

int kvc_cmd_detokenize(int argc, char **argv) {
  const char *cmd = "detokenize", *path = NULL;
  int skip = 0;
  int rc = parse(cmd, detokenize_usage, "--skip-special", "leave special tokens out of the text",
                 argc, argv, &path, &skip, NULL);
  kvc_tokenizer *t = NULL;
  if (rc)
    return rc < 0 ? 0 : rc;
  if ((rc = open_tokenizer(cmd, path, &t)))
    return rc;
  char *line = NULL, *text = NULL;
  size_t line_cap = 0, text_cap = 0;
  long number = 0;
  for (ssize_t n; !rc && (n = getline(&line, &line_cap, stdin)) >= 0;) {
    number++;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = '\0';
    int32_t *ids = NULL;
    int count = 0;
    if (strspn(line, " \t\r\n") < (size_t)n && (count = kvc_arg_parse_ids(line, &ids)) <= 0) {
      fprintf(stderr, "kvcache %s: line %ld: expected token ids separated by spaces\n", cmd,
              number);
      rc = KVC_EXIT_USAGE;
    }
    size_t len = 0;
    kvc_status s = rc ? KVC_OK : kvc_detokenize(t, ids, count, skip, text, text_cap, &len);
    if (!rc && !s && len + 1 > text_cap) {
      char *grown = realloc(text, len + 1);
      if (!grown) {
        fprintf(stderr, "kvcache %s: out of memory\n", cmd);
        rc = 1;
      } else {
        text = grown, text_cap = len + 1;
        s = kvc_detokenize(t, ids, count, skip, text, text_cap, &len);
      }
    }
    if (!rc && s) {
      fprintf(stderr, "kvcache %s: line %ld: %s\n", cmd, number, kvc_last_error());
      rc = s == KVC_ERR_INVALID_ARG ? KVC_EXIT_USAGE : 1;
    }
    if (!rc) {
      fwrite(text ? text : "", 1, len, stdout);
      putchar('\n');
    }
    free(ids);
  }
  free(line);
  free(text);
  kvc_tokenizer_free(t);
  return rc;
}
