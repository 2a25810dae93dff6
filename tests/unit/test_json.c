#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "json.h"

static cJSON *P(const char *s) {
  char why[128];
  return eim_json_parse_object(s, strlen(s), why, sizeof why);
}

int main(void) {
  char why[128];
  cJSON *o = P("{\"type\":\"ping\",\"id\":1,\"data\":{}}");
  CHECK(o != NULL);
  cJSON_Delete(o);
  CHECK(P("not json") == NULL);
  CHECK(P("[1,2]") == NULL);
  CHECK(P("\"str\"") == NULL);
  CHECK(P("{} trailing") == NULL);
  cJSON *ws = P("{}  \n");
  CHECK(ws != NULL);
  cJSON_Delete(ws);
  CHECK(P("{\"a\":\"\\u0000\"}") == NULL);
  CHECK(eim_json_parse_object("{\"a\":\"\xff\"}", 8, why, sizeof why) == NULL);
  CHECK(strstr(why, "UTF-8") != NULL);
  CHECK(eim_json_parse_object("{}\0{}", 5, why, sizeof why) == NULL);

  o = P("{\"s\":\"abc\",\"n\":5,\"neg\":-1,\"f\":1.5,\"big\":1e300,\"x\":null}");
  const char *s = NULL;
  uint64_t u = 0;
  CHECK(eim_json_str(o, "s", 1, 1, 3, &s, why, sizeof why) == 0 && strcmp(s, "abc") == 0);
  CHECK(eim_json_str(o, "s", 1, 4, 10, &s, why, sizeof why) != 0);
  CHECK(eim_json_str(o, "n", 1, 0, 10, &s, why, sizeof why) != 0);
  CHECK(strstr(why, "must be a string") != NULL);
  CHECK(eim_json_str(o, "missing", 1, 0, 10, &s, why, sizeof why) != 0);
  s = "default";
  CHECK(eim_json_str(o, "x", 0, 0, 10, &s, why, sizeof why) == 0 && strcmp(s, "default") == 0);
  CHECK(eim_json_u64(o, "n", 1, 100, &u, why, sizeof why) == 0 && u == 5);
  CHECK(eim_json_u64(o, "neg", 1, 100, &u, why, sizeof why) != 0);
  CHECK(eim_json_u64(o, "f", 1, 100, &u, why, sizeof why) != 0);
  CHECK(eim_json_u64(o, "big", 1, 100, &u, why, sizeof why) != 0);
  CHECK(eim_json_u64(o, "s", 1, 100, &u, why, sizeof why) != 0);
  cJSON_Delete(o);

  eim_msg m = {.conversation_id = "c1", .sender = "u1", .client_msg_id = "k", .content_type = "text",
               .content = "hi \"there\"", .content_len = 10, .created_at = 1764240000000LL,
               .msg_id = "m1", .seq = 7};
  char *text = eim_json_print(eim_json_message(&m));
  CHECK(strstr(text, "\"seq\":7") != NULL);
  CHECK(strstr(text, "\"created_at\":1764240000000") != NULL);
  CHECK(strstr(text, "\"content\":\"hi \\\"there\\\"\"") != NULL);
  cJSON_free(text);

  const char *members[] = {"u1", "u2"};
  eim_conv c = {.conversation_id = "c1", .type = EIM_CONV_GROUP, .name = "team", .created_at = 1,
                .max_seq = 7, .read_seq = 9, .members = members, .nmembers = 2};
  text = eim_json_print(eim_json_conversation(&c));
  CHECK(strstr(text, "\"read_seq\":7") != NULL); /* clamped to max_seq */
  CHECK(strstr(text, "\"unread\":0") != NULL);
  CHECK(strstr(text, "\"last_message\":null") != NULL);
  CHECK(strstr(text, "\"type\":\"group\"") != NULL);
  cJSON_free(text);

  /* eim_json_print gives cJSON_PrintUnformatted's bytes, but for numbers
   * that cJSON rounds (it accepts %.15g when it reads back within an
   * epsilon): whole numbers past 1e15 and some 16-17 digit ones. */
  static const char *same[] = {
      "{}", "[]", "{\"a\":[]}", "[null,true,false]", "{\"k\":\"v\",\"n\":{\"m\":[1,2,{}]}}",
      "[0,-0,1,-1,2147483647,-2147483648,2147483648,-2147483649,1764240000000,999999999999999]",
      "[1.5,-0.25,0.1,3.141592653589793,1e-07,5e-324,123456.789]",
      "[\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f/\\u00e9\\u4e2d\\ud83d\\ude00\\u007f\"]",
      "{\"\\u0002key\\\"\":\"\",\"\":1}",
  };
  for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
    cJSON *v = cJSON_Parse(same[i]);
    CHECK(v != NULL);
    char *want = cJSON_PrintUnformatted(v);
    char *got = eim_json_print(v);
    CHECK(want != NULL && got != NULL && strcmp(want, got) == 0);
    if (want && got && strcmp(want, got) != 0) fprintf(stderr, "want %s\n got %s\n", want, got);
    cJSON_free(want);
    cJSON_free(got);
  }
  cJSON *big = cJSON_Parse("[1e15,-4503599627370497,9007199254740991,9007199254740992,1e300,"
                           "1.7976931348623157e+308]");
  text = eim_json_print(big);
  CHECK_STR(text, "[1000000000000000,-4503599627370497,9007199254740991,9007199254740992,1e+300,"
                  "1.7976931348623157e+308]");
  cJSON_free(text);
  /* Non-finite numbers print as null, as cJSON does; an object item without
   * a key fails. */
  cJSON *nf = cJSON_CreateArray();
  cJSON_AddItemToArray(nf, cJSON_CreateNumber(NAN));
  cJSON_AddItemToArray(nf, cJSON_CreateNumber(INFINITY));
  text = eim_json_print(nf);
  CHECK_STR(text, "[null,null]");
  cJSON_free(text);
  eim_jbuf jb = {0};
  eim_jbuf_str(&jb, "a\x01");
  eim_jbuf_raw(&jb, ",", 1);
  eim_jbuf_num(&jb, 42);
  text = eim_jbuf_finish(&jb);
  CHECK_STR(text, "\"a\\u0001\",42");
  cJSON_free(text);
  jb.failed = 1;
  CHECK(eim_jbuf_finish(&jb) == NULL);
  return check_done("json");
}
