/* kvcache generate: run a prompt and print the generated token ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "kvcache.h"
#include "chat_files.h"
#include "chat_session.h"
#include "parallel.h"
#include "sampling_args.h"
#include "text_stream.h"

static const char usage[] =
    "usage: kvcache generate -m DIR --prompt \"text\" [-n 32] [options]\n"
    "       kvcache generate -m DIR --messages FILE.json [-n 32] [options]\n"
    "       kvcache generate -m DIR --prompt-ids \"1 2 3\" [-n 32] [options]\n"
    "       kvcache generate -m DIR --prompts FILE [-n 32] [--parallel P] [options]\n"
    "\n"
    "Appends the prompt, then generates tokens one at a time through the KV cache. With\n"
    "--prompt, the text is encoded by the tokenizer.json in the model's directory (with its\n"
    "special tokens, e.g. BOS) and the generated text streams to stdout as tokens arrive;\n"
    "with --prompt-ids, the generated token ids are printed on one line. Generation stops at\n"
    "the model's end-of-sequence token (genai_config.json). Timings go to stderr.\n"
    "\n"
    "With --prompts, FILE holds one prompt per line (token ids separated by spaces); up to P\n"
    "of them decode together in one context of P slots, each step one run for all of them\n"
    "where the model batches (`kvcache info`), a new prompt joining as soon as one finishes.\n"
    "The output is one line per prompt, in file order: its generated ids.\n"
    "\n";

/* To stderr: the KV mode, prefill and decode times, and why generation stopped (the model's
 * end-of-sequence token, -n, or a stop string: n_new < 0). */
static void report(const kvc_model *model, kvc_seq *seq, const int32_t *out, int32_t n_out,
                   int32_t n_new) {
  kvc_seq_metrics m;
  kvc_seq_get_metrics(seq, &m);
  double decode = 0;
  for (int32_t i = 0; i < m.decode_steps; i++)
    decode += m.decode_ms[i];
  kvc_model_info info;
  kvc_model_get_info(model, &info);
  int eos = 0;
  for (int32_t i = 0; n_out && i < info.n_eos; i++)
    eos |= out[n_out - 1] == info.eos_token_ids[i];
  char why[64];
  if (n_new < 0)
    snprintf(why, sizeof why, "a stop string (--stop)");
  else if (eos)
    snprintf(why, sizeof why, "end-of-sequence token %d", out[n_out - 1]);
  else
    snprintf(why, sizeof why, "-n %d tokens", n_new);
  fprintf(stderr,
          "kv %s: prefill %d tokens %.2f ms; %d decode steps, %.3f ms/token (%.1f tokens/s); "
          "stopped at %s\n",
          kvc_kv_mode_name(kvc_seq_kv_mode(seq)), m.prefill_tokens, m.prefill_ms, m.decode_steps,
          m.decode_steps ? decode / m.decode_steps : 0.0,
          decode > 0 ? m.decode_steps * 1e3 / decode : 0.0, why);
}

/* Whether a prompt of n_prompt tokens (`what`), after `have` already in the sequence, and n_new
 * generated tokens fit the context: generation appends all but the last, which --save-state
 * appends too (keeps_last). Prints which option to change and returns KVC_EXIT_USAGE when
 * not, before anything is generated. */
static int fits(const char *cmd, const kvc_model *model, const char *what, int32_t have,
                int32_t n_prompt, int32_t n_new, int keeps_last) {
  kvc_model_info info;
  kvc_model_get_info(model, &info);
  const int64_t cap = info.max_seq_len, room = cap - have - n_prompt;
  if (room < 0) {
    fprintf(stderr,
            "kvcache %s: the prompt (%s) is %d tokens%s: more than the context's %lld positions "
            "(max_seq_len; --max-seq lowers it, the model allows %d)\n",
            cmd, what, n_prompt, have ? " after those of --load-state" : "", (long long)cap,
            info.model_max_seq_len);
    return KVC_EXIT_USAGE;
  }
  if ((int64_t)n_new - 1 + keeps_last > room) {
    fprintf(stderr,
            "kvcache %s: -n %d does not fit: %lld of the context's %lld positions are left after "
            "the prompt, so -n can be at most %lld%s\n",
            cmd, n_new, (long long)room, (long long)cap, (long long)room + 1 - keeps_last,
            keeps_last ? " (--save-state keeps the last token too)" : "");
    return KVC_EXIT_USAGE;
  }
  return 0;
}

/* Streaming: each generated token's completed text goes to stdout at once, less what might
 * begin a stop string (held until it cannot). */
typedef struct stream {
  kvc_text_stream text;
  kvc_status status;
} stream;

static int print_text(void *user, const char *text, size_t len) {
  (void)user;
  fwrite(text, 1, len, stdout);
  fflush(stdout);
  return 0;
}

static int print_token(void *user, int32_t token, int32_t index) {
  (void)index;
  stream *s = user;
  return (s->status = kvc_text_token(&s->text, token, print_text, NULL)) || s->text.stopped;
}

/* --prompt TEXT: encode with the tokenizer, generate, stream the text. */
static int generate_text(const char *cmd, const char *dir, const char *tokenizer_path,
                         const char *text, kvc_model_params *mp, const kvc_sampling_args *sa,
                         const kvc_chat_stops *stops, int32_t n_new) {
  kvc_model *model = NULL;
  kvc_tokenizer *tok = NULL;
  kvc_seq *seq = NULL;
  kvc_sampler *sampler = NULL;
  stream st = {0};
  int32_t *prompt = NULL, n_prompt = 0, *out = malloc((size_t)n_new * sizeof *out), n_out = 0;
  int rc = kvc_arg_open_model(cmd, dir, mp, &model);
  kvc_model_info info;
  kvc_status s = KVC_OK;
  if (!rc) {
    kvc_model_get_info(model, &info);
    char path[4200];
    if (!tokenizer_path && (s = kvc_model_file(model, "tokenizer.json", path, sizeof path))) {
      fprintf(stderr, "kvcache %s: --prompt needs a tokenizer: %s\n", cmd, kvc_last_error());
      rc = KVC_EXIT_USAGE;
    }
    if (!tokenizer_path)
      tokenizer_path = path;
    if (!s && (s = kvc_tokenizer_open(tokenizer_path, &tok))) {
      fprintf(stderr, "kvcache %s: --prompt needs a tokenizer: %s\n", cmd, kvc_last_error());
      rc = s == KVC_ERR_IO || s == KVC_ERR_INVALID_ARG ? KVC_EXIT_USAGE : 1;
    }
    /* no more of the text is encoded than the context can hold */
    int more = 0;
    if (!s && !(prompt = malloc(((size_t)info.max_seq_len + 1) * sizeof *prompt)))
      s = KVC_ERR_NO_MEMORY;
    if (!s)
      s = kvc_tokenize_at_most(tok, text, strlen(text), 1, prompt, info.max_seq_len, &n_prompt,
                               &more);
    if (!s && more) {
      fprintf(stderr,
              "kvcache %s: the prompt (--prompt) is more than %d tokens (encoding stopped "
              "there): more than the context's %d positions (max_seq_len; --max-seq lowers it, "
              "the model allows %d)\n",
              cmd, info.max_seq_len, info.max_seq_len, info.model_max_seq_len);
      rc = KVC_EXIT_USAGE;
    }
    if (!s && !rc && kvc_tokenizer_vocab_size(tok) > info.vocab_size) {
      fprintf(stderr,
              "kvcache %s: %s has %d tokens, the model's vocabulary %d: not its tokenizer\n", cmd,
              tokenizer_path, kvc_tokenizer_vocab_size(tok), info.vocab_size);
      rc = KVC_EXIT_USAGE;
    }
    /* a model may have more ids than its tokenizer (embedding rows padded to a round number):
     * those have no text, and print nothing */
    st.text.text_ids = tok ? kvc_tokenizer_vocab_size(tok) : 0;
    if (!s && !rc && st.text.text_ids < info.vocab_size)
      fprintf(stderr,
              "kvcache %s: the model's ids %d..%d have no text in %s (%d tokens): they print "
              "nothing\n",
              cmd, st.text.text_ids, info.vocab_size - 1, tokenizer_path, st.text.text_ids);
    if (!s && !rc)
      rc = fits(cmd, model, "--prompt", 0, n_prompt, n_new, 0);
    const kvc_sampler_params sp = kvc_sampling_params(sa, model);
    if (!s && !rc && !(s = kvc_seq_new(model, NULL, &seq)) &&
        !(s = kvc_sampler_new(&sp, info.vocab_size, &sampler)) &&
        !(s = kvc_stop_new(stops->items, stops->n, &st.text.stop)) &&
        !(s = kvc_detokenizer_new(tok, 1, &st.text.detok)))
      s = kvc_generate(seq, prompt, n_prompt, n_new, sampler, out, &n_out, print_token, &st);
    if (!s && st.status)
      s = st.status;
    if (!s && st.text.detok)
      s = kvc_text_end(&st.text, print_text, NULL);
    if (n_out)
      putchar('\n');
    if (s && !rc) {
      fprintf(stderr, "kvcache %s: %s\n", cmd, kvc_last_error());
      rc = s == KVC_ERR_INVALID_ARG || s == KVC_ERR_CACHE_FULL || s == KVC_ERR_IO ? KVC_EXIT_USAGE
                                                                                  : 1;
    } else if (!rc) {
      report(model, seq, out, n_out, st.text.stopped ? -1 : n_new);
    }
  }
  kvc_stop_free(st.text.stop);
  kvc_detokenizer_free(st.text.detok);
  kvc_sampler_free(sampler);
  kvc_seq_free(seq);
  kvc_tokenizer_free(tok);
  kvc_model_free(model);
  free(prompt);
  free(out);
  return rc;
}

/* --messages FILE: the conversation rendered by the model's chat template, its reply streamed. */
static int generate_messages(const char *cmd, const char *dir, const char *messages_path,
                             const char *tools_path, const char *variables, kvc_model_params *mp,
                             const kvc_sampling_args *sa, const kvc_chat_stops *stops,
                             int32_t n_new) {
  kvc_model *model = NULL;
  char *messages = NULL, *tools = NULL;
  kvc_chat_session chat = {.n_new = n_new, .variables = variables};
  int rc = kvc_chat_read_text(cmd, "--messages", messages_path, &messages);
  if (!rc && tools_path)
    rc = kvc_chat_read_text(cmd, "--tools", tools_path, &tools);
  chat.tools = tools;
  if (!rc)
    rc = kvc_arg_open_model(cmd, dir, mp, &model);
  int opened = 0;
  if (!rc) {
    const kvc_sampler_params sp = kvc_sampling_params(sa, model);
    rc = kvc_chat_open(&chat, cmd, model, &sp, stops);
    opened = 1;
  }
  cJSON *given = rc ? NULL : cJSON_Parse(messages);
  if (!rc && !cJSON_IsArray(given)) {
    fprintf(stderr, "kvcache %s: --messages %s: expected a JSON array of messages\n", cmd,
            messages_path);
    rc = KVC_EXIT_USAGE;
  }
  if (!rc) {
    cJSON_Delete(chat.messages);
    chat.messages = given;
    given = NULL;
    kvc_chat_turn turn;
    rc = kvc_chat_reply(&chat, stdout, &turn);
    if (!rc) {
      putchar('\n');
      kvc_chat_report(&turn, 1);
    }
  }
  cJSON_Delete(given);
  if (opened)
    kvc_chat_close(&chat);
  kvc_model_free(model);
  free(messages);
  free(tools);
  return rc;
}

int kvc_cmd_generate(int argc, char **argv) {
  const char *cmd = "generate", *dir = NULL, *prompt_ids = NULL, *prompts_file = NULL;
  const char *prompt = NULL, *tokenizer_path = NULL, *save_state = NULL, *load_state = NULL;
  int64_t parallel = 4, n_new = 32;
  const char *messages_path = NULL, *tools_path = NULL, *variables = NULL;
  int no_cache = 0;
  kvc_model_params mp = kvc_model_default_params();
  kvc_sampling_args sa = KVC_SAMPLING_ARGS_INIT;
  kvc_chat_stops stops = {0};
  kvc_opt opts[] = {
      KVC_TEXT("--prompt", "TEXT", &prompt, "prompt text (UTF-8)"),
      KVC_TEXT("--messages", "FILE", &messages_path,
               "a conversation (a JSON array of OpenAI-style messages, - for stdin)\n"
               "rendered by the model's chat template (tokenizer_config.json); the\n"
               "reply streams to stdout"),
      KVC_TEXT("--tools", "FILE", &tools_path, "with --messages: a JSON array of tool definitions"),
      KVC_TEXT("--variables", "JSON", &variables,
               "with --messages: more template variables, a JSON object"),
      KVC_CUSTOM("--stop", "TEXT", &stops, kvc_chat_parse_stop,
                 "with --prompt or --messages: stop when the text holds TEXT (not\n"
                 "printed); may be given several times"),
      KVC_TEXT("--tokenizer", "FILE", &tokenizer_path,
               "tokenizer.json for --prompt (default: the model directory's); a\n"
               "model with more ids than it prints nothing for those (said once)"),
      KVC_TEXT("--save-state", "FILE", &save_state,
               "save the sequence when done, the last generated token appended\n"
               "(docs/STATE.md); written whole or not at all"),
      KVC_TEXT("--load-state", "FILE", &load_state,
               "start from a saved sequence; --prompt-ids then adds to it, or\n"
               "may be left out to go on from where it stopped"),
      KVC_TEXT("--prompt-ids", "IDS", &prompt_ids,
               "prompt token ids, separated by spaces or commas"),
      KVC_TEXT("--prompts", "FILE", &prompts_file,
               "one prompt per line (- for stdin); blank lines are skipped"),
      KVC_INT64("--parallel", "P", &parallel, 1, KVC_MAX_SLOTS,
                "sequences decoding together with --prompts (4)"),
      KVC_INT64("-n", "N", &n_new, 1, 1 << 24, "tokens to generate (32)"),
      KVC_SAMPLING_OPTS(&sa),
      KVC_FLAG("--no-cache", &no_cache,
               "recompute the whole sequence for every token (same as --kv uncached)"),
  };
  kvc_args args = KVC_ARGS_MODEL(cmd, usage, opts, &mp, &dir);
  const int parsed = kvc_args_parse(&args, argc, argv);
  if (parsed != KVC_ARGS_GO)
    return parsed;
  if (no_cache)
    mp.kv_mode = KVC_KV_UNCACHED;
  if (kvc_sampling_check(cmd, &args, &sa))
    return KVC_EXIT_USAGE;
  if (!!prompts_file + !!prompt_ids + !!prompt + !!messages_path > 1) {
    fprintf(stderr, "kvcache %s: give one of --prompt, --prompt-ids, --prompts and --messages\n",
            cmd);
    return KVC_EXIT_USAGE;
  }
  if ((tools_path || variables) && !messages_path) {
    fprintf(stderr, "kvcache %s: --tools and --variables go with --messages\n", cmd);
    return KVC_EXIT_USAGE;
  }
  if (stops.n && !prompt && !messages_path) {
    fprintf(stderr, "kvcache %s: --stop goes with --prompt or --messages (text)\n", cmd);
    return KVC_EXIT_USAGE;
  }
  if (messages_path)
    return generate_messages(cmd, dir, messages_path, tools_path, variables, &mp, &sa, &stops,
                             (int32_t)n_new);
  if ((save_state || load_state) && (prompt || prompts_file)) {
    fprintf(stderr, "kvcache %s: --save-state and --load-state go with --prompt-ids\n", cmd);
    return KVC_EXIT_USAGE;
  }
  if (prompt)
    return generate_text(cmd, dir, tokenizer_path, prompt, &mp, &sa, &stops, (int32_t)n_new);
  if (prompts_file) {
    kvc_model *model = NULL;
    int rc = kvc_arg_open_model(cmd, dir, &mp, &model);
    kvc_sampler_params sp = rc ? sa.sp : kvc_sampling_params(&sa, model);
    if (!rc)
      rc = kvc_generate_prompts(cmd, model, prompts_file, (int)parallel, (int32_t)n_new, &sp);
    kvc_model_free(model);
    return rc;
  }
  int32_t *ids = NULL;
  int n_prompt = prompt_ids ? kvc_arg_parse_ids(prompt_ids, &ids) : 0;
  if ((!prompt_ids && !load_state) || n_prompt < 0 || (prompt_ids && n_prompt == 0)) {
    fprintf(stderr,
            "kvcache %s: --prompt-ids (or --prompts FILE) expects one or more integer token ids, "
            "got '%s'\n",
            cmd, prompt_ids ? prompt_ids : "(nothing)");
    free(ids);
    return KVC_EXIT_USAGE;
  }

  kvc_model *model = NULL;
  kvc_seq *seq = NULL;
  kvc_sampler *sampler = NULL;
  int32_t *out = malloc((size_t)n_new * sizeof *out), n_out = 0;
  int rc = kvc_arg_open_model(cmd, dir, &mp, &model);
  kvc_status s = KVC_OK;
  if (!rc && !out) {
    fprintf(stderr, "kvcache %s: out of memory\n", cmd);
    rc = 1;
  }
  if (!rc) {
    kvc_model_info info;
    kvc_model_get_info(model, &info);
    const kvc_sampler_params sp = kvc_sampling_params(&sa, model);
    if (!(s = kvc_seq_new(model, NULL, &seq)))
      s = kvc_sampler_new(&sp, info.vocab_size, &sampler);
    if (!s && load_state) /* go on from a saved sequence (its logits, if no prompt follows) */
      s = kvc_seq_load(seq, load_state);
    if (!s)
      rc = fits(cmd, model, "--prompt-ids", kvc_seq_len(seq), n_prompt, (int32_t)n_new,
                save_state != NULL);
    if (!s && !rc)
      s = kvc_generate(seq, ids, n_prompt, (int32_t)n_new, sampler, out, &n_out, NULL, NULL);
    /* saved with the last generated token appended, so that --load-state goes on after it */
    if (!s && !rc && save_state && n_out > 0)
      s = kvc_seq_append(seq, &out[n_out - 1], 1);
    if (!s && !rc && save_state)
      s = kvc_seq_save(seq, save_state);
    for (int32_t i = 0; i < n_out; i++)
      printf("%s%d", i ? " " : "", out[i]);
    if (n_out)
      printf("\n");
    if (s) {
      fprintf(stderr, "kvcache %s: %s\n", cmd, kvc_last_error());
      rc = s == KVC_ERR_INVALID_ARG || s == KVC_ERR_CACHE_FULL ? KVC_EXIT_USAGE : 1;
    } else if (!rc) {
      report(model, seq, out, n_out, (int32_t)n_new);
    }
  }
  kvc_sampler_free(sampler);
  kvc_seq_free(seq);
  kvc_model_free(model);
  free(out);
  free(ids);
  return rc;
}
