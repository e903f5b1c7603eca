/* Multihash and CIDv1 binary forms. */
#include "multihash.h"

#include <openssl/evp.h>
#include <string.h>

#include "../common/internal.h"
#include "varint.h"

#define MH_IDENTITY_MAX 128
#define SHA256_LEN 32

/* Digest length rules that hold for every multihash we accept. */
static int digest_len_ok(uint64_t code, size_t len) {
  if (code == GOOP_MH_IDENTITY)
    return len <= MH_IDENTITY_MAX;
  if (code == GOOP_MH_SHA2_256)
    return len == SHA256_LEN;
  return 1;
}

int goop_multihash_parse(const uint8_t *buf, size_t len, goop_multihash *ret) {
  uint64_t code, dlen;
  int n = goop_varint_decode(buf, len, &code);
  if (n <= 0)
    return GOOP_EPARSE;
  size_t off = (size_t)n;
  n = goop_varint_decode(buf + off, len - off, &dlen);
  if (n <= 0)
    return GOOP_EPARSE;
  off += (size_t)n;
  if (dlen != len - off)
    return GOOP_EPARSE;
  if (!digest_len_ok(code, (size_t)dlen))
    return GOOP_EPARSE;
  ret->code = code;
  ret->digest = buf + off;
  ret->digest_len = (size_t)dlen;
  return 0;
}

int goop_multihash_write(uint64_t code, const uint8_t *digest, size_t digest_len, uint8_t *out,
                         size_t out_cap) {
  if (code >= (UINT64_C(1) << 63) || !digest_len_ok(code, digest_len) || digest_len > INT32_MAX / 2)
    return GOOP_EINVAL;
  size_t need = goop_varint_size(code) + goop_varint_size(digest_len) + digest_len;
  if (need > out_cap)
    return GOOP_EINVAL;
  size_t off = goop_varint_encode(code, out);
  off += goop_varint_encode(digest_len, out + off);
  if (digest_len)
    memmove(out + off, digest, digest_len);
  return (int)(off + digest_len);
}

void goop_multihash_sha256(const uint8_t *data, size_t len, uint8_t out[34]) {
  unsigned int dl = SHA256_LEN;
  out[0] = GOOP_MH_SHA2_256;
  out[1] = SHA256_LEN;
  /* EVP_Digest with SHA-256 only fails on allocation failure; leave a zero digest then. */
  if (EVP_Digest(data, len, out + 2, &dl, EVP_sha256(), NULL) != 1)
    memset(out + 2, 0, SHA256_LEN);
}

int goop_cid_parse(const uint8_t *buf, size_t len, uint64_t *ret_codec, const uint8_t **ret_mh,
                   size_t *ret_mh_len) {
  uint64_t version, codec;
  int n = goop_varint_decode(buf, len, &version);
  if (n <= 0 || version != GOOP_CID_V1)
    return GOOP_EPARSE;
  size_t off = (size_t)n;
  n = goop_varint_decode(buf + off, len - off, &codec);
  if (n <= 0)
    return GOOP_EPARSE;
  off += (size_t)n;
  goop_multihash mh;
  if (goop_multihash_parse(buf + off, len - off, &mh) != 0)
    return GOOP_EPARSE;
  *ret_codec = codec;
  *ret_mh = buf + off;
  *ret_mh_len = len - off;
  return 0;
}

int goop_cid_write(uint64_t codec, const uint8_t *mh, size_t mh_len, uint8_t *out, size_t out_cap) {
  goop_multihash parsed;
  if (codec >= (UINT64_C(1) << 63) || mh_len > INT32_MAX / 2 ||
      goop_multihash_parse(mh, mh_len, &parsed) != 0)
    return GOOP_EINVAL;
  size_t need = 1 + goop_varint_size(codec) + mh_len;
  if (need > out_cap)
    return GOOP_EINVAL;
  size_t off = goop_varint_encode(GOOP_CID_V1, out);
  off += goop_varint_encode(codec, out + off);
  memmove(out + off, mh, mh_len);
  return (int)(off + mh_len);
}
