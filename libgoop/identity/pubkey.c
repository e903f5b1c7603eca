/*
 * Remote public keys: parse a libp2p PublicKey protobuf, build the matching
 * OpenSSL key and verify signatures for Ed25519, secp256k1, ECDSA and RSA.
 */
#include <goop/identity.h>

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "internal.h"
#include "multihash.h"
#include "proto.h"
#include "varint.h"

#define ED25519_RAW_SIZE 32
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192
/* Largest signature we look at: RSA-8192 is 1024 bytes, DER ECDSA far less. */
#define SIG_MAX 1024

/*
 * Strict parse of a PublicKey protobuf: field 1 (varint Type) then field 2
 * (bytes Data), each exactly once, no other field, and canonical encoding
 * (the Peer ID hashes these exact bytes, so only one encoding is allowed).
 * Returns 0, GOOP_EPARSE or GOOP_EKEYTYPE (Type not one of the four).
 */
static int parse_pb(const uint8_t *buf, size_t len, enum goop_key_type *ret_type, const uint8_t **ret_data,
                    size_t *ret_data_len) {
  if (!buf || len == 0 || len > GOOP_PUBKEY_PB_MAX)
    return GOOP_EPARSE;
  goop_pb_reader r;
  goop_pb_field f;
  bool have_type = false, have_data = false;
  uint64_t type = 0;
  const uint8_t *data = NULL;
  size_t data_len = 0;
  int rc;

  goop_pb_reader_init(&r, buf, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    if (f.num == 1 && f.wire == GOOP_PB_VARINT && !have_type && !have_data) {
      have_type = true;
      type = f.u64;
    } else if (f.num == 2 && f.wire == GOOP_PB_LEN && have_type && !have_data) {
      have_data = true;
      data = f.data;
      data_len = f.len;
    } else {
      return GOOP_EPARSE;
    }
  }
  if (rc < 0 || !have_type || !have_data || data_len == 0)
    return GOOP_EPARSE;
  /* Canonical: minimal varints, one-byte tags, nothing else. */
  if (len != 1 + goop_varint_size(type) + 1 + goop_varint_size(data_len) + data_len)
    return GOOP_EPARSE;
  if (type > GOOP_KEY_ECDSA)
    return GOOP_EKEYTYPE;
  *ret_type = (enum goop_key_type)type;
  *ret_data = data;
  *ret_data_len = data_len;
  return 0;
}

/* An EC public key from a SEC1 point on the named curve |group|. */
static int ec_point_key(const char *group, const uint8_t *point, size_t len, EVP_PKEY **ret) {
  int rc = GOOP_EPARSE;
  EVP_PKEY *pkey = NULL;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  if (!ctx)
    return GOOP_ENOMEM;
  OSSL_PARAM params[3];
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
  params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, len);
  params[2] = OSSL_PARAM_construct_end();
  if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    goto out;
  *ret = pkey;
  rc = 0;
out:
  EVP_PKEY_CTX_free(ctx);
  return rc;
}

static int secp256k1_key(const uint8_t *data, size_t len, EVP_PKEY **ret) {
  if (!((len == 33 && (data[0] == 0x02 || data[0] == 0x03)) || (len == 65 && data[0] == 0x04)))
    return GOOP_EPARSE;
  return ec_point_key("secp256k1", data, len, ret);
}

/* Read one DER TLV with tag |tag| (definite, minimal length) from [*p, end). */
static bool der_next(const uint8_t **p, const uint8_t *end, uint8_t tag, const uint8_t **ret_val,
                     size_t *ret_len) {
  const uint8_t *q = *p;
  if (end - q < 2 || q[0] != tag)
    return false;
  size_t len = q[1];
  q += 2;
  if (len == 0x81) {
    if (end - q < 1 || q[0] < 0x80)
      return false;
    len = q[0];
    q += 1;
  } else if (len == 0x82) {
    if (end - q < 2 || q[0] == 0)
      return false;
    len = (size_t)q[0] << 8 | q[1];
    q += 2;
  } else if (len > 0x7f) {
    return false;
  }
  if ((size_t)(end - q) < len)
    return false;
  *ret_val = q;
  *ret_len = len;
  *p = q + len;
  return true;
}

/*
 * The ECDSA public key encoding of js-libp2p (@libp2p/crypto 5): not a
 * SubjectPublicKeyInfo but SEQUENCE { INTEGER 1, [0] OID curve,
 * [1] BIT STRING point }, for P-256, P-384 and P-521.
 */
static int js_ecdsa_key(const uint8_t *data, size_t len, EVP_PKEY **ret) {
  static const struct {
    const char *group;
    uint8_t oid[8];
    size_t oid_len;
    size_t point_len;
  } curves[] = {
      {"prime256v1", {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}, 8, 65},
      {"secp384r1", {0x2b, 0x81, 0x04, 0x00, 0x22}, 5, 97},
      {"secp521r1", {0x2b, 0x81, 0x04, 0x00, 0x23}, 5, 133},
  };
  const uint8_t *p = data, *end = data + len, *seq, *v, *ctx, *oid, *bits;
  size_t seq_len, v_len, ctx_len, oid_len, bits_len;
  if (!der_next(&p, end, 0x30, &seq, &seq_len) || p != end)
    return GOOP_EPARSE;
  p = seq;
  end = seq + seq_len;
  if (!der_next(&p, end, 0x02, &v, &v_len) || v_len != 1 || v[0] != 1)
    return GOOP_EPARSE;
  if (!der_next(&p, end, 0xa0, &ctx, &ctx_len))
    return GOOP_EPARSE;
  const uint8_t *q = ctx;
  if (!der_next(&q, ctx + ctx_len, 0x06, &oid, &oid_len) || q != ctx + ctx_len)
    return GOOP_EPARSE;
  if (!der_next(&p, end, 0xa1, &ctx, &ctx_len) || p != end)
    return GOOP_EPARSE;
  q = ctx;
  if (!der_next(&q, ctx + ctx_len, 0x03, &bits, &bits_len) || q != ctx + ctx_len)
    return GOOP_EPARSE;
  if (bits_len < 2 || bits[0] != 0x00 || bits[1] != 0x04)
    return GOOP_EPARSE;
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(curves); i++) {
    if (oid_len == curves[i].oid_len && memcmp(oid, curves[i].oid, oid_len) == 0) {
      if (bits_len - 1 != curves[i].point_len)
        return GOOP_EPARSE;
      return ec_point_key(curves[i].group, bits + 1, bits_len - 1, ret);
    }
  }
  return GOOP_EPARSE;
}

/* ECDSA keys must be on one of the NIST curves go-libp2p and js-libp2p use. */
static bool ecdsa_curve_ok(EVP_PKEY *pkey) {
  char name[64];
  size_t n = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &n) != 1)
    return false;
  return strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0 || strcmp(name, "secp384r1") == 0 ||
         strcmp(name, "P-384") == 0 || strcmp(name, "secp521r1") == 0 || strcmp(name, "P-521") == 0 ||
         strcmp(name, "secp224r1") == 0 || strcmp(name, "P-224") == 0;
}

/* DER SubjectPublicKeyInfo (len <= GOOP_PUBKEY_PB_MAX); the whole buffer must be consumed. */
static int spki_key(const uint8_t *data, size_t len, EVP_PKEY **ret) {
  const unsigned char *p = data;
  EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)len);
  if (!pkey)
    return GOOP_EPARSE;
  if (p != data + len) {
    EVP_PKEY_free(pkey);
    return GOOP_EPARSE;
  }
  *ret = pkey;
  return 0;
}

/* An EC public key must be a valid point on its curve. */
static int ec_check(EVP_PKEY *pkey) {
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
  if (!ctx)
    return GOOP_ENOMEM;
  int ok = EVP_PKEY_public_check(ctx);
  EVP_PKEY_CTX_free(ctx);
  return ok == 1 ? 0 : GOOP_EPARSE;
}

/* Parse |pb| and build the OpenSSL key. On success |*ret_pkey| is owned by the caller. */
static int load_key(const uint8_t *pb, size_t pb_len, enum goop_key_type *ret_type, EVP_PKEY **ret_pkey) {
  enum goop_key_type type;
  const uint8_t *data;
  size_t data_len;
  EVP_PKEY *pkey = NULL;
  int rc = parse_pb(pb, pb_len, &type, &data, &data_len);
  if (rc < 0)
    return rc;

  switch (type) {
  case GOOP_KEY_ED25519:
    if (data_len != ED25519_RAW_SIZE)
      return GOOP_EPARSE;
    pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, data, data_len);
    if (!pkey)
      rc = GOOP_EPARSE;
    break;
  case GOOP_KEY_SECP256K1:
    rc = secp256k1_key(data, data_len, &pkey);
    if (rc == 0)
      rc = ec_check(pkey);
    break;
  case GOOP_KEY_ECDSA:
    /* go-libp2p: PKIX SubjectPublicKeyInfo; js-libp2p: its own SEQUENCE (see js_ecdsa_key). */
    rc = spki_key(data, data_len, &pkey);
    if (rc < 0 && rc != GOOP_ENOMEM)
      rc = js_ecdsa_key(data, data_len, &pkey);
    if (rc == 0 && !EVP_PKEY_is_a(pkey, "EC"))
      rc = GOOP_EPARSE;
    if (rc == 0 && !ecdsa_curve_ok(pkey))
      rc = GOOP_EKEYTYPE;
    if (rc == 0)
      rc = ec_check(pkey);
    break;
  case GOOP_KEY_RSA:
    rc = spki_key(data, data_len, &pkey);
    if (rc == 0 && !EVP_PKEY_is_a(pkey, "RSA"))
      rc = GOOP_EPARSE;
    if (rc == 0) {
      int bits = EVP_PKEY_get_bits(pkey);
      if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)
        rc = GOOP_EKEYTYPE;
    }
    break;
  default:
    rc = GOOP_EKEYTYPE;
    break;
  }
  ERR_clear_error();
  if (rc < 0) {
    EVP_PKEY_free(pkey);
    return rc;
  }
  *ret_type = type;
  *ret_pkey = pkey;
  return 0;
}

int goop_pubkey_check(const uint8_t *pubkey_pb, size_t pubkey_len, enum goop_key_type *ret_type) {
  enum goop_key_type type;
  EVP_PKEY *pkey = NULL;
  int rc = load_key(pubkey_pb, pubkey_len, &type, &pkey);
  if (rc < 0)
    return rc;
  EVP_PKEY_free(pkey);
  if (ret_type)
    *ret_type = type;
  return 0;
}

/* One verification: 0, GOOP_EBADSIG or GOOP_ENOMEM. */
static int verify_once(EVP_PKEY *pkey, enum goop_key_type type, const uint8_t *msg, size_t msg_len,
                       const uint8_t *sig, size_t sig_len) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx)
    return GOOP_ENOMEM;
  EVP_PKEY_CTX *pctx = NULL;
  const EVP_MD *md = type == GOOP_KEY_ED25519 ? NULL : EVP_sha256();
  int rc = GOOP_EBADSIG;
  if (EVP_DigestVerifyInit(ctx, &pctx, md, NULL, pkey) != 1)
    goto out;
  if (type == GOOP_KEY_RSA && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
    goto out;
  if (EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1)
    rc = 0;
out:
  EVP_MD_CTX_free(ctx);
  return rc;
}

/*
 * js-libp2p signs ECDSA with WebCrypto, which gives the fixed-size r ‖ s form
 * (IEEE P1363) instead of DER. Convert it to DER. Returns the DER length, or
 * 0 if |sig| does not have that shape.
 */
static size_t raw_ecdsa_to_der(EVP_PKEY *pkey, const uint8_t *sig, size_t sig_len, uint8_t *out,
                               size_t out_cap) {
  size_t half = ((size_t)EVP_PKEY_get_bits(pkey) + 7) / 8;
  if (half == 0 || sig_len != 2 * half)
    return 0;
  ECDSA_SIG *es = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
  size_t n = 0;
  if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return 0;
  }
  int need = i2d_ECDSA_SIG(es, NULL);
  if (need > 0 && (size_t)need <= out_cap) {
    unsigned char *p = out;
    n = (size_t)i2d_ECDSA_SIG(es, &p);
  }
  ECDSA_SIG_free(es);
  return n;
}

int goop_pubkey_verify(const uint8_t *pubkey_pb, size_t pubkey_len, const uint8_t *msg, size_t msg_len,
                       const uint8_t *sig, size_t sig_len) {
  goop_return_val_if_fail(msg || msg_len == 0, GOOP_EINVAL);
  enum goop_key_type type;
  EVP_PKEY *pkey = NULL;
  int rc = load_key(pubkey_pb, pubkey_len, &type, &pkey);
  if (rc < 0)
    return rc;
  if (!sig || sig_len == 0 || sig_len > SIG_MAX ||
      (type == GOOP_KEY_ED25519 && sig_len != GOOP_ED25519_SIG_SIZE)) {
    EVP_PKEY_free(pkey);
    return GOOP_EBADSIG;
  }
  static const uint8_t empty[1];
  if (!msg)
    msg = empty;

  rc = verify_once(pkey, type, msg, msg_len, sig, sig_len);
  if (rc == GOOP_EBADSIG && type == GOOP_KEY_ECDSA) {
    uint8_t der[2 * 66 + 16];
    size_t der_len = raw_ecdsa_to_der(pkey, sig, sig_len, der, sizeof(der));
    if (der_len > 0)
      rc = verify_once(pkey, type, msg, msg_len, der, der_len);
  }
  EVP_PKEY_free(pkey);
  ERR_clear_error();
  return rc;
}

int goop_pubkey_to_peer_id(const uint8_t *pubkey_pb, size_t pubkey_len, goop_peer_id *ret) {
  goop_return_val_if_fail(ret != NULL, GOOP_EINVAL);
  enum goop_key_type type;
  const uint8_t *data;
  size_t data_len;
  if (parse_pb(pubkey_pb, pubkey_len, &type, &data, &data_len) < 0)
    return GOOP_EPARSE;

  goop_peer_id id = {0};
  if (pubkey_len <= 42) {
    int n = goop_multihash_write(GOOP_MH_IDENTITY, pubkey_pb, pubkey_len, id.bytes, sizeof(id.bytes));
    if (n < 0)
      return GOOP_EPARSE;
    id.len = (uint8_t)n;
  } else {
    goop_multihash_sha256(pubkey_pb, pubkey_len, id.bytes);
    id.len = 34;
  }
  *ret = id;
  return 0;
}
