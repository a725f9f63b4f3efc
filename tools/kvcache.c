/* kvcache: command-line tool over libkvcache. Uses only the public header. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "kvcache.h"

static const char usage[] =
    "usage: kvcache <command> [options]\n"
    "\n"
    "Runs transformer decoder models stored as ONNX with an explicit key/value cache.\n"
    "\n"
    "commands:\n"
    "  build-model   write the seed's decoder as ONNX (model.onnx + weights + config.json)\n"
    "  info          describe a model as kvcache reads it\n"
    "  generate      generate token ids from a prompt through the KV cache\n"
    "  verify        check every cached mode against the uncached recompute\n"
    "  bench         measure the cache designs side by side (JSON, CSV, plot, report)\n"
    "  tokenize      text to token ids through a tokenizer.json, line by line\n"
    "  detokenize    token ids to text, line by line\n"
    "  chat          a conversation with a chat model, its cache kept across turns\n"
    "  render        a conversation (JSON messages) rendered by the model's chat template\n"
    "  serve         an OpenAI-compatible HTTP server (completions, chat, streaming)\n"
    "  quantize      rewrite a model's MatMul weights as 8- or 4-bit blocks (MatMulNBits)\n"
    "  eval          compare a model's next-token distributions with another's (KL, top-1)\n"
    "  soak          a long random run (appends, rewinds, forks, state round trips) checking\n"
    "                memory and logits\n"
    "  --version     print kvcache's version and the ONNX Runtime it loaded\n"
    "  --help        print this help\n"
    "\n"
    "Run `kvcache <command> --help` for a command's options.\n";

static int print_version(void) {
  kvc_runtime_info info;
  kvc_status s = kvc_runtime_get_info(&info);
  printf("kvcache %s\n", kvc_version());
  printf("onnxruntime header API version %d\n", info.api_version);
  printf("onnxruntime runtime %s\n", info.ort_version ? info.ort_version : "?");
  printf("onnxruntime library %s\n", info.library_path[0] ? info.library_path : "(unknown)");
  if (s) {
    fprintf(stderr, "kvcache: %s\n", kvc_last_error());
    return 1;
  }
  printf("execution providers %s (built into the runtime: %s)\n", info.usable_providers,
         info.providers);
  if (info.cuda_note[0])
    printf("cuda                not usable: %s\n", info.cuda_note);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage, stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version"))
    return print_version();
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    fputs(usage, stdout);
    return 0;
  }
  static const struct {
    const char *name;
    int (*run)(int, char **);
  } commands[] = {{"build-model", kvc_cmd_build_model},
                  {"info", kvc_cmd_info},
                  {"generate", kvc_cmd_generate},
                  {"verify", kvc_cmd_verify},
                  {"bench", kvc_cmd_bench},
                  {"tokenize", kvc_cmd_tokenize},
                  {"detokenize", kvc_cmd_detokenize},
                  {"quantize", kvc_cmd_quantize},
                  {"eval", kvc_cmd_eval},
                  {"soak", kvc_cmd_soak},
                  {"render", kvc_cmd_render},
                  {"chat", kvc_cmd_chat},
                  {"serve", kvc_cmd_serve}};
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(cmd, commands[i].name))
      return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "kvcache: unknown command '%s'\n\n%s", cmd, usage);
  return 2;
}
