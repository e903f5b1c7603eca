/* Unit tests: multiaddr text and binary forms. */
#include <string.h>

#include "internal.h"
#include "multiaddr.h"
#include "tap.h"

#define ED_ID "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
#define ED_MH "0024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
#define QM_ID "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
#define QM_MH "12209dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd21bf6f0b9"

/* text → hex → text, where the printed text must equal |canon|. */
static void check_vec(const char *text, const char *hex, const char *canon) {
  size_t n;
  uint8_t *bin = tap_unhex(hex, &n);
  goop_buf b;
  goop_buf_init(&b, 0);
  int rc = goop_ma_from_string(text, &b);
  CHECK_INT_EQ(rc, 0);
  tap__ok(rc == 0 && b.len == n && memcmp(b.data, bin, n) == 0, __FILE__, __LINE__, text);
  char out[GOOP_MA_STR_MAX];
  CHECK_INT_EQ(goop_ma_validate(bin, n), 0);
  CHECK_INT_EQ(goop_ma_to_string(bin, n, out, sizeof(out)), strlen(canon));
  CHECK_STR_EQ(out, canon);
  goop_buf_free(&b);
  free(bin);
}

static void test_vectors(void) {
  /* libp2p-notes §2. */
  check_vec("/ip4/127.0.0.1/tcp/4321", "047f0000010610e1", "/ip4/127.0.0.1/tcp/4321");
  check_vec("/ip4/127.0.0.1/udp/1234", "047f000001910204d2", "/ip4/127.0.0.1/udp/1234");
  check_vec("/ip4/127.0.0.1/tcp/4001", "047f000001060fa1", "/ip4/127.0.0.1/tcp/4001");
  check_vec("/ip6/::1/tcp/4001", "2900000000000000000000000000000001060fa1", "/ip6/::1/tcp/4001");
  check_vec("/ip4/192.168.1.10/udp/4001/quic-v1", "04c0a8010a91020fa1cd03",
            "/ip4/192.168.1.10/udp/4001/quic-v1");
  check_vec("/dns4/example.com/tcp/443", "360b6578616d706c652e636f6d0601bb", "/dns4/example.com/tcp/443");
  check_vec("/dns/example.com/udp/53", "350b6578616d706c652e636f6d91020035", "/dns/example.com/udp/53");
  check_vec("/p2p/" ED_ID, "a50326" ED_MH, "/p2p/" ED_ID);
  check_vec("/p2p-circuit", "a202", "/p2p-circuit");
  /* go-multiaddr TestStringToBytes. */
  check_vec("/ip4/127.0.0.1/udp/1234/ip4/127.0.0.1/tcp/4321", "047f000001910204d2047f0000010610e1",
            "/ip4/127.0.0.1/udp/1234/ip4/127.0.0.1/tcp/4321");
  /* More protocols. */
  check_vec("/dns6/a/tcp/0", "370161060000", "/dns6/a/tcp/0");
  check_vec("/dnsaddr/bootstrap.libp2p.io", "3813626f6f7473747261702e6c69627032702e696f",
            "/dnsaddr/bootstrap.libp2p.io");
  check_vec("/ip4/1.2.3.4/tcp/443/wss",
            "0401020304"
            "0601bb"
            "de03",
            "/ip4/1.2.3.4/tcp/443/wss");
  check_vec("/ip4/1.2.3.4/tcp/80/ws",
            "0401020304"
            "060050"
            "dd03",
            "/ip4/1.2.3.4/tcp/80/ws");
  check_vec("/ip4/1.2.3.4/tcp/443/tls/ws",
            "0401020304"
            "0601bb"
            "c003"
            "dd03",
            "/ip4/1.2.3.4/tcp/443/tls/ws");
  check_vec("/ip4/1.2.3.4/tcp/1/noise",
            "0401020304"
            "060001"
            "c603",
            "/ip4/1.2.3.4/tcp/1/noise");
  check_vec("/ip4/127.0.0.1/udp/1234/quic", "047f000001910204d2cc03", "/ip4/127.0.0.1/udp/1234/quic");
  check_vec("/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash/b2uaraocy6yrdblb4sfptaddgimjmmpy",
            "047f000001910204d2cd03d103d20313d501103858f62230ac3c915f300c664312c63f",
            "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash/u1QEQOFj2IjCsPJFfMAxmQxLGPw");
  check_vec("/ip6zone/x%y/ip6/fe80::1", "2a0378257929fe800000000000000000000000000001",
            "/ip6zone/x%y/ip6/fe80::1");
  check_vec("/ipfs/" QM_ID, "a50322" QM_MH, "/p2p/" QM_ID);
  /* p2p as a CIDv1 (base32 and base36), printed as base58. */
  check_vec("/p2p/bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6", "a50326" ED_MH,
            "/p2p/" ED_ID);
  check_vec("/p2p/k51qzi5uqu5dgy8qsq67hbz73jqkw87l3fgf4a91qb0d9b5173tir7n4vxk1oe", "a50326" ED_MH,
            "/p2p/" ED_ID);
  check_vec("/p2p/bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe", "a50322" QM_MH,
            "/p2p/" QM_ID);
  /* Trailing slashes, ports with leading zeros, port bounds. */
  check_vec("/ip4/1.2.3.4/tcp/80/", "0401020304060050", "/ip4/1.2.3.4/tcp/80");
  check_vec("/ip4/1.2.3.4/tcp/80//", "0401020304060050", "/ip4/1.2.3.4/tcp/80");
  check_vec("/p2p-circuit/", "a202", "/p2p-circuit");
  check_vec("/tcp/0080", "060050", "/tcp/80");
  check_vec("/udp/65535", "9102ffff", "/udp/65535");
  check_vec("/tcp/0", "060000", "/tcp/0");
}

static void test_ip6_canonical(void) {
  check_vec("/ip6/0:0:0:0:0:0:0:1/tcp/1", "2900000000000000000000000000000001060001", "/ip6/::1/tcp/1");
  check_vec("/ip6/::", "2900000000000000000000000000000000", "/ip6/::");
  check_vec("/ip6/2001:DB8:0:0:0:0:0:1", "2920010db8000000000000000000000001", "/ip6/2001:db8::1");
  /* A single zero field is not compressed; the first of two equal runs is. */
  check_vec("/ip6/2001:db8:0:1:1:1:1:1", "2920010db8000000010001000100010001", "/ip6/2001:db8:0:1:1:1:1:1");
  check_vec("/ip6/2001:0:0:1:0:0:0:1", "2920010000000000010000000000000001", "/ip6/2001:0:0:1::1");
  check_vec("/ip6/2001:db8:0:0:1:0:0:1", "2920010db8000000000001000000000001", "/ip6/2001:db8::1:0:0:1");
  check_vec("/ip6/1::", "2900010000000000000000000000000000", "/ip6/1::");
  check_vec("/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21", "29260100094f819700803eca6566e80c21",
            "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21");
  /* IPv4-mapped and IPv4-compatible forms. */
  check_vec("/ip6/::ffff:1.2.3.4/udp/1", "2900000000000000000000ffff01020304910200 01",
            "/ip6/::ffff:1.2.3.4/udp/1");
  check_vec("/ip6/::ffff:102:304", "2900000000000000000000ffff01020304", "/ip6/::ffff:1.2.3.4");
  check_vec("/ip6/::1.2.3.4", "2900000000000000000000000001020304", "/ip6/::102:304");
}

static void test_relay_form(void) {
  const char *text = "/ip4/203.0.113.5/tcp/4001/p2p/" QM_ID "/p2p-circuit/p2p/" ED_ID;
  check_vec(text,
            "04cb007105060fa1"
            "a50322" QM_MH "a202"
            "a50326" ED_MH,
            text);
}

static void test_iterate(void) {
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_ma_from_string("/dns4/example.com/tcp/443/p2p/" ED_ID "/p2p-circuit", &b), 0);
  size_t off = 0, mhn;
  goop_ma_component c;
  uint8_t *mh = tap_unhex(ED_MH, &mhn);
  CHECK_INT_EQ(goop_ma_next(b.data, b.len, &off, &c), 1);
  CHECK(c.code == GOOP_MA_DNS4 && c.value_len == 11 && memcmp(c.value, "example.com", 11) == 0);
  CHECK_INT_EQ(goop_ma_next(b.data, b.len, &off, &c), 1);
  CHECK(c.code == GOOP_MA_TCP && c.value_len == 2 && c.value[0] == 1 && c.value[1] == 0xbb);
  CHECK_INT_EQ(goop_ma_next(b.data, b.len, &off, &c), 1);
  CHECK(c.code == GOOP_MA_P2P && c.value_len == mhn && memcmp(c.value, mh, mhn) == 0);
  CHECK_INT_EQ(goop_ma_next(b.data, b.len, &off, &c), 1);
  CHECK(c.code == GOOP_MA_P2P_CIRCUIT && c.value_len == 0);
  CHECK_INT_EQ(goop_ma_next(b.data, b.len, &off, &c), 0);
  CHECK_INT_EQ(off, b.len);
  CHECK_INT_EQ(goop_ma_next(b.data, b.len, &off, &c), 0);
  off = b.len + 1;
  CHECK_INT_EQ(goop_ma_next(b.data, b.len, &off, &c), GOOP_EPARSE);
  /* A malformed component stops iteration with an error. */
  off = 0;
  CHECK_INT_EQ(goop_ma_next(b.data, b.len - 1, &off, &c), 1);
  CHECK_INT_EQ(goop_ma_next(b.data, b.len - 1, &off, &c), 1);
  CHECK_INT_EQ(goop_ma_next(b.data, b.len - 1, &off, &c), 1);
  CHECK_INT_EQ(goop_ma_next(b.data, b.len - 1, &off, &c), GOOP_EPARSE);
  /* Appends to existing content; a failed parse leaves the buffer alone. */
  size_t before = b.len;
  CHECK_INT_EQ(goop_ma_from_string("/tcp/1", &b), 0);
  CHECK_INT_EQ(b.len, before + 3);
  CHECK_INT_EQ(goop_ma_from_string("/tcp/1/udp", &b), GOOP_EPARSE);
  CHECK_INT_EQ(b.len, before + 3);
  goop_buf_free(&b);
  /* Buffer limit is reported. */
  goop_buf_init(&b, 4);
  CHECK_INT_EQ(goop_ma_from_string("/ip4/1.2.3.4", &b), GOOP_ELIMIT);
  CHECK_INT_EQ(b.len, 0);
  goop_buf_free(&b);
  free(mh);
}

static const char *const must_fail[] = {
    "",
    "/",
    "//",
    "ip4/1.2.3.4",
    "/ip4",
    "/ip4/",
    "/ip4/256.0.0.1",
    "/ip4/1.2.3",
    "/ip4/1.2.3.4.5",
    "/ip4/01.2.3.4",
    "/ip4/::1",
    "/ip4/fdpsofodsajfdoisa",
    "/ip4//tcp/1",
    "/ip6",
    "/ip6/1.2.3.4",
    "/ip6/::1%eth0",
    "/ip6/1:2:3:4:5:6:7:8:9",
    "/ip6zone",
    "/ip6zone/",
    "/ip6zone//ip6/fe80::1",
    "/udp",
    "/tcp",
    "/sctp",
    "/tcp/65536",
    "/udp/65536",
    "/tcp/99999999999999999999",
    "/tcp/-1",
    "/tcp/+1",
    "/tcp/0x1",
    "/tcp/ 1",
    "/tcp/1a",
    "/quic/65536",
    "/unknown/1",
    "/unix/a",
    "/onion/timaq4ygg2iegci7:1234",
    "/udp/1234/sctp",
    "/udp/1234/utp/1234",
    "/ip4/127.0.0.1/udp/jfodsajfidosajfoidsa",
    "/ip4/127.0.0.1/udp",
    "/ip4/127.0.0.1/tcp/jfodsajfidosajfoidsa",
    "/ip4/127.0.0.1/tcp",
    "/ip4/1.2.3.4/tcp",
    "/ip4/127.0.0.1/quic/1234",
    "/ip4/127.0.0.1/quic-v1/1234",
    "/ip4/127.0.0.1/ipfs",
    "/ip4/127.0.0.1/ipfs/tcp",
    "/ip4/127.0.0.1/p2p",
    "/ip4/127.0.0.1/p2p/tcp",
    "/ip4/1.2.3.4//tcp/1",
    "//ip4/1.2.3.4",
    "/IP4/1.2.3.4",
    "/p2p",
    "/p2p/garbage",
    "/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5", /* truncated */
    "/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5NN",
    "/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p0",
    "/p2p/StV1DL6CwTryKyV",  /* neither base58 peer ID nor a multibase prefix */
    "/p2p/1StV1DL6CwTryKyV", /* base58, but not a multihash */
    "/p2p/bafybeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe", /* codec dag-pb, not libp2p-key */
    "/p2p/zQmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",             /* CIDv0 inside multibase */
    "/p2p-circuit/x",
    "/dns",
    "/dns4",
    "/dns6",
    "/dnsaddr",
    "/dns4//tcp/1",
    "/certhash",
    "/certhash/",
    "/certhash/b2uaraocy6yrdblb4sfptaddgimjmmp", /* bad base32 length */
    "/certhash/xabc",
    "/certhash/uAAAA", /* not a multihash */
    "/ws/1",
    "/ipfs",
};

static void test_must_fail(void) {
  goop_buf b;
  goop_buf_init(&b, 0);
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(must_fail); i++) {
    int rc = goop_ma_from_string(must_fail[i], &b);
    tap__ok(rc == GOOP_EPARSE && b.len == 0, __FILE__, __LINE__, must_fail[i]);
    if (rc != GOOP_EPARSE)
      printf("#   got %d\n", rc);
  }
  goop_buf_free(&b);

  /* Long DNS names: 255 bytes ok, 256 rejected. */
  char text[600];
  strcpy(text, "/dns/");
  memset(text + 5, 'a', 256);
  text[5 + 255] = '\0';
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_ma_from_string(text, &b), 0);
  goop_buf_reset(&b);
  text[5 + 255] = 'a';
  text[5 + 256] = '\0';
  CHECK_INT_EQ(goop_ma_from_string(text, &b), GOOP_EPARSE);

  /* Binary and text size limits. */
  static char big[GOOP_MA_STR_MAX + 16];
  size_t o = 0;
  while (o + 6 < GOOP_MA_STR_MAX + 8) {
    memcpy(big + o, "/tcp/1", 6);
    o += 6;
  }
  big[o] = '\0';
  goop_buf_reset(&b);
  CHECK_INT_EQ(goop_ma_from_string(big, &b), GOOP_EPARSE); /* text too long */
  /* 341 x /tcp/1 = 1023 bytes binary: fits; 342 = 1026 does not. */
  big[341 * 6] = '\0';
  CHECK_INT_EQ(goop_ma_from_string(big, &b), 0);
  CHECK_INT_EQ(b.len, 1023);
  goop_buf_reset(&b);
  big[341 * 6] = '/';
  big[342 * 6] = '\0';
  CHECK_INT_EQ(goop_ma_from_string(big, &b), GOOP_EPARSE);
  goop_buf_free(&b);

  /* Densest text: 512 x /webtransport from 1024 bytes must fit GOOP_MA_STR_MAX. */
  static uint8_t wt[GOOP_MA_MAX + 2];
  for (size_t i = 0; i < GOOP_MA_MAX + 2; i += 2) {
    wt[i] = 0xd1;
    wt[i + 1] = 0x03;
  }
  static char out[GOOP_MA_STR_MAX];
  CHECK_INT_EQ(goop_ma_to_string(wt, GOOP_MA_MAX, out, sizeof(out)), 512 * 13);
  CHECK_INT_EQ(goop_ma_validate(wt, GOOP_MA_MAX + 2), GOOP_EPARSE);
  CHECK_INT_EQ(goop_ma_to_string(wt, GOOP_MA_MAX + 2, out, sizeof(out)), GOOP_EPARSE);
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_ma_from_string(out, &b), 0);
  CHECK_INT_EQ(b.len, GOOP_MA_MAX);
  goop_buf_free(&b);
}

static void check_bad_bin(const char *hex) {
  size_t n;
  uint8_t *bin = tap_unhex(hex, &n);
  char out[256];
  tap__ok(goop_ma_validate(bin, n) == GOOP_EPARSE, __FILE__, __LINE__, hex);
  CHECK_INT_EQ(goop_ma_to_string(bin, n, out, sizeof(out)), GOOP_EPARSE);
  free(bin);
}

static void test_bad_binary(void) {
  check_bad_bin("");                  /* empty */
  check_bad_bin("04");                /* ip4 without value */
  check_bad_bin("047f0000");          /* short ip4 */
  check_bad_bin("047f00000106");      /* tcp without port */
  check_bad_bin("0610");              /* short port */
  check_bad_bin("29000000");          /* short ip6 */
  check_bad_bin("9102");              /* udp no port */
  check_bad_bin("91");                /* truncated code */
  check_bad_bin("8400");              /* non-minimal code varint (4) */
  check_bad_bin("a20200");            /* trailing byte: code 0 unknown */
  check_bad_bin("ff7f");              /* unknown code */
  check_bad_bin("3500");              /* empty dns */
  check_bad_bin("3505");              /* dns past end */
  check_bad_bin("35036162");          /* dns past end */
  check_bad_bin("3503612f62");        /* '/' in dns */
  check_bad_bin("3503610062");        /* NUL in dns */
  check_bad_bin("358000");            /* non-minimal length */
  check_bad_bin("2a00");              /* empty ip6zone */
  check_bad_bin("a503");              /* p2p without length */
  check_bad_bin("a50300");            /* p2p empty multihash */
  check_bad_bin("a503021220");        /* p2p sha256 of wrong length */
  check_bad_bin("a50303130100");      /* p2p: sha2-512 code not a peer ID */
  check_bad_bin("a50322" QM_MH "00"); /* trailing byte */
  check_bad_bin("d20300");            /* certhash empty */
  check_bad_bin("d2030211");          /* certhash not a multihash */
  check_bad_bin("0610e1"
                "ffffffffffffffffff01"); /* 10-byte varint */

  /* Output too small: GOOP_EINVAL; exact size works. */
  char out[32];
  const uint8_t v[] = {0x04, 0x7f, 0, 0, 1, 0x06, 0x10, 0xe1};
  CHECK_INT_EQ(goop_ma_to_string(v, sizeof(v), out, 23), GOOP_EINVAL);
  CHECK_INT_EQ(goop_ma_to_string(v, sizeof(v), out, 24), 23);
  CHECK_INT_EQ(goop_ma_to_string(v, sizeof(v), out, 0), GOOP_EINVAL);
  CHECK_STR_EQ(out, "/ip4/127.0.0.1/tcp/4321");
}

int main(void) {
  RUN(test_vectors);
  RUN(test_ip6_canonical);
  RUN(test_relay_form);
  RUN(test_iterate);
  RUN(test_must_fail);
  RUN(test_bad_binary);
  return tap_done();
}
