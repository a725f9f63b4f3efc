/* Regressions from hostile testing: paths that are not regular files, oversized configs,
 * lengths the graph cannot address, thread counts that exhaust the process, a sampler made
 * for another vocabulary, ONNX Runtime failures reported with the documented status, and a
 * cache larger than the machine. Without its fix each case hangs, crashes, reads out of
 * bounds or reports the wrong status, and a failed multi-run append lost its logits.
 * (Non-finite logits: test_sample.c; bench output paths: test_cli_bench.sh.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "hooks.h"
#include "modelgen/onnx.h"

enum { VOCAB = 64, MAX_LEN = 32 };

typedef struct fixture {
  char dir[256]; /* a small GQA model with MAX_LEN positions */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  kvc_build_params p = kvc_build_default_params();
  p.layers = 1, p.heads = 2, p.head_dim = 16, p.vocab_size = VOCAB, p.max_seq_len = MAX_LEN;
  p.attention = KVC_ATTENTION_GQA;
  th_tmpdir(f->dir, sizeof f->dir, "hostile");
  assert_int_equal(kvc_build_model(f->dir, &p), KVC_OK);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  th_rmdir(f->dir);
  free(f);
  return 0;
}

static void run(const char *fmt, const char *a, const char *b) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, fmt, a, b);
  assert_int_equal(system(cmd), 0);
}

/* A fresh copy of the fixture's model directory in `out`. */
static void copy_model(const fixture *f, char *out, size_t cap, const char *tag) {
  th_tmpdir(out, cap, tag);
  run("cp -r '%s' '%s'", f->dir, out);
}

static void remove_tree(const char *dir) {
  run("rm -rf '%s'%s", dir, "");
}

static void write_text(const char *dir, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *c = fopen(path, "w");
  assert_non_null(c);
  fputs(text, c);
  fclose(c);
}

/* kvc_model_open(path) with `params` fails with `want`, its message holding both needles. */
static void expect_open(const char *path, const kvc_model_params *params, kvc_status want,
                        const char *needle, const char *needle2) {
  kvc_model *m = (kvc_model *)&m; /* must come back NULL */
  kvc_status s = kvc_model_open(path, params, &m);
  if (s != want || !strstr(kvc_last_error(), needle) || !strstr(kvc_last_error(), needle2))
    fail_msg("open %s: got %s \"%s\", expected %s naming \"%s\" and \"%s\"", path,
             kvc_status_name(s), kvc_last_error(), kvc_status_name(want), needle, needle2);
  assert_null(m);
}

static kvc_model_info info_of(const char *dir) {
  kvc_model *m = th_open_model(dir);
  kvc_model_info info;
  assert_int_equal(kvc_model_get_info(m, &info), KVC_OK);
  kvc_model_free(m);
  return info;
}

/* A FIFO (config.json, model.onnx or its weights) used to block kvc_model_open forever, a
 * directory as config.json made the reader ask for 2^63 bytes: all are refused by what they
 * are, before anything opens them. */
static void non_regular_files_are_refused(void **state) {
  fixture *f = *state;
  alarm(60); /* the defect was a hang: fail instead of waiting for ctest's timeout */
  char dir[256], path[512];
  copy_model(f, dir, sizeof dir, "fifo-config");
  snprintf(path, sizeof path, "%s/config.json", dir);
  assert_int_equal(remove(path), 0);
  assert_int_equal(mkfifo(path, 0644), 0);
  expect_open(dir, NULL, KVC_ERR_IO, path, "is a FIFO");
  assert_int_equal(remove(path), 0);
  assert_int_equal(mkdir(path, 0755), 0);
  expect_open(dir, NULL, KVC_ERR_IO, path, "is a directory");
  assert_int_equal(rmdir(path), 0);
  /* bounded: a config of 64 MiB + 1 byte (sparse: nothing is written) is refused unread */
  write_text(dir, "config.json", "");
  assert_int_equal(truncate(path, ((off_t)64 << 20) + 1), 0);
  expect_open(dir, NULL, KVC_ERR_IO, path, "more than the 67108864 accepted");
  /* links are followed: a link to a regular config is a regular config */
  char real[512];
  snprintf(real, sizeof real, "%s/real.json", dir);
  FILE *c = fopen(real, "w");
  fputs("{\"max_seq_len\": 16}", c);
  fclose(c);
  assert_int_equal(remove(path), 0);
  assert_int_equal(symlink("real.json", path), 0);
  assert_int_equal(info_of(dir).max_seq_len, 16);
  remove_tree(dir);

  copy_model(f, dir, sizeof dir, "fifo-graph");
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  assert_int_equal(remove(path), 0);
  assert_int_equal(mkfifo(path, 0644), 0);
  expect_open(dir, NULL, KVC_ERR_IO, path, "is a FIFO");
  expect_open(path, NULL, KVC_ERR_IO, path, "is a FIFO"); /* the file named directly */
  remove_tree(dir);

  copy_model(f, dir, sizeof dir, "fifo-weights"); /* the graph's external weights */
  snprintf(path, sizeof path, "%s/model.onnx.data", dir);
  assert_int_equal(remove(path), 0);
  assert_int_equal(mkfifo(path, 0644), 0);
  expect_open(dir, NULL, KVC_ERR_IO, path, "is a FIFO");
  remove_tree(dir);
  alarm(0);
}

/* config.json's length must be a whole number, and no more than the graph can address:
 * decoding used to fail at position MAX_LEN instead of at open. */
static void config_lengths_must_fit_the_graph(void **state) {
  fixture *f = *state;
  char dir[256];
  copy_model(f, dir, sizeof dir, "lengths");
  write_text(dir, "config.json", "{\"max_seq_len\": 1.5}");
  expect_open(dir, NULL, KVC_ERR_MODEL, "\"max_seq_len\"", "whole number");
  write_text(dir, "config.json", "{\"n_positions\": 64}");
  expect_open(dir, NULL, KVC_ERR_MODEL, "\"n_positions\" = 64", "only 32 positions");
  expect_open(dir, NULL, KVC_ERR_MODEL, "position table", "Gather");
  write_text(dir, "config.json", "{\"max_seq_len\": 20}"); /* below the graph's: fine */
  kvc_model_info info = info_of(dir);
  assert_int_equal(info.max_seq_len, 20);
  assert_int_equal(info.graph_max_seq_len, MAX_LEN);
  /* no length in the config: the graph's table says */
  write_text(dir, "config.json", "{}");
  info = info_of(dir);
  assert_int_equal(info.max_seq_len, MAX_LEN);
  assert_int_equal(info.model_max_seq_len, MAX_LEN);
  kvc_model_params mp = kvc_model_default_params();
  mp.max_seq_len = MAX_LEN + 1;
  expect_open(dir, &mp, KVC_ERR_INVALID_ARG, "max_seq_len = 33", "maximum 32");
  write_text(dir, "genai_config.json", "{\"model\": {\"context_length\": \"long\"}}");
  expect_open(dir, NULL, KVC_ERR_MODEL, "model.context_length", "whole number");
  remove_tree(dir);
}

/* Copy the fixture's model into `out` with its position table reached through an Identity,
 * so that the graph no longer states how many positions it has; config.json says `config`. */
static void hide_position_table(const fixture *f, char *out, size_t cap, const char *config) {
  copy_model(f, out, cap, "hidden");
  Onnx__ModelProto *m = th_load_graph(out);
  Onnx__GraphProto *g = m->graph;
  Onnx__NodeProto *gather = NULL;
  for (size_t i = 0; i < g->n_node; i++)
    if (!strcmp(g->node[i]->op_type, "Gather") && !strcmp(g->node[i]->input[1], "position_ids"))
      gather = g->node[i];
  assert_non_null(gather);
  Onnx__NodeProto identity = ONNX__NODE_PROTO__INIT,
                  **nodes = malloc((g->n_node + 1) * sizeof *nodes);
  char *in[1] = {gather->input[0]}, *hidden[1] = {"position_table_hidden"}, *table = in[0];
  identity.op_type = "Identity";
  identity.n_input = 1, identity.input = in;
  identity.n_output = 1, identity.output = hidden;
  nodes[0] = &identity; /* before its use: nodes are topologically sorted */
  memcpy(nodes + 1, g->node, g->n_node * sizeof *nodes);
  Onnx__NodeProto **old_nodes = g->node;
  g->node = nodes, g->n_node++;
  gather->input[0] = hidden[0];
  static uint8_t bytes[1 << 20];
  size_t size = onnx__model_proto__pack(m, bytes);
  gather->input[0] = table; /* put back what free_unpacked owns */
  g->node = old_nodes, g->n_node--;
  free(nodes);
  onnx__model_proto__free_unpacked(m, NULL);
  char path[512];
  snprintf(path, sizeof path, "%s/model.onnx", out);
  FILE *file = fopen(path, "wb");
  assert_int_equal(fwrite(bytes, 1, size, file), size);
  fclose(file);
  write_text(out, "config.json", config);
}

/* Where the graph does not state its limit, decoding past it fails inside ONNX Runtime
 * (Gather out of range): that is KVC_ERR_RUNTIME, as documented, not INVALID_ARG; and the
 * sequence is as it was. */
static void runtime_failures_are_runtime_errors(void **state) {
  fixture *f = *state;
  char dir[256];
  hide_position_table(f, dir, sizeof dir, "{\"max_seq_len\": 64}");
  kvc_model *m = th_open_model(dir);
  kvc_model_info info;
  assert_int_equal(kvc_model_get_info(m, &info), KVC_OK);
  assert_int_equal(info.graph_max_seq_len, 0);
  assert_int_equal(info.max_seq_len, 64);
  int32_t tokens[40];
  for (int i = 0; i < 40; i++)
    tokens[i] = i % VOCAB;
  const kvc_kv_mode modes[] = {KVC_KV_SHARED, KVC_KV_BOUND, KVC_KV_NAIVE, KVC_KV_UNCACHED};
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    kvc_seq *q = th_new_seq(m, modes[i]);
    th_append(q, tokens, MAX_LEN - 2);
    float before[VOCAB];
    memcpy(before, kvc_seq_logits(q), sizeof before);
    kvc_status s = kvc_seq_append(q, tokens, 4);
    if (s != KVC_ERR_RUNTIME || !strstr(kvc_last_error(), "Gather"))
      fail_msg("%s: got %s \"%s\", expected KVC_ERR_RUNTIME from ONNX Runtime's Gather",
               kvc_kv_mode_name(modes[i]), kvc_status_name(s), kvc_last_error());
    assert_int_equal(kvc_seq_len(q), MAX_LEN - 2);
    assert_memory_equal(kvc_seq_logits(q), before, sizeof before);
    kvc_seq_free(q);
  }
  kvc_model_free(m);
  /* with neither a config length nor a table, there is no maximum to default to */
  write_text(dir, "config.json", "{}");
  expect_open(dir, NULL, KVC_ERR_MODEL, "no maximum length", "max_seq_len");
  remove_tree(dir);
}

/* 100000 intra-op threads grew memory for a minute and crashed inside ONNX Runtime. */
static void thread_counts_are_bounded(void **state) {
  fixture *f = *state;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  kvc_model_params mp = kvc_model_default_params();
  char most[64];
  snprintf(most, sizeof most, "to %ld", KVC_THREADS_PER_CPU * cpus);
  mp.intra_op_threads = (int32_t)(KVC_THREADS_PER_CPU * cpus + 1);
  expect_open(f->dir, &mp, KVC_ERR_INVALID_ARG, "intra_op_threads", most);
  mp.intra_op_threads = 100000;
  expect_open(f->dir, &mp, KVC_ERR_INVALID_ARG, "intra_op_threads = 100000", most);
  mp.intra_op_threads = -1;
  expect_open(f->dir, &mp, KVC_ERR_INVALID_ARG, "intra_op_threads = -1", most);
}

/* A sampler for vocab + 1 read past the logits; one for 10 silently kept ids below 10. */
static void generate_needs_the_models_vocabulary(void **state) {
  fixture *f = *state;
  kvc_model *m = th_open_model(f->dir);
  kvc_seq *q = th_new_seq(m, KVC_KV_AUTO);
  const int32_t prompt[3] = {1, 2, 3};
  int32_t out[4], n_out = -1;
  const int32_t sizes[] = {VOCAB + 1, 10};
  for (int i = 0; i < 2; i++) {
    kvc_sampler *s = NULL;
    assert_int_equal(kvc_sampler_new(NULL, sizes[i], &s), KVC_OK);
    assert_int_equal(kvc_generate(q, prompt, 3, 4, s, out, &n_out, NULL, NULL),
                     KVC_ERR_INVALID_ARG);
    char both[64];
    snprintf(both, sizeof both, "made for %d logits, the model has %d", sizes[i], VOCAB);
    if (!strstr(kvc_last_error(), both))
      fail_msg("message \"%s\" lacks \"%s\"", kvc_last_error(), both);
    assert_int_equal(n_out, 0);
    assert_int_equal(kvc_seq_len(q), 0); /* refused before the prompt went in */
    kvc_sampler_free(s);
  }
  kvc_sampler *s = NULL;
  assert_int_equal(kvc_sampler_new(NULL, VOCAB, &s), KVC_OK);
  assert_int_equal(kvc_generate(q, prompt, 3, 4, s, out, &n_out, NULL, NULL), KVC_OK);
  assert_int_equal(n_out, 4);
  kvc_sampler_free(s);
  kvc_seq_free(q);
  kvc_model_free(m);
}

/* A GQA model of the given sizes written into a fresh directory `dir` named after `tag`. */
static void build_gqa(char *dir, size_t cap, const char *tag, int32_t layers, int32_t heads,
                      int32_t head_dim, int32_t vocab, int32_t max_seq_len) {
  kvc_build_params p = kvc_build_default_params();
  p.layers = layers, p.heads = heads, p.head_dim = head_dim, p.vocab_size = vocab;
  p.max_seq_len = max_seq_len;
  p.attention = KVC_ATTENTION_GQA;
  th_tmpdir(dir, cap, tag);
  assert_int_equal(kvc_build_model(dir, &p), KVC_OK);
}

/* A context whose cache exceeds the machine's memory: the pages are touched at creation, so
 * it used to be killed there (or fail as RUNTIME); it is KVC_ERR_NO_MEMORY, nothing held. */
static void a_cache_larger_than_memory_is_no_memory(void **state) {
  (void)state;
  const double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
  /* per position: 2 (k, v) x 4 layers x 64 floats; positions per slot to need 2 x ram */
  const double per_position = 2.0 * 4 * 64 * sizeof(float);
  const double positions = 2 * ram / (KVC_MAX_SLOTS * per_position);
  assert_true(positions < 1048576); /* the builder's limit: machines up to ~8 TiB */
  char dir[256];
  build_gqa(dir, sizeof dir, "huge-cache", 4, 1, 64, 16, (int32_t)positions + 1);
  kvc_model *m = th_open_model(dir);
  const kvc_kv_mode modes[] = {KVC_KV_SHARED, KVC_KV_BOUND};
  for (int i = 0; i < 2; i++) {
    kvc_ctx_params cp = {.slots = KVC_MAX_SLOTS, .kv_mode = modes[i]};
    kvc_ctx *c = (kvc_ctx *)&c;
    kvc_status s = kvc_ctx_new(m, &cp, &c);
    if (s != KVC_ERR_NO_MEMORY || !strstr(kvc_last_error(), "of memory this process may use"))
      fail_msg("%s: got %s \"%s\"", kvc_kv_mode_name(modes[i]), kvc_status_name(s),
               kvc_last_error());
    assert_null(c);
  }
  /* the same model with a few slots works */
  kvc_ctx_params cp = {.slots = 2, .kv_mode = KVC_KV_SHARED};
  kvc_ctx *c = NULL;
  assert_int_equal(kvc_ctx_new(m, &cp, &c), KVC_OK);
  kvc_ctx_free(c);
  kvc_model_free(m);
  th_rmdir(dir);
}

/* A model whose weights exceed the memory the process may use (KVCACHE_MEMORY_LIMIT stands
 * in for a small machine) is refused before ONNX Runtime reads them: KVC_ERR_NO_MEMORY naming
 * the file and both sizes, nothing held; within the limit it opens, and the same limit then
 * refuses a cache that would not fit beside it. */
static void a_model_larger_than_memory_is_refused(void **state) {
  (void)state;
  char dir[256];
  build_gqa(dir, sizeof dir, "small-machine", 2, 2, 32, 256, 4096);
  kvc_model *m = (kvc_model *)&m;
  setenv("KVCACHE_MEMORY_LIMIT", "100000", 1); /* 0.1 MB: the weights are ~0.5 MB */
  kvc_status s = kvc_model_open(dir, NULL, &m);
  if (s != KVC_ERR_NO_MEMORY ||
      !strstr(kvc_last_error(), "model.onnx: its graph and weights are") ||
      !strstr(kvc_last_error(), "more than the 0.1 MB of memory this process may use"))
    fail_msg("got %s \"%s\"", kvc_status_name(s), kvc_last_error());
  assert_null(m);
  setenv("KVCACHE_MEMORY_LIMIT", "3000000", 1); /* room for the weights, not for 16 x 4096
                                                 * positions of cache (16 MB) */
  m = th_open_model(dir);
  kvc_ctx_params cp = {.slots = 16, .kv_mode = KVC_KV_SHARED};
  kvc_ctx *c = (kvc_ctx *)&c;
  s = kvc_ctx_new(m, &cp, &c);
  if (s != KVC_ERR_NO_MEMORY || !strstr(kvc_last_error(), "of memory this process may use"))
    fail_msg("the cache: got %s \"%s\"", kvc_status_name(s), kvc_last_error());
  assert_null(c);
  unsetenv("KVCACHE_MEMORY_LIMIT");
  assert_int_equal(kvc_ctx_new(m, &cp, &c), KVC_OK);
  kvc_ctx_free(c);
  kvc_model_free(m);
  th_rmdir(dir);
}

/* A prompt that a large vocabulary splits into several runs, whose second run fails: length,
 * cache and logits are all as before the call (the logits used to be lost), and the
 * sequence goes on exactly as one that never failed. */
static void a_failed_later_chunk_keeps_the_logits(void **state) {
  (void)state;
  kvc_build_params p = kvc_build_default_params();
  p.layers = 1, p.heads = 1, p.head_dim = 16, p.vocab_size = 1 << 18, p.max_seq_len = 160;
  p.attention = KVC_ATTENTION_GQA;
  char dir[256];
  th_tmpdir(dir, sizeof dir, "big-vocab");
  assert_int_equal(kvc_build_model(dir, &p), KVC_OK);
  kvc_model *m = th_open_model(dir);
  int32_t prompt[150];
  for (int i = 0; i < 150; i++)
    prompt[i] = (i * 7919) % p.vocab_size;
  const size_t bytes = (size_t)p.vocab_size * sizeof(float);
  float *before = malloc(bytes);
  const kvc_kv_mode modes[] = {KVC_KV_SHARED, KVC_KV_BOUND, KVC_KV_NAIVE};
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    kvc_seq *q = th_new_seq(m, modes[i]), *ref = th_new_seq(m, modes[i]);
    th_append(q, prompt, 5);
    memcpy(before, kvc_seq_logits(q), bytes);
    assert_true(kvc__seq_chunk(q) < 100); /* 145 tokens take several runs */
    kvc__seq_inject(q, 2, 0);             /* the second run fails */
    assert_int_equal(kvc_seq_append(q, prompt + 5, 145), KVC_ERR_RUNTIME);
    assert_int_equal(kvc_seq_len(q), 5);
    assert_non_null(kvc_seq_logits(q));
    assert_memory_equal(kvc_seq_logits(q), before, bytes);
    th_append(q, prompt + 5, 145);
    th_append(ref, prompt, 150);
    if (th_max_diff(kvc_seq_logits(q), kvc_seq_logits(ref), p.vocab_size) > 1e-4)
      fail_msg("%s: after the failure the logits differ from a sequence that never failed",
               kvc_kv_mode_name(modes[i]));
    kvc_seq_free(ref);
    kvc_seq_free(q);
  }
  free(before);
  kvc_model_free(m);
  th_rmdir(dir);
}

#ifndef KVC_SANITIZED /* ASan's operator new cannot throw: it aborts the process where             \
                       * ONNX Runtime's arena expects std::bad_alloc, so this case runs in         \
                       * the plain build only */
/* Bytes of address space the process has mapped (VmSize). */
static long long mapped_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  assert_non_null(f);
  char line[256];
  long long kib = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmSize: %lld kB", &kib) == 1)
      break;
  fclose(f);
  assert_true(kib > 0);
  return kib * 1024;
}

/* When the cache's memory cannot be had (here: a child process whose address
 * space is capped just above what it has mapped), the status is KVC_ERR_NO_MEMORY, not
 * RUNTIME, and the context is not made. */
static void a_failed_cache_allocation_is_no_memory(void **state) {
  (void)state;
  /* a SHARED cache of KVC_MAX_SLOTS slots of 1024 positions (1023 + the spare) of 32 floats:
   * two 512 MiB buffers, far beyond the 8 MiB left below, beyond any heap the process kept
   * from earlier tests, and within any machine's memory */
  char dir[256];
  build_gqa(dir, sizeof dir, "alloc-fails", 1, 1, 32, 16, 1023);
  kvc_model *m = th_open_model(dir); /* one intra-op thread: no pool to lose in fork */
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct rlimit cap = {.rlim_cur = (rlim_t)(mapped_bytes() + (8 << 20))};
    cap.rlim_max = cap.rlim_cur;
    if (setrlimit(RLIMIT_AS, &cap) != 0)
      _exit(100);
    kvc_ctx_params cp = {.slots = KVC_MAX_SLOTS, .kv_mode = KVC_KV_SHARED};
    kvc_ctx *c = (kvc_ctx *)&c;
    kvc_status s = kvc_ctx_new(m, &cp, &c);
    if (s != KVC_ERR_NO_MEMORY || c)
      fprintf(stderr, "child: got %s \"%s\"\n", kvc_status_name(s), kvc_last_error());
    _exit(s == KVC_ERR_NO_MEMORY && !c ? 0 : 101);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  kvc_model_free(m);
  th_rmdir(dir);
}
#endif

/* DIR: a one-layer decoder (seed naming, 1 K/V head of 2, logits declared (b, s, 100)) whose
 * outputs come back at run time smaller than declared: logits of `logits_cols` columns and
 * presents of head size `head` (zeros of those shapes, made by ConstantOfShape from the
 * inputs' shapes). */
static void lying_graph(const char *dir, int64_t logits_cols, int64_t head) {
  enum { T_FLOAT = 1, T_INT64 = 7 };
  assert_int_equal(mkdir(dir, 0777), 0);
  kvc__onnx *m = kvc__onnx_new("lying");
  const kvc__dim ids[] = {{"b", 0}, {"s", 0}}, logits[] = {{"b", 0}, {"s", 0}, {NULL, 100}};
  const kvc__dim past[] = {{"b", 0}, {NULL, 1}, {"p", 0}, {NULL, 2}};
  const kvc__dim present[] = {{"b", 0}, {NULL, 1}, {"t", 0}, {NULL, 2}};
  kvc__onnx_input(m, "input_ids", T_INT64, ids, 2);
  kvc__onnx_input(m, "past_key_0", T_FLOAT, past, 4);
  kvc__onnx_input(m, "past_value_0", T_FLOAT, past, 4);
  kvc__onnx_output(m, "logits", T_FLOAT, logits, 3);
  kvc__onnx_output(m, "present_key_0", T_FLOAT, present, 4);
  kvc__onnx_output(m, "present_value_0", T_FLOAT, present, 4);
  const int64_t cols[1] = {logits_cols}, one[1] = {1}, lead[2] = {0, 0}, dim1[1] = {1};
  const int64_t tail[1] = {head - 2};
  kvc__onnx_const_i64(m, "cols", cols, 1, dim1, 1);
  kvc__onnx_const_i64(m, "second", one, 1, dim1, 1);
  kvc__onnx_const_i64(m, "lead", lead, 2, (const int64_t[]){2}, 1);
  kvc__onnx_const_i64(m, "tail", tail, 1, dim1, 1);
  const kvc__attr axis0[] = {KVC_ATTR_I("axis", 0)};
  kvc__onnx_node(m, "Shape", NULL, (const char *[]){"input_ids"}, 1, (const char *[]){"bs"}, 1,
                 NULL, 0);
  kvc__onnx_node(m, "Concat", NULL, (const char *[]){"bs", "cols"}, 2,
                 (const char *[]){"logits_shape"}, 1, axis0, 1);
  kvc__onnx_node(m, "ConstantOfShape", NULL, (const char *[]){"logits_shape"}, 1,
                 (const char *[]){"logits"}, 1, NULL, 0);
  /* presents: past's shape + (0, 0, s, head - 2) */
  kvc__onnx_node(m, "Gather", NULL, (const char *[]){"bs", "second"}, 2, (const char *[]){"s"}, 1,
                 axis0, 1);
  kvc__onnx_node(m, "Concat", NULL, (const char *[]){"lead", "s", "tail"}, 3,
                 (const char *[]){"grow"}, 1, axis0, 1);
  for (int kv = 0; kv < 2; kv++) {
    char in[32], shape[48], sum[48], out[32];
    snprintf(in, sizeof in, "past_%s_0", kv ? "value" : "key");
    snprintf(shape, sizeof shape, "%s_shape", in);
    snprintf(sum, sizeof sum, "%s_grown", in);
    snprintf(out, sizeof out, "present_%s_0", kv ? "value" : "key");
    kvc__onnx_node(m, "Shape", NULL, (const char *[]){in}, 1, (const char *[]){shape}, 1, NULL, 0);
    kvc__onnx_node(m, "Add", NULL, (const char *[]){shape, "grow"}, 2, (const char *[]){sum}, 1,
                   NULL, 0);
    kvc__onnx_node(m, "ConstantOfShape", NULL, (const char *[]){sum}, 1, (const char *[]){out}, 1,
                   NULL, 0);
  }
  char path[512];
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  assert_int_equal(kvc__onnx_write(m, path), KVC_OK);
  kvc__onnx_free(m);
  write_text(dir, "config.json", "{\"max_seq_len\": 16}");
}

/* Outputs smaller at run time than the graph declares are refused, naming the output and
 * both shapes, before NAIVE or UNCACHED read a byte past them (a logits tensor of 50 columns
 * where 100 are declared was read as 100: past the end, or into tokens chosen from other
 * memory; a present of head size 1 was copied into the cache as if it held 2). BOUND binds
 * the declared shapes, which ONNX Runtime itself refuses. */
static void outputs_smaller_than_declared_are_refused(void **state) {
  fixture *f = *state;
  const struct {
    int64_t cols, head;
    kvc_kv_mode mode;
    const char *needle;
  } cases[] = {
      {50, 2, KVC_KV_NAIVE,
       "'logits' came back from the run as (1, 3, 50): expected a float32 tensor (1, 3, 100)"},
      {50, 2, KVC_KV_UNCACHED, "'logits' came back from the run as (1, 3, 50)"},
      {100, 1, KVC_KV_NAIVE,
       "'present_key_0' came back from the run as (1, 1, 3, 1): expected a float32 tensor (1, 1, "
       "3, "
       "2)"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s-lying%zu", f->dir, c);
    lying_graph(dir, cases[c].cols, cases[c].head);
    kvc_model *m = th_open_model(dir);
    kvc_seq *q = th_new_seq(m, cases[c].mode);
    const int32_t prompt[3] = {1, 2, 3};
    kvc_status s = kvc_seq_append(q, prompt, 3);
    if (s != KVC_ERR_MODEL || !strstr(kvc_last_error(), cases[c].needle))
      fail_msg("case %zu: %s \"%s\", expected KVC_ERR_MODEL naming \"%s\"", c, kvc_status_name(s),
               kvc_last_error(), cases[c].needle);
    assert_int_equal(kvc_seq_len(q), 0); /* nothing appended */
    kvc_seq_free(q);
    kvc_model_free(m);
    remove_tree(dir);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(non_regular_files_are_refused),
      cmocka_unit_test(outputs_smaller_than_declared_are_refused),
      cmocka_unit_test(config_lengths_must_fit_the_graph),
      cmocka_unit_test(runtime_failures_are_runtime_errors),
      cmocka_unit_test(thread_counts_are_bounded),
      cmocka_unit_test(generate_needs_the_models_vocabulary),
      cmocka_unit_test(a_cache_larger_than_memory_is_no_memory),
      cmocka_unit_test(a_model_larger_than_memory_is_refused),
      cmocka_unit_test(a_failed_later_chunk_keeps_the_logits),
#ifndef KVC_SANITIZED
      cmocka_unit_test(a_failed_cache_allocation_is_no_memory),
#endif
  };
  return cmocka_run_group_tests_name("hostile input", tests, setup, teardown);
}
