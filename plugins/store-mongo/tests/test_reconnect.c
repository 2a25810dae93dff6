/* store-mongo.reconnect: FerretDB stops and starts again while the plugin is
 * loaded. While it is down every call fails fast with EIM_EUNAVAIL (naming
 * the host and port); once it is back the same connection works again and
 * the data written before is there. Uses a private FerretDB (the port and
 * folder come from EIM_FERRETDB_PORT and EIM_SERVICES_DIR, set by CTest).
 *
 *   store-mongo-test-reconnect PLUGIN.so tests/services/ferretdb.sh */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static const char *script;

/* Runs `script up` and returns its MONGO_URI (malloc'd), or NULL. */
static char *service_up(void) {
  char cmd[1024], line[512];
  char *uri = NULL;
  FILE *f;

  snprintf(cmd, sizeof cmd, "'%s' up", script);
  if ((f = popen(cmd, "r")) == NULL) return NULL;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "MONGO_URI=", 10) == 0) {
      line[strcspn(line, "\n")] = '\0';
      free(uri);
      uri = strdup(line + 10);
    }
  if (pclose(f) != 0) {
    free(uri);
    return NULL;
  }
  return uri;
}

static int service_down(const char *flag) {
  char cmd[1024];

  snprintf(cmd, sizeof cmd, "'%s' down %s", script, flag);
  return system(cmd);
}

int main(int argc, char **argv) {
  th_plugin p;
  const eim_store_ops *s;
  eim_err err;
  eim_arena *a = th_arena_new();
  void *conn = NULL;
  eim_user u, got;
  eim_conv cv;
  char name[64], *uri;
  int existed, rc = EIM_EUNAVAIL;
  int64_t t0;

  if (argc != 3) {
    fprintf(stderr, "usage: %s store-mongo.so ferretdb.sh\n", argv[0]);
    return 2;
  }
  script = argv[2];
  if ((uri = service_up()) == NULL) {
    fprintf(stderr, "FAIL: %s up failed\n", script);
    return 1;
  }
  const char *kv[] = {"uri", uri, "database", "exampleim_reconnect", NULL};
  if (th_load(&p, argv[1], kv, &err) != EIM_OK) {
    fprintf(stderr, "FAIL: init: %s\n", err.msg);
    service_down("--wipe");
    return 1;
  }
  s = p.ops;
  CHECK(s->conn_open(p.state, &conn, &err) == EIM_OK);
  th_unique(name, sizeof name, "phoenix");
  CHECK(s->user_create(conn, name, "h", 1, &u, a, &err) == EIM_OK);
  eim_conv_new req = {EIM_CONV_GROUP, "r", u.user_id, NULL, 0, 1};
  CHECK(s->conv_create(conn, &req, &cv, &existed, a, &err) == EIM_OK);
  if (th_failures) goto done;

  CHECK(service_down("") == 0);
  t0 = th_now_ms();
  CHECK(s->user_by_id(conn, u.user_id, &got, a, &err) == EIM_EUNAVAIL);
  fprintf(stderr, "while down: %s (%lld ms)\n", err.msg, (long long)(th_now_ms() - t0));
  CHECK(strstr(err.msg, "127.0.0.1:") != NULL);
  CHECK(th_now_ms() - t0 < 8000);
  eim_msg m = {.conversation_id = cv.conversation_id, .sender = u.user_id,
               .client_msg_id = "while-down", .content = "x", .content_len = 1,
               .content_type = "text", .created_at = 2};
  CHECK(s->append(conn, &m, 1, a, &err) == EIM_EUNAVAIL);
  CHECK(s->ping(conn, &err) == EIM_EUNAVAIL);
  void *conn2 = NULL;
  CHECK(s->conn_open(p.state, &conn2, &err) == EIM_EUNAVAIL && conn2 == NULL);

  free(uri);
  if ((uri = service_up()) == NULL) {
    fprintf(stderr, "FAIL: %s up (again) failed\n", script);
    th_failures++;
    goto done;
  }
  /* The pool rediscovers the server on its own; each try is a real call that
   * waits up to serverSelectionTimeoutMS, so no sleeping here. */
  t0 = th_now_ms();
  while (th_now_ms() - t0 < 30000 && (rc = s->ping(conn, &err)) == EIM_EUNAVAIL) {
  }
  CHECK(rc == EIM_OK);
  fprintf(stderr, "back after %lld ms\n", (long long)(th_now_ms() - t0));
  CHECK(s->user_by_id(conn, u.user_id, &got, a, &err) == EIM_OK);
  CHECK(s->append(conn, &m, 1, a, &err) == EIM_OK);
  CHECK(m.status == EIM_OK && m.seq == 1 && m.duplicate == 0);

done:
  if (conn != NULL) s->conn_close(p.state, conn);
  th_unload(&p);
  th_arena_free(a);
  free(uri);
  service_down("--wipe");
  fprintf(stderr, "%s: %d failure(s)\n", argv[0], th_failures);
  return th_failures ? 1 : 0;
}
