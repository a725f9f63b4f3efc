/* Unit tests for src/ort.c and src/runtime.c: the runtime loads, serves our API version,
 * creates an environment and session options, and its failures become kvc errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "ort.h"

static void api_table_is_served(void **state) {
  (void)state;
  assert_int_equal(kvc__ort_init(), KVC_OK);
  assert_non_null(kvc__ort());
}

/* Before any other environment in this process: kvcache's own turns ONNX Runtime's usage
 * telemetry off when the program has not chosen (tests/test_telemetry.sh checks the effect). */
static void telemetry_is_off_unless_chosen(void **state) {
  (void)state;
  assert_int_equal(unsetenv("ORT_DISABLE_TELEMETRY"), 0);
  assert_int_equal(unsetenv("ORT_TELEMETRY_DISABLED"), 0);
  OrtEnv *env = NULL;
  assert_int_equal(kvc__ort_env(&env), KVC_OK);
  assert_non_null(env);
  const char *v = getenv("ORT_DISABLE_TELEMETRY"), *later = getenv("ORT_TELEMETRY_DISABLED");
  assert_non_null(v);
  assert_string_equal(v, "1");
  assert_non_null(later);
  assert_string_equal(later, "1");
}

/* A setting the program made stays: in a child process (the environment is made once per
 * process), ORT_DISABLE_TELEMETRY=yes is still "yes" after kvcache made its environment, and
 * the other name is not added. */
static void telemetry_setting_of_the_program_is_kept(void **state) {
  (void)state;
  const pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    OrtEnv *env = NULL;
    const int ok =
        unsetenv("ORT_TELEMETRY_DISABLED") == 0 && setenv("ORT_DISABLE_TELEMETRY", "yes", 1) == 0 &&
        kvc__ort_env(&env) == KVC_OK && getenv("ORT_DISABLE_TELEMETRY") &&
        strcmp(getenv("ORT_DISABLE_TELEMETRY"), "yes") == 0 && !getenv("ORT_TELEMETRY_DISABLED");
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

static void env_and_session_options(void **state) {
  (void)state;
  const OrtApi *ort = kvc__ort();
  OrtEnv *env = NULL;
  assert_int_equal(kvc__ort_check(ort->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "test", &env), "env"),
                   KVC_OK);
  OrtSessionOptions *opts = NULL;
  assert_int_equal(kvc__ort_check(ort->CreateSessionOptions(&opts), "options"), KVC_OK);
  assert_int_equal(kvc__ort_check(ort->SetIntraOpNumThreads(opts, 1), "threads"), KVC_OK);
  ort->ReleaseSessionOptions(opts);
  ort->ReleaseEnv(env);
}

static void runtime_info(void **state) {
  (void)state;
  kvc_runtime_info info;
  assert_int_equal(kvc_runtime_get_info(&info), KVC_OK);
  assert_int_equal(info.api_version, ORT_API_VERSION);
  assert_non_null(info.ort_version);
  assert_true(strncmp(info.ort_version, "1.", 2) == 0);
  assert_non_null(strstr(info.library_path, "libonnxruntime"));
  assert_non_null(strstr(info.providers, "CPUExecutionProvider"));
  assert_true(!strcmp(info.usable_providers, "cpu") || !strcmp(info.usable_providers, "cpu,cuda"));
  assert_int_equal(!info.cuda_note[0], !strcmp(info.usable_providers, "cpu,cuda"));
  assert_int_equal(kvc_runtime_get_info(NULL), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "info is NULL"));
}

static void ort_errors_become_kvc_errors(void **state) {
  (void)state;
  const OrtApi *ort = kvc__ort();
  struct {
    OrtErrorCode code;
    kvc_status want;
  } cases[] = {
      {ORT_INVALID_ARGUMENT, KVC_ERR_INVALID_ARG},
      {ORT_NO_SUCHFILE, KVC_ERR_IO},
      {ORT_INVALID_GRAPH, KVC_ERR_MODEL},
      {ORT_INVALID_PROTOBUF, KVC_ERR_MODEL},
      {ORT_NOT_IMPLEMENTED, KVC_ERR_UNSUPPORTED},
      {ORT_FAIL, KVC_ERR_RUNTIME},
      {ORT_OK, KVC_ERR_RUNTIME},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    OrtStatus *st = ort->CreateStatus(cases[i].code, "boom");
    assert_int_equal(kvc__ort_check(st, "loading x"), cases[i].want);
    assert_string_equal(kvc_last_error(), "loading x: boom");
  }
  assert_int_equal(kvc__ort_check(NULL, "nothing"), KVC_OK);
}

static void a_real_ort_failure_is_reported(void **state) {
  (void)state;
  const OrtApi *ort = kvc__ort();
  OrtEnv *env = NULL;
  assert_int_equal(kvc__ort_check(ort->CreateEnv(ORT_LOGGING_LEVEL_FATAL, "test", &env), "env"),
                   KVC_OK);
  OrtSessionOptions *opts = NULL;
  assert_int_equal(kvc__ort_check(ort->CreateSessionOptions(&opts), "options"), KVC_OK);
  OrtSession *session = NULL;
  kvc_status s = kvc__ort_check(ort->CreateSession(env, "/nonexistent/model.onnx", opts, &session),
                                "open model");
  assert_int_not_equal(s, KVC_OK);
  assert_null(session);
  assert_non_null(strstr(kvc_last_error(), "open model: "));
  assert_non_null(strstr(kvc_last_error(), "/nonexistent/model.onnx"));
  ort->ReleaseSessionOptions(opts);
  ort->ReleaseEnv(env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(api_table_is_served),
      cmocka_unit_test(telemetry_setting_of_the_program_is_kept),
      cmocka_unit_test(telemetry_is_off_unless_chosen),
      cmocka_unit_test(env_and_session_options),
      cmocka_unit_test(runtime_info),
      cmocka_unit_test(ort_errors_become_kvc_errors),
      cmocka_unit_test(a_real_ort_failure_is_reported),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
