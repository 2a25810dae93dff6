/* auth-jwt: issuing tokens with libjwt (HS256). */
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <sodium.h>

#include "auth_jwt.h"

/* 128 random bits identify each token (jti), for logs and revocation lists. */
#define EIM__JWT_JTI_BYTES 16

int eim__jwt_issue(void *state, const char *user_id, char *token, int64_t *expires_at,
                   eim_err *err) {
  const eim__jwt *j = state;
  unsigned char raw[EIM__JWT_JTI_BYTES];
  char jti[EIM__JWT_JTI_BYTES * 2 + 1];
  jwt_t *jwt = NULL;
  char *out = NULL;
  int64_t now_s, exp;
  size_t len;
  int rc;

  if (user_id == NULL || user_id[0] == '\0' || strnlen(user_id, EIM_ID_MAX) == EIM_ID_MAX)
    return eim_err_set(err, EIM_EINVAL, "user_id must be 1 to %d bytes", EIM_ID_MAX - 1);
  now_s = j->host->now_ms(j->host) / 1000;
  exp = now_s + j->ttl_s;
  randombytes_buf(raw, sizeof raw);
  sodium_bin2hex(jti, sizeof jti, raw, sizeof raw);

  if (jwt_new(&jwt) != 0) {
    jwt = NULL;
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto cleanup;
  }
  /* libjwt refuses strings that are not valid UTF-8, hence EINVAL. */
  if (jwt_set_alg(jwt, JWT_ALG_HS256, j->secret, (int)j->secret_len) != 0 ||
      jwt_add_grant(jwt, "sub", user_id) != 0 || jwt_add_grant(jwt, "jti", jti) != 0 ||
      (j->issuer[0] != '\0' && jwt_add_grant(jwt, "iss", j->issuer) != 0) ||
      jwt_add_grant_int(jwt, "iat", (long)now_s) != 0 ||
      jwt_add_grant_int(jwt, "nbf", (long)now_s) != 0 ||
      jwt_add_grant_int(jwt, "exp", (long)exp) != 0) {
    rc = eim_err_set(err, EIM_EINVAL, "cannot build a token for this user_id");
    goto cleanup;
  }
  out = jwt_encode_str(jwt);
  if (out == NULL) {
    rc = eim_err_set(err, EIM_EINTERNAL, "cannot encode the token");
    goto cleanup;
  }
  len = strlen(out);
  if (len >= EIM_TOKEN_MAX) {
    rc = eim_err_set(err, EIM_ETOOBIG, "token longer than %d bytes", EIM_TOKEN_MAX - 1);
    goto cleanup;
  }
  memcpy(token, out, len + 1);
  *expires_at = exp * 1000;
  rc = EIM_OK;

cleanup:
  free(out);
  if (jwt != NULL)
    jwt_free(jwt);
  return rc;
}
