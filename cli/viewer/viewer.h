/*
 * The goop2 web viewer: a local HTTP server (libmicrohttpd on the peer's
 * libevent loop) with a router, owner/guest detection and CSRF protection.
 *
 * Who is calling: a client on a loopback address whose request carries no
 * forwarding header (Forwarded, X-Forwarded-For, X-Real-IP) is the owner;
 * anyone else is a guest with a stable random id kept in an HttpOnly,
 * SameSite=Lax cookie. viewer_req_caller_id() gives the id data operations
 * store as _owner: the own Peer ID for the owner, "guest-<32 hex>" for a guest.
 *
 * Routes are added with viewer_add_route(); other modules (/p/, /api/data)
 * plug in the same way as the built-in peers routes: a file
 * cli/viewer/routes-<name>.c with `int viewer_routes_<name>(struct viewer *v, ...)`
 * registering its routes (ud = its state), called by goop2 after
 * viewer_new(). Handlers run on the loop thread; long work answers
 * asynchronously (viewer_req_suspend/resume), large bodies stream with
 * MHD_create_response_from_callback() queued through viewer_req_queue().
 */
#ifndef GOOP_CLI_VIEWER_H
#define GOOP_CLI_VIEWER_H

#include <event2/event.h>
#include <goop/goop.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct viewer;
struct viewer_req;
struct peers;

struct viewer_options {
  const char *http_addr;   /* "host:port", "[v6]:port", ":port" (= 127.0.0.1); port 0 = any free port */
  goop_host *host;         /* may be NULL (then no dialling, no labels) */
  const goop_config *cfg;  /* may be NULL; used for the "Me" page */
  const char *config_path; /* shown on the "Me" page; may be NULL */
  size_t max_body;         /* request body limit in bytes (0 = 1 MiB) */
  unsigned conn_timeout_s; /* idle connection timeout (0 = 30 s) */
  unsigned max_conns;      /* concurrent connections (0 = 256) */
  unsigned max_sse;        /* concurrent event streams (0 = 64) */
  unsigned peer_ttl_s;     /* peer table TTL (0 = presence.ttl_seconds or 20) */
};

/*
 * Start the viewer on |base|. On failure returns NULL and writes a message
 * to |err| (a bind failure names viewer.http_addr).
 */
struct viewer *viewer_new(struct event_base *base, const goop_identity *id, const struct viewer_options *opt,
                          char *err, size_t err_len);
/* Stop serving and free everything. NULL is a no-op. */
void viewer_free(struct viewer *v);

/* The URL to print, e.g. "http://127.0.0.1:8080/" (real port when 0 was asked). */
const char *viewer_url(const struct viewer *v);
uint16_t viewer_port(const struct viewer *v);
struct peers *viewer_peers(struct viewer *v);
const char *viewer_self_id(const struct viewer *v);
const char *viewer_csrf_token(const struct viewer *v);
goop_host *viewer_host(const struct viewer *v);

/* Host events to forward from the application's goop_host_events. */
void viewer_on_connected(struct viewer *v, goop_conn *c);
void viewer_on_disconnected(struct viewer *v, goop_conn *c);
void viewer_on_identified(struct viewer *v, goop_conn *c);
/* Remember a p2p.bootstrap address (".../p2p/<id>"). */
void viewer_add_bootstrap(struct viewer *v, const char *multiaddr);

/* ---- routing ---- */

enum viewer_method {
  VIEWER_GET = 1 << 0, /* also HEAD */
  VIEWER_POST = 1 << 1,
  VIEWER_PUT = 1 << 2,
  VIEWER_DELETE = 1 << 3,
  VIEWER_ANY = 0xff,
};

enum viewer_route_flags {
  VIEWER_ROUTE_PREFIX = 1 << 0, /* match paths starting with the pattern (ending in '/') */
  VIEWER_ROUTE_OWNER = 1 << 1,  /* guests get 403 "forbidden" */
  VIEWER_ROUTE_CSRF = 1 << 2, /* POST/PUT/DELETE need the CSRF token (form csrf, JSON "csrf", X-Goop-CSRF) */
  VIEWER_ROUTE_BODY = 1 << 3, /* read the request body (bounded by max_body) */
  VIEWER_ROUTE_HTML = 1 << 4, /* add page security headers (CSP, nosniff, frame denial) */
};

/*
 * A handler answers with one of viewer_reply*() or viewer_req_queue(), or
 * suspends with viewer_req_suspend() and answers later from a libevent
 * callback with viewer_req_resume_with(). Returns MHD_YES, or MHD_NO to drop
 * the connection.
 */
typedef enum MHD_Result (*viewer_handler)(struct viewer_req *r, void *ud);

struct viewer_route {
  const char *pattern; /* "/api/peers" or, with VIEWER_ROUTE_PREFIX, "/p/" */
  unsigned methods;    /* enum viewer_method bits */
  unsigned flags;      /* enum viewer_route_flags bits */
  viewer_handler fn;
  void *ud;
  size_t max_body; /* body limit of this route (0 = viewer_options.max_body) */
};

/* Add a route (copied); the longest matching pattern wins. 0 or -1. */
int viewer_add_route(struct viewer *v, const struct viewer_route *rt);

/* ---- requests ---- */

struct viewer *viewer_req_viewer(const struct viewer_req *r);
struct MHD_Connection *viewer_req_conn(const struct viewer_req *r);
const char *viewer_req_method(const struct viewer_req *r);
bool viewer_req_is_head(const struct viewer_req *r);
const char *viewer_req_path(const struct viewer_req *r); /* decoded path, no query */
/* The part after a prefix route's pattern ("" for an exact match). */
const char *viewer_req_subpath(const struct viewer_req *r);
const char *viewer_req_header(const struct viewer_req *r, const char *name);
const char *viewer_req_query(const struct viewer_req *r, const char *name);
bool viewer_req_is_owner(const struct viewer_req *r);
/* Own Peer ID for the owner, "guest-<hex>" for a guest. */
const char *viewer_req_caller_id(const struct viewer_req *r);
const uint8_t *viewer_req_body(const struct viewer_req *r, size_t *ret_len);
/* The body parsed as JSON (cached; NULL if absent or invalid). */
json_t *viewer_req_json(struct viewer_req *r);

/* Called once when the request ends (completed or connection lost); for async handlers. */
void viewer_req_on_done(struct viewer_req *r, void (*fn)(struct viewer_req *r, void *ud), void *ud);

/* Queue |resp| (headers common to all answers are added here). Does not destroy |resp|. */
enum MHD_Result viewer_req_queue(struct viewer_req *r, unsigned status, struct MHD_Response *resp);
enum MHD_Result viewer_reply(struct viewer_req *r, unsigned status, const char *content_type,
                             const void *body, size_t len);
enum MHD_Result viewer_reply_text(struct viewer_req *r, unsigned status, const char *text);
/* Steals |j|. */
enum MHD_Result viewer_reply_json(struct viewer_req *r, unsigned status, json_t *j);
enum MHD_Result viewer_reply_redirect(struct viewer_req *r, unsigned status, const char *location);

/*
 * Asynchronous answers. A handler (or a content reader) suspends the
 * connection; a libevent callback later queues a response with
 * viewer_req_queue()/viewer_reply*() and calls viewer_req_resume(). While
 * suspended, the client's socket is watched: if the client goes away,
 * viewer_req_is_gone() becomes true and the connection is resumed so that it
 * ends (the on_done callback then runs; a handler asked again returns
 * nothing, a content reader should return MHD_CONTENT_READER_END_WITH_ERROR).
 * When the viewer stops, suspended requests without an answer get 503.
 */
void viewer_req_suspend(struct viewer_req *r);
void viewer_req_resume(struct viewer_req *r);
bool viewer_req_is_gone(const struct viewer_req *r);

/* ---- helpers shared by route files ---- */

/* Append |s| HTML-escaped to the growing buffer. 0 or -1. */
struct vbuf {
  char *p;
  size_t len, cap;
};
int vbuf_add(struct vbuf *b, const void *s, size_t n);
int vbuf_adds(struct vbuf *b, const char *s);
int vbuf_add_html(struct vbuf *b, const char *s);
void vbuf_free(struct vbuf *b);

/* An embedded asset by name ("js/goop-data.js"); NULL if none. */
const uint8_t *viewer_asset(const char *name, size_t *ret_len);

/* Render embedded page template html/<name> with {{key}} placeholders HTML-escaped from |vars|
 * (NULL-terminated key, value pairs) and reply. */
enum MHD_Result viewer_reply_page(struct viewer_req *r, const char *name, const char *const *vars);

/* routes-peers.c: register its routes; stop (before the daemon stops) and free (after). */
int viewer_routes_peers(struct viewer *v);
void viewer_routes_peers_stop(struct viewer *v);
void viewer_routes_peers_free(struct viewer *v);

/* Private state slot of routes-peers.c. */
void **viewer_peers_routes_slot(struct viewer *v);
unsigned viewer_max_sse(const struct viewer *v);
void viewer_kick(struct viewer *v);
struct event_base *viewer_base(const struct viewer *v);
const goop_config *viewer_config(const struct viewer *v);
const char *viewer_config_path(const struct viewer *v);
/* First 8 bytes of SHA-256 of the peer directory's avatar.png in hex, or "". */
const char *viewer_avatar_hash(struct viewer *v);

#endif
