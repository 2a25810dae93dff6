/*
 * Store checks: awkward data round-trips byte for byte, hostile or unknown
 * ids give errors rather than crashes, ping answers.
 */
#include "kit.h"

#include <string.h>

#define KIT_BIG (64 * 1024)
/* Keys with a unique index (username, client_msg_id) are tried up to this
 * length: the protocol caps usernames at 32 bytes and SQL stores cannot
 * index 64 KiB keys, so the kit asks for room to spare, not more. */
#define KIT_KEY_LONG 255

typedef struct kit_str {
  const char *label;
  const char *s;
  size_t len;
} kit_str;

static const char *const kit_tricky[] = {
    "Grüße, 你好, Привет, مرحبا, שלום",
    "😀👍🏽👨‍👩‍👧‍👦🇫🇷 emoji",
    "'; DROP TABLE users; --",
    "{\"$gt\": \"\"}",
    "{\"$where\": \"sleep(1000)\"} $ne . %_ \\ \" ' ` ? *",
    "line\nbreak\ttab\r",
};

/* The strings every field is tried with: the tricky ones and a long one
 * of max_len bytes (multi-byte UTF-8 throughout). */
static size_t kit_strings(kit_store *k, kit_str *out, size_t max_len) {
  size_t n = 0;
  char *big = k->host->arena_alloc(k->a, max_len + 1);

  for (size_t i = 0; i < sizeof kit_tricky / sizeof kit_tricky[0]; i++)
    out[n++] = (kit_str){"tricky", kit_tricky[i], strlen(kit_tricky[i])};
  if (big != NULL) {
    static const char unit[] = "é漢😀";
    size_t len = 0;
    while (len + sizeof unit - 1 <= max_len) {
      memcpy(big + len, unit, sizeof unit - 1);
      len += sizeof unit - 1;
    }
    while (len < max_len)
      big[len++] = 'x';
    big[len] = '\0';
    out[n++] = (kit_str){"long", big, len};
  }
  return n;
}

static int strings_users(kit_store *k) {
  kit_str keys[8], vals[8];
  size_t nkeys = kit_strings(k, keys, KIT_KEY_LONG - strlen(k->prefix) - 4);
  size_t nvals = kit_strings(k, vals, KIT_BIG);
  eim_user u, got;

  KIT_EXPECT(k, nkeys == nvals && nvals == 7, "out of memory");
  for (size_t i = 0; i < nkeys; i++) {
    const char *name = kit_fmt(k, "%s.%zu%s", k->prefix, i, keys[i].s);
    const char *hash = vals[i].s;
    KIT_OK(k, "user_create", k->ops->user_create(k->conn, name, hash, kit_time(k), &u, k->a,
                                                 &k->err));
    KIT_EXPECT(k, strcmp(u.username, name) == 0, "user_create changed username %zu", i);
    KIT_OK(k, "user_by_name", k->ops->user_by_name(k->conn, name, &got, k->a, &k->err));
    KIT_EXPECT(k, strcmp(got.user_id, u.user_id) == 0 && strcmp(got.username, name) == 0,
               "username %zu (%s) does not round-trip", i, keys[i].label);
    KIT_EXPECT(k, got.password_hash != NULL && strcmp(got.password_hash, hash) == 0,
               "password hash %zu (%s) does not round-trip", i, vals[i].label);
    KIT_OK(k, "user_by_id", k->ops->user_by_id(k->conn, u.user_id, &got, k->a, &k->err));
    KIT_EXPECT(k, strcmp(got.username, name) == 0, "username %zu differs by id", i);
  }
  /* Operator- or pattern-looking names must match nothing but themselves. */
  KIT_CODE(k, EIM_ENOTFOUND, "user_by_name(pattern)",
           k->ops->user_by_name(k->conn, kit_fmt(k, "%s.%%", k->prefix), &got, k->a, &k->err));
  KIT_CODE(k, EIM_ENOTFOUND, "user_by_name({\"$gt\": \"\"})",
           k->ops->user_by_name(k->conn, "{\"$gt\": \"\"}", &got, k->a, &k->err));
  return 0;
}

static int strings_conversations(kit_store *k) {
  kit_str vals[8];
  size_t n = kit_strings(k, vals, KIT_BIG);
  const char *alice, *bob;
  eim_conv_new req = {.type = EIM_CONV_GROUP};
  eim_conv out, got;
  eim_conv_list list;
  int existed;

  if (kit_user(k, "sc.alice", &alice) || kit_user(k, "sc.bob", &bob))
    return -1;
  req.creator = alice;
  req.members = &bob;
  req.nmembers = 1;
  for (size_t i = 0; i < n; i++) {
    req.name = vals[i].s;
    req.created_at = kit_time(k);
    KIT_OK(k, "conv_create", k->ops->conv_create(k->conn, &req, &out, &existed, k->a, &k->err));
    KIT_EXPECT(k, strcmp(out.name, vals[i].s) == 0, "conv_create changed name %zu", i);
    KIT_OK(k, "conv_get", k->ops->conv_get(k->conn, out.conversation_id, bob, &got, k->a,
                                           &k->err));
    KIT_EXPECT(k, strlen(got.name) == vals[i].len && strcmp(got.name, vals[i].s) == 0,
               "group name %zu (%s) does not round-trip", i, vals[i].label);
  }
  KIT_OK(k, "conv_list", k->ops->conv_list(k->conn, bob, &list, k->a, &k->err));
  KIT_EXPECT(k, list.n == n, "conv_list gave %zu groups, want %zu", list.n, n);
  for (size_t i = 0; i < n; i++)
    KIT_EXPECT(k, strcmp(list.items[n - 1 - i].name, vals[i].s) == 0,
               "listed group name %zu differs", i);
  return 0;
}

/* Sends m and checks history, the conversation's last message and a retry
 * all give it back byte for byte. */
static int message_round_trip(kit_store *k, eim_msg *m, size_t idx) {
  eim_msg sent = *m, retry = *m, *all;
  eim_conv conv;
  size_t n;

  KIT_OK(k, "append", k->ops->append(k->conn, m, 1, k->a, &k->err));
  KIT_EXPECT(k, m->status == EIM_OK && !m->duplicate, "message %zu: status %d duplicate %d",
             idx, m->status, m->duplicate);
  if (kit_history_all(k, k->conn, sent.conversation_id, &all, &n))
    return -1;
  KIT_EXPECT(k, n >= 1 && all[n - 1].seq == m->seq, "message %zu missing from history", idx);
  const eim_msg *got = &all[n - 1];
  KIT_EXPECT(k, strcmp(got->client_msg_id, sent.client_msg_id) == 0,
             "client_msg_id %zu does not round-trip", idx);
  KIT_EXPECT(k, strcmp(got->content_type, sent.content_type) == 0,
             "content_type %zu does not round-trip", idx);
  KIT_EXPECT(k, got->content_len == sent.content_len &&
                    memcmp(got->content, sent.content, sent.content_len) == 0,
             "content %zu does not round-trip (%zu bytes, want %zu)", idx, got->content_len,
             sent.content_len);
  KIT_OK(k, "conv_get", k->ops->conv_get(k->conn, sent.conversation_id, sent.sender, &conv,
                                         k->a, &k->err));
  KIT_EXPECT(k, conv.last_message != NULL && conv.last_message->content_len == sent.content_len &&
                    memcmp(conv.last_message->content, sent.content, sent.content_len) == 0,
             "last_message content %zu differs", idx);
  retry.created_at = kit_time(k);
  KIT_OK(k, "append(retry)", k->ops->append(k->conn, &retry, 1, k->a, &k->err));
  KIT_EXPECT(k, retry.duplicate && retry.seq == m->seq &&
                    retry.content_len == sent.content_len &&
                    memcmp(retry.content, sent.content, sent.content_len) == 0 &&
                    strcmp(retry.client_msg_id, sent.client_msg_id) == 0 &&
                    strcmp(retry.content_type, sent.content_type) == 0,
             "retry of message %zu does not return it byte for byte", idx);
  return 0;
}

static int strings_messages(kit_store *k) {
  static const char nul[] = "a\0b\0\0c\0";
  kit_str keys[8], vals[8];
  size_t nkeys = kit_strings(k, keys, KIT_KEY_LONG - 8);
  size_t nvals = kit_strings(k, vals, KIT_BIG);
  unsigned char *binary = k->host->arena_alloc(k->a, KIT_BIG);
  const char *alice, *bob, *c;
  eim_msg m;
  size_t idx = 0;

  KIT_EXPECT(k, nkeys == nvals && nvals == 7 && binary != NULL, "out of memory");
  if (kit_user(k, "sm.alice", &alice) || kit_user(k, "sm.bob", &bob) ||
      kit_group(k, alice, &bob, 1, &c))
    return -1;
  for (size_t i = 0; i < nvals; i++, idx++) {
    m = (eim_msg){.conversation_id = c, .sender = alice,
                  .client_msg_id = kit_fmt(k, "%zu%s", idx, keys[i].s),
                  .content_type = vals[i].s, .content = vals[i].s,
                  .content_len = vals[i].len, .created_at = kit_time(k)};
    if (message_round_trip(k, &m, idx))
      return -1;
  }
  m = (eim_msg){.conversation_id = c, .sender = bob, .client_msg_id = "nul",
                .content_type = "application/octet-stream", .content = nul,
                .content_len = sizeof nul - 1, .created_at = kit_time(k)};
  if (message_round_trip(k, &m, idx++))
    return -1;
  for (size_t i = 0; i < KIT_BIG; i++)
    binary[i] = (unsigned char)(i * 7 + i / 256);
  m = (eim_msg){.conversation_id = c, .sender = bob, .client_msg_id = "binary",
                .content_type = "application/octet-stream", .content = (const char *)binary,
                .content_len = KIT_BIG, .created_at = kit_time(k)};
  return message_round_trip(k, &m, idx);
}

static const char *const kit_bad_ids[] = {
    "",
    "0",
    "-1",
    "99999999999999999999999999999999",
    "000000000000000000000000",
    "'; DROP TABLE users; --",
    "1 OR 1=1",
    "{\"$gt\": \"\"}",
    "{\"$ne\": null}",
    "😀",
};

static int unknown_ids(kit_store *k) {
  const char *alice, *bob, *c;
  eim_user u;
  eim_conv conv;
  eim_conv_list list;
  eim_id_list ids;
  eim_msg_list page;
  uint64_t r, m;
  int existed;

  if (kit_user(k, "x.alice", &alice) || kit_user(k, "x.bob", &bob) ||
      kit_group(k, alice, &bob, 1, &c) || kit_send(k, c, alice, "x-1", "still here", NULL))
    return -1;
  for (size_t i = 0; i < sizeof kit_bad_ids / sizeof kit_bad_ids[0]; i++) {
    const char *id = kit_bad_ids[i];
    eim_conv_new single = {.type = EIM_CONV_SINGLE, .name = "", .creator = alice,
                           .members = &id, .nmembers = 1, .created_at = kit_time(k)};
    eim_conv_new group = {.type = EIM_CONV_GROUP, .name = "x", .creator = id,
                          .members = &bob, .nmembers = 1, .created_at = kit_time(k)};
    eim_msg msg = {.conversation_id = id, .sender = alice, .client_msg_id = "x-bad",
                   .content_type = "text", .content = "x", .content_len = 1,
                   .created_at = kit_time(k)};
    eim_history_q q = {.conversation_id = id, .limit = 10};
    int rc;

    KIT_CODE(k, EIM_ENOTFOUND, kit_fmt(k, "user_by_id('%s')", id),
             k->ops->user_by_id(k->conn, id, &u, k->a, &k->err));
    KIT_CODE(k, EIM_ENOTFOUND, kit_fmt(k, "conv_get('%s')", id),
             k->ops->conv_get(k->conn, id, alice, &conv, k->a, &k->err));
    KIT_CODE(k, EIM_ENOTFOUND, kit_fmt(k, "conv_members('%s')", id),
             k->ops->conv_members(k->conn, id, &ids, k->a, &k->err));
    KIT_CODE(k, EIM_ENOTFOUND, kit_fmt(k, "conv_add_members('%s')", id),
             k->ops->conv_add_members(k->conn, id, &bob, 1, kit_time(k), &k->err));
    KIT_CODE(k, EIM_ENOTFOUND, kit_fmt(k, "single chat with '%s'", id),
             k->ops->conv_create(k->conn, &single, &conv, &existed, k->a, &k->err));
    KIT_CODE(k, EIM_ENOTFOUND, kit_fmt(k, "group created by '%s'", id),
             k->ops->conv_create(k->conn, &group, &conv, &existed, k->a, &k->err));
    KIT_EXPECT(k, k->ops->read_set(k->conn, id, alice, 1, &r, &m, &k->err) < 0,
               "read_set('%s') succeeded", id);
    KIT_EXPECT(k, k->ops->read_set(k->conn, c, id, 1, &r, &m, &k->err) < 0,
               "read_set by user '%s' succeeded", id);
    KIT_OK(k, kit_fmt(k, "append to '%s'", id), k->ops->append(k->conn, &msg, 1, k->a, &k->err));
    KIT_EXPECT(k, msg.status < 0, "append to conversation '%s' has status 0", id);
    rc = k->ops->history(k->conn, &q, &page, k->a, &k->err);
    KIT_EXPECT(k, rc == EIM_ENOTFOUND || (rc == EIM_OK && page.n == 0),
               "history('%s') gave %d with messages", id, rc);
    rc = k->ops->conv_list(k->conn, id, &list, k->a, &k->err);
    KIT_EXPECT(k, rc == EIM_ENOTFOUND || (rc == EIM_OK && list.n == 0),
               "conv_list('%s') gave %d with conversations", id, rc);
    rc = k->ops->user_peers(k->conn, id, &ids, k->a, &k->err);
    KIT_EXPECT(k, rc == EIM_ENOTFOUND || (rc == EIM_OK && ids.n == 0),
               "user_peers('%s') gave %d with peers", id, rc);
  }
  KIT_OK(k, "user_by_id after all that", k->ops->user_by_id(k->conn, alice, &u, k->a, &k->err));
  KIT_OK(k, "conv_get after all that", k->ops->conv_get(k->conn, c, alice, &conv, k->a, &k->err));
  KIT_EXPECT(k, conv.max_seq == 1 && conv.nmembers == 2, "the conversation changed");
  return 0;
}

static int ping(kit_store *k) {
  KIT_OK(k, "ping", k->ops->ping(k->conn, &k->err));
  return 0;
}

const kit_check kit_store_data_checks[] = {
    {"strings.users", strings_users},
    {"strings.conversations", strings_conversations},
    {"strings.messages", strings_messages},
    {"unknown_ids", unknown_ids},
    {"ping", ping},
    {NULL, NULL},
};
