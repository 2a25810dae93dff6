#include "check.h"
#include "utf8.h"

#define V(s) eim_utf8_valid(s, sizeof(s) - 1)

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
  CHECK(eim_json_has_nul_escape("\"a\\u0000\"", 10));
  CHECK(!eim_json_has_nul_escape("\"a\\\\u0000\"", 11)); /* escaped backslash, then text */
  CHECK(eim_json_has_nul_escape("\"\\\\\\u0000\"", 10));  /* \\ then \u0000 */
  CHECK(!eim_json_has_nul_escape("\"\\u0001\"", 8));
  return check_done("utf8");
}
