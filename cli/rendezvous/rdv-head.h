/*
 * The first request head of a rendezvous connection: is it a plain
 * GET /events that the server answers itself (rdv-server.c), one that MHD
 * gets, or not complete yet? Pure parsing, no I/O (fuzzed by fuzz-rdv-head).
 */
#ifndef GOOP_CLI_RDV_HEAD_H
#define GOOP_CLI_RDV_HEAD_H

#include <stdbool.h>
#include <stddef.h>

/* What a plain GET /events head asks for. */
struct rdv_events_req {
  bool http10;     /* HTTP/1.0: no chunked encoding, the stream ends with the connection */
  bool close;      /* HTTP/1.0 or a "close" token in Connection */
  const char *xff; /* the first X-Forwarded-For value (trimmed, not NUL-terminated) or NULL */
  size_t xff_len;
};

enum rdv_head_verdict {
  RDV_HEAD_WAIT,   /* could still be a plain GET /events: wait for more bytes */
  RDV_HEAD_OTHER,  /* anything else: MHD's */
  RDV_HEAD_EVENTS, /* a complete plain GET /events head: |*hlen| bytes, described in |*r| */
};

/*
 * Classify the |len| bytes a connection has sent so far. A plain GET /events
 * head is "GET /events" or "GET /events?<query>", " HTTP/1.0" or " HTTP/1.1",
 * well-formed header lines (CRLF), no Content-Length other than 0, no
 * Transfer-Encoding or Expect, ending in CRLF CRLF within |max| bytes, and no
 * byte after it (a body or a pipelined request is MHD's too).
 */
enum rdv_head_verdict rdv_head_classify(const char *buf, size_t len, size_t max, size_t *hlen,
                                        struct rdv_events_req *r);

#endif
