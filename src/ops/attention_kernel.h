/* attention_kernel.h: the inner loop of kvcache's attention operator (attention_op.c): one
 * group of query heads against the keys and values of the one K/V head they share.
 *
 *   out[g] = softmax(q[g] . k[0..n)^T) v[0..n)        for g < group
 *
 * q holds `group` rows of head_dim floats, already scaled (1/sqrt(head_dim)) and rotated;
 * k and v hold n rows of head_dim values each (one slot's K/V head in the cache) of the cache's
 * kind: floats; IEEE half floats (a float16 cache); or 8-bit codes and a scale (an 8-bit cache,
 * q8.h). The rows of a narrow kind are widened to floats (exactly for halves; by one float
 * multiplication a value for codes, the same on every path: a block at a time on the portable
 * path, else as the scores and sums load them) before the float arithmetic, so such a cache gives
 * the bits a float cache holding the widened values would;
 * out receives `group` rows of head_dim floats. The softmax is online: keys are taken in
 * blocks of KVC_ATTN_BLOCK, the running maximum and sum rescale what was accumulated, so the
 * cache is read once, in order, and nothing grows with n. Float accumulation throughout.
 *
 * One implementation per instruction set, each in its own file (compiled with that set's
 * flags), chosen at run time from the CPU's features (kvc__attend_pick). */
#ifndef KVC_ATTENTION_KERNEL_H
#define KVC_ATTENTION_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "q8.h"
#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

enum {
  KVC_ATTN_BLOCK = 32,           /* keys per block of the online softmax */
  KVC_ATTN_MAX_GROUP = 16,       /* query heads per call (the operator splits larger groups) */
  KVC_ATTN_NARROW_MAX_DIM = 256, /* head sizes of a float16 or 8-bit cache (a block widened on
                                  * the stack by the portable path and AVX-512's leftover heads) */
};

/* What one cache value is. */
typedef enum kvc__cache_kind {
  KVC_CACHE_F32 = 0,
  KVC_CACHE_F16 = 1, /* IEEE binary16 (half.h) */
  KVC_CACHE_Q8 = 2,  /* a row of 8-bit codes and its float scale (q8.h) */
} kvc__cache_kind;

/* Bytes of one cache row (a position of a K/V head) of d values. */
static inline size_t kvc__cache_row_bytes(kvc__cache_kind kind, int d) {
  return kind == KVC_CACHE_F32   ? (size_t)d * 4
         : kind == KVC_CACHE_F16 ? (size_t)d * 2
                                 : kvc__q8_row_bytes(d);
}

/* The cache tensors' last dimension for rows of d values: d, or an 8-bit row's bytes (its
 * codes and scale are int8 elements). */
static inline int64_t kvc__cache_dim(kvc__cache_kind kind, int d) {
  return kind == KVC_CACHE_Q8 ? (int64_t)kvc__q8_row_bytes(d) : d;
}

typedef void kvc__attend_fn(const float *q, int group, int head_dim, const void *k, const void *v,
                            kvc__cache_kind kind, int64_t n, float *out);

typedef enum kvc__attend_path {
  KVC_ATTEND_PORTABLE = 0,
  KVC_ATTEND_AVX2 = 1,   /* AVX2 + FMA, head_dim a multiple of 8 */
  KVC_ATTEND_AVX512 = 2, /* AVX-512F, head_dim a multiple of 16 */
} kvc__attend_path;

kvc__attend_fn kvc__attend_portable;
kvc__attend_fn kvc__attend_avx2;   /* x86-64 builds only */
kvc__attend_fn kvc__attend_avx512; /* x86-64 builds only */

/* Where a kernel asks for the cache ahead of its reading: the rows KVC_ATTN_AHEAD_BYTES after
 * the block at j0 (the rows of one K/V head are contiguous). In a decode step the cache comes
 * from memory (the weights streamed since the last step evicted it). Asking for the next
 * block at once, 128 or 256 lines, waited on the core's few outstanding misses, and the
 * hardware prefetchers alone stop at every 4 KB page (a block of a float16 cache): the
 * kernels ask for one row of keys and one of values at a time, 8 KB ahead, so the requests
 * are spread over the block's arithmetic (PERFORMANCE #67), into L2, not L1 (#72): AVX-512 a
 * share with each head's scores and the rest with the sums (#72), AVX2 all with its first
 * heads' scores (#81). A prefetch changes no value: the bits
 * stay those of every other path. */
enum { KVC_ATTN_AHEAD_BYTES = 8192 };

typedef struct kvc__attend_ahead {
  const char *k, *v; /* the first row asked for (NULL: none) */
  size_t row;        /* bytes of a row */
  int64_t rows;      /* rows there are from k and v (0: none) */
} kvc__attend_ahead;

static inline kvc__attend_ahead kvc__attend_ahead_of(const void *k, const void *v,
                                                     kvc__cache_kind kind, int d, int64_t j0,
                                                     int64_t n) {
  const size_t row = kvc__cache_row_bytes(kind, d);
  const int64_t skip = KVC_ATTN_AHEAD_BYTES / row > 0 ? (int64_t)(KVC_ATTN_AHEAD_BYTES / row) : 1;
  const int64_t from = j0 + skip;
  kvc__attend_ahead a = {NULL, NULL, row, 0};
  if (from < n) { /* else nothing ahead (and no pointer past the rows) */
    a.k = (const char *)k + (size_t)from * row;
    a.v = (const char *)v + (size_t)from * row;
    a.rows = n - from;
  }
  return a;
}

/* Asks for row j of a (keys and values), when there is one, into L2 (#72). */
static inline void kvc__attend_prefetch_row(const kvc__attend_ahead *a, int j) {
#if defined(__x86_64__) || defined(_M_X64)
  if (j >= a->rows)
    return;
  for (size_t o = 0; o < a->row; o += 64) {
    _mm_prefetch(a->k + (size_t)j * a->row + o, _MM_HINT_T2);
    _mm_prefetch(a->v + (size_t)j * a->row + o, _MM_HINT_T2);
  }
#else
  (void)a, (void)j;
#endif
}

/* Asks for head g's share (rows g * share onward, `share` of them) of the first `rows` rows of
 * a: a block's requests spread over its heads (#72). */
static inline void kvc__attend_prefetch_share(const kvc__attend_ahead *a, int g, int share,
                                              int rows) {
  for (int j = g * share; j < (g + 1) * share && j < rows; j++)
    kvc__attend_prefetch_row(a, j);
}

/* The fastest path this CPU runs, or the one named by the environment variable
 * KVCACHE_ATTENTION ("portable", "avx2", "avx512"). Returns 0; or -1, with a message in
 * `why`, when the variable names an unknown path or one this CPU (or build) lacks. */
int kvc__attend_pick(kvc__attend_path *path, char *why, size_t cap);

/* The path that runs for head_dim when `path` is chosen: AVX-512 needs a multiple of 16 (a
 * multiple of 8 runs AVX2), AVX2 a multiple of 8; anything else runs portable. */
kvc__attend_path kvc__attend_effective(kvc__attend_path path, int head_dim);

/* The implementation of kvc__attend_effective(path, head_dim). */
kvc__attend_fn *kvc__attend_for(kvc__attend_path path, int head_dim);

/* "portable", "avx2", "avx512". */
const char *kvc__attend_path_name(kvc__attend_path path);

#endif
