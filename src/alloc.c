/* alloc.c: counted allocation. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>

static atomic_uint_fast64_t allocations;

void *kvc__malloc(size_t size) {
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
  return malloc(size);
}

void *kvc__calloc(size_t n, size_t size) {
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
  return calloc(n, size);
}

void *kvc__realloc(void *p, size_t size) {
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
  return realloc(p, size);
}

void kvc__free(void *p) {
  free(p);
}

uint64_t kvc__alloc_count(void) {
  return atomic_load_explicit(&allocations, memory_order_relaxed);
}
