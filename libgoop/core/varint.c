#include "varint.h"

#include "../common/internal.h"

size_t goop_varint_encode(uint64_t v, uint8_t *out) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[n++] = (uint8_t)v;
  return n;
}

size_t goop_varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

int goop_varint_decode(const uint8_t *buf, size_t len, uint64_t *ret) {
  uint64_t v = 0;
  for (size_t i = 0; i < GOOP_VARINT_MAX_BYTES; i++) {
    if (i >= len)
      return 0;
    uint8_t c = buf[i];
    v |= (uint64_t)(c & 0x7f) << (7 * i);
    if (!(c & 0x80)) {
      if (c == 0 && i > 0)
        return GOOP_EPARSE; /* non-minimal */
      *ret = v;
      return (int)(i + 1);
    }
  }
  return GOOP_EPARSE; /* more than 9 bytes */
}

int goop_buf_append_varint(goop_buf *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = goop_varint_encode(v, tmp);
  return goop_buf_append(b, tmp, n);
}

int goop_frame_decode(const uint8_t *buf, size_t len, size_t max, const uint8_t **ret_payload,
                      size_t *ret_len) {
  uint64_t plen;
  int n = goop_varint_decode(buf, len, &plen);
  if (n <= 0)
    return n;
  if (plen > max)
    return GOOP_EMSGSIZE;
  if (len - (size_t)n < plen)
    return 0;
  *ret_payload = buf + n;
  *ret_len = (size_t)plen;
  return n + (int)plen;
}

int goop_frame_append(goop_buf *b, const void *payload, size_t len) {
  int rc = goop_buf_append_varint(b, len);
  if (rc)
    return rc;
  return goop_buf_append(b, payload, len);
}
