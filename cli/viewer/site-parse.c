/* Bounded parsers of the viewer's site routes (see site-parse.h). */
#include "site-parse.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/*
 * A "Range" header against |size|: 0 = none or not usable (serve all: other
 * units, several ranges), 1 = one satisfiable range in |*start|, |*len|,
 * -1 = malformed or unsatisfiable (416).
 */
int site_parse_range(const char *h, uint64_t size, uint64_t *start, uint64_t *len) {
  if (!h)
    return 0;
  while (*h == ' ')
    h++;
  if (strncasecmp(h, "bytes=", 6) != 0)
    return 0;
  h += 6;
  if (strchr(h, ','))
    return 0; /* multipart ranges are not offered: the whole file */
  while (*h == ' ')
    h++;
  uint64_t a = 0, b = 0;
  bool have_a = false, have_b = false;
  while (*h >= '0' && *h <= '9') {
    if (a > (UINT64_MAX - 9) / 10)
      return -1;
    a = a * 10 + (uint64_t)(*h++ - '0');
    have_a = true;
  }
  if (*h++ != '-')
    return -1;
  while (*h >= '0' && *h <= '9') {
    if (b > (UINT64_MAX - 9) / 10)
      return -1;
    b = b * 10 + (uint64_t)(*h++ - '0');
    have_b = true;
  }
  while (*h == ' ')
    h++;
  if (*h || (!have_a && !have_b))
    return -1;
  if (!have_a) { /* suffix: the last b bytes */
    if (b == 0 || size == 0)
      return -1;
    if (b > size)
      b = size;
    *start = size - b;
    *len = b;
    return 1;
  }
  if (a >= size || (have_b && b < a))
    return -1;
  if (!have_b || b >= size)
    b = size - 1;
  *start = a;
  *len = b - a + 1;
  return 1;
}

/* Does If-None-Match (a list of entity tags or "*") name |etag|? */
bool site_etag_matches(const char *inm, const char *etag) {
  if (!inm)
    return false;
  size_t el = strlen(etag);
  const char *p = inm;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    if (!*p)
      break;
    if (*p == '*')
      return true;
    if (strncmp(p, "W/", 2) == 0)
      p += 2;
    const char *e = p;
    if (*e == '"') {
      const char *q = strchr(e + 1, '"');
      e = q ? q + 1 : e + strlen(e);
    } else {
      e += strcspn(e, ",");
    }
    if ((size_t)(e - p) == el && memcmp(p, etag, el) == 0)
      return true;
    p = e;
  }
  return false;
}

bool site_is_image(const char *path) {
  static const char *const ext[] = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".ico", ".bmp"};
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(slash ? slash + 1 : path, '.');
  if (!dot)
    return false;
  for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
    if (strcasecmp(dot, ext[i]) == 0)
      return true;
  return false;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/*
 * A request path (already percent-decoded once by the HTTP server) that may
 * be looked up: no backslash, no control byte, no "." or ".." segment, and no
 * escape that would decode to one of those or to '/'.
 */
bool site_path_tricky(const char *p) {
  const char *seg = p;
  for (const char *c = p;; c++) {
    unsigned char u = (unsigned char)*c;
    if (u == '/' || u == 0) {
      size_t n = (size_t)(c - seg);
      if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
        return true;
      if (!u)
        return false;
      seg = c + 1;
      continue;
    }
    if (u == '\\' || u < 0x20 || u == 0x7f)
      return true;
    if (u == '%') {
      int h = hexval(c[1]), l = h >= 0 ? hexval(c[2]) : -1;
      if (h < 0 || l < 0)
        return true;
      int d = h * 16 + l;
      if (d == '.' || d == '/' || d == '\\' || d == '%' || d < 0x20 || d == 0x7f)
        return true;
    }
  }
}

/*
 * A site-relative path for writing: leading '/' dropped, segments of
 * [^/\\ctl] without "." and "..", no empty segment, not under lua/, at most
 * SITE_PATH_MAX bytes. Returns the start inside |p| or NULL.
 */
const char *site_rel_path_ok(const char *p) {
  while (*p == '/')
    p++;
  size_t n = strlen(p);
  if (n == 0 || n > SITE_PATH_MAX || p[n - 1] == '/')
    return NULL;
  const char *seg = p;
  for (const char *c = p;; c++) {
    unsigned char u = (unsigned char)*c;
    if (u == '/' || u == 0) {
      size_t sl = (size_t)(c - seg);
      if (sl == 0 || (sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
        return NULL;
      if (!u)
        break;
      seg = c + 1;
      continue;
    }
    if (u == '\\' || u < 0x20 || u == 0x7f)
      return NULL;
  }
  if (strcmp(p, "lua") == 0 || strncmp(p, "lua/", 4) == 0)
    return NULL;
  return p;
}

/* The value of parameter |key| ("boundary", "name") in a header value; 0 or -1. */
static int header_param(const char *h, size_t hl, const char *key, char *out, size_t out_len) {
  size_t kl = strlen(key);
  for (size_t i = 0; i + kl + 1 <= hl; i++) {
    if ((i == 0 || h[i - 1] == ';' || h[i - 1] == ' ' || h[i - 1] == '\t') &&
        strncasecmp(h + i, key, kl) == 0 && h[i + kl] == '=') {
      const char *v = h + i + kl + 1, *end = h + hl;
      size_t n = 0;
      if (v < end && *v == '"') {
        v++;
        while (v + n < end && v[n] != '"')
          n++;
        if (v + n >= end)
          return -1;
      } else {
        while (v + n < end && v[n] != ';' && v[n] != ' ' && v[n] != '\t' && v[n] != '\r')
          n++;
      }
      if (n == 0 || n >= out_len)
        return -1;
      memcpy(out, v, n);
      out[n] = 0;
      return 0;
    }
  }
  return -1;
}

/*
 * Find fields "path" and "file" in a multipart/form-data body. Returns 0, or
 * -1 when the body is malformed.
 */
int site_multipart_fields(const char *ctype, const uint8_t *body, size_t len, struct site_part *path,
                          struct site_part *file) {
  char boundary[80], delim[84];
  if (!ctype || strncasecmp(ctype, "multipart/form-data", 19) != 0 ||
      header_param(ctype, strlen(ctype), "boundary", boundary, sizeof(boundary)) != 0)
    return -1;
  size_t dl = (size_t)snprintf(delim, sizeof(delim), "--%s", boundary);
  const uint8_t *p = body, *end = body + len;
  if ((size_t)(end - p) < dl || memcmp(p, delim, dl) != 0)
    return -1;
  p += dl;
  for (int parts = 0; parts < 64; parts++) {
    if (end - p >= 2 && p[0] == '-' && p[1] == '-')
      return 0; /* closing delimiter */
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
      return -1;
    p += 2;
    const uint8_t *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
    if (!hend || hend - p > 8192)
      return -1;
    char name[64] = "";
    const uint8_t *h = p;
    while (h < hend) {
      const uint8_t *eol = memmem(h, (size_t)(hend - h), "\r\n", 2);
      if (!eol)
        eol = hend;
      size_t hl = (size_t)(eol - h);
      if (hl > 20 && strncasecmp((const char *)h, "Content-Disposition:", 20) == 0)
        (void)header_param((const char *)h + 20, hl - 20, "name", name, sizeof(name));
      h = eol + 2;
    }
    const uint8_t *data = hend + 4;
    char cd[90];
    size_t cl = (size_t)snprintf(cd, sizeof(cd), "\r\n%s", delim);
    const uint8_t *next = memmem(data, (size_t)(end - data), cd, cl);
    if (!next)
      return -1;
    struct site_part *dst = strcmp(name, "path") == 0 ? path : strcmp(name, "file") == 0 ? file : NULL;
    if (dst && !dst->found) {
      dst->data = data;
      dst->len = (size_t)(next - data);
      dst->found = true;
    }
    p = next + cl;
  }
  return -1;
}
