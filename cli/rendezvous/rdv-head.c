/*
 * The first request head of a rendezvous connection (see rdv-head.h).
 */
#include "rdv-head.h"

#include <string.h>
#include <strings.h>

/* A case-insensitive header name match at |line| ("Name:"); returns the trimmed value or NULL. */
static const char *hdr_value(const char *line, const char *end, const char *name, size_t *vlen) {
  size_t nl = strlen(name);
  if ((size_t)(end - line) <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
    return NULL;
  const char *v = line + nl + 1;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  const char *e = end;
  while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
    e--;
  *vlen = (size_t)(e - v);
  return v;
}

static bool has_token(const char *v, size_t len, const char *tok) {
  size_t tl = strlen(tok);
  for (size_t i = 0; i + tl <= len; i++)
    if (strncasecmp(v + i, tok, tl) == 0 && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
        (i + tl == len || v[i + tl] == ',' || v[i + tl] == ' '))
      return true;
  return false;
}

/* |h| is a complete head of |len| bytes ending in CRLF CRLF that starts with "GET /events". */
static bool parse_events_head(const char *h, size_t len, struct rdv_events_req *r) {
  memset(r, 0, sizeof(*r));
  const char *end = h + len - 2; /* the final CRLF */
  const char *eol = memchr(h, '\r', len);
  if (!eol || eol[1] != '\n')
    return false;
  const char *p = h + 11; /* past "GET /events" */
  if (*p == '?')
    while (p < eol && *p != ' ')
      if ((unsigned char)*p++ <= 0x20)
        return false;
  if (eol - p != 9 || *p != ' ' || memcmp(p + 1, "HTTP/1.", 7) != 0 || (p[8] != '0' && p[8] != '1'))
    return false;
  r->http10 = p[8] == '0';
  r->close = r->http10;
  for (const char *line = eol + 2; line < end;) {
    const char *le = memchr(line, '\r', (size_t)(end - line));
    if (!le || le[1] != '\n' || le == line)
      return false;
    const char *colon = memchr(line, ':', (size_t)(le - line));
    if (!colon || colon == line)
      return false;
    for (const char *c = line; c < colon; c++)
      if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
        return false;
    for (const char *c = colon; c < le; c++)
      if (((unsigned char)*c < 0x20 && *c != '\t') || (unsigned char)*c == 0x7f)
        return false;
    size_t vl;
    const char *v;
    if ((v = hdr_value(line, le, "Content-Length", &vl)) && !(vl == 1 && *v == '0'))
      return false;
    if (hdr_value(line, le, "Transfer-Encoding", &vl) || hdr_value(line, le, "Expect", &vl))
      return false;
    if ((v = hdr_value(line, le, "Connection", &vl)) && has_token(v, vl, "close"))
      r->close = true;
    if (!r->xff && (v = hdr_value(line, le, "X-Forwarded-For", &vl))) {
      r->xff = v;
      r->xff_len = vl;
    }
    line = le + 2;
  }
  return true;
}

enum rdv_head_verdict rdv_head_classify(const char *buf, size_t len, size_t max, size_t *hlen,
                                        struct rdv_events_req *r) {
  static const char want[] = "GET /events";
  const size_t wl = sizeof(want) - 1;
  *hlen = 0;
  const size_t all = len;
  if (len > max)
    len = max;
  if (memcmp(buf, want, len < wl ? len : wl) != 0 || (len > wl && buf[wl] != ' ' && buf[wl] != '?'))
    return RDV_HEAD_OTHER;
  size_t end = 0;
  for (size_t i = 0; i < len && !end; i++) {
    /* Bare LF or CR line ends: MHD's. */
    if ((buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r')) ||
        (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n'))
      return RDV_HEAD_OTHER;
    if (i >= 3 && buf[i] == '\n' && buf[i - 2] == '\n')
      end = i + 1;
  }
  if (!end)
    return len >= max ? RDV_HEAD_OTHER : RDV_HEAD_WAIT; /* MHD answers an oversize head */
  if (end != all || end <= wl || !parse_events_head(buf, end, r))
    return RDV_HEAD_OTHER;
  *hlen = end;
  return RDV_HEAD_EVENTS;
}
