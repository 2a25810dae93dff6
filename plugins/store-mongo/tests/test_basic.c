/* store-mongo.basic: every store call against a real FerretDB (MONGO_URI),
 * plus option checking and failing fast on an unreachable server. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *plugin_path;
static eim_err err;

static eim_msg msg(const char *conv, const char *sender, const char *cmid, const char *content,
                   size_t len) {
  eim_msg m = {.conversation_id = conv, .sender = sender, .client_msg_id = cmid,
               .content_type = "text", .content = content, .content_len = len,
               .created_at = th_now_ms()};
  return m;
}

static void test_options(void) {
  th_plugin p;
  const char *unknown[] = {"uri", "mongodb://127.0.0.1:1/", "colour", "blue", NULL};
  const char *bad_pool[] = {"pool_size", "0", NULL};
  const char *unreachable[] = {"uri", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1000", NULL};
  int64_t t0;

  CHECK(th_load(&p, plugin_path, unknown, &err) == EIM_EINVAL);
  CHECK(strstr(err.msg, "test.conf:2") != NULL && strstr(err.msg, "colour") != NULL);
  CHECK(th_load(&p, plugin_path, bad_pool, &err) == EIM_EINVAL);
  CHECK(strstr(err.msg, "test.conf:1") != NULL);
  t0 = th_now_ms();
  CHECK(th_load(&p, plugin_path, unreachable, &err) == EIM_EUNAVAIL);
  CHECK(strstr(err.msg, "127.0.0.1:1") != NULL);
  CHECK(th_now_ms() - t0 < 5000);
  fprintf(stderr, "unreachable: %s (%lld ms)\n", err.msg, (long long)(th_now_ms() - t0));
}

static void test_store(void) {
  const char *kv[] = {"uri", "env:MONGO_URI", "database", th_database(), "pool_size", "4",
                      NULL};
  th_plugin p;
  const eim_store_ops *s;
  void *conn = NULL;
  eim_arena *a = th_arena_new();
  eim_user u1, u2, u3, u4, got;
  char n1[64], n2[64], n3[64], n4[64], op_name[96], cm[64];
  eim_conv single, again, group, cv;
  eim_conv_list list;
  eim_id_list ids;
  eim_msg_list h;
  int existed = 0;
  uint64_t rs, ms;

  th_env("MONGO_URI");
  if (th_load(&p, plugin_path, kv, &err) != EIM_OK) {
    fprintf(stderr, "FAIL: init: %s\n", err.msg);
    th_failures++;
    return;
  }
  s = p.ops;
  CHECK(s->version == EIM_STORE_OPS_V1);
  CHECK(s->conn_open(p.state, &conn, &err) == EIM_OK);
  CHECK(s->ping(conn, &err) == EIM_OK);

  /* users */
  th_unique(n1, sizeof n1, "alice");
  th_unique(n2, sizeof n2, "bob");
  th_unique(n3, sizeof n3, "carol");
  th_unique(n4, sizeof n4, "dave");
  snprintf(op_name, sizeof op_name, "{\"$gt\": \"\"}%s", n1);
  CHECK(s->user_create(conn, n1, "$argon2id$h1", 1000, &u1, a, &err) == EIM_OK);
  CHECK(s->user_create(conn, n2, "$argon2id$h2", 1000, &u2, a, &err) == EIM_OK);
  CHECK(s->user_create(conn, n3, "$argon2id$h3", 1000, &u3, a, &err) == EIM_OK);
  CHECK(s->user_create(conn, n4, "$argon2id$h4", 1000, &u4, a, &err) == EIM_OK);
  CHECK(s->user_create(conn, n1, "$argon2id$x", 1000, &got, a, &err) == EIM_ECONFLICT);
  CHECK(s->user_by_name(conn, n1, &got, a, &err) == EIM_OK);
  CHECK(strcmp(got.user_id, u1.user_id) == 0 && strcmp(got.password_hash, "$argon2id$h1") == 0);
  CHECK(got.created_at == 1000);
  CHECK(s->user_by_id(conn, u2.user_id, &got, a, &err) == EIM_OK);
  CHECK(strcmp(got.username, n2) == 0 && got.password_hash == NULL);
  CHECK(s->user_by_id(conn, "000000000000000000000000", &got, a, &err) == EIM_ENOTFOUND);
  CHECK(s->user_by_id(conn, "{\"$gt\": \"\"}", &got, a, &err) == EIM_ENOTFOUND);
  CHECK(s->user_by_name(conn, "{\"$gt\": \"\"}", &got, a, &err) == EIM_ENOTFOUND);
  CHECK(s->user_create(conn, op_name, "h", 1, &got, a, &err) == EIM_OK);
  CHECK(s->user_by_name(conn, op_name, &got, a, &err) == EIM_OK && strcmp(got.username, op_name) == 0);

  /* conversations */
  {
    const char *peer[] = {u2.user_id};
    const char *self[] = {u1.user_id};
    const char *grp[] = {u2.user_id, u3.user_id, u2.user_id};
    const char *bad[] = {u2.user_id, "000000000000000000000000"};
    eim_conv_new sreq = {EIM_CONV_SINGLE, NULL, u1.user_id, peer, 1, 2000};
    eim_conv_new rreq = {EIM_CONV_SINGLE, NULL, u2.user_id, self, 1, 2001};
    eim_conv_new greq = {EIM_CONV_GROUP, "team {\"$gt\": 1}", u1.user_id, grp, 3, 2002};
    eim_conv_new breq = {EIM_CONV_GROUP, "bad", u1.user_id, bad, 2, 2003};
    eim_conv_new selfreq = {EIM_CONV_SINGLE, NULL, u1.user_id, self, 1, 2004};

    CHECK(s->conv_create(conn, &sreq, &single, &existed, a, &err) == EIM_OK && existed == 0);
    CHECK(single.type == EIM_CONV_SINGLE && strcmp(single.name, "") == 0);
    CHECK(single.nmembers == 2 && single.max_seq == 0 && single.last_message == NULL);
    CHECK(s->conv_create(conn, &rreq, &again, &existed, a, &err) == EIM_OK && existed == 1);
    CHECK(strcmp(again.conversation_id, single.conversation_id) == 0);
    CHECK(s->conv_create(conn, &greq, &group, &existed, a, &err) == EIM_OK && existed == 0);
    CHECK(group.nmembers == 3 && strcmp(group.members[0], u1.user_id) == 0 &&
          strcmp(group.members[1], u2.user_id) == 0 && strcmp(group.members[2], u3.user_id) == 0);
    CHECK(strcmp(group.name, "team {\"$gt\": 1}") == 0);
    CHECK(s->conv_create(conn, &breq, &cv, &existed, a, &err) == EIM_ENOTFOUND);
    CHECK(s->conv_create(conn, &selfreq, &cv, &existed, a, &err) == EIM_EINVAL);
  }

  /* append: seqs, arbitrary bytes, operator-looking content, retry */
  {
    static const char nul[] = {'a', '\0', 'b'};
    const char *op = "{\"$gt\": \"\"}";
    eim_msg b[4];
    char c1[64], c2[64], c3[64];
    th_unique(c1, sizeof c1, "c1-");
    th_unique(c2, sizeof c2, "c2-");
    th_unique(c3, sizeof c3, "c3-");
    b[0] = msg(single.conversation_id, u1.user_id, c1, "hello", 5);
    b[1] = msg(single.conversation_id, u1.user_id, c2, nul, 3);
    b[2] = msg(single.conversation_id, u2.user_id, c3, op, strlen(op));
    b[3] = msg(single.conversation_id, u1.user_id, c1, "again", 5); /* in-batch resend */
    CHECK(s->append(conn, b, 4, a, &err) == EIM_OK);
    for (int i = 0; i < 3; i++) CHECK(b[i].status == EIM_OK && b[i].duplicate == 0);
    CHECK(b[0].seq == 1 && b[1].seq == 2 && b[2].seq == 3);
    CHECK(b[3].status == EIM_OK && b[3].duplicate == 1 && b[3].seq == 1);
    CHECK(b[0].msg_id != NULL && strlen(b[0].msg_id) == 24);

    eim_msg r = msg(single.conversation_id, u1.user_id, c2, "different", 9);
    CHECK(s->append(conn, &r, 1, a, &err) == EIM_OK);
    CHECK(r.status == EIM_OK && r.duplicate == 1 && r.seq == 2);
    CHECK(strcmp(r.msg_id, b[1].msg_id) == 0);
    CHECK(r.content_len == 3 && memcmp(r.content, nul, 3) == 0);

    /* a batch across conversations with one unknown */
    eim_msg x[3];
    th_unique(cm, sizeof cm, "x");
    x[0] = msg(group.conversation_id, u3.user_id, cm, "g1", 2);
    x[1] = msg("000000000000000000000000", u3.user_id, cm, "nowhere", 7);
    x[2] = msg(single.conversation_id, u2.user_id, cm, "s4", 2);
    CHECK(s->append(conn, x, 3, a, &err) == EIM_OK);
    CHECK(x[0].status == EIM_OK && x[0].seq == 1);
    CHECK(x[1].status == EIM_ENOTFOUND);
    CHECK(x[2].status == EIM_OK && x[2].seq == 4);

    /* history */
    eim_history_q q = {single.conversation_id, 0, 0, 2};
    CHECK(s->history(conn, &q, &h, a, &err) == EIM_OK);
    CHECK(h.n == 2 && h.items[0].seq == 3 && h.items[1].seq == 4 && h.has_more == 1);
    CHECK(h.n == 2 && h.items[0].content_len == strlen(op) &&
          memcmp(h.items[0].content, op, strlen(op)) == 0);
    q = (eim_history_q){single.conversation_id, 0, 1, 5};
    CHECK(s->history(conn, &q, &h, a, &err) == EIM_OK);
    CHECK(h.n == 3 && h.items[0].seq == 2 && h.items[2].seq == 4 && h.has_more == 0);
    CHECK(h.n == 3 && h.items[0].content_len == 3 && memcmp(h.items[0].content, nul, 3) == 0);
    q = (eim_history_q){single.conversation_id, 3, 0, 1};
    CHECK(s->history(conn, &q, &h, a, &err) == EIM_OK);
    CHECK(h.n == 1 && h.items[0].seq == 2 && h.has_more == 1);
    CHECK(h.n == 1 && strcmp(h.items[0].sender, u1.user_id) == 0 &&
          strcmp(h.items[0].client_msg_id, c2) == 0);
  }

  /* read cursors: own messages are read; cursors never move back */
  CHECK(s->conv_get(conn, single.conversation_id, u1.user_id, &cv, a, &err) == EIM_OK);
  CHECK(cv.max_seq == 4 && cv.read_seq == 2);
  CHECK(cv.last_message != NULL && cv.last_message->seq == 4);
  CHECK(s->read_set(conn, single.conversation_id, u1.user_id, 3, &rs, &ms, &err) == EIM_OK);
  CHECK(rs == 3 && ms == 4);
  CHECK(s->read_set(conn, single.conversation_id, u1.user_id, 1, &rs, &ms, &err) == EIM_OK);
  CHECK(rs == 3);
  CHECK(s->read_set(conn, single.conversation_id, u1.user_id, 99, &rs, &ms, &err) == EIM_OK);
  CHECK(rs == 4);
  CHECK(s->read_set(conn, single.conversation_id, u3.user_id, 1, &rs, &ms, &err) == EIM_ENOTFOUND);
  CHECK(s->read_set(conn, "000000000000000000000000", u1.user_id, 1, &rs, &ms, &err) ==
        EIM_ENOTFOUND);

  /* listings */
  CHECK(s->conv_list(conn, u3.user_id, &list, a, &err) == EIM_OK);
  CHECK(list.n == 1 && strcmp(list.items[0].conversation_id, group.conversation_id) == 0);
  CHECK(list.n == 1 && list.items[0].read_seq == 1 && list.items[0].max_seq == 1);
  CHECK(s->conv_list(conn, u1.user_id, &list, a, &err) == EIM_OK);
  CHECK(list.n == 2);
  CHECK(list.n == 2 && list.items[0].last_activity >= list.items[1].last_activity);
  CHECK(s->conv_members(conn, group.conversation_id, &ids, a, &err) == EIM_OK && ids.n == 3);
  CHECK(s->conv_members(conn, "000000000000000000000000", &ids, a, &err) == EIM_ENOTFOUND);
  CHECK(s->user_peers(conn, u1.user_id, &ids, a, &err) == EIM_OK && ids.n == 2);
  for (size_t i = 0; i < ids.n; i++)
    CHECK(strcmp(ids.ids[i], u2.user_id) == 0 || strcmp(ids.ids[i], u3.user_id) == 0);

  /* members */
  {
    const char *add[] = {u4.user_id, u2.user_id};
    const char *unknown[] = {"000000000000000000000000"};
    CHECK(s->conv_add_members(conn, group.conversation_id, add, 2, 3000, &err) == EIM_OK);
    CHECK(s->conv_members(conn, group.conversation_id, &ids, a, &err) == EIM_OK);
    CHECK(ids.n == 4 && strcmp(ids.ids[3], u4.user_id) == 0);
    CHECK(s->conv_add_members(conn, single.conversation_id, add, 1, 3000, &err) == EIM_EINVAL);
    CHECK(s->conv_add_members(conn, group.conversation_id, unknown, 1, 3000, &err) ==
          EIM_ENOTFOUND);
    CHECK(s->conv_add_members(conn, "000000000000000000000000", add, 1, 3000, &err) ==
          EIM_ENOTFOUND);
  }

  s->conn_close(p.state, conn);
  th_unload(&p);
  th_arena_free(a);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s store-mongo.so store-mongo-test-dropdb\n", argv[0]);
    return 2;
  }
  plugin_path = argv[1];
  test_options();
  test_store();
  CHECK(th_drop_database(argv[2]) == 0);
  fprintf(stderr, "%s: %d failure(s)\n", argv[0], th_failures);
  return th_failures ? 1 : 0;
}
