/* Unit tests for the identity module: keys, key files, signatures, Peer IDs. */
#include <goop/identity.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "base.h"
#include "internal.h"
#include "tap.h"

/* libp2p specs, peer-ids/peer-ids.md "Test vectors". */
#define SPEC_ED25519_PRIV                                                                                    \
  "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be8fd4b47bf3d3" \
  "b34b871c3cacf6010f0e42d474fce27e"
#define SPEC_ED25519_PUB "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
#define SPEC_SECP256K1_PRIV "0802122053DADF1D5A164D6B4ACDB15E24AA4C5B1D3461BDBD42ABEDB0A4404D56CED8FB"
#define SPEC_SECP256K1_PUB "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99"
#define SPEC_ECDSA_PRIV                                                                                      \
  "08031279307702010104203E5B1FE9712E6C314942A750BD67485DE3C1EFE85B1BFB520AE8F9AE3DFA4A4CA00A06082A8648CE3D" \
  "030107A14403420004DE3D300FA36AE0E8F5D530899D83ABAB44ABF3161F162A4BC901D8E6ECDA020E8B6D5F8DA30525E71D685"  \
  "1510C098E5C47C646A597FB4DCEC034E9F77C409E62"
#define SPEC_ECDSA_PUB                                                                                       \
  "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5d530899d83abab44abf3161f" \
  "162a4bc901d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec034e9f77c409e62"

static char tmp_root[256];

/* ---- helpers -------------------------------------------------------------------- */

static uint8_t *read_hex_file(const char *name, size_t *ret_len) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/identity/%s", TEST_DATA_DIR, name);
  uint8_t *text = NULL;
  size_t len = 0;
  if (goop__read_file(path, 1 << 20, &text, &len) != 0) {
    *ret_len = 0;
    return NULL;
  }
  uint8_t *out = tap_unhex((const char *)text, ret_len);
  free(text);
  return out;
}

static int write_raw(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  size_t w = fwrite(data, 1, len, f);
  fclose(f);
  return w == len ? 0 : -1;
}

static bool file_equals(const char *path, const void *data, size_t len) {
  uint8_t *buf = NULL;
  size_t n = 0;
  if (goop__read_file(path, 1 << 20, &buf, &n) != 0)
    return false;
  bool eq = n == len && memcmp(buf, data, len) == 0;
  free(buf);
  return eq;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void peer_str(const goop_peer_id *id, char out[GOOP_PEER_ID_STR_MAX]) {
  if (goop_peer_id_to_string(id, out, GOOP_PEER_ID_STR_MAX) < 0)
    strcpy(out, "(error)");
}

static void peer_cid(const goop_peer_id *id, char out[GOOP_PEER_ID_STR_MAX]) {
  if (goop_peer_id_to_cid_string(id, out, GOOP_PEER_ID_STR_MAX) < 0)
    strcpy(out, "(error)");
}

/* Peer ID string of a hex PublicKey protobuf ("(error)" if it fails). */
static void pub_hex_to_str(const char *hex, char out[GOOP_PEER_ID_STR_MAX]) {
  size_t len;
  uint8_t *pb = tap_unhex(hex, &len);
  goop_peer_id id;
  if (goop_pubkey_to_peer_id(pb, len, &id) == 0)
    peer_str(&id, out);
  else
    strcpy(out, "(error)");
  free(pb);
}

/* ---- local identity ------------------------------------------------------------- */

static void test_generate_sign_verify(void) {
  goop_identity *id = NULL;
  CHECK_INT_EQ(goop_identity_generate(&id), 0);
  if (!id)
    return;
  CHECK_STR_EQ(goop_identity_primitive(), "ed25519");
  CHECK_INT_EQ(goop_peer_id_max(), GOOP_PEER_ID_MAX);
  CHECK_INT_EQ(goop_peer_id_str_max(), GOOP_PEER_ID_STR_MAX);

  uint8_t pub[GOOP_ED25519_PUBKEY_PB_SIZE], raw[32];
  goop_identity_public_key(id, pub);
  goop_identity_raw_public_key(id, raw);
  CHECK(pub[0] == 0x08 && pub[1] == 0x01 && pub[2] == 0x12 && pub[3] == 0x20);
  CHECK_MEM_EQ(pub + 4, raw, 32);

  enum goop_key_type type = GOOP_KEY_RSA;
  CHECK_INT_EQ(goop_pubkey_check(pub, sizeof(pub), &type), 0);
  CHECK_INT_EQ(type, GOOP_KEY_ED25519);

  goop_peer_id pid, pid2;
  goop_identity_peer_id(id, &pid);
  CHECK_INT_EQ(goop_pubkey_to_peer_id(pub, sizeof(pub), &pid2), 0);
  CHECK(goop_peer_id_equal(&pid, &pid2));
  CHECK_INT_EQ(pid.len, 38);
  char s[GOOP_PEER_ID_STR_MAX];
  peer_str(&pid, s);
  CHECK(strncmp(s, "12D3KooW", 8) == 0);

  const char *msg = "hello libp2p";
  uint8_t sig[GOOP_ED25519_SIG_SIZE], sig2[GOOP_ED25519_SIG_SIZE];
  CHECK_INT_EQ(goop_identity_sign(id, (const uint8_t *)msg, strlen(msg), sig), 0);
  CHECK_INT_EQ(goop_identity_sign(id, (const uint8_t *)msg, strlen(msg), sig2), 0);
  CHECK_MEM_EQ(sig, sig2, sizeof(sig)); /* deterministic */
  CHECK_INT_EQ(goop_pubkey_verify(pub, sizeof(pub), (const uint8_t *)msg, strlen(msg), sig, sizeof(sig)), 0);
  sig2[10] ^= 0x04;
  CHECK_INT_EQ(goop_pubkey_verify(pub, sizeof(pub), (const uint8_t *)msg, strlen(msg), sig2, sizeof(sig2)),
               GOOP_EBADSIG);
  CHECK_INT_EQ(goop_pubkey_verify(pub, sizeof(pub), (const uint8_t *)msg, strlen(msg) - 1, sig, sizeof(sig)),
               GOOP_EBADSIG);
  CHECK_INT_EQ(goop_pubkey_verify(pub, sizeof(pub), (const uint8_t *)msg, strlen(msg), sig, 63),
               GOOP_EBADSIG);
  CHECK_INT_EQ(goop_pubkey_verify(pub, sizeof(pub), (const uint8_t *)msg, strlen(msg), NULL, 0),
               GOOP_EBADSIG);

  /* Empty message. */
  CHECK_INT_EQ(goop_identity_sign(id, NULL, 0, sig), 0);
  CHECK_INT_EQ(goop_pubkey_verify(pub, sizeof(pub), NULL, 0, sig, sizeof(sig)), 0);

  /* Two identities differ. */
  goop_identity *other = NULL;
  CHECK_INT_EQ(goop_identity_generate(&other), 0);
  if (other) {
    goop_peer_id opid;
    goop_identity_peer_id(other, &opid);
    CHECK(!goop_peer_id_equal(&pid, &opid));
    goop_identity_free(other);
  }
  goop_identity_free(id);
  goop_identity_free(NULL);
}

static void test_bytes_round_trip(void) {
  goop_identity *id = NULL, *back = NULL;
  CHECK_INT_EQ(goop_identity_generate(&id), 0);
  if (!id)
    return;
  uint8_t pb[GOOP_ED25519_PRIVKEY_PB_SIZE], pb2[GOOP_ED25519_PRIVKEY_PB_SIZE];
  goop_identity_to_bytes(id, pb);
  CHECK(pb[0] == 0x08 && pb[1] == 0x01 && pb[2] == 0x12 && pb[3] == 0x40);
  CHECK_INT_EQ(goop_identity_from_bytes(pb, sizeof(pb), &back), 0);
  if (back) {
    goop_identity_to_bytes(back, pb2);
    CHECK_MEM_EQ(pb, pb2, sizeof(pb));
    goop_peer_id a, b;
    goop_identity_peer_id(id, &a);
    goop_identity_peer_id(back, &b);
    CHECK(goop_peer_id_equal(&a, &b));
    goop_identity_free(back);
    back = NULL;
  }

  /* Legacy 96-byte form: seed ‖ pub ‖ pub. */
  uint8_t legacy[4 + 96];
  memcpy(legacy, pb, sizeof(pb));
  legacy[3] = 96;
  memcpy(legacy + 68, pb + 36, 32);
  CHECK_INT_EQ(goop_identity_from_bytes(legacy, sizeof(legacy), &back), 0);
  if (back) {
    goop_identity_to_bytes(back, pb2);
    CHECK_MEM_EQ(pb, pb2, sizeof(pb)); /* re-saved in the 64-byte form */
    goop_identity_free(back);
    back = NULL;
  }
  legacy[99] ^= 1;
  CHECK_INT_EQ(goop_identity_from_bytes(legacy, sizeof(legacy), &back), GOOP_EPARSE);

  /* Public half that does not belong to the seed. */
  uint8_t bad[68];
  memcpy(bad, pb, sizeof(bad));
  bad[67] ^= 0x80;
  CHECK_INT_EQ(goop_identity_from_bytes(bad, sizeof(bad), &back), GOOP_EPARSE);

  /* Malformed inputs. */
  CHECK_INT_EQ(goop_identity_from_bytes(pb, 0, &back), GOOP_EPARSE);
  CHECK_INT_EQ(goop_identity_from_bytes(NULL, 0, &back), GOOP_EPARSE);
  for (size_t n = 1; n < sizeof(pb); n++)
    if (goop_identity_from_bytes(pb, n, &back) != GOOP_EPARSE) {
      CHECK(!"truncated key accepted");
      break;
    }
  CHECK(back == NULL);
  /* Data of the wrong length (63 bytes). */
  memcpy(bad, pb, sizeof(bad));
  bad[3] = 63;
  CHECK_INT_EQ(goop_identity_from_bytes(bad, 67, &back), GOOP_EPARSE);
  /* Missing Type. */
  CHECK_INT_EQ(goop_identity_from_bytes(pb + 2, 66, &back), GOOP_EPARSE);
  /* Missing Data. */
  CHECK_INT_EQ(goop_identity_from_bytes(pb, 2, &back), GOOP_EPARSE);
  /* Duplicate Type. */
  uint8_t dup[70] = {0x08, 0x01};
  memcpy(dup + 2, pb, sizeof(pb));
  CHECK_INT_EQ(goop_identity_from_bytes(dup, sizeof(dup), &back), GOOP_EPARSE);
  /* Unknown extra field 3. */
  uint8_t extra[70];
  memcpy(extra, pb, sizeof(pb));
  extra[68] = 0x18;
  extra[69] = 0x01;
  CHECK_INT_EQ(goop_identity_from_bytes(extra, sizeof(extra), &back), GOOP_EPARSE);
  /* Type with the wrong wire type (fixed32). */
  uint8_t wire[71] = {0x0d, 0x01, 0x00, 0x00, 0x00};
  memcpy(wire + 5, pb + 2, 66);
  CHECK_INT_EQ(goop_identity_from_bytes(wire, sizeof(wire), &back), GOOP_EPARSE);
  /* Other key types. */
  memcpy(bad, pb, sizeof(bad));
  bad[1] = 0x02;
  CHECK_INT_EQ(goop_identity_from_bytes(bad, sizeof(bad), &back), GOOP_EKEYTYPE);
  bad[1] = 0x07;
  CHECK_INT_EQ(goop_identity_from_bytes(bad, sizeof(bad), &back), GOOP_EKEYTYPE);
  CHECK(back == NULL);
  goop__wipe(pb, sizeof(pb));
  goop_identity_free(id);
}

/* ---- spec vectors ----------------------------------------------------------------- */

static void test_spec_keys(void) {
  size_t len;
  uint8_t *priv = tap_unhex(SPEC_ED25519_PRIV, &len);
  goop_identity *id = NULL;
  CHECK_INT_EQ(goop_identity_from_bytes(priv, len, &id), 0);
  if (id) {
    size_t pub_len;
    uint8_t *want = tap_unhex(SPEC_ED25519_PUB, &pub_len);
    uint8_t pub[GOOP_ED25519_PUBKEY_PB_SIZE];
    goop_identity_public_key(id, pub);
    CHECK_INT_EQ(pub_len, sizeof(pub));
    CHECK_MEM_EQ(pub, want, sizeof(pub));
    uint8_t back[GOOP_ED25519_PRIVKEY_PB_SIZE];
    goop_identity_to_bytes(id, back);
    CHECK_MEM_EQ(back, priv, sizeof(back));
    goop_peer_id pid;
    goop_identity_peer_id(id, &pid);
    char s[GOOP_PEER_ID_STR_MAX];
    peer_str(&pid, s);
    CHECK_STR_EQ(s, "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
    peer_cid(&pid, s);
    CHECK_STR_EQ(s, "bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6");
    free(want);
    goop_identity_free(id);
  }
  free(priv);

  char s[GOOP_PEER_ID_STR_MAX];
  pub_hex_to_str(SPEC_ED25519_PUB, s);
  CHECK_STR_EQ(s, "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
  pub_hex_to_str(SPEC_SECP256K1_PUB, s);
  CHECK_STR_EQ(s, "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY");
  pub_hex_to_str(SPEC_ECDSA_PUB, s);
  CHECK_STR_EQ(s, "QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgDk");

  struct {
    const char *hex;
    enum goop_key_type type;
  } pubs[] = {
      {SPEC_ED25519_PUB, GOOP_KEY_ED25519},
      {SPEC_SECP256K1_PUB, GOOP_KEY_SECP256K1},
      {SPEC_ECDSA_PUB, GOOP_KEY_ECDSA},
  };
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(pubs); i++) {
    uint8_t *pb = tap_unhex(pubs[i].hex, &len);
    enum goop_key_type t = (enum goop_key_type)99;
    CHECK_INT_EQ(goop_pubkey_check(pb, len, &t), 0);
    CHECK_INT_EQ(t, pubs[i].type);
    free(pb);
  }

  /* RSA-4096 public key fixture: hashed Peer ID. */
  uint8_t *rsa = read_hex_file("spec-rsa-public.hex", &len);
  CHECK(rsa != NULL);
  if (rsa) {
    enum goop_key_type t = (enum goop_key_type)99;
    CHECK_INT_EQ(goop_pubkey_check(rsa, len, &t), 0);
    CHECK_INT_EQ(t, GOOP_KEY_RSA);
    goop_peer_id pid;
    CHECK_INT_EQ(goop_pubkey_to_peer_id(rsa, len, &pid), 0);
    peer_str(&pid, s);
    CHECK_STR_EQ(s, "QmaeANgBs1DTSxWSrPPtobgQuxW8XTfsS4ydbK4rCHzqxG");
    uint8_t out[64];
    size_t out_len = sizeof(out);
    CHECK_INT_EQ(goop_peer_id_extract_pubkey(&pid, out, &out_len), GOOP_ENOENT);
    free(rsa);
  }

  /* Private keys of other types are not usable as identities. */
  goop_identity *tmp = NULL;
  priv = tap_unhex(SPEC_SECP256K1_PRIV, &len);
  CHECK_INT_EQ(goop_identity_from_bytes(priv, len, &tmp), GOOP_EKEYTYPE);
  free(priv);
  priv = tap_unhex(SPEC_ECDSA_PRIV, &len);
  CHECK_INT_EQ(goop_identity_from_bytes(priv, len, &tmp), GOOP_EKEYTYPE);
  free(priv);
  priv = read_hex_file("spec-rsa-private.hex", &len);
  CHECK(priv != NULL);
  CHECK_INT_EQ(goop_identity_from_bytes(priv, len, &tmp), GOOP_EKEYTYPE);
  free(priv);
  CHECK(tmp == NULL);
}

static void test_spec_peer_id_strings(void) {
  goop_peer_id a, b;
  char s[GOOP_PEER_ID_STR_MAX];
  CHECK_INT_EQ(goop_peer_id_from_string("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", &a), 0);
  CHECK_INT_EQ(goop_peer_id_from_string("bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe", &b),
               0);
  CHECK(goop_peer_id_equal(&a, &b));
  CHECK_INT_EQ(a.len, 34);
  peer_cid(&a, s);
  CHECK_STR_EQ(s, "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe");
  peer_str(&b, s);
  CHECK_STR_EQ(s, "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N");

  /* Upper-case base32 and base36 CIDs of the same ID. */
  CHECK_INT_EQ(goop_peer_id_from_string("BAFZBEIE5745RPV2M6TJYUUGYWY4D5EWRQGQQHFNF445HE3OMZPJBX5XQXE", &b),
               0);
  CHECK(goop_peer_id_equal(&a, &b));
  uint8_t cid[64] = {0x01, 0x72};
  memcpy(cid + 2, a.bytes, a.len);
  char k[128];
  CHECK(goop_multibase_encode('k', cid, 2 + a.len, k, sizeof(k)) > 0);
  CHECK_INT_EQ(goop_peer_id_from_string(k, &b), 0);
  CHECK(goop_peer_id_equal(&a, &b));
  CHECK(goop_multibase_encode('z', cid, 2 + a.len, k, sizeof(k)) > 0);
  CHECK_INT_EQ(goop_peer_id_from_string(k, &b), 0);
  CHECK(goop_peer_id_equal(&a, &b));

  CHECK_INT_EQ(goop_peer_id_from_string("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", &a), 0);
  CHECK_INT_EQ(a.len, 38);
  peer_str(&a, s);
  CHECK_STR_EQ(s, "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA");
  peer_cid(&a, s);
  CHECK_INT_EQ(goop_peer_id_from_string(s, &b), 0);
  CHECK(goop_peer_id_equal(&a, &b));
  uint8_t pk[64];
  size_t pk_len = sizeof(pk);
  CHECK_INT_EQ(goop_peer_id_extract_pubkey(&a, pk, &pk_len), 0);
  CHECK_INT_EQ(pk_len, 36);
  enum goop_key_type t;
  CHECK_INT_EQ(goop_pubkey_check(pk, pk_len, &t), 0);
  CHECK_INT_EQ(t, GOOP_KEY_ED25519);
  pk_len = 35;
  CHECK_INT_EQ(goop_peer_id_extract_pubkey(&a, pk, &pk_len), GOOP_EINVAL);

  /* secp256k1 fixture through text and back. */
  CHECK_INT_EQ(goop_peer_id_from_string("16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY", &a), 0);
  CHECK_INT_EQ(a.len, 39);

  /* Buffers that are too small. */
  CHECK_INT_EQ(goop_peer_id_to_string(&a, s, 10), GOOP_EINVAL);
  CHECK_INT_EQ(goop_peer_id_to_cid_string(&a, s, 10), GOOP_EINVAL);
}

static void test_peer_id_bad(void) {
  goop_peer_id id = {.len = 7};
  const char *bad[] = {
      "",
      "1",
      "Qm",
      "Qm0000",                                                      /* '0' not in base58 */
      "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5",               /* truncated */
      "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5NN",             /* too long */
      "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5S",         /* truncated identity */
      "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqx",  /* truncated CID */
      "bafybeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe", /* dag-pb codec */
      "xafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe", /* unknown multibase */
      "bAFZBEIE5745RPV2M6TJYUUGYWY4D5EWRQGQQHFNF445HE3OMZPJBX5XQXE", /* case mismatch */
      " QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",             /* leading space */
      "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N ",             /* trailing space */
      "zQmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",             /* multibase but not a CID */
  };
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(bad); i++) {
    int rc = goop_peer_id_from_string(bad[i], &id);
    if (rc != GOOP_EPARSE)
      printf("# accepted or wrong error for \"%s\": %d\n", bad[i], rc);
    CHECK_INT_EQ(rc, GOOP_EPARSE);
  }
  CHECK_INT_EQ(id.len, 7); /* untouched */

  char big[300];
  memset(big, '1', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  CHECK_INT_EQ(goop_peer_id_from_string(big, &id), GOOP_EPARSE);

  /* Raw multihash bytes. */
  uint8_t sha[34] = {0x12, 0x20};
  CHECK_INT_EQ(goop_peer_id_from_bytes(sha, sizeof(sha), &id), 0);
  CHECK_INT_EQ(goop_peer_id_from_bytes(sha, 33, &id), GOOP_EPARSE);
  uint8_t sha31[33] = {0x12, 0x1f};
  CHECK_INT_EQ(goop_peer_id_from_bytes(sha31, sizeof(sha31), &id), GOOP_EPARSE);
  uint8_t other[34] = {0x13, 0x20};
  CHECK_INT_EQ(goop_peer_id_from_bytes(other, sizeof(other), &id), GOOP_EPARSE);
  CHECK_INT_EQ(goop_peer_id_from_bytes(sha, 0, &id), GOOP_EPARSE);
  /* Identity multihash of something that is not a PublicKey. */
  uint8_t junk[10] = {0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8};
  CHECK_INT_EQ(goop_peer_id_from_bytes(junk, sizeof(junk), &id), GOOP_EPARSE);
  /* Identity multihash of a 43-byte key (must have been hashed). */
  uint8_t big_id[45] = {0x00, 43, 0x08, 0x01, 0x12, 39};
  CHECK_INT_EQ(goop_peer_id_from_bytes(big_id, sizeof(big_id), &id), GOOP_EPARSE);
  /* Empty identity multihash. */
  uint8_t empty_id[2] = {0x00, 0x00};
  CHECK_INT_EQ(goop_peer_id_from_bytes(empty_id, sizeof(empty_id), &id), GOOP_EPARSE);

  goop_peer_id zero = {0};
  char s[GOOP_PEER_ID_STR_MAX];
  CHECK_INT_EQ(goop_peer_id_to_string(&zero, s, sizeof(s)), GOOP_EINVAL);
  CHECK(!goop_peer_id_equal(&zero, NULL));
}

static void test_pubkey_bad(void) {
  size_t len;
  uint8_t *pb = tap_unhex(SPEC_ED25519_PUB, &len);
  const uint8_t msg[1] = {0};
  uint8_t sig[64] = {0};
  enum goop_key_type t;
  goop_peer_id id;

  for (size_t n = 0; n < len; n++)
    if (goop_pubkey_check(pb, n, &t) != GOOP_EPARSE) {
      CHECK(!"truncated public key accepted");
      break;
    }
  CHECK_INT_EQ(goop_pubkey_check(NULL, 0, &t), GOOP_EPARSE);
  CHECK_INT_EQ(goop_pubkey_verify(pb, len - 1, msg, 1, sig, 64), GOOP_EPARSE);
  CHECK_INT_EQ(goop_pubkey_to_peer_id(pb, len - 1, &id), GOOP_EPARSE);

  /* Fields in the wrong order: not canonical. */
  uint8_t swapped[36];
  memcpy(swapped, pb + 2, 34);
  memcpy(swapped + 34, pb, 2);
  CHECK_INT_EQ(goop_pubkey_check(swapped, sizeof(swapped), &t), GOOP_EPARSE);
  CHECK_INT_EQ(goop_pubkey_to_peer_id(swapped, sizeof(swapped), &id), GOOP_EPARSE);
  /* Non-minimal varint for Type. */
  uint8_t nonmin[37] = {0x08, 0x81, 0x00};
  memcpy(nonmin + 3, pb + 2, 34);
  CHECK_INT_EQ(goop_pubkey_check(nonmin, sizeof(nonmin), &t), GOOP_EPARSE);
  /* Trailing field. */
  uint8_t trail[38];
  memcpy(trail, pb, 36);
  trail[36] = 0x18;
  trail[37] = 0x00;
  CHECK_INT_EQ(goop_pubkey_check(trail, sizeof(trail), &t), GOOP_EPARSE);
  /* Unknown key type. */
  uint8_t unk[36];
  memcpy(unk, pb, 36);
  unk[1] = 0x04;
  CHECK_INT_EQ(goop_pubkey_check(unk, sizeof(unk), &t), GOOP_EKEYTYPE);
  CHECK_INT_EQ(goop_pubkey_verify(unk, sizeof(unk), msg, 1, sig, 64), GOOP_EKEYTYPE);
  /* Ed25519 data of 31 bytes. */
  uint8_t short_ed[35] = {0x08, 0x01, 0x12, 31};
  memcpy(short_ed + 4, pb + 4, 31);
  CHECK_INT_EQ(goop_pubkey_check(short_ed, sizeof(short_ed), &t), GOOP_EPARSE);
  free(pb);

  /* secp256k1: bad prefix and a point not on the curve. */
  pb = tap_unhex(SPEC_SECP256K1_PUB, &len);
  pb[4] = 0x05;
  CHECK_INT_EQ(goop_pubkey_check(pb, len, &t), GOOP_EPARSE);
  pb[4] = 0x03;
  memset(pb + 5, 0xff, 32); /* x >= p */
  CHECK_INT_EQ(goop_pubkey_check(pb, len, &t), GOOP_EPARSE);
  free(pb);

  /* ECDSA type carrying garbage or a key of another algorithm. */
  pb = tap_unhex(SPEC_ECDSA_PUB, &len);
  pb[len - 1] ^= 0x01; /* point off the curve */
  CHECK_INT_EQ(goop_pubkey_check(pb, len, &t), GOOP_EPARSE);
  pb[10] ^= 0x40;
  CHECK_INT_EQ(goop_pubkey_check(pb, len, &t), GOOP_EPARSE);
  free(pb);
  uint8_t *rsa = read_hex_file("spec-rsa-public.hex", &len);
  if (rsa) {
    rsa[1] = GOOP_KEY_ECDSA;
    CHECK_INT_EQ(goop_pubkey_check(rsa, len, &t), GOOP_EPARSE);
    rsa[1] = GOOP_KEY_RSA;
    CHECK_INT_EQ(goop_pubkey_check(rsa, len - 1, &t), GOOP_EPARSE);
    free(rsa);
  }

  /* Larger than GOOP_PUBKEY_PB_MAX. */
  size_t big_len = GOOP_PUBKEY_PB_MAX + 1;
  uint8_t *big = calloc(1, big_len);
  big[0] = 0x08;
  big[1] = 0x00;
  big[2] = 0x12;
  big[3] = (uint8_t)(((big_len - 5) & 0x7f) | 0x80);
  big[4] = (uint8_t)((big_len - 5) >> 7);
  CHECK_INT_EQ(goop_pubkey_check(big, big_len, &t), GOOP_EPARSE);
  CHECK_INT_EQ(goop_pubkey_to_peer_id(big, big_len, &id), GOOP_EPARSE);
  free(big);
}

/* Wrap a DER SPKI of |pkey| into a PublicKey protobuf of |type|. */
static uint8_t *spki_pb(EVP_PKEY *pkey, enum goop_key_type type, size_t *ret_len) {
  unsigned char *der = NULL;
  int n = i2d_PUBKEY(pkey, &der);
  if (n <= 0 || n > 16383)
    return NULL;
  uint8_t *pb = malloc((size_t)n + 5);
  size_t o = 0;
  pb[o++] = 0x08;
  pb[o++] = (uint8_t)type;
  pb[o++] = 0x12;
  if (n < 128) {
    pb[o++] = (uint8_t)n;
  } else {
    pb[o++] = (uint8_t)((n & 0x7f) | 0x80);
    pb[o++] = (uint8_t)(n >> 7);
  }
  memcpy(pb + o, der, (size_t)n);
  OPENSSL_free(der);
  *ret_len = o + (size_t)n;
  return pb;
}

static void test_rsa_size_limits(void) {
  EVP_PKEY *k = EVP_RSA_gen(1024);
  CHECK(k != NULL);
  if (!k)
    return;
  size_t len;
  uint8_t *pb = spki_pb(k, GOOP_KEY_RSA, &len);
  enum goop_key_type t;
  CHECK_INT_EQ(goop_pubkey_check(pb, len, &t), GOOP_EKEYTYPE);
  const uint8_t msg[1] = {0};
  uint8_t sig[128] = {0};
  CHECK_INT_EQ(goop_pubkey_verify(pb, len, msg, 1, sig, sizeof(sig)), GOOP_EKEYTYPE);
  free(pb);
  /* An RSA key under the ECDSA type. */
  pb = spki_pb(k, GOOP_KEY_ECDSA, &len);
  CHECK_INT_EQ(goop_pubkey_check(pb, len, &t), GOOP_EPARSE);
  free(pb);
  EVP_PKEY_free(k);
}

/* Sign |msg| with |k| (SHA-256); DER signature into |der|. */
static size_t sign_sha256(EVP_PKEY *k, const char *msg, uint8_t *der, size_t cap) {
  size_t n = cap;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) != 1 ||
      EVP_DigestSign(ctx, der, &n, (const uint8_t *)msg, strlen(msg)) != 1)
    n = 0;
  EVP_MD_CTX_free(ctx);
  return n;
}

/* ECDSA keys made by OpenSSL: PKIX key with DER and raw r‖s signatures; other curves. */
static void test_ecdsa_openssl(void) {
  const char *msg = "ecdsa test";
  static const struct {
    const char *curve;
    size_t half;
  } curves[] = {{"P-256", 32}, {"P-384", 48}, {"P-521", 66}};
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(curves); i++) {
    EVP_PKEY *k = EVP_EC_gen(curves[i].curve);
    CHECK(k != NULL);
    if (!k)
      continue;
    size_t len;
    uint8_t *pb = spki_pb(k, GOOP_KEY_ECDSA, &len);
    enum goop_key_type t;
    CHECK_INT_EQ(goop_pubkey_check(pb, len, &t), 0);
    CHECK_INT_EQ(t, GOOP_KEY_ECDSA);
    uint8_t der[160];
    size_t der_len = sign_sha256(k, msg, der, sizeof(der));
    CHECK(der_len > 0);
    CHECK_INT_EQ(goop_pubkey_verify(pb, len, (const uint8_t *)msg, strlen(msg), der, der_len), 0);
    /* The same signature as fixed-size r ‖ s. */
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    uint8_t raw[132];
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    size_t half = curves[i].half;
    CHECK(BN_bn2binpad(r, raw, (int)half) == (int)half &&
          BN_bn2binpad(s, raw + half, (int)half) == (int)half);
    ECDSA_SIG_free(es);
    CHECK_INT_EQ(goop_pubkey_verify(pb, len, (const uint8_t *)msg, strlen(msg), raw, 2 * half), 0);
    raw[half - 1] ^= 0x01;
    CHECK_INT_EQ(goop_pubkey_verify(pb, len, (const uint8_t *)msg, strlen(msg), raw, 2 * half), GOOP_EBADSIG);
    CHECK_INT_EQ(goop_pubkey_verify(pb, len, (const uint8_t *)msg, strlen(msg), raw, 2 * half - 1),
                 GOOP_EBADSIG);
    /* Under the secp256k1 or RSA type the same bytes are malformed. */
    pb[1] = GOOP_KEY_SECP256K1;
    CHECK_INT_EQ(goop_pubkey_check(pb, len, &t), GOOP_EPARSE);
    pb[1] = GOOP_KEY_RSA;
    CHECK_INT_EQ(goop_pubkey_check(pb, len, &t), GOOP_EPARSE);
    free(pb);
    EVP_PKEY_free(k);
  }
  /* A curve libp2p does not use. */
  EVP_PKEY *k = EVP_EC_gen("brainpoolP256r1");
  if (k) {
    size_t len;
    uint8_t *pb = spki_pb(k, GOOP_KEY_ECDSA, &len);
    CHECK_INT_EQ(goop_pubkey_check(pb, len, NULL), GOOP_EKEYTYPE);
    free(pb);
    EVP_PKEY_free(k);
  }
}

/* RSA keys made by OpenSSL: PKCS#1 v1.5 over SHA-256; PSS and other hashes fail. */
static void test_rsa_openssl(void) {
  EVP_PKEY *k = EVP_RSA_gen(2048);
  CHECK(k != NULL);
  if (!k)
    return;
  const char *msg = "rsa test";
  size_t len;
  uint8_t *pb = spki_pb(k, GOOP_KEY_RSA, &len);
  uint8_t sig[256];
  size_t sig_len = sign_sha256(k, msg, sig, sizeof(sig));
  CHECK_INT_EQ(sig_len, 256);
  CHECK_INT_EQ(goop_pubkey_verify(pb, len, (const uint8_t *)msg, strlen(msg), sig, sig_len), 0);
  goop_peer_id id;
  CHECK_INT_EQ(goop_pubkey_to_peer_id(pb, len, &id), 0);
  CHECK_INT_EQ(id.len, 34);
  sig[0] ^= 0x01;
  CHECK_INT_EQ(goop_pubkey_verify(pb, len, (const uint8_t *)msg, strlen(msg), sig, sig_len), GOOP_EBADSIG);
  /* SHA-1 signature. */
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  sig_len = sizeof(sig);
  CHECK(EVP_DigestSignInit(ctx, NULL, EVP_sha1(), NULL, k) == 1 &&
        EVP_DigestSign(ctx, sig, &sig_len, (const uint8_t *)msg, strlen(msg)) == 1);
  EVP_MD_CTX_free(ctx);
  CHECK_INT_EQ(goop_pubkey_verify(pb, len, (const uint8_t *)msg, strlen(msg), sig, sig_len), GOOP_EBADSIG);
  free(pb);
  EVP_PKEY_free(k);
}

/* secp256k1 signatures with high S are accepted on verify (go and js accept them too). */
static void test_secp256k1_high_s(void) {
  EVP_PKEY *k = EVP_EC_gen("secp256k1");
  CHECK(k != NULL);
  if (!k)
    return;
  uint8_t point[65];
  size_t plen = 0;
  CHECK(EVP_PKEY_get_octet_string_param(k, "encoded-pub-key", point, sizeof(point), &plen) == 1);
  /* Compressed form for the protobuf. */
  uint8_t pb[4 + 33] = {0x08, 0x02, 0x12, 33};
  if (plen == 65) {
    pb[4] = (uint8_t)(0x02 | (point[64] & 1));
    memcpy(pb + 5, point + 1, 32);
  } else {
    memcpy(pb + 4, point, 33);
  }
  uint8_t pb_long[4 + 65] = {0x08, 0x02, 0x12, 65, 0x04};
  /* Uncompressed form from the compressed one via OpenSSL. */
  EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_secp256k1);
  EC_POINT *pt = EC_POINT_new(g);
  CHECK(EC_POINT_oct2point(g, pt, pb + 4, 33, NULL) == 1);
  CHECK(EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, pb_long + 4, 65, NULL) == 65);

  const char *msg = "high-S test";
  uint8_t der[80];
  size_t der_len = sizeof(der);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  CHECK(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) == 1);
  CHECK(EVP_DigestSign(ctx, der, &der_len, (const uint8_t *)msg, strlen(msg)) == 1);
  EVP_MD_CTX_free(ctx);
  CHECK_INT_EQ(goop_pubkey_verify(pb, sizeof(pb), (const uint8_t *)msg, strlen(msg), der, der_len), 0);
  CHECK_INT_EQ(goop_pubkey_verify(pb_long, sizeof(pb_long), (const uint8_t *)msg, strlen(msg), der, der_len),
               0);
  goop_peer_id a, b;
  CHECK_INT_EQ(goop_pubkey_to_peer_id(pb, sizeof(pb), &a), 0);
  CHECK_INT_EQ(a.len, 39);
  CHECK_INT_EQ(goop_pubkey_to_peer_id(pb_long, sizeof(pb_long), &b), 0);
  CHECK_INT_EQ(b.len, 34); /* 69 bytes: hashed */

  /* Flip S to n - S and re-encode. */
  const unsigned char *p = der;
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
  CHECK(es != NULL);
  if (es) {
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    BIGNUM *s2 = BN_dup(EC_GROUP_get0_order(g));
    BN_sub(s2, s2, s);
    ECDSA_SIG *es2 = ECDSA_SIG_new();
    ECDSA_SIG_set0(es2, BN_dup(r), s2);
    unsigned char *der2 = NULL;
    int n2 = i2d_ECDSA_SIG(es2, &der2);
    CHECK(n2 > 0);
    CHECK_INT_EQ(goop_pubkey_verify(pb, sizeof(pb), (const uint8_t *)msg, strlen(msg), der2, (size_t)n2), 0);
    der2[n2 - 1] ^= 0x01;
    CHECK_INT_EQ(goop_pubkey_verify(pb, sizeof(pb), (const uint8_t *)msg, strlen(msg), der2, (size_t)n2),
                 GOOP_EBADSIG);
    OPENSSL_free(der2);
    ECDSA_SIG_free(es2);
    ECDSA_SIG_free(es);
  }
  EC_POINT_free(pt);
  EC_GROUP_free(g);
  EVP_PKEY_free(k);
}

/* ---- js-libp2p vectors (tests/data/js-keys.json) ------------------------------------ */

static uint8_t *json_hex(json_t *obj, const char *key, size_t *ret_len) {
  const char *s = json_string_value(json_object_get(obj, key));
  if (!s) {
    *ret_len = 0;
    return NULL;
  }
  return tap_unhex(s, ret_len);
}

static void check_js_remote(json_t *root, const char *kind, enum goop_key_type want_type, const uint8_t *msg,
                            size_t msg_len) {
  json_t *arr = json_object_get(root, kind);
  CHECK(json_is_array(arr) && json_array_size(arr) > 0);
  size_t i;
  json_t *k;
  json_array_foreach(arr, i, k) {
    size_t pb_len, sig_len;
    uint8_t *pb = json_hex(k, "public_pb_hex", &pb_len);
    uint8_t *sig = json_hex(k, "sig_hex", &sig_len);
    const char *want_id = json_string_value(json_object_get(k, "peer_id"));
    CHECK(pb && sig && want_id);
    if (!pb || !sig || !want_id) {
      free(pb);
      free(sig);
      continue;
    }
    printf("# %s key %zu (%zu bytes)\n", kind, i, pb_len);
    enum goop_key_type t = (enum goop_key_type)99;
    CHECK_INT_EQ(goop_pubkey_check(pb, pb_len, &t), 0);
    CHECK_INT_EQ(t, want_type);
    goop_peer_id id, parsed;
    CHECK_INT_EQ(goop_pubkey_to_peer_id(pb, pb_len, &id), 0);
    char s[GOOP_PEER_ID_STR_MAX];
    peer_str(&id, s);
    CHECK_STR_EQ(s, want_id);
    CHECK_INT_EQ(goop_peer_id_from_string(want_id, &parsed), 0);
    CHECK(goop_peer_id_equal(&id, &parsed));
    const char *want_cid = json_string_value(json_object_get(k, "peer_id_cid"));
    if (want_cid) {
      peer_cid(&id, s);
      CHECK_STR_EQ(s, want_cid);
    }
    CHECK_INT_EQ(goop_pubkey_verify(pb, pb_len, msg, msg_len, sig, sig_len), 0);
    sig[sig_len / 2] ^= 0x01;
    CHECK_INT_EQ(goop_pubkey_verify(pb, pb_len, msg, msg_len, sig, sig_len), GOOP_EBADSIG);
    sig[sig_len / 2] ^= 0x01;
    uint8_t *msg2 = malloc(msg_len);
    memcpy(msg2, msg, msg_len);
    msg2[0] ^= 0x80;
    CHECK_INT_EQ(goop_pubkey_verify(pb, pb_len, msg2, msg_len, sig, sig_len), GOOP_EBADSIG);
    free(msg2);
    free(pb);
    free(sig);
  }
}

static void test_js_keys(void) {
  json_error_t err;
  json_t *root = json_load_file(TEST_DATA_DIR "/js-keys.json", 0, &err);
  CHECK(root != NULL);
  if (!root) {
    printf("# cannot load js-keys.json: %s\n", err.text);
    return;
  }
  size_t msg_len;
  uint8_t *msg = json_hex(root, "message_hex", &msg_len);
  CHECK(msg != NULL && msg_len > 0);
  if (!msg) {
    json_decref(root);
    return;
  }

  check_js_remote(root, "ed25519", GOOP_KEY_ED25519, msg, msg_len);
  check_js_remote(root, "secp256k1", GOOP_KEY_SECP256K1, msg, msg_len);
  check_js_remote(root, "ecdsa", GOOP_KEY_ECDSA, msg, msg_len);
  check_js_remote(root, "rsa", GOOP_KEY_RSA, msg, msg_len);

  /* Our Ed25519 identity from js's private key: same key, same Peer ID, same signature. */
  json_t *arr = json_object_get(root, "ed25519");
  size_t i;
  json_t *k;
  json_array_foreach(arr, i, k) {
    size_t priv_len, pub_len, sig_len;
    uint8_t *priv = json_hex(k, "private_pb_hex", &priv_len);
    uint8_t *pub = json_hex(k, "public_pb_hex", &pub_len);
    uint8_t *sig = json_hex(k, "sig_hex", &sig_len);
    const char *want_id = json_string_value(json_object_get(k, "peer_id"));
    const char *want_cid = json_string_value(json_object_get(k, "peer_id_cid"));
    goop_identity *id = NULL;
    CHECK_INT_EQ(goop_identity_from_bytes(priv, priv_len, &id), 0);
    if (id) {
      uint8_t our_pub[GOOP_ED25519_PUBKEY_PB_SIZE], our_sig[GOOP_ED25519_SIG_SIZE];
      goop_identity_public_key(id, our_pub);
      CHECK(pub_len == sizeof(our_pub) && memcmp(pub, our_pub, pub_len) == 0);
      goop_peer_id pid;
      goop_identity_peer_id(id, &pid);
      char s[GOOP_PEER_ID_STR_MAX];
      peer_str(&pid, s);
      CHECK_STR_EQ(s, want_id);
      peer_cid(&pid, s);
      CHECK_STR_EQ(s, want_cid);
      CHECK_INT_EQ(goop_identity_sign(id, msg, msg_len, our_sig), 0);
      CHECK(sig_len == sizeof(our_sig) && memcmp(sig, our_sig, sig_len) == 0);
      goop_identity_free(id);
    }

    /* The same key as a file written by js-libp2p. */
    char path[512];
    snprintf(path, sizeof(path), "%s/js-%zu.key", tmp_root, i);
    CHECK_INT_EQ(write_raw(path, priv, priv_len), 0);
    char eb[GOOP_ERRBUF_SIZE] = "";
    id = NULL;
    CHECK_INT_EQ(goop_identity_load(path, &id, eb, sizeof(eb)), 0);
    if (id) {
      goop_peer_id pid;
      goop_identity_peer_id(id, &pid);
      char s[GOOP_PEER_ID_STR_MAX];
      peer_str(&pid, s);
      CHECK_STR_EQ(s, want_id);
      goop_identity_free(id);
    }
    free(priv);
    free(pub);
    free(sig);
  }
  free(msg);
  json_decref(root);
}

/* ---- key files ---------------------------------------------------------------------- */

static void test_save_load(void) {
  char dir[512], path[600], eb[GOOP_ERRBUF_SIZE];
  snprintf(dir, sizeof(dir), "%s/save/a/b", tmp_root);
  snprintf(path, sizeof(path), "%s/identity.key", dir);

  goop_identity *id = NULL, *back = NULL;
  CHECK_INT_EQ(goop_identity_generate(&id), 0);
  if (!id)
    return;
  CHECK_INT_EQ(goop_identity_save(id, path, eb, sizeof(eb)), 0);
  struct stat st;
  CHECK_INT_EQ(stat(path, &st), 0);
  CHECK_INT_EQ(st.st_mode & 07777, 0600);
  CHECK_INT_EQ(st.st_size, GOOP_ED25519_PRIVKEY_PB_SIZE);
  CHECK_INT_EQ(stat(dir, &st), 0);
  CHECK_INT_EQ(st.st_mode & 07777, 0700);
  snprintf(dir, sizeof(dir), "%s/save", tmp_root);
  CHECK_INT_EQ(stat(dir, &st), 0);
  CHECK_INT_EQ(st.st_mode & 07777, 0700);

  CHECK_INT_EQ(goop_identity_load(path, &back, eb, sizeof(eb)), 0);
  if (back) {
    goop_peer_id a, b;
    goop_identity_peer_id(id, &a);
    goop_identity_peer_id(back, &b);
    CHECK(goop_peer_id_equal(&a, &b));
    goop_identity_free(back);
  }
  /* Saving again replaces the file atomically and leaves no temporary files. */
  CHECK_INT_EQ(goop_identity_save(id, path, eb, sizeof(eb)), 0);
  snprintf(dir, sizeof(dir), "%s/save/a/b", tmp_root);
  CHECK_INT_EQ(count_entries(dir), 1);

  /* Saving onto a directory fails with a message naming the path. */
  eb[0] = '\0';
  CHECK(goop_identity_save(id, dir, eb, sizeof(eb)) < 0);
  CHECK(strstr(eb, dir) != NULL);
  goop_identity_free(id);
}

static void test_load_errors(void) {
  char path[600], eb[GOOP_ERRBUF_SIZE];
  goop_identity *id = NULL;

  snprintf(path, sizeof(path), "%s/missing.key", tmp_root);
  CHECK_INT_EQ(goop_identity_load(path, &id, eb, sizeof(eb)), GOOP_ENOENT);
  CHECK(strstr(eb, path) != NULL);
  CHECK_INT_EQ(goop_identity_load(path, &id, NULL, 0), GOOP_ENOENT);

  /* Corrupt (12 bytes). */
  const uint8_t junk[12] = "hello world";
  snprintf(path, sizeof(path), "%s/corrupt.key", tmp_root);
  CHECK_INT_EQ(write_raw(path, junk, sizeof(junk)), 0);
  CHECK_INT_EQ(goop_identity_load(path, &id, eb, sizeof(eb)), GOOP_EPARSE);
  printf("# %s\n", eb);
  CHECK(strstr(eb, path) == eb);
  CHECK(strstr(eb, "68 bytes expected, got 12") != NULL);
  CHECK(file_equals(path, junk, sizeof(junk)));

  /* Truncated real key. */
  goop_identity *gen = NULL;
  CHECK_INT_EQ(goop_identity_generate(&gen), 0);
  uint8_t pb[GOOP_ED25519_PRIVKEY_PB_SIZE];
  goop_identity_to_bytes(gen, pb);
  goop_identity_free(gen);
  snprintf(path, sizeof(path), "%s/truncated.key", tmp_root);
  CHECK_INT_EQ(write_raw(path, pb, 67), 0);
  CHECK_INT_EQ(goop_identity_load(path, &id, eb, sizeof(eb)), GOOP_EPARSE);
  printf("# %s\n", eb);
  CHECK(strstr(eb, path) == eb);
  CHECK(file_equals(path, pb, 67));

  /* Empty file. */
  snprintf(path, sizeof(path), "%s/empty.key", tmp_root);
  CHECK_INT_EQ(write_raw(path, "", 0), 0);
  CHECK_INT_EQ(goop_identity_load(path, &id, eb, sizeof(eb)), GOOP_EPARSE);
  CHECK(strstr(eb, path) == eb);

  /* Wrong key type (secp256k1 key from the spec). */
  size_t len;
  uint8_t *secp = tap_unhex(SPEC_SECP256K1_PRIV, &len);
  snprintf(path, sizeof(path), "%s/secp.key", tmp_root);
  CHECK_INT_EQ(write_raw(path, secp, len), 0);
  CHECK_INT_EQ(goop_identity_load(path, &id, eb, sizeof(eb)), GOOP_EKEYTYPE);
  printf("# %s\n", eb);
  CHECK(strstr(eb, path) == eb);
  CHECK(strstr(eb, "secp256k1") != NULL);
  CHECK(file_equals(path, secp, len));
  free(secp);

  /* A directory. */
  CHECK_INT_EQ(goop_identity_load(tmp_root, &id, eb, sizeof(eb)), GOOP_EIO);
  CHECK(strstr(eb, tmp_root) == eb);

  /* A huge file. */
  snprintf(path, sizeof(path), "%s/huge.key", tmp_root);
  uint8_t *huge = calloc(1, 100000);
  CHECK_INT_EQ(write_raw(path, huge, 100000), 0);
  free(huge);
  CHECK_INT_EQ(goop_identity_load(path, &id, eb, sizeof(eb)), GOOP_EPARSE);
  CHECK(strstr(eb, path) == eb);

  /* Unreadable (skipped as root, who can read anything). */
  if (geteuid() != 0) {
    snprintf(path, sizeof(path), "%s/noperm.key", tmp_root);
    CHECK_INT_EQ(write_raw(path, pb, sizeof(pb)), 0);
    CHECK_INT_EQ(chmod(path, 0), 0);
    CHECK_INT_EQ(goop_identity_load(path, &id, eb, sizeof(eb)), GOOP_EACCES);
    CHECK(strstr(eb, path) == eb);
    bool created = true;
    CHECK_INT_EQ(goop_identity_load_or_create(path, &id, &created, eb, sizeof(eb)), GOOP_EACCES);
    CHECK_INT_EQ(chmod(path, 0600), 0);
    CHECK(file_equals(path, pb, sizeof(pb)));
  }
  CHECK(id == NULL);
  goop__wipe(pb, sizeof(pb));
}

static void test_load_or_create(void) {
  char dir[512], path[600], eb[GOOP_ERRBUF_SIZE];
  snprintf(dir, sizeof(dir), "%s/loc/data", tmp_root);
  snprintf(path, sizeof(path), "%s/identity.key", dir);

  goop_identity *a = NULL, *b = NULL;
  bool created = false;
  CHECK_INT_EQ(goop_identity_load_or_create(path, &a, &created, eb, sizeof(eb)), 0);
  CHECK(created);
  struct stat st;
  CHECK_INT_EQ(stat(path, &st), 0);
  CHECK_INT_EQ(st.st_mode & 07777, 0600);
  CHECK_INT_EQ(stat(dir, &st), 0);
  CHECK_INT_EQ(st.st_mode & 07777, 0700);
  CHECK_INT_EQ(count_entries(dir), 1);

  CHECK_INT_EQ(goop_identity_load_or_create(path, &b, &created, eb, sizeof(eb)), 0);
  CHECK(!created);
  if (a && b) {
    goop_peer_id pa, pb;
    goop_identity_peer_id(a, &pa);
    goop_identity_peer_id(b, &pb);
    CHECK(goop_peer_id_equal(&pa, &pb));
  }
  goop_identity_free(a);
  goop_identity_free(b);
  a = b = NULL;
  CHECK_INT_EQ(goop_identity_load_or_create(path, &a, NULL, NULL, 0), 0);
  goop_identity_free(a);
  a = NULL;

  /* A corrupt file is an error and is never replaced. */
  const uint8_t junk[5] = {0x08, 0x01, 0x12, 0x40, 0x00};
  CHECK_INT_EQ(write_raw(path, junk, sizeof(junk)), 0);
  created = true;
  CHECK_INT_EQ(goop_identity_load_or_create(path, &a, &created, eb, sizeof(eb)), GOOP_EPARSE);
  CHECK(a == NULL);
  CHECK(strstr(eb, path) == eb);
  CHECK(file_equals(path, junk, sizeof(junk)));
  CHECK_INT_EQ(count_entries(dir), 1);

  /* Same for a file of another key type. */
  size_t len;
  uint8_t *ecdsa = tap_unhex(SPEC_ECDSA_PRIV, &len);
  CHECK_INT_EQ(write_raw(path, ecdsa, len), 0);
  CHECK_INT_EQ(goop_identity_load_or_create(path, &a, &created, eb, sizeof(eb)), GOOP_EKEYTYPE);
  CHECK(file_equals(path, ecdsa, len));
  free(ecdsa);

  /* A dangling symlink is not followed into a new file. */
  char link_path[700], target[700];
  snprintf(link_path, sizeof(link_path), "%s/dangling.key", dir);
  snprintf(target, sizeof(target), "%s/nowhere/x.key", tmp_root);
  CHECK_INT_EQ(symlink(target, link_path), 0);
  CHECK(goop_identity_load_or_create(link_path, &a, &created, eb, sizeof(eb)) < 0);
  CHECK(a == NULL);
  struct stat lst;
  CHECK_INT_EQ(lstat(link_path, &lst), 0);
  CHECK(S_ISLNK(lst.st_mode));
  CHECK(stat(target, &st) != 0);
}

int main(void) {
  snprintf(tmp_root, sizeof(tmp_root), "/tmp/goop-test-identity-XXXXXX");
  if (!mkdtemp(tmp_root)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_generate_sign_verify);
  RUN(test_bytes_round_trip);
  RUN(test_spec_keys);
  RUN(test_spec_peer_id_strings);
  RUN(test_peer_id_bad);
  RUN(test_pubkey_bad);
  RUN(test_rsa_size_limits);
  RUN(test_secp256k1_high_s);
  RUN(test_ecdsa_openssl);
  RUN(test_rsa_openssl);
  RUN(test_js_keys);
  RUN(test_save_load);
  RUN(test_load_errors);
  RUN(test_load_or_create);
  nftw(tmp_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return tap_done();
}
