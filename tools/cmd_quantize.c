/* kvcache quantize: a model directory's MatMul weights as 8- or 4-bit blocks. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "kvcache.h"

static const char usage[] =
    "usage: kvcache quantize IN_DIR OUT_DIR [--bits 8|4] [--block N] [--symmetric]\n"
    "                        [--include-lm-head] [--accuracy-level L]\n"
    "\n"
    "Writes OUT_DIR (a new directory): the model of IN_DIR with every MatMul whose weights are\n"
    "constant as com.microsoft.MatMulNBits (round-to-nearest block quantisation; see\n"
    "docs/QUANTIZATION.md). Embeddings, norms, biases and the LM head stay float. The other\n"
    "files (config.json, genai_config.json, tokenizer) are copied. Nothing is written on error.\n"
    "\n";

int kvc_cmd_quantize(int argc, char **argv) {
  const char *cmd = "quantize", *dirs[2] = {NULL, NULL};
  kvc_quantize_params p = kvc_quantize_default_params();
  kvc_opt opts[] = {
      KVC_INT32("--bits", "8|4", &p.bits, 0, 1 << 16, "bits per weight (4)"),
      KVC_INT32("--block", "N", &p.block_size, 0, 1 << 16,
                "weights per scale along K, a power of two in 16..256 (32)"),
      KVC_FLAG("--symmetric", &p.symmetric,
               "no zero points: each block's largest magnitude sets its scale"),
      KVC_FLAG("--include-lm-head", &p.include_lm_head,
               "quantise the MatMul that produces logits too"),
      KVC_INT32("--accuracy-level", "L", &p.accuracy_level, 0, 1 << 16,
                "MatMulNBits' accuracy_level 0..4: 4 computes with int8\n"
                "activations (faster), 0 with float. Default: 4 for graphs whose\n"
                "attention is kvcache's operator (build-model --attention kvcache:\n"
                "the cache stays exact), 0 for others (GroupQueryAttention's tiny\n"
                "prefill/decode differences would move int8 codes)"),
  };
  kvc_args args = KVC_ARGS(cmd, usage, opts);
  args.words = dirs, args.max_words = 2;
  const int parsed = kvc_args_parse(&args, argc, argv);
  if (parsed != KVC_ARGS_GO)
    return parsed;
  if (args.n_words != 2) {
    fprintf(stderr, "kvcache %s: expected IN_DIR and OUT_DIR\n\n", cmd);
    kvc_args_help(&args, stderr);
    return KVC_EXIT_USAGE;
  }
  kvc_quantize_report r;
  kvc_status s = kvc_quantize(dirs[0], dirs[1], &p, &r);
  if (s) {
    fprintf(stderr, "kvcache %s: %s\n", cmd, kvc_last_error());
    return s == KVC_ERR_INVALID_ARG || s == KVC_ERR_IO ? KVC_EXIT_USAGE : 1;
  }
  printf("wrote %s: %d MatMuls as %d-bit blocks of %d%s (accuracy_level %d), %d left float; "
         "%.1f MB of weights -> %.1f MB\n",
         dirs[1], r.quantized, p.bits, p.block_size, p.symmetric ? " (symmetric)" : "",
         r.accuracy_level, r.skipped, r.bytes_before / 1e6, r.bytes_after / 1e6);
  return 0;
}
