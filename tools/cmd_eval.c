/* kvcache eval: a model (a quantised one, say) against its original on the same token streams:
 * the next-token distributions compared at every position. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "commands.h"
#include "kvcache.h"
#include "progress.h"
#include "stats.h"

static const char usage[] =
    "usage: kvcache eval -m BASE_DIR --against OTHER_DIR [options]\n"
    "\n"
    "Feeds both models the same token streams: seeded random prompts, then the base model's\n"
    "greedy continuation. At every position it compares the two next-token distributions:\n"
    "mean KL divergence KL(base || other) in nats, top-1 agreement, and the largest logit\n"
    "difference, per bucket of 64 positions and overall.\n"
    "\n";

enum { BUCKET = 64, MAX_BUCKETS = 1 << 14 };

typedef struct tally {
  double kl;
  int64_t n, top1;
  double max_dl;
} tally;

/* KL(P || Q) of the softmaxes of a and b, in nats. */
static double kl_of(const float *a, const float *b, int32_t n) {
  double ma = a[0], mb = b[0], za = 0, zb = 0, kl = 0;
  for (int32_t i = 1; i < n; i++)
    ma = fmax(ma, a[i]), mb = fmax(mb, b[i]);
  for (int32_t i = 0; i < n; i++)
    za += exp(a[i] - ma), zb += exp(b[i] - mb);
  const double la = ma + log(za), lb = mb + log(zb); /* log partition functions */
  for (int32_t i = 0; i < n; i++) {
    const double lp = a[i] - la, lq = b[i] - lb;
    kl += exp(lp) * (lp - lq);
  }
  return kl > 0 ? kl : 0;
}

static void add(tally *t, const float *a, const float *b, int32_t n) {
  t->kl += kl_of(a, b, n);
  t->top1 += kvc_stat_argmax(a, n) == kvc_stat_argmax(b, n);
  t->n++;
  for (int32_t i = 0; i < n; i++)
    t->max_dl = fmax(t->max_dl, fabs((double)a[i] - b[i]));
}

static void row(const char *label, const tally *t) {
  printf("%-12s %8lld %12.3e %9.2f%% %10.4f\n", label, (long long)t->n, t->n ? t->kl / t->n : 0.0,
         t->n ? 100.0 * t->top1 / t->n : 0.0, t->max_dl);
}

static cJSON *json_of(const tally *t) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "positions", (double)t->n);
  cJSON_AddNumberToObject(o, "mean_kl", t->n ? t->kl / t->n : 0.0);
  cJSON_AddNumberToObject(o, "top1_agreement", t->n ? (double)t->top1 / t->n : 0.0);
  cJSON_AddNumberToObject(o, "max_abs_dlogit", t->max_dl);
  return o;
}

int kvc_cmd_eval(int argc, char **argv) {
  const char *cmd = "eval", *base_dir = NULL, *other_dir = NULL, *json = NULL;
  kvc_model_params mp = kvc_model_default_params();
  int64_t prompts = 16, prompt_len = 16, steps = 256;
  uint64_t seed = 1;
  int other_type = -1; /* a kvc_kv_type: kvc_arg_kv_type_names' index */
  kvc_opt opts[] = {
      KVC_TEXT("--against", "DIR", &other_dir, "the model to evaluate (same vocabulary)"),
      KVC_CHOICE("--against-kv-type", NULL, &other_type, kvc_arg_kv_type_names(),
                 "its cache element type (default: --kv-type's); the same DIR\n"
                 "with another type measures what the cache type costs"),
      KVC_INT64("--prompts", "N", &prompts, 1, 1 << 20, "streams (16)"),
      KVC_INT64("--prompt-len", "N", &prompt_len, 1, 1 << 20,
                "random prompt tokens per stream (16)"),
      KVC_INT64("--steps", "N", &steps, 1, 1 << 20, "greedy steps per stream (256)"),
      KVC_UINT64("--seed", "N", &seed, "prompt seed (1)"),
      KVC_TEXT("--json", "FILE", &json, "also write the figures as JSON"),
  };
  kvc_args args = KVC_ARGS_MODEL(cmd, usage, opts, &mp, &base_dir);
  const int parsed = kvc_args_parse(&args, argc, argv);
  if (parsed != KVC_ARGS_GO)
    return parsed;
  if (!other_dir) {
    fprintf(stderr, "kvcache %s: --against DIR is required\n\n", cmd);
    kvc_args_help(&args, stderr);
    return KVC_EXIT_USAGE;
  }
  kvc_model *base = NULL, *other = NULL;
  kvc_model_params op = mp;
  if (other_type >= 0)
    op.kv_type = (kvc_kv_type)other_type;
  int rc = kvc_arg_open_model(cmd, base_dir, &mp, &base);
  if (!rc)
    rc = kvc_arg_open_model(cmd, other_dir, &op, &other);
  kvc_model_info bi, oi;
  if (!rc) {
    kvc_model_get_info(base, &bi);
    kvc_model_get_info(other, &oi);
    const int64_t need = prompt_len + steps;
    if (bi.vocab_size != oi.vocab_size) {
      fprintf(stderr, "kvcache %s: vocabularies differ (%d and %d): not comparable\n", cmd,
              bi.vocab_size, oi.vocab_size);
      rc = KVC_EXIT_USAGE;
    } else if (need > bi.max_seq_len || need > oi.max_seq_len) {
      fprintf(stderr,
              "kvcache %s: --prompt-len %lld + --steps %lld exceeds a max length (%d, %d)\n", cmd,
              (long long)prompt_len, (long long)steps, bi.max_seq_len, oi.max_seq_len);
      rc = KVC_EXIT_USAGE;
    }
  }
  const int n_buckets = rc ? 0 : (int)((prompt_len + steps + BUCKET - 1) / BUCKET);
  tally *buckets = calloc((size_t)n_buckets + 1, sizeof *buckets), all = {0};
  int32_t *tokens = malloc((size_t)(prompt_len + steps + 1) * sizeof *tokens);
  float *copy = rc ? NULL : malloc((size_t)bi.vocab_size * sizeof *copy);
  if (!rc && (!buckets || !tokens || !copy)) {
    fprintf(stderr, "kvcache %s: out of memory\n", cmd);
    rc = 1;
  }
  kvc_progress bar;
  kvc_progress_start(&bar, cmd, "both models", "steps", prompts * steps);
  for (int64_t p = 0; !rc && p < prompts; p++) {
    kvc_seq *a = NULL, *b = NULL;
    kvc_arg_random_tokens(seed + (uint64_t)p, tokens, prompt_len, bi.vocab_size);
    kvc_status s = kvc_seq_new(base, NULL, &a);
    if (!s)
      s = kvc_seq_new(other, NULL, &b);
    if (!s)
      s = kvc_seq_append(a, tokens, (int32_t)prompt_len);
    if (!s)
      s = kvc_seq_append(b, tokens, (int32_t)prompt_len);
    for (int64_t step = 0; !s && step < steps; step++) {
      const int64_t position = prompt_len - 1 + step;
      memcpy(copy, kvc_seq_logits(a), (size_t)bi.vocab_size * sizeof *copy);
      add(&buckets[position / BUCKET], copy, kvc_seq_logits(b), bi.vocab_size);
      add(&all, copy, kvc_seq_logits(b), bi.vocab_size);
      int32_t next = kvc_stat_argmax(copy, bi.vocab_size);
      if (step + 1 < steps && !(s = kvc_seq_append(a, &next, 1)))
        s = kvc_seq_append(b, &next, 1);
      char now[48];
      snprintf(now, sizeof now, "stream %lld of %lld", (long long)p + 1, (long long)prompts);
      if (!s)
        kvc_progress_step(&bar, now);
    }
    if (s) {
      fprintf(stderr, "kvcache %s: %s\n", cmd, kvc_last_error());
      rc = 1;
    }
    kvc_seq_free(a);
    kvc_seq_free(b);
  }
  if (!rc) {
    printf("%s (%s cache) against %s (%s cache): %lld streams, prompts of %lld, %lld greedy "
           "steps\n",
           other_dir, kvc_kv_type_name(oi.kv_type), base_dir ? base_dir : "(default)",
           kvc_kv_type_name(bi.kv_type), (long long)prompts, (long long)prompt_len,
           (long long)steps);
    printf("%-12s %8s %12s %10s %10s\n", "positions", "compared", "mean KL", "top-1", "max |dl|");
    cJSON *root = cJSON_CreateObject(), *per = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "kv_type", kvc_kv_type_name(bi.kv_type));
    cJSON_AddStringToObject(root, "against_kv_type", kvc_kv_type_name(oi.kv_type));
    for (int k = 0; k < n_buckets; k++) {
      if (!buckets[k].n)
        continue;
      char label[32];
      snprintf(label, sizeof label, "%d-%d", k * BUCKET, (k + 1) * BUCKET - 1);
      row(label, &buckets[k]);
      cJSON_AddItemToObject(per, label, json_of(&buckets[k]));
    }
    row("all", &all);
    cJSON_AddItemToObject(root, "all", json_of(&all));
    cJSON_AddItemToObject(root, "per_position", per);
    char *text = json ? cJSON_Print(root) : NULL;
    FILE *f = text ? fopen(json, "w") : NULL;
    if (json && (!f || fputs(text, f) < 0)) {
      fprintf(stderr, "kvcache %s: cannot write %s\n", cmd, json);
      rc = 1;
    }
    if (f)
      fclose(f);
    cJSON_free(text);
    cJSON_Delete(root);
  }
  free(buckets);
  free(tokens);
  free(copy);
  kvc_model_free(base);
  kvc_model_free(other);
  return rc;
}
