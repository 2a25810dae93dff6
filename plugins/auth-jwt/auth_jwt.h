/* auth-jwt internals: the plugin state and the three parts that share it
 * (secret loading, issuing, verifying). */
#ifndef EIM_AUTH_JWT_H
#define EIM_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "exampleim/plugin.h"

/* HMAC-SHA256 keys shorter than the hash output weaken it; longer ones are
 * hashed down anyway, so the upper bound only stops absurd inputs. */
#define EIM__JWT_SECRET_MIN 32
#define EIM__JWT_SECRET_MAX 1024

#define EIM__JWT_TTL_DEFAULT 86400
#define EIM__JWT_TTL_MIN 1
#define EIM__JWT_TTL_MAX 31536000 /* one year */

#define EIM__JWT_ISSUER_MAX 255

/* A token's nbf may be this far in the future (another node's clock may run
 * slightly ahead of ours). exp gets no leeway: expiry is enforced as issued. */
#define EIM__JWT_NBF_SKEW_MS 5000

#define EIM__JWT_KEY_FILE "jwt.key"
#define EIM__JWT_SECRET_ENV "EXAMPLEIM_JWT_SECRET"

typedef struct eim__jwt {
  const eim_host *host;
  unsigned char secret[EIM__JWT_SECRET_MAX];
  size_t secret_len;
  int64_t ttl_s;
  char issuer[EIM__JWT_ISSUER_MAX + 1]; /* "" when not configured */
} eim__jwt;

/* Where the secret may come from, in order of precedence. Any of the first
 * three may be NULL; secret_where names the place of the `secret` key
 * ("file:line") for error messages. */
typedef struct eim__jwt_secret_src {
  const char *secret;
  const char *secret_where;
  const char *secret_file;
  const char *secret_file_where;
} eim__jwt_secret_src;

/* Fills j->secret from the first source that is set: the `secret` key, the
 * `secret_file` key, the EXAMPLEIM_JWT_SECRET variable, else the key file in
 * the host's data_dir (generated on first use). Returns EIM_OK, or EIM_EINVAL
 * (too short, unreadable, no data_dir) with a message in err. */
int eim__jwt_secret_load(eim__jwt *j, const eim__jwt_secret_src *src, eim_err *err);

/* The auth ops, see eim_auth_ops in plugin.h. */
int eim__jwt_issue(void *state, const char *user_id, char *token,
                   int64_t *expires_at, eim_err *err);
int eim__jwt_verify(void *state, const char *token, char *user_id,
                    int64_t *expires_at, eim_err *err);

#endif
