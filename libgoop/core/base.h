/* base58btc, base32 (RFC 4648 lower-case, no padding), base36 and multibase (internal). */
#ifndef GOOP_CORE_BASE_H
#define GOOP_CORE_BASE_H

#include <stddef.h>
#include <stdint.h>

/* Encoders write a NUL-terminated string. They return the string length, or
 * GOOP_EINVAL if |out_len| is too small or the input exceeds 4096 bytes. */
int goop_base58_encode(const uint8_t *in, size_t len, char *out, size_t out_len);
int goop_base32_encode(const uint8_t *in, size_t len, char *out, size_t out_len);
int goop_base36_encode(const uint8_t *in, size_t len, char *out, size_t out_len);

/* Decoders: |in_len| chars; write up to |out_cap| bytes. Return decoded length,
 * GOOP_EPARSE on an invalid character or padding, GOOP_EINVAL if |out_cap| is
 * too small. base32 accepts lower or upper case, no padding, and rejects
 * non-zero trailing bits; base36 accepts either case. Input limit 8192 chars
 * (longer input: GOOP_EPARSE). */
int goop_base58_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap);
int goop_base32_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap);
int goop_base36_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap);

/* Multibase: prefix 'z' base58btc, 'b' base32 lower, 'B' base32 upper,
 * 'k'/'K' base36, 'f'/'F' base16, 'u' base64url, 'm' base64 (both without
 * padding). The case of the text must match the prefix. Decode returns length
 * or GOOP_EPARSE (unknown prefix included), GOOP_EINVAL if |out_cap| is too
 * small. Encode supports 'z', 'b', 'k', 'f', 'u'. */
int goop_multibase_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap);
int goop_multibase_encode(char prefix, const uint8_t *in, size_t len, char *out, size_t out_len);

/* base64url (RFC 4648 §5) without padding; same conventions and limits as above.
 * Decode rejects padding and non-zero trailing bits. */
int goop_base64url_encode(const uint8_t *in, size_t len, char *out, size_t out_len);
int goop_base64url_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap);

/* Lower-case hex helpers (decode accepts either case; odd length is GOOP_EPARSE). */
int goop_hex_encode(const uint8_t *in, size_t len, char *out, size_t out_len);
int goop_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap);

#endif
