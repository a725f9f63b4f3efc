/* chat_session.c: see chat_session.h. */
#include "chat_session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "stats.h"
#include "text_stream.h"

int kvc_chat_parse_stop(const char *cmd, const char *value, void *target) {
  kvc_chat_stops *stops = target;
  if (!*value) {
    fprintf(stderr, "kvcache %s: --stop: an empty stop string would stop at once\n", cmd);
    return 1;
  }
  if (stops->n == KVC_CHAT_MAX_STOPS) {
    fprintf(stderr, "kvcache %s: --stop: at most %d stop strings\n", cmd, KVC_CHAT_MAX_STOPS);
    return 1;
  }
  stops->items[stops->n++] = value;
  return 0;
}

static int fail(const kvc_chat_session *s, kvc_status status) {
  fprintf(stderr, "kvcache %s: %s\n", s->cmd, kvc_last_error());
  return status == KVC_ERR_INVALID_ARG || status == KVC_ERR_IO || status == KVC_ERR_CACHE_FULL
             ? KVC_EXIT_USAGE
             : 1;
}

int kvc_chat_open(kvc_chat_session *s, const char *cmd, kvc_model *model,
                  const kvc_sampler_params *sampling, const kvc_chat_stops *stops) {
  kvc_chat_session empty = {.cmd = cmd,
                            .model = model,
                            .n_new = s->n_new,
                            .check = s->check,
                            .tools = s->tools,
                            .variables = s->variables};
  *s = empty;
  kvc_model_info info;
  kvc_model_get_info(model, &info);
  char dir[4200], path[4200];
  kvc_status st = kvc_model_file(model, "tokenizer.json", path, sizeof path);
  if (!st)
    st = kvc_tokenizer_open(path, &s->tok);
  if (st) {
    fprintf(stderr, "kvcache %s: a conversation needs the model's tokenizer: %s\n", cmd,
            kvc_last_error());
    return KVC_EXIT_USAGE;
  }
  if (!(st = kvc_model_file(model, "tokenizer_config.json", dir, sizeof dir)))
    st = kvc_chat_template_open(dir, &s->tmpl);
  if (st) {
    fprintf(stderr, "kvcache %s: a conversation needs the model's chat template: %s\n", cmd,
            kvc_last_error());
    return st == KVC_ERR_NO_MEMORY ? 1 : KVC_EXIT_USAGE;
  }
  s->text_ids = kvc_tokenizer_vocab_size(s->tok);
  if (s->text_ids > info.vocab_size) {
    fprintf(stderr,
            "kvcache %s: the tokenizer has %d tokens, the model's vocabulary %d: not its "
            "tokenizer\n",
            cmd, s->text_ids, info.vocab_size);
    return KVC_EXIT_USAGE;
  }
  s->ids = malloc(((size_t)info.max_seq_len + 1) * sizeof *s->ids);
  s->messages = cJSON_CreateArray();
  if (!s->ids || !s->messages)
    return fail(s, KVC_ERR_NO_MEMORY);
  if ((st = kvc_seq_new(model, NULL, &s->seq)) ||
      (st = kvc_sampler_new(sampling, info.vocab_size, &s->sampler)) ||
      (st = kvc_stop_new(stops ? stops->items : NULL, stops ? stops->n : 0, &s->stop)))
    return fail(s, st);
  return 0;
}

void kvc_chat_close(kvc_chat_session *s) {
  kvc_detokenizer_free(s->detok);
  kvc_stop_free(s->stop);
  kvc_sampler_free(s->sampler);
  kvc_seq_free(s->seq);
  kvc_chat_template_free(s->tmpl);
  kvc_tokenizer_free(s->tok);
  cJSON_Delete(s->messages);
  free(s->ids);
}

int kvc_chat_add(kvc_chat_session *s, const char *role, const char *content) {
  cJSON *m = cJSON_CreateObject();
  if (!m || !cJSON_AddStringToObject(m, "role", role) ||
      !cJSON_AddStringToObject(m, "content", content) || !cJSON_AddItemToArray(s->messages, m)) {
    cJSON_Delete(m);
    fprintf(stderr, "kvcache %s: out of memory\n", s->cmd);
    return 1;
  }
  return 0;
}

/* The reply as it streams: the detokenizer's text through the stop strings, to `out` and to
 * the reply kept for the conversation. */
typedef struct stream {
  kvc_chat_session *s;
  FILE *out;
  char *reply;
  size_t len, cap;
  kvc_text_stream text;
  kvc_status status;
} stream;

static int show(void *user, const char *text, size_t len) {
  stream *st = user;
  if (st->len + len + 1 > st->cap) {
    size_t cap = st->cap ? st->cap * 2 : 256;
    while (cap < st->len + len + 1)
      cap *= 2;
    char *grown = realloc(st->reply, cap);
    if (!grown)
      return -1;
    st->reply = grown;
    st->cap = cap;
  }
  memcpy(st->reply + st->len, text, len);
  st->len += len;
  st->reply[st->len] = 0;
  fwrite(text, 1, len, st->out);
  fflush(st->out);
  return 0;
}

static int on_token(void *user, int32_t token, int32_t index) {
  (void)index;
  stream *st = user;
  return (st->status = kvc_text_token(&st->text, token, show, st)) || st->text.stopped;
}

/* The largest |difference| between the sequence's logits and those of a fresh uncached
 * sequence fed the same n tokens. */
static kvc_status check_logits(kvc_chat_session *s, int32_t n, double *diff) {
  kvc_seq_params p = kvc_seq_default_params();
  p.kv_mode = KVC_KV_UNCACHED;
  kvc_seq *fresh = NULL;
  kvc_status st = kvc_seq_new(s->model, &p, &fresh);
  if (!st)
    st = kvc_seq_append(fresh, s->ids, n);
  if (!st) {
    kvc_model_info info;
    kvc_model_get_info(s->model, &info);
    const float *a = kvc_seq_logits(s->seq), *b = kvc_seq_logits(fresh);
    *diff = 0;
    for (int32_t i = 0; i < info.vocab_size; i++)
      *diff = fmax(*diff, fabs((double)a[i] - b[i]));
  }
  kvc_seq_free(fresh);
  return st;
}

int kvc_chat_reply(kvc_chat_session *s, FILE *out, kvc_chat_turn *turn) {
  kvc_model_info info;
  kvc_model_get_info(s->model, &info);
  memset(turn, 0, sizeof *turn);
  turn->check_diff = -1;
  char *messages = cJSON_PrintUnformatted(s->messages);
  if (!messages)
    return fail(s, KVC_ERR_NO_MEMORY);
  kvc_chat_params p = kvc_chat_default_params();
  p.messages = messages;
  p.tools = s->tools;
  p.variables = s->variables;
  int32_t n = 0;
  kvc_status st = kvc_chat_tokenize(s->tmpl, s->tok, &p, s->ids, info.max_seq_len, &n);
  free(messages);
  if (st)
    return fail(s, st);
  if (n > info.max_seq_len - 1) {
    fprintf(stderr,
            "kvcache %s: the conversation is %d tokens: the context holds %d, with room for at "
            "least one more (--max-seq raises it to the model's %d; /reset starts over)\n",
            s->cmd, n, info.max_seq_len, info.model_max_seq_len);
    return KVC_EXIT_USAGE;
  }
  turn->tokens = n;
  double t0 = kvc_stat_now_ms();
  if ((st = kvc_seq_assign(s->seq, s->ids, n, &turn->reused)))
    return fail(s, st);
  turn->prefill_ms = kvc_stat_now_ms() - t0;
  if (s->check && (st = check_logits(s, n, &turn->check_diff)))
    return fail(s, st);
  kvc_stop_reset(s->stop);
  kvc_detokenizer_free(s->detok); /* a fresh one per reply: nothing held from the last */
  s->detok = NULL;
  if ((st = kvc_detokenizer_new(s->tok, 1, &s->detok)))
    return fail(s, st);
  stream str = {.s = s, .out = out, .text = {s->detok, s->stop, s->text_ids, 0}};
  int32_t room = info.max_seq_len - n + 1; /* the last token is not appended */
  int32_t max_new = s->n_new < room ? s->n_new : room, n_out = 0;
  int32_t *tokens = malloc((size_t)max_new * sizeof *tokens);
  if (!tokens)
    return fail(s, KVC_ERR_NO_MEMORY);
  t0 = kvc_stat_now_ms();
  st = kvc_generate(s->seq, NULL, 0, max_new, s->sampler, tokens, &n_out, on_token, &str);
  turn->decode_ms = kvc_stat_now_ms() - t0;
  turn->generated = n_out;
  if (!st && str.status)
    st = str.status;
  if (!st)
    st = kvc_text_end(&str.text, show, &str);
  int eos = 0;
  for (int32_t i = 0; n_out && i < info.n_eos; i++)
    eos |= tokens[n_out - 1] == info.eos_token_ids[i];
  if (str.text.stopped)
    snprintf(turn->stopped, sizeof turn->stopped, "a stop string");
  else if (eos)
    snprintf(turn->stopped, sizeof turn->stopped, "end-of-sequence token %d", tokens[n_out - 1]);
  else if (n_out == s->n_new)
    snprintf(turn->stopped, sizeof turn->stopped, "-n %d tokens", s->n_new);
  else
    snprintf(turn->stopped, sizeof turn->stopped, "the end of the context");
  free(tokens);
  if (st && st != KVC_ERR_CACHE_FULL) {
    free(str.reply);
    return fail(s, st);
  }
  int rc = kvc_chat_add(s, "assistant", str.reply ? str.reply : "");
  free(str.reply);
  return rc;
}

void kvc_chat_report(const kvc_chat_turn *t, int number) {
  char check[96] = "";
  if (t->check_diff >= 0)
    snprintf(check, sizeof check, "; logits vs a fresh uncached sequence: max |diff| %.3g",
             t->check_diff);
  fprintf(stderr,
          "[turn %d: conversation %d tokens, %d reused from the cache, prefill %d tokens %.2f ms; "
          "%d generated, %.3f ms/token; stopped at %s%s]\n",
          number, t->tokens, t->reused, t->tokens - t->reused, t->prefill_ms, t->generated,
          t->generated ? t->decode_ms / t->generated : 0.0, t->stopped, check);
}
