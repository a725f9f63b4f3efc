/* kvcache quantize: a model directory's MatMul weights as 8- or 4-bit blocks. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "kvcache.h"

static const char usage[] =
    "usage: kvcache quantize IN_DIR OUT_DIR [--bits 8|4] [--block N] [--symmetric]\n"
    "                        [--keep-lm-head | --lm-head-bits 8|4] [--accuracy-level L]\n"
    "\n"
    "Writes OUT_DIR (a new directory): the model of IN_DIR with every MatMul whose weights are\n"
    "constant as com.microsoft.MatMulNBits (round-to-nearest block quantisation; see\n"
    "docs/QUANTIZATION.md), the LM head included unless --keep-lm-head. Embeddings, norms\n"
    "and biases stay float. The other files (config.json, genai_config.json, tokenizer) are\n"
    "copied. Nothing is written on error.\n"
    "\n";

int kvc_cmd_quantize(int argc, char **argv) {
  const char *cmd = "quantize", *dirs[2] = {NULL, NULL};
  kvc_quantize_params p = kvc_quantize_default_params();
  int keep_lm_head = 0;
  kvc_opt opts[] = {
      KVC_INT32("--bits", "8|4", &p.bits, 0, 1 << 16, "bits per weight (4)"),
      KVC_INT32("--block", "N", &p.block_size, 0, 1 << 16,
                "weights per scale along K, a power of two in 16..256 (32)"),
      KVC_FLAG("--symmetric", &p.symmetric,
               "no zero points: each block's largest magnitude sets its scale"),
      KVC_FLAG("--keep-lm-head", &keep_lm_head,
               "keep the MatMul that produces logits float (by default it is\n"
               "quantised too, at 8 bits, where the products take int8 activations:\n"
               "kept, a third of the 4-bit 243 M model's bytes; docs/QUANTIZATION.md)"),
      KVC_INT32("--lm-head-bits", "8|4", &p.lm_head_bits, 4, 8,
                "the LM head's bits (default: 8, whatever --bits, where the\n"
                "products take int8 activations; float where they do not, as\n"
                "ONNX Runtime's 8-bit kernel for float activations is slow)"),
      KVC_FLAG("--include-lm-head", &p.include_lm_head,
               "quantise the LM head too: the default since 0.2, accepted for scripts\n"
               "written before"),
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
  if (keep_lm_head && kvc_args_given(&args, "--include-lm-head")) {
    fprintf(stderr, "kvcache %s: --keep-lm-head and --include-lm-head contradict each other\n",
            cmd);
    return KVC_EXIT_USAGE;
  }
  if (keep_lm_head && kvc_args_given(&args, "--lm-head-bits")) {
    fprintf(stderr, "kvcache %s: --keep-lm-head and --lm-head-bits contradict each other\n", cmd);
    return KVC_EXIT_USAGE;
  }
  if (keep_lm_head)
    p.include_lm_head = 0;
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
  char head[48] = "";
  if (r.lm_head_bits)
    snprintf(head, sizeof head, ", the LM head at %d bits", r.lm_head_bits);
  printf("wrote %s: %d MatMuls as %d-bit blocks of %d%s%s (accuracy_level %d), %d left float; "
         "%.1f MB of weights -> %.1f MB\n",
         dirs[1], r.quantized, p.bits, p.block_size, p.symmetric ? " (symmetric)" : "", head,
         r.accuracy_level, r.skipped, r.bytes_before / 1e6, r.bytes_after / 1e6);
  return 0;
}
