/* Unit tests for src/error.c: per-thread messages, wrapping, status names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <threads.h>

#include <cmocka.h>

#include "error.h"

static void fail_records_message_and_returns_status(void **state) {
  (void)state;
  assert_int_equal(kvc__fail(KVC_ERR_IO, "cannot open %s (%d)", "x.onnx", 2), KVC_ERR_IO);
  assert_string_equal(kvc_last_error(), "cannot open x.onnx (2)");
}

static void wrap_prefixes_context(void **state) {
  (void)state;
  kvc__fail(KVC_ERR_MODEL, "no logits");
  assert_int_equal(kvc__wrap(KVC_ERR_MODEL, "model %s", "m"), KVC_ERR_MODEL);
  assert_string_equal(kvc_last_error(), "model m: no logits");
}

static void long_message_is_truncated_not_overflowed(void **state) {
  (void)state;
  char big[4000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  kvc__fail(KVC_ERR_IO, "%s", big);
  size_t n = strlen(kvc_last_error());
  assert_true(n > 0 && n < sizeof big - 1);
  kvc__wrap(KVC_ERR_IO, "%s", big);
  assert_true(strlen(kvc_last_error()) == n);
}

/* A message too long for the buffer keeps its start and its end: a long path first must not
 * push out the reason after it. */
static void long_message_keeps_both_ends(void **state) {
  (void)state;
  char path[4201];
  memset(path, 'p', sizeof path - 1);
  path[0] = '/';
  path[sizeof path - 1] = '\0';
  kvc__fail(KVC_ERR_INVALID_ARG, "state path %s is too long", path);
  const char *m = kvc_last_error();
  const size_t n = strlen(m);
  assert_true(n < 1024);
  assert_memory_equal(m, "state path /ppp", 15);
  assert_string_equal(m + n - 12, " is too long");
  assert_non_null(strstr(m, " ... "));
  kvc__fail(KVC_ERR_IO, "short reason");
  kvc__wrap(KVC_ERR_IO, "opening %s", path);
  m = kvc_last_error();
  assert_string_equal(m + strlen(m) - 14, ": short reason");
}

static int other_thread(void *arg) {
  (void)arg;
  kvc__fail(KVC_ERR_RUNTIME, "from the other thread");
  return strcmp(kvc_last_error(), "from the other thread") == 0;
}

static void messages_are_per_thread(void **state) {
  (void)state;
  kvc__fail(KVC_ERR_IO, "main thread");
  thrd_t t;
  int ok = 0;
  assert_int_equal(thrd_create(&t, other_thread, NULL), thrd_success);
  assert_int_equal(thrd_join(t, &ok), thrd_success);
  assert_int_equal(ok, 1);
  assert_string_equal(kvc_last_error(), "main thread");
}

static void status_names(void **state) {
  (void)state;
  assert_string_equal(kvc_status_name(KVC_OK), "KVC_OK");
  assert_string_equal(kvc_status_name(KVC_ERR_CACHE_FULL), "KVC_ERR_CACHE_FULL");
  assert_string_equal(kvc_status_name((kvc_status)99), "unknown status");
  assert_string_equal(kvc_version(), KVCACHE_VERSION);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fail_records_message_and_returns_status),
      cmocka_unit_test(wrap_prefixes_context),
      cmocka_unit_test(long_message_is_truncated_not_overflowed),
      cmocka_unit_test(long_message_keeps_both_ends),
      cmocka_unit_test(messages_are_per_thread),
      cmocka_unit_test(status_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
