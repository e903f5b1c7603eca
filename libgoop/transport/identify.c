/* Identify messages, signed envelopes and peer records (see identify.h). */
#include "identify.h"

#include <stdlib.h>
#include <string.h>

#include "../common/internal.h"
#include "multiaddr.h"
#include "proto.h"
#include "varint.h"

/* Identify field numbers. */
enum {
  F_PUBLIC_KEY = 1,
  F_LISTEN_ADDRS = 2,
  F_PROTOCOLS = 3,
  F_OBSERVED_ADDR = 4,
  F_PROTOCOL_VERSION = 5,
  F_AGENT_VERSION = 6,
  F_SIGNED_RECORD = 8,
};

/* Envelope and peer-record field numbers. */
enum {
  ENV_PUBLIC_KEY = 1,
  ENV_PAYLOAD_TYPE = 2,
  ENV_PAYLOAD = 3,
  ENV_SIGNATURE = 5,
  REC_PEER_ID = 1,
  REC_SEQ = 2,
  REC_ADDRESSES = 3,
  ADDRINFO_MULTIADDR = 1,
};

/* ---- small helpers ------------------------------------------------------------- */

static void blob_free(goop_id_blob *b) {
  free(b->data);
  *b = (goop_id_blob){0};
}

static int blob_set(goop_id_blob *b, const uint8_t *data, size_t len) {
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy)
    return GOOP_ENOMEM;
  if (len)
    memcpy(copy, data, len);
  free(b->data);
  b->data = copy;
  b->len = len;
  return 0;
}

static char *str_dup_bytes(const uint8_t *data, size_t len) {
  char *s = malloc(len + 1);
  if (!s)
    return NULL;
  if (len)
    memcpy(s, data, len);
  s[len] = '\0';
  return s;
}

/* A free-text scalar (protocolVersion, agentVersion): bounded, no NUL. */
static bool text_ok(const uint8_t *data, size_t len) {
  return len <= GOOP_ID_MAX_STR && (len == 0 || !memchr(data, '\0', len));
}

/* A protocol ID: non-empty, bounded, no NUL and no newline. */
static bool proto_ok(const uint8_t *data, size_t len) {
  return len >= 1 && len <= GOOP_ID_MAX_PROTOCOL_LEN && !memchr(data, '\0', len) && !memchr(data, '\n', len);
}

static bool addr_ok(const uint8_t *ma, size_t len) {
  return ma && len >= 1 && len <= GOOP_MA_MAX && goop_ma_validate(ma, len) == 0;
}

static bool blob_eq(const goop_id_blob *b, const uint8_t *data, size_t len) {
  return b->len == len && (len == 0 || memcmp(b->data, data, len) == 0);
}

/* ---- the struct --------------------------------------------------------------------- */

void goop_identify_init(goop_identify *id) {
  *id = (goop_identify){0};
}

void goop_identify_clear(goop_identify *id) {
  if (!id)
    return;
  free(id->protocol_version);
  free(id->agent_version);
  blob_free(&id->public_key);
  for (size_t i = 0; i < id->n_listen_addrs; i++)
    blob_free(&id->listen_addrs[i]);
  blob_free(&id->observed_addr);
  for (size_t i = 0; i < id->n_protocols; i++)
    free(id->protocols[i]);
  blob_free(&id->signed_peer_record);
  *id = (goop_identify){0};
}

static int set_text(char **dst, const uint8_t *data, size_t len) {
  char *s = str_dup_bytes(data, len);
  if (!s)
    return GOOP_ENOMEM;
  free(*dst);
  *dst = s;
  return 0;
}

/* Append an address that passed addr_ok(): 1 added, 0 duplicate, ELIMIT full. */
static int push_addr(goop_identify *id, const uint8_t *ma, size_t len) {
  for (size_t i = 0; i < id->n_listen_addrs; i++)
    if (blob_eq(&id->listen_addrs[i], ma, len))
      return 0;
  if (id->n_listen_addrs >= GOOP_ID_MAX_ADDRS)
    return GOOP_ELIMIT;
  goop_id_blob *b = &id->listen_addrs[id->n_listen_addrs];
  *b = (goop_id_blob){0};
  int rc = blob_set(b, ma, len);
  if (rc)
    return rc;
  id->n_listen_addrs++;
  return 1;
}

static int push_proto(goop_identify *id, const uint8_t *p, size_t len) {
  for (size_t i = 0; i < id->n_protocols; i++)
    if (strlen(id->protocols[i]) == len && memcmp(id->protocols[i], p, len) == 0)
      return 0;
  if (id->n_protocols >= GOOP_ID_MAX_PROTOCOLS)
    return GOOP_ELIMIT;
  char *s = str_dup_bytes(p, len);
  if (!s)
    return GOOP_ENOMEM;
  id->protocols[id->n_protocols++] = s;
  return 1;
}

int goop_identify_set_protocol_version(goop_identify *id, const char *s) {
  goop_return_val_if_fail(id && s, GOOP_EINVAL);
  size_t n = strlen(s);
  if (n > GOOP_ID_MAX_STR)
    return GOOP_EINVAL;
  int rc = set_text(&id->protocol_version, (const uint8_t *)s, n);
  if (!rc)
    id->present |= GOOP_ID_F_PROTOCOL_VERSION;
  return rc;
}

int goop_identify_set_agent_version(goop_identify *id, const char *s) {
  goop_return_val_if_fail(id && s, GOOP_EINVAL);
  size_t n = strlen(s);
  if (n > GOOP_ID_MAX_STR)
    return GOOP_EINVAL;
  int rc = set_text(&id->agent_version, (const uint8_t *)s, n);
  if (!rc)
    id->present |= GOOP_ID_F_AGENT_VERSION;
  return rc;
}

int goop_identify_set_public_key(goop_identify *id, const uint8_t *pb, size_t len) {
  goop_return_val_if_fail(id && pb && len > 0, GOOP_EINVAL);
  if (len > GOOP_PUBKEY_PB_MAX)
    return GOOP_EINVAL;
  int rc = blob_set(&id->public_key, pb, len);
  if (!rc)
    id->present |= GOOP_ID_F_PUBLIC_KEY;
  return rc;
}

int goop_identify_add_listen_addr(goop_identify *id, const uint8_t *ma, size_t len) {
  goop_return_val_if_fail(id, GOOP_EINVAL);
  if (!addr_ok(ma, len))
    return GOOP_EINVAL;
  int rc = push_addr(id, ma, len);
  if (rc < 0)
    return rc;
  id->present |= GOOP_ID_F_LISTEN_ADDRS;
  return 0;
}

int goop_identify_set_observed_addr(goop_identify *id, const uint8_t *ma, size_t len) {
  goop_return_val_if_fail(id, GOOP_EINVAL);
  if (!addr_ok(ma, len))
    return GOOP_EINVAL;
  int rc = blob_set(&id->observed_addr, ma, len);
  if (!rc)
    id->present |= GOOP_ID_F_OBSERVED_ADDR;
  return rc;
}

int goop_identify_add_protocol(goop_identify *id, const char *proto) {
  goop_return_val_if_fail(id && proto, GOOP_EINVAL);
  size_t n = strlen(proto);
  if (!proto_ok((const uint8_t *)proto, n))
    return GOOP_EINVAL;
  int rc = push_proto(id, (const uint8_t *)proto, n);
  if (rc < 0)
    return rc;
  id->present |= GOOP_ID_F_PROTOCOLS;
  return 0;
}

int goop_identify_set_signed_record(goop_identify *id, const uint8_t *env, size_t len) {
  goop_return_val_if_fail(id && env && len > 0, GOOP_EINVAL);
  if (len > GOOP_ID_MAX_SPR)
    return GOOP_EINVAL;
  int rc = blob_set(&id->signed_peer_record, env, len);
  if (!rc)
    id->present |= GOOP_ID_F_SIGNED_RECORD;
  return rc;
}

/* ---- encoding ------------------------------------------------------------------------ */

/* Fields in field-number order; the signed record, field 8, comes last. */
static int encode_part(const goop_identify *id, size_t n_addrs, bool with_record, goop_buf *out) {
  int rc = 0;
  if (id->present & GOOP_ID_F_PUBLIC_KEY)
    rc = goop_pb_put_bytes(out, F_PUBLIC_KEY, id->public_key.data, id->public_key.len);
  for (size_t i = 0; !rc && i < n_addrs && i < id->n_listen_addrs; i++)
    rc = goop_pb_put_bytes(out, F_LISTEN_ADDRS, id->listen_addrs[i].data, id->listen_addrs[i].len);
  for (size_t i = 0; !rc && i < id->n_protocols; i++)
    rc = goop_pb_put_string(out, F_PROTOCOLS, id->protocols[i]);
  if (!rc && (id->present & GOOP_ID_F_OBSERVED_ADDR))
    rc = goop_pb_put_bytes(out, F_OBSERVED_ADDR, id->observed_addr.data, id->observed_addr.len);
  if (!rc && (id->present & GOOP_ID_F_PROTOCOL_VERSION))
    rc = goop_pb_put_string(out, F_PROTOCOL_VERSION, id->protocol_version ? id->protocol_version : "");
  if (!rc && (id->present & GOOP_ID_F_AGENT_VERSION))
    rc = goop_pb_put_string(out, F_AGENT_VERSION, id->agent_version ? id->agent_version : "");
  if (!rc && with_record && (id->present & GOOP_ID_F_SIGNED_RECORD))
    rc = goop_pb_put_bytes(out, F_SIGNED_RECORD, id->signed_peer_record.data, id->signed_peer_record.len);
  return rc;
}

int goop_identify_encode(const goop_identify *id, goop_buf *out) {
  goop_return_val_if_fail(id && out, GOOP_EINVAL);
  size_t old = out->len;
  int rc = encode_part(id, id->n_listen_addrs, true, out);
  if (rc)
    out->len = old;
  return rc;
}

int goop_identify_encode_msgs(const goop_identify *id, goop_buf *out, size_t *ret_n_msgs) {
  goop_return_val_if_fail(id && out, GOOP_EINVAL);
  goop_buf msg, rec;
  size_t n_addrs = id->n_listen_addrs, n_msgs = 1;
  size_t old = out->len;
  int rc;

  goop_buf_init(&msg, 0);
  goop_buf_init(&rec, 0);
  /* Without the record, trim addresses until the message fits. */
  for (;;) {
    goop_buf_reset(&msg);
    rc = encode_part(id, n_addrs, false, &msg);
    if (rc)
      goto out;
    if (msg.len <= GOOP_ID_SEND_MAX)
      break;
    if (n_addrs == 0) {
      rc = GOOP_EMSGSIZE;
      goto out;
    }
    n_addrs--;
  }
  if (id->present & GOOP_ID_F_SIGNED_RECORD) {
    rc = goop_pb_put_bytes(&rec, F_SIGNED_RECORD, id->signed_peer_record.data, id->signed_peer_record.len);
    if (rc)
      goto out;
    if (msg.len + rec.len <= GOOP_ID_SPR_SPLIT) {
      rc = goop_buf_append(&msg, rec.data, rec.len);
      if (rc)
        goto out;
    } else if (rec.len > GOOP_ID_SEND_MAX) {
      rc = GOOP_EMSGSIZE;
      goto out;
    } else {
      n_msgs = 2;
    }
  }
  rc = goop_frame_append(out, msg.data, msg.len);
  if (!rc && n_msgs == 2)
    rc = goop_frame_append(out, rec.data, rec.len);
  if (!rc && ret_n_msgs)
    *ret_n_msgs = n_msgs;

out:
  if (rc)
    out->len = old;
  goop_buf_free(&msg);
  goop_buf_free(&rec);
  return rc;
}

/* ---- decoding ------------------------------------------------------------------------ */

void goop_identify_merge(goop_identify *dst, goop_identify *src) {
  if (src->present & GOOP_ID_F_PUBLIC_KEY) {
    blob_free(&dst->public_key);
    dst->public_key = src->public_key;
    src->public_key = (goop_id_blob){0};
  }
  if (src->present & GOOP_ID_F_OBSERVED_ADDR) {
    blob_free(&dst->observed_addr);
    dst->observed_addr = src->observed_addr;
    src->observed_addr = (goop_id_blob){0};
  }
  if (src->present & GOOP_ID_F_SIGNED_RECORD) {
    blob_free(&dst->signed_peer_record);
    dst->signed_peer_record = src->signed_peer_record;
    src->signed_peer_record = (goop_id_blob){0};
  }
  if (src->present & GOOP_ID_F_PROTOCOL_VERSION) {
    free(dst->protocol_version);
    dst->protocol_version = src->protocol_version;
    src->protocol_version = NULL;
  }
  if (src->present & GOOP_ID_F_AGENT_VERSION) {
    free(dst->agent_version);
    dst->agent_version = src->agent_version;
    src->agent_version = NULL;
  }
  for (size_t i = 0; i < src->n_listen_addrs; i++) {
    goop_id_blob *b = &src->listen_addrs[i];
    bool dup = false;
    for (size_t j = 0; j < dst->n_listen_addrs && !dup; j++)
      dup = blob_eq(&dst->listen_addrs[j], b->data, b->len);
    if (!dup && dst->n_listen_addrs < GOOP_ID_MAX_ADDRS) {
      dst->listen_addrs[dst->n_listen_addrs++] = *b;
      *b = (goop_id_blob){0};
    } else {
      blob_free(b);
    }
  }
  for (size_t i = 0; i < src->n_protocols; i++) {
    bool dup = false;
    for (size_t j = 0; j < dst->n_protocols && !dup; j++)
      dup = strcmp(dst->protocols[j], src->protocols[i]) == 0;
    if (!dup && dst->n_protocols < GOOP_ID_MAX_PROTOCOLS) {
      dst->protocols[dst->n_protocols++] = src->protocols[i];
    } else {
      free(src->protocols[i]);
    }
    src->protocols[i] = NULL;
  }
  dst->present |= src->present;
  src->n_listen_addrs = src->n_protocols = 0;
  goop_identify_clear(src);
}

/* Decode one message into the empty |id|. */
static int decode_fields(goop_identify *id, const uint8_t *buf, size_t len) {
  goop_pb_reader r;
  goop_pb_field f;
  int rc;

  goop_pb_reader_init(&r, buf, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    switch (f.num) {
    case F_PUBLIC_KEY:
    case F_LISTEN_ADDRS:
    case F_PROTOCOLS:
    case F_OBSERVED_ADDR:
    case F_PROTOCOL_VERSION:
    case F_AGENT_VERSION:
    case F_SIGNED_RECORD:
      if (f.wire != GOOP_PB_LEN)
        return GOOP_EPARSE;
      break;
    default:
      continue; /* unknown field: skip */
    }
    rc = 0;
    switch (f.num) {
    case F_PUBLIC_KEY:
      if (f.len >= 1 && f.len <= GOOP_PUBKEY_PB_MAX) {
        rc = blob_set(&id->public_key, f.data, f.len);
        id->present |= GOOP_ID_F_PUBLIC_KEY;
      }
      break;
    case F_LISTEN_ADDRS:
      id->present |= GOOP_ID_F_LISTEN_ADDRS;
      if (addr_ok(f.data, f.len)) {
        rc = push_addr(id, f.data, f.len);
        if (rc == GOOP_ELIMIT)
          rc = 0; /* over the bound: dropped */
      }
      break;
    case F_PROTOCOLS:
      id->present |= GOOP_ID_F_PROTOCOLS;
      if (proto_ok(f.data, f.len)) {
        rc = push_proto(id, f.data, f.len);
        if (rc == GOOP_ELIMIT)
          rc = 0;
      }
      break;
    case F_OBSERVED_ADDR:
      if (addr_ok(f.data, f.len)) {
        rc = blob_set(&id->observed_addr, f.data, f.len);
        id->present |= GOOP_ID_F_OBSERVED_ADDR;
      }
      break;
    case F_PROTOCOL_VERSION:
      if (text_ok(f.data, f.len)) {
        rc = set_text(&id->protocol_version, f.data, f.len);
        id->present |= GOOP_ID_F_PROTOCOL_VERSION;
      }
      break;
    case F_AGENT_VERSION:
      if (text_ok(f.data, f.len)) {
        rc = set_text(&id->agent_version, f.data, f.len);
        id->present |= GOOP_ID_F_AGENT_VERSION;
      }
      break;
    case F_SIGNED_RECORD:
      if (f.len >= 1 && f.len <= GOOP_ID_MAX_SPR) {
        rc = blob_set(&id->signed_peer_record, f.data, f.len);
        id->present |= GOOP_ID_F_SIGNED_RECORD;
      }
      break;
    }
    if (rc < 0)
      return rc;
  }
  return rc < 0 ? GOOP_EPARSE : 0;
}

int goop_identify_decode(goop_identify *id, const uint8_t *buf, size_t len) {
  goop_return_val_if_fail(id && (buf || len == 0), GOOP_EINVAL);
  if (len > GOOP_ID_READ_MAX)
    return GOOP_EMSGSIZE;
  goop_identify tmp;
  goop_identify_init(&tmp);
  int rc = decode_fields(&tmp, buf ? buf : (const uint8_t *)"", len);
  if (rc) {
    goop_identify_clear(&tmp);
    return rc;
  }
  goop_identify_merge(id, &tmp);
  return 0;
}

/* ---- stream reader ---------------------------------------------------------------- */

#define READER_BUF_MAX (GOOP_ID_READ_MAX + GOOP_VARINT_MAX_BYTES)

void goop_identify_reader_init(goop_identify_reader *r, goop_identify *into) {
  *r = (goop_identify_reader){.into = into};
  goop_buf_init(&r->rx, READER_BUF_MAX);
}

void goop_identify_reader_clear(goop_identify_reader *r) {
  goop_buf_free(&r->rx);
}

/* Decode every complete message in rx. */
static int reader_drain(goop_identify_reader *r) {
  for (;;) {
    const uint8_t *p;
    size_t plen;
    int n = goop_frame_decode(r->rx.data, r->rx.len, GOOP_ID_READ_MAX, &p, &plen);
    if (n <= 0)
      return n;
    if (++r->n_msgs > GOOP_ID_MAX_MSGS)
      return GOOP_ELIMIT;
    int rc = goop_identify_decode(r->into, p, plen);
    if (rc)
      return rc;
    goop_buf_consume(&r->rx, (size_t)n);
  }
}

int goop_identify_reader_feed(goop_identify_reader *r, const uint8_t *data, size_t len) {
  goop_return_val_if_fail(r && r->into && (data || len == 0), GOOP_EINVAL);
  if (r->err)
    return r->err;
  while (len > 0) {
    size_t room = READER_BUF_MAX - r->rx.len;
    size_t take = GOOP_MIN(room, len);
    int rc = goop_buf_append(&r->rx, data, take);
    if (!rc)
      rc = reader_drain(r);
    if (rc) {
      r->err = rc;
      return rc;
    }
    data += take;
    len -= take;
  }
  return 0;
}

int goop_identify_reader_finish(goop_identify_reader *r, unsigned *ret_n_msgs) {
  goop_return_val_if_fail(r, GOOP_EINVAL);
  if (r->err)
    return r->err;
  if (ret_n_msgs)
    *ret_n_msgs = r->n_msgs;
  if (r->rx.len > 0 || r->n_msgs == 0)
    return GOOP_ETRUNCATED;
  return 0;
}

/* ---- signed envelope ---------------------------------------------------------------- */

static int signing_input(goop_buf *b, const char *domain, const uint8_t *type, size_t type_len,
                         const uint8_t *payload, size_t payload_len) {
  size_t dlen = strlen(domain);
  int rc = goop_buf_append_varint(b, dlen);
  if (!rc)
    rc = goop_buf_append(b, domain, dlen);
  if (!rc)
    rc = goop_buf_append_varint(b, type_len);
  if (!rc)
    rc = goop_buf_append(b, type, type_len);
  if (!rc)
    rc = goop_buf_append_varint(b, payload_len);
  if (!rc)
    rc = goop_buf_append(b, payload, payload_len);
  return rc;
}

int goop_envelope_seal(const goop_identity *id, const char *domain, const uint8_t *type, size_t type_len,
                       const uint8_t *payload, size_t payload_len, goop_buf *out) {
  goop_return_val_if_fail(id && domain && *domain && out, GOOP_EINVAL);
  goop_return_val_if_fail((type || type_len == 0) && (payload || payload_len == 0), GOOP_EINVAL);
  if (payload_len > GOOP_ENVELOPE_MAX || type_len > GOOP_ENVELOPE_MAX)
    return GOOP_EMSGSIZE;

  goop_buf msg;
  uint8_t sig[GOOP_ED25519_SIG_SIZE];
  uint8_t pk[GOOP_ED25519_PUBKEY_PB_SIZE];
  size_t old = out->len;
  int rc;

  goop_buf_init(&msg, 0);
  rc = signing_input(&msg, domain, type, type_len, payload, payload_len);
  if (rc)
    goto out;
  rc = goop_identity_sign(id, msg.data, msg.len, sig);
  if (rc)
    goto out;
  goop_identity_public_key(id, pk);
  rc = goop_pb_put_bytes(out, ENV_PUBLIC_KEY, pk, sizeof(pk));
  if (!rc && type_len)
    rc = goop_pb_put_bytes(out, ENV_PAYLOAD_TYPE, type, type_len);
  if (!rc && payload_len)
    rc = goop_pb_put_bytes(out, ENV_PAYLOAD, payload, payload_len);
  if (!rc)
    rc = goop_pb_put_bytes(out, ENV_SIGNATURE, sig, sizeof(sig));
  if (!rc && out->len - old > GOOP_ENVELOPE_MAX)
    rc = GOOP_EMSGSIZE;

out:
  if (rc)
    out->len = old;
  goop_buf_free(&msg);
  return rc;
}

int goop_envelope_parse(const uint8_t *buf, size_t len, goop_envelope *ret) {
  goop_return_val_if_fail((buf || len == 0) && ret, GOOP_EINVAL);
  if (len > GOOP_ENVELOPE_MAX)
    return GOOP_EMSGSIZE;
  static const uint8_t empty[1];
  goop_envelope e = {.public_key = empty, .payload_type = empty, .payload = empty, .signature = empty};
  unsigned seen = 0;
  goop_pb_reader r;
  goop_pb_field f;
  int rc;

  goop_pb_reader_init(&r, buf ? buf : empty, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    const uint8_t **pp;
    size_t *pl;
    switch (f.num) {
    case ENV_PUBLIC_KEY:
      pp = &e.public_key;
      pl = &e.public_key_len;
      break;
    case ENV_PAYLOAD_TYPE:
      pp = &e.payload_type;
      pl = &e.payload_type_len;
      break;
    case ENV_PAYLOAD:
      pp = &e.payload;
      pl = &e.payload_len;
      break;
    case ENV_SIGNATURE:
      pp = &e.signature;
      pl = &e.signature_len;
      break;
    default:
      continue;
    }
    /* One of each: a duplicate could make two parsers see different data. */
    if (f.wire != GOOP_PB_LEN || (seen & (1u << f.num)))
      return GOOP_EPARSE;
    seen |= 1u << f.num;
    *pp = f.data;
    *pl = f.len;
  }
  if (rc < 0)
    return GOOP_EPARSE;
  if (e.public_key_len == 0 || e.signature_len == 0)
    return GOOP_EPARSE;
  *ret = e;
  return 0;
}

int goop_envelope_open(const uint8_t *buf, size_t len, const char *domain, goop_envelope *ret) {
  goop_return_val_if_fail(domain && ret, GOOP_EINVAL);
  goop_envelope e;
  goop_buf msg;
  int rc = goop_envelope_parse(buf, len, &e);
  if (rc)
    return rc;
  goop_buf_init(&msg, 0);
  rc = signing_input(&msg, domain, e.payload_type, e.payload_type_len, e.payload, e.payload_len);
  if (!rc)
    rc = goop_pubkey_verify(e.public_key, e.public_key_len, msg.data, msg.len, e.signature, e.signature_len);
  goop_buf_free(&msg);
  if (rc)
    return rc;
  *ret = e;
  return 0;
}

/* ---- peer record ---------------------------------------------------------------------- */

void goop_peer_record_clear(goop_peer_record *rec) {
  if (!rec)
    return;
  for (size_t i = 0; i < rec->n_addrs; i++)
    blob_free(&rec->addrs[i]);
  *rec = (goop_peer_record){0};
}

int goop_peer_record_seal(const goop_identity *id, uint64_t seq, const goop_id_blob *addrs, size_t n_addrs,
                          goop_buf *out) {
  goop_return_val_if_fail(id && out && (addrs || n_addrs == 0), GOOP_EINVAL);
  if (n_addrs > GOOP_ID_MAX_ADDRS)
    return GOOP_EINVAL;
  for (size_t i = 0; i < n_addrs; i++)
    if (!addr_ok(addrs[i].data, addrs[i].len))
      return GOOP_EINVAL;

  goop_buf payload, info;
  goop_peer_id pid;
  size_t old = out->len;
  int rc;

  goop_buf_init(&payload, 0);
  goop_buf_init(&info, 0);
  goop_identity_peer_id(id, &pid);
  rc = goop_pb_put_bytes(&payload, REC_PEER_ID, pid.bytes, pid.len);
  if (!rc && seq)
    rc = goop_pb_put_varint(&payload, REC_SEQ, seq);
  for (size_t i = 0; !rc && i < n_addrs; i++) {
    goop_buf_reset(&info);
    rc = goop_pb_put_bytes(&info, ADDRINFO_MULTIADDR, addrs[i].data, addrs[i].len);
    if (!rc)
      rc = goop_pb_put_bytes(&payload, REC_ADDRESSES, info.data, info.len);
  }
  if (!rc)
    rc = goop_envelope_seal(id, GOOP_PEER_RECORD_DOMAIN, (const uint8_t *)GOOP_PEER_RECORD_TYPE,
                            GOOP_PEER_RECORD_TYPE_LEN, payload.data, payload.len, out);
  if (!rc && out->len - old > GOOP_ID_MAX_SPR)
    rc = GOOP_EMSGSIZE;
  if (rc)
    out->len = old;
  goop_buf_free(&payload);
  goop_buf_free(&info);
  return rc;
}

/* Parse an AddressInfo message; *ret_ma is NULL if it holds no multiaddr. */
static int parse_addrinfo(const uint8_t *buf, size_t len, const uint8_t **ret_ma, size_t *ret_len) {
  goop_pb_reader r;
  goop_pb_field f;
  int rc;
  *ret_ma = NULL;
  *ret_len = 0;
  goop_pb_reader_init(&r, buf, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    if (f.num != ADDRINFO_MULTIADDR)
      continue;
    if (f.wire != GOOP_PB_LEN)
      return GOOP_EPARSE;
    *ret_ma = f.data;
    *ret_len = f.len;
  }
  return rc < 0 ? GOOP_EPARSE : 0;
}

static int parse_record(const uint8_t *buf, size_t len, goop_peer_record *rec) {
  goop_pb_reader r;
  goop_pb_field f;
  bool have_id = false;
  int rc;

  goop_pb_reader_init(&r, buf, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    switch (f.num) {
    case REC_PEER_ID:
      if (f.wire != GOOP_PB_LEN || have_id)
        return GOOP_EPARSE;
      if (goop_peer_id_from_bytes(f.data, f.len, &rec->peer_id) != 0)
        return GOOP_EPARSE;
      have_id = true;
      break;
    case REC_SEQ:
      if (f.wire != GOOP_PB_VARINT)
        return GOOP_EPARSE;
      rec->seq = f.u64;
      break;
    case REC_ADDRESSES: {
      const uint8_t *ma;
      size_t ma_len;
      if (f.wire != GOOP_PB_LEN)
        return GOOP_EPARSE;
      rc = parse_addrinfo(f.data, f.len, &ma, &ma_len);
      if (rc)
        return rc;
      if (!addr_ok(ma, ma_len) || rec->n_addrs >= GOOP_ID_MAX_ADDRS)
        break; /* dropped */
      bool dup = false;
      for (size_t i = 0; i < rec->n_addrs && !dup; i++)
        dup = blob_eq(&rec->addrs[i], ma, ma_len);
      if (dup)
        break;
      rec->addrs[rec->n_addrs] = (goop_id_blob){0};
      rc = blob_set(&rec->addrs[rec->n_addrs], ma, ma_len);
      if (rc)
        return rc;
      rec->n_addrs++;
      break;
    }
    default:
      break;
    }
  }
  if (rc < 0)
    return GOOP_EPARSE;
  return have_id ? 0 : GOOP_EPARSE;
}

int goop_peer_record_open(const uint8_t *buf, size_t len, goop_peer_record *ret) {
  goop_return_val_if_fail(ret, GOOP_EINVAL);
  goop_envelope e;
  goop_peer_record rec = {0};
  goop_peer_id key_id;
  int rc = goop_envelope_open(buf, len, GOOP_PEER_RECORD_DOMAIN, &e);
  if (rc)
    return rc;
  if (e.payload_type_len != GOOP_PEER_RECORD_TYPE_LEN ||
      memcmp(e.payload_type, GOOP_PEER_RECORD_TYPE, GOOP_PEER_RECORD_TYPE_LEN) != 0)
    return GOOP_EPROTO;
  rc = goop_pubkey_to_peer_id(e.public_key, e.public_key_len, &key_id);
  if (rc)
    return rc;
  rc = parse_record(e.payload, e.payload_len, &rec);
  if (rc)
    goto fail;
  if (!goop_peer_id_equal(&rec.peer_id, &key_id)) {
    rc = GOOP_EPEERID;
    goto fail;
  }
  *ret = rec;
  return 0;

fail:
  goop_peer_record_clear(&rec);
  return rc;
}
