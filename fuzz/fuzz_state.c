/* libFuzzer: state loading (kvc_seq_load_buffer) into a sequence of a small model built at
 * start-up with the parameters fuzz/corpus/state was saved with. A state that loads must
 * leave a sequence of its declared length. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "kvcache.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kvc_seq *seq;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  char dir[64];
  snprintf(dir, sizeof dir, "/tmp/kvcache-fuzz-model-%ld", (long)getpid());
  kvc_build_params p = kvc_build_default_params();
  p.layers = 1, p.heads = 2, p.head_dim = 8, p.vocab_size = 50, p.max_seq_len = 32;
  p.attention = KVC_ATTENTION_GQA;
  kvc_model_params mp = kvc_model_default_params();
  mp.intra_op_threads = 1;
  kvc_model *model = NULL;
  if (kvc_build_model(dir, &p) || kvc_model_open(dir, &mp, &model) ||
      kvc_seq_new(model, NULL, &seq)) {
    fprintf(stderr, "fuzz_state: %s\n", kvc_last_error());
    return 1;
  }
  return 0; /* the model and the directory live as long as the process */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (kvc_seq_load_buffer(seq, data, size) == KVC_OK && kvc_seq_len(seq) > 32)
    __builtin_trap();
  return 0;
}
