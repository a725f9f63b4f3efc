/* raw_batch: the batching peer. Decode steps of B rows through ONNX Runtime alone (no
 * kvcache): one session on a GroupQueryAttention graph of kvcache's seed naming, past and
 * present of each layer bound to one buffer of `capacity` positions per row, every row at the
 * same position; prints the median run of batch 1 and of batch B, in turns, and the tokens/s
 * ratio. docs/PERFORMANCE.md #37 compares it with `kvcache bench --batch 1,B`.
 *
 * usage: raw_batch MODEL.onnx THREADS POSITION [B] [ROUNDS]   (B 8, ROUNDS 3) */
#include <onnxruntime_c_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { RUNS = 300, WARM = 30, MAX_LAYERS = 64 };

static const OrtApi *ort;

static void check(OrtStatus *st, const char *what) {
  if (!st)
    return;
  fprintf(stderr, "raw_batch: %s: %s\n", what, ort->GetErrorMessage(st));
  exit(1);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct dims {
  int layers;
  int64_t kv_heads, head_dim, vocab;
} dims;

/* The graph's sizes: layers from the past_key_* inputs, heads and head size from the first
 * one's shape, the vocabulary from logits'. */
static dims read_dims(OrtSession *s) {
  dims d = {0};
  OrtAllocator *alloc;
  check(ort->GetAllocatorWithDefaultOptions(&alloc), "allocator");
  size_t n;
  check(ort->SessionGetInputCount(s, &n), "inputs");
  for (size_t i = 0; i < n; i++) {
    char *name;
    check(ort->SessionGetInputName(s, i, alloc, &name), "input name");
    if (!strncmp(name, "past_key_", 9))
      d.layers++;
    if (!strcmp(name, "past_key_0")) {
      OrtTypeInfo *ti;
      const OrtTensorTypeAndShapeInfo *ts;
      int64_t shape[4];
      check(ort->SessionGetInputTypeInfo(s, i, &ti), "input type");
      check(ort->CastTypeInfoToTensorInfo(ti, &ts), "input tensor");
      check(ort->GetDimensions(ts, shape, 4), "input shape");
      d.kv_heads = shape[1], d.head_dim = shape[3];
      ort->ReleaseTypeInfo(ti);
    }
    check(ort->AllocatorFree(alloc, name), "free");
  }
  OrtTypeInfo *ti;
  const OrtTensorTypeAndShapeInfo *ts;
  int64_t shape[3];
  check(ort->SessionGetOutputTypeInfo(s, 0, &ti), "output type");
  check(ort->CastTypeInfoToTensorInfo(ti, &ts), "output tensor");
  check(ort->GetDimensions(ts, shape, 3), "output shape");
  d.vocab = shape[2];
  ort->ReleaseTypeInfo(ti);
  if (d.layers < 1 || d.layers > MAX_LAYERS || d.kv_heads < 1 || d.head_dim < 1 || d.vocab < 1) {
    fprintf(stderr, "raw_batch: not a GroupQueryAttention graph of kvcache's seed naming\n");
    exit(1);
  }
  return d;
}

static void bind(OrtIoBinding *b, const OrtMemoryInfo *mem, int output, const char *name, void *p,
                 size_t bytes, const int64_t *shape, size_t rank, ONNXTensorElementDataType type) {
  OrtValue *v;
  check(ort->CreateTensorWithDataAsOrtValue(mem, p, bytes, shape, rank, type, &v), name);
  check(output ? ort->BindOutput(b, name, v) : ort->BindInput(b, name, v), name);
  ort->ReleaseValue(v);
}

/* Median milliseconds of one run with `rows` rows at `position`. */
static double median_run(OrtSession *s, const OrtMemoryInfo *mem, const dims *d, int64_t rows,
                         int64_t capacity, int32_t position) {
  const size_t cache_bytes = (size_t)(rows * d->kv_heads * capacity * d->head_dim) * sizeof(float);
  float *cache[2 * MAX_LAYERS];
  for (int i = 0; i < 2 * d->layers; i++) {
    if (!(cache[i] = malloc(cache_bytes))) {
      fprintf(stderr, "raw_batch: out of memory\n");
      exit(1);
    }
    for (size_t j = 0; j < cache_bytes / sizeof(float); j++) /* small values, no NaN */
      cache[i][j] = (float)((j * 2654435761u) % 1000u) * 1e-4f;
  }
  int64_t *ids = calloc((size_t)rows, sizeof *ids), *pos = calloc((size_t)rows, sizeof *pos);
  int32_t *seqlens = calloc((size_t)rows, sizeof *seqlens), total = position + 1;
  float *logits = calloc((size_t)(rows * d->vocab), sizeof *logits);
  if (!ids || !pos || !seqlens || !logits) {
    fprintf(stderr, "raw_batch: out of memory\n");
    exit(1);
  }
  for (int64_t r = 0; r < rows; r++)
    ids[r] = (17 + r) % d->vocab, pos[r] = position, seqlens[r] = position;
  OrtIoBinding *b;
  check(ort->CreateIoBinding(s, &b), "binding");
  const int64_t cache_shape[4] = {rows, d->kv_heads, capacity, d->head_dim};
  const int64_t seq_shape[2] = {rows, 1}, row_shape[1] = {rows}, one[1] = {1};
  const int64_t logits_shape[3] = {rows, 1, d->vocab};
  const ONNXTensorElementDataType f32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                  i64 = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64,
                                  i32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
  char name[64];
  for (int l = 0; l < d->layers; l++) {
    for (int kv = 0; kv < 2; kv++) { /* past and present: one buffer, written in place */
      float *buf = cache[2 * l + kv];
      snprintf(name, sizeof name, kv ? "past_value_%d" : "past_key_%d", l);
      bind(b, mem, 0, name, buf, cache_bytes, cache_shape, 4, f32);
      snprintf(name, sizeof name, kv ? "present_value_%d" : "present_key_%d", l);
      bind(b, mem, 1, name, buf, cache_bytes, cache_shape, 4, f32);
    }
  }
  bind(b, mem, 0, "input_ids", ids, (size_t)rows * sizeof *ids, seq_shape, 2, i64);
  bind(b, mem, 0, "position_ids", pos, (size_t)rows * sizeof *pos, seq_shape, 2, i64);
  bind(b, mem, 0, "seqlens_k", seqlens, (size_t)rows * sizeof *seqlens, row_shape, 1, i32);
  bind(b, mem, 0, "total_sequence_length", &total, sizeof total, one, 1, i32);
  bind(b, mem, 1, "logits", logits, (size_t)(rows * d->vocab) * sizeof *logits, logits_shape, 3,
       f32);
  double t[RUNS];
  for (int r = 0; r < WARM + RUNS; r++) {
    const double t0 = now_ms();
    check(ort->RunWithBinding(s, NULL, b), "run");
    if (r >= WARM)
      t[r - WARM] = now_ms() - t0;
  }
  qsort(t, RUNS, sizeof *t, by_value);
  ort->ReleaseIoBinding(b);
  for (int i = 0; i < 2 * d->layers; i++)
    free(cache[i]);
  free(ids), free(pos), free(seqlens), free(logits);
  return t[RUNS / 2];
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: raw_batch MODEL.onnx THREADS POSITION [B] [ROUNDS]\n");
    return 2;
  }
  const int threads = atoi(argv[2]), position = atoi(argv[3]);
  const int rows = argc > 4 ? atoi(argv[4]) : 8, rounds = argc > 5 ? atoi(argv[5]) : 3;
  const int64_t capacity = 512;
  if (threads < 0 || position < 0 || position >= capacity || rows < 1 || rounds < 1) {
    fprintf(stderr, "raw_batch: THREADS >= 0, 0 <= POSITION < %lld, B >= 1, ROUNDS >= 1\n",
            (long long)capacity);
    return 2;
  }
  ort = OrtGetApiBase()->GetApi(ORT_API_VERSION);
  OrtEnv *env;
  OrtSessionOptions *opts;
  OrtSession *s;
  OrtMemoryInfo *mem;
  /* the project's telemetry default (README): ONNX Runtime's usage telemetry off unless the
   * caller chose; set before the environment exists, as kvcache does */
  if (!getenv("ORT_DISABLE_TELEMETRY") && !getenv("ORT_TELEMETRY_DISABLED")) {
    setenv("ORT_DISABLE_TELEMETRY", "1", 1);
    setenv("ORT_TELEMETRY_DISABLED", "1", 1);
  }
  check(ort->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "raw_batch", &env), "environment");
  check(ort->CreateSessionOptions(&opts), "options");
  check(ort->SetIntraOpNumThreads(opts, threads), "threads");
  check(ort->CreateSession(env, argv[1], opts, &s), argv[1]);
  check(ort->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mem), "memory info");
  const dims d = read_dims(s);
  for (int r = 0; r < rounds; r++) { /* the two sizes in turns: the machine drifts */
    const double one = median_run(s, mem, &d, 1, capacity, position);
    const double many = median_run(s, mem, &d, rows, capacity, position);
    printf("threads %d position %d: batch 1 %.3f ms, batch %d %.3f ms: tokens/s %.2fx batch 1\n",
           threads, position, one, rows, many, rows * one / many);
  }
  ort->ReleaseMemoryInfo(mem);
  ort->ReleaseSession(s);
  ort->ReleaseSessionOptions(opts);
  ort->ReleaseEnv(env);
  return 0;
}
