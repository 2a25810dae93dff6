/* Fixtures shared by the store-mysql tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "th.h"

const char *th_user(th_plugin *p, void *conn, eim_arena *a, const char *tag) {
  eim_user u;
  eim_err err = {0};
  int rc;

  rc = p->ops->user_create(conn, th_unique(a, tag), "$argon2id$v=19$fake", th_now(),
                           &u, a, &err);
  TH_CHECK(rc == EIM_OK, "user_create: %d %s", rc, err.msg);
  return rc == EIM_OK ? u.user_id : NULL;
}

const char *th_group(th_plugin *p, void *conn, eim_arena *a, const char *creator,
                     const char *const *members, size_t n) {
  eim_conv_new req = {.type = EIM_CONV_GROUP, .name = "team", .creator = creator,
                      .members = members, .nmembers = n, .created_at = th_now()};
  eim_conv c;
  eim_err err = {0};
  int existed = -1, rc;

  rc = p->ops->conv_create(conn, &req, &c, &existed, a, &err);
  TH_CHECK(rc == EIM_OK && existed == 0, "conv_create group: %d %s", rc, err.msg);
  return rc == EIM_OK ? c.conversation_id : NULL;
}

int th_append_run(th_plugin *p, void *conn, const char *conv, const char *sender,
                  const char *tag, size_t n, size_t batch) {
  eim_msg *msgs = calloc(batch, sizeof *msgs);
  char (*cmid)[64] = calloc(batch, sizeof *cmid);
  eim_arena *a;
  eim_err err = {0};
  size_t done = 0, k, round = 0;
  uint64_t first_seq[2] = {0, 0};
  int fails = 0, rc, again;

  if (msgs == NULL || cmid == NULL)
    abort();
  while (done < n) {
    size_t m = n - done < batch ? n - done : batch;

    for (again = 0; again < (round % 10 == 9 ? 2 : 1); again++) {
      a = th_arena_new();
      for (k = 0; k < m; k++) {
        snprintf(cmid[k], sizeof cmid[k], "%s-%zu", tag, done + k);
        msgs[k] = (eim_msg){.conversation_id = conv, .sender = sender,
                            .client_msg_id = cmid[k], .content_type = "text",
                            .content = cmid[k], .content_len = strlen(cmid[k]),
                            .created_at = th_now()};
      }
      rc = p->ops->append(conn, msgs, m, a, &err);
      if (rc != EIM_OK) {
        fprintf(stderr, "FAIL append: %d %s\n", rc, err.msg);
        fails++;
      }
      for (k = 0; rc == EIM_OK && k < m; k++) {
        if (msgs[k].status != EIM_OK || msgs[k].seq == 0 ||
            msgs[k].duplicate != again) {
          fprintf(stderr, "FAIL append[%zu]: status %d seq %llu duplicate %d\n", k,
                  msgs[k].status, (unsigned long long)msgs[k].seq, msgs[k].duplicate);
          fails++;
        }
      }
      /* The re-sent batch must come back with the seqs of the first. */
      if (rc == EIM_OK)
        first_seq[again] = msgs[0].seq;
      if (again == 1 && first_seq[0] != first_seq[1]) {
        fprintf(stderr, "FAIL retry got seq %llu, first send %llu\n",
                (unsigned long long)first_seq[1], (unsigned long long)first_seq[0]);
        fails++;
      }
      th_arena_free(a);
    }
    done += m;
    round++;
  }
  free(msgs);
  free(cmid);
  return fails;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void th_check_gapless(th_plugin *p, void *conn, const char *conv, uint64_t total) {
  eim_arena *a = th_arena_new();
  const char **ids = calloc(total + 1, sizeof *ids);
  eim_history_q q = {.conversation_id = conv, .before_seq = 201, .limit = 200};
  eim_msg_list page;
  eim_err err = {0};
  uint64_t next = 1, i;
  size_t k;
  int rc;

  if (ids == NULL)
    abort();
  /* The first page is the last 200 below seq 201, i.e. 1..200; then page
   * forward with after_seq. */
  while (next <= total) {
    rc = p->ops->history(conn, &q, &page, a, &err);
    TH_CHECK(rc == EIM_OK, "history: %d %s", rc, err.msg);
    if (rc != EIM_OK || page.n == 0)
      break;
    for (k = 0; k < page.n; k++, next++) {
      TH_CHECK(page.items[k].seq == next, "seq %llu where %llu was due",
               (unsigned long long)page.items[k].seq, (unsigned long long)next);
      if (page.items[k].seq != next)
        goto out;
      ids[next - 1] = page.items[k].client_msg_id;
    }
    q.before_seq = 0;
    q.after_seq = next - 1;
  }
  TH_CHECK(next == total + 1, "found seqs 1..%llu, want 1..%llu",
           (unsigned long long)next - 1, (unsigned long long)total);
  q.before_seq = 0;
  q.after_seq = total;
  rc = p->ops->history(conn, &q, &page, a, &err);
  TH_CHECK(rc == EIM_OK && page.n == 0, "messages beyond seq %llu",
           (unsigned long long)total);
  qsort(ids, (size_t)(next - 1), sizeof *ids, cmp_str);
  for (i = 1; i + 1 < next; i++)
    TH_CHECK(strcmp(ids[i - 1], ids[i]) != 0, "client_msg_id %s stored twice", ids[i]);
out:
  free(ids);
  th_arena_free(a);
}
