/*
 * Prometheus text of a relay's counters, for /metrics of goop2-rendezvous
 * and goop2-relay.
 */
#ifndef GOOP_CLI_RELAY_METRICS_H
#define GOOP_CLI_RELAY_METRICS_H

#include <goop/relay.h>
#include <stddef.h>

/* Write the text into |buf| (NUL-terminated, truncated to |len|); returns the full length. */
size_t relay_metrics_format(const struct goop_relay_stats *st, char *buf, size_t len);

#endif
