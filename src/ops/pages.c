/* pages.c: host memory on transparent huge pages (see pages.h). */
#define _DEFAULT_SOURCE /* mmap's MAP_ANONYMOUS, madvise */
#include "pages.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

/* Under AddressSanitizer the buffers are its own allocations, and a region's space between
 * buffers is poisoned: a read or write past one is reported, as it would be for malloc'd
 * memory. A mapping of our own would hide it. */
#if defined(__SANITIZE_ADDRESS__)
#define KVC_PAGES_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KVC_PAGES_ASAN 1
#endif
#endif
#ifndef KVC_PAGES_ASAN
#define KVC_PAGES_ASAN 0
#endif

#if defined(__linux__) && defined(MADV_HUGEPAGE) && !KVC_PAGES_ASAN
#define KVC_PAGES_MAP 1 /* mapped and hinted here; otherwise posix_memalign */
#else
#define KVC_PAGES_MAP 0
#endif

#if KVC_PAGES_ASAN
#include <sanitizer/asan_interface.h>
enum { GAP = 64 }; /* poisoned bytes after each buffer of a region */
#else
#define ASAN_POISON_MEMORY_REGION(p, n)   ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
enum { GAP = 0 };
#endif

static size_t round_up(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

#if KVC_PAGES_MAP
/* What a mapping of `bytes` spans: whole 4 KB pages (the tail past the last whole huge page
 * is not rounded up to one: no memory is held that the caller did not ask for). */
static size_t mapped(size_t bytes) {
  return round_up(bytes, 4096);
}
#endif

void *kvc__pages_alloc(size_t bytes) {
  if (bytes == 0 || bytes > SIZE_MAX / 2)
    return NULL;
#if KVC_PAGES_MAP
  const size_t len = mapped(bytes);
  /* a huge page more than asked for, then the ends trimmed to the boundary inside it */
  char *raw =
      mmap(NULL, len + KVC_PAGES_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED)
    return NULL;
  char *p = (char *)(((uintptr_t)raw + KVC_PAGES_HUGE - 1) & ~(uintptr_t)(KVC_PAGES_HUGE - 1));
  if (p > raw)
    munmap(raw, (size_t)(p - raw));
  const size_t tail = (size_t)(raw + len + KVC_PAGES_HUGE - (p + len));
  if (tail)
    munmap(p + len, tail);
  (void)madvise(p, len, MADV_HUGEPAGE); /* a hint: without it, ordinary pages */
  return p;                             /* an anonymous mapping is zeroed */
#else
  void *p = NULL; /* exactly `bytes`: under ASan, the byte after the last is reported */
  if (posix_memalign(&p, KVC_PAGES_HUGE, bytes) != 0)
    return NULL;
  memset(p, 0, bytes);
  return p;
#endif
}

void kvc__pages_free(void *p, size_t bytes) {
  if (!p)
    return;
#if KVC_PAGES_MAP
  munmap(p, mapped(bytes));
#else
  (void)bytes;
  free(p);
#endif
}

/* A region of kvc__pages_take: buffers are carved from its start in turn and never reused,
 * so every one is zeroed memory; it goes when the last is given back. */
typedef struct region {
  char *base;
  size_t bytes, used;
  int live; /* buffers taken and not given back */
  struct region *next;
} region;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static region *regions; /* all of them */
static region *current; /* the one small buffers are carved from (NULL: none yet) */

static region *add_region(size_t bytes) {
  region *r = malloc(sizeof *r);
  char *base = r ? kvc__pages_alloc(bytes) : NULL;
  if (!base) {
    free(r);
    return NULL;
  }
  ASAN_POISON_MEMORY_REGION(base, bytes);
  *r = (region){.base = base, .bytes = bytes, .next = regions};
  regions = r;
  return r;
}

void *kvc__pages_take(size_t bytes) {
  if (bytes == 0 || bytes > SIZE_MAX / 2)
    return NULL;
  const size_t need = round_up(bytes, 64) + GAP;
  pthread_mutex_lock(&lock);
  region *r = current;
  if (need > KVC_PAGES_REGION / 2) /* its own region: the current one keeps its room */
    r = add_region(round_up(need, KVC_PAGES_HUGE));
  else if (!r || r->bytes - r->used < need) { /* a fresh one (the old one's rest unused) */
    r = add_region(KVC_PAGES_REGION);
    current = r ? r : current;
  }
  char *p = NULL;
  if (r && r->bytes - r->used >= need) {
    p = r->base + r->used;
    r->used += need;
    r->live++;
    ASAN_UNPOISON_MEMORY_REGION(p, bytes);
  }
  pthread_mutex_unlock(&lock);
  return p;
}

void kvc__pages_give(void *p) {
  if (!p)
    return;
  pthread_mutex_lock(&lock);
  region **at = &regions;
  while (*at && !((char *)p >= (*at)->base && (char *)p < (*at)->base + (*at)->bytes))
    at = &(*at)->next;
  region *r = *at;
  if (r && --r->live == 0) {
    *at = r->next;
    if (current == r)
      current = NULL;
    ASAN_UNPOISON_MEMORY_REGION(r->base, r->bytes);
    kvc__pages_free(r->base, r->bytes);
    free(r);
  }
  pthread_mutex_unlock(&lock);
}

int kvc__pages_regions(void) {
  pthread_mutex_lock(&lock);
  int n = 0;
  for (const region *r = regions; r; r = r->next)
    n++;
  pthread_mutex_unlock(&lock);
  return n;
}

int kvc__pages_hinted(void) {
  return KVC_PAGES_MAP;
}
