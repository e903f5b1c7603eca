/*
 * Identify (/ipfs/id/1.0.0, /ipfs/id/push/1.0.0), signed envelopes (libp2p
 * RFC 0002) and peer records (RFC 0003). Internal, sans-I/O.
 *
 * Identify message (proto2):
 *   1 publicKey bytes | 2 listenAddrs repeated bytes | 3 protocols repeated
 *   string | 4 observedAddr bytes | 5 protocolVersion string |
 *   6 agentVersion string | 8 signedPeerRecord bytes (an Envelope).
 *
 * Decoding is lenient about content and strict about form: a malformed
 * protobuf, a known field with the wrong wire type, or a message over
 * GOOP_ID_READ_MAX fails; an entry that is invalid or over its bound (bad
 * multiaddr, overlong string, 65th address, ...) is dropped and the rest kept.
 */
#ifndef GOOP_TRANSPORT_IDENTIFY_H
#define GOOP_TRANSPORT_IDENTIFY_H

#include <goop/identity.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define GOOP_ID_PROTOCOL "/ipfs/id/1.0.0"
#define GOOP_ID_PUSH_PROTOCOL "/ipfs/id/push/1.0.0"

#define GOOP_ID_MAX_ADDRS 64         /* listen addresses kept (and peer-record addresses) */
#define GOOP_ID_MAX_PROTOCOLS 256    /* protocol IDs kept */
#define GOOP_ID_MAX_PROTOCOL_LEN 256 /* bytes per protocol ID */
#define GOOP_ID_MAX_STR 256          /* protocolVersion / agentVersion bytes */
#define GOOP_ID_MAX_SPR 4096         /* signedPeerRecord bytes */
#define GOOP_ID_READ_MAX 8192        /* one received message */
#define GOOP_ID_SEND_MAX 4096        /* one message we send */
#define GOOP_ID_SPR_SPLIT 2048       /* above this, the record goes in a 2nd message */
#define GOOP_ID_MAX_MSGS 10          /* messages merged from one stream */

/* Bits of goop_identify.present: which fields a message carried. */
enum goop_id_field {
  GOOP_ID_F_PUBLIC_KEY = 1u << 0,
  GOOP_ID_F_LISTEN_ADDRS = 1u << 1, /* at least one listenAddrs entry (valid or not) */
  GOOP_ID_F_PROTOCOLS = 1u << 2,    /* at least one protocols entry */
  GOOP_ID_F_OBSERVED_ADDR = 1u << 3,
  GOOP_ID_F_PROTOCOL_VERSION = 1u << 4,
  GOOP_ID_F_AGENT_VERSION = 1u << 5,
  GOOP_ID_F_SIGNED_RECORD = 1u << 6,
};

/* An owned byte string (malloc'd; data NULL when len 0 and unset). */
typedef struct goop_id_blob {
  uint8_t *data;
  size_t len;
} goop_id_blob;

/*
 * Decoded or to-be-sent Identify content. All memory is owned by the struct:
 * initialise with goop_identify_init(), release with goop_identify_clear().
 * Strings are NUL-terminated and contain no NUL. A scalar counts as present
 * only when its bit is set in |present|.
 */
typedef struct goop_identify {
  uint32_t present;
  char *protocol_version;
  char *agent_version;
  goop_id_blob public_key;
  goop_id_blob listen_addrs[GOOP_ID_MAX_ADDRS];
  size_t n_listen_addrs;
  goop_id_blob observed_addr;
  char *protocols[GOOP_ID_MAX_PROTOCOLS];
  size_t n_protocols;
  goop_id_blob signed_peer_record;
} goop_identify;

void goop_identify_init(goop_identify *id);
void goop_identify_clear(goop_identify *id);

/*
 * Builders (copy their input). Return 0, GOOP_EINVAL (bad or oversize value:
 * string over its bound or with '\n'; multiaddr that fails goop_ma_validate();
 * public key over GOOP_PUBKEY_PB_MAX; record over GOOP_ID_MAX_SPR), GOOP_ELIMIT
 * (list full) or GOOP_ENOMEM. Adding a duplicate address or protocol is a no-op.
 */
int goop_identify_set_protocol_version(goop_identify *id, const char *s);
int goop_identify_set_agent_version(goop_identify *id, const char *s);
int goop_identify_set_public_key(goop_identify *id, const uint8_t *pb, size_t len);
int goop_identify_add_listen_addr(goop_identify *id, const uint8_t *ma, size_t len);
int goop_identify_set_observed_addr(goop_identify *id, const uint8_t *ma, size_t len);
int goop_identify_add_protocol(goop_identify *id, const char *proto);
int goop_identify_set_signed_record(goop_identify *id, const uint8_t *env, size_t len);

/* Append the raw protobuf (no length prefix) of the present fields to |out|. */
int goop_identify_encode(const goop_identify *id, goop_buf *out);

/*
 * Append what we send on an identify stream: one or two uvarint-delimited
 * messages, each at most GOOP_ID_SEND_MAX bytes. Listen addresses are dropped
 * from the end until the message fits; a signed record that would make the
 * first message larger than GOOP_ID_SPR_SPLIT goes alone in a second message.
 * |*ret_n_msgs| (may be NULL) receives 1 or 2. GOOP_EMSGSIZE if it cannot fit
 * (too many protocols, or a record too big); |out| is then unchanged.
 */
int goop_identify_encode_msgs(const goop_identify *id, goop_buf *out, size_t *ret_n_msgs);

/*
 * Decode one raw Identify message (no prefix) and merge it into |id|:
 * repeated fields append (duplicates and entries past the bounds dropped),
 * scalars present in the message overwrite. On error |id| is unchanged.
 * Returns 0, GOOP_EMSGSIZE (> GOOP_ID_READ_MAX), GOOP_EPARSE or GOOP_ENOMEM.
 */
int goop_identify_decode(goop_identify *id, const uint8_t *buf, size_t len);

/* Merge |src| into |dst| as goop_identify_decode() does; |src| is emptied. */
void goop_identify_merge(goop_identify *dst, goop_identify *src);

/*
 * Reader for an identify or push stream: uvarint-delimited messages until
 * EOF, merged into |into| (borrowed). Feed every received byte; call
 * goop_identify_reader_finish() at EOF.
 */
typedef struct goop_identify_reader {
  goop_identify *into;
  unsigned n_msgs;
  int err; /* first error, sticky */
  goop_buf rx;
} goop_identify_reader;

void goop_identify_reader_init(goop_identify_reader *r, goop_identify *into);
void goop_identify_reader_clear(goop_identify_reader *r);
/* Returns 0, GOOP_ELIMIT (more than GOOP_ID_MAX_MSGS messages), GOOP_EMSGSIZE,
 * GOOP_EPARSE or GOOP_ENOMEM. Errors are final for the stream. */
int goop_identify_reader_feed(goop_identify_reader *r, const uint8_t *data, size_t len);
/* At EOF: 0 if at least one message and no partial one; GOOP_ETRUNCATED
 * otherwise. |*ret_n_msgs| (may be NULL) gets the number of messages. */
int goop_identify_reader_finish(goop_identify_reader *r, unsigned *ret_n_msgs);

/* ---- signed envelope (RFC 0002) ---------------------------------------------- */

/* Envelope fields: 1 public_key (PublicKey message), 2 payload_type,
 * 3 payload, 5 signature. */
#define GOOP_ENVELOPE_MAX 8192

/* A parsed envelope: views into the serialized bytes. */
typedef struct goop_envelope {
  const uint8_t *public_key;
  size_t public_key_len;
  const uint8_t *payload_type;
  size_t payload_type_len;
  const uint8_t *payload;
  size_t payload_len;
  const uint8_t *signature;
  size_t signature_len;
} goop_envelope;

/*
 * Sign |payload| under |domain| with |id| and append the serialized envelope
 * to |out|. The signature covers uvarint(len(domain)) ‖ domain ‖
 * uvarint(len(type)) ‖ type ‖ uvarint(len(payload)) ‖ payload.
 * Returns 0, GOOP_EINVAL, GOOP_EMSGSIZE (envelope over GOOP_ENVELOPE_MAX),
 * GOOP_ECRYPTO or GOOP_ENOMEM.
 */
int goop_envelope_seal(const goop_identity *id, const char *domain, const uint8_t *type, size_t type_len,
                       const uint8_t *payload, size_t payload_len, goop_buf *out);

/* Parse without verifying. Returns 0, GOOP_EMSGSIZE or GOOP_EPARSE (malformed,
 * duplicate or missing field). */
int goop_envelope_parse(const uint8_t *buf, size_t len, goop_envelope *ret);

/*
 * Parse and verify the signature under |domain|. Returns 0, GOOP_EMSGSIZE,
 * GOOP_EPARSE, GOOP_EBADSIG, or GOOP_EKEYTYPE (unsupported key). |*ret| is
 * set only on success.
 */
int goop_envelope_open(const uint8_t *buf, size_t len, const char *domain, goop_envelope *ret);

/* ---- peer record (RFC 0003) ------------------------------------------------------ */

#define GOOP_PEER_RECORD_DOMAIN "libp2p-peer-record"
/* Payload type: the multicodec 0x0301 as two big-endian bytes. */
#define GOOP_PEER_RECORD_TYPE "\x03\x01"
#define GOOP_PEER_RECORD_TYPE_LEN 2

/* A verified peer record. Owns its addresses: goop_peer_record_clear(). */
typedef struct goop_peer_record {
  goop_peer_id peer_id;
  uint64_t seq;
  goop_id_blob addrs[GOOP_ID_MAX_ADDRS];
  size_t n_addrs;
} goop_peer_record;

void goop_peer_record_clear(goop_peer_record *rec);

/*
 * Build a PeerRecord {peer_id of |id|, |seq|, |addrs|} (binary multiaddrs,
 * at most GOOP_ID_MAX_ADDRS, each must pass goop_ma_validate()) and append its
 * signed envelope to |out|. |seq| should grow with every new record (unix ns).
 * Returns 0, GOOP_EINVAL, GOOP_EMSGSIZE (over GOOP_ID_MAX_SPR), GOOP_ECRYPTO
 * or GOOP_ENOMEM.
 */
int goop_peer_record_seal(const goop_identity *id, uint64_t seq, const goop_id_blob *addrs, size_t n_addrs,
                          goop_buf *out);

/*
 * Verify a signed peer record: envelope signature valid under
 * "libp2p-peer-record", payload type exactly 03 01, and peer_id equal to the
 * Peer ID of the envelope's key. Invalid addresses and those past
 * GOOP_ID_MAX_ADDRS are dropped. |*ret| is filled only on success (clear it
 * with goop_peer_record_clear()). Returns 0, GOOP_EMSGSIZE, GOOP_EPARSE,
 * GOOP_EBADSIG, GOOP_EKEYTYPE, GOOP_EPROTO (wrong payload type), GOOP_EPEERID
 * (record for another peer) or GOOP_ENOMEM.
 */
int goop_peer_record_open(const uint8_t *buf, size_t len, goop_peer_record *ret);

#endif
