/*
 * Transport glue internals: host, connections, streams and byte pipes.
 *
 * A connection (goop_conn) secures and multiplexes an arbitrary byte pipe
 * (goop__pipe): multistream-select for /noise, the Noise XX handshake, then
 * yamux (early-negotiated or through multistream-select). The TCP pipe lives
 * in tcp.c; a relayed stream can become a pipe later without touching the
 * connection code.
 */
#ifndef GOOP_TRANSPORT_INTERNAL_H
#define GOOP_TRANSPORT_INTERNAL_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <goop/transport.h>
#include <sys/socket.h>

#include "common/internal.h"
#include "core/buf.h"
#include "identify.h"
#include "mss.h"
#include "noise.h"
#include "yamux.h"

#define GOOP_PROTO_IDENTIFY "/ipfs/id/1.0.0"
#define GOOP_PROTO_IDENTIFY_PUSH "/ipfs/id/push/1.0.0"
#define GOOP_PROTO_PING "/ipfs/ping/1.0.0"
#define GOOP_PROTO_YAMUX "/yamux/1.0.0"

/* Output above this many bytes in a pipe stops pumping stream data. */
#define GOOP_PIPE_HIGH_WATER (1u << 20)
#define GOOP_PIPE_LOW_WATER (256u << 10)

#define GOOP_HOST_NOPTS 12

struct goop_host_config {
  uint64_t opt[GOOP_HOST_NOPTS];
  char *agent;
};

/* ---- pipes ---------------------------------------------------------------- */

typedef struct goop__pipe goop__pipe;

struct goop__pipe_ops {
  /* Queue bytes for sending. 0 or GOOP_E*. */
  int (*write)(goop__pipe *p, const uint8_t *data, size_t len);
  /* Bytes queued but not yet sent. */
  size_t (*out_pending)(const goop__pipe *p);
  /* Stop reading and close once queued output is sent. */
  void (*shutdown)(goop__pipe *p);
  /* Close at once and free. */
  void (*free)(goop__pipe *p);
  /* Remote transport address as multiaddr text. */
  int (*remote_addr)(const goop__pipe *p, char *buf, size_t len);
  /* Optional zero-copy output: a block of at least GOOP_PIPE_BLOCK bytes to fill
   * (NULL on ENOMEM), then hand |len| bytes of it over with commit (which always
   * takes the block back, also on error). */
  uint8_t *(*reserve)(goop__pipe *p);
  int (*commit)(goop__pipe *p, uint8_t *block, size_t len);
};

/* Size of a zero-copy output block. */
#define GOOP_PIPE_BLOCK (256u << 10)

struct goop__pipe {
  const struct goop__pipe_ops *ops;
  struct goop_conn *conn; /* upcalls go here; NULL while detached */
};

/* Upcalls from a pipe to its connection. */
void goop__conn_pipe_input(struct goop_conn *c, struct evbuffer *in);
void goop__conn_pipe_drained(struct goop_conn *c);
void goop__conn_pipe_closed(struct goop_conn *c, int err);

/* Create a TCP pipe around a connected bufferevent (takes ownership). */
int goop__tcp_pipe_new(struct bufferevent *bev, const struct sockaddr *remote, socklen_t remote_len,
                       goop__pipe **ret);

/* sockaddr <-> multiaddr text helpers (tcp.c). */
int goop__sockaddr_to_ma(const struct sockaddr *sa, char *buf, size_t len);
int goop__ma_to_sockaddr(const uint8_t *ma, size_t ma_len, struct sockaddr_storage *ret, socklen_t *ret_len,
                         goop_peer_id *ret_peer, bool *ret_has_peer);

/* ---- connections ------------------------------------------------------------- */

enum goop__conn_state {
  GOOP_CONN_SEC_MSS = 0,
  GOOP_CONN_NOISE,
  GOOP_CONN_MUX_MSS,
  GOOP_CONN_READY,
  GOOP_CONN_CLOSED,
};

struct goop__dial;

/* A stream open waiting for a connection or for yamux backlog room. */
struct goop__stream_req {
  struct goop_host *host;
  char **protos;
  size_t n;
  uint32_t timeout_ms;
  goop_stream_open_cb cb;
  void *ud;
  struct goop_conn *conn; /* set while queued on a connection */
  struct event *timer;
  struct goop__stream_req *next, *prev;
};

struct goop_conn {
  int refs;
  struct goop_host *host;
  goop__pipe *pipe;
  bool outbound;  /* socket direction: we dialled (decides simultaneous-dial tie-breaks) */
  bool initiator; /* upgrade role: mss initiator, Noise initiator, yamux client (= outbound unless
                   * hole punching assigned the role, see dcutr.c) */
  enum goop__conn_state state;
  goop_mss *mss;
  goop_noise_hs *hs;
  goop_noise_cipher *cipher;
  goop_yamux *ymx;
  goop_buf plain; /* decrypted bytes not yet fed to the muxer stage */
  goop_buf enc;   /* scratch: encrypted output */
  goop_peer_id remote;
  bool has_expected;
  goop_peer_id expected;
  char remote_addr[160];
  struct event *hs_timer;
  struct event *ka_timer;
  struct event *pump_ev;
  bool ping_outstanding;
  uint32_t ping_opaque;
  goop_tstamp ping_sent;
  goop_tstamp last_activity;
  goop_tstamp rtt;
  bool draining; /* lost a simultaneous-dial tie-break: no new streams */
  bool identified;
  bool counted_pending; /* counted in host->n_pending_inbound */
  bool in_list;
  bool relayed;          /* runs over a circuit relay stream (circuit.c) */
  bool superseded;       /* relayed, replaced by a direct connection: reports its own on_disconnected */
  bool from_listen_port; /* dialled from our listen port: what the remote observes is worth keeping */
  int close_reason;
  struct goop__dial *dial;          /* outbound dial this connection belongs to while upgrading */
  struct goop_stream *streams;      /* all live streams (list) */
  struct goop__stream_req *waiting; /* opens waiting for un-ACKed SYNs to drain */
  size_t n_streams;
  struct goop_conn *next, *prev;         /* host->conns */
  struct goop_conn *all_next, *all_prev; /* host->all_conns (every allocated connection) */
};

int goop__conn_new(struct goop_host *h, goop__pipe *pipe, bool outbound, const goop_peer_id *expected,
                   struct goop_conn **ret);
/* Same with the upgrade role given apart from the socket direction (hole punching). */
int goop__conn_new_role(struct goop_host *h, goop__pipe *pipe, bool outbound, bool initiator,
                        const goop_peer_id *expected, struct goop_conn **ret);
/* Close with |reason| (0 = clean): GoAway, reset streams, notify, unlink. */
void goop__conn_close(struct goop_conn *c, int reason);
/* Open a yamux stream for |protocols| on a READY connection. */
int goop__conn_open_stream(struct goop_conn *c, const char *const *protocols, size_t n, uint32_t timeout_ms,
                           goop_stream_open_cb cb, void *ud);
/* Retry stream opens queued on |c| (after input); fail them all with |err| if non-zero. */
void goop__host_retry_opens(struct goop_conn *c, int err);
/* Schedule a pump of queued stream data. */
void goop__conn_schedule_pump(struct goop_conn *c);

/* ---- streams ----------------------------------------------------------------- */

enum goop__stream_state {
  GOOP_STREAM_NEGOTIATING = 0,
  GOOP_STREAM_OPEN,
  GOOP_STREAM_DEAD, /* reset, failed or fully closed */
};

struct goop_stream {
  int refs;
  struct goop_conn *conn; /* holds a reference */
  uint32_t id;
  bool outbound;
  bool in_yamux; /* yamux still knows the id */
  enum goop__stream_state state;
  goop_mss *mss;
  char *protocol;
  goop_buf rbuf;
  goop_buf wbuf;
  size_t wmax;
  bool remote_fin;
  bool fin_requested;
  bool fin_sent;
  bool want_writable;
  int err;
  struct goop_stream_callbacks cb;
  void *ud;
  void (*svc_free)(void *ud); /* internal services: frees |ud| if the host is torn down */
  /* outbound negotiation */
  goop_stream_open_cb open_cb;
  void *open_ud;
  /* deferred notifications */
  struct event *notify_ev;
  bool pend_readable, pend_writable, pend_error, pend_open;
  bool notify_scheduled;
  int user_refs;       /* references held by the application */
  bool handed;         /* given to the application (handler or open callback) */
  struct event *timer; /* negotiation deadline, then idle timeout */
  uint32_t idle_ms;
  goop_tstamp last_io;
  struct goop_stream *next, *prev;         /* conn->streams */
  struct goop_stream *all_next, *all_prev; /* host->all_streams */
};

struct goop_stream *goop__stream_new(struct goop_conn *c, uint32_t id, bool outbound);
/* Free without reference counting (host teardown only). */
void goop__stream_destroy(struct goop_stream *s);
void goop__conn_destroy(struct goop_conn *c);
/* Fail a stream: report |err| to its owner (open callback or on_error) and reset. */
void goop__stream_fail(struct goop_stream *s, int err);
void goop__stream_on_data(struct goop_stream *s, const uint8_t *data, size_t len);
void goop__stream_on_fin(struct goop_stream *s);
void goop__stream_on_reset(struct goop_stream *s);
void goop__stream_on_closed(struct goop_stream *s);
void goop__stream_on_writable(struct goop_stream *s);
/* Schedule the stream's deferred notifications. */
void goop__stream_notify(struct goop_stream *s);
/* Move queued bytes into yamux (and send a requested FIN). Returns true on progress. */
bool goop__stream_pump(struct goop_stream *s);

/* ---- host -------------------------------------------------------------------- */

struct goop__handler {
  char *proto;
  goop_stream_handler fn;
  void *ud;
};

struct goop__peer_addr {
  uint8_t *ma;
  size_t len;
  goop_tstamp expires; /* 0 = permanent */
};

struct goop__peer {
  goop_peer_id id;
  struct goop__peer_addr *addrs;
  size_t n_addrs;
  char **protocols;
  size_t n_protocols;
  char *agent;
  uint64_t record_seq;
};

struct goop__listener {
  struct evconnlistener *l;
  int family;
  char text[128];
};

struct goop__connect_req;

struct goop__dial {
  struct goop_host *host;
  /* circuit addresses (binary, ".../p2p/R/p2p-circuit"), dialled after the direct ones */
  struct goop__peer_addr *circ;
  size_t n_circ;
  bool circ_started;
  struct event *circ_timer;
  goop_peer_id peer;
  bool has_peer;
  struct goop__connect_req *reqs;
  int n_attempts; /* TCP attempts still running */
  bool punch;     /* hole-punch dial (dcutr.c): from the listen port only, never shared */
  bool initiator; /* punch dials: the upgrade role DCUtR assigned */
  int last_err;
  struct event *timer;
  struct goop__dial *next, *prev;
  struct goop__attempt *attempts;
};

struct goop__attempt {
  struct goop__dial *dial;
  struct bufferevent *bev;
  struct sockaddr_storage sa;
  socklen_t sa_len;
  struct goop_conn *conn;
  struct goop__circuit_dial *circuit; /* circuit attempt: hop CONNECT in progress */
  bool from_listen;                   /* the socket is bound to our listen port */
  struct goop__attempt *next;
};

struct goop__connect_req {
  goop_connect_cb cb;
  void *ud;
  struct goop__connect_req *next;
};

struct goop__deferred {
  goop_connect_cb cb;
  void *ud;
  int status;
  struct goop_conn *conn; /* ref held */
  struct goop__deferred *next;
};

struct goop_host {
  goop_ctx *ctx;
  struct event_base *base;
  goop_identity *id;
  goop_peer_id self;
  uint64_t opt[GOOP_HOST_NOPTS];
  char *agent;
  struct goop_host_events ev;
  void *ev_ud;
  struct goop__ev_slot {
    int id; /* 0 = free */
    struct goop_host_events ev;
    void *ud;
  } ev_extra[16];
  int ev_next_id;
  struct goop__listener *listeners;
  size_t n_listeners;
  struct goop_conn *conns;
  size_t n_conns_ready;
  size_t n_pending_inbound;
  struct goop__handler *handlers;
  size_t n_handlers;
  struct goop__peer *peers;
  size_t n_peers;
  struct goop__dial *dials;
  struct goop__deferred *deferred;
  struct goop_conn *all_conns;
  struct goop_stream *all_streams;
  struct goop__ping *pings;
  struct goop_reservation *reservations; /* circuit.c */
  struct event *deferred_ev;
  int depth;
  bool free_requested;
  struct goop__dcutr *dcutr; /* observed addresses and hole punching (dcutr.c) */
};

/* Re-entrancy guard: every libevent callback into host code brackets its work. */
void goop__host_enter(struct goop_host *h);
/* Returns true if the host was freed (the caller must not touch it any more). */
bool goop__host_leave(struct goop_host *h);

uint64_t goop__host_opt(const struct goop_host *h, enum goop_host_option o);
const struct goop__handler *goop__host_find_handler(const struct goop_host *h, const char *proto);
bool goop__host_handler_supported(const char *proto, void *ud);

/* Tell every event listener (goop_host_set_events + goop_host_add_events). */
enum goop__host_event { GOOP__EV_CONNECTED, GOOP__EV_DISCONNECTED, GOOP__EV_IDENTIFIED };
void goop__host_emit(struct goop_host *h, enum goop__host_event what, struct goop_conn *c, int reason);

/* A connection finished its upgrade (called by conn.c). */
void goop__host_conn_ready(struct goop_host *h, struct goop_conn *c);
/* A connection failed during its upgrade or closed (called by conn.c). */
void goop__host_conn_closed(struct goop_host *h, struct goop_conn *c, int reason, bool was_ready);
/* Find the usable (READY, not draining) connection to |peer|. */
struct goop_conn *goop__host_find_conn(struct goop_host *h, const goop_peer_id *peer);

struct goop__peer *goop__peerstore_get(struct goop_host *h, const goop_peer_id *id, bool create);
int goop__peerstore_add_bin(struct goop_host *h, const goop_peer_id *id, const uint8_t *ma, size_t len,
                            uint32_t ttl_s);

/* Generic intrusive doubly-linked list helpers on fields |nx| / |pv|. */
#define GOOP_DL_PUSH(head, node, nx, pv)                                                                     \
  do {                                                                                                       \
    (node)->pv = NULL;                                                                                       \
    (node)->nx = (head);                                                                                     \
    if (head)                                                                                                \
      (head)->pv = (node);                                                                                   \
    (head) = (node);                                                                                         \
  } while (0)
#define GOOP_DL_REMOVE(head, node, nx, pv)                                                                   \
  do {                                                                                                       \
    if ((node)->pv)                                                                                          \
      (node)->pv->nx = (node)->nx;                                                                           \
    else if ((head) == (node))                                                                               \
      (head) = (node)->nx;                                                                                   \
    if ((node)->nx)                                                                                          \
      (node)->nx->pv = (node)->pv;                                                                           \
    (node)->nx = (node)->pv = NULL;                                                                          \
  } while (0)

/* ---- circuit relay client (circuit.c) ------------------------------------------ */

struct goop__circuit_dial;

/* Start dialling |a->dial->peer| through the relay of the circuit address
 * |ma| (".../p2p/R/p2p-circuit", binary). Never calls back synchronously: it
 * later sets up the relayed connection with goop__host_circuit_conn() or
 * reports goop__host_attempt_failed(). 0 or GOOP_E* (then nothing started). */
int goop__circuit_dial_start(struct goop__attempt *a, const uint8_t *ma, size_t len);
/* Abandon a circuit attempt (its dial finished or failed). */
void goop__circuit_dial_cancel(struct goop__circuit_dial *cd);
/* Split a binary multiaddr around /p2p-circuit: 1 with the length of the relay
 * part (ending in /p2p/R), R, and the target if "/p2p/B" follows; 0 if |ma| is
 * no circuit address; GOOP_EPARSE if it is a malformed one. */
int goop__circuit_split(const uint8_t *ma, size_t len, size_t *ret_relay_len, goop_peer_id *ret_relay,
                        goop_peer_id *ret_target, bool *ret_has_target);
/* Register the stop handler (inbound relayed connections). */
int goop__circuit_init(struct goop_host *h);
/* The |i|-th circuit address of an active reservation (goop_host_announce_addr). */
int goop__circuit_announce_addr(const struct goop_host *h, size_t i, char *buf, size_t len);
/* Host teardown: stop every reservation. */
void goop__circuit_cancel(struct goop_host *h);
/* host.c: a circuit attempt set up its connection, or failed. */
void goop__host_circuit_conn(struct goop__attempt *a, struct goop_conn *c);
void goop__host_attempt_failed(struct goop__attempt *a, int err);

/* Built-in services (services.c). */
int goop__services_init(struct goop_host *h);
void goop__services_start_identify(struct goop_host *h, struct goop_conn *c);
void goop__services_cancel(struct goop_host *h);

/* ---- observed addresses and hole punching (dcutr.c) ----------------------------- */

int goop__dcutr_init(struct goop_host *h);
/* Host teardown: end every hole punch and free the state. */
void goop__dcutr_free(struct goop_host *h);
/* Identify over |c| said the remote sees us at |ma| (binary multiaddr). */
void goop__observed_record(struct goop_host *h, struct goop_conn *c, const uint8_t *ma, size_t len);
/* Identify over |c| finished: start DCUtR as B on an inbound relayed connection. */
void goop__dcutr_on_identified(struct goop_host *h, struct goop_conn *c);
/* Start DCUtR as B over |c| whatever carries it (also used by tests). 0 or GOOP_E*. */
int goop__dcutr_start(struct goop_conn *c);
/* Skip the exchange: punch now to |mas| in the role of B (server) or A (client)
 * with |c| as the carrier; one attempt (tests of TCP simultaneous open). */
int goop__dcutr_punch_now(struct goop_conn *c, bool is_b, const uint8_t *const *mas, const size_t *lens,
                          size_t n);
/* A connection became ready (called by host.c after its tie-break). */
void goop__dcutr_conn_ready(struct goop_host *h, struct goop_conn *c);
/* Which of two ready connections to one peer to keep when hole punching has a
 * say (direct over relayed, a punched one over its carrier); NULL otherwise. */
struct goop_conn *goop__dcutr_prefer(struct goop_host *h, struct goop_conn *a, struct goop_conn *b);
/* An accepted socket from |sa|: -1 when no hole punch expects it, else the
 * upgrade role (1 initiator, 0 responder) with the expected peer in |*ret_peer|. */
int goop__dcutr_accept_role(struct goop_host *h, const struct sockaddr *sa, goop_peer_id *ret_peer);
/* The connection runs over a relay (circuit). */
bool goop__conn_relayed(const struct goop_conn *c);
/* A dial from the listen port (SO_REUSEADDR + SO_REUSEPORT) to the binary
 * multiaddrs |mas| with the upgrade role |initiator| (host.c). |cb| as for goop_host_connect(). */
int goop__host_dial_punch(struct goop_host *h, const goop_peer_id *peer, const uint8_t *const *mas,
                          const size_t *lens, size_t n, bool initiator, uint32_t timeout_ms,
                          goop_connect_cb cb, void *ud);

#endif
