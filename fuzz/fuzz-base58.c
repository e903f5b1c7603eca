/*
 * Fuzz target: base58btc (and the other text bases). Decoding then encoding
 * must give back the input (all decoders accept only canonical text, up to
 * letter case), and encoding then decoding must give back the bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base.h"
#include "internal.h"

typedef int (*dec_fn)(const char *, size_t, uint8_t *, size_t);
typedef int (*enc_fn)(const uint8_t *, size_t, char *, size_t);

static uint8_t bin[8192 + 16];
static char txt[16384 + 16];
static uint8_t back[8192 + 16];

static void check(const uint8_t *data, size_t size, dec_fn dec, enc_fn enc, int fold_case) {
  int n = dec((const char *)data, size, bin, sizeof(bin));
  if (n >= 0) {
    int m = enc(bin, (size_t)n, txt, sizeof(txt));
    if (m < 0) {
      if (n <= 4096) /* only the encoder's input limit may refuse */
        abort();
    } else if ((size_t)m != size ||
               (fold_case ? strncasecmp(txt, (const char *)data, size) : memcmp(txt, data, size)) != 0) {
      abort();
    }
  } else if (n != GOOP_EPARSE) {
    abort();
  }
  /* Raw bytes through the encoder and back. */
  if (size <= 4096) {
    int m = enc(data, size, txt, sizeof(txt));
    if (m < 0 || (size_t)m != strlen(txt))
      abort();
    n = dec(txt, (size_t)m, back, sizeof(back));
    if (n < 0 || (size_t)n != size || (size && memcmp(back, data, size) != 0))
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check(data, size, goop_base58_decode, goop_base58_encode, 0);
  check(data, size, goop_base32_decode, goop_base32_encode, 1);
  check(data, size, goop_base36_decode, goop_base36_encode, 1);
  check(data, size, goop_hex_decode, goop_hex_encode, 1);
  check(data, size, goop_base64url_decode, goop_base64url_encode, 0);
  int n = goop_multibase_decode((const char *)data, size, bin, sizeof(bin));
  if (n < 0 && n != GOOP_EPARSE)
    abort();
  return 0;
}
