/*
 * libgoop transport: a libp2p host over TCP with multistream-select, Noise XX
 * and yamux, plus identify and ping.
 *
 * A host is bound to the event_base of its goop_ctx and to an identity. It
 * listens on TCP multiaddrs, dials peers by Peer ID (using addresses in its
 * peerstore) or by multiaddr, keeps one connection per peer, and opens and
 * accepts streams negotiated by protocol ID.
 *
 * THREAD SAFETY: all functions must be called on the loop thread. Callbacks
 * run on the loop thread; unless said otherwise, every function may be called
 * from inside callbacks, including goop_host_free() (deferred).
 *
 * SIGNALS: a peer that closes a connection while we write to it raises
 * SIGPIPE, which kills a process that did not ignore it. Applications must
 * call signal(SIGPIPE, SIG_IGN) (or block it) before using a host;
 * goop_host_new() logs a warning when SIGPIPE still has its default action.
 *
 * OWNERSHIP: goop_stream and goop_conn are reference counted. A stream given
 * to a handler or an open callback carries one reference the callee owns and
 * must release with goop_stream_unref() (after closing or resetting it, or
 * implicitly: dropping the last reference resets a stream that is still open).
 */
#ifndef GOOP_TRANSPORT_H
#define GOOP_TRANSPORT_H

#include <goop/common.h>
#include <goop/identity.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct goop_host goop_host;
typedef struct goop_host_config goop_host_config;
typedef struct goop_conn goop_conn;
typedef struct goop_stream goop_stream;

/* ---- configuration ------------------------------------------------------- */

/** New configuration with defaults (see goop2(1) "LIMITS"). Since: 0.1 */
GOOP_API int goop_host_config_new(goop_host_config **ret) GOOP_WARN_UNUSED_RESULT;
/** Free. NULL is a no-op. Since: 0.1 */
GOOP_API void goop_host_config_free(goop_host_config *cfg);

/** Tunables of goop_host_config_set(). */
enum goop_host_option {
  GOOP_HOST_MAX_CONNS = 1,              /* established connections (default 256) */
  GOOP_HOST_MAX_PENDING_HANDSHAKES = 2, /* inbound connections still negotiating (64) */
  GOOP_HOST_MAX_STREAMS_PER_CONN = 3,   /* inbound streams per connection (1000) */
  GOOP_HOST_HANDSHAKE_TIMEOUT_MS = 4,   /* full upgrade of a new connection (15000) */
  GOOP_HOST_NEGOTIATION_TIMEOUT_MS = 5, /* protocol selection on a new stream (10000) */
  GOOP_HOST_IDLE_TIMEOUT_MS = 6,        /* close connections without streams after (120000; 0 = never) */
  GOOP_HOST_KEEPALIVE_MS = 7,           /* yamux ping interval (15000; 0 = off) */
  GOOP_HOST_KEEPALIVE_TIMEOUT_MS = 8,   /* close when a keepalive ping is not answered (10000) */
  GOOP_HOST_STREAM_BUFFER = 9,          /* per-stream send buffer in bytes (256 KiB) */
  GOOP_HOST_MAX_WINDOW = 10,            /* largest yamux receive window (16 MiB) */
  GOOP_HOST_HOLE_PUNCHING = 11,         /* DCUtR hole punching, dialling from the listen port (1; 0 = off) */
};

/** Set an option. GOOP_EINVAL for an unknown option or value out of range. Since: 0.1 */
GOOP_API int goop_host_config_set(goop_host_config *cfg, enum goop_host_option opt, uint64_t value);
/** Set the identify agent version (copied; default "libgoop/<version>"). Since: 0.1 */
GOOP_API int goop_host_config_set_agent(goop_host_config *cfg, const char *agent);

/* ---- host ------------------------------------------------------------------- */

/**
 * Connection events. Fields beyond what |version| covers are not read. With
 * several connections to one peer, on_connected reports the first and
 * on_disconnected the last, except that a direct connection replacing a
 * relayed one (hole punching) is reported as connected and the relayed one as
 * disconnected when it closes; on_identified then fires again for the direct
 * connection. goop_conn_is_relayed() tells the two apart.
 */
struct goop_host_events {
  uint32_t version; /* GOOP_HOST_EVENTS_V1 */
  /** A connection finished its upgrade (Noise + yamux). */
  void (*on_connected)(goop_host *host, goop_conn *conn, void *user_data);
  /** A connection closed; |reason| is 0 for a clean close or a GOOP_E* code. */
  void (*on_disconnected)(goop_host *host, goop_conn *conn, int reason, void *user_data);
  /** Identify with the remote finished (its protocols and addresses are in the peerstore). */
  void (*on_identified)(goop_host *host, goop_conn *conn, void *user_data);
};
#define GOOP_HOST_EVENTS_V1 1

/**
 * Create a host. |ctx| is borrowed (must outlive the host); |id| is copied.
 * |cfg| may be NULL for defaults and is not retained. Serves
 * /ipfs/id/1.0.0, /ipfs/id/push/1.0.0 and /ipfs/ping/1.0.0 from the start.
 * Returns 0, GOOP_EINVAL (no event base in |ctx|) or GOOP_ENOMEM. Since: 0.1
 */
GOOP_API int goop_host_new(goop_ctx *ctx, const goop_identity *id, const goop_host_config *cfg,
                           goop_host **ret) GOOP_WARN_UNUSED_RESULT;

/**
 * Close every connection and listener and free the host. Pending connect,
 * stream-open and ping callbacks are called with GOOP_ECANCELED first, and
 * every stream the application still holds gets on_error(GOOP_ECANCELED)
 * (it may call goop_stream_unref() there). After this returns, no stream or
 * connection of the host may be used. NULL is a no-op. Since: 0.1
 */
GOOP_API void goop_host_free(goop_host *host);

/** Install the application's connection event callbacks (copied; NULL clears). Since: 0.1 */
GOOP_API void goop_host_set_events(goop_host *host, const struct goop_host_events *ev, void *user_data);

/**
 * Add another set of event callbacks (copied), for modules that follow
 * connections on their own (pubsub, discovery). They run after the ones of
 * goop_host_set_events(), in the order added. At most 16. |*ret_id| (may be
 * NULL) is the handle for goop_host_remove_events(). Returns 0, GOOP_EINVAL or
 * GOOP_ELIMIT. May be called from callbacks. Since: 0.1
 */
GOOP_API int goop_host_add_events(goop_host *host, const struct goop_host_events *ev, void *user_data,
                                  int *ret_id);
/** Remove callbacks added with goop_host_add_events(). GOOP_ENOENT if unknown. Since: 0.1 */
GOOP_API int goop_host_remove_events(goop_host *host, int id);

/** The host's Peer ID. Since: 0.1 */
GOOP_API void goop_host_peer_id(const goop_host *host, goop_peer_id *ret);

/** The context the host was created on (borrowed). Since: 0.1 */
GOOP_API goop_ctx *goop_host_get_ctx(const goop_host *host);

/**
 * Listen on a TCP multiaddr such as "/ip4/0.0.0.0/tcp/0" or "/ip6/::/tcp/4001"
 * (port 0 = any free port). Returns 0, GOOP_EPARSE (bad or non-TCP multiaddr),
 * GOOP_EADDRINUSE, GOOP_EACCES or another system error. Since: 0.1
 */
GOOP_API int goop_host_listen(goop_host *host, const char *multiaddr) GOOP_WARN_UNUSED_RESULT;

/**
 * The |i|-th listen address as text with the real port (e.g.
 * "/ip4/0.0.0.0/tcp/40135"). Returns its length, GOOP_ENOENT past the last
 * one, or GOOP_EINVAL if |buf| is too small. Since: 0.1
 */
GOOP_API int goop_host_listen_addr(const goop_host *host, size_t i, char *buf, size_t buf_len);

/**
 * The |i|-th address to announce: each listen address, with 0.0.0.0 / ::
 * expanded to the machine's interface addresses, then the confirmed observed
 * addresses (goop_host_observed_addr()). Same return rules as
 * goop_host_listen_addr(). Since: 0.1
 */
GOOP_API int goop_host_announce_addr(const goop_host *host, size_t i, char *buf, size_t buf_len);

/**
 * The |i|-th confirmed observed address: how peers see us, from the
 * observedAddr of their identify responses (e.g. "/ip4/203.0.113.7/tcp/4001"
 * behind a NAT). Observations over relayed connections and loopback or
 * unspecified addresses are ignored; each peer counts for the last address it
 * reported. An address is confirmed when at least 2 distinct peers report it,
 * or 1 peer that is a circuit relay (it lists /libp2p/circuit/relay/0.2.0/hop
 * in identify, e.g. the relay we hold a reservation with). Observations
 * expire after an hour. goop_host_announce_addr() lists confirmed observed
 * addresses after the listen addresses. Same return rules as
 * goop_host_listen_addr(). Since: 0.1
 */
GOOP_API int goop_host_observed_addr(const goop_host *host, size_t i, char *buf, size_t buf_len);

/* ---- peerstore ---------------------------------------------------------------- */

/**
 * Remember |multiaddr| (text; a trailing /p2p/<id> must match |peer|) for
 * |peer| for |ttl_s| seconds (0 = permanent). Returns 0 or GOOP_EPARSE /
 * GOOP_EPEERID / GOOP_ELIMIT (64 addresses per peer). Since: 0.1
 */
GOOP_API int goop_host_add_addr(goop_host *host, const goop_peer_id *peer, const char *multiaddr,
                                uint32_t ttl_s);

/** The |i|-th known, unexpired address of |peer| as text (same return rules as above). Since: 0.1 */
GOOP_API int goop_host_peer_addr(goop_host *host, const goop_peer_id *peer, size_t i, char *buf,
                                 size_t buf_len);

/** The |i|-th protocol |peer| announced in identify (borrowed; NULL past the end). Since: 0.1 */
GOOP_API const char *goop_host_peer_protocol(goop_host *host, const goop_peer_id *peer, size_t i);

/** The agent version |peer| announced (borrowed, NULL if unknown). Since: 0.1 */
GOOP_API const char *goop_host_peer_agent(goop_host *host, const goop_peer_id *peer);

/* ---- connections --------------------------------------------------------------- */

/** Called when a connect finishes: |status| 0 with a connection (borrowed), or a GOOP_E* code. */
typedef void (*goop_connect_cb)(goop_host *host, int status, goop_conn *conn, void *user_data);

/**
 * Connect to |peer| using the peerstore, reusing an existing connection.
 * |cb| is always called later, never from inside this function, unless this
 * function fails (then it is never called). Errors in |cb|: GOOP_ENOADDR,
 * GOOP_ETIMEDOUT, GOOP_ECONNREFUSED, GOOP_EPEERID, GOOP_ENEGOTIATION, ...
 * |timeout_ms| 0 = default (10 s). Since: 0.1
 */
GOOP_API int goop_host_connect(goop_host *host, const goop_peer_id *peer, uint32_t timeout_ms,
                               goop_connect_cb cb, void *user_data);

/**
 * Connect to a TCP multiaddr. If it ends in /p2p/<id>, the remote must prove
 * that ID (else GOOP_EPEERID) and the address is added to the peerstore.
 * Since: 0.1
 */
GOOP_API int goop_host_connect_addr(goop_host *host, const char *multiaddr, uint32_t timeout_ms,
                                    goop_connect_cb cb, void *user_data);

/** The live connection to |peer|, or NULL (borrowed). Since: 0.1 */
GOOP_API goop_conn *goop_host_get_conn(goop_host *host, const goop_peer_id *peer);
/** Number of established connections. Since: 0.1 */
GOOP_API size_t goop_host_num_conns(const goop_host *host);

GOOP_API goop_conn *goop_conn_ref(goop_conn *conn);
/** Drop a reference; returns NULL. Since: 0.1 */
GOOP_API goop_conn *goop_conn_unref(goop_conn *conn);
/** The authenticated remote Peer ID. Since: 0.1 */
GOOP_API void goop_conn_remote_peer(const goop_conn *conn, goop_peer_id *ret);
/** Remote transport address as multiaddr text. Returns length or GOOP_EINVAL. Since: 0.1 */
GOOP_API int goop_conn_remote_addr(const goop_conn *conn, char *buf, size_t buf_len);
/** true if we dialled this connection. Since: 0.1 */
GOOP_API bool goop_conn_is_outbound(const goop_conn *conn);
/** true once the connection is closed. Since: 0.1 */
GOOP_API bool goop_conn_is_closed(const goop_conn *conn);
/** Close the connection (GoAway, then TCP close); its streams are reset. Since: 0.1 */
GOOP_API void goop_conn_close(goop_conn *conn);

/* ---- streams ------------------------------------------------------------------- */

/** Handler for inbound streams of one protocol. |s| carries a reference the handler owns. */
typedef void (*goop_stream_handler)(goop_host *host, goop_stream *s, void *user_data);

/**
 * Serve |protocol| (exact match; copied) with |fn|. Replaces a previous
 * handler of the same protocol. Returns 0, GOOP_EINVAL or GOOP_ENOMEM. Since: 0.1
 */
GOOP_API int goop_host_set_stream_handler(goop_host *host, const char *protocol, goop_stream_handler fn,
                                          void *user_data);
/** Stop serving |protocol|. GOOP_ENOENT if it was not served. Since: 0.1 */
GOOP_API int goop_host_remove_stream_handler(goop_host *host, const char *protocol);

/** Called when goop_host_new_stream() finishes: a stream (caller owns a reference) or an error. */
typedef void (*goop_stream_open_cb)(goop_host *host, int status, goop_stream *s, void *user_data);

/**
 * Open a stream to |peer| (connecting first if needed) and negotiate the
 * first of |protocols| (copied) the remote accepts. |cb| is called later,
 * exactly once, unless this function returns an error. Errors in |cb|: those
 * of goop_host_connect(), GOOP_ENEGOTIATION (no protocol accepted),
 * GOOP_ELIMIT, GOOP_ETIMEDOUT, GOOP_ECANCELED. Since: 0.1
 */
GOOP_API int goop_host_new_stream(goop_host *host, const goop_peer_id *peer, const char *const *protocols,
                                  size_t n_protocols, uint32_t timeout_ms, goop_stream_open_cb cb,
                                  void *user_data);

/** Stream event callbacks. */
struct goop_stream_callbacks {
  uint32_t version; /* GOOP_STREAM_CALLBACKS_V1 */
  /** Data or end-of-stream is available to goop_stream_read(). */
  void (*on_readable)(goop_stream *s, void *user_data);
  /** The send buffer drained below half after goop_stream_write() returned GOOP_EAGAIN. */
  void (*on_writable)(goop_stream *s, void *user_data);
  /** The stream failed: reset by the remote (GOOP_ERESET), connection lost, or timeout. */
  void (*on_error)(goop_stream *s, int err, void *user_data);
};
#define GOOP_STREAM_CALLBACKS_V1 1

/** Install callbacks (copied). If data is already buffered, on_readable fires soon. Since: 0.1 */
GOOP_API void goop_stream_set_callbacks(goop_stream *s, const struct goop_stream_callbacks *cb,
                                        void *user_data);

/**
 * Read up to |len| bytes. Returns the number read (> 0), 0 at end of stream
 * (remote closed its write side and everything was read), GOOP_EAGAIN when
 * nothing is buffered yet, or GOOP_ERESET / another error. Since: 0.1
 */
GOOP_API ssize_t goop_stream_read(goop_stream *s, void *buf, size_t len);

/** Bytes buffered and ready for goop_stream_read(). Since: 0.1 */
GOOP_API size_t goop_stream_readable(const goop_stream *s);

/**
 * Queue up to |len| bytes for sending. Returns the number accepted (may be
 * less than |len|; the send buffer is bounded), GOOP_EAGAIN when the buffer is
 * full (on_writable fires later), or GOOP_ECLOSED / GOOP_ERESET. Since: 0.1
 */
GOOP_API ssize_t goop_stream_write(goop_stream *s, const void *buf, size_t len);

/** Bytes queued but not yet handed to the connection. Since: 0.1 */
GOOP_API size_t goop_stream_pending(const goop_stream *s);

/** Close our write side (FIN after queued data). Idempotent. Since: 0.1 */
GOOP_API int goop_stream_close_write(goop_stream *s);
/** Abort the stream in both directions (RST). Since: 0.1 */
GOOP_API void goop_stream_reset(goop_stream *s);

/** Reset the stream if nothing was read or written for |ms| (0 = never). Since: 0.1 */
GOOP_API void goop_stream_set_idle_timeout(goop_stream *s, uint32_t ms);

/** The negotiated protocol (borrowed, valid while the stream lives). Since: 0.1 */
GOOP_API const char *goop_stream_protocol(const goop_stream *s);
/** Remote Peer ID. Since: 0.1 */
GOOP_API void goop_stream_remote_peer(const goop_stream *s, goop_peer_id *ret);
/** The connection of the stream (borrowed). Since: 0.1 */
GOOP_API goop_conn *goop_stream_conn(const goop_stream *s);

GOOP_API goop_stream *goop_stream_ref(goop_stream *s);
/** Drop a reference; the last one resets a stream that is still open. Returns NULL. Since: 0.1 */
GOOP_API goop_stream *goop_stream_unref(goop_stream *s);

/* ---- ping ------------------------------------------------------------------------ */

/** Ping result: |status| 0 with |rtt_us|, or a GOOP_E* code. */
typedef void (*goop_ping_cb)(goop_host *host, int status, uint64_t rtt_us, void *user_data);

/**
 * One /ipfs/ping/1.0.0 round trip to |peer| (connecting if needed).
 * |cb| is called later, exactly once, unless this returns an error. Since: 0.1
 */
GOOP_API int goop_host_ping(goop_host *host, const goop_peer_id *peer, uint32_t timeout_ms, goop_ping_cb cb,
                            void *user_data);

#ifdef __cplusplus
}
#endif
#endif
