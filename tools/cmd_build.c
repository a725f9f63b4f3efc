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
    "\n";

/* Public models' dimensions (from their config.json), for measuring kvcache at the sizes users
 * run: Llama-style, random weights. The context is capped at MAX_PRESET_SEQ (each position
 * costs every slot cache memory); the LM head is the builder's own matrix, where these models
 * tie it to the embedding. */
enum { MAX_PRESET_SEQ = 4096 };
static const struct preset {
  const char *name;
  int32_t layers, heads, kv_heads, head_dim, ff, vocab, context;
} presets[] = {
    {"llama-243m", 16, 16, 4, 64, 2752, 32000, 2048}, /* this project's reference size */
    {"smollm2-135m", 30, 9, 3, 64, 1536, 49152, 8192},
    {"smollm2-360m", 32, 15, 5, 64, 2560, 49152, 8192},
    {"qwen2.5-0.5b", 24, 14, 2, 64, 4864, 151936, 32768},
    {"llama3.2-1b", 16, 32, 8, 64, 8192, 128256, 131072},
    {"tinyllama-1.1b", 22, 32, 4, 64, 5632, 32000, 2048},
};
enum { N_PRESETS = sizeof presets / sizeof presets[0] };

/* The preset's sizes where the command line did not give them. */
static void apply_preset(const struct preset *m, const kvc_args *args, kvc_build_params *p) {
  const struct {
    const char *option;
    int32_t *field, value;
  } sizes[] = {
      {"--layers", &p->layers, m->layers},
      {"--heads", &p->heads, m->heads},
      {"--kv-heads", &p->kv_heads, m->kv_heads},
      {"--head-dim", &p->head_dim, m->head_dim},
      {"--ff", &p->ff, m->ff},
      {"--vocab", &p->vocab_size, m->vocab},
      {"--max-seq", &p->max_seq_len, m->context < MAX_PRESET_SEQ ? m->context : MAX_PRESET_SEQ}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    if (!kvc_args_given(args, sizes[i].option))
      *sizes[i].field = sizes[i].value;
}

int kvc_cmd_build_model(int argc, char **argv) {
  const char *cmd = "build-model", *dir = NULL;
  kvc_build_params p = kvc_build_default_params();
  const char *const namings[] = {kvc_naming_name(KVC_NAMING_SEED), kvc_naming_name(KVC_NAMING_HF),
                                 NULL};
  const char *const attentions[] = {kvc_attention_name(KVC_ATTENTION_CONCAT),
                                    kvc_attention_name(KVC_ATTENTION_GQA),
                                    kvc_attention_name(KVC_ATTENTION_KVCACHE), NULL};
  const char *const archs[] = {kvc_arch_name(KVC_ARCH_GPT), kvc_arch_name(KVC_ARCH_LLAMA), NULL};
  const char *const layouts[] = {kvc_layout_name(KVC_LAYOUT_KVCACHE),
                                 kvc_layout_name(KVC_LAYOUT_GENAI), NULL};
  const char *const weights[] = {"f32", "q8", "q4", NULL};
  int naming = 0, attention = 0, arch = 0, layout = 0, weight = 0; /* indices, the first default */
  int preset = -1;
  const char *preset_names[N_PRESETS + 1] = {NULL};
  for (int i = 0; i < N_PRESETS; i++)
    preset_names[i] = presets[i].name;
  kvc_opt opts[] = {
      {.name = "--output",
       .alias = "-o",
       .meta = "DIR",
       .kind = KVC_OPT_TEXT,
       .target = &dir,
       .help = "directory to write (created if missing)"},
      KVC_INT32("--layers", "N", &p.layers, 1, INT32_MAX, "decoder blocks (4)"),
      KVC_INT32("--heads", "N", &p.heads, 1, INT32_MAX, "attention heads (4)"),
      KVC_INT32("--head-dim", "N", &p.head_dim, 1, INT32_MAX,
                "size of one head (64); hidden size = heads * head-dim"),
      KVC_INT32("--ff", "N", &p.ff, 1, INT32_MAX,
                "the MLP's width (4 x hidden for gpt; 8/3 x hidden rounded up to 64\n"
                "for llama)"),
      KVC_INT32("--vocab", "N", &p.vocab_size, 1, INT32_MAX, "vocabulary size (1000)"),
      KVC_INT32("--max-seq", "N", &p.max_seq_len, 1, INT32_MAX, "positions the model knows (512)"),
      KVC_UINT64("--seed", "N", &p.seed, "weight seed (1)"),
      KVC_CHOICE("--naming", NULL, &naming, namings,
                 "I/O names: seed (past_key_0 ...) or hf (past_key_values.0.key ...,\n"
                 "with an attention_mask input for concat attention) (seed)"),
      KVC_CHOICE("--attention", NULL, &attention, attentions,
                 "concat: standard ONNX ops, present = Concat(past, new) (the seed's);\n"
                 "gqa: com.microsoft.GroupQueryAttention, which can write the cache in\n"
                 "place; kvcache: kvcache's own operator (ai.kvcache.Attention) in\n"
                 "GroupQueryAttention's place, in place too, with vectorised kernels\n"
                 "(plain ONNX Runtime programs load it from libkvcache_ops); same\n"
                 "weights and math for the same seed (concat)"),
      KVC_INT32("--kv-heads", "N", &p.kv_heads, 1, INT32_MAX,
                "heads of K and V, dividing --heads; fewer than --heads is\n"
                "grouped-query attention and needs --attention gqa or kvcache (= heads)"),
      KVC_CHOICE("--arch", NULL, &arch, archs,
                 "gpt: the seed's (LayerNorm, learned positions, GELU, biases);\n"
                 "llama: RMSNorm, rotary positions inside the attention node, SwiGLU,\n"
                 "no biases, no position_ids input; implies --attention gqa unless\n"
                 "kvcache is asked for (gpt)"),
      KVC_CHOICE("--layout", NULL, &layout, layouts,
                 "kvcache: GQA graphs take seqlens_k and total_sequence_length;\n"
                 "genai: onnxruntime-genai's builder's layout, where the graph computes\n"
                 "them from attention_mask, the head size is symbolic (kv_cache_dim) and\n"
                 "genai_config.json is written too; implies --attention gqa --naming hf\n"
                 "(kvcache)"),
      KVC_CHOICE("--weights", NULL, &weight, weights,
                 "the MatMul weights as float32, or quantised to 8- or 4-bit blocks\n"
                 "(MatMulNBits, as `kvcache quantize` writes them) (f32)"),
      KVC_CHOICE("--preset", "NAME", &preset, preset_names,
                 "a public model's dimensions, with random weights (for measuring:\n"
                 "no vocabulary, no training): llama-243m (this project's reference:\n"
                 "16 layers, hidden 1024, 16 heads, 4 K/V heads, MLP 2752, vocabulary\n"
                 "32000, 2048 positions), smollm2-135m, smollm2-360m, qwen2.5-0.5b,\n"
                 "llama3.2-1b, tinyllama-1.1b. Implies --arch llama; the context is\n"
                 "capped at 4096 positions; the LM head is its own matrix (these\n"
                 "models tie it to the embedding: vocabulary x hidden more weights);\n"
                 "options given beside it override its sizes"),
      KVC_TEXT("--tokenizer", "PATH", &p.tokenizer,
               "a tokenizer.json (or a directory holding one) to copy into DIR with\n"
               "the tokenizer_config.json beside it; --vocab defaults to its size\n"
               "and BOS/EOS/pad to the tokens tokenizer_config.json names"),
      KVC_INT32("--bos-id", "N", &p.bos_token_id, -1, INT32_MAX,
                "the BOS id genai_config.json states (--layout genai); -1: none.\n"
                "Default: from --tokenizer, else 1, a placeholder: these random\n"
                "models have no vocabulary"),
      KVC_INT32("--eos-id", "N", &p.eos_token_id, -1, INT32_MAX,
                "the EOS id, likewise; -1: none (then generation stops only at -n).\n"
                "Default: from --tokenizer, else 2"),
      KVC_INT32("--pad-id", "N", &p.pad_token_id, -1, INT32_MAX,
                "the pad id, likewise. Default: from --tokenizer, else 2"),
  };
  kvc_args args = KVC_ARGS(cmd, usage, opts);
  args.heading = "options (defaults are the seed prototype's model, about 3.8 M parameters):";
  const int parsed = kvc_args_parse(&args, argc, argv);
  if (parsed != KVC_ARGS_GO)
    return parsed;
  if (!dir) {
    fprintf(stderr, "kvcache %s: -o DIR is required\n\n", cmd);
    kvc_args_help(&args, stderr);
    return KVC_EXIT_USAGE;
  }
  if (preset >= 0)
    apply_preset(&presets[preset], &args, &p);
  p.naming = naming ? KVC_NAMING_HF : KVC_NAMING_SEED;
  p.attention = (kvc_attention)attention; /* the order of kvc_attention */
  if (preset >= 0 && !kvc_args_given(&args, "--arch"))
    arch = 1; /* the presets are Llama-shaped */
  p.arch = arch ? KVC_ARCH_LLAMA : KVC_ARCH_GPT;
  p.layout = layout ? KVC_LAYOUT_GENAI : KVC_LAYOUT_KVCACHE;
  p.weight_bits = weight == 0 ? 32 : weight == 1 ? 8 : 4;
  /* what llama and genai need, unless asked otherwise (then the builder says why not) */
  if (!kvc_args_given(&args, "--attention") &&
      (p.arch == KVC_ARCH_LLAMA || p.layout == KVC_LAYOUT_GENAI))
    p.attention = KVC_ATTENTION_GQA;
  if (!kvc_args_given(&args, "--naming") && p.layout == KVC_LAYOUT_GENAI)
    p.naming = KVC_NAMING_HF;
  const int chose_vocab = kvc_args_given(&args, "--vocab") != NULL;
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
