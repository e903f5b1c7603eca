/*
 * Rendezvous server core (internal, sans-I/O): /publish validation, the peer
 * rows, SSE subscriber queues, per-IP limits and the /metrics text.
 *
 * All times are Unix milliseconds passed in by the caller. The HTTP glue
 * feeds requests in and pulls SSE bytes out with goop__rdv_sub_read().
 */
#ifndef GOOP_RDV_CORE_H
#define GOOP_RDV_CORE_H

#include "buf.h"

#include <goop/presence.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GOOP_RDV_MAX_BODY 65536  /* bytes of a /publish body */
#define GOOP_RDV_MAX_PEER_ID 256 /* §9.3 limits (bytes, after trimming) */
#define GOOP_RDV_MAX_CONTENT 4096
#define GOOP_RDV_MAX_EMAIL 320
#define GOOP_RDV_MAX_ADDRS 20
#define GOOP_RDV_MAX_ADDR 256
#define GOOP_RDV_PEER_TTL_MS 30000      /* rows not refreshed for longer are evicted */
#define GOOP_RDV_EVICT_INTERVAL_MS 5000 /* eviction and rate-limiter cleanup tick */
#define GOOP_RDV_PING_INTERVAL_MS 25000 /* ": ping" keep-alive */
#define GOOP_RDV_ERRBUF 160             /* a good size for the |errbuf| arguments */

/* A validated /publish message. */
struct goop_rdv_publish {
  struct goop_presence_msg msg; /* owned fields; type is the trimmed type */
  char *json;                   /* canonical JSON (§5.2 key order, unknown keys dropped), NUL-terminated */
  size_t json_len;
};

/*
 * Validate a /publish body (§9.3 steps 3-6): decode, check, fill ts (0 →
 * |now_ms|), set verified = |verified| and re-serialise canonically into
 * |*ret| (free with goop__rdv_publish_clear()). Returns 0 or an HTTP status
 * with the reply text in |errbuf|: 413 "request body too large", 400 "bad
 * json", 400 "bad message: <reason>", 500 "internal error". |*ret| is left
 * cleared on failure.
 */
int goop__rdv_validate_publish(const void *body, size_t len, uint64_t now_ms, bool verified,
                               struct goop_rdv_publish *ret, char *errbuf, size_t errlen);
void goop__rdv_publish_clear(struct goop_rdv_publish *p);

/* Limits; 0 in a field of goop__rdv_set_limits() keeps the default. */
struct goop_rdv_limits {
  size_t sse_total;           /* concurrent subscribers (default 100000) */
  size_t sse_per_ip;          /* concurrent subscribers per client IP (default 10) */
  size_t queue_msgs;          /* queued messages per subscriber (default 64) */
  size_t max_peers;           /* peer rows (default 100000) */
  unsigned publish_rate;      /* publishes per IP per window (default 60) */
  uint64_t publish_window_ms; /* sliding window (default 60000) */
  uint64_t peer_ttl_ms;       /* eviction age (default 30000) */
};
void goop__rdv_limits_default(struct goop_rdv_limits *ret);

typedef struct goop_rdv goop_rdv;
typedef struct goop_rdv_sub goop_rdv_sub;

/* |limits| may be NULL (defaults). Returns 0 or GOOP_ENOMEM. */
int goop__rdv_new(const struct goop_rdv_limits *limits, goop_rdv **ret);
/* Frees every subscriber too (their notify callbacks are not called); with peers.db, writes every row first.
 */
void goop__rdv_free(goop_rdv *r);
/* Reload limits (SIGHUP). Existing subscribers keep their queues; new bounds apply to new messages. */
void goop__rdv_set_limits(goop_rdv *r, const struct goop_rdv_limits *limits);

/*
 * The whole POST /publish after the method check: per-IP rate limit (429
 * "rate limit exceeded"), validation, store (offline → delete row, else upsert
 * with last_seen = now), broadcast. Returns 204, or a status with the text in
 * |errbuf| (also 503 "peer table full"). Rejections count in the metrics.
 */
int goop__rdv_publish(goop_rdv *r, const char *ip, const void *body, size_t len, uint64_t now_ms,
                      char *errbuf, size_t errlen);

/* Pieces of goop__rdv_publish(), for tests and other glue. */
/* Sliding-window check; records the request when allowed. true = allowed. */
bool goop__rdv_rate_allow(goop_rdv *r, const char *ip, uint64_t now_ms);
/* Store a validated message (row upsert/delete, byte accounting). 0, GOOP_ELIMIT (table full) or GOOP_ENOMEM.
 */
int goop__rdv_store(goop_rdv *r, const struct goop_rdv_publish *p, uint64_t now_ms);
/* Queue "data: <json>\n\n" on every subscriber (dropped and counted where the queue is full). */
int goop__rdv_broadcast(goop_rdv *r, const char *json, size_t len);
/* Count a request refused by the HTTP layer (405, 413, admin auth, ...). */
void goop__rdv_note_rejected(goop_rdv *r);

/* Remove rows older than the TTL (no offline broadcast). Returns how many. */
size_t goop__rdv_evict(goop_rdv *r, uint64_t now_ms);
/* Drop rate-limiter state that no longer matters. */
void goop__rdv_rate_cleanup(goop_rdv *r, uint64_t now_ms);
/* Queue ": ping\n\n" on every subscriber whose queue has room. */
void goop__rdv_ping(goop_rdv *r);
/*
 * Periodic work: eviction + rate cleanup every 5 s and pings every 25 s
 * (first ones one interval after the first call). Returns the next deadline (ms).
 */
uint64_t goop__rdv_tick(goop_rdv *r, uint64_t now_ms);

/* /peers.json: the rows as a JSON array (§9.5 keys and order). Appends to |out|. */
int goop__rdv_peers_json(goop_rdv *r, goop_buf *out);
size_t goop__rdv_peer_count(const goop_rdv *r);

/*
 * Open (create) peers.db at |path| (§9.9 schema, WAL, busy_timeout 5000),
 * load its rows not older than the TTL at |now_ms| (their snapshot messages
 * carry no addrs), then write every row change through: upsert on publish,
 * delete on offline, stale rows on eviction. Write failures are counted in
 * the stats, never fail a publish. Returns 0, GOOP_ESTATE (already open) or
 * GOOP_EDB with the reason in |errbuf| (the state stays memory-only).
 */
int goop__rdv_db_open(goop_rdv *r, const char *path, uint64_t now_ms, char *errbuf, size_t errlen);

/* ---- SSE subscribers ---- */

typedef void (*goop_rdv_notify_fn)(goop_rdv_sub *s, void *ud);

/*
 * Add a subscriber from |ip|. Its queue starts with ": ok\n\n" and one
 * "data: <json>\n\n" per known peer (snapshot, §9.5 order; not bounded by the
 * queue limit). Returns 0, 429 with "too many SSE connections (<total>)" or
 * "too many SSE connections from <ip> (<per ip>)" in |errbuf|, or 500.
 */
int goop__rdv_sub_add(goop_rdv *r, const char *ip, goop_rdv_sub **ret, char *errbuf, size_t errlen);
void goop__rdv_sub_remove(goop_rdv *r, goop_rdv_sub *s);
/* Called when the subscriber's queue goes from empty to non-empty (e.g. to resume a connection). */
void goop__rdv_sub_set_notify(goop_rdv_sub *s, goop_rdv_notify_fn fn, void *ud);
/* Copy up to |max| queued bytes into |out| (frames may be split across calls). Returns bytes copied. */
size_t goop__rdv_sub_read(goop_rdv_sub *s, void *out, size_t max);
/* Bytes waiting in the queue. */
size_t goop__rdv_sub_pending(const goop_rdv_sub *s);
/* Messages dropped for this subscriber because its queue was full. */
uint64_t goop__rdv_sub_drops(const goop_rdv_sub *s);

/* ---- client IP behind trusted proxies ---- */

/* One trusted network: an address and a prefix length. */
struct goop_rdv_net {
  uint8_t addr[16]; /* IPv4 as IPv4-mapped IPv6 */
  unsigned prefix;  /* 0-128 (IPv4 /n is stored as /96+n) */
};

/*
 * Parse |n| trusted-proxy entries ("10.0.0.0/8", "::1", "192.0.2.7") into a
 * malloc'd array |*ret| of |*ret_n| networks. Returns 0, GOOP_ENOMEM or
 * GOOP_EINVAL with "bad trusted proxy: <entry>" in |errbuf|.
 */
int goop__rdv_nets_parse(const char *const *list, size_t n, struct goop_rdv_net **ret, size_t *ret_n,
                         char *errbuf, size_t errlen);
bool goop__rdv_nets_match(const struct goop_rdv_net *nets, size_t n, const char *ip);

/*
 * The client IP for per-IP limits: |peer_ip| (the socket's address) unless
 * it is a trusted proxy; then X-Forwarded-For (|xff|, may be NULL) is walked
 * from the right while the hop so far is trusted. Invalid entries stop the
 * walk; at most 64 entries / 4096 bytes are read. The result is normalised
 * (IPv4-mapped IPv6 → IPv4) into |out|. Returns 0 or GOOP_EINVAL (|peer_ip|
 * is not an IP address; |out| = |peer_ip| truncated).
 */
int goop__rdv_client_ip(const struct goop_rdv_net *nets, size_t n, const char *peer_ip, const char *xff,
                        char *out, size_t outlen);

/* ---- metrics ---- */

struct goop_rdv_stats {
  size_t subscribers;    /* current */
  size_t peers;          /* rows known */
  uint64_t publishes;    /* accepted publishes */
  uint64_t drops;        /* messages dropped on full subscriber queues */
  uint64_t rejected;     /* refused requests (rate limit, validation, SSE limits, noted by glue) */
  uint64_t rate_limited; /* of which publish rate limit */
  uint64_t db_errors;    /* failed peers.db writes */
};
void goop__rdv_stats(const goop_rdv *r, struct goop_rdv_stats *ret);
/* Prometheus text exposition format (version 0.0.4), appended to |out|. */
int goop__rdv_metrics(const goop_rdv *r, goop_buf *out);

#endif
