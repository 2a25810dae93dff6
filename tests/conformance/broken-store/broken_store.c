/*
 * broken-store: an in-memory store that is correct except for one bug the
 * conformance kit must catch: every 10th message appended gets the same seq
 * as the message before it. Test-only; never installed.
 */
#include <exampleim/plugin.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct bs_msg {
  long id, seq, sender;
  char *cmid, *ctype, *content;
  size_t len;
  int64_t created_at;
} bs_msg;

typedef struct bs_member {
  long user, read_seq;
} bs_member;

typedef struct bs_conv {
  int type;
  char *name;
  long pair_lo, pair_hi;
  int64_t created_at, last_activity;
  long max_seq;
  bs_member *members;
  size_t nmembers;
  bs_msg *msgs;
  size_t nmsgs;
} bs_conv;

typedef struct bs_user {
  char *name, *hash;
  int64_t created_at;
} bs_user;

typedef struct bs_store {
  const eim_host *host;
  pthread_mutex_t lock;
  bs_user *users;
  size_t nusers;
  bs_conv *convs;
  size_t nconvs;
  long next_msg_id;
  long appended;
} bs_store;

/* Ids are "u<n>", "c<n>", "m<n>" for the n-th user, conversation, message,
 * counted from 1. */
static long bs_parse(const char *s, char kind, size_t count) {
  char *end;
  long v;

  if (s == NULL || s[0] != kind || s[1] < '1' || s[1] > '9')
    return 0;
  v = strtol(s + 1, &end, 10);
  return *end == '\0' && v > 0 && (size_t)v <= count ? v : 0;
}

static const char *bs_id(bs_store *st, eim_arena *a, char kind, long n) {
  char buf[32];
  int len = snprintf(buf, sizeof buf, "%c%ld", kind, n);

  return st->host->arena_strndup(a, buf, (size_t)len);
}

static const char *bs_dup(bs_store *st, eim_arena *a, const char *s) {
  return st->host->arena_strndup(a, s, strlen(s));
}

static int bs_grow(void **p, size_t n, size_t size) {
  void *q = realloc(*p, (n + 1) * size);

  if (q == NULL)
    return -1;
  *p = q;
  return 0;
}

static int bs_init(void **state, const eim_host *host, const eim_opt *opts, size_t nopts,
                   eim_err *err) {
  bs_store *st;

  if (nopts != 0)
    return eim_err_set(err, EIM_EINVAL, "%s:%d: unknown key '%s'", opts[0].file,
                       opts[0].line, opts[0].key);
  st = calloc(1, sizeof *st);
  if (st == NULL)
    return eim_err_set(err, EIM_ENOMEM, "out of memory");
  st->host = host;
  pthread_mutex_init(&st->lock, NULL);
  *state = st;
  return EIM_OK;
}

static void bs_fini(void *state) {
  bs_store *st = state;

  for (size_t i = 0; i < st->nusers; i++) {
    free(st->users[i].name);
    free(st->users[i].hash);
  }
  for (size_t i = 0; i < st->nconvs; i++) {
    bs_conv *c = &st->convs[i];
    for (size_t j = 0; j < c->nmsgs; j++) {
      free(c->msgs[j].cmid);
      free(c->msgs[j].ctype);
      free(c->msgs[j].content);
    }
    free(c->msgs);
    free(c->members);
    free(c->name);
  }
  free(st->users);
  free(st->convs);
  pthread_mutex_destroy(&st->lock);
  free(st);
}

static int bs_conn_open(void *state, void **conn, eim_err *err) {
  *conn = state;
  return EIM_OK;
}

static void bs_conn_close(void *state, void *conn) {}

static int bs_ping(void *conn, eim_err *err) {
  return EIM_OK;
}

static int bs_user_out(bs_store *st, long id, eim_user *out, eim_arena *a) {
  bs_user *u = &st->users[id - 1];

  out->user_id = bs_id(st, a, 'u', id);
  out->username = bs_dup(st, a, u->name);
  out->password_hash = bs_dup(st, a, u->hash);
  out->created_at = u->created_at;
  return out->user_id && out->username && out->password_hash ? EIM_OK : EIM_ENOMEM;
}

static int bs_user_create(void *conn, const char *username, const char *hash,
                          int64_t created_at, eim_user *out, eim_arena *a, eim_err *err) {
  bs_store *st = conn;
  int code = EIM_OK;

  pthread_mutex_lock(&st->lock);
  for (size_t i = 0; i < st->nusers; i++) {
    if (strcmp(st->users[i].name, username) == 0) {
      code = eim_err_set(err, EIM_ECONFLICT, "username is taken");
      goto done;
    }
  }
  if (bs_grow((void **)&st->users, st->nusers, sizeof *st->users) != 0) {
    code = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto done;
  }
  st->users[st->nusers] = (bs_user){strdup(username), strdup(hash), created_at};
  st->nusers++;
  code = bs_user_out(st, (long)st->nusers, out, a);

done:
  pthread_mutex_unlock(&st->lock);
  return code;
}

static int bs_user_by_name(void *conn, const char *username, eim_user *out, eim_arena *a,
                           eim_err *err) {
  bs_store *st = conn;
  int code = eim_err_set(err, EIM_ENOTFOUND, "no such user");

  pthread_mutex_lock(&st->lock);
  for (size_t i = 0; i < st->nusers; i++) {
    if (strcmp(st->users[i].name, username) == 0)
      code = bs_user_out(st, (long)i + 1, out, a);
  }
  pthread_mutex_unlock(&st->lock);
  return code;
}

static int bs_user_by_id(void *conn, const char *user_id, eim_user *out, eim_arena *a,
                         eim_err *err) {
  bs_store *st = conn;
  long id;
  int code;

  pthread_mutex_lock(&st->lock);
  id = bs_parse(user_id, 'u', st->nusers);
  code = id != 0 ? bs_user_out(st, id, out, a)
                 : eim_err_set(err, EIM_ENOTFOUND, "no such user");
  pthread_mutex_unlock(&st->lock);
  return code;
}

static void bs_msg_out(bs_store *st, long conv, const bs_msg *m, eim_msg *out, eim_arena *a) {
  char *content = st->host->arena_alloc(a, m->len + 1);

  memset(out, 0, sizeof *out);
  if (content != NULL) {
    memcpy(content, m->content, m->len);
    content[m->len] = '\0';
  }
  out->conversation_id = bs_id(st, a, 'c', conv);
  out->sender = bs_id(st, a, 'u', m->sender);
  out->client_msg_id = bs_dup(st, a, m->cmid);
  out->content_type = bs_dup(st, a, m->ctype);
  out->content = content;
  out->content_len = m->len;
  out->created_at = m->created_at;
  out->msg_id = bs_id(st, a, 'm', m->id);
  out->seq = (uint64_t)m->seq;
}

static void bs_conv_out(bs_store *st, long id, long viewer, eim_conv *out, eim_arena *a) {
  bs_conv *c = &st->convs[id - 1];

  memset(out, 0, sizeof *out);
  out->conversation_id = bs_id(st, a, 'c', id);
  out->type = c->type;
  out->name = bs_dup(st, a, c->name);
  out->created_at = c->created_at;
  out->last_activity = c->last_activity;
  out->max_seq = (uint64_t)c->max_seq;
  out->members = st->host->arena_alloc(a, (c->nmembers + 1) * sizeof *out->members);
  for (size_t i = 0; out->members != NULL && i < c->nmembers; i++) {
    out->members[i] = bs_id(st, a, 'u', c->members[i].user);
    if (c->members[i].user == viewer)
      out->read_seq = (uint64_t)c->members[i].read_seq;
  }
  out->nmembers = out->members != NULL ? c->nmembers : 0;
  if (c->nmsgs != 0) {
    out->last_message = st->host->arena_alloc(a, sizeof *out->last_message);
    if (out->last_message != NULL)
      bs_msg_out(st, id, &c->msgs[c->nmsgs - 1], out->last_message, a);
  }
}

static bs_member *bs_member_find(bs_conv *c, long user) {
  for (size_t i = 0; i < c->nmembers; i++) {
    if (c->members[i].user == user)
      return &c->members[i];
  }
  return NULL;
}

static int bs_member_add(bs_conv *c, long user) {
  if (bs_member_find(c, user) != NULL)
    return 0;
  if (bs_grow((void **)&c->members, c->nmembers, sizeof *c->members) != 0)
    return -1;
  c->members[c->nmembers++] = (bs_member){user, 0};
  return 0;
}

static int bs_conv_create(void *conn, const eim_conv_new *req, eim_conv *out, int *existed,
                          eim_arena *a, eim_err *err) {
  bs_store *st = conn;
  long creator, peer = 0, lo, hi;
  bs_conv *c;
  int code = EIM_OK;

  *existed = 0;
  pthread_mutex_lock(&st->lock);
  creator = bs_parse(req->creator, 'u', st->nusers);
  for (size_t i = 0; creator != 0 && i < req->nmembers; i++) {
    if (bs_parse(req->members[i], 'u', st->nusers) == 0)
      creator = 0;
  }
  if (creator == 0 || (req->type == EIM_CONV_SINGLE && req->nmembers != 1)) {
    code = eim_err_set(err, EIM_ENOTFOUND, "no such user");
    goto done;
  }
  if (req->type == EIM_CONV_SINGLE) {
    peer = bs_parse(req->members[0], 'u', st->nusers);
    lo = peer < creator ? peer : creator;
    hi = peer < creator ? creator : peer;
    for (size_t i = 0; i < st->nconvs; i++) {
      if (st->convs[i].type == EIM_CONV_SINGLE && st->convs[i].pair_lo == lo &&
          st->convs[i].pair_hi == hi) {
        *existed = 1;
        bs_conv_out(st, (long)i + 1, creator, out, a);
        goto done;
      }
    }
  }
  if (bs_grow((void **)&st->convs, st->nconvs, sizeof *st->convs) != 0) {
    code = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto done;
  }
  c = &st->convs[st->nconvs++];
  memset(c, 0, sizeof *c);
  c->type = req->type;
  c->name = strdup(req->type == EIM_CONV_GROUP && req->name != NULL ? req->name : "");
  c->created_at = c->last_activity = req->created_at;
  if (req->type == EIM_CONV_SINGLE) {
    c->pair_lo = peer < creator ? peer : creator;
    c->pair_hi = peer < creator ? creator : peer;
  }
  bs_member_add(c, creator);
  for (size_t i = 0; i < req->nmembers; i++)
    bs_member_add(c, bs_parse(req->members[i], 'u', st->nusers));
  bs_conv_out(st, (long)st->nconvs, creator, out, a);

done:
  pthread_mutex_unlock(&st->lock);
  return code;
}

static int bs_conv_get(void *conn, const char *conversation_id, const char *user_id,
                       eim_conv *out, eim_arena *a, eim_err *err) {
  bs_store *st = conn;
  long id;
  int code = EIM_OK;

  pthread_mutex_lock(&st->lock);
  id = bs_parse(conversation_id, 'c', st->nconvs);
  if (id != 0)
    bs_conv_out(st, id, bs_parse(user_id, 'u', st->nusers), out, a);
  else
    code = eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  pthread_mutex_unlock(&st->lock);
  return code;
}

static int bs_conv_list(void *conn, const char *user_id, eim_conv_list *out, eim_arena *a,
                        eim_err *err) {
  bs_store *st = conn;
  long user;

  pthread_mutex_lock(&st->lock);
  user = bs_parse(user_id, 'u', st->nusers);
  out->n = 0;
  out->items = st->host->arena_alloc(a, (st->nconvs + 1) * sizeof *out->items);
  for (size_t i = 0; out->items != NULL && i < st->nconvs; i++) {
    size_t j;
    if (bs_member_find(&st->convs[i], user) == NULL)
      continue;
    /* Insertion sort: most recent activity first, then older ids first. */
    for (j = out->n; j > 0 && out->items[j - 1].last_activity < st->convs[i].last_activity; j--)
      out->items[j] = out->items[j - 1];
    bs_conv_out(st, (long)i + 1, user, &out->items[j], a);
    out->n++;
  }
  pthread_mutex_unlock(&st->lock);
  return out->items != NULL ? EIM_OK : EIM_ENOMEM;
}

static int bs_conv_add_members(void *conn, const char *conversation_id,
                               const char *const *user_ids, size_t n, int64_t now,
                               eim_err *err) {
  bs_store *st = conn;
  long id;
  int code = EIM_OK;

  pthread_mutex_lock(&st->lock);
  id = bs_parse(conversation_id, 'c', st->nconvs);
  if (id == 0) {
    code = eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
    goto done;
  }
  if (st->convs[id - 1].type != EIM_CONV_GROUP) {
    code = eim_err_set(err, EIM_EINVAL, "not a group");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    if (bs_parse(user_ids[i], 'u', st->nusers) == 0) {
      code = eim_err_set(err, EIM_ENOTFOUND, "no such user");
      goto done;
    }
  }
  for (size_t i = 0; i < n; i++)
    bs_member_add(&st->convs[id - 1], bs_parse(user_ids[i], 'u', st->nusers));

done:
  pthread_mutex_unlock(&st->lock);
  return code;
}

static int bs_conv_members(void *conn, const char *conversation_id, eim_id_list *out,
                           eim_arena *a, eim_err *err) {
  eim_conv c;
  int code = bs_conv_get(conn, conversation_id, NULL, &c, a, err);

  out->ids = code == EIM_OK ? c.members : NULL;
  out->n = code == EIM_OK ? c.nmembers : 0;
  return code;
}

static int bs_user_peers(void *conn, const char *user_id, eim_id_list *out, eim_arena *a,
                         eim_err *err) {
  bs_store *st = conn;
  long user;
  char *seen;

  pthread_mutex_lock(&st->lock);
  user = bs_parse(user_id, 'u', st->nusers);
  seen = calloc(st->nusers + 1, 1);
  out->n = 0;
  out->ids = st->host->arena_alloc(a, (st->nusers + 1) * sizeof *out->ids);
  for (size_t i = 0; seen != NULL && out->ids != NULL && i < st->nconvs; i++) {
    bs_conv *c = &st->convs[i];
    if (bs_member_find(c, user) == NULL)
      continue;
    for (size_t j = 0; j < c->nmembers; j++) {
      long p = c->members[j].user;
      if (p != user && !seen[p]) {
        seen[p] = 1;
        out->ids[out->n++] = bs_id(st, a, 'u', p);
      }
    }
  }
  free(seen);
  pthread_mutex_unlock(&st->lock);
  return out->ids != NULL ? EIM_OK : EIM_ENOMEM;
}

static void bs_append_one(bs_store *st, eim_msg *m, eim_arena *a) {
  long conv = bs_parse(m->conversation_id, 'c', st->nconvs);
  long sender = bs_parse(m->sender, 'u', st->nusers);
  bs_member *me;
  bs_conv *c;
  bs_msg *stored;

  m->duplicate = 0;
  if (conv == 0 || sender == 0 || (me = bs_member_find(&st->convs[conv - 1], sender)) == NULL) {
    m->status = EIM_ENOTFOUND;
    return;
  }
  c = &st->convs[conv - 1];
  for (size_t i = 0; i < c->nmsgs; i++) {
    if (c->msgs[i].sender == sender && strcmp(c->msgs[i].cmid, m->client_msg_id) == 0) {
      bs_msg_out(st, conv, &c->msgs[i], m, a);
      m->duplicate = 1;
      m->status = EIM_OK;
      return;
    }
  }
  if (bs_grow((void **)&c->msgs, c->nmsgs, sizeof *c->msgs) != 0) {
    m->status = EIM_ENOMEM;
    return;
  }
  /* The bug under test: every 10th message repeats the previous seq. */
  if (++st->appended % 10 != 0 || c->max_seq == 0)
    c->max_seq++;
  stored = &c->msgs[c->nmsgs++];
  *stored = (bs_msg){.id = ++st->next_msg_id, .seq = c->max_seq, .sender = sender,
                     .cmid = strdup(m->client_msg_id), .ctype = strdup(m->content_type),
                     .content = malloc(m->content_len + 1), .len = m->content_len,
                     .created_at = m->created_at};
  if (stored->content != NULL)
    memcpy(stored->content, m->content, m->content_len);
  c->last_activity = m->created_at;
  if (me->read_seq < c->max_seq)
    me->read_seq = c->max_seq;
  m->msg_id = bs_id(st, a, 'm', stored->id);
  m->seq = (uint64_t)stored->seq;
  m->status = EIM_OK;
}

static int bs_append(void *conn, eim_msg *batch, size_t n, eim_arena *a, eim_err *err) {
  bs_store *st = conn;

  pthread_mutex_lock(&st->lock);
  for (size_t i = 0; i < n; i++)
    bs_append_one(st, &batch[i], a);
  pthread_mutex_unlock(&st->lock);
  return EIM_OK;
}

static int bs_history(void *conn, const eim_history_q *q, eim_msg_list *out, eim_arena *a,
                      eim_err *err) {
  bs_store *st = conn;
  size_t first = 0, end, count;
  long conv;
  bs_conv *c;
  int code = EIM_OK;

  pthread_mutex_lock(&st->lock);
  out->n = 0;
  out->has_more = 0;
  out->items = NULL;
  conv = bs_parse(q->conversation_id, 'c', st->nconvs);
  if (conv == 0) {
    code = eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
    goto done;
  }
  c = &st->convs[conv - 1];
  end = c->nmsgs;
  if (q->after_seq > 0) {
    while (first < c->nmsgs && (uint64_t)c->msgs[first].seq <= q->after_seq)
      first++;
    count = end - first < q->limit ? end - first : q->limit;
    out->has_more = end - first > count;
  } else {
    if (q->before_seq > 0) {
      while (end > 0 && (uint64_t)c->msgs[end - 1].seq >= q->before_seq)
        end--;
    }
    count = end < q->limit ? end : q->limit;
    first = end - count;
    out->has_more = first > 0;
  }
  out->items = st->host->arena_alloc(a, (count + 1) * sizeof *out->items);
  for (size_t i = 0; out->items != NULL && i < count; i++)
    bs_msg_out(st, conv, &c->msgs[first + i], &out->items[i], a);
  out->n = out->items != NULL ? count : 0;

done:
  pthread_mutex_unlock(&st->lock);
  return code;
}

static int bs_read_set(void *conn, const char *conversation_id, const char *user_id,
                       uint64_t seq, uint64_t *read_seq, uint64_t *max_seq, eim_err *err) {
  bs_store *st = conn;
  long conv, user;
  bs_member *me = NULL;
  int code = EIM_OK;

  pthread_mutex_lock(&st->lock);
  conv = bs_parse(conversation_id, 'c', st->nconvs);
  user = bs_parse(user_id, 'u', st->nusers);
  if (conv != 0)
    me = bs_member_find(&st->convs[conv - 1], user);
  if (me == NULL) {
    code = eim_err_set(err, EIM_ENOTFOUND, "no such member");
    goto done;
  }
  if (seq > (uint64_t)st->convs[conv - 1].max_seq)
    seq = (uint64_t)st->convs[conv - 1].max_seq;
  if ((uint64_t)me->read_seq < seq)
    me->read_seq = (long)seq;
  *read_seq = (uint64_t)me->read_seq;
  *max_seq = (uint64_t)st->convs[conv - 1].max_seq;

done:
  pthread_mutex_unlock(&st->lock);
  return code;
}

static const eim_store_ops bs_ops = {
    .version = EIM_STORE_OPS_V1,
    .conn_open = bs_conn_open,
    .conn_close = bs_conn_close,
    .ping = bs_ping,
    .user_create = bs_user_create,
    .user_by_name = bs_user_by_name,
    .user_by_id = bs_user_by_id,
    .conv_create = bs_conv_create,
    .conv_get = bs_conv_get,
    .conv_list = bs_conv_list,
    .conv_add_members = bs_conv_add_members,
    .conv_members = bs_conv_members,
    .user_peers = bs_user_peers,
    .append = bs_append,
    .history = bs_history,
    .read_set = bs_read_set,
};

EIM_PLUGIN_DEFINE("broken-store", "0.0.0", bs_init, bs_fini, .store = &bs_ops)
