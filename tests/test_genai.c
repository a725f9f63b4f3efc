/* Tests for onnxruntime-genai's model layout and the Llama architecture: graphs whose
 * GroupQueryAttention computes its lengths from attention_mask run in SHARED mode, in place;
 * cached logits equal the uncached recompute and the reference pass (rotary, RMSNorm,
 * SwiGLU, kv_heads below heads); genai_config.json gives the symbolic head size, the lengths,
 * the end-of-sequence ids and the search defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "helpers.h"
#include "hooks.h"
#include "reference.h"

enum { V = 200, MAX = 300, LAYERS = 2, N_BUILT = 3, N_MODELS = 4 };

typedef struct fixture {
  char dir[N_MODELS][256];
  kvc_model *model[N_MODELS];
  kvc__ref *ref[N_MODELS];
} fixture;

/* llama in the genai layout, llama in kvcache's layout (lengths as inputs), gpt in the genai
 * layout (no rotary: learned positions and a position_ids input); all with 2 K/V heads for 4
 * query heads. The fourth is the first with its cache's head size written as a number
 * instead of kv_cache_dim (and none in genai_config.json). */
static const struct {
  const char *name;
  kvc_arch arch;
  kvc_layout layout;
} models[N_MODELS] = {{"llama genai", KVC_ARCH_LLAMA, KVC_LAYOUT_GENAI},
                      {"llama kvcache", KVC_ARCH_LLAMA, KVC_LAYOUT_KVCACHE},
                      {"gpt genai", KVC_ARCH_GPT, KVC_LAYOUT_GENAI},
                      {"llama genai, fixed head size", KVC_ARCH_LLAMA, KVC_LAYOUT_GENAI}};

/* A copy of `from` in `to` whose graph states the head size (16) where it said
 * kv_cache_dim, and whose genai_config.json no longer gives it. */
static void fix_head_size(const char *from, const char *to) {
  char cmd[1024], path[512];
  snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", from, to);
  assert_int_equal(system(cmd), 0);
  snprintf(cmd, sizeof cmd,
           "sed -i 's/\"head_size\"/\"head_size_not_read\"/' '%s/genai_config.json'", to);
  assert_int_equal(system(cmd), 0);
  Onnx__ModelProto *m = th_load_graph(to);
  Onnx__GraphProto *g = m->graph;
  Onnx__TensorShapeProto__Dimension *fixed[64];
  char *params[64];
  int n = 0;
  for (int side = 0; side < 2; side++) {
    Onnx__ValueInfoProto **list = side ? g->output : g->input;
    const size_t count = side ? g->n_output : g->n_input;
    for (size_t i = 0; i < count; i++) {
      Onnx__TensorShapeProto *shape = list[i]->type->tensor_type->shape;
      for (size_t d = 0; shape && d < shape->n_dim; d++) {
        Onnx__TensorShapeProto__Dimension *dim = shape->dim[d];
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
            !strcmp(dim->dim_param, "kv_cache_dim")) {
          assert_true(n < 64);
          fixed[n] = dim, params[n++] = dim->dim_param;
          dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
          dim->dim_value = 16;
        }
      }
    }
  }
  assert_int_equal(n, 4 * LAYERS); /* past and present, key and value, per layer */
  static uint8_t bytes[1 << 20];
  const size_t size = onnx__model_proto__pack(m, bytes);
  for (int i = 0; i < n; i++) { /* give back what free_unpacked owns */
    fixed[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    fixed[i]->dim_param = params[i];
  }
  onnx__model_proto__free_unpacked(m, NULL);
  snprintf(path, sizeof path, "%s/model.onnx", to);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(bytes, 1, size, f), size);
  fclose(f);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  for (int i = 0; i < N_MODELS; i++) {
    if (i >= N_BUILT) {
      th_tmpdir(f->dir[i], sizeof f->dir[i], "genai-fixed");
      fix_head_size(f->dir[0], f->dir[i]);
      f->model[i] = th_open_model(f->dir[i]);
      assert_int_equal(kvc__ref_open(f->dir[i], &f->ref[i]), KVC_OK);
      continue;
    }
    kvc_build_params p = kvc_build_default_params();
    p.layers = LAYERS, p.heads = 4, p.kv_heads = 2, p.head_dim = 16, p.vocab_size = V;
    p.max_seq_len = MAX, p.seed = 11 + (uint64_t)i;
    p.arch = models[i].arch, p.layout = models[i].layout;
    p.attention = KVC_ATTENTION_GQA;
    p.naming = models[i].layout == KVC_LAYOUT_GENAI ? KVC_NAMING_HF : KVC_NAMING_SEED;
    th_tmpdir(f->dir[i], sizeof f->dir[i], "genai");
    assert_int_equal(kvc_build_model(f->dir[i], &p), KVC_OK);
    f->model[i] = th_open_model(f->dir[i]);
    assert_int_equal(kvc__ref_open(f->dir[i], &f->ref[i]), KVC_OK);
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  for (int i = 0; i < N_MODELS; i++) {
    kvc_model_free(f->model[i]);
    kvc__ref_free(f->ref[i]);
    char path[512];
    snprintf(path, sizeof path, "%s/genai_config.json", f->dir[i]);
    remove(path);
    th_rmdir(f->dir[i]);
  }
  free(f);
  return 0;
}

/* Each model opens in place (AUTO = SHARED) and says why. */
static void info_reports_the_layout(void **state) {
  fixture *f = *state;
  for (int i = 0; i < N_MODELS; i++) {
    kvc_model_info info;
    assert_int_equal(kvc_model_get_info(f->model[i], &info), KVC_OK);
    assert_int_equal(info.kv_mode, KVC_KV_SHARED);
    assert_int_equal(info.attention, KVC_ATTENTION_GQA);
    assert_int_equal(info.batches, 1);
    assert_int_equal(info.kv_heads, 2);
    assert_int_equal(info.head_dim, 16);
    assert_int_equal(info.graph_max_seq_len, MAX);
    const int genai = models[i].layout == KVC_LAYOUT_GENAI;
    assert_int_equal(info.has_seqlens, !genai);
    assert_int_equal(info.has_attention_mask, genai);
    assert_int_equal(info.has_position_ids, models[i].arch == KVC_ARCH_GPT);
    assert_non_null(strstr(info.attention_note, genai ? "from attention_mask" : "are inputs"));
    assert_int_equal(*info.genai_config != 0, genai);
    if (genai) { /* what the builder wrote: ids 1 and 2 as BOS and EOS, greedy */
      assert_int_equal(info.bos_token_id, 1);
      assert_int_equal(info.n_eos, 1);
      assert_int_equal(info.eos_token_ids[0], 2);
      assert_int_equal(info.search.do_sample, 0);
      assert_int_equal(info.search.max_length, MAX);
    }
  }
}

/* Prompts of 1, 7 and 64 tokens, then 200 greedy steps: SHARED and BOUND equal the uncached
 * recompute within 1e-4 at every step, and the reference pass within 1e-4 of the logits'
 * scale; greedy tokens follow SHARED. */
static void cached_matches_uncached_and_reference(void **state) {
  fixture *f = *state;
  enum { STEPS = 200 };
  const int prompts[] = {1, 7, 64};
  for (int mi = 0; mi < N_MODELS; mi++) {
    for (size_t pi = 0; pi < 3; pi++) {
      const int P = prompts[pi], total = P + STEPS;
      kvc_seq *q[3] = {th_new_seq(f->model[mi], KVC_KV_SHARED),
                       th_new_seq(f->model[mi], KVC_KV_BOUND),
                       th_new_seq(f->model[mi], KVC_KV_UNCACHED)};
      int32_t tokens[64 + STEPS];
      uint64_t rng = 7 + pi;
      int64_t t64[64 + STEPS];
      th_random_tokens(&rng, t64, P, V);
      for (int i = 0; i < P; i++)
        tokens[i] = (int32_t)t64[i];
      float *got = malloc((size_t)(STEPS + 1) * V * sizeof *got);
      for (int step = 0; step <= STEPS; step++) {
        const int32_t *t = step ? &tokens[P + step - 1] : tokens;
        for (int k = 0; k < 3; k++)
          th_append(q[k], t, step ? 1 : P);
        for (int k = 0; k < 2; k++) {
          double d = th_max_diff(kvc_seq_logits(q[k]), kvc_seq_logits(q[2]), V);
          if (d > 1e-4)
            fail_msg("%s, prompt %d, step %d: %s differs from uncached by %.3g", models[mi].name, P,
                     step, k ? "bound" : "shared", d);
        }
        memcpy(got + (size_t)step * V, kvc_seq_logits(q[0]), V * sizeof *got);
        if (step < STEPS)
          tokens[P + step] = th_argmax(kvc_seq_logits(q[0]), V);
      }
      for (int i = 0; i < total; i++)
        t64[i] = tokens[i];
      double *r = malloc((size_t)total * V * sizeof *r), worst = 0, scale = 0;
      assert_int_equal(kvc__ref_logits(f->ref[mi], t64, NULL, NULL, total, r), KVC_OK);
      for (int step = 0; step <= STEPS; step++)
        for (int j = 0; j < V; j++) {
          const double want = r[(size_t)(P - 1 + step) * V + j];
          worst = fmax(worst, fabs(got[(size_t)step * V + j] - want));
          scale = fmax(scale, fabs(want));
        }
      if (!(worst <= 1e-4 * scale))
        fail_msg("%s, prompt %d: |shared - reference| %.3g > 1e-4 * %.3g", models[mi].name, P,
                 worst, scale);
      free(r);
      free(got);
      for (int k = 0; k < 3; k++)
        kvc_seq_free(q[k]);
    }
  }
}

/* SHARED on the genai layout: one cache address per tensor for the whole run, no allocation
 * in any decode step, every output written where it was bound. */
static void genai_layout_decodes_in_place(void **state) {
  fixture *f = *state;
  for (int mi = 0; mi < N_MODELS; mi++) {
    kvc_seq *q = th_new_seq(f->model[mi], KVC_KV_SHARED);
    const int32_t prompt[] = {5, 6, 7, 8};
    th_append(q, prompt, 4);
    th_decode_in_place(q, LAYERS, V, 200);
    kvc_seq_metrics m;
    assert_int_equal(kvc_seq_get_metrics(q, &m), KVC_OK);
    assert_int_equal(m.cache_addresses, 1);
    assert_int_equal(m.decode_allocations, 0);
    kvc_seq_free(q);
  }
}

/* Three sequences at different lengths decode in one run of the genai llama graph (each row's
 * lengths from its attention_mask row): each equals the same tokens decoded alone. */
static void genai_layout_batches(void **state) {
  fixture *f = *state;
  kvc_ctx_params cp = {.slots = 3, .kv_mode = KVC_KV_SHARED};
  kvc_ctx *c = NULL;
  assert_int_equal(kvc_ctx_new(f->model[0], &cp, &c), KVC_OK);
  kvc_seq *s[3], *lone[3];
  const int32_t lens[3] = {3, 17, 9};
  int32_t tokens[3][40];
  for (int k = 0; k < 3; k++) {
    for (int i = 0; i < 40; i++)
      tokens[k][i] = (k * 31 + i * 7) % V;
    assert_int_equal(kvc_seq_new_in(c, &s[k]), KVC_OK);
    lone[k] = th_new_seq(f->model[0], KVC_KV_SHARED);
    th_append(s[k], tokens[k], lens[k]);
    th_append(lone[k], tokens[k], lens[k]);
  }
  for (int step = 0; step < 20; step++) {
    kvc_batch_item items[3];
    for (int k = 0; k < 3; k++)
      items[k] = (kvc_batch_item){s[k], &tokens[k][lens[k] + step], 1, NULL};
    assert_int_equal(kvc_seq_append_batch(items, 3), KVC_OK);
    for (int k = 0; k < 3; k++) {
      th_append(lone[k], &tokens[k][lens[k] + step], 1);
      double d = th_max_diff(kvc_seq_logits(s[k]), kvc_seq_logits(lone[k]), V);
      if (d > 1e-4)
        fail_msg("step %d, sequence %d: batched differs from alone by %.3g", step, k, d);
    }
  }
  for (int k = 0; k < 3; k++)
    kvc_seq_free(lone[k]), kvc_seq_free(s[k]);
  kvc_ctx_free(c);
}

static void write_genai_config(const char *dir, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/genai_config.json", dir);
  FILE *g = fopen(path, "w");
  assert_non_null(g);
  fputs(text, g);
  fclose(g);
}

static void expect_open(const char *dir, kvc_status want, const char *needle) {
  kvc_model *m = NULL;
  kvc_status s = kvc_model_open(dir, NULL, &m);
  if (s != want || !strstr(kvc_last_error(), needle))
    fail_msg("got %s \"%s\", expected %s naming \"%s\"", kvc_status_name(s), kvc_last_error(),
             kvc_status_name(want), needle);
  assert_null(m);
}

/* genai_config.json: the head size the graph leaves symbolic comes from it (without it the
 * graph cannot be opened); eos ids (a list), search defaults; generation stops at EOS; bad
 * values and unknown name templates are refused naming the key. */
static void genai_config_is_read_and_checked(void **state) {
  fixture *f = *state;
  const char *dir = f->dir[0];
  char path[512], saved[512];
  snprintf(path, sizeof path, "%s/genai_config.json", dir);
  snprintf(saved, sizeof saved, "%s/genai_config.json.saved", dir);
  assert_int_equal(rename(path, saved), 0);
  expect_open(dir, KVC_ERR_MODEL, "head_size");
  /* greedy tokens of a prompt, to make two of them EOS */
  kvc_seq *q = th_new_seq(f->model[0], KVC_KV_SHARED);
  kvc_sampler *greedy = NULL;
  assert_int_equal(kvc_sampler_new(NULL, V, &greedy), KVC_OK);
  const int32_t prompt[] = {9, 8, 7};
  int32_t out[12], n = 0;
  kvc_model_info info;
  kvc_model_get_info(f->model[0], &info);
  assert_int_equal(kvc_generate(q, prompt, 3, 12, greedy, out, &n, NULL, NULL), KVC_OK);
  int first_eos = 0; /* the builder's EOS (id 2) may come up: stop there */
  while (first_eos < n && out[first_eos] != 2)
    first_eos++;
  assert_int_equal(n, first_eos < 12 ? first_eos + 1 : 12);
  kvc_seq_free(q);
  /* the EOS for the check: the last token whose first appearance is at its index k >= 1 */
  int k = 0;
  for (int i = 1; i < n; i++) {
    int seen = 0;
    for (int j = 0; j < i; j++)
      seen |= out[j] == out[i];
    k = seen ? k : i;
  }
  assert_true(k >= 1);
  int32_t other = V; /* a second EOS that does not come up before */
  for (int clash = 1; clash;) {
    other--, clash = 0;
    for (int j = 0; j <= k; j++)
      clash |= out[j] == other;
  }
  char text[1024];
  snprintf(text, sizeof text,
           "{\"model\": {\"context_length\": 100, \"eos_token_id\": [%d, %d], \"bos_token_id\": 4,"
           " \"decoder\": {\"head_size\": 16, \"num_key_value_heads\": 2}},"
           " \"search\": {\"do_sample\": true, \"temperature\": 0.7, \"top_k\": 5, \"top_p\": 0.9,"
           " \"repetition_penalty\": 1.1}}",
           out[k], other);
  write_genai_config(dir, text);
  kvc_model *m = th_open_model(dir);
  kvc_model_get_info(m, &info);
  assert_int_equal(info.head_dim, 16);
  assert_int_equal(info.max_seq_len, MAX); /* config.json's max_seq_len comes first */
  assert_int_equal(info.n_eos, 2);
  assert_int_equal(info.eos_token_ids[0], out[k]);
  assert_int_equal(info.bos_token_id, 4);
  assert_int_equal(info.pad_token_id, -1);
  assert_int_equal(info.search.do_sample, 1);
  assert_true(fabsf(info.search.temperature - 0.7f) < 1e-6f);
  assert_int_equal(info.search.top_k, 5);
  kvc_sampler_params sp = kvc_search_sampler_params(&info.search);
  assert_true(fabsf(sp.temperature - 0.7f) < 1e-6f && sp.top_k == 5);
  kvc_seq *e = th_new_seq(m, KVC_KV_SHARED);
  int32_t got[12], n_got = 0;
  assert_int_equal(kvc_generate(e, prompt, 3, 12, greedy, got, &n_got, NULL, NULL), KVC_OK);
  assert_int_equal(n_got, k + 1); /* stopped at the EOS, which is output */
  assert_memory_equal(got, out, (size_t)(k + 1) * sizeof *got);
  assert_int_equal(kvc_seq_len(e), 3 + k); /* the EOS is not appended */
  kvc_seq_free(e);
  kvc_model_free(m);

  write_genai_config(dir, "{\"model\": {\"eos_token_id\": \"two\", \"decoder\": "
                          "{\"head_size\": 16}}}");
  expect_open(dir, KVC_ERR_MODEL, "model.eos_token_id");
  write_genai_config(dir, "{\"model\": {\"decoder\": {\"head_size\": 16.5}}}");
  expect_open(dir, KVC_ERR_MODEL, "model.decoder.head_size");
  write_genai_config(dir, "{\"model\": {\"decoder\": {\"head_size\": 16, \"inputs\": "
                          "{\"past_key_names\": \"past.%d.k\"}}}}");
  expect_open(dir, KVC_ERR_UNSUPPORTED, "past_key_names");
  write_genai_config(dir, "{\"model\": {\"decoder\": {\"head_size\": 16}}, \"search\": "
                          "{\"do_sample\": 1}}");
  expect_open(dir, KVC_ERR_MODEL, "search.do_sample");
  kvc_sampler_free(greedy);
  assert_int_equal(rename(saved, path), 0);
}

static void write_file(const char *dir, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* generation_config.json (Hugging Face) beside genai_config.json: its end-of-sequence ids
 * join genai_config's, its bos/pad count where genai_config states none, its sampling keys
 * where genai_config has no "search" section; a bad value is named. */
static void generation_config_is_read_beside_genai_config(void **state) {
  fixture *f = *state;
  const char *dir = f->dir[0];
  char genai[512], saved[512];
  snprintf(genai, sizeof genai, "%s/genai_config.json", dir);
  snprintf(saved, sizeof saved, "%s/genai_config.json.saved", dir);
  assert_int_equal(rename(genai, saved), 0);
  write_genai_config(dir, "{\"model\": {\"eos_token_id\": 2, \"decoder\": {\"head_size\": 16}}}");
  write_file(dir, "generation_config.json",
             "{\"bos_token_id\": 1, \"eos_token_id\": [7, 2, 9], \"do_sample\": true, "
             "\"temperature\": 0.6, \"top_p\": 0.95, \"min_p\": 0.05, \"top_k\": 20}");
  kvc_model *m = th_open_model(dir);
  kvc_model_info info;
  kvc_model_get_info(m, &info);
  assert_int_equal(info.n_eos, 3); /* 2 from genai_config, then 7 and 9 */
  assert_int_equal(info.eos_token_ids[0], 2);
  assert_int_equal(info.eos_token_ids[1], 7);
  assert_int_equal(info.eos_token_ids[2], 9);
  assert_int_equal(info.bos_token_id, 1);
  assert_int_equal(info.search.do_sample, 1);
  assert_true(fabsf(info.search.temperature - 0.6f) < 1e-6f);
  assert_true(fabsf(info.search.min_p - 0.05f) < 1e-6f);
  assert_int_equal(info.search.top_k, 20);
  kvc_sampler_params sp = kvc_search_sampler_params(&info.search);
  assert_true(fabsf(sp.min_p - 0.05f) < 1e-6f && fabsf(sp.top_p - 0.95f) < 1e-6f);
  kvc_model_free(m);
  /* a "search" section in genai_config.json rules the sampling */
  write_genai_config(dir, "{\"model\": {\"decoder\": {\"head_size\": 16}}, \"search\": "
                          "{\"do_sample\": false, \"top_k\": 3}}");
  m = th_open_model(dir);
  kvc_model_get_info(m, &info);
  assert_int_equal(info.search.do_sample, 0);
  assert_int_equal(info.search.top_k, 3);
  assert_true(info.search.min_p == 0.0f);
  assert_int_equal(info.n_eos, 3);
  kvc_model_free(m);
  write_file(dir, "generation_config.json", "{\"min_p\": 2}");
  expect_open(dir, KVC_ERR_MODEL, "generation_config.json: \"min_p\" must be a number in 0..1");
  write_file(dir, "generation_config.json", "{\"eos_token_id\": [1, \"x\"]}");
  expect_open(dir, KVC_ERR_MODEL, "\"eos_token_id\" must be a token id or a list of them");
  write_file(dir, "generation_config.json", "[]");
  expect_open(dir, KVC_ERR_MODEL, "is not a JSON object");
  char gen[512];
  snprintf(gen, sizeof gen, "%s/generation_config.json", dir);
  assert_int_equal(unlink(gen), 0);
  assert_int_equal(rename(saved, genai), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(info_reports_the_layout),
      cmocka_unit_test(cached_matches_uncached_and_reference),
      cmocka_unit_test(genai_layout_decodes_in_place),
      cmocka_unit_test(genai_layout_batches),
      cmocka_unit_test(genai_config_is_read_and_checked),
      cmocka_unit_test(generation_config_is_read_beside_genai_config),
  };
  return cmocka_run_group_tests_name("genai layout and llama", tests, setup, teardown);
}
