/*
 * DCUtR HolePunch messages: frames split off the input as a peer reads them,
 * each decoded, re-encoded and decoded again; the whole input is also
 * decoded as one raw message.
 */
#include <stdlib.h>
#include <string.h>

#include "relay-msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *body, size_t len) {
  goop_holepunch_msg m, d;
  if (goop_holepunch_decode(body, len, &m) != 0)
    return;
  goop_buf out;
  goop_buf_init(&out, 0);
  if (goop_holepunch_encode(&m, &out) == 0) {
    const uint8_t *b2;
    size_t l2, used;
    if (goop_relay_frame_take(out.data, out.len, &b2, &l2, &used) != 0 || used != out.len)
      abort();
    if (goop_holepunch_decode(b2, l2, &d) != 0 || d.type != m.type || d.n_addrs != m.n_addrs)
      abort();
    for (size_t i = 0; i < m.n_addrs; i++)
      if (d.addrs[i].len != m.addrs[i].len ||
          (m.addrs[i].len && memcmp(d.addrs[i].data, m.addrs[i].data, m.addrs[i].len) != 0))
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
