/* Tests for state files (src/state.c): a sequence saved in one KV mode (or another process)
 * and loaded in any other goes on exactly as if it had never stopped; a state moves between the GQA
 * and Concat graphs of the same weights; every damaged, foreign or oversized state is refused with
 * the sequence unchanged; a failed save leaves the old file. */
#define _GNU_SOURCE /* dlsym(RTLD_NEXT): the fsync below wraps the C library's */
#include <dirent.h>
#include <dlfcn.h>
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

/* A new directory (dir, 256 bytes) and the state file path in it (path, 300 bytes). */
static void state_file_in_new_dir(char *dir, char *path, const char *tag) {
  th_tmpdir(dir, 256, tag);
  assert_int_equal(mkdir(dir, 0755), 0);
  snprintf(path, 300, "%s/s.kvcstate", dir);
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
  state_file_in_new_dir(dir, path, "state-process");
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
  state_file_in_new_dir(tmpdir, path, "state-file");
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
  state_file_in_new_dir(dir, path, "state-kill");
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

/* kvc_seq_save syncs a state once it is written, before it replaces the old file: a process
 * that sets this dies there, mid-save, as deterministically as a kill can be timed. */
static volatile sig_atomic_t die_in_fsync;
int fsync(int fd) {
  if (die_in_fsync)
    raise(SIGKILL);
  int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  return real(fd);
}

/* A save killed while it writes leaves the old file as it was and nothing beside it: the
 * state is written nameless (O_TMPFILE) until whole (it left PATH.tmp.PID behind). */
static void a_save_killed_while_writing_leaves_nothing(void **state) {
  fixture *f = *state;
  char dir[256], path[300];
  state_file_in_new_dir(dir, path, "state-die");
  kvc_seq *old = decoded(f->g, KVC_KV_SHARED, 4), *new = decoded(f->g, KVC_KV_SHARED, 9);
  assert_int_equal(kvc_seq_save(old, path), KVC_OK);
  size_t size = 0, now_size = 0;
  uint8_t *before = th_slurp(path, &size);
  fflush(NULL);
  const pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    die_in_fsync = 1;
    kvc_seq_save(new, path);
    _exit(0); /* not reached */
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  uint8_t *after = th_slurp(path, &now_size);
  assert_int_equal(now_size, size);
  assert_memory_equal(after, before, size);
  DIR *d = opendir(dir);
  assert_non_null(d);
  for (struct dirent *e; (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "s.kvcstate"))
      fail_msg("a killed save left %s/%s", dir, e->d_name);
  closedir(d);
  free(before), free(after);
  kvc_seq_free(old), kvc_seq_free(new);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* rm -rf dir (the copies below hold more files than th_rmdir knows). */
static void remove_tree(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* A copy of model directory `from` in `to` whose weights ONNX Runtime finds elsewhere:
 * `location` names the external data file (renamed), or NULL keeps them inside model.onnx. */
static void weights_moved(const char *from, const char *to, const char *location) {
  char path[600], data[600];
  snprintf(path, sizeof path, "cp -r '%s' '%s'", from, to);
  assert_int_equal(system(path), 0);
  snprintf(path, sizeof path, "%s/model.onnx", to);
  snprintf(data, sizeof data, "%s/model.onnx.data", to);
  size_t size = 0, data_size = 0;
  uint8_t *bytes = th_slurp(path, &size), *weights = th_slurp(data, &data_size);
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, bytes);
  assert_non_null(m);
  for (size_t i = 0; i < m->graph->n_initializer; i++) {
    Onnx__TensorProto *t = m->graph->initializer[i];
    size_t offset = 0, length = 0;
    for (size_t e = 0; e < t->n_external_data; e++) {
      Onnx__StringStringEntryProto *kv = t->external_data[e];
      if (!strcmp(kv->key, "offset"))
        offset = strtoull(kv->value, NULL, 10);
      else if (!strcmp(kv->key, "length"))
        length = strtoull(kv->value, NULL, 10);
      else if (!strcmp(kv->key, "location") && location) {
        free(kv->value);
        kv->value = strdup(location);
      }
    }
    if (!location && t->n_external_data) { /* into the graph */
      assert_true(offset + length <= data_size);
      t->raw_data.data = malloc(length);
      memcpy(t->raw_data.data, weights + offset, length);
      t->raw_data.len = length;
      t->has_raw_data = 1;
      for (size_t e = 0; e < t->n_external_data; e++)
        onnx__string_string_entry_proto__free_unpacked(t->external_data[e], NULL);
      free(t->external_data);
      t->external_data = NULL;
      t->n_external_data = 0;
      t->has_data_location = 0;
      t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
    }
  }
  const size_t packed = onnx__model_proto__get_packed_size(m);
  uint8_t *out = malloc(packed);
  onnx__model_proto__pack(m, out);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(out, 1, packed, f), packed);
  fclose(f);
  if (location) {
    char moved[700];
    snprintf(moved, sizeof moved, "%s/%s", to, location);
    assert_int_equal(rename(data, moved), 0);
  } else {
    assert_int_equal(remove(data), 0);
  }
  free(out), free(bytes), free(weights);
  onnx__model_proto__free_unpacked(m, NULL);
}

/* The fingerprint covers the weights ONNX Runtime loads, wherever they are: a state of other
 * weights is refused when the weights file has another name (weights.bin) and when the
 * weights are inside model.onnx with an unrelated model.onnx.txt beside it; and files that
 * only look like weights (a 64 GB sparse model.onnx.bak, a link model.onnx.x to a file
 * outside) change neither the fingerprint nor the bytes info counts. */
static void the_fingerprint_covers_the_weights_loaded(void **state) {
  fixture *f = *state;
  const char *where[2] = {"weights.bin", NULL};
  for (int w = 0; w < 2; w++) {
    char a[400], b[400];
    snprintf(a, sizeof a, "%s-moved%d", f->gqa, w);
    snprintf(b, sizeof b, "%s-moved%d", f->other, w);
    weights_moved(f->gqa, a, where[w]);
    weights_moved(f->other, b, where[w]);
    if (!where[w]) { /* the same unrelated file beside both */
      char cmd[1400];
      snprintf(cmd, sizeof cmd, "echo notes > '%s/model.onnx.txt' && cp '%s/model.onnx.txt' '%s/'",
               a, a, b);
      assert_int_equal(system(cmd), 0);
    }
    kvc_model *ma = th_open_model(a), *mb = th_open_model(b);
    kvc_seq *qa = decoded(ma, KVC_KV_SHARED, 5), *qb = th_new_seq(mb, KVC_KV_SHARED);
    size_t size;
    void *buf = saved(qa, &size);
    if (kvc_seq_load_buffer(qb, buf, size) != KVC_ERR_INVALID_ARG)
      fail_msg("weights %s: a state of other weights loaded", where[w] ? where[w] : "inside");
    assert_non_null(strstr(kvc_last_error(), "another model"));
    kvc_seq *qa2 = th_new_seq(ma, KVC_KV_BOUND); /* the same weights: loads */
    assert_int_equal(kvc_seq_load_buffer(qa2, buf, size), KVC_OK);
    free(buf);
    kvc_seq_free(qa), kvc_seq_free(qb), kvc_seq_free(qa2);
    kvc_model_free(ma), kvc_model_free(mb);
    remove_tree(a), remove_tree(b);
  }
  /* look-alikes beside the model: the same fingerprint (a state loads) and byte count */
  kvc_model_info before;
  kvc_model_get_info(f->g, &before);
  kvc_seq *q = decoded(f->g, KVC_KV_SHARED, 5);
  size_t size;
  void *buf = saved(q, &size);
  char copy[400], cmd[2000];
  snprintf(copy, sizeof copy, "%s-lookalikes", f->gqa);
  snprintf(cmd, sizeof cmd,
           "cp -r '%s' '%s' && truncate -s 64G '%s/model.onnx.bak' && ln -s /etc/hostname "
           "'%s/model.onnx.x'",
           f->gqa, copy, copy, copy);
  assert_int_equal(system(cmd), 0);
  kvc_model *m = th_open_model(copy);
  kvc_model_info after;
  kvc_model_get_info(m, &after);
  assert_int_equal(after.param_bytes, before.param_bytes);
  kvc_seq *q2 = th_new_seq(m, KVC_KV_SHARED);
  assert_int_equal(kvc_seq_load_buffer(q2, buf, size), KVC_OK); /* hashed no .bak, no link */
  free(buf);
  kvc_seq_free(q), kvc_seq_free(q2);
  kvc_model_free(m);
  remove_tree(copy);
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
      cmocka_unit_test(a_save_killed_while_writing_leaves_nothing),
      cmocka_unit_test(the_fingerprint_covers_the_weights_loaded),
  };
  return cmocka_run_group_tests_name("state files", tests, setup, teardown);
}
