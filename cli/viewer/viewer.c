/*
 * The goop2 web viewer: server object, router, owner/guest detection, CSRF
 * (see viewer.h).
 */
#include "viewer.h"
#include "../common/html.h"

#include "http-parse.h"
#include "mhd-libevent.h"
#include "peers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define GUEST_COOKIE "goop_guest"
#define MAX_ROUTES 64
#define PAGE_CSP                                                                                             \
  "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; font-src 'self' data:; "   \
  "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

struct viewer {
  struct event_base *base;
  struct MHD_Daemon *d;
  struct mhd_ev *ev;
  int listen_fd;
  uint16_t port;
  char url[300];
  char self_id[GOOP_PEER_ID_STR_MAX];
  char csrf[65];
  goop_host *host;
  const goop_config *cfg;
  char *config_path;
  size_t max_body;
  unsigned max_sse;
  struct peers *peers;
  struct viewer_route routes[MAX_ROUTES];
  size_t n_routes;
  void *peers_routes;
  bool stopping;
  struct viewer_req *suspended; /* list of suspended requests */
  char *avatar_path;
  char avatar_hash[17];
  struct timespec avatar_mtime;
  off_t avatar_size;
};

struct viewer_req {
  struct viewer *v;
  struct MHD_Connection *conn;
  const char *method;
  char *path;
  const struct viewer_route *route;
  const char *subpath;
  bool owner;
  bool new_guest;
  char caller[GOOP_PEER_ID_STR_MAX];
  bool dispatched;
  bool too_big;
  bool answered;
  size_t discarded;
  size_t max_body;
  struct vbuf body;
  json_t *json;
  bool json_parsed;
  void (*done_fn)(struct viewer_req *r, void *ud);
  void *done_ud;
  bool suspended;
  bool gone;
  struct event *watch;
  struct viewer_req *susp_prev, *susp_next;
};

/* ---- small helpers ---- */

int vbuf_add(struct vbuf *b, const void *s, size_t n) {
  if (n > SIZE_MAX / 2 - b->len)
    return -1;
  if (b->len + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + n + 1)
      nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np)
      return -1;
    b->p = np;
    b->cap = nc;
  }
  if (n)
    memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
  return 0;
}

int vbuf_adds(struct vbuf *b, const char *s) {
  return vbuf_add(b, s, strlen(s));
}

int vbuf_add_html(struct vbuf *b, const char *s) {
  for (; *s; s++) {
    const char *rep = html_entity(*s);
    if (rep ? vbuf_adds(b, rep) : vbuf_add(b, s, 1))
      return -1;
  }
  return 0;
}

void vbuf_free(struct vbuf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static int random_hex(char *out, size_t nbytes) {
  uint8_t raw[64];
  if (nbytes > sizeof(raw))
    return -1;
  size_t got = 0;
  while (got < nbytes) {
    ssize_t n = getrandom(raw + got, nbytes - got, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    got += (size_t)n;
  }
  static const char hx[] = "0123456789abcdef";
  for (size_t i = 0; i < nbytes; i++) {
    out[2 * i] = hx[raw[i] >> 4];
    out[2 * i + 1] = hx[raw[i] & 15];
  }
  out[2 * nbytes] = 0;
  return 0;
}

/* ---- own avatar ---- */

#define AVATAR_MAX (512u << 10)

/* First 8 bytes of the SHA-256 of avatar.png, hex; "" without one. Cached by mtime and size. */
const char *viewer_avatar_hash(struct viewer *v) {
  struct stat st;
  if (!v->avatar_path || stat(v->avatar_path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
      (uint64_t)st.st_size > AVATAR_MAX) {
    v->avatar_hash[0] = 0;
    v->avatar_size = -1;
    return v->avatar_hash;
  }
  if (st.st_size == v->avatar_size && st.st_mtim.tv_sec == v->avatar_mtime.tv_sec &&
      st.st_mtim.tv_nsec == v->avatar_mtime.tv_nsec)
    return v->avatar_hash;
  v->avatar_hash[0] = 0;
  v->avatar_size = -1;
  FILE *f = fopen(v->avatar_path, "rb");
  if (!f)
    return v->avatar_hash;
  uint8_t *buf = malloc(AVATAR_MAX);
  size_t n = buf ? fread(buf, 1, AVATAR_MAX, f) : 0;
  fclose(f);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (buf && n > 0 && EVP_Digest(buf, n, md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen >= 8) {
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++) {
      v->avatar_hash[2 * i] = hx[md[i] >> 4];
      v->avatar_hash[2 * i + 1] = hx[md[i] & 15];
    }
    v->avatar_hash[16] = 0;
    v->avatar_size = st.st_size;
    v->avatar_mtime = st.st_mtim;
  }
  free(buf);
  return v->avatar_hash;
}

/* ---- accessors ---- */

const char *viewer_url(const struct viewer *v) {
  return v->url;
}
uint16_t viewer_port(const struct viewer *v) {
  return v->port;
}
struct peers *viewer_peers(struct viewer *v) {
  return v->peers;
}
const char *viewer_self_id(const struct viewer *v) {
  return v->self_id;
}
const char *viewer_csrf_token(const struct viewer *v) {
  return v->csrf;
}
goop_host *viewer_host(const struct viewer *v) {
  return v->host;
}
void **viewer_peers_routes_slot(struct viewer *v) {
  return &v->peers_routes;
}
unsigned viewer_max_sse(const struct viewer *v) {
  return v->max_sse;
}
void viewer_kick(struct viewer *v) {
  mhd_ev_kick(v->ev);
}
struct event_base *viewer_base(const struct viewer *v) {
  return v->base;
}
const goop_config *viewer_config(const struct viewer *v) {
  return v->cfg;
}
const char *viewer_config_path(const struct viewer *v) {
  return v->config_path ? v->config_path : "";
}

struct viewer *viewer_req_viewer(const struct viewer_req *r) {
  return r->v;
}
struct MHD_Connection *viewer_req_conn(const struct viewer_req *r) {
  return r->conn;
}
const char *viewer_req_method(const struct viewer_req *r) {
  return r->method;
}
bool viewer_req_is_head(const struct viewer_req *r) {
  return strcmp(r->method, MHD_HTTP_METHOD_HEAD) == 0;
}
const char *viewer_req_path(const struct viewer_req *r) {
  return r->path;
}
const char *viewer_req_subpath(const struct viewer_req *r) {
  return r->subpath ? r->subpath : "";
}
const char *viewer_req_header(const struct viewer_req *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}
const char *viewer_req_query(const struct viewer_req *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}
bool viewer_req_is_owner(const struct viewer_req *r) {
  return r->owner;
}
const char *viewer_req_caller_id(const struct viewer_req *r) {
  return r->caller;
}
const uint8_t *viewer_req_body(const struct viewer_req *r, size_t *ret_len) {
  *ret_len = r->body.len;
  return (const uint8_t *)(r->body.p ? r->body.p : "");
}

json_t *viewer_req_json(struct viewer_req *r) {
  if (!r->json_parsed) {
    r->json_parsed = true;
    if (r->body.len)
      r->json = json_loadb(r->body.p, r->body.len, JSON_REJECT_DUPLICATES, NULL);
  }
  return r->json;
}

void viewer_req_on_done(struct viewer_req *r, void (*fn)(struct viewer_req *r, void *ud), void *ud) {
  r->done_fn = fn;
  r->done_ud = ud;
}

bool viewer_req_is_gone(const struct viewer_req *r) {
  return r->gone;
}

static void susp_unlink(struct viewer_req *r) {
  if (r->susp_prev)
    r->susp_prev->susp_next = r->susp_next;
  else if (r->v->suspended == r)
    r->v->suspended = r->susp_next;
  if (r->susp_next)
    r->susp_next->susp_prev = r->susp_prev;
  r->susp_prev = r->susp_next = NULL;
}

/* The socket of a suspended request became readable: EOF or an error means
 * the client left (a pipelined next request ends this one too). */
static void on_req_watch(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  struct viewer_req *r = arg;
  char b;
  ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    if (r->suspended)
      event_add(r->watch, NULL);
    return;
  }
  r->gone = true;
  viewer_req_resume(r);
}

void viewer_req_suspend(struct viewer_req *r) {
  if (r->suspended)
    return;
  MHD_suspend_connection(r->conn);
  r->suspended = true;
  r->susp_next = r->v->suspended;
  if (r->susp_next)
    r->susp_next->susp_prev = r;
  r->v->suspended = r;
  if (!r->watch) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
      r->watch = event_new(r->v->base, ci->connect_fd, EV_READ, on_req_watch, r);
  }
  if (r->watch)
    event_add(r->watch, NULL);
}

void viewer_req_resume(struct viewer_req *r) {
  if (!r->suspended)
    return;
  r->suspended = false;
  susp_unlink(r);
  if (r->watch)
    event_del(r->watch);
  MHD_resume_connection(r->conn);
  mhd_ev_kick(r->v->ev);
}

/* ---- replies ---- */

enum MHD_Result viewer_req_queue(struct viewer_req *r, unsigned status, struct MHD_Response *resp) {
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  if (r->route && (r->route->flags & VIEWER_ROUTE_HTML)) {
    MHD_add_response_header(resp, "Content-Security-Policy", PAGE_CSP);
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
  }
  if (r->new_guest) {
    char cookie[160];
    snprintf(cookie, sizeof(cookie), GUEST_COOKIE "=%s; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax",
             r->caller + 6);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
  }
  enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
  if (ret == MHD_YES)
    r->answered = true;
  return ret;
}

enum MHD_Result viewer_reply(struct viewer_req *r, unsigned status, const char *content_type,
                             const void *body, size_t len) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
  if (!resp)
    return MHD_NO;
  if (content_type)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  enum MHD_Result ret = viewer_req_queue(r, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

enum MHD_Result viewer_reply_text(struct viewer_req *r, unsigned status, const char *text) {
  char buf[512];
  int n = snprintf(buf, sizeof(buf), "%s\n", text);
  if (n < 0 || (size_t)n >= sizeof(buf))
    return viewer_reply(r, status, "text/plain; charset=utf-8", text, strlen(text));
  return viewer_reply(r, status, "text/plain; charset=utf-8", buf, (size_t)n);
}

enum MHD_Result viewer_reply_json(struct viewer_req *r, unsigned status, json_t *j) {
  if (!j)
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(j);
  if (!s)
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  size_t n = strlen(s);
  s[n] = '\n'; /* like Go's json.Encoder */
  enum MHD_Result ret = viewer_reply(r, status, "application/json", s, n + 1);
  free(s);
  return ret;
}

enum MHD_Result viewer_reply_redirect(struct viewer_req *r, unsigned status, const char *location) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
  enum MHD_Result ret = viewer_req_queue(r, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

enum MHD_Result viewer_reply_page(struct viewer_req *r, const char *name, const char *const *vars) {
  char an[128];
  snprintf(an, sizeof(an), "html/%s", name);
  size_t len;
  const uint8_t *tpl = viewer_asset(an, &len);
  if (!tpl)
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "missing page template");
  struct vbuf b = {0};
  const char *s = (const char *)tpl, *end = s + len;
  int bad = 0;
  while (s < end && !bad) {
    const char *open = memmem(s, (size_t)(end - s), "{{", 2);
    if (!open) {
      bad |= vbuf_add(&b, s, (size_t)(end - s));
      break;
    }
    bad |= vbuf_add(&b, s, (size_t)(open - s));
    const char *close = memmem(open + 2, (size_t)(end - open - 2), "}}", 2);
    if (!close) {
      bad |= vbuf_add(&b, open, (size_t)(end - open));
      break;
    }
    size_t kl = (size_t)(close - open - 2);
    const char *val = "";
    for (size_t i = 0; vars && vars[i]; i += 2)
      if (strlen(vars[i]) == kl && memcmp(vars[i], open + 2, kl) == 0)
        val = vars[i + 1] ? vars[i + 1] : "";
    bad |= vbuf_add_html(&b, val);
    s = close + 2;
  }
  enum MHD_Result ret = bad ? viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory")
                            : viewer_reply(r, MHD_HTTP_OK, "text/html; charset=utf-8", b.p, b.len);
  vbuf_free(&b);
  return ret;
}

/* ---- routing ---- */

int viewer_add_route(struct viewer *v, const struct viewer_route *rt) {
  if (v->n_routes == MAX_ROUTES || !rt->pattern || !rt->fn)
    return -1;
  v->routes[v->n_routes++] = *rt;
  return 0;
}

static const struct viewer_route *match(const struct viewer *v, const char *path, const char **ret_sub) {
  const struct viewer_route *best = NULL;
  size_t best_len = 0;
  for (size_t i = 0; i < v->n_routes; i++) {
    const struct viewer_route *rt = &v->routes[i];
    size_t pl = strlen(rt->pattern);
    if (rt->flags & VIEWER_ROUTE_PREFIX) {
      if (strncmp(path, rt->pattern, pl) != 0 || pl < best_len)
        continue;
    } else if (strcmp(path, rt->pattern) != 0) {
      continue;
    }
    if (!best || pl >= best_len) {
      best = rt;
      best_len = pl;
    }
  }
  if (best)
    *ret_sub = path + best_len;
  return best;
}

static unsigned method_bit(const char *m) {
  if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
    return VIEWER_GET;
  if (strcmp(m, "POST") == 0)
    return VIEWER_POST;
  if (strcmp(m, "PUT") == 0)
    return VIEWER_PUT;
  if (strcmp(m, "DELETE") == 0)
    return VIEWER_DELETE;
  return 1u << 7; /* OPTIONS, PATCH, ...: only VIEWER_ANY */
}

static enum MHD_Result reply_405(struct viewer_req *r, unsigned methods) {
  char allow[64] = "";
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {
      {VIEWER_GET, "GET, HEAD"}, {VIEWER_POST, "POST"}, {VIEWER_PUT, "PUT"}, {VIEWER_DELETE, "DELETE"}};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (methods & names[i].bit) {
      if (allow[0])
        strcat(allow, ", ");
      strcat(allow, names[i].name);
    }
  }
  const char *msg = "method not allowed\n";
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(strlen(msg), (void *)msg, MHD_RESPMEM_PERSISTENT);
  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
  enum MHD_Result ret = viewer_req_queue(r, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
  MHD_destroy_response(resp);
  return ret;
}

static bool is_loopback(const struct sockaddr *sa) {
  if (!sa)
    return false;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
    return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
    if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
      return true;
    return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && s6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

/* A Host header naming this machine's loopback: "localhost", 127.x.y.z or [::1], with an optional port.
 * Anything else from a loopback client is a page of another site reached through DNS rebinding. */
static bool is_loopback_host(const char *h) {
  if (!h)
    return true; /* HTTP/1.0 without Host */
  char name[300];
  size_t n = strlen(h);
  if (n == 0 || n >= sizeof(name))
    return false;
  memcpy(name, h, n + 1);
  char *end = name[0] == '[' ? strchr(name, ']') : strrchr(name, ':');
  if (name[0] == '[') {
    if (!end || (end[1] && end[1] != ':'))
      return false;
    *end = 0;
    memmove(name, name + 1, strlen(name + 1) + 1);
  } else if (end) {
    *end = 0;
  }
  if (strcasecmp(name, "localhost") == 0 || strcasecmp(name, "localhost.") == 0)
    return true;
  struct in_addr a4;
  struct in6_addr a6;
  if (inet_pton(AF_INET, name, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, name, &a6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

/* Owner: loopback, no forwarding header, a loopback Host. Otherwise a guest with a cookie id. */
static int identify_caller(struct viewer_req *r) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  bool forwarded = viewer_req_header(r, "Forwarded") || viewer_req_header(r, "X-Forwarded-For") ||
                   viewer_req_header(r, "X-Real-IP");
  if (ci && is_loopback(ci->client_addr) && !forwarded && is_loopback_host(viewer_req_header(r, "Host"))) {
    r->owner = true;
    snprintf(r->caller, sizeof(r->caller), "%s", r->v->self_id);
    return 0;
  }
  const char *ck = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, GUEST_COOKIE);
  memcpy(r->caller, "guest-", 6);
  if (ck && http_is_guest_token(ck)) {
    memcpy(r->caller + 6, ck, 33);
    return 0;
  }
  r->new_guest = true;
  return random_hex(r->caller + 6, 16);
}

static bool csrf_ok(struct viewer_req *r) {
  const char *want = r->v->csrf;
  const char *h = viewer_req_header(r, "X-Goop-CSRF");
  if (h)
    return http_token_equal(h, want);
  const char *ct = viewer_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
  if (ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0) {
    char tok[80];
    return r->body.len && http_form_field(r->body.p, r->body.len, "csrf", tok, sizeof(tok)) >= 0 &&
           http_token_equal(tok, want);
  }
  json_t *j = viewer_req_json(r);
  const char *s = json_is_object(j) ? json_string_value(json_object_get(j, "csrf")) : NULL;
  return s && http_token_equal(s, want);
}

/*
 * MHD calls this once when the headers are in, once per body chunk, and once
 * at the end. Answers are queued only in the last call (or for a declared
 * oversize body in the first), which keeps the connection alive.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  (void)version;
  struct viewer *v = cls;
  struct viewer_req *r = *con_cls;
  if (!r) {
    r = calloc(1, sizeof(*r));
    if (!r)
      return MHD_NO;
    *con_cls = r;
    r->v = v;
    r->conn = conn;
    r->method = method;
    r->path = strdup(url);
    if (!r->path || identify_caller(r) != 0)
      return MHD_NO;
    r->route = match(v, r->path, &r->subpath);
    r->max_body = r->route && r->route->max_body ? r->route->max_body : v->max_body;
    const char *cl = viewer_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > r->max_body) {
      r->dispatched = true;
      return viewer_reply_text(r, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
    }
    return MHD_YES;
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (r->dispatched || r->too_big)
      return MHD_YES; /* discarded */
    if (n > r->max_body - r->body.len) {
      r->too_big = true; /* chunked body over the limit: answer 413 at the end */
      vbuf_free(&r->body);
      return MHD_YES;
    }
    if (!r->route || !(r->route->flags & VIEWER_ROUTE_BODY)) {
      r->discarded += n;
      if (r->discarded > r->max_body)
        r->too_big = true;
      return MHD_YES;
    }
    return vbuf_add(&r->body, upload_data, n) == 0 ? MHD_YES : MHD_NO;
  }
  if (r->dispatched) { /* resumed without an answer: ask the handler again */
    if (r->gone)
      return MHD_NO;
    return r->answered || !r->route ? MHD_YES : r->route->fn(r, r->route->ud);
  }
  r->dispatched = true;
  if (r->too_big)
    return viewer_reply_text(r, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
  if (!r->route)
    return viewer_reply_text(r, MHD_HTTP_NOT_FOUND, "404 page not found");
  if (!(r->route->methods & method_bit(method)))
    return reply_405(r, r->route->methods);
  if ((r->route->flags & VIEWER_ROUTE_OWNER) && !r->owner)
    return viewer_reply_text(r, MHD_HTTP_FORBIDDEN, "forbidden");
  bool has_body = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
  if ((r->route->flags & VIEWER_ROUTE_CSRF) && has_body && !csrf_ok(r))
    return viewer_reply_text(r, MHD_HTTP_FORBIDDEN, "bad csrf");
  return r->route->fn(r, r->route->ud);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  (void)toe;
  struct viewer_req *r = *con_cls;
  if (!r)
    return;
  *con_cls = NULL;
  if (r->suspended) {
    r->suspended = false;
    susp_unlink(r);
  }
  if (r->watch)
    event_free(r->watch);
  if (r->done_fn)
    r->done_fn(r, r->done_ud);
  json_decref(r->json);
  vbuf_free(&r->body);
  free(r->path);
  free(r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  if (getenv("GOOP2_VIEWER_DEBUG")) {
    fputs("goop2: viewer: ", stderr);
    vfprintf(stderr, fmt, ap);
  }
}

/* ---- host events ---- */

static void conn_peer(goop_conn *c, char *buf, size_t len) {
  goop_peer_id pid;
  goop_conn_remote_peer(c, &pid);
  if (goop_peer_id_to_string(&pid, buf, len) < 0)
    buf[0] = 0;
}

void viewer_on_connected(struct viewer *v, goop_conn *c) {
  if (!v)
    return;
  char id[GOOP_PEER_ID_STR_MAX], addr[256] = "";
  conn_peer(c, id, sizeof(id));
  if (!id[0])
    return;
  (void)goop_conn_remote_addr(c, addr, sizeof(addr));
  bool relayed = strstr(addr, "/p2p-circuit") != NULL;
  /* Only outbound addresses are dialable; an inbound one has the remote's ephemeral port. */
  (void)peers_connected(v->peers, id, goop_conn_is_outbound(c) && !relayed && addr[0] ? addr : NULL, relayed);
}

void viewer_on_disconnected(struct viewer *v, goop_conn *c) {
  if (!v)
    return;
  char id[GOOP_PEER_ID_STR_MAX], addr[256] = "";
  conn_peer(c, id, sizeof(id));
  (void)goop_conn_remote_addr(c, addr, sizeof(addr));
  if (id[0])
    peers_disconnected(v->peers, id, strstr(addr, "/p2p-circuit") != NULL);
}

struct label_fetch {
  struct viewer *v;
  char id[GOOP_PEER_ID_STR_MAX];
  struct label_fetch *next;
};
static struct label_fetch *label_fetches; /* outstanding; cleared when the viewer goes */

static void on_label(goop_host *h, int status, const char *label, void *ud) {
  (void)h;
  struct label_fetch *lf = ud;
  for (struct label_fetch **pp = &label_fetches; *pp; pp = &(*pp)->next) {
    if (*pp == lf) {
      *pp = lf->next;
      break;
    }
  }
  if (lf->v && status == 0 && label)
    (void)peers_set_label(lf->v->peers, lf->id, label);
  free(lf);
}

void viewer_on_identified(struct viewer *v, goop_conn *c) {
  if (!v || !v->host)
    return;
  goop_peer_id pid;
  goop_conn_remote_peer(c, &pid);
  char id[GOOP_PEER_ID_STR_MAX];
  if (goop_peer_id_to_string(&pid, id, sizeof(id)) < 0)
    return;
  char a[256];
  for (size_t i = 0; i < PEERS_MAX_ADDRS && goop_host_peer_addr(v->host, &pid, i, a, sizeof(a)) > 0; i++)
    (void)peers_add_addr(v->peers, id, a);
  bool has_content = false;
  const char *p;
  for (size_t i = 0; (p = goop_host_peer_protocol(v->host, &pid, i)) != NULL; i++)
    if (strcmp(p, GOOP_PROTO_CONTENT) == 0)
      has_content = true;
  if (!has_content)
    return;
  struct label_fetch *lf = calloc(1, sizeof(*lf));
  if (!lf)
    return;
  lf->v = v;
  snprintf(lf->id, sizeof(lf->id), "%s", id);
  if (goop_content_fetch(v->host, &pid, 5000, on_label, lf) != 0) {
    free(lf);
    return;
  }
  lf->next = label_fetches;
  label_fetches = lf;
}

void viewer_add_bootstrap(struct viewer *v, const char *multiaddr) {
  if (!v || !multiaddr)
    return;
  const char *p = strstr(multiaddr, "/p2p/");
  if (!p)
    return;
  char id[GOOP_PEER_ID_STR_MAX];
  size_t n = strcspn(p + 5, "/");
  if (n == 0 || n >= sizeof(id))
    return;
  memcpy(id, p + 5, n);
  id[n] = 0;
  goop_peer_id pid;
  if (goop_peer_id_from_string(id, &pid) != 0)
    return;
  (void)peers_pin(v->peers, id, multiaddr);
}

/* ---- lifecycle ---- */

static int open_listener(const char *addr, char *host, size_t host_len, uint16_t *ret_port, int *ret_fd,
                         char *err, size_t err_len) {
  uint16_t port;
  if (http_parse_addr(addr, host, host_len, &port) != 0) {
    snprintf(err, err_len, "viewer.http_addr \"%s\" is not host:port (e.g. 127.0.0.1:8080)", addr);
    return -1;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  socklen_t sl;
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    sl = sizeof(*s4);
  } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    sl = sizeof(*s6);
  } else {
    snprintf(err, err_len,
             "viewer.http_addr \"%s\": the host must be an IP address (e.g. 127.0.0.1 or 0.0.0.0)", addr);
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    snprintf(err, err_len, "viewer: cannot create a socket: %s", strerror(errno));
    return -1;
  }
  int one = 1, zero = 0;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (ss.ss_family == AF_INET6)
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 128) != 0) {
    int e = errno;
    close(fd);
    if (e == EADDRINUSE)
      snprintf(err, err_len,
               "viewer port %u is already in use (viewer.http_addr \"%s\"): change viewer.http_addr in "
               "goop.json (port 0 picks a free port)",
               port, addr);
    else if (e == EACCES)
      snprintf(err, err_len, "viewer.http_addr \"%s\": no permission to use port %u (pick a port above 1023)",
               addr, port);
    else
      snprintf(err, err_len, "cannot listen on viewer.http_addr \"%s\": %s", addr, strerror(e));
    return -1;
  }
  struct sockaddr_storage got;
  socklen_t gl = sizeof(got);
  if (getsockname(fd, (struct sockaddr *)&got, &gl) == 0)
    port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                           : ((struct sockaddr_in *)&got)->sin_port);
  *ret_port = port;
  *ret_fd = fd;
  return 0;
}

struct viewer *viewer_new(struct event_base *base, const goop_identity *id, const struct viewer_options *opt,
                          char *err, size_t err_len) {
  struct viewer *v = calloc(1, sizeof(*v));
  if (!v) {
    snprintf(err, err_len, "out of memory");
    return NULL;
  }
  v->base = base;
  v->listen_fd = -1;
  v->host = opt->host;
  v->cfg = opt->cfg;
  v->max_body = opt->max_body ? opt->max_body : (1u << 20);
  v->max_sse = opt->max_sse ? opt->max_sse : 64;
  unsigned timeout = opt->conn_timeout_s ? opt->conn_timeout_s : 30;
  unsigned max_conns = opt->max_conns ? opt->max_conns : 256;
  unsigned ttl = opt->peer_ttl_s;
  if (!ttl && opt->cfg) {
    int64_t t = goop_config_get_int(opt->cfg, "presence.ttl_seconds");
    ttl = t > 0 && t < 86400 ? (unsigned)t : 20;
  }
  if (opt->config_path && !(v->config_path = strdup(opt->config_path)))
    goto fail_oom;
  v->avatar_size = -1;
  const char *pdir = opt->cfg ? goop_config_base_dir(opt->cfg) : NULL;
  if (pdir) {
    size_t al = strlen(pdir) + sizeof("/avatar.png");
    if (!(v->avatar_path = malloc(al)))
      goto fail_oom;
    snprintf(v->avatar_path, al, "%s/avatar.png", pdir);
  }
  goop_peer_id pid;
  goop_identity_peer_id(id, &pid);
  if (goop_peer_id_to_string(&pid, v->self_id, sizeof(v->self_id)) < 0 || random_hex(v->csrf, 32) != 0) {
    snprintf(err, err_len, "viewer: cannot initialise");
    goto fail;
  }
  v->peers = peers_new(base, ttl ? ttl : 20);
  if (!v->peers)
    goto fail_oom;

  char host[HTTP_ADDR_MAX + 1];
  const char *addr = opt->http_addr ? opt->http_addr : "127.0.0.1:8080";
  if (open_listener(addr, host, sizeof(host), &v->port, &v->listen_fd, err, err_len) != 0)
    goto fail;
  bool v6 = strchr(host, ':') != NULL;
  const char *shown = host;
  if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
    shown = "127.0.0.1"; /* reachable locally; other interfaces work too */
  snprintf(v->url, sizeof(v->url), v6 && shown == host ? "http://[%s]:%u/" : "http://%s:%u/", shown, v->port);

  if (viewer_routes_peers(v) != 0)
    goto fail_oom;

  v->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                          on_request, v, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, v, MHD_OPTION_LISTEN_SOCKET,
                          v->listen_fd, MHD_OPTION_CONNECTION_LIMIT, max_conns, MHD_OPTION_CONNECTION_TIMEOUT,
                          timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64u << 10),
                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, v, MHD_OPTION_END);
  if (!v->d) {
    snprintf(err, err_len, "viewer: cannot start the HTTP server on %s", addr);
    goto fail;
  }
  v->listen_fd = -1; /* MHD closes it */
  v->ev = mhd_ev_new(base, v->d);
  if (!v->ev) {
    snprintf(err, err_len, "viewer: cannot attach the HTTP server to the event loop");
    goto fail;
  }
  return v;

fail_oom:
  snprintf(err, err_len, "out of memory");
fail:
  viewer_free(v);
  return NULL;
}

void viewer_free(struct viewer *v) {
  if (!v)
    return;
  v->stopping = true;
  for (struct label_fetch *lf = label_fetches; lf; lf = lf->next)
    if (lf->v == v)
      lf->v = NULL;
  viewer_routes_peers_stop(v);
  while (v->suspended) { /* MHD must not stop with suspended connections */
    struct viewer_req *r = v->suspended;
    if (!r->answered)
      (void)viewer_reply_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down");
    r->gone = true;
    viewer_req_resume(r);
  }
  if (v->d) {
    MHD_run(v->d); /* let resumed streams finish */
    MHD_stop_daemon(v->d);
  }
  mhd_ev_free(v->ev);
  viewer_routes_peers_free(v);
  if (v->listen_fd >= 0)
    close(v->listen_fd);
  peers_free(v->peers);
  free(v->config_path);
  free(v->avatar_path);
  free(v);
}
