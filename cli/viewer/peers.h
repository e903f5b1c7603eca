/*
 * The viewer's peer table: who is (or was recently) around, with the
 * presence fields Goop² shows (label, email, avatar hash, verified, last
 * seen) and known addresses. Entries are fed by the host's connection and
 * identify events and by p2p.bootstrap today; presence (LAN and WAN) feeds
 * the same table later through peers_upsert(). Entries without a live
 * connection are pruned |ttl| seconds after they were last seen. Listeners
 * get "update" and "remove" events.
 */
#ifndef GOOP_CLI_PEERS_H
#define GOOP_CLI_PEERS_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PEERS_MAX 4096        /* entries kept at most (oldest non-connected dropped first) */
#define PEERS_MAX_ADDRS 16    /* addresses kept per entry */
#define PEERS_MAX_FIELD 512   /* bytes of label or email kept */
#define PEERS_MAX_LISTENERS 8 /* event listeners */

struct peers;

struct peer_entry {
  char *id;             /* Peer ID text */
  char *label;          /* presence "content"; "" when unknown */
  char *email;          /* "" when unknown */
  char avatar_hash[17]; /* 16 lowercase hex or "" */
  bool video_disabled;
  bool verified;
  int64_t last_seen_ms; /* Unix time in milliseconds */
  char *addrs[PEERS_MAX_ADDRS];
  size_t n_addrs;
  /* private */
  bool present;          /* listed and announced; false for bootstrap-only entries */
  bool pinned;           /* from p2p.bootstrap: kept (not listed) after pruning */
  unsigned conns;        /* live connections */
  unsigned relayed;      /* of which through a circuit relay */
  uint64_t seen_mono_ms; /* monotonic time of last_seen */
};

/* Presence-like fields for peers_upsert(); NULL strings leave a field unchanged. */
struct peer_info {
  const char *label;
  const char *email;
  const char *avatar_hash;
  bool video_disabled;
  bool verified;
};

enum peers_event { PEERS_EVENT_UPDATE = 1, PEERS_EVENT_REMOVE = 2 };

/* |e| is NULL for PEERS_EVENT_REMOVE; valid only during the call. */
typedef void (*peers_listener)(enum peers_event ev, const char *peer_id, const struct peer_entry *e,
                               void *ud);

/* A table pruning every second with |ttl_s| (> 0) on |base|. NULL on failure. */
struct peers *peers_new(struct event_base *base, unsigned ttl_s);
void peers_free(struct peers *p);

/* Returns 0 or -1 (too many listeners). */
int peers_add_listener(struct peers *p, peers_listener fn, void *ud);
void peers_remove_listener(struct peers *p, peers_listener fn, void *ud);

/* A presence message (or equivalent) for |id|: present now, fields updated, event "update". */
int peers_upsert(struct peers *p, const char *id, const struct peer_info *info);
/* A connection to |id| came up (|addr| may be NULL; |relayed| when it runs
 * through a circuit relay) / went down. */
int peers_connected(struct peers *p, const char *id, const char *addr, bool relayed);
void peers_disconnected(struct peers *p, const char *id, bool relayed);
/* "direct" (some connection is direct), "relayed" (only relayed ones) or "none". */
const char *peers_conn_kind(const struct peer_entry *e);
/* Identify or a label fetch told us more. */
int peers_set_label(struct peers *p, const char *id, const char *label);
int peers_add_addr(struct peers *p, const char *id, const char *addr);
/* A bootstrap peer: its address is remembered; it is listed once it is seen. */
int peers_pin(struct peers *p, const char *id, const char *addr);
/* Forget |id| now ("offline"). */
void peers_remove(struct peers *p, const char *id);

const struct peer_entry *peers_get(const struct peers *p, const char *id);
size_t peers_count(const struct peers *p); /* present entries */

/* {"ID","Content","Email","AvatarHash","VideoDisabled","Verified","LastSeen","Conn"}; NULL on OOM. */
json_t *peers_entry_json(const struct peer_entry *e);
/* Array of the present entries sorted by ID; NULL on OOM. */
json_t *peers_list_json(const struct peers *p);
/* RFC 3339 UTC with fractional seconds ("2026-01-02T03:04:05.678Z"). */
void peers_format_time(int64_t unix_ms, char *buf, size_t len);

/* Run the prune pass now with |now_mono_ms| (tests). */
void peers_prune(struct peers *p, uint64_t now_mono_ms);

#endif
