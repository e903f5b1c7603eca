/*
 * Fuzz target: the rendezvous server's first-request-head classifier
 * (cli/rendezvous/rdv-head.c), fed the input and its first prefixes as the
 * server's successive peeks see them, with a large and a small head limit.
 */
#include "rendezvous/rdv-head.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(const char *buf, size_t len, size_t max) {
  size_t hlen = 1;
  struct rdv_events_req r;
  enum rdv_head_verdict v = rdv_head_classify(buf, len, max, &hlen, &r);
  if (v == RDV_HEAD_EVENTS) {
    if (hlen != len || hlen > max || memcmp(buf, "GET /events", 11) != 0)
      abort();
    if (r.xff && (r.xff < buf || r.xff + r.xff_len > buf + len))
      abort();
  } else if (hlen != 0) {
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  char *buf = malloc(size); /* exactly sized: a read past the end is caught */
  if (!buf)
    return 0;
  memcpy(buf, data, size);
  check(buf, size, 8192);
  check(buf, size, 64);
  for (size_t n = 1; n < size && n <= 256; n++)
    check(buf, n, 8192);
  free(buf);
  return 0;
}
