/* Fuzz target: multiaddr text → binary → text → binary must be stable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "internal.h"
#include "multiaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > GOOP_MA_STR_MAX + 16)
    return 0;
  char *text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';

  goop_buf a, b;
  goop_buf_init(&a, 0);
  goop_buf_init(&b, 0);
  int rc = goop_ma_from_string(text, &a);
  if (rc == 0) {
    static char printed[GOOP_MA_STR_MAX];
    if (a.len == 0 || a.len > GOOP_MA_MAX || goop_ma_validate(a.data, a.len) != 0)
      abort();
    int n = goop_ma_to_string(a.data, a.len, printed, sizeof(printed));
    if (n <= 0 || (size_t)n != strlen(printed))
      abort();
    if (goop_ma_from_string(printed, &b) != 0 || b.len != a.len || memcmp(a.data, b.data, a.len) != 0)
      abort();
  } else if (rc != GOOP_EPARSE || a.len != 0) {
    abort();
  }
  goop_buf_free(&a);
  goop_buf_free(&b);
  free(text);
  return 0;
}
