/*
 * Minimal protobuf reader and writer (internal): enough for libp2p messages.
 * Wire types 0 (varint), 1 (64-bit), 2 (length-delimited), 5 (32-bit).
 * Groups (3, 4) are rejected. Field numbers 1..2^29-1.
 */
#ifndef GOOP_CORE_PROTO_H
#define GOOP_CORE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum goop_pb_wire { GOOP_PB_VARINT = 0, GOOP_PB_I64 = 1, GOOP_PB_LEN = 2, GOOP_PB_I32 = 5 };

typedef struct goop_pb_reader {
  const uint8_t *p;
  const uint8_t *end;
} goop_pb_reader;

typedef struct goop_pb_field {
  uint32_t num;
  enum goop_pb_wire wire;
  uint64_t u64;        /* VARINT, I64, I32 values */
  const uint8_t *data; /* LEN: points into the input */
  size_t len;          /* LEN: length */
} goop_pb_field;

void goop_pb_reader_init(goop_pb_reader *r, const uint8_t *buf, size_t len);
/* Returns 1 with a field, 0 at clean end of input, GOOP_EPARSE on malformed input
 * (wire type 3/4/6/7, field number 0 or > 2^29-1, bad or truncated varint,
 * truncated fixed field, LEN past the end); the reader is then left unchanged. */
int goop_pb_next(goop_pb_reader *r, goop_pb_field *f);

/* Writers append one field (all or nothing). Return 0 or GOOP_ENOMEM/GOOP_ELIMIT;
 * GOOP_EINVAL for a field number outside 1..2^29-1 or a varint value >= 2^63
 * (the reader accepts at most 9-byte varints, see varint.h). */
int goop_pb_put_varint(goop_buf *b, uint32_t num, uint64_t v);
int goop_pb_put_bool(goop_buf *b, uint32_t num, bool v);
int goop_pb_put_bytes(goop_buf *b, uint32_t num, const void *data, size_t len);
int goop_pb_put_string(goop_buf *b, uint32_t num, const char *s);
int goop_pb_put_fixed64(goop_buf *b, uint32_t num, uint64_t v);
int goop_pb_put_fixed32(goop_buf *b, uint32_t num, uint32_t v);
/* Append a field header (tag) only. */
int goop_pb_put_tag(goop_buf *b, uint32_t num, enum goop_pb_wire wire);

#endif
