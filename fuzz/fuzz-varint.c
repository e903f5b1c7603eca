/* Fuzz target: unsigned varint decoding and length-prefixed frame decoding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "varint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t v;
  int n = goop_varint_decode(data, size, &v);
  if (n > 0) {
    /* Accepted encodings are minimal, so re-encoding gives the same bytes. */
    uint8_t out[16];
    size_t m = goop_varint_encode(v, out);
    if ((int)m != n || memcmp(out, data, m) != 0 || goop_varint_size(v) != m || m > GOOP_VARINT_MAX_BYTES)
      abort();
  } else if (n != 0 && n != GOOP_EPARSE) {
    abort();
  }

  /* Walk the input as a stream of frames under a few limits. */
  static const size_t limits[] = {0, 16, 4096, SIZE_MAX};
  for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
    size_t off = 0;
    while (off < size) {
      const uint8_t *p;
      size_t plen;
      int rc = goop_frame_decode(data + off, size - off, limits[i], &p, &plen);
      if (rc <= 0)
        break;
      if (plen > limits[i] || p < data + off || p + plen > data + size || (size_t)rc > size - off)
        abort();
      off += (size_t)rc;
    }
  }
  return 0;
}
