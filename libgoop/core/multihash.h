/* Multihash and CID (internal). */
#ifndef GOOP_CORE_MULTIHASH_H
#define GOOP_CORE_MULTIHASH_H

#include <stddef.h>
#include <stdint.h>

#define GOOP_MH_IDENTITY 0x00
#define GOOP_MH_SHA2_256 0x12
#define GOOP_CID_V1 0x01
#define GOOP_CODEC_LIBP2P_KEY 0x72

typedef struct goop_multihash {
  uint64_t code;
  const uint8_t *digest; /* points into the parsed input */
  size_t digest_len;
} goop_multihash;

/* Parse a whole buffer as one multihash (no trailing bytes). 0 or GOOP_EPARSE. */
int goop_multihash_parse(const uint8_t *buf, size_t len, goop_multihash *ret);
/* Write code ‖ len ‖ digest to |out| (cap |out_cap|). Returns length or GOOP_EINVAL. */
int goop_multihash_write(uint64_t code, const uint8_t *digest, size_t digest_len, uint8_t *out,
                         size_t out_cap);
/* sha2-256 multihash of |data| (34 bytes into |out|). */
void goop_multihash_sha256(const uint8_t *data, size_t len, uint8_t out[34]);

/*
 * CIDv1: 0x01 ‖ uvarint(codec) ‖ multihash. Parse the binary form; on success
 * |*ret_codec| and the multihash bytes (pointing into |buf|). 0 or GOOP_EPARSE.
 */
int goop_cid_parse(const uint8_t *buf, size_t len, uint64_t *ret_codec, const uint8_t **ret_mh,
                   size_t *ret_mh_len);
/* Build binary CIDv1. Returns length or GOOP_EINVAL. */
int goop_cid_write(uint64_t codec, const uint8_t *mh, size_t mh_len, uint8_t *out, size_t out_cap);

#endif
