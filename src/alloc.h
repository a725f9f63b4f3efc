/* alloc.h: the engine's heap allocations go through these, so that a test can count them
 * (the promise: no allocation by kvcache inside a decode step). */
#ifndef KVC_ALLOC_H
#define KVC_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *kvc__malloc(size_t size);
void *kvc__calloc(size_t n, size_t size);
void *kvc__realloc(void *p, size_t size);
void kvc__free(void *p);

/* Allocations made through kvc__malloc/kvc__calloc since the process started (all threads). */
uint64_t kvc__alloc_count(void);

#endif
