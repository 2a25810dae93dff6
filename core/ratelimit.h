/* Keyed token buckets (e.g. failed logins per IP and per username). A key
 * that has been idle long enough to be full again is forgotten by
 * eim_ratelimit_sweep, so memory follows recent activity only. Loop thread
 * only. */
#ifndef EIM_RATELIMIT_H
#define EIM_RATELIMIT_H

#include <stdint.h>

#include "hmap.h"

typedef struct eim_ratelimit {
  eim_hmap buckets;     /* key -> bucket */
  double burst;         /* bucket size */
  double per_ms;        /* refill rate */
} eim_ratelimit;

/* burst tokens, refilled at per_minute tokens a minute. */
void eim_ratelimit_init(eim_ratelimit *rl, double burst, double per_minute);
void eim_ratelimit_free(eim_ratelimit *rl);
/* 1 when key has at least one token left (nothing is taken). */
int eim_ratelimit_check(eim_ratelimit *rl, const char *key, int64_t now_ms);
/* Takes one token from key (creating its bucket full). */
void eim_ratelimit_take(eim_ratelimit *rl, const char *key, int64_t now_ms);
/* Forgets buckets that are full again. */
void eim_ratelimit_sweep(eim_ratelimit *rl, int64_t now_ms);

#endif
