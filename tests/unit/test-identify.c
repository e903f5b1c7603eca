/* Identify messages, signed envelopes, peer records and ping. */
#include <goop/identity.h>
#include <stdbool.h>
#include <string.h>

#include "../../libgoop/common/internal.h"
#include "buf.h"
#include "identify.h"
#include "multiaddr.h"
#include "ping.h"
#include "proto.h"
#include "tap.h"
#include "varint.h"

/* Binary multiaddr of |text| into |b| (reset first). */
static void ma(goop_buf *b, const char *text) {
  goop_buf_reset(b);
  int rc = goop_ma_from_string(text, b);
  if (rc)
    printf("# goop_ma_from_string(%s) = %d\n", text, rc);
}

static bool has_proto(const goop_identify *id, const char *p) {
  for (size_t i = 0; i < id->n_protocols; i++)
    if (strcmp(id->protocols[i], p) == 0)
      return true;
  return false;
}

static void fill_sample(goop_identify *id, const goop_identity *key) {
  goop_buf b;
  uint8_t pk[GOOP_ED25519_PUBKEY_PB_SIZE];
  goop_buf_init(&b, 0);
  goop_identity_public_key(key, pk);
  CHECK_INT_EQ(goop_identify_set_public_key(id, pk, sizeof(pk)), 0);
  ma(&b, "/ip4/192.0.2.7/tcp/4001");
  CHECK_INT_EQ(goop_identify_add_listen_addr(id, b.data, b.len), 0);
  CHECK_INT_EQ(goop_identify_add_listen_addr(id, b.data, b.len), 0); /* duplicate: no-op */
  ma(&b, "/ip6/::1/tcp/4001");
  CHECK_INT_EQ(goop_identify_add_listen_addr(id, b.data, b.len), 0);
  ma(&b, "/ip4/198.51.100.1/tcp/55555");
  CHECK_INT_EQ(goop_identify_set_observed_addr(id, b.data, b.len), 0);
  CHECK_INT_EQ(goop_identify_add_protocol(id, "/ipfs/id/1.0.0"), 0);
  CHECK_INT_EQ(goop_identify_add_protocol(id, "/ipfs/ping/1.0.0"), 0);
  CHECK_INT_EQ(goop_identify_add_protocol(id, "/meshsub/1.1.0"), 0);
  CHECK_INT_EQ(goop_identify_set_protocol_version(id, "ipfs/0.1.0"), 0);
  CHECK_INT_EQ(goop_identify_set_agent_version(id, "libgoop/0.1.0"), 0);
  goop_buf_free(&b);
}

static void test_round_trip(void) {
  goop_identity *key = NULL;
  CHECK_INT_EQ(goop_identity_generate(&key), 0);
  if (!key)
    return;
  goop_identify a, d;
  goop_identify_init(&a);
  goop_identify_init(&d);
  fill_sample(&a, key);
  CHECK_INT_EQ(a.n_listen_addrs, 2);

  goop_buf rec;
  goop_buf_init(&rec, 0);
  goop_id_blob addrs[2] = {{a.listen_addrs[0].data, a.listen_addrs[0].len},
                           {a.listen_addrs[1].data, a.listen_addrs[1].len}};
  CHECK_INT_EQ(goop_peer_record_seal(key, 42, addrs, 2, &rec), 0);
  CHECK_INT_EQ(goop_identify_set_signed_record(&a, rec.data, rec.len), 0);

  goop_buf enc;
  goop_buf_init(&enc, 0);
  CHECK_INT_EQ(goop_identify_encode(&a, &enc), 0);
  /* Field order: 1 (publicKey) first, its 36-byte key right after. */
  CHECK(enc.len > 2 && enc.data[0] == 0x0a && enc.data[1] == 36);
  CHECK_INT_EQ(goop_identify_decode(&d, enc.data, enc.len), 0);
  CHECK_INT_EQ(d.present, a.present);
  CHECK(d.public_key.len == 36 && memcmp(d.public_key.data, a.public_key.data, 36) == 0);
  CHECK_INT_EQ(d.n_listen_addrs, 2);
  for (size_t i = 0; i < 2 && i < d.n_listen_addrs; i++)
    CHECK(d.listen_addrs[i].len == a.listen_addrs[i].len &&
          memcmp(d.listen_addrs[i].data, a.listen_addrs[i].data, a.listen_addrs[i].len) == 0);
  CHECK(d.observed_addr.len == a.observed_addr.len &&
        memcmp(d.observed_addr.data, a.observed_addr.data, a.observed_addr.len) == 0);
  CHECK_INT_EQ(d.n_protocols, 3);
  CHECK(has_proto(&d, "/meshsub/1.1.0"));
  CHECK_STR_EQ(d.protocol_version, "ipfs/0.1.0");
  CHECK_STR_EQ(d.agent_version, "libgoop/0.1.0");
  CHECK(d.signed_peer_record.len == rec.len && memcmp(d.signed_peer_record.data, rec.data, rec.len) == 0);

  /* Re-encoding gives the same bytes. */
  goop_buf enc2;
  goop_buf_init(&enc2, 0);
  CHECK_INT_EQ(goop_identify_encode(&d, &enc2), 0);
  CHECK(enc2.len == enc.len && memcmp(enc2.data, enc.data, enc.len) == 0);

  /* The record inside verifies. */
  goop_peer_record pr;
  CHECK_INT_EQ(goop_peer_record_open(d.signed_peer_record.data, d.signed_peer_record.len, &pr), 0);
  CHECK_INT_EQ(pr.seq, 42);
  goop_peer_record_clear(&pr);

  /* Small enough: one delimited message with the record in it. */
  goop_buf wire;
  goop_buf_init(&wire, 0);
  size_t n_msgs = 0;
  CHECK_INT_EQ(goop_identify_encode_msgs(&a, &wire, &n_msgs), 0);
  CHECK_INT_EQ(n_msgs, 1);
  goop_identify r;
  goop_identify_init(&r);
  goop_identify_reader rd;
  goop_identify_reader_init(&rd, &r);
  CHECK_INT_EQ(goop_identify_reader_feed(&rd, wire.data, wire.len), 0);
  unsigned got = 0;
  CHECK_INT_EQ(goop_identify_reader_finish(&rd, &got), 0);
  CHECK_INT_EQ(got, 1);
  CHECK(r.present & GOOP_ID_F_SIGNED_RECORD);
  goop_identify_reader_clear(&rd);
  goop_identify_clear(&r);

  goop_buf_free(&wire);
  goop_buf_free(&enc);
  goop_buf_free(&enc2);
  goop_buf_free(&rec);
  goop_identify_clear(&a);
  goop_identify_clear(&d);
  goop_identity_free(key);
}

static void test_decode_lenient(void) {
  goop_buf m, b;
  goop_buf_init(&m, 0);
  goop_buf_init(&b, 0);
  ma(&b, "/ip4/10.0.0.1/tcp/1");
  CHECK_INT_EQ(goop_pb_put_bytes(&m, 2, "\xff\xff\xff", 3), 0); /* bad multiaddr */
  CHECK_INT_EQ(goop_pb_put_bytes(&m, 2, b.data, b.len), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&m, 2, "", 0), 0); /* empty multiaddr */
  char longp[300];
  memset(longp, 'x', sizeof(longp) - 1);
  longp[0] = '/';
  longp[299] = '\0';
  CHECK_INT_EQ(goop_pb_put_string(&m, 3, longp), 0); /* 299 bytes: dropped */
  CHECK_INT_EQ(goop_pb_put_string(&m, 3, "/ok/1"), 0);
  CHECK_INT_EQ(goop_pb_put_string(&m, 3, "/bad\nproto"), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&m, 3, "/nul\0x", 6), 0);
  CHECK_INT_EQ(goop_pb_put_string(&m, 3, ""), 0);
  CHECK_INT_EQ(goop_pb_put_string(&m, 6, longp), 0); /* agent over 256: dropped */
  CHECK_INT_EQ(goop_pb_put_string(&m, 5, "ipfs/0.1.0"), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&m, 4, "junk", 4), 0); /* bad observed addr: dropped */
  CHECK_INT_EQ(goop_pb_put_varint(&m, 99, 7), 0);       /* unknown: skipped */
  CHECK_INT_EQ(goop_pb_put_bytes(&m, 7, "x", 1), 0);    /* unused field 7 */

  goop_identify d;
  goop_identify_init(&d);
  CHECK_INT_EQ(goop_identify_decode(&d, m.data, m.len), 0);
  CHECK_INT_EQ(d.n_listen_addrs, 1);
  CHECK(d.n_listen_addrs == 1 && d.listen_addrs[0].len == b.len &&
        memcmp(d.listen_addrs[0].data, b.data, b.len) == 0);
  CHECK_INT_EQ(d.n_protocols, 1);
  CHECK(has_proto(&d, "/ok/1"));
  CHECK(!(d.present & GOOP_ID_F_AGENT_VERSION));
  CHECK(d.agent_version == NULL);
  CHECK(!(d.present & GOOP_ID_F_OBSERVED_ADDR));
  CHECK_STR_EQ(d.protocol_version, "ipfs/0.1.0");
  CHECK(d.present & GOOP_ID_F_LISTEN_ADDRS);

  /* 65 addresses: 64 kept. 300 protocols: 256 kept. */
  goop_identify_clear(&d);
  goop_buf_reset(&m);
  for (int i = 0; i < 65; i++) {
    char t[64];
    snprintf(t, sizeof(t), "/ip4/10.0.%d.%d/tcp/4001", i / 256, i % 256);
    ma(&b, t);
    CHECK_INT_EQ(goop_pb_put_bytes(&m, 2, b.data, b.len), 0);
  }
  for (int i = 0; i < 300; i++) {
    char t[32];
    snprintf(t, sizeof(t), "/p/%d", i);
    CHECK_INT_EQ(goop_pb_put_string(&m, 3, t), 0);
  }
  CHECK(m.len <= GOOP_ID_READ_MAX);
  CHECK_INT_EQ(goop_identify_decode(&d, m.data, m.len), 0);
  CHECK_INT_EQ(d.n_listen_addrs, 64);
  CHECK_INT_EQ(d.n_protocols, 256);
  goop_identify_clear(&d);

  goop_buf_free(&m);
  goop_buf_free(&b);
}

static void test_decode_strict(void) {
  goop_identify d;
  goop_identify_init(&d);
  CHECK_INT_EQ(goop_identify_set_agent_version(&d, "keep"), 0);
  goop_buf m;
  goop_buf_init(&m, 0);
  /* Known field with the wrong wire type. */
  CHECK_INT_EQ(goop_pb_put_string(&m, 6, "new-agent"), 0);
  CHECK_INT_EQ(goop_pb_put_varint(&m, 3, 1), 0);
  CHECK_INT_EQ(goop_identify_decode(&d, m.data, m.len), GOOP_EPARSE);
  CHECK_STR_EQ(d.agent_version, "keep"); /* untouched on error */
  /* Truncated length. */
  CHECK_INT_EQ(goop_identify_decode(&d,
                                    (const uint8_t *)"\x32\x05"
                                                     "ab",
                                    4),
               GOOP_EPARSE);
  /* Group wire type. */
  CHECK_INT_EQ(goop_identify_decode(&d, (const uint8_t *)"\x0b", 1), GOOP_EPARSE);
  /* Over 8 KiB. */
  uint8_t *big = calloc(1, GOOP_ID_READ_MAX + 1);
  CHECK_INT_EQ(goop_identify_decode(&d, big, GOOP_ID_READ_MAX + 1), GOOP_EMSGSIZE);
  free(big);
  /* Empty message is valid and changes nothing. */
  CHECK_INT_EQ(goop_identify_decode(&d, NULL, 0), 0);
  CHECK_STR_EQ(d.agent_version, "keep");
  goop_buf_free(&m);
  goop_identify_clear(&d);

  /* Builders reject oversize or bad values. */
  goop_identify_init(&d);
  char s[300];
  memset(s, 'a', 299);
  s[299] = '\0';
  CHECK_INT_EQ(goop_identify_set_agent_version(&d, s), GOOP_EINVAL);
  CHECK_INT_EQ(goop_identify_add_protocol(&d, s), GOOP_EINVAL);
  CHECK_INT_EQ(goop_identify_add_protocol(&d, ""), GOOP_EINVAL);
  CHECK_INT_EQ(goop_identify_add_listen_addr(&d, (const uint8_t *)"\xff", 1), GOOP_EINVAL);
  uint8_t *spr = calloc(1, GOOP_ID_MAX_SPR + 1);
  CHECK_INT_EQ(goop_identify_set_signed_record(&d, spr, GOOP_ID_MAX_SPR + 1), GOOP_EINVAL);
  free(spr);
  CHECK_INT_EQ(d.present, 0);
  goop_identify_clear(&d);
}

static void test_merge_reader(void) {
  goop_buf m1, m2, b, wire;
  goop_buf_init(&m1, 0);
  goop_buf_init(&m2, 0);
  goop_buf_init(&b, 0);
  goop_buf_init(&wire, 0);
  ma(&b, "/ip4/10.0.0.1/tcp/1");
  CHECK_INT_EQ(goop_pb_put_bytes(&m1, 2, b.data, b.len), 0);
  CHECK_INT_EQ(goop_pb_put_string(&m1, 3, "/a"), 0);
  CHECK_INT_EQ(goop_pb_put_string(&m1, 3, "/b"), 0);
  CHECK_INT_EQ(goop_pb_put_string(&m1, 6, "agent-1"), 0);
  CHECK_INT_EQ(goop_pb_put_string(&m1, 5, "ipfs/0.1.0"), 0);
  ma(&b, "/dns4/example.com/tcp/443/wss");
  CHECK_INT_EQ(goop_pb_put_bytes(&m2, 2, b.data, b.len), 0);
  CHECK_INT_EQ(goop_pb_put_string(&m2, 3, "/b"), 0);
  CHECK_INT_EQ(goop_pb_put_string(&m2, 3, "/c"), 0);
  CHECK_INT_EQ(goop_pb_put_string(&m2, 6, "agent-2"), 0);
  CHECK_INT_EQ(goop_frame_append(&wire, m1.data, m1.len), 0);
  CHECK_INT_EQ(goop_frame_append(&wire, m2.data, m2.len), 0);

  /* Byte by byte. */
  goop_identify id;
  goop_identify_init(&id);
  goop_identify_reader r;
  goop_identify_reader_init(&r, &id);
  for (size_t i = 0; i < wire.len; i++)
    if (goop_identify_reader_feed(&r, wire.data + i, 1) != 0)
      break;
  unsigned n = 0;
  CHECK_INT_EQ(goop_identify_reader_finish(&r, &n), 0);
  CHECK_INT_EQ(n, 2);
  CHECK_INT_EQ(id.n_listen_addrs, 2);
  CHECK_INT_EQ(id.n_protocols, 3);
  CHECK(has_proto(&id, "/a") && has_proto(&id, "/b") && has_proto(&id, "/c"));
  CHECK_STR_EQ(id.agent_version, "agent-2");       /* scalar overwritten */
  CHECK_STR_EQ(id.protocol_version, "ipfs/0.1.0"); /* kept: absent in msg 2 */
  goop_identify_reader_clear(&r);
  goop_identify_clear(&id);

  /* Truncated at EOF. */
  goop_identify_init(&id);
  goop_identify_reader_init(&r, &id);
  CHECK_INT_EQ(goop_identify_reader_feed(&r, wire.data, wire.len - 1), 0);
  CHECK_INT_EQ(goop_identify_reader_finish(&r, NULL), GOOP_ETRUNCATED);
  goop_identify_reader_clear(&r);
  goop_identify_clear(&id);

  /* No message at all. */
  goop_identify_init(&id);
  goop_identify_reader_init(&r, &id);
  CHECK_INT_EQ(goop_identify_reader_finish(&r, NULL), GOOP_ETRUNCATED);
  goop_identify_reader_clear(&r);

  /* 11 messages. */
  goop_identify_reader_init(&r, &id);
  goop_buf_reset(&wire);
  for (int i = 0; i < 11; i++)
    CHECK_INT_EQ(goop_frame_append(&wire, m1.data, m1.len), 0);
  CHECK_INT_EQ(goop_identify_reader_feed(&r, wire.data, wire.len), GOOP_ELIMIT);
  CHECK_INT_EQ(goop_identify_reader_feed(&r, wire.data, 1), GOOP_ELIMIT); /* sticky */
  goop_identify_reader_clear(&r);
  goop_identify_clear(&id);

  /* A message announced as 8193 bytes. */
  goop_identify_reader_init(&r, &id);
  CHECK_INT_EQ(goop_identify_reader_feed(&r, (const uint8_t *)"\x81\x40", 2), GOOP_EMSGSIZE);
  goop_identify_reader_clear(&r);
  /* Junk prefix. */
  goop_identify_reader_init(&r, &id);
  CHECK_INT_EQ(goop_identify_reader_feed(&r, (const uint8_t *)"\x80\x00", 2), GOOP_EPARSE);
  goop_identify_reader_clear(&r);
  goop_identify_clear(&id);

  goop_buf_free(&m1);
  goop_buf_free(&m2);
  goop_buf_free(&b);
  goop_buf_free(&wire);
}

/* Split the delimited messages in |wire|; check each <= 4096; return count. */
static size_t check_frames(const goop_buf *wire, goop_identify *into) {
  size_t off = 0, n = 0;
  while (off < wire->len) {
    const uint8_t *p;
    size_t plen;
    int k = goop_frame_decode(wire->data + off, wire->len - off, GOOP_ID_READ_MAX, &p, &plen);
    CHECK(k > 0);
    if (k <= 0)
      break;
    CHECK(plen <= GOOP_ID_SEND_MAX);
    CHECK_INT_EQ(goop_identify_decode(into, p, plen), 0);
    off += (size_t)k;
    n++;
  }
  return n;
}

static void test_send_limits(void) {
  goop_identify a;
  goop_buf b, wire;
  goop_identify_init(&a);
  goop_buf_init(&b, 0);
  goop_buf_init(&wire, 0);

  /* 64 long DNS addresses (~75 bytes each) do not fit in 4 KiB: trimmed. */
  for (int i = 0; i < 64; i++) {
    char t[128];
    snprintf(t, sizeof(t),
             "/dns4/node-%02d.a-rather-long-host-name.in-a-long-subdomain.example.org/tcp/4001/ws", i);
    ma(&b, t);
    CHECK_INT_EQ(goop_identify_add_listen_addr(&a, b.data, b.len), 0);
  }
  CHECK_INT_EQ(goop_identify_add_protocol(&a, "/ipfs/id/1.0.0"), 0);
  CHECK_INT_EQ(goop_identify_set_agent_version(&a, "libgoop/0.1.0"), 0);
  size_t n_msgs = 0;
  CHECK_INT_EQ(goop_identify_encode_msgs(&a, &wire, &n_msgs), 0);
  CHECK_INT_EQ(n_msgs, 1);
  goop_identify d;
  goop_identify_init(&d);
  CHECK_INT_EQ(check_frames(&wire, &d), 1);
  CHECK(d.n_listen_addrs > 0 && d.n_listen_addrs < 64);
  CHECK_STR_EQ(d.agent_version, "libgoop/0.1.0");
  goop_identify_clear(&d);

  /* A record over 2 KiB goes into a second message. */
  uint8_t *spr = malloc(2500);
  memset(spr, 0x5a, 2500);
  CHECK_INT_EQ(goop_identify_set_signed_record(&a, spr, 2500), 0);
  goop_buf_reset(&wire);
  CHECK_INT_EQ(goop_identify_encode_msgs(&a, &wire, &n_msgs), 0);
  CHECK_INT_EQ(n_msgs, 2);
  goop_identify_init(&d);
  CHECK_INT_EQ(check_frames(&wire, &d), 2);
  CHECK(d.signed_peer_record.len == 2500);
  goop_identify_clear(&d);

  /* A record of the largest size still fits its own message? 4096 does not. */
  uint8_t *big = calloc(1, GOOP_ID_MAX_SPR);
  CHECK_INT_EQ(goop_identify_set_signed_record(&a, big, GOOP_ID_MAX_SPR), 0);
  goop_buf_reset(&wire);
  CHECK_INT_EQ(goop_identify_encode_msgs(&a, &wire, &n_msgs), GOOP_EMSGSIZE);
  CHECK_INT_EQ(wire.len, 0);
  free(big);
  free(spr);
  goop_identify_clear(&a);

  /* 256 protocols of 250 bytes can never fit. */
  goop_identify_init(&a);
  char p[251];
  memset(p, 'q', 250);
  p[0] = '/';
  p[250] = '\0';
  for (int i = 0; i < 256; i++) {
    snprintf(p + 1, 5, "%04d", i);
    p[5] = 'q';
    CHECK(goop_identify_add_protocol(&a, p) == 0);
  }
  CHECK_INT_EQ(goop_identify_add_protocol(&a, "/one-too-many"), GOOP_ELIMIT);
  CHECK_INT_EQ(goop_identify_encode_msgs(&a, &wire, &n_msgs), GOOP_EMSGSIZE);
  goop_identify_clear(&a);

  goop_buf_free(&b);
  goop_buf_free(&wire);
}

static void test_peer_record(void) {
  goop_identity *key = NULL, *other = NULL;
  CHECK_INT_EQ(goop_identity_generate(&key), 0);
  CHECK_INT_EQ(goop_identity_generate(&other), 0);
  if (!key || !other)
    return;
  goop_buf a1, a2, env;
  goop_buf_init(&a1, 0);
  goop_buf_init(&a2, 0);
  goop_buf_init(&env, 0);
  ma(&a1, "/ip4/203.0.113.5/tcp/4001");
  ma(&a2, "/ip4/203.0.113.5/udp/4001/quic-v1");
  goop_id_blob addrs[2] = {{a1.data, a1.len}, {a2.data, a2.len}};
  const uint64_t seq = 1763700000123456789ull;
  CHECK_INT_EQ(goop_peer_record_seal(key, seq, addrs, 2, &env), 0);

  goop_peer_record rec;
  goop_peer_id pid;
  goop_identity_peer_id(key, &pid);
  CHECK_INT_EQ(goop_peer_record_open(env.data, env.len, &rec), 0);
  CHECK(goop_peer_id_equal(&rec.peer_id, &pid));
  CHECK(rec.seq == seq);
  CHECK_INT_EQ(rec.n_addrs, 2);
  CHECK(rec.n_addrs == 2 && rec.addrs[1].len == a2.len && memcmp(rec.addrs[1].data, a2.data, a2.len) == 0);
  goop_peer_record_clear(&rec);

  /* Envelope layout: field 1 = 36-byte Ed25519 key, type 03 01. */
  goop_envelope e;
  CHECK_INT_EQ(goop_envelope_parse(env.data, env.len, &e), 0);
  CHECK_INT_EQ(e.public_key_len, 36);
  CHECK(e.payload_type_len == 2 && e.payload_type[0] == 0x03 && e.payload_type[1] == 0x01);
  CHECK_INT_EQ(e.signature_len, 64);
  CHECK(env.data[0] == 0x0a && env.data[1] == 36);

  /* Bad signature: flip the last byte (inside the signature). */
  uint8_t *t = malloc(env.len);
  memcpy(t, env.data, env.len);
  t[env.len - 1] ^= 1;
  CHECK_INT_EQ(goop_peer_record_open(t, env.len, &rec), GOOP_EBADSIG);
  /* Tampered payload: the seq/peer-id bytes sit before the signature. */
  memcpy(t, env.data, env.len);
  size_t poff = (size_t)(e.payload - env.data);
  t[poff + e.payload_len - 1] ^= 0x01;
  CHECK_INT_EQ(goop_peer_record_open(t, env.len, &rec), GOOP_EBADSIG);
  /* Tampered payload type. */
  memcpy(t, env.data, env.len);
  t[(size_t)(e.payload_type - env.data)] = 0x81;
  CHECK_INT_EQ(goop_peer_record_open(t, env.len, &rec), GOOP_EBADSIG);
  free(t);

  /* Validly signed, wrong payload type (uvarint of 0x0301 instead of 03 01). */
  goop_buf bad;
  goop_buf_init(&bad, 0);
  CHECK_INT_EQ(goop_envelope_seal(key, GOOP_PEER_RECORD_DOMAIN, (const uint8_t *)"\x81\x06", 2, e.payload,
                                  e.payload_len, &bad),
               0);
  CHECK_INT_EQ(goop_peer_record_open(bad.data, bad.len, &rec), GOOP_EPROTO);
  /* Wrong domain: the signature does not verify under ours. */
  goop_buf_reset(&bad);
  CHECK_INT_EQ(goop_envelope_seal(key, "libp2p-routing-state", (const uint8_t *)GOOP_PEER_RECORD_TYPE, 2,
                                  e.payload, e.payload_len, &bad),
               0);
  CHECK_INT_EQ(goop_peer_record_open(bad.data, bad.len, &rec), GOOP_EBADSIG);
  goop_envelope e2;
  CHECK_INT_EQ(goop_envelope_open(bad.data, bad.len, "libp2p-routing-state", &e2), 0);

  /* Record naming another peer, signed by us. */
  goop_buf payload;
  goop_buf_init(&payload, 0);
  goop_peer_id opid;
  goop_identity_peer_id(other, &opid);
  CHECK_INT_EQ(goop_pb_put_bytes(&payload, 1, opid.bytes, opid.len), 0);
  CHECK_INT_EQ(goop_pb_put_varint(&payload, 2, 7), 0);
  goop_buf_reset(&bad);
  CHECK_INT_EQ(goop_envelope_seal(key, GOOP_PEER_RECORD_DOMAIN, (const uint8_t *)GOOP_PEER_RECORD_TYPE, 2,
                                  payload.data, payload.len, &bad),
               0);
  CHECK_INT_EQ(goop_peer_record_open(bad.data, bad.len, &rec), GOOP_EPEERID);
  /* Record without peer_id. */
  goop_buf_reset(&payload);
  CHECK_INT_EQ(goop_pb_put_varint(&payload, 2, 7), 0);
  goop_buf_reset(&bad);
  CHECK_INT_EQ(goop_envelope_seal(key, GOOP_PEER_RECORD_DOMAIN, (const uint8_t *)GOOP_PEER_RECORD_TYPE, 2,
                                  payload.data, payload.len, &bad),
               0);
  CHECK_INT_EQ(goop_peer_record_open(bad.data, bad.len, &rec), GOOP_EPARSE);

  /* Envelope with a duplicated field; without signature. */
  goop_buf_reset(&bad);
  CHECK_INT_EQ(goop_buf_append(&bad, env.data, env.len), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&bad, 3, "x", 1), 0);
  CHECK_INT_EQ(goop_envelope_parse(bad.data, bad.len, &e2), GOOP_EPARSE);
  goop_buf_reset(&bad);
  CHECK_INT_EQ(goop_buf_append(&bad, env.data, (size_t)(e.signature - env.data) - 2), 0);
  CHECK_INT_EQ(goop_envelope_parse(bad.data, bad.len, &e2), GOOP_EPARSE);
  CHECK_INT_EQ(goop_envelope_parse(env.data, env.len - 1, &e2), GOOP_EPARSE);

  /* Invalid and too many addresses on seal. */
  goop_id_blob junk = {(uint8_t *)"\xff\xff", 2};
  CHECK_INT_EQ(goop_peer_record_seal(key, 1, &junk, 1, &bad), GOOP_EINVAL);
  goop_id_blob many[GOOP_ID_MAX_ADDRS + 1];
  for (size_t i = 0; i < GOOP_ID_MAX_ADDRS + 1; i++)
    many[i] = addrs[0];
  CHECK_INT_EQ(goop_peer_record_seal(key, 1, many, GOOP_ID_MAX_ADDRS + 1, &bad), GOOP_EINVAL);

  goop_buf_free(&payload);
  goop_buf_free(&bad);
  goop_buf_free(&a1);
  goop_buf_free(&a2);
  goop_buf_free(&env);
  goop_identity_free(key);
  goop_identity_free(other);
}

static void test_ping(void) {
  uint8_t p1[GOOP_PING_SIZE], p2[GOOP_PING_SIZE], echo[GOOP_PING_SIZE];
  CHECK_INT_EQ(goop_ping_payload(p1), 0);
  CHECK_INT_EQ(goop_ping_payload(p2), 0);
  CHECK(memcmp(p1, p2, GOOP_PING_SIZE) != 0);

  /* Responder: partial payloads are buffered, one echo at a time. */
  goop_ping_responder r;
  goop_ping_responder_init(&r);
  uint8_t in[64];
  memcpy(in, p1, 32);
  memcpy(in + 32, p2, 32);
  size_t used;
  CHECK_INT_EQ(goop_ping_responder_feed(&r, in, 10, echo, &used), 0);
  CHECK_INT_EQ(used, 10);
  CHECK(goop_ping_responder_partial(&r));
  CHECK_INT_EQ(goop_ping_responder_feed(&r, in + 10, 54, echo, &used), 1);
  CHECK_INT_EQ(used, 22);
  CHECK_MEM_EQ(echo, p1, 32);
  CHECK_INT_EQ(goop_ping_responder_feed(&r, in + 32, 32, echo, &used), 1);
  CHECK_INT_EQ(used, 32);
  CHECK_MEM_EQ(echo, p2, 32);
  CHECK(!goop_ping_responder_partial(&r));

  /* Initiator: echo matched, RTT from the timestamps. */
  goop_ping_initiator p;
  goop_ping_initiator_init(&p);
  uint8_t sent[GOOP_PING_SIZE];
  CHECK_INT_EQ(goop_ping_initiator_start(&p, 1000000, sent), 0);
  CHECK_INT_EQ(goop_ping_initiator_start(&p, 1000001, sent), GOOP_ESTATE);
  goop_tstamp rtt = 0;
  CHECK_INT_EQ(goop_ping_initiator_feed(&p, sent, 31, 1000400, &used, &rtt), 0);
  CHECK_INT_EQ(used, 31);
  uint8_t tail[4] = {sent[31], 1, 2, 3};
  CHECK_INT_EQ(goop_ping_initiator_feed(&p, tail, 4, 1000500, &used, &rtt), 1);
  CHECK_INT_EQ(used, 1);
  CHECK_INT_EQ(rtt, 500);
  /* Nothing outstanding: stray bytes are a protocol error. */
  CHECK_INT_EQ(goop_ping_initiator_feed(&p, tail + 1, 3, 1000600, &used, &rtt), GOOP_EPROTO);
  /* Wrong echo. */
  CHECK_INT_EQ(goop_ping_initiator_start_with(&p, 5, p1), 0);
  CHECK_INT_EQ(goop_ping_initiator_feed(&p, p2, 32, 9, &used, &rtt), GOOP_EPROTO);
  /* Round trip through the responder. */
  CHECK_INT_EQ(goop_ping_initiator_start(&p, 100, sent), 0);
  CHECK_INT_EQ(goop_ping_responder_feed(&r, sent, 32, echo, &used), 1);
  CHECK_INT_EQ(goop_ping_initiator_feed(&p, echo, 32, 250, &used, &rtt), 1);
  CHECK_INT_EQ(rtt, 150);
}

int main(void) {
  RUN(test_round_trip);
  RUN(test_decode_lenient);
  RUN(test_decode_strict);
  RUN(test_merge_reader);
  RUN(test_send_limits);
  RUN(test_peer_record);
  RUN(test_ping);
  return tap_done();
}
