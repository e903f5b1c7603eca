/* Text encodings of binary data: base58btc, base32, base36, base16, base64url, multibase. */
#include "base.h"

#include <string.h>

#include "../common/internal.h"

#define ENC_IN_MAX 4096
#define DEC_IN_MAX 8192

static const char b58_alpha[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
static const char b32_alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char b36_alpha[] = "0123456789abcdefghijklmnopqrstuvwxyz";
static const char hex_alpha[] = "0123456789abcdef";
static const char b64url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b58_val(char c) {
  const char *p = c ? strchr(b58_alpha, c) : NULL;
  return p ? (int)(p - b58_alpha) : -1;
}

static int b36_val(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z')
    return c - 'A' + 10;
  return -1;
}

/*
 * Generic big-number base conversion for base58/base36 (leading zero bytes map
 * to leading zero digits). Quadratic, which is fine at the input limits.
 */
static int bignum_encode(const uint8_t *in, size_t len, unsigned base, const char *alpha, char *out,
                         size_t out_len) {
  /* Worst case digits per byte: log(256)/log(base) <= 1.55 for base 36, 1.37 for base 58. */
  uint8_t digits[ENC_IN_MAX * 8 / 5 + 1];
  if (len > ENC_IN_MAX)
    return GOOP_EINVAL;
  size_t zeros = 0;
  while (zeros < len && in[zeros] == 0)
    zeros++;
  size_t nd = 0; /* digits, least significant first */
  for (size_t i = zeros; i < len; i++) {
    unsigned carry = in[i];
    for (size_t j = 0; j < nd; j++) {
      carry += (unsigned)digits[j] << 8;
      digits[j] = (uint8_t)(carry % base);
      carry /= base;
    }
    while (carry) {
      digits[nd++] = (uint8_t)(carry % base);
      carry /= base;
    }
  }
  size_t total = zeros + nd;
  if (total + 1 > out_len)
    return GOOP_EINVAL;
  size_t o = 0;
  for (size_t i = 0; i < zeros; i++)
    out[o++] = alpha[0];
  for (size_t i = 0; i < nd; i++)
    out[o++] = alpha[digits[nd - 1 - i]];
  out[o] = '\0';
  return (int)o;
}

static int bignum_decode(const char *in, size_t in_len, unsigned base, int (*val)(char), char zero,
                         uint8_t *out, size_t out_cap) {
  uint8_t bytes[DEC_IN_MAX]; /* little-endian, at most one byte per char */
  if (in_len > DEC_IN_MAX)
    return GOOP_EPARSE;
  size_t zeros = 0;
  while (zeros < in_len && in[zeros] == zero)
    zeros++;
  size_t nb = 0;
  for (size_t i = zeros; i < in_len; i++) {
    int v = val(in[i]);
    if (v < 0 || (unsigned)v >= base)
      return GOOP_EPARSE;
    unsigned carry = (unsigned)v;
    for (size_t j = 0; j < nb; j++) {
      carry += (unsigned)bytes[j] * base;
      bytes[j] = (uint8_t)(carry & 0xff);
      carry >>= 8;
    }
    while (carry) {
      bytes[nb++] = (uint8_t)(carry & 0xff);
      carry >>= 8;
    }
  }
  size_t total = zeros + nb;
  if (total > out_cap)
    return GOOP_EINVAL;
  memset(out, 0, zeros);
  for (size_t i = 0; i < nb; i++)
    out[zeros + i] = bytes[nb - 1 - i];
  return (int)total;
}

int goop_base58_encode(const uint8_t *in, size_t len, char *out, size_t out_len) {
  return bignum_encode(in, len, 58, b58_alpha, out, out_len);
}

int goop_base58_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap) {
  return bignum_decode(in, in_len, 58, b58_val, '1', out, out_cap);
}

int goop_base36_encode(const uint8_t *in, size_t len, char *out, size_t out_len) {
  return bignum_encode(in, len, 36, b36_alpha, out, out_len);
}

int goop_base36_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap) {
  return bignum_decode(in, in_len, 36, b36_val, '0', out, out_cap);
}

/* ---- power-of-two bases ---------------------------------------------------------------------- */

/* Encode with |bits| bits per character (4, 5 or 6), no padding. */
static int bits_encode(const uint8_t *in, size_t len, unsigned bits, const char *alpha, char *out,
                       size_t out_len) {
  if (len > ENC_IN_MAX)
    return GOOP_EINVAL;
  size_t need = (len * 8 + bits - 1) / bits;
  if (need + 1 > out_len)
    return GOOP_EINVAL;
  uint32_t acc = 0;
  unsigned nbits = 0;
  size_t o = 0;
  uint32_t mask = (1u << bits) - 1;
  for (size_t i = 0; i < len; i++) {
    acc = (acc << 8) | in[i];
    nbits += 8;
    while (nbits >= bits) {
      nbits -= bits;
      out[o++] = alpha[(acc >> nbits) & mask];
    }
  }
  if (nbits > 0)
    out[o++] = alpha[(acc << (bits - nbits)) & mask];
  out[o] = '\0';
  return (int)o;
}

/*
 * Decode with |bits| bits per character. |val| maps a char to its value or -1.
 * Rejects impossible lengths and non-zero trailing bits (non-canonical input).
 */
static int bits_decode(const char *in, size_t in_len, unsigned bits, int (*val)(char), uint8_t *out,
                       size_t out_cap) {
  if (in_len > DEC_IN_MAX)
    return GOOP_EPARSE;
  size_t total_bits = in_len * bits;
  /* Leftover bits must be fewer than |bits|, otherwise a whole char is useless. */
  if (total_bits % 8 >= bits)
    return GOOP_EPARSE;
  for (size_t i = 0; i < in_len; i++)
    if (val(in[i]) < 0)
      return GOOP_EPARSE;
  if (total_bits / 8 > out_cap)
    return GOOP_EINVAL;
  uint32_t acc = 0;
  unsigned nbits = 0;
  size_t o = 0;
  for (size_t i = 0; i < in_len; i++) {
    acc = (acc << bits) | (uint32_t)val(in[i]);
    nbits += bits;
    if (nbits >= 8) {
      nbits -= 8;
      out[o++] = (uint8_t)(acc >> nbits);
    }
    acc &= (1u << nbits) - 1;
  }
  if (acc != 0)
    return GOOP_EPARSE; /* non-canonical trailing bits */
  return (int)o;
}

static int b32_val(char c) {
  if (c >= 'a' && c <= 'z')
    return c - 'a';
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= '2' && c <= '7')
    return c - '2' + 26;
  return -1;
}

static int hex_val(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static int b64url_val(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

static int b64_val(char c) {
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  if (c == '-' || c == '_')
    return -1;
  return b64url_val(c);
}

int goop_base32_encode(const uint8_t *in, size_t len, char *out, size_t out_len) {
  return bits_encode(in, len, 5, b32_alpha, out, out_len);
}

int goop_base32_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap) {
  return bits_decode(in, in_len, 5, b32_val, out, out_cap);
}

int goop_base64url_encode(const uint8_t *in, size_t len, char *out, size_t out_len) {
  return bits_encode(in, len, 6, b64url_alpha, out, out_len);
}

int goop_base64url_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap) {
  return bits_decode(in, in_len, 6, b64url_val, out, out_cap);
}

int goop_hex_encode(const uint8_t *in, size_t len, char *out, size_t out_len) {
  return bits_encode(in, len, 4, hex_alpha, out, out_len);
}

int goop_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap) {
  if (in_len % 2)
    return GOOP_EPARSE;
  return bits_decode(in, in_len, 4, hex_val, out, out_cap);
}

/* ---- multibase ------------------------------------------------------------------------------- */

/* 1 if |s| contains a character of the case we must not see. */
static int has_case(const char *s, size_t n, int upper) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (upper ? (c >= 'A' && c <= 'Z') : (c >= 'a' && c <= 'z'))
      return 1;
  }
  return 0;
}

int goop_multibase_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap) {
  if (in_len < 1)
    return GOOP_EPARSE;
  const char *s = in + 1;
  size_t n = in_len - 1;
  switch (in[0]) {
  case 'z':
    return goop_base58_decode(s, n, out, out_cap);
  case 'b':
  case 'k':
  case 'f':
    if (has_case(s, n, 1))
      return GOOP_EPARSE;
    break;
  case 'B':
  case 'K':
  case 'F':
    if (has_case(s, n, 0))
      return GOOP_EPARSE;
    break;
  case 'u':
    return goop_base64url_decode(s, n, out, out_cap);
  case 'm':
    return bits_decode(s, n, 6, b64_val, out, out_cap);
  default:
    return GOOP_EPARSE;
  }
  switch (in[0]) {
  case 'b':
  case 'B':
    return goop_base32_decode(s, n, out, out_cap);
  case 'k':
  case 'K':
    return goop_base36_decode(s, n, out, out_cap);
  default:
    return goop_hex_decode(s, n, out, out_cap);
  }
}

int goop_multibase_encode(char prefix, const uint8_t *in, size_t len, char *out, size_t out_len) {
  if (out_len < 2)
    return GOOP_EINVAL;
  int rc;
  switch (prefix) {
  case 'z':
    rc = goop_base58_encode(in, len, out + 1, out_len - 1);
    break;
  case 'b':
    rc = goop_base32_encode(in, len, out + 1, out_len - 1);
    break;
  case 'k':
    rc = goop_base36_encode(in, len, out + 1, out_len - 1);
    break;
  case 'f':
    rc = goop_hex_encode(in, len, out + 1, out_len - 1);
    break;
  case 'u':
    rc = goop_base64url_encode(in, len, out + 1, out_len - 1);
    break;
  default:
    return GOOP_EINVAL;
  }
  if (rc < 0)
    return rc;
  out[0] = prefix;
  return rc + 1;
}
