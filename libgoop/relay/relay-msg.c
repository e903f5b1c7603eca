/*
 * Circuit relay v2 (Hop, Stop, Voucher) and DCUtR (HolePunch) messages.
 *
 * Field numbers (libp2p relay/circuit-v2.md, relay/DCUtR.md):
 *   HopMessage  1 type | 2 peer | 3 reservation | 4 limit | 5 status
 *   StopMessage 1 type | 2 peer | 3 limit | 4 status
 *   Peer        1 id | 2 addrs (repeated)
 *   Reservation 1 expire | 2 addrs (repeated) | 3 voucher
 *   Limit       1 duration | 2 data
 *   HolePunch   1 type | 2 ObsAddrs (repeated)
 *   Voucher     1 relay | 2 peer | 3 expiration
 *
 * Scalars repeated in one message: the last one wins (protobuf rules). An
 * embedded message given twice is refused: merging two views is not worth
 * the complexity, and no implementation sends that.
 */
#include "relay-msg.h"

#include <string.h>

#include "../common/internal.h"
#include "identify.h"
#include "proto.h"
#include "varint.h"

enum { HOP_TYPE = 1, HOP_PEER = 2, HOP_RESERVATION = 3, HOP_LIMIT = 4, HOP_STATUS = 5 };
enum { STOP_TYPE = 1, STOP_PEER = 2, STOP_LIMIT = 3, STOP_STATUS = 4 };
enum { PEER_ID = 1, PEER_ADDRS = 2 };
enum { RSVP_EXPIRE = 1, RSVP_ADDRS = 2, RSVP_VOUCHER = 3 };
enum { LIMIT_DURATION = 1, LIMIT_DATA = 2 };
enum { HP_TYPE = 1, HP_ADDRS = 2 };
enum { VOUCHER_RELAY = 1, VOUCHER_PEER = 2, VOUCHER_EXPIRATION = 3 };

int goop_relay_frame_take(const uint8_t *buf, size_t len, const uint8_t **ret_msg, size_t *ret_len,
                          size_t *ret_consumed) {
  goop_return_val_if_fail((buf || len == 0) && ret_msg && ret_len && ret_consumed, GOOP_EINVAL);
  if (len == 0)
    return GOOP_EAGAIN;
  int n = goop_frame_decode(buf, len, GOOP_RELAY_MSG_MAX, ret_msg, ret_len);
  if (n == 0)
    return GOOP_EAGAIN;
  if (n < 0)
    return n == GOOP_EMSGSIZE ? GOOP_EMSGSIZE : GOOP_EPARSE;
  *ret_consumed = (size_t)n;
  return 0;
}

/* ---- decoding ------------------------------------------------------------------ */

static int want(const goop_pb_field *f, enum goop_pb_wire w) {
  return f->wire == w ? 0 : GOOP_EPARSE;
}

static int take_u32(const goop_pb_field *f, uint32_t *ret) {
  if (f->wire != GOOP_PB_VARINT || f->u64 > UINT32_MAX)
    return GOOP_EPARSE;
  *ret = (uint32_t)f->u64;
  return 0;
}

static void add_addr(goop_relay_bytes *addrs, size_t *n, size_t *n_dropped, const goop_pb_field *f) {
  if (*n >= GOOP_RELAY_MAX_ADDRS) {
    (*n_dropped)++;
    return;
  }
  addrs[*n] = (goop_relay_bytes){f->data, f->len};
  (*n)++;
}

static int decode_peer(const uint8_t *buf, size_t len, goop_relay_peer *p) {
  goop_pb_reader r;
  goop_pb_field f;
  int rc;
  *p = (goop_relay_peer){.present = true};
  goop_pb_reader_init(&r, buf, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    switch (f.num) {
    case PEER_ID:
      if (want(&f, GOOP_PB_LEN))
        return GOOP_EPARSE;
      p->id = (goop_relay_bytes){f.data, f.len};
      break;
    case PEER_ADDRS:
      if (want(&f, GOOP_PB_LEN))
        return GOOP_EPARSE;
      add_addr(p->addrs, &p->n_addrs, &p->n_dropped, &f);
      break;
    default:
      break;
    }
  }
  return rc < 0 ? GOOP_EPARSE : 0;
}

static int decode_rsvp(const uint8_t *buf, size_t len, goop_relay_rsvp *v) {
  goop_pb_reader r;
  goop_pb_field f;
  int rc;
  *v = (goop_relay_rsvp){.present = true};
  goop_pb_reader_init(&r, buf, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    switch (f.num) {
    case RSVP_EXPIRE:
      if (want(&f, GOOP_PB_VARINT))
        return GOOP_EPARSE;
      v->expire = f.u64;
      break;
    case RSVP_ADDRS:
      if (want(&f, GOOP_PB_LEN))
        return GOOP_EPARSE;
      add_addr(v->addrs, &v->n_addrs, &v->n_dropped, &f);
      break;
    case RSVP_VOUCHER:
      if (want(&f, GOOP_PB_LEN))
        return GOOP_EPARSE;
      v->voucher = (goop_relay_bytes){f.data, f.len};
      break;
    default:
      break;
    }
  }
  return rc < 0 ? GOOP_EPARSE : 0;
}

static int decode_limit(const uint8_t *buf, size_t len, goop_relay_limit *l) {
  goop_pb_reader r;
  goop_pb_field f;
  int rc;
  *l = (goop_relay_limit){.present = true};
  goop_pb_reader_init(&r, buf, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    switch (f.num) {
    case LIMIT_DURATION:
      if (take_u32(&f, &l->duration))
        return GOOP_EPARSE;
      break;
    case LIMIT_DATA:
      if (want(&f, GOOP_PB_VARINT))
        return GOOP_EPARSE;
      l->data = f.u64;
      break;
    default:
      break;
    }
  }
  return rc < 0 ? GOOP_EPARSE : 0;
}

int goop_hop_decode(const uint8_t *buf, size_t len, goop_hop_msg *ret) {
  goop_return_val_if_fail((buf || len == 0) && ret, GOOP_EINVAL);
  static const uint8_t empty[1];
  goop_hop_msg m = {0};
  goop_pb_reader r;
  goop_pb_field f;
  int rc;

  if (len > GOOP_RELAY_MSG_MAX)
    return GOOP_EPARSE;
  goop_pb_reader_init(&r, buf ? buf : empty, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    switch (f.num) {
    case HOP_TYPE:
      if (take_u32(&f, &m.type))
        return GOOP_EPARSE;
      m.has_type = true;
      break;
    case HOP_PEER:
      if (want(&f, GOOP_PB_LEN) || m.peer.present || decode_peer(f.data, f.len, &m.peer))
        return GOOP_EPARSE;
      break;
    case HOP_RESERVATION:
      if (want(&f, GOOP_PB_LEN) || m.reservation.present || decode_rsvp(f.data, f.len, &m.reservation))
        return GOOP_EPARSE;
      break;
    case HOP_LIMIT:
      if (want(&f, GOOP_PB_LEN) || m.limit.present || decode_limit(f.data, f.len, &m.limit))
        return GOOP_EPARSE;
      break;
    case HOP_STATUS:
      if (take_u32(&f, &m.status))
        return GOOP_EPARSE;
      m.has_status = true;
      break;
    default:
      break;
    }
  }
  if (rc < 0 || !m.has_type)
    return GOOP_EPARSE;
  *ret = m;
  return 0;
}

int goop_stop_decode(const uint8_t *buf, size_t len, goop_stop_msg *ret) {
  goop_return_val_if_fail((buf || len == 0) && ret, GOOP_EINVAL);
  static const uint8_t empty[1];
  goop_stop_msg m = {0};
  goop_pb_reader r;
  goop_pb_field f;
  int rc;

  if (len > GOOP_RELAY_MSG_MAX)
    return GOOP_EPARSE;
  goop_pb_reader_init(&r, buf ? buf : empty, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    switch (f.num) {
    case STOP_TYPE:
      if (take_u32(&f, &m.type))
        return GOOP_EPARSE;
      m.has_type = true;
      break;
    case STOP_PEER:
      if (want(&f, GOOP_PB_LEN) || m.peer.present || decode_peer(f.data, f.len, &m.peer))
        return GOOP_EPARSE;
      break;
    case STOP_LIMIT:
      if (want(&f, GOOP_PB_LEN) || m.limit.present || decode_limit(f.data, f.len, &m.limit))
        return GOOP_EPARSE;
      break;
    case STOP_STATUS:
      if (take_u32(&f, &m.status))
        return GOOP_EPARSE;
      m.has_status = true;
      break;
    default:
      break;
    }
  }
  if (rc < 0 || !m.has_type)
    return GOOP_EPARSE;
  *ret = m;
  return 0;
}

int goop_holepunch_decode(const uint8_t *buf, size_t len, goop_holepunch_msg *ret) {
  goop_return_val_if_fail((buf || len == 0) && ret, GOOP_EINVAL);
  static const uint8_t empty[1];
  goop_holepunch_msg m = {0};
  goop_pb_reader r;
  goop_pb_field f;
  int rc;

  if (len > GOOP_RELAY_MSG_MAX)
    return GOOP_EPARSE;
  goop_pb_reader_init(&r, buf ? buf : empty, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    switch (f.num) {
    case HP_TYPE:
      if (take_u32(&f, &m.type))
        return GOOP_EPARSE;
      m.has_type = true;
      break;
    case HP_ADDRS:
      if (want(&f, GOOP_PB_LEN))
        return GOOP_EPARSE;
      add_addr(m.addrs, &m.n_addrs, &m.n_dropped, &f);
      break;
    default:
      break;
    }
  }
  if (rc < 0 || !m.has_type)
    return GOOP_EPARSE;
  *ret = m;
  return 0;
}

/* ---- encoding ------------------------------------------------------------------ */

/* Append |sub| as a length-delimited field. */
static int put_sub(goop_buf *out, uint32_t num, const goop_buf *sub) {
  return goop_pb_put_bytes(out, num, sub->data, sub->len);
}

static int put_addrs(goop_buf *b, uint32_t num, const goop_relay_bytes *addrs, size_t n) {
  int rc = 0;
  if (n > GOOP_RELAY_MAX_ADDRS)
    return GOOP_EINVAL;
  for (size_t i = 0; !rc && i < n; i++) {
    if (!addrs[i].data && addrs[i].len)
      return GOOP_EINVAL;
    rc = goop_pb_put_bytes(b, num, addrs[i].data, addrs[i].len);
  }
  return rc;
}

static int encode_peer(const goop_relay_peer *p, goop_buf *b) {
  if (!p->id.data && p->id.len)
    return GOOP_EINVAL;
  int rc = goop_pb_put_bytes(b, PEER_ID, p->id.data, p->id.len);
  return rc ? rc : put_addrs(b, PEER_ADDRS, p->addrs, p->n_addrs);
}

static int encode_rsvp(const goop_relay_rsvp *v, goop_buf *b) {
  int rc = goop_pb_put_varint(b, RSVP_EXPIRE, v->expire);
  if (!rc)
    rc = put_addrs(b, RSVP_ADDRS, v->addrs, v->n_addrs);
  if (!rc && v->voucher.len) {
    if (!v->voucher.data)
      return GOOP_EINVAL;
    rc = goop_pb_put_bytes(b, RSVP_VOUCHER, v->voucher.data, v->voucher.len);
  }
  return rc;
}

static int encode_limit(const goop_relay_limit *l, goop_buf *b) {
  int rc = 0;
  if (l->duration)
    rc = goop_pb_put_varint(b, LIMIT_DURATION, l->duration);
  if (!rc && l->data)
    rc = goop_pb_put_varint(b, LIMIT_DATA, l->data);
  return rc;
}

/* Append an embedded message built by |fn| as field |num| of |body|. */
#define PUT_EMBEDDED(body, sub, num, fn, arg)                                                                \
  do {                                                                                                       \
    goop_buf_reset(&(sub));                                                                                  \
    rc = fn((arg), &(sub));                                                                                  \
    if (!rc)                                                                                                 \
      rc = put_sub(&(body), (num), &(sub));                                                                  \
  } while (0)

/* Frame |body| onto |out|, or fail with |rc| / GOOP_EMSGSIZE. */
static int finish(int rc, goop_buf *body, goop_buf *sub, goop_buf *out) {
  if (!rc && body->len > GOOP_RELAY_MSG_MAX)
    rc = GOOP_EMSGSIZE;
  if (!rc) {
    size_t old = out->len;
    rc = goop_frame_append(out, body->data, body->len);
    if (rc)
      out->len = old;
  }
  goop_buf_free(body);
  goop_buf_free(sub);
  return rc;
}

int goop_hop_encode(const goop_hop_msg *m, goop_buf *out) {
  goop_return_val_if_fail(m && out, GOOP_EINVAL);
  goop_buf body, sub;
  int rc;
  goop_buf_init(&body, 0);
  goop_buf_init(&sub, 0);
  rc = goop_pb_put_varint(&body, HOP_TYPE, m->type);
  if (!rc && m->peer.present)
    PUT_EMBEDDED(body, sub, HOP_PEER, encode_peer, &m->peer);
  if (!rc && m->reservation.present)
    PUT_EMBEDDED(body, sub, HOP_RESERVATION, encode_rsvp, &m->reservation);
  if (!rc && m->limit.present)
    PUT_EMBEDDED(body, sub, HOP_LIMIT, encode_limit, &m->limit);
  if (!rc && m->has_status)
    rc = goop_pb_put_varint(&body, HOP_STATUS, m->status);
  return finish(rc, &body, &sub, out);
}

int goop_stop_encode(const goop_stop_msg *m, goop_buf *out) {
  goop_return_val_if_fail(m && out, GOOP_EINVAL);
  goop_buf body, sub;
  int rc;
  goop_buf_init(&body, 0);
  goop_buf_init(&sub, 0);
  rc = goop_pb_put_varint(&body, STOP_TYPE, m->type);
  if (!rc && m->peer.present)
    PUT_EMBEDDED(body, sub, STOP_PEER, encode_peer, &m->peer);
  if (!rc && m->limit.present)
    PUT_EMBEDDED(body, sub, STOP_LIMIT, encode_limit, &m->limit);
  if (!rc && m->has_status)
    rc = goop_pb_put_varint(&body, STOP_STATUS, m->status);
  return finish(rc, &body, &sub, out);
}

int goop_holepunch_encode(const goop_holepunch_msg *m, goop_buf *out) {
  goop_return_val_if_fail(m && out, GOOP_EINVAL);
  goop_buf body, sub;
  int rc;
  goop_buf_init(&body, 0);
  goop_buf_init(&sub, 0);
  rc = goop_pb_put_varint(&body, HP_TYPE, m->type);
  if (!rc)
    rc = put_addrs(&body, HP_ADDRS, m->addrs, m->n_addrs);
  return finish(rc, &body, &sub, out);
}

const char *goop_relay_status_name(uint32_t status) {
  switch (status) {
  case GOOP_RELAY_UNUSED:
    return "UNUSED";
  case GOOP_RELAY_OK:
    return "OK";
  case GOOP_RELAY_RESERVATION_REFUSED:
    return "RESERVATION_REFUSED";
  case GOOP_RELAY_RESOURCE_LIMIT_EXCEEDED:
    return "RESOURCE_LIMIT_EXCEEDED";
  case GOOP_RELAY_PERMISSION_DENIED:
    return "PERMISSION_DENIED";
  case GOOP_RELAY_CONNECTION_FAILED:
    return "CONNECTION_FAILED";
  case GOOP_RELAY_NO_RESERVATION:
    return "NO_RESERVATION";
  case GOOP_RELAY_MALFORMED_MESSAGE:
    return "MALFORMED_MESSAGE";
  case GOOP_RELAY_UNEXPECTED_MESSAGE:
    return "UNEXPECTED_MESSAGE";
  default:
    return "UNKNOWN";
  }
}

/* ---- reservation voucher -------------------------------------------------------- */

int goop_relay_voucher_seal(const goop_identity *relay, const goop_peer_id *peer, uint64_t expiration,
                            goop_buf *out) {
  goop_return_val_if_fail(relay && peer && out && peer->len > 0, GOOP_EINVAL);
  goop_peer_id rid;
  goop_buf payload;
  int rc;
  goop_identity_peer_id(relay, &rid);
  goop_buf_init(&payload, 0);
  rc = goop_pb_put_bytes(&payload, VOUCHER_RELAY, rid.bytes, rid.len);
  if (!rc)
    rc = goop_pb_put_bytes(&payload, VOUCHER_PEER, peer->bytes, peer->len);
  if (!rc)
    rc = goop_pb_put_varint(&payload, VOUCHER_EXPIRATION, expiration);
  if (!rc)
    rc = goop_envelope_seal(relay, GOOP_RELAY_VOUCHER_DOMAIN, (const uint8_t *)GOOP_RELAY_VOUCHER_TYPE,
                            GOOP_RELAY_VOUCHER_TYPE_LEN, payload.data, payload.len, out);
  goop_buf_free(&payload);
  return rc;
}

static bool id_is(const goop_relay_bytes *b, const goop_peer_id *id) {
  return b->len == id->len && memcmp(b->data, id->bytes, id->len) == 0;
}

int goop_relay_voucher_open(const uint8_t *buf, size_t len, const goop_peer_id *relay,
                            const goop_peer_id *peer, uint64_t *ret_expiration) {
  goop_return_val_if_fail((buf || len == 0) && relay && peer, GOOP_EINVAL);
  static const uint8_t empty[1];
  goop_envelope e;
  goop_peer_id signer;
  goop_relay_bytes v_relay = {0}, v_peer = {0};
  bool have_relay = false, have_peer = false;
  uint64_t expiration = 0;
  goop_pb_reader r;
  goop_pb_field f;
  int rc;

  rc = goop_envelope_open(buf ? buf : empty, len, GOOP_RELAY_VOUCHER_DOMAIN, &e);
  if (rc == GOOP_EMSGSIZE)
    return GOOP_EPARSE;
  if (rc)
    return rc;
  if (e.payload_type_len != GOOP_RELAY_VOUCHER_TYPE_LEN ||
      memcmp(e.payload_type, GOOP_RELAY_VOUCHER_TYPE, GOOP_RELAY_VOUCHER_TYPE_LEN) != 0)
    return GOOP_EPROTO;
  rc = goop_pubkey_to_peer_id(e.public_key, e.public_key_len, &signer);
  if (rc)
    return rc;
  if (!goop_peer_id_equal(&signer, relay))
    return GOOP_EPEERID;

  goop_pb_reader_init(&r, e.payload, e.payload_len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    switch (f.num) {
    case VOUCHER_RELAY:
      if (want(&f, GOOP_PB_LEN))
        return GOOP_EPARSE;
      v_relay = (goop_relay_bytes){f.data, f.len};
      have_relay = true;
      break;
    case VOUCHER_PEER:
      if (want(&f, GOOP_PB_LEN))
        return GOOP_EPARSE;
      v_peer = (goop_relay_bytes){f.data, f.len};
      have_peer = true;
      break;
    case VOUCHER_EXPIRATION:
      if (want(&f, GOOP_PB_VARINT))
        return GOOP_EPARSE;
      expiration = f.u64;
      break;
    default:
      break;
    }
  }
  if (rc < 0 || !have_relay || !have_peer)
    return GOOP_EPARSE;
  if (!id_is(&v_relay, relay) || !id_is(&v_peer, peer))
    return GOOP_EPEERID;
  if (ret_expiration)
    *ret_expiration = expiration;
  return 0;
}
