/*
 * Peer side of a rendezvous server (see rdv-client.h), on libevent's evhttp
 * client; https:// runs it over OpenSSL bufferevents.
 *
 * Every TLS connection is used for one connected session only: evhttp would
 * reconnect a closed connection with the same (spent) SSL object, so a
 * connection that closed or failed is replaced by a fresh one. Connections
 * are freed from a timer or the next request, never inside their own
 * callbacks.
 */
#include "rdv-client.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <goop/identity.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 8000
#define PUBLISH_TIMEOUT_S 2
#define STREAM_IDLE_S 60 /* the server pings every 25 s */
#define MAX_HEADERS_SIZE 16384

/* An HTTP connection and, for https, its SSL object (owned by the connection). */
struct conn {
  struct evhttp_connection *http;
  SSL *ssl;
};

struct rdv_client {
  struct event_base *base;
  char *url;      /* as given, for messages */
  char *host;     /* to connect to and verify (IPv6 without brackets) */
  char *host_hdr; /* Host header */
  char *prefix;   /* path prefix without a trailing '/', or "" */
  int port;
  bool tls;
  bool host_is_ip;
  SSL_CTX *ssl_ctx;
  char *self_id;
  rdv_client_msg_fn fn;
  void *ud;
  /* publish */
  struct conn pub;
  bool pub_busy;
  bool pub_stale; /* closed or failed: replace before the next request */
  /* subscription */
  struct conn sse;
  struct evhttp_request *sse_req;
  enum evhttp_request_error sse_err;
  bool sse_failed;
  bool sse_healthy; /* said ": ok" */
  struct event *retry;
  unsigned backoff_ms;
  struct rdv_sse sse_parser;
  /* relay fetch */
  struct conn relay;     /* in flight when relay.http is set */
  struct conn relay_old; /* finished, freed by |gc| */
  rdv_client_relay_fn relay_fn;
  void *relay_ud;
  enum evhttp_request_error relay_err;
  bool relay_failed;
  struct event *gc;
  char last_msg[512]; /* last logged problem, to log each one once */
};

static void schedule_retry(struct rdv_client *c);

/* ---- the event-stream line splitter ---- */

int rdv_sse_init(struct rdv_sse *p, rdv_sse_line_fn fn, void *ud) {
  memset(p, 0, sizeof(*p));
  p->line = malloc(RDV_SSE_LINE_MAX);
  p->fn = fn;
  p->ud = ud;
  return p->line ? 0 : -1;
}

void rdv_sse_reset(struct rdv_sse *p) {
  p->len = 0;
  p->overflow = false;
}

void rdv_sse_free(struct rdv_sse *p) {
  free(p->line);
  p->line = NULL;
}

static void sse_line(struct rdv_sse *p, const char *line, size_t n) {
  if (n && line[n - 1] == '\r')
    n--;
  if (n == 0)
    return;
  if (line[0] == ':') {
    p->fn(true, line, n, p->ud);
    return;
  }
  if (n < 5 || memcmp(line, "data:", 5) != 0)
    return;
  const char *d = line + 5;
  size_t len = n - 5;
  while (len && (*d == ' ' || *d == '\t')) {
    d++;
    len--;
  }
  while (len && (d[len - 1] == ' ' || d[len - 1] == '\t'))
    len--;
  p->fn(false, d, len, p->ud);
}

void rdv_sse_feed(struct rdv_sse *p, const char *data, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char ch = data[i];
    if (ch == '\n') {
      if (!p->overflow)
        sse_line(p, p->line, p->len);
      rdv_sse_reset(p);
    } else if (p->len >= RDV_SSE_LINE_MAX) {
      p->overflow = true;
    } else {
      p->line[p->len++] = ch;
    }
  }
}

/* ---- the /relay JSON parser ---- */

enum ma_value { MA_NONE, MA_IP4, MA_IP6, MA_DNS, MA_PORT, MA_PEER };

static const struct {
  const char *name;
  enum ma_value value;
  bool first; /* an address starts with one of these, and only these */
} ma_protos[] = {
    {"ip4", MA_IP4, true},    {"ip6", MA_IP6, true},     {"dns", MA_DNS, true},
    {"dns4", MA_DNS, true},   {"dns6", MA_DNS, true},    {"dnsaddr", MA_DNS, true},
    {"tcp", MA_PORT, false},  {"udp", MA_PORT, false},   {"p2p", MA_PEER, false},
    {"ipfs", MA_PEER, false}, {"quic", MA_NONE, false},  {"quic-v1", MA_NONE, false},
    {"ws", MA_NONE, false},   {"wss", MA_NONE, false},   {"tls", MA_NONE, false},
    {"sni", MA_DNS, false},   {"noise", MA_NONE, false}, {"webtransport", MA_NONE, false},
};

static bool dns_name_ok(const char *s, size_t n) {
  if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
    return false;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '.' || ch == '_';
    if (!ok || (ch == '.' && i + 1 < n && s[i + 1] == '.'))
      return false;
  }
  return true;
}

static bool port_ok(const char *s, size_t n) {
  if (n == 0 || n > 5)
    return false;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  return v <= 65535;
}

static bool addr_valid(const char *text, const goop_peer_id *relay) {
  size_t total = strlen(text);
  if (total < 2 || total > RDV_RELAY_MAX_ADDR_LEN || text[0] != '/')
    return false;
  const char *p = text;
  bool first = true, ended = false;
  while (*p) {
    if (ended || *p != '/')
      return false;
    p++;
    size_t n = strcspn(p, "/");
    size_t k;
    for (k = 0; k < sizeof(ma_protos) / sizeof(ma_protos[0]); k++)
      if (strlen(ma_protos[k].name) == n && memcmp(ma_protos[k].name, p, n) == 0)
        break;
    if (k == sizeof(ma_protos) / sizeof(ma_protos[0]) || ma_protos[k].first != first)
      return false;
    first = false;
    p += n;
    if (ma_protos[k].value == MA_NONE)
      continue;
    if (*p != '/')
      return false;
    p++;
    const char *v = p;
    size_t vn = strcspn(p, "/");
    p += vn;
    char buf[RDV_RELAY_MAX_ADDR_LEN + 1];
    memcpy(buf, v, vn);
    buf[vn] = '\0';
    switch (ma_protos[k].value) {
    case MA_IP4: {
      struct in_addr a;
      if (inet_pton(AF_INET, buf, &a) != 1)
        return false;
      break;
    }
    case MA_IP6: {
      struct in6_addr a;
      if (inet_pton(AF_INET6, buf, &a) != 1)
        return false;
      break;
    }
    case MA_DNS:
      if (!dns_name_ok(buf, vn))
        return false;
      break;
    case MA_PORT:
      if (!port_ok(buf, vn))
        return false;
      break;
    case MA_PEER: {
      goop_peer_id id;
      if (goop_peer_id_from_string(buf, &id) != 0 || (relay && !goop_peer_id_equal(&id, relay)))
        return false;
      ended = true; /* /p2p/<id> ends the address */
      break;
    }
    case MA_NONE:
      break;
    }
  }
  return !first;
}

bool rdv_relay_addr_valid(const char *text, const char *relay) {
  goop_peer_id id;
  if (!text)
    return false;
  if (relay && goop_peer_id_from_string(relay, &id) != 0)
    return false;
  return addr_valid(text, relay ? &id : NULL);
}

void rdv_relay_info_clear(struct rdv_relay_info *r) {
  free(r->peer_id);
  for (size_t i = 0; i < r->n_addrs; i++)
    free(r->addrs[i]);
  memset(r, 0, sizeof(*r));
}

int rdv_relay_parse(const void *data, size_t len, struct rdv_relay_info *ret) {
  memset(ret, 0, sizeof(*ret));
  if (len > RDV_RELAY_MAX_BODY)
    return GOOP_EMSGSIZE;
  json_error_t jerr;
  json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return GOOP_EPARSE;
  int rc = GOOP_EPARSE;
  json_t *pid = json_object_get(root, "peer_id"), *addrs = json_object_get(root, "addrs");
  const char *pid_text = json_string_value(pid);
  goop_peer_id id;
  char canon[GOOP_PEER_ID_STR_MAX];
  if (!json_is_object(root) || !pid_text || json_string_length(pid) >= GOOP_PEER_ID_STR_MAX ||
      goop_peer_id_from_string(pid_text, &id) != 0 || goop_peer_id_to_string(&id, canon, sizeof(canon)) < 0 ||
      !json_is_array(addrs))
    goto out;
  rc = GOOP_ENOMEM;
  if (!(ret->peer_id = strdup(canon)))
    goto out;
  size_t i;
  json_t *a;
  json_array_foreach(addrs, i, a) {
    if (ret->n_addrs == RDV_RELAY_MAX_ADDRS)
      break;
    const char *s = json_string_value(a);
    if (!s || json_string_length(a) != strlen(s) || !addr_valid(s, &id))
      continue;
    if (!(ret->addrs[ret->n_addrs] = strdup(s)))
      goto out;
    ret->n_addrs++;
  }
  rc = ret->n_addrs ? 0 : GOOP_EPARSE;
out:
  json_decref(root);
  if (rc)
    rdv_relay_info_clear(ret);
  return rc;
}

/* ---- connections ---- */

static void report(struct rdv_client *c, const char *fmt, ...) GOOP_PRINTF(2, 3);

/* Logs a problem (or a recovery, "connected") once until the next different one. */
static void report(struct rdv_client *c, const char *fmt, ...) {
  char msg[sizeof(c->last_msg)];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (strcmp(msg, c->last_msg) == 0)
    return;
  snprintf(c->last_msg, sizeof(c->last_msg), "%s", msg);
  fprintf(stderr, "goop2: rendezvous %s: %s\n", c->url, msg);
}

static void conn_free(struct conn *k) {
  if (k->http)
    evhttp_connection_free(k->http); /* frees the bufferevent and the SSL object */
  k->http = NULL;
  k->ssl = NULL;
}

static void on_pub_closed(struct evhttp_connection *http, void *arg) {
  (void)http;
  struct rdv_client *c = arg;
  c->pub_stale = true;
}

static int conn_new(struct rdv_client *c, int timeout_s, struct conn *ret) {
  memset(ret, 0, sizeof(*ret));
  struct bufferevent *bev = NULL;
  SSL *ssl = NULL;
  if (c->tls) {
    if (!(ssl = SSL_new(c->ssl_ctx)))
      return -1;
    int ok;
    if (c->host_is_ip) {
      ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->host) == 1;
    } else {
      /* SNI, and the name the certificate must carry. */
      ok = SSL_set_tlsext_host_name(ssl, c->host) == 1 && SSL_set1_host(ssl, c->host) == 1;
      X509_VERIFY_PARAM_set_hostflags(SSL_get0_param(ssl), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    if (!ok) {
      SSL_free(ssl);
      return -1;
    }
    bev = bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
      SSL_free(ssl);
      return -1;
    }
    /* The responses are length-delimited or chunked: a missing close_notify loses nothing. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
  }
  ret->http = evhttp_connection_base_bufferevent_new(c->base, NULL, bev, c->host, (unsigned short)c->port);
  if (!ret->http) {
    if (bev)
      bufferevent_free(bev);
    return -1;
  }
  ret->ssl = ssl;
  evhttp_connection_set_timeout(ret->http, timeout_s);
  evhttp_connection_set_max_headers_size(ret->http, MAX_HEADERS_SIZE);
  return 0;
}

/* Why a request on |k| failed at the connection level (|err| from evhttp);
 * |*ret_tls| tells whether TLS failed (rather than TCP or HTTP). */
static const char *conn_reason(struct conn *k, enum evhttp_request_error err, char *buf, size_t len,
                               bool *ret_tls) {
  *ret_tls = k->ssl != NULL;
  if (k->ssl) {
    long vr = SSL_get_verify_result(k->ssl);
    if (vr != X509_V_OK) {
      snprintf(buf, len, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
      return buf;
    }
    /* The first OpenSSL error of a failed handshake, skipping the
     * SSL_get_error() codes and errno values libevent records for plain
     * socket failures (library 0). After a handshake, a TLS error (say, a
     * missing close_notify) is just a lost connection. */
    char fin[64];
    bool handshaken = SSL_get_finished(k->ssl, fin, sizeof(fin)) > 0;
    struct bufferevent *bev = k->http ? evhttp_connection_get_bufferevent(k->http) : NULL;
    unsigned long e, first = 0;
    while (bev && (e = bufferevent_get_openssl_error(bev)) != 0)
      if (!first && !handshaken && ERR_GET_LIB(e) != 0 && ERR_GET_LIB(e) != ERR_LIB_SYS)
        first = e;
    if (first) {
      char tmp[256];
      ERR_error_string_n(first, tmp, sizeof(tmp));
      snprintf(buf, len, "TLS failure: %s", tmp);
      return buf;
    }
  }
  *ret_tls = false;
  switch (err) {
  case EVREQ_HTTP_TIMEOUT:
    return "timed out";
  case EVREQ_HTTP_EOF:
    return "connection closed";
  case EVREQ_HTTP_INVALID_HEADER:
    return "malformed response";
  case EVREQ_HTTP_DATA_TOO_LONG:
    return "response too large";
  default:
    return "cannot connect";
  }
}

static struct evhttp_request *request_new(struct rdv_client *c, void (*cb)(struct evhttp_request *, void *)) {
  struct evhttp_request *req = evhttp_request_new(cb, c);
  if (!req)
    return NULL;
  struct evkeyvalq *h = evhttp_request_get_output_headers(req);
  evhttp_add_header(h, "Host", c->host_hdr);
  evhttp_add_header(h, "User-Agent", "goop2");
  return req;
}

static int make_request(struct rdv_client *c, struct conn *k, struct evhttp_request *req,
                        enum evhttp_cmd_type type, const char *path) {
  char uri[1024];
  snprintf(uri, sizeof(uri), "%s%s", c->prefix, path);
  return evhttp_make_request(k->http, req, type, uri); /* on failure |req| was freed */
}

/* ---- subscription ---- */

static void on_line(bool comment, const char *data, size_t len, void *ud) {
  struct rdv_client *c = ud;
  if (comment) {
    if (len >= 4 && memcmp(data, ": ok", 4) == 0) {
      c->backoff_ms = BACKOFF_MIN_MS; /* a healthy stream */
      c->sse_healthy = true;
      if (c->last_msg[0] && strcmp(c->last_msg, "connected") != 0)
        report(c, "connected");
    }
    return;
  }
  struct goop_presence_msg m;
  memset(&m, 0, sizeof(m));
  if (goop_presence_msg_parse(data, len, &m) != 0) {
    goop_presence_msg_clear(&m);
    return;
  }
  if (m.peer_id && m.peer_id[0] && strcmp(m.peer_id, c->self_id) != 0 && m.type != GOOP_PRESENCE_UNKNOWN)
    c->fn(&m, c->ud);
  goop_presence_msg_clear(&m);
}

static void on_chunk(struct evhttp_request *req, void *arg) {
  struct rdv_client *c = arg;
  if (evhttp_request_get_response_code(req) != 200)
    return; /* an error page, not a stream */
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  char tmp[4096];
  int n;
  while ((n = evbuffer_remove(in, tmp, sizeof(tmp))) > 0)
    rdv_sse_feed(&c->sse_parser, tmp, (size_t)n);
}

static void on_stream_error(enum evhttp_request_error err, void *arg) {
  struct rdv_client *c = arg;
  c->sse_err = err;
  c->sse_failed = true;
}

static void on_stream_done(struct evhttp_request *req, void *arg) {
  struct rdv_client *c = arg;
  c->sse_req = NULL;
  int code = req ? evhttp_request_get_response_code(req) : 0;
  char buf[384];
  bool tls;
  if (c->sse_failed || code == 0) {
    const char *why = conn_reason(&c->sse, c->sse_err, buf, sizeof(buf), &tls);
    report(c, "%s", c->sse_healthy ? "event stream lost, reconnecting" : why);
  } else if (code != 200) {
    report(c, "/events answered HTTP %d", code);
  } else if (c->sse_healthy) {
    report(c, "event stream closed by the server, reconnecting");
  }
  schedule_retry(c);
}

static void subscribe(struct rdv_client *c) {
  conn_free(&c->sse); /* a fresh connection for every stream */
  rdv_sse_reset(&c->sse_parser);
  c->sse_failed = false;
  c->sse_healthy = false;
  c->sse_err = EVREQ_HTTP_REQUEST_CANCEL;
  if (conn_new(c, STREAM_IDLE_S, &c->sse) != 0) {
    schedule_retry(c);
    return;
  }
  struct evhttp_request *req = request_new(c, on_stream_done);
  if (!req) {
    schedule_retry(c);
    return;
  }
  evhttp_request_set_chunked_cb(req, on_chunk);
  evhttp_request_set_error_cb(req, on_stream_error);
  evhttp_add_header(evhttp_request_get_output_headers(req), "Accept", "text/event-stream");
  if (make_request(c, &c->sse, req, EVHTTP_REQ_GET, "/events") != 0) {
    schedule_retry(c);
    return;
  }
  c->sse_req = req;
}

static void on_retry(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  subscribe(arg);
}

static void schedule_retry(struct rdv_client *c) {
  if (!c->retry) /* being freed */
    return;
  unsigned b = c->backoff_ms;
  /* Jitter: somewhere in [b/2, b]. */
  unsigned delay = b / 2 + (unsigned)(rand() % (int)(b / 2 + 1));
  if (c->backoff_ms < BACKOFF_MAX_MS)
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
  struct timeval tv = {.tv_sec = delay / 1000, .tv_usec = (long)(delay % 1000) * 1000};
  evtimer_add(c->retry, &tv);
}

/* ---- setup ---- */

static void on_gc(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct rdv_client *c = arg;
  conn_free(&c->relay_old);
}

static int parse_url(struct rdv_client *c, const char *url, char *err, size_t errlen) {
  struct evhttp_uri *u = evhttp_uri_parse(url);
  if (!u) {
    snprintf(err, errlen, "bad rendezvous URL %s", url);
    return -1;
  }
  int rc = -1;
  const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u),
             *path = evhttp_uri_get_path(u);
  if (!scheme || (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
    snprintf(err, errlen, "%s: only http:// and https:// rendezvous URLs are supported", url);
    goto out;
  }
  if (!host || !host[0] || evhttp_uri_get_userinfo(u) || evhttp_uri_get_query(u) ||
      evhttp_uri_get_fragment(u)) {
    snprintf(err, errlen, "%s: a rendezvous URL is scheme://host[:port][/path]", url);
    goto out;
  }
  c->tls = strcasecmp(scheme, "https") == 0;
  int dflt = c->tls ? 443 : 80;
  c->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : dflt;
  size_t hl = strlen(host);
  if (host[0] == '[' && hl > 2 && host[hl - 1] == ']')
    c->host = strndup(host + 1, hl - 2);
  else
    c->host = strdup(host);
  size_t pl = path ? strlen(path) : 0;
  while (pl && path[pl - 1] == '/')
    pl--;
  c->prefix = strndup(path ? path : "", pl);
  char hdr[600];
  if (c->port == dflt)
    snprintf(hdr, sizeof(hdr), "%s", host);
  else
    snprintf(hdr, sizeof(hdr), "%s:%d", host, c->port);
  c->host_hdr = strdup(hdr);
  if (!c->host || !c->prefix || !c->host_hdr) {
    snprintf(err, errlen, "out of memory");
    goto out;
  }
  if (strlen(c->prefix) > 512) {
    snprintf(err, errlen, "%s: path too long", url);
    goto out;
  }
  struct in6_addr a6;
  c->host_is_ip = inet_pton(AF_INET, c->host, &a6) == 1 || inet_pton(AF_INET6, c->host, &a6) == 1;
  rc = 0;
out:
  evhttp_uri_free(u);
  return rc;
}

static int tls_setup(struct rdv_client *c, char *err, size_t errlen) {
  c->ssl_ctx = SSL_CTX_new(TLS_client_method());
  if (!c->ssl_ctx) {
    snprintf(err, errlen, "%s: cannot set up TLS", c->url);
    return -1;
  }
  static const unsigned char alpn[] = "\x08http/1.1";
  SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);
  /* The system store, or SSL_CERT_FILE / SSL_CERT_DIR when set. */
  if (SSL_CTX_set_default_verify_paths(c->ssl_ctx) != 1 ||
      SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_alpn_protos(c->ssl_ctx, alpn, sizeof(alpn) - 1) != 0) {
    snprintf(err, errlen, "%s: cannot set up TLS", c->url);
    return -1;
  }
  SSL_CTX_set_mode(c->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
  return 0;
}

int rdv_client_new(struct event_base *base, const char *url, const char *self_id, rdv_client_msg_fn fn,
                   void *ud, struct rdv_client **ret, char *err, size_t errlen) {
  *ret = NULL;
  struct rdv_client *c = calloc(1, sizeof(*c));
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  c->base = base;
  c->fn = fn;
  c->ud = ud;
  c->backoff_ms = BACKOFF_MIN_MS;
  /* Surrounding white space and trailing slashes are not part of it. */
  while (*url == ' ' || *url == '\t' || *url == '\n' || *url == '\r')
    url++;
  size_t ul = strlen(url);
  while (ul && (url[ul - 1] == ' ' || url[ul - 1] == '\t' || url[ul - 1] == '\n' || url[ul - 1] == '\r' ||
                url[ul - 1] == '/'))
    ul--;
  c->url = strndup(url, ul);
  c->self_id = strdup(self_id ? self_id : "");
  int sse_rc = rdv_sse_init(&c->sse_parser, on_line, c);
  c->retry = evtimer_new(base, on_retry, c);
  c->gc = evtimer_new(base, on_gc, c);
  if (!c->url || !c->self_id || sse_rc != 0 || !c->retry || !c->gc) {
    rdv_client_free(c);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (parse_url(c, c->url, err, errlen) != 0 || (c->tls && tls_setup(c, err, errlen) != 0)) {
    rdv_client_free(c);
    return -1;
  }
  srand((unsigned)time(NULL) ^ (unsigned)(uintptr_t)c);
  if (fn)
    subscribe(c);
  *ret = c;
  return 0;
}

/* ---- publish ---- */

static void on_published(struct evhttp_request *req, void *arg) {
  struct rdv_client *c = arg;
  c->pub_busy = false;
  if (!req || evhttp_request_get_response_code(req) == 0) {
    c->pub_stale = true;
    char buf[384];
    bool tls;
    const char *why = conn_reason(&c->pub, EVREQ_HTTP_REQUEST_CANCEL, buf, sizeof(buf), &tls);
    if (tls) /* other failures show in the stream */
      report(c, "%s", why);
  }
}

void rdv_client_publish(struct rdv_client *c, const struct goop_presence_msg *m) {
  if (!c || (c->pub_busy && m->type != GOOP_PRESENCE_OFFLINE)) /* offline queues behind a pending one */
    return;
  char *json = NULL;
  size_t len = 0;
  if (goop_presence_msg_encode(m, &json, &len) != 0)
    return;
  if (c->pub.http && c->pub_stale && !c->pub_busy)
    conn_free(&c->pub);
  if (!c->pub.http) {
    if (conn_new(c, PUBLISH_TIMEOUT_S, &c->pub) != 0) {
      free(json);
      return;
    }
    c->pub_stale = false;
    evhttp_connection_set_closecb(c->pub.http, on_pub_closed, c);
  }
  struct evhttp_request *req = request_new(c, on_published);
  if (!req) {
    free(json);
    return;
  }
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  evbuffer_add(evhttp_request_get_output_buffer(req), json, len);
  free(json);
  if (make_request(c, &c->pub, req, EVHTTP_REQ_POST, "/publish") == 0)
    c->pub_busy = true;
}

/* ---- relay ---- */

static void on_relay_error(enum evhttp_request_error err, void *arg) {
  struct rdv_client *c = arg;
  c->relay_err = err;
  c->relay_failed = true;
}

static void on_relay_done(struct evhttp_request *req, void *arg) {
  struct rdv_client *c = arg;
  int code = req ? evhttp_request_get_response_code(req) : 0;
  int status;
  struct rdv_relay_info info;
  memset(&info, 0, sizeof(info));
  if (c->relay_failed || code == 0) {
    char buf[384];
    bool tls;
    const char *why = conn_reason(&c->relay, c->relay_err, buf, sizeof(buf), &tls);
    if (tls)
      report(c, "%s", why);
    switch (c->relay_err) {
    case EVREQ_HTTP_TIMEOUT:
      status = GOOP_ETIMEDOUT;
      break;
    case EVREQ_HTTP_DATA_TOO_LONG:
      status = GOOP_EMSGSIZE;
      break;
    case EVREQ_HTTP_INVALID_HEADER:
      status = GOOP_EPROTO;
      break;
    default:
      status = GOOP_EIO;
    }
  } else if (code == 404 || code == 502) {
    status = GOOP_ENOENT;
  } else if (code != 200) {
    status = GOOP_EPROTO;
  } else {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > RDV_RELAY_MAX_BODY)
      status = GOOP_EMSGSIZE;
    else
      status = rdv_relay_parse(evbuffer_pullup(in, -1), len, &info);
  }
  /* The connection is still in use by evhttp until this returns. */
  conn_free(&c->relay_old);
  c->relay_old = c->relay;
  memset(&c->relay, 0, sizeof(c->relay));
  struct timeval now = {0, 0};
  evtimer_add(c->gc, &now);
  rdv_client_relay_fn fn = c->relay_fn;
  void *ud = c->relay_ud;
  c->relay_fn = NULL;
  c->relay_ud = NULL;
  fn(status, status == 0 ? info.peer_id : NULL, status == 0 ? (const char *const *)info.addrs : NULL,
     status == 0 ? info.n_addrs : 0, ud);
  rdv_relay_info_clear(&info);
}

int rdv_client_fetch_relay(struct rdv_client *c, rdv_client_relay_fn fn, void *ud) {
  if (!c || !fn)
    return GOOP_EINVAL;
  if (c->relay.http)
    return GOOP_EBUSY;
  if (conn_new(c, RDV_RELAY_TIMEOUT_S, &c->relay) != 0)
    return GOOP_ENOMEM;
  evhttp_connection_set_max_body_size(c->relay.http, RDV_RELAY_MAX_BODY);
  struct evhttp_request *req = request_new(c, on_relay_done);
  if (!req) {
    conn_free(&c->relay);
    return GOOP_ENOMEM;
  }
  evhttp_request_set_error_cb(req, on_relay_error);
  struct evkeyvalq *h = evhttp_request_get_output_headers(req);
  evhttp_add_header(h, "Accept", "application/json");
  evhttp_add_header(h, "Connection", "close");
  c->relay_failed = false;
  c->relay_err = EVREQ_HTTP_REQUEST_CANCEL;
  c->relay_fn = fn;
  c->relay_ud = ud;
  if (make_request(c, &c->relay, req, EVHTTP_REQ_GET, "/relay") != 0) {
    c->relay_fn = NULL;
    c->relay_ud = NULL;
    conn_free(&c->relay);
    return GOOP_ENOMEM;
  }
  return 0;
}

void rdv_client_free(struct rdv_client *c) {
  if (!c)
    return;
  if (c->retry)
    event_free(c->retry);
  c->retry = NULL;
  if (c->gc)
    event_free(c->gc);
  c->gc = NULL;
  /* Freeing a connection cancels its requests without calling their callbacks. */
  conn_free(&c->sse);
  conn_free(&c->pub);
  conn_free(&c->relay);
  conn_free(&c->relay_old);
  if (c->ssl_ctx)
    SSL_CTX_free(c->ssl_ctx);
  free(c->url);
  free(c->host);
  free(c->host_hdr);
  free(c->prefix);
  free(c->self_id);
  rdv_sse_free(&c->sse_parser);
  free(c);
}
