/*
 * The relay as goop2-relay and goop2-rendezvous (presence.relay_port) run it:
 * limits from goop.json, the relay host, and the Prometheus text of its counters.
 */
#ifndef GOOP_CLI_RELAY_CLI_H
#define GOOP_CLI_RELAY_CLI_H

#include <goop/goop.h>
#include <goop/relay.h>
#include <stdbool.h>
#include <stddef.h>

/* The presence.relay_* limits of |cfg| (goop.json(5)) over the library defaults. */
void relay_limits_from_config(const goop_config *cfg, struct goop_relay_limits *l);

/*
 * Start a relay on TCP |port| of every IPv4 address (and IPv6 when possible):
 * identity from presence.relay_key_file (created 0600 when missing, then
 * *|ret_created| is true), a host whose connection limit fits the relay
 * limits, and the hop service with the limits of |cfg|. On success the caller
 * owns *|ret_host| and *|ret_relay| (goop_relay_free() before
 * goop_host_free()). On failure returns -1 with the reason in |err|, and
 * nothing is left allocated.
 */
int relay_start(goop_ctx *ctx, const goop_config *cfg, int port, goop_host **ret_host, goop_relay **ret_relay,
                bool *ret_created, char *err, size_t errlen);

/* Write the text into |buf| (NUL-terminated, truncated to |len|); returns the full length. */
size_t relay_metrics_format(const struct goop_relay_stats *st, char *buf, size_t len);

#endif
