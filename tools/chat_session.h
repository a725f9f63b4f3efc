/* chat_session.h: a conversation held in one sequence, for `kvcache chat` and
 * `kvcache generate --messages`. Each turn renders the whole conversation with the model's
 * chat template and assigns its tokens to the sequence (kvc_seq_assign): what the cache
 * already holds of it is kept, only the rest is prefilled. The reply streams through the
 * detokenizer and the stop strings, and joins the conversation as the assistant's message. */
#ifndef KVC_TOOLS_CHAT_SESSION_H
#define KVC_TOOLS_CHAT_SESSION_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "kvcache.h"

enum { KVC_CHAT_MAX_STOPS = 16 };

/* --stop TEXT, given any number of times (an args.h custom option's target). */
typedef struct kvc_chat_stops {
  const char *items[KVC_CHAT_MAX_STOPS];
  int n;
} kvc_chat_stops;
int kvc_chat_parse_stop(const char *cmd, const char *value, void *target);

typedef struct kvc_chat_session {
  const char *cmd;
  kvc_model *model;
  kvc_tokenizer *tok;
  kvc_chat_template *tmpl;
  kvc_seq *seq;
  kvc_sampler *sampler;
  kvc_stop *stop;
  kvc_detokenizer *detok;
  int32_t text_ids; /* the tokenizer's ids; the model's past them have no text */
  int32_t *ids;     /* (max_seq_len) the rendered conversation's ids */
  cJSON *messages;  /* the conversation so far */
  const char *tools, *variables;
  int32_t n_new; /* the most tokens a reply may have */
  int check;     /* after each prefill, compare the logits with a fresh uncached sequence's */
} kvc_chat_session;

/* Open the model's tokenizer and chat template, a sequence and a sampler. 0, or the exit code
 * after printing why (the model itself is opened by the caller and stays its). */
int kvc_chat_open(kvc_chat_session *s, const char *cmd, kvc_model *model,
                  const kvc_sampler_params *sampling, const kvc_chat_stops *stops);
void kvc_chat_close(kvc_chat_session *s);

/* What a turn did, for the report. */
typedef struct kvc_chat_turn {
  int32_t tokens;    /* the rendered conversation's */
  int32_t reused;    /* of those, kept from the cache */
  double prefill_ms; /* running the other tokens - reused */
  int32_t generated;
  double decode_ms;
  char stopped[96];  /* why the reply ended */
  double check_diff; /* with check: the largest |logit - fresh logit|; else -1 */
} kvc_chat_turn;

/* Add a message ({"role": role, "content": content}) to the conversation. */
int kvc_chat_add(kvc_chat_session *s, const char *role, const char *content);

/* Render the conversation, prefill what the cache lacks, generate the reply streaming its
 * text to `out`, and add it to the conversation. 0, or the exit code after printing why (the
 * conversation is then as before the turn). */
int kvc_chat_reply(kvc_chat_session *s, FILE *out, kvc_chat_turn *turn);

/* One line for stderr: the turn's counts and times. */
void kvc_chat_report(const kvc_chat_turn *turn, int number);

#endif
