/*
 * Circuit relay hop messages: the input is split into length-prefixed frames
 * as a relay reads them, each frame is decoded, re-encoded and decoded again
 * (what we encode must decode to the same fields), and a reservation voucher
 * is checked. The whole input is also decoded as one raw message.
 */
#include <stdlib.h>
#include <string.h>

#include "relay-msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const goop_peer_id some_peer = {.len = 2, .bytes = {0x00, 0x00}};

static void same_bytes(goop_relay_bytes a, goop_relay_bytes b) {
  if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
    abort();
}

static void check(const uint8_t *body, size_t len) {
  goop_hop_msg m, d;
  if (goop_hop_decode(body, len, &m) != 0)
    return;
  goop_buf out;
  goop_buf_init(&out, 0);
  if (goop_hop_encode(&m, &out) == 0) {
    const uint8_t *b2;
    size_t l2, used;
    if (goop_relay_frame_take(out.data, out.len, &b2, &l2, &used) != 0 || used != out.len)
      abort();
    if (goop_hop_decode(b2, l2, &d) != 0)
      abort();
    if (d.type != m.type || d.peer.present != m.peer.present || d.peer.n_addrs != m.peer.n_addrs ||
        d.reservation.present != m.reservation.present || d.reservation.expire != m.reservation.expire ||
        d.limit.present != m.limit.present || d.limit.duration != m.limit.duration ||
        d.limit.data != m.limit.data || d.has_status != m.has_status || d.status != m.status)
      abort();
    same_bytes(d.peer.id, m.peer.id);
    for (size_t i = 0; i < m.peer.n_addrs; i++)
      same_bytes(d.peer.addrs[i], m.peer.addrs[i]);
    same_bytes(d.reservation.voucher, m.reservation.voucher);
  }
  goop_buf_free(&out);
  if (m.reservation.present && m.reservation.voucher.len)
    (void)goop_relay_voucher_open(m.reservation.voucher.data, m.reservation.voucher.len, &some_peer,
                                  &some_peer, NULL);
  (void)goop_relay_status_name(m.status);
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
  (void)goop_relay_voucher_open(data, size, &some_peer, &some_peer, NULL);
  return 0;
}
