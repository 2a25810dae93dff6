#include "check.h"
#include "kvfile.h"

static int parse(const char *text, eim_kvfile *f, char *err) {
  return eim_kvfile_parse_buf("t.conf", text, strlen(text), f, err, 256);
}

int main(void) {
  eim_kvfile f;
  char err[256];

  CHECK(parse("# comment\n\n  plugin = store-sqlite \nenabled=true\npath = /a b/c.db\n", &f, err) == 0);
  CHECK(f.n == 3);
  CHECK_STR(eim_kvfile_get(&f, "plugin")->value, "store-sqlite");
  CHECK_STR(eim_kvfile_get(&f, "enabled")->value, "true");
  CHECK_STR(eim_kvfile_get(&f, "path")->value, "/a b/c.db");
  CHECK(eim_kvfile_get(&f, "path")->line == 5);
  CHECK(eim_kvfile_get(&f, "nope") == NULL);
  eim_kvfile_free(&f);

  CHECK(parse("key = \n", &f, err) == 0);
  CHECK_STR(eim_kvfile_get(&f, "key")->value, "");
  eim_kvfile_free(&f);

  CHECK(parse("a = 1\nnot a pair\n", &f, err) != 0);
  CHECK(strstr(err, "t.conf:2") != NULL);
  CHECK(parse("a = 1\na = 2\n", &f, err) != 0);
  CHECK(strstr(err, "repeated") != NULL);
  CHECK(parse("= 1\n", &f, err) != 0);
  CHECK(parse("a b = 1\n", &f, err) != 0);
  CHECK(eim_kvfile_parse_buf("t.conf", "a = 1\0\n", 7, &f, err, sizeof err) != 0);
  CHECK(parse("", &f, err) == 0 && f.n == 0);
  eim_kvfile_free(&f);
  CHECK(eim_kvfile_load("/nonexistent/x.conf", &f, err, sizeof err) != 0);
  CHECK(strstr(err, "/nonexistent/x.conf") != NULL);

  CHECK(eim_parse_bool("true") == 1 && eim_parse_bool("OFF") == 0 && eim_parse_bool("maybe") == -1);
  long long v;
  CHECK(eim_parse_i64("42", 0, 100, &v) == 0 && v == 42);
  CHECK(eim_parse_i64("101", 0, 100, &v) != 0);
  CHECK(eim_parse_i64("4x", 0, 100, &v) != 0);
  CHECK(eim_parse_i64("", 0, 100, &v) != 0);
  CHECK(eim_parse_i64(" 4", 0, 100, &v) != 0);
  CHECK(eim_parse_i64("99999999999999999999", 0, 100, &v) != 0);
  return check_done("kvfile");
}
