/*
 * The relay of goop2-relay and goop2-rendezvous: limits, start, metrics text.
 */
#include "relay-cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void relay_limits_from_config(const goop_config *cfg, struct goop_relay_limits *l) {
  goop_relay_limits_default(l);
  l->circuit_duration_s = (uint32_t)goop_config_get_int(cfg, "presence.relay_circuit_seconds");
  l->circuit_bytes = (uint64_t)goop_config_get_int(cfg, "presence.relay_circuit_bytes");
  l->reservation_ttl_s = (uint32_t)goop_config_get_int(cfg, "presence.relay_reservation_seconds");
  l->max_reservations = (uint32_t)goop_config_get_int(cfg, "presence.relay_max_reservations");
  l->max_reservations_per_ip = (uint32_t)goop_config_get_int(cfg, "presence.relay_max_reservations_per_ip");
  l->max_circuits = (uint32_t)goop_config_get_int(cfg, "presence.relay_max_circuits");
  l->max_circuits_per_peer = (uint32_t)goop_config_get_int(cfg, "presence.relay_max_circuits_per_peer");
}

int relay_start(goop_ctx *ctx, const goop_config *cfg, int port, goop_host **ret_host, goop_relay **ret_relay,
                bool *ret_created, char *err, size_t errlen) {
  *ret_host = NULL;
  *ret_relay = NULL;
  *ret_created = false;
  char *path = goop_config_resolve_path(cfg, "presence.relay_key_file");
  if (!path) {
    snprintf(err, errlen, "relay: out of memory");
    return -1;
  }
  goop_identity *id = NULL;
  char kerr[512];
  int rc = goop_identity_load_or_create(path, &id, ret_created, kerr, sizeof(kerr));
  free(path);
  if (rc != 0) {
    snprintf(err, errlen, "relay: %s", kerr);
    return -1;
  }
  struct goop_relay_limits l;
  relay_limits_from_config(cfg, &l);
  /* Every reservation holder plus both ends of every circuit, and some room. */
  uint64_t conns = (uint64_t)l.max_reservations + 2 * (uint64_t)l.max_circuits + 64;
  goop_host_config *hc = NULL;
  rc = goop_host_config_new(&hc);
  if (rc == 0)
    rc = goop_host_config_set_agent(hc, "goop2-relay/" GOOP_VERSION_STRING);
  if (rc == 0)
    rc = goop_host_config_set(hc, GOOP_HOST_MAX_CONNS, conns > 1000000 ? 1000000 : conns);
  goop_host *host = NULL;
  if (rc == 0)
    rc = goop_host_new(ctx, id, hc, &host);
  goop_host_config_free(hc);
  goop_identity_free(id);
  if (rc != 0) {
    snprintf(err, errlen, "relay: cannot create the host: %s", goop_strerror(rc));
    return -1;
  }
  char ma[64];
  snprintf(ma, sizeof(ma), "/ip4/0.0.0.0/tcp/%d", port);
  rc = goop_host_listen(host, ma);
  if (rc != 0) {
    snprintf(err, errlen, "relay: cannot listen on TCP port %d: %s", port, goop_strerror(rc));
    goop_host_free(host);
    return -1;
  }
  snprintf(ma, sizeof(ma), "/ip6/::/tcp/%d", port);
  if (goop_host_listen(host, ma) != 0) /* IPv6 is optional */
    fprintf(stderr, "relay: no IPv6 listener on port %d\n", port);
  goop_relay *relay = NULL;
  rc = goop_relay_new(host, &l, &relay);
  if (rc != 0) {
    snprintf(err, errlen, "relay: %s", goop_strerror(rc));
    goop_host_free(host);
    return -1;
  }
  *ret_host = host;
  *ret_relay = relay;
  return 0;
}

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
