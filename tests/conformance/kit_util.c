/*
 * Fixtures the store checks build on: users with the run's prefix,
 * conversations, single sends, whole histories, id list comparisons.
 */
#include "kit.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Timestamps a second apart, so ordering by time is never a tie. */
int64_t kit_time(kit_store *k) {
  k->clock += 1000;
  return k->clock;
}

/* printf into the check's arena; NULL only when memory is exhausted. */
char *kit_fmt(kit_store *k, const char *fmt, ...) {
  va_list ap;
  char *s;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  s = k->host->arena_alloc(k->a, (size_t)n + 1);
  if (s == NULL)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

int kit_user(kit_store *k, const char *tag, const char **id) {
  const char *name = kit_fmt(k, "%s.%s", k->prefix, tag);
  eim_user u;

  KIT_EXPECT(k, name != NULL, "out of memory");
  KIT_OK(k, "user_create", k->ops->user_create(k->conn, name, "$argon2id$kit", kit_time(k),
                                               &u, k->a, &k->err));
  KIT_EXPECT(k, u.user_id != NULL && u.user_id[0] != '\0', "user_create gave no user_id");
  *id = u.user_id;
  return 0;
}

int kit_single(kit_store *k, const char *creator, const char *peer, const char **conv) {
  eim_conv_new req = {.type = EIM_CONV_SINGLE, .name = "", .creator = creator,
                      .members = &peer, .nmembers = 1, .created_at = kit_time(k)};
  eim_conv out;
  int existed;

  KIT_OK(k, "conv_create(single)",
         k->ops->conv_create(k->conn, &req, &out, &existed, k->a, &k->err));
  *conv = out.conversation_id;
  return 0;
}

int kit_group(kit_store *k, const char *creator, const char *const *members, size_t n,
              const char **conv) {
  eim_conv_new req = {.type = EIM_CONV_GROUP, .name = "kit group", .creator = creator,
                      .members = members, .nmembers = n, .created_at = kit_time(k)};
  eim_conv out;
  int existed;

  KIT_OK(k, "conv_create(group)",
         k->ops->conv_create(k->conn, &req, &out, &existed, k->a, &k->err));
  *conv = out.conversation_id;
  return 0;
}

/* Appends one text message and checks it was stored as new. */
int kit_send(kit_store *k, const char *conv, const char *sender, const char *cmid,
             const char *content, eim_msg *out) {
  eim_msg m = {.conversation_id = conv, .sender = sender, .client_msg_id = cmid,
               .content_type = "text", .content = content, .content_len = strlen(content),
               .created_at = kit_time(k)};

  KIT_OK(k, "append", k->ops->append(k->conn, &m, 1, k->a, &k->err));
  KIT_EXPECT(k, m.status == EIM_OK, "append of %s: status %d", cmid, m.status);
  KIT_EXPECT(k, m.duplicate == 0, "append of new %s: duplicate = 1", cmid);
  if (out != NULL)
    *out = m;
  return 0;
}

/* The whole history of conv over conn, in ascending seq. Pages backwards
 * from the latest (after_seq 0 means "latest", so forward paging cannot
 * start at the beginning), 200 at a time, checking each page's shape. */
int kit_history_all(kit_store *k, void *conn, const char *conv, eim_msg **msgs, size_t *n) {
  eim_msg_list *pages = NULL;
  size_t npages = 0, cap = 0, total = 0;
  eim_history_q q = {.conversation_id = conv, .limit = 200};
  eim_msg *all;

  for (;;) {
    eim_msg_list page;

    KIT_OK(k, "history", k->ops->history(conn, &q, &page, k->a, &k->err));
    KIT_EXPECT(k, page.n <= q.limit, "history gave %zu messages for limit %u", page.n,
               (unsigned)q.limit);
    KIT_EXPECT(k, page.n > 0 || !page.has_more, "history: empty page with has_more");
    for (size_t i = 1; i < page.n; i++)
      KIT_EXPECT(k, page.items[i - 1].seq < page.items[i].seq,
                 "history page not in ascending seq");
    if (npages == cap) {
      size_t ncap = cap != 0 ? cap * 2 : 16;
      eim_msg_list *grown = k->host->arena_alloc(k->a, ncap * sizeof *grown);
      KIT_EXPECT(k, grown != NULL, "out of memory");
      if (npages != 0)
        memcpy(grown, pages, npages * sizeof *grown);
      pages = grown;
      cap = ncap;
    }
    pages[npages++] = page;
    total += page.n;
    if (!page.has_more)
      break;
    q.before_seq = page.items[0].seq;
  }
  all = k->host->arena_alloc(k->a, (total != 0 ? total : 1) * sizeof *all);
  KIT_EXPECT(k, all != NULL, "out of memory");
  *n = 0;
  for (size_t p = npages; p-- > 0;) {
    if (pages[p].n != 0)
      memcpy(all + *n, pages[p].items, pages[p].n * sizeof *all);
    *n += pages[p].n;
  }
  *msgs = all;
  return 0;
}

/* 1 when both lists hold the same ids in the same order. */
int kit_ids_equal(const char *const *a, size_t na, const char *const *b, size_t nb) {
  if (na != nb)
    return 0;
  for (size_t i = 0; i < na; i++) {
    if (strcmp(a[i], b[i]) != 0)
      return 0;
  }
  return 1;
}

/* 1 when both lists hold the same ids, each once, in any order. */
int kit_ids_same_set(const char *const *a, size_t na, const char *const *b, size_t nb) {
  if (na != nb)
    return 0;
  for (size_t i = 0; i < na; i++) {
    size_t hits = 0;
    for (size_t j = 0; j < nb; j++)
      hits += strcmp(a[i], b[j]) == 0;
    if (hits != 1)
      return 0;
    hits = 0;
    for (size_t j = 0; j < na; j++)
      hits += strcmp(a[i], a[j]) == 0;
    if (hits != 1)
      return 0;
  }
  return 1;
}
