/* store-mongo: conversations, members and read cursors.
 *
 * conversations: {_id, type, name, at, max_seq, pair}; max_seq is a lower
 *   bound of the seq of the last message, which seq.c finds from it
 *   pair is unique: "lo|hi" of the two user ids for a single chat, "g|_id" for
 *   a group (FerretDB v1 has no partial or sparse unique indexes, so every
 *   conversation carries a distinct key).
 * members: {_id: "conv|user", c, u, rs (read_seq), j (joined at), o (order
 *   within the call that added it)}.
 *
 * Without transactions, creation writes the member rows first and the
 * conversation last: a conversation exists once its document does, and
 * member rows of one that never got written are ignored by every reader. */
#include "mongo.h"

#include <stdlib.h>
#include <string.h>

#define KEY_MAX 64

typedef struct member_row {
  size_t k;
  const char *u;
} member_row;

static void *arena_array(eim__mongo *st, eim_arena *a, size_t n, size_t size) {
  return st->host->arena_alloc(a, n ? n * size : 1);
}

/* Finds docs of coll matching filter in the order of sort and hands each to
 * fn; stops at the first non-zero return of fn and returns it. */
static int each_doc(eim__mongo *st, mongoc_collection_t *coll, const bson_t *filter,
                    const bson_t *opts, const char *what, eim_err *err,
                    int (*fn)(void *ctx, const bson_t *doc), void *ctx) {
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
  const bson_t *doc;
  bson_error_t e;
  int rc = EIM_OK;

  while (rc == EIM_OK && mongoc_cursor_next(cur, &doc)) rc = fn(ctx, doc);
  if (rc == EIM_OK && mongoc_cursor_error(cur, &e)) rc = eim__mongo_error(st, &e, what, err);
  else if (rc != EIM_OK && rc != EIM_ENOMEM) eim_err_set(err, rc, "%s: malformed document", what);
  else if (rc == EIM_ENOMEM) eim_err_set(err, rc, "out of memory");
  mongoc_cursor_destroy(cur);
  return rc;
}

/* --- loading conversations ------------------------------------------------ */

typedef struct load_ctx {
  eim__mongo *st;
  eim_arena *a;
  eim_conv *out;
  size_t n;
  member_row *rows;
  size_t nrows, caprows;
} load_ctx;

static size_t conv_index(load_ctx *x, const char *id) {
  for (size_t k = 0; k < x->n; k++)
    if (strcmp(x->out[k].conversation_id, id) == 0) return k;
  return x->n;
}

static int collect_member(void *ctx, const bson_t *doc) {
  load_ctx *x = ctx;
  const char *c = eim__get_str(doc, "c", NULL), *u;
  uint32_t ulen;
  size_t k;

  if (c == NULL || (u = eim__get_str(doc, "u", &ulen)) == NULL) return EIM_EINTERNAL;
  if ((k = conv_index(x, c)) == x->n) return EIM_OK;
  if (x->nrows == x->caprows) {
    size_t cap = x->caprows ? 2 * x->caprows : 16;
    member_row *r = realloc(x->rows, cap * sizeof *r);
    if (r == NULL) return EIM_ENOMEM;
    x->rows = r;
    x->caprows = cap;
  }
  if ((u = eim__dup(x->st, x->a, u, ulen)) == NULL) return EIM_ENOMEM;
  x->rows[x->nrows].k = k;
  x->rows[x->nrows++].u = u;
  return EIM_OK;
}

/* Fills the basic members of out from a conversation document. */
static int conv_basics(eim__mongo *st, const bson_t *doc, uint64_t read_seq, eim_conv *out,
                       eim_arena *a) {
  const char *id, *name;
  uint32_t idlen, namelen;

  id = eim__get_str(doc, "_id", &idlen);
  name = eim__get_str(doc, "name", &namelen);
  if (id == NULL || name == NULL) return EIM_EINTERNAL;
  memset(out, 0, sizeof *out);
  if ((out->conversation_id = eim__dup(st, a, id, idlen)) == NULL ||
      (out->name = eim__dup(st, a, name, namelen)) == NULL)
    return EIM_ENOMEM;
  out->type = (int)eim__get_i64(doc, "type");
  out->created_at = eim__get_i64(doc, "at");
  out->read_seq = read_seq; /* clamped once max_seq is known */
  out->last_activity = out->created_at;
  return EIM_OK;
}

/* Fills cv's max_seq, read_seq (clamped to it), last_message and
 * last_activity. */
static int last_message(eim__mongo *st, mongoc_collection_t *msgs, const bson_t *conv_doc,
                        eim_conv *cv, eim_arena *a, eim_err *err) {
  bson_t last;
  int rc = eim__last_msg(st, msgs, conv_doc, &cv->max_seq, &last, err);

  if (rc != EIM_OK) return rc;
  if (cv->read_seq > cv->max_seq) cv->read_seq = cv->max_seq;
  if (cv->max_seq == 0) return EIM_OK;
  if ((cv->last_message = st->host->arena_alloc(a, sizeof *cv->last_message)) == NULL ||
      eim__read_msg(st, &last, cv->last_message, a) != EIM_OK)
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
  else
    cv->last_activity = cv->last_message->created_at;
  bson_destroy(&last);
  return rc;
}

/* Fills out[0..*nout) with the conversations ids[0..n) as seen by a user
 * whose read cursors are rs[i]; ids with no conversation document are left
 * out. One query for the members of all; the rest are look-ups by _id: each
 * conversation, its max_seq (seq.c) and its last message. */
static int load_convs(eim__mongo *st, mongoc_client_t *c, const char *const *ids,
                      const uint64_t *rs, size_t n, eim_conv *out, size_t *nout,
                      eim_arena *a, eim_err *err) {
  mongoc_collection_t *convs = eim__coll(st, c, EIM__C_CONVS);
  mongoc_collection_t *members = eim__coll(st, c, EIM__C_MEMBERS);
  mongoc_collection_t *msgs = eim__coll(st, c, EIM__C_MSGS);
  load_ctx x = {.st = st, .a = a, .out = out};
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  bson_t in, arr, sort;
  size_t *count = NULL;
  int rc = EIM_OK;

  for (size_t i = 0; i < n; i++) {
    bson_t doc;
    rc = eim__find_id(st, convs, ids[i], &doc, "conversation lookup", err);
    if (rc == EIM_ENOTFOUND) {
      rc = EIM_OK;
      continue;
    }
    if (rc != EIM_OK) goto cleanup;
    rc = conv_basics(st, &doc, rs[i], &out[x.n], a);
    if (rc != EIM_OK) {
      bson_destroy(&doc);
      eim_err_set(err, rc, "conversation: %s", rc == EIM_ENOMEM ? "out of memory" : "malformed");
      goto cleanup;
    }
    rc = last_message(st, msgs, &doc, &out[x.n], a, err);
    bson_destroy(&doc);
    if (rc != EIM_OK) goto cleanup;
    x.n++;
  }
  *nout = x.n;
  if (x.n == 0) goto cleanup;

  BSON_APPEND_DOCUMENT_BEGIN(&filter, "c", &in);
  BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
  for (size_t k = 0; k < x.n; k++) {
    char idx[16];
    const char *key;
    bson_uint32_to_string((uint32_t)k, &key, idx, sizeof idx);
    BSON_APPEND_UTF8(&arr, key, out[k].conversation_id);
  }
  bson_append_array_end(&in, &arr);
  bson_append_document_end(&filter, &in);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "j", 1);
  BSON_APPEND_INT32(&sort, "o", 1);
  bson_append_document_end(&opts, &sort);
  if ((rc = each_doc(st, members, &filter, &opts, "members", err, collect_member, &x)))
    goto cleanup;
  if ((count = calloc(x.n, sizeof *count)) == NULL) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (size_t r = 0; r < x.nrows; r++) count[x.rows[r].k]++;
  for (size_t k = 0; k < x.n; k++) {
    if ((out[k].members = arena_array(st, a, count[k], sizeof(char *))) == NULL) {
      rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
      goto cleanup;
    }
  }
  for (size_t r = 0; r < x.nrows; r++) {
    eim_conv *cv = &out[x.rows[r].k];
    cv->members[cv->nmembers++] = x.rows[r].u;
  }

cleanup:
  free(count);
  free(x.rows);
  bson_destroy(&filter);
  bson_destroy(&opts);
  mongoc_collection_destroy(convs);
  mongoc_collection_destroy(members);
  mongoc_collection_destroy(msgs);
  return rc;
}

/* One conversation as seen by user (whose read cursor is looked up). */
static int load_one(eim__mongo *st, mongoc_client_t *c, const char *conv, const char *user,
                    eim_conv *out, eim_arena *a, eim_err *err) {
  mongoc_collection_t *members = eim__coll(st, c, EIM__C_MEMBERS);
  char key[KEY_MAX];
  uint64_t rs = 0;
  size_t n = 0;
  bson_t doc;
  int rc;

  if (eim__valid_id(user)) {
    eim__member_key(key, sizeof key, conv, user);
    rc = eim__find_id(st, members, key, &doc, "member lookup", err);
    if (rc == EIM_OK) {
      rs = (uint64_t)eim__get_i64(&doc, "rs");
      bson_destroy(&doc);
    } else if (rc != EIM_ENOTFOUND) {
      goto cleanup;
    }
  }
  rc = load_convs(st, c, &conv, &rs, 1, out, &n, a, err);
  if (rc == EIM_OK && n == 0) rc = eim_err_set(err, EIM_ENOTFOUND, "no such conversation");

cleanup:
  mongoc_collection_destroy(members);
  return rc;
}

/* --- writing members ------------------------------------------------------ */

/* Inserts member rows for users[0..n) of conv; rows already there are
 * skipped (duplicate key). */
static int add_members(eim__mongo *st, mongoc_client_t *c, const char *conv,
                       const char *const *users, size_t n, int64_t joined, eim_err *err) {
  mongoc_collection_t *members = eim__coll(st, c, EIM__C_MEMBERS);
  bson_t *docs = NULL;
  const bson_t **ptrs = NULL;
  int *dup = NULL, other = 0;
  bson_t opts = BSON_INITIALIZER, reply;
  bson_error_t e;
  int rc = EIM_OK;

  if (n == 0) goto cleanup;
  docs = calloc(n, sizeof *docs);
  ptrs = calloc(n, sizeof *ptrs);
  dup = calloc(n, sizeof *dup);
  if (docs == NULL || ptrs == NULL || dup == NULL) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (size_t i = 0; i < n; i++) {
    char key[KEY_MAX];
    eim__member_key(key, sizeof key, conv, users[i]);
    bson_init(&docs[i]);
    BSON_APPEND_UTF8(&docs[i], "_id", key);
    BSON_APPEND_UTF8(&docs[i], "c", conv);
    BSON_APPEND_UTF8(&docs[i], "u", users[i]);
    BSON_APPEND_INT64(&docs[i], "rs", 0);
    BSON_APPEND_INT64(&docs[i], "j", joined);
    BSON_APPEND_INT64(&docs[i], "o", (int64_t)i);
    ptrs[i] = &docs[i];
  }
  BSON_APPEND_BOOL(&opts, "ordered", false);
  if (!mongoc_collection_insert_many(members, ptrs, n, &opts, &reply, &e)) {
    int nerr = eim__write_errors(&reply, dup, n, &other);
    if (nerr == 0 || other) rc = eim__mongo_error(st, &e, "adding members", err);
  }
  bson_destroy(&reply);

cleanup:
  if (docs != NULL)
    for (size_t i = 0; i < n; i++) bson_destroy(&docs[i]);
  free(docs);
  free(ptrs);
  free(dup);
  bson_destroy(&opts);
  mongoc_collection_destroy(members);
  return rc;
}

/* The distinct users of req (creator first, then members in order, each
 * once), in a malloc'd array the caller frees. */
static const char **unique_users(const eim_conv_new *req, size_t *n) {
  const char **u = malloc((req->nmembers + 1) * sizeof *u);

  if (u == NULL) return NULL;
  u[0] = req->creator;
  *n = 1;
  for (size_t i = 0; i < req->nmembers; i++) {
    size_t j = 0;
    while (j < *n && strcmp(u[j], req->members[i]) != 0) j++;
    if (j == *n) u[(*n)++] = req->members[i];
  }
  return u;
}

static int find_pair(eim__mongo *st, mongoc_client_t *c, const char *pair, bson_t *out,
                     eim_err *err) {
  mongoc_collection_t *convs = eim__coll(st, c, EIM__C_CONVS);
  bson_t filter = BSON_INITIALIZER;
  int rc;

  BSON_APPEND_UTF8(&filter, "pair", pair);
  rc = eim__find_one(st, convs, &filter, NULL, out, "conversation lookup", err);
  bson_destroy(&filter);
  mongoc_collection_destroy(convs);
  return rc;
}

/* The existing single chat with this pair: its member rows are written again
 * (a creation that stopped half-way left them missing) and it is loaded as
 * seen by the creator. EIM_ENOTFOUND if there is none. */
static int existing_single(eim__mongo *st, mongoc_client_t *c, const char *pair,
                           const char *const *users, const eim_conv_new *req,
                           eim_conv *out, eim_arena *a, eim_err *err) {
  bson_t doc;
  const char *id;
  int rc = find_pair(st, c, pair, &doc, err);

  if (rc != EIM_OK) return rc;
  if ((id = eim__get_str(&doc, "_id", NULL)) == NULL)
    rc = eim_err_set(err, EIM_EINTERNAL, "conversation without _id");
  else if ((rc = add_members(st, c, id, users, 2, eim__get_i64(&doc, "at"), err)) == EIM_OK)
    rc = load_one(st, c, id, req->creator, out, a, err);
  bson_destroy(&doc);
  return rc;
}

int eim__conv_create(void *conn, const eim_conv_new *req, eim_conv *out, int *existed,
                     eim_arena *a, eim_err *err) {
  eim__mongo *st = ((eim__conn *)conn)->st;
  mongoc_client_t *c = NULL;
  mongoc_collection_t *convs = NULL, *members = NULL;
  const char **users = NULL;
  size_t nusers = 0;
  char id[25], pair[KEY_MAX];
  bson_t doc = BSON_INITIALIZER, mine = BSON_INITIALIZER;
  bson_error_t e;
  int rc = EIM_OK;

  *existed = 0;
  if (req->type != EIM_CONV_SINGLE && req->type != EIM_CONV_GROUP) {
    rc = eim_err_set(err, EIM_EINVAL, "unknown conversation type %d", req->type);
    goto cleanup;
  }
  if (req->nmembers > EIM__MEMBERS_MAX ||
      (req->name != NULL && strlen(req->name) > EIM__FIELD_MAX)) {
    rc = eim_err_set(err, EIM_EINVAL, "too many members or name too long");
    goto cleanup;
  }
  if (!eim__valid_id(req->creator)) {
    rc = eim_err_set(err, EIM_ENOTFOUND, "no such user");
    goto cleanup;
  }
  if ((users = unique_users(req, &nusers)) == NULL) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto cleanup;
  }
  c = eim__client(st);
  eim__new_id(id);
  if (req->type == EIM_CONV_SINGLE) {
    if (nusers != 2) {
      rc = eim_err_set(err, EIM_EINVAL, "a single chat is between two distinct users");
      goto cleanup;
    }
    if (!eim__valid_id(users[1])) {
      rc = eim_err_set(err, EIM_ENOTFOUND, "no such user");
      goto cleanup;
    }
    if (strcmp(users[0], users[1]) < 0) snprintf(pair, sizeof pair, "%s|%s", users[0], users[1]);
    else snprintf(pair, sizeof pair, "%s|%s", users[1], users[0]);
    rc = existing_single(st, c, pair, users, req, out, a, err);
    if (rc == EIM_OK) *existed = 1;
    if (rc != EIM_ENOTFOUND) goto cleanup;
  } else {
    snprintf(pair, sizeof pair, "g|%s", id);
  }
  if ((rc = eim__users_exist(st, c, users, nusers, err)) != EIM_OK ||
      (rc = add_members(st, c, id, users, nusers, req->created_at, err)) != EIM_OK)
    goto cleanup;

  BSON_APPEND_UTF8(&doc, "_id", id);
  BSON_APPEND_INT32(&doc, "type", req->type);
  BSON_APPEND_UTF8(&doc, "name",
                   req->type == EIM_CONV_GROUP && req->name != NULL ? req->name : "");
  BSON_APPEND_INT64(&doc, "at", req->created_at);
  BSON_APPEND_INT64(&doc, "max_seq", 0);
  BSON_APPEND_UTF8(&doc, "pair", pair);
  convs = eim__coll(st, c, EIM__C_CONVS);
  if (!mongoc_collection_insert_one(convs, &doc, NULL, NULL, &e)) {
    /* Our member rows name an id no conversation will have: drop them. */
    members = eim__coll(st, c, EIM__C_MEMBERS);
    BSON_APPEND_UTF8(&mine, "c", id);
    mongoc_collection_delete_many(members, &mine, NULL, NULL, NULL);
    rc = eim__mongo_error(st, &e, "conv_create", err);
    /* Lost the race to create this single chat: return the winner's. */
    if (rc == EIM_ECONFLICT && req->type == EIM_CONV_SINGLE) {
      rc = existing_single(st, c, pair, users, req, out, a, err);
      if (rc == EIM_OK) *existed = 1;
    }
    goto cleanup;
  }
  rc = load_one(st, c, id, req->creator, out, a, err);

cleanup:
  mongoc_collection_destroy(convs);
  mongoc_collection_destroy(members);
  eim__release(st, c);
  free(users);
  bson_destroy(&doc);
  bson_destroy(&mine);
  return rc;
}

int eim__conv_get(void *conn, const char *conversation_id, const char *user_id,
                  eim_conv *out, eim_arena *a, eim_err *err) {
  eim__mongo *st = ((eim__conn *)conn)->st;
  mongoc_client_t *c;
  int rc;

  if (!eim__valid_id(conversation_id))
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  c = eim__client(st);
  rc = load_one(st, c, conversation_id, user_id, out, a, err);
  eim__release(st, c);
  return rc;
}

/* --- per-user listings ---------------------------------------------------- */

typedef struct my_rows {
  char **ids;
  uint64_t *rs;
  size_t n, cap;
} my_rows;

static int collect_mine(void *ctx, const bson_t *doc) {
  my_rows *m = ctx;
  const char *c = eim__get_str(doc, "c", NULL);

  if (c == NULL) return EIM_EINTERNAL;
  if (m->n == m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 16;
    char **ids = realloc(m->ids, cap * sizeof *ids);
    uint64_t *rs;
    if (ids == NULL) return EIM_ENOMEM;
    m->ids = ids;
    if ((rs = realloc(m->rs, cap * sizeof *rs)) == NULL) return EIM_ENOMEM;
    m->rs = rs;
    m->cap = cap;
  }
  if ((m->ids[m->n] = strdup(c)) == NULL) return EIM_ENOMEM;
  m->rs[m->n++] = (uint64_t)eim__get_i64(doc, "rs");
  return EIM_OK;
}

static void my_rows_free(my_rows *m) {
  for (size_t i = 0; i < m->n; i++) free(m->ids[i]);
  free(m->ids);
  free(m->rs);
}

/* The member rows of user: conversation ids and read cursors. */
static int rows_of_user(eim__mongo *st, mongoc_client_t *c, const char *user, my_rows *m,
                        eim_err *err) {
  mongoc_collection_t *members = eim__coll(st, c, EIM__C_MEMBERS);
  bson_t filter = BSON_INITIALIZER;
  int rc;

  BSON_APPEND_UTF8(&filter, "u", user);
  rc = each_doc(st, members, &filter, NULL, "memberships", err, collect_mine, m);
  bson_destroy(&filter);
  mongoc_collection_destroy(members);
  return rc;
}

static int by_activity(const void *pa, const void *pb) {
  const eim_conv *x = pa, *y = pb;

  if (x->last_activity != y->last_activity) return x->last_activity > y->last_activity ? -1 : 1;
  return -strcmp(x->conversation_id, y->conversation_id);
}

int eim__conv_list(void *conn, const char *user_id, eim_conv_list *out, eim_arena *a,
                   eim_err *err) {
  eim__mongo *st = ((eim__conn *)conn)->st;
  mongoc_client_t *c = NULL;
  my_rows m = {0};
  int rc = EIM_OK;

  out->items = NULL;
  out->n = 0;
  if (!eim__valid_id(user_id)) goto cleanup;
  c = eim__client(st);
  if ((rc = rows_of_user(st, c, user_id, &m, err)) != EIM_OK) goto cleanup;
  if ((out->items = arena_array(st, a, m.n, sizeof *out->items)) == NULL) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto cleanup;
  }
  rc = load_convs(st, c, (const char *const *)m.ids, m.rs, m.n, out->items, &out->n, a, err);
  if (rc == EIM_OK) qsort(out->items, out->n, sizeof *out->items, by_activity);

cleanup:
  my_rows_free(&m);
  eim__release(st, c);
  return rc;
}

int eim__conv_add_members(void *conn, const char *conversation_id,
                          const char *const *user_ids, size_t n, int64_t now,
                          eim_err *err) {
  eim__mongo *st = ((eim__conn *)conn)->st;
  mongoc_client_t *c = NULL;
  mongoc_collection_t *convs = NULL;
  bson_t doc;
  int rc;

  if (!eim__valid_id(conversation_id))
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  if (n > EIM__MEMBERS_MAX) return eim_err_set(err, EIM_EINVAL, "too many members");
  c = eim__client(st);
  convs = eim__coll(st, c, EIM__C_CONVS);
  rc = eim__find_id(st, convs, conversation_id, &doc, "conversation lookup", err);
  if (rc == EIM_ENOTFOUND) eim_err_set(err, rc, "no such conversation");
  if (rc != EIM_OK) goto cleanup;
  if (eim__get_i64(&doc, "type") != EIM_CONV_GROUP)
    rc = eim_err_set(err, EIM_EINVAL, "members can only be added to a group");
  bson_destroy(&doc);
  if (rc == EIM_OK && (rc = eim__users_exist(st, c, user_ids, n, err)) == EIM_OK)
    rc = add_members(st, c, conversation_id, user_ids, n, now, err);

cleanup:
  mongoc_collection_destroy(convs);
  eim__release(st, c);
  return rc;
}

int eim__conv_members(void *conn, const char *conversation_id, eim_id_list *out,
                      eim_arena *a, eim_err *err) {
  eim__mongo *st = ((eim__conn *)conn)->st;
  mongoc_client_t *c;
  eim_conv cv;
  int rc;

  out->ids = NULL;
  out->n = 0;
  if (!eim__valid_id(conversation_id))
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  c = eim__client(st);
  rc = load_one(st, c, conversation_id, NULL, &cv, a, err);
  eim__release(st, c);
  if (rc == EIM_OK) {
    out->ids = cv.members;
    out->n = cv.nmembers;
  }
  return rc;
}

typedef struct peer_ctx {
  eim__mongo *st;
  eim_arena *a;
  const char *self;
  const char **ids;
  size_t n, cap;
} peer_ctx;

static int collect_peer(void *ctx, const bson_t *doc) {
  peer_ctx *p = ctx;
  uint32_t len;
  const char *u = eim__get_str(doc, "u", &len);

  if (u == NULL) return EIM_EINTERNAL;
  if (strcmp(u, p->self) == 0) return EIM_OK;
  for (size_t i = 0; i < p->n; i++)
    if (strcmp(p->ids[i], u) == 0) return EIM_OK;
  if (p->n == p->cap) {
    size_t cap = p->cap ? 2 * p->cap : 16;
    const char **ids = realloc(p->ids, cap * sizeof *ids);
    if (ids == NULL) return EIM_ENOMEM;
    p->ids = ids;
    p->cap = cap;
  }
  if ((p->ids[p->n] = eim__dup(p->st, p->a, u, len)) == NULL) return EIM_ENOMEM;
  p->n++;
  return EIM_OK;
}

int eim__user_peers(void *conn, const char *user_id, eim_id_list *out, eim_arena *a,
                    eim_err *err) {
  eim__mongo *st = ((eim__conn *)conn)->st;
  mongoc_client_t *c = NULL;
  mongoc_collection_t *members = NULL, *convs = NULL;
  my_rows m = {0};
  peer_ctx p = {.st = st, .a = a, .self = user_id};
  int rc = EIM_OK;

  out->ids = NULL;
  out->n = 0;
  if (!eim__valid_id(user_id)) goto cleanup;
  c = eim__client(st);
  if ((rc = rows_of_user(st, c, user_id, &m, err)) != EIM_OK) goto cleanup;
  members = eim__coll(st, c, EIM__C_MEMBERS);
  convs = eim__coll(st, c, EIM__C_CONVS);
  for (size_t i = 0; i < m.n && rc == EIM_OK; i++) {
    bson_t filter = BSON_INITIALIZER, doc;
    rc = eim__find_id(st, convs, m.ids[i], &doc, "conversation lookup", err);
    if (rc == EIM_ENOTFOUND) {
      rc = EIM_OK;
      bson_destroy(&filter);
      continue;
    }
    if (rc == EIM_OK) {
      bson_destroy(&doc);
      BSON_APPEND_UTF8(&filter, "c", m.ids[i]);
      rc = each_doc(st, members, &filter, NULL, "members", err, collect_peer, &p);
    }
    bson_destroy(&filter);
  }
  if (rc != EIM_OK) goto cleanup;
  if ((out->ids = arena_array(st, a, p.n, sizeof *out->ids)) == NULL) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto cleanup;
  }
  if (p.n > 0) memcpy(out->ids, p.ids, p.n * sizeof *out->ids);
  out->n = p.n;

cleanup:
  free(p.ids);
  my_rows_free(&m);
  mongoc_collection_destroy(members);
  mongoc_collection_destroy(convs);
  eim__release(st, c);
  return rc;
}

/* Moves user's cursor in conv to max(old, seq) and returns it in *read_seq.
 * $max is a read and a write in FerretDB v1; the striped lock keeps two
 * moves of the same cursor in this process from interleaving. EIM_ENOTFOUND
 * when user is not a member. */
int eim__cursor_max(eim__mongo *st, mongoc_client_t *c, const char *conv, const char *user,
                    uint64_t seq, uint64_t *read_seq, eim_err *err) {
  mongoc_collection_t *members = eim__coll(st, c, EIM__C_MEMBERS);
  bson_t query = BSON_INITIALIZER, update = BSON_INITIALIZER, inner, reply;
  bson_iter_t it, val;
  bson_error_t e;
  char key[KEY_MAX];
  pthread_mutex_t *mu;
  bool ok;
  int rc = EIM_OK;

  eim__member_key(key, sizeof key, conv, user);
  mu = &st->cursor_mu[eim__hash(key) % EIM__CURSOR_LOCKS];
  BSON_APPEND_UTF8(&query, "_id", key);
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$max", &inner);
  BSON_APPEND_INT64(&inner, "rs", (int64_t)seq);
  bson_append_document_end(&update, &inner);
  pthread_mutex_lock(mu);
  ok = mongoc_collection_find_and_modify(members, &query, NULL, &update, NULL, false, false,
                                         true, &reply, &e);
  pthread_mutex_unlock(mu);
  if (!ok)
    rc = eim__mongo_error(st, &e, "moving the read cursor", err);
  else if (!bson_iter_init_find(&it, &reply, "value") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
           !bson_iter_recurse(&it, &val) || !bson_iter_find(&val, "rs"))
    rc = eim_err_set(err, EIM_ENOTFOUND, "not a member of the conversation");
  else
    *read_seq = (uint64_t)bson_iter_as_int64(&val);
  bson_destroy(&reply);
  bson_destroy(&query);
  bson_destroy(&update);
  mongoc_collection_destroy(members);
  return rc;
}

int eim__read_set(void *conn, const char *conversation_id, const char *user_id,
                  uint64_t seq, uint64_t *read_seq, uint64_t *max_seq, eim_err *err) {
  eim__mongo *st = ((eim__conn *)conn)->st;
  mongoc_client_t *c = NULL;
  mongoc_collection_t *convs = NULL, *msgs = NULL;
  bson_t doc;
  int rc;

  if (!eim__valid_id(conversation_id) || !eim__valid_id(user_id))
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation or member");
  c = eim__client(st);
  convs = eim__coll(st, c, EIM__C_CONVS);
  msgs = eim__coll(st, c, EIM__C_MSGS);
  rc = eim__find_id(st, convs, conversation_id, &doc, "conversation lookup", err);
  if (rc == EIM_ENOTFOUND) eim_err_set(err, rc, "no such conversation");
  if (rc != EIM_OK) goto cleanup;
  rc = eim__last_msg(st, msgs, &doc, max_seq, NULL, err);
  bson_destroy(&doc);
  if (rc == EIM_OK)
    rc = eim__cursor_max(st, c, conversation_id, user_id, seq < *max_seq ? seq : *max_seq,
                         read_seq, err);

cleanup:
  mongoc_collection_destroy(convs);
  mongoc_collection_destroy(msgs);
  eim__release(st, c);
  return rc;
}
