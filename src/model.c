/* model.c: kvc_model_open(): find the files, read the maximum length, create the ONNX
 * Runtime session on the chosen provider, and read the graph's signature. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <xxhash.h>

#include "alloc.h"
#include "attention_kernel.h"
#include "matmul_kernel.h"
#include "attention_op.h"
#include "error.h"
#include "model.h"
#include "path.h"
#include "ctx.h"
#include "genai_config.h"
#include "json.h"
#include "memory.h"
#include "graph_file.h"
#include "cache_type.h"

kvc_model_params kvc_model_default_params(void) {
  return (kvc_model_params){.provider = "cpu", .kv_mode = KVC_KV_AUTO};
}

const char *kvc_kv_type_name(kvc_kv_type type) {
  switch (type) {
  case KVC_KV_TYPE_AUTO:
    return "auto";
  case KVC_KV_TYPE_F32:
    return "f32";
  case KVC_KV_TYPE_F16:
    return "f16";
  case KVC_KV_TYPE_Q8:
    return "q8";
  }
  return NULL;
}

/* The ONNX element type of a cache of `type` (not AUTO), and back. */
static ONNXTensorElementDataType onnx_type(kvc_kv_type type) {
  return type == KVC_KV_TYPE_F16  ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16
         : type == KVC_KV_TYPE_Q8 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8
                                  : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}
static kvc_kv_type kv_type_of(ONNXTensorElementDataType type) {
  return type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 ? KVC_KV_TYPE_F16
         : type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8  ? KVC_KV_TYPE_Q8
                                                       : KVC_KV_TYPE_F32;
}

void kvc__log(const kvc_model *m, int level, const char *fmt, ...) {
  if (!m->log)
    return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  m->log(m->log_user, level, msg);
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

/* Resolve `path` (directory or .onnx file) to the .onnx file and its directory. */
static kvc_status find_onnx(const char *path, char *onnx, char *dir, size_t cap) {
  struct stat st;
  if (stat(path, &st) != 0)
    return kvc__fail(KVC_ERR_IO, "model path %s: %s", path, strerror(errno));
  if (!S_ISDIR(st.st_mode)) {
    kvc_status s = kvc__regular_file(path);
    if (s)
      return s;
    snprintf(onnx, cap, "%s", path);
    snprintf(dir, cap, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
      *slash = '\0';
    else
      snprintf(dir, cap, ".");
    return KVC_OK;
  }
  snprintf(dir, cap, "%s", path);
  DIR *d = opendir(path);
  if (!d)
    return kvc__fail(KVC_ERR_IO, "cannot read directory %s: %s", path, strerror(errno));
  int found = 0, has_default = 0;
  char first[256] = "", second[256] = "";
  for (struct dirent *e; (e = readdir(d));) {
    if (!ends_with(e->d_name, ".onnx"))
      continue;
    has_default |= !strcmp(e->d_name, "model.onnx");
    snprintf(found ? second : first, sizeof first, "%s", e->d_name);
    found++;
  }
  closedir(d);
  if (found == 0)
    return kvc__fail(KVC_ERR_IO, "no .onnx file in directory %s", path);
  if (found > 1 && !has_default)
    return kvc__fail(KVC_ERR_MODEL,
                     "%d .onnx files in directory %s (%s, %s, ...) and none is model.onnx: "
                     "pass the file to use",
                     found, path, first, second);
  kvc_status s = kvc__path_join(onnx, cap, path, found > 1 ? "model.onnx" : first);
  return s ? s : kvc__regular_file(onnx); /* ONNX Runtime would wait forever on a FIFO */
}

/* A length from a config file: a whole number in [1, 2^24]. */
static int length_value(const cJSON *v) {
  return cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble <= 1 << 24 &&
         v->valuedouble == (double)(int32_t)v->valuedouble;
}

kvc_status kvc__config_parse(const char *path, const char *text, size_t size, int32_t *out,
                             char *source, size_t cap, char *weights, size_t cap_w) {
  static const char *const keys[] = {"max_seq_len", "n_positions", "max_position_embeddings"};
  kvc_status s = KVC_OK;
  *out = 0;
  *weights = '\0';
  cJSON *c = NULL;
  s = kvc__json_parse(path, text, size, &c);
  const cJSON *note = c ? cJSON_GetObjectItemCaseSensitive(c, "weights") : NULL;
  if (cJSON_IsString(note))
    snprintf(weights, cap_w, "%s", note->valuestring);
  for (size_t i = 0; c && i < sizeof keys / sizeof keys[0] && !*out && !s; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, keys[i]);
    if (v && !length_value(v))
      s = kvc__fail(KVC_ERR_MODEL, "%s: \"%s\" must be a whole number in 1..%d", path, keys[i],
                    1 << 24);
    else if (v) {
      *out = (int32_t)v->valuedouble;
      snprintf(source, cap, "%s \"%s\"", path, keys[i]);
    }
  }
  cJSON_Delete(c);
  return s;
}

/* The model's maximum length from DIR/config.json (0 if there is none or it does not say),
 * where it was read ("config.json \"max_seq_len\"") and what it says of the weights. */
static kvc_status config_max_len(const char *dir, const char *graph, int32_t *out, char *source,
                                 size_t cap, char *weights, size_t cap_w) {
  char path[4096], *text = NULL;
  size_t size = 0;
  struct stat st;
  *out = 0;
  kvc_status s = kvc__path_inside(dir, graph, "config.json", "config");
  if (!s)
    s = kvc__path_join(path, sizeof path, dir, "config.json");
  if (s || stat(path, &st) != 0)
    return s;
  if (!(s = kvc__file_read(path, KVC_CONFIG_MAX_BYTES, &text, &size)))
    s = kvc__config_parse(path, text, size, out, source, cap, weights, cap_w);
  kvc__free(text);
  return s;
}

/* Bytes of the graph file and of the external data files named after it. */
/* Bytes of the graph file and of the external data files it names (the weights it loads). */
static int64_t model_bytes(const kvc_model *m) {
  struct stat st;
  int64_t total = stat(m->info.onnx_path, &st) == 0 ? (int64_t)st.st_size : 0;
  for (int f = 0; f < m->n_weight_files; f++) {
    char path[4400];
    if (kvc__path_join(path, sizeof path, m->dir, m->weight_files[f]) == KVC_OK &&
        stat(path, &st) == 0 && S_ISREG(st.st_mode))
      total += (int64_t)st.st_size;
  }
  return total;
}

/* The cache capacity: the caller's, else the config's, else the graph's; none of them may
 * exceed the positions the graph can address (decoding would fail there, in ORT). */
static kvc_status choose_max_len(kvc_model_info *info, const kvc_model_params *p, const char *dir,
                                 const char *source, const kvc__graph_file *file) {
  const char *table = file->positions_from;
  info->graph_max_seq_len = file->positions;
  const int32_t graph = info->graph_max_seq_len, config = info->model_max_seq_len;
  if (config > 0 && graph > 0 && config > graph)
    return kvc__fail(KVC_ERR_MODEL, "%s = %d, but %s addresses only %d positions (its %s)", source,
                     config, info->onnx_path, graph, table);
  if (config == 0)
    info->model_max_seq_len = graph;
  const int32_t max = info->model_max_seq_len;
  if (p->max_seq_len > 0 && max > 0 && p->max_seq_len > max)
    return kvc__fail(KVC_ERR_INVALID_ARG, "max_seq_len = %d exceeds the model's maximum %d (%s)",
                     p->max_seq_len, max, config ? source : table);
  if (p->max_seq_len == 0 && max == 0)
    return kvc__fail(KVC_ERR_MODEL,
                     "no maximum length for %s: config.json in %s has none of max_seq_len, "
                     "n_positions, max_position_embeddings (nor genai_config.json "
                     "model.context_length), and the graph has no position table or rotary "
                     "cache to tell; set kvc_model_params.max_seq_len",
                     info->onnx_path, dir);
  info->max_seq_len = p->max_seq_len > 0 ? p->max_seq_len : max;
  return KVC_OK;
}

/* Whether present can share past's buffer (written in place), and why, in `note`. */
static int in_place(const kvc__signature *sig, const kvc__graph_file *file, char *note,
                    size_t cap) {
  if (sig->has_seqlens && file->own_attention_nodes > 0) {
    snprintf(note, cap,
             "its %d attention nodes are kvcache's ai.kvcache.Attention, given seqlens_k and "
             "total_sequence_length: the cache is written in place",
             file->own_attention_nodes);
    return 1;
  }
  if (sig->has_seqlens) {
    snprintf(note, cap,
             "seqlens_k and total_sequence_length are inputs (GroupQueryAttention): "
             "the cache can be written in place");
    return 1;
  }
  if (file->gqa_nodes > 0 && file->gqa_lengths_from_mask == file->gqa_nodes &&
      sig->has_attention_mask) {
    snprintf(note, cap,
             "its %d GroupQueryAttention nodes compute seqlens_k and total_sequence_length "
             "from attention_mask (onnxruntime-genai's layout): the cache can be written in "
             "place",
             file->gqa_nodes);
    return 1;
  }
  if (file->gqa_nodes > 0)
    snprintf(note, cap,
             "%d of its %d GroupQueryAttention nodes take lengths that are neither inputs nor "
             "computed from attention_mask: each present is a new tensor",
             file->gqa_nodes - file->gqa_lengths_from_mask, file->gqa_nodes);
  else
    snprintf(note, cap, "no GroupQueryAttention: each present is a new tensor (past + new)");
  return 0;
}

kvc_status kvc__session_options(const kvc_model_params *p, int cuda, OrtSessionOptions **out) {
  const OrtApi *ort = kvc__ort();
  OrtSessionOptions *o = NULL;
  kvc_status s = kvc__ort_check(ort->CreateSessionOptions(&o), "CreateSessionOptions");
  if (!s && p->intra_op_threads > 0)
    s = kvc__ort_check(ort->SetIntraOpNumThreads(o, p->intra_op_threads), "intra-op threads");
  if (!s)
    s = kvc__ort_check(ort->SetSessionGraphOptimizationLevel(o, ORT_ENABLE_ALL), "optimisation");
  if (!s) { /* kvcache's own operators (ai.kvcache.Attention), for graphs that use them */
    OrtStatus *st = NULL;
    OrtCustomOpDomain *ops = kvc__ops_domain(ort, &st);
    s = kvc__ort_check(st ? st : ort->AddCustomOpDomain(o, ops), "registering ai.kvcache");
  }
  /* KVCACHE_PROFILE=PREFIX: ONNX Runtime writes a per-operator timeline to PREFIX_<date>.json
   * (chrome://tracing format) when the session ends */
  const char *profile = getenv("KVCACHE_PROFILE");
  if (!s && profile && *profile)
    s = kvc__ort_check(ort->EnableProfiling(o, profile), "KVCACHE_PROFILE");
  /* KVCACHE_OPTIMIZED_MODEL=FILE: save the graph as ONNX Runtime optimised it (fusions) */
  const char *optimized = getenv("KVCACHE_OPTIMIZED_MODEL");
  if (!s && optimized && *optimized)
    s = kvc__ort_check(ort->SetOptimizedModelFilePath(o, optimized), "KVCACHE_OPTIMIZED_MODEL");
  if (!s && cuda) {
    OrtCUDAProviderOptionsV2 *cu = NULL;
    char device[16];
    snprintf(device, sizeof device, "%d", p->device_id);
    const char *keys[] = {"device_id"}, *values[] = {device};
    OrtStatus *st = ort->CreateCUDAProviderOptions(&cu);
    if (!st)
      st = ort->UpdateCUDAProviderOptions(cu, keys, values, 1);
    if (!st)
      st = ort->SessionOptionsAppendExecutionProvider_CUDA_V2(o, cu);
    if (cu)
      ort->ReleaseCUDAProviderOptions(cu);
    if (st) {
      kvc__ort_check(st, "CUDA");
      s = kvc__wrap(KVC_ERR_UNSUPPORTED,
                    "provider \"cuda\": this ONNX Runtime cannot create the CUDA execution "
                    "provider (set KVCACHE_FORCE_CPU=1 or use provider \"cpu\")");
    }
  }
  if (s) {
    if (o)
      ort->ReleaseSessionOptions(o);
    return s;
  }
  *out = o;
  return KVC_OK;
}

static kvc_status check_params(const kvc_model_params *p, int *cuda) {
  const char *force = getenv("KVCACHE_FORCE_CPU");
  int forced = force && *force && strcmp(force, "0") != 0;
  const char *provider = p->provider ? p->provider : "cpu";
  if (strcmp(provider, "cpu") && strcmp(provider, "cuda"))
    return kvc__fail(KVC_ERR_INVALID_ARG, "provider \"%s\": expected \"cpu\" or \"cuda\"",
                     provider);
  *cuda = !forced && !strcmp(provider, "cuda");
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  const long most = KVC_THREADS_PER_CPU * (cpus > 0 ? cpus : 1);
  if (p->intra_op_threads < 0 || p->intra_op_threads > most)
    return kvc__fail(KVC_ERR_INVALID_ARG,
                     "intra_op_threads = %d: expected 0 (ONNX Runtime's default) to %ld (%d per "
                     "online CPU; this machine has %ld)",
                     p->intra_op_threads, most, KVC_THREADS_PER_CPU, cpus);
  if (p->max_seq_len < 0)
    return kvc__fail(KVC_ERR_INVALID_ARG, "max_seq_len = %d: expected >= 0 (0 = the model's)",
                     p->max_seq_len);
  if (p->device_id < 0)
    return kvc__fail(KVC_ERR_INVALID_ARG, "device_id = %d: expected >= 0", p->device_id);
  if (!kvc_kv_mode_name(p->kv_mode))
    return kvc__fail(KVC_ERR_INVALID_ARG, "kv_mode = %d: expected a kvc_kv_mode", (int)p->kv_mode);
  if (!kvc_kv_type_name(p->kv_type))
    return kvc__fail(KVC_ERR_INVALID_ARG, "kv_type = %d: expected a kvc_kv_type", (int)p->kv_type);
  return KVC_OK;
}

kvc_status kvc_model_open(const char *path, const kvc_model_params *params, kvc_model **out) {
  if (!out)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_model_open: out is NULL");
  *out = NULL;
  if (!path)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_model_open: path is NULL");
  /* the environment first: making it may set ORT_DISABLE_TELEMETRY (ort.c), which must not
   * race with the getenv calls below in another thread opening a model */
  OrtEnv *env = NULL;
  kvc_status s = kvc__ort_env(&env);
  if (s)
    return s;
  kvc_model_params p = params ? *params : kvc_model_default_params();
  int cuda = 0;
  if ((s = check_params(&p, &cuda)))
    return s;

  kvc_model *m = kvc__calloc(1, sizeof *m);
  if (m && pthread_mutex_init(&m->fingerprint_lock, NULL) != 0) {
    kvc__free(m);
    m = NULL;
  }
  if (!m)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  m->log = p.log;
  m->log_user = p.log_user;
  kvc_model_info *info = &m->info;
  char dir[4096], source[4200] = "";
  kvc__graph_file file;
  kvc__genai genai;
  s = find_onnx(path, info->onnx_path, dir, sizeof dir);
  if (!s)
    s = config_max_len(dir, info->onnx_path, &info->model_max_seq_len, source, sizeof source,
                       info->weights_note, sizeof info->weights_note);
  if (!s)
    s = kvc__genai_read(dir, info->onnx_path, &genai);
  if (!s)
    s = kvc__generation_read(dir, info->onnx_path, &genai);
  if (!s && !info->model_max_seq_len && genai.context_length) {
    info->model_max_seq_len = genai.context_length;
    snprintf(source, sizeof source, "%s \"model.context_length\"", genai.path);
  }
  if (!s)
    s = kvc__graph_file_read(info->onnx_path, dir, &file);
  if (!s && genai.head_size && file.head_size && genai.head_size != file.head_size)
    s = kvc__fail(KVC_ERR_MODEL,
                  "%s: model.decoder.head_size is %d, but the graph's %s has heads of %d (its "
                  "projections' size over its heads): the file does not describe %s",
                  genai.path, genai.head_size, file.head_size_from, file.head_size,
                  info->onnx_path);
  if (!s) { /* what it loads beside the graph: the fingerprint and the bytes count these */
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    memcpy(m->weight_files, file.weight_files, sizeof m->weight_files);
    m->n_weight_files = file.n_weight_files;
  }

  if (!s && !cuda) { /* ONNX Runtime reads the weights into memory as it loads them */
    const double bytes = (double)model_bytes(m), ram = kvc__memory_bytes();
    if (ram > 0 && bytes > ram)
      s = kvc__fail(KVC_ERR_NO_MEMORY,
                    "%s: its graph and weights are %.1f MB, more than the %.1f MB of memory "
                    "this process may use (refused before loading them)",
                    info->onnx_path, bytes / 1e6, ram / 1e6);
  }
  const OrtApi *ort = kvc__ort();
  OrtSessionOptions *opts = NULL;
  if (!s)
    s = kvc__session_options(&p, cuda, &opts);
  /* a cache type other than the graph's: the graph as kvcache's attention then declares it
   * (the weights still read from dir, as ONNX Runtime reads them beside the file) */
  uint8_t *retyped = NULL;
  size_t retyped_size = 0;
  if (!s && p.kv_type != KVC_KV_TYPE_AUTO && file.own_attention_nodes > 0) {
    s = kvc__graph_retype_cache(info->onnx_path, onnx_type(p.kv_type), &retyped, &retyped_size);
    if (s)
      s = kvc__wrap(s, "%s: kv_type %s", info->onnx_path, kvc_kv_type_name(p.kv_type));
  }
  if (!s && retyped)
    s = kvc__ort_check(ort->AddSessionConfigEntry(
                           opts, "session.model_external_initializers_file_folder_path", dir),
                       "the external weights' directory");
  if (!s) {
    char what[4200]; /* ORT's messages do not always name the file */
    snprintf(what, sizeof what, "loading %s", info->onnx_path);
    s = kvc__ort_check(
        retyped ? ort->CreateSessionFromArray(env, retyped, retyped_size, opts, &m->session)
                : ort->CreateSession(env, info->onnx_path, opts, &m->session),
        what);
    if (s == KVC_ERR_RUNTIME) /* ORT_FAIL here means a model it cannot load, e.g. a missing
                               * external weights file; ORT's message names the reason */
      s = KVC_ERR_MODEL;
  }
  kvc__free(retyped);
  if (opts)
    ort->ReleaseSessionOptions(opts);
  if (!s) {
    const kvc__signature_hints hints = {genai.kv_heads, genai.head_size, genai.path};
    s = kvc__signature_read(m->session, &hints, &m->sig);
    if (!s && p.kv_type != KVC_KV_TYPE_AUTO && m->sig.cache_type != onnx_type(p.kv_type))
      s = kvc__fail(KVC_ERR_UNSUPPORTED,
                    "kv_type %s: the graph's cache is %s, and its attention is ONNX Runtime's, "
                    "which keeps the type the graph declares (a graph built with --attention "
                    "kvcache takes f32, f16 or q8)",
                    kvc_kv_type_name(p.kv_type), kvc__cache_type_name(m->sig.cache_type));
    if (s)
      s = kvc__wrap(s, "%s", info->onnx_path);
  }
  if (!s)
    s = choose_max_len(info, &p, dir, source, &file);
  if (!s) {
    s = kvc__ort_check(
        ort->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &m->host_mem),
        "host memory info");
    if (!s && cuda)
      s = kvc__ort_check(ort->CreateMemoryInfo("Cuda", OrtDeviceAllocator, p.device_id,
                                               OrtMemTypeDefault, &m->cache_mem),
                         "CUDA memory info");
    if (!s && !cuda)
      s = kvc__ort_check(
          ort->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &m->cache_mem),
          "host memory info");
    /* on a GPU the cache comes from the session's allocator; on the CPU it is kvcache's own
     * memory, on huge pages (cache_memory.c), not ONNX Runtime's arena, which would gain
     * buffers this large and long-lived nothing and whose lock ThreadSanitizer cannot see */
    if (!s && cuda)
      s = kvc__ort_check(ort->CreateAllocator(m->session, m->cache_mem, &m->cache_alloc),
                         "cache allocator");
    m->owns_cache_alloc = cuda;
  }
  if (s) {
    kvc_model_free(m);
    return s;
  }
  const kvc__signature *sig = &m->sig;
  info->naming = sig->naming;
  info->layers = sig->layers;
  info->kv_heads = sig->kv_heads;
  info->head_dim = sig->head_dim;
  info->vocab_size = sig->vocab;
  info->has_attention_mask = sig->has_attention_mask;
  info->has_position_ids = sig->has_position_ids;
  info->has_seqlens = sig->has_seqlens;
  m->attention_heads = file.attention_heads > 0 ? file.attention_heads : sig->kv_heads;
  info->matmuls = file.matmuls;
  info->quantized_matmuls = file.quantized_matmuls;
  info->quantized_macs = file.quantized_macs;
  info->weight_bits = file.weight_bits;
  info->lookup_bytes = file.lookup_bytes;
  info->weight_accuracy_level = file.weight_accuracy_level;
  info->input_ids_int32 = sig->ids_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
  m->sig.in_place = in_place(sig, &file, info->attention_note, sizeof info->attention_note);
  /* the kernels kvcache's operators run (a bad KVCACHE_* variable failed the session) */
  kvc__attend_path kernel;
  char why[160];
  if (file.own_attention_nodes > 0 && kvc__attend_pick(&kernel, why, sizeof why) == 0)
    snprintf(info->attention_kernel, sizeof info->attention_kernel, "%s",
             kvc__attend_path_name(kvc__attend_effective(kernel, info->head_dim)));
  kvc__qmm_path products;
  if (file.own_matmuls > 0 && kvc__qmm_pick(&products, why, sizeof why) == 0)
    snprintf(info->matmul_kernel, sizeof info->matmul_kernel, "%s", kvc__qmm_path_name(products));
  info->attention = file.own_attention_nodes > 0 ? KVC_ATTENTION_KVCACHE
                    : sig->in_place              ? KVC_ATTENTION_GQA
                                                 : KVC_ATTENTION_CONCAT;
  const kvc__kv_ops *ops = NULL;
  if ((s = kvc__kv_ops_resolve(m, p.kv_mode, &ops))) {
    kvc_model_free(m);
    return s;
  }
  info->kv_mode = ops->mode;
  info->batches = ops->batches;
  snprintf(info->genai_config, sizeof info->genai_config, "%s", genai.found ? genai.path : "");
  info->bos_token_id = genai.bos;
  info->pad_token_id = genai.pad;
  info->n_eos = genai.n_eos;
  memcpy(info->eos_token_ids, genai.eos, sizeof genai.eos);
  info->search = genai.search;
  info->param_bytes = model_bytes(m);
  info->kv_type = kv_type_of(sig->cache_type);
  info->cache_bytes_per_token = (int64_t)2 * sig->layers * sig->kv_heads * (int64_t)sig->row_bytes;
  snprintf(info->provider, sizeof info->provider, "%s", cuda ? "cuda" : "cpu");
  m->params = p;
  m->params.provider = info->provider;
  kvc__log(m, KVC_LOG_INFO,
           "opened %s: %d layers, %d kv heads of %d, vocab %d, max %d, %s, %s, %s cache",
           info->onnx_path, info->layers, info->kv_heads, info->head_dim, info->vocab_size,
           info->max_seq_len, info->provider, kvc_kv_mode_name(info->kv_mode),
           kvc_kv_type_name(info->kv_type));
  *out = m;
  return KVC_OK;
}

void kvc_model_free(kvc_model *m) {
  if (!m)
    return;
  const OrtApi *ort = kvc__ort();
  if (m->cache_alloc && m->owns_cache_alloc)
    ort->ReleaseAllocator(m->cache_alloc);
  if (m->cache_mem)
    ort->ReleaseMemoryInfo(m->cache_mem);
  if (m->host_mem)
    ort->ReleaseMemoryInfo(m->host_mem);
  if (m->session)
    ort->ReleaseSession(m->session);
  kvc__signature_free(&m->sig);
  pthread_mutex_destroy(&m->fingerprint_lock);
  kvc__free(m);
}

/* Add the bytes of file `path` to the hash. */
static kvc_status hash_file(XXH3_state_t *h, const char *path) {
  const uint8_t *bytes = NULL;
  size_t size = 0;
  kvc_status s = kvc__file_map(path, &bytes, &size);
  if (!s && bytes)
    XXH3_64bits_update(h, bytes, size);
  kvc__file_unmap(bytes, size);
  return s;
}

kvc_status kvc__model_fingerprint(kvc_model *m, uint64_t *out) {
  pthread_mutex_lock(&m->fingerprint_lock);
  kvc_status s = KVC_OK;
  if (!m->has_fingerprint) {
    XXH3_state_t *h = XXH3_createState();
    const kvc_model_info *i = &m->info;
    /* the fifth value, once the element type (all caches were float32), stays 1 so that
     * existing states keep their fingerprint: a state's header records the type (state.c) */
    const int32_t layout[5] = {i->layers, i->kv_heads, i->head_dim, i->vocab_size, 1};
    if (!h)
      s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
    else
      XXH3_64bits_reset(h), XXH3_64bits_update(h, layout, sizeof layout);
    /* the weights: the external data files the graph names, in its order; or, when it names
     * none, the graph file that holds them (so that graphs of the same external weights, GQA
     * and Concat, share states) */
    if (!s && !m->n_weight_files)
      s = hash_file(h, i->onnx_path);
    for (int f = 0; f < m->n_weight_files && !s; f++) {
      char path[4400];
      s = kvc__path_join(path, sizeof path, m->dir, m->weight_files[f]);
      if (!s)
        s = hash_file(h, path);
    }
    if (!s) {
      m->fingerprint = XXH3_64bits_digest(h);
      m->has_fingerprint = 1;
    }
    XXH3_freeState(h);
  }
  *out = m->fingerprint;
  pthread_mutex_unlock(&m->fingerprint_lock);
  return s;
}

kvc_status kvc_model_file(const kvc_model *m, const char *name, char *path, size_t cap) {
  if (path && cap)
    path[0] = '\0';
  if (!m || !name || !path || !cap)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_model_file: %s",
                     !m      ? "model is NULL"
                     : !name ? "name is NULL"
                             : "path is NULL or cap is 0");
  char joined[4200];
  struct stat st;
  kvc_status s = kvc__path_inside(m->dir, m->info.onnx_path, name, name);
  if (!s && snprintf(joined, sizeof joined, "%s/%s", m->dir, name) >= (int)cap)
    s = kvc__fail(KVC_ERR_INVALID_ARG, "kvc_model_file: %s/%s is longer than cap (%zu bytes)",
                  m->dir, name, cap);
  if (!s && stat(joined, &st) != 0)
    s = kvc__fail(KVC_ERR_IO, "no %s in the model directory %s: %s", name, m->dir, strerror(errno));
  if (!s)
    memcpy(path, joined, strlen(joined) + 1);
  return s;
}

kvc_status kvc_model_get_info(const kvc_model *model, kvc_model_info *info) {
  if (!model || !info)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_model_get_info: %s is NULL",
                     model ? "info" : "model");
  *info = model->info;
  return KVC_OK;
}
