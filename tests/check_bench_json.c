/* check_bench_json FILE: the JSON of `kvcache bench` has every documented key with the
 * documented type, and the invariants the benchmark promises hold: cached strategies agree
 * with uncached within 1e-4; bound keeps two cache buffers per tensor and allocates nothing
 * per step. Prints each failure; exits 1 if any. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static int failures;

static const cJSON *get(const cJSON *o, const char *key, int want_number, const char *where) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  int ok = v && (want_number == 1   ? cJSON_IsNumber(v)
                 : want_number == 0 ? cJSON_IsString(v)
                                    : cJSON_IsObject(v));
  if (!ok) {
    printf("FAIL: %s.%s missing or not a %s\n", where, key,
           want_number == 1   ? "number"
           : want_number == 0 ? "string"
                              : "object");
    failures++;
  }
  return ok ? v : NULL;
}

enum { STR = 0, NUM = 1, OBJ = 2 };

/* o.key is one of names (NULL-terminated), or null when null_ok. */
static void one_of(const cJSON *o, const char *key, const char *const *names, int null_ok,
                   const char *where) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (v && null_ok && cJSON_IsNull(v))
    return;
  for (int i = 0; v && cJSON_IsString(v) && names[i]; i++)
    if (!strcmp(v->valuestring, names[i]))
      return;
  printf("FAIL: %s.%s is %s, expected one of %s...%s\n", where, key,
         v && cJSON_IsString(v) ? v->valuestring : "missing or not a string", names[0],
         null_ok ? " or null" : "");
  failures++;
}

static void positions(const cJSON *o, const char *where) {
  int n = 0;
  for (const cJSON *p = o ? o->child : NULL; p; p = p->next, n++) {
    char *end;
    strtol(p->string, &end, 10);
    if (*end || !cJSON_IsNumber(p) || p->valuedouble <= 0) {
      printf("FAIL: %s[\"%s\"] is not a positive number keyed by a position\n", where, p->string);
      failures++;
    }
  }
  if (o && n == 0) {
    printf("FAIL: %s is empty\n", where);
    failures++;
  }
}

int main(int argc, char **argv) {
  if (argc != 2)
    return 2;
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    printf("FAIL: cannot open %s\n", argv[1]);
    return 1;
  }
  static char text[1 << 20];
  text[fread(text, 1, sizeof text - 1, f)] = '\0';
  fclose(f);
  cJSON *root = cJSON_Parse(text);
  if (!root) {
    printf("FAIL: %s is not JSON\n", argv[1]);
    return 1;
  }
  const cJSON *m = get(root, "machine", OBJ, "root");
  const char *machine_str[] = {"cpu", "ort_version", "provider", "date"};
  for (int i = 0; m && i < 4; i++)
    get(m, machine_str[i], STR, "machine");
  if (m)
    get(m, "cores", NUM, "machine"), get(m, "threads", NUM, "machine");
  const cJSON *model = get(root, "model", OBJ, "root");
  const char *model_num[] = {"layers", "kv_heads", "head_dim", "vocab", "param_bytes"};
  for (int i = 0; model && i < 5; i++)
    get(model, model_num[i], NUM, "model");
  if (model) {
    get(model, "path", STR, "model");
    static const char *const kv_types[] = {"f32", "f16", "q8", NULL};
    static const char *const attention[] = {"portable", "avx2", "avx512", NULL};
    static const char *const matmul[] = {"portable", "avx2", "avx512", "amx", NULL};
    one_of(model, "kv_type", kv_types, 0, "model");
    one_of(model, "attention_kernel", attention, 1, "model");
    one_of(model, "matmul_kernel", matmul, 1, "model");
  }
  const cJSON *run = get(root, "run", OBJ, "root");
  const char *run_num[] = {"prompt_len", "gen", "repeats"};
  for (int i = 0; run && i < 3; i++)
    get(run, run_num[i], NUM, "run");
  positions(get(root, "floor_ms_at", OBJ, "root"), "floor_ms_at");
  const cJSON *sp = get(root, "speedup", OBJ, "root");
  if (sp)
    get(sp, "first_vs_subsequent", NUM, "speedup"),
        get(sp, "cached_vs_uncached_last", NUM, "speedup");

  const cJSON *all = get(root, "strategies", OBJ, "root");
  const char *names[] = {"uncached", "naive", "bound"};
  for (int k = 0; all && k < 3; k++) {
    const cJSON *s = get(all, names[k], OBJ, "strategies");
    if (!s)
      continue;
    const char *num[] = {"cold_start_ms",
                         "prefill_ms",
                         "tokens_per_s",
                         "max_abs_logit_diff",
                         "cache_bytes",
                         "rss_growth_bytes",
                         "cache_addresses_per_tensor",
                         "heap_allocs_per_step"};
    for (int i = 0; i < 8; i++)
      get(s, num[i], NUM, names[k]);
    const cJSON *d = get(s, "decode_ms", OBJ, names[k]);
    const char *pct[] = {"mean", "p50", "p90", "p99"};
    for (int i = 0; d && i < 4; i++)
      get(d, pct[i], NUM, "decode_ms");
    positions(get(s, "decode_ms_at", OBJ, names[k]), "decode_ms_at");
    const cJSON *diff = cJSON_GetObjectItemCaseSensitive(s, "max_abs_logit_diff");
    if (cJSON_IsNumber(diff) && !(diff->valuedouble <= 1e-4)) {
      printf("FAIL: %s max_abs_logit_diff %g > 1e-4\n", names[k], diff->valuedouble);
      failures++;
    }
  }
  const cJSON *bound = all ? cJSON_GetObjectItemCaseSensitive(all, "bound") : NULL;
  const cJSON *addrs = cJSON_GetObjectItemCaseSensitive(bound, "cache_addresses_per_tensor");
  const cJSON *allocs = cJSON_GetObjectItemCaseSensitive(bound, "heap_allocs_per_step");
  if (!cJSON_IsNumber(addrs) || addrs->valuedouble != 2) {
    printf("FAIL: bound cache_addresses_per_tensor is not 2\n");
    failures++;
  }
  if (!cJSON_IsNumber(allocs) || allocs->valuedouble != 0) {
    printf("FAIL: bound heap_allocs_per_step is not 0\n");
    failures++;
  }
  /* shared, where the graph supports it: one buffer per tensor, nothing allocated */
  const cJSON *shared = all ? cJSON_GetObjectItemCaseSensitive(all, "shared") : NULL;
  if (shared) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(shared, "cache_addresses_per_tensor");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(shared, "heap_allocs_per_step");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(shared, "max_abs_logit_diff");
    if (!cJSON_IsNumber(a) || a->valuedouble != 1 || !cJSON_IsNumber(h) || h->valuedouble != 0 ||
        !cJSON_IsNumber(d) || !(d->valuedouble <= 1e-4)) {
      printf("FAIL: shared: expected 1 cache address, 0 allocations, logits within 1e-4\n");
      failures++;
    }
  }
  cJSON_Delete(root);
  printf("%s: %s\n", argv[1], failures ? "FAILED" : "all keys and invariants hold");
  return failures ? 1 : 0;
}
