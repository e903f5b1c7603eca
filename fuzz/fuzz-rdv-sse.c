/*
 * Fuzz target: the rendezvous client's event-stream splitter
 * (cli/rendezvous/rdv-client.c) fed in two pieces, and every data payload
 * through the presence parser, as the client does.
 */
#include "rendezvous/rdv-client.h"

#include <goop/presence.h>
#include <stdint.h>
#include <string.h>

static void on_line(bool comment, const char *data, size_t len, void *ud) {
  (void)ud;
  if (comment)
    return;
  struct goop_presence_msg m;
  memset(&m, 0, sizeof(m));
  (void)goop_presence_msg_parse(data, len, &m);
  goop_presence_msg_clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct rdv_sse p;
  if (rdv_sse_init(&p, on_line, NULL) != 0)
    return 0;
  size_t half = size / 2;
  rdv_sse_feed(&p, (const char *)data, half);
  rdv_sse_feed(&p, (const char *)data + half, size - half);
  rdv_sse_free(&p);
  return 0;
}
