/*
 * libgoop publish/subscribe: GossipSub v1.1 (/meshsub/1.1.0, /meshsub/1.0.0)
 * with a /floodsub/1.0.0 fallback, on a goop_host.
 *
 * Messages are signed with the host identity and verified on receipt
 * (StrictSign: unsigned or badly signed messages are dropped); the message ID
 * is from ‖ seqno, as go-libp2p-pubsub computes it. Mesh parameters are the
 * go defaults (D=6, D_lo=5, D_hi=12, D_lazy=6, 1 s heartbeat, 60 s prune
 * backoff, 120 s seen cache); our own messages are flood-published to every
 * subscribed peer. There is no peer scoring and no peer exchange.
 *
 * Everything runs on the host's event loop; no function is thread-safe.
 * Message and validator callbacks may publish, subscribe and unsubscribe,
 * but must not free the pubsub object or its host.
 */
#ifndef GOOP_PUBSUB_H
#define GOOP_PUBSUB_H

#include <goop/common.h>
#include <goop/identity.h>
#include <goop/transport.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct goop_pubsub goop_pubsub;

/** A received message (all pointers borrowed for the duration of the callback). */
struct goop_pubsub_message {
  const char *topic;          /* NUL-terminated */
  const uint8_t *data;        /* payload */
  size_t len;                 /* payload length */
  goop_peer_id from;          /* author, checked against the signature */
  uint64_t seqno;             /* author's sequence number */
  goop_peer_id received_from; /* neighbour that forwarded it to us */
};

/** What a validator decides about a message. */
enum goop_pubsub_verdict {
  GOOP_PUBSUB_ACCEPT = 0, /* deliver and forward */
  GOOP_PUBSUB_REJECT = 1, /* invalid: neither delivered nor forwarded */
  GOOP_PUBSUB_IGNORE = 2, /* drop quietly: neither delivered nor forwarded */
};

/** Called for each new valid message on a subscribed topic. Our own messages are not delivered. */
typedef void (*goop_pubsub_message_cb)(goop_pubsub *ps, const struct goop_pubsub_message *m, void *user_data);

/** Called before delivery and forwarding of a message whose signature was verified. */
typedef enum goop_pubsub_verdict (*goop_pubsub_validator)(goop_pubsub *ps,
                                                          const struct goop_pubsub_message *m,
                                                          void *user_data);

/** Counters (monotonic since goop_pubsub_new()). */
struct goop_pubsub_stats {
  uint64_t peers;             /* pubsub peers now */
  uint64_t rpcs_in;           /* RPCs received */
  uint64_t rpcs_bad;          /* malformed or oversized RPCs (their stream is reset) */
  uint64_t rpcs_out;          /* RPCs queued for sending */
  uint64_t msgs_published;    /* messages we published */
  uint64_t msgs_delivered;    /* new valid messages received */
  uint64_t msgs_forwarded;    /* copies of received messages sent on */
  uint64_t msgs_duplicate;    /* messages seen before */
  uint64_t msgs_invalid;      /* unsigned, badly signed or malformed messages */
  uint64_t msgs_rejected;     /* rejected by a validator */
  uint64_t msgs_ignored;      /* ignored by a validator */
  uint64_t msgs_unsubscribed; /* messages on topics we do not subscribe to */
  uint64_t frames_dropped;    /* RPCs dropped because a peer's output queue was full (4 MiB) */
};

/**
 * Start pubsub on |host|: serves /meshsub/1.1.0, /meshsub/1.0.0 and
 * /floodsub/1.0.0 (identify then announces them) and runs a 1 s heartbeat on
 * the host's event loop. Messages are signed with the host identity. The
 * host must outlive the pubsub object. Peers become pubsub peers when they
 * open a pubsub stream to us, or when identify of a new connection lists a
 * pubsub protocol (pubsub follows the host with goop_host_add_events()).
 * Connections identified before this call can be reported with
 * goop_pubsub_peer_connected(). Returns 0, GOOP_EINVAL, GOOP_ELIMIT (no room
 * for another event listener) or GOOP_ENOMEM. Since: 0.1
 */
GOOP_API int goop_pubsub_new(goop_host *host, goop_pubsub **ret) GOOP_WARN_UNUSED_RESULT;

/**
 * Stop serving the pubsub protocols, reset all pubsub streams and free
 * |ps|. Call before goop_host_free(). NULL is a no-op. Since: 0.1
 */
GOOP_API void goop_pubsub_free(goop_pubsub *ps);

/**
 * Subscribe to |topic| (1..1024 bytes) and deliver its messages to |cb|.
 * Subscribing again replaces the callback. Returns 0, GOOP_EINVAL,
 * GOOP_ELIMIT or GOOP_ENOMEM. Since: 0.1
 */
GOOP_API int goop_pubsub_subscribe(goop_pubsub *ps, const char *topic, goop_pubsub_message_cb cb,
                                   void *user_data);

/** Leave |topic|. Returns 0 or GOOP_ENOENT if not subscribed. Since: 0.1 */
GOOP_API int goop_pubsub_unsubscribe(goop_pubsub *ps, const char *topic);

/**
 * Install (or, with |fn| NULL, remove) the validator of |topic|. It applies
 * to received messages only. Returns 0, GOOP_EINVAL or GOOP_ENOMEM. Since: 0.1
 */
GOOP_API int goop_pubsub_set_validator(goop_pubsub *ps, const char *topic, goop_pubsub_validator fn,
                                       void *user_data);

/**
 * Sign and send |len| bytes of |data| on |topic| (subscribed or not). Returns
 * 0 (also when no peer is there to receive it), GOOP_EINVAL, GOOP_EMSGSIZE
 * (over 1 MiB - 4 KiB) or GOOP_ENOMEM. Since: 0.1
 */
GOOP_API int goop_pubsub_publish(goop_pubsub *ps, const char *topic, const void *data, size_t len);

/**
 * Tell pubsub that |peer| is connected and identified: if identify listed a
 * pubsub protocol, open our stream with the best common one. Idempotent.
 * Returns 0, GOOP_ENOTSUP (the peer speaks no pubsub protocol) or
 * GOOP_ENOMEM. Since: 0.1
 */
GOOP_API int goop_pubsub_peer_connected(goop_pubsub *ps, const goop_peer_id *peer);

/**
 * Adapter with the signature of goop_host_events.on_identified (pubsub
 * installs it itself; calling it again is harmless). |user_data| is the
 * goop_pubsub. Since: 0.1
 */
GOOP_API void goop_pubsub_host_identified(goop_host *host, goop_conn *conn, void *user_data);

/** Number of pubsub peers that announced a subscription to |topic|. Since: 0.1 */
GOOP_API size_t goop_pubsub_topic_peers(goop_pubsub *ps, const char *topic);

/** Copy the counters into |*ret|. Since: 0.1 */
GOOP_API void goop_pubsub_get_stats(const goop_pubsub *ps, struct goop_pubsub_stats *ret);

#ifdef __cplusplus
}
#endif
#endif
