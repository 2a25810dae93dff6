/*
 * Store checks: users, conversations, members, listing, peers.
 */
#include "kit.h"

#include <pthread.h>
#include <string.h>

static int users_create(kit_store *k) {
  const char *name = kit_fmt(k, "%s.alice", k->prefix);
  const char *name2 = kit_fmt(k, "%s.bob", k->prefix);
  int64_t t = kit_time(k);
  eim_user u, u2;

  KIT_OK(k, "user_create", k->ops->user_create(k->conn, name, "$argon2id$a", t, &u, k->a,
                                               &k->err));
  KIT_EXPECT(k, u.user_id != NULL && u.user_id[0] != '\0', "no user_id");
  KIT_EXPECT(k, strlen(u.user_id) < EIM_ID_MAX, "user_id longer than EIM_ID_MAX - 1");
  KIT_EXPECT(k, u.username != NULL && strcmp(u.username, name) == 0, "username not echoed");
  KIT_EXPECT(k, u.created_at == t, "created_at %lld, want %lld", (long long)u.created_at,
             (long long)t);
  KIT_OK(k, "user_create", k->ops->user_create(k->conn, name2, "$argon2id$b", kit_time(k),
                                               &u2, k->a, &k->err));
  KIT_EXPECT(k, strcmp(u.user_id, u2.user_id) != 0, "two users got the same id");
  return 0;
}

static int users_duplicate(kit_store *k) {
  const char *name = kit_fmt(k, "%s.carol", k->prefix);
  eim_user u, again, found;

  KIT_OK(k, "user_create", k->ops->user_create(k->conn, name, "$argon2id$first", kit_time(k),
                                               &u, k->a, &k->err));
  KIT_CODE(k, EIM_ECONFLICT, "user_create of a taken name",
           k->ops->user_create(k->conn, name, "$argon2id$second", kit_time(k), &again, k->a,
                               &k->err));
  KIT_OK(k, "user_by_name", k->ops->user_by_name(k->conn, name, &found, k->a, &k->err));
  KIT_EXPECT(k, strcmp(found.user_id, u.user_id) == 0, "the taken name changed owner");
  KIT_EXPECT(k, strcmp(found.password_hash, "$argon2id$first") == 0,
             "the conflicting create overwrote the password hash");
  return 0;
}

static int users_lookup(kit_store *k) {
  const char *name = kit_fmt(k, "%s.dave", k->prefix);
  const char *missing = kit_fmt(k, "%s.nobody", k->prefix);
  int64_t t = kit_time(k);
  eim_user u, byname, byid;

  KIT_OK(k, "user_create", k->ops->user_create(k->conn, name, "$argon2id$d", t, &u, k->a,
                                               &k->err));
  KIT_OK(k, "user_by_name", k->ops->user_by_name(k->conn, name, &byname, k->a, &k->err));
  KIT_EXPECT(k, strcmp(byname.user_id, u.user_id) == 0, "by name: wrong user_id");
  KIT_EXPECT(k, strcmp(byname.username, name) == 0, "by name: wrong username");
  KIT_EXPECT(k, byname.password_hash != NULL &&
                    strcmp(byname.password_hash, "$argon2id$d") == 0,
             "by name: wrong password hash");
  KIT_EXPECT(k, byname.created_at == t, "by name: wrong created_at");
  KIT_OK(k, "user_by_id", k->ops->user_by_id(k->conn, u.user_id, &byid, k->a, &k->err));
  KIT_EXPECT(k, strcmp(byid.user_id, u.user_id) == 0, "by id: wrong user_id");
  KIT_EXPECT(k, strcmp(byid.username, name) == 0, "by id: wrong username");
  KIT_EXPECT(k, byid.created_at == t, "by id: wrong created_at");
  KIT_EXPECT(k, byid.password_hash == NULL || strcmp(byid.password_hash, "$argon2id$d") == 0,
             "by id: wrong password hash");
  KIT_CODE(k, EIM_ENOTFOUND, "user_by_name(unknown)",
           k->ops->user_by_name(k->conn, missing, &byname, k->a, &k->err));
  KIT_CODE(k, EIM_ENOTFOUND, "user_by_id(unknown)",
           k->ops->user_by_id(k->conn, "kit-no-such-id", &byid, k->a, &k->err));
  return 0;
}

/* Checks a conversation as returned to `viewer` right after creation. */
static int conv_fresh(kit_store *k, const eim_conv *c, int type, const char *name,
                      int64_t created_at) {
  KIT_EXPECT(k, c->conversation_id != NULL && c->conversation_id[0] != '\0' &&
                    strlen(c->conversation_id) < EIM_ID_MAX,
             "bad conversation_id");
  KIT_EXPECT(k, c->type == type, "type %d, want %d", c->type, type);
  KIT_EXPECT(k, c->name != NULL && strcmp(c->name, name) == 0, "name '%s', want '%s'",
             c->name != NULL ? c->name : "(null)", name);
  KIT_EXPECT(k, c->created_at == created_at, "wrong created_at");
  KIT_EXPECT(k, c->max_seq == 0 && c->read_seq == 0, "max_seq %llu read_seq %llu, want 0 0",
             (unsigned long long)c->max_seq, (unsigned long long)c->read_seq);
  KIT_EXPECT(k, c->last_message == NULL, "a new conversation has a last message");
  KIT_EXPECT(k, c->last_activity == created_at, "last_activity is not created_at");
  return 0;
}

static int conv_single(kit_store *k) {
  const char *alice, *bob, *carol;
  eim_conv_new req = {.type = EIM_CONV_SINGLE, .name = ""};
  eim_conv first, again, back, other;
  int existed;

  if (kit_user(k, "s.alice", &alice) || kit_user(k, "s.bob", &bob) ||
      kit_user(k, "s.carol", &carol))
    return -1;
  req.creator = alice;
  req.members = &bob;
  req.nmembers = 1;
  req.created_at = kit_time(k);
  KIT_OK(k, "conv_create", k->ops->conv_create(k->conn, &req, &first, &existed, k->a, &k->err));
  KIT_EXPECT(k, existed == 0, "a new single chat says existed = 1");
  if (conv_fresh(k, &first, EIM_CONV_SINGLE, "", req.created_at))
    return -1;
  const char *pair[] = {alice, bob};
  KIT_EXPECT(k, kit_ids_same_set(first.members, first.nmembers, pair, 2),
             "members are not exactly the two users");

  req.created_at = kit_time(k);
  KIT_OK(k, "conv_create again", k->ops->conv_create(k->conn, &req, &again, &existed, k->a,
                                                     &k->err));
  KIT_EXPECT(k, existed == 1, "the second create says existed = 0");
  KIT_EXPECT(k, strcmp(again.conversation_id, first.conversation_id) == 0,
             "the second create made another conversation");
  KIT_EXPECT(k, again.created_at == first.created_at, "the second create changed created_at");

  req.creator = bob;
  req.members = &alice;
  KIT_OK(k, "conv_create reversed", k->ops->conv_create(k->conn, &req, &back, &existed, k->a,
                                                        &k->err));
  KIT_EXPECT(k, existed == 1 && strcmp(back.conversation_id, first.conversation_id) == 0,
             "the other direction made another conversation");

  req.creator = alice;
  req.members = &carol;
  KIT_OK(k, "conv_create other pair", k->ops->conv_create(k->conn, &req, &other, &existed,
                                                          k->a, &k->err));
  KIT_EXPECT(k, existed == 0 && strcmp(other.conversation_id, first.conversation_id) != 0,
             "another pair got the same conversation");
  return 0;
}

#define KIT_RACERS 8

typedef struct kit_racer {
  kit_store *k;
  pthread_barrier_t *go;
  const char *a, *b;
  int flip;
  int rc;
  int existed;
  char conv[EIM_ID_MAX];
  eim_err err;
} kit_racer;

static void *conv_racer(void *arg) {
  kit_racer *r = arg;
  const eim_store_ops *ops = r->k->ops;
  eim_arena *a = kit_arena_new();
  const char *peer = r->flip ? r->a : r->b;
  eim_conv_new req = {.type = EIM_CONV_SINGLE, .name = "", .creator = r->flip ? r->b : r->a,
                      .members = &peer, .nmembers = 1, .created_at = r->k->clock};
  eim_conv out;
  void *conn = NULL;

  r->rc = a != NULL ? ops->conn_open(r->k->state, &conn, &r->err) : EIM_ENOMEM;
  pthread_barrier_wait(r->go);
  if (r->rc == EIM_OK)
    r->rc = ops->conv_create(conn, &req, &out, &r->existed, a, &r->err);
  if (r->rc == EIM_OK)
    snprintf(r->conv, sizeof r->conv, "%s", out.conversation_id);
  if (conn != NULL)
    ops->conn_close(r->k->state, conn);
  kit_arena_free(a);
  return NULL;
}

/* Creates of one pair's single chat racing from many connections all get
 * the same conversation, and exactly one of them made it. */
static int conv_single_concurrent(kit_store *k) {
  kit_racer racers[KIT_RACERS];
  pthread_t threads[KIT_RACERS];
  pthread_barrier_t go;
  const char *a, *b;
  int made = 0;

  if (kit_user(k, "r.alice", &a) || kit_user(k, "r.bob", &b))
    return -1;
  kit_time(k);
  pthread_barrier_init(&go, NULL, KIT_RACERS);
  for (int i = 0; i < KIT_RACERS; i++) {
    racers[i] = (kit_racer){.k = k, .go = &go, .a = a, .b = b, .flip = i % 2};
    pthread_create(&threads[i], NULL, conv_racer, &racers[i]);
  }
  for (int i = 0; i < KIT_RACERS; i++)
    pthread_join(threads[i], NULL);
  pthread_barrier_destroy(&go);
  for (int i = 0; i < KIT_RACERS; i++) {
    KIT_EXPECT(k, racers[i].rc == EIM_OK, "racer %d: %d (%s)", i, racers[i].rc,
               racers[i].err.msg);
    KIT_EXPECT(k, strcmp(racers[i].conv, racers[0].conv) == 0,
               "racers %d and 0 got different conversations", i);
    made += racers[i].existed == 0;
  }
  KIT_EXPECT(k, made == 1, "%d racers say they created the chat, want 1", made);
  return 0;
}

static int conv_refused(kit_store *k) {
  const char *alice, *bob;
  const char *ghost = "kit-no-such-user";
  eim_conv_new req = {.type = EIM_CONV_SINGLE, .name = "", .nmembers = 1};
  eim_conv out;
  eim_conv_list before, after;
  int existed;

  if (kit_user(k, "u.alice", &alice) || kit_user(k, "u.bob", &bob))
    return -1;
  req.creator = alice;
  req.members = &ghost;
  req.created_at = kit_time(k);
  KIT_CODE(k, EIM_ENOTFOUND, "single chat with an unknown peer",
           k->ops->conv_create(k->conn, &req, &out, &existed, k->a, &k->err));
  KIT_OK(k, "conv_list", k->ops->conv_list(k->conn, alice, &before, k->a, &k->err));
  const char *members[] = {bob, ghost};
  req.type = EIM_CONV_GROUP;
  req.name = "ghosts";
  req.members = members;
  req.nmembers = 2;
  KIT_CODE(k, EIM_ENOTFOUND, "group with an unknown member",
           k->ops->conv_create(k->conn, &req, &out, &existed, k->a, &k->err));
  KIT_OK(k, "conv_list", k->ops->conv_list(k->conn, alice, &after, k->a, &k->err));
  KIT_EXPECT(k, after.n == before.n, "a refused create left a conversation behind");
  return 0;
}

static int conv_group(kit_store *k) {
  const char *alice, *bob, *carol;
  eim_conv_new req = {.type = EIM_CONV_GROUP, .name = "team \"kit\""};
  eim_conv g, g2, seen;
  eim_id_list ids;
  int existed;

  if (kit_user(k, "g.alice", &alice) || kit_user(k, "g.bob", &bob) ||
      kit_user(k, "g.carol", &carol))
    return -1;
  const char *members[] = {bob, carol, bob, alice};
  const char *want[] = {alice, bob, carol};
  req.creator = alice;
  req.members = members;
  req.nmembers = 4;
  req.created_at = kit_time(k);
  KIT_OK(k, "conv_create", k->ops->conv_create(k->conn, &req, &g, &existed, k->a, &k->err));
  KIT_EXPECT(k, existed == 0, "a new group says existed = 1");
  if (conv_fresh(k, &g, EIM_CONV_GROUP, req.name, req.created_at))
    return -1;
  KIT_EXPECT(k, kit_ids_equal(g.members, g.nmembers, want, 3),
             "members (%zu) are not creator, bob, carol once each in join order", g.nmembers);
  KIT_OK(k, "conv_create same group", k->ops->conv_create(k->conn, &req, &g2, &existed, k->a,
                                                          &k->err));
  KIT_EXPECT(k, strcmp(g.conversation_id, g2.conversation_id) != 0 && existed == 0,
             "a second group of the same people is not a new conversation");

  KIT_OK(k, "conv_get", k->ops->conv_get(k->conn, g.conversation_id, carol, &seen, k->a,
                                         &k->err));
  if (conv_fresh(k, &seen, EIM_CONV_GROUP, req.name, req.created_at))
    return -1;
  KIT_EXPECT(k, kit_ids_equal(seen.members, seen.nmembers, want, 3), "conv_get: wrong members");
  KIT_OK(k, "conv_members", k->ops->conv_members(k->conn, g.conversation_id, &ids, k->a,
                                                 &k->err));
  KIT_EXPECT(k, kit_ids_same_set(ids.ids, ids.n, want, 3), "conv_members: wrong members");
  KIT_CODE(k, EIM_ENOTFOUND, "conv_get(unknown)",
           k->ops->conv_get(k->conn, "kit-no-such-conv", alice, &seen, k->a, &k->err));
  KIT_CODE(k, EIM_ENOTFOUND, "conv_members(unknown)",
           k->ops->conv_members(k->conn, "kit-no-such-conv", &ids, k->a, &k->err));
  return 0;
}

static int conv_add_members(kit_store *k) {
  const char *alice, *bob, *carol, *dave, *group, *single;
  eim_id_list ids;
  eim_conv_list list;
  eim_conv seen;

  if (kit_user(k, "m.alice", &alice) || kit_user(k, "m.bob", &bob) ||
      kit_user(k, "m.carol", &carol) || kit_user(k, "m.dave", &dave) ||
      kit_group(k, alice, &bob, 1, &group) || kit_single(k, alice, bob, &single))
    return -1;
  const char *add[] = {carol, bob, carol};
  const char *want[] = {alice, bob, carol};
  const char *want2[] = {alice, bob, carol, dave};
  KIT_OK(k, "conv_add_members", k->ops->conv_add_members(k->conn, group, add, 3, kit_time(k),
                                                         &k->err));
  KIT_OK(k, "conv_members", k->ops->conv_members(k->conn, group, &ids, k->a, &k->err));
  KIT_EXPECT(k, kit_ids_same_set(ids.ids, ids.n, want, 3),
             "after adding carol (and bob again): %zu members, want alice, bob, carol", ids.n);
  KIT_OK(k, "conv_add_members again", k->ops->conv_add_members(k->conn, group, &carol, 1,
                                                               kit_time(k), &k->err));
  KIT_OK(k, "conv_add_members", k->ops->conv_add_members(k->conn, group, &dave, 1,
                                                         kit_time(k), &k->err));
  KIT_OK(k, "conv_get", k->ops->conv_get(k->conn, group, dave, &seen, k->a, &k->err));
  KIT_EXPECT(k, kit_ids_equal(seen.members, seen.nmembers, want2, 4),
             "members are not alice, bob, carol, dave in join order (%zu)", seen.nmembers);
  KIT_OK(k, "conv_list", k->ops->conv_list(k->conn, dave, &list, k->a, &k->err));
  KIT_EXPECT(k, list.n == 1 && strcmp(list.items[0].conversation_id, group) == 0,
             "an added member does not list the group");

  KIT_CODE(k, EIM_EINVAL, "conv_add_members(single chat)",
           k->ops->conv_add_members(k->conn, single, &carol, 1, kit_time(k), &k->err));
  KIT_OK(k, "conv_members", k->ops->conv_members(k->conn, single, &ids, k->a, &k->err));
  KIT_EXPECT(k, ids.n == 2, "a refused add changed a single chat");
  const char *ghost = "kit-no-such-user";
  KIT_CODE(k, EIM_ENOTFOUND, "conv_add_members(unknown user)",
           k->ops->conv_add_members(k->conn, group, &ghost, 1, kit_time(k), &k->err));
  KIT_CODE(k, EIM_ENOTFOUND, "conv_add_members(unknown conversation)",
           k->ops->conv_add_members(k->conn, "kit-no-such-conv", &carol, 1, kit_time(k),
                                    &k->err));
  return 0;
}

static int list_is(kit_store *k, const char *user, const char *const *want, size_t n) {
  eim_conv_list list;

  KIT_OK(k, "conv_list", k->ops->conv_list(k->conn, user, &list, k->a, &k->err));
  KIT_EXPECT(k, list.n == n, "conv_list gave %zu conversations, want %zu", list.n, n);
  for (size_t i = 0; i < n; i++) {
    KIT_EXPECT(k, strcmp(list.items[i].conversation_id, want[i]) == 0,
               "conv_list position %zu is not the expected conversation", i);
    KIT_EXPECT(k, i == 0 || list.items[i - 1].last_activity >= list.items[i].last_activity,
               "last_activity not descending at position %zu", i);
  }
  return 0;
}

static int conv_list_order(kit_store *k) {
  const char *alice, *bob, *c1, *c2, *c3;
  eim_msg m;
  eim_conv_list list;

  if (kit_user(k, "l.alice", &alice) || kit_user(k, "l.bob", &bob) ||
      kit_group(k, alice, &bob, 1, &c1) || kit_group(k, alice, &bob, 1, &c2) ||
      kit_group(k, alice, &bob, 1, &c3))
    return -1;
  const char *order1[] = {c3, c2, c1};
  if (list_is(k, alice, order1, 3))
    return -1;
  if (kit_send(k, c1, bob, "l-1", "wake c1", &m))
    return -1;
  const char *order2[] = {c1, c3, c2};
  if (list_is(k, alice, order2, 3))
    return -1;
  KIT_OK(k, "conv_list", k->ops->conv_list(k->conn, alice, &list, k->a, &k->err));
  KIT_EXPECT(k, list.items[0].last_activity == m.created_at,
             "last_activity is not the last message's created_at");
  KIT_EXPECT(k, list.items[0].last_message != NULL &&
                    strcmp(list.items[0].last_message->msg_id, m.msg_id) == 0 &&
                    list.items[0].last_message->content_len == 7 &&
                    memcmp(list.items[0].last_message->content, "wake c1", 7) == 0,
             "last_message is not the message just sent");
  KIT_EXPECT(k, list.items[0].max_seq == 1 && list.items[0].read_seq == 0,
             "listed max_seq/read_seq %llu/%llu, want 1/0",
             (unsigned long long)list.items[0].max_seq,
             (unsigned long long)list.items[0].read_seq);
  if (kit_send(k, c2, alice, "l-2", "wake c2", NULL))
    return -1;
  const char *order3[] = {c2, c1, c3};
  return list_is(k, bob, order3, 3);
}

static int user_peers(kit_store *k) {
  const char *alice, *bob, *carol, *dave, *erin, *c;
  eim_id_list peers;

  if (kit_user(k, "p.alice", &alice) || kit_user(k, "p.bob", &bob) ||
      kit_user(k, "p.carol", &carol) || kit_user(k, "p.dave", &dave) ||
      kit_user(k, "p.erin", &erin))
    return -1;
  const char *trio[] = {bob, carol};
  if (kit_single(k, alice, bob, &c) || kit_group(k, alice, trio, 2, &c) ||
      kit_group(k, dave, &alice, 1, &c))
    return -1;
  const char *want_alice[] = {bob, carol, dave};
  const char *want_carol[] = {alice, bob};
  KIT_OK(k, "user_peers", k->ops->user_peers(k->conn, alice, &peers, k->a, &k->err));
  KIT_EXPECT(k, kit_ids_same_set(peers.ids, peers.n, want_alice, 3),
             "alice's peers: %zu ids, want bob, carol, dave once each", peers.n);
  KIT_OK(k, "user_peers", k->ops->user_peers(k->conn, carol, &peers, k->a, &k->err));
  KIT_EXPECT(k, kit_ids_same_set(peers.ids, peers.n, want_carol, 2),
             "carol's peers: %zu ids, want alice, bob", peers.n);
  KIT_OK(k, "user_peers", k->ops->user_peers(k->conn, erin, &peers, k->a, &k->err));
  KIT_EXPECT(k, peers.n == 0, "a user in no conversation has %zu peers", peers.n);
  return 0;
}

const kit_check kit_store_basic_checks[] = {
    {"users.create", users_create},
    {"users.duplicate_conflict", users_duplicate},
    {"users.lookup", users_lookup},
    {"conv.single_unique", conv_single},
    {"conv.single_concurrent_create", conv_single_concurrent},
    {"conv.unknown_members_refused", conv_refused},
    {"conv.group", conv_group},
    {"conv.add_members", conv_add_members},
    {"conv.list_order", conv_list_order},
    {"users.peers", user_peers},
    {NULL, NULL},
};
