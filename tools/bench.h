/* bench.h: the benchmark's results, as measured by cmd_bench.c and bench_batch.c and
 * written by bench_out.c. */
#ifndef KVC_TOOLS_BENCH_H
#define KVC_TOOLS_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "kvcache.h"

enum {
  BENCH_MAX_STRATEGIES = 4,
  BENCH_MAX_BUCKETS = 8,
  BENCH_MAX_BATCHES = 8,
  BENCH_MAX_TYPES = 3
};

typedef struct bench_strategy {
  const char *name;
  kvc_kv_mode mode;
  double cold_start_ms; /* median over repeats: model open + sequence + prompt */
  double prefill_ms;    /* median over repeats: the prompt again on a warm sequence */
  double decode_mean, decode_p50, decode_p90, decode_p99; /* ms, over all steps and repeats */
  double decode_at[BENCH_MAX_BUCKETS]; /* ms, median of the steps near each bucket */
  double decode_total_ms;              /* decode_mean * gen: the whole generation */
  double tokens_per_s;                 /* 1000 / decode_mean */
  double max_abs_logit_diff;           /* against uncached, over every position of every repeat;
                                        * NAN without uncached */
  int64_t cache_bytes;                 /* KV cache kvcache allocated */
  int64_t rss_growth_bytes;            /* resident set growth over a generation, run alone */
  int32_t cache_addresses;             /* distinct addresses of the first cache tensor, run alone */
  double heap_allocs_per_step;         /* kvcache's allocations per decode step, run alone */
  double *by_position;                 /* (gen) ms, median over repeats at each decode position; NAN
                                        * where not timed (uncached is timed at a stride) */
} bench_strategy;

/* Many sequences decoding together (--batch): one context of `size` slots, every step one
 * kvc_seq_append_batch of one token per sequence, all at the same positions. */
typedef struct bench_batch {
  int32_t size;
  double tokens_per_s;       /* size * steps / their total time, median over repeats */
  double step_p50, step_p99; /* ms per step (size tokens), over all steps and repeats */
  double floor_ms;           /* ONNX Runtime reading the weights + every row's cache once */
  double int8_ms;            /* the step's int8 products (size x quantized_macs) at the rate
                              * kvc_model_products_ms measures for `size` rows; 0: none */
} bench_batch;

/* One cache element type of --kv-types (bench_types.c): the same model opened with it, its
 * decode steps after the prompt and each --batch size, the types taking turns each repeat. */
typedef struct bench_type {
  kvc_kv_type type;
  int64_t cache_bytes_per_token;
  double decode_p50;                      /* ms, over every decode step of every repeat */
  double decode_floor;                    /* ms: the weights + the cache at the middle step */
  double tokens_per_s[BENCH_MAX_BATCHES]; /* per --batch size: median over repeats */
  double step_p50[BENCH_MAX_BATCHES];     /* ms, over every step of every repeat */
  double batch_floor[BENCH_MAX_BATCHES];  /* ms: the weights + every row's cache, mean position */
  /* the least and the most of the speed-ups over the first type one repeat at a time (the
   * decode's: the ratio of the two repeats' median steps): how far the machine moved them */
  double decode_range[2], batch_range[BENCH_MAX_BATCHES][2];
} bench_type;

typedef struct bench_result {
  struct {
    char cpu[128];
    int cores;
    char ort_version[32];
    char provider[16];
    int threads; /* intra-op threads asked for; 0 = ONNX Runtime's default */
    char date[32];
  } machine;
  kvc_model_info model;
  double load_ms;                    /* kvc_model_open, the first one */
  int64_t resident_after_open_bytes; /* the process's resident set just after it */
  int32_t prompt_len, gen, repeats;
  int n_buckets;
  int32_t buckets[BENCH_MAX_BUCKETS]; /* decode positions reported on */
  double floor_at[BENCH_MAX_BUCKETS]; /* ms for ONNX Runtime to read the weights + cache at
                                       * that position once (kvc_model_floor), median */
  int n_strategies;
  bench_strategy s[BENCH_MAX_STRATEGIES];
  /* why a strategy the model supports was not measured ("" when all were) */
  char left_out[256];
  double first_vs_subsequent;      /* bound: warm prefill of the prompt / decode p50 */
  double cached_vs_uncached_last;  /* uncached / bound at the last position */
  double cached_vs_uncached_total; /* uncached / bound over the whole generation */
  double shared_vs_bound_last;     /* bound / shared at the last position; 0 without shared */
  /* How fast the attention reads the cache: from the first to the last bucket a `shared` step
   * reads cache_growth_bytes more; what that costs the step, and the floor, in GB/s, and the
   * ratio of the two growths (step / floor; 1 = read at the floor's speed). 0 without shared. */
  int64_t cache_growth_bytes;
  /* The attention alone (kvc_model_attention_ms) at the first and last bucket, for
   * GroupQueryAttention [0] and kvcache's operator [1], when the model's graph writes its
   * cache in place on the CPU; attention_cache_bytes: the cache one such run reads at the last
   * bucket, [0] GroupQueryAttention's (float32), [1] kvcache's (the model's kv_type). 0 when
   * not measured. */
  double attention_ms[2][2];
  int64_t attention_cache_bytes[2];
  double cache_step_growth_ms, cache_floor_growth_ms;
  double cache_read_gb_s, floor_cache_read_gb_s, cache_growth_vs_floor;
  int n_batches;
  bench_batch batch[BENCH_MAX_BATCHES];
  int32_t batch_first, batch_steps; /* positions first .. first + steps - 1 (mean in the middle) */
  kvc_kv_mode batch_mode;
  /* a state file of the longest sequence (prompt + gen tokens): its size, and the median save
   * (through fsync) and load rates */
  int64_t state_bytes;
  double state_save_mb_s, state_load_mb_s;
  int n_types; /* --kv-types: measured instead of the strategies; r->model is the first's */
  bench_type types[BENCH_MAX_TYPES];
} bench_result;

/* r->machine, once r->model is known. */
void bench_machine(bench_result *r, const kvc_model_params *mp);

/* --kv-types: opens the model at dir once per type of r->types, measures them side by side,
 * prints their table (unless quiet) and writes json (when not NULL). 0, 1 after printing why,
 * or KVC_EXIT_USAGE for a prompt and generation longer than the model's context. */
int bench_types(const char *dir, const kvc_model_params *mp, bench_result *r, uint64_t seed,
                const char *json, int quiet);

/* Measure saving and loading a state file of a prompt + gen token sequence; 0, or 1 after
 * printing why. */
int bench_state(kvc_model *model, bench_result *r, const int32_t *tokens);

/* Measure r->batch[0 .. n_batches) (sizes set) on `model`; 0, or 1 after printing why. */
int bench_batches(kvc_model *model, bench_result *r, int repeats, uint64_t seed);

/* The seeded prompt (prompt_len tokens) followed by its greedy continuation on `model` (gen
 * tokens): what every strategy and cache type decodes, so each step's work is the same. NULL
 * after printing why not; the caller frees it. */
int32_t *bench_greedy_tokens(kvc_model *model, const bench_result *r, uint64_t seed);

/* The positions every batch size decodes (r->batch_first, r->batch_steps), from the model's
 * max length, and their prompts: `most` rows of batch_first random tokens (freed by the
 * caller), or NULL when out of memory. */
int32_t *bench_batch_plan(bench_result *r, int32_t most, uint64_t seed);

/* One size B, one repeat: B sequences prefilled with prompts' rows, then r->batch_steps timed
 * steps of all of them (each step's ms into step_ms). 0, or 1 after printing why. */
int bench_batch_size(kvc_model *model, const bench_result *r, int32_t B, const int32_t *prompts,
                     double *step_ms);

/* An output file: created (NULL after printing why not), then closed (1 after printing why
 * it could not be written). */
FILE *bench_create(const char *path);
int bench_finish(FILE *f, const char *path);

/* The machine line of the table and the report (no newline before it). */
void bench_machine_line(const bench_result *r, FILE *out);

/* The JSON outputs' common parts: a root object holding "machine"; a kernel's name, or null
 * when "" (the graph has no such kernel); root printed into path and deleted (0, or 1 after
 * printing why not). */
cJSON *bench_json_root(const bench_result *r);
void bench_json_name(cJSON *o, const char *key, const char *name);
int bench_json_write(cJSON *root, const char *path);

/* The weight bytes a decode step streams: the model's files less the tables it reads one row
 * of (kvc_model_info.lookup_bytes). */
static inline int64_t bench_step_weight_bytes(const bench_result *r) {
  return r->model.param_bytes - r->model.lookup_bytes;
}

/* Index of a strategy by name, or -1. */
int bench_find(const bench_result *r, const char *name);

/* 0 when `path` (given as option `opt`) can be written: its directory exists and is
 * writable, and the path is not a directory or read-only. Otherwise prints why and returns 1:
 * run before measuring, so that a bad path does not cost a whole benchmark. */
int bench_check_output(const char *opt, const char *path);

/* Writers; each returns 0 or prints why it failed to stderr and returns 1. */
void bench_print_table(const bench_result *r, FILE *out);
int bench_write_json(const bench_result *r, const char *path);
int bench_write_csv(const bench_result *r, const char *path);
int bench_write_plot(const bench_result *r, const char *path);
int bench_write_report(const bench_result *r, const char *path, const char *plot_path);

#endif
