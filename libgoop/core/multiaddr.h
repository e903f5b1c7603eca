/*
 * Multiaddr binary and text forms (internal; public wrappers may come later).
 * Supported: ip4 ip6 tcp udp dns dns4 dns6 dnsaddr p2p(ipfs) p2p-circuit
 * quic-v1, and for parsing foreign addresses also quic ws wss tls noise
 * webtransport certhash ip6zone (see libp2p-notes §2). Unknown names/codes
 * are GOOP_EPARSE.
 */
#ifndef GOOP_CORE_MULTIADDR_H
#define GOOP_CORE_MULTIADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define GOOP_MA_IP4 4
#define GOOP_MA_TCP 6
#define GOOP_MA_IP6 41
#define GOOP_MA_IP6ZONE 42
#define GOOP_MA_DNS 53
#define GOOP_MA_DNS4 54
#define GOOP_MA_DNS6 55
#define GOOP_MA_DNSADDR 56
#define GOOP_MA_UDP 273
#define GOOP_MA_P2P_CIRCUIT 290
#define GOOP_MA_P2P 421
#define GOOP_MA_TLS 448
#define GOOP_MA_NOISE 454
#define GOOP_MA_QUIC 460
#define GOOP_MA_QUIC_V1 461
#define GOOP_MA_WEBTRANSPORT 465
#define GOOP_MA_CERTHASH 466
#define GOOP_MA_WS 477
#define GOOP_MA_WSS 478

/* Maximum binary multiaddr size we handle. */
#define GOOP_MA_MAX 1024
/*
 * Maximum text multiaddr size we handle (with NUL). Large enough for the text
 * of any valid binary multiaddr of GOOP_MA_MAX bytes (the densest case is a
 * run of value-less two-byte codes such as /webtransport: 6.5 chars a byte).
 */
#define GOOP_MA_STR_MAX 8192

typedef struct goop_ma_component {
  uint64_t code;
  const uint8_t *value; /* points into the binary multiaddr */
  size_t value_len;
} goop_ma_component;

/*
 * Text → binary, appended to |out| (nothing appended on failure). 0 or
 * GOOP_EPARSE (also for text >= GOOP_MA_STR_MAX or a result > GOOP_MA_MAX),
 * or an error of goop_buf_append (GOOP_ENOMEM, GOOP_ELIMIT).
 */
int goop_ma_from_string(const char *text, goop_buf *out);
/* Binary → text (NUL-terminated). Returns length, GOOP_EPARSE, or GOOP_EINVAL
 * (|out_len| small; GOOP_MA_STR_MAX is always enough). ip6 is printed in RFC
 * 5952 form, p2p as base58btc, certhash as multibase base64url ('u'). */
int goop_ma_to_string(const uint8_t *ma, size_t len, char *out, size_t out_len);
/* Validate a whole binary multiaddr (non-empty, <= GOOP_MA_MAX). 0 or GOOP_EPARSE. */
int goop_ma_validate(const uint8_t *ma, size_t len);
/*
 * Iterate components: |*off| starts at 0. Returns 1 with a component, 0 at
 * the end, GOOP_EPARSE on malformed input.
 */
int goop_ma_next(const uint8_t *ma, size_t len, size_t *off, goop_ma_component *ret);

#endif
