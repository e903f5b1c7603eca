/**
 * @file goop/relay.h
 * Circuit relay v2: the relay service (hop + stop towards targets), relay
 * reservations for peers behind NAT, relayed connections, and DCUtR hole
 * punching (libp2p circuit-v2.md and DCUtR.md).
 *
 * Dialling through a relay needs no extra call: goop_host_connect_addr()
 * accepts "/ip4/R/tcp/P/p2p/<relay>/p2p-circuit/p2p/<target>", and
 * goop_host_connect() falls back to circuit addresses of the peerstore when
 * every direct address failed. Inbound relayed connections (stop protocol)
 * are always accepted; the connection is secured and multiplexed like TCP.
 */
#ifndef GOOP_RELAY_H
#define GOOP_RELAY_H

#include <goop/common.h>
#include <goop/identity.h>
#include <goop/transport.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- relay service ------------------------------------------------------------ */

typedef struct goop_relay goop_relay;

/** Relay limits. goop_relay_limits_default() fills sane values. */
struct goop_relay_limits {
  uint32_t circuit_duration_s;        /* per circuit (default 1800) */
  uint64_t circuit_bytes;             /* per circuit and direction (default 16 MiB) */
  uint32_t reservation_ttl_s;         /* reservation lifetime (default 3600) */
  uint32_t max_reservations;          /* in total (default 1024) */
  uint32_t max_reservations_per_peer; /* (default 1; a new one replaces the old) */
  uint32_t max_reservations_per_ip;   /* (default 8) */
  uint32_t max_circuits;              /* in total (default 1024) */
  uint32_t max_circuits_per_peer;     /* as source or target (default 16) */
  uint32_t buffer_size;               /* bytes buffered per circuit direction (default 64 KiB) */
};

/** Counters for /metrics. */
struct goop_relay_stats {
  uint64_t reservations_active;
  uint64_t reservations_accepted; /* total */
  uint64_t reservations_refused;  /* total */
  uint64_t circuits_active;
  uint64_t circuits_opened;       /* total */
  uint64_t circuits_refused;      /* total: limits, no reservation, target unreachable */
  uint64_t circuits_limit_closed; /* total: ended by the duration or data limit */
  uint64_t bytes_relayed;         /* total, both directions */
};

/** Defaults described in struct goop_relay_limits. Since: 0.1 */
GOOP_API void goop_relay_limits_default(struct goop_relay_limits *l);

/**
 * Serve /libp2p/circuit/relay/0.2.0/hop on |host| with |limits| (NULL =
 * defaults; copied). Reservation addresses are the host's announce
 * addresses. Returns 0, GOOP_EINVAL (bad limits: reservation_ttl_s 0,
 * buffer_size under 256 bytes or over 64 MiB), GOOP_EBUSY (|host| already
 * serves hop) or GOOP_ENOMEM. Since: 0.1
 */
GOOP_API int goop_relay_new(goop_host *host, const struct goop_relay_limits *limits,
                            goop_relay **ret) GOOP_WARN_UNUSED_RESULT;
/** Replace the limits (existing circuits and reservations keep theirs). GOOP_EINVAL as for
 * goop_relay_new(). Since: 0.1 */
GOOP_API int goop_relay_set_limits(goop_relay *relay, const struct goop_relay_limits *limits);
/** Since: 0.1 */
GOOP_API void goop_relay_get_stats(const goop_relay *relay, struct goop_relay_stats *ret);
/** Stop serving; open circuits are reset, reservations dropped. Call it before
 * goop_host_free() of its host. NULL is a no-op. Since: 0.1 */
GOOP_API void goop_relay_free(goop_relay *relay);

/* ---- reservations (peer behind NAT) ----------------------------------------------- */

typedef struct goop_reservation goop_reservation;

/**
 * Called after every reservation attempt: |status| 0 when the relay
 * granted (or refreshed) the slot, else GOOP_E* (GOOP_ELIMIT when the relay
 * refused with RESOURCE_LIMIT_EXCEEDED / RESERVATION_REFUSED).
 */
typedef void (*goop_reservation_cb)(goop_host *host, goop_reservation *r, int status, void *user_data);

/**
 * Keep a reservation on relay |relay| reachable at |addrs| (multiaddr text,
 * with or without a trailing "/p2p/<relay>"; copied and added to the
 * peerstore): connect, RESERVE, refresh before expiry, and after
 * a failure or a lost connection try again with backoff (1 s doubling to
 * 60 s, with jitter). While active, the circuit addresses
 * ".../p2p/<relay>/p2p-circuit" are listed by goop_host_announce_addr() and
 * in identify. Addresses that do not parse or name another peer are skipped
 * (logged). |cb| may be NULL; it may call goop_reservation_free(). On success
 * *|ret| belongs to the caller until goop_reservation_free() (which may come
 * before or after goop_host_free()). Returns 0, GOOP_EINVAL (also when none
 * of |addrs| is usable), GOOP_ECANCELED (the host is being freed) or
 * GOOP_ENOMEM; *|ret| is untouched on failure.
 * Since: 0.1
 */
GOOP_API int goop_host_reserve(goop_host *host, const goop_peer_id *relay, const char *const *addrs,
                               size_t n_addrs, goop_reservation_cb cb, void *user_data,
                               goop_reservation **ret) GOOP_WARN_UNUSED_RESULT;
/** True while the relay holds a slot for us. Since: 0.1 */
GOOP_API bool goop_reservation_active(const goop_reservation *r);
/** Expiry (unix seconds) of the current slot, 0 if none. Since: 0.1 */
GOOP_API uint64_t goop_reservation_expire(const goop_reservation *r);
/** Stop keeping the reservation and free it. NULL is a no-op. Since: 0.1 */
GOOP_API void goop_reservation_free(goop_reservation *r);

/* ---- relayed connections ------------------------------------------------------------ */

/** True if |conn| runs over a relay circuit. Since: 0.1 */
GOOP_API bool goop_conn_is_relayed(const goop_conn *conn);

#ifdef __cplusplus
}
#endif
#endif
