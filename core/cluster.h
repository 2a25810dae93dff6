/* Cluster: several nodes sharing one store and one queue (queue plugin, e.g.
 * queue-kafka). Without a queue plugin every function here is a cheap no-op
 * and delivery stays in process.
 *
 * With one, each node:
 *  - delivers to its own connections at once, and publishes every event so
 *    the other nodes deliver to theirs (records from itself are skipped);
 *  - orders conversation.chat per conversation with a sequencer: an event
 *    is written only when it is the next seq; a gap is held briefly, then
 *    filled from the store, so every connection gets every message once, in
 *    seq order, whichever node stored it;
 *  - keeps a cluster presence view: each node publishes its users'
 *    connection counts and a heartbeat; a node whose heartbeat lapses stops
 *    being counted. Presence events fire when a user's count over the whole
 *    cluster goes from 0 to 1 or back.
 * Loop thread only. */
#ifndef EIM_CLUSTER_H
#define EIM_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "exampleim/plugin.h"
#include "sessions.h"

/* Starts consuming (when a queue plugin is enabled). Returns 0 or -1. */
int eim_cluster_start(void);
/* Stops the timers; the plugin itself is unloaded with the others. */
void eim_cluster_stop(void);
int eim_cluster_enabled(void);

/* A user's connection count on this node changed (sessions.c). */
void eim_cluster_local_count(const char *user_id, unsigned count);
/* Connections of user_id on the other nodes. */
unsigned eim_cluster_remote_count(const char *user_id);

/* Sets where delivery of a conversation starts on this node when it does
 * not know yet: messages up to max_seq were stored before the local member
 * connected, who catches up by sync. */
void eim_cluster_seq_baseline(const char *conversation_id, uint64_t max_seq);

/* Delivers a stored message to this node's member connections (but
 * `except`) in seq order, and publishes it to the other nodes. */
void eim_cluster_chat(const eim_msg *m, const eim_client *except);
/* Publishes an event (the JSON text already sent locally) for the other
 * nodes to deliver to their connections: to a conversation's members, or to
 * a list of users. */
void eim_cluster_to_members(const char *conversation_id, const char *text);
void eim_cluster_to_users(const char *const *users, size_t n, const char *text);
/* Publishes a created conversation or new members: the other nodes refresh
 * their membership cache and peers, and tell `notify`'s connections. */
void eim_cluster_conversation(const eim_conv *c, const char *const *notify, size_t n);

#endif
