/* store-mongo: internal declarations shared by the plugin's files. */
#ifndef EIM_STORE_MONGO_H
#define EIM_STORE_MONGO_H

#include <exampleim/plugin.h>
#include <mongoc/mongoc.h>
#include <pthread.h>

/* Collection names. */
#define EIM__C_USERS "users"
#define EIM__C_CONVS "conversations"
#define EIM__C_MEMBERS "members"
#define EIM__C_MSGS "messages"
#define EIM__C_META "meta"

#define EIM__SCHEMA_VERSION 1

/* Input limits. Ids are ours (24 hex digits); the rest bound what a caller
 * can make the store keep, well inside MongoDB's 16 MiB per document. The
 * core applies the protocol's much tighter limits before this. */
#define EIM__KEY_MAX 1024              /* username, client_msg_id */
#define EIM__FIELD_MAX (256 * 1024)     /* hash, group name, content type */
#define EIM__CONTENT_MAX (1024 * 1024)
#define EIM__MEMBERS_MAX 10000

/* "conversation#seq": 24 + 1 + 20 digits + NUL. */
#define EIM__MSG_KEY_MAX 64
/* Read cursors are moved with $max, which FerretDB v1 runs as a read and a
 * write; a striped lock makes the moves of one process atomic. */
#define EIM__CURSOR_LOCKS 64
/* Appends to one conversation from one process take turns (a striped lock):
 * concurrent inserts of the same seq would only lose and retry. Each stripe
 * remembers the last conversation appended to under it and its max seq: a
 * lower bound (seqs only grow), so the next append there tries max+1 without
 * asking, and a duplicate key tells it when another process got ahead. */
#define EIM__CONV_LOCKS 256
/* The conversation's max_seq hint is rewritten once it lags this far. */
#define EIM__HINT_LAG 32

typedef struct eim__conv_stripe {
  pthread_mutex_t mu;
  char conv[25];
  uint64_t max;  /* conv's seqs 1..max exist */
  uint64_t hint; /* conv's stored max_seq hint, as last read or written */
} eim__conv_stripe;

typedef struct eim__mongo {
  const eim_host *host;
  mongoc_uri_t *uri;
  mongoc_client_pool_t *pool;
  char *db;
  char where[256]; /* "host:port[,host:port...]" for messages */
  pthread_mutex_t cursor_mu[EIM__CURSOR_LOCKS];
  eim__conv_stripe conv_stripe[EIM__CONV_LOCKS];
} eim__mongo;

/* A worker's connection: clients come from the pool per call, so a conn is
 * only the shared state; the pool reconnects by itself. */
typedef struct eim__conn {
  eim__mongo *st;
} eim__conn;

/* plugin.c */
int eim__mongo_error(eim__mongo *st, const bson_error_t *e, const char *what,
                     eim_err *err);
int eim__is_unavailable(const bson_error_t *e);
mongoc_client_t *eim__client(eim__mongo *st);
void eim__release(eim__mongo *st, mongoc_client_t *c);
mongoc_collection_t *eim__coll(eim__mongo *st, mongoc_client_t *c, const char *name);

/* util.c */
int eim__valid_id(const char *id);
void eim__new_id(char out[25]);
char *eim__dup(eim__mongo *st, eim_arena *a, const char *s, size_t n);
const char *eim__get_str(const bson_t *doc, const char *key, uint32_t *len);
int64_t eim__get_i64(const bson_t *doc, const char *key);
int eim__read_msg(eim__mongo *st, const bson_t *doc, eim_msg *m, eim_arena *a);
int eim__write_errors(const bson_t *reply, int *dup, size_t n, int *other);
void eim__member_key(char *out, size_t size, const char *conv, const char *user);
uint32_t eim__hash(const char *s);
int eim__find_one(eim__mongo *st, mongoc_collection_t *coll, const bson_t *filter,
                  const bson_t *opts, bson_t *out, const char *what, eim_err *err);
int eim__find_id(eim__mongo *st, mongoc_collection_t *coll, const char *id, bson_t *out,
                 const char *what, eim_err *err);

/* users.c, convs.c, append.c */
int eim__user_create(void *conn, const char *username, const char *password_hash,
                     int64_t created_at, eim_user *out, eim_arena *a, eim_err *err);
int eim__user_by_name(void *conn, const char *username, eim_user *out,
                      eim_arena *a, eim_err *err);
int eim__user_by_id(void *conn, const char *user_id, eim_user *out, eim_arena *a,
                    eim_err *err);
int eim__users_exist(eim__mongo *st, mongoc_client_t *c, const char *const *ids,
                     size_t n, eim_err *err);

int eim__conv_create(void *conn, const eim_conv_new *req, eim_conv *out,
                     int *existed, eim_arena *a, eim_err *err);
int eim__conv_get(void *conn, const char *conversation_id, const char *user_id,
                  eim_conv *out, eim_arena *a, eim_err *err);
int eim__conv_list(void *conn, const char *user_id, eim_conv_list *out,
                   eim_arena *a, eim_err *err);
int eim__conv_add_members(void *conn, const char *conversation_id,
                          const char *const *user_ids, size_t n, int64_t now,
                          eim_err *err);
int eim__conv_members(void *conn, const char *conversation_id, eim_id_list *out,
                      eim_arena *a, eim_err *err);
int eim__user_peers(void *conn, const char *user_id, eim_id_list *out,
                    eim_arena *a, eim_err *err);
int eim__read_set(void *conn, const char *conversation_id, const char *user_id,
                  uint64_t seq, uint64_t *read_seq, uint64_t *max_seq, eim_err *err);

int eim__cursor_max(eim__mongo *st, mongoc_client_t *c, const char *conv,
                    const char *user, uint64_t seq, uint64_t *read_seq, eim_err *err);

int eim__append(void *conn, eim_msg *batch, size_t n, eim_arena *a, eim_err *err);
int eim__history(void *conn, const eim_history_q *q, eim_msg_list *out,
                 eim_arena *a, eim_err *err);

/* seq.c */
void eim__msg_key(char *out, size_t size, const char *conv, uint64_t seq);
int eim__seq_exists(eim__mongo *st, mongoc_collection_t *msgs, const char *conv,
                    uint64_t seq, bson_t *doc, eim_err *err);
int eim__max_seq(eim__mongo *st, mongoc_collection_t *msgs, const char *conv,
                 uint64_t lower, uint64_t *max, eim_err *err);
int eim__last_msg(eim__mongo *st, mongoc_collection_t *msgs, const bson_t *conv_doc,
                  uint64_t *max, bson_t *last, eim_err *err);

#endif
