/* parallel.c: `kvcache generate --prompts FILE --parallel P`: many prompts decoding together
 * in one context of P slots, a new prompt joining whenever one finishes. Each step is one
 * kvc_seq_append_batch() over the sequences in flight. */
#include "parallel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"

typedef struct prompt {
  int32_t *ids, n, line;
  int32_t *out, n_out; /* generated tokens */
  int cache_full;
} prompt;

typedef struct lane {
  kvc_seq *seq;
  kvc_sampler *sampler;
  prompt *p;
  int32_t next; /* the token to append next step */
} lane;

/* Read one prompt per non-blank line; returns the count or -1 after printing why. */
static int read_prompts(const char *cmd, const char *path, int32_t vocab, prompt **out) {
  FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
  if (!f) {
    fprintf(stderr, "kvcache %s: cannot open --prompts file %s: %s\n", cmd, path, strerror(errno));
    return -1;
  }
  prompt *list = NULL;
  int n = 0, cap = 0, line_no = 0, bad = 0;
  char *line = NULL;
  size_t line_cap = 0;
  while (!bad && getline(&line, &line_cap, f) >= 0) {
    line_no++;
    line[strcspn(line, "\r\n")] = '\0';
    if (line[strspn(line, " \t,")] == '\0')
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 16;
      prompt *grown = realloc(list, (size_t)cap * sizeof *list);
      if (!grown) {
        bad = 1;
        break;
      }
      list = grown;
    }
    prompt *p = &list[n];
    memset(p, 0, sizeof *p);
    p->line = line_no;
    p->n = kvc_arg_parse_ids(line, &p->ids);
    if (p->n <= 0) {
      fprintf(stderr,
              "kvcache %s: %s line %d: expected token ids separated by spaces, got '%.60s'\n", cmd,
              path, line_no, line);
      free(p->ids);
      bad = 1;
      break;
    }
    n++;
    for (int32_t i = 0; i < p->n && !bad; i++) {
      if (p->ids[i] < 0 || p->ids[i] >= vocab) {
        fprintf(stderr, "kvcache %s: %s line %d: token %d is outside [0, %d)\n", cmd, path, line_no,
                p->ids[i], vocab);
        bad = 1;
      }
    }
  }
  free(line);
  if (f != stdin)
    fclose(f);
  if (!bad && n == 0) {
    fprintf(stderr, "kvcache %s: %s holds no prompt\n", cmd, path);
    bad = 1;
  }
  if (bad) {
    for (int i = 0; i < n; i++)
      free(list[i].ids);
    free(list);
    return -1;
  }
  *out = list;
  return n;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Start prompt p in a free lane: a new sequence in the context, its own sampler. */
static kvc_status join(kvc_ctx *ctx, lane *l, prompt *p, const kvc_sampler_params *sp,
                       int32_t vocab, int index) {
  kvc_sampler_params own = *sp;
  own.seed = sp->seed + (uint64_t)index; /* the same tokens whatever P is */
  memset(l, 0, sizeof *l);
  kvc_status s = kvc_seq_new_in(ctx, &l->seq);
  if (!s)
    s = kvc_sampler_new(&own, vocab, &l->sampler);
  l->p = p;
  return s;
}

static void leave(lane *l) {
  kvc_seq_free(l->seq);
  kvc_sampler_free(l->sampler);
  memset(l, 0, sizeof *l);
}

int kvc_generate_prompts(const char *cmd, kvc_model *model, const char *path, int parallel,
                         int32_t n_new, const kvc_sampler_params *sp) {
  kvc_model_info info;
  kvc_model_get_info(model, &info);
  prompt *prompts = NULL;
  const int n = read_prompts(cmd, path, info.vocab_size, &prompts);
  if (n < 0)
    return KVC_EXIT_USAGE;
  for (int i = 0; i < n; i++) {
    if (prompts[i].n > info.max_seq_len) {
      fprintf(stderr, "kvcache %s: %s line %d: %d tokens exceed max_seq_len %d\n", cmd, path,
              prompts[i].line, prompts[i].n, info.max_seq_len);
      for (int k = 0; k < n; k++)
        free(prompts[k].ids);
      free(prompts);
      return KVC_EXIT_USAGE;
    }
  }
  const int P = parallel < 1 ? 1 : parallel < n ? parallel : n;
  kvc_ctx_params cp = kvc_ctx_default_params();
  cp.slots = P;
  kvc_ctx *ctx = NULL;
  lane *lanes = calloc((size_t)P, sizeof *lanes);
  kvc_batch_item *items = calloc((size_t)P, sizeof *items);
  int *item_lane = calloc((size_t)P, sizeof *item_lane);
  kvc_status s = lanes && items && item_lane ? kvc_ctx_new(model, &cp, &ctx) : KVC_ERR_NO_MEMORY;
  for (int i = 0; i < n && !s; i++)
    if (!(prompts[i].out = malloc((size_t)n_new * sizeof *prompts[i].out)))
      s = KVC_ERR_NO_MEMORY;
  int next = 0, steps = 0;
  int64_t tokens = 0;
  double run_ms = 0;
  while (!s) {
    int k = 0;
    for (int i = 0; i < P && !s; i++) {
      lane *l = &lanes[i];
      if (!l->seq && next < n) {
        s = join(ctx, l, &prompts[next], sp, info.vocab_size, next);
        next++;
        if (!s)
          items[k] = (kvc_batch_item){l->seq, l->p->ids, l->p->n, NULL};
      } else if (l->seq) {
        items[k] = (kvc_batch_item){l->seq, &l->next, 1, NULL};
      } else {
        continue;
      }
      item_lane[k++] = i;
    }
    if (s || k == 0)
      break;
    const double t0 = now_ms();
    s = kvc_seq_append_batch(items, k);
    run_ms += now_ms() - t0;
    steps++;
    for (int j = 0; j < k && !s; j++) {
      lane *l = &lanes[item_lane[j]];
      prompt *p = l->p;
      int32_t token = 0;
      if ((s = kvc_sampler_sample_seq(l->sampler, l->seq, &token)))
        break;
      p->out[p->n_out++] = token;
      tokens++;
      p->cache_full = p->n_out < n_new && kvc_seq_len(l->seq) >= info.max_seq_len;
      if (p->n_out == n_new || p->cache_full)
        leave(l);
      else
        l->next = token;
    }
  }
  int rc = 0;
  if (s) {
    fprintf(stderr, "kvcache %s: %s\n", cmd,
            s == KVC_ERR_NO_MEMORY && !ctx ? "out of memory" : kvc_last_error());
    rc = s == KVC_ERR_INVALID_ARG ? KVC_EXIT_USAGE : 1;
  }
  for (int i = 0; i < n && !rc; i++) {
    for (int32_t t = 0; t < prompts[i].n_out; t++)
      printf("%s%d", t ? " " : "", prompts[i].out[t]);
    printf("\n");
    if (prompts[i].cache_full) {
      fprintf(stderr, "kvcache %s: %s line %d: the cache (max_seq_len %d) filled after %d tokens\n",
              cmd, path, prompts[i].line, info.max_seq_len, prompts[i].n_out);
      rc = KVC_EXIT_USAGE;
    }
  }
  if (!s)
    fprintf(stderr,
            "kv %s, %d prompts, %d in parallel (%s): %d steps, %lld tokens in %.1f ms "
            "(%.1f tokens/s)\n",
            kvc_kv_mode_name(info.kv_mode), n, P,
            info.batches ? "one run per step" : "one run per sequence", steps, (long long)tokens,
            run_ms, run_ms > 0 ? tokens * 1e3 / run_ms : 0.0);
  for (int i = 0; i < P && lanes; i++)
    leave(&lanes[i]);
  kvc_ctx_free(ctx);
  for (int i = 0; i < n; i++) {
    free(prompts[i].ids);
    free(prompts[i].out);
  }
  free(prompts);
  free(lanes);
  free(items);
  free(item_lane);
  return rc;
}
