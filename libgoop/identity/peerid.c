/* Peer IDs: validation of the multihash and the base58btc / CIDv1 text forms. */
#include <goop/identity.h>

#include <string.h>

#include "base.h"
#include "internal.h"
#include "multihash.h"

/* Longest serialized PublicKey that is inlined with the identity multihash. */
#define IDENTITY_INLINE_MAX 42
#define SHA256_SIZE 32
/* Longest text accepted by goop_peer_id_from_string(). */
#define TEXT_MAX (GOOP_PEER_ID_STR_MAX - 1)

size_t goop_peer_id_max(void) {
  return GOOP_PEER_ID_MAX;
}

size_t goop_peer_id_str_max(void) {
  return GOOP_PEER_ID_STR_MAX;
}

int goop_peer_id_from_bytes(const uint8_t *buf, size_t len, goop_peer_id *ret) {
  goop_return_val_if_fail(ret != NULL, GOOP_EINVAL);
  if (!buf || len == 0 || len > GOOP_PEER_ID_MAX)
    return GOOP_EPARSE;
  goop_multihash mh;
  if (goop_multihash_parse(buf, len, &mh) < 0)
    return GOOP_EPARSE;

  if (mh.code == GOOP_MH_IDENTITY) {
    if (mh.digest_len == 0 || mh.digest_len > IDENTITY_INLINE_MAX)
      return GOOP_EPARSE;
    /* The inlined key must be a canonical PublicKey that maps back to these very bytes. */
    goop_peer_id again;
    if (goop_pubkey_to_peer_id(mh.digest, mh.digest_len, &again) < 0)
      return GOOP_EPARSE;
    if (again.len != len || memcmp(again.bytes, buf, len) != 0)
      return GOOP_EPARSE;
  } else if (mh.code == GOOP_MH_SHA2_256) {
    if (mh.digest_len != SHA256_SIZE)
      return GOOP_EPARSE;
  } else {
    return GOOP_EPARSE;
  }

  goop_peer_id id = {0};
  memcpy(id.bytes, buf, len);
  id.len = (uint8_t)len;
  *ret = id;
  return 0;
}

int goop_peer_id_from_string(const char *text, goop_peer_id *ret) {
  goop_return_val_if_fail(text != NULL && ret != NULL, GOOP_EINVAL);
  size_t n = strnlen(text, TEXT_MAX + 1);
  if (n == 0 || n > TEXT_MAX)
    return GOOP_EPARSE;

  uint8_t raw[GOOP_PEER_ID_STR_MAX];
  int len;
  if (text[0] == '1' || (n >= 2 && text[0] == 'Q' && text[1] == 'm')) {
    len = goop_base58_decode(text, n, raw, sizeof(raw));
    if (len <= 0)
      return GOOP_EPARSE;
    return goop_peer_id_from_bytes(raw, (size_t)len, ret);
  }

  len = goop_multibase_decode(text, n, raw, sizeof(raw));
  if (len <= 0)
    return GOOP_EPARSE;
  uint64_t codec;
  const uint8_t *mh;
  size_t mh_len;
  if (goop_cid_parse(raw, (size_t)len, &codec, &mh, &mh_len) < 0 || codec != GOOP_CODEC_LIBP2P_KEY)
    return GOOP_EPARSE;
  return goop_peer_id_from_bytes(mh, mh_len, ret);
}

static bool id_valid(const goop_peer_id *id) {
  return id && id->len > 0 && id->len <= GOOP_PEER_ID_MAX;
}

int goop_peer_id_to_string(const goop_peer_id *id, char *buf, size_t buf_len) {
  goop_return_val_if_fail(id_valid(id) && buf != NULL, GOOP_EINVAL);
  int n = goop_base58_encode(id->bytes, id->len, buf, buf_len);
  return n < 0 ? GOOP_EINVAL : n;
}

int goop_peer_id_to_cid_string(const goop_peer_id *id, char *buf, size_t buf_len) {
  goop_return_val_if_fail(id_valid(id) && buf != NULL, GOOP_EINVAL);
  uint8_t cid[GOOP_PEER_ID_MAX + 8];
  int n = goop_cid_write(GOOP_CODEC_LIBP2P_KEY, id->bytes, id->len, cid, sizeof(cid));
  if (n < 0)
    return GOOP_EINVAL;
  n = goop_multibase_encode('b', cid, (size_t)n, buf, buf_len);
  return n < 0 ? GOOP_EINVAL : n;
}

bool goop_peer_id_equal(const goop_peer_id *a, const goop_peer_id *b) {
  if (!a || !b)
    return false;
  return a->len == b->len && a->len <= GOOP_PEER_ID_MAX && memcmp(a->bytes, b->bytes, a->len) == 0;
}

int goop_peer_id_extract_pubkey(const goop_peer_id *id, uint8_t *out, size_t *out_len) {
  goop_return_val_if_fail(id_valid(id) && out_len != NULL, GOOP_EINVAL);
  goop_multihash mh;
  if (goop_multihash_parse(id->bytes, id->len, &mh) < 0)
    return GOOP_EPARSE;
  if (mh.code == GOOP_MH_SHA2_256)
    return GOOP_ENOENT;
  if (mh.code != GOOP_MH_IDENTITY)
    return GOOP_EPARSE;
  if (!out || *out_len < mh.digest_len)
    return GOOP_EINVAL;
  memcpy(out, mh.digest, mh.digest_len);
  *out_len = mh.digest_len;
  return 0;
}
