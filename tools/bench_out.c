/* bench_out.c: the benchmark's machine line, table, JSON, CSV, gnuplot plot and markdown
 * report. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bench.h"
#include "stats.h"

int bench_find(const bench_result *r, const char *name) {
  for (int k = 0; k < r->n_strategies; k++)
    if (!strcmp(r->s[k].name, name))
      return k;
  return -1;
}

/* A strategy's largest logit difference from uncached, or "-" where uncached did not run. */
static const char *diff_text(const bench_strategy *s, char *buf, size_t cap) {
  if (isnan(s->max_abs_logit_diff))
    return "-";
  snprintf(buf, cap, "%.2g", s->max_abs_logit_diff);
  return buf;
}

/* The speedups measured: the first token's against the next ones' (bound), and uncached's
 * against bound's, each where both strategies ran. */
static void speedups(const bench_result *r, FILE *out, const char *first, const char *uncached) {
  if (r->first_vs_subsequent > 0)
    fprintf(out, first, r->prompt_len, r->first_vs_subsequent);
  if (r->cached_vs_uncached_last > 0)
    fprintf(out, uncached, r->buckets[r->n_buckets - 1], r->cached_vs_uncached_last,
            r->cached_vs_uncached_total);
}

/* The CPU, its kernel paths (what a figure was measured on: KVCACHE_ATTENTION and
 * KVCACHE_MATMUL choose others), the runtime and the date. */
void bench_machine_line(const bench_result *r, FILE *out) {
  char threads[16], kernels[96] = "";
  snprintf(threads, sizeof threads, "%d", r->machine.threads);
  if (*r->model.attention_kernel || *r->model.matmul_kernel)
    snprintf(kernels, sizeof kernels, "; kernels: attention %s, products %s",
             *r->model.attention_kernel ? r->model.attention_kernel : "-",
             *r->model.matmul_kernel ? r->model.matmul_kernel : "-");
  fprintf(out, "%s, %d cores%s; ONNX Runtime %s, provider %s, %s intra-op threads; %s\n",
          r->machine.cpu, r->machine.cores, kernels, r->machine.ort_version, r->machine.provider,
          r->machine.threads ? threads : "default", r->machine.date);
}

void bench_machine(bench_result *r, const kvc_model_params *mp) {
  snprintf(r->machine.cpu, sizeof r->machine.cpu, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  while (f && fgets(line, sizeof line, f)) {
    if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
      char *v = strchr(line, ':') + 2;
      v[strcspn(v, "\n")] = '\0';
      snprintf(r->machine.cpu, sizeof r->machine.cpu, "%s", v);
      break;
    }
  }
  if (f)
    fclose(f);
  r->machine.cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
  kvc_runtime_info rt;
  kvc_runtime_get_info(&rt);
  snprintf(r->machine.ort_version, sizeof r->machine.ort_version, "%s", rt.ort_version);
  snprintf(r->machine.provider, sizeof r->machine.provider, "%s", r->model.provider);
  r->machine.threads = mp->intra_op_threads;
  time_t t = time(NULL);
  strftime(r->machine.date, sizeof r->machine.date, "%Y-%m-%d %H:%M UTC", gmtime(&t));
}

/* name, or null when "" (the graph has no such kernel) */
void bench_json_name(cJSON *o, const char *key, const char *name) {
  if (*name)
    cJSON_AddStringToObject(o, key, name);
  else
    cJSON_AddNullToObject(o, key);
}

/* The weights plus a cache of the model's full length: what a process that opened the
 * model has to hold at most (the cache's pages become resident as positions fill). */
static double full_bytes(const bench_result *r) {
  return (double)r->model.param_bytes +
         (double)r->model.cache_bytes_per_token * (double)r->model.max_seq_len;
}

static double resident_ratio(const bench_result *r) {
  return r->resident_after_open_bytes / full_bytes(r);
}

/* "float32 weights" or "4-bit MatMul weights (16 of 17 products)". */
static void weights_text(const kvc_model_info *m, char *out, size_t cap) {
  if (m->quantized_matmuls)
    snprintf(out, cap, "%d-bit MatMul weights (%d of %d products)", m->weight_bits,
             m->quantized_matmuls, m->matmuls);
  else
    snprintf(out, cap, "float32 weights");
}

void bench_print_table(const bench_result *r, FILE *out) {
  fprintf(out, "machine: ");
  bench_machine_line(r, out);
  char weights[64];
  weights_text(&r->model, weights, sizeof weights);
  fprintf(
      out,
      "model: %s (%s naming, %s attention, %d layers, %d kv heads x %d, vocab %d, %.1f MB, %s)\n"
      "bytes per token: the weights' %.1f MB (less %.1f MB of lookup tables, a row of each "
      "read) + %lld of cache per position (the floor reads as many)\n"
      "loaded in %.0f ms; resident set then %.1f MB (%.2fx the weights + a full cache, %.1f MB)\n"
      "run: prompt %d tokens, %d decode steps, %d repeats taking turns\n\n",
      r->model.onnx_path, kvc_naming_name(r->model.naming), kvc_attention_name(r->model.attention),
      r->model.layers, r->model.kv_heads, r->model.head_dim, r->model.vocab_size,
      r->model.param_bytes / 1e6, weights, bench_step_weight_bytes(r) / 1e6,
      r->model.lookup_bytes / 1e6, (long long)r->model.cache_bytes_per_token, r->load_ms,
      r->resident_after_open_bytes / 1e6, resident_ratio(r), full_bytes(r) / 1e6, r->prompt_len,
      r->gen, r->repeats);
  if (*r->left_out)
    fprintf(out, "note: %s\n\n", r->left_out);
  fprintf(out, "%-9s %9s %9s %8s %8s %8s %8s %9s %9s %9s %6s %6s\n", "strategy", "cold ms",
          "prefill", "mean ms", "p50", "p90", "p99", "tokens/s", "max|dl|", "rss KB", "addrs",
          "allocs");
  for (int k = 0; k < r->n_strategies; k++) {
    const bench_strategy *s = &r->s[k];
    char diff[32];
    fprintf(out, "%-9s %9.2f %9.2f %8.3f %8.3f %8.3f %8.3f %9.1f %9s %9lld %6d %6.2f\n", s->name,
            s->cold_start_ms, s->prefill_ms, s->decode_mean, s->decode_p50, s->decode_p90,
            s->decode_p99, s->tokens_per_s, diff_text(s, diff, sizeof diff),
            (long long)(s->rss_growth_bytes / 1024), s->cache_addresses, s->heap_allocs_per_step);
  }
  fprintf(out, "\ndecode ms per token at position (decode / floor):\n%-9s", "position");
  for (int b = 0; b < r->n_buckets; b++)
    fprintf(out, " %16d", r->buckets[b]);
  fprintf(out, "\n%-9s", "floor");
  for (int b = 0; b < r->n_buckets; b++)
    fprintf(out, " %16.3f", r->floor_at[b]);
  for (int k = 0; k < r->n_strategies; k++) {
    fprintf(out, "\n%-9s", r->s[k].name);
    for (int b = 0; b < r->n_buckets; b++) {
      char cell[32];
      snprintf(cell, sizeof cell, "%.3f (%.2fx)", r->s[k].decode_at[b],
               kvc_stat_ratio(r->s[k].decode_at[b], r->floor_at[b]));
      fprintf(out, " %16s", cell);
    }
  }
  fprintf(out, "\n\n");
  speedups(r, out,
           "speedups: first token (bound prefill of %d) / subsequent token (bound p50) = %.1fx\n",
           "speedups: uncached / bound at position %d = %.1fx, over the whole generation = "
           "%.1fx\n");
  if (r->cache_growth_bytes > 0)
    fprintf(out,
            "cache read (attention %s, shared, position %d -> %d: +%.2f MB per step): the step "
            "grows %.3f ms (%.1f GB/s), the floor %.3f ms (%.1f GB/s); step growth / floor "
            "growth = %.2fx\n",
            kvc_attention_name(r->model.attention), r->buckets[0], r->buckets[r->n_buckets - 1],
            r->cache_growth_bytes / 1e6, r->cache_step_growth_ms, r->cache_read_gb_s,
            r->cache_floor_growth_ms, r->floor_cache_read_gb_s, r->cache_growth_vs_floor);
  if (r->attention_cache_bytes[0] > 0) {
    const double mb[2] = {r->attention_cache_bytes[0] / 1e6, r->attention_cache_bytes[1] / 1e6};
    fprintf(out,
            "attention alone (%d nodes, one row, in place; kvc_model_attention_ms): position "
            "%d / %d: GroupQueryAttention %.3f / %.3f ms, kvcache's %.3f / %.3f ms; at %d they "
            "read %.2f MB (float32) and %.2f MB (%s) of cache: %.1f vs %.1f GB/s, %.2fx the "
            "time\n",
            r->model.layers, r->buckets[0], r->buckets[r->n_buckets - 1], r->attention_ms[0][0],
            r->attention_ms[0][1], r->attention_ms[1][0], r->attention_ms[1][1],
            r->buckets[r->n_buckets - 1], mb[0], mb[1], kvc_kv_type_name(r->model.kv_type),
            mb[0] / r->attention_ms[0][1], mb[1] / r->attention_ms[1][1],
            kvc_stat_ratio(r->attention_ms[0][1], r->attention_ms[1][1]));
  }
  if (r->n_batches) {
    fprintf(out,
            "\nmany sequences in one context (--batch, kv %s, positions %d..%d, mean %.1f):\n"
            "%-6s %11s %9s %9s %9s %11s %9s %10s %11s\n",
            kvc_kv_mode_name(r->batch_mode), r->batch_first, r->batch_first + r->batch_steps - 1,
            r->batch_first + (r->batch_steps - 1) / 2.0, "batch", "tokens/s", "step p50", "p99",
            "floor", "p50/floor", "int8", "p50/int8", "vs batch 1");
    for (int k = 0; k < r->n_batches; k++) {
      const bench_batch *b = &r->batch[k];
      fprintf(out, "%-6d %11.1f %9.3f %9.3f %9.3f %10.2fx ", b->size, b->tokens_per_s, b->step_p50,
              b->step_p99, b->floor_ms, kvc_stat_ratio(b->step_p50, b->floor_ms));
      if (b->int8_ms > 0)
        fprintf(out, "%9.3f %9.2fx ", b->int8_ms, kvc_stat_ratio(b->step_p50, b->int8_ms));
      else
        fprintf(out, "%9s %10s ", "-", "-");
      fprintf(out, "%10.2fx\n", kvc_stat_ratio(b->tokens_per_s, r->batch[0].tokens_per_s));
    }
    if (r->batch[0].int8_ms > 0)
      fprintf(out,
              "(int8: the step's %.0f M int8 multiply-adds a row at the rate kvcache's "
              "products reach on as many rows held in the caches)\n",
              r->model.quantized_macs / 1e6);
  }
  if (r->state_bytes)
    fprintf(out,
            "\nstate file of %d tokens: %.2f MB; save (through fsync) %.0f MB/s, load %.0f MB/s\n",
            r->prompt_len + r->gen, r->state_bytes / 1e6, r->state_save_mb_s, r->state_load_mb_s);
  fflush(out);
}

int bench_check_output(const char *opt, const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (!slash)
    snprintf(dir, sizeof dir, ".");
  else
    snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
  struct stat st;
  const char *why = NULL;
  if (stat(dir, &st) != 0)
    why = strerror(errno);
  else if (!S_ISDIR(st.st_mode))
    why = "not a directory";
  else if (access(dir, W_OK | X_OK) != 0)
    why = strerror(errno);
  if (why) {
    fprintf(stderr, "kvcache bench: cannot write %s %s: directory %s: %s\n", opt, path, dir, why);
    return 1;
  }
  if (stat(path, &st) == 0 && (S_ISDIR(st.st_mode) || access(path, W_OK) != 0)) {
    fprintf(stderr, "kvcache bench: cannot write %s %s: %s\n", opt, path,
            S_ISDIR(st.st_mode) ? "it is a directory" : strerror(errno));
    return 1;
  }
  return 0;
}

FILE *bench_create(const char *path) {
  FILE *f = fopen(path, "w");
  if (!f)
    fprintf(stderr, "kvcache bench: cannot create %s: %s\n", path, strerror(errno));
  return f;
}

int bench_finish(FILE *f, const char *path) {
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    fprintf(stderr, "kvcache bench: cannot write %s\n", path);
    return 1;
  }
  return 0;
}

static cJSON *per_position(const bench_result *r, const double *values) {
  cJSON *o = cJSON_CreateObject();
  for (int b = 0; b < r->n_buckets; b++) {
    char key[16];
    snprintf(key, sizeof key, "%d", r->buckets[b]);
    cJSON_AddNumberToObject(o, key, values[b]);
  }
  return o;
}

cJSON *bench_json_root(const bench_result *r) {
  cJSON *root = cJSON_CreateObject();
  cJSON *m = cJSON_AddObjectToObject(root, "machine");
  cJSON_AddStringToObject(m, "cpu", r->machine.cpu);
  cJSON_AddNumberToObject(m, "cores", r->machine.cores);
  cJSON_AddStringToObject(m, "ort_version", r->machine.ort_version);
  cJSON_AddStringToObject(m, "provider", r->machine.provider);
  cJSON_AddNumberToObject(m, "threads", r->machine.threads);
  cJSON_AddStringToObject(m, "date", r->machine.date);
  return root;
}

int bench_json_write(cJSON *root, const char *path) {
  char *text = cJSON_Print(root);
  cJSON_Delete(root);
  FILE *f = text ? bench_create(path) : NULL;
  if (!f) {
    cJSON_free(text);
    return 1;
  }
  fprintf(f, "%s\n", text);
  cJSON_free(text);
  return bench_finish(f, path);
}

int bench_write_json(const bench_result *r, const char *path) {
  cJSON *root = bench_json_root(r);
  cJSON *model = cJSON_AddObjectToObject(root, "model");
  cJSON_AddStringToObject(model, "path", r->model.onnx_path);
  cJSON_AddStringToObject(model, "naming", kvc_naming_name(r->model.naming));
  cJSON_AddNumberToObject(model, "layers", r->model.layers);
  cJSON_AddNumberToObject(model, "kv_heads", r->model.kv_heads);
  cJSON_AddNumberToObject(model, "head_dim", r->model.head_dim);
  cJSON_AddNumberToObject(model, "vocab", r->model.vocab_size);
  cJSON_AddNumberToObject(model, "param_bytes", (double)r->model.param_bytes);
  cJSON_AddNumberToObject(model, "lookup_bytes", (double)r->model.lookup_bytes);
  cJSON_AddNumberToObject(model, "load_ms", r->load_ms);
  cJSON_AddNumberToObject(model, "resident_bytes_after_open", (double)r->resident_after_open_bytes);
  cJSON_AddNumberToObject(model, "cache_bytes_per_token", (double)r->model.cache_bytes_per_token);
  const char *kv_type = kvc_kv_type_name(r->model.kv_type);
  cJSON_AddStringToObject(model, "kv_type", kv_type ? kv_type : "unknown");
  bench_json_name(model, "attention_kernel", r->model.attention_kernel);
  bench_json_name(model, "matmul_kernel", r->model.matmul_kernel);
  cJSON_AddNumberToObject(model, "weight_bits", r->model.weight_bits);
  cJSON_AddNumberToObject(model, "quantized_matmuls", r->model.quantized_matmuls);
  cJSON *per_token = cJSON_AddObjectToObject(model, "bytes_per_token");
  for (int b = 0; b < r->n_buckets; b++) {
    char key[16];
    snprintf(key, sizeof key, "%d", r->buckets[b]);
    cJSON_AddNumberToObject(per_token, key,
                            (double)bench_step_weight_bytes(r) +
                                (double)r->model.cache_bytes_per_token * r->buckets[b]);
  }
  cJSON *state = cJSON_AddObjectToObject(root, "state");
  cJSON_AddNumberToObject(state, "bytes", (double)r->state_bytes);
  cJSON_AddNumberToObject(state, "save_mb_per_s", r->state_save_mb_s);
  cJSON_AddNumberToObject(state, "load_mb_per_s", r->state_load_mb_s);
  cJSON *run = cJSON_AddObjectToObject(root, "run");
  cJSON_AddNumberToObject(run, "prompt_len", r->prompt_len);
  cJSON_AddNumberToObject(run, "gen", r->gen);
  cJSON_AddNumberToObject(run, "repeats", r->repeats);
  cJSON *all = cJSON_AddObjectToObject(root, "strategies");
  for (int k = 0; k < r->n_strategies; k++) {
    const bench_strategy *s = &r->s[k];
    cJSON *o = cJSON_AddObjectToObject(all, s->name);
    cJSON_AddNumberToObject(o, "cold_start_ms", s->cold_start_ms);
    cJSON_AddNumberToObject(o, "prefill_ms", s->prefill_ms);
    cJSON *d = cJSON_AddObjectToObject(o, "decode_ms");
    cJSON_AddNumberToObject(d, "mean", s->decode_mean);
    cJSON_AddNumberToObject(d, "p50", s->decode_p50);
    cJSON_AddNumberToObject(d, "p90", s->decode_p90);
    cJSON_AddNumberToObject(d, "p99", s->decode_p99);
    cJSON_AddItemToObject(o, "decode_ms_at", per_position(r, s->decode_at));
    double over[BENCH_MAX_BUCKETS];
    for (int b = 0; b < r->n_buckets; b++)
      over[b] = kvc_stat_ratio(s->decode_at[b], r->floor_at[b]);
    cJSON_AddItemToObject(o, "decode_over_floor_at", per_position(r, over));
    cJSON_AddNumberToObject(o, "decode_total_ms", s->decode_total_ms);
    cJSON_AddNumberToObject(o, "tokens_per_s", s->tokens_per_s);
    cJSON_AddNumberToObject(o, "max_abs_logit_diff", s->max_abs_logit_diff);
    cJSON_AddNumberToObject(o, "cache_bytes", (double)s->cache_bytes);
    cJSON_AddNumberToObject(o, "rss_growth_bytes", (double)s->rss_growth_bytes);
    cJSON_AddNumberToObject(o, "cache_addresses_per_tensor", s->cache_addresses);
    cJSON_AddNumberToObject(o, "heap_allocs_per_step", s->heap_allocs_per_step);
  }
  cJSON_AddItemToObject(root, "floor_ms_at", per_position(r, r->floor_at));
  cJSON *sp = cJSON_AddObjectToObject(root, "speedup");
  if (*r->left_out)
    cJSON_AddStringToObject(root, "left_out", r->left_out);
  cJSON_AddNumberToObject(sp, "first_vs_subsequent", r->first_vs_subsequent);
  cJSON_AddNumberToObject(sp, "cached_vs_uncached_last", r->cached_vs_uncached_last);
  cJSON_AddNumberToObject(sp, "cached_vs_uncached_total", r->cached_vs_uncached_total);
  if (bench_find(r, "shared") >= 0)
    cJSON_AddNumberToObject(sp, "shared_vs_bound_last", r->shared_vs_bound_last);
  if (r->cache_growth_bytes > 0) {
    cJSON *c = cJSON_AddObjectToObject(root, "cache_read");
    cJSON_AddStringToObject(c, "attention", kvc_attention_name(r->model.attention));
    cJSON_AddNumberToObject(c, "growth_bytes", (double)r->cache_growth_bytes);
    cJSON_AddNumberToObject(c, "step_gb_s", r->cache_read_gb_s);
    cJSON_AddNumberToObject(c, "floor_gb_s", r->floor_cache_read_gb_s);
    cJSON_AddNumberToObject(c, "step_growth_over_floor_growth", r->cache_growth_vs_floor);
  }
  if (r->attention_cache_bytes[0] > 0) {
    cJSON *a = cJSON_AddObjectToObject(root, "attention_alone");
    const char *names[2] = {"gqa", "kvcache"};
    for (int k = 0; k < 2; k++) {
      cJSON *o = cJSON_AddObjectToObject(a, names[k]);
      cJSON_AddNumberToObject(o, "cache_bytes_last", (double)r->attention_cache_bytes[k]);
      cJSON_AddItemToObject(o, "ms_at", cJSON_CreateDoubleArray(r->attention_ms[k], 2));
      cJSON_AddNumberToObject(o, "gb_s_last",
                              r->attention_cache_bytes[k] / 1e6 / r->attention_ms[k][1]);
    }
    cJSON_AddNumberToObject(a, "kvcache_over_gqa",
                            kvc_stat_ratio(r->attention_ms[0][1], r->attention_ms[1][1]));
  }
  if (r->n_batches) {
    cJSON *batch = cJSON_AddObjectToObject(root, "batch");
    for (int k = 0; k < r->n_batches; k++) {
      const bench_batch *b = &r->batch[k];
      char key[16];
      snprintf(key, sizeof key, "%d", b->size);
      cJSON *o = cJSON_AddObjectToObject(batch, key);
      cJSON_AddNumberToObject(o, "tokens_per_s", b->tokens_per_s);
      cJSON *step = cJSON_AddObjectToObject(o, "step_ms");
      cJSON_AddNumberToObject(step, "p50", b->step_p50);
      cJSON_AddNumberToObject(step, "p99", b->step_p99);
      cJSON_AddNumberToObject(o, "floor_ms", b->floor_ms);
      cJSON_AddNumberToObject(o, "step_over_floor", kvc_stat_ratio(b->step_p50, b->floor_ms));
      if (b->int8_ms > 0) {
        cJSON_AddNumberToObject(o, "int8_ms", b->int8_ms);
        cJSON_AddNumberToObject(o, "step_over_int8", kvc_stat_ratio(b->step_p50, b->int8_ms));
      }
      cJSON_AddNumberToObject(o, "tokens_per_s_vs_batch_1",
                              kvc_stat_ratio(b->tokens_per_s, r->batch[0].tokens_per_s));
    }
    cJSON_AddNumberToObject(run, "batch_mean_position",
                            r->batch_first + (r->batch_steps - 1) / 2.0);
  }
  return bench_json_write(root, path);
}

int bench_write_csv(const bench_result *r, const char *path) {
  FILE *f = bench_create(path);
  if (!f)
    return 1;
  fprintf(f, "strategy,position,decode_ms_median\n");
  for (int k = 0; k < r->n_strategies; k++)
    for (int32_t i = 0; i < r->gen; i++)
      if (!isnan(r->s[k].by_position[i]))
        fprintf(f, "%s,%d,%.6f\n", r->s[k].name, r->prompt_len + i, r->s[k].by_position[i]);
  return bench_finish(f, path);
}

int bench_write_plot(const bench_result *r, const char *path) {
  FILE *g = popen("gnuplot", "w");
  if (!g) {
    fprintf(stderr, "kvcache bench: cannot run gnuplot for %s: %s\n", path, strerror(errno));
    return 1;
  }
  fprintf(g,
          "set terminal pngcairo size 1000,%d font ',11'\n"
          "set output '%s'\n"
          "set multiplot layout %d,1\n"
          "set title 'Per-token decode latency, %d-layer model, prompt %d (median of %d "
          "repeats)'\n"
          "set xlabel 'position (tokens already in the cache)'\n"
          "set ylabel 'ms per token (log scale)'\n"
          "set logscale y\nset grid\nset key left top\n"
          "plot ",
          r->n_batches ? 1100 : 600, path, r->n_batches ? 2 : 1, r->model.layers, r->prompt_len,
          r->repeats);
  for (int k = 0; k < r->n_strategies; k++)
    fprintf(g, "'-' using 1:2 with lines lw 2 title '%s', ", r->s[k].name);
  fprintf(g, "'-' using 1:2 with linespoints dt 2 lw 2 title 'floor: ONNX Runtime reading "
             "weights + cache once'\n");
  for (int k = 0; k < r->n_strategies; k++) {
    for (int32_t i = 0; i < r->gen; i++)
      if (!isnan(r->s[k].by_position[i]))
        fprintf(g, "%d %g\n", r->prompt_len + i, r->s[k].by_position[i]);
    fprintf(g, "e\n");
  }
  for (int b = 0; b < r->n_buckets; b++)
    fprintf(g, "%d %g\n", r->buckets[b], r->floor_at[b]);
  fprintf(g, "e\n");
  if (r->n_batches) {
    fprintf(g,
            "set title 'Many sequences decoding together: tokens/s against batch size (mean "
            "position %.0f)'\n"
            "set xlabel 'sequences in one context (batch)'\nset ylabel 'tokens/s'\n"
            "unset logscale y\nset logscale x 2\nset key left top\n"
            "plot '-' using 1:2 with linespoints lw 2 title 'kvc\\_append\\_batch', "
            "'-' using 1:2 with linespoints dt 2 lw 2 title 'floor: batch / (weights + caches "
            "read once)'\n",
            r->batch_first + (r->batch_steps - 1) / 2.0);
    for (int k = 0; k < r->n_batches; k++)
      fprintf(g, "%d %g\n", r->batch[k].size, r->batch[k].tokens_per_s);
    fprintf(g, "e\n");
    for (int k = 0; k < r->n_batches; k++)
      fprintf(g, "%d %g\n", r->batch[k].size, r->batch[k].size * 1e3 / r->batch[k].floor_ms);
    fprintf(g, "e\n");
  }
  fprintf(g, "unset multiplot\n");
  int status = pclose(g);
  if (status != 0) {
    fprintf(stderr, "kvcache bench: gnuplot failed (status %d) writing %s\n", status, path);
    return 1;
  }
  return 0;
}

static const char json_keys[] =
    "## The JSON (`--json FILE`)\n\n"
    "| key | meaning |\n|---|---|\n"
    "| `machine{cpu,cores,ort_version,provider,threads,date}` | where it ran; threads 0 = ONNX "
    "Runtime's default |\n"
    "| `model{path,naming,layers,heads,head_dim,vocab,param_bytes,cache_bytes_per_token}` | the "
    "model; heads are the cache's (KV) heads |\n"
    "| `model.lookup_bytes` | of param_bytes, the tables a step reads one row of (embeddings, "
    "position tables): not in the floor |\n"
    "| `model.kv_type` | the cache's element type (f32, f16, q8) |\n"
    "| `model{attention_kernel,matmul_kernel}` | the kernel paths the figures ran on (the "
    "CPU's best, or `KVCACHE_ATTENTION` / `KVCACHE_MATMUL`'s choice); null where the graph has "
    "no such operator |\n"
    "| `model.load_ms` | the first kvc_model_open (ONNX Runtime's session: graph, weights, "
    "packing) |\n"
    "| `model.resident_bytes_after_open` | the process's resident set just after it (Linux "
    "`/proc/self/statm`; 0 where unknown) |\n"
    "| `run{prompt_len,gen,repeats}` | prompt tokens, decode steps, timed repeats |\n"
    "| `strategies.<name>.cold_start_ms` | model open + sequence + prompt, median of repeats |\n"
    "| `strategies.<name>.prefill_ms` | the prompt again on a warm sequence, median |\n"
    "| `strategies.<name>.decode_ms{mean,p50,p90,p99}` | one decode step, over all timed steps "
    "of all repeats |\n"
    "| `strategies.<name>.decode_ms_at{\"<position>\"}` | median of the steps within 4 "
    "positions of it |\n"
    "| `strategies.<name>.decode_over_floor_at{\"<position>\"}` | that, divided by "
    "`floor_ms_at` |\n"
    "| `strategies.<name>.decode_total_ms` | mean step x steps: the whole generation |\n"
    "| `strategies.<name>.tokens_per_s` | 1000 / mean decode ms |\n"
    "| `strategies.<name>.max_abs_logit_diff` | largest logit difference from the uncached "
    "oracle, every position of every run |\n"
    "| `strategies.<name>.cache_bytes` | KV cache kvcache allocated (naive and uncached: 0, "
    "ONNX Runtime allocates per run) |\n"
    "| `strategies.<name>.rss_growth_bytes` | resident set growth over the decode steps, "
    "strategy run alone |\n"
    "| `strategies.<name>.cache_addresses_per_tensor` | distinct addresses of the first cache "
    "tensor over that run (capped at 64) |\n"
    "| `strategies.<name>.heap_allocs_per_step` | kvcache's heap allocations per decode step "
    "in that run |\n"
    "| `floor_ms_at{\"<position>\"}` | ONNX Runtime reading weights + cache at that position "
    "once (`kvc_model_floor`) |\n"
    "| `model.weight_bits`, `model.quantized_matmuls` | 32 for float weights; else the bits of "
    "the MatMulNBits products, and how many |\n"
    "| `model.bytes_per_token{\"<position>\"}` | bytes a decode step reads there: weights + "
    "cache (what the floor reads) |\n"
    "| `state.bytes`, `state.save_mb_per_s`, `state.load_mb_per_s` | a state file of the whole "
    "sequence: its size, save (through fsync) and load rates, medians of 5 |\n"
    "| `speedup.first_vs_subsequent` | bound: prompt prefill / p50 decode step |\n"
    "| `speedup.cached_vs_uncached_last` | uncached / bound at the last position |\n"
    "| `speedup.cached_vs_uncached_total` | uncached / bound over the whole generation |\n"
    "| `speedup.shared_vs_bound_last` | bound / shared at the last position (when shared ran) |\n"
    "| `cache_read{attention, growth_bytes, step_gb_s, floor_gb_s, "
    "step_growth_over_floor_growth}` | shared: the cache bytes a step reads more at the last "
    "position than at the first, read by the step's attention and by the floor (GB/s), and "
    "the ratio of the two growths |\n"
    "| `attention_alone{gqa{cache_bytes_last, ms_at, gb_s_last}, kvcache{...}, "
    "kvcache_over_gqa}` | graphs that write in place, CPU: the model's attention alone, one node "
    "per layer, as GroupQueryAttention (over a float32 cache) and as kvcache's operator (over "
    "the model's kv_type), at the first and last position (`kvc_model_attention_ms`); the "
    "cache each reads at the last and its rate; their time ratio |\n"
    "| `batch{\"<B>\": {tokens_per_s, step_ms{p50,p99}, floor_ms, step_over_floor, "
    "[int8_ms, step_over_int8,] tokens_per_s_vs_batch_1}}` | `--batch`: B sequences in one "
    "context, one token each per step; the floor reads the weights + B caches at the mean "
    "position (`run.batch_mean_position`) once; int8_ms (models with kvcache's int8 "
    "products): the step's multiply-adds at the rate `kvc_model_products_ms` measures for B "
    "rows |\n\n"
    "The uncached strategy is timed at every 8th position and at the reported positions (a "
    "step at position p recomputes p + 1 tokens, whatever came before).\n";

/* The cache designs, each with what this run measured of it. */
static void designs(const bench_result *r, FILE *f) {
  const int first = 0, last = r->n_buckets - 1;
  fprintf(f, "## The cache designs, as measured here\n\n");
  static const struct {
    const char *name, *text;
  } about[] = {
      {"uncached", "No cache: every token recomputes the whole sequence, so a step costs a "
                   "prefill of everything so far and grows with the position"},
      {"naive", "ONNX Runtime allocates every present; each becomes the next past. Nothing is "
                "recomputed, but every step gets new tensors from the allocator and the graph "
                "copies the whole past into them"},
      {"bound", "Two buffers per cache tensor, allocated once at the maximum length and bound "
                "with IOBinding, past from one and present into the other, swapping each step: "
                "no allocation, but the graph still copies the whole past each step"},
      {"shared", "One buffer per cache tensor, bound as both past and present; the graph's "
                 "attention (GroupQueryAttention, or kvcache's own operator) writes only the new "
                 "position in place, and everything is bound once: a step reads the cache but "
                 "copies none of it"},
  };
  for (int k = 0; k < r->n_strategies; k++) {
    const bench_strategy *s = &r->s[k];
    const char *text = "";
    for (size_t a = 0; a < sizeof about / sizeof about[0]; a++)
      text = strcmp(about[a].name, s->name) ? text : about[a].text;
    fprintf(f,
            "- **%s**: %s. Measured: %.3f ms per token at position %d, %.3f ms at %d (%.2fx "
            "the floor); %d cache address%s, %lld bytes of cache allocated by kvcache, %.2f "
            "heap allocations per step, resident set %+lld KB over the generation.\n",
            s->name, text, s->decode_at[first], r->buckets[first], s->decode_at[last],
            r->buckets[last], kvc_stat_ratio(s->decode_at[last], r->floor_at[last]),
            s->cache_addresses, s->cache_addresses == 1 ? "" : "es", (long long)s->cache_bytes,
            s->heap_allocs_per_step, (long long)(s->rss_growth_bytes / 1024));
  }
  int b = bench_find(r, "bound"), sh = bench_find(r, "shared");
  if (b >= 0 && sh >= 0)
    fprintf(f, "\nAt position %d `shared` is **%.2fx** faster per token than `bound`.\n",
            r->buckets[last], r->shared_vs_bound_last);
  if (r->cache_growth_bytes > 0)
    fprintf(f,
            "\nCache read by the attention (%s): from position %d to %d a `shared` step reads "
            "%.2f MB more; the step grows by %.3f ms (**%.1f GB/s**), the floor by %.3f ms "
            "(%.1f GB/s): step growth / floor growth = %.2fx.\n",
            kvc_attention_name(r->model.attention), r->buckets[first], r->buckets[last],
            r->cache_growth_bytes / 1e6, r->cache_step_growth_ms, r->cache_read_gb_s,
            r->cache_floor_growth_ms, r->floor_cache_read_gb_s, r->cache_growth_vs_floor);
  if (r->attention_cache_bytes[0] > 0) {
    const double mb[2] = {r->attention_cache_bytes[0] / 1e6, r->attention_cache_bytes[1] / 1e6};
    fprintf(f,
            "\nThe attention alone (`kvc_model_attention_ms`: one node per layer at position %d, "
            "the model's sizes, in place): GroupQueryAttention %.3f ms over %.2f MB of float32 "
            "cache (%.1f GB/s), kvcache's operator %.3f ms over %.2f MB of its cache "
            "(--kv-type %s, %.1f GB/s): **%.2fx** faster.\n",
            r->buckets[last], r->attention_ms[0][1], mb[0], mb[0] / r->attention_ms[0][1],
            r->attention_ms[1][1], mb[1], kvc_kv_type_name(r->model.kv_type),
            mb[1] / r->attention_ms[1][1],
            kvc_stat_ratio(r->attention_ms[0][1], r->attention_ms[1][1]));
  }
  fprintf(f, "\n");
}

int bench_write_report(const bench_result *r, const char *path, const char *plot_path) {
  char weights[64];
  weights_text(&r->model, weights, sizeof weights);
  FILE *f = bench_create(path);
  if (!f)
    return 1;
  fprintf(f, "# kvcache benchmark\n\n");
  fprintf(f,
          "Generated by `kvcache bench` (`make run`); every figure below comes from one run.\n\n");
  fprintf(f, "- **Machine:** ");
  bench_machine_line(r, f);
  fprintf(f,
          "- **Model:** `%s`: %s naming, %d layers, %d KV heads of %d, vocabulary %d, %.1f MB of "
          "weights (%s; a step streams %.1f MB of them, reading one row of each lookup table), "
          "%lld cache bytes per token\n",
          r->model.onnx_path, kvc_naming_name(r->model.naming), r->model.layers, r->model.kv_heads,
          r->model.head_dim, r->model.vocab_size, r->model.param_bytes / 1e6, weights,
          bench_step_weight_bytes(r) / 1e6, (long long)r->model.cache_bytes_per_token);
  fprintf(f,
          "- **Run:** a random prompt of %d tokens, then %d greedy tokens (chosen once, the same "
          "for every strategy), %d repeats, the strategies taking turns (A B C A B C ...); each "
          "generation follows its prompt and 16 untimed decode steps, rewound, so that the "
          "figures are the steady state (the first steps after a prompt run up to twice as slow "
          "while the caches refill)\n\n",
          r->prompt_len, r->gen, r->repeats);
  fprintf(f, "## Per strategy\n\n| strategy | cold start ms | prefill ms | decode mean ms | p50 | "
             "p90 | p99 | tokens/s | max abs logit diff | cache bytes | RSS growth | cache "
             "addresses | allocs/step |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int k = 0; k < r->n_strategies; k++) {
    const bench_strategy *s = &r->s[k];
    char diff[32];
    fprintf(f,
            "| %s | %.2f | %.2f | %.3f | %.3f | %.3f | %.3f | %.1f | %s | %lld | %lld | %d | "
            "%.2f |\n",
            s->name, s->cold_start_ms, s->prefill_ms, s->decode_mean, s->decode_p50, s->decode_p90,
            s->decode_p99, s->tokens_per_s, diff_text(s, diff, sizeof diff),
            (long long)s->cache_bytes, (long long)s->rss_growth_bytes, s->cache_addresses,
            s->heap_allocs_per_step);
  }
  fprintf(f, "\n## Decode time per token at positions (ms, and multiple of the floor)\n\n| "
             "position |");
  for (int b = 0; b < r->n_buckets; b++)
    fprintf(f, " %d |", r->buckets[b]);
  fprintf(f, "\n|---|");
  for (int b = 0; b < r->n_buckets; b++)
    fprintf(f, "---|");
  fprintf(f, "\n| floor |");
  for (int b = 0; b < r->n_buckets; b++)
    fprintf(f, " %.3f |", r->floor_at[b]);
  for (int k = 0; k < r->n_strategies; k++) {
    fprintf(f, "\n| %s |", r->s[k].name);
    for (int b = 0; b < r->n_buckets; b++)
      fprintf(f, " %.3f (%.2fx) |", r->s[k].decode_at[b],
              kvc_stat_ratio(r->s[k].decode_at[b], r->floor_at[b]));
  }
  fprintf(f,
          "\n\nThe floor is what a decode step would cost if all it had to do were read its "
          "memory once: the time one ONNX Runtime run, on the same provider and threads, takes "
          "to read the weight bytes (less the lookup tables, of which a step reads one row) plus "
          "the cache bytes at that position from a buffer of that "
          "size (`kvc_model_floor`: a MatMul of a 1 x 64 row by a 64-row matrix of that many "
          "bytes, the matrix-vector kernel a step streams its weights through, after as many "
          "untimed reads to bring the matrix into the caches, where a decode step finds its "
          "weights). Measured after each strategy's generation in every repeat (median of 20 "
          "reads), so that it drifts with the machine as the steps do; the figure is the median "
          "of those %d. `docs/PERFORMANCE.md` (#17, #18) compares it with other readers: it is "
          "the fastest found.\n\n",
          r->repeats * r->n_strategies);
  fprintf(f, "## Speedups\n\n");
  speedups(r, f,
           "- First token vs subsequent (the seed's criterion, 5-20x): `bound` prefill of the "
           "%d-token prompt / its p50 decode step = **%.1fx**\n",
           "- Cached vs uncached at position %d: `uncached` / `bound` = **%.1fx**; over the whole "
           "generation **%.1fx**\n");
  fprintf(f, "%s%s\n", *r->left_out ? "- " : "", r->left_out);
  designs(r, f);
  if (r->n_batches) {
    fprintf(f,
            "## Many sequences at once (`--batch`)\n\nB sequences in one context of B slots "
            "(kv %s), each step one `kvc_seq_append_batch` of one token per sequence%s; every size "
            "decodes positions %d..%d (mean %.1f) after its own prompts, the sizes taking turns. "
            "The floor reads the weights plus all B caches at the mean position once; int8 is the "
            "step's int8 multiply-adds at the rate kvcache's products reach on B rows held in "
            "the caches (`kvc_model_products_ms`), where the model has them.\n\n"
            "| batch | tokens/s | step p50 ms | step p99 ms | floor ms | step / floor | int8 ms | "
            "step / int8 | tokens/s vs batch 1 |\n|---|---|---|---|---|---|---|---|---|\n",
            kvc_kv_mode_name(r->batch_mode),
            r->model.batches ? " (one ONNX Runtime run)"
                             : " (one run per sequence: this graph "
                               "does not batch)",
            r->batch_first, r->batch_first + r->batch_steps - 1,
            r->batch_first + (r->batch_steps - 1) / 2.0);
    for (int k = 0; k < r->n_batches; k++) {
      const bench_batch *b = &r->batch[k];
      char int8[64] = "- | -";
      if (b->int8_ms > 0)
        snprintf(int8, sizeof int8, "%.3f | %.2fx", b->int8_ms,
                 kvc_stat_ratio(b->step_p50, b->int8_ms));
      fprintf(f, "| %d | %.1f | %.3f | %.3f | %.3f | %.2fx | %s | **%.2fx** |\n", b->size,
              b->tokens_per_s, b->step_p50, b->step_p99, b->floor_ms,
              kvc_stat_ratio(b->step_p50, b->floor_ms), int8,
              kvc_stat_ratio(b->tokens_per_s, r->batch[0].tokens_per_s));
    }
    fprintf(f, "\n");
  }
  if (r->state_bytes)
    fprintf(f,
            "## State files\n\n"
            "A sequence of %d tokens saved and loaded back (`kvc_seq_save`, "
            "`kvc_seq_load`; docs/STATE.md), median of 5: %.2f MB; save, through `fsync`, "
            "**%.0f MB/s**; load, checksum and checks included, **%.0f MB/s**.\n\n",
            r->prompt_len + r->gen, r->state_bytes / 1e6, r->state_save_mb_s, r->state_load_mb_s);
  if (plot_path) {
    const char *base = strrchr(plot_path, '/') ? strrchr(plot_path, '/') + 1 : plot_path;
    fprintf(f, "## Latency against position\n\n![per-token latency](%s)\n\n", base);
  }
  fputs(json_keys, f);
  return bench_finish(f, path);
}
