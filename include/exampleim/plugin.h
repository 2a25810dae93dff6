/*
 * ExampleIM plugin ABI, major version 1.
 *
 * This is the only header a plugin includes. A plugin is a shared object that
 * exports one function, eim_plugin_describe(), returning a constant descriptor
 * (write it with EIM_PLUGIN_DEFINE). The server dlopen()s the object with
 * RTLD_NOW | RTLD_LOCAL, checks the descriptor and calls init() with a host
 * API table and the key/value options of the plugin's plugins.d file.
 *
 * Versioning rules (see docs/plugins.md):
 *   - abi_major must equal the server's EIM_ABI_MAJOR exactly;
 *   - abi_minor grows append-only: new members are only ever added at the
 *     end of a struct, and every struct that can grow carries a size or a
 *     version field the other side reads before touching later members;
 *   - a descriptor smaller than EIM_PLUGIN_DESC_MIN_SIZE is refused.
 *
 * Errors are negative EIM_E* codes plus a message in an eim_err; a plugin
 * never exits the process.
 */
#ifndef EXAMPLEIM_PLUGIN_H
#define EXAMPLEIM_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EIM_ABI_MAJOR 1
#define EIM_ABI_MINOR 0

#if defined(__GNUC__)
#define EIM_EXPORT __attribute__((visibility("default")))
#define EIM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define EIM_EXPORT
#define EIM_PRINTF(f, a)
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

/* Return codes. 0 is success; each error maps onto one protocol error code. */
enum {
  EIM_OK = 0,
  EIM_EINVAL = -1,     /* invalid argument or value      -> bad_request */
  EIM_ENOTFOUND = -2,  /* unknown user or conversation   -> not_found */
  EIM_ECONFLICT = -3,  /* unique key taken (username)    -> conflict */
  EIM_EFORBIDDEN = -4, /* not allowed                    -> forbidden */
  EIM_EUNAVAIL = -5,   /* backend unreachable, retry     -> unavailable */
  EIM_ENOMEM = -6,     /* out of memory                  -> internal */
  EIM_EINTERNAL = -7,  /* anything else                  -> internal */
  EIM_EAUTH = -8,      /* bad token or credentials       -> unauthorized */
  EIM_EEXPIRED = -9,   /* token expired                  -> unauthorized */
  EIM_ETOOBIG = -10    /* over a size limit              -> payload_too_large */
};

#define EIM_ERR_MSG_MAX 256

typedef struct eim_err {
  int code;                   /* one of the EIM_E* codes, or EIM_OK */
  char msg[EIM_ERR_MSG_MAX];  /* human-readable, NUL-terminated */
} eim_err;

/* Fills err (which may be NULL) and returns code, so a plugin can write
 * `return eim_err_set(err, EIM_EINVAL, "bad port '%s'", v);`. */
static inline EIM_PRINTF(3, 4) int eim_err_set(eim_err *err, int code,
                                               const char *fmt, ...) {
  if (err != NULL) {
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* ------------------------------------------------------------------------ */
/* Host API                                                                 */

/* Memory owned by the host for one call's results. Everything a plugin
 * returns through a result struct (strings, arrays) is allocated from the
 * arena passed to that call with host->arena_alloc / host->arena_strndup;
 * the host frees it all at once, so nobody needs the other side's free(). */
typedef struct eim_arena eim_arena;

enum { EIM_LOG_ERROR = 0, EIM_LOG_WARN = 1, EIM_LOG_INFO = 2, EIM_LOG_DEBUG = 3 };

typedef struct eim_host eim_host;

/* The host API table handed to init(). Each plugin gets its own table (so log
 * lines name the plugin). Keep the pointer: it stays valid until fini()
 * returns. Every function is safe to call from any thread unless noted.
 * Read `size` before calling a member added in a later minor version. */
struct eim_host {
  uint32_t size;            /* sizeof(eim_host) at the host's build */
  uint16_t abi_major, abi_minor;
  void *host_ctx;           /* the host's own; plugins leave it alone */

  /* Writes one log line at the given level, tagged with the plugin's name. */
  void (*log)(const eim_host *h, int level, const char *fmt, ...) EIM_PRINTF(3, 4);

  /* Looks up a key of the server's own configuration (exampleim.conf after
   * command-line overrides), e.g. "data_dir". NULL if unset. The string lives
   * as long as the host table. */
  const char *(*config_get)(const eim_host *h, const char *key);

  /* Runs fn(arg) on the loop thread soon. Thread-safe and non-blocking; the
   * way queue plugins hand consumed records to the core. Returns EIM_OK or
   * EIM_ENOMEM. fn must not block. */
  int (*post)(const eim_host *h, void (*fn)(void *arg), void *arg);

  /* Metrics. name is a Prometheus metric name (letters, digits, '_'), which
   * the host prefixes with "exampleim_plugin_". Counters only go up; gauges
   * are set; observe() records a value (seconds for latencies) in a
   * histogram. */
  void (*counter_add)(const eim_host *h, const char *name, double delta);
  void (*gauge_set)(const eim_host *h, const char *name, double value);
  void (*observe)(const eim_host *h, const char *name, double value);

  /* Arena allocation for results; see eim_arena. Never NULL on success;
   * NULL only when memory is exhausted. arena_strndup copies n bytes and
   * adds a NUL. */
  void *(*arena_alloc)(eim_arena *a, size_t n);
  char *(*arena_strndup)(eim_arena *a, const char *s, size_t n);

  /* Milliseconds since the Unix epoch (the host's clock, so tests can move
   * it). */
  int64_t (*now_ms)(const eim_host *h);
};

/* One `key = value` line of the plugin's plugins.d file, minus the loader's
 * own keys (plugin, enabled). file and line let a plugin name the place of
 * an unknown or invalid key in its error. The array and its strings stay
 * valid until fini() returns. */
typedef struct eim_opt {
  const char *key;
  const char *value;
  const char *file;
  int line;
} eim_opt;

/* ------------------------------------------------------------------------ */
/* Records shared by the kinds                                              */

typedef struct eim_user {
  const char *user_id;       /* opaque, minted by the store */
  const char *username;
  const char *password_hash; /* argon2id string; may be NULL in look-ups by id */
  int64_t created_at;
} eim_user;

enum { EIM_CONV_SINGLE = 1, EIM_CONV_GROUP = 2 };

/* A chat message. For append, the host fills the "in" members and the store
 * fills the "out" members (or, for a retried client_msg_id, overwrites every
 * member with the first stored message's values). Strings other than content
 * are NUL-terminated UTF-8; content is len bytes and may hold any bytes. */
typedef struct eim_msg {
  /* in */
  const char *conversation_id;
  const char *sender;        /* user_id */
  const char *client_msg_id;
  const char *content_type;  /* "text" unless the client said otherwise */
  const char *content;
  size_t content_len;
  int64_t created_at;        /* set by the host before append */
  /* out */
  const char *msg_id;        /* opaque, minted by the store */
  uint64_t seq;              /* per conversation, from 1, gapless */
  int status;                /* per-message result of append: EIM_OK or EIM_E* */
  int duplicate;             /* 1: a retry; the members hold the first message */
} eim_msg;

typedef struct eim_msg_list {
  eim_msg *items;
  size_t n;
  int has_more;              /* more exist in the paging direction */
} eim_msg_list;

/* A conversation as seen by one user (read_seq is that user's). */
typedef struct eim_conv {
  const char *conversation_id;
  int type;                  /* EIM_CONV_SINGLE or EIM_CONV_GROUP */
  const char *name;          /* "" for single chats */
  int64_t created_at;
  uint64_t max_seq;
  uint64_t read_seq;         /* never above max_seq */
  const char **members;      /* user_ids, in the order they joined */
  size_t nmembers;
  eim_msg *last_message;     /* NULL when the conversation has none */
  int64_t last_activity;     /* last message's created_at, else created_at */
} eim_conv;

typedef struct eim_conv_list {
  eim_conv *items;
  size_t n;
} eim_conv_list;

typedef struct eim_id_list {
  const char **ids;
  size_t n;
} eim_id_list;

/* What to create: a single chat between creator and members[0], or a group
 * of creator plus members. */
typedef struct eim_conv_new {
  int type;
  const char *name;
  const char *creator;
  const char *const *members; /* user_ids other than the creator; may repeat */
  size_t nmembers;
  int64_t created_at;
} eim_conv_new;

/* History query: messages always in ascending seq. after_seq > 0 gives the
 * first `limit` with seq > after_seq; else before_seq > 0 gives the last
 * `limit` with seq < before_seq; neither gives the latest `limit`. has_more
 * says whether more exist in the paging direction (for the latest page:
 * older ones). An unknown conversation gives EIM_ENOTFOUND or an empty
 * list. (The host asks for the first page as before_seq = limit + 1, since
 * seqs are gapless from 1.) */
typedef struct eim_history_q {
  const char *conversation_id;
  uint64_t before_seq;
  uint64_t after_seq;
  uint32_t limit;            /* 1..200, checked by the host */
} eim_history_q;

/* ------------------------------------------------------------------------ */
/* Kind: auth                                                               */

#define EIM_AUTH_OPS_V1 1u
#define EIM_TOKEN_MAX 2048
#define EIM_ID_MAX 128

/* Auth plugins issue and check bearer tokens. Both calls are CPU-only and
 * run on the loop thread; they must be fast and must not block. */
typedef struct eim_auth_ops {
  uint32_t version;          /* EIM_AUTH_OPS_V1 */
  /* Writes a NUL-terminated token for user_id into token[EIM_TOKEN_MAX] and
   * its expiry (ms since epoch) into *expires_at. */
  int (*issue)(void *state, const char *user_id, char *token,
               int64_t *expires_at, eim_err *err);
  /* Checks a token: algorithm, signature, expiry, not-before, issuer. On
   * success writes the user_id into user_id[EIM_ID_MAX] and the expiry into
   * *expires_at. Returns EIM_EAUTH for a bad token, EIM_EEXPIRED for an
   * expired one. */
  int (*verify)(void *state, const char *token, char *user_id,
                int64_t *expires_at, eim_err *err);
} eim_auth_ops;

/* ------------------------------------------------------------------------ */
/* Kind: store                                                              */

#define EIM_STORE_OPS_V1 1u

/* Store plugins are blocking and run on the core's store worker threads.
 * Each worker opens its own connection with conn_open() when it starts and
 * passes it to every call it makes; the same `state` is shared by all
 * workers at once, a `conn` by one thread at a time. A call that cannot
 * reach the backend returns EIM_EUNAVAIL and the connection reconnects by
 * itself on a later call. Results are allocated from the arena `a`. */
typedef struct eim_store_ops {
  uint32_t version;          /* EIM_STORE_OPS_V1 */

  /* Opens one worker's connection; EIM_EUNAVAIL with the host and port in
   * the message when the backend cannot be reached. */
  int (*conn_open)(void *state, void **conn, eim_err *err);
  void (*conn_close)(void *state, void *conn);
  /* Cheap round trip for health checks. */
  int (*ping)(void *conn, eim_err *err);

  /* EIM_ECONFLICT when the username is taken. */
  int (*user_create)(void *conn, const char *username, const char *password_hash,
                     int64_t created_at, eim_user *out, eim_arena *a, eim_err *err);
  /* EIM_ENOTFOUND when unknown. by_name returns the password hash too. */
  int (*user_by_name)(void *conn, const char *username, eim_user *out,
                      eim_arena *a, eim_err *err);
  int (*user_by_id)(void *conn, const char *user_id, eim_user *out,
                    eim_arena *a, eim_err *err);

  /* Creates a conversation, atomically. For a single chat that already
   * exists between the two users, returns it with *existed = 1. EIM_ENOTFOUND
   * when a member is an unknown user. `out` is as seen by the creator. */
  int (*conv_create)(void *conn, const eim_conv_new *req, eim_conv *out,
                     int *existed, eim_arena *a, eim_err *err);
  /* One conversation as seen by user_id. EIM_ENOTFOUND when unknown. Does not
   * check membership: the host does. */
  int (*conv_get)(void *conn, const char *conversation_id, const char *user_id,
                  eim_conv *out, eim_arena *a, eim_err *err);
  /* The user's conversations, most recent activity first. */
  int (*conv_list)(void *conn, const char *user_id, eim_conv_list *out,
                   eim_arena *a, eim_err *err);
  /* Adds members (those already in are skipped) at time `now`. EIM_ENOTFOUND
   * for an unknown conversation or user; EIM_EINVAL for a single chat. */
  int (*conv_add_members)(void *conn, const char *conversation_id,
                          const char *const *user_ids, size_t n, int64_t now,
                          eim_err *err);
  /* The member user_ids of a conversation; EIM_ENOTFOUND when unknown. */
  int (*conv_members)(void *conn, const char *conversation_id, eim_id_list *out,
                      eim_arena *a, eim_err *err);
  /* Distinct users who share at least one conversation with user_id, not
   * including user_id itself. */
  int (*user_peers)(void *conn, const char *user_id, eim_id_list *out,
                    eim_arena *a, eim_err *err);

  /* Appends a batch in one transaction (group commit). For each message: the
   * next seq of its conversation is assigned in the same atomic step as the
   * insert; a (conversation, sender, client_msg_id) seen before is a retry
   * whose members are overwritten with the first message and duplicate = 1;
   * the sender's read cursor moves to the new seq (own messages are read).
   * Per-message failures (unknown conversation) go into status and do not
   * fail the batch; a failure of the whole transaction returns an error and
   * nothing of the batch is stored. */
  int (*append)(void *conn, eim_msg *batch, size_t n, eim_arena *a, eim_err *err);
  /* History per eim_history_q. */
  int (*history)(void *conn, const eim_history_q *q, eim_msg_list *out,
                 eim_arena *a, eim_err *err);
  /* Moves user_id's read cursor to max(old, min(seq, max_seq)) and returns the
   * new cursor and the conversation's max_seq. */
  int (*read_set)(void *conn, const char *conversation_id, const char *user_id,
                  uint64_t seq, uint64_t *read_seq, uint64_t *max_seq, eim_err *err);
} eim_store_ops;

/* ------------------------------------------------------------------------ */
/* Kind: queue                                                              */

#define EIM_QUEUE_OPS_V1 1u

enum {
  EIM_TOPIC_CHAT = 0,      /* stored messages, keyed by conversation_id */
  EIM_TOPIC_EPHEMERAL = 1, /* push, receipts, conversation events */
  EIM_TOPIC_PRESENCE = 2   /* presence and node heartbeats, keyed by user_id */
};

/* Where a queue delivers consumed records. on_record must be called on the
 * loop thread, which the plugin reaches with host->post(); data is only
 * valid during the call. */
typedef struct eim_queue_sink {
  void (*on_record)(void *ctx, int topic, const void *data, size_t len);
  void *ctx;
} eim_queue_sink;

/* Queue plugins carry records between nodes. They own their threads. */
typedef struct eim_queue_ops {
  uint32_t version;          /* EIM_QUEUE_OPS_V1 */
  /* Starts consuming every record of every topic (from now on) into sink. */
  int (*start)(void *state, const eim_queue_sink *sink, eim_err *err);
  /* Non-blocking; may be called on the loop thread. */
  int (*publish)(void *state, int topic, const char *key, const void *data,
                 size_t len, eim_err *err);
  /* EIM_OK while the broker answers; EIM_EUNAVAIL otherwise. Non-blocking. */
  int (*health)(void *state, eim_err *err);
  /* This node's id, stable across restarts. */
  const char *(*node_id)(void *state);
} eim_queue_ops;

/* ------------------------------------------------------------------------ */
/* Kind: filter                                                             */

#define EIM_FILTER_OPS_V1 1u

typedef enum {
  EIM_FILTER_PASS = 0,
  EIM_FILTER_REWRITE = 1,
  EIM_FILTER_REJECT = 2
} eim_filter_verdict;

typedef struct eim_filter_msg {
  const char *conversation_id;
  const char *sender;
  const char *content_type;
  const char *content;       /* valid UTF-8, len bytes */
  size_t content_len;
  size_t max_len;            /* a rewrite may not be longer */
} eim_filter_msg;

typedef struct eim_filter_result {
  eim_filter_verdict verdict;
  const char *content;       /* REWRITE: the new text, from the arena */
  size_t content_len;
  char reason[EIM_ERR_MSG_MAX]; /* REJECT: why, shown to the sender */
} eim_filter_result;

/* Filters run on the loop thread, in plugins.d order, before storage. They
 * are CPU-only and must be fast. */
typedef struct eim_filter_ops {
  uint32_t version;          /* EIM_FILTER_OPS_V1 */
  int (*inspect)(void *state, const eim_filter_msg *m, eim_filter_result *r,
                 eim_arena *a, eim_err *err);
  /* Optional (may be NULL): re-read configuration (SIGHUP). On failure the
   * plugin keeps its old configuration. Runs on the loop thread. */
  int (*reload)(void *state, eim_err *err);
} eim_filter_ops;

/* ------------------------------------------------------------------------ */
/* The descriptor                                                           */

typedef struct eim_plugin_desc {
  uint32_t size;             /* sizeof(eim_plugin_desc) at the plugin's build */
  uint16_t abi_major, abi_minor;
  const char *name;          /* e.g. "store-sqlite" */
  const char *version;       /* the plugin's own version */
  /* Creates the plugin's state from its options. Rejects unknown or invalid
   * keys with EIM_EINVAL and a message naming the file and line. */
  int (*init)(void **state, const eim_host *host, const eim_opt *opts,
              size_t nopts, eim_err *err);
  void (*fini)(void *state);
  /* The kinds provided; NULL where the plugin is not of that kind. */
  const eim_auth_ops *auth;
  const eim_store_ops *store;
  const eim_queue_ops *queue;
  const eim_filter_ops *filter;
  void *reserved[8];         /* NULL; room to grow without a major bump */
} eim_plugin_desc;

/* The size of the first release's descriptor (ABI 1.0): the loader refuses
 * anything smaller. */
#define EIM_PLUGIN_DESC_MIN_SIZE \
  ((uint32_t)(offsetof(eim_plugin_desc, reserved) + 8 * sizeof(void *)))

typedef const eim_plugin_desc *(*eim_plugin_describe_fn)(void);
#define EIM_PLUGIN_SYMBOL "eim_plugin_describe"

/* Defines the one exported symbol. Use once per plugin:
 *   EIM_PLUGIN_DEFINE("store-sqlite", "1.0.0", my_init, my_fini,
 *                     .store = &my_store_ops);                        */
#define EIM_PLUGIN_DEFINE(NAME, VERSION, INIT, FINI, ...)            \
  EIM_EXPORT const eim_plugin_desc *eim_plugin_describe(void);      \
  const eim_plugin_desc *eim_plugin_describe(void) {                \
    static const eim_plugin_desc desc = {                           \
        .size = sizeof(eim_plugin_desc),                            \
        .abi_major = EIM_ABI_MAJOR,                                 \
        .abi_minor = EIM_ABI_MINOR,                                 \
        .name = (NAME),                                             \
        .version = (VERSION),                                       \
        .init = (INIT),                                             \
        .fini = (FINI),                                             \
        __VA_ARGS__};                                               \
    return &desc;                                                   \
  }

#ifdef __cplusplus
}
#endif
#endif /* EXAMPLEIM_PLUGIN_H */
