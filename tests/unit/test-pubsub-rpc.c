/* GossipSub RPC protobuf: round trips, unknown fields, limits and malformed input. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../libgoop/common/internal.h"
#include "buf.h"
#include "proto.h"
#include "pubsub/rpc.h"
#include "tap.h"
#include "varint.h"

#define B(s) ((goop_rpc_bytes){(const uint8_t *)(s), sizeof(s) - 1})

static bool bytes_eq(goop_rpc_bytes a, const char *s) {
  return a.len == strlen(s) && memcmp(a.p, s, a.len) == 0;
}

static void test_roundtrip(void) {
  struct goop_rpc_sub subs[2] = {{true, B("alpha")}, {false, B("beta")}};
  struct goop_rpc_message msgs[2] = {
      {GOOP_RPC_HAS_FROM | GOOP_RPC_HAS_DATA | GOOP_RPC_HAS_SEQNO | GOOP_RPC_HAS_TOPIC |
           GOOP_RPC_HAS_SIGNATURE,
       B("FROM"),
       B("hello"),
       B("\x00\x00\x00\x00\x00\x00\x00\x01"),
       B("alpha"),
       B("SIG"),
       {NULL, 0}},
      {GOOP_RPC_HAS_DATA | GOOP_RPC_HAS_TOPIC | GOOP_RPC_HAS_KEY,
       {NULL, 0},
       {NULL, 0},
       {NULL, 0},
       B("beta"),
       {NULL, 0},
       B("KEY")},
  };
  goop_rpc_bytes ids[3] = {B("id1"), B("id2"), B("id3")};
  struct goop_rpc_ihave ih[2] = {{B("alpha"), 0, 2}, {B("beta"), 2, 1}};
  goop_rpc_bytes want[2] = {B("w1"), B("w2")};
  goop_rpc_bytes graft[1] = {B("alpha")};
  struct goop_rpc_prune prune[2] = {{B("beta"), true, 60}, {B("gamma"), false, 0}};
  struct goop_rpc in = {subs, 2, msgs, 2, ih, 2, ids, 3, want, 2, graft, 1, prune, 2};
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_rpc_encode(&in, &b), 0);

  struct goop_rpc out;
  CHECK_INT_EQ(goop_rpc_decode(b.data, b.len, &out), 0);
  CHECK_INT_EQ(out.n_subs, 2);
  CHECK(out.subs[0].subscribe && bytes_eq(out.subs[0].topic, "alpha"));
  CHECK(!out.subs[1].subscribe && bytes_eq(out.subs[1].topic, "beta"));
  CHECK_INT_EQ(out.n_msgs, 2);
  CHECK_INT_EQ(out.msgs[0].has, msgs[0].has);
  CHECK(bytes_eq(out.msgs[0].from, "FROM") && bytes_eq(out.msgs[0].data, "hello"));
  CHECK(out.msgs[0].seqno.len == 8 && out.msgs[0].seqno.p[7] == 1);
  CHECK(bytes_eq(out.msgs[0].topic, "alpha") && bytes_eq(out.msgs[0].signature, "SIG"));
  /* Empty but present data is kept as present. */
  CHECK_INT_EQ(out.msgs[1].has, GOOP_RPC_HAS_DATA | GOOP_RPC_HAS_TOPIC | GOOP_RPC_HAS_KEY);
  CHECK_INT_EQ(out.msgs[1].data.len, 0);
  CHECK(bytes_eq(out.msgs[1].key, "KEY"));
  CHECK_INT_EQ(out.n_ihave, 2);
  CHECK(bytes_eq(out.ihave[0].topic, "alpha") && out.ihave[0].n_ids == 2);
  CHECK(bytes_eq(out.ihave_ids[out.ihave[0].first_id + 1], "id2"));
  CHECK(bytes_eq(out.ihave[1].topic, "beta") && out.ihave[1].n_ids == 1);
  CHECK(bytes_eq(out.ihave_ids[out.ihave[1].first_id], "id3"));
  CHECK_INT_EQ(out.n_iwant_ids, 2);
  CHECK(bytes_eq(out.iwant_ids[1], "w2"));
  CHECK_INT_EQ(out.n_graft, 1);
  CHECK(bytes_eq(out.graft[0], "alpha"));
  CHECK_INT_EQ(out.n_prune, 2);
  CHECK(out.prune[0].has_backoff && out.prune[0].backoff == 60 && bytes_eq(out.prune[0].topic, "beta"));
  CHECK(!out.prune[1].has_backoff && bytes_eq(out.prune[1].topic, "gamma"));

  /* Re-encoding the decoded RPC gives the same bytes (canonical order). */
  goop_buf b2;
  goop_buf_init(&b2, 0);
  CHECK_INT_EQ(goop_rpc_encode(&out, &b2), 0);
  CHECK(b2.len == b.len && memcmp(b2.data, b.data, b.len) == 0);
  goop_rpc_clear(&out);
  goop_buf_free(&b);
  goop_buf_free(&b2);

  /* Empty RPC. */
  CHECK_INT_EQ(goop_rpc_decode(NULL, 0, &out), 0);
  CHECK_INT_EQ(out.n_subs + out.n_msgs + out.n_ihave + out.n_graft, 0);
  goop_rpc_clear(&out);
}

static void test_signed_part(void) {
  struct goop_rpc_message m = {GOOP_RPC_HAS_FROM | GOOP_RPC_HAS_DATA | GOOP_RPC_HAS_SEQNO |
                                   GOOP_RPC_HAS_TOPIC | GOOP_RPC_HAS_SIGNATURE | GOOP_RPC_HAS_KEY,
                               B("F"),
                               B("D"),
                               B("S"),
                               B("T"),
                               B("SIG"),
                               B("K")};
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_rpc_encode_signed_part(&m, &b), 0);
  const uint8_t want[] = {0x0a, 1, 'F', 0x12, 1, 'D', 0x1a, 1, 'S', 0x22, 1, 'T'};
  CHECK(b.len == sizeof(want) && memcmp(b.data, want, sizeof(want)) == 0);
  goop_buf_reset(&b);
  CHECK_INT_EQ(goop_rpc_encode_message(&m, &b), 0);
  CHECK_INT_EQ(b.len, sizeof(want) + 5 + 3);
  goop_buf_free(&b);
}

static void test_unknown_and_merge(void) {
  goop_buf b, c;
  goop_buf_init(&b, 0);
  goop_buf_init(&c, 0);
  /* Unknown top-level fields of every wire type. */
  CHECK_INT_EQ(goop_pb_put_varint(&b, 99, 7), 0);
  CHECK_INT_EQ(goop_pb_put_fixed64(&b, 100, 7), 0);
  CHECK_INT_EQ(goop_pb_put_fixed32(&b, 6492434, 7), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&b, 101, "xx", 2), 0);
  /* Two control fields, each with a GRAFT, plus IDONTWANT and an extension field. */
  CHECK_INT_EQ(goop_pb_put_bytes(&c, 1, "t1", 2), 0);
  goop_buf ctl;
  goop_buf_init(&ctl, 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&ctl, 3, c.data, c.len), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&ctl, 5, "\x0a\x01x", 3), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&ctl, 6, "", 0), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&b, 3, ctl.data, ctl.len), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&b, 3, ctl.data, ctl.len), 0);
  /* Subscription with partial-message extension fields 3 and 4. */
  goop_buf_reset(&c);
  CHECK_INT_EQ(goop_pb_put_bool(&c, 1, true), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&c, 2, "t", 1), 0);
  CHECK_INT_EQ(goop_pb_put_bool(&c, 3, true), 0);
  CHECK_INT_EQ(goop_pb_put_bool(&c, 4, true), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&b, 1, c.data, c.len), 0);
  struct goop_rpc r;
  CHECK_INT_EQ(goop_rpc_decode(b.data, b.len, &r), 0);
  CHECK_INT_EQ(r.n_graft, 2);
  CHECK_INT_EQ(r.n_subs, 1);
  CHECK(r.n_subs == 1 && r.subs[0].subscribe && bytes_eq(r.subs[0].topic, "t"));
  goop_rpc_clear(&r);
  goop_buf_free(&b);
  goop_buf_free(&c);
  goop_buf_free(&ctl);
}

static void test_limits(void) {
  goop_buf b, m;
  struct goop_rpc r;
  goop_buf_init(&b, 0);
  goop_buf_init(&m, 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&m, 2, "d", 1), 0);
  for (unsigned i = 0; i < GOOP_RPC_MAX_MSGS; i++)
    CHECK_INT_EQ(goop_pb_put_bytes(&b, 2, m.data, m.len), 0);
  CHECK_INT_EQ(goop_rpc_decode(b.data, b.len, &r), 0);
  CHECK_INT_EQ(r.n_msgs, GOOP_RPC_MAX_MSGS);
  goop_rpc_clear(&r);
  CHECK_INT_EQ(goop_pb_put_bytes(&b, 2, m.data, m.len), 0);
  CHECK_INT_EQ(goop_rpc_decode(b.data, b.len, &r), GOOP_ELIMIT);
  CHECK(r.msgs == NULL && r.n_msgs == 0);

  /* Over 1 MiB. */
  goop_buf_reset(&b);
  uint8_t *big = calloc(1, GOOP_RPC_MAX_READ);
  CHECK_INT_EQ(goop_pb_put_bytes(&b, 50, big, GOOP_RPC_MAX_READ - 8), 0);
  CHECK_INT_EQ(goop_rpc_decode(b.data, b.len, &r), 0);
  goop_rpc_clear(&r);
  goop_buf_reset(&b);
  CHECK_INT_EQ(goop_pb_put_bytes(&b, 50, big, GOOP_RPC_MAX_READ), 0);
  CHECK_INT_EQ(goop_rpc_decode(b.data, b.len, &r), GOOP_EMSGSIZE);
  free(big);

  /* Too many IHAVE message IDs in total. */
  goop_buf ctl, ih;
  goop_buf_init(&ctl, 0);
  goop_buf_init(&ih, 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&ih, 1, "t", 1), 0);
  for (unsigned i = 0; i < 2600; i++)
    CHECK_INT_EQ(goop_pb_put_bytes(&ih, 2, "0123456789", 10), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&ctl, 1, ih.data, ih.len), 0);
  goop_buf_reset(&b);
  CHECK_INT_EQ(goop_pb_put_bytes(&b, 3, ctl.data, ctl.len), 0);
  CHECK_INT_EQ(goop_rpc_decode(b.data, b.len, &r), 0);
  CHECK_INT_EQ(r.n_ihave_ids, 2600);
  goop_rpc_clear(&r);
  CHECK_INT_EQ(goop_pb_put_bytes(&b, 3, ctl.data, ctl.len), 0);
  CHECK_INT_EQ(goop_rpc_decode(b.data, b.len, &r), GOOP_ELIMIT);

  /* Message ID and topic length limits. */
  uint8_t longid[GOOP_RPC_MAX_MSG_ID + 1];
  memset(longid, 'x', sizeof(longid));
  goop_buf_reset(&ih);
  goop_buf_reset(&ctl);
  CHECK_INT_EQ(goop_pb_put_bytes(&ih, 1, longid, sizeof(longid)), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&ctl, 2, ih.data, ih.len), 0);
  goop_buf_reset(&b);
  CHECK_INT_EQ(goop_pb_put_bytes(&b, 3, ctl.data, ctl.len), 0);
  CHECK_INT_EQ(goop_rpc_decode(b.data, b.len, &r), GOOP_ELIMIT);
  uint8_t longtopic[GOOP_RPC_MAX_TOPIC + 1];
  memset(longtopic, 't', sizeof(longtopic));
  goop_buf_reset(&ih);
  CHECK_INT_EQ(goop_pb_put_bytes(&ih, 2, longtopic, sizeof(longtopic)), 0);
  goop_buf_reset(&b);
  CHECK_INT_EQ(goop_pb_put_bytes(&b, 1, ih.data, ih.len), 0);
  CHECK_INT_EQ(goop_rpc_decode(b.data, b.len, &r), GOOP_ELIMIT);

  /* Too many GRAFTs. */
  goop_buf_reset(&ctl);
  for (unsigned i = 0; i <= GOOP_RPC_MAX_CTRL; i++)
    CHECK(goop_pb_put_bytes(&ctl, 3, "\x0a\x01t", 3) == 0 || true);
  goop_buf_reset(&b);
  CHECK_INT_EQ(goop_pb_put_bytes(&b, 3, ctl.data, ctl.len), 0);
  CHECK_INT_EQ(goop_rpc_decode(b.data, b.len, &r), GOOP_ELIMIT);
  goop_buf_free(&b);
  goop_buf_free(&m);
  goop_buf_free(&ctl);
  goop_buf_free(&ih);
}

static void test_malformed(void) {
  struct goop_rpc r;
  /* Truncated field, wrong wire types, groups, bad nested messages. */
  static const struct {
    const char *name;
    const uint8_t *p;
    size_t len;
  } cases[] = {
      {"truncated len",
       (const uint8_t *)"\x0a\x05"
                        "ab",
       4},
      {"subs as varint", (const uint8_t *)"\x08\x01", 2},
      {"publish as fixed32", (const uint8_t *)"\x15\x01\x02\x03\x04", 5},
      {"group", (const uint8_t *)"\x0b\x0c", 2},
      {"bad varint", (const uint8_t *)"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11},
      {"sub flag as bytes", (const uint8_t *)"\x0a\x03\x0a\x01x", 5},
      {"nested truncated", (const uint8_t *)"\x12\x02\x0a\x05", 4},
      {"from as varint", (const uint8_t *)"\x12\x02\x08\x01", 4},
      {"control as varint", (const uint8_t *)"\x18\x01", 2},
      {"graft inner truncated", (const uint8_t *)"\x1a\x04\x1a\x02\x0a\x09", 6},
      {"prune backoff as bytes", (const uint8_t *)"\x1a\x05\x22\x03\x1a\x01x", 7},
      {"iwant id as varint", (const uint8_t *)"\x1a\x04\x12\x02\x08\x01", 6},
      {"zero tag", (const uint8_t *)"\x00\x00", 2},
  };
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(cases); i++) {
    int rc = goop_rpc_decode(cases[i].p, cases[i].len, &r);
    if (rc >= 0)
      printf("# case %s accepted\n", cases[i].name);
    CHECK(rc < 0);
    CHECK(r.subs == NULL && r.msgs == NULL && r.graft == NULL);
  }
  /* Every prefix of a valid RPC either decodes or fails cleanly. */
  struct goop_rpc_sub subs[1] = {{true, B("topic")}};
  goop_rpc_bytes graft[1] = {B("topic")};
  struct goop_rpc in = {.subs = subs, .n_subs = 1, .graft = graft, .n_graft = 1};
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_rpc_encode(&in, &b), 0);
  int bad = 0;
  for (size_t n = 0; n < b.len; n++) {
    uint8_t *copy = malloc(n + 1);
    memcpy(copy, b.data, n);
    int rc = goop_rpc_decode(copy, n, &r);
    if (rc == 0)
      goop_rpc_clear(&r);
    else
      bad++;
    free(copy);
  }
  CHECK(bad > 0);
  goop_buf_free(&b);
}

int main(void) {
  RUN(test_roundtrip);
  RUN(test_signed_part);
  RUN(test_unknown_and_merge);
  RUN(test_limits);
  RUN(test_malformed);
  return tap_done();
}
