/*
 * Viewer routes of the peer sites and the site database:
 *
 *   routes-site.c  /p/<peer-id>/<path> (own site from disk, remote sites over
 *                  /goop/site/1.0.0, streamed), /api/site/files,
 *                  /api/site/upload, /api/site/delete
 *   routes-data.c  /api/data/<op> (the owner's data API) and
 *                  /api/p/<peer-id>/data/<op> (data proxy, local or remote)
 *
 * |site| is the peer's own site (borrowed; must outlive the viewer). It may
 * be NULL: the own-site routes then answer 503.
 */
#ifndef GOOP_CLI_ROUTES_SITE_H
#define GOOP_CLI_ROUTES_SITE_H

#include "viewer.h"

#include <goop/site.h>

/* Largest file a remote site may send through /p/ (streamed, constant memory). */
#define VIEWER_REMOTE_MAX_FILE ((uint64_t)4 << 30)
/* Time to the remote's answer header. */
#define VIEWER_REMOTE_TIMEOUT_MS 10000u
/* Bytes buffered per remote download before the peer stream is paused. */
#define VIEWER_REMOTE_BUFFER (256u << 10)
/* Largest /api/site/upload body (the form, with its file of up to 32 MiB). */
#define VIEWER_UPLOAD_MAX ((32u << 20) + (64u << 10))

/* Register the routes; 0 or -1. */
int viewer_routes_site(struct viewer *v, goop_site *site);
int viewer_routes_data(struct viewer *v, goop_site *site);

/* The Content-Security-Policy of every /p/ answer. */
#define VIEWER_SITE_CSP                                                                                      \
  "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; font-src 'self' data:; "   \
  "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"

#endif
