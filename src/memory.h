/* memory.h: how much memory this process may count on, for refusing a model or a cache that
 * cannot fit before it is touched (touched, it would not fail: it would be killed, or swap). */
#ifndef KVC_MEMORY_H
#define KVC_MEMORY_H

/* Bytes: the machine's physical memory, lowered by the process's cgroup v2 limit
 * (/sys/fs/cgroup/memory.max) where one is set, or the environment variable
 * KVCACHE_MEMORY_LIMIT (bytes, a positive integer) where given: a budget, and what the tests
 * use to see a refusal. 0 when unknown (then nothing is refused). */
double kvc__memory_bytes(void);

#endif
