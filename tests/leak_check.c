/* leak_check DIR_CONCAT DIR_GQA: every path of the engine that creates ONNX Runtime objects
 * (sessions, bindings, tensors it allocates, tensors viewing ours), in every KV mode, with its
 * failures too, and everything freed. Run under valgrind by `make test`: LeakSanitizer cannot
 * see into ONNX Runtime (no frame pointers there), valgrind can, so an OrtValue kvcache forgot
 * to release shows up with kvcache's frames in its stack. */
#include <stdio.h>
#include <string.h>

#include "kvcache.h"

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != KVC_OK) {                                                                        \
      fprintf(stderr, "%s: %s\n", #call, kvc_last_error());                                        \
      return 1;                                                                                    \
    }                                                                                              \
  } while (0)

static int exercise(const char *dir) {
  kvc_model_params mp = kvc_model_default_params();
  mp.intra_op_threads = 1;
  kvc_model *m = NULL;
  CHECK(kvc_model_open(dir, &mp, &m));
  kvc_model_info info;
  CHECK(kvc_model_get_info(m, &info));
  const kvc_kv_mode modes[] = {KVC_KV_NAIVE, KVC_KV_BOUND, KVC_KV_UNCACHED, KVC_KV_SHARED};
  const int n_modes = info.attention != KVC_ATTENTION_CONCAT ? 4 : 3;
  for (int k = 0; k < n_modes; k++) {
    kvc_seq_params sp = {.kv_mode = modes[k]};
    kvc_seq *q = NULL;
    CHECK(kvc_seq_new(m, &sp, &q));
    const int32_t t[4] = {1, 2, 3, 4}, bad[1] = {info.vocab_size};
    CHECK(kvc_seq_append(q, t, 4));
    CHECK(kvc_seq_append(q, t, 1));
    CHECK(kvc_seq_rewind(q, 2));
    CHECK(kvc_seq_append(q, t, 2));
    if (kvc_seq_append(q, bad, 1) != KVC_ERR_INVALID_ARG)
      return 1;
    int32_t fill[64] = {0};
    while (kvc_seq_len(q) + 8 <= info.max_seq_len)
      CHECK(kvc_seq_append(q, fill, 8));
    if (kvc_seq_append(q, fill, 9) != KVC_ERR_CACHE_FULL)
      return 1;
    kvc_sampler *s = NULL;
    kvc_sampler_params sap = kvc_sampler_default_params();
    sap.temperature = 0.8f, sap.top_k = 5;
    CHECK(kvc_sampler_new(&sap, info.vocab_size, &s));
    int32_t out[3], n_out;
    CHECK(kvc_seq_reset(q));
    CHECK(kvc_generate(q, t, 2, 3, s, out, &n_out, NULL, NULL));
    kvc_sampler_free(s);
    kvc_seq_free(q);
  }
  const int64_t bytes[1] = {4096};
  double ms;
  CHECK(kvc_model_floor(m, bytes, 1, 2, &ms));
  kvc_model_free(m);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3)
    return 2;
  kvc_model *m = NULL;
  if (kvc_model_open("/nonexistent", NULL, &m) == KVC_OK) /* a failed open frees what it made */
    return 1;
  kvc_model_params cuda = kvc_model_default_params();
  cuda.provider = "cuda";
  if (kvc_model_open(argv[1], &cuda, &m) == KVC_OK)
    kvc_model_free(m);
  kvc_runtime_info rt;
  CHECK(kvc_runtime_get_info(&rt));
  if (exercise(argv[1]) || exercise(argv[2]))
    return 1;
  printf("leak_check: every mode of %s and %s exercised and freed\n", argv[1], argv[2]);
  return 0;
}
