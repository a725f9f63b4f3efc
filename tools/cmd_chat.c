/* kvcache chat: a conversation on the terminal, one line a turn, in one sequence whose cache
 * keeps the earlier turns (chat_session.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "chat_files.h"
#include "chat_session.h"
#include "commands.h"
#include "kvcache.h"
#include "sampling_args.h"

static const char usage[] =
    "usage: kvcache chat -m DIR [--system TEXT] [-n 512] [options]\n"
    "\n"
    "A conversation with a chat model: each line you type is a user message; the reply\n"
    "streams back. The model directory's tokenizer_config.json gives the chat template and\n"
    "tokenizer.json the tokens. Every turn renders the whole conversation, keeps what the\n"
    "cache already holds of it and prefills only the rest; each turn's counts and times go\n"
    "to stderr. Commands:\n"
    "  /reset        start over (the system message stays)\n"
    "  /save FILE    save the conversation: FILE (the sequence, a state file) and FILE.json\n"
    "                (its messages)\n"
    "  /load FILE    go on from a saved conversation\n"
    "  /quit         leave (as does the end of input)\n"
    "\n";

static int save(kvc_chat_session *s, const char *file) {
  char json[4200];
  snprintf(json, sizeof json, "%s.json", file);
  kvc_status st = kvc_seq_save(s->seq, file);
  if (st) {
    fprintf(stderr, "kvcache %s: /save: %s\n", s->cmd, kvc_last_error());
    return 1;
  }
  char *text = cJSON_Print(s->messages);
  FILE *f = text ? fopen(json, "w") : NULL;
  int ok = f && fputs(text, f) >= 0;
  if (f && fclose(f))
    ok = 0;
  free(text);
  if (!ok)
    fprintf(stderr, "kvcache %s: /save: cannot write %s\n", s->cmd, json);
  else
    fprintf(stderr, "[saved %d tokens to %s, the messages to %s]\n", kvc_seq_len(s->seq), file,
            json);
  return !ok;
}

static int load(kvc_chat_session *s, const char *file) {
  char json[4200], *text = NULL;
  snprintf(json, sizeof json, "%s.json", file);
  if (kvc_chat_read_text(s->cmd, "/load", json, &text))
    return 1;
  cJSON *messages = cJSON_Parse(text);
  free(text);
  if (!cJSON_IsArray(messages)) {
    fprintf(stderr, "kvcache %s: /load: %s is not a JSON array of messages\n", s->cmd, json);
    cJSON_Delete(messages);
    return 1;
  }
  kvc_status st = kvc_seq_load(s->seq, file);
  if (st) {
    fprintf(stderr, "kvcache %s: /load: %s\n", s->cmd, kvc_last_error());
    cJSON_Delete(messages);
    return 1;
  }
  cJSON_Delete(s->messages);
  s->messages = messages;
  fprintf(stderr, "[loaded %d tokens and %d messages]\n", kvc_seq_len(s->seq),
          cJSON_GetArraySize(messages));
  return 0;
}

int kvc_cmd_chat(int argc, char **argv) {
  const char *cmd = "chat", *dir = NULL, *system = NULL, *variables = NULL;
  int64_t n_new = 512;
  int check = 0;
  kvc_model_params mp = kvc_model_default_params();
  kvc_sampling_args sa = KVC_SAMPLING_ARGS_INIT;
  kvc_chat_stops stops = {0};
  kvc_opt opts[] = {
      KVC_TEXT("--system", "TEXT", &system, "a system message to open the conversation"),
      KVC_INT64("-n", "N", &n_new, 1, 1 << 24, "the most tokens a reply may have (512)"),
      KVC_CUSTOM("--stop", "TEXT", &stops, kvc_chat_parse_stop,
                 "end a reply when its text holds TEXT (not printed); may be given\n"
                 "several times (the model's end-of-sequence tokens always end it)"),
      KVC_TEXT("--variables", "JSON", &variables,
               "more template variables, a JSON object (e.g. '{\"enable_thinking\":\n"
               "false}')"),
      KVC_SAMPLING_OPTS(&sa),
      KVC_FLAG("--check", &check,
               "after each turn's prefill, compare the logits with those of a fresh\n"
               "uncached sequence fed the whole conversation (reported per turn)"),
  };
  kvc_args args = KVC_ARGS_MODEL(cmd, usage, opts, &mp, &dir);
  const int parsed = kvc_args_parse(&args, argc, argv);
  if (parsed != KVC_ARGS_GO)
    return parsed;
  if (kvc_sampling_check(cmd, &args, &sa))
    return KVC_EXIT_USAGE;
  kvc_model *model = NULL;
  int rc = kvc_arg_open_model(cmd, dir, &mp, &model);
  if (rc)
    return rc;
  kvc_chat_session chat = {.n_new = (int32_t)n_new, .check = check, .variables = variables};
  const kvc_sampler_params sp = kvc_sampling_params(&sa, model);
  rc = kvc_chat_open(&chat, cmd, model, &sp, &stops);
  if (!rc && system)
    rc = kvc_chat_add(&chat, "system", system);
  const int interactive = isatty(STDIN_FILENO);
  char *line = NULL;
  size_t cap = 0;
  int turn = 0;
  while (!rc) {
    if (interactive) {
      fputs("> ", stdout);
      fflush(stdout);
    }
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0)
      break;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = 0;
    if (!n)
      continue;
    if (!strcmp(line, "/quit") || !strcmp(line, "/exit"))
      break;
    if (!strcmp(line, "/reset")) {
      cJSON_Delete(chat.messages);
      chat.messages = cJSON_CreateArray();
      kvc_seq_reset(chat.seq);
      if (system)
        rc = kvc_chat_add(&chat, "system", system);
      fprintf(stderr, "[reset]\n");
      continue;
    }
    if (!strncmp(line, "/save ", 6) || !strncmp(line, "/load ", 6)) {
      if (line[1] == 's')
        save(&chat, line + 6);
      else
        load(&chat, line + 6);
      continue;
    }
    if (line[0] == '/' && strchr(line, ' ') == NULL) {
      fprintf(stderr, "[unknown command %s: /reset, /save FILE, /load FILE, /quit]\n", line);
      continue;
    }
    if ((rc = kvc_chat_add(&chat, "user", line)))
      break;
    kvc_chat_turn t;
    int failed = kvc_chat_reply(&chat, stdout, &t);
    if (failed) { /* the message is taken back; the conversation goes on */
      cJSON_DeleteItemFromArray(chat.messages, cJSON_GetArraySize(chat.messages) - 1);
      if (!interactive)
        rc = failed;
      continue;
    }
    putchar('\n');
    fflush(stdout);
    kvc_chat_report(&t, ++turn);
  }
  free(line);
  kvc_chat_close(&chat);
  kvc_model_free(model);
  return rc;
}
