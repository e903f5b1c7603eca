/* Fuzz target: protobuf reader (all fields, LEN fields also as nested messages). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "internal.h"
#include "proto.h"

/*
 * Walk every field of |data| and re-encode it with the writer: the reader
 * accepts only minimal varints, so a message it fully accepts must come out
 * byte for byte the same. Returns 1 if the message parsed completely.
 */
static int walk(const uint8_t *data, size_t size, int depth) {
  goop_pb_reader r;
  goop_pb_field f;
  goop_buf b;
  int rc;
  goop_pb_reader_init(&r, data, size);
  goop_buf_init(&b, 0);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    int w = 0;
    switch (f.wire) {
    case GOOP_PB_VARINT:
      w = goop_pb_put_varint(&b, f.num, f.u64);
      break;
    case GOOP_PB_I64:
      w = goop_pb_put_fixed64(&b, f.num, f.u64);
      break;
    case GOOP_PB_I32:
      if (f.u64 > UINT32_MAX)
        abort();
      w = goop_pb_put_fixed32(&b, f.num, (uint32_t)f.u64);
      break;
    case GOOP_PB_LEN:
      if (f.data < data || f.data + f.len > data + size)
        abort();
      if (depth < 4)
        (void)walk(f.data, f.len, depth + 1);
      w = goop_pb_put_bytes(&b, f.num, f.data, f.len);
      break;
    default:
      abort();
    }
    if (w != 0 || f.num == 0 || f.num >= (1u << 29))
      abort();
  }
  if (rc != 0 && rc != GOOP_EPARSE)
    abort();
  if (rc == 0 && (b.len != size || (size && memcmp(b.data, data, size) != 0)))
    abort();
  goop_buf_free(&b);
  return rc == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)walk(data, size, 0);
  return 0;
}
