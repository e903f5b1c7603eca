/*
 * Peer side of a rendezvous server (presence.rendezvous_wan): POST our
 * presence at every heartbeat and follow GET /events, reconnecting with a
 * jittered backoff (250 ms doubling to 8 s, reset once a stream said ": ok"),
 * and fetch the server's relay (GET /relay) on request.
 *
 * URLs are http:// or https://, with an optional port and path prefix
 * ("https://rdv.example.org:8443/rdv" -> /rdv/publish, /rdv/events, /rdv/relay).
 * https:// uses TLS 1.2 or later, SNI, and verifies the server certificate
 * and its host name (or IP address) against the system store, which
 * SSL_CERT_FILE and SSL_CERT_DIR override. Failures are logged on stderr once
 * per distinct reason ("goop2: rendezvous URL: certificate verify failed: ...").
 */
#ifndef GOOP_CLI_RDV_CLIENT_H
#define GOOP_CLI_RDV_CLIENT_H

#include <event2/event.h>
#include <goop/presence.h>
#include <stdbool.h>
#include <stddef.h>

struct rdv_client;

/* A message from the stream (never our own); valid during the call. */
typedef void (*rdv_client_msg_fn)(const struct goop_presence_msg *m, void *ud);

/* Starts the /events subscription at once, unless |fn| is NULL (then the
 * client only publishes and fetches the relay). Returns 0 or -1 with the
 * reason in |err| (bad URL, unsupported scheme, TLS setup failed). */
int rdv_client_new(struct event_base *base, const char *url, const char *self_id, rdv_client_msg_fn fn,
                   void *ud, struct rdv_client **ret, char *err, size_t errlen);
/* POST |m| to /publish (2 s timeout, result ignored; one in flight at a time, but
 * an offline message is queued behind a pending one). */
void rdv_client_publish(struct rdv_client *c, const struct goop_presence_msg *m);
/* NULL is a no-op. Pending callbacks (rdv_client_fetch_relay()) are never called. */
void rdv_client_free(struct rdv_client *c);

/* ---- relay discovery (GET <base>/relay) ---- */

#define RDV_RELAY_MAX_ADDRS 16     /* further addresses are ignored */
#define RDV_RELAY_MAX_BODY 65536   /* a longer body is an error */
#define RDV_RELAY_MAX_ADDR_LEN 512 /* longer address strings are skipped */
#define RDV_RELAY_TIMEOUT_S 10

/* Result of rdv_client_fetch_relay(). |status| is 0 with the relay's peer ID
 * (canonical text) and 1..RDV_RELAY_MAX_ADDRS multiaddr strings (valid during
 * the call only); or GOOP_ENOENT when the server has no relay (404 or 502);
 * or another negative GOOP_E* code: GOOP_ETIMEDOUT (no answer within
 * RDV_RELAY_TIMEOUT_S), GOOP_EIO (cannot connect, TLS failure, connection
 * lost), GOOP_EPROTO (any other HTTP status or a malformed response),
 * GOOP_EMSGSIZE (body over RDV_RELAY_MAX_BODY), GOOP_EPARSE (not a valid
 * relay description). With an error, |peer_id| is NULL and |n| 0. */
typedef void (*rdv_client_relay_fn)(int status, const char *peer_id, const char *const *addrs, size_t n,
                                    void *ud);

/* One GET <base>/relay. |fn| is called exactly once from the event loop,
 * never from within this call, unless the client is freed first. |fn| may
 * start another fetch but must not free the client. Returns 0, GOOP_EINVAL,
 * GOOP_EBUSY (a fetch is already in flight) or GOOP_ENOMEM. */
int rdv_client_fetch_relay(struct rdv_client *c, rdv_client_relay_fn fn, void *ud);

/* The /relay JSON parser (separate for tests and fuzzing). */
struct rdv_relay_info {
  char *peer_id; /* canonical text */
  char *addrs[RDV_RELAY_MAX_ADDRS];
  size_t n_addrs;
};

/* Parses {"peer_id": "<peer ID>", "addrs": ["<multiaddr>", ...]}: the peer ID
 * must be valid; address entries that are not strings or not valid multiaddrs
 * (an IP or DNS component first, known protocols only, no p2p-circuit, any
 * /p2p/ component naming the relay itself) are skipped; at most
 * RDV_RELAY_MAX_ADDRS are kept, and at least one must be. Other members are
 * ignored. Returns 0, GOOP_EPARSE, GOOP_EMSGSIZE (|len| over
 * RDV_RELAY_MAX_BODY) or GOOP_ENOMEM; |*ret| is zeroed on failure. */
int rdv_relay_parse(const void *data, size_t len, struct rdv_relay_info *ret);
/* Frees the fields of |r| and zeroes it. */
void rdv_relay_info_clear(struct rdv_relay_info *r);
/* Whether |text| is a multiaddr this client accepts as a relay address (see
 * rdv_relay_parse(); |relay| may be NULL to accept any /p2p/ peer ID). */
bool rdv_relay_addr_valid(const char *text, const char *relay);

/* ---- the event-stream line splitter (separate for tests and fuzzing) ---- */

#define RDV_SSE_LINE_MAX 65536 /* longer lines are dropped whole */

/* A complete line: |comment| for ": ..." lines (|data| is the whole line),
 * otherwise the trimmed payload of a "data:" line. Other lines are skipped. */
typedef void (*rdv_sse_line_fn)(bool comment, const char *data, size_t len, void *ud);

struct rdv_sse {
  char *line;
  size_t len;
  bool overflow;
  rdv_sse_line_fn fn;
  void *ud;
};

/* Returns 0 or -1 (ENOMEM). */
int rdv_sse_init(struct rdv_sse *p, rdv_sse_line_fn fn, void *ud);
/* Forget a partial line (new connection). */
void rdv_sse_reset(struct rdv_sse *p);
void rdv_sse_feed(struct rdv_sse *p, const char *data, size_t n);
void rdv_sse_free(struct rdv_sse *p);

#endif
