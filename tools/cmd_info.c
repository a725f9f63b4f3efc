/* kvcache info: what kvcache sees in a model. */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "commands.h"
#include "kvcache.h"

static const char usage[] = "usage: kvcache info -m DIR [--json]\n"
                            "\n"
                            "Describes a model as kvcache reads it: naming convention, cache "
                            "layout, vocabulary,\n"
                            "maximum length, sizes, and the execution providers available.\n"
                            "\n";

/* What genai_config.json said, and where. */
static void print_genai(const kvc_model_info *i) {
  printf("genai config     %s\n", i->genai_config);
  printf("  tokens         bos %d, pad %d, eos", i->bos_token_id, i->pad_token_id);
  for (int k = 0; k < i->n_eos; k++)
    printf("%s%d", k ? ", " : " ", i->eos_token_ids[k]);
  printf("%s (generation stops at eos)\n", i->n_eos ? "" : " none");
  const kvc_search *s = &i->search;
  printf("  search         %s", s->do_sample ? "sample" : "greedy");
  if (s->do_sample)
    printf(" (temperature %g, top_k %d, top_p %g)", (double)s->temperature, s->top_k,
           (double)s->top_p);
  printf(", max_length %d, repetition_penalty %g\n", s->max_length, (double)s->repetition_penalty);
}

static int print_json(const kvc_model_info *i, const kvc_runtime_info *rt) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "path", i->onnx_path);
  cJSON_AddStringToObject(o, "naming", kvc_naming_name(i->naming));
  cJSON_AddNumberToObject(o, "layers", i->layers);
  cJSON_AddNumberToObject(o, "kv_heads", i->kv_heads);
  cJSON_AddNumberToObject(o, "head_dim", i->head_dim);
  cJSON_AddNumberToObject(o, "vocab_size", i->vocab_size);
  cJSON_AddNumberToObject(o, "max_seq_len", i->max_seq_len);
  cJSON_AddNumberToObject(o, "model_max_seq_len", i->model_max_seq_len);
  cJSON_AddNumberToObject(o, "graph_max_seq_len", i->graph_max_seq_len);
  cJSON_AddBoolToObject(o, "attention_mask", i->has_attention_mask);
  cJSON_AddBoolToObject(o, "position_ids", i->has_position_ids);
  cJSON_AddStringToObject(o, "input_ids_type", i->input_ids_int32 ? "int32" : "int64");
  cJSON_AddStringToObject(o, "attention", kvc_attention_name(i->attention));
  cJSON_AddStringToObject(o, "attention_note", i->attention_note);
  if (i->attention_kernel[0])
    cJSON_AddStringToObject(o, "attention_kernel", i->attention_kernel);
  if (i->matmul_kernel[0])
    cJSON_AddStringToObject(o, "matmul_kernel", i->matmul_kernel);
  if (i->weights_note[0])
    cJSON_AddStringToObject(o, "weights_note", i->weights_note);
  cJSON_AddBoolToObject(o, "seqlens_inputs", i->has_seqlens);
  if (*i->genai_config) {
    cJSON *g = cJSON_AddObjectToObject(o, "genai_config");
    cJSON_AddStringToObject(g, "path", i->genai_config);
    cJSON_AddNumberToObject(g, "bos_token_id", i->bos_token_id);
    cJSON_AddNumberToObject(g, "pad_token_id", i->pad_token_id);
    cJSON_AddItemToObject(g, "eos_token_id", cJSON_CreateIntArray(i->eos_token_ids, i->n_eos));
    cJSON *s = cJSON_AddObjectToObject(g, "search");
    cJSON_AddBoolToObject(s, "do_sample", i->search.do_sample);
    cJSON_AddNumberToObject(s, "temperature", i->search.temperature);
    cJSON_AddNumberToObject(s, "top_k", i->search.top_k);
    cJSON_AddNumberToObject(s, "top_p", i->search.top_p);
    cJSON_AddNumberToObject(s, "max_length", i->search.max_length);
    cJSON_AddNumberToObject(s, "repetition_penalty", i->search.repetition_penalty);
  }
  cJSON_AddStringToObject(o, "kv_mode", kvc_kv_mode_name(i->kv_mode));
  cJSON_AddBoolToObject(o, "batches", i->batches);
  cJSON_AddNumberToObject(o, "param_bytes", (double)i->param_bytes);
  cJSON_AddNumberToObject(o, "lookup_bytes", (double)i->lookup_bytes);
  cJSON_AddNumberToObject(o, "weight_bits", i->weight_bits);
  cJSON_AddNumberToObject(o, "matmuls", i->matmuls);
  cJSON_AddNumberToObject(o, "quantized_matmuls", i->quantized_matmuls);
  cJSON_AddNumberToObject(o, "quantized_macs", (double)i->quantized_macs);
  cJSON_AddNumberToObject(o, "weight_accuracy_level", i->weight_accuracy_level);
  cJSON_AddStringToObject(o, "kv_type", kvc_kv_type_name(i->kv_type));
  cJSON_AddNumberToObject(o, "cache_bytes_per_token", (double)i->cache_bytes_per_token);
  cJSON_AddNumberToObject(o, "cache_bytes_at_max",
                          (double)i->cache_bytes_per_token * i->max_seq_len);
  cJSON_AddStringToObject(o, "provider", i->provider);
  cJSON_AddStringToObject(o, "providers_available", rt->providers);
  cJSON_AddStringToObject(o, "providers_usable", rt->usable_providers);
  char *text = cJSON_Print(o);
  cJSON_Delete(o);
  if (!text)
    return 1;
  puts(text);
  cJSON_free(text);
  return 0;
}

int kvc_cmd_info(int argc, char **argv) {
  const char *cmd = "info", *dir = NULL;
  int json = 0;
  kvc_model_params mp = kvc_model_default_params();
  kvc_opt opts[] = {KVC_FLAG("--json", &json, "print one JSON object instead of a table")};
  kvc_args args = KVC_ARGS_MODEL(cmd, usage, opts, &mp, &dir);
  const int parsed = kvc_args_parse(&args, argc, argv);
  if (parsed != KVC_ARGS_GO)
    return parsed;
  kvc_model *model = NULL;
  int rc = kvc_arg_open_model(cmd, dir, &mp, &model);
  if (rc)
    return rc;
  kvc_model_info i;
  kvc_runtime_info rt;
  kvc_model_get_info(model, &i);
  kvc_runtime_get_info(&rt);
  if (json) {
    rc = print_json(&i, &rt);
  } else {
    printf("model            %s\n", i.onnx_path);
    printf("naming           %s\n", kvc_naming_name(i.naming));
    printf("layers           %d\n", i.layers);
    printf("attention        %s (%s)\n", kvc_attention_name(i.attention), i.attention_note);
    if (i.attention_kernel[0])
      printf("attention kernel %s (KVCACHE_ATTENTION=portable|avx2|avx512 chooses)\n",
             i.attention_kernel);
    if (i.matmul_kernel[0])
      printf("products kernel  %s (int8 activations; KVCACHE_MATMUL=portable|avx2|avx512|amx "
             "chooses)\n",
             i.matmul_kernel);
    if (i.weights_note[0])
      printf("weights note     %s (config.json)\n", i.weights_note);
    printf("kv heads         %d\n", i.kv_heads);
    printf("head size        %d\n", i.head_dim);
    printf("vocabulary       %d\n", i.vocab_size);
    printf("max length       %d (model: %d; graph: ", i.max_seq_len, i.model_max_seq_len);
    if (i.graph_max_seq_len)
      printf("%d positions in its position table or rotary cache)\n", i.graph_max_seq_len);
    else
      printf("no position table or rotary cache says)\n");
    printf("inputs           input_ids (%s)%s%s%s\n", i.input_ids_int32 ? "int32" : "int64",
           i.has_attention_mask ? ", attention_mask" : "",
           i.has_position_ids ? ", position_ids" : "",
           i.has_seqlens ? ", seqlens_k, total_sequence_length" : "");
    printf("kv mode          %s\n", kvc_kv_mode_name(i.kv_mode));
    printf("batches          %s\n",
           i.batches ? "yes (many sequences decode in one run, each at its own length)"
                     : "no (a batch call runs its sequences one after another)");
    printf("parameter bytes  %lld (%.1f MB; %.1f MB of it lookup tables, of which a step reads "
           "a row)\n",
           (long long)i.param_bytes, i.param_bytes / 1e6, i.lookup_bytes / 1e6);
    if (i.quantized_matmuls)
      printf("weights          %d-bit blocks (the fewest bits of any; MatMulNBits) in %d of %d "
             "matrix products (%.1f M multiply-adds a token); the rest float; %s activations "
             "(accuracy_level %d)\n",
             i.weight_bits, i.quantized_matmuls, i.matmuls, i.quantized_macs / 1e6,
             i.weight_accuracy_level >= 4   ? "int8"
             : i.weight_accuracy_level == 3 ? "bf16"
             : i.weight_accuracy_level == 2 ? "fp16"
                                            : "float",
             i.weight_accuracy_level);
    else
      printf("weights          float32 (%d matrix products)\n", i.matmuls);
    printf("cache per token  %lld bytes (%s; --kv-type chooses)\n",
           (long long)i.cache_bytes_per_token,
           i.kv_type == KVC_KV_TYPE_Q8    ? "8-bit codes and a float scale per head"
           : i.kv_type == KVC_KV_TYPE_F16 ? "float16"
                                          : "float32");
    printf("cache at max     %lld bytes (%.1f MB)\n",
           (long long)i.cache_bytes_per_token * i.max_seq_len,
           (double)i.cache_bytes_per_token * i.max_seq_len / 1e6);
    printf("provider         %s (usable here: %s; built into the runtime: %s)\n", i.provider,
           rt.usable_providers, rt.providers);
    if (*i.genai_config)
      print_genai(&i);
  }
  kvc_model_free(model);
  return rc;
}
