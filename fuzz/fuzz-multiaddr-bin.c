/* Fuzz target: binary multiaddr → text → binary must give the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "internal.h"
#include "multiaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char text[GOOP_MA_STR_MAX];
  int valid = goop_ma_validate(data, size) == 0;

  /* Iteration agrees with validation and stays inside the input. */
  size_t off = 0;
  goop_ma_component c;
  int rc;
  while ((rc = goop_ma_next(data, size, &off, &c)) == 1) {
    if (c.value < data || c.value + c.value_len > data + size || off > size)
      abort();
  }
  if (valid != (rc == 0 && size > 0 && size <= GOOP_MA_MAX))
    abort();

  int n = goop_ma_to_string(data, size, text, sizeof(text));
  if (!valid) {
    if (n != GOOP_EPARSE)
      abort();
    return 0;
  }
  if (n <= 0 || (size_t)n != strlen(text))
    abort();
  goop_buf b;
  goop_buf_init(&b, 0);
  if (goop_ma_from_string(text, &b) != 0 || b.len != size || memcmp(b.data, data, size) != 0)
    abort();
  goop_buf_free(&b);
  return 0;
}
