/* Chat templates: kvcache's renderings against @huggingface/jinja's (tests/data/chat, written
 * by scripts/make-chat-fixtures.sh), byte for byte, and their token ids against
 * @lenml/tokenizers'; the engine's features one template at a time; hostile templates
 * stopped within their limits; unsupported constructs refused with their line and column.
 * usage: test_chat TOKENIZERS_DIR DATA_DIR */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "helpers.h"
#include "jinja.h"
#include "kvcache.h"

static const char *tokenizers_dir, *data_dir;

static cJSON *read_json(const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", data_dir, name);
  size_t size;
  char *text = (char *)th_slurp(path, &size);
  cJSON *json = cJSON_ParseWithLength(text, size);
  free(text);
  if (!json)
    fail_msg("%s is not JSON", path);
  return json;
}

/* The first byte where a and b differ, shown with some context. */
static void show_difference(const char *what, const char *a, size_t alen, const char *b,
                            size_t blen) {
  size_t k = 0;
  while (k < alen && k < blen && a[k] == b[k])
    k++;
  size_t from = k > 40 ? k - 40 : 0;
  print_error("%s: differs at byte %zu\n  kvcache:   '%.*s'\n  reference: '%.*s'\n", what, k,
              (int)((alen - from) > 80 ? 80 : alen - from), a + from,
              (int)((blen - from) > 80 ? 80 : blen - from), b + from);
}

/* Every conversation of the corpus through one model's template and tokenizer. */
static void check_template(const char *name) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%s", tokenizers_dir, name);
  kvc_chat_template *tmpl = NULL;
  kvc_tokenizer *tok = NULL;
  if (kvc_chat_template_open(dir, &tmpl) != KVC_OK)
    fail_msg("%s: %s", name, kvc_last_error());
  assert_int_equal(kvc_tokenizer_open(dir, &tok), KVC_OK);
  char file[64];
  snprintf(file, sizeof file, "%s.json", name);
  cJSON *cases = read_json("conversations.json"), *expected = read_json(file);
  assert_int_equal(cJSON_GetArraySize(expected), 2 * cJSON_GetArraySize(cases));
  int failures = 0, renders = 0, errors = 0, i = 0;
  int32_t *ids = malloc(1 << 20);
  char *text = malloc(1 << 20);
  assert_non_null(ids);
  assert_non_null(text);
  for (const cJSON *c = cases->child; c; c = c->next, i++) {
    char *messages = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "messages"));
    const cJSON *tools = cJSON_GetObjectItem(c, "tools"),
                *vars = cJSON_GetObjectItem(c, "variables");
    char *tools_text = tools ? cJSON_PrintUnformatted(tools) : NULL;
    char *vars_text = vars ? cJSON_PrintUnformatted(vars) : NULL;
    for (int gp = 1; gp >= 0; gp--) {
      const cJSON *e = cJSON_GetArrayItem(expected, 2 * i + (1 - gp));
      kvc_chat_params p = kvc_chat_default_params();
      p.messages = messages;
      p.tools = tools_text;
      p.variables = vars_text;
      p.add_generation_prompt = gp;
      size_t len = 0;
      kvc_status s = kvc_chat_render(tmpl, &p, text, 1 << 20, &len);
      const cJSON *error = cJSON_GetObjectItem(e, "error");
      if (error) {
        errors++;
        /* the reference failed: so must kvcache, and a raise_exception's message must be
         * kvcache's too */
        if (s == KVC_OK) {
          print_error("%s conversation %d (generation prompt %d): rendered, the reference "
                      "failed with '%s'\n",
                      name, i, gp, error->valuestring);
          failures++;
        } else if (strstr(kvc_last_error(), "raise_exception") &&
                   !strstr(kvc_last_error(), error->valuestring)) {
          print_error("%s conversation %d: '%s' does not carry '%s'\n", name, i, kvc_last_error(),
                      error->valuestring);
          failures++;
        }
        continue;
      }
      renders++;
      const cJSON *want = cJSON_GetObjectItem(e, "text");
      if (s != KVC_OK) {
        print_error("%s conversation %d (generation prompt %d): %s\n", name, i, gp,
                    kvc_last_error());
        failures++;
        continue;
      }
      if (len != strlen(want->valuestring) || memcmp(text, want->valuestring, len)) {
        char what[128];
        snprintf(what, sizeof what, "%s conversation %d (generation prompt %d)", name, i, gp);
        show_difference(what, text, len, want->valuestring, strlen(want->valuestring));
        failures++;
        continue;
      }
      int32_t n = 0;
      assert_int_equal(kvc_chat_tokenize(tmpl, tok, &p, ids, (1 << 20) / 4, &n), KVC_OK);
      const cJSON *want_ids = cJSON_GetObjectItem(e, "ids");
      int same = n == cJSON_GetArraySize(want_ids);
      for (int k = 0; same && k < n; k++)
        same = ids[k] == cJSON_GetArrayItem(want_ids, k)->valueint;
      if (!same) {
        print_error("%s conversation %d (generation prompt %d): %d ids, the reference's %d "
                    "differ\n",
                    name, i, gp, n, cJSON_GetArraySize(want_ids));
        failures++;
      }
    }
    free(messages);
    free(tools_text);
    free(vars_text);
  }
  print_message("%s: %d renderings identical (text and ids), %d failures as the reference's\n",
                name, renders, errors);
  free(ids);
  free(text);
  cJSON_Delete(cases);
  cJSON_Delete(expected);
  kvc_tokenizer_free(tok);
  kvc_chat_template_free(tmpl);
  assert_int_equal(failures, 0);
  assert_true(renders >= 100);
}

static void llama3_renders_as_the_reference(void **state) {
  (void)state;
  check_template("llama3");
}

static void qwen3_renders_as_the_reference(void **state) {
  (void)state;
  check_template("qwen3");
}

static void gemma3_renders_as_the_reference(void **state) {
  (void)state;
  check_template("gemma3");
}

static void mistral_nemo_renders_as_the_reference(void **state) {
  (void)state;
  check_template("mistral_nemo");
}

/* Where kvcache deliberately fails and the reference renders: JavaScript's full case mapping
 * (one character to several, final sigma), a function printed as its JavaScript source, and
 * a macro reading `caller` (refused when parsed, even if never called). */
static int refused_on_purpose(const char *template) {
  static const char *const refused[] = {
      "ß", "Σ", "İ", "{{ obj.items }}", "caller()", "sort_keys=true"};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    if (strstr(template, refused[i]))
      return 1;
  return 0;
}

static void snippets_render_as_the_reference(void **state) {
  (void)state;
  cJSON *root = read_json("snippets.json");
  const cJSON *vars = cJSON_GetObjectItem(root, "variables");
  kvc__jinja_var v[64];
  size_t n = 0;
  for (const cJSON *x = vars->child; x; x = x->next)
    v[n++] = (kvc__jinja_var){x->string, x};
  int failures = 0, same = 0, errors = 0, refused = 0;
  for (const cJSON *s = cJSON_GetObjectItem(root, "snippets")->child; s; s = s->next) {
    const char *source = cJSON_GetObjectItem(s, "template")->valuestring;
    const cJSON *want = cJSON_GetObjectItem(s, "text");
    kvc__jinja *t = NULL;
    char *text = NULL;
    size_t len = 0;
    kvc_status st = kvc__jinja_parse(source, strlen(source), &t);
    if (!st)
      st = kvc__jinja_render(t, v, n, NULL, &text, &len);
    if (!want) {
      errors++;
      if (!st) {
        print_error("'%s': rendered '%s', the reference failed: %s\n", source, text,
                    cJSON_GetObjectItem(s, "error")->valuestring);
        failures++;
      }
    } else if (st) {
      if (refused_on_purpose(source)) {
        print_message("refused on purpose: '%s': %s\n", source, kvc_last_error());
        refused++;
      } else {
        print_error("'%s': %s\n", source, kvc_last_error());
        failures++;
      }
    } else if (len != strlen(want->valuestring) || memcmp(text, want->valuestring, len)) {
      show_difference(source, text, len, want->valuestring, strlen(want->valuestring));
      failures++;
    } else {
      same++;
    }
    free(text);
    kvc__jinja_free(t);
  }
  print_message("snippets: %d identical, %d failing as the reference's, %d refused on purpose\n",
                same, errors, refused);
  cJSON_Delete(root);
  assert_int_equal(failures, 0);
  assert_int_equal(refused, 7); /* each listed above; a new one must be looked at */
}

/* ---- hostile and unsupported templates ---- */

static kvc_status render_source(const char *source, kvc__jinja_limits *limits, char **text) {
  kvc__jinja *t = NULL;
  size_t len;
  *text = NULL;
  kvc_status st = kvc__jinja_parse(source, strlen(source), &t);
  if (!st)
    st = kvc__jinja_render(t, NULL, 0, limits, text, &len);
  kvc__jinja_free(t);
  return st;
}

static void expect_error(const char *source, kvc__jinja_limits *limits, const char *message) {
  char *text = NULL;
  kvc_status st = render_source(source, limits, &text);
  if (st == KVC_OK)
    fail_msg("'%.60s' rendered '%.60s'; expected an error with '%s'", source, text, message);
  free(text);
  if (!strstr(kvc_last_error(), message))
    fail_msg("'%.60s': '%s' lacks '%s'", source, kvc_last_error(), message);
}

static void hostile_templates_stop_within_limits(void **state) {
  (void)state;
  /* recursion without end: the depth limit */
  expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL,
               "line 1, column 20: macros call each other more than 16 deep");
  /* a loop that writes too much: the output limit; one that works too long: the steps */
  kvc__jinja_limits small = kvc__jinja_default_limits();
  small.output = 1000;
  expect_error("{% for i in range(1000) %}xxxxxxxxxx{% endfor %}", &small, "1000 bytes");
  char busy[2048] = "{% for i in range(100000) %}{% if i > 0";
  for (int i = 0; i < 100; i++)
    strcat(busy, " and i > 0");
  strcat(busy, " %}{% endif %}{% endfor %}");
  expect_error(busy, NULL, "more than 10000000 steps");
  small = kvc__jinja_default_limits();
  small.memory = 1 << 20;
  /* doubling a string: the memory limit */
  expect_error("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s "
               "%}{% endfor %}{{ ns.s|length }}",
               &small, "memory limit");
  /* nesting: refused when parsed, with where */
  char deep[4096] = "{{ ";
  for (int i = 0; i < 500; i++)
    strcat(deep, "(");
  strcat(deep, "1");
  for (int i = 0; i < 500; i++)
    strcat(deep, ")");
  strcat(deep, " }}");
  expect_error(deep, NULL, "nested more than 128 deep");
  char ifs[8192] = "";
  for (int i = 0; i < 200; i++)
    strcat(ifs, "{% if true %}");
  expect_error(ifs, NULL, "nested more than 128 deep");
  /* a chain is as deep as it is long (rendering recurses along it): 1 + 1 + ... and a.b.c... */
  static char chain[65536];
  strcpy(chain, "{{ 1");
  for (int i = 0; i < 10000; i++)
    strcat(chain + 4 + 4 * i, " + 1");
  strcat(chain, " }}");
  expect_error(chain, NULL, "nested more than 128 deep");
  strcpy(chain, "{{ x");
  for (int i = 0; i < 10000; i++)
    strcat(chain + 4 + 2 * i, ".y");
  strcat(chain, " }}");
  expect_error(chain, NULL, "nested more than 128 deep");
  char *ok = NULL; /* 100 links render */
  strcpy(chain, "{{ 0");
  for (int i = 0; i < 100; i++)
    strcat(chain, " + 1");
  strcat(chain, " }}");
  assert_int_equal(render_source(chain, NULL, &ok), KVC_OK);
  assert_string_equal(ok, "100");
  free(ok);
  /* undefined names: printing one prints nothing (as the reference); using one fails */
  char *text = NULL;
  assert_int_equal(render_source("[{{ nothing }}]", NULL, &text), KVC_OK);
  assert_string_equal(text, "[]");
  free(text);
  expect_error("{{ nothing + 1 }}", NULL, "line 1, column 12: '+' on an undefined value");
  expect_error("{{ nothing() }}", NULL, "cannot call a undefined");
  expect_error("\n\n   {{ raise_exception('stop here') }}", NULL,
               "line 3, column 7: raise_exception: stop here");
}

static void unsupported_constructs_are_refused_where_they_are(void **state) {
  (void)state;
  expect_error("ok\n{% call m() %}x{% endcall %}", NULL,
               "line 2, column 4: {% call %} is not supported");
  expect_error("{% include 'other.jinja' %}", NULL,
               "line 1, column 4: unknown statement 'include'");
  expect_error("{% extends 'base' %}", NULL, "unknown statement 'extends'");
  expect_error("{{ x | wordcount }}", NULL, "line 1, column 8: unknown filter 'wordcount'");
  expect_error("{{ x is divisibleby 3 }}", NULL, "unknown test 'divisibleby'");
  expect_error("{{ f(*xs) }}", NULL, "argument unpacking");
  expect_error("{% macro m() %}{{ varargs }}{% endmacro %}", NULL, "'varargs' is not supported");
  expect_error("{% for x in y %}", NULL, "the template ends before {% endfor %}");
  expect_error("{{ 'open", NULL, "not closed");
  expect_error("é\n  {{ 1 + }}", NULL, "line 2, column 10: unexpected '}}'");
  expect_error("{% break %}", NULL, "outside a for loop");
  expect_error("{{ 'x\\q' }}", NULL, "unknown escape \\q");
  const char bad[] = "{{ \xff }}";
  kvc__jinja *t = NULL;
  assert_int_equal(kvc__jinja_parse(bad, sizeof bad - 1, &t), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "not valid UTF-8"));
}

/* The public API's checks on its JSON arguments, and the sizing call. */
static void render_api_checks_its_arguments(void **state) {
  (void)state;
  kvc_chat_template *t = NULL;
  const char src[] = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
                     "{% if add_generation_prompt %}<assistant>{% endif %}{{ bos_token }}";
  assert_int_equal(kvc_chat_template_new(src, sizeof src - 1, "<s>", NULL, &t), KVC_OK);
  kvc_chat_params p = kvc_chat_default_params();
  size_t len = 0;
  char text[64];
  p.messages = "[{\"role\": \"user\", \"content\": \"hé\"}]";
  assert_int_equal(kvc_chat_render(t, &p, NULL, 0, &len), KVC_OK);
  assert_int_equal(len, strlen("<user>hé<assistant><s>"));
  assert_int_equal(kvc_chat_render(t, &p, text, 5, &len), KVC_OK);
  assert_string_equal(text, "<use"); /* cut to the buffer, the length still the whole */
  assert_int_equal(len, strlen("<user>hé<assistant><s>"));
  p.add_generation_prompt = 0;
  assert_int_equal(kvc_chat_render(t, &p, text, sizeof text, &len), KVC_OK);
  assert_string_equal(text, "<user>hé<s>");
  p.messages = "{\"role\": \"user\"}";
  assert_int_equal(kvc_chat_render(t, &p, text, sizeof text, &len), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "messages: expected a JSON array"));
  p.messages = "[{\"content\": \"no role\"}]";
  assert_int_equal(kvc_chat_render(t, &p, text, sizeof text, &len), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "messages[0]: expected a string \"role\""));
  p.messages = "[{\"role\": \"user\", \"content\": \"\xc3\"}]";
  assert_int_equal(kvc_chat_render(t, &p, text, sizeof text, &len), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "not valid UTF-8"));
  p.messages = "[]";
  p.variables = "{\"messages\": 1}";
  assert_int_equal(kvc_chat_render(t, &p, text, sizeof text, &len), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "'messages' is given twice"));
  p.variables = "[1]";
  assert_int_equal(kvc_chat_render(t, &p, text, sizeof text, &len), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "variables: expected a JSON object"));
  p.variables = NULL;
  p.tools = "not json";
  assert_int_equal(kvc_chat_render(t, &p, text, sizeof text, &len), KVC_ERR_INVALID_ARG);
  assert_non_null(strstr(kvc_last_error(), "tools"));
  kvc_chat_template_free(t);
  kvc_chat_template_free(NULL);
  assert_int_equal(kvc_chat_template_open("/nonexistent-dir", &t), KVC_ERR_IO);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s TOKENIZERS_DIR DATA_DIR\n", argv[0]);
    return 2;
  }
  tokenizers_dir = argv[1];
  data_dir = argv[2];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(llama3_renders_as_the_reference),
      cmocka_unit_test(qwen3_renders_as_the_reference),
      cmocka_unit_test(gemma3_renders_as_the_reference),
      cmocka_unit_test(mistral_nemo_renders_as_the_reference),
      cmocka_unit_test(snippets_render_as_the_reference),
      cmocka_unit_test(hostile_templates_stop_within_limits),
      cmocka_unit_test(unsupported_constructs_are_refused_where_they_are),
      cmocka_unit_test(render_api_checks_its_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
