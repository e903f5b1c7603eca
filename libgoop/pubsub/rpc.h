/*
 * GossipSub / FloodSub RPC protobuf (internal, sans-I/O).
 *
 * Field numbers follow the go-libp2p-pubsub rpc.proto (libp2p-notes.md §11.2).
 * The decoder borrows every byte string from the input (slices stay valid as
 * long as the input does), ignores unknown fields, merges repeated control
 * fields, and enforces the GOOP_RPC_MAX_* limits below. The encoder writes
 * canonical field order.
 */
#ifndef GOOP_PUBSUB_RPC_H
#define GOOP_PUBSUB_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define GOOP_RPC_MAX_READ (1024u * 1024u) /* largest RPC accepted */
#define GOOP_RPC_MAX_WRITE (64u * 1024u)  /* RPCs we write are split at this size */
#define GOOP_RPC_MAX_MSGS 500u            /* messages per RPC */
#define GOOP_RPC_MAX_SUBS 1024u           /* subscription changes per RPC */
#define GOOP_RPC_MAX_CTRL 1024u           /* IHAVE / GRAFT / PRUNE entries per RPC (each) */
#define GOOP_RPC_MAX_IDS 5000u            /* message IDs over all IHAVEs, and over all IWANTs */
#define GOOP_RPC_MAX_TOPIC 1024u          /* topic name bytes */
#define GOOP_RPC_MAX_MSG_ID 256u          /* message ID bytes */

typedef struct goop_rpc_bytes {
  const uint8_t *p;
  size_t len;
} goop_rpc_bytes;

enum goop_rpc_msg_field {
  GOOP_RPC_HAS_FROM = 1u << 0,
  GOOP_RPC_HAS_DATA = 1u << 1,
  GOOP_RPC_HAS_SEQNO = 1u << 2,
  GOOP_RPC_HAS_TOPIC = 1u << 3,
  GOOP_RPC_HAS_SIGNATURE = 1u << 4,
  GOOP_RPC_HAS_KEY = 1u << 5,
};

struct goop_rpc_sub {
  bool subscribe;
  goop_rpc_bytes topic;
};

struct goop_rpc_message {
  unsigned has; /* GOOP_RPC_HAS_* */
  goop_rpc_bytes from, data, seqno, topic, signature, key;
};

struct goop_rpc_ihave {
  goop_rpc_bytes topic;
  size_t first_id; /* index into goop_rpc.ihave_ids */
  size_t n_ids;
};

struct goop_rpc_prune {
  goop_rpc_bytes topic;
  bool has_backoff;
  uint64_t backoff; /* seconds */
};

struct goop_rpc {
  struct goop_rpc_sub *subs;
  size_t n_subs;
  struct goop_rpc_message *msgs;
  size_t n_msgs;
  struct goop_rpc_ihave *ihave;
  size_t n_ihave;
  goop_rpc_bytes *ihave_ids;
  size_t n_ihave_ids;
  goop_rpc_bytes *iwant_ids;
  size_t n_iwant_ids;
  goop_rpc_bytes *graft;
  size_t n_graft;
  struct goop_rpc_prune *prune;
  size_t n_prune;
};

/*
 * Decode one RPC (no length prefix) of at most GOOP_RPC_MAX_READ bytes into
 * |*rpc| (zeroed first; free with goop_rpc_clear() on success). Returns 0,
 * GOOP_EPARSE (malformed), GOOP_ELIMIT (a count limit passed),
 * GOOP_EMSGSIZE (too large) or GOOP_ENOMEM; on error nothing is kept.
 */
int goop_rpc_decode(const uint8_t *buf, size_t len, struct goop_rpc *rpc);
void goop_rpc_clear(struct goop_rpc *rpc);

/* Decode a Message protobuf (used for the payload of field 2). */
int goop_rpc_decode_message(const uint8_t *buf, size_t len, struct goop_rpc_message *m);

/*
 * Encode a whole RPC (no length prefix) into |out|, in field order; one
 * ControlMessage field when any control entry is present. IHAVE IDs are taken
 * from rpc->ihave_ids by index. Returns 0 or GOOP_ENOMEM / GOOP_ELIMIT.
 */
int goop_rpc_encode(const struct goop_rpc *rpc, goop_buf *out);

/* Append a Message protobuf with the fields listed in m->has. */
int goop_rpc_encode_message(const struct goop_rpc_message *m, goop_buf *out);

/* Append fields 1-4 of |m| (the bytes StrictSign signs, after "libp2p-pubsub:"). */
int goop_rpc_encode_signed_part(const struct goop_rpc_message *m, goop_buf *out);

/* Size of a length-delimited field (tag + length varint + payload). */
size_t goop_rpc_field_size(uint32_t num, size_t payload_len);

#endif
