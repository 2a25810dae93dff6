/* A store that stores nothing, built twice: complete (fixture-store, the
 * second store of the "two stores" case) and with FIXTURE_NO_APPEND
 * (broken-no-append, whose mandatory append is NULL: the loader must refuse
 * it naming the function). Neither is ever asked to serve: the loader
 * refuses both set-ups before any worker starts. */
#include "fixture.h"

#ifdef FIXTURE_NO_APPEND
#define FIXTURE_NAME "broken-no-append"
#else
#define FIXTURE_NAME "fixture-store"
#endif

#define UNAVAIL return eim_err_set(err, EIM_EUNAVAIL, FIXTURE_NAME " stores nothing")

static int st_conn_open(void *state, void **conn, eim_err *err) {
  *conn = NULL;
  return EIM_OK;
}
static void st_conn_close(void *state, void *conn) {}
static int st_ping(void *conn, eim_err *err) { return EIM_OK; }
static int st_user_create(void *conn, const char *username, const char *password_hash,
                          int64_t created_at, eim_user *out, eim_arena *a, eim_err *err) {
  UNAVAIL;
}
static int st_user_by_name(void *conn, const char *username, eim_user *out, eim_arena *a,
                           eim_err *err) {
  UNAVAIL;
}
static int st_user_by_id(void *conn, const char *user_id, eim_user *out, eim_arena *a,
                         eim_err *err) {
  UNAVAIL;
}
static int st_conv_create(void *conn, const eim_conv_new *req, eim_conv *out, int *existed,
                          eim_arena *a, eim_err *err) {
  UNAVAIL;
}
static int st_conv_get(void *conn, const char *conversation_id, const char *user_id,
                       eim_conv *out, eim_arena *a, eim_err *err) {
  UNAVAIL;
}
static int st_conv_list(void *conn, const char *user_id, eim_conv_list *out, eim_arena *a,
                        eim_err *err) {
  UNAVAIL;
}
static int st_conv_add_members(void *conn, const char *conversation_id,
                               const char *const *user_ids, size_t n, int64_t now,
                               eim_err *err) {
  UNAVAIL;
}
static int st_conv_members(void *conn, const char *conversation_id, eim_id_list *out,
                           eim_arena *a, eim_err *err) {
  UNAVAIL;
}
static int st_user_peers(void *conn, const char *user_id, eim_id_list *out, eim_arena *a,
                         eim_err *err) {
  UNAVAIL;
}
#ifndef FIXTURE_NO_APPEND
static int st_append(void *conn, eim_msg *batch, size_t n, eim_arena *a, eim_err *err) {
  UNAVAIL;
}
#endif
static int st_history(void *conn, const eim_history_q *q, eim_msg_list *out, eim_arena *a,
                      eim_err *err) {
  UNAVAIL;
}
static int st_read_set(void *conn, const char *conversation_id, const char *user_id,
                       uint64_t seq, uint64_t *read_seq, uint64_t *max_seq, eim_err *err) {
  UNAVAIL;
}

static const eim_store_ops store_ops = {
    .version = EIM_STORE_OPS_V1,
    .conn_open = st_conn_open,
    .conn_close = st_conn_close,
    .ping = st_ping,
    .user_create = st_user_create,
    .user_by_name = st_user_by_name,
    .user_by_id = st_user_by_id,
    .conv_create = st_conv_create,
    .conv_get = st_conv_get,
    .conv_list = st_conv_list,
    .conv_add_members = st_conv_add_members,
    .conv_members = st_conv_members,
    .user_peers = st_user_peers,
#ifndef FIXTURE_NO_APPEND
    .append = st_append,
#endif
    .history = st_history,
    .read_set = st_read_set,
};

EIM_PLUGIN_DEFINE(FIXTURE_NAME, "0.0.1", fixture_init, fixture_fini, .store = &store_ops)
