/* Unit tests for the Noise XX core and the libp2p /noise handshake. */
#include <openssl/evp.h>

#include "internal.h"
#include "noise.h"
#include "proto.h"
#include "tap.h"

#define YAMUX "/yamux/1.0.0"
#define MPLEX "/mplex/6.7.0"

/* ---- helpers ---------------------------------------------------------------- */

static void x25519_pub(const uint8_t priv[32], uint8_t pub[32]) {
  EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
  size_t len = 32;
  if (!pk || EVP_PKEY_get_raw_public_key(pk, pub, &len) != 1)
    abort();
  EVP_PKEY_free(pk);
}

/* Deliver the next message from |from| to |to|. Returns the read result. */
static int pass_one(goop_noise_hs *from, goop_noise_hs *to) {
  goop_buf b;
  goop_buf_init(&b, 0);
  int rc = goop_noise_hs_write_message(from, &b);
  if (rc == 0) {
    const uint8_t *body;
    size_t blen;
    size_t used = goop_noise_deframe(b.data, b.len, &body, &blen);
    rc = used == b.len ? goop_noise_hs_read_message(to, body, blen) : -9999;
  }
  goop_buf_free(&b);
  return rc;
}

/* Run a complete handshake. Returns 0 or the first error. */
static int run_handshake(goop_noise_hs *i, goop_noise_hs *r) {
  int rc;
  if ((rc = pass_one(i, r)) || (rc = pass_one(r, i)) || (rc = pass_one(i, r)))
    return rc;
  return 0;
}

typedef struct pair {
  goop_identity *id_i, *id_r;
  goop_noise_hs *i, *r;
} pair;

static void pair_new(pair *p, const char *const *mi, size_t ni, const char *const *mr, size_t nr,
                     const goop_peer_id *exp_i, const goop_peer_id *exp_r) {
  if (!p->id_i && goop_identity_generate(&p->id_i))
    abort();
  if (!p->id_r && goop_identity_generate(&p->id_r))
    abort();
  if (goop_noise_hs_new(true, p->id_i, exp_i, mi, ni, &p->i) ||
      goop_noise_hs_new(false, p->id_r, exp_r, mr, nr, &p->r))
    abort();
}

static void pair_free(pair *p) {
  goop_noise_hs_free(p->i);
  goop_noise_hs_free(p->r);
  goop_identity_free(p->id_i);
  goop_identity_free(p->id_r);
  *p = (pair){0};
}

/* ---- 1. Cacophony known-answer vector ----------------------------------- */

typedef struct kat {
  uint8_t *prologue, *init_static, *init_eph, *resp_static, *resp_eph, *hash;
  size_t prologue_len, hash_len, ks[4];
  uint8_t *payload[6], *ct[6];
  size_t payload_len[6], ct_len[6];
  int n_payload, n_ct;
} kat;

static int load_kat(kat *k) {
  FILE *f = fopen(TEST_DATA_DIR "/noise/cacophony-xx.txt", "r");
  if (!f)
    return -1;
  char line[1024], name[64], val[900];
  size_t dummy;
  *k = (kat){0};
  while (fgets(line, sizeof(line), f)) {
    if (line[0] == '#' || sscanf(line, "%63s %899s", name, val) != 2)
      continue;
    if (!strcmp(name, "prologue"))
      k->prologue = tap_unhex(val, &k->prologue_len);
    else if (!strcmp(name, "init_static"))
      k->init_static = tap_unhex(val, &k->ks[0]);
    else if (!strcmp(name, "init_ephemeral"))
      k->init_eph = tap_unhex(val, &k->ks[1]);
    else if (!strcmp(name, "resp_static"))
      k->resp_static = tap_unhex(val, &k->ks[2]);
    else if (!strcmp(name, "resp_ephemeral"))
      k->resp_eph = tap_unhex(val, &k->ks[3]);
    else if (!strcmp(name, "handshake_hash"))
      k->hash = tap_unhex(val, &k->hash_len);
    else if (!strcmp(name, "payload") && k->n_payload < 6) {
      k->payload[k->n_payload] = tap_unhex(val, &k->payload_len[k->n_payload]);
      k->n_payload++;
    } else if (!strcmp(name, "ciphertext") && k->n_ct < 6) {
      k->ct[k->n_ct] = tap_unhex(val, &k->ct_len[k->n_ct]);
      k->n_ct++;
    }
    (void)dummy;
  }
  fclose(f);
  return k->n_payload == 6 && k->n_ct == 6 && k->hash && k->hash_len == 32 ? 0 : -1;
}

static void free_kat(kat *k) {
  free(k->prologue);
  free(k->init_static);
  free(k->init_eph);
  free(k->resp_static);
  free(k->resp_eph);
  free(k->hash);
  for (int i = 0; i < 6; i++) {
    free(k->payload[i]);
    free(k->ct[i]);
  }
}

static void test_cacophony_xx(void) {
  kat k;
  int lrc = load_kat(&k);
  CHECK_INT_EQ(lrc, 0);
  if (lrc) {
    free_kat(&k);
    return;
  }
  goop_noise_hs *hs[2] = {NULL, NULL}; /* [0] initiator, [1] responder */
  CHECK_INT_EQ(goop_noise_hs_new(true, NULL, NULL, NULL, 0, &hs[0]), 0);
  CHECK_INT_EQ(goop_noise_hs_new(false, NULL, NULL, NULL, 0, &hs[1]), 0);
  for (int s = 0; s < 2; s++) {
    CHECK_INT_EQ(goop_noise_hs_set_raw(hs[s]), 0);
    CHECK_INT_EQ(goop_noise_hs_set_prologue(hs[s], k.prologue, k.prologue_len), 0);
  }
  CHECK_INT_EQ(goop_noise_hs_set_static_key(hs[0], k.init_static), 0);
  CHECK_INT_EQ(goop_noise_hs_set_ephemeral_key(hs[0], k.init_eph), 0);
  CHECK_INT_EQ(goop_noise_hs_set_static_key(hs[1], k.resp_static), 0);
  CHECK_INT_EQ(goop_noise_hs_set_ephemeral_key(hs[1], k.resp_eph), 0);

  goop_buf out, pl;
  goop_buf_init(&out, 0);
  goop_buf_init(&pl, 0);
  for (int m = 0; m < 3; m++) {
    goop_noise_hs *w = hs[m % 2], *r = hs[1 - m % 2];
    goop_buf_reset(&out);
    goop_buf_reset(&pl);
    CHECK_INT_EQ(goop_noise_hs_write_raw(w, k.payload[m], k.payload_len[m], &out), 0);
    CHECK_INT_EQ(out.len, k.ct_len[m]);
    CHECK(out.len == k.ct_len[m] && memcmp(out.data, k.ct[m], out.len) == 0);
    CHECK_INT_EQ(goop_noise_hs_read_raw(r, out.data, out.len, &pl), 0);
    CHECK(pl.len == k.payload_len[m] && memcmp(pl.data, k.payload[m], pl.len) == 0);
  }
  uint8_t h[32];
  CHECK(goop_noise_hs_is_complete(hs[0]) && goop_noise_hs_is_complete(hs[1]));
  for (int s = 0; s < 2; s++) {
    CHECK_INT_EQ(goop_noise_hs_handshake_hash(hs[s], h), 0);
    CHECK_MEM_EQ(h, k.hash, 32);
  }
  /* Raw mode has no libp2p identity. */
  CHECK(goop_noise_hs_remote_peer_id(hs[0]) == NULL);

  goop_noise_cipher *c[2] = {NULL, NULL};
  CHECK_INT_EQ(goop_noise_hs_split(hs[0], &c[0]), 0);
  CHECK_INT_EQ(goop_noise_hs_split(hs[1], &c[1]), 0);
  CHECK_INT_EQ(goop_noise_hs_split(hs[1], &c[1]), GOOP_ESTATE);
  /* Transport messages continue the alternation: 3 from the responder, 4 initiator, 5 responder. */
  for (int m = 3; m < 6 && c[0] && c[1]; m++) {
    goop_noise_cipher *w = c[m % 2], *r = c[1 - m % 2];
    goop_buf_reset(&out);
    goop_buf_reset(&pl);
    CHECK_INT_EQ(goop_noise_encrypt(w, k.payload[m], k.payload_len[m], &out), 0);
    CHECK_INT_EQ(out.len, k.ct_len[m] + 2);
    CHECK(out.len == k.ct_len[m] + 2 && out.data[0] == 0 && out.data[1] == k.ct_len[m] &&
          memcmp(out.data + 2, k.ct[m], k.ct_len[m]) == 0);
    size_t used = 0;
    CHECK_INT_EQ(goop_noise_decrypt_frame(r, out.data, out.len, &used, &pl), 1);
    CHECK_INT_EQ(used, out.len);
    CHECK(pl.len == k.payload_len[m] && memcmp(pl.data, k.payload[m], pl.len) == 0);
  }
  goop_buf_free(&out);
  goop_buf_free(&pl);
  goop_noise_cipher_free(c[0]);
  goop_noise_cipher_free(c[1]);
  goop_noise_hs_free(hs[0]);
  goop_noise_hs_free(hs[1]);
  free_kat(&k);
}

/* ---- 2. full libp2p handshake and transport ----------------------------- */

static void round_trip(goop_noise_cipher *tx, goop_noise_cipher *rx, size_t size) {
  uint8_t *data = malloc(size ? size : 1);
  for (size_t i = 0; i < size; i++)
    data[i] = (uint8_t)(i * 31 + 7);
  goop_buf wire, plain;
  goop_buf_init(&wire, 0);
  goop_buf_init(&plain, 0);
  CHECK_INT_EQ(goop_noise_encrypt(tx, data, size, &wire), 0);
  size_t frames = size == 0 ? 1 : (size + GOOP_NOISE_MAX_PLAINTEXT - 1) / GOOP_NOISE_MAX_PLAINTEXT;
  CHECK_INT_EQ(wire.len, size + frames * 18);
  size_t off = 0, n = 0, used = 0;
  int rc = 0;
  /* An incomplete frame needs more input. */
  CHECK_INT_EQ(goop_noise_decrypt_frame(rx, wire.data, 1, &used, &plain), 0);
  CHECK_INT_EQ(goop_noise_decrypt_frame(rx, wire.data, GOOP_MIN(wire.len - 1, 65536), &used, &plain), 0);
  while (off < wire.len &&
         (rc = goop_noise_decrypt_frame(rx, wire.data + off, wire.len - off, &used, &plain)) == 1) {
    off += used;
    n++;
  }
  CHECK_INT_EQ(rc, 1);
  CHECK_INT_EQ(n, frames);
  CHECK_INT_EQ(off, wire.len);
  CHECK(plain.len == size && (size == 0 || memcmp(plain.data, data, size) == 0));
  goop_buf_free(&wire);
  goop_buf_free(&plain);
  free(data);
}

static void test_libp2p_handshake(void) {
  static const char *const mux[] = {YAMUX};
  pair p = {0};
  pair_new(&p, mux, 1, mux, 1, NULL, NULL);
  CHECK(goop_noise_hs_want_write(p.i) && !goop_noise_hs_want_read(p.i));
  CHECK(goop_noise_hs_want_read(p.r) && !goop_noise_hs_want_write(p.r));

  /* msg1 is exactly 32 bytes, framed. */
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_noise_hs_write_message(p.i, &b), 0);
  CHECK(b.len == 34 && b.data[0] == 0 && b.data[1] == 32);
  CHECK_INT_EQ(goop_noise_hs_read_message(p.r, b.data + 2, b.len - 2), 0);
  /* msg2 with an Ed25519 key and one muxer: 32 + 48 + 120 + 16 = 216 bytes. */
  goop_buf_reset(&b);
  CHECK_INT_EQ(goop_noise_hs_write_message(p.r, &b), 0);
  CHECK(b.len == 218 && b.data[0] == 0 && b.data[1] == 216);
  CHECK_INT_EQ(goop_noise_hs_read_message(p.i, b.data + 2, b.len - 2), 0);
  CHECK_STR_EQ(goop_noise_hs_early_muxer(p.i), YAMUX);
  goop_buf_reset(&b);
  CHECK_INT_EQ(goop_noise_hs_write_message(p.i, &b), 0);
  CHECK(b.len == 186 && b.data[0] == 0 && b.data[1] == 184);
  CHECK_INT_EQ(goop_noise_hs_read_message(p.r, b.data + 2, b.len - 2), 0);
  goop_buf_free(&b);

  CHECK(goop_noise_hs_is_complete(p.i) && goop_noise_hs_is_complete(p.r));
  CHECK(!goop_noise_hs_want_write(p.i) && !goop_noise_hs_want_read(p.i));
  goop_peer_id want_i, want_r;
  goop_identity_peer_id(p.id_i, &want_i);
  goop_identity_peer_id(p.id_r, &want_r);
  const goop_peer_id *got_r = goop_noise_hs_remote_peer_id(p.i), *got_i = goop_noise_hs_remote_peer_id(p.r);
  CHECK(got_r && goop_peer_id_equal(got_r, &want_r));
  CHECK(got_i && goop_peer_id_equal(got_i, &want_i));
  uint8_t pk[GOOP_ED25519_PUBKEY_PB_SIZE];
  size_t pk_len = 0;
  goop_identity_public_key(p.id_r, pk);
  const uint8_t *rpk = goop_noise_hs_remote_public_key(p.i, &pk_len);
  CHECK(rpk && pk_len == sizeof(pk) && memcmp(rpk, pk, pk_len) == 0);
  CHECK_STR_EQ(goop_noise_hs_early_muxer(p.i), YAMUX);
  CHECK_STR_EQ(goop_noise_hs_early_muxer(p.r), YAMUX);
  CHECK_INT_EQ(goop_noise_hs_remote_muxer_count(p.r), 1);
  CHECK_STR_EQ(goop_noise_hs_remote_muxer(p.r, 0), YAMUX);
  CHECK(goop_noise_hs_remote_muxer(p.r, 1) == NULL);
  uint8_t hi[32], hr[32];
  CHECK_INT_EQ(goop_noise_hs_handshake_hash(p.i, hi), 0);
  CHECK_INT_EQ(goop_noise_hs_handshake_hash(p.r, hr), 0);
  CHECK_MEM_EQ(hi, hr, 32);
  /* No more handshake messages. */
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_noise_hs_write_message(p.i, &b), GOOP_ESTATE);
  CHECK_INT_EQ(b.len, 0);
  goop_buf_free(&b);

  goop_noise_cipher *ci = NULL, *cr = NULL;
  CHECK_INT_EQ(goop_noise_hs_split(p.i, &ci), 0);
  CHECK_INT_EQ(goop_noise_hs_split(p.r, &cr), 0);
  if (ci && cr) {
    static const size_t sizes[] = {0, 1, 65519, 65520, 1 << 20};
    for (size_t s = 0; s < GOOP_ARRAY_SIZE(sizes); s++) {
      round_trip(ci, cr, sizes[s]);
      round_trip(cr, ci, sizes[s]);
    }
  }
  goop_noise_cipher_free(ci);
  goop_noise_cipher_free(cr);
  pair_free(&p);
}

/* ---- 3. expected peer ID ------------------------------------------------- */

static void test_expected_peer_id(void) {
  static const char *const mux[] = {YAMUX};
  goop_identity *other = NULL;
  CHECK_INT_EQ(goop_identity_generate(&other), 0);
  goop_peer_id wrong, right_r, right_i;
  goop_identity_peer_id(other, &wrong);

  /* Dialer expects someone else: msg2 fails. */
  pair p = {0};
  pair_new(&p, mux, 1, mux, 1, &wrong, NULL);
  CHECK_INT_EQ(pass_one(p.i, p.r), 0);
  CHECK_INT_EQ(pass_one(p.r, p.i), GOOP_EPEERID);
  CHECK(!goop_noise_hs_is_complete(p.i));
  CHECK(goop_noise_hs_remote_peer_id(p.i) == NULL);
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_noise_hs_write_message(p.i, &b), GOOP_ESTATE); /* poisoned */
  goop_buf_free(&b);
  pair_free(&p);

  /* Listener expects someone else: msg3 fails. */
  pair_new(&p, mux, 1, mux, 1, NULL, &wrong);
  CHECK_INT_EQ(pass_one(p.i, p.r), 0);
  CHECK_INT_EQ(pass_one(p.r, p.i), 0);
  CHECK_INT_EQ(pass_one(p.i, p.r), GOOP_EPEERID);
  pair_free(&p);

  /* Both expect the right IDs. */
  CHECK_INT_EQ(goop_identity_generate(&p.id_i), 0);
  CHECK_INT_EQ(goop_identity_generate(&p.id_r), 0);
  goop_identity_peer_id(p.id_i, &right_i);
  goop_identity_peer_id(p.id_r, &right_r);
  pair_new(&p, mux, 1, mux, 1, &right_r, &right_i);
  CHECK_INT_EQ(run_handshake(p.i, p.r), 0);
  CHECK(goop_noise_hs_is_complete(p.r));
  pair_free(&p);
  goop_identity_free(other);
}

/* ---- 4. tampering and malformed input ------------------------------------ */

static void test_tampered_handshake(void) {
  pair p = {0};
  goop_buf b;
  goop_buf_init(&b, 0);
  /* Flip one bit of the encrypted static key in msg2. */
  pair_new(&p, NULL, 0, NULL, 0, NULL, NULL);
  CHECK_INT_EQ(pass_one(p.i, p.r), 0);
  CHECK_INT_EQ(goop_noise_hs_write_message(p.r, &b), 0);
  b.data[2 + 40] ^= 1;
  CHECK_INT_EQ(goop_noise_hs_read_message(p.i, b.data + 2, b.len - 2), GOOP_ECRYPTO);
  pair_free(&p);

  /* Flip a bit of the payload tag in msg3. */
  pair_new(&p, NULL, 0, NULL, 0, NULL, NULL);
  CHECK_INT_EQ(pass_one(p.i, p.r), 0);
  CHECK_INT_EQ(pass_one(p.r, p.i), 0);
  goop_buf_reset(&b);
  CHECK_INT_EQ(goop_noise_hs_write_message(p.i, &b), 0);
  b.data[b.len - 1] ^= 0x80;
  CHECK_INT_EQ(goop_noise_hs_read_message(p.r, b.data + 2, b.len - 2), GOOP_ECRYPTO);
  CHECK_INT_EQ(goop_noise_hs_read_message(p.r, b.data + 2, b.len - 2), GOOP_ESTATE);
  pair_free(&p);

  /* Truncations of msg2 at every length are rejected. */
  pair_new(&p, NULL, 0, NULL, 0, NULL, NULL);
  CHECK_INT_EQ(pass_one(p.i, p.r), 0);
  goop_buf_reset(&b);
  CHECK_INT_EQ(goop_noise_hs_write_message(p.r, &b), 0);
  int all_failed = 1;
  for (size_t n = 0; n < b.len - 2; n++) {
    goop_noise_hs *i2 = NULL;
    /* A fresh initiator cannot decrypt anyway; what matters is a clean error. */
    if (goop_noise_hs_new(true, p.id_i, NULL, NULL, 0, &i2))
      abort();
    goop_buf m1;
    goop_buf_init(&m1, 0);
    (void)goop_noise_hs_write_message(i2, &m1);
    int rc = goop_noise_hs_read_message(i2, b.data + 2, n);
    if (rc != GOOP_EPARSE && rc != GOOP_ECRYPTO)
      all_failed = 0;
    goop_buf_free(&m1);
    goop_noise_hs_free(i2);
  }
  CHECK(all_failed);
  pair_free(&p);

  /* A short msg1 and out-of-order calls. */
  pair_new(&p, NULL, 0, NULL, 0, NULL, NULL);
  CHECK_INT_EQ(goop_noise_hs_read_message(p.i, (const uint8_t *)"x", 1), GOOP_ESTATE);
  goop_buf_reset(&b);
  CHECK_INT_EQ(goop_noise_hs_write_message(p.r, &b), GOOP_ESTATE);
  CHECK_INT_EQ(b.len, 0);
  CHECK_INT_EQ(goop_noise_hs_read_message(p.r, (const uint8_t *)"short", 5), GOOP_EPARSE);
  CHECK_INT_EQ(goop_noise_hs_write_raw(p.i, NULL, 0, &b), GOOP_ESTATE);
  goop_noise_cipher *c = NULL;
  CHECK_INT_EQ(goop_noise_hs_split(p.i, &c), GOOP_ESTATE);
  pair_free(&p);
  goop_buf_free(&b);
}

/*
 * A raw-mode initiator with a known static key sends msg3 with |payload|
 * to a libp2p responder; returns the responder's read result.
 */
static int send_custom_payload(const uint8_t *payload, size_t len, goop_noise_hs **ret_r) {
  static const uint8_t s_priv[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
  static const char *const mux[] = {YAMUX};
  goop_identity *id_r = NULL;
  goop_noise_hs *i = NULL, *r = NULL;
  goop_buf b, pl;
  goop_buf_init(&b, 0);
  goop_buf_init(&pl, 0);
  if (goop_identity_generate(&id_r) || goop_noise_hs_new(true, NULL, NULL, NULL, 0, &i) ||
      goop_noise_hs_new(false, id_r, NULL, mux, 1, &r) || goop_noise_hs_set_raw(i) ||
      goop_noise_hs_set_static_key(i, s_priv))
    abort();
  int rc = goop_noise_hs_write_raw(i, NULL, 0, &b);
  if (rc == 0)
    rc = goop_noise_hs_read_message(r, b.data, b.len);
  goop_buf_reset(&b);
  if (rc == 0)
    rc = goop_noise_hs_write_message(r, &b);
  if (rc == 0)
    rc = goop_noise_hs_read_raw(i, b.data + 2, b.len - 2, &pl);
  goop_buf_reset(&b);
  if (rc == 0)
    rc = goop_noise_hs_write_raw(i, payload, len, &b);
  if (rc == 0)
    rc = goop_noise_hs_read_message(r, b.data, b.len);
  goop_buf_free(&b);
  goop_buf_free(&pl);
  goop_noise_hs_free(i);
  if (ret_r)
    *ret_r = r;
  else
    goop_noise_hs_free(r);
  goop_identity_free(id_r);
  return rc;
}

/* Build a payload signed by |id| over |static_priv|'s public key (|sign_ok| false: over a wrong key). */
static void build_payload(goop_buf *pl, goop_identity *id, const uint8_t static_priv[32], bool sign_ok,
                          const char *const *muxers, size_t n, bool extra_fields) {
  uint8_t pk[GOOP_ED25519_PUBKEY_PB_SIZE], sig[64], msg[56], spub[32];
  goop_identity_public_key(id, pk);
  x25519_pub(static_priv, spub);
  if (!sign_ok)
    spub[0] ^= 1;
  memcpy(msg, "noise-libp2p-static-key:", 24);
  memcpy(msg + 24, spub, 32);
  if (goop_identity_sign(id, msg, sizeof(msg), sig))
    abort();
  if (extra_fields) {
    (void)goop_pb_put_varint(pl, 9, 12345);
    (void)goop_pb_put_bytes(pl, 3, "legacy", 6);
  }
  (void)goop_pb_put_bytes(pl, 1, pk, sizeof(pk));
  (void)goop_pb_put_bytes(pl, 2, sig, sizeof(sig));
  if (n || extra_fields) {
    goop_buf ext;
    goop_buf_init(&ext, 0);
    if (extra_fields) {
      (void)goop_pb_put_bytes(&ext, 1,
                              "\x12\x20"
                              "hash",
                              6);
      (void)goop_pb_put_fixed32(&ext, 7, 1);
    }
    for (size_t k = 0; k < n; k++)
      (void)goop_pb_put_string(&ext, 2, muxers[k]);
    (void)goop_pb_put_bytes(pl, 4, ext.data, ext.len);
    goop_buf_free(&ext);
  }
}

static void test_bad_payloads(void) {
  static const uint8_t s_priv[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
  static const char *const mux[] = {MPLEX, YAMUX};
  goop_identity *id = NULL;
  CHECK_INT_EQ(goop_identity_generate(&id), 0);
  goop_buf pl;
  goop_buf_init(&pl, 0);
  goop_noise_hs *r = NULL;

  /* A valid hand-built payload with unknown fields is accepted. */
  build_payload(&pl, id, s_priv, true, mux, 2, true);
  CHECK_INT_EQ(send_custom_payload(pl.data, pl.len, &r), 0);
  CHECK(goop_noise_hs_is_complete(r));
  CHECK_INT_EQ(goop_noise_hs_remote_muxer_count(r), 2);
  CHECK_STR_EQ(goop_noise_hs_early_muxer(r), YAMUX);
  goop_noise_hs_free(r);

  /* Signature over a different static key. */
  goop_buf_reset(&pl);
  build_payload(&pl, id, s_priv, false, NULL, 0, false);
  CHECK_INT_EQ(send_custom_payload(pl.data, pl.len, NULL), GOOP_EBADSIG);

  /* Corrupt signature bytes. */
  goop_buf_reset(&pl);
  build_payload(&pl, id, s_priv, true, NULL, 0, false);
  pl.data[pl.len - 5] ^= 0x10;
  CHECK_INT_EQ(send_custom_payload(pl.data, pl.len, NULL), GOOP_EBADSIG);

  /* Empty payload, garbage, a length-prefixed payload, missing signature. */
  CHECK_INT_EQ(send_custom_payload(NULL, 0, NULL), GOOP_EPARSE);
  CHECK_INT_EQ(send_custom_payload((const uint8_t *)"\xff\xff\xff", 3, NULL), GOOP_EPARSE);
  goop_buf_reset(&pl);
  build_payload(&pl, id, s_priv, true, NULL, 0, false);
  goop_buf pre;
  goop_buf_init(&pre, 0);
  (void)goop_buf_append_byte(&pre, (uint8_t)pl.len);
  (void)goop_buf_append(&pre, pl.data, pl.len);
  CHECK(send_custom_payload(pre.data, pre.len, NULL) < 0);
  goop_buf_free(&pre);
  goop_buf_reset(&pl);
  uint8_t pk[GOOP_ED25519_PUBKEY_PB_SIZE];
  goop_identity_public_key(id, pk);
  (void)goop_pb_put_bytes(&pl, 1, pk, sizeof(pk));
  CHECK_INT_EQ(send_custom_payload(pl.data, pl.len, NULL), GOOP_EPARSE);
  /* identity_key with the wrong wire type. */
  goop_buf_reset(&pl);
  (void)goop_pb_put_varint(&pl, 1, 5);
  (void)goop_pb_put_bytes(&pl, 2, "sig", 3);
  CHECK_INT_EQ(send_custom_payload(pl.data, pl.len, NULL), GOOP_EPARSE);
  /* A garbage identity key. */
  goop_buf_reset(&pl);
  (void)goop_pb_put_bytes(&pl, 1,
                          "\x08\x01\x12\x03"
                          "abc",
                          7);
  (void)goop_pb_put_bytes(&pl, 2, "sig", 3);
  int rc = send_custom_payload(pl.data, pl.len, NULL);
  CHECK(rc == GOOP_EPARSE || rc == GOOP_EKEYTYPE || rc == GOOP_EBADSIG);

  /* Muxer limits: 100 entries of 256 bytes pass, 101 entries or 257 bytes fail. */
  char *big[101];
  for (int k = 0; k < 101; k++) {
    big[k] = malloc(258);
    memset(big[k], 'a' + k % 26, 257);
    big[k][256] = '\0';
    big[k][0] = (char)('0' + k % 10);
  }
  goop_buf_reset(&pl);
  build_payload(&pl, id, s_priv, true, (const char *const *)big, 100, false);
  CHECK_INT_EQ(send_custom_payload(pl.data, pl.len, NULL), 0);
  goop_buf_reset(&pl);
  build_payload(&pl, id, s_priv, true, (const char *const *)big, 101, false);
  CHECK_INT_EQ(send_custom_payload(pl.data, pl.len, NULL), GOOP_EPARSE);
  big[3][256] = 'x';
  big[3][257] = '\0';
  goop_buf_reset(&pl);
  build_payload(&pl, id, s_priv, true, (const char *const *)big + 3, 1, false);
  CHECK_INT_EQ(send_custom_payload(pl.data, pl.len, NULL), GOOP_EPARSE);
  for (int k = 0; k < 101; k++)
    free(big[k]);
  /* A muxer with an embedded NUL. */
  goop_buf_reset(&pl);
  build_payload(&pl, id, s_priv, true, NULL, 0, false);
  (void)goop_pb_put_bytes(&pl, 4,
                          "\x12\x03"
                          "a\0b",
                          5);
  CHECK_INT_EQ(send_custom_payload(pl.data, pl.len, NULL), GOOP_EPARSE);

  goop_buf_free(&pl);
  goop_identity_free(id);
}

static void test_tampered_transport(void) {
  pair p = {0};
  pair_new(&p, NULL, 0, NULL, 0, NULL, NULL);
  CHECK_INT_EQ(run_handshake(p.i, p.r), 0);
  CHECK(goop_noise_hs_early_muxer(p.i) == NULL && goop_noise_hs_early_muxer(p.r) == NULL);
  goop_noise_cipher *ci = NULL, *cr = NULL;
  CHECK_INT_EQ(goop_noise_hs_split(p.i, &ci), 0);
  CHECK_INT_EQ(goop_noise_hs_split(p.r, &cr), 0);
  goop_buf w, out;
  goop_buf_init(&w, 0);
  goop_buf_init(&out, 0);
  size_t used = 0;
  CHECK_INT_EQ(goop_noise_encrypt(ci, (const uint8_t *)"hello", 5, &w), 0);
  w.data[4] ^= 1;
  CHECK_INT_EQ(goop_noise_decrypt_frame(cr, w.data, w.len, &used, &out), GOOP_ECRYPTO);
  CHECK_INT_EQ(out.len, 0);
  CHECK_INT_EQ(goop_noise_decrypt_frame(cr, w.data, w.len, &used, &out), GOOP_ESTATE);

  /* A frame shorter than a tag. */
  static const uint8_t short_frame[] = {0, 15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  CHECK_INT_EQ(goop_noise_decrypt_frame(ci, short_frame, sizeof(short_frame), &used, &out), GOOP_EPARSE);

  /* Replayed / reordered frames fail (nonce mismatch). */
  goop_noise_cipher_free(ci);
  goop_noise_cipher_free(cr);
  pair_free(&p);
  pair_new(&p, NULL, 0, NULL, 0, NULL, NULL);
  CHECK_INT_EQ(run_handshake(p.i, p.r), 0);
  CHECK_INT_EQ(goop_noise_hs_split(p.i, &ci), 0);
  CHECK_INT_EQ(goop_noise_hs_split(p.r, &cr), 0);
  goop_buf_reset(&w);
  CHECK_INT_EQ(goop_noise_encrypt(ci, (const uint8_t *)"a", 1, &w), 0);
  CHECK_INT_EQ(goop_noise_decrypt_frame(cr, w.data, w.len, &used, &out), 1);
  CHECK_INT_EQ(goop_noise_decrypt_frame(cr, w.data, w.len, &used, &out), GOOP_ECRYPTO);

  /* Nonce exhaustion: 2^64-1 is never used. */
  goop_noise_cipher_set_nonces(cr, UINT64_MAX - 2, 0);
  goop_noise_cipher_set_nonces(ci, 0, UINT64_MAX - 2);
  goop_buf_reset(&w);
  goop_buf_reset(&out);
  CHECK_INT_EQ(goop_noise_encrypt(cr, (const uint8_t *)"x", 1, &w), 0);
  CHECK_INT_EQ(goop_noise_encrypt(cr, (const uint8_t *)"y", 1, &w), 0);
  size_t before = w.len;
  CHECK_INT_EQ(goop_noise_encrypt(cr, (const uint8_t *)"z", 1, &w), GOOP_ELIMIT);
  CHECK_INT_EQ(w.len, before);
  CHECK_INT_EQ(goop_noise_decrypt_frame(ci, w.data, w.len, &used, &out), 1);
  CHECK_INT_EQ(goop_noise_decrypt_frame(ci, w.data + used, w.len - used, &used, &out), 1);
  CHECK(out.len == 2 && memcmp(out.data, "xy", 2) == 0);
  goop_buf_free(&w);
  goop_buf_free(&out);
  goop_noise_cipher_free(ci);
  goop_noise_cipher_free(cr);
  pair_free(&p);
}

/* ---- 5. early muxer negotiation ------------------------------------------- */

static void check_muxer(const char *const *mi, size_t ni, const char *const *mr, size_t nr,
                        const char *want) {
  pair p = {0};
  pair_new(&p, mi, ni, mr, nr, NULL, NULL);
  CHECK_INT_EQ(run_handshake(p.i, p.r), 0);
  const char *gi = goop_noise_hs_early_muxer(p.i), *gr = goop_noise_hs_early_muxer(p.r);
  if (want) {
    CHECK_STR_EQ(gi, want);
    CHECK_STR_EQ(gr, want);
  } else {
    CHECK(gi == NULL);
    CHECK(gr == NULL);
  }
  CHECK_INT_EQ(goop_noise_hs_remote_muxer_count(p.i), nr);
  CHECK_INT_EQ(goop_noise_hs_remote_muxer_count(p.r), ni);
  pair_free(&p);
}

static void test_muxer_negotiation(void) {
  static const char *const mi[] = {MPLEX, YAMUX};
  static const char *const mr[] = {YAMUX, MPLEX};
  static const char *const only_yamux[] = {YAMUX};
  static const char *const other[] = {"/other/1.0.0"};
  check_muxer(mi, 2, mr, 2, MPLEX);           /* initiator's preference wins */
  check_muxer(mr, 2, mi, 2, YAMUX);           /* ... both ways */
  check_muxer(mi, 2, only_yamux, 1, YAMUX);   /* subset */
  check_muxer(other, 1, only_yamux, 1, NULL); /* empty intersection */
  check_muxer(NULL, 0, only_yamux, 1, NULL);  /* initiator sent nothing */
  check_muxer(only_yamux, 1, NULL, 0, NULL);  /* responder sent nothing */
  check_muxer(NULL, 0, NULL, 0, NULL);

  /* Bad local lists are refused up front. */
  goop_noise_hs *hs = NULL;
  static const char *const bad[] = {""};
  CHECK_INT_EQ(goop_noise_hs_new(true, NULL, NULL, bad, 1, &hs), GOOP_EINVAL);
  CHECK_INT_EQ(goop_noise_hs_new(true, NULL, NULL, NULL, 1, &hs), GOOP_EINVAL);
  CHECK(hs == NULL);
}

/* ---- misc ----------------------------------------------------------------- */

static void test_deframe(void) {
  const uint8_t *body = NULL;
  size_t blen = 99;
  static const uint8_t s[] = {0, 3, 'a', 'b', 'c', 0, 0, 0xff};
  CHECK_INT_EQ(goop_noise_deframe(s, 0, &body, &blen), 0);
  CHECK_INT_EQ(goop_noise_deframe(s, 1, &body, &blen), 0);
  CHECK_INT_EQ(goop_noise_deframe(s, 4, &body, &blen), 0);
  CHECK(body == NULL && blen == 99);
  CHECK_INT_EQ(goop_noise_deframe(s, 5, &body, &blen), 5);
  CHECK(body == s + 2 && blen == 3);
  CHECK_INT_EQ(goop_noise_deframe(s + 5, 2, &body, &blen), 2);
  CHECK(blen == 0);
  CHECK_INT_EQ(goop_noise_deframe(s + 7, 1, &body, &blen), 0);

  /* Hooks only before the first message. */
  goop_noise_hs *hs = NULL;
  CHECK_INT_EQ(goop_noise_hs_new(true, NULL, NULL, NULL, 0, &hs), 0);
  CHECK_INT_EQ(goop_noise_hs_set_raw(hs), 0);
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_noise_hs_write_raw(hs, (const uint8_t *)"x", 1, &b), 0);
  CHECK_INT_EQ(b.len, 33);
  uint8_t k[32] = {1};
  CHECK_INT_EQ(goop_noise_hs_set_ephemeral_key(hs, k), GOOP_ESTATE);
  CHECK_INT_EQ(goop_noise_hs_set_prologue(hs, k, 1), GOOP_ESTATE);
  CHECK_INT_EQ(goop_noise_hs_write_message(hs, &b), GOOP_ESTATE);
  goop_buf_free(&b);
  goop_noise_hs_free(hs);

  /* Oversized raw payload: refused without poisoning. */
  CHECK_INT_EQ(goop_noise_hs_new(true, NULL, NULL, NULL, 0, &hs), 0);
  CHECK_INT_EQ(goop_noise_hs_set_raw(hs), 0);
  uint8_t *big = calloc(1, 65536);
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop_noise_hs_write_raw(hs, big, 65535 - 31, &b), GOOP_EMSGSIZE);
  CHECK_INT_EQ(goop_noise_hs_write_raw(hs, big, 65535 - 32, &b), 0);
  CHECK_INT_EQ(b.len, 65535);
  goop_buf_free(&b);
  free(big);
  goop_noise_hs_free(hs);
  goop_noise_hs_free(NULL);
  goop_noise_cipher_free(NULL);
}

int main(void) {
  RUN(test_cacophony_xx);
  RUN(test_libp2p_handshake);
  RUN(test_expected_peer_id);
  RUN(test_tampered_handshake);
  RUN(test_bad_payloads);
  RUN(test_tampered_transport);
  RUN(test_muxer_negotiation);
  RUN(test_deframe);
  return tap_done();
}
