/* The store worker pool: threads owned by the core that make the blocking
 * store calls, each with its own store connection (conn_open). Jobs are
 * submitted from the loop thread; their `done` runs back on the loop thread
 * through the mailbox, in completion order.
 *
 * Appends are group-committed: each of the first `shards` workers owns a
 * shard of conversations (by hash of conversation_id), and takes every
 * append queued for its shard (up to max_batch) into one store->append call.
 * One shard (the default) makes every commit carry everything waiting, which
 * is what a single-writer store like SQLite wants. Because one conversation's
 * appends are committed by one worker in order and completions reach the
 * loop in order, acks and deliveries of a conversation leave in seq order. */
#ifndef EIM_WORKERS_H
#define EIM_WORKERS_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "exampleim/plugin.h"
#include "mailbox.h"

typedef struct eim_job eim_job;
typedef void (*eim_job_fn)(eim_job *job, void *conn);

struct eim_job {
  eim_mail mail;            /* internal: completion to the loop */
  eim_job *next;            /* internal: queue link */
  int is_append;            /* set by submit */
  /* CALL jobs: runs on a worker with that worker's connection; sets rc,
   * err and results (allocated from arena). */
  eim_job_fn work;
  /* Runs on the loop thread when the job is done. Owns the job. */
  void (*done)(eim_job *job);
  void *ctx;                /* the submitter's */
  eim_arena arena;          /* results; the done callback resets it */
  eim_err err;
  int rc;
  /* APPEND jobs: the message in, the result out (strings in arena); rc is
   * the message's status or the batch's failure. */
  eim_msg msg;
};

/* Opens `n` store connections (on this thread, so a bad configuration fails
 * start-up with the store's own message) and starts the workers; the first
 * `shards` of them (1..n) take the appends, each a shard of the
 * conversations. Returns 0 or -1 with the reason in errbuf. */
int eim_workers_start(const eim_store_ops *ops, void *store_state, unsigned n, unsigned shards,
                      unsigned max_batch, char *errbuf, size_t errlen);
/* Queues a call job. job->work and job->done must be set. */
void eim_workers_call(eim_job *job);
/* Queues an append of job->msg (its strings must stay valid until done). */
void eim_workers_append(eim_job *job);
/* Jobs submitted and not yet done (loop thread view). */
uint64_t eim_workers_inflight(void);
/* Finishes queued work, joins the threads and closes the connections. Call
 * with the loop still able to run mailbox callbacks afterwards. */
void eim_workers_stop(void);

/* Initialises a job (zeroes it and its arena). */
void eim_job_init(eim_job *job, void (*done)(eim_job *), void *ctx);

#endif
