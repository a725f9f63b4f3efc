/* pages.h: host memory for what a decode step streams from DRAM, the packed weights
 * (matmul_kernel.c) and the KV cache (cache.c), on 2 MB transparent huge pages.
 *
 * A step reads hundreds of MB once each, in order. On 4 KB pages that is a TLB miss and a
 * page walk every 4 KB, and the hardware prefetchers stop at every 4 KB boundary; on 2 MB
 * pages, neither (PERFORMANCE #73: the 243 M q4 model's batch-8 step 1.05-1.11x, its decode 1.09x).
 * Linux backs such memory with huge pages when asked (`madvise(MADV_HUGEPAGE)`, which THP's
 * default "madvise" setting requires) and when it has them free; otherwise, and off Linux,
 * these are ordinary pages: a hint that changes no value and no size. */
#ifndef KVC_PAGES_H
#define KVC_PAGES_H

#include <stddef.h>

enum {
  KVC_PAGES_HUGE = 2 << 20,    /* one huge page: where buffers start, what the hint covers */
  KVC_PAGES_REGION = 16 << 20, /* a shared region's size (kvc__pages_take) */
};

/* `bytes` of zeroed memory starting on a huge-page boundary, or NULL when out of memory (or
 * bytes is 0). The caller owns it; kvc__pages_free with the same `bytes` releases it. */
void *kvc__pages_alloc(size_t bytes);
void kvc__pages_free(void *p, size_t bytes);

/* A buffer of `bytes` (zeroed, 64-byte aligned) carved from a region of huge pages shared
 * with others, so that buffers smaller than a huge page still sit on one: a weight matrix of
 * the 243 M model is 0.1-1.4 MB. NULL when out of memory. A region is released when the last
 * buffer taken from it is given back (kvc__pages_give). Thread-safe. */
void *kvc__pages_take(size_t bytes);
void kvc__pages_give(void *p);

/* 1 where buffers are mapped here and hinted (Linux); 0 where they come from posix_memalign:
 * elsewhere, and in AddressSanitizer builds, which check them as they check malloc'd memory. */
int kvc__pages_hinted(void);

/* Regions kvc__pages_take holds now (every buffer given back: 0). */
int kvc__pages_regions(void);

#endif
