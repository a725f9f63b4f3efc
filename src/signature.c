/* signature.c: discover a decoder graph's cache layout from its inputs and outputs.
 *
 * Recognised (README, "Model directories"):
 *   inputs   input_ids; optional attention_mask, position_ids, and seqlens_k with
 *            total_sequence_length (GroupQueryAttention graphs);
 *            past_key_{i} / past_value_{i}  or  past_key_values.{i}.key / .value
 *   outputs  logits; present_key_{i} / present_value_{i}  or  present.{i}.key / .value
 * Every cache tensor is (batch, kv_heads, time, head_dim) with kv_heads and head_dim fixed,
 * all of one element type: float32, float16, or int8 rows of head_dim + 4 bytes (kvcache's
 * 8-bit cache: codes and a scale, src/ops/q8.h);
 * logits is (batch, seq, vocab) with vocab fixed. logits_to_keep (an int64 scalar) may be an
 * input or an initializer a run overrides. Anything else is named and rejected. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "model.h"
#include "naming.h"
#include "q8.h"

typedef struct tensor_desc {
  ONNXTensorElementDataType type;
  size_t rank;
  int64_t dims[8];
} tensor_desc;

static kvc_status describe(const OrtApi *ort, OrtTypeInfo *info, const char *name, tensor_desc *d) {
  const OrtTensorTypeAndShapeInfo *t = NULL;
  kvc_status s = kvc__ort_check(ort->CastTypeInfoToTensorInfo(info, &t), name);
  if (!s && !t)
    s = kvc__fail(KVC_ERR_MODEL, "graph tensor '%s' is not a tensor", name);
  if (!s)
    s = kvc__ort_check(ort->GetTensorElementType(t, &d->type), name);
  if (!s)
    s = kvc__ort_check(ort->GetDimensionsCount(t, &d->rank), name);
  if (!s && d->rank > 8)
    s = kvc__fail(KVC_ERR_MODEL, "graph tensor '%s' has rank %zu; expected at most 8", name,
                  d->rank);
  if (!s)
    s = kvc__ort_check(ort->GetDimensions(t, d->dims, d->rank), name);
  return s;
}

/* Layer index of a cache tensor name under `naming` (past or present tensors), or -1;
 * *kind is 0 for a key, 1 for a value. Only the canonical spelling counts ("past_key_1",
 * not "past_key_01"): the name is regenerated and compared. */
static int parse_cache_name(const char *name, kvc_naming naming, int present, int *kind) {
  const char *prefix = naming == KVC_NAMING_HF ? (present ? "present." : "past_key_values.")
                                               : (present ? "present_" : "past_");
  size_t len = strlen(prefix);
  if (strncmp(name, prefix, len))
    return -1;
  const char *p = name + len;
  while (*p && (*p < '0' || *p > '9'))
    p++;
  if (!*p)
    return -1;
  int layer = atoi(p);
  if (layer < 0 || layer > 4096)
    return -1;
  kvc__layer_names n;
  kvc__layer_io_names(naming, layer, n.past[0], n.past[1], n.present[0], n.present[1],
                      KVC_NAME_CAP);
  char(*names)[KVC_NAME_CAP] = present ? n.present : n.past;
  for (int k = 0; k < 2; k++) {
    if (!strcmp(name, names[k])) {
      *kind = k;
      return layer;
    }
  }
  return -1;
}

typedef struct io {
  char name[KVC_NAME_CAP];
  tensor_desc d;
} io;

enum { OUTPUTS, INPUTS, OVERRIDABLE }; /* the last: initializers a run may replace */

static kvc_status list_io(const OrtApi *ort, OrtSession *session, int kind, io **out,
                          size_t *count) {
  OrtAllocator *alloc = NULL;
  const int inputs = kind != OUTPUTS;
  kvc_status s = kvc__ort_check(ort->GetAllocatorWithDefaultOptions(&alloc), "allocator");
  if (!s)
    s = kvc__ort_check(kind == INPUTS ? ort->SessionGetInputCount(session, count)
                       : kind == OVERRIDABLE
                           ? ort->SessionGetOverridableInitializerCount(session, count)
                           : ort->SessionGetOutputCount(session, count),
                       "graph I/O count");
  if (s)
    return s;
  io *list = kvc__calloc(*count ? *count : 1, sizeof *list);
  if (!list)
    return kvc__fail(KVC_ERR_NO_MEMORY, "out of memory listing graph I/O");
  for (size_t i = 0; i < *count && !s; i++) {
    char *name = NULL;
    OrtTypeInfo *info = NULL;
    s = kvc__ort_check(kind == INPUTS ? ort->SessionGetInputName(session, i, alloc, &name)
                       : kind == OVERRIDABLE
                           ? ort->SessionGetOverridableInitializerName(session, i, alloc, &name)
                           : ort->SessionGetOutputName(session, i, alloc, &name),
                       "graph I/O name");
    /* of the initializers a run may override (weights, in some exports), one matters */
    const int skip = !s && kind == OVERRIDABLE && strcmp(name, KVC_LOGITS_TO_KEEP) != 0;
    if (!s && !skip && strlen(name) >= KVC_NAME_CAP)
      s = kvc__fail(KVC_ERR_MODEL, "graph %s name '%.60s...' is longer than %d bytes",
                    inputs ? "input" : "output", name, KVC_NAME_CAP - 1);
    if (!s && !skip) {
      snprintf(list[i].name, sizeof list[i].name, "%s", name);
      s = kvc__ort_check(kind == INPUTS ? ort->SessionGetInputTypeInfo(session, i, &info)
                         : kind == OVERRIDABLE
                             ? ort->SessionGetOverridableInitializerTypeInfo(session, i, &info)
                             : ort->SessionGetOutputTypeInfo(session, i, &info),
                         name);
    }
    if (!s && !skip)
      s = describe(ort, info, list[i].name, &list[i].d);
    if (info)
      ort->ReleaseTypeInfo(info);
    if (name)
      kvc__ort_ignore(ort->AllocatorFree(alloc, name));
  }
  if (s) {
    kvc__free(list);
    return s;
  }
  *out = list;
  return KVC_OK;
}

static int is_id_type(ONNXTensorElementDataType t) {
  return t == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 || t == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
}

/* Check one cache tensor against the layout of the first one seen. */
static kvc_status check_cache(kvc__signature *sig, const kvc__signature_hints *hints, const io *t,
                              int *seen_first) {
  if (t->d.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16)
    return kvc__fail(KVC_ERR_UNSUPPORTED,
                     "cache tensor '%s' is bfloat16; kvcache's caches are float32, float16 or "
                     "8-bit",
                     t->name);
  if (t->d.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT &&
      t->d.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 &&
      t->d.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8)
    return kvc__fail(KVC_ERR_MODEL,
                     "cache tensor '%s' has element type %d; expected float, float16 or int8",
                     t->name, (int)t->d.type);
  /* an 8-bit cache's rows (kvcache's attention operator's) hold head size codes and a
   * 4-byte scale: its last dimension must be stated */
  const int q8 = t->d.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
  if (q8 && (t->d.rank != 4 || t->d.dims[3] <= KVC_Q8_SCALE_BYTES))
    return kvc__fail(KVC_ERR_MODEL,
                     "cache tensor '%s' is int8 (an 8-bit cache): expected a fixed last "
                     "dimension of head size + %d",
                     t->name, KVC_Q8_SCALE_BYTES);
  if (t->d.rank != 4)
    return kvc__fail(KVC_ERR_MODEL,
                     "cache tensor '%s' has rank %zu; expected 4 (batch, kv_heads, time, "
                     "head_dim)",
                     t->name, t->d.rank);
  /* a symbolic kv_heads or head_dim (onnxruntime-genai's builder names the head size
   * kv_cache_dim) takes genai_config.json's number; a fixed one must agree with it (else the
   * first run fails inside ONNX Runtime, naming neither the file nor the key) */
  const int64_t last = t->d.dims[3] > 0 && q8 ? t->d.dims[3] - KVC_Q8_SCALE_BYTES : t->d.dims[3];
  for (int k = 0; k < 2; k++) {
    const int64_t graph = k ? last : t->d.dims[1], hint = k ? hints->head_dim : hints->kv_heads;
    if (graph > 0 && hint > 0 && graph != hint)
      return kvc__fail(KVC_ERR_MODEL,
                       "%s: model.decoder.%s is %lld, but the graph's cache tensor '%s' has %lld "
                       "(dim %d): the file does not describe this graph",
                       hints->source ? hints->source : "genai_config.json",
                       k ? "head_size" : "num_key_value_heads", (long long)hint, t->name,
                       (long long)graph, k ? 3 : 1);
  }
  const int64_t kv_heads = t->d.dims[1] > 0 ? t->d.dims[1] : hints->kv_heads;
  const int64_t head_dim = last > 0 ? last : hints->head_dim;
  if (kv_heads <= 0 || head_dim <= 0)
    return kvc__fail(KVC_ERR_MODEL,
                     "cache tensor '%s' has a symbolic %s (dim %d) and no genai_config.json "
                     "gives it (model.decoder.%s)",
                     t->name, kv_heads <= 0 ? "kv_heads" : "head_dim", kv_heads <= 0 ? 1 : 3,
                     kv_heads <= 0 ? "num_key_value_heads" : "head_size");
  if (!*seen_first) {
    sig->kv_heads = (int)kv_heads;
    sig->head_dim = (int)head_dim;
    sig->cache_type = t->d.type;
    *seen_first = 1;
  } else if (t->d.type != sig->cache_type) {
    return kvc__fail(KVC_ERR_MODEL, "cache tensor '%s' is %s; other cache tensors are %s", t->name,
                     kvc__cache_type_name(t->d.type), kvc__cache_type_name(sig->cache_type));
  } else if (kv_heads != sig->kv_heads || head_dim != sig->head_dim) {
    return kvc__fail(KVC_ERR_MODEL,
                     "cache tensor '%s' is (batch, %lld, time, %lld); other cache tensors are "
                     "(batch, %d, time, %d)",
                     t->name, (long long)kv_heads, (long long)head_dim, sig->kv_heads,
                     sig->head_dim);
  }
  return KVC_OK;
}

/* logits_to_keep (naming.h): an int64 scalar or one-element vector. */
static kvc_status read_logits_to_keep(kvc__signature *sig, const io *t) {
  if (t->d.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 || t->d.rank > 1 ||
      (t->d.rank == 1 && t->d.dims[0] != 1))
    return kvc__fail(KVC_ERR_MODEL, "graph input '%s' is not an int64 scalar (or [1])", t->name);
  sig->has_logits_to_keep = 1;
  sig->keep_rank = (int)t->d.rank;
  return KVC_OK;
}

static kvc_status read_inputs(kvc__signature *sig, const kvc__signature_hints *hints, const io *in,
                              size_t n, int *naming_seen, int *seen_first) {
  int have_ids = 0;
  for (size_t i = 0; i < n; i++) {
    const io *t = &in[i];
    if (!strcmp(t->name, KVC_LOGITS_TO_KEEP)) {
      kvc_status s = read_logits_to_keep(sig, t);
      if (s)
        return s;
      continue;
    }
    if (!strcmp(t->name, "input_ids") || !strcmp(t->name, "attention_mask") ||
        !strcmp(t->name, "position_ids")) {
      if (!is_id_type(t->d.type) || t->d.rank != 2)
        return kvc__fail(KVC_ERR_MODEL,
                         "graph input '%s' is not a rank-2 int64 or int32 tensor (batch, seq)",
                         t->name);
      if (!strcmp(t->name, "input_ids")) {
        have_ids = 1;
        sig->ids_type = t->d.type;
      }
      sig->has_attention_mask |= !strcmp(t->name, "attention_mask");
      sig->has_position_ids |= !strcmp(t->name, "position_ids");
      continue;
    }
    if (!strcmp(t->name, "seqlens_k") || !strcmp(t->name, "total_sequence_length")) {
      int seqlens = t->name[0] == 's';
      if (t->d.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 || t->d.rank > 1 ||
          (seqlens && t->d.rank != 1))
        return kvc__fail(KVC_ERR_MODEL, "graph input '%s' is not an int32 %s", t->name,
                         seqlens ? "tensor (batch)" : "scalar");
      if (seqlens)
        sig->has_seqlens |= 1;
      else {
        sig->has_seqlens |= 2;
        sig->total_rank = (int)t->d.rank;
      }
      continue;
    }
    int kind = 0, layer = -1, naming = 0;
    for (; naming < 2 && layer < 0; naming++)
      layer = parse_cache_name(t->name, (kvc_naming)naming, 0, &kind);
    if (layer < 0)
      return kvc__fail(KVC_ERR_MODEL,
                       "graph input '%s' is not one kvcache knows (input_ids, attention_mask, "
                       "position_ids, logits_to_keep, past_key_{i}/past_value_{i} or "
                       "past_key_values.{i}.key/.value)",
                       t->name);
    naming--;
    if (*naming_seen >= 0 && *naming_seen != naming)
      return kvc__fail(KVC_ERR_MODEL, "graph input '%s' mixes the seed and hf naming conventions",
                       t->name);
    *naming_seen = naming;
    if (layer + 1 > sig->layers)
      sig->layers = layer + 1;
    kvc_status s = check_cache(sig, hints, t, seen_first);
    if (s)
      return s;
  }
  if (!have_ids)
    return kvc__fail(KVC_ERR_MODEL, "graph has no input 'input_ids'");
  if (sig->has_seqlens == 1 || sig->has_seqlens == 2)
    return kvc__fail(KVC_ERR_MODEL, "graph input '%s' comes without '%s': expected both or neither",
                     sig->has_seqlens == 1 ? "seqlens_k" : "total_sequence_length",
                     sig->has_seqlens == 1 ? "total_sequence_length" : "seqlens_k");
  sig->has_seqlens = sig->has_seqlens == 3;
  if (sig->layers == 0)
    return kvc__fail(KVC_ERR_MODEL,
                     "graph has no cache inputs (past_key_0 ... or past_key_values.0.key ...): "
                     "not a decoder with an explicit KV cache");
  return KVC_OK;
}

/* Find a tensor by name; NULL if absent. */
static const io *find(const io *list, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(list[i].name, name))
      return &list[i];
  return NULL;
}

kvc_status kvc__signature_read(OrtSession *session, const kvc__signature_hints *hints,
                               kvc__signature *sig) {
  const OrtApi *ort = kvc__ort();
  memset(sig, 0, sizeof *sig);
  io *in = NULL, *out = NULL, *overridable = NULL;
  size_t n_in = 0, n_out = 0, n_overridable = 0;
  int naming = -1, seen_first = 0;
  kvc_status s = list_io(ort, session, INPUTS, &in, &n_in);
  if (!s)
    s = list_io(ort, session, OUTPUTS, &out, &n_out);
  if (!s)
    s = list_io(ort, session, OVERRIDABLE, &overridable, &n_overridable);
  if (!s)
    s = read_inputs(sig, hints, in, n_in, &naming, &seen_first);
  const io *keep = s ? NULL : find(overridable, n_overridable, KVC_LOGITS_TO_KEEP);
  if (keep)
    s = read_logits_to_keep(sig, keep);
  if (!s) {
    sig->naming = naming == 1 ? KVC_NAMING_HF : KVC_NAMING_SEED;
    sig->names = kvc__calloc((size_t)sig->layers, sizeof *sig->names);
    if (!sig->names)
      s = kvc__fail(KVC_ERR_NO_MEMORY, "out of memory");
  }
  for (int l = 0; !s && l < sig->layers; l++) {
    kvc__layer_names *nm = &sig->names[l];
    kvc__layer_io_names(sig->naming, l, nm->past[0], nm->past[1], nm->present[0], nm->present[1],
                        KVC_NAME_CAP);
    for (int kv = 0; kv < 2 && !s; kv++) {
      if (!find(in, n_in, nm->past[kv]))
        s = kvc__fail(KVC_ERR_MODEL, "graph has no input '%s' (layers 0..%d have cache inputs)",
                      nm->past[kv], sig->layers - 1);
      const io *p = s ? NULL : find(out, n_out, nm->present[kv]);
      if (!s && !p)
        s = kvc__fail(KVC_ERR_MODEL, "graph input '%s' has no matching output '%s'", nm->past[kv],
                      nm->present[kv]);
      if (!s)
        s = check_cache(sig, hints, p, &seen_first);
    }
  }
  const io *logits = s ? NULL : find(out, n_out, "logits");
  if (!s && !logits)
    s = kvc__fail(KVC_ERR_MODEL, "graph has no output 'logits'");
  if (!s && (logits->d.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || logits->d.rank != 3 ||
             logits->d.dims[2] <= 0))
    s = kvc__fail(KVC_ERR_MODEL,
                  "graph output 'logits' is not a float tensor (batch, seq, vocab) with a fixed "
                  "vocab");
  if (!s) {
    sig->vocab = (int)logits->d.dims[2];
    sig->row_bytes = kvc__cache_row_bytes(kvc__cache_kind_of(sig->cache_type), sig->head_dim);
    sig->cache_dim = (int)kvc__cache_dim(kvc__cache_kind_of(sig->cache_type), sig->head_dim);
    /* outputs other than logits and the presents are computed but ignored: note them */
    for (size_t i = 0; i < n_out; i++) {
      int kind, layer = -1;
      for (int nm = 0; nm < 2 && layer < 0; nm++)
        layer = parse_cache_name(out[i].name, (kvc_naming)nm, 1, &kind);
      if (layer >= sig->layers)
        s = kvc__fail(KVC_ERR_MODEL, "graph output '%s' has no matching input (layers 0..%d)",
                      out[i].name, sig->layers - 1);
    }
  }
  kvc__free(in);
  kvc__free(out);
  kvc__free(overridable);
  if (s)
    kvc__signature_free(sig);
  return s;
}

void kvc__signature_free(kvc__signature *sig) {
  kvc__free(sig->names);
  sig->names = NULL;
}

kvc__cache_kind kvc__cache_kind_of(ONNXTensorElementDataType type) {
  return type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 ? KVC_CACHE_F16
         : type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8  ? KVC_CACHE_Q8
                                                       : KVC_CACHE_F32;
}

const char *kvc__cache_type_name(ONNXTensorElementDataType type) {
  return type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 ? "float16"
         : type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT ? "float32"
         : type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8  ? "8-bit (int8 codes and scales)"
                                                       : "of another type";
}
