/*
 * A rendezvous server configured from goop.json, with the circuit relay it
 * runs next to it when presence.relay_port > 0. Used by goop2-rendezvous, by
 * `goop2 rendezvous DIR` and by a peer with presence.rendezvous_host.
 */
#ifndef GOOP_CLI_RDV_HOST_H
#define GOOP_CLI_RDV_HOST_H

#include <goop/goop.h>
#include <stddef.h>

struct event_base;
struct rdv_host;

/*
 * Start the server on presence.rendezvous_bind:rendezvous_port and, when
 * presence.relay_port > 0, a relay host (identity presence.relay_key_file)
 * on that port whose /relay answer the server gives. |ctx| carries the
 * event loop. Returns 0 or -1 with the reason in |err|.
 */
int rdv_host_start(goop_ctx *ctx, const goop_config *cfg, struct rdv_host **ret, char *err, size_t errlen);
/* SIGHUP: limits, trusted proxies, admin password, external URL, relay limits. */
void rdv_host_reload(struct rdv_host *h, const goop_config *cfg);
/* The HTTP port the server listens on. */
int rdv_host_port(const struct rdv_host *h);
/* NULL-safe. Stops the relay (circuits reset) and the server (streams end). */
void rdv_host_free(struct rdv_host *h);

#endif
