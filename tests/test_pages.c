/* Tests for src/ops/pages.c: buffers on huge-page boundaries, zeroed, hinted; buffers carved
 * from shared regions that go with their last buffer, from several threads. */
#define _DEFAULT_SOURCE /* mmap, madvise */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sys/mman.h>

#include "pages.h"

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif
#ifdef ASAN
#include <sanitizer/asan_interface.h>
#endif

static int all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i])
      return 0;
  return 1;
}

static void alloc_starts_on_a_huge_page_zeroed(void **state) {
  (void)state;
  const size_t sizes[] = {1, 4096, KVC_PAGES_HUGE, 3 * (size_t)KVC_PAGES_HUGE + 5};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    unsigned char *p = kvc__pages_alloc(sizes[i]);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % KVC_PAGES_HUGE, 0);
    assert_true(all_zero(p, sizes[i]));
    memset(p, 0xab, sizes[i]); /* all of it writable */
    assert_int_equal(p[sizes[i] - 1], 0xab);
    kvc__pages_free(p, sizes[i]);
  }
  assert_null(kvc__pages_alloc(0));
  kvc__pages_free(NULL, 1); /* nothing */
}

#if defined(__linux__) && defined(MADV_HUGEPAGE)
/* The VmFlags line of the mapping holding p in /proc/self/smaps ("" when none). */
static void vm_flags(const void *p, char *out, size_t cap) {
  FILE *f = fopen("/proc/self/smaps", "r");
  assert_non_null(f);
  char line[512];
  int inside = 0;
  out[0] = '\0';
  while (fgets(line, sizeof line, f)) {
    unsigned long from, to;
    if (sscanf(line, "%lx-%lx ", &from, &to) == 2 && strchr(line, '-') < strchr(line, ' '))
      inside = (uintptr_t)p >= from && (uintptr_t)p < to;
    else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
      const size_t n = strlen(line + 8) < cap ? strlen(line + 8) : cap - 1;
      memcpy(out, line + 8, n);
      out[n] = '\0';
      break;
    }
  }
  fclose(f);
}

/* Whether the mapping holding p carries the hint: flag "hg" (VM_HUGEPAGE) in its VmFlags. */
static int hinted(const void *p) {
  char flags[512];
  vm_flags(p, flags, sizeof flags);
  assert_true(flags[0] != '\0');
  return strstr(flags, " hg") != NULL;
}

/* Where the kernel takes the hint (THP built in, and a real kernel: qemu-user accepts the call
 * and drops it) and this build gives it (not under AddressSanitizer), the buffer's mapping
 * carries it, whether or not huge pages are free to back it; elsewhere it does not. */
static void alloc_asks_for_huge_pages(void **state) {
  (void)state;
  void *probe =
      mmap(NULL, KVC_PAGES_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(probe != MAP_FAILED);
  const int kernel_takes_it = madvise(probe, KVC_PAGES_HUGE, MADV_HUGEPAGE) == 0 && hinted(probe);
  munmap(probe, KVC_PAGES_HUGE);
  const size_t bytes = 4 * (size_t)KVC_PAGES_HUGE;
  void *p = kvc__pages_alloc(bytes);
  assert_non_null(p);
  assert_int_equal(hinted(p), kernel_takes_it && kvc__pages_hinted());
  kvc__pages_free(p, bytes);
}
#endif

static void takes_share_regions_that_go_with_their_last_buffer(void **state) {
  (void)state;
  assert_int_equal(kvc__pages_regions(), 0);
  enum { SMALL = 100 * 1000, MEDIUM = 3 << 20 };
  unsigned char *a = kvc__pages_take(SMALL), *b = kvc__pages_take(SMALL), *c = kvc__pages_take(1);
  assert_int_equal(kvc__pages_regions(), 1);
  assert_int_equal((uintptr_t)a % KVC_PAGES_HUGE, 0); /* a fresh region's first buffer */
  assert_int_equal((uintptr_t)b % 64, 0);
  assert_int_equal((uintptr_t)c % 64, 0);
  assert_true(b >= a + SMALL && c >= b + SMALL); /* apart */
  assert_true(all_zero(a, SMALL) && all_zero(b, SMALL) && all_zero(c, 1));
  memset(a, 1, SMALL), memset(b, 2, SMALL), c[0] = 3;
#ifdef ASAN /* what lies between buffers is poisoned: a step past one is reported */
  assert_false(__asan_address_is_poisoned(a + SMALL - 1));
  assert_true(__asan_address_is_poisoned(a + SMALL));
  assert_true(__asan_address_is_poisoned(c + 1));
#endif
  /* five 3 MB buffers fill the rest of the 16 MB region but one; the sixth opens a second */
  unsigned char *m[6];
  for (int i = 0; i < 6; i++) {
    m[i] = kvc__pages_take(MEDIUM);
    assert_non_null(m[i]);
    assert_true(all_zero(m[i], MEDIUM));
    memset(m[i], 4 + i, MEDIUM);
  }
  assert_int_equal(kvc__pages_regions(), 2);
  /* larger than half a region: one of its own, and the second region stays the current one */
  unsigned char *big = kvc__pages_take(9 << 20), *after = kvc__pages_take(SMALL);
  assert_int_equal((uintptr_t)big % KVC_PAGES_HUGE, 0);
  assert_true(after > m[5] && after < m[5] + (16 << 20));
  assert_int_equal(kvc__pages_regions(), 3);
  assert_true(all_zero(after, SMALL));
  assert_int_equal(a[SMALL - 1], 1); /* nothing written over */
  assert_int_equal(b[0], 2);
  assert_int_equal(c[0], 3);
  kvc__pages_give(big);
  assert_int_equal(kvc__pages_regions(), 2);
  for (int i = 0; i < 5; i++)
    kvc__pages_give(m[i]);
  kvc__pages_give(b), kvc__pages_give(c);
  assert_int_equal(kvc__pages_regions(), 2); /* a still in the first */
  kvc__pages_give(a);
  assert_int_equal(kvc__pages_regions(), 1);
  kvc__pages_give(after), kvc__pages_give(m[5]);
  assert_int_equal(kvc__pages_regions(), 0);
  kvc__pages_give(NULL); /* nothing */
  assert_null(kvc__pages_take(0));
}

enum { ROUNDS = 2000, HELD = 16 };

static void *take_and_give(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  unsigned char *held[HELD] = {NULL};
  size_t size[HELD] = {0};
  unsigned char mark[HELD] = {0};
  for (int r = 0; r < ROUNDS; r++) {
    const int i = r % HELD;
    if (held[i]) {
      for (size_t j = 0; j < size[i]; j += 97)
        if (held[i][j] != mark[i])
          return "a buffer was overwritten";
      kvc__pages_give(held[i]);
    }
    seed = seed * 1103515245u + 12345u;
    size[i] = 1 + (seed >> 8) % 200000;
    held[i] = kvc__pages_take(size[i]);
    if (!held[i] || !all_zero(held[i], size[i]))
      return "a buffer was not zeroed memory";
    mark[i] = (unsigned char)(1 + (seed >> 4) % 255);
    memset(held[i], mark[i], size[i]);
  }
  for (int i = 0; i < HELD; i++)
    kvc__pages_give(held[i]);
  return NULL;
}

static void threads_take_and_give_together(void **state) {
  (void)state;
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&t[i], NULL, take_and_give, (void *)(uintptr_t)(i + 1)), 0);
  for (int i = 0; i < 2; i++) {
    void *why = NULL;
    assert_int_equal(pthread_join(t[i], &why), 0);
    if (why)
      fail_msg("%s", (const char *)why);
  }
  assert_int_equal(kvc__pages_regions(), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(alloc_starts_on_a_huge_page_zeroed),
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    cmocka_unit_test(alloc_asks_for_huge_pages),
#endif
    cmocka_unit_test(takes_share_regions_that_go_with_their_last_buffer),
    cmocka_unit_test(threads_take_and_give_together),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
