/*
 * Bounded parsers for the viewer (see http-parse.h).
 */
#include "http-parse.h"

#include <string.h>

int http_parse_addr(const char *s, char *host, size_t host_len, uint16_t *ret_port) {
  size_t n = strnlen(s, HTTP_ADDR_MAX + 1);
  if (n == 0 || n > HTTP_ADDR_MAX || host_len == 0)
    return -1;
  const char *colon;
  const char *h = s;
  size_t hl;
  if (s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (!close || close[1] != ':')
      return -1;
    h = s + 1;
    hl = (size_t)(close - h);
    colon = close + 1;
    if (hl == 0)
      return -1;
  } else {
    colon = NULL;
    for (size_t i = 0; i < n; i++)
      if (s[i] == ':')
        colon = s + i;
    if (!colon)
      return -1;
    hl = (size_t)(colon - s);
    if (memchr(s, ':', hl)) /* a bare IPv6 literal needs brackets */
      return -1;
  }
  const char *p = colon + 1;
  if (!*p || strlen(p) > 5)
    return -1;
  unsigned long port = 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    port = port * 10 + (unsigned long)(*p - '0');
  }
  if (port > 65535)
    return -1;
  if (hl == 0) {
    h = "127.0.0.1";
    hl = 9;
  } else if (hl == 9 && strncmp(h, "localhost", 9) == 0) {
    h = "127.0.0.1";
  }
  if (hl >= host_len)
    return -1;
  memcpy(host, h, hl);
  host[hl] = 0;
  *ret_port = (uint16_t)port;
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decode |n| bytes of a urlencoded component. */
static int decode(const char *s, size_t n, char *out, size_t out_len) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%') {
      if (i + 2 >= n)
        return -2;
      int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
      if (a < 0 || b < 0)
        return -2;
      c = (char)(a * 16 + b);
      i += 2;
    }
    if (o + 1 >= out_len)
      return -2;
    out[o++] = c;
  }
  out[o] = 0;
  return (int)o;
}

int http_form_field(const char *body, size_t len, const char *key, char *out, size_t out_len) {
  size_t kl = strlen(key);
  if (out_len == 0 || out_len > (1u << 30))
    return -2;
  size_t i = 0;
  while (i <= len) {
    size_t end = i;
    while (end < len && body[end] != '&')
      end++;
    const char *eq = memchr(body + i, '=', end - i);
    size_t name_len = eq ? (size_t)(eq - (body + i)) : end - i;
    if (name_len == kl && memcmp(body + i, key, kl) == 0) {
      if (!eq) {
        out[0] = 0;
        return 0;
      }
      const char *val = eq + 1;
      return decode(val, (size_t)(body + end - val), out, out_len);
    }
    if (end >= len)
      break;
    i = end + 1;
  }
  return -1;
}

bool http_is_guest_token(const char *s) {
  size_t i;
  for (i = 0; i < 32; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return s[32] == 0;
}

bool http_token_equal(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  unsigned char d = la != lb;
  size_t n = la < lb ? la : lb;
  for (size_t i = 0; i < n; i++)
    d |= (unsigned char)(a[i] ^ b[i]);
  return d == 0;
}
