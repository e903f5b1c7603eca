/*
 * The rendezvous HTTP server: libmicrohttpd on a libevent loop around the
 * sans-I/O core of libgoop/rendezvous/rdv-core.h (/publish, /events SSE,
 * /healthz, /relay, /, /admin, /peers.json, /logs.json, /metrics).
 */
#ifndef GOOP_CLI_RDV_SERVER_H
#define GOOP_CLI_RDV_SERVER_H

#include "rendezvous/rdv-core.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

struct rdv_server_opts {
  const char *bind;                     /* IP literal; NULL or "" = 127.0.0.1 */
  int port;                             /* 0 = any free port (see rdv_server_port()) */
  const char *admin_password;           /* "" or NULL = admin panel disabled */
  const char *external_url;             /* "" or NULL = derived from the interfaces */
  const char *peer_db_path;             /* "" or NULL = memory only */
  const struct goop_rdv_limits *limits; /* NULL = defaults */
  /* Template store roots, later ones win (see rdv_templates_config_dirs()). */
  const char *const *templates_dirs;
  size_t n_templates_dirs;
  const char *const *trusted_proxies; /* IPs / CIDR blocks whose X-Forwarded-For is believed */
  size_t n_trusted_proxies;
  /* GET /relay: the relay's peer ID and addresses (NULL/0 = 404, no relay). */
  const char *relay_peer_id;
  const char *const *relay_addrs;
  size_t n_relay_addrs;
  /* Appends more Prometheus text to GET /metrics (the relay's counters). */
  void (*metrics_hook)(goop_buf *out, void *ud);
  void *metrics_ud;
};

struct rdv_server;

/* Start listening. Returns 0 or -1 with the reason in |err|. */
int rdv_server_new(struct event_base *base, const struct rdv_server_opts *o, struct rdv_server **ret,
                   char *err, size_t errlen);
/* The bound TCP port. */
int rdv_server_port(const struct rdv_server *s);
/* Reload what can change at run time: limits, trusted proxies, admin password,
 * external URL, the /relay answer and the metrics hook; and rebuild the
 * template store (the new set replaces the old one once it is built). */
void rdv_server_reload(struct rdv_server *s, const struct rdv_server_opts *o);
/* Add a line to the /logs.json ring (also printed to stderr). */
void rdv_server_log(struct rdv_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Stop the daemon, close streams, write peers.db. NULL is a no-op. */
void rdv_server_free(struct rdv_server *s);

/* HTML-escape |s| (& < > " ') into a malloc'd string (NULL on ENOMEM). */
char *rdv_html_escape(const char *s);

#endif
