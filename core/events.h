/* Events to clients (protocol.md, Events): built once, written to every
 * addressed connection on this node, and handed to the cluster layer for the
 * other nodes when a queue plugin is enabled. Loop thread only. */
#ifndef EIM_EVENTS_H
#define EIM_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "convcache.h"
#include "exampleim/plugin.h"
#include "sessions.h"

/* Writes text (JSON, taken: freed with cJSON_free) to the connections of
 * the conversation's members on this node but `except`, once the membership
 * is known. */
void eim_event_to_members(const char *conversation_id, char *text, const eim_client *except,
                          eim_metric_event ev);
/* Writes text now to the connections of c's members on this node but
 * `except`; returns how many it was written to. */
size_t eim_event_send_to_convc(const eim_convc *c, const char *text, size_t len,
                               const eim_client *except, eim_metric_event ev);
/* conversation.chat to every member connection but `except`. */
void eim_event_chat(const eim_msg *m, const eim_client *except);
/* conversation.read receipt to every member connection but `except`. */
void eim_event_read(const char *conversation_id, const char *user_id, uint64_t read_seq,
                    const eim_client *except);
/* conversation.created to the connections of the given users. */
void eim_event_created(const eim_conv *c, const char *const *users, size_t n);

#endif
