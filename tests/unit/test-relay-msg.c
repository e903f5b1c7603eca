/* Circuit relay v2 and DCUtR messages: framing, codecs, vouchers. */
#include <goop/identity.h>
#include <stdbool.h>
#include <string.h>

#include "../../libgoop/common/internal.h"
#include "buf.h"
#include "identify.h"
#include "proto.h"
#include "relay-msg.h"
#include "tap.h"

static bool bytes_eq(goop_relay_bytes b, const void *data, size_t len) {
  return b.len == len && (len == 0 || memcmp(b.data, data, len) == 0);
}

/* Decode the hex body of one message (no prefix). */
static uint8_t *hex(const char *h, size_t *len) {
  return tap_unhex(h, len);
}

static void test_frame_take(void) {
  const uint8_t *msg;
  size_t len, used;
  uint8_t two[] = {0x02, 0x08, 0x00, 0x04, 0x08, 0x02, 0x28, 0x64, 0x01};
  CHECK_INT_EQ(goop_relay_frame_take(two, 0, &msg, &len, &used), GOOP_EAGAIN);
  CHECK_INT_EQ(goop_relay_frame_take(two, 1, &msg, &len, &used), GOOP_EAGAIN); /* body missing */
  CHECK_INT_EQ(goop_relay_frame_take(two, 2, &msg, &len, &used), GOOP_EAGAIN); /* body cut */
  CHECK_INT_EQ(goop_relay_frame_take(two, sizeof(two), &msg, &len, &used), 0);
  CHECK_INT_EQ(len, 2);
  CHECK_INT_EQ(used, 3);
  CHECK(msg == two + 1);
  CHECK_INT_EQ(goop_relay_frame_take(two + 3, sizeof(two) - 3, &msg, &len, &used), 0);
  CHECK_INT_EQ(len, 4);
  CHECK_INT_EQ(used, 5);
  CHECK_INT_EQ(goop_relay_frame_take(two + 8, 1, &msg, &len, &used), GOOP_EAGAIN); /* 1 of 2 bytes */

  uint8_t partial_varint[] = {0x80};
  CHECK_INT_EQ(goop_relay_frame_take(partial_varint, 1, &msg, &len, &used), GOOP_EAGAIN);
  uint8_t over[] = {0x81, 0x20}; /* 4097 */
  CHECK_INT_EQ(goop_relay_frame_take(over, sizeof(over), &msg, &len, &used), GOOP_EMSGSIZE);
  uint8_t at_max[] = {0x80, 0x20}; /* 4096: allowed, needs the body */
  CHECK_INT_EQ(goop_relay_frame_take(at_max, sizeof(at_max), &msg, &len, &used), GOOP_EAGAIN);
  uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
  CHECK_INT_EQ(goop_relay_frame_take(huge, sizeof(huge), &msg, &len, &used), GOOP_EMSGSIZE);
  uint8_t nonminimal[] = {0x82, 0x00, 0x08, 0x00};
  CHECK_INT_EQ(goop_relay_frame_take(nonminimal, sizeof(nonminimal), &msg, &len, &used), GOOP_EPARSE);
  uint8_t long_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  CHECK_INT_EQ(goop_relay_frame_take(long_varint, sizeof(long_varint), &msg, &len, &used), GOOP_EPARSE);
}

/* Hand-made bytes from the field numbers of circuit-v2.md. */
static void test_hop_vectors(void) {
  goop_hop_msg m;
  goop_buf out;
  size_t n;
  uint8_t *b;
  goop_buf_init(&out, 0);

  /* RESERVE: type 0 written explicitly. */
  goop_hop_msg reserve = {.has_type = true, .type = GOOP_HOP_RESERVE};
  CHECK_INT_EQ(goop_hop_encode(&reserve, &out), 0);
  CHECK(out.len == 3 && memcmp(out.data, "\x02\x08\x00", 3) == 0);
  CHECK_INT_EQ(goop_hop_decode(out.data + 1, out.len - 1, &m), 0);
  CHECK(m.has_type && m.type == GOOP_HOP_RESERVE && !m.peer.present && !m.has_status);

  /* CONNECT{peer{id "AB"}}. */
  goop_buf_reset(&out);
  goop_hop_msg connect = {.has_type = true, .type = GOOP_HOP_CONNECT};
  connect.peer.present = true;
  connect.peer.id = (goop_relay_bytes){(const uint8_t *)"AB", 2};
  CHECK_INT_EQ(goop_hop_encode(&connect, &out), 0);
  b = hex("08 08 01 12 04 0a 02 41 42", &n);
  CHECK(out.len == n && memcmp(out.data, b, n) == 0);
  free(b);

  /* STATUS OK with limit{120 s, 128 KiB}. */
  goop_buf_reset(&out);
  goop_hop_msg st = {.has_type = true, .type = GOOP_HOP_STATUS, .has_status = true, .status = GOOP_RELAY_OK};
  st.limit = (goop_relay_limit){.present = true, .duration = 120, .data = 131072};
  CHECK_INT_EQ(goop_hop_encode(&st, &out), 0);
  b = hex("0c 08 02 22 06 08 78 10 80 80 08 28 64", &n);
  CHECK(out.len == n && memcmp(out.data, b, n) == 0);
  free(b);

  /* A reservation as a relay would send it; unknown fields (9, 15) skipped. */
  b = hex("08 02"                         /* type STATUS */
          "1a 18"                         /* reservation, 24 bytes */
          "08 e8 07"                      /*   expire 1000 */
          "12 08 04 7f 00 00 01 06 0f a1" /*   addr /ip4/127.0.0.1/tcp/4001 */
          "12 03 01 02 03"                /*   addr (opaque bytes) */
          "1a 04 de ad be ef"             /*   voucher */
          "48 07"                         /* unknown varint field 9 */
          "22 02 08 05"                   /* limit{duration 5} */
          "7a 01 00"                      /* unknown LEN field 15 */
          "28 64",                        /* status OK */
          &n);
  CHECK_INT_EQ(goop_hop_decode(b, n, &m), 0);
  CHECK_INT_EQ(m.type, GOOP_HOP_STATUS);
  CHECK(m.reservation.present);
  CHECK_INT_EQ(m.reservation.expire, 1000);
  CHECK_INT_EQ(m.reservation.n_addrs, 2);
  CHECK(bytes_eq(m.reservation.addrs[0], "\x04\x7f\x00\x00\x01\x06\x0f\xa1", 8));
  CHECK(bytes_eq(m.reservation.voucher, "\xde\xad\xbe\xef", 4));
  CHECK(m.limit.present && m.limit.duration == 5 && m.limit.data == 0);
  CHECK(m.has_status && m.status == GOOP_RELAY_OK);
  free(b);
  goop_buf_free(&out);
}

static void test_hop_round_trip(void) {
  uint8_t addr[GOOP_RELAY_MAX_ADDRS][GOOP_RELAY_MAX_ADDRS];
  goop_hop_msg a = {.has_type = true, .type = GOOP_HOP_STATUS, .has_status = true, .status = 204};
  a.peer.present = true;
  a.peer.id = (goop_relay_bytes){(const uint8_t *)"peer-id", 7};
  for (size_t i = 0; i < GOOP_RELAY_MAX_ADDRS; i++) {
    memset(addr[i], (int)i, sizeof(addr[i]));
    a.peer.addrs[i] = (goop_relay_bytes){addr[i], 8};
    a.reservation.addrs[i] = (goop_relay_bytes){addr[i], i + 1};
  }
  a.peer.n_addrs = GOOP_RELAY_MAX_ADDRS;
  a.reservation.present = true;
  a.reservation.expire = 1790000000;
  a.reservation.n_addrs = GOOP_RELAY_MAX_ADDRS;
  a.reservation.voucher = (goop_relay_bytes){(const uint8_t *)"v", 1};
  a.limit = (goop_relay_limit){.present = true, .duration = UINT32_MAX, .data = (uint64_t)1 << 40};

  goop_buf out;
  goop_buf_init(&out, 0);
  CHECK_INT_EQ(goop_hop_encode(&a, &out), 0);
  const uint8_t *body;
  size_t len, used;
  CHECK_INT_EQ(goop_relay_frame_take(out.data, out.len, &body, &len, &used), 0);
  CHECK_INT_EQ(used, out.len);
  goop_hop_msg d;
  CHECK_INT_EQ(goop_hop_decode(body, len, &d), 0);
  CHECK(d.has_type && d.type == GOOP_HOP_STATUS && d.has_status && d.status == 204);
  CHECK(d.peer.present && bytes_eq(d.peer.id, "peer-id", 7));
  CHECK_INT_EQ(d.peer.n_addrs, GOOP_RELAY_MAX_ADDRS);
  CHECK_INT_EQ(d.peer.n_dropped, 0);
  bool same = true;
  for (size_t i = 0; i < GOOP_RELAY_MAX_ADDRS; i++)
    same = same && bytes_eq(d.peer.addrs[i], addr[i], 8) && bytes_eq(d.reservation.addrs[i], addr[i], i + 1);
  CHECK(same);
  CHECK(d.reservation.present && d.reservation.expire == 1790000000);
  CHECK(bytes_eq(d.reservation.voucher, "v", 1));
  CHECK(d.limit.present && d.limit.duration == UINT32_MAX && d.limit.data == (uint64_t)1 << 40);

  /* An empty limit is present but carries no field. */
  goop_buf_reset(&out);
  goop_hop_msg e = {.type = GOOP_HOP_STATUS, .limit = {.present = true}};
  CHECK_INT_EQ(goop_hop_encode(&e, &out), 0);
  CHECK(out.len == 5 && memcmp(out.data, "\x04\x08\x02\x22\x00", 5) == 0);
  CHECK_INT_EQ(goop_hop_decode(out.data + 1, out.len - 1, &d), 0);
  CHECK(d.limit.present && d.limit.duration == 0 && d.limit.data == 0 && !d.has_status);

  /* Too many addresses to encode; a message over the maximum. */
  goop_buf_reset(&out);
  a.peer.n_addrs = GOOP_RELAY_MAX_ADDRS + 1;
  CHECK_INT_EQ(goop_hop_encode(&a, &out), GOOP_EINVAL);
  CHECK_INT_EQ(out.len, 0);
  static uint8_t big[300];
  for (size_t i = 0; i < GOOP_RELAY_MAX_ADDRS; i++)
    a.peer.addrs[i] = (goop_relay_bytes){big, sizeof(big)};
  a.peer.n_addrs = GOOP_RELAY_MAX_ADDRS;
  CHECK_INT_EQ(goop_buf_append(&out, "x", 1), 0);
  CHECK_INT_EQ(goop_hop_encode(&a, &out), GOOP_EMSGSIZE);
  CHECK_INT_EQ(out.len, 1); /* untouched */
  goop_buf_free(&out);
}

static void test_hop_malformed(void) {
  static const char *bad[] = {
      "",                                 /* empty: no type */
      "28 64",                            /* status without type */
      "12 00",                            /* peer without type */
      "0a 00",                            /* type as LEN */
      "08 01 10 05",                      /* peer as varint */
      "08 02 28 64 2a 00",                /* status as LEN */
      "08 02 1d 00 00 00 00",             /* reservation as fixed32 */
      "08 02 21 00 00 00 00 00 00 00 00", /* limit as fixed64 */
      "08 01 12 7f 0a",                   /* peer longer than the message */
      "08 01 12 04 0a 05 41 42",          /* peer id longer than the peer */
      "08 01 12 02 0a",                   /* truncated inside peer */
      "08 01 12 02 08 01",                /* peer id as varint */
      "08 01 12 02 12 01",                /* peer addr past the end */
      "08 01 12 02 10 01",                /* peer addr as varint */
      "08 02 1a 02 08 ff",                /* truncated expire */
      "08 02 1a 02 0a 00",                /* expire as LEN */
      "08 02 1a 02 10 01",                /* reservation addr as varint */
      "08 02 1a 02 18 01",                /* voucher as varint */
      "08 02 22 02 0a 00",                /* duration as LEN */
      "08 02 22 02 12 00",                /* data as LEN */
      "08 02 22 06 08 80 80 80 80 10",    /* duration over 32 bits */
      "08 80 80 80 80 10",                /* type over 32 bits */
      "08 02 28 80 80 80 80 10",          /* status over 32 bits */
      "08 01 12 00 12 00",                /* peer twice */
      "08 02 22 00 22 00",                /* limit twice */
      "08 02 1a 00 1a 00",                /* reservation twice */
      "08",                               /* truncated type */
      "08 01 0b",                         /* group start (wire type 3) */
      "08 01 0c",                         /* group end (wire type 4) */
      "08 01 0e",                         /* wire type 6 */
      "00 01",                            /* field number 0 */
      "08 ff ff ff ff ff ff ff ff ff 01", /* 10-byte varint */
      "08 01 7a",                         /* LEN field without a length */
  };
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(bad); i++) {
    size_t n;
    uint8_t *b = hex(bad[i], &n);
    goop_hop_msg m;
    goop_stop_msg s;
    int rc = goop_hop_decode(b, n, &m);
    if (rc != GOOP_EPARSE)
      printf("# hop case %zu (%s): %d\n", i, bad[i], rc);
    CHECK_INT_EQ(rc, GOOP_EPARSE);
    /* The type and peer cases are malformed for Stop too. */
    if (i < 5 || (i >= 8 && i <= 13)) {
      rc = goop_stop_decode(b, n, &s);
      if (rc != GOOP_EPARSE)
        printf("# stop case %zu (%s): %d\n", i, bad[i], rc);
      CHECK_INT_EQ(rc, GOOP_EPARSE);
    }
    free(b);
  }

  /* A body over GOOP_RELAY_MSG_MAX is refused even if well formed. */
  uint8_t *big = calloc(1, GOOP_RELAY_MSG_MAX + 8);
  big[0] = 0x08;
  big[1] = 0x00;
  big[2] = 0x7a; /* field 15, LEN */
  big[3] = 0x80 | ((GOOP_RELAY_MSG_MAX + 1) & 0x7f);
  big[4] = (GOOP_RELAY_MSG_MAX + 1) >> 7;
  goop_hop_msg m;
  CHECK_INT_EQ(goop_hop_decode(big, 5 + GOOP_RELAY_MSG_MAX + 1, &m), GOOP_EPARSE);
  free(big);

  /* 17 addresses: 16 kept, one counted as dropped. */
  goop_buf body;
  goop_buf_init(&body, 0);
  CHECK_INT_EQ(goop_pb_put_varint(&body, 1, GOOP_HOP_CONNECT), 0);
  goop_buf peer;
  goop_buf_init(&peer, 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&peer, 1, "id", 2), 0);
  for (int i = 0; i < GOOP_RELAY_MAX_ADDRS + 1; i++)
    CHECK_INT_EQ(goop_pb_put_bytes(&peer, 2, &i, 1), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&body, 2, peer.data, peer.len), 0);
  CHECK_INT_EQ(goop_hop_decode(body.data, body.len, &m), 0);
  CHECK_INT_EQ(m.peer.n_addrs, GOOP_RELAY_MAX_ADDRS);
  CHECK_INT_EQ(m.peer.n_dropped, 1);
  goop_buf_free(&peer);
  goop_buf_free(&body);

  /* Unknown type and status values decode; the caller decides. */
  size_t n;
  uint8_t *b = hex("08 07 28 e7 07", &n);
  CHECK_INT_EQ(goop_hop_decode(b, n, &m), 0);
  CHECK(m.type == 7 && m.status == 999);
  CHECK_STR_EQ(goop_relay_status_name(m.status), "UNKNOWN");
  free(b);
  /* A repeated scalar: the last wins. */
  b = hex("08 00 08 01", &n);
  CHECK_INT_EQ(goop_hop_decode(b, n, &m), 0);
  CHECK_INT_EQ(m.type, GOOP_HOP_CONNECT);
  free(b);
}

static void test_stop(void) {
  goop_buf out;
  goop_buf_init(&out, 0);
  goop_stop_msg a = {.has_type = true, .type = GOOP_STOP_CONNECT};
  a.peer.present = true;
  a.peer.id = (goop_relay_bytes){(const uint8_t *)"A", 1};
  a.limit = (goop_relay_limit){.present = true, .duration = 60, .data = 1024};
  CHECK_INT_EQ(goop_stop_encode(&a, &out), 0);
  size_t n;
  uint8_t *b = hex("0e 08 00 12 03 0a 01 41 1a 05 08 3c 10 80 08", &n);
  CHECK(out.len == n && memcmp(out.data, b, n) == 0);
  free(b);
  goop_stop_msg d;
  CHECK_INT_EQ(goop_stop_decode(out.data + 1, out.len - 1, &d), 0);
  CHECK(d.has_type && d.type == GOOP_STOP_CONNECT && d.peer.present && bytes_eq(d.peer.id, "A", 1));
  CHECK(d.limit.present && d.limit.duration == 60 && d.limit.data == 1024 && !d.has_status);

  goop_buf_reset(&out);
  goop_stop_msg st = {.type = GOOP_STOP_STATUS, .has_status = true, .status = GOOP_RELAY_OK};
  CHECK_INT_EQ(goop_stop_encode(&st, &out), 0);
  CHECK(out.len == 5 && memcmp(out.data, "\x04\x08\x01\x20\x64", 5) == 0);
  CHECK_INT_EQ(goop_stop_decode(out.data + 1, out.len - 1, &d), 0);
  CHECK(d.type == GOOP_STOP_STATUS && d.has_status && d.status == GOOP_RELAY_OK && !d.peer.present);

  static const char *bad[] = {
      "20 64",          /* no type */
      "08 00 1a 01 08", /* truncated limit */
      "08 00 1a 00 1a 00",
      "08 01 20 80 80 80 80 10",
      "08 00 1a 02 08 80", /* truncated duration varint */
      "08 00 22 00",       /* status as LEN */
      "08 00 18 01",       /* limit as varint */
  };
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(bad); i++) {
    b = hex(bad[i], &n);
    int rc = goop_stop_decode(b, n, &d);
    if (rc != GOOP_EPARSE)
      printf("# stop case %zu (%s): %d\n", i, bad[i], rc);
    CHECK_INT_EQ(rc, GOOP_EPARSE);
    free(b);
  }
  goop_buf_free(&out);
}

static void test_holepunch(void) {
  goop_buf out;
  goop_buf_init(&out, 0);
  goop_holepunch_msg sync = {.has_type = true, .type = GOOP_HOLEPUNCH_SYNC};
  CHECK_INT_EQ(goop_holepunch_encode(&sync, &out), 0);
  CHECK(out.len == 4 && memcmp(out.data, "\x03\x08\xac\x02", 4) == 0);

  goop_buf_reset(&out);
  goop_holepunch_msg c = {.type = GOOP_HOLEPUNCH_CONNECT, .n_addrs = 2};
  c.addrs[0] = (goop_relay_bytes){(const uint8_t *)"\x04\xc0\x00\x02\x01\x06\x0f\xa1", 8};
  c.addrs[1] = (goop_relay_bytes){(const uint8_t *)"", 0};
  CHECK_INT_EQ(goop_holepunch_encode(&c, &out), 0);
  size_t n;
  uint8_t *b = hex("0e 08 64 12 08 04 c0 00 02 01 06 0f a1 12 00", &n);
  CHECK(out.len == n && memcmp(out.data, b, n) == 0);
  free(b);
  goop_holepunch_msg d;
  CHECK_INT_EQ(goop_holepunch_decode(out.data + 1, out.len - 1, &d), 0);
  CHECK(d.has_type && d.type == GOOP_HOLEPUNCH_CONNECT && d.n_addrs == 2 && d.n_dropped == 0);
  CHECK(bytes_eq(d.addrs[0], c.addrs[0].data, 8) && d.addrs[1].len == 0);

  /* 20 addresses: 16 kept. */
  goop_buf body;
  goop_buf_init(&body, 0);
  CHECK_INT_EQ(goop_pb_put_varint(&body, 1, GOOP_HOLEPUNCH_CONNECT), 0);
  for (int i = 0; i < 20; i++)
    CHECK_INT_EQ(goop_pb_put_bytes(&body, 2, "ab", 2), 0);
  CHECK_INT_EQ(goop_holepunch_decode(body.data, body.len, &d), 0);
  CHECK(d.n_addrs == GOOP_RELAY_MAX_ADDRS && d.n_dropped == 4);
  goop_buf_free(&body);

  static const char *bad[] = {"", "12 00", "0a 00", "08 64 10 01", "08 64 12 05 00", "08 ac", "08 64 13"};
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(bad); i++) {
    b = hex(bad[i], &n);
    CHECK_INT_EQ(goop_holepunch_decode(b, n, &d), GOOP_EPARSE);
    free(b);
  }
  c.n_addrs = GOOP_RELAY_MAX_ADDRS + 1;
  CHECK_INT_EQ(goop_holepunch_encode(&c, &out), GOOP_EINVAL);
  goop_buf_free(&out);
}

static void test_status_names(void) {
  CHECK_STR_EQ(goop_relay_status_name(GOOP_RELAY_OK), "OK");
  CHECK_STR_EQ(goop_relay_status_name(0), "UNUSED");
  CHECK_STR_EQ(goop_relay_status_name(200), "RESERVATION_REFUSED");
  CHECK_STR_EQ(goop_relay_status_name(201), "RESOURCE_LIMIT_EXCEEDED");
  CHECK_STR_EQ(goop_relay_status_name(202), "PERMISSION_DENIED");
  CHECK_STR_EQ(goop_relay_status_name(203), "CONNECTION_FAILED");
  CHECK_STR_EQ(goop_relay_status_name(204), "NO_RESERVATION");
  CHECK_STR_EQ(goop_relay_status_name(400), "MALFORMED_MESSAGE");
  CHECK_STR_EQ(goop_relay_status_name(401), "UNEXPECTED_MESSAGE");
  CHECK_STR_EQ(goop_relay_status_name(101), "UNKNOWN");
}

/* A voucher-like envelope with a hand-built payload. */
static int seal_custom(const goop_identity *key, const char *domain, const char *type,
                       const goop_peer_id *relay, const goop_peer_id *peer, goop_buf *out) {
  goop_buf p;
  goop_buf_init(&p, 0);
  if (relay)
    (void)goop_pb_put_bytes(&p, 1, relay->bytes, relay->len);
  if (peer)
    (void)goop_pb_put_bytes(&p, 2, peer->bytes, peer->len);
  (void)goop_pb_put_varint(&p, 3, 77);
  int rc = goop_envelope_seal(key, domain, (const uint8_t *)type, 2, p.data, p.len, out);
  goop_buf_free(&p);
  return rc;
}

static void test_voucher(void) {
  goop_identity *relay = NULL, *peer = NULL, *other = NULL;
  CHECK_INT_EQ(goop_identity_generate(&relay), 0);
  CHECK_INT_EQ(goop_identity_generate(&peer), 0);
  CHECK_INT_EQ(goop_identity_generate(&other), 0);
  if (!relay || !peer || !other)
    return;
  goop_peer_id rid, pid, oid;
  goop_identity_peer_id(relay, &rid);
  goop_identity_peer_id(peer, &pid);
  goop_identity_peer_id(other, &oid);

  goop_buf v;
  goop_buf_init(&v, 0);
  CHECK_INT_EQ(goop_relay_voucher_seal(relay, &pid, 1790000000, &v), 0);
  uint64_t exp = 0;
  CHECK_INT_EQ(goop_relay_voucher_open(v.data, v.len, &rid, &pid, &exp), 0);
  CHECK_INT_EQ(exp, 1790000000);
  CHECK_INT_EQ(goop_relay_voucher_open(v.data, v.len, &rid, &pid, NULL), 0);
  /* The envelope carries the domain's payload type and Voucher fields. */
  goop_envelope e;
  CHECK_INT_EQ(goop_envelope_open(v.data, v.len, GOOP_RELAY_VOUCHER_DOMAIN, &e), 0);
  CHECK(e.payload_type_len == 2 && memcmp(e.payload_type, "\x03\x02", 2) == 0);
  CHECK(e.payload_len > 2 && e.payload[0] == 0x0a && e.payload[1] == rid.len);

  /* For another peer; checked against another relay. */
  CHECK_INT_EQ(goop_relay_voucher_open(v.data, v.len, &rid, &oid, NULL), GOOP_EPEERID);
  CHECK_INT_EQ(goop_relay_voucher_open(v.data, v.len, &oid, &pid, NULL), GOOP_EPEERID);
  /* Tampered signature or payload. */
  goop_buf t;
  goop_buf_init(&t, 0);
  CHECK_INT_EQ(goop_buf_append(&t, v.data, v.len), 0);
  t.data[t.len - 1] ^= 1;
  CHECK_INT_EQ(goop_relay_voucher_open(t.data, t.len, &rid, &pid, NULL), GOOP_EBADSIG);
  /* Garbage, empty, truncated. */
  CHECK_INT_EQ(goop_relay_voucher_open((const uint8_t *)"\xde\xad", 2, &rid, &pid, NULL), GOOP_EPARSE);
  CHECK_INT_EQ(goop_relay_voucher_open(NULL, 0, &rid, &pid, NULL), GOOP_EPARSE);
  CHECK_INT_EQ(goop_relay_voucher_open(v.data, v.len - 3, &rid, &pid, NULL), GOOP_EPARSE);

  /* Signed by someone else, though it names the relay. */
  goop_buf_reset(&t);
  CHECK_INT_EQ(seal_custom(other, GOOP_RELAY_VOUCHER_DOMAIN, "\x03\x02", &rid, &pid, &t), 0);
  CHECK_INT_EQ(goop_relay_voucher_open(t.data, t.len, &rid, &pid, NULL), GOOP_EPEERID);
  /* Signed by the relay but naming another relay. */
  goop_buf_reset(&t);
  CHECK_INT_EQ(seal_custom(relay, GOOP_RELAY_VOUCHER_DOMAIN, "\x03\x02", &oid, &pid, &t), 0);
  CHECK_INT_EQ(goop_relay_voucher_open(t.data, t.len, &rid, &pid, NULL), GOOP_EPEERID);
  /* Wrong payload type (a peer record's). */
  goop_buf_reset(&t);
  CHECK_INT_EQ(seal_custom(relay, GOOP_RELAY_VOUCHER_DOMAIN, "\x03\x01", &rid, &pid, &t), 0);
  CHECK_INT_EQ(goop_relay_voucher_open(t.data, t.len, &rid, &pid, NULL), GOOP_EPROTO);
  /* Wrong domain: the signature does not verify under ours. */
  goop_buf_reset(&t);
  CHECK_INT_EQ(seal_custom(relay, GOOP_PEER_RECORD_DOMAIN, "\x03\x02", &rid, &pid, &t), 0);
  CHECK_INT_EQ(goop_relay_voucher_open(t.data, t.len, &rid, &pid, NULL), GOOP_EBADSIG);
  /* Missing relay or peer field. */
  goop_buf_reset(&t);
  CHECK_INT_EQ(seal_custom(relay, GOOP_RELAY_VOUCHER_DOMAIN, "\x03\x02", &rid, NULL, &t), 0);
  CHECK_INT_EQ(goop_relay_voucher_open(t.data, t.len, &rid, &pid, NULL), GOOP_EPARSE);
  goop_buf_reset(&t);
  CHECK_INT_EQ(seal_custom(relay, GOOP_RELAY_VOUCHER_DOMAIN, "\x03\x02", NULL, &pid, &t), 0);
  CHECK_INT_EQ(goop_relay_voucher_open(t.data, t.len, &rid, &pid, NULL), GOOP_EPARSE);
  /* Malformed payload inside a valid signature. */
  goop_buf_reset(&t);
  CHECK_INT_EQ(goop_envelope_seal(relay, GOOP_RELAY_VOUCHER_DOMAIN, (const uint8_t *)"\x03\x02", 2,
                                  (const uint8_t *)"\x0a\x05\x01", 3, &t),
               0);
  CHECK_INT_EQ(goop_relay_voucher_open(t.data, t.len, &rid, &pid, NULL), GOOP_EPARSE);
  goop_buf_reset(&t);
  CHECK_INT_EQ(goop_envelope_seal(relay, GOOP_RELAY_VOUCHER_DOMAIN, (const uint8_t *)"\x03\x02", 2,
                                  (const uint8_t *)"\x08\x01", 2, &t),
               0);
  CHECK_INT_EQ(goop_relay_voucher_open(t.data, t.len, &rid, &pid, NULL), GOOP_EPARSE); /* relay as varint */

  /* The voucher fits a reservation inside a hop message. */
  goop_hop_msg m = {.type = GOOP_HOP_STATUS, .has_status = true, .status = GOOP_RELAY_OK};
  m.reservation = (goop_relay_rsvp){.present = true, .expire = 1790000000, .voucher = {v.data, v.len}};
  goop_buf out;
  goop_buf_init(&out, 0);
  CHECK_INT_EQ(goop_hop_encode(&m, &out), 0);
  goop_hop_msg d;
  CHECK_INT_EQ(goop_hop_decode(out.data + 2, out.len - 2, &d), 0); /* 2-byte prefix */
  CHECK_INT_EQ(
      goop_relay_voucher_open(d.reservation.voucher.data, d.reservation.voucher.len, &rid, &pid, &exp), 0);

  goop_buf_free(&out);
  goop_buf_free(&t);
  goop_buf_free(&v);
  goop_identity_free(relay);
  goop_identity_free(peer);
  goop_identity_free(other);
}

int main(void) {
  RUN(test_frame_take);
  RUN(test_hop_vectors);
  RUN(test_hop_round_trip);
  RUN(test_hop_malformed);
  RUN(test_stop);
  RUN(test_holepunch);
  RUN(test_status_names);
  RUN(test_voucher);
  return tap_done();
}
