/* kvcache render: a conversation rendered by a model's chat template, printed exactly (no
 * newline added), or as the token ids of that text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "chat_files.h"
#include "kvcache.h"

static const char usage[] =
    "usage: kvcache render -m DIR --messages FILE.json [--tools FILE.json] "
    "[--no-generation-prompt]\n"
    "\n"
    "Renders OpenAI-style messages ([{\"role\": \"user\", \"content\": \"Hi\"}, ...]) with the "
    "chat\n"
    "template of DIR's tokenizer_config.json (or of that file given itself) and prints the text\n"
    "exactly as rendered, without a trailing newline, so that another renderer's output can be\n"
    "compared with it byte for byte. FILE \"-\" reads stdin.\n"
    "\n";

int kvc_cmd_render(int argc, char **argv) {
  const char *dir = NULL, *messages_path = NULL, *tools_path = NULL, *variables = NULL;
  int no_prompt = 0, tokens = 0;
  kvc_opt opts[] = {
      KVC_TEXT("--model", "DIR", &dir,
               "a model directory (its tokenizer_config.json), or a tokenizer_config.json"),
      KVC_TEXT("--messages", "FILE", &messages_path, "the conversation: a JSON array of messages"),
      KVC_TEXT("--tools", "FILE", &tools_path,
               "a JSON array of tool definitions (the template's\n"
               "`tools`; default: none)"),
      KVC_TEXT("--variables", "JSON", &variables,
               "more template variables, a JSON object (e.g. '{\"enable_thinking\": false}')"),
      KVC_FLAG("--no-generation-prompt", &no_prompt,
               "leave out the opening of the assistant's turn (add_generation_prompt false)"),
      KVC_FLAG("--tokens", &tokens,
               "print the text's token ids (DIR's tokenizer.json) on one line instead"),
  };
  opts[0].alias = "-m";
  kvc_args args = KVC_ARGS("render", usage, opts);
  const int parsed = kvc_args_parse(&args, argc, argv);
  if (parsed != KVC_ARGS_GO)
    return parsed;
  if (!dir || !messages_path) {
    fprintf(stderr, "kvcache render: -m DIR and --messages FILE are required\n\n");
    kvc_args_help(&args, stderr);
    return KVC_EXIT_USAGE;
  }
  kvc_chat_params params = kvc_chat_default_params();
  params.add_generation_prompt = !no_prompt;
  params.variables = variables;
  char *messages = NULL, *tools = NULL, *text = NULL;
  kvc_chat_template *tmpl = NULL;
  kvc_tokenizer *tokenizer = NULL;
  int32_t *ids = NULL;
  int rc = kvc_chat_read_text("render", "--messages", messages_path, &messages);
  if (!rc && tools_path)
    rc = kvc_chat_read_text("render", "--tools", tools_path, &tools);
  if (rc)
    goto done;
  params.messages = messages;
  params.tools = tools;
  kvc_status s = kvc_chat_template_open(dir, &tmpl);
  if (!s && tokens)
    s = kvc_tokenizer_open(dir, &tokenizer);
  size_t len = 0;
  if (!s && !tokens && !(s = kvc_chat_render(tmpl, &params, NULL, 0, &len))) {
    text = malloc(len + 1);
    if (!text) {
      fprintf(stderr, "kvcache render: out of memory\n");
      rc = 1;
      goto done;
    }
    s = kvc_chat_render(tmpl, &params, text, len + 1, &len);
  }
  int32_t n = 0;
  if (!s && tokens && !(s = kvc_chat_tokenize(tmpl, tokenizer, &params, NULL, 0, &n))) {
    ids = malloc(((size_t)n + 1) * sizeof *ids);
    if (!ids) {
      fprintf(stderr, "kvcache render: out of memory\n");
      rc = 1;
      goto done;
    }
    s = kvc_chat_tokenize(tmpl, tokenizer, &params, ids, n, &n);
  }
  if (s) {
    fprintf(stderr, "kvcache render: %s\n", kvc_last_error());
    rc = s == KVC_ERR_INVALID_ARG || s == KVC_ERR_IO ? KVC_EXIT_USAGE : 1;
    goto done;
  }
  if (tokens) {
    for (int32_t i = 0; i < n; i++)
      printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
  } else {
    fwrite(text, 1, len, stdout);
  }
  rc = fflush(stdout) ? 1 : 0;
done:
  free(messages);
  free(tools);
  free(text);
  free(ids);
  kvc_chat_template_free(tmpl);
  kvc_tokenizer_free(tokenizer);
  return rc;
}
