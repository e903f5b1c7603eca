/*
 * Multiformats unsigned varint (LEB128, minimal encoding, at most 9 bytes,
 * 63-bit values) and length-prefixed framing (internal).
 */
#ifndef GOOP_CORE_VARINT_H
#define GOOP_CORE_VARINT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define GOOP_VARINT_MAX_BYTES 9

/* Encode |v| (must be < 2^63) into |out| (>= 9 bytes). Returns bytes written. */
size_t goop_varint_encode(uint64_t v, uint8_t *out);
/* Encoded size of |v|. */
size_t goop_varint_size(uint64_t v);
/*
 * Decode from |buf|/|len|. Returns bytes consumed (>0), 0 if more input is
 * needed (truncated), or GOOP_EPARSE (non-minimal, > 9 bytes, >= 2^63).
 */
int goop_varint_decode(const uint8_t *buf, size_t len, uint64_t *ret);
int goop_buf_append_varint(goop_buf *b, uint64_t v);

/*
 * Length-prefixed frame: uvarint(len) ‖ payload.
 * goop_frame_decode: returns total bytes consumed (>0) with |*ret_payload| /
 * |*ret_len| pointing into |buf|; 0 if incomplete; GOOP_EPARSE for a bad
 * prefix; GOOP_EMSGSIZE if the payload length exceeds |max|.
 */
int goop_frame_decode(const uint8_t *buf, size_t len, size_t max, const uint8_t **ret_payload,
                      size_t *ret_len);
int goop_frame_append(goop_buf *b, const void *payload, size_t len);

#endif
