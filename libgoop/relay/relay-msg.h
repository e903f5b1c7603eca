/*
 * Circuit relay v2 and DCUtR messages, sans I/O.
 *
 * Hop (/libp2p/circuit/relay/0.2.0/hop), Stop (/libp2p/circuit/relay/0.2.0/stop)
 * and HolePunch (/libp2p/dcutr) messages travel uvarint-length-prefixed, each at
 * most GOOP_RELAY_MSG_MAX bytes. Decoded messages hold views into the input
 * buffer: keep it alive while using them.
 */
#ifndef GOOP_RELAY_MSG_H
#define GOOP_RELAY_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include <goop/identity.h>

#define GOOP_PROTO_RELAY_HOP "/libp2p/circuit/relay/0.2.0/hop"
#define GOOP_PROTO_RELAY_STOP "/libp2p/circuit/relay/0.2.0/stop"
#define GOOP_PROTO_DCUTR "/libp2p/dcutr"

#define GOOP_RELAY_MSG_MAX 4096
/* Addresses kept per message; further ones are counted in n_dropped and ignored. */
#define GOOP_RELAY_MAX_ADDRS 16

#define GOOP_RELAY_VOUCHER_DOMAIN "libp2p-relay-rsvp"
#define GOOP_RELAY_VOUCHER_TYPE "\x03\x02"
#define GOOP_RELAY_VOUCHER_TYPE_LEN 2

enum goop_hop_type { GOOP_HOP_RESERVE = 0, GOOP_HOP_CONNECT = 1, GOOP_HOP_STATUS = 2 };
enum goop_stop_type { GOOP_STOP_CONNECT = 0, GOOP_STOP_STATUS = 1 };
enum goop_holepunch_type { GOOP_HOLEPUNCH_CONNECT = 100, GOOP_HOLEPUNCH_SYNC = 300 };

enum goop_relay_status {
  GOOP_RELAY_UNUSED = 0,
  GOOP_RELAY_OK = 100,
  GOOP_RELAY_RESERVATION_REFUSED = 200,
  GOOP_RELAY_RESOURCE_LIMIT_EXCEEDED = 201,
  GOOP_RELAY_PERMISSION_DENIED = 202,
  GOOP_RELAY_CONNECTION_FAILED = 203,
  GOOP_RELAY_NO_RESERVATION = 204,
  GOOP_RELAY_MALFORMED_MESSAGE = 400,
  GOOP_RELAY_UNEXPECTED_MESSAGE = 401,
};

/* A borrowed byte range. */
typedef struct goop_relay_bytes {
  const uint8_t *data;
  size_t len;
} goop_relay_bytes;

typedef struct goop_relay_peer {
  bool present;
  goop_relay_bytes id; /* binary peer ID (multihash) */
  goop_relay_bytes addrs[GOOP_RELAY_MAX_ADDRS];
  size_t n_addrs;
  size_t n_dropped; /* addresses past GOOP_RELAY_MAX_ADDRS (decode only) */
} goop_relay_peer;

typedef struct goop_relay_rsvp {
  bool present;
  uint64_t expire; /* unix seconds */
  goop_relay_bytes addrs[GOOP_RELAY_MAX_ADDRS];
  size_t n_addrs;
  size_t n_dropped;
  goop_relay_bytes voucher; /* signed envelope; len 0 = none */
} goop_relay_rsvp;

typedef struct goop_relay_limit {
  bool present;
  uint32_t duration; /* seconds, 0 = none */
  uint64_t data;     /* bytes per direction, 0 = none */
} goop_relay_limit;

typedef struct goop_hop_msg {
  bool has_type;
  uint32_t type; /* enum goop_hop_type */
  goop_relay_peer peer;
  goop_relay_rsvp reservation;
  goop_relay_limit limit;
  bool has_status;
  uint32_t status; /* enum goop_relay_status */
} goop_hop_msg;

typedef struct goop_stop_msg {
  bool has_type;
  uint32_t type; /* enum goop_stop_type */
  goop_relay_peer peer;
  goop_relay_limit limit;
  bool has_status;
  uint32_t status;
} goop_stop_msg;

typedef struct goop_holepunch_msg {
  bool has_type;
  uint32_t type; /* enum goop_holepunch_type */
  goop_relay_bytes addrs[GOOP_RELAY_MAX_ADDRS];
  size_t n_addrs;
  size_t n_dropped;
} goop_holepunch_msg;

/*
 * Split one length-prefixed message off the front of |buf|.
 * 0: |*ret_msg|/|*ret_len| give the body, |*ret_consumed| the prefix + body;
 * GOOP_EAGAIN: need more bytes; GOOP_EMSGSIZE: announced length over
 * GOOP_RELAY_MSG_MAX; GOOP_EPARSE: bad varint.
 */
int goop_relay_frame_take(const uint8_t *buf, size_t len, const uint8_t **ret_msg, size_t *ret_len,
                          size_t *ret_consumed);

/* Decoders: 0 or GOOP_EPARSE (malformed protobuf, missing type, wrong wire
 * types). Unknown fields are skipped. Views point into |buf|. */
int goop_hop_decode(const uint8_t *buf, size_t len, goop_hop_msg *ret);
int goop_stop_decode(const uint8_t *buf, size_t len, goop_stop_msg *ret);
int goop_holepunch_decode(const uint8_t *buf, size_t len, goop_holepunch_msg *ret);

/* Encoders: append uvarint(len) ‖ body to |out|. type is always written.
 * 0, GOOP_EMSGSIZE (body over GOOP_RELAY_MSG_MAX) or GOOP_ENOMEM. */
int goop_hop_encode(const goop_hop_msg *m, goop_buf *out);
int goop_stop_encode(const goop_stop_msg *m, goop_buf *out);
int goop_holepunch_encode(const goop_holepunch_msg *m, goop_buf *out);

/* Human-readable name of a status code ("RESOURCE_LIMIT_EXCEEDED"), "UNKNOWN" otherwise. */
const char *goop_relay_status_name(uint32_t status);

/*
 * Reservation voucher: an envelope (domain "libp2p-relay-rsvp", payload type
 * 03 02) around Voucher{relay = 1, peer = 2, expiration = 3}.
 * seal appends the envelope signed by |relay| to |out|.
 * open verifies the signature, the type, that the signer is |relay| and that
 * peer is |peer|; 0, GOOP_EPARSE, GOOP_EBADSIG, GOOP_EPROTO or GOOP_EPEERID.
 */
int goop_relay_voucher_seal(const goop_identity *relay, const goop_peer_id *peer, uint64_t expiration,
                            goop_buf *out);
int goop_relay_voucher_open(const uint8_t *buf, size_t len, const goop_peer_id *relay,
                            const goop_peer_id *peer, uint64_t *ret_expiration);

#endif
