/* Tests for state files (src/state.c): a sequence saved in one KV mode (or another process)
 * and loaded in any other goes on exactly as if it had never stopped; a state moves between the GQA
 * and Concat graphs of the same weights; every damaged, foreign or oversized state is refused with
 * the sequence unchanged; a failed save leaves the old file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"

enum { V = 150, MAX = 160 };

typedef struct fixture {
  char gqa[256], concat[256], other[256];
  kvc_model *g, *c, *o;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  kvc_build_params p = kvc_build_default_params();
  p.layers = 2, p.heads = 2, p.head_dim = 16, p.vocab_size = V, p.max_seq_len = MAX;
  p.attention = KVC_ATTENTION_GQA;
  th_tmpdir(f->gqa, sizeof f->gqa, "state");
  assert_int_equal(kvc_build_model(f->gqa, &p), KVC_OK);
  p.attention = KVC_ATTENTION_CONCAT; /* the same weights, another graph */
  th_tmpdir(f->concat, sizeof f->concat, "state");
  assert_int_equal(kvc_build_model(f->concat, &p), KVC_OK);
  p.attention = KVC_ATTENTION_GQA, p.seed = 2; /* the same layout, other weights */
  th_tmpdir(f->other, sizeof f->other, "state");
  assert_int_equal(kvc_build_model(f->other, &p), KVC_OK);
  f->g = th_open_model(f->gqa), f->c = th_open_model(f->concat), f->o = th_open_model(f->other);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  kvc_model_free(f->g), kvc_model_free(f->c), kvc_model_free(f->o);
  th_rmdir(f->gqa), th_rmdir(f->concat), th_rmdir(f->other);
  free(f);
  return 0;
}

static const int32_t prompt[9] = {3, 1, 4, 1, 5, 9, 2, 6, 5};

/* A sequence in `mode` holding the prompt and `extra` greedy tokens (the same in every
 * process). */
static kvc_seq *decoded(kvc_model *m, kvc_kv_mode mode, int extra) {
  kvc_seq *q = th_new_seq(m, mode);
  th_append(q, prompt, 9);
  for (int i = 0; i < extra; i++) {
    int32_t t = th_argmax(kvc_seq_logits(q), V);
    th_append(q, &t, 1);
  }
  return q;
}

static void *saved(kvc_seq *q, size_t *size) {
  assert_int_equal(kvc_seq_save_buffer(q, NULL, 0, size), KVC_OK);
  void *buf = malloc(*size);
  size_t again = 0;
  assert_int_equal(kvc_seq_save_buffer(q, buf, *size, &again), KVC_OK);
  assert_int_equal(again, *size);
  return buf;
}

/* a and b take the same 12 tokens; their logits agree within `tolerance` at every step. */
static void go_on_steps(kvc_seq *a, kvc_seq *b, double tolerance, const char *what, int steps) {
  for (int i = 0; i < steps; i++) {
    int32_t t = th_argmax(kvc_seq_logits(a), V);
    th_append(a, &t, 1);
    th_append(b, &t, 1);
    const double d = th_max_diff(kvc_seq_logits(a), kvc_seq_logits(b), V);
    if (d > tolerance)
      fail_msg("%s: step %d after loading differs by %.3g", what, i, d);
  }
}

static void go_on_together(kvc_seq *a, kvc_seq *b, double tolerance, const char *what) {
  go_on_steps(a, b, tolerance, what, 12);
}

/* Saved in SHARED, BOUND or NAIVE, loaded into every mode (and from the GQA graph into the
 * Concat graph of the same weights): the same length and logits, then the same decoding. */
static void a_loaded_state_goes_on_as_before(void **state) {
  fixture *f = *state;
  const kvc_kv_mode from[] = {KVC_KV_SHARED, KVC_KV_BOUND, KVC_KV_NAIVE};
  const kvc_kv_mode to[] = {KVC_KV_SHARED, KVC_KV_BOUND, KVC_KV_NAIVE, KVC_KV_UNCACHED};
  for (size_t i = 0; i < 3; i++) {
    for (size_t k = 0; k < 4; k++) {
      kvc_seq *a = decoded(f->g, from[i], 10);
      size_t size;
      void *buf = saved(a, &size);
      kvc_seq *b = th_new_seq(f->g, to[k]);
      if (kvc_seq_load_buffer(b, buf, size) != KVC_OK)
        fail_msg("%s -> %s: %s", kvc_kv_mode_name(from[i]), kvc_kv_mode_name(to[k]),
                 kvc_last_error());
      assert_int_equal(kvc_seq_len(b), 19);
      assert_memory_equal(kvc_seq_logits(b), kvc_seq_logits(a), V * sizeof(float));
      char what[64];
      snprintf(what, sizeof what, "%s -> %s", kvc_kv_mode_name(from[i]), kvc_kv_mode_name(to[k]));
      go_on_together(a, b, 1e-4, what);
      kvc_seq_free(a);
      kvc_seq_free(b);
      free(buf);
    }
  }
  /* the GQA graph's state in the Concat graph of the same weights */
  kvc_seq *a = decoded(f->g, KVC_KV_SHARED, 10), *b = th_new_seq(f->c, KVC_KV_BOUND);
  size_t size;
  void *buf = saved(a, &size);
  assert_int_equal(kvc_seq_load_buffer(b, buf, size), KVC_OK);
  go_on_together(a, b, 1e-4, "gqa -> concat");
  free(buf);
  kvc_seq_free(a);
  kvc_seq_free(b);
}

/* Saved at a random length in one mode, loaded into a fresh sequence in each cached mode: the
 * next 100 steps' logits equal those of the sequence that never stopped within 1e-6. */
static void exact_for_100_steps_after_a_random_length(void **state) {
  fixture *f = *state;
  const kvc_kv_mode modes[] = {KVC_KV_SHARED, KVC_KV_BOUND, KVC_KV_NAIVE};
  uint64_t rng = 12345;
  for (size_t i = 0; i < 3; i++) {
    for (size_t k = 0; k < 3; k++) {
      rng = rng * 6364136223846793005ull + 1442695040888963407ull;
      const int extra = (int)(rng >> 59); /* 0..31 more tokens before saving */
      kvc_seq *a = decoded(f->g, modes[i], extra);
      size_t size;
      void *buf = saved(a, &size);
      kvc_seq *b = th_new_seq(f->g, modes[k]);
      assert_int_equal(kvc_seq_load_buffer(b, buf, size), KVC_OK);
      char what[80];
      snprintf(what, sizeof what, "%s at %d -> %s", kvc_kv_mode_name(modes[i]), 9 + extra,
               kvc_kv_mode_name(modes[k]));
      go_on_steps(a, b, 1e-6, what, 100);
      kvc_seq_free(a), kvc_seq_free(b);
      free(buf);
    }
  }
}

/* `test_state --save DIR FILE EXTRA`: the other process of the test below. It opens the model
 * itself, grows a SHARED sequence and saves it to FILE. */
static int save_in_this_process(const char *dir, const char *path, int extra) {
  kvc_model *m = NULL;
  if (kvc_model_open(dir, NULL, &m) != KVC_OK)
    return 1;
  kvc_seq *q = decoded(m, KVC_KV_SHARED, extra);
  const int rc = kvc_seq_save(q, path) != KVC_OK;
  kvc_seq_free(q);
  kvc_model_free(m);
  return rc;
}

/* Saved by another process (this binary run again with --save: its own model, session and
 * runtime), loaded here into a BOUND and a NAIVE sequence: the next 100 steps' logits equal
 * those of this process's own sequence of the same tokens within 1e-6. */
static void a_state_from_another_process(void **state) {
  fixture *f = *state;
  char dir[256], path[300], extra[16];
  th_tmpdir(dir, sizeof dir, "state-process");
  assert_int_equal(mkdir(dir, 0755), 0);
  snprintf(path, sizeof path, "%s/s.kvcstate", dir);
  snprintf(extra, sizeof extra, "%d", 23);
  fflush(NULL);
  const pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char *const args[] = {"test_state", "--save", f->gqa, path, extra, NULL};
    execv("/proc/self/exe", args);
    _exit(127);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  const kvc_kv_mode modes[] = {KVC_KV_BOUND, KVC_KV_NAIVE};
  for (int i = 0; i < 2; i++) {
    kvc_seq *a = decoded(f->g, KVC_KV_SHARED, 23), *b = th_new_seq(f->g, modes[i]);
    assert_int_equal(kvc_seq_load(b, path), KVC_OK);
    assert_int_equal(kvc_seq_len(b), 9 + 23);
    assert_true(th_max_diff(kvc_seq_logits(a), kvc_seq_logits(b), V) <= 1e-6);
    go_on_steps(a, b, 1e-6, "saved by another process", 100);
    kvc_seq_free(a), kvc_seq_free(b);
  }
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* Through a file; saving again replaces it whole; a failed save leaves it as it was. */
static void files_are_replaced_whole(void **state) {
  fixture *f = *state;
  char path[300], tmpdir[256];
  th_tmpdir(tmpdir, sizeof tmpdir, "state-file");
  assert_int_equal(mkdir(tmpdir, 0755), 0);
  snprintf(path, sizeof path, "%s/s.kvcstate", tmpdir);
  kvc_seq *a = decoded(f->g, KVC_KV_SHARED, 10), *b = th_new_seq(f->g, KVC_KV_BOUND);
  assert_int_equal(kvc_seq_save(a, path), KVC_OK);
  assert_int_equal(kvc_seq_load(b, path), KVC_OK);
  go_on_together(a, b, 1e-4, "through a file");
  assert_int_equal(kvc_seq_save(a, path), KVC_OK); /* over the old one */
  kvc_seq *u = th_new_seq(f->g, KVC_KV_UNCACHED);
  th_append(u, prompt, 9);
  assert_int_equal(kvc_seq_save(u, path), KVC_ERR_UNSUPPORTED); /* nothing to save */
  assert_non_null(strstr(kvc_last_error(), "UNCACHED"));
  kvc_seq *c = th_new_seq(f->g, KVC_KV_SHARED);
  assert_int_equal(kvc_seq_load(c, path), KVC_OK); /* still the last good one */
  assert_int_equal(kvc_seq_len(c), kvc_seq_len(a));
  char bad[400];
  snprintf(bad, sizeof bad, "%s/no/such/dir/s.kvcstate", tmpdir);
  assert_int_equal(kvc_seq_save(a, bad), KVC_ERR_IO);
  assert_non_null(strstr(kvc_last_error(), bad));
  kvc_seq_free(a), kvc_seq_free(b), kvc_seq_free(c), kvc_seq_free(u);
  remove(path);
  rmdir(tmpdir);
}

/* Load `buf` into q: it must fail with `want`, naming `needle`, and q must be as it was. */
static void expect_refused(kvc_seq *q, const void *buf, size_t size, kvc_status want,
                           const char *needle) {
  const int32_t len = kvc_seq_len(q);
  float before[V];
  memcpy(before, kvc_seq_logits(q), sizeof before);
  kvc_status s = kvc_seq_load_buffer(q, buf, size);
  if (s != want || !strstr(kvc_last_error(), needle))
    fail_msg("got %s \"%s\", expected %s naming \"%s\"", kvc_status_name(s), kvc_last_error(),
             kvc_status_name(want), needle);
  assert_int_equal(kvc_seq_len(q), len);
  assert_memory_equal(kvc_seq_logits(q), before, sizeof before);
}

static void bad_states_change_nothing(void **state) {
  fixture *f = *state;
  kvc_seq *a = decoded(f->g, KVC_KV_SHARED, 10);
  size_t size;
  char *buf = saved(a, &size);
  kvc_seq *q = th_new_seq(f->g, KVC_KV_SHARED);
  th_append(q, prompt + 2, 5);
  expect_refused(q, buf, size - 1, KVC_ERR_IO, "header implies");
  expect_refused(q, buf, 20, KVC_ERR_IO, "truncated");
  char *copy = malloc(size);
  memcpy(copy, buf, size);
  copy[size / 2] ^= 1; /* one bit of the cache */
  expect_refused(q, copy, size, KVC_ERR_IO, "checksum");
  memcpy(copy, buf, size);
  copy[0] = 'X';
  expect_refused(q, copy, size, KVC_ERR_IO, "not a kvcache state");
  memcpy(copy, buf, size);
  copy[8] = 2; /* version 2 */
  expect_refused(q, copy, size, KVC_ERR_UNSUPPORTED, "version 2");
  /* another model's state: same layout, other weights */
  kvc_seq *o = decoded(f->o, KVC_KV_SHARED, 10);
  size_t other_size;
  void *other = saved(o, &other_size);
  expect_refused(q, other, other_size, KVC_ERR_INVALID_ARG, "another model");
  /* longer than the sequence can hold: the same model opened with 16 positions */
  kvc_model_params mp = kvc_model_default_params();
  mp.intra_op_threads = 1, mp.max_seq_len = 16;
  kvc_model *small = NULL;
  assert_int_equal(kvc_model_open(f->gqa, &mp, &small), KVC_OK);
  kvc_seq *s = th_new_seq(small, KVC_KV_SHARED);
  th_append(s, prompt, 3);
  expect_refused(s, buf, size, KVC_ERR_CACHE_FULL, "at most 16");
  size_t n = 0;
  assert_int_equal(kvc_seq_save_buffer(a, buf, 10, &n), KVC_ERR_INVALID_ARG); /* too small */
  assert_int_equal(n, size);
  assert_int_equal(kvc_seq_load(q, "/nonexistent/state"), KVC_ERR_IO);
  kvc_seq_free(s);
  kvc_model_free(small);
  kvc_seq_free(o), kvc_seq_free(q), kvc_seq_free(a);
  free(other), free(copy), free(buf);
}

/* A state of 120 tokens cut at every 4 KiB boundary, 1,000 random single-bit flips of it, and
 * the state of a model with another cache layout: each refused, the sequence untouched. */
static void every_damage_is_refused(void **state) {
  fixture *f = *state;
  kvc_seq *a = th_new_seq(f->g, KVC_KV_SHARED);
  int32_t tokens[120];
  for (int i = 0; i < 120; i++)
    tokens[i] = (i * 37 + 11) % V;
  th_append(a, tokens, 120);
  size_t size;
  unsigned char *buf = saved(a, &size), *copy = malloc(size);
  kvc_seq *q = th_new_seq(f->g, KVC_KV_BOUND);
  th_append(q, prompt, 4);
  int cuts = 0;
  for (size_t cut = 4096; cut < size; cut += 4096, cuts++)
    expect_refused(q, buf, cut, KVC_ERR_IO, "");
  assert_true(cuts >= 10);
  uint64_t rng = 99;
  for (int i = 0; i < 1000; i++) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    const size_t bit = (size_t)(rng >> 11) % (size * 8);
    memcpy(copy, buf, size);
    copy[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    const int32_t len = kvc_seq_len(q);
    if (kvc_seq_load_buffer(q, copy, size) == KVC_OK)
      fail_msg("a flip of bit %zu of %zu was accepted", bit, size * 8);
    assert_true(*kvc_last_error());
    assert_int_equal(kvc_seq_len(q), len);
  }
  /* another cache layout: one K/V head instead of two */
  char dir[256];
  kvc_build_params p = kvc_build_default_params();
  p.layers = 2, p.heads = 2, p.kv_heads = 1, p.head_dim = 16, p.vocab_size = V, p.max_seq_len = MAX;
  p.attention = KVC_ATTENTION_GQA;
  th_tmpdir(dir, sizeof dir, "state-layout");
  assert_int_equal(kvc_build_model(dir, &p), KVC_OK);
  kvc_model *m = th_open_model(dir);
  kvc_seq *other = decoded(m, KVC_KV_SHARED, 10);
  size_t other_size;
  void *other_buf = saved(other, &other_size);
  expect_refused(q, other_buf, other_size, KVC_ERR_INVALID_ARG, "1 kv heads");
  free(other_buf);
  kvc_seq_free(other);
  kvc_model_free(m);
  th_rmdir(dir);
  kvc_seq_free(a), kvc_seq_free(q);
  free(buf), free(copy);
}

/* A writer killed (SIGKILL) at random moments while it saves over one file, again and again:
 * at least 200 saves in all, and what is under the final name always loads. */
static void a_killed_writer_never_leaves_a_corrupt_file(void **state) {
  fixture *f = *state;
  char dir[256], path[300];
  th_tmpdir(dir, sizeof dir, "state-kill");
  assert_int_equal(mkdir(dir, 0755), 0);
  snprintf(path, sizeof path, "%s/s.kvcstate", dir);
  kvc_seq *a = decoded(f->g, KVC_KV_SHARED, 10), *q = th_new_seq(f->g, KVC_KV_SHARED);
  size_t size;
  free(saved(a, &size)); /* the fingerprint is made before any fork */
  uint64_t rng = 7;
  int saves = 0, rounds = 0;
  for (; (saves < 200 || rounds < 20) && rounds < 500; rounds++) {
    int pipe_fd[2];
    assert_int_equal(pipe(pipe_fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* save forever; one byte down the pipe per finished save */
      close(pipe_fd[0]);
      for (;;)
        if (kvc_seq_save(a, path) != KVC_OK || write(pipe_fd[1], "s", 1) != 1)
          _exit(1);
    }
    close(pipe_fd[1]);
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    const struct timespec wait = {0, (long)(rng >> 40) % 20000000}; /* 0-20 ms */
    nanosleep(&wait, NULL);
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    char done[4096];
    for (ssize_t n; (n = read(pipe_fd[0], done, sizeof done)) > 0;)
      saves += (int)n;
    close(pipe_fd[0]);
    struct stat st;
    if (stat(path, &st) == 0 && kvc_seq_load(q, path) != KVC_OK)
      fail_msg("after %d saves, round %d: the file under the final name does not load: %s", saves,
               rounds, kvc_last_error());
  }
  assert_true(saves >= 200);
  kvc_seq_free(a), kvc_seq_free(q);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv) {
  if (argc == 5 && !strcmp(argv[1], "--save"))
    return save_in_this_process(argv[2], argv[3], atoi(argv[4]));
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_loaded_state_goes_on_as_before),
      cmocka_unit_test(exact_for_100_steps_after_a_random_length),
      cmocka_unit_test(a_state_from_another_process),
      cmocka_unit_test(files_are_replaced_whole),
      cmocka_unit_test(bad_states_change_nothing),
      cmocka_unit_test(every_damage_is_refused),
      cmocka_unit_test(a_killed_writer_never_leaves_a_corrupt_file),
  };
  return cmocka_run_group_tests_name("state files", tests, setup, teardown);
}
