/* kvcache verify: every cached mode against the uncached recompute, side by side. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "kvcache.h"
#include "progress.h"

static const char usage[] =
    "usage: kvcache verify -m DIR [--prompt-len P] [--steps N] [--seed S]\n"
    "\n"
    "Feeds one random prompt of P tokens, then N greedy tokens, to every cached KV mode\n"
    "(naive, bound, and shared where the graph supports it) and to the uncached recompute,\n"
    "and compares their logits at every step.\n"
    "Exits 1 if any logit differs from the uncached one by more than 1e-4, naming the worst\n"
    "position.\n"
    "\n";

static const kvc_kv_mode cached[] = {KVC_KV_NAIVE, KVC_KV_BOUND, KVC_KV_SHARED};
enum { N_CACHED = sizeof cached / sizeof cached[0] };

int kvc_cmd_verify(int argc, char **argv) {
  const char *cmd = "verify", *dir = NULL;
  kvc_model_params mp = kvc_model_default_params();
  int64_t prompt_len = 16, steps = 64;
  uint64_t seed = 1;
  kvc_opt opts[] = {
      KVC_INT64("--prompt-len", "P", &prompt_len, 1, 1 << 24, "prompt length (16)"),
      KVC_INT64("--steps", "N", &steps, 0, 1 << 24, "decode steps (64)"),
      KVC_UINT64("--seed", "S", &seed, "seed of the random prompt (1)"),
  };
  kvc_args args = KVC_ARGS_MODEL(cmd, usage, opts, &mp, &dir);
  const int parsed = kvc_args_parse(&args, argc, argv);
  if (parsed != KVC_ARGS_GO)
    return parsed;
  kvc_model *model = NULL;
  int rc = kvc_arg_open_model(cmd, dir, &mp, &model);
  if (rc)
    return rc;
  kvc_model_info info;
  kvc_model_get_info(model, &info);
  if (prompt_len + steps > info.max_seq_len) {
    fprintf(stderr, "kvcache %s: --prompt-len %lld + --steps %lld exceeds max length %d\n", cmd,
            (long long)prompt_len, (long long)steps, info.max_seq_len);
    kvc_model_free(model);
    return KVC_EXIT_USAGE;
  }

  kvc_seq *oracle = NULL, *seqs[N_CACHED] = {0};
  kvc_seq_params sp = kvc_seq_default_params();
  sp.kv_mode = KVC_KV_UNCACHED;
  kvc_status s = kvc_seq_new(model, &sp, &oracle);
  int n_modes = info.attention != KVC_ATTENTION_CONCAT ? N_CACHED : N_CACHED - 1;
  for (int m = 0; m < n_modes && !s; m++) {
    sp.kv_mode = cached[m];
    s = kvc_seq_new(model, &sp, &seqs[m]);
  }
  int32_t *prompt = malloc((size_t)prompt_len * sizeof *prompt);
  if (prompt)
    kvc_arg_random_tokens(seed, prompt, prompt_len, info.vocab_size);
  double worst[N_CACHED] = {0};
  int32_t worst_pos[N_CACHED] = {0};
  kvc_progress bar; /* the recompute's steps grow with the sequence: at 243 M, minutes */
  kvc_progress_start(&bar, cmd, "every mode and the recompute", "steps", steps + 1);
  for (int64_t step = 0; !s && step <= steps; step++) {
    const int32_t *tokens = prompt;
    int32_t n = (int32_t)prompt_len, next = 0;
    if (step > 0) { /* greedy continuation, chosen by the oracle */
      const float *l = kvc_seq_logits(oracle);
      for (int32_t j = 1; j < info.vocab_size; j++)
        next = l[j] > l[next] ? j : next;
      tokens = &next;
      n = 1;
    }
    s = kvc_seq_append(oracle, tokens, n);
    for (int m = 0; m < n_modes && !s; m++)
      s = kvc_seq_append(seqs[m], tokens, n);
    for (int m = 0; m < n_modes && !s; m++) {
      const float *a = kvc_seq_logits(seqs[m]), *b = kvc_seq_logits(oracle);
      for (int32_t j = 0; j < info.vocab_size; j++) {
        double d = fabs((double)a[j] - (double)b[j]);
        if (d > worst[m]) {
          worst[m] = d;
          worst_pos[m] = kvc_seq_len(oracle) - 1;
        }
      }
    }
    char now[32];
    snprintf(now, sizeof now, "position %d", kvc_seq_len(oracle) - 1);
    if (!s)
      kvc_progress_step(&bar, now);
  }
  if (s) {
    fprintf(stderr, "kvcache %s: %s\n", cmd, kvc_last_error());
    rc = 1;
  } else {
    printf("prompt %lld tokens + %lld greedy steps, max |logit - uncached logit| (limit 1e-4):\n",
           (long long)prompt_len, (long long)steps);
    for (int m = 0; m < n_modes; m++) {
      int bad = worst[m] > KVC_AGREEMENT_LIMIT;
      printf("  %-8s %.3g at position %d  %s\n", kvc_kv_mode_name(cached[m]), worst[m],
             worst_pos[m], bad ? "FAIL" : "ok");
      rc |= bad;
    }
  }
  for (int m = 0; m < N_CACHED; m++)
    kvc_seq_free(seqs[m]);
  kvc_seq_free(oracle);
  free(prompt);
  kvc_model_free(model);
  return rc;
}
