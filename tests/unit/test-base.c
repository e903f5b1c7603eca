/* Unit tests: base58btc, base32, base36, hex, base64url, multibase, multihash, CID. */
#include <string.h>

#include "base.h"
#include "internal.h"
#include "multihash.h"
#include "tap.h"

static void check_b58(const char *hex, const char *text) {
  size_t n;
  uint8_t *bin = tap_unhex(hex, &n);
  char out[256];
  uint8_t back[256];
  CHECK_INT_EQ(goop_base58_encode(bin, n, out, sizeof(out)), strlen(text));
  CHECK_STR_EQ(out, text);
  CHECK_INT_EQ(goop_base58_decode(text, strlen(text), back, sizeof(back)), n);
  CHECK_MEM_EQ(back, bin, n);
  free(bin);
}

static void test_base58_vectors(void) {
  check_b58("", "");
  check_b58("00", "1");
  check_b58("0000", "11");
  check_b58("68656c6c6f20776f726c64", "StV1DL6CwTryKyV");
  check_b58("0000287fb4cd", "11233QC4");
  check_b58("61", "2g");
  check_b58("626262", "a3gV");
  check_b58("ff", "5Q");
  /* Peer IDs (libp2p-notes §1.4, §15). */
  check_b58("0024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e",
            "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
  check_b58("0024080112202ffa35a99d3a3cfbb17bb7c1dc5561b18a8dcca4df38dc613ea859c37eb1336b",
            "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA");
  check_b58("002508021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99",
            "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY");
  check_b58("12209dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd21bf6f0b9",
            "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N");
  check_b58("122068362c312e155f4f7290b67f5cd094a22a0a4fbf20efd8c287934419350d36f7",
            "QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgDk");
}

static void test_base58_bad(void) {
  uint8_t out[64];
  /* Characters outside the alphabet: 0 O I l, punctuation, NUL, high bytes. */
  CHECK_INT_EQ(goop_base58_decode("0", 1, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_base58_decode("1O", 2, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_base58_decode("I", 1, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_base58_decode("abl", 3, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_base58_decode("ab+", 3, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_base58_decode("a\0b", 3, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_base58_decode("a\xc3\xa9", 3, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_base58_decode(" 2g", 3, out, sizeof(out)), GOOP_EPARSE);
  /* Output capacity. */
  CHECK_INT_EQ(goop_base58_decode("StV1DL6CwTryKyV", 15, out, 10), GOOP_EINVAL);
  CHECK_INT_EQ(goop_base58_decode("StV1DL6CwTryKyV", 15, out, 11), 11);
  CHECK_INT_EQ(goop_base58_decode("111", 3, out, 2), GOOP_EINVAL);
  char s[16];
  CHECK_INT_EQ(goop_base58_encode((const uint8_t *)"hello world", 11, s, 15), GOOP_EINVAL);
  CHECK_INT_EQ(goop_base58_encode((const uint8_t *)"hello world", 11, s, 16), 15);
}

static void test_base58_limits(void) {
  /* Encoder input limit 4096 bytes, decoder 8192 chars. */
  static uint8_t big[4097];
  static char text[9000];
  static uint8_t out[8200];
  memset(big, 0xff, sizeof(big));
  CHECK(goop_base58_encode(big, 4096, text, sizeof(text)) > 0);
  CHECK_INT_EQ(goop_base58_encode(big, 4097, text, sizeof(text)), GOOP_EINVAL);
  int n = goop_base58_encode(big, 4096, text, sizeof(text));
  CHECK_INT_EQ(goop_base58_decode(text, (size_t)n, out, sizeof(out)), 4096);
  CHECK_MEM_EQ(out, big, 4096);
  memset(text, '1', 8193);
  CHECK_INT_EQ(goop_base58_decode(text, 8192, out, sizeof(out)), 8192);
  CHECK_INT_EQ(goop_base58_decode(text, 8193, out, sizeof(out)), GOOP_EPARSE);
  memset(text, 'z', 8192);
  CHECK(goop_base58_decode(text, 8192, out, sizeof(out)) > 0);
  /* Zero bytes only. */
  memset(big, 0, 100);
  CHECK_INT_EQ(goop_base58_encode(big, 100, text, sizeof(text)), 100);
  CHECK(text[0] == '1' && text[99] == '1' && text[100] == '\0');
}

static void check_b32(const char *plain, const char *text) {
  char out[128];
  uint8_t back[128];
  size_t n = strlen(plain);
  CHECK_INT_EQ(goop_base32_encode((const uint8_t *)plain, n, out, sizeof(out)), strlen(text));
  CHECK_STR_EQ(out, text);
  CHECK_INT_EQ(goop_base32_decode(text, strlen(text), back, sizeof(back)), n);
  CHECK_MEM_EQ(back, plain, n);
  /* Upper case decodes the same. */
  char up[128];
  size_t i;
  for (i = 0; text[i]; i++)
    up[i] = (char)(text[i] >= 'a' && text[i] <= 'z' ? text[i] - 32 : text[i]);
  up[i] = 0;
  CHECK_INT_EQ(goop_base32_decode(up, i, back, sizeof(back)), n);
  CHECK_MEM_EQ(back, plain, n);
}

static void test_base32(void) {
  check_b32("", "");
  check_b32("f", "my");
  check_b32("fo", "mzxq");
  check_b32("foo", "mzxw6");
  check_b32("foob", "mzxw6yq");
  check_b32("fooba", "mzxw6ytb");
  check_b32("foobar", "mzxw6ytboi");
  uint8_t out[64];
  CHECK_INT_EQ(goop_base32_decode("my======", 8, out, sizeof(out)), GOOP_EPARSE); /* padding */
  CHECK_INT_EQ(goop_base32_decode("my=", 3, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_base32_decode("mz", 2, out, sizeof(out)), GOOP_EPARSE);     /* trailing bits */
  CHECK_INT_EQ(goop_base32_decode("mzxr", 4, out, sizeof(out)), GOOP_EPARSE);   /* trailing bits */
  CHECK_INT_EQ(goop_base32_decode("m", 1, out, sizeof(out)), GOOP_EPARSE);      /* bad length */
  CHECK_INT_EQ(goop_base32_decode("mzx", 3, out, sizeof(out)), GOOP_EPARSE);    /* bad length */
  CHECK_INT_EQ(goop_base32_decode("mzxw6y", 6, out, sizeof(out)), GOOP_EPARSE); /* bad length */
  CHECK_INT_EQ(goop_base32_decode("m1", 2, out, sizeof(out)), GOOP_EPARSE);     /* '1' not in alphabet */
  CHECK_INT_EQ(goop_base32_decode("m8", 2, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_base32_decode("mzxw6ytboi", 10, out, 5), GOOP_EINVAL);
  char s[8];
  CHECK_INT_EQ(goop_base32_encode((const uint8_t *)"foob", 4, s, 7), GOOP_EINVAL);
  CHECK_INT_EQ(goop_base32_encode((const uint8_t *)"foob", 4, s, 8), 7);
}

static void test_base36(void) {
  char out[128];
  uint8_t back[128];
  CHECK_INT_EQ(goop_base36_encode((const uint8_t *)"hello world", 11, out, sizeof(out)), 17);
  CHECK_STR_EQ(out, "fuvrsivvnfrbjwajo");
  CHECK_INT_EQ(goop_base36_encode((const uint8_t *)"\0\0hello", 7, out, sizeof(out)), 10);
  CHECK_STR_EQ(out, "005pzcszu7");
  CHECK_INT_EQ(goop_base36_decode("005pzcszu7", 10, back, sizeof(back)), 7);
  CHECK_MEM_EQ(back, "\0\0hello", 7);
  CHECK_INT_EQ(goop_base36_decode("005PZCSZU7", 10, back, sizeof(back)), 7);
  CHECK_INT_EQ(goop_base36_encode(NULL, 0, out, sizeof(out)), 0);
  CHECK_STR_EQ(out, "");
  CHECK_INT_EQ(goop_base36_decode("0", 1, back, sizeof(back)), 1);
  CHECK(back[0] == 0);
  CHECK_INT_EQ(goop_base36_decode("ab-c", 4, back, sizeof(back)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_base36_decode("fuvrsivvnfrbjwajo", 17, back, 10), GOOP_EINVAL);
}

static void test_hex(void) {
  char out[32];
  uint8_t back[16];
  CHECK_INT_EQ(goop_hex_encode((const uint8_t *)"\x01\xab\xff", 3, out, sizeof(out)), 6);
  CHECK_STR_EQ(out, "01abff");
  CHECK_INT_EQ(goop_hex_decode("01ABff", 6, back, sizeof(back)), 3);
  CHECK_MEM_EQ(back, "\x01\xab\xff", 3);
  CHECK_INT_EQ(goop_hex_decode("01a", 3, back, sizeof(back)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_hex_decode("0g", 2, back, sizeof(back)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_hex_decode("0102", 4, back, 1), GOOP_EINVAL);
  CHECK_INT_EQ(goop_hex_encode((const uint8_t *)"\x01\xab\xff", 3, out, 6), GOOP_EINVAL);
}

static void test_base64url(void) {
  char out[64];
  uint8_t back[64];
  /* RFC 4648 §10 vectors, unpadded. */
  const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char *enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
  for (size_t i = 0; i < 7; i++) {
    size_t n = strlen(plain[i]);
    CHECK_INT_EQ(goop_base64url_encode((const uint8_t *)plain[i], n, out, sizeof(out)), strlen(enc[i]));
    CHECK_STR_EQ(out, enc[i]);
    CHECK_INT_EQ(goop_base64url_decode(enc[i], strlen(enc[i]), back, sizeof(back)), n);
    CHECK_MEM_EQ(back, plain[i], n);
  }
  CHECK_INT_EQ(goop_base64url_encode((const uint8_t *)"\xfb\xff", 2, out, sizeof(out)), 3);
  CHECK_STR_EQ(out, "-_8");
  CHECK_INT_EQ(goop_base64url_decode("Zg==", 4, back, sizeof(back)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_base64url_decode("Zh", 2, back, sizeof(back)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_base64url_decode("Z", 1, back, sizeof(back)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_base64url_decode("+/8", 3, back, sizeof(back)), GOOP_EPARSE);
}

static void test_multibase(void) {
  uint8_t out[128];
  char text[128];
  CHECK_INT_EQ(goop_multibase_decode("zStV1DL6CwTryKyV", 16, out, sizeof(out)), 11);
  CHECK_MEM_EQ(out, "hello world", 11);
  CHECK_INT_EQ(goop_multibase_decode("bmzxw6ytboi", 11, out, sizeof(out)), 6);
  CHECK_MEM_EQ(out, "foobar", 6);
  CHECK_INT_EQ(goop_multibase_decode("BMZXW6YTBOI", 11, out, sizeof(out)), 6);
  CHECK_MEM_EQ(out, "foobar", 6);
  CHECK_INT_EQ(goop_multibase_decode("bMZXW6YTBOI", 11, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_multibase_decode("Bmzxw6ytboi", 11, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_multibase_decode("kfuvrsivvnfrbjwajo", 18, out, sizeof(out)), 11);
  CHECK_MEM_EQ(out, "hello world", 11);
  CHECK_INT_EQ(goop_multibase_decode("KFUVRSIVVNFRBJWAJO", 18, out, sizeof(out)), 11);
  CHECK_INT_EQ(goop_multibase_decode("f68656c6c6f", 11, out, sizeof(out)), 5);
  CHECK_MEM_EQ(out, "hello", 5);
  CHECK_INT_EQ(goop_multibase_decode("F68656C6C6F", 11, out, sizeof(out)), 5);
  CHECK_INT_EQ(goop_multibase_decode("f68656C6c6f", 11, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_multibase_decode("uZm9vYmFy", 9, out, sizeof(out)), 6);
  CHECK_INT_EQ(goop_multibase_decode("mZm9vYmFy", 9, out, sizeof(out)), 6);
  CHECK_INT_EQ(goop_multibase_decode("m+/8", 4, out, sizeof(out)), 2);
  CHECK_INT_EQ(goop_multibase_decode("", 0, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_multibase_decode("z", 1, out, sizeof(out)), 0);
  CHECK_INT_EQ(goop_multibase_decode("Qm", 2, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_multibase_decode("1abc", 4, out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_multibase_decode("x123", 4, out, sizeof(out)), GOOP_EPARSE);

  CHECK_INT_EQ(goop_multibase_encode('z', (const uint8_t *)"hello world", 11, text, sizeof(text)), 16);
  CHECK_STR_EQ(text, "zStV1DL6CwTryKyV");
  CHECK_INT_EQ(goop_multibase_encode('b', (const uint8_t *)"foobar", 6, text, sizeof(text)), 11);
  CHECK_STR_EQ(text, "bmzxw6ytboi");
  CHECK_INT_EQ(goop_multibase_encode('k', (const uint8_t *)"hello world", 11, text, sizeof(text)), 18);
  CHECK_STR_EQ(text, "kfuvrsivvnfrbjwajo");
  CHECK_INT_EQ(goop_multibase_encode('f', (const uint8_t *)"hello", 5, text, sizeof(text)), 11);
  CHECK_STR_EQ(text, "f68656c6c6f");
  CHECK_INT_EQ(goop_multibase_encode('u', (const uint8_t *)"foobar", 6, text, sizeof(text)), 9);
  CHECK_STR_EQ(text, "uZm9vYmFy");
  CHECK_INT_EQ(goop_multibase_encode('x', (const uint8_t *)"a", 1, text, sizeof(text)), GOOP_EINVAL);
  CHECK_INT_EQ(goop_multibase_encode('b', (const uint8_t *)"foobar", 6, text, 11), GOOP_EINVAL);
  CHECK_INT_EQ(goop_multibase_encode('b', (const uint8_t *)"foobar", 6, text, 1), GOOP_EINVAL);
}

static void test_multihash(void) {
  size_t n;
  uint8_t *bin = tap_unhex("12209dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd21bf6f0b9", &n);
  goop_multihash mh;
  CHECK_INT_EQ(goop_multihash_parse(bin, n, &mh), 0);
  CHECK_INT_EQ(mh.code, GOOP_MH_SHA2_256);
  CHECK_INT_EQ(mh.digest_len, 32);
  CHECK(mh.digest == bin + 2);
  /* Truncated, trailing byte, wrong sha2-256 length. */
  CHECK_INT_EQ(goop_multihash_parse(bin, n - 1, &mh), GOOP_EPARSE);
  CHECK_INT_EQ(goop_multihash_parse(bin, 0, &mh), GOOP_EPARSE);
  CHECK_INT_EQ(goop_multihash_parse(bin, 1, &mh), GOOP_EPARSE);
  uint8_t buf[200];
  memcpy(buf, bin, n);
  buf[n] = 0;
  CHECK_INT_EQ(goop_multihash_parse(buf, n + 1, &mh), GOOP_EPARSE);
  const uint8_t short_sha[] = {0x12, 0x02, 0xaa, 0xbb};
  CHECK_INT_EQ(goop_multihash_parse(short_sha, sizeof(short_sha), &mh), GOOP_EPARSE);
  /* Non-minimal varints. */
  const uint8_t nonmin[] = {0x92, 0x00, 0x00};
  CHECK_INT_EQ(goop_multihash_parse(nonmin, sizeof(nonmin), &mh), GOOP_EPARSE);
  const uint8_t nonmin2[] = {0x00, 0x80, 0x00};
  CHECK_INT_EQ(goop_multihash_parse(nonmin2, sizeof(nonmin2), &mh), GOOP_EPARSE);
  /* Identity: empty ok, 128 ok, 129 rejected. */
  const uint8_t id0[] = {0x00, 0x00};
  CHECK_INT_EQ(goop_multihash_parse(id0, 2, &mh), 0);
  CHECK_INT_EQ(mh.digest_len, 0);
  memset(buf, 0x55, sizeof(buf));
  buf[0] = 0x00;
  buf[1] = 0x80;
  buf[2] = 0x01;
  CHECK_INT_EQ(goop_multihash_parse(buf, 3 + 128, &mh), 0);
  buf[1] = 0x81;
  CHECK_INT_EQ(goop_multihash_parse(buf, 3 + 129, &mh), GOOP_EPARSE);
  /* Other codes (e.g. sha2-512 0x13) are accepted with their own lengths. */
  buf[0] = 0x13;
  buf[1] = 0x40;
  CHECK_INT_EQ(goop_multihash_parse(buf, 2 + 64, &mh), 0);
  CHECK_INT_EQ(mh.code, 0x13);

  /* Write. */
  uint8_t w[64];
  CHECK_INT_EQ(goop_multihash_write(GOOP_MH_SHA2_256, bin + 2, 32, w, sizeof(w)), 34);
  CHECK_MEM_EQ(w, bin, 34);
  CHECK_INT_EQ(goop_multihash_write(GOOP_MH_SHA2_256, bin + 2, 32, w, 33), GOOP_EINVAL);
  CHECK_INT_EQ(goop_multihash_write(GOOP_MH_SHA2_256, bin + 2, 31, w, sizeof(w)), GOOP_EINVAL);
  CHECK_INT_EQ(goop_multihash_write(GOOP_MH_IDENTITY, (const uint8_t *)"abc", 3, w, sizeof(w)), 5);
  CHECK_MEM_EQ(w,
               "\x00\x03"
               "abc",
               5);
  uint8_t big[300];
  memset(big, 1, sizeof(big));
  CHECK_INT_EQ(goop_multihash_write(GOOP_MH_IDENTITY, big, 129, big, sizeof(big)), GOOP_EINVAL);
  free(bin);

  /* sha2-256 of "" and "abc" (FIPS 180-2). */
  uint8_t h[34];
  goop_multihash_sha256((const uint8_t *)"", 0, h);
  size_t hn;
  uint8_t *want = tap_unhex("1220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", &hn);
  CHECK_MEM_EQ(h, want, 34);
  free(want);
  goop_multihash_sha256((const uint8_t *)"abc", 3, h);
  want = tap_unhex("1220ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &hn);
  CHECK_MEM_EQ(h, want, 34);
  free(want);
}

static void test_cid(void) {
  /* The same multihash in legacy base58 and CIDv1 base32 form (libp2p-notes §15). */
  const char *cid_text = "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe";
  const char *b58 = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N";
  uint8_t cid[128], mhb[128];
  int cn = goop_multibase_decode(cid_text, strlen(cid_text), cid, sizeof(cid));
  CHECK_INT_EQ(cn, 36);
  uint64_t codec = 0;
  const uint8_t *mh = NULL;
  size_t mh_len = 0;
  CHECK_INT_EQ(goop_cid_parse(cid, (size_t)cn, &codec, &mh, &mh_len), 0);
  CHECK_INT_EQ(codec, GOOP_CODEC_LIBP2P_KEY);
  CHECK_INT_EQ(mh_len, 34);
  int mn = goop_base58_decode(b58, strlen(b58), mhb, sizeof(mhb));
  CHECK_INT_EQ(mn, 34);
  CHECK(mh != NULL && memcmp(mh, mhb, 34) == 0);
  /* And back. */
  uint8_t w[128];
  char text[128];
  int wn = goop_cid_write(GOOP_CODEC_LIBP2P_KEY, mhb, 34, w, sizeof(w));
  CHECK_INT_EQ(wn, 36);
  CHECK_INT_EQ(goop_multibase_encode('b', w, (size_t)wn, text, sizeof(text)), strlen(cid_text));
  CHECK_STR_EQ(text, cid_text);
  char b58out[64];
  CHECK_INT_EQ(goop_base58_encode(mh, mh_len, b58out, sizeof(b58out)), strlen(b58));
  CHECK_STR_EQ(b58out, b58);

  /* Ed25519 peer ID as a CID (libp2p-notes §1.4), in base32 and base36. */
  const char *ed_cid = "bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6";
  const char *ed_cid36 = "k51qzi5uqu5dgy8qsq67hbz73jqkw87l3fgf4a91qb0d9b5173tir7n4vxk1oe";
  size_t en;
  uint8_t *ed =
      tap_unhex("01720024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e", &en);
  CHECK_INT_EQ(goop_multibase_decode(ed_cid, strlen(ed_cid), cid, sizeof(cid)), en);
  CHECK_MEM_EQ(cid, ed, en);
  CHECK_INT_EQ(goop_multibase_decode(ed_cid36, strlen(ed_cid36), cid, sizeof(cid)), en);
  CHECK_MEM_EQ(cid, ed, en);
  CHECK_INT_EQ(goop_multibase_encode('k', ed, en, text, sizeof(text)), strlen(ed_cid36));
  CHECK_STR_EQ(text, ed_cid36);
  CHECK_INT_EQ(goop_cid_parse(ed, en, &codec, &mh, &mh_len), 0);
  CHECK_INT_EQ(mh_len, 38);
  CHECK(mh == ed + 2);

  /* Bad CIDs: version 0/2, CIDv0 bytes, truncated multihash, trailing garbage, empty. */
  CHECK_INT_EQ(goop_cid_parse(mhb, 34, &codec, &mh, &mh_len), GOOP_EPARSE);
  ed[0] = 0x02;
  CHECK_INT_EQ(goop_cid_parse(ed, en, &codec, &mh, &mh_len), GOOP_EPARSE);
  ed[0] = 0x01;
  CHECK_INT_EQ(goop_cid_parse(ed, en - 1, &codec, &mh, &mh_len), GOOP_EPARSE);
  CHECK_INT_EQ(goop_cid_parse(ed, 1, &codec, &mh, &mh_len), GOOP_EPARSE);
  CHECK_INT_EQ(goop_cid_parse(ed, 2, &codec, &mh, &mh_len), GOOP_EPARSE);
  CHECK_INT_EQ(goop_cid_parse(ed, 0, &codec, &mh, &mh_len), GOOP_EPARSE);
  memcpy(w, ed, en);
  w[en] = 0;
  CHECK_INT_EQ(goop_cid_parse(w, en + 1, &codec, &mh, &mh_len), GOOP_EPARSE);
  CHECK_INT_EQ(goop_cid_write(GOOP_CODEC_LIBP2P_KEY, ed + 2, en - 3, w, sizeof(w)), GOOP_EINVAL);
  CHECK_INT_EQ(goop_cid_write(GOOP_CODEC_LIBP2P_KEY, ed + 2, en - 2, w, en - 1), GOOP_EINVAL);
  free(ed);
}

int main(void) {
  RUN(test_base58_vectors);
  RUN(test_base58_bad);
  RUN(test_base58_limits);
  RUN(test_base32);
  RUN(test_base36);
  RUN(test_hex);
  RUN(test_base64url);
  RUN(test_multibase);
  RUN(test_multihash);
  RUN(test_cid);
  return tap_done();
}
