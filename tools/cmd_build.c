/* kvcache build-model: write the seed's decoder as ONNX with external weights. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "commands.h"
#include "kvcache.h"

static const char usage[] =
    "usage: kvcache build-model -o DIR [options]\n"
    "\n"
    "Writes DIR/model.onnx, DIR/model.onnx.data (weights) and DIR/config.json: a GPT- or\n"
    "Llama-style decoder with explicit KV-cache inputs and outputs (opset 17; standard ONNX\n"
    "ops unless --attention gqa or kvcache).\n"
    "Weights are drawn from --seed: one seed gives byte-identical files.\n"
    "\n"
    "options (defaults are the seed prototype's model, about 3.8 M parameters):\n"
    "  -o, --output DIR   directory to write (created if missing)\n"
    "  --layers N         decoder blocks (4)\n"
    "  --heads N          attention heads (4)\n"
    "  --head-dim N       size of one head (64); hidden size = heads * head-dim\n"
    "  --vocab N          vocabulary size (1000)\n"
    "  --max-seq N        positions the model knows (512)\n"
    "  --seed N           weight seed (1)\n"
    "  --naming seed|hf   I/O names: seed (past_key_0 ...) or hf (past_key_values.0.key ...,\n"
    "                     with an attention_mask input for concat attention) (seed)\n"
    "  --attention concat|gqa|kvcache\n"
    "                     concat: standard ONNX ops, present = Concat(past, new) (the seed's);\n"
    "                     gqa: com.microsoft.GroupQueryAttention, which can write the cache in\n"
    "                     place; kvcache: kvcache's own operator (ai.kvcache.Attention) in\n"
    "                     GroupQueryAttention's place, in place too, with vectorised kernels\n"
    "                     (plain ONNX Runtime programs load it from libkvcache_ops); same\n"
    "                     weights and math for the same seed (concat)\n"
    "  --kv-heads N       heads of K and V, dividing --heads; fewer than --heads is\n"
    "                     grouped-query attention and needs --attention gqa or kvcache (= heads)\n"
    "  --arch gpt|llama   gpt: the seed's (LayerNorm, learned positions, GELU, biases);\n"
    "                     llama: RMSNorm, rotary positions inside the attention node, SwiGLU,\n"
    "                     no biases, no position_ids input; implies --attention gqa unless\n"
    "                     kvcache is asked for (gpt)\n"
    "  --layout kvcache|genai\n"
    "                     kvcache: GQA graphs take seqlens_k and total_sequence_length;\n"
    "                     genai: onnxruntime-genai's builder's layout, where the graph computes\n"
    "                     them from attention_mask, the head size is symbolic (kv_cache_dim) and\n"
    "                     genai_config.json is written too; implies --attention gqa --naming hf\n"
    "                     (kvcache)\n"
    "  --weights f32|q8|q4\n"
    "                     the MatMul weights as float32, or quantised to 8- or 4-bit blocks\n"
    "                     (MatMulNBits, as `kvcache quantize` writes them) (f32)\n"
    "  --tokenizer PATH   a tokenizer.json (or a directory holding one) to copy into DIR with\n"
    "                     the tokenizer_config.json beside it; --vocab defaults to its size\n"
    "                     and BOS/EOS/pad to the tokens tokenizer_config.json names\n"
    "  --bos-id N, --eos-id N, --pad-id N\n"
    "                     the ids genai_config.json states (--layout genai); -1: none (then\n"
    "                     generation stops only at -n). Default: from --tokenizer, else 1, 2\n"
    "                     and 2, placeholders: these random models have no vocabulary\n";

/* The options that pick one of a few named values (the first is the default). */
enum { C_NAMING, C_ATTENTION, C_ARCH, C_LAYOUT, N_CHOICES };
typedef struct choice {
  const char *option;
  const char *names[3];
  int count;
} choice;

static int choice_of(const choice *choices, const char *opt) {
  for (int c = 0; c < N_CHOICES; c++)
    if (!strcmp(opt, choices[c].option))
      return c;
  return -1;
}

int kvc_cmd_build_model(int argc, char **argv) {
  const char *cmd = "build-model", *dir = NULL;
  kvc_build_params p = kvc_build_default_params();
  const choice choices[N_CHOICES] = {
      {"--naming", {kvc_naming_name(KVC_NAMING_SEED), kvc_naming_name(KVC_NAMING_HF)}, 2},
      {"--attention",
       {kvc_attention_name(KVC_ATTENTION_CONCAT), kvc_attention_name(KVC_ATTENTION_GQA),
        kvc_attention_name(KVC_ATTENTION_KVCACHE)},
       3},
      {"--arch", {kvc_arch_name(KVC_ARCH_GPT), kvc_arch_name(KVC_ARCH_LLAMA)}, 2},
      {"--layout", {kvc_layout_name(KVC_LAYOUT_KVCACHE), kvc_layout_name(KVC_LAYOUT_GENAI)}, 2}};
  int picked[N_CHOICES] = {0}, chose[N_CHOICES] = {0}, chose_vocab = 0;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    int c;
    if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
      fputs(usage, stdout);
      return 0;
    }
    struct {
      const char *name;
      int32_t *field;
    } sizes[] = {{"--layers", &p.layers},       {"--heads", &p.heads},
                 {"--head-dim", &p.head_dim},   {"--vocab", &p.vocab_size},
                 {"--max-seq", &p.max_seq_len}, {"--kv-heads", &p.kv_heads}};
    int matched = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      if (strcmp(opt, sizes[s].name))
        continue;
      chose_vocab |= sizes[s].field == &p.vocab_size;
      const char *v = kvc_arg_value(cmd, argc, argv, &i);
      int64_t n;
      if (!v || !kvc_arg_int(cmd, opt, v, 1, INT32_MAX, &n))
        return KVC_EXIT_USAGE;
      *sizes[s].field = (int32_t)n;
      matched = 1;
    }
    if (matched)
      continue;
    struct {
      const char *name;
      int32_t *field;
    } ids[] = {{"--bos-id", &p.bos_token_id},
               {"--eos-id", &p.eos_token_id},
               {"--pad-id", &p.pad_token_id}};
    for (size_t t = 0; t < sizeof ids / sizeof ids[0]; t++) {
      if (strcmp(opt, ids[t].name))
        continue;
      const char *v = kvc_arg_value(cmd, argc, argv, &i);
      int64_t n;
      if (!v || !kvc_arg_int(cmd, opt, v, -1, INT32_MAX, &n))
        return KVC_EXIT_USAGE;
      *ids[t].field = (int32_t)n;
      matched = 1;
    }
    if (matched)
      continue;
    if (!strcmp(opt, "-o") || !strcmp(opt, "--output")) {
      if (!(dir = kvc_arg_value(cmd, argc, argv, &i)))
        return KVC_EXIT_USAGE;
    } else if (!strcmp(opt, "--tokenizer")) {
      if (!(p.tokenizer = kvc_arg_value(cmd, argc, argv, &i)))
        return KVC_EXIT_USAGE;
    } else if (!strcmp(opt, "--weights")) {
      const char *const kinds[] = {"f32", "q8", "q4"};
      const char *v = kvc_arg_value(cmd, argc, argv, &i);
      int k = v ? kvc_arg_choice(cmd, opt, v, kinds, 3) : -1;
      if (k < 0)
        return KVC_EXIT_USAGE;
      p.weight_bits = k == 0 ? 32 : k == 1 ? 8 : 4;
    } else if (!strcmp(opt, "--seed")) {
      const char *v = kvc_arg_value(cmd, argc, argv, &i);
      if (!v || !kvc_arg_u64(cmd, opt, v, &p.seed))
        return KVC_EXIT_USAGE;
    } else if ((c = choice_of(choices, opt)) >= 0) {
      const char *v = kvc_arg_value(cmd, argc, argv, &i);
      int k = v ? kvc_arg_choice(cmd, opt, v, choices[c].names, choices[c].count) : -1;
      if (k < 0)
        return KVC_EXIT_USAGE;
      picked[c] = k;
      chose[c] = 1;
    } else {
      return kvc_arg_unknown(cmd, opt, usage, 0);
    }
  }
  if (!dir) {
    fprintf(stderr, "kvcache %s: -o DIR is required\n\n%s", cmd, usage);
    return KVC_EXIT_USAGE;
  }
  p.naming = picked[C_NAMING] ? KVC_NAMING_HF : KVC_NAMING_SEED;
  p.attention = (kvc_attention)picked[C_ATTENTION]; /* the order of kvc_attention */
  p.arch = picked[C_ARCH] ? KVC_ARCH_LLAMA : KVC_ARCH_GPT;
  p.layout = picked[C_LAYOUT] ? KVC_LAYOUT_GENAI : KVC_LAYOUT_KVCACHE;
  /* what llama and genai need, unless asked otherwise (then the builder says why not) */
  if (!chose[C_ATTENTION] && (p.arch == KVC_ARCH_LLAMA || p.layout == KVC_LAYOUT_GENAI))
    p.attention = KVC_ATTENTION_GQA;
  if (!chose[C_NAMING] && p.layout == KVC_LAYOUT_GENAI)
    p.naming = KVC_NAMING_HF;
  kvc_status s = KVC_OK;
  if (p.tokenizer && !chose_vocab) { /* the tokenizer's size (the builder checks the rest) */
    kvc_tokenizer *tok = NULL;
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s%s", p.tokenizer,
             stat(p.tokenizer, &st) == 0 && S_ISDIR(st.st_mode) ? "/tokenizer.json" : "");
    if (!(s = kvc_tokenizer_open(path, &tok)))
      p.vocab_size = kvc_tokenizer_vocab_size(tok);
    kvc_tokenizer_free(tok);
  }
  if (!s)
    s = kvc_build_model(dir, &p);
  if (s) {
    fprintf(stderr, "kvcache %s: %s\n", cmd, kvc_last_error());
    return s == KVC_ERR_INVALID_ARG || s == KVC_ERR_IO ? KVC_EXIT_USAGE : 1;
  }
  int64_t n = kvc_build_param_count(&p);
  printf("wrote %s/model.onnx, %s/model.onnx.data, %s/config.json%s%s%s\n", dir, dir, dir,
         p.layout == KVC_LAYOUT_GENAI ? ", " : "", p.layout == KVC_LAYOUT_GENAI ? dir : "",
         p.layout == KVC_LAYOUT_GENAI ? "/genai_config.json" : "");
  if (p.weight_bits == 32)
    printf("parameters %" PRId64 " (%.1f MB of float32 weights)\n", n, (double)n * 4 / 1e6);
  else
    printf("parameters %" PRId64 ", the MatMul weights as %d-bit blocks (`kvcache info -m %s` "
           "gives the bytes)\n",
           n, p.weight_bits, dir);
  return 0;
}
