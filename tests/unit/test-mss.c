/* multistream-select 1.0 negotiation, in memory. */
#include <stdbool.h>
#include <string.h>

#include "../../libgoop/common/internal.h"
#include "buf.h"
#include "mss.h"
#include "tap.h"

static const char HDR_HEX[] = "13 2f6d756c746973747265616d2f312e302e30 0a";

static bool serves_noise_and_yamux(const char *proto, void *ud) {
  int *calls = ud;
  (*calls)++;
  return strcmp(proto, "/noise") == 0 || strcmp(proto, "/yamux/1.0.0") == 0;
}

static bool serves_all(const char *proto, void *ud) {
  (void)proto;
  (void)ud;
  return true;
}

static bool serves_none(const char *proto, void *ud) {
  (void)proto;
  (void)ud;
  return false;
}

/* Move everything |from| wants to send into |to|'s feed. */
static int pass(goop_mss *from, goop_mss *to, size_t *consumed) {
  goop_buf *o = goop_mss_output(from);
  int rc = goop_mss_feed(to, o->data, o->len, consumed);
  goop_buf_consume(o, o->len);
  return rc;
}

static bool out_is_hex(goop_mss *m, const char *hex) {
  size_t n;
  uint8_t *want = tap_unhex(hex, &n);
  goop_buf *o = goop_mss_output(m);
  bool ok = o->len == n && memcmp(o->data, want, n) == 0;
  if (!ok) {
    printf("#   output:");
    for (size_t i = 0; i < o->len; i++)
      printf(" %02x", o->data[i]);
    printf("\n");
  }
  free(want);
  return ok;
}

static void test_message_bytes(void) {
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_mss_write_msg(&b, "na"), 0);
  CHECK_INT_EQ(b.len, 4);
  CHECK_MEM_EQ(b.data, "\x03na\n", 4);
  goop_buf_reset(&b);
  CHECK_INT_EQ(goop_mss_write_msg(&b, "ls"), 0);
  CHECK_MEM_EQ(b.data, "\x03ls\n", 4);
  goop_buf_reset(&b);
  CHECK_INT_EQ(goop_mss_write_msg(&b, GOOP_MSS_PROTOCOL_ID), 0);
  size_t n;
  uint8_t *want = tap_unhex(HDR_HEX, &n);
  CHECK_INT_EQ(b.len, n);
  CHECK_MEM_EQ(b.data, want, n);
  free(want);
  CHECK_INT_EQ(goop_mss_write_msg(&b, ""), GOOP_EINVAL);
  CHECK_INT_EQ(goop_mss_write_msg(&b, "a\nb"), GOOP_EINVAL);
  goop_buf_free(&b);
}

static void test_normal(void) {
  const char *protos[] = {"/noise"};
  goop_mss *i = NULL, *r = NULL;
  int calls = 0;
  size_t used;
  CHECK_INT_EQ(goop_mss_new_initiator(protos, 1, false, &i), 0);
  CHECK_INT_EQ(goop_mss_new_responder(serves_noise_and_yamux, &calls, &r), 0);
  CHECK(!goop_mss_can_send(i));
  /* Header and proposal in one output. */
  CHECK(out_is_hex(i, "132f6d756c746973747265616d2f312e302e300a 072f6e6f6973650a"));
  CHECK(goop_mss_output(r)->len == 0);

  CHECK_INT_EQ(pass(i, r, &used), GOOP_MSS_DONE);
  CHECK_INT_EQ(used, 20 + 8);
  CHECK_INT_EQ(calls, 1);
  /* Header and echo in one output. */
  CHECK(out_is_hex(r, "132f6d756c746973747265616d2f312e302e300a 072f6e6f6973650a"));
  CHECK_INT_EQ(pass(r, i, &used), GOOP_MSS_DONE);
  CHECK_INT_EQ(used, 28);

  const char *sel = NULL;
  size_t idx = 99;
  CHECK_INT_EQ(goop_mss_selected(i, &sel, &idx), 0);
  CHECK_STR_EQ(sel, "/noise");
  CHECK_INT_EQ(idx, 0);
  CHECK_INT_EQ(goop_mss_selected(r, &sel, &idx), 0);
  CHECK_STR_EQ(sel, "/noise");
  CHECK(idx == GOOP_MSS_NO_INDEX);
  CHECK(goop_mss_is_done(i) && goop_mss_is_done(r));
  CHECK(goop_mss_can_send(i) && goop_mss_can_send(r));
  /* Feeding after DONE consumes nothing. */
  CHECK_INT_EQ(goop_mss_feed(r, (const uint8_t *)"xyz", 3, &used), GOOP_MSS_DONE);
  CHECK_INT_EQ(used, 0);
  goop_mss_free(i);
  goop_mss_free(r);
}

static void test_na_fallback(void) {
  const char *protos[] = {"/tls/1.0.0", "/noise"};
  const char *served[] = {"/yamux/1.0.0", "/noise"};
  goop_mss *i = NULL, *r = NULL;
  size_t used;
  CHECK_INT_EQ(goop_mss_new_initiator(protos, 2, false, &i), 0);
  CHECK_INT_EQ(goop_mss_new_responder_list(served, 2, &r), 0);
  CHECK_INT_EQ(pass(i, r, &used), GOOP_MSS_NEED_MORE);
  /* Header + na together. */
  CHECK(out_is_hex(r, "132f6d756c746973747265616d2f312e302e300a 036e610a"));
  CHECK_INT_EQ(pass(r, i, &used), GOOP_MSS_NEED_MORE);
  CHECK(out_is_hex(i, "072f6e6f6973650a"));
  CHECK_INT_EQ(pass(i, r, &used), GOOP_MSS_DONE);
  CHECK(out_is_hex(r, "072f6e6f6973650a"));
  CHECK_INT_EQ(pass(r, i, &used), GOOP_MSS_DONE);
  const char *sel;
  size_t idx;
  CHECK_INT_EQ(goop_mss_selected(i, &sel, &idx), 0);
  CHECK_STR_EQ(sel, "/noise");
  CHECK_INT_EQ(idx, 1);
  CHECK_INT_EQ(goop_mss_selected(r, &sel, &idx), 0);
  CHECK_STR_EQ(sel, "/noise");
  CHECK_INT_EQ(idx, 1);
  goop_mss_free(i);
  goop_mss_free(r);
}

static void test_all_na(void) {
  const char *protos[] = {"/a", "/b", "/c"};
  goop_mss *i = NULL, *r = NULL;
  size_t used;
  CHECK_INT_EQ(goop_mss_new_initiator(protos, 3, false, &i), 0);
  CHECK_INT_EQ(goop_mss_new_responder(serves_none, NULL, &r), 0);
  int rc = 0;
  for (int round = 0; round < 3; round++) {
    CHECK_INT_EQ(pass(i, r, &used), GOOP_MSS_NEED_MORE);
    rc = pass(r, i, &used);
  }
  CHECK_INT_EQ(rc, GOOP_ENEGOTIATION);
  CHECK(goop_mss_rejected(i));
  CHECK(!goop_mss_can_send(i));
  CHECK_INT_EQ(goop_mss_selected(i, NULL, NULL), GOOP_ESTATE);
  /* Sticky. */
  CHECK_INT_EQ(goop_mss_feed(i, (const uint8_t *)"\x03na\n", 4, &used), GOOP_ENEGOTIATION);
  goop_mss_free(i);
  goop_mss_free(r);
}

static void test_lazy(void) {
  const char *protos[] = {"/ipfs/ping/1.0.0"};
  const char *served[] = {"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"};
  goop_mss *i = NULL, *r = NULL;
  size_t used;
  CHECK_INT_EQ(goop_mss_new_initiator(protos, 1, true, &i), 0);
  CHECK_INT_EQ(goop_mss_new_responder_list(served, 2, &r), 0);
  CHECK(goop_mss_can_send(i));

  /* Initiator writes negotiation and application data in one go. */
  goop_buf wire;
  goop_buf_init(&wire, 0);
  goop_buf *o = goop_mss_output(i);
  size_t neg_len = o->len;
  CHECK_INT_EQ(goop_buf_append(&wire, o->data, o->len), 0);
  goop_buf_consume(o, o->len);
  CHECK_INT_EQ(goop_buf_append(&wire, "APPDATA-from-initiator", 22), 0);

  CHECK_INT_EQ(goop_mss_feed(r, wire.data, wire.len, &used), GOOP_MSS_DONE);
  CHECK_INT_EQ(used, neg_len);
  CHECK_MEM_EQ(wire.data + used, "APPDATA-from-initiator", 22);

  /* Responder answers and immediately writes its own data. */
  goop_buf_reset(&wire);
  o = goop_mss_output(r);
  size_t reply_len = o->len;
  CHECK_INT_EQ(goop_buf_append(&wire, o->data, o->len), 0);
  goop_buf_consume(o, o->len);
  CHECK_INT_EQ(goop_buf_append(&wire, "pong!", 5), 0);
  CHECK_INT_EQ(goop_mss_feed(i, wire.data, wire.len, &used), GOOP_MSS_DONE);
  CHECK_INT_EQ(used, reply_len);
  CHECK_MEM_EQ(wire.data + used, "pong!", 5);
  CHECK(goop_mss_output(i)->len == 0);
  goop_buf_free(&wire);
  goop_mss_free(i);
  goop_mss_free(r);
}

static void test_lazy_rejected(void) {
  const char *protos[] = {"/x/1", "/never-proposed"};
  goop_mss *i = NULL, *r = NULL;
  size_t used;
  CHECK_INT_EQ(goop_mss_new_initiator(protos, 2, true, &i), 0);
  CHECK_INT_EQ(goop_mss_new_responder(serves_none, NULL, &r), 0);
  CHECK_INT_EQ(pass(i, r, &used), GOOP_MSS_NEED_MORE);
  CHECK_INT_EQ(pass(r, i, &used), GOOP_ENEGOTIATION);
  CHECK(goop_mss_rejected(i));
  CHECK(!goop_mss_can_send(i));
  CHECK(goop_mss_output(i)->len == 0); /* no second proposal */
  goop_mss_free(i);
  goop_mss_free(r);
}

/* Feed a stream one byte at a time; DONE must come at the last negotiation byte. */
static void test_one_byte_feeding(void) {
  const char *protos[] = {"/tls/1.0.0", "/yamux/1.0.0"};
  goop_mss *i = NULL, *r = NULL;
  int calls = 0;
  size_t used;
  CHECK_INT_EQ(goop_mss_new_initiator(protos, 2, false, &i), 0);
  CHECK_INT_EQ(goop_mss_new_responder(serves_noise_and_yamux, &calls, &r), 0);

  goop_buf wire;
  goop_buf_init(&wire, 0);
  int rc = GOOP_MSS_NEED_MORE;
  int rounds = 0;
  while ((!goop_mss_is_done(i) || !goop_mss_is_done(r)) && rounds++ < 10) {
    /* initiator -> responder, byte by byte, with trailing app data. */
    goop_mss *pairs[2][2] = {{i, r}, {r, i}};
    for (int d = 0; d < 2; d++) {
      goop_mss *from = pairs[d][0], *to = pairs[d][1];
      goop_buf *o = goop_mss_output(from);
      goop_buf_reset(&wire);
      CHECK_INT_EQ(goop_buf_append(&wire, o->data, o->len), 0);
      size_t neg = o->len;
      goop_buf_consume(o, o->len);
      if (goop_mss_is_done(from))
        CHECK_INT_EQ(goop_buf_append(&wire, "DATA", 4), 0);
      size_t fed = 0;
      for (size_t k = 0; k < wire.len && !goop_mss_is_done(to); k++) {
        rc = goop_mss_feed(to, wire.data + k, 1, &used);
        CHECK(rc >= 0);
        if (rc < 0)
          goto out;
        CHECK_INT_EQ(used, 1);
        fed++;
      }
      if (goop_mss_is_done(to) && neg > 0) {
        CHECK_INT_EQ(fed, neg);
        if (goop_mss_is_done(from))
          CHECK_MEM_EQ(wire.data + fed, "DATA", 4);
      }
    }
  }
  CHECK(goop_mss_is_done(i) && goop_mss_is_done(r));
  const char *sel;
  CHECK_INT_EQ(goop_mss_selected(i, &sel, NULL), 0);
  CHECK_STR_EQ(sel, "/yamux/1.0.0");
out:
  goop_buf_free(&wire);
  goop_mss_free(i);
  goop_mss_free(r);
}

static void test_special_proposals(void) {
  goop_mss *r = NULL;
  size_t used;
  CHECK_INT_EQ(goop_mss_new_responder(serves_all, NULL, &r), 0);
  goop_buf in;
  goop_buf_init(&in, 0);
  CHECK_INT_EQ(goop_mss_write_msg(&in, GOOP_MSS_PROTOCOL_ID), 0);
  CHECK_INT_EQ(goop_mss_write_msg(&in, "ls"), 0);
  CHECK_INT_EQ(goop_mss_write_msg(&in, "/libp2p/simultaneous-connect"), 0);
  CHECK_INT_EQ(goop_mss_feed(r, in.data, in.len, &used), GOOP_MSS_NEED_MORE);
  CHECK_INT_EQ(used, in.len);
  CHECK(out_is_hex(r, "132f6d756c746973747265616d2f312e302e300a 036e610a 036e610a"));
  goop_mss_free(r);

  /* Header alone: our header is queued right away. */
  CHECK_INT_EQ(goop_mss_new_responder(serves_all, NULL, &r), 0);
  CHECK_INT_EQ(goop_mss_feed(r, in.data, 20, &used), GOOP_MSS_NEED_MORE);
  CHECK(out_is_hex(r, HDR_HEX));
  goop_mss_free(r);

  /* A 1024-byte message (1023 chars + '\n') is the largest accepted. */
  char big[1024];
  memset(big, 'p', 1023);
  big[0] = '/';
  big[1023] = '\0';
  CHECK_INT_EQ(goop_mss_new_responder(serves_all, NULL, &r), 0);
  goop_buf_reset(&in);
  CHECK_INT_EQ(goop_mss_write_msg(&in, GOOP_MSS_PROTOCOL_ID), 0);
  CHECK_INT_EQ(goop_mss_write_msg(&in, big), 0);
  CHECK_INT_EQ(goop_mss_feed(r, in.data, in.len, &used), GOOP_MSS_DONE);
  const char *sel;
  CHECK_INT_EQ(goop_mss_selected(r, &sel, NULL), 0);
  CHECK(sel && strlen(sel) == 1023);
  goop_mss_free(r);
  goop_buf_free(&in);
}

/* Responder fed |hex|: expect |want| and that nothing crashes. */
static int feed_responder_hex(const char *hex) {
  goop_mss *r = NULL;
  size_t n, used;
  if (goop_mss_new_responder(serves_all, NULL, &r))
    return 12345;
  uint8_t *b = tap_unhex(hex, &n);
  int rc = goop_mss_feed(r, b, n, &used);
  free(b);
  goop_mss_free(r);
  return rc;
}

static void test_hostile(void) {
  /* Wrong header. */
  CHECK_INT_EQ(feed_responder_hex("13 2f6d756c746973747265616d2f322e302e30 0a"), GOOP_EPROTO);
  /* A proposal instead of the header. */
  CHECK_INT_EQ(feed_responder_hex("07 2f6e6f6973650a"), GOOP_EPROTO);
  /* Header without its newline. */
  CHECK_INT_EQ(feed_responder_hex("13 2f6d756c746973747265616d2f312e302e30 20"), GOOP_EPARSE);
  /* Zero-length message. */
  CHECK_INT_EQ(feed_responder_hex("00"), GOOP_EPARSE);
  /* Just a newline. */
  CHECK_INT_EQ(feed_responder_hex("01 0a"), GOOP_EPARSE);
  /* Longer than 1024: 1025 = 81 08, rejected on the prefix alone. */
  CHECK_INT_EQ(feed_responder_hex("81 08"), GOOP_EMSGSIZE);
  CHECK_INT_EQ(feed_responder_hex("ff ff 03"), GOOP_EMSGSIZE);
  /* Junk varints: non-minimal, over-long. */
  CHECK_INT_EQ(feed_responder_hex("80 00"), GOOP_EPARSE);
  CHECK_INT_EQ(feed_responder_hex("ff ff ff ff ff ff ff ff ff ff"), GOOP_EPARSE);
  /* NUL inside the header. */
  CHECK_INT_EQ(feed_responder_hex("13 2f6d756c746973747265616d2f312e302e00 0a"), GOOP_EPROTO);
  /* Incomplete is not an error. */
  CHECK_INT_EQ(feed_responder_hex("13 2f6d75"), GOOP_MSS_NEED_MORE);

  /* Junk varint split over feeds. */
  goop_mss *r = NULL;
  size_t used;
  CHECK_INT_EQ(goop_mss_new_responder(serves_all, NULL, &r), 0);
  for (int k = 0; k < 8; k++)
    CHECK_INT_EQ(goop_mss_feed(r, (const uint8_t *)"\xff", 1, &used), GOOP_MSS_NEED_MORE);
  CHECK_INT_EQ(goop_mss_feed(r, (const uint8_t *)"\xff", 1, &used), GOOP_EPARSE);
  CHECK_INT_EQ(goop_mss_feed(r, (const uint8_t *)"\x01", 1, &used), GOOP_EPARSE); /* sticky */
  goop_mss_free(r);

  /* 33 proposals: 32 "na", then the responder gives up. */
  CHECK_INT_EQ(goop_mss_new_responder(serves_none, NULL, &r), 0);
  goop_buf in;
  goop_buf_init(&in, 0);
  CHECK_INT_EQ(goop_mss_write_msg(&in, GOOP_MSS_PROTOCOL_ID), 0);
  for (int k = 0; k < 32; k++)
    CHECK_INT_EQ(goop_mss_write_msg(&in, "/nope"), 0);
  CHECK_INT_EQ(goop_mss_feed(r, in.data, in.len, &used), GOOP_MSS_NEED_MORE);
  CHECK_INT_EQ(goop_mss_output(r)->len, 20 + 32 * 4);
  goop_buf_reset(&in);
  CHECK_INT_EQ(goop_mss_write_msg(&in, "/nope"), 0);
  CHECK_INT_EQ(goop_mss_feed(r, in.data, in.len, &used), GOOP_ELIMIT);
  goop_mss_free(r);

  /* Initiator: unexpected reply, wrong header. */
  const char *protos[] = {"/noise"};
  goop_mss *i = NULL;
  CHECK_INT_EQ(goop_mss_new_initiator(protos, 1, false, &i), 0);
  goop_buf_reset(&in);
  CHECK_INT_EQ(goop_mss_write_msg(&in, GOOP_MSS_PROTOCOL_ID), 0);
  CHECK_INT_EQ(goop_mss_write_msg(&in, "/yamux/1.0.0"), 0);
  CHECK_INT_EQ(goop_mss_feed(i, in.data, in.len, &used), GOOP_EPROTO);
  goop_mss_free(i);
  CHECK_INT_EQ(goop_mss_new_initiator(protos, 1, false, &i), 0);
  CHECK_INT_EQ(goop_mss_feed(i, (const uint8_t *)"\x07/noise\n", 8, &used), GOOP_EPROTO);
  goop_mss_free(i);
  goop_buf_free(&in);

  /* Bad arguments. */
  const char *bad[] = {"/ok", "has\nnewline"};
  CHECK_INT_EQ(goop_mss_new_initiator(bad, 2, false, &i), GOOP_EINVAL);
  CHECK_INT_EQ(goop_mss_new_initiator(bad, 0, false, &i), GOOP_EINVAL);
  const char *many[33];
  for (int k = 0; k < 33; k++)
    many[k] = "/p";
  CHECK_INT_EQ(goop_mss_new_initiator(many, 33, false, &i), GOOP_EINVAL);
}

int main(void) {
  RUN(test_message_bytes);
  RUN(test_normal);
  RUN(test_na_fallback);
  RUN(test_all_na);
  RUN(test_lazy);
  RUN(test_lazy_rejected);
  RUN(test_one_byte_feeding);
  RUN(test_special_proposals);
  RUN(test_hostile);
  return tap_done();
}
