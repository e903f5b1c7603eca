/*
 * Noise XX (25519, ChaChaPoly, SHA256) and the libp2p `/noise` handshake
 * payload. Sans-I/O: bytes in, bytes out.
 */
#include "noise.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "../common/internal.h"
#include "../core/proto.h"

#define PROTOCOL_NAME "Noise_XX_25519_ChaChaPoly_SHA256"
#define SIG_PREFIX "noise-libp2p-static-key:"
#define SIG_PREFIX_LEN 24
#define KEY GOOP_NOISE_KEY_SIZE
#define TAG GOOP_NOISE_TAG_SIZE
#define HASHLEN GOOP_NOISE_HASH_SIZE

enum tok { TOK_END = 0, TOK_E, TOK_S, TOK_EE, TOK_ES, TOK_SE };

/* The XX pattern: message 0 and 2 from the initiator, 1 from the responder. */
static const uint8_t xx_pattern[3][5] = {
    {TOK_E, TOK_END},
    {TOK_E, TOK_EE, TOK_S, TOK_ES, TOK_END},
    {TOK_S, TOK_SE, TOK_END},
};
/* Bytes each message adds around its payload (keys, encrypted key, tags). */
static const size_t xx_overhead[3] = {KEY, KEY + KEY + TAG + TAG, KEY + TAG + TAG};

struct goop_noise_hs {
  bool initiator;
  bool raw;
  bool started;
  bool failed;
  bool split_done;
  bool e_set;
  bool has_k;
  bool has_expected;
  bool remote_verified;
  unsigned step; /* messages done, 0..3 */
  uint64_t n;
  uint8_t h[HASHLEN];
  uint8_t ck[HASHLEN];
  uint8_t k[KEY];
  uint8_t s_priv[KEY], s_pub[KEY];
  uint8_t e_priv[KEY], e_pub[KEY];
  uint8_t rs[KEY], re[KEY];
  uint8_t *prologue;
  size_t prologue_len;
  const goop_identity *local;
  goop_peer_id expected;
  char **muxers;
  size_t n_muxers;
  char **rmuxers;
  size_t n_rmuxers;
  goop_peer_id remote_id;
  uint8_t *remote_pk;
  size_t remote_pk_len;
  const char *early_muxer;
};

struct goop_noise_cipher {
  EVP_CIPHER_CTX *tx;
  EVP_CIPHER_CTX *rx;
  uint64_t ntx;
  uint64_t nrx;
  bool tx_broken;
  bool rx_broken;
};

/* ---- primitives ---------------------------------------------------------- */

static int x25519_public(const uint8_t priv[KEY], uint8_t pub[KEY]) {
  EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, KEY);
  if (!pk)
    return GOOP_ECRYPTO;
  size_t len = KEY;
  int ok = EVP_PKEY_get_raw_public_key(pk, pub, &len) == 1 && len == KEY;
  EVP_PKEY_free(pk);
  return ok ? 0 : GOOP_ECRYPTO;
}

static int x25519_generate(uint8_t priv[KEY], uint8_t pub[KEY]) {
  if (RAND_priv_bytes(priv, KEY) != 1)
    return GOOP_ECRYPTO;
  return x25519_public(priv, pub);
}

/* DH(priv, pub) into |out|; an all-zero result (low-order point) is an error. */
static int x25519_dh(const uint8_t priv[KEY], const uint8_t pub[KEY], uint8_t out[KEY]) {
  int rc = GOOP_ECRYPTO;
  EVP_PKEY *a = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, KEY);
  EVP_PKEY *b = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, KEY);
  EVP_PKEY_CTX *ctx = a ? EVP_PKEY_CTX_new(a, NULL) : NULL;
  size_t len = KEY;
  if (!b || !ctx)
    goto out;
  if (EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, b) != 1 ||
      EVP_PKEY_derive(ctx, out, &len) != 1 || len != KEY)
    goto out;
  uint8_t acc = 0;
  for (size_t i = 0; i < KEY; i++)
    acc |= out[i];
  if (acc != 0)
    rc = 0;
out:
  if (rc)
    goop__wipe(out, KEY);
  EVP_PKEY_CTX_free(ctx);
  EVP_PKEY_free(a);
  EVP_PKEY_free(b);
  return rc;
}

static int sha256_2(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t out[HASHLEN]) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(md, a, alen) == 1 &&
           (blen == 0 || EVP_DigestUpdate(md, b, blen) == 1) && EVP_DigestFinal_ex(md, out, NULL) == 1;
  EVP_MD_CTX_free(md);
  return ok ? 0 : GOOP_ECRYPTO;
}

static int hmac_sha256(const uint8_t key[HASHLEN], const uint8_t *data, size_t len, uint8_t out[HASHLEN]) {
  size_t outlen = 0;
  static const uint8_t empty[1];
  if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, HASHLEN, len ? data : empty, len, out, HASHLEN,
                 &outlen) ||
      outlen != HASHLEN)
    return GOOP_ECRYPTO;
  return 0;
}

/* Noise HKDF with two outputs. |ikm| may be empty. */
static int hkdf2(const uint8_t ck[HASHLEN], const uint8_t *ikm, size_t ikm_len, uint8_t o1[HASHLEN],
                 uint8_t o2[HASHLEN]) {
  uint8_t temp[HASHLEN], in[HASHLEN + 1];
  int rc = hmac_sha256(ck, ikm, ikm_len, temp);
  if (rc)
    goto out;
  in[0] = 0x01;
  if ((rc = hmac_sha256(temp, in, 1, o1)))
    goto out;
  memcpy(in, o1, HASHLEN);
  in[HASHLEN] = 0x02;
  rc = hmac_sha256(temp, in, HASHLEN + 1, o2);
out:
  goop__wipe(temp, sizeof(temp));
  goop__wipe(in, sizeof(in));
  return rc;
}

static void nonce_iv(uint64_t n, uint8_t iv[12]) {
  memset(iv, 0, 4);
  for (int i = 0; i < 8; i++)
    iv[4 + i] = (uint8_t)(n >> (8 * i));
}

static EVP_CIPHER_CTX *aead_new(const uint8_t key[KEY], bool enc) {
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!ctx)
    return NULL;
  if (EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, NULL, enc ? 1 : 0) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

/* Seal |len| bytes into |out| (len + TAG bytes) with a keyed context. */
static int aead_seal(EVP_CIPHER_CTX *ctx, uint64_t n, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                     size_t len, uint8_t *out) {
  uint8_t iv[12];
  int outl = 0, fl = 0;
  nonce_iv(n, iv);
  if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1)
    return GOOP_ECRYPTO;
  if (adlen && EVP_EncryptUpdate(ctx, NULL, &outl, ad, (int)adlen) != 1)
    return GOOP_ECRYPTO;
  outl = 0;
  if (len && EVP_EncryptUpdate(ctx, out, &outl, pt, (int)len) != 1)
    return GOOP_ECRYPTO;
  if (EVP_EncryptFinal_ex(ctx, out + outl, &fl) != 1 || (size_t)outl + (size_t)fl != len)
    return GOOP_ECRYPTO;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG, out + len) != 1)
    return GOOP_ECRYPTO;
  return 0;
}

/* Open |len| (>= TAG) bytes of ciphertext+tag into |out| (len - TAG bytes). */
static int aead_open(EVP_CIPHER_CTX *ctx, uint64_t n, const uint8_t *ad, size_t adlen, const uint8_t *ct,
                     size_t len, uint8_t *out) {
  uint8_t iv[12], tag[TAG];
  int outl = 0, fl = 0;
  size_t plen = len - TAG;
  nonce_iv(n, iv);
  memcpy(tag, ct + plen, TAG);
  if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1)
    return GOOP_ECRYPTO;
  if (adlen && EVP_DecryptUpdate(ctx, NULL, &outl, ad, (int)adlen) != 1)
    return GOOP_ECRYPTO;
  outl = 0;
  if (plen && EVP_DecryptUpdate(ctx, out, &outl, ct, (int)plen) != 1)
    goto fail;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG, tag) != 1)
    goto fail;
  if (EVP_DecryptFinal_ex(ctx, out + outl, &fl) != 1 || (size_t)outl + (size_t)fl != plen)
    goto fail;
  return 0;
fail:
  if (plen)
    goop__wipe(out, plen);
  return GOOP_ECRYPTO;
}

/* ---- symmetric state ----------------------------------------------------- */

static int mix_hash(goop_noise_hs *hs, const uint8_t *data, size_t len) {
  return sha256_2(hs->h, HASHLEN, data, len, hs->h);
}

static int mix_key(goop_noise_hs *hs, const uint8_t ikm[KEY]) {
  uint8_t ck[HASHLEN], k[HASHLEN];
  int rc = hkdf2(hs->ck, ikm, KEY, ck, k);
  if (rc == 0) {
    memcpy(hs->ck, ck, HASHLEN);
    memcpy(hs->k, k, KEY);
    hs->has_k = true;
    hs->n = 0;
  }
  goop__wipe(ck, sizeof(ck));
  goop__wipe(k, sizeof(k));
  return rc;
}

/* Append EncryptAndHash(pt) to |out| (room must be reserved: len + TAG). */
static int encrypt_and_hash(goop_noise_hs *hs, const uint8_t *pt, size_t len, goop_buf *out) {
  int rc = goop_buf_reserve(out, len + TAG);
  if (rc)
    return rc;
  uint8_t *dst = out->data + out->len;
  size_t clen = len;
  if (hs->has_k) {
    EVP_CIPHER_CTX *ctx = aead_new(hs->k, true);
    if (!ctx)
      return GOOP_ECRYPTO;
    rc = aead_seal(ctx, hs->n, hs->h, HASHLEN, pt, len, dst);
    EVP_CIPHER_CTX_free(ctx);
    if (rc)
      return rc;
    hs->n++;
    clen += TAG;
  } else if (len) {
    memmove(dst, pt, len);
  }
  if ((rc = mix_hash(hs, dst, clen)))
    return rc;
  out->len += clen;
  return 0;
}

/* DecryptAndHash(ct) into |out| (room for len bytes). Sets |*ret_len|. */
static int decrypt_and_hash(goop_noise_hs *hs, const uint8_t *ct, size_t len, uint8_t *out, size_t *ret_len) {
  int rc;
  if (hs->has_k) {
    if (len < TAG)
      return GOOP_EPARSE;
    EVP_CIPHER_CTX *ctx = aead_new(hs->k, false);
    if (!ctx)
      return GOOP_ECRYPTO;
    rc = aead_open(ctx, hs->n, hs->h, HASHLEN, ct, len, out);
    EVP_CIPHER_CTX_free(ctx);
    if (rc)
      return rc;
    hs->n++;
    *ret_len = len - TAG;
  } else {
    if (len)
      memmove(out, ct, len);
    *ret_len = len;
  }
  return mix_hash(hs, ct, len);
}

/* ---- handshake object ---------------------------------------------------- */

static void free_strv(char **v, size_t n) {
  if (!v)
    return;
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

int goop_noise_hs_new(bool initiator, const goop_identity *local, const goop_peer_id *expected_remote,
                      const char *const *muxers, size_t n_muxers, goop_noise_hs **ret) {
  goop_return_val_if_fail(ret != NULL, GOOP_EINVAL);
  goop_return_val_if_fail(n_muxers == 0 || muxers != NULL, GOOP_EINVAL);
  goop_return_val_if_fail(n_muxers <= GOOP_NOISE_MAX_MUXERS, GOOP_EINVAL);
  goop_return_val_if_fail(!expected_remote || expected_remote->len <= GOOP_PEER_ID_MAX, GOOP_EINVAL);
  for (size_t i = 0; i < n_muxers; i++) {
    goop_return_val_if_fail(muxers[i] != NULL, GOOP_EINVAL);
    size_t l = strlen(muxers[i]);
    goop_return_val_if_fail(l > 0 && l <= GOOP_NOISE_MAX_MUXER_LEN, GOOP_EINVAL);
  }

  int rc = GOOP_ENOMEM;
  goop_noise_hs *hs = calloc(1, sizeof(*hs));
  if (!hs)
    return GOOP_ENOMEM;
  hs->initiator = initiator;
  hs->local = local;
  if (expected_remote) {
    hs->expected = *expected_remote;
    hs->has_expected = true;
  }
  if (n_muxers) {
    hs->muxers = calloc(n_muxers, sizeof(*hs->muxers));
    if (!hs->muxers)
      goto fail;
    for (size_t i = 0; i < n_muxers; i++) {
      hs->muxers[i] = strdup(muxers[i]);
      if (!hs->muxers[i])
        goto fail;
      hs->n_muxers = i + 1;
    }
  }
  if ((rc = x25519_generate(hs->s_priv, hs->s_pub)))
    goto fail;
  *ret = hs;
  return 0;
fail:
  goop_noise_hs_free(hs);
  return rc;
}

void goop_noise_hs_free(goop_noise_hs *hs) {
  if (!hs)
    return;
  free_strv(hs->muxers, hs->n_muxers);
  free_strv(hs->rmuxers, hs->n_rmuxers);
  free(hs->remote_pk);
  if (hs->prologue) {
    goop__wipe(hs->prologue, hs->prologue_len);
    free(hs->prologue);
  }
  goop__wipe(hs, sizeof(*hs));
  free(hs);
}

int goop_noise_hs_set_prologue(goop_noise_hs *hs, const uint8_t *prologue, size_t len) {
  goop_return_val_if_fail(hs != NULL, GOOP_EINVAL);
  goop_return_val_if_fail(len == 0 || prologue != NULL, GOOP_EINVAL);
  goop_return_val_if_fail(len <= GOOP_NOISE_MAX_MSG, GOOP_EINVAL);
  if (hs->started || hs->failed)
    return GOOP_ESTATE;
  uint8_t *p = NULL;
  if (len) {
    p = malloc(len);
    if (!p)
      return GOOP_ENOMEM;
    memcpy(p, prologue, len);
  }
  free(hs->prologue);
  hs->prologue = p;
  hs->prologue_len = len;
  return 0;
}

int goop_noise_hs_set_static_key(goop_noise_hs *hs, const uint8_t priv[GOOP_NOISE_KEY_SIZE]) {
  goop_return_val_if_fail(hs != NULL && priv != NULL, GOOP_EINVAL);
  if (hs->started || hs->failed)
    return GOOP_ESTATE;
  uint8_t pub[KEY];
  int rc = x25519_public(priv, pub);
  if (rc)
    return rc;
  memcpy(hs->s_priv, priv, KEY);
  memcpy(hs->s_pub, pub, KEY);
  return 0;
}

int goop_noise_hs_set_ephemeral_key(goop_noise_hs *hs, const uint8_t priv[GOOP_NOISE_KEY_SIZE]) {
  goop_return_val_if_fail(hs != NULL && priv != NULL, GOOP_EINVAL);
  if (hs->started || hs->failed)
    return GOOP_ESTATE;
  uint8_t pub[KEY];
  int rc = x25519_public(priv, pub);
  if (rc)
    return rc;
  memcpy(hs->e_priv, priv, KEY);
  memcpy(hs->e_pub, pub, KEY);
  hs->e_set = true;
  return 0;
}

int goop_noise_hs_set_raw(goop_noise_hs *hs) {
  goop_return_val_if_fail(hs != NULL, GOOP_EINVAL);
  if (hs->started || hs->failed)
    return GOOP_ESTATE;
  hs->raw = true;
  return 0;
}

/* Initialize the symmetric state: h = protocol name (exactly 32 bytes), ck = h, MixHash(prologue). */
static int hs_start(goop_noise_hs *hs) {
  if (hs->started)
    return 0;
  _Static_assert(sizeof(PROTOCOL_NAME) - 1 == HASHLEN, "protocol name is one hash long");
  memcpy(hs->h, PROTOCOL_NAME, HASHLEN);
  memcpy(hs->ck, hs->h, HASHLEN);
  int rc = mix_hash(hs, hs->prologue, hs->prologue_len);
  if (rc)
    return rc;
  hs->started = true;
  return 0;
}

static bool my_turn_to_write(const goop_noise_hs *hs) {
  return (hs->step % 2 == 0) == hs->initiator;
}

bool goop_noise_hs_want_write(const goop_noise_hs *hs) {
  return hs && !hs->failed && hs->step < 3 && my_turn_to_write(hs);
}

bool goop_noise_hs_want_read(const goop_noise_hs *hs) {
  return hs && !hs->failed && hs->step < 3 && !my_turn_to_write(hs);
}

bool goop_noise_hs_is_complete(const goop_noise_hs *hs) {
  return hs && !hs->failed && hs->step == 3;
}

/* The DH token |t| from our side. */
static int hs_dh(goop_noise_hs *hs, uint8_t t) {
  uint8_t out[KEY];
  const uint8_t *priv, *pub;
  switch (t) {
  case TOK_EE:
    priv = hs->e_priv, pub = hs->re;
    break;
  case TOK_ES:
    priv = hs->initiator ? hs->e_priv : hs->s_priv;
    pub = hs->initiator ? hs->rs : hs->re;
    break;
  default: /* TOK_SE */
    priv = hs->initiator ? hs->s_priv : hs->e_priv;
    pub = hs->initiator ? hs->re : hs->rs;
    break;
  }
  int rc = x25519_dh(priv, pub, out);
  if (rc == 0)
    rc = mix_key(hs, out);
  goop__wipe(out, sizeof(out));
  return rc;
}

/* Write the next message body carrying |payload| (must not point into |out|). */
static int hs_write_body(goop_noise_hs *hs, const uint8_t *payload, size_t len, goop_buf *out) {
  if (hs->failed || hs->step >= 3 || !my_turn_to_write(hs))
    return GOOP_ESTATE;
  if (len > GOOP_NOISE_MAX_MSG - xx_overhead[hs->step])
    return GOOP_EMSGSIZE;
  size_t base = out->len;
  int rc = goop_buf_reserve(out, xx_overhead[hs->step] + len);
  if (rc)
    return rc;
  if ((rc = hs_start(hs)))
    goto fail;
  for (const uint8_t *t = xx_pattern[hs->step]; *t != TOK_END; t++) {
    switch (*t) {
    case TOK_E:
      if (!hs->e_set) {
        if ((rc = x25519_generate(hs->e_priv, hs->e_pub)))
          goto fail;
        hs->e_set = true;
      }
      if ((rc = goop_buf_append(out, hs->e_pub, KEY)) || (rc = mix_hash(hs, hs->e_pub, KEY)))
        goto fail;
      break;
    case TOK_S:
      if ((rc = encrypt_and_hash(hs, hs->s_pub, KEY, out)))
        goto fail;
      break;
    default:
      if ((rc = hs_dh(hs, *t)))
        goto fail;
      break;
    }
  }
  if ((rc = encrypt_and_hash(hs, payload, len, out)))
    goto fail;
  hs->step++;
  return 0;
fail:
  if (out->data)
    goop__wipe(out->data + base, out->len - base);
  out->len = base;
  hs->failed = true;
  return rc;
}

/* Read one message body; append the payload to |payload|. */
static int hs_read_body(goop_noise_hs *hs, const uint8_t *msg, size_t len, goop_buf *payload) {
  if (hs->failed || hs->step >= 3 || my_turn_to_write(hs))
    return GOOP_ESTATE;
  static const uint8_t empty[1];
  if (len > GOOP_NOISE_MAX_MSG)
    return GOOP_EPARSE;
  if (!msg)
    msg = empty;
  int rc;
  size_t base = payload->len, n;
  const uint8_t *p = msg, *end = msg + len;
  uint8_t tmp[KEY];
  if ((rc = hs_start(hs)))
    goto fail;
  for (const uint8_t *t = xx_pattern[hs->step]; *t != TOK_END; t++) {
    switch (*t) {
    case TOK_E:
      if ((size_t)(end - p) < KEY) {
        rc = GOOP_EPARSE;
        goto fail;
      }
      memcpy(hs->re, p, KEY);
      p += KEY;
      if ((rc = mix_hash(hs, hs->re, KEY)))
        goto fail;
      break;
    case TOK_S: {
      size_t need = KEY + (hs->has_k ? TAG : 0);
      if ((size_t)(end - p) < need) {
        rc = GOOP_EPARSE;
        goto fail;
      }
      if ((rc = decrypt_and_hash(hs, p, need, tmp, &n)))
        goto fail;
      memcpy(hs->rs, tmp, KEY);
      p += need;
      break;
    }
    default:
      if ((rc = hs_dh(hs, *t)))
        goto fail;
      break;
    }
  }
  size_t rest = (size_t)(end - p);
  if (hs->has_k && rest < TAG) {
    rc = GOOP_EPARSE;
    goto fail;
  }
  if ((rc = goop_buf_reserve(payload, rest)))
    goto fail;
  uint8_t none[1];
  uint8_t *dst = payload->data ? payload->data + payload->len : none; /* rest may be 0 */
  if ((rc = decrypt_and_hash(hs, p, rest, dst, &n)))
    goto fail;
  payload->len += n;
  hs->step++;
  return 0;
fail:
  if (payload->data)
    goop__wipe(payload->data + base, payload->len - base);
  payload->len = base;
  hs->failed = true;
  return rc;
}

int goop_noise_hs_write_raw(goop_noise_hs *hs, const uint8_t *payload, size_t len, goop_buf *out) {
  goop_return_val_if_fail(hs != NULL && out != NULL, GOOP_EINVAL);
  goop_return_val_if_fail(len == 0 || payload != NULL, GOOP_EINVAL);
  if (!hs->raw)
    return GOOP_ESTATE;
  return hs_write_body(hs, payload, len, out);
}

int goop_noise_hs_read_raw(goop_noise_hs *hs, const uint8_t *msg, size_t len, goop_buf *ret_payload) {
  goop_return_val_if_fail(hs != NULL && ret_payload != NULL, GOOP_EINVAL);
  goop_return_val_if_fail(len == 0 || msg != NULL, GOOP_EINVAL);
  if (!hs->raw)
    return GOOP_ESTATE;
  return hs_read_body(hs, msg, len, ret_payload);
}

int goop_noise_hs_handshake_hash(const goop_noise_hs *hs, uint8_t ret[GOOP_NOISE_HASH_SIZE]) {
  goop_return_val_if_fail(hs != NULL && ret != NULL, GOOP_EINVAL);
  if (!goop_noise_hs_is_complete(hs))
    return GOOP_ESTATE;
  memcpy(ret, hs->h, HASHLEN);
  return 0;
}

/* ---- libp2p payload ------------------------------------------------------ */

static void sig_message(const uint8_t static_pub[KEY], uint8_t msg[SIG_PREFIX_LEN + KEY]) {
  memcpy(msg, SIG_PREFIX, SIG_PREFIX_LEN);
  memcpy(msg + SIG_PREFIX_LEN, static_pub, KEY);
}

/* NoiseHandshakePayload {1: identity_key, 2: identity_sig, 4: NoiseExtensions {2: stream_muxers}}. */
static int build_payload(goop_noise_hs *hs, goop_buf *pl) {
  uint8_t pk[GOOP_ED25519_PUBKEY_PB_SIZE], sig[GOOP_ED25519_SIG_SIZE], msg[SIG_PREFIX_LEN + KEY];
  goop_buf ext;
  goop_buf_init(&ext, GOOP_NOISE_MAX_MSG);
  int rc;
  goop_identity_public_key(hs->local, pk);
  sig_message(hs->s_pub, msg);
  if ((rc = goop_identity_sign(hs->local, msg, sizeof(msg), sig)))
    goto out;
  if ((rc = goop_pb_put_bytes(pl, 1, pk, sizeof(pk))) || (rc = goop_pb_put_bytes(pl, 2, sig, sizeof(sig))))
    goto out;
  if (hs->n_muxers) {
    for (size_t i = 0; i < hs->n_muxers; i++)
      if ((rc = goop_pb_put_string(&ext, 2, hs->muxers[i])))
        goto out;
    if ((rc = goop_pb_put_bytes(pl, 4, ext.data, ext.len)))
      goto out;
  }
out:
  goop_buf_free(&ext);
  return rc;
}

static int parse_extensions(goop_noise_hs *hs, const uint8_t *data, size_t len) {
  goop_pb_reader r;
  goop_pb_field f;
  int rc;
  goop_pb_reader_init(&r, data, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    if (f.num == 1 && f.wire != GOOP_PB_LEN)
      return GOOP_EPARSE; /* webtransport_certhashes: not used over TCP */
    if (f.num != 2)
      continue;
    if (f.wire != GOOP_PB_LEN || f.len > GOOP_NOISE_MAX_MUXER_LEN || hs->n_rmuxers >= GOOP_NOISE_MAX_MUXERS)
      return GOOP_EPARSE;
    if (f.len && memchr(f.data, 0, f.len))
      return GOOP_EPARSE;
    if (!hs->rmuxers) {
      hs->rmuxers = calloc(GOOP_NOISE_MAX_MUXERS, sizeof(*hs->rmuxers));
      if (!hs->rmuxers)
        return GOOP_ENOMEM;
    }
    char *s = malloc(f.len + 1);
    if (!s)
      return GOOP_ENOMEM;
    if (f.len)
      memcpy(s, f.data, f.len);
    s[f.len] = '\0';
    hs->rmuxers[hs->n_rmuxers++] = s;
  }
  return rc < 0 ? GOOP_EPARSE : 0;
}

static void negotiate_muxer(goop_noise_hs *hs) {
  char **ilist = hs->initiator ? hs->muxers : hs->rmuxers;
  size_t ni = hs->initiator ? hs->n_muxers : hs->n_rmuxers;
  char **rlist = hs->initiator ? hs->rmuxers : hs->muxers;
  size_t nr = hs->initiator ? hs->n_rmuxers : hs->n_muxers;
  hs->early_muxer = NULL;
  for (size_t i = 0; i < ni; i++)
    for (size_t j = 0; j < nr; j++)
      if (strcmp(ilist[i], rlist[j]) == 0) {
        hs->early_muxer = hs->initiator ? ilist[i] : rlist[j];
        return;
      }
}

static int process_payload(goop_noise_hs *hs, const uint8_t *data, size_t len) {
  goop_pb_reader r;
  goop_pb_field f;
  const uint8_t *key = NULL, *sig = NULL;
  size_t key_len = 0, sig_len = 0;
  uint8_t msg[SIG_PREFIX_LEN + KEY];
  goop_peer_id id;
  int rc;

  goop_pb_reader_init(&r, data, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    switch (f.num) {
    case 1:
    case 2:
    case 4:
      if (f.wire != GOOP_PB_LEN)
        return GOOP_EPARSE;
      if (f.num == 1) {
        key = f.data;
        key_len = f.len;
      } else if (f.num == 2) {
        sig = f.data;
        sig_len = f.len;
      } else if ((rc = parse_extensions(hs, f.data, f.len))) {
        return rc;
      }
      break;
    default:
      break; /* unknown fields are ignored */
    }
  }
  if (rc < 0)
    return GOOP_EPARSE;
  if (!key || !sig || key_len == 0 || key_len > GOOP_PUBKEY_PB_MAX || sig_len == 0)
    return GOOP_EPARSE;
  if ((rc = goop_pubkey_to_peer_id(key, key_len, &id)))
    return rc;
  if (hs->has_expected && !goop_peer_id_equal(&id, &hs->expected))
    return GOOP_EPEERID;
  sig_message(hs->rs, msg);
  if ((rc = goop_pubkey_verify(key, key_len, msg, sizeof(msg), sig, sig_len)))
    return rc;
  hs->remote_pk = malloc(key_len);
  if (!hs->remote_pk)
    return GOOP_ENOMEM;
  memcpy(hs->remote_pk, key, key_len);
  hs->remote_pk_len = key_len;
  hs->remote_id = id;
  hs->remote_verified = true;
  negotiate_muxer(hs);
  return 0;
}

int goop_noise_hs_write_message(goop_noise_hs *hs, goop_buf *out) {
  goop_return_val_if_fail(hs != NULL && out != NULL, GOOP_EINVAL);
  if (hs->raw || hs->failed || hs->step >= 3 || !my_turn_to_write(hs))
    return GOOP_ESTATE;
  if (hs->step > 0 && !hs->local)
    return GOOP_EINVAL;
  goop_buf pl;
  goop_buf_init(&pl, GOOP_NOISE_MAX_MSG);
  size_t base = out->len;
  int rc;
  /* msg1 carries no payload; msg2 and msg3 carry ours. */
  if (hs->step > 0 && (rc = build_payload(hs, &pl))) {
    hs->failed = true;
    goto out;
  }
  if ((rc = goop_buf_append(out, (const uint8_t[2]){0, 0}, 2)))
    goto out;
  if ((rc = hs_write_body(hs, pl.data, pl.len, out))) {
    out->len = base;
    goto out;
  }
  size_t body = out->len - base - 2;
  out->data[base] = (uint8_t)(body >> 8);
  out->data[base + 1] = (uint8_t)body;
out:
  goop_buf_free(&pl);
  return rc;
}

int goop_noise_hs_read_message(goop_noise_hs *hs, const uint8_t *body, size_t len) {
  goop_return_val_if_fail(hs != NULL, GOOP_EINVAL);
  goop_return_val_if_fail(len == 0 || body != NULL, GOOP_EINVAL);
  if (hs->raw || hs->failed || hs->step >= 3 || my_turn_to_write(hs))
    return GOOP_ESTATE;
  goop_buf pl;
  goop_buf_init(&pl, GOOP_NOISE_MAX_MSG);
  unsigned step = hs->step;
  int rc = hs_read_body(hs, body, len, &pl);
  if (rc)
    goto out;
  /* msg1's payload (if any) is ignored; msg2/msg3 carry the remote's identity. */
  if (step > 0 && (rc = process_payload(hs, pl.data, pl.len)))
    hs->failed = true;
out:
  if (pl.data)
    goop__wipe(pl.data, pl.len);
  goop_buf_free(&pl);
  return rc;
}

size_t goop_noise_deframe(const uint8_t *in, size_t len, const uint8_t **ret_body, size_t *ret_body_len) {
  if (!in || len < 2)
    return 0;
  size_t n = (size_t)in[0] << 8 | in[1];
  if (len - 2 < n)
    return 0;
  if (ret_body)
    *ret_body = in + 2;
  if (ret_body_len)
    *ret_body_len = n;
  return n + 2;
}

const goop_peer_id *goop_noise_hs_remote_peer_id(const goop_noise_hs *hs) {
  return hs && hs->remote_verified ? &hs->remote_id : NULL;
}

const uint8_t *goop_noise_hs_remote_public_key(const goop_noise_hs *hs, size_t *ret_len) {
  bool ok = hs && hs->remote_verified;
  if (ret_len)
    *ret_len = ok ? hs->remote_pk_len : 0;
  return ok ? hs->remote_pk : NULL;
}

size_t goop_noise_hs_remote_muxer_count(const goop_noise_hs *hs) {
  return hs && hs->remote_verified ? hs->n_rmuxers : 0;
}

const char *goop_noise_hs_remote_muxer(const goop_noise_hs *hs, size_t i) {
  return hs && hs->remote_verified && i < hs->n_rmuxers ? hs->rmuxers[i] : NULL;
}

const char *goop_noise_hs_early_muxer(const goop_noise_hs *hs) {
  return hs && hs->remote_verified ? hs->early_muxer : NULL;
}

int goop_noise_hs_split(goop_noise_hs *hs, goop_noise_cipher **ret) {
  goop_return_val_if_fail(hs != NULL && ret != NULL, GOOP_EINVAL);
  if (!goop_noise_hs_is_complete(hs) || hs->split_done)
    return GOOP_ESTATE;
  uint8_t k1[HASHLEN], k2[HASHLEN];
  int rc = hkdf2(hs->ck, NULL, 0, k1, k2);
  if (rc)
    goto out;
  rc = GOOP_ENOMEM;
  goop_noise_cipher *c = calloc(1, sizeof(*c));
  if (!c)
    goto out;
  c->tx = aead_new(hs->initiator ? k1 : k2, true);
  c->rx = aead_new(hs->initiator ? k2 : k1, false);
  if (!c->tx || !c->rx) {
    goop_noise_cipher_free(c);
    rc = GOOP_ECRYPTO;
    goto out;
  }
  hs->split_done = true;
  goop__wipe(hs->ck, sizeof(hs->ck));
  goop__wipe(hs->k, sizeof(hs->k));
  *ret = c;
  rc = 0;
out:
  goop__wipe(k1, sizeof(k1));
  goop__wipe(k2, sizeof(k2));
  return rc;
}

/* ---- transport ----------------------------------------------------------- */

int goop_noise_encrypt(goop_noise_cipher *c, const uint8_t *plaintext, size_t len, goop_buf *out) {
  goop_return_val_if_fail(c != NULL && out != NULL, GOOP_EINVAL);
  goop_return_val_if_fail(len == 0 || plaintext != NULL, GOOP_EINVAL);
  if (c->tx_broken)
    return GOOP_ESTATE;
  size_t frames = len == 0 ? 1 : (len - 1) / GOOP_NOISE_MAX_PLAINTEXT + 1;
  if (frames > UINT64_MAX - c->ntx)
    return GOOP_ELIMIT; /* nonce 2^64-1 is reserved */
  if (len > SIZE_MAX - frames * (2 + TAG))
    return GOOP_ELIMIT;
  int rc = goop_buf_reserve(out, len + frames * (2 + TAG));
  if (rc)
    return rc;
  uint8_t *dst = out->data + out->len;
  size_t off = 0;
  do {
    size_t n = GOOP_MIN(len - off, (size_t)GOOP_NOISE_MAX_PLAINTEXT);
    size_t clen = n + TAG;
    dst[0] = (uint8_t)(clen >> 8);
    dst[1] = (uint8_t)clen;
    if ((rc = aead_seal(c->tx, c->ntx, NULL, 0, n ? plaintext + off : NULL, n, dst + 2))) {
      c->tx_broken = true; /* earlier frames of this call used nonces that were never sent */
      return rc;
    }
    c->ntx++;
    dst += 2 + clen;
    off += n;
  } while (off < len);
  out->len += len + frames * (2 + TAG);
  return 0;
}

int goop_noise_decrypt_frame(goop_noise_cipher *c, const uint8_t *in, size_t len, size_t *consumed,
                             goop_buf *out) {
  goop_return_val_if_fail(c != NULL && consumed != NULL && out != NULL, GOOP_EINVAL);
  goop_return_val_if_fail(len == 0 || in != NULL, GOOP_EINVAL);
  if (c->rx_broken)
    return GOOP_ESTATE;
  if (len < 2)
    return 0;
  size_t clen = (size_t)in[0] << 8 | in[1];
  if (clen < TAG) {
    c->rx_broken = true;
    return GOOP_EPARSE;
  }
  if (len - 2 < clen)
    return 0;
  if (c->nrx == UINT64_MAX) {
    c->rx_broken = true;
    return GOOP_ELIMIT;
  }
  int rc = goop_buf_reserve(out, clen - TAG);
  if (rc)
    return rc;
  uint8_t none[1];
  uint8_t *dst = out->data ? out->data + out->len : none; /* empty frame, empty buffer */
  if ((rc = aead_open(c->rx, c->nrx, NULL, 0, in + 2, clen, dst))) {
    c->rx_broken = true;
    return rc;
  }
  c->nrx++;
  out->len += clen - TAG;
  *consumed = clen + 2;
  return 1;
}

void goop_noise_cipher_set_nonces(goop_noise_cipher *c, uint64_t tx, uint64_t rx) {
  if (!c)
    return;
  c->ntx = tx;
  c->nrx = rx;
}

void goop_noise_cipher_free(goop_noise_cipher *c) {
  if (!c)
    return;
  EVP_CIPHER_CTX_free(c->tx); /* clears the key schedule */
  EVP_CIPHER_CTX_free(c->rx);
  goop__wipe(c, sizeof(*c));
  free(c);
}
