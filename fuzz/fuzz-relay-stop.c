/*
 * Circuit relay stop messages: frames split off the input as a target reads
 * them, each decoded, re-encoded and decoded again; the whole input is also
 * decoded as one raw message.
 */
#include <stdlib.h>
#include <string.h>

#include "relay-msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *body, size_t len) {
  goop_stop_msg m, d;
  if (goop_stop_decode(body, len, &m) != 0)
    return;
  goop_buf out;
  goop_buf_init(&out, 0);
  if (goop_stop_encode(&m, &out) == 0) {
    const uint8_t *b2;
    size_t l2, used;
    if (goop_relay_frame_take(out.data, out.len, &b2, &l2, &used) != 0 || used != out.len)
      abort();
    if (goop_stop_decode(b2, l2, &d) != 0)
      abort();
    if (d.type != m.type || d.peer.present != m.peer.present || d.peer.n_addrs != m.peer.n_addrs ||
        d.peer.id.len != m.peer.id.len || d.limit.present != m.limit.present ||
        d.limit.duration != m.limit.duration || d.limit.data != m.limit.data ||
        d.has_status != m.has_status || d.status != m.status)
      abort();
    if (m.peer.id.len && memcmp(d.peer.id.data, m.peer.id.data, m.peer.id.len) != 0)
      abort();
  }
  goop_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p = data, *body;
  size_t left = size, len, used;
  while (goop_relay_frame_take(p, left, &body, &len, &used) == 0) {
    check(body, len);
    p += used;
    left -= used;
  }
  check(data, size);
  return 0;
}
