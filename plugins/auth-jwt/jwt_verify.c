/* auth-jwt: token verification, done here with libsodium and cJSON rather
 * than libjwt. libjwt 1.10's jwt_decode() takes the algorithm from the
 * token's own header and hands untrusted input to its JSON and base64
 * parsers before anything is checked, and it checks no claims. Here the
 * header is decoded and pinned to HS256 first, the MAC is compared in
 * constant time, and only then is the payload parsed. */
#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "auth_jwt.h"

/* exp and nbf beyond this (year 5138) are refused rather than overflowing
 * the millisecond arithmetic. */
#define EIM__JWT_TIME_MAX 100000000000.0

/* Decodes one base64url (unpadded) part into a NUL-terminated buffer of cap
 * bytes. Returns the decoded length, or -1 when the part is empty, not
 * base64url, or does not fit. */
static long eim__jwt_b64_decode(const char *s, size_t len, unsigned char *out, size_t cap) {
  size_t n = 0;

  if (len == 0 || cap == 0)
    return -1;
  if (sodium_base642bin(out, cap - 1, s, len, NULL, &n, NULL,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    return -1;
  out[n] = '\0';
  return (long)n;
}

/* Parses a decoded JSON part (NUL-terminated at buf[n]); NULL unless it is
 * exactly one JSON object with no embedded NUL (which would make cJSON see a
 * shorter document). */
static cJSON *eim__jwt_json_object(const unsigned char *buf, long n) {
  cJSON *o;

  if (n <= 0 || memchr(buf, '\0', (size_t)n) != NULL)
    return NULL;
  /* The length includes the terminator: cJSON's trailing-garbage check
   * looks for it inside the buffer. */
  o = cJSON_ParseWithLengthOpts((const char *)buf, (size_t)n + 1, NULL, 1);
  if (o != NULL && !cJSON_IsObject(o)) {
    cJSON_Delete(o);
    o = NULL;
  }
  return o;
}

/* The header must be an object with alg "HS256", optionally typ "JWT", and
 * nothing else (no kid, jku, crit, no second alg). */
static int eim__jwt_header_ok(const cJSON *h) {
  const cJSON *it;
  int alg = 0, typ = 0;

  cJSON_ArrayForEach(it, h) {
    if (it->string != NULL && strcmp(it->string, "alg") == 0 && alg == 0 &&
        cJSON_IsString(it) && strcmp(it->valuestring, "HS256") == 0)
      alg = 1;
    else if (it->string != NULL && strcmp(it->string, "typ") == 0 && typ == 0 &&
             cJSON_IsString(it) && strcmp(it->valuestring, "JWT") == 0)
      typ = 1;
    else
      return 0;
  }
  return alg;
}

/* A NumericDate claim in whole seconds; 0 when absent, -1 when malformed. */
static int eim__jwt_time_claim(const cJSON *payload, const char *name, int64_t *out) {
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(payload, name);
  double v;

  if (c == NULL)
    return 0;
  if (!cJSON_IsNumber(c))
    return -1;
  v = c->valuedouble;
  if (!isfinite(v) || v < 0 || v > EIM__JWT_TIME_MAX || floor(v) != v)
    return -1;
  *out = (int64_t)v;
  return 1;
}

/* Checks the claims of an authenticated payload against j and the host
 * clock. Returns EIM_OK and fills user_id and *expires_at, or EIM_EAUTH /
 * EIM_EEXPIRED with the reason in err. */
static int eim__jwt_claims(const eim__jwt *j, const cJSON *payload, char *user_id,
                           int64_t *expires_at, eim_err *err) {
  const cJSON *sub = cJSON_GetObjectItemCaseSensitive(payload, "sub");
  const cJSON *iss = cJSON_GetObjectItemCaseSensitive(payload, "iss");
  int64_t now_ms = j->host->now_ms(j->host), exp = 0, nbf = 0;
  size_t sub_len;
  int has;

  if (!cJSON_IsString(sub) || (sub_len = strlen(sub->valuestring)) == 0 ||
      sub_len >= EIM_ID_MAX)
    return eim_err_set(err, EIM_EAUTH, "token has no valid subject");
  if (j->issuer[0] != '\0' &&
      (!cJSON_IsString(iss) || strcmp(iss->valuestring, j->issuer) != 0))
    return eim_err_set(err, EIM_EAUTH, "token issuer does not match");
  has = eim__jwt_time_claim(payload, "exp", &exp);
  if (has != 1)
    return eim_err_set(err, EIM_EAUTH, "token has no valid expiry");
  has = eim__jwt_time_claim(payload, "nbf", &nbf);
  if (has < 0)
    return eim_err_set(err, EIM_EAUTH, "token has an invalid not-before");
  if (has == 1 && nbf * 1000 > now_ms + EIM__JWT_NBF_SKEW_MS)
    return eim_err_set(err, EIM_EAUTH, "token is not valid yet");
  if (now_ms >= exp * 1000)
    return eim_err_set(err, EIM_EEXPIRED, "token expired");
  memcpy(user_id, sub->valuestring, sub_len + 1);
  *expires_at = exp * 1000;
  return EIM_OK;
}

int eim__jwt_verify(void *state, const char *token, char *user_id, int64_t *expires_at,
                    eim_err *err) {
  const eim__jwt *j = state;
  unsigned char buf[EIM_TOKEN_MAX];
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state hs;
  const char *dot1, *dot2;
  cJSON *json = NULL;
  size_t len;
  long n;
  int rc;

  if (token == NULL || (len = strnlen(token, EIM_TOKEN_MAX)) == 0)
    return eim_err_set(err, EIM_EAUTH, "missing token");
  if (len == EIM_TOKEN_MAX)
    return eim_err_set(err, EIM_EAUTH, "token longer than %d bytes", EIM_TOKEN_MAX - 1);
  dot1 = memchr(token, '.', len);
  dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
  if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
    return eim_err_set(err, EIM_EAUTH, "malformed token");

  n = eim__jwt_b64_decode(token, (size_t)(dot1 - token), buf, sizeof buf);
  json = n > 0 ? eim__jwt_json_object(buf, n) : NULL;
  if (json == NULL || !eim__jwt_header_ok(json)) {
    rc = eim_err_set(err, EIM_EAUTH, "token header is not {\"alg\":\"HS256\"}");
    goto cleanup;
  }
  cJSON_Delete(json);
  json = NULL;

  n = eim__jwt_b64_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), buf, sizeof buf);
  crypto_auth_hmacsha256_init(&hs, j->secret, j->secret_len);
  crypto_auth_hmacsha256_update(&hs, (const unsigned char *)token, (size_t)(dot2 - token));
  crypto_auth_hmacsha256_final(&hs, mac);
  if (n != (long)sizeof mac || sodium_memcmp(buf, mac, sizeof mac) != 0) {
    rc = eim_err_set(err, EIM_EAUTH, "token signature mismatch");
    goto cleanup;
  }

  n = eim__jwt_b64_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), buf, sizeof buf);
  json = n > 0 ? eim__jwt_json_object(buf, n) : NULL;
  if (json == NULL) {
    rc = eim_err_set(err, EIM_EAUTH, "token payload is not a JSON object");
    goto cleanup;
  }
  rc = eim__jwt_claims(j, json, user_id, expires_at, err);

cleanup:
  cJSON_Delete(json);
  sodium_memzero(&hs, sizeof hs);
  return rc;
}
