/* Protobuf wire-format reader and writer. */
#include "proto.h"

#include <string.h>

#include "../common/internal.h"
#include "varint.h"

#define PB_FIELD_MAX ((UINT32_C(1) << 29) - 1)

void goop_pb_reader_init(goop_pb_reader *r, const uint8_t *buf, size_t len) {
  r->p = buf;
  r->end = buf ? buf + len : buf;
}

/* Decode one varint at |r->p|; truncation is an error here (a message is complete). */
static int read_varint(goop_pb_reader *r, uint64_t *ret) {
  int n = goop_varint_decode(r->p, (size_t)(r->end - r->p), ret);
  if (n <= 0)
    return GOOP_EPARSE;
  r->p += n;
  return 0;
}

static uint64_t read_le(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

int goop_pb_next(goop_pb_reader *r, goop_pb_field *f) {
  if (r->p == r->end)
    return 0;
  goop_pb_reader save = *r;
  uint64_t key, v;
  if (read_varint(r, &key) != 0)
    goto fail;
  uint64_t num = key >> 3;
  unsigned wire = (unsigned)(key & 7);
  if (num == 0 || num > PB_FIELD_MAX)
    goto fail;
  size_t left;
  goop_pb_field out = {.num = (uint32_t)num};
  switch (wire) {
  case GOOP_PB_VARINT:
    if (read_varint(r, &v) != 0)
      goto fail;
    out.wire = GOOP_PB_VARINT;
    out.u64 = v;
    break;
  case GOOP_PB_I64:
  case GOOP_PB_I32: {
    size_t n = wire == GOOP_PB_I64 ? 8 : 4;
    if ((size_t)(r->end - r->p) < n)
      goto fail;
    out.wire = (enum goop_pb_wire)wire;
    out.u64 = read_le(r->p, n);
    r->p += n;
    break;
  }
  case GOOP_PB_LEN:
    if (read_varint(r, &v) != 0)
      goto fail;
    left = (size_t)(r->end - r->p);
    if (v > left)
      goto fail;
    out.wire = GOOP_PB_LEN;
    out.data = r->p;
    out.len = (size_t)v;
    r->p += v;
    break;
  default: /* 3, 4 (groups), 6, 7 */
    goto fail;
  }
  *f = out;
  return 1;

fail:
  *r = save;
  return GOOP_EPARSE;
}

/* ---- writer -------------------------------------------------------------------------------- */

int goop_pb_put_tag(goop_buf *b, uint32_t num, enum goop_pb_wire wire) {
  if (num == 0 || num > PB_FIELD_MAX)
    return GOOP_EINVAL;
  return goop_buf_append_varint(b, ((uint64_t)num << 3) | (uint64_t)wire);
}

/* Append tag and payload atomically: on failure |b| keeps its old length. */
static int put_field(goop_buf *b, uint32_t num, enum goop_pb_wire wire, const uint8_t *pre, size_t pre_len,
                     const void *data, size_t len) {
  size_t old = b->len;
  int rc = goop_pb_put_tag(b, num, wire);
  if (rc == 0)
    rc = goop_buf_append(b, pre, pre_len);
  if (rc == 0)
    rc = goop_buf_append(b, data, len);
  if (rc != 0)
    b->len = old;
  return rc;
}

int goop_pb_put_varint(goop_buf *b, uint32_t num, uint64_t v) {
  uint8_t tmp[10];
  /* Our reader is limited to 63-bit varints (9 bytes), so never write more. */
  if (v >= (UINT64_C(1) << 63))
    return GOOP_EINVAL;
  size_t n = goop_varint_encode(v, tmp);
  return put_field(b, num, GOOP_PB_VARINT, tmp, n, NULL, 0);
}

int goop_pb_put_bool(goop_buf *b, uint32_t num, bool v) {
  return goop_pb_put_varint(b, num, v ? 1 : 0);
}

int goop_pb_put_bytes(goop_buf *b, uint32_t num, const void *data, size_t len) {
  uint8_t tmp[10];
  size_t n = goop_varint_encode(len, tmp);
  return put_field(b, num, GOOP_PB_LEN, tmp, n, data, len);
}

int goop_pb_put_string(goop_buf *b, uint32_t num, const char *s) {
  return goop_pb_put_bytes(b, num, s, strlen(s));
}

int goop_pb_put_fixed64(goop_buf *b, uint32_t num, uint64_t v) {
  uint8_t tmp[8];
  for (size_t i = 0; i < 8; i++)
    tmp[i] = (uint8_t)(v >> (8 * i));
  return put_field(b, num, GOOP_PB_I64, tmp, 8, NULL, 0);
}

int goop_pb_put_fixed32(goop_buf *b, uint32_t num, uint32_t v) {
  uint8_t tmp[4];
  for (size_t i = 0; i < 4; i++)
    tmp[i] = (uint8_t)(v >> (8 * i));
  return put_field(b, num, GOOP_PB_I32, tmp, 4, NULL, 0);
}
