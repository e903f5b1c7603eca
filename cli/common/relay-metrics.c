/*
 * Prometheus text of a relay's counters.
 */
#include "relay-metrics.h"

#include <stdio.h>
#include <string.h>

size_t relay_metrics_format(const struct goop_relay_stats *st, char *buf, size_t len) {
  const struct {
    const char *name, *type, *help;
    uint64_t v;
  } m[] = {
      {"goop_relay_reservations", "gauge", "Reservations held now.", st->reservations_active},
      {"goop_relay_reservations_accepted_total", "counter", "Reservations granted or refreshed.",
       st->reservations_accepted},
      {"goop_relay_reservations_refused_total", "counter", "Reservations refused (limits).",
       st->reservations_refused},
      {"goop_relay_circuits", "gauge", "Relayed connections open now.", st->circuits_active},
      {"goop_relay_circuits_opened_total", "counter", "Relayed connections opened.", st->circuits_opened},
      {"goop_relay_circuits_refused_total", "counter",
       "Relayed connections refused (limits, no reservation, target unreachable).", st->circuits_refused},
      {"goop_relay_circuits_limit_closed_total", "counter",
       "Relayed connections ended by a duration or data limit.", st->circuits_limit_closed},
      {"goop_relay_bytes_total", "counter", "Bytes relayed, both directions.", st->bytes_relayed},
  };
  size_t total = 0;
  if (len)
    buf[0] = '\0';
  for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
    size_t room = total < len ? len - total : 0;
    int n = snprintf(room ? buf + total : NULL, room, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", m[i].name,
                     m[i].help, m[i].name, m[i].type, m[i].name, (unsigned long long)m[i].v);
    if (n > 0)
      total += (size_t)n;
  }
  return total;
}
