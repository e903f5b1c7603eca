/*
 * multistream-select: the input (after a 4-byte split key) is fed to a
 * responder and to an initiator in chunks whose sizes come from the key.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mss.h"

static bool pick(const char *proto, void *ud) {
  (void)ud;
  return proto[0] == '/' && strlen(proto) % 3 == 0;
}

static void run(goop_mss *m, const uint8_t *key, const uint8_t *data, size_t size) {
  size_t off = 0, k = 0;
  while (off < size) {
    size_t chunk = (size_t)(key[k++ % 4] % 64) + 1;
    if (chunk > size - off)
      chunk = size - off;
    size_t used = 0;
    int rc = goop_mss_feed(m, data + off, chunk, &used);
    if (used > chunk)
      abort();
    goop_buf *o = goop_mss_output(m);
    goop_buf_consume(o, o->len);
    if (rc < 0)
      return;
    if (rc == GOOP_MSS_DONE) {
      const char *sel = NULL;
      if (goop_mss_selected(m, &sel, NULL) != 0 || !sel)
        abort();
      return;
    }
    if (used != chunk)
      abort();
    off += chunk;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4)
    return 0;
  const uint8_t *key = data;
  data += 4;
  size -= 4;

  goop_mss *m = NULL;
  if (key[0] & 1) {
    const char *list[] = {"/noise", "/yamux/1.0.0", "/ipfs/id/1.0.0"};
    if (goop_mss_new_responder_list(list, 3, &m) == 0)
      run(m, key, data, size);
  } else if (goop_mss_new_responder(pick, NULL, &m) == 0) {
    run(m, key, data, size);
  }
  goop_mss_free(m);

  const char *protos[] = {"/tls/1.0.0", "/noise", "/yamux/1.0.0"};
  m = NULL;
  if (goop_mss_new_initiator(protos, (key[1] % 3) + 1, key[1] & 0x80, &m) == 0)
    run(m, key, data, size);
  goop_mss_free(m);
  return 0;
}
