/* naming.c: cache tensor names of the seed and Hugging Face conventions. */
#include "naming.h"

#include <stdio.h>

void kvc__layer_io_names(kvc_naming naming, int layer, char *past_key, char *past_value,
                         char *present_key, char *present_value, size_t cap) {
  if (naming == KVC_NAMING_HF) {
    snprintf(past_key, cap, "past_key_values.%d.key", layer);
    snprintf(past_value, cap, "past_key_values.%d.value", layer);
    snprintf(present_key, cap, "present.%d.key", layer);
    snprintf(present_value, cap, "present.%d.value", layer);
  } else {
    snprintf(past_key, cap, "past_key_%d", layer);
    snprintf(past_value, cap, "past_value_%d", layer);
    snprintf(present_key, cap, "present_key_%d", layer);
    snprintf(present_value, cap, "present_value_%d", layer);
  }
}

const char *kvc_naming_name(kvc_naming naming) {
  switch (naming) {
  case KVC_NAMING_SEED:
    return "seed";
  case KVC_NAMING_HF:
    return "hf";
  }
  return NULL;
}

const char *kvc_attention_name(kvc_attention attention) {
  switch (attention) {
  case KVC_ATTENTION_CONCAT:
    return "concat";
  case KVC_ATTENTION_GQA:
    return "gqa";
  case KVC_ATTENTION_KVCACHE:
    return "kvcache";
  }
  return NULL;
}

const char *kvc_arch_name(kvc_arch arch) {
  switch (arch) {
  case KVC_ARCH_GPT:
    return "gpt";
  case KVC_ARCH_LLAMA:
    return "llama";
  }
  return NULL;
}

const char *kvc_layout_name(kvc_layout layout) {
  switch (layout) {
  case KVC_LAYOUT_KVCACHE:
    return "kvcache";
  case KVC_LAYOUT_GENAI:
    return "genai";
  }
  return NULL;
}
