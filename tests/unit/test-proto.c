/* Unit tests: protobuf reader and writer. */
#include <string.h>

#include "internal.h"
#include "proto.h"
#include "tap.h"

static int parse_hex(const char *hex, goop_pb_field *fields, int max) {
  size_t n;
  uint8_t *bin = tap_unhex(hex, &n);
  goop_pb_reader r;
  goop_pb_reader_init(&r, bin, n);
  int count = 0, rc;
  goop_pb_field f;
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    if (count < max)
      fields[count] = f;
    count++;
  }
  free(bin);
  return rc < 0 ? rc : count;
}

static void test_roundtrip(void) {
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_pb_put_varint(&b, 1, 150), 0);
  CHECK_INT_EQ(goop_pb_put_bool(&b, 2, true), 0);
  CHECK_INT_EQ(goop_pb_put_bool(&b, 3, false), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&b, 4, "\x00\x01\x02", 3), 0);
  CHECK_INT_EQ(goop_pb_put_string(&b, 5, "testing"), 0);
  CHECK_INT_EQ(goop_pb_put_fixed64(&b, 6, UINT64_C(0x0102030405060708)), 0);
  CHECK_INT_EQ(goop_pb_put_fixed32(&b, 7, 0xdeadbeef), 0);
  CHECK_INT_EQ(goop_pb_put_varint(&b, (1u << 29) - 1, (UINT64_C(1) << 63) - 1), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&b, 16, NULL, 0), 0);
  CHECK_INT_EQ(goop_pb_put_varint(&b, 1, 0), 0);

  /* Known encodings: field 1 varint 150 = 08 96 01; field 5 string = 2a 07 "testing". */
  CHECK_MEM_EQ(b.data, "\x08\x96\x01\x10\x01\x18\x00\x22\x03\x00\x01\x02\x2a\x07testing", 21);
  CHECK_MEM_EQ(b.data + 21, "\x31\x08\x07\x06\x05\x04\x03\x02\x01\x3d\xef\xbe\xad\xde", 14);

  goop_pb_reader r;
  goop_pb_field f;
  goop_pb_reader_init(&r, b.data, b.len);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 1);
  CHECK(f.num == 1 && f.wire == GOOP_PB_VARINT && f.u64 == 150);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 1);
  CHECK(f.num == 2 && f.wire == GOOP_PB_VARINT && f.u64 == 1);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 1);
  CHECK(f.num == 3 && f.u64 == 0);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 1);
  CHECK(f.num == 4 && f.wire == GOOP_PB_LEN && f.len == 3 && memcmp(f.data, "\x00\x01\x02", 3) == 0);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 1);
  CHECK(f.num == 5 && f.wire == GOOP_PB_LEN && f.len == 7 && memcmp(f.data, "testing", 7) == 0);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 1);
  CHECK(f.num == 6 && f.wire == GOOP_PB_I64 && f.u64 == UINT64_C(0x0102030405060708));
  CHECK_INT_EQ(goop_pb_next(&r, &f), 1);
  CHECK(f.num == 7 && f.wire == GOOP_PB_I32 && f.u64 == 0xdeadbeef);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 1);
  CHECK(f.num == (1u << 29) - 1 && f.u64 == (UINT64_C(1) << 63) - 1);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 1);
  CHECK(f.num == 16 && f.wire == GOOP_PB_LEN && f.len == 0);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 1);
  CHECK(f.num == 1 && f.u64 == 0);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 0);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 0);
  goop_buf_free(&b);

  /* Empty input. */
  goop_pb_reader_init(&r, NULL, 0);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 0);
}

static void test_writer_errors(void) {
  goop_buf b;
  goop_buf_init(&b, 8);
  CHECK_INT_EQ(goop_pb_put_varint(&b, 0, 1), GOOP_EINVAL);
  CHECK_INT_EQ(goop_pb_put_varint(&b, 1u << 29, 1), GOOP_EINVAL);
  CHECK_INT_EQ(goop_pb_put_varint(&b, 1, UINT64_C(1) << 63), GOOP_EINVAL);
  CHECK_INT_EQ(goop_pb_put_tag(&b, 0, GOOP_PB_LEN), GOOP_EINVAL);
  CHECK_INT_EQ(b.len, 0);
  /* Buffer limit: a field that does not fit leaves the buffer untouched. */
  CHECK_INT_EQ(goop_pb_put_fixed32(&b, 1, 7), 0);
  CHECK_INT_EQ(b.len, 5);
  CHECK_INT_EQ(goop_pb_put_string(&b, 2, "abc"), GOOP_ELIMIT);
  CHECK_INT_EQ(b.len, 5);
  CHECK_INT_EQ(goop_pb_put_string(&b, 2, "a"), 0);
  CHECK_INT_EQ(b.len, 8);
  CHECK_INT_EQ(goop_pb_put_tag(&b, 3, GOOP_PB_VARINT), GOOP_ELIMIT);
  goop_buf_free(&b);
}

static void test_malformed(void) {
  goop_pb_field f[4];
  /* Wire types 3, 4, 6, 7. */
  CHECK_INT_EQ(parse_hex("0b", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("0c", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("0e00", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("0f00", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("0801 0b", f, 4), GOOP_EPARSE);
  /* Field number 0, and 2^29 (0x80 0x80 0x80 0x80 0x10 = 2^32 key >> 3 = 2^29). */
  CHECK_INT_EQ(parse_hex("0001", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("0201", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("808080801000", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("f8ffffff0f00", f, 4), 1); /* 2^29-1, varint */
  /* Truncated key, truncated varint value, truncated fixed fields. */
  CHECK_INT_EQ(parse_hex("88", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("08", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("0896", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("09 01020304050607", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("0d 010203", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("09 0102030405060708", f, 4), 1);
  CHECK_INT_EQ(parse_hex("0d 01020304", f, 4), 1);
  /* LEN past the end, missing length, huge length. */
  CHECK_INT_EQ(parse_hex("0a 05 61626364", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("0a", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("0a ffffffffffffffff7f", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("0a 04 61626364", f, 4), 1);
  /* Non-minimal varints (key, value, length); 10-byte varint. */
  CHECK_INT_EQ(parse_hex("8800 01", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("08 8100", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("0a 8000", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("08 ffffffffffffffffff01", f, 4), GOOP_EPARSE);
  CHECK_INT_EQ(parse_hex("08 ffffffffffffffff7f", f, 4), 1);

  /* After an error the reader stays where it was. */
  size_t n;
  uint8_t *bin = tap_unhex("0801 0b", &n);
  goop_pb_reader r;
  goop_pb_field one;
  goop_pb_reader_init(&r, bin, n);
  CHECK_INT_EQ(goop_pb_next(&r, &one), 1);
  const uint8_t *p = r.p;
  CHECK_INT_EQ(goop_pb_next(&r, &one), GOOP_EPARSE);
  CHECK(r.p == p);
  free(bin);
}

static void test_nested(void) {
  /* message Outer { Inner a = 1; repeated string tags = 2; } message Inner { uint64 x = 1; bytes y = 2; } */
  goop_buf inner, outer;
  goop_buf_init(&inner, 0);
  goop_buf_init(&outer, 0);
  CHECK_INT_EQ(goop_pb_put_varint(&inner, 1, 300), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&inner, 2, "xyz", 3), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&outer, 1, inner.data, inner.len), 0);
  CHECK_INT_EQ(goop_pb_put_string(&outer, 2, "one"), 0);
  CHECK_INT_EQ(goop_pb_put_string(&outer, 2, "two"), 0);

  goop_pb_reader r, ir;
  goop_pb_field f, g;
  int tags = 0, inner_ok = 0;
  goop_pb_reader_init(&r, outer.data, outer.len);
  int rc;
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    if (f.num == 1 && f.wire == GOOP_PB_LEN) {
      goop_pb_reader_init(&ir, f.data, f.len);
      int irc;
      while ((irc = goop_pb_next(&ir, &g)) == 1) {
        if (g.num == 1 && g.u64 == 300)
          inner_ok++;
        if (g.num == 2 && g.len == 3 && memcmp(g.data, "xyz", 3) == 0)
          inner_ok++;
      }
      CHECK_INT_EQ(irc, 0);
    } else if (f.num == 2) {
      tags++;
    }
  }
  CHECK_INT_EQ(rc, 0);
  CHECK_INT_EQ(inner_ok, 2);
  CHECK_INT_EQ(tags, 2);

  /* A LEN field whose content is not a valid message: outer parse is fine, inner fails. */
  goop_buf_reset(&outer);
  CHECK_INT_EQ(goop_pb_put_bytes(&outer, 1,
                                 "\x0a\x05"
                                 "ab",
                                 4),
               0);
  goop_pb_reader_init(&r, outer.data, outer.len);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 1);
  goop_pb_reader_init(&ir, f.data, f.len);
  CHECK_INT_EQ(goop_pb_next(&ir, &g), GOOP_EPARSE);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 0);

  /* The Ed25519 PublicKey protobuf of libp2p-notes §1.1. */
  size_t n;
  uint8_t *pk = tap_unhex("080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e", &n);
  goop_pb_reader_init(&r, pk, n);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 1);
  CHECK(f.num == 1 && f.wire == GOOP_PB_VARINT && f.u64 == 1);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 1);
  CHECK(f.num == 2 && f.wire == GOOP_PB_LEN && f.len == 32 && f.data == pk + 4);
  CHECK_INT_EQ(goop_pb_next(&r, &f), 0);
  goop_buf_reset(&outer);
  CHECK_INT_EQ(goop_pb_put_varint(&outer, 1, 1), 0);
  CHECK_INT_EQ(goop_pb_put_bytes(&outer, 2, pk + 4, 32), 0);
  CHECK_INT_EQ(outer.len, n);
  CHECK_MEM_EQ(outer.data, pk, n);
  free(pk);
  goop_buf_free(&inner);
  goop_buf_free(&outer);
}

int main(void) {
  RUN(test_roundtrip);
  RUN(test_writer_errors);
  RUN(test_malformed);
  RUN(test_nested);
  return tap_done();
}
