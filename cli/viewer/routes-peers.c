/*
 * Viewer routes for the peer list, the "Me" page and the embedded assets:
 * /, /peers, /self, /api/self, /api/peers, /api/peers/events (SSE),
 * /api/peers/connect, /assets/js/..., /assets/css/...
 */
#include "peers.h"
#include "viewer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SSE_MAX_QUEUE (256u << 10) /* bytes queued for one slow stream before it is dropped */
#define SSE_PING_S 25

struct sse_client {
  struct sse *s;
  struct MHD_Connection *conn;
  struct vbuf q;
  size_t off;
  bool suspended;
  bool closing;
  struct event *watch; /* while suspended: notice the client going away */
  struct sse_client *prev, *next;
};

struct sse {
  struct viewer *v;
  struct sse_client *head;
  unsigned n;
  struct event *ping;
};

static struct sse *state(struct viewer *v) {
  return *viewer_peers_routes_slot(v);
}

/* ---- event streams ---- */

static void wake(struct sse_client *c) {
  if (c->watch)
    event_del(c->watch);
  if (c->suspended) {
    c->suspended = false;
    MHD_resume_connection(c->conn);
    viewer_kick(c->s->v);
  }
}

static void push(struct sse_client *c, const char *data, size_t n) {
  if (c->closing)
    return;
  if (c->q.len - c->off + n > SSE_MAX_QUEUE) { /* too slow: drop the stream */
    c->closing = true;
    vbuf_free(&c->q);
    c->off = 0;
  } else {
    if (c->off && c->off == c->q.len)
      c->off = c->q.len = 0;
    if (vbuf_add(&c->q, data, n) != 0) {
      c->closing = true;
      vbuf_free(&c->q);
      c->off = 0;
    }
  }
  wake(c);
}

static void push_all(struct sse *s, const char *data, size_t n) {
  for (struct sse_client *c = s->head; c; c = c->next)
    push(c, data, n);
}

/* "event: NAME\ndata: JSON\n\n"; steals |j|. */
static char *frame(const char *name, json_t *j, size_t *ret_len) {
  if (!j)
    return NULL;
  char *js = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (!js)
    return NULL;
  size_t n = strlen(js) + strlen(name) + 32;
  char *f = malloc(n);
  if (f)
    *ret_len = (size_t)snprintf(f, n, "event: %s\ndata: %s\n\n", name, js);
  free(js);
  return f;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  struct sse_client *c = cls;
  if (c->q.len > c->off) {
    size_t n = c->q.len - c->off;
    if (n > max)
      n = max;
    memcpy(buf, c->q.p + c->off, n);
    c->off += n;
    if (c->off == c->q.len)
      c->off = c->q.len = 0;
    return (ssize_t)n;
  }
  if (c->closing)
    return MHD_CONTENT_READER_END_OF_STREAM;
  c->suspended = true;
  MHD_suspend_connection(c->conn);
  if (c->watch)
    event_add(c->watch, NULL);
  return 0;
}

/* A suspended stream's socket became readable: the client closed it (or sent
 * something, which an event-stream client never does). End the stream. */
static void on_watch(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  struct sse_client *c = arg;
  char b;
  ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    if (c->suspended)
      event_add(c->watch, NULL);
    return;
  }
  c->closing = true;
  vbuf_free(&c->q);
  c->off = 0;
  wake(c);
}

static void sse_free(void *cls) {
  struct sse_client *c = cls;
  struct sse *s = c->s;
  if (s) {
    if (c->prev)
      c->prev->next = c->next;
    else if (s->head == c)
      s->head = c->next;
    if (c->next)
      c->next->prev = c->prev;
    s->n--;
  }
  if (c->watch)
    event_free(c->watch);
  vbuf_free(&c->q);
  free(c);
}

static void on_peer_event(enum peers_event ev, const char *peer_id, const struct peer_entry *e, void *ud) {
  struct sse *s = ud;
  if (!s->head)
    return;
  json_t *j;
  if (ev == PEERS_EVENT_UPDATE)
    j = json_pack("{s:s, s:s, s:o}", "type", "update", "peer_id", peer_id, "peer", peers_entry_json(e));
  else
    j = json_pack("{s:s, s:s}", "type", "remove", "peer_id", peer_id);
  size_t n = 0;
  char *f = frame(ev == PEERS_EVENT_UPDATE ? "update" : "remove", j, &n);
  if (f)
    push_all(s, f, n);
  free(f);
}

static void on_ping(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  push_all(arg, ": ping\n\n", 8);
}

static enum MHD_Result h_events(struct viewer_req *r, void *ud) {
  struct sse *s = ud;
  if (viewer_req_is_head(r))
    return viewer_reply(r, MHD_HTTP_OK, "text/event-stream", "", 0);
  if (s->n >= viewer_max_sse(s->v))
    return viewer_reply_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "too many event streams");
  struct sse_client *c = calloc(1, sizeof(*c));
  if (!c)
    return MHD_NO;
  c->s = s;
  c->conn = viewer_req_conn(r);
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (ci)
    c->watch = event_new(viewer_base(s->v), ci->connect_fd, EV_READ, on_watch, c);
  json_t *snap = json_pack("{s:s, s:o}", "type", "snapshot", "peers", peers_list_json(viewer_peers(s->v)));
  size_t n = 0;
  char *f = frame("snapshot", snap, &n);
  if (!f || vbuf_add(&c->q, f, n) != 0) {
    free(f);
    vbuf_free(&c->q);
    if (c->watch)
      event_free(c->watch);
    free(c);
    return MHD_NO;
  }
  free(f);
  struct MHD_Response *resp =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, c, sse_free);
  if (!resp) {
    vbuf_free(&c->q);
    if (c->watch)
      event_free(c->watch);
    free(c);
    return MHD_NO;
  }
  c->next = s->head;
  if (s->head)
    s->head->prev = c;
  s->head = c;
  s->n++;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  MHD_add_response_header(resp, "X-Accel-Buffering", "no");
  enum MHD_Result ret = viewer_req_queue(r, MHD_HTTP_OK, resp);
  MHD_destroy_response(resp); /* sse_free runs when the stream ends */
  return ret;
}

/* ---- JSON API ---- */

static enum MHD_Result h_api_peers(struct viewer_req *r, void *ud) {
  (void)ud;
  return viewer_reply_json(r, MHD_HTTP_OK, peers_list_json(viewer_peers(viewer_req_viewer(r))));
}

static const char *cfg_str(struct viewer *v, const char *key) {
  const goop_config *cfg = viewer_config(v);
  const char *s = cfg ? goop_config_get_string(cfg, key) : NULL;
  return s ? s : "";
}

static const char *own_label(struct viewer *v) {
  const char *l = cfg_str(v, "profile.label");
  return *l ? l : "hello";
}

static enum MHD_Result h_api_self(struct viewer_req *r, void *ud) {
  (void)ud;
  struct viewer *v = viewer_req_viewer(r);
  if (!viewer_req_is_owner(r)) /* a guest is not this peer: it sees its own guest identity */
    return viewer_reply_json(r, MHD_HTTP_OK,
                             json_pack("{s:s, s:s, s:s, s:s}", "id", viewer_req_caller_id(r), "label",
                                       "guest", "email", "", "avatar_hash", ""));
  return viewer_reply_json(r, MHD_HTTP_OK,
                           json_pack("{s:s, s:s, s:s, s:s}", "id", viewer_self_id(v), "label", own_label(v),
                                     "email", cfg_str(v, "profile.email"), "avatar_hash",
                                     viewer_avatar_hash(v)));
}

static void on_dial(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h;
  (void)c;
  char *addr = ud;
  if (status)
    fprintf(stderr, "goop2: viewer: connect %s: %s\n", addr, goop_strerror(status));
  free(addr);
}

static enum MHD_Result h_connect(struct viewer_req *r, void *ud) {
  (void)ud;
  struct viewer *v = viewer_req_viewer(r);
  json_t *j = viewer_req_json(r);
  const char *addr = json_is_object(j) ? json_string_value(json_object_get(j, "addr")) : NULL;
  if (!addr)
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST,
                             "expected JSON {\"addr\": \"/ip4/.../tcp/.../p2p/...\"}");
  if (!viewer_host(v))
    return viewer_reply_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "no libp2p host");
  char *copy = strdup(addr);
  if (!copy)
    return MHD_NO;
  int rc = goop_host_connect_addr(viewer_host(v), addr, 10000, on_dial, copy);
  if (rc) {
    free(copy);
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST,
                             rc == GOOP_EPARSE || rc == GOOP_EINVAL ? "invalid multiaddr"
                                                                    : goop_strerror(rc));
  }
  return viewer_reply_json(r, MHD_HTTP_ACCEPTED, json_pack("{s:s, s:s}", "status", "dialing", "addr", addr));
}

/* GET /api/ping/<peer-id>: libp2p ping, answered asynchronously. */
struct ping_op {
  struct viewer_req *r; /* NULL once the request ended */
  char id[GOOP_PEER_ID_STR_MAX];
};

static void ping_req_done(struct viewer_req *r, void *ud) {
  (void)r;
  struct ping_op *op = ud;
  op->r = NULL; /* the ping callback frees op */
}

static void on_ping_result(goop_host *h, int status, uint64_t rtt_us, void *ud) {
  (void)h;
  struct ping_op *op = ud;
  struct viewer_req *r = op->r;
  if (r) {
    viewer_req_on_done(r, NULL, NULL);
    if (status)
      (void)viewer_reply_text(r, MHD_HTTP_BAD_GATEWAY, goop_strerror(status));
    else
      (void)viewer_reply_json(r, MHD_HTTP_OK,
                              json_pack("{s:s, s:f}", "peer_id", op->id, "rtt_ms", (double)rtt_us / 1000.0));
    viewer_req_resume(r);
  }
  free(op);
}

static enum MHD_Result h_ping(struct viewer_req *r, void *ud) {
  (void)ud;
  struct viewer *v = viewer_req_viewer(r);
  goop_peer_id pid;
  const char *id = viewer_req_subpath(r);
  if (goop_peer_id_from_string(id, &pid) != 0)
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "invalid peer id");
  if (!viewer_host(v))
    return viewer_reply_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "no libp2p host");
  struct ping_op *op = calloc(1, sizeof(*op));
  if (!op)
    return MHD_NO;
  op->r = r;
  snprintf(op->id, sizeof(op->id), "%s", id);
  /* suspend first: the callback may run before goop_host_ping() returns */
  viewer_req_on_done(r, ping_req_done, op);
  viewer_req_suspend(r);
  int rc = goop_host_ping(viewer_host(v), &pid, 10000, on_ping_result, op);
  if (rc) {
    viewer_req_on_done(r, NULL, NULL);
    free(op);
    enum MHD_Result ret = viewer_reply_text(r, MHD_HTTP_BAD_GATEWAY, goop_strerror(rc));
    viewer_req_resume(r);
    return ret;
  }
  return MHD_YES;
}

/* ---- pages ---- */

static enum MHD_Result h_root(struct viewer_req *r, void *ud) {
  (void)ud;
  return viewer_reply_redirect(r, MHD_HTTP_FOUND, "/peers");
}

static enum MHD_Result h_peers_page(struct viewer_req *r, void *ud) {
  (void)ud;
  struct viewer *v = viewer_req_viewer(r);
  const char *vars[] = {"csrf",    viewer_req_is_owner(r) ? viewer_csrf_token(v) : "",
                        "self_id", viewer_self_id(v),
                        "label",   own_label(v),
                        "role",    viewer_req_is_owner(r) ? "owner" : "guest",
                        NULL};
  return viewer_reply_page(r, "peers.html", vars);
}

static enum MHD_Result h_self_page(struct viewer_req *r, void *ud) {
  (void)ud;
  struct viewer *v = viewer_req_viewer(r);
  struct vbuf addrs = {0};
  char a[256];
  goop_host *h = viewer_host(v);
  for (size_t i = 0; h && goop_host_announce_addr(h, i, a, sizeof(a)) > 0; i++) {
    if (vbuf_adds(&addrs, a) || vbuf_adds(&addrs, "/p2p/") || vbuf_adds(&addrs, viewer_self_id(v)) ||
        vbuf_adds(&addrs, "\n")) {
      vbuf_free(&addrs);
      return MHD_NO;
    }
  }
  const char *vars[] = {"csrf",    viewer_csrf_token(v),
                        "self_id", viewer_self_id(v),
                        "label",   own_label(v),
                        "email",   cfg_str(v, "profile.email"),
                        "addrs",   addrs.p ? addrs.p : "(not listening)",
                        "url",     viewer_url(v),
                        "config",  viewer_config_path(v),
                        "role",    "owner",
                        NULL};
  enum MHD_Result ret = viewer_reply_page(r, "self.html", vars);
  vbuf_free(&addrs);
  return ret;
}

static enum MHD_Result h_assets(struct viewer_req *r, void *ud) {
  (void)ud;
  const char *sub = viewer_req_subpath(r);
  const char *ct = NULL;
  size_t n = strlen(sub);
  if (strncmp(sub, "js/", 3) == 0 && n > 3 && strcmp(sub + n - 3, ".js") == 0)
    ct = "application/javascript; charset=utf-8";
  else if (strncmp(sub, "css/", 4) == 0 && n > 4 && strcmp(sub + n - 4, ".css") == 0)
    ct = "text/css; charset=utf-8";
  size_t len = 0;
  const uint8_t *data = ct && !strstr(sub, "..") ? viewer_asset(sub, &len) : NULL;
  if (!data)
    return viewer_reply_text(r, MHD_HTTP_NOT_FOUND, "404 page not found");
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, (void *)(uintptr_t)data, MHD_RESPMEM_PERSISTENT);
  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ct);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                          "no-store, no-cache, must-revalidate, max-age=0");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_PRAGMA, "no-cache");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_EXPIRES, "0");
  enum MHD_Result ret = viewer_req_queue(r, MHD_HTTP_OK, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* ---- registration ---- */

int viewer_routes_peers(struct viewer *v) {
  struct sse *s = calloc(1, sizeof(*s));
  if (!s)
    return -1;
  s->v = v;
  *viewer_peers_routes_slot(v) = s;
  s->ping = event_new(viewer_base(v), -1, EV_PERSIST, on_ping, s);
  struct timeval iv = {SSE_PING_S, 0};
  if (!s->ping || event_add(s->ping, &iv) != 0 || peers_add_listener(viewer_peers(v), on_peer_event, s) != 0)
    return -1;
  const struct viewer_route routes[] = {
      {"/", VIEWER_ANY, 0, h_root, NULL},
      {"/peers", VIEWER_ANY, VIEWER_ROUTE_HTML, h_peers_page, NULL},
      {"/self", VIEWER_ANY, VIEWER_ROUTE_HTML | VIEWER_ROUTE_OWNER, h_self_page, NULL},
      {"/api/self", VIEWER_GET, 0, h_api_self, NULL},
      {"/api/peers", VIEWER_GET, 0, h_api_peers, NULL},
      {"/api/peers/events", VIEWER_GET, 0, h_events, s},
      {"/api/peers/connect", VIEWER_POST, VIEWER_ROUTE_OWNER | VIEWER_ROUTE_CSRF | VIEWER_ROUTE_BODY,
       h_connect, NULL},
      {"/api/ping/", VIEWER_GET, VIEWER_ROUTE_PREFIX | VIEWER_ROUTE_OWNER, h_ping, NULL},
      {"/assets/", VIEWER_GET, VIEWER_ROUTE_PREFIX, h_assets, NULL},
  };
  for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
    if (viewer_add_route(v, &routes[i]) != 0)
      return -1;
  return 0;
}

void viewer_routes_peers_stop(struct viewer *v) {
  struct sse *s = state(v);
  if (!s)
    return;
  peers_remove_listener(viewer_peers(v), on_peer_event, s);
  for (struct sse_client *c = s->head; c; c = c->next) {
    c->closing = true;
    wake(c);
  }
}

void viewer_routes_peers_free(struct viewer *v) {
  struct sse *s = state(v);
  if (!s)
    return;
  for (struct sse_client *c = s->head; c; c = c->next)
    c->s = NULL; /* not expected: the daemon ended every stream */
  if (s->ping)
    event_free(s->ping);
  free(s);
  *viewer_peers_routes_slot(v) = NULL;
}
