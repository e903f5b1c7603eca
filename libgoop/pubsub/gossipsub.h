/*
 * GossipSub v1.1 router core (internal, sans-I/O).
 *
 * Bytes, peers and timestamps go in; per-peer output bytes, deliveries and the
 * next deadline come out. The router speaks /meshsub/1.1.0 and /meshsub/1.0.0
 * (mesh, GRAFT/PRUNE with backoff, fanout, IHAVE/IWANT gossip) and treats
 * /floodsub/1.0.0 peers as floodsub peers (they get every message on topics
 * they subscribe to). Messages are StrictSign-signed and verified
 * (libp2p-notes.md §11.3); message ID = from ‖ seqno. No peer scoring, no
 * peer exchange, no IDONTWANT.
 *
 * Callbacks may call goop_gossip_publish/subscribe/unsubscribe, but must not
 * add, remove or free peers or the router.
 */
#ifndef GOOP_PUBSUB_GOSSIPSUB_H
#define GOOP_PUBSUB_GOSSIPSUB_H

#include <goop/common.h>
#include <goop/identity.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

typedef struct goop_gossip goop_gossip;
typedef struct goop_gossip_peer goop_gossip_peer;

enum goop_gossip_proto {
  GOOP_GOSSIP_MESHSUB_11 = 0, /* /meshsub/1.1.0 */
  GOOP_GOSSIP_MESHSUB_10 = 1, /* /meshsub/1.0.0 */
  GOOP_GOSSIP_FLOODSUB = 2,   /* /floodsub/1.0.0 */
};

/* Protocol ID text of |p|. */
const char *goop_gossip_proto_name(enum goop_gossip_proto p);
/* Parse a protocol ID; returns 0 or GOOP_ENOENT. */
int goop_gossip_proto_parse(const char *name, enum goop_gossip_proto *ret);

enum goop_gossip_verdict {
  GOOP_GOSSIP_ACCEPT = 0, /* deliver and forward */
  GOOP_GOSSIP_REJECT = 1, /* invalid: neither delivered nor forwarded */
  GOOP_GOSSIP_IGNORE = 2, /* drop silently: neither delivered nor forwarded */
};

/* A verified message, as handed to the validator and to deliver(). Borrowed. */
struct goop_gossip_msg {
  const char *topic; /* NUL-terminated */
  const uint8_t *data;
  size_t len;
  goop_peer_id from;
  uint64_t seqno;        /* last 8 bytes of seqno, big-endian */
  goop_gossip_peer *src; /* peer that sent it (NULL for our own) */
};

struct goop_gossip_callbacks {
  /* A new valid message on a topic we subscribe to (never our own). */
  void (*deliver)(void *ud, const struct goop_gossip_msg *m);
  /* Optional: decide about a verified message before delivery and forwarding. */
  enum goop_gossip_verdict (*validate)(void *ud, const struct goop_gossip_msg *m);
  /* Optional: |peer| has new output (goop_gossip_output_peek()). */
  void (*output)(void *ud, goop_gossip_peer *peer, void *peer_ud);
};

struct goop_gossip_params {
  unsigned d, d_lo, d_hi, d_lazy;
  double gossip_factor;
  goop_tstamp heartbeat_us;
  unsigned mcache_len, mcache_gossip;
  goop_tstamp fanout_ttl_us, seen_ttl_us;
  goop_tstamp prune_backoff_us, unsubscribe_backoff_us;
  unsigned max_ihave_len, max_ihave_msgs;
  bool flood_publish;
  size_t max_queue;     /* bytes queued per peer before frames are dropped */
  size_t max_topics;    /* topics known (ours and peers') */
  size_t max_peer_subs; /* subscriptions per peer */
  size_t max_seen;      /* seen-cache entries */
};

/* Fill |p| with the defaults (go-libp2p-pubsub v1.1, flood publish on). */
void goop_gossip_default_params(struct goop_gossip_params *p);

struct goop_gossip_config {
  const goop_identity *id;                 /* signs our messages; must outlive the router */
  const struct goop_gossip_params *params; /* NULL = defaults; copied */
  struct goop_gossip_callbacks cb;
  void *ud;
  uint64_t seqno_start; /* first seqno (go: unix time in ns) */
  uint64_t rng_seed;
};

struct goop_gossip_stats {
  uint64_t rpcs_in, rpcs_bad, rpcs_out;
  uint64_t msgs_published, msgs_delivered, msgs_forwarded;
  uint64_t msgs_duplicate, msgs_unsubscribed, msgs_invalid, msgs_rejected, msgs_ignored;
  uint64_t graft_sent, prune_sent, ihave_sent, iwant_sent, iwant_answered;
  uint64_t frames_dropped; /* output frames dropped because a peer's queue was full */
};

int goop_gossip_new(const struct goop_gossip_config *cfg, goop_gossip **ret);
void goop_gossip_free(goop_gossip *g);

/*
 * Add a peer speaking |proto|; queues the hello RPC with our subscriptions.
 * Returns 0, GOOP_EEXIST (same peer ID already added) or GOOP_ENOMEM.
 */
int goop_gossip_add_peer(goop_gossip *g, const goop_peer_id *id, enum goop_gossip_proto proto, void *peer_ud,
                         goop_tstamp now, goop_gossip_peer **ret);
/*
 * Drop everything queued for |p| and queue the hello again (our
 * subscriptions, and GRAFTs for meshes it is in): for a new outbound stream
 * after an old one carried part of the output.
 */
void goop_gossip_peer_restart_output(goop_gossip *g, goop_gossip_peer *p);
/* Change the protocol of a peer (e.g. when its outbound stream is negotiated). */
void goop_gossip_peer_set_proto(goop_gossip *g, goop_gossip_peer *p, enum goop_gossip_proto proto);
void goop_gossip_remove_peer(goop_gossip *g, goop_gossip_peer *p);
goop_gossip_peer *goop_gossip_find_peer(goop_gossip *g, const goop_peer_id *id);
void *goop_gossip_peer_ud(const goop_gossip_peer *p);
const goop_peer_id *goop_gossip_peer_id(const goop_gossip_peer *p);
enum goop_gossip_proto goop_gossip_peer_proto(const goop_gossip_peer *p);

/*
 * Feed bytes read from the stream the peer opened (uvarint-framed RPCs, any
 * split). Returns 0, or GOOP_EMSGSIZE (an RPC over GOOP_RPC_MAX_READ) /
 * GOOP_EPARSE (malformed framing or RPC): the caller should reset the stream.
 */
int goop_gossip_input(goop_gossip *g, goop_gossip_peer *p, const uint8_t *buf, size_t len, goop_tstamp now);
/* Handle one RPC without its length prefix. Returns 0 or GOOP_EPARSE-like codes. */
int goop_gossip_handle_rpc(goop_gossip *g, goop_gossip_peer *p, const uint8_t *rpc, size_t len,
                           goop_tstamp now);

/* Output queued for |p| (framed RPCs ready to write). */
const uint8_t *goop_gossip_output_peek(goop_gossip_peer *p, size_t *ret_len);
void goop_gossip_output_consume(goop_gossip_peer *p, size_t n);

/* Subscribe / unsubscribe. Topics are 1..GOOP_RPC_MAX_TOPIC bytes without NUL. */
int goop_gossip_subscribe(goop_gossip *g, const char *topic, goop_tstamp now);
int goop_gossip_unsubscribe(goop_gossip *g, const char *topic, goop_tstamp now);
bool goop_gossip_subscribed(goop_gossip *g, const char *topic);

/*
 * Sign and send a message. Returns 0 (also when no peer is there to receive
 * it), GOOP_EINVAL, GOOP_EMSGSIZE (data over GOOP_GOSSIP_MAX_DATA) or GOOP_ENOMEM.
 */
#define GOOP_GOSSIP_MAX_DATA (GOOP_RPC_MAX_READ - 4096u)
int goop_gossip_publish(goop_gossip *g, const char *topic, const uint8_t *data, size_t len, goop_tstamp now);

/* Run the periodic work; call at goop_gossip_next_deadline(). */
void goop_gossip_heartbeat(goop_gossip *g, goop_tstamp now);
goop_tstamp goop_gossip_next_deadline(const goop_gossip *g);

void goop_gossip_get_stats(const goop_gossip *g, struct goop_gossip_stats *ret);

/* Introspection (tests, stats). */
size_t goop_gossip_mesh_size(goop_gossip *g, const char *topic);
bool goop_gossip_in_mesh(goop_gossip *g, const char *topic, const goop_gossip_peer *p);
size_t goop_gossip_fanout_size(goop_gossip *g, const char *topic);
bool goop_gossip_peer_subscribed(goop_gossip *g, const goop_gossip_peer *p, const char *topic);
size_t goop_gossip_num_peers(const goop_gossip *g);
/* Peers that announced a subscription to |topic|. */
size_t goop_gossip_topic_peers(goop_gossip *g, const char *topic);

#endif
