/* Unit tests: unsigned varint, length-prefixed framing, goop_buf. */
#include <string.h>

#include "buf.h"
#include "internal.h"
#include "tap.h"
#include "varint.h"

static void check_varint(uint64_t v, const char *hex) {
  size_t n;
  uint8_t *want = tap_unhex(hex, &n);
  uint8_t out[16];
  CHECK_INT_EQ(goop_varint_size(v), n);
  CHECK_INT_EQ(goop_varint_encode(v, out), n);
  CHECK_MEM_EQ(out, want, n);
  uint64_t back = ~UINT64_C(0);
  CHECK_INT_EQ(goop_varint_decode(want, n, &back), n);
  CHECK(back == v);
  /* Every strict prefix is "need more input". */
  for (size_t i = 0; i < n; i++)
    CHECK_INT_EQ(goop_varint_decode(want, i, &back), 0);
  /* Trailing bytes are not consumed. */
  uint8_t longer[16];
  memcpy(longer, want, n);
  longer[n] = 0xff;
  CHECK_INT_EQ(goop_varint_decode(longer, n + 1, &back), n);
  CHECK(back == v);
  free(want);
}

static void test_vectors(void) {
  check_varint(0, "00");
  check_varint(1, "01");
  check_varint(127, "7f");
  check_varint(128, "8001");
  check_varint(255, "ff01");
  check_varint(300, "ac02");
  check_varint(16384, "808001");
  check_varint(UINT64_C(0x7fffffffffffffff), "ffffffffffffffff7f");
}

static void check_bad(const char *hex) {
  size_t n;
  uint8_t *in = tap_unhex(hex, &n);
  uint64_t v = 42;
  int rc = goop_varint_decode(in, n, &v);
  tap__ok(rc == GOOP_EPARSE && v == 42, __FILE__, __LINE__, hex);
  free(in);
}

static void test_reject(void) {
  /* Non-minimal encodings. */
  check_bad("8100");
  check_bad("8000");
  check_bad("ff8000");
  check_bad("ffffffffffffffff00");
  /* More than 9 bytes (a 10th byte would be needed, or is present). */
  check_bad("ffffffffffffffffff");
  check_bad("ffffffffffffffffff01");
  check_bad("80808080808080808001");
  /* Truncation: 0, not an error. */
  uint64_t v;
  CHECK_INT_EQ(goop_varint_decode((const uint8_t *)"", 0, &v), 0);
  CHECK_INT_EQ(goop_varint_decode((const uint8_t *)"\x80", 1, &v), 0);
  CHECK_INT_EQ(goop_varint_decode((const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff", 8, &v), 0);
}

static void test_buf_append_varint(void) {
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_buf_append_varint(&b, 300), 0);
  CHECK_INT_EQ(goop_buf_append_varint(&b, 0), 0);
  CHECK_INT_EQ(b.len, 3);
  CHECK_MEM_EQ(b.data, "\xac\x02\x00", 3);
  goop_buf_free(&b);
  goop_buf_init(&b, 2);
  CHECK_INT_EQ(goop_buf_append_varint(&b, 16384), GOOP_ELIMIT);
  CHECK_INT_EQ(b.len, 0);
  goop_buf_free(&b);
}

static void test_frame(void) {
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_frame_append(&b, "hello", 5), 0);
  CHECK_INT_EQ(goop_frame_append(&b, "", 0), 0);
  static uint8_t big[300];
  memset(big, 0xab, sizeof(big));
  CHECK_INT_EQ(goop_frame_append(&b, big, sizeof(big)), 0);
  CHECK_INT_EQ(b.len, 6 + 1 + 2 + 300);
  CHECK_MEM_EQ(b.data, "\x05hello\x00\xac\x02", 9);

  const uint8_t *p;
  size_t plen;
  size_t off = 0;
  CHECK_INT_EQ(goop_frame_decode(b.data, b.len, 1024, &p, &plen), 6);
  CHECK(plen == 5 && memcmp(p, "hello", 5) == 0 && p == b.data + 1);
  off += 6;
  CHECK_INT_EQ(goop_frame_decode(b.data + off, b.len - off, 1024, &p, &plen), 1);
  CHECK_INT_EQ(plen, 0);
  off += 1;
  CHECK_INT_EQ(goop_frame_decode(b.data + off, b.len - off, 1024, &p, &plen), 302);
  CHECK(plen == 300 && p[0] == 0xab && p[299] == 0xab);
  /* Limit: exactly max is fine, max - 1 is too small. */
  CHECK_INT_EQ(goop_frame_decode(b.data + off, b.len - off, 300, &p, &plen), 302);
  CHECK_INT_EQ(goop_frame_decode(b.data + off, b.len - off, 299, &p, &plen), GOOP_EMSGSIZE);
  /* The length is checked before the payload arrives. */
  CHECK_INT_EQ(goop_frame_decode(b.data + off, 2, 299, &p, &plen), GOOP_EMSGSIZE);
  /* Incomplete: prefix only, part of the payload, part of the prefix. */
  CHECK_INT_EQ(goop_frame_decode(b.data + off, 2, 1024, &p, &plen), 0);
  CHECK_INT_EQ(goop_frame_decode(b.data + off, 301, 1024, &p, &plen), 0);
  CHECK_INT_EQ(goop_frame_decode(b.data + off, 1, 1024, &p, &plen), 0);
  CHECK_INT_EQ(goop_frame_decode(b.data, 0, 1024, &p, &plen), 0);
  /* Bad prefixes. */
  CHECK_INT_EQ(goop_frame_decode((const uint8_t *)"\x85\x00", 2, 1024, &p, &plen), GOOP_EPARSE);
  CHECK_INT_EQ(
      goop_frame_decode((const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10, SIZE_MAX, &p, &plen),
      GOOP_EPARSE);
  /* A huge declared length never reads past the buffer. */
  CHECK_INT_EQ(goop_frame_decode((const uint8_t *)"\xff\xff\xff\xff\x0f"
                                                  "abc",
                                 8, SIZE_MAX, &p, &plen),
               0);
  goop_buf_free(&b);

  /* Frame append respects the buffer limit. */
  goop_buf_init(&b, 6);
  CHECK_INT_EQ(goop_frame_append(&b, "hello", 5), 0);
  CHECK_INT_EQ(goop_frame_append(&b, "x", 1), GOOP_ELIMIT);
  goop_buf_free(&b);
}

static void test_buf(void) {
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
  /* Growth over many appends keeps the content. */
  int rc = 0;
  for (int i = 0; i < 10000; i++)
    rc |= goop_buf_append_byte(&b, (uint8_t)i);
  CHECK_INT_EQ(rc, 0);
  CHECK_INT_EQ(b.len, 10000);
  CHECK(b.cap >= 10000);
  int ok = 1;
  for (int i = 0; i < 10000; i++)
    ok &= b.data[i] == (uint8_t)i;
  CHECK(ok);
  /* Consume, reset, steal. */
  goop_buf_consume(&b, 9990);
  CHECK_INT_EQ(b.len, 10);
  CHECK(b.data[0] == (uint8_t)9990);
  goop_buf_consume(&b, 100);
  CHECK_INT_EQ(b.len, 0);
  CHECK_INT_EQ(goop_buf_append_str(&b, "abc"), 0);
  size_t n = 0;
  uint8_t *d = goop_buf_steal(&b, &n);
  CHECK(d != NULL && n == 3 && memcmp(d, "abc", 3) == 0);
  CHECK(b.data == NULL && b.len == 0);
  free(d);
  CHECK_INT_EQ(goop_buf_append(&b, NULL, 0), 0);
  goop_buf_reset(&b);
  goop_buf_free(&b);

  /* Max limit: fills up to max exactly, then ELIMIT without change. */
  goop_buf_init(&b, 100);
  CHECK_INT_EQ(goop_buf_reserve(&b, 101), GOOP_ELIMIT);
  CHECK_INT_EQ(goop_buf_reserve(&b, 100), 0);
  CHECK(b.cap <= 100);
  static uint8_t junk[100];
  CHECK_INT_EQ(goop_buf_append(&b, junk, 60), 0);
  CHECK_INT_EQ(goop_buf_append(&b, junk, 41), GOOP_ELIMIT);
  CHECK_INT_EQ(b.len, 60);
  CHECK_INT_EQ(goop_buf_append(&b, junk, 40), 0);
  CHECK_INT_EQ(b.len, 100);
  CHECK_INT_EQ(goop_buf_append_byte(&b, 1), GOOP_ELIMIT);
  CHECK_INT_EQ(goop_buf_reserve(&b, SIZE_MAX), GOOP_ELIMIT);
  /* free keeps max, the buffer is reusable. */
  goop_buf_free(&b);
  CHECK_INT_EQ(b.max, 100);
  CHECK_INT_EQ(goop_buf_append(&b, junk, 100), 0);
  CHECK_INT_EQ(goop_buf_append_byte(&b, 1), GOOP_ELIMIT);
  goop_buf_free(&b);
}

int main(void) {
  RUN(test_vectors);
  RUN(test_reject);
  RUN(test_buf_append_varint);
  RUN(test_frame);
  RUN(test_buf);
  return tap_done();
}
