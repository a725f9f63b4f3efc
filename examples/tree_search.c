/* tree_search.c: a best-first search over token sequences with kvcache's K-candidate
 * evaluation: the tree-search loop of a game engine, with a language model as the scorer.
 *
 * From a root prompt, each expansion evaluates the K most likely next tokens of a node in one
 * call (kvc_seq_eval_candidates): each child's score is its path's mean log-probability per
 * token, one step deeper than its parent knows, as the candidate's own logits give the
 * log-probability of its best next token. The best open node is expanded next, its sequence rebuilt
 * by forking the root (the shared prompt is prefilled once) and appending its path. The
 * search stops after a budget of expansions and prints the best path of full depth.
 *
 * usage: tree_search MODEL_DIR [K] [DEPTH] [EXPANSIONS]
 * Uses only include/kvcache.h. Exit 0 on success, 1 on any kvcache error (printed). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvcache.h"

enum { MAX_DEPTH = 16, MAX_K = 16, MAX_NODES = 4096 };

typedef struct node {
  int32_t path[MAX_DEPTH], depth;
  double logprob; /* sum of log softmax along the path */
  double score;   /* (logprob + the best next token's) / (depth + 1) */
} node;

static int check(kvc_status s, const char *what) {
  if (s)
    fprintf(stderr, "tree_search: %s: %s (%s)\n", what, kvc_last_error(), kvc_status_name(s));
  return s != KVC_OK;
}

/* log softmax of logits[token] */
static double log_prob(const float *logits, int32_t vocab, int32_t token) {
  double max = logits[0], sum = 0;
  for (int32_t i = 1; i < vocab; i++)
    max = logits[i] > max ? logits[i] : max;
  for (int32_t i = 0; i < vocab; i++)
    sum += exp(logits[i] - max);
  return logits[token] - max - log(sum);
}

/* The k largest logits' ids, best first. */
static void top_k(const float *logits, int32_t vocab, int32_t k, int32_t *ids) {
  for (int32_t j = 0; j < k; j++) {
    int32_t best = -1;
    for (int32_t i = 0; i < vocab; i++) {
      int taken = 0;
      for (int32_t t = 0; t < j; t++)
        taken |= ids[t] == i;
      if (!taken && (best < 0 || logits[i] > logits[best]))
        best = i;
    }
    ids[j] = best;
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: tree_search MODEL_DIR [K] [DEPTH] [EXPANSIONS]\n");
    return 2;
  }
  const int32_t K = argc > 2 ? atoi(argv[2]) : 4, depth = argc > 3 ? atoi(argv[3]) : 6;
  const int expansions = argc > 4 ? atoi(argv[4]) : 24;
  if (K < 1 || K > MAX_K || depth < 1 || depth > MAX_DEPTH || expansions < 1) {
    fprintf(stderr, "tree_search: K in 1..%d, DEPTH in 1..%d, EXPANSIONS >= 1\n", MAX_K, MAX_DEPTH);
    return 2;
  }
  kvc_model *model = NULL;
  kvc_ctx *ctx = NULL;
  kvc_seq *root = NULL, *cur = NULL;
  kvc_model_params mp = kvc_model_default_params();
  mp.intra_op_threads = 1;
  if (check(kvc_model_open(argv[1], &mp, &model), "opening the model"))
    return 1;
  kvc_model_info info;
  kvc_model_get_info(model, &info);
  const int32_t V = info.vocab_size;
  /* root, the node being expanded, and K - 1 slots for its candidates */
  kvc_ctx_params cp = kvc_ctx_default_params();
  cp.slots = K + 1;
  node *nodes = calloc(MAX_NODES, sizeof *nodes);
  float *logits = malloc((size_t)K * V * sizeof *logits);
  int32_t cand[MAX_K], n_nodes = 1, rc = 1, evaluated = 0;
  const int32_t prompt[] = {1, 17, 42, 99, 7, 3};
  if (!nodes || !logits || check(kvc_ctx_new(model, &cp, &ctx), "making a context") ||
      check(kvc_seq_new_in(ctx, &root), "a root sequence") ||
      check(kvc_seq_append(root, prompt, 6), "prefilling the root"))
    goto done;
  uint8_t *open = calloc(MAX_NODES, 1);
  if (!open)
    goto done;
  open[0] = 1; /* node 0: the root, depth 0 */
  int best_full = -1;
  for (int e = 0; e < expansions; e++) {
    int pick = -1; /* the open node of the best score (the root first) */
    for (int i = 0; i < n_nodes; i++)
      if (open[i] && (pick < 0 || nodes[i].score > nodes[pick].score))
        pick = i;
    if (pick < 0 || n_nodes + K > MAX_NODES)
      break;
    open[pick] = 0;
    const node *n = &nodes[pick];
    /* its sequence: the root's prefix, shared, then its path */
    if (check(kvc_seq_fork(root, kvc_seq_len(root), &cur), "forking the root") ||
        (n->depth > 0 && check(kvc_seq_append(cur, n->path, n->depth), "appending a path")))
      break;
    top_k(kvc_seq_logits(cur), V, K, cand);
    if (check(kvc_seq_eval_candidates(cur, cand, K, 1, logits), "evaluating candidates"))
      break;
    evaluated += K;
    for (int32_t j = 0; j < K; j++) {
      node *c = &nodes[n_nodes];
      *c = *n;
      c->path[c->depth++] = cand[j];
      c->logprob += log_prob(kvc_seq_logits(cur), V, cand[j]);
      int32_t next;
      top_k(logits + (size_t)j * V, V, 1, &next);
      c->score = (c->logprob + log_prob(logits + (size_t)j * V, V, next)) / (c->depth + 1);
      open[n_nodes] = c->depth < depth;
      if (c->depth == depth && (best_full < 0 || c->logprob > nodes[best_full].logprob))
        best_full = n_nodes;
      n_nodes++;
    }
    kvc_seq_free(cur);
    cur = NULL;
  }
  kvc_ctx_info ci;
  kvc_ctx_get_info(ctx, &ci);
  printf("expanded %d nodes (%d candidates evaluated, %s), context of %d slots, %d in use\n",
         n_nodes - 1 > 0 ? (n_nodes - 1) / K : 0, evaluated,
         ci.batches ? "K per run" : "one run each", ci.slots, ci.slots_used);
  if (best_full >= 0) {
    printf("best path of depth %d (log-probability %.3f):", depth, nodes[best_full].logprob);
    for (int32_t i = 0; i < nodes[best_full].depth; i++)
      printf(" %d", nodes[best_full].path[i]);
    printf("\n");
    rc = 0;
  } else {
    fprintf(stderr, "tree_search: no path reached depth %d within %d expansions\n", depth,
            expansions);
  }
  free(open);
done:
  kvc_seq_free(cur);
  kvc_seq_free(root);
  kvc_ctx_free(ctx);
  kvc_model_free(model);
  free(nodes);
  free(logits);
  return rc;
}
