/*
 * libgoop presence: the Goop² presence messages (JSON on a GossipSub topic,
 * default "goop.presence.v1").
 *
 * A running presence object publishes "online" when started, "update" every
 * heartbeat and "offline" when stopped. Received messages feed a table of
 * present peers: "online"/"update" add or refresh an entry (and put the
 * announced addresses, minus loopback and link-local ones, into the host's
 * peerstore for 30 s), "offline" removes it, and entries not refreshed for
 * the TTL are pruned (checked every second). A message whose "peerId" is not
 * the signed GossipSub author is rejected by the topic validator, so
 * presence cannot be forged. Messages from ourselves are ignored.
 *
 * Everything runs on the host's event loop; no function is thread-safe.
 */
#ifndef GOOP_PRESENCE_H
#define GOOP_PRESENCE_H

#include <goop/common.h>
#include <goop/identity.h>
#include <goop/pubsub.h>
#include <goop/transport.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- message JSON ---------------------------------------------------------- */

#define GOOP_PRESENCE_MAX_JSON 65536   /* bytes of a message accepted by the parser */
#define GOOP_PRESENCE_MAX_PEER_ID 256  /* bytes of "peerId" */
#define GOOP_PRESENCE_MAX_CONTENT 4096 /* bytes of "content" */
#define GOOP_PRESENCE_MAX_EMAIL 320    /* bytes of "email" */
#define GOOP_PRESENCE_MAX_AVATAR 256   /* bytes of "avatarHash" */
#define GOOP_PRESENCE_MAX_ADDRS 20     /* entries of "addrs" */
#define GOOP_PRESENCE_MAX_ADDR 256     /* bytes of each address */
#define GOOP_PRESENCE_ADDR_TTL 30      /* seconds announced addresses stay in the peerstore */

enum goop_presence_type {
  GOOP_PRESENCE_UNKNOWN = 0, /* any other "type" string */
  GOOP_PRESENCE_ONLINE = 1,
  GOOP_PRESENCE_UPDATE = 2,
  GOOP_PRESENCE_OFFLINE = 3,
};

/** A presence message. Strings are NUL-terminated; NULL or "" = absent. */
struct goop_presence_msg {
  enum goop_presence_type type;
  char *peer_id;     /* "peerId" */
  char *content;     /* "content": the profile label */
  char *email;       /* "email" */
  char *avatar_hash; /* "avatarHash": 16 lowercase hex digits */
  bool video_disabled;
  char **addrs; /* "addrs": multiaddr strings */
  size_t n_addrs;
  int64_t ts; /* Unix time in milliseconds */
  bool verified;
};

/**
 * Parse |len| bytes of JSON into |*ret| (owned strings; free with
 * goop_presence_msg_clear()). Unknown keys are ignored. Returns 0,
 * GOOP_EPARSE (not a JSON object, wrong value types, missing "type" or
 * "peerId"), GOOP_EMSGSIZE (over a size limit above), GOOP_ENOTSUP (valid
 * but of an unknown type; |*ret| is filled, type GOOP_PRESENCE_UNKNOWN) or
 * GOOP_ENOMEM. On other errors |*ret| is left cleared. Since: 0.1
 */
GOOP_API int goop_presence_msg_parse(const void *data, size_t len, struct goop_presence_msg *ret);

/** Free the strings of |m| and zero it. Since: 0.1 */
GOOP_API void goop_presence_msg_clear(struct goop_presence_msg *m);

/**
 * Serialise |m| as Goop² does: keys in the order type, peerId, content,
 * email, avatarHash, videoDisabled, addrs, ts, verified; empty strings,
 * false booleans and empty addrs omitted; no trailing newline. |*ret| is a
 * NUL-terminated malloc'ed string of |*ret_len| bytes. Returns 0,
 * GOOP_EINVAL (unknown type or no peer_id) or GOOP_ENOMEM. Since: 0.1
 */
GOOP_API int goop_presence_msg_encode(const struct goop_presence_msg *m, char **ret, size_t *ret_len);

/**
 * Whether |multiaddr| may be announced in presence (Goop² rule): circuit
 * addresses always; otherwise not if its IP is loopback or link-local
 * (unicast or multicast). Since: 0.1
 */
GOOP_API bool goop_presence_addr_announceable(const char *multiaddr);

/**
 * Whether an announced |multiaddr| is kept: not if its IP is loopback or
 * link-local unicast. Since: 0.1
 */
GOOP_API bool goop_presence_addr_acceptable(const char *multiaddr);

/**
 * The Goop² avatar hash of the file at |path|: the first 8 bytes of its
 * SHA-256 as 16 lowercase hex digits in |out|. Returns 0, GOOP_ENOENT (no
 * such file: |out| is ""), another system error or GOOP_ECRYPTO. Since: 0.1
 */
GOOP_API int goop_presence_avatar_hash(const char *path, char out[17]);

/* ---- the presence service --------------------------------------------------- */

typedef struct goop_presence goop_presence;

/** Our own announced fields (copied by goop_presence_set_info()). */
struct goop_presence_info {
  const char *label;       /* "content"; NULL = none */
  const char *email;       /* NULL = none */
  const char *avatar_hash; /* NULL = none */
  bool video_disabled;
  /** Addresses to announce. NULL = the host's announce addresses filtered
   *  with goop_presence_addr_announceable() at each publish. */
  const char *const *addrs;
  size_t n_addrs;
};

#define GOOP_PRESENCE_CONFIG_V1 1
struct goop_presence_config {
  uint32_t version;           /* GOOP_PRESENCE_CONFIG_V1 */
  const char *topic;          /* NULL = "goop.presence.v1" */
  uint32_t heartbeat_seconds; /* 0 = 5 */
  uint32_t ttl_seconds;       /* 0 = 20 */
  uint32_t max_peers;         /* 0 = 4096 entries in the table */
};

#define GOOP_PRESENCE_CALLBACKS_V1 1
struct goop_presence_callbacks {
  uint32_t version; /* GOOP_PRESENCE_CALLBACKS_V1 */
  /** A peer announced itself ("online" or "update"); |m| is borrowed. */
  void (*on_update)(goop_presence *pr, const goop_peer_id *peer, const struct goop_presence_msg *m,
                    void *user_data);
  /** A peer said "offline" or was not heard of for the TTL. */
  void (*on_remove)(goop_presence *pr, const goop_peer_id *peer, const char *peer_id_text, void *user_data);
  /** Optional: called right before each "online" and "update" is built, so
   *  the application can refresh its fields with goop_presence_set_info(). */
  void (*before_publish)(goop_presence *pr, void *user_data);
};

/**
 * Create a presence service on |ps| (and its |host|, which must be the
 * pubsub's host). |cfg| may be NULL for defaults; |cb| (copied) may be NULL.
 * Nothing is published or received until goop_presence_start(). Returns 0,
 * GOOP_EINVAL or GOOP_ENOMEM. Since: 0.1
 */
GOOP_API int goop_presence_new(goop_pubsub *ps, goop_host *host, const struct goop_presence_config *cfg,
                               const struct goop_presence_callbacks *cb, void *user_data,
                               goop_presence **ret) GOOP_WARN_UNUSED_RESULT;

/** Set our announced fields (the next heartbeat carries them). Returns 0, GOOP_EINVAL or GOOP_ENOMEM. Since:
 * 0.1 */
GOOP_API int goop_presence_set_info(goop_presence *pr, const struct goop_presence_info *info);

/**
 * Subscribe to the topic (with the anti-forgery validator), publish
 * "online" and start the heartbeat and the TTL pruning. Returns 0 or a
 * pubsub error. Since: 0.1
 */
GOOP_API int goop_presence_start(goop_presence *pr);

/**
 * Publish "offline" (queued on the pubsub streams: run the event loop a
 * little before freeing pubsub and host so it leaves), stop the timers and
 * unsubscribe. The table is emptied without on_remove calls. No-op if not
 * started. Since: 0.1
 */
GOOP_API void goop_presence_stop(goop_presence *pr);

/** Publish an "update" now (e.g. after goop_presence_set_info()). Returns 0 or a pubsub error. Since: 0.1 */
GOOP_API int goop_presence_announce(goop_presence *pr);

/**
 * Free |pr| without publishing anything (call goop_presence_stop() first
 * for a clean goodbye). Call before goop_pubsub_free(). NULL is a no-op.
 * Since: 0.1
 */
GOOP_API void goop_presence_free(goop_presence *pr);

/** Number of peers present in the table. Since: 0.1 */
GOOP_API size_t goop_presence_count(const goop_presence *pr);

/** Whether |peer| is present in the table. Since: 0.1 */
GOOP_API bool goop_presence_has(const goop_presence *pr, const goop_peer_id *peer);

/** Run the TTL pruning now, as if the monotonic clock read |now_ms| (tests). Since: 0.1 */
GOOP_API void goop_presence_prune(goop_presence *pr, uint64_t now_ms);

#ifdef __cplusplus
}
#endif
#endif
