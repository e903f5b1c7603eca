/*
 * Ping (/ipfs/ping/1.0.0), internal and sans-I/O. The dialer writes 32
 * random bytes; the listener echoes them; repeat on the same stream.
 */
#ifndef GOOP_TRANSPORT_PING_H
#define GOOP_TRANSPORT_PING_H

#include <goop/common.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GOOP_PING_PROTOCOL "/ipfs/ping/1.0.0"
#define GOOP_PING_SIZE 32

/* Fill |out| with a fresh random payload. Returns 0 or GOOP_ECRYPTO. */
int goop_ping_payload(uint8_t out[GOOP_PING_SIZE]);

/*
 * Listener. It handles one payload at a time: goop_ping_responder_feed()
 * consumes bytes only up to the end of the current 32-byte payload, so the
 * caller writes each echo before the next payload is taken (back-pressure
 * stays with the stream).
 */
typedef struct goop_ping_responder {
  uint8_t buf[GOOP_PING_SIZE];
  size_t have;
} goop_ping_responder;

void goop_ping_responder_init(goop_ping_responder *r);
/*
 * Feed received bytes. Returns 1 when a complete payload is in |echo| (write
 * it back, then feed the rest of the input from |data| + |*consumed|), or 0
 * when all |len| bytes were buffered and more are needed.
 */
int goop_ping_responder_feed(goop_ping_responder *r, const uint8_t *data, size_t len,
                             uint8_t echo[GOOP_PING_SIZE], size_t *consumed);
/* true if a partial payload is buffered (at EOF: the peer stopped mid-ping). */
bool goop_ping_responder_partial(const goop_ping_responder *r);

/* Dialer: one outstanding ping at a time. */
typedef struct goop_ping_initiator {
  uint8_t sent[GOOP_PING_SIZE];
  uint8_t got[GOOP_PING_SIZE];
  size_t have;
  goop_tstamp sent_at;
  bool outstanding;
} goop_ping_initiator;

void goop_ping_initiator_init(goop_ping_initiator *p);
/*
 * Start a ping at time |now|: a new random payload goes to |out| (write it).
 * Returns 0, GOOP_ESTATE (a ping is still outstanding) or GOOP_ECRYPTO.
 */
int goop_ping_initiator_start(goop_ping_initiator *p, goop_tstamp now, uint8_t out[GOOP_PING_SIZE]);
/* Same with a caller-chosen payload (tests). */
int goop_ping_initiator_start_with(goop_ping_initiator *p, goop_tstamp now,
                                   const uint8_t payload[GOOP_PING_SIZE]);
/*
 * Feed echoed bytes received at |now|. Returns 0 (need more; all consumed),
 * 1 with |*ret_rtt| = |now| - start time (|*consumed| tells how many bytes
 * were the echo), GOOP_EPROTO if the echo differs from what we sent (or bytes
 * arrive with no ping outstanding).
 */
int goop_ping_initiator_feed(goop_ping_initiator *p, const uint8_t *data, size_t len, goop_tstamp now,
                             size_t *consumed, goop_tstamp *ret_rtt);

#endif
