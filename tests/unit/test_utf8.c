#include "check.h"
#include "utf8.h"

#define V(s) eim_utf8_valid(s, sizeof(s) - 1)
#define NUL(s) eim_json_has_nul(s, sizeof(s) - 1)

int main(void) {
  CHECK(V(""));
  CHECK(V("hello"));
  CHECK(V("\xe6\x95\x8f\xe6\x84\x9f\xe8\xaf\x8d")); /* 敏感词 */
  CHECK(V("\xf0\x9f\x98\x80"));                     /* U+1F600 */
  CHECK(V("a\0b"));                                 /* NUL is valid UTF-8 */
  CHECK(!V("\xc0\xaf"));                            /* overlong '/' */
  CHECK(!V("\xe0\x80\xaf"));                        /* overlong */
  CHECK(!V("\xed\xa0\x80"));                        /* surrogate */
  CHECK(!V("\xf4\x90\x80\x80"));                    /* > U+10FFFF */
  CHECK(!V("\xff"));
  CHECK(!V("\xe6\x95"));                            /* truncated */
  CHECK(!V("\x80"));                                /* lone continuation */
  CHECK(NUL("\"a\\u0000\""));
  CHECK(!NUL("\"a\\\\u0000\"")); /* escaped backslash, then text */
  CHECK(NUL("\"\\\\\\u0000\""));  /* \\ then \u0000 */
  CHECK(!NUL("\"\\u0001\""));
  CHECK(NUL("\"ping\\u*!00junk\"")); /* cJSON reads it as U+0000 */
  CHECK(NUL("\"a\\u12\""));
  CHECK(NUL("\"a\0b\""));             /* raw NUL */
  CHECK(!NUL("\"\\u00e9\""));
  return check_done("utf8");
}
