/* The membership cache: conversation_id -> member user_ids, loaded from the
 * store on first use and kept current by the creates and member additions
 * this node makes. Every chat, push and read checks membership here and
 * fans out from here. Loop thread only.
 *
 * Bounded: eim_convc_trim, run by the server's one-second sweep, drops the
 * least recently used conversations beyond membership_cache_conversations
 * (they load again on next use). Trimming only there, from a timer, means
 * no entry pointer handed to a caller can be freed under it. */
#ifndef EIM_CONVCACHE_H
#define EIM_CONVCACHE_H

#include <stddef.h>

#include "exampleim/plugin.h"
#include "list.h"
#include "sessions.h"

typedef struct eim_convc eim_convc;
typedef void (*eim_convc_cb)(void *ctx, const eim_convc *c, int rc, const char *why);

struct eim_convc {
  char *id;
  char **members;
  size_t n, cap;
  eim_usess **sess;          /* members' sessions here (NULL: none), see eim_convc_sessions */
  uint64_t sess_gen;         /* eim_sess_generation() when sess was filled; 0: never */
  int ready;                 /* 0 while loading */
  struct convc_waiter *waiters;
  eim__link lru;             /* ready entries, least recently used first */
};

/* Calls cb(ctx, c, EIM_OK) with the conversation's entry, at once when
 * cached, else after loading it; or cb(ctx, NULL, code, why) when the
 * conversation is unknown (EIM_ENOTFOUND) or the store failed. */
void eim_convc_with(const char *conversation_id, eim_convc_cb cb, void *ctx);
int eim_convc_is_member(const eim_convc *c, const char *user_id);
/* The session of each member (c->n of them, NULL where the member has no
 * connection here), looked up again only when sessions came or went since
 * the last call: a fan-out then walks pointers instead of hashing every
 * member's id. Valid until sessions change (any attach of a first
 * connection or detach of a last one). NULL when out of memory. */
eim_usess *const *eim_convc_sessions(const eim_convc *c);
/* Records (or refreshes) a conversation's members from a store result. */
void eim_convc_put(const char *conversation_id, const char *const *members, size_t n);
/* Drops least recently used conversations until at most max are cached.
 * Returns how many were dropped. */
size_t eim_convc_trim(size_t max);
/* Conversations cached (ready or loading). */
size_t eim_convc_count(void);
void eim_convc_free_all(void);

#endif
