/* Ping payloads, echo and round-trip measurement (see ping.h). */
#include "ping.h"

#include <openssl/rand.h>
#include <string.h>

#include "../common/internal.h"

int goop_ping_payload(uint8_t out[GOOP_PING_SIZE]) {
  return RAND_bytes(out, GOOP_PING_SIZE) == 1 ? 0 : GOOP_ECRYPTO;
}

void goop_ping_responder_init(goop_ping_responder *r) {
  *r = (goop_ping_responder){0};
}

int goop_ping_responder_feed(goop_ping_responder *r, const uint8_t *data, size_t len,
                             uint8_t echo[GOOP_PING_SIZE], size_t *consumed) {
  size_t take = GOOP_MIN(GOOP_PING_SIZE - r->have, len);
  if (take)
    memcpy(r->buf + r->have, data, take);
  r->have += take;
  *consumed = take;
  if (r->have < GOOP_PING_SIZE)
    return 0;
  memcpy(echo, r->buf, GOOP_PING_SIZE);
  r->have = 0;
  return 1;
}

bool goop_ping_responder_partial(const goop_ping_responder *r) {
  return r->have > 0;
}

void goop_ping_initiator_init(goop_ping_initiator *p) {
  *p = (goop_ping_initiator){0};
}

int goop_ping_initiator_start_with(goop_ping_initiator *p, goop_tstamp now,
                                   const uint8_t payload[GOOP_PING_SIZE]) {
  if (p->outstanding)
    return GOOP_ESTATE;
  memcpy(p->sent, payload, GOOP_PING_SIZE);
  p->have = 0;
  p->sent_at = now;
  p->outstanding = true;
  return 0;
}

int goop_ping_initiator_start(goop_ping_initiator *p, goop_tstamp now, uint8_t out[GOOP_PING_SIZE]) {
  uint8_t payload[GOOP_PING_SIZE];
  if (p->outstanding)
    return GOOP_ESTATE;
  if (goop_ping_payload(payload))
    return GOOP_ECRYPTO;
  memcpy(out, payload, GOOP_PING_SIZE);
  return goop_ping_initiator_start_with(p, now, payload);
}

int goop_ping_initiator_feed(goop_ping_initiator *p, const uint8_t *data, size_t len, goop_tstamp now,
                             size_t *consumed, goop_tstamp *ret_rtt) {
  *consumed = 0;
  if (len == 0)
    return 0;
  if (!p->outstanding)
    return GOOP_EPROTO;
  size_t take = GOOP_MIN(GOOP_PING_SIZE - p->have, len);
  memcpy(p->got + p->have, data, take);
  p->have += take;
  *consumed = take;
  if (p->have < GOOP_PING_SIZE)
    return 0;
  p->outstanding = false;
  p->have = 0;
  if (memcmp(p->got, p->sent, GOOP_PING_SIZE) != 0)
    return GOOP_EPROTO;
  *ret_rtt = now >= p->sent_at ? now - p->sent_at : 0;
  return 1;
}
