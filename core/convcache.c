#include "convcache.h"

#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "server.h"
#include "workers.h"

typedef struct convc_waiter {
  struct convc_waiter *next;
  eim_convc_cb cb;
  void *ctx;
} convc_waiter;

typedef struct {
  eim_job job;
  char *id;
  eim_id_list out;
} load_job;

/* Ready entries, least recently used first. */
static eim__link lru = {&lru, &lru};

/* Marks c (ready) as just used. */
static void lru_touch(eim_convc *c) {
  eim__list_remove(&c->lru);
  eim__list_push(&lru, &c->lru);
}

static void set_members(eim_convc *c, const char *const *members, size_t n) {
  for (size_t i = 0; i < c->n; i++) free(c->members[i]);
  c->n = 0;
  c->sess_gen = 0;
  if (n > c->cap) {
    char **m = realloc(c->members, n * sizeof *m);
    if (m == NULL) return;
    c->members = m;
    c->cap = n;
  }
  for (size_t i = 0; i < n; i++) {
    c->members[c->n] = strdup(members[i]);
    if (c->members[c->n] != NULL) c->n++;
  }
}

static void entry_free(eim_convc *c) {
  eim__list_remove(&c->lru);
  for (size_t i = 0; i < c->n; i++) free(c->members[i]);
  free(c->members);
  free(c->sess);
  free(c->id);
  free(c);
}

static eim_convc *entry_new(const char *id) {
  eim_convc *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  eim__list_init(&c->lru);
  c->id = strdup(id);
  if (c->id == NULL || eim_hmap_put(&eim_srv.convs, id, c) != 0) {
    free(c->id);
    free(c);
    return NULL;
  }
  return c;
}

static void load_work(eim_job *j, void *conn) {
  load_job *lj = (load_job *)j;
  j->rc = eim_srv.store->conv_members(conn, lj->id, &lj->out, &j->arena, &j->err);
}

static void load_done(eim_job *j) {
  load_job *lj = (load_job *)j;
  eim_convc *c = eim_hmap_get(&eim_srv.convs, lj->id);
  if (c != NULL) {
    convc_waiter *w = c->waiters;
    c->waiters = NULL;
    int rc = j->rc;
    if (rc == EIM_OK) {
      if (!c->ready) set_members(c, lj->out.ids, lj->out.n);
      c->ready = 1;
      lru_touch(c);
    } else {
      eim_hmap_del(&eim_srv.convs, lj->id);
    }
    while (w != NULL) {
      convc_waiter *next = w->next;
      w->cb(w->ctx, rc == EIM_OK ? c : NULL, rc, j->err.msg);
      free(w);
      w = next;
    }
    if (rc != EIM_OK) entry_free(c);
  }
  eim_arena_reset(&j->arena);
  free(lj->id);
  free(lj);
}

void eim_convc_with(const char *id, eim_convc_cb cb, void *ctx) {
  eim_convc *c = eim_hmap_get(&eim_srv.convs, id);
  if (c != NULL && c->ready) {
    lru_touch(c);
    cb(ctx, c, EIM_OK, NULL);
    return;
  }
  convc_waiter *w = malloc(sizeof *w);
  if (w == NULL) {
    cb(ctx, NULL, EIM_ENOMEM, "out of memory");
    return;
  }
  w->cb = cb;
  w->ctx = ctx;
  if (c == NULL) {
    c = entry_new(id);
    load_job *lj = calloc(1, sizeof *lj);
    if (c == NULL || lj == NULL || (lj->id = strdup(id)) == NULL) {
      if (c) {
        eim_hmap_del(&eim_srv.convs, id);
        entry_free(c);
      }
      free(lj);
      free(w);
      cb(ctx, NULL, EIM_ENOMEM, "out of memory");
      return;
    }
    eim_job_init(&lj->job, load_done, NULL);
    lj->job.work = load_work;
    eim_workers_call(&lj->job);
  }
  /* FIFO, so one connection's requests keep their order. */
  w->next = NULL;
  convc_waiter **tail = &c->waiters;
  while (*tail != NULL) tail = &(*tail)->next;
  *tail = w;
}

int eim_convc_is_member(const eim_convc *c, const char *user_id) {
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->members[i], user_id) == 0) return 1;
  return 0;
}

eim_usess *const *eim_convc_sessions(const eim_convc *cc) {
  /* The session pointers are a cache beside the members: filling it does
   * not change what the entry says, hence the const interface. */
  eim_convc *c = (eim_convc *)cc;
  uint64_t gen = eim_sess_generation();
  if (c->sess_gen == gen) return c->sess;
  /* Sized by cap, not n: members only change through set_members, which
   * keeps n <= cap, so the array never needs to shrink. */
  eim_usess **s = realloc(c->sess, (c->cap ? c->cap : 1) * sizeof *s);
  if (s == NULL) return NULL;
  c->sess = s;
  for (size_t i = 0; i < c->n; i++) s[i] = eim_sess_get(c->members[i]);
  c->sess_gen = gen;
  return s;
}

void eim_convc_put(const char *id, const char *const *members, size_t n) {
  eim_convc *c = eim_hmap_get(&eim_srv.convs, id);
  if (c == NULL && (c = entry_new(id)) == NULL) return;
  set_members(c, members, n);
  c->ready = 1;
  lru_touch(c);
}

size_t eim_convc_trim(size_t max) {
  size_t dropped = 0;
  /* Only ready entries are in the list: a loading one has waiters. */
  while (eim_srv.convs.len > max && !eim__list_empty(&lru)) {
    eim_convc *c = EIM__CONTAINER(lru.next, eim_convc, lru);
    eim_hmap_del(&eim_srv.convs, c->id);
    entry_free(c);
    dropped++;
  }
  return dropped;
}

size_t eim_convc_count(void) { return eim_srv.convs.len; }

void eim_convc_free_all(void) {
  eim_convc *c;
  for (size_t it = 0; eim_hmap_next(&eim_srv.convs, &it, NULL, (void **)&c);) {
    convc_waiter *w = c->waiters;
    while (w) {
      convc_waiter *next = w->next;
      free(w);
      w = next;
    }
    entry_free(c);
  }
  eim__list_init(&lru);
  eim_hmap_free(&eim_srv.convs);
}
