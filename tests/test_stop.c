/* Stop strings (src/stop.c), by their definition: generation stops after the first piece (a
 * token's text) with which the text holds a stop string, and what is shown is the text before
 * the earliest-beginning stop string it then holds; all of it when none comes. Nothing of a
 * match is ever shown, whatever the pieces. Checked against that definition on random texts
 * cut at random places, and on named cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kvcache.h"

/* The definition: the length of text before the earliest match, or len when none. */
static size_t first_match(const char *text, size_t len, const char *const *stops, int n) {
  size_t first = len;
  for (int i = 0; i < n; i++) {
    size_t k = strlen(stops[i]);
    for (size_t at = 0; at + k <= len && at < first; at++)
      if (!memcmp(text + at, stops[i], k)) {
        first = at;
        break;
      }
  }
  return first;
}

/* Feed text in pieces cut at cuts[0..n_cuts) (ascending); the shown text into shown. Returns
 * whether a stop was reported; checks that nothing shown ever passes the match. */
static int feed(kvc_stop *s, const char *text, size_t len, const size_t *cuts, int n_cuts,
                char *shown, size_t *shown_len) {
  size_t at = 0;
  int stopped = 0;
  *shown_len = 0;
  kvc_stop_reset(s);
  for (int c = 0; c <= n_cuts; c++) {
    size_t end = c < n_cuts ? cuts[c] : len;
    const char *out;
    size_t out_len;
    int now;
    assert_int_equal(kvc_stop_push(s, text + at, end - at, &out, &out_len, &now), KVC_OK);
    memcpy(shown + *shown_len, out, out_len);
    *shown_len += out_len;
    if (stopped)
      assert_int_equal(out_len, 0); /* nothing after a match */
    stopped |= now;
    at = end;
  }
  const char *rest;
  size_t rest_len;
  assert_int_equal(kvc_stop_flush(s, &rest, &rest_len), KVC_OK);
  if (stopped)
    assert_int_equal(rest_len, 0);
  memcpy(shown + *shown_len, rest, rest_len);
  *shown_len += rest_len;
  return stopped;
}

static void random_texts_in_random_pieces(void **state) {
  (void)state;
  const char *const stops[] = {"</s>", "abab", "b\xc3\xa9", "\n\nUser:", "ba"};
  const char *const alphabet[] = {"a", "b", "</", "s>", "\xc3\xa9", "\n", "User:", " ", "<"};
  kvc_stop *s = NULL;
  uint64_t seed = 12345;
  int matched = 0;
  for (int n_stops = 1; n_stops <= 5; n_stops++) {
    assert_int_equal(kvc_stop_new(stops, n_stops, &s), KVC_OK);
    for (int trial = 0; trial < 4000; trial++) {
      char text[256], shown[256];
      size_t len = 0, cuts[64];
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      int parts = (int)(seed >> 60) + 1;
      for (int p = 0; p < parts * 2; p++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const char *piece = alphabet[(seed >> 33) % 9];
        memcpy(text + len, piece, strlen(piece));
        len += strlen(piece);
      }
      int n_cuts = 0; /* cut between characters, never inside é */
      for (size_t i = 1; i < len; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        if ((seed >> 62) == 0 && ((unsigned char)text[i] & 0xC0) != 0x80)
          cuts[n_cuts++] = i;
      }
      size_t shown_len, want = len;
      for (int c = 0; c <= n_cuts && want == len; c++) { /* the first piece that completes one */
        size_t end = c < n_cuts ? cuts[c] : len, k = first_match(text, end, stops, n_stops);
        want = k < end ? k : len;
      }
      int stopped = feed(s, text, len, cuts, n_cuts, shown, &shown_len);
      assert_int_equal(stopped, want < len);
      if (shown_len != want || memcmp(shown, text, want))
        fail_msg("%d stops, '%.*s' in %d pieces: shown '%.*s', expected '%.*s'", n_stops, (int)len,
                 text, n_cuts + 1, (int)shown_len, shown, (int)want, text);
      matched += stopped;
    }
    kvc_stop_free(s);
  }
  assert_true(matched > 1000);
}

static void named_cases(void **state) {
  (void)state;
  kvc_stop *s = NULL;
  const char *const stops[] = {"<|", "<|end|>", "STOP"};
  assert_int_equal(kvc_stop_new(stops, 3, &s), KVC_OK);
  char shown[128];
  size_t len;
  /* split over three pieces; the shorter stop that begins first wins */
  const char t1[] = "hello <|end|> more";
  size_t c1[] = {7, 9};
  assert_true(feed(s, t1, strlen(t1), c1, 2, shown, &len));
  assert_int_equal(len, 6);
  assert_memory_equal(shown, "hello ", 6);
  /* a partial match at the end is held, then given back when the text ends */
  const char t2[] = "almost STO";
  assert_false(feed(s, t2, strlen(t2), NULL, 0, shown, &len));
  assert_int_equal(len, strlen(t2));
  /* a held "<" that turns out not to begin a stop is shown with what follows */
  const char *out;
  size_t out_len;
  int stopped;
  kvc_stop_reset(s);
  assert_int_equal(kvc_stop_push(s, "a<", 2, &out, &out_len, &stopped), KVC_OK);
  assert_int_equal(out_len, 1);
  assert_int_equal(kvc_stop_push(s, "b", 1, &out, &out_len, &stopped), KVC_OK);
  assert_int_equal(out_len, 2);
  assert_memory_equal(out, "<b", 2);
  kvc_stop_free(s);
  /* no stop strings: everything passes at once */
  assert_int_equal(kvc_stop_new(NULL, 0, &s), KVC_OK);
  assert_int_equal(kvc_stop_push(s, "x<|", 3, &out, &out_len, &stopped), KVC_OK);
  assert_int_equal(out_len, 3);
  kvc_stop_free(s);
  const char *const empty[] = {"a", ""};
  assert_int_equal(kvc_stop_new(empty, 2, &s), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "stop string 1 is empty"));
  kvc_stop_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(random_texts_in_random_pieces),
      cmocka_unit_test(named_cases),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
