/*
 * Fuzz the Noise handshake and transport. The first byte picks what the rest
 * of the input is (all keys are fixed, so saved inputs replay exactly):
 *   0: framed handshake messages 1 and 3 for a libp2p responder, then
 *      transport frames for the resulting session;
 *   1: a framed handshake message 2 for a libp2p initiator;
 *   2: the raw NoiseHandshakePayload of message 3 (encrypted for the
 *      responder by a raw-mode initiator);
 *   3: transport frames (and a plaintext to round-trip).
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "noise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static goop_identity *fuzz_ids[2]; /* [0] initiator, [1] responder; fixed seeds */

static int fuzz_identity(uint8_t fill, goop_identity **ret) {
  uint8_t pb[GOOP_ED25519_PRIVKEY_PB_SIZE] = {0x08, 0x01, 0x12, 0x40};
  size_t plen = 32;
  memset(pb + 4, fill, 32);
  EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, pb + 4, 32);
  int ok = pk && EVP_PKEY_get_raw_public_key(pk, pb + 36, &plen) == 1;
  EVP_PKEY_free(pk);
  return ok ? goop_identity_from_bytes(pb, sizeof(pb), ret) : -1;
}

static void fuzz_fixed_keys(goop_noise_hs *hs, bool initiator) {
  uint8_t k[GOOP_NOISE_KEY_SIZE];
  memset(k, initiator ? 0x31 : 0x41, sizeof(k));
  (void)goop_noise_hs_set_static_key(hs, k);
  memset(k, initiator ? 0x32 : 0x42, sizeof(k));
  (void)goop_noise_hs_set_ephemeral_key(hs, k);
}

static goop_noise_hs *fuzz_hs(bool initiator, bool raw) {
  static const char *const mux[] = {"/yamux/1.0.0"};
  goop_noise_hs *hs = NULL;
  if (!fuzz_ids[0] && (fuzz_identity(0x11, &fuzz_ids[0]) || fuzz_identity(0x22, &fuzz_ids[1])))
    abort();
  if (goop_noise_hs_new(initiator, fuzz_ids[initiator ? 0 : 1], NULL, mux, 1, &hs))
    abort();
  fuzz_fixed_keys(hs, initiator);
  if (raw)
    (void)goop_noise_hs_set_raw(hs);
  return hs;
}

/* Decrypt every complete frame of |p..end|; stop at the first error. */
static void fuzz_frames(goop_noise_cipher *c, const uint8_t *p, const uint8_t *end) {
  goop_buf out;
  goop_buf_init(&out, 1 << 20);
  size_t used = 0;
  while (p < end && goop_noise_decrypt_frame(c, p, (size_t)(end - p), &used, &out) == 1) {
    p += used;
    goop_buf_reset(&out);
  }
  goop_buf_free(&out);
}

/* Read the next frame of |*p..end| as a handshake message. */
static int fuzz_read(goop_noise_hs *hs, const uint8_t **p, const uint8_t *end) {
  const uint8_t *body;
  size_t blen, used = goop_noise_deframe(*p, (size_t)(end - *p), &body, &blen);
  if (used == 0)
    return -1;
  *p += used;
  return goop_noise_hs_read_message(hs, body, blen);
}

static void fuzz_responder(const uint8_t *p, const uint8_t *end) {
  goop_noise_hs *r = fuzz_hs(false, false);
  goop_noise_cipher *c = NULL;
  goop_buf out;
  goop_buf_init(&out, 0);
  if (fuzz_read(r, &p, end) == 0 && goop_noise_hs_write_message(r, &out) == 0 && fuzz_read(r, &p, end) == 0) {
    (void)goop_noise_hs_early_muxer(r);
    if (goop_noise_hs_split(r, &c) == 0)
      fuzz_frames(c, p, end);
  }
  goop_noise_cipher_free(c);
  goop_buf_free(&out);
  goop_noise_hs_free(r);
}

static void fuzz_initiator(const uint8_t *p, const uint8_t *end) {
  goop_noise_hs *i = fuzz_hs(true, false);
  goop_buf out;
  goop_buf_init(&out, 0);
  if (goop_noise_hs_write_message(i, &out) == 0 && fuzz_read(i, &p, end) == 0)
    (void)goop_noise_hs_write_message(i, &out);
  goop_buf_free(&out);
  goop_noise_hs_free(i);
}

static void fuzz_payload(const uint8_t *p, size_t len) {
  goop_noise_hs *i = fuzz_hs(true, true), *r = fuzz_hs(false, false);
  goop_buf b, pl;
  goop_buf_init(&b, 0);
  goop_buf_init(&pl, 0);
  if (goop_noise_hs_write_raw(i, NULL, 0, &b) || goop_noise_hs_read_message(r, b.data, b.len))
    abort();
  goop_buf_reset(&b);
  if (goop_noise_hs_write_message(r, &b) || goop_noise_hs_read_raw(i, b.data + 2, b.len - 2, &pl))
    abort();
  goop_buf_reset(&b);
  if (goop_noise_hs_write_raw(i, p, len, &b) == 0 && goop_noise_hs_read_message(r, b.data, b.len) == 0) {
    for (size_t k = 0; k < goop_noise_hs_remote_muxer_count(r); k++)
      (void)strlen(goop_noise_hs_remote_muxer(r, k));
  }
  goop_buf_free(&b);
  goop_buf_free(&pl);
  goop_noise_hs_free(i);
  goop_noise_hs_free(r);
}

static void fuzz_transport(const uint8_t *p, size_t len) {
  goop_noise_hs *i = fuzz_hs(true, true), *r = fuzz_hs(false, true);
  goop_noise_cipher *ci = NULL, *cr = NULL;
  goop_buf b, pl;
  goop_buf_init(&b, 0);
  goop_buf_init(&pl, 0);
  for (int m = 0; m < 3; m++) {
    goop_buf_reset(&b);
    if (goop_noise_hs_write_raw(m % 2 ? r : i, NULL, 0, &b) ||
        goop_noise_hs_read_raw(m % 2 ? i : r, b.data, b.len, &pl))
      abort();
  }
  if (goop_noise_hs_split(i, &ci) || goop_noise_hs_split(r, &cr))
    abort();
  fuzz_frames(cr, p, p + len);
  /* The input as plaintext must survive a round trip. */
  goop_buf_reset(&b);
  goop_buf_reset(&pl);
  size_t used = 0, off = 0;
  if (goop_noise_encrypt(cr, p, len, &b))
    abort();
  while (off < b.len && goop_noise_decrypt_frame(ci, b.data + off, b.len - off, &used, &pl) == 1)
    off += used;
  if (off != b.len || pl.len != len || (len && memcmp(pl.data, p, len) != 0))
    abort();
  goop_noise_cipher_free(ci);
  goop_noise_cipher_free(cr);
  goop_buf_free(&b);
  goop_buf_free(&pl);
  goop_noise_hs_free(i);
  goop_noise_hs_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 300000)
    return 0;
  const uint8_t *p = data + 1, *end = data + size;
  switch (data[0] & 3) {
  case 0:
    fuzz_responder(p, end);
    break;
  case 1:
    fuzz_initiator(p, end);
    break;
  case 2:
    fuzz_payload(p, size - 1);
    break;
  default:
    fuzz_transport(p, size - 1);
    break;
  }
  return 0;
}
