/*
 * The checkpointer: copies the write-ahead log back into the database file
 * on a thread and connection of its own, so that appends do not wait for
 * the bulk of it.
 *
 * SQLite's autocheckpoint runs inside the COMMIT of whichever connection
 * crossed the threshold. With 16,000 pages of log that held one append batch
 * for 5-27 ms (growing with the database) about every 0.4 s at 20,000
 * messages/s: most of the p99 ack latency.
 *
 * Here a worker's WAL hook wakes this thread once the log holds
 * checkpoint_pages frames, and it runs one PASSIVE checkpoint, which lets
 * writers go on. But SQLite starts the log over only when a writer begins
 * while every frame has been copied, and a busy writer always adds frames
 * behind a passive checkpoint: passes of this thread alone never let the
 * log restart (an earlier try failed that way, and so did chasing the
 * writer with more passes, each syncing the database file under the
 * writer's commits). So the first commit after the pass copies the rest, the
 * frames committed during it, in its WAL hook while its worker still holds
 * the write lock; no commit can come between that and the next writer,
 * which restarts the log. That costs the commit 1.5-5 ms (up to 15 ms as the
 * database grows) instead of the whole checkpoint.
 *
 * Bound: past SQ_CKPT_BEHIND times the threshold (the thread starved, or
 * another process checkpointing) every commit tries to copy the whole log
 * itself, as autocheckpoint would, which works once the checkpoint lock is
 * free.
 */
#include "sq.h"

#include <sched.h>
#include <stdlib.h>

/* The log is checkpointed inline past this many times checkpoint_pages. */
#define SQ_CKPT_BEHIND 4

struct sq_ckpt {
  sq_state *st;
  sqlite3 *db;
  pthread_t thread;
  /* Hooks only, which run one at a time (under st->write_lock). A log that
   * shrank has restarted: a pass over the one before is no help. */
  int last_frames;
  unsigned gen; /* restarts seen */
  /* Under mu. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int wanted;        /* a hook asked for a pass ... */
  unsigned want_gen; /* ... over the log of this generation */
  int done;          /* a pass ended ... */
  unsigned done_gen; /* ... over the log of this generation */
  int stop;
};

/* One passive pass over the log. Errors (SQLITE_BUSY while another process
 * checkpoints, I/O) leave done clear: the next commit past the threshold
 * asks again. */
static void sq_ckpt_pass(sq_ckpt *k, unsigned gen) {
  if (sqlite3_wal_checkpoint_v2(k->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) !=
      SQLITE_OK)
    return;
  pthread_mutex_lock(&k->mu);
  k->done = 1;
  k->done_gen = gen;
  pthread_mutex_unlock(&k->mu);
}

static void *sq_ckpt_main(void *arg) {
  sq_ckpt *k = arg;

#ifdef SCHED_BATCH
  /* Like the store workers: when woken it does not preempt the loop. */
  struct sched_param sp = {.sched_priority = 0};
  (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
#endif
  pthread_mutex_lock(&k->mu);
  for (;;) {
    unsigned gen;

    while (!k->wanted && !k->stop)
      pthread_cond_wait(&k->cv, &k->mu);
    if (k->stop)
      break;
    gen = k->want_gen;
    pthread_mutex_unlock(&k->mu);
    sq_ckpt_pass(k, gen);
    pthread_mutex_lock(&k->mu);
    /* What the hooks asked during the pass, the pass did. */
    k->wanted = 0;
  }
  pthread_mutex_unlock(&k->mu);
  return NULL;
}

int sq__ckpt_start(sq_state *st, eim_err *err) {
  sq_ckpt *k;
  int code;

  k = calloc(1, sizeof *k);
  if (k == NULL)
    return eim_err_set(err, EIM_ENOMEM, "out of memory");
  k->st = st;
  code = sq__open(st, 0, &k->db, err);
  if (code != EIM_OK) {
    free(k);
    return code;
  }
  /* The hooks of the worker connections decide when; this connection never
   * writes, so it needs no autocheckpoint of its own. */
  sqlite3_wal_autocheckpoint(k->db, 0);
  if (pthread_mutex_init(&k->mu, NULL) != 0)
    goto fail_mu;
  if (pthread_cond_init(&k->cv, NULL) != 0)
    goto fail_cv;
  if (pthread_create(&k->thread, NULL, sq_ckpt_main, k) != 0)
    goto fail_thread;
  st->ckpt = k;
  return EIM_OK;

fail_thread:
  pthread_cond_destroy(&k->cv);
fail_cv:
  pthread_mutex_destroy(&k->mu);
fail_mu:
  sqlite3_close(k->db);
  free(k);
  return eim_err_set(err, EIM_ENOMEM, "cannot start the checkpoint thread");
}

void sq__ckpt_stop(sq_state *st) {
  sq_ckpt *k = st->ckpt;

  if (k == NULL)
    return;
  pthread_mutex_lock(&k->mu);
  k->stop = 1;
  pthread_cond_signal(&k->cv);
  pthread_mutex_unlock(&k->mu);
  pthread_join(k->thread, NULL);
  pthread_cond_destroy(&k->cv);
  pthread_mutex_destroy(&k->mu);
  sqlite3_close(k->db);
  free(k);
  st->ckpt = NULL;
}

int sq__wal_hook(void *arg, sqlite3 *db, const char *name, int frames) {
  sq_state *st = arg;
  sq_ckpt *k = st->ckpt;
  int finish;

  /* Only worker connections have this hook, opened after sq_init started
   * the thread: k is never NULL here. */
  if (frames < k->last_frames)
    k->gen++;
  k->last_frames = frames;
  if (frames < st->ckpt_pages)
    return SQLITE_OK;
  if (frames < SQ_CKPT_BEHIND * st->ckpt_pages) {
    pthread_mutex_lock(&k->mu);
    finish = k->done && k->done_gen == k->gen;
    k->done = 0;
    if (!finish && !k->wanted) {
      k->wanted = 1;
      k->want_gen = k->gen;
      pthread_cond_signal(&k->cv);
    }
    pthread_mutex_unlock(&k->mu);
    if (!finish)
      return SQLITE_OK;
  }
  /* What was committed during the thread's pass (or, far behind, the whole
   * log), while this worker holds the write lock. */
  (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
  return SQLITE_OK;
}
