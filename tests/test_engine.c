/* Tests for the engine (model.c, signature.c, cache.c, seq.c): cached decoding in every
 * KV mode against the uncached recompute and the reference pass, rewind, buffer
 * persistence, allocation-free decode steps, bad input, threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "pages.h"
#include "onnx/onnx.pb-c.h"
#include "helpers.h"
#include "reference.h"
#include "hooks.h"

typedef struct fixture {
  char dir[256];
  kvc_model *model;
  kvc__ref *ref;
} fixture;

static int setup_model(void **state, kvc_naming naming) {
  fixture *f = calloc(1, sizeof *f);
  kvc_build_params p = kvc_build_default_params();
  p.naming = naming;
  th_tmpdir(f->dir, sizeof f->dir, "engine");
  assert_int_equal(kvc_build_model(f->dir, &p), KVC_OK);
  f->model = th_open_model(f->dir);
  assert_int_equal(kvc__ref_open(f->dir, &f->ref), KVC_OK);
  *state = f;
  return 0;
}
static int setup_seed(void **state) {
  return setup_model(state, KVC_NAMING_SEED);
}
static int setup_hf(void **state) {
  return setup_model(state, KVC_NAMING_HF);
}
static int teardown(void **state) {
  fixture *f = *state;
  kvc_model_free(f->model);
  kvc__ref_free(f->ref);
  th_rmdir(f->dir);
  free(f);
  return 0;
}

/* ---- numerics -------------------------------------------------------------------------- */

/* Prompts of 1, 7 and 64 tokens, then 100 greedy steps: NAIVE and BOUND match the
 * uncached recompute within 1e-4 at every step, and all match the reference pass. */
static void cached_modes_match_uncached_and_reference(void **state) {
  fixture *f = *state;
  const int V = 1000, steps = 100;
  const int prompts[] = {1, 7, 64};
  uint64_t rng = 99;
  for (size_t pi = 0; pi < 3; pi++) {
    const int P = prompts[pi], total = P + steps;
    kvc_seq *uncached = th_new_seq(f->model, KVC_KV_UNCACHED),
            *naive = th_new_seq(f->model, KVC_KV_NAIVE),
            *bound = th_new_seq(f->model, KVC_KV_BOUND);
    int64_t tokens64[64 + 100];
    th_random_tokens(&rng, tokens64, P, V);
    int32_t tokens[64 + 100];
    for (int i = 0; i < P; i++)
      tokens[i] = (int32_t)tokens64[i];
    float *got = malloc((size_t)(steps + 1) * V * sizeof *got); /* BOUND's logits per step */
    for (int step = 0; step <= steps; step++) {
      const int32_t *t = step ? &tokens[P + step - 1] : tokens;
      int32_t n = step ? 1 : P;
      th_append(uncached, t, n);
      th_append(naive, t, n);
      th_append(bound, t, n);
      const float *u = kvc_seq_logits(uncached);
      double dn = th_max_diff(kvc_seq_logits(naive), u, V),
             db = th_max_diff(kvc_seq_logits(bound), u, V);
      if (dn > 1e-4 || db > 1e-4)
        fail_msg("prompt %d, step %d: |naive - uncached| %.3g, |bound - uncached| %.3g", P, step,
                 dn, db);
      memcpy(got + (size_t)step * V, kvc_seq_logits(bound), V * sizeof *got);
      if (step < steps)
        tokens[P + step] = th_argmax(u, V);
    }
    assert_int_equal(kvc_seq_len(bound), total);
    /* the reference, over the whole sequence, at the last position of each step */
    for (int i = 0; i < total; i++)
      tokens64[i] = tokens[i];
    double *ref = malloc((size_t)total * V * sizeof *ref), worst = 0, scale = 0;
    assert_int_equal(kvc__ref_logits(f->ref, tokens64, NULL, NULL, total, ref), KVC_OK);
    for (int step = 0; step <= steps; step++) {
      const double *r = ref + (size_t)(P - 1 + step) * V;
      for (int j = 0; j < V; j++) {
        worst = fmax(worst, fabs(got[(size_t)step * V + j] - r[j]));
        scale = fmax(scale, fabs(r[j]));
      }
    }
    if (!(worst <= 1e-4 * scale))
      fail_msg("prompt %d: max |bound - reference| %.3g > 1e-4 * %.3g", P, worst, scale);
    free(ref);
    free(got);
    kvc_seq_free(uncached);
    kvc_seq_free(naive);
    kvc_seq_free(bound);
  }
}

/* A+B, rewind to |A|, then C gives the logits of A+C (within 1e-6), in every mode. */
static void rewind_forgets_dropped_tokens(void **state) {
  fixture *f = *state;
  const int V = 1000;
  const int32_t A[] = {10, 20, 30, 40, 50}, B[] = {7, 8, 9, 11}, C[] = {600, 601, 602};
  const kvc_kv_mode modes[] = {KVC_KV_NAIVE, KVC_KV_BOUND, KVC_KV_UNCACHED};
  for (size_t m = 0; m < 3; m++) {
    kvc_seq *x = th_new_seq(f->model, modes[m]), *y = th_new_seq(f->model, modes[m]);
    th_append(x, A, 5);
    th_append(x, B, 2);     /* a prefill chunk... */
    th_append(x, B + 2, 1); /* ...and decode steps of B */
    th_append(x, B + 3, 1);
    assert_int_equal(kvc_seq_rewind(x, 5), KVC_OK);
    assert_int_equal(kvc_seq_len(x), 5);
    assert_null(kvc_seq_logits(x));
    th_append(y, A, 5);
    for (int i = 0; i < 3; i++) {
      th_append(x, C + i, 1);
      th_append(y, C + i, 1);
      double d = th_max_diff(kvc_seq_logits(x), kvc_seq_logits(y), V);
      if (d > 1e-6)
        fail_msg("%s: after rewind, step %d differs by %.3g", kvc_kv_mode_name(modes[m]), i, d);
    }
    assert_int_equal(kvc_seq_rewind(x, 9), KVC_ERR_INVALID_ARG);
    assert_non_null(strstr(kvc_last_error(), "len = 9"));
    assert_int_equal(kvc_seq_rewind(x, -1), KVC_ERR_INVALID_ARG);
    assert_int_equal(kvc_seq_rewind(x, 0), KVC_OK);
    assert_int_equal(kvc_seq_len(x), 0);
    kvc_seq_free(x);
    kvc_seq_free(y);
  }
}

/* ---- BOUND: buffers made once, written in place, no allocation per step ----------------- */

static void bound_buffers_persist_without_allocations(void **state) {
  fixture *f = *state;
  kvc_seq *q = th_new_seq(f->model, KVC_KV_BOUND);
  const int32_t prompt[] = {1, 2, 3, 4};
  th_append(q, prompt, 4);
  assert_int_equal(kvc__seq_check_binding(q), KVC_OK);
  const void *seen[8][2][3] = {{{0}}};
  int distinct[8][2] = {{0}};
  uint64_t allocs_before = kvc__alloc_count();
  for (int step = 0; step < 200; step++) {
    int32_t t = th_argmax(kvc_seq_logits(q), 1000);
    th_append(q, &t, 1);
    for (int l = 0; l < 4; l++) {
      for (int kv = 0; kv < 2; kv++) {
        const void *p = kvc__seq_cache_address(q, l, kv);
        int known = 0;
        for (int i = 0; i < distinct[l][kv]; i++)
          known |= seen[l][kv][i] == p;
        if (!known) {
          assert_true(distinct[l][kv] < 3);
          seen[l][kv][distinct[l][kv]++] = p;
          /* its one slot: a host buffer's start, on a huge page (ops/pages.h) */
          assert_int_equal((uintptr_t)p % KVC_PAGES_HUGE, 0);
        }
      }
    }
  }
  uint64_t allocs = kvc__alloc_count() - allocs_before;
  assert_int_equal(allocs, 0);
  for (int l = 0; l < 4; l++)
    for (int kv = 0; kv < 2; kv++)
      assert_int_equal(distinct[l][kv], 2);
  /* ONNX Runtime wrote the presents and logits straight into kvcache's buffers */
  assert_int_equal(kvc__seq_check_binding(q), KVC_OK);
  kvc_seq_metrics m;
  assert_int_equal(kvc_seq_get_metrics(q, &m), KVC_OK);
  assert_int_equal(m.decode_steps, 200);
  assert_int_equal(m.prefill_tokens, 4);
  assert_int_equal(m.cache_addresses, 2);
  assert_int_equal(m.decode_allocations, 0);
  assert_int_equal(m.cache_bytes, 4LL * 2 * 2 * 4 * 512 * 64 * 4);
  for (int i = 0; i < m.decode_steps; i++)
    assert_true(m.decode_ms[i] > 0);
  kvc_seq_free(q);

  /* NAIVE, by contrast, gets new tensors from ONNX Runtime every step */
  q = th_new_seq(f->model, KVC_KV_NAIVE);
  th_append(q, prompt, 4);
  for (int step = 0; step < 10; step++)
    th_append(q, prompt, 1);
  assert_int_equal(kvc_seq_get_metrics(q, &m), KVC_OK);
  assert_true(m.cache_addresses > 2);
  assert_int_equal(m.cache_bytes, 0);
  kvc_seq_free(q);
}

/* ---- bad input --------------------------------------------------------------------------- */

static void bad_appends_leave_the_sequence_usable(void **state) {
  fixture *f = *state;
  const kvc_kv_mode modes[] = {KVC_KV_NAIVE, KVC_KV_BOUND, KVC_KV_UNCACHED};
  for (size_t m = 0; m < 3; m++) {
    kvc_seq *q = th_new_seq(f->model, modes[m]);
    const int32_t ok[] = {1, 2, 3}, big[] = {1, 1000}, neg[] = {-1};
    th_append(q, ok, 3);
    float before[1000];
    memcpy(before, kvc_seq_logits(q), sizeof before);
    assert_int_equal(kvc_seq_append(q, big, 2), KVC_ERR_INVALID_ARG);
    assert_non_null(strstr(kvc_last_error(), "token 1000"));
    assert_non_null(strstr(kvc_last_error(), "1000"));
    assert_int_equal(kvc_seq_append(q, neg, 1), KVC_ERR_INVALID_ARG);
    assert_non_null(strstr(kvc_last_error(), "token -1"));
    assert_int_equal(kvc_seq_append(q, ok, 0), KVC_ERR_INVALID_ARG);
    assert_non_null(strstr(kvc_last_error(), "n = 0"));
    assert_int_equal(kvc_seq_append(q, NULL, 1), KVC_ERR_INVALID_ARG);
    assert_non_null(strstr(kvc_last_error(), "tokens is NULL"));
    assert_int_equal(kvc_seq_append(NULL, ok, 1), KVC_ERR_INVALID_ARG);
    assert_int_equal(kvc_seq_len(q), 3);
    assert_true(th_max_diff(before, kvc_seq_logits(q), 1000) == 0);

    /* fill to max_seq_len: the overflowing append is refused, the sequence stays usable */
    int32_t *fill = calloc(512, sizeof *fill);
    th_append(q, fill, 512 - 3 - 1);
    assert_int_equal(kvc_seq_len(q), 511);
    assert_int_equal(kvc_seq_append(q, fill, 2), KVC_ERR_CACHE_FULL);
    assert_non_null(strstr(kvc_last_error(), "max_seq_len 512"));
    assert_int_equal(kvc_seq_len(q), 511);
    th_append(q, fill, 1);
    assert_int_equal(kvc_seq_len(q), 512);
    assert_int_equal(kvc_seq_append(q, fill, 1), KVC_ERR_CACHE_FULL);
    assert_int_equal(kvc_seq_rewind(q, 3), KVC_OK);
    th_append(q, ok, 1);
    free(fill);
    kvc_seq_free(q);
  }
  kvc_seq *q = NULL;
  assert_int_equal(kvc_seq_new(NULL, NULL, &q), KVC_ERR_INVALID_ARG);
  assert_int_equal(kvc_seq_new(f->model, NULL, NULL), KVC_ERR_INVALID_ARG);
  kvc_seq_params sp = {.kv_mode = (kvc_kv_mode)42};
  assert_int_equal(kvc_seq_new(f->model, &sp, &q), KVC_ERR_INVALID_ARG);
  assert_null(q);
  assert_null(kvc_seq_logits(NULL));
  assert_int_equal(kvc_seq_len(NULL), 0);
  kvc_seq_free(NULL);
  kvc_model_free(NULL);
}

static void copy_file(const char *from, const char *to, long limit) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  assert_non_null(a);
  assert_non_null(b);
  char buf[65536];
  long total = 0;
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, a)) > 0 && (limit < 0 || total < limit)) {
    if (limit >= 0 && total + (long)n > limit)
      n = (size_t)(limit - total);
    assert_int_equal(fwrite(buf, 1, n, b), n);
    total += (long)n;
  }
  fclose(a);
  fclose(b);
}

static void expect_open_error(const char *path, kvc_status want, const char *needle) {
  kvc_model *m = (kvc_model *)&m; /* must be reset to NULL */
  kvc_status s = kvc_model_open(path, NULL, &m);
  if (s != want || !strstr(kvc_last_error(), needle))
    fail_msg("open %s: got %s \"%s\", expected %s naming \"%s\"", path, kvc_status_name(s),
             kvc_last_error(), kvc_status_name(want), needle);
  assert_null(m);
}

static void bad_models_are_rejected(void **state) {
  fixture *f = *state;
  char dir[256], path[512], from[512];
  th_tmpdir(dir, sizeof dir, "badmodel");
  assert_int_equal(mkdir(dir, 0755), 0);
  expect_open_error(dir, KVC_ERR_IO, "no .onnx file in directory");
  expect_open_error("/nonexistent/model", KVC_ERR_IO, "/nonexistent/model");
  kvc_model *m = NULL;
  assert_int_equal(kvc_model_open(NULL, NULL, &m), KVC_ERR_INVALID_ARG);
  assert_int_equal(kvc_model_open(f->dir, NULL, NULL), KVC_ERR_INVALID_ARG);

  /* truncated graph */
  snprintf(from, sizeof from, "%s/model.onnx", f->dir);
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  copy_file(from, path, 5000);
  snprintf(from, sizeof from, "%s/config.json", f->dir);
  snprintf(path, sizeof path, "%s/config.json", dir);
  copy_file(from, path, -1);
  expect_open_error(dir, KVC_ERR_MODEL, "model.onnx");

  /* whole graph, but its weights file is missing */
  snprintf(from, sizeof from, "%s/model.onnx", f->dir);
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  copy_file(from, path, -1);
  expect_open_error(dir, KVC_ERR_MODEL, "model.onnx.data");

  /* no maximum length in the config: the graph's position table gives it (a graph that
   * states none either: test_hostile.c), and params may lower it */
  snprintf(from, sizeof from, "%s/model.onnx.data", f->dir);
  snprintf(path, sizeof path, "%s/model.onnx.data", dir);
  copy_file(from, path, -1);
  snprintf(path, sizeof path, "%s/config.json", dir);
  FILE *c = fopen(path, "w");
  fputs("{\"vocab_size\": 1000}", c);
  fclose(c);
  assert_int_equal(kvc_model_open(dir, NULL, &m), KVC_OK);
  kvc_model_info info;
  assert_int_equal(kvc_model_get_info(m, &info), KVC_OK);
  assert_int_equal(info.max_seq_len, 512);
  assert_int_equal(info.graph_max_seq_len, 512);
  kvc_model_free(m);
  kvc_model_params mp = kvc_model_default_params();
  mp.max_seq_len = 64;
  assert_int_equal(kvc_model_open(dir, &mp, &m), KVC_OK);
  assert_int_equal(kvc_model_get_info(m, &info), KVC_OK);
  assert_int_equal(info.max_seq_len, 64);
  kvc_model_free(m);
  c = fopen(path, "w");
  fputs("{\"max_seq_len\": ", c);
  fclose(c);
  expect_open_error(dir, KVC_ERR_MODEL, "not valid JSON");

  /* bad params */
  mp = kvc_model_default_params();
  mp.max_seq_len = 1024;
  assert_int_equal(kvc_model_open(f->dir, &mp, &m), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "exceeds the model's maximum 512"));
  mp = kvc_model_default_params();
  mp.provider = "tpu";
  assert_int_equal(kvc_model_open(f->dir, &mp, &m), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "\"tpu\""));
  th_rmdir(dir);
}

/* Write m as OUT/model.onnx, with DIR's weights and config copied beside it. */
static void save_graph(const Onnx__ModelProto *m, const char *dir, const char *out) {
  static uint8_t packed[1 << 20];
  size_t size = onnx__model_proto__pack(m, packed);
  char path[512], dst[512];
  assert_int_equal(mkdir(out, 0755), 0);
  snprintf(dst, sizeof dst, "%s/model.onnx", out);
  FILE *f = fopen(dst, "wb");
  assert_int_equal(fwrite(packed, 1, size, f), size);
  fclose(f);
  const char *files[] = {"model.onnx.data", "config.json"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    snprintf(dst, sizeof dst, "%s/%s", out, files[i]);
    copy_file(path, dst, -1);
  }
}

/* Rewrite DIR's graph into OUT with every occurrence of tensor name `from` (graph inputs,
 * outputs, node inputs and outputs) renamed `to`. */
static void rename_tensor(const char *dir, const char *out, const char *from, const char *to) {
  Onnx__ModelProto *m = th_load_graph(dir);
  Onnx__GraphProto *g = m->graph;
  /* point every slot naming `from` at `to`, remembering the originals to put back */
  char **slots[64], *originals[64];
  int n_slots = 0;
#define RENAME(slot)                                                                               \
  do {                                                                                             \
    if (!strcmp((slot), from) && n_slots < 64) {                                                   \
      slots[n_slots] = &(slot);                                                                    \
      originals[n_slots++] = (slot);                                                               \
      (slot) = (char *)to;                                                                         \
    }                                                                                              \
  } while (0)
  for (size_t i = 0; i < g->n_input; i++)
    RENAME(g->input[i]->name);
  for (size_t i = 0; i < g->n_output; i++)
    RENAME(g->output[i]->name);
  for (size_t i = 0; i < g->n_node; i++) {
    for (size_t j = 0; j < g->node[i]->n_input; j++)
      RENAME(g->node[i]->input[j]);
    for (size_t j = 0; j < g->node[i]->n_output; j++)
      RENAME(g->node[i]->output[j]);
  }
#undef RENAME
  save_graph(m, dir, out);
  for (int i = 0; i < n_slots; i++)
    *slots[i] = originals[i];
  onnx__model_proto__free_unpacked(m, NULL);
}

/* A graph written by another tool may take its ids as int32: the engine feeds what the graph
 * declares, with the same logits. (Gather, the ids' only consumer here, takes either.) */
static void int32_ids_are_fed_as_int32(void **state) {
  fixture *f = *state;
  char dir[256];
  th_tmpdir(dir, sizeof dir, "int32");
  Onnx__ModelProto *g = th_load_graph(f->dir);
  for (size_t i = 0; i < g->graph->n_input; i++) {
    Onnx__ValueInfoProto *in = g->graph->input[i];
    if (!strcmp(in->name, "input_ids") || !strcmp(in->name, "position_ids") ||
        !strcmp(in->name, "attention_mask"))
      in->type->tensor_type->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
  }
  save_graph(g, f->dir, dir);
  onnx__model_proto__free_unpacked(g, NULL);
  kvc_model *m = th_open_model(dir);
  kvc_model_info info;
  kvc_model_get_info(m, &info);
  assert_int_equal(info.input_ids_int32, 1);
  const kvc_kv_mode modes[] = {KVC_KV_NAIVE, KVC_KV_BOUND, KVC_KV_UNCACHED};
  const int32_t prompt[] = {5, 50, 500, 999};
  for (size_t k = 0; k < 3; k++) {
    kvc_seq *a = th_new_seq(m, modes[k]), *b = th_new_seq(f->model, modes[k]);
    th_append(a, prompt, 4);
    th_append(b, prompt, 4);
    for (int i = 0; i < 5; i++) {
      int32_t t = th_argmax(kvc_seq_logits(b), 1000);
      th_append(a, &t, 1);
      th_append(b, &t, 1);
    }
    assert_true(th_max_diff(kvc_seq_logits(a), kvc_seq_logits(b), 1000) == 0);
    kvc_seq_free(a);
    kvc_seq_free(b);
  }
  kvc_model_free(m);
  th_rmdir(dir);
}

/* Graphs whose signature does not fit are refused with the tensor named. */
static void unfit_graphs_are_rejected(void **state) {
  (void)state;
  char small[256], dir[256];
  th_tmpdir(small, sizeof small, "small");
  kvc_build_params p = kvc_build_default_params();
  p.layers = 2, p.vocab_size = 50, p.max_seq_len = 32, p.heads = 2, p.head_dim = 8;
  assert_int_equal(kvc_build_model(small, &p), KVC_OK);
  const struct {
    const char *from, *to, *needle;
  } cases[] = {
      {"present_value_1", "present_value_x",
       "'past_value_1' has no matching output 'present_value_1'"},
      {"past_key_1", "past_key_01", "graph input 'past_key_01' is not one kvcache knows"},
      {"logits", "scores", "graph has no output 'logits'"},
      {"past_key_1", "past_key_values.1.key", "mixes the seed and hf naming"},
      {"input_ids", "tokens", "graph input 'tokens' is not one kvcache knows"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    th_tmpdir(dir, sizeof dir, "unfit");
    rename_tensor(small, dir, cases[i].from, cases[i].to);
    expect_open_error(dir, KVC_ERR_MODEL, cases[i].needle);
    th_rmdir(dir);
  }
  th_rmdir(small);
}

/* CUDA: the runtime kvcache fetches has no CUDA provider library; asking for it fails
 * clearly and never falls back silently. KVCACHE_FORCE_CPU=1 makes the same call work. */
static void cuda_without_cuda_fails_clearly(void **state) {
  fixture *f = *state;
  kvc_model_params mp = kvc_model_default_params();
  mp.provider = "cuda";
  kvc_model *m = NULL;
  unsetenv("KVCACHE_FORCE_CPU");
  kvc_status s = kvc_model_open(f->dir, &mp, &m);
  if (s == KVC_OK) { /* a machine with a working CUDA provider: then it must be on cuda */
    kvc_model_info info;
    kvc_model_get_info(m, &info);
    assert_string_equal(info.provider, "cuda");
    kvc_model_free(m);
  } else {
    assert_int_equal(s, KVC_ERR_UNSUPPORTED);
    assert_non_null(strstr(kvc_last_error(), "KVCACHE_FORCE_CPU"));
    assert_null(m);
  }
  setenv("KVCACHE_FORCE_CPU", "1", 1);
  assert_int_equal(kvc_model_open(f->dir, &mp, &m), KVC_OK);
  kvc_model_info info;
  kvc_model_get_info(m, &info);
  assert_string_equal(info.provider, "cpu");
  kvc_model_free(m);
  unsetenv("KVCACHE_FORCE_CPU");
}

static void info_reads_the_graph(void **state) {
  fixture *f = *state;
  kvc_model_info i;
  assert_int_equal(kvc_model_get_info(f->model, &i), KVC_OK);
  assert_int_equal(i.layers, 4);
  assert_int_equal(i.kv_heads, 4);
  assert_int_equal(i.head_dim, 64);
  assert_int_equal(i.vocab_size, 1000);
  assert_int_equal(i.max_seq_len, 512);
  assert_int_equal(i.has_position_ids, 1);
  assert_int_equal(i.input_ids_int32, 0);
  assert_int_equal(i.kv_mode, KVC_KV_BOUND);
  assert_int_equal(i.cache_bytes_per_token, 4 * 2 * 4 * 64 * 4);
  assert_true(i.param_bytes > 3800000 * 4);
  assert_string_equal(i.provider, "cpu");
  assert_int_equal(i.has_attention_mask, i.naming == KVC_NAMING_HF);
}

/* ---- generation ---------------------------------------------------------------------------- */

static int stop_at_5(void *user, int32_t token, int32_t index) {
  int *calls = user;
  (void)token;
  (*calls)++;
  return index == 4;
}

static void generate_matches_manual_greedy_and_stops(void **state) {
  fixture *f = *state;
  kvc_sampler *greedy = NULL;
  assert_int_equal(kvc_sampler_new(NULL, 1000, &greedy), KVC_OK);
  kvc_seq *q = th_new_seq(f->model, KVC_KV_BOUND), *r = th_new_seq(f->model, KVC_KV_NAIVE);
  const int32_t prompt[] = {9, 8, 7};
  int32_t out[20], n_out = -1;
  assert_int_equal(kvc_generate(q, prompt, 3, 20, greedy, out, &n_out, NULL, NULL), KVC_OK);
  assert_int_equal(n_out, 20);
  assert_int_equal(kvc_seq_len(q), 3 + 19); /* the last token is not appended */
  th_append(r, prompt, 3);
  for (int i = 0; i < 20; i++) {
    int32_t t = th_argmax(kvc_seq_logits(r), 1000);
    assert_int_equal(out[i], t);
    th_append(r, &t, 1);
  }
  /* the callback stops it */
  int calls = 0;
  assert_int_equal(kvc_seq_reset(q), KVC_OK);
  assert_int_equal(kvc_generate(q, prompt, 3, 20, greedy, out, &n_out, stop_at_5, &calls), KVC_OK);
  assert_int_equal(n_out, 5);
  assert_int_equal(calls, 5);
  /* running out of room: KVC_ERR_CACHE_FULL with the tokens made so far */
  assert_int_equal(kvc_seq_rewind(q, 0), KVC_OK);
  int32_t *fill = calloc(510, sizeof *fill), many[8];
  th_append(q, fill, 510);
  assert_int_equal(kvc_generate(q, NULL, 0, 8, greedy, many, &n_out, NULL, NULL),
                   KVC_ERR_CACHE_FULL);
  assert_int_equal(n_out, 3); /* positions 510 and 511 appended, the third not */
  assert_int_equal(kvc_generate(NULL, prompt, 3, 1, greedy, out, &n_out, NULL, NULL),
                   KVC_ERR_INVALID_ARG);
  free(fill);
  kvc_seq_free(q);
  kvc_seq_free(r);
  kvc_sampler_free(greedy);
}

/* The penalty by its definition, written here: each distinct id of `history` has its logit
 * divided by `penalty` when positive, multiplied when negative. */
static void penalize_by_hand(float *logits, const int32_t *history, int32_t n, float penalty) {
  static unsigned char done[1000];
  memset(done, 0, sizeof done);
  for (int32_t i = 0; i < n; i++) {
    if (done[history[i]]++)
      continue;
    float *l = &logits[history[i]];
    *l = *l < 0 ? *l * penalty : *l / penalty;
  }
}

static void repetition_penalty_is_applied_over_the_sequence(void **state) {
  fixture *f = *state;
  kvc_sampler_params p = kvc_sampler_default_params();
  p.repetition_penalty = 1.8f;
  kvc_sampler *greedy = NULL;
  assert_int_equal(kvc_sampler_new(&p, 1000, &greedy), KVC_OK);
  kvc_seq *q = th_new_seq(f->model, KVC_KV_BOUND), *r = th_new_seq(f->model, KVC_KV_NAIVE);
  const int32_t prompt[] = {9, 8, 7, 9};
  int32_t out[40], n_out = -1, history[64], n_history = 0;
  assert_int_equal(kvc_generate(q, prompt, 4, 40, greedy, out, &n_out, NULL, NULL), KVC_OK);
  assert_int_equal(n_out, 40);
  /* the same tokens from a loop that penalises by hand and takes the argmax */
  th_append(r, prompt, 4);
  memcpy(history, prompt, sizeof prompt);
  n_history = 4;
  float logits[1000];
  int changed = 0, plain_repeats = 0;
  for (int i = 0; i < 40; i++) {
    memcpy(logits, kvc_seq_logits(r), sizeof logits);
    const int32_t plain = th_argmax(logits, 1000);
    penalize_by_hand(logits, history, n_history, 1.8f);
    const int32_t t = th_argmax(logits, 1000);
    assert_int_equal(out[i], t);
    changed += t != plain;
    for (int32_t k = 0; k < n_history; k++)
      plain_repeats += history[k] == plain;
    th_append(r, &t, 1);
    history[n_history++] = t;
  }
  assert_true(changed > 0); /* the penalty did change the choice somewhere */
  assert_true(plain_repeats > 0);
  /* kvc_sampler_sample_seq leaves the sequence as it was, and equals the penalised argmax */
  const int32_t len = kvc_seq_len(r);
  memcpy(logits, kvc_seq_logits(r), sizeof logits);
  int32_t t = -1;
  assert_int_equal(kvc_sampler_sample_seq(greedy, r, &t), KVC_OK);
  assert_int_equal(kvc_seq_len(r), len);
  assert_memory_equal(logits, kvc_seq_logits(r), sizeof logits);
  penalize_by_hand(logits, history, n_history, 1.8f);
  assert_int_equal(t, th_argmax(logits, 1000));
  /* sampling: the same draws as an unpenalised sampler of the same seed given the penalised
   * logits */
  kvc_sampler_params sp = kvc_sampler_default_params();
  sp.temperature = 0.8f, sp.top_k = 40, sp.seed = 7;
  kvc_sampler *plain = NULL, *pen = NULL;
  assert_int_equal(kvc_sampler_new(&sp, 1000, &plain), KVC_OK);
  sp.repetition_penalty = 1.8f;
  assert_int_equal(kvc_sampler_new(&sp, 1000, &pen), KVC_OK);
  for (int i = 0; i < 50; i++) {
    int32_t a = -1, b = -1;
    assert_int_equal(kvc_sampler_sample_seq(pen, r, &a), KVC_OK);
    assert_int_equal(kvc_sampler_sample(plain, logits, &b), KVC_OK);
    assert_int_equal(a, b);
  }
  /* refused: no logits to pick from, a sampler of another vocabulary */
  assert_int_equal(kvc_seq_rewind(r, 0), KVC_OK);
  assert_int_equal(kvc_sampler_sample_seq(greedy, r, &t), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "no logits"));
  kvc_sampler *small = NULL;
  assert_int_equal(kvc_sampler_new(NULL, 10, &small), KVC_OK);
  assert_int_equal(kvc_sampler_sample_seq(small, q, &t), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "vocab_size"));
  kvc_sampler_free(small);
  kvc_sampler_free(plain);
  kvc_sampler_free(pen);
  kvc_seq_free(q);
  kvc_seq_free(r);
  kvc_sampler_free(greedy);
}

/* ---- logging -------------------------------------------------------------------------------- */

typedef struct log_record {
  int calls, level;
  char last[512];
} log_record;

static void record(void *user, int level, const char *message) {
  log_record *r = user;
  r->calls++;
  r->level = level;
  snprintf(r->last, sizeof r->last, "%s", message);
}

/* The library prints nothing; what it has to say goes to the log callback. */
static void log_callback_receives_messages(void **state) {
  fixture *f = *state;
  log_record rec = {0};
  kvc_model_params mp = kvc_model_default_params();
  mp.log = record;
  mp.log_user = &rec;
  mp.intra_op_threads = 1;
  kvc_model *m = NULL;
  assert_int_equal(kvc_model_open(f->dir, &mp, &m), KVC_OK);
  assert_int_equal(rec.calls, 1);
  assert_int_equal(rec.level, KVC_LOG_INFO);
  assert_non_null(strstr(rec.last, "opened"));
  assert_non_null(strstr(rec.last, "model.onnx"));
  kvc_model_free(m);
}

/* ---- threads ------------------------------------------------------------------------------ */

typedef struct job {
  kvc_model *model;
  int32_t tokens[101];
  float last[1000];
  int status;
} job;

static void *decode_100(void *arg) {
  job *j = arg;
  kvc_seq *q = NULL;
  j->status = kvc_seq_new(j->model, NULL, &q);
  const int32_t prompt[] = {3, 1, 4, 1, 5};
  if (!j->status)
    j->status = kvc_seq_append(q, prompt, 5);
  for (int i = 0; i < 100 && !j->status; i++) {
    j->tokens[i] = th_argmax(kvc_seq_logits(q), 1000);
    j->status = kvc_seq_append(q, &j->tokens[i], 1);
  }
  if (!j->status)
    memcpy(j->last, kvc_seq_logits(q), sizeof j->last);
  kvc_seq_free(q);
  return NULL;
}

static void threads_share_one_model(void **state) {
  fixture *f = *state;
  job single = {.model = f->model}, jobs[4];
  decode_100(&single);
  assert_int_equal(single.status, KVC_OK);
  pthread_t t[4]; /* pthreads: ThreadSanitizer follows them, not C11 thrd_create */
  for (int i = 0; i < 4; i++) {
    jobs[i] = (job){.model = f->model};
    assert_int_equal(pthread_create(&t[i], NULL, decode_100, &jobs[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(jobs[i].status, KVC_OK);
    assert_memory_equal(jobs[i].tokens, single.tokens, sizeof single.tokens);
    assert_memory_equal(jobs[i].last, single.last, sizeof single.last);
  }
}

int main(void) {
  const struct CMUnitTest seed[] = {
      cmocka_unit_test(info_reads_the_graph),
      cmocka_unit_test(cached_modes_match_uncached_and_reference),
      cmocka_unit_test(rewind_forgets_dropped_tokens),
      cmocka_unit_test(bound_buffers_persist_without_allocations),
      cmocka_unit_test(bad_appends_leave_the_sequence_usable),
      cmocka_unit_test(bad_models_are_rejected),
      cmocka_unit_test(unfit_graphs_are_rejected),
      cmocka_unit_test(int32_ids_are_fed_as_int32),
      cmocka_unit_test(cuda_without_cuda_fails_clearly),
      cmocka_unit_test(generate_matches_manual_greedy_and_stops),
      cmocka_unit_test(repetition_penalty_is_applied_over_the_sequence),
      cmocka_unit_test(log_callback_receives_messages),
      cmocka_unit_test(threads_share_one_model),
  };
  const struct CMUnitTest hf[] = {
      cmocka_unit_test(info_reads_the_graph),
      cmocka_unit_test(cached_modes_match_uncached_and_reference),
      cmocka_unit_test(rewind_forgets_dropped_tokens),
      cmocka_unit_test(int32_ids_are_fed_as_int32),
  };
  int failed = cmocka_run_group_tests_name("engine, seed naming", seed, setup_seed, teardown);
  failed += cmocka_run_group_tests_name("engine, hf naming", hf, setup_hf, teardown);
  return failed;
}
