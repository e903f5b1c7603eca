/*
 * The libp2p host: configuration, listeners, dialling, the connection table,
 * protocol handlers, the peerstore and deferred callbacks.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <goop/version.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/multiaddr.h"
#include "transport-internal.h"

/* ---- configuration ----------------------------------------------------------------- */

static const uint64_t opt_default[GOOP_HOST_NOPTS] = {
    [GOOP_HOST_MAX_CONNS] = 256,
    [GOOP_HOST_MAX_PENDING_HANDSHAKES] = 64,
    [GOOP_HOST_MAX_STREAMS_PER_CONN] = 1000,
    [GOOP_HOST_HANDSHAKE_TIMEOUT_MS] = 15000,
    [GOOP_HOST_NEGOTIATION_TIMEOUT_MS] = 10000,
    [GOOP_HOST_IDLE_TIMEOUT_MS] = 120000,
    [GOOP_HOST_KEEPALIVE_MS] = 15000,
    [GOOP_HOST_KEEPALIVE_TIMEOUT_MS] = 10000,
    [GOOP_HOST_STREAM_BUFFER] = 256u << 10,
    [GOOP_HOST_MAX_WINDOW] = 16u << 20,
    [GOOP_HOST_HOLE_PUNCHING] = 1,
};

int goop_host_config_new(goop_host_config **ret) {
  goop_return_val_if_fail(ret != NULL, GOOP_EINVAL);
  goop_host_config *cfg = calloc(1, sizeof(*cfg));
  if (!cfg)
    return GOOP_ENOMEM;
  memcpy(cfg->opt, opt_default, sizeof(cfg->opt));
  *ret = cfg;
  return 0;
}

void goop_host_config_free(goop_host_config *cfg) {
  if (!cfg)
    return;
  free(cfg->agent);
  free(cfg);
}

int goop_host_config_set(goop_host_config *cfg, enum goop_host_option opt, uint64_t value) {
  goop_return_val_if_fail(cfg != NULL, GOOP_EINVAL);
  switch (opt) {
  case GOOP_HOST_MAX_CONNS:
  case GOOP_HOST_MAX_PENDING_HANDSHAKES:
  case GOOP_HOST_MAX_STREAMS_PER_CONN:
    if (value < 1 || value > 1000000)
      return GOOP_EINVAL;
    break;
  case GOOP_HOST_HANDSHAKE_TIMEOUT_MS:
  case GOOP_HOST_NEGOTIATION_TIMEOUT_MS:
  case GOOP_HOST_KEEPALIVE_TIMEOUT_MS:
    if (value < 10 || value > 3600000)
      return GOOP_EINVAL;
    break;
  case GOOP_HOST_IDLE_TIMEOUT_MS:
  case GOOP_HOST_KEEPALIVE_MS:
    if (value > 86400000)
      return GOOP_EINVAL;
    break;
  case GOOP_HOST_STREAM_BUFFER:
    if (value < 1024 || value > (64u << 20))
      return GOOP_EINVAL;
    break;
  case GOOP_HOST_MAX_WINDOW:
    if (value < GOOP_YAMUX_DEFAULT_WINDOW || value > (1u << 30))
      return GOOP_EINVAL;
    break;
  case GOOP_HOST_HOLE_PUNCHING:
    if (value > 1)
      return GOOP_EINVAL;
    break;
  default:
    return GOOP_EINVAL;
  }
  cfg->opt[opt] = value;
  return 0;
}

int goop_host_config_set_agent(goop_host_config *cfg, const char *agent) {
  goop_return_val_if_fail(cfg && agent && strlen(agent) < GOOP_ID_MAX_STR && !strchr(agent, '\n'),
                          GOOP_EINVAL);
  char *a = strdup(agent);
  if (!a)
    return GOOP_ENOMEM;
  free(cfg->agent);
  cfg->agent = a;
  return 0;
}

uint64_t goop__host_opt(const goop_host *h, enum goop_host_option o) {
  return h->opt[o];
}

/* ---- re-entrancy and teardown -------------------------------------------------------- */

static void host_destroy(goop_host *h);

void goop__host_enter(goop_host *h) {
  h->depth++;
}

bool goop__host_leave(goop_host *h) {
  if (--h->depth == 0 && h->free_requested) {
    host_destroy(h);
    return true;
  }
  return false;
}

/* ---- deferred connect callbacks ---------------------------------------------------------- */

static void deferred_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  goop_host *h = arg;
  goop__host_enter(h);
  /* Run in FIFO order; callbacks may queue more (they run on the next pass). */
  struct goop__deferred *list = h->deferred, *rev = NULL;
  h->deferred = NULL;
  while (list) {
    struct goop__deferred *n = list->next;
    list->next = rev;
    rev = list;
    list = n;
  }
  while (rev && !h->free_requested) {
    struct goop__deferred *d = rev;
    rev = d->next;
    d->cb(h, d->status, d->status == 0 ? d->conn : NULL, d->ud);
    goop_conn_unref(d->conn);
    free(d);
  }
  while (rev) { /* host is going away: the rest are cancelled in host_destroy */
    struct goop__deferred *d = rev;
    rev = d->next;
    d->next = h->deferred;
    h->deferred = d;
  }
  goop__host_leave(h);
}

static int defer_connect(goop_host *h, goop_connect_cb cb, void *ud, int status, goop_conn *c) {
  struct goop__deferred *d = calloc(1, sizeof(*d));
  if (!d)
    return GOOP_ENOMEM;
  d->cb = cb;
  d->ud = ud;
  d->status = status;
  d->conn = c ? goop_conn_ref(c) : NULL;
  d->next = h->deferred;
  h->deferred = d;
  event_active(h->deferred_ev, 0, 0);
  return 0;
}

/* ---- peerstore ----------------------------------------------------------------------------- */

#define GOOP_PEERSTORE_MAX_ADDRS 64
#define GOOP_PEERSTORE_MAX_PEERS 4096

struct goop__peer *goop__peerstore_get(goop_host *h, const goop_peer_id *id, bool create) {
  for (size_t i = 0; i < h->n_peers; i++)
    if (goop_peer_id_equal(&h->peers[i].id, id))
      return &h->peers[i];
  if (!create || h->n_peers >= GOOP_PEERSTORE_MAX_PEERS)
    return NULL;
  struct goop__peer *np = realloc(h->peers, (h->n_peers + 1) * sizeof(*np));
  if (!np)
    return NULL;
  h->peers = np;
  struct goop__peer *p = &h->peers[h->n_peers++];
  memset(p, 0, sizeof(*p));
  p->id = *id;
  return p;
}

static void peer_prune(struct goop__peer *p, goop_tstamp now) {
  size_t o = 0;
  for (size_t i = 0; i < p->n_addrs; i++) {
    if (p->addrs[i].expires && p->addrs[i].expires <= now) {
      free(p->addrs[i].ma);
      continue;
    }
    p->addrs[o++] = p->addrs[i];
  }
  p->n_addrs = o;
}

int goop__peerstore_add_bin(goop_host *h, const goop_peer_id *id, const uint8_t *ma, size_t len,
                            uint32_t ttl_s) {
  if (goop_ma_validate(ma, len) != 0)
    return GOOP_EPARSE;
  struct goop__peer *p = goop__peerstore_get(h, id, true);
  if (!p)
    return GOOP_ELIMIT;
  goop_tstamp now = goop__now_us();
  peer_prune(p, now);
  goop_tstamp exp = ttl_s ? now + (goop_tstamp)ttl_s * 1000000u : 0;
  for (size_t i = 0; i < p->n_addrs; i++) {
    if (p->addrs[i].len == len && memcmp(p->addrs[i].ma, ma, len) == 0) {
      /* Extend, never shorten; permanent stays permanent. */
      if (p->addrs[i].expires && (!exp || exp > p->addrs[i].expires))
        p->addrs[i].expires = exp;
      return 0;
    }
  }
  if (p->n_addrs >= GOOP_PEERSTORE_MAX_ADDRS)
    return GOOP_ELIMIT;
  struct goop__peer_addr *na = realloc(p->addrs, (p->n_addrs + 1) * sizeof(*na));
  if (!na)
    return GOOP_ENOMEM;
  p->addrs = na;
  uint8_t *copy = malloc(len);
  if (!copy)
    return GOOP_ENOMEM;
  memcpy(copy, ma, len);
  p->addrs[p->n_addrs++] = (struct goop__peer_addr){copy, len, exp};
  return 0;
}

/* Split a trailing /p2p/<id> off a binary multiaddr. Returns the length without it. */
static size_t strip_p2p(const uint8_t *ma, size_t len, goop_peer_id *ret_peer, bool *ret_has) {
  size_t off = 0, last = 0, prev_off = 0;
  goop_ma_component c, lastc = {0};
  *ret_has = false;
  while (goop_ma_next(ma, len, &off, &c) == 1) {
    last = prev_off;
    lastc = c;
    prev_off = off;
  }
  if (lastc.code == GOOP_MA_P2P && goop_peer_id_from_bytes(lastc.value, lastc.value_len, ret_peer) == 0) {
    *ret_has = true;
    return last;
  }
  return len;
}

int goop_host_add_addr(goop_host *host, const goop_peer_id *peer, const char *multiaddr, uint32_t ttl_s) {
  goop_return_val_if_fail(host && peer && multiaddr, GOOP_EINVAL);
  goop_buf b;
  goop_buf_init(&b, GOOP_MA_MAX);
  int rc = goop_ma_from_string(multiaddr, &b);
  if (rc) {
    goop_buf_free(&b);
    return GOOP_EPARSE;
  }
  goop_peer_id embedded;
  bool has;
  size_t len = strip_p2p(b.data, b.len, &embedded, &has);
  if (has && !goop_peer_id_equal(&embedded, peer))
    rc = GOOP_EPEERID;
  else if (len == 0)
    rc = GOOP_EPARSE;
  else
    rc = goop__peerstore_add_bin(host, peer, b.data, len, ttl_s);
  goop_buf_free(&b);
  return rc;
}

int goop_host_peer_addr(goop_host *host, const goop_peer_id *peer, size_t i, char *buf, size_t buf_len) {
  goop_return_val_if_fail(host && peer && buf, GOOP_EINVAL);
  struct goop__peer *p = goop__peerstore_get(host, peer, false);
  if (!p)
    return GOOP_ENOENT;
  peer_prune(p, goop__now_us());
  if (i >= p->n_addrs)
    return GOOP_ENOENT;
  int rc = goop_ma_to_string(p->addrs[i].ma, p->addrs[i].len, buf, buf_len);
  return rc < 0 ? GOOP_EINVAL : rc;
}

const char *goop_host_peer_protocol(goop_host *host, const goop_peer_id *peer, size_t i) {
  goop_return_val_if_fail(host && peer, NULL);
  struct goop__peer *p = goop__peerstore_get(host, peer, false);
  if (!p || i >= p->n_protocols)
    return NULL;
  return p->protocols[i];
}

const char *goop_host_peer_agent(goop_host *host, const goop_peer_id *peer) {
  goop_return_val_if_fail(host && peer, NULL);
  struct goop__peer *p = goop__peerstore_get(host, peer, false);
  return p ? p->agent : NULL;
}

static void peers_free(goop_host *h) {
  for (size_t i = 0; i < h->n_peers; i++) {
    struct goop__peer *p = &h->peers[i];
    for (size_t j = 0; j < p->n_addrs; j++)
      free(p->addrs[j].ma);
    free(p->addrs);
    for (size_t j = 0; j < p->n_protocols; j++)
      free(p->protocols[j]);
    free(p->protocols);
    free(p->agent);
  }
  free(h->peers);
  h->peers = NULL;
  h->n_peers = 0;
}

/* ---- handlers ------------------------------------------------------------------------------- */

const struct goop__handler *goop__host_find_handler(const goop_host *h, const char *proto) {
  if (!proto)
    return NULL;
  for (size_t i = 0; i < h->n_handlers; i++)
    if (strcmp(h->handlers[i].proto, proto) == 0)
      return &h->handlers[i];
  return NULL;
}

bool goop__host_handler_supported(const char *proto, void *ud) {
  return goop__host_find_handler(ud, proto) != NULL;
}

int goop_host_set_stream_handler(goop_host *host, const char *protocol, goop_stream_handler fn,
                                 void *user_data) {
  goop_return_val_if_fail(host && protocol && fn, GOOP_EINVAL);
  size_t plen = strlen(protocol);
  goop_return_val_if_fail(plen > 0 && plen < GOOP_MSS_MSG_MAX - 1 && !strchr(protocol, '\n'), GOOP_EINVAL);
  for (size_t i = 0; i < host->n_handlers; i++) {
    if (strcmp(host->handlers[i].proto, protocol) == 0) {
      host->handlers[i].fn = fn;
      host->handlers[i].ud = user_data;
      return 0;
    }
  }
  struct goop__handler *nh = realloc(host->handlers, (host->n_handlers + 1) * sizeof(*nh));
  if (!nh)
    return GOOP_ENOMEM;
  host->handlers = nh;
  char *p = strdup(protocol);
  if (!p)
    return GOOP_ENOMEM;
  host->handlers[host->n_handlers++] = (struct goop__handler){p, fn, user_data};
  return 0;
}

int goop_host_remove_stream_handler(goop_host *host, const char *protocol) {
  goop_return_val_if_fail(host && protocol, GOOP_EINVAL);
  for (size_t i = 0; i < host->n_handlers; i++) {
    if (strcmp(host->handlers[i].proto, protocol) == 0) {
      free(host->handlers[i].proto);
      host->handlers[i] = host->handlers[--host->n_handlers];
      return 0;
    }
  }
  return GOOP_ENOENT;
}

/* ---- listeners ---------------------------------------------------------------------------- */

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int socklen,
                      void *arg) {
  (void)l;
  goop_host *h = arg;
  goop__host_enter(h);
  char addr[160] = "?";
  (void)goop__sockaddr_to_ma(sa, addr, sizeof(addr));
  if (h->n_pending_inbound >= goop__host_opt(h, GOOP_HOST_MAX_PENDING_HANDSHAKES) ||
      h->n_conns_ready >= goop__host_opt(h, GOOP_HOST_MAX_CONNS)) {
    goop__log_info(h->ctx, "refusing connection from %s: connection limit reached", addr);
    evutil_closesocket(fd);
    goto out;
  }
  evutil_make_socket_nonblocking(fd);
  struct bufferevent *bev = bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (!bev) {
    evutil_closesocket(fd);
    goto out;
  }
  goop__pipe *pipe;
  if (goop__tcp_pipe_new(bev, sa, (socklen_t)socklen, &pipe) != 0) {
    bufferevent_free(bev);
    goto out;
  }
  goop_conn *c;
  goop_peer_id punch_peer;
  int role = goop__dcutr_accept_role(h, sa, &punch_peer);
  if (goop__conn_new_role(h, pipe, false, role > 0, role >= 0 ? &punch_peer : NULL, &c) == 0) {
    c->counted_pending = true;
    h->n_pending_inbound++;
    goop__log_debug(h->ctx, "inbound connection from %s", addr);
  }
out:
  goop__host_leave(h);
}

static void listener_error_cb(struct evconnlistener *l, void *arg) {
  (void)l;
  goop_host *h = arg;
  int e = EVUTIL_SOCKET_ERROR();
  goop__log_warn(h->ctx, "accept failed: %s", evutil_socket_error_to_string(e));
}

int goop_host_listen(goop_host *host, const char *multiaddr) {
  goop_return_val_if_fail(host && multiaddr, GOOP_EINVAL);
  goop_buf b;
  goop_buf_init(&b, GOOP_MA_MAX);
  if (goop_ma_from_string(multiaddr, &b) != 0) {
    goop_buf_free(&b);
    return GOOP_EPARSE;
  }
  struct sockaddr_storage ss;
  socklen_t sl = 0;
  bool has_peer;
  int rc = goop__ma_to_sockaddr(b.data, b.len, &ss, &sl, NULL, &has_peer);
  goop_buf_free(&b);
  if (rc || has_peer)
    return GOOP_EPARSE;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return goop__from_errno(errno);
  int one = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (ss.ss_family == AF_INET6)
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 128) != 0) {
    rc = goop__from_errno(errno);
    close(fd);
    return rc;
  }
  struct sockaddr_storage bound;
  socklen_t bl = sizeof(bound);
  getsockname(fd, (struct sockaddr *)&bound, &bl);
  struct goop__listener *nl = realloc(host->listeners, (host->n_listeners + 1) * sizeof(*nl));
  if (!nl) {
    close(fd);
    return GOOP_ENOMEM;
  }
  host->listeners = nl;
  struct evconnlistener *l =
      evconnlistener_new(host->base, accept_cb, host, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
  if (!l) {
    close(fd);
    return GOOP_ENOMEM;
  }
  evconnlistener_set_error_cb(l, listener_error_cb);
  struct goop__listener *L = &host->listeners[host->n_listeners++];
  memset(L, 0, sizeof(*L));
  L->l = l;
  L->family = ss.ss_family;
  (void)goop__sockaddr_to_ma((struct sockaddr *)&bound, L->text, sizeof(L->text));
  goop__log_info(host->ctx, "listening on %s", L->text);
  return 0;
}

static int copy_out(const char *s, char *buf, size_t len) {
  size_t n = strlen(s);
  if (n + 1 > len)
    return GOOP_EINVAL;
  memcpy(buf, s, n + 1);
  return (int)n;
}

int goop_host_listen_addr(const goop_host *host, size_t i, char *buf, size_t buf_len) {
  goop_return_val_if_fail(host && buf, GOOP_EINVAL);
  if (i >= host->n_listeners)
    return GOOP_ENOENT;
  return copy_out(host->listeners[i].text, buf, buf_len);
}

static bool is_unspecified(const char *text) {
  return strncmp(text, "/ip4/0.0.0.0/", 13) == 0 || strncmp(text, "/ip6/::/", 8) == 0;
}

/* After the listen and observed addresses: circuit addresses of active reservations. */
static int announce_circuit_addr(const goop_host *host, size_t i, char *buf, size_t buf_len) {
  char tmp[256];
  size_t n_obs = 0;
  while (goop_host_observed_addr(host, n_obs, tmp, sizeof(tmp)) != GOOP_ENOENT)
    n_obs++;
  return goop__circuit_announce_addr(host, i - n_obs, buf, buf_len);
}

int goop_host_announce_addr(const goop_host *host, size_t i, char *buf, size_t buf_len) {
  goop_return_val_if_fail(host && buf, GOOP_EINVAL);
  size_t k = 0;
  for (size_t li = 0; li < host->n_listeners; li++) {
    const struct goop__listener *L = &host->listeners[li];
    if (!is_unspecified(L->text)) {
      if (k++ == i)
        return copy_out(L->text, buf, buf_len);
      continue;
    }
    const char *port = strstr(L->text, "/tcp/");
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) != 0)
      continue;
    for (struct ifaddrs *p = ifa; p; p = p->ifa_next) {
      if (!p->ifa_addr || !(p->ifa_flags & IFF_UP) || p->ifa_addr->sa_family != L->family)
        continue;
      char ip[INET6_ADDRSTRLEN];
      if (L->family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)p->ifa_addr)->sin_addr, ip, sizeof(ip));
      } else {
        struct in6_addr *a6 = &((struct sockaddr_in6 *)p->ifa_addr)->sin6_addr;
        if (IN6_IS_ADDR_LINKLOCAL(a6))
          continue;
        inet_ntop(AF_INET6, a6, ip, sizeof(ip));
      }
      if (k++ == i) {
        char tmp[200];
        snprintf(tmp, sizeof(tmp), "/%s/%s%s", L->family == AF_INET ? "ip4" : "ip6", ip, port ? port : "");
        freeifaddrs(ifa);
        return copy_out(tmp, buf, buf_len);
      }
    }
    freeifaddrs(ifa);
  }
  int rc = goop_host_observed_addr(host, i - k, buf, buf_len);
  if (rc != GOOP_ENOENT)
    return rc;
  return announce_circuit_addr(host, i - k, buf, buf_len);
}

/* ---- dialling --------------------------------------------------------------------------------- */

static int dial_start_circuits(struct goop__dial *d);
static void dial_circ_free(struct goop__dial *d);

static void dial_free(struct goop__dial *d) {
  goop_host *h = d->host;
  GOOP_DL_REMOVE(h->dials, d, next, prev);
  dial_circ_free(d);
  while (d->attempts) {
    struct goop__attempt *a = d->attempts;
    d->attempts = a->next;
    if (a->circuit)
      goop__circuit_dial_cancel(a->circuit);
    if (a->bev)
      bufferevent_free(a->bev);
    if (a->conn) {
      a->conn->dial = NULL;
      if (a->conn->state != GOOP_CONN_READY)
        goop__conn_close(a->conn, GOOP_ECANCELED);
    }
    free(a);
  }
  if (d->timer)
    event_free(d->timer);
  free(d);
}

/* Finish a dial: every request gets |status| (and |c| on success). */
static void dial_finish(struct goop__dial *d, int status, goop_conn *c) {
  goop_host *h = d->host;
  struct goop__connect_req *r = d->reqs;
  d->reqs = NULL;
  while (r) {
    struct goop__connect_req *n = r->next;
    if (defer_connect(h, r->cb, r->ud, status, c) != 0)
      r->cb(h, GOOP_ENOMEM, NULL, r->ud);
    free(r);
    r = n;
  }
  dial_free(d);
}

static void dial_timeout_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct goop__dial *d = arg;
  goop_host *h = d->host;
  goop__host_enter(h);
  /* A relay's refusal (limits) says more than the timeout of the other attempts. */
  dial_finish(d, d->last_err == GOOP_ELIMIT ? GOOP_ELIMIT : GOOP_ETIMEDOUT, NULL);
  goop__host_leave(h);
}

static void attempt_failed(struct goop__attempt *a, int err) {
  struct goop__dial *d = a->dial;
  if (d->punch) {
    char to[160] = "?";
    (void)goop__sockaddr_to_ma((struct sockaddr *)&a->sa, to, sizeof(to));
    goop__log_debug(d->host->ctx, "hole punch: dial to %s from the listen port: %s", to, goop_strerror(err));
  }
  struct goop__attempt **pp = &d->attempts;
  while (*pp && *pp != a)
    pp = &(*pp)->next;
  if (*pp)
    *pp = a->next;
  if (a->circuit)
    goop__circuit_dial_cancel(a->circuit);
  if (a->bev)
    bufferevent_free(a->bev);
  if (a->conn)
    a->conn->dial = NULL;
  free(a);
  /* Prefer the most telling error: identity failures, then a relay's refusal (limits), over refusals. */
  if (!d->last_err || err == GOOP_EPEERID || (err == GOOP_ELIMIT && d->last_err != GOOP_EPEERID) ||
      (d->last_err == GOOP_ECONNREFUSED && err != GOOP_ECANCELED))
    d->last_err = err;
  if (!d->attempts && dial_start_circuits(d) == 0)
    dial_finish(d, d->last_err ? d->last_err : GOOP_ECONNREFUSED, NULL);
}

static void attempt_event_cb(struct bufferevent *bev, short what, void *arg) {
  struct goop__attempt *a = arg;
  goop_host *h = a->dial->host;
  goop__host_enter(h);
  if (what & BEV_EVENT_CONNECTED) {
    a->bev = NULL;
    goop__pipe *pipe;
    int rc = goop__tcp_pipe_new(bev, (struct sockaddr *)&a->sa, a->sa_len, &pipe);
    if (rc) {
      bufferevent_free(bev);
      attempt_failed(a, rc);
      goto out;
    }
    goop_conn *c;
    bool initiator = a->dial->punch ? a->dial->initiator : true;
    rc = goop__conn_new_role(h, pipe, true, initiator, a->dial->has_peer ? &a->dial->peer : NULL, &c);
    if (rc) {
      attempt_failed(a, rc);
      goto out;
    }
    a->conn = c;
    c->from_listen_port = a->from_listen;
    c->dial = a->dial;
  } else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT)) {
    int e = EVUTIL_SOCKET_ERROR();
    attempt_failed(a, e ? goop__from_errno(e) : GOOP_ECONNREFUSED);
  }
out:
  goop__host_leave(h);
}

/*
 * Connect |a| from the port of a listener of the same family: the socket is
 * bound to the listener's address and port with SO_REUSEADDR + SO_REUSEPORT
 * before connect(). A NAT then maps our outbound connections to the port peers
 * observe (identify), and hole punching needs exactly that (DCUtR dials go
 * out from the listen port; TCP simultaneous open needs both ends fixed).
 * Returns 0 with the attempt linked and connecting, or GOOP_E* (nothing
 * linked; the caller may fall back to an ordinary dial).
 */
static int connect_from_listen_port(struct goop__dial *d, struct goop__attempt *a) {
  goop_host *h = d->host;
  int family = a->sa.ss_family;
  struct sockaddr_storage local;
  socklen_t ll = 0;
  for (size_t i = 0; i < h->n_listeners && !ll; i++) {
    if (h->listeners[i].family != family)
      continue;
    ll = sizeof(local);
    if (getsockname(evconnlistener_get_fd(h->listeners[i].l), (struct sockaddr *)&local, &ll) != 0)
      ll = 0;
  }
  if (!ll)
    return GOOP_ENOADDR;
  evutil_socket_t fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return goop__from_errno(errno);
  int one = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (family == AF_INET6)
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, (struct sockaddr *)&local, ll) != 0) {
    int rc = goop__from_errno(errno);
    close(fd);
    return rc;
  }
  a->bev = bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (!a->bev) {
    close(fd);
    return GOOP_ENOMEM;
  }
  /* The 4-tuple may be taken (a connection from the listen port to that
   * address exists or lingers in TIME_WAIT): connect() then fails at once. */
  if (bufferevent_socket_connect(a->bev, (struct sockaddr *)&a->sa, (int)a->sa_len) != 0) {
    int e = EVUTIL_SOCKET_ERROR();
    bufferevent_free(a->bev);
    a->bev = NULL;
    return e ? goop__from_errno(e) : GOOP_EADDRINUSE;
  }
  bufferevent_setcb(a->bev, NULL, NULL, attempt_event_cb, a);
  a->from_listen = true;
  char to[160] = "?";
  (void)goop__sockaddr_to_ma((struct sockaddr *)&a->sa, to, sizeof(to));
  goop__log_debug(h->ctx, "%sdialling %s from the listen port", d->punch ? "hole punch: " : "", to);
  a->next = d->attempts;
  d->attempts = a;
  return 0;
}

static int dial_start_attempt(struct goop__dial *d, const uint8_t *ma, size_t len) {
  goop_host *h = d->host;
  struct goop__attempt *a = calloc(1, sizeof(*a));
  if (!a)
    return GOOP_ENOMEM;
  a->dial = d;
  goop_peer_id p;
  bool has;
  if (goop__ma_to_sockaddr(ma, len, &a->sa, &a->sa_len, &p, &has) != 0) {
    free(a);
    return GOOP_ENOTSUP;
  }
  if (d->punch || goop__host_opt(h, GOOP_HOST_HOLE_PUNCHING)) {
    int rc = connect_from_listen_port(d, a);
    if (rc == 0)
      return 0;
    if (d->punch) {
      free(a);
      return rc;
    }
  }
  a->bev = bufferevent_socket_new(h->base, -1, BEV_OPT_CLOSE_ON_FREE);
  if (!a->bev) {
    free(a);
    return GOOP_ENOMEM;
  }
  bufferevent_setcb(a->bev, NULL, NULL, attempt_event_cb, a);
  a->next = d->attempts;
  d->attempts = a;
  if (bufferevent_socket_connect(a->bev, (struct sockaddr *)&a->sa, (int)a->sa_len) != 0) {
    int e = EVUTIL_SOCKET_ERROR();
    d->attempts = a->next;
    bufferevent_free(a->bev);
    free(a);
    return e ? goop__from_errno(e) : GOOP_ECONNREFUSED;
  }
  return 0;
}

/* ---- dialling through relays (the protocol work is in circuit.c) ------------------------------ */

/* After this long with direct attempts still running, circuit addresses are tried too. */
#define GOOP_CIRCUIT_DIAL_DELAY_MS 2000

static void dial_circ_free(struct goop__dial *d) {
  for (size_t i = 0; i < d->n_circ; i++)
    free(d->circ[i].ma);
  free(d->circ);
  d->circ = NULL;
  d->n_circ = 0;
  if (d->circ_timer)
    event_free(d->circ_timer);
  d->circ_timer = NULL;
}

/* Remember a circuit address to try after the direct ones. */
static int dial_add_circuit(struct goop__dial *d, const uint8_t *ma, size_t len) {
  if (d->n_circ >= 8)
    return 0;
  struct goop__peer_addr *n = realloc(d->circ, (d->n_circ + 1) * sizeof(*n));
  if (!n)
    return GOOP_ENOMEM;
  d->circ = n;
  uint8_t *copy = malloc(len);
  if (!copy)
    return GOOP_ENOMEM;
  memcpy(copy, ma, len);
  d->circ[d->n_circ++] = (struct goop__peer_addr){copy, len, 0};
  return 0;
}

/* Start the circuit attempts (once). Returns how many run. */
static int dial_start_circuits(struct goop__dial *d) {
  if (d->circ_started || d->n_circ == 0)
    return 0;
  d->circ_started = true;
  int started = 0;
  for (size_t i = 0; i < d->n_circ; i++) {
    struct goop__attempt *a = calloc(1, sizeof(*a));
    if (!a)
      break;
    a->dial = d;
    a->next = d->attempts;
    d->attempts = a;
    int rc = goop__circuit_dial_start(a, d->circ[i].ma, d->circ[i].len);
    if (rc) {
      d->attempts = a->next;
      free(a);
      if (!d->last_err || d->last_err == GOOP_ECONNREFUSED)
        d->last_err = rc;
      continue;
    }
    started++;
  }
  dial_circ_free(d);
  return started;
}

static void dial_circ_timer_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct goop__dial *d = arg;
  goop_host *h = d->host;
  goop__host_enter(h);
  (void)dial_start_circuits(d);
  goop__host_leave(h);
}

void goop__host_attempt_failed(struct goop__attempt *a, int err) {
  attempt_failed(a, err);
}

void goop__host_circuit_conn(struct goop__attempt *a, goop_conn *c) {
  a->conn = c;
  c->dial = a->dial;
}

static struct goop__dial *dial_new(goop_host *h, const goop_peer_id *peer, uint32_t timeout_ms) {
  struct goop__dial *d = calloc(1, sizeof(*d));
  if (!d)
    return NULL;
  d->host = h;
  if (peer) {
    d->peer = *peer;
    d->has_peer = true;
  }
  d->timer = evtimer_new(h->base, dial_timeout_cb, d);
  if (!d->timer) {
    free(d);
    return NULL;
  }
  uint64_t to = timeout_ms ? timeout_ms : 10000;
  struct timeval tv = {(time_t)(to / 1000), (suseconds_t)((to % 1000) * 1000)};
  evtimer_add(d->timer, &tv);
  GOOP_DL_PUSH(h->dials, d, next, prev);
  return d;
}

static int dial_add_req(struct goop__dial *d, goop_connect_cb cb, void *ud) {
  struct goop__connect_req *r = calloc(1, sizeof(*r));
  if (!r)
    return GOOP_ENOMEM;
  r->cb = cb;
  r->ud = ud;
  r->next = d->reqs;
  d->reqs = r;
  return 0;
}

struct goop_conn *goop__host_find_conn(goop_host *h, const goop_peer_id *peer) {
  /* A direct connection wins over a relayed one. */
  goop_conn *relayed = NULL;
  for (goop_conn *c = h->conns; c; c = c->next) {
    if (c->state == GOOP_CONN_READY && !c->draining && goop_peer_id_equal(&c->remote, peer)) {
      if (!c->relayed)
        return c;
      if (!relayed)
        relayed = c;
    }
  }
  return relayed;
}

goop_conn *goop_host_get_conn(goop_host *host, const goop_peer_id *peer) {
  goop_return_val_if_fail(host && peer, NULL);
  return goop__host_find_conn(host, peer);
}

size_t goop_host_num_conns(const goop_host *host) {
  return host ? host->n_conns_ready : 0;
}

int goop_host_connect(goop_host *host, const goop_peer_id *peer, uint32_t timeout_ms, goop_connect_cb cb,
                      void *user_data) {
  goop_return_val_if_fail(host && peer && cb, GOOP_EINVAL);
  if (host->free_requested)
    return GOOP_ECANCELED;
  if (goop_peer_id_equal(peer, &host->self))
    return GOOP_EINVAL;
  goop_conn *c = goop__host_find_conn(host, peer);
  if (c)
    return defer_connect(host, cb, user_data, 0, c);
  for (struct goop__dial *d = host->dials; d; d = d->next)
    if (d->has_peer && !d->punch && goop_peer_id_equal(&d->peer, peer))
      return dial_add_req(d, cb, user_data);
  struct goop__peer *p = goop__peerstore_get(host, peer, false);
  if (p)
    peer_prune(p, goop__now_us());
  if (!p || p->n_addrs == 0)
    return defer_connect(host, cb, user_data, GOOP_ENOADDR, NULL);
  struct goop__dial *d = dial_new(host, peer, timeout_ms);
  if (!d)
    return GOOP_ENOMEM;
  int rc = dial_add_req(d, cb, user_data);
  if (rc) {
    dial_free(d);
    return rc;
  }
  int started = 0, last = GOOP_ENOADDR;
  for (size_t i = 0; i < p->n_addrs && started < 8; i++) {
    size_t rl;
    goop_peer_id relay, target;
    bool has_target;
    if (goop__circuit_split(p->addrs[i].ma, p->addrs[i].len, &rl, &relay, &target, &has_target) == 1) {
      (void)dial_add_circuit(d, p->addrs[i].ma, p->addrs[i].len);
      continue;
    }
    int r = dial_start_attempt(d, p->addrs[i].ma, p->addrs[i].len);
    if (r == 0)
      started++;
    else if (r != GOOP_ENOTSUP || last == GOOP_ENOADDR)
      last = r == GOOP_ENOTSUP ? GOOP_ENOADDR : r;
  }
  if (!started) {
    d->last_err = last == GOOP_ENOADDR ? 0 : last;
    if (dial_start_circuits(d) == 0)
      dial_finish(d, d->last_err ? d->last_err : last, NULL);
  } else if (d->n_circ) {
    /* Direct addresses may be unreachable without a quick refusal (NAT): try
     * the relays too after a while. */
    d->circ_timer = evtimer_new(host->base, dial_circ_timer_cb, d);
    struct timeval tv = {GOOP_CIRCUIT_DIAL_DELAY_MS / 1000, (GOOP_CIRCUIT_DIAL_DELAY_MS % 1000) * 1000};
    if (d->circ_timer)
      evtimer_add(d->circ_timer, &tv);
  }
  return 0;
}

/* goop_host_connect_addr() of ".../p2p/R/p2p-circuit/p2p/B". */
static int connect_circuit_addr(goop_host *host, const uint8_t *ma, size_t len, uint32_t timeout_ms,
                                goop_connect_cb cb, void *user_data) {
  size_t rl;
  goop_peer_id relay, target;
  bool has_target;
  if (goop__circuit_split(ma, len, &rl, &relay, &target, &has_target) != 1 || !has_target)
    return GOOP_EPARSE;
  if (goop_peer_id_equal(&target, &host->self) || goop_peer_id_equal(&relay, &target) ||
      goop_peer_id_equal(&relay, &host->self))
    return GOOP_EINVAL;
  /* The address without "/p2p/<B>" (code 421: 2 bytes, a 1-byte length, the ID). */
  size_t slen = len - ((size_t)target.len + 3);
  (void)goop__peerstore_add_bin(host, &target, ma, slen, 3600);
  goop_conn *c = goop__host_find_conn(host, &target);
  if (c)
    return defer_connect(host, cb, user_data, 0, c);
  struct goop__dial *d = dial_new(host, &target, timeout_ms);
  if (!d)
    return GOOP_ENOMEM;
  int rc = dial_add_req(d, cb, user_data);
  if (!rc)
    rc = dial_add_circuit(d, ma, slen);
  if (rc) {
    dial_free(d);
    return rc;
  }
  if (dial_start_circuits(d) == 0)
    dial_finish(d, d->last_err ? d->last_err : GOOP_ECONNREFUSED, NULL);
  return 0;
}

int goop_host_connect_addr(goop_host *host, const char *multiaddr, uint32_t timeout_ms, goop_connect_cb cb,
                           void *user_data) {
  goop_return_val_if_fail(host && multiaddr && cb, GOOP_EINVAL);
  if (host->free_requested)
    return GOOP_ECANCELED;
  goop_buf b;
  goop_buf_init(&b, GOOP_MA_MAX);
  if (goop_ma_from_string(multiaddr, &b) != 0) {
    goop_buf_free(&b);
    return GOOP_EPARSE;
  }
  {
    size_t rl;
    goop_peer_id relay, target;
    bool has_target;
    int cr = goop__circuit_split(b.data, b.len, &rl, &relay, &target, &has_target);
    if (cr != 0) {
      int rc = cr < 0 ? GOOP_EPARSE : connect_circuit_addr(host, b.data, b.len, timeout_ms, cb, user_data);
      goop_buf_free(&b);
      return rc;
    }
  }
  goop_peer_id peer;
  bool has;
  size_t len = strip_p2p(b.data, b.len, &peer, &has);
  struct sockaddr_storage ss;
  socklen_t sl;
  int rc = goop__ma_to_sockaddr(b.data, len, &ss, &sl, NULL, NULL);
  if (rc) {
    goop_buf_free(&b);
    return rc == GOOP_ENOTSUP ? GOOP_ENOTSUP : GOOP_EPARSE;
  }
  if (has) {
    if (goop_peer_id_equal(&peer, &host->self)) {
      goop_buf_free(&b);
      return GOOP_EINVAL;
    }
    (void)goop__peerstore_add_bin(host, &peer, b.data, len, 3600);
    goop_conn *c = goop__host_find_conn(host, &peer);
    if (c && !c->relayed) { /* a direct address is dialled even when a relayed connection exists */
      goop_buf_free(&b);
      return defer_connect(host, cb, user_data, 0, c);
    }
  }
  struct goop__dial *d = dial_new(host, has ? &peer : NULL, timeout_ms);
  if (!d) {
    goop_buf_free(&b);
    return GOOP_ENOMEM;
  }
  rc = dial_add_req(d, cb, user_data);
  if (!rc) {
    int r = dial_start_attempt(d, b.data, len);
    if (r)
      dial_finish(d, r, NULL);
  } else {
    dial_free(d);
  }
  goop_buf_free(&b);
  return rc;
}

/*
 * A hole-punch dial found its 4-tuple taken: usually by an ordinary dial of
 * ours to the same address, still in SYN_SENT from the listen port (the
 * peer's address came from identify or presence). That socket is what the
 * punch needs (the NAT maps it and tracks its SYN, a fresh SYN could not be
 * sent anyway): move it into the punch dial, which gives it the punch's role
 * and lifetime. Returns true if one was taken over.
 */
static bool punch_adopt(struct goop__dial *pd, const uint8_t *ma, size_t len) {
  goop_host *h = pd->host;
  struct sockaddr_storage sa;
  socklen_t sl;
  if (goop__ma_to_sockaddr(ma, len, &sa, &sl, NULL, NULL) != 0)
    return false;
  for (struct goop__dial *d = h->dials; d; d = d->next) {
    if (d->punch || !d->has_peer || !goop_peer_id_equal(&d->peer, &pd->peer))
      continue;
    for (struct goop__attempt **pp = &d->attempts; *pp; pp = &(*pp)->next) {
      struct goop__attempt *a = *pp;
      if (!a->bev || a->conn || !a->from_listen || a->sa_len != sl || memcmp(&a->sa, &sa, sl) != 0)
        continue;
      *pp = a->next;
      a->dial = pd;
      a->next = pd->attempts;
      pd->attempts = a;
      /* The ordinary dial lost its last attempt: its callers get the connection we have. */
      goop_conn *c = goop__host_find_conn(h, &d->peer);
      if (!d->attempts && !d->n_circ && c)
        dial_finish(d, 0, c);
      return true;
    }
  }
  return false;
}

int goop__host_dial_punch(goop_host *h, const goop_peer_id *peer, const uint8_t *const *mas,
                          const size_t *lens, size_t n, bool initiator, uint32_t timeout_ms,
                          goop_connect_cb cb, void *ud) {
  if (h->free_requested)
    return GOOP_ECANCELED;
  struct goop__dial *d = dial_new(h, peer, timeout_ms);
  if (!d)
    return GOOP_ENOMEM;
  d->punch = true;
  d->initiator = initiator;
  int rc = dial_add_req(d, cb, ud);
  if (rc) {
    dial_free(d);
    return rc;
  }
  int started = 0, last = GOOP_ENOADDR;
  for (size_t i = 0; i < n; i++) {
    int r = dial_start_attempt(d, mas[i], lens[i]);
    if ((r == GOOP_EADDRNOTAVAIL || r == GOOP_EADDRINUSE) && punch_adopt(d, mas[i], lens[i])) {
      char to[160] = "?";
      (void)goop_ma_to_string(mas[i], lens[i], to, sizeof(to));
      goop__log_debug(h->ctx, "hole punch: taking over the pending dial to %s", to);
      r = 0;
    }
    if (r == 0) {
      started++;
    } else {
      char to[160] = "?";
      (void)goop_ma_to_string(mas[i], lens[i], to, sizeof(to));
      goop__log_debug(h->ctx, "hole punch: dial to %s from the listen port: %s", to, goop_strerror(r));
      last = r;
    }
  }
  if (!started)
    dial_finish(d, last, NULL); /* the callback still runs later (deferred) */
  return 0;
}

/* ---- connection table -------------------------------------------------------------------------- */

/* Which of two connections to the same peer survives: the one dialled by the smaller Peer ID. */
static const goop_peer_id *dialer_of(const goop_host *h, const goop_conn *c) {
  return c->outbound ? &h->self : &c->remote;
}

static int peer_id_cmp(const goop_peer_id *a, const goop_peer_id *b) {
  size_t n = GOOP_MIN(a->len, b->len);
  int r = memcmp(a->bytes, b->bytes, n);
  return r ? r : (int)a->len - (int)b->len;
}

/*
 * A direct connection replacing a relayed one (hole punching, or a direct dial
 * that finished later): it is announced as connected and the relayed one as
 * disconnected when it closes, so listeners that follow connections (and
 * whether they are relayed) see the move.
 */
static bool handover(goop_conn *c, goop_conn *other) {
  if (c->relayed || !other->relayed)
    return false;
  other->superseded = true;
  return true;
}

void goop__host_conn_ready(goop_host *h, goop_conn *c) {
  if (c->counted_pending) {
    c->counted_pending = false;
    h->n_pending_inbound--;
  }
  h->n_conns_ready++;
  goop_conn *other = goop__host_find_conn(h, &c->remote);
  if (other == c) {
    for (other = other->next; other; other = other->next)
      if (other->state == GOOP_CONN_READY && !other->draining &&
          goop_peer_id_equal(&other->remote, &c->remote))
        break;
  }
  goop_conn *keep = c;
  if (other) {
    keep = goop__dcutr_prefer(h, c, other);
    if (!keep && c->relayed != other->relayed)
      keep = c->relayed ? other : c; /* a direct connection beats a relayed one */
    if (!keep)
      keep = peer_id_cmp(dialer_of(h, c), dialer_of(h, other)) < 0 ? c : other;
    goop_conn *lose = keep == c ? other : c;
    lose->draining = true;
    goop__log_debug(h->ctx, "two connections to one peer: keeping the %s one",
                    keep->outbound ? "outbound" : "inbound");
  }
  /* Remember where the peer can be reached (its listen addresses come from identify). */
  if (c->dial) {
    struct goop__dial *d = c->dial;
    for (struct goop__attempt *a = d->attempts; a; a = a->next)
      if (a->conn == c)
        a->conn = NULL;
    c->dial = NULL;
    dial_finish(d, 0, keep);
  }
  if (keep == c && (!other || handover(c, other)))
    goop__host_emit(h, GOOP__EV_CONNECTED, c, 0);
  if (c->state == GOOP_CONN_READY)
    goop__services_start_identify(h, c);
  if (c->state == GOOP_CONN_READY)
    goop__dcutr_conn_ready(h, c);
}

void goop__host_conn_closed(goop_host *h, goop_conn *c, int reason, bool was_ready) {
  if (c->counted_pending) {
    c->counted_pending = false;
    h->n_pending_inbound--;
  }
  if (was_ready)
    h->n_conns_ready--;
  if (c->dial) {
    struct goop__dial *d = c->dial;
    c->dial = NULL;
    for (struct goop__attempt *a = d->attempts; a; a = a->next) {
      if (a->conn == c) {
        a->conn = NULL;
        attempt_failed(a, reason ? reason : GOOP_ECONNRESET);
        break;
      }
    }
  }
  bool notify = was_ready && !c->draining && !goop__host_find_conn(h, &c->remote);
  if (c->in_list) {
    c->in_list = false;
    GOOP_DL_REMOVE(h->conns, c, next, prev);
  }
  if (!h->free_requested && (notify || (was_ready && c->superseded) ||
                             (was_ready && c->draining && !goop__host_find_conn(h, &c->remote))))
    goop__host_emit(h, GOOP__EV_DISCONNECTED, c, reason);
  goop_conn_unref(c); /* the list reference */
}

/* ---- streams ------------------------------------------------------------------------------------- */

static void stream_req_free(struct goop__stream_req *r) {
  if (r->timer)
    event_free(r->timer);
  for (size_t i = 0; i < r->n; i++)
    free(r->protos[i]);
  free(r->protos);
  free(r);
}

static void stream_req_unqueue(struct goop__stream_req *r) {
  if (r->conn) {
    GOOP_DL_REMOVE(r->conn->waiting, r, next, prev);
    goop_conn_unref(r->conn);
    r->conn = NULL;
  }
}

static void stream_req_timeout(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct goop__stream_req *r = arg;
  goop_host *h = r->host;
  goop__host_enter(h);
  stream_req_unqueue(r);
  r->cb(h, GOOP_ETIMEDOUT, NULL, r->ud);
  stream_req_free(r);
  goop__host_leave(h);
}

/* Try to open; on a full SYN backlog queue on the connection. Consumes |r| unless queued. */
static void stream_req_try(goop_host *h, struct goop__stream_req *r, goop_conn *c) {
  int status = goop__conn_open_stream(c, (const char *const *)r->protos, r->n, r->timeout_ms, r->cb, r->ud);
  if (status == GOOP_ELIMIT && c->state == GOOP_CONN_READY) {
    if (!r->conn) {
      r->conn = goop_conn_ref(c);
      GOOP_DL_PUSH(c->waiting, r, next, prev);
      if (!r->timer) {
        r->timer = evtimer_new(h->base, stream_req_timeout, r);
        uint64_t to = r->timeout_ms ? r->timeout_ms : goop__host_opt(h, GOOP_HOST_NEGOTIATION_TIMEOUT_MS);
        struct timeval tv = {(time_t)(to / 1000), (suseconds_t)((to % 1000) * 1000)};
        if (r->timer)
          evtimer_add(r->timer, &tv);
      }
    }
    return;
  }
  stream_req_unqueue(r);
  if (status)
    r->cb(h, status, NULL, r->ud);
  stream_req_free(r);
}

void goop__host_retry_opens(goop_conn *c, int err) {
  goop_host *h = c->host;
  while (c->waiting) {
    struct goop__stream_req *r = c->waiting;
    if (err) {
      stream_req_unqueue(r);
      r->cb(h, err, NULL, r->ud);
      stream_req_free(r);
      continue;
    }
    /* Oldest first: the list head is the newest, so walk to the tail. */
    while (r->next)
      r = r->next;
    size_t before = 0;
    for (struct goop__stream_req *q = c->waiting; q; q = q->next)
      before++;
    stream_req_try(h, r, c);
    size_t after = 0;
    for (struct goop__stream_req *q = c->waiting; q; q = q->next)
      after++;
    if (after == before)
      break; /* still no room */
  }
}

static void stream_req_connected(goop_host *h, int status, goop_conn *c, void *ud) {
  struct goop__stream_req *r = ud;
  if (status == 0) {
    stream_req_try(h, r, c);
    return;
  }
  r->cb(h, status, NULL, r->ud);
  stream_req_free(r);
}

int goop_host_new_stream(goop_host *host, const goop_peer_id *peer, const char *const *protocols,
                         size_t n_protocols, uint32_t timeout_ms, goop_stream_open_cb cb, void *user_data) {
  goop_return_val_if_fail(host && peer && protocols && cb, GOOP_EINVAL);
  goop_return_val_if_fail(n_protocols >= 1 && n_protocols <= GOOP_MSS_MAX_PROPOSALS, GOOP_EINVAL);
  for (size_t i = 0; i < n_protocols; i++) {
    size_t l = protocols[i] ? strlen(protocols[i]) : 0;
    if (l == 0 || l >= GOOP_MSS_MSG_MAX - 1 || strchr(protocols[i], '\n'))
      return GOOP_EINVAL;
  }
  struct goop__stream_req *r = calloc(1, sizeof(*r));
  if (!r)
    return GOOP_ENOMEM;
  r->host = host;
  r->n = n_protocols;
  r->timeout_ms = timeout_ms;
  r->cb = cb;
  r->ud = user_data;
  r->protos = calloc(n_protocols, sizeof(char *));
  if (!r->protos) {
    free(r);
    return GOOP_ENOMEM;
  }
  for (size_t i = 0; i < n_protocols; i++) {
    r->protos[i] = strdup(protocols[i]);
    if (!r->protos[i]) {
      stream_req_free(r);
      return GOOP_ENOMEM;
    }
  }
  int rc = goop_host_connect(host, peer, timeout_ms, stream_req_connected, r);
  if (rc)
    stream_req_free(r);
  return rc;
}

/* ---- host lifecycle -------------------------------------------------------------------------------- */

int goop_host_new(goop_ctx *ctx, const goop_identity *id, const goop_host_config *cfg, goop_host **ret) {
  goop_return_val_if_fail(ctx && id && ret, GOOP_EINVAL);
  goop_return_val_if_fail(goop_ctx_get_base(ctx) != NULL, GOOP_EINVAL);
  goop_host *h = calloc(1, sizeof(*h));
  if (!h)
    return GOOP_ENOMEM;
  h->ctx = ctx;
  h->base = goop_ctx_get_base(ctx);
  memcpy(h->opt, cfg ? cfg->opt : opt_default, sizeof(h->opt));
  uint8_t key[GOOP_ED25519_PRIVKEY_PB_SIZE];
  goop_identity_to_bytes(id, key);
  int rc = goop_identity_from_bytes(key, sizeof(key), &h->id);
  goop__wipe(key, sizeof(key));
  if (rc)
    goto fail;
  goop_identity_peer_id(h->id, &h->self);
  rc = GOOP_ENOMEM;
  if (cfg && cfg->agent)
    h->agent = strdup(cfg->agent);
  else
    h->agent = strdup("libgoop/" GOOP_VERSION_STRING);
  h->deferred_ev = event_new(h->base, -1, 0, deferred_cb, h);
  if (!h->agent || !h->deferred_ev)
    goto fail;
  rc = goop__services_init(h);
  if (rc)
    goto fail;
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
    goop__log_warn(ctx, "SIGPIPE has its default action: a peer closing a connection while we write "
                        "would kill the process; call signal(SIGPIPE, SIG_IGN)");
  *ret = h;
  return 0;
fail:
  if (h->deferred_ev)
    event_free(h->deferred_ev);
  for (size_t i = 0; i < h->n_handlers; i++)
    free(h->handlers[i].proto);
  free(h->handlers);
  free(h->agent);
  goop_identity_free(h->id);
  free(h);
  return rc;
}

static void copy_events(struct goop_host_events *dst, const struct goop_host_events *ev) {
  memset(dst, 0, sizeof(*dst));
  if (ev && ev->version >= GOOP_HOST_EVENTS_V1) {
    dst->version = GOOP_HOST_EVENTS_V1;
    dst->on_connected = ev->on_connected;
    dst->on_disconnected = ev->on_disconnected;
    dst->on_identified = ev->on_identified;
  }
}

void goop_host_set_events(goop_host *host, const struct goop_host_events *ev, void *user_data) {
  if (!host)
    return;
  copy_events(&host->ev, ev);
  host->ev_ud = user_data;
}

goop_ctx *goop_host_get_ctx(const goop_host *host) {
  return host ? host->ctx : NULL;
}

int goop_host_add_events(goop_host *host, const struct goop_host_events *ev, void *user_data, int *ret_id) {
  goop_return_val_if_fail(host && ev && ev->version >= GOOP_HOST_EVENTS_V1, GOOP_EINVAL);
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(host->ev_extra); i++) {
    if (host->ev_extra[i].id == 0) {
      copy_events(&host->ev_extra[i].ev, ev);
      host->ev_extra[i].ud = user_data;
      host->ev_extra[i].id = ++host->ev_next_id;
      if (ret_id)
        *ret_id = host->ev_extra[i].id;
      return 0;
    }
  }
  return GOOP_ELIMIT;
}

int goop_host_remove_events(goop_host *host, int id) {
  goop_return_val_if_fail(host && id > 0, GOOP_EINVAL);
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(host->ev_extra); i++) {
    if (host->ev_extra[i].id == id) {
      memset(&host->ev_extra[i], 0, sizeof(host->ev_extra[i]));
      return 0;
    }
  }
  return GOOP_ENOENT;
}

static void emit_one(goop_host *h, const struct goop_host_events *ev, void *ud, enum goop__host_event what,
                     goop_conn *c, int reason) {
  switch (what) {
  case GOOP__EV_CONNECTED:
    if (ev->on_connected)
      ev->on_connected(h, c, ud);
    break;
  case GOOP__EV_DISCONNECTED:
    if (ev->on_disconnected)
      ev->on_disconnected(h, c, reason, ud);
    break;
  case GOOP__EV_IDENTIFIED:
    if (ev->on_identified)
      ev->on_identified(h, c, ud);
    break;
  }
}

void goop__host_emit(goop_host *h, enum goop__host_event what, goop_conn *c, int reason) {
  /* Listeners may add or remove listeners from their callback: work on a snapshot. */
  struct goop_host_events main_ev = h->ev;
  void *main_ud = h->ev_ud;
  struct goop__ev_slot extra[GOOP_ARRAY_SIZE(h->ev_extra)];
  memcpy(extra, h->ev_extra, sizeof(extra));
  goop_conn_ref(c);
  emit_one(h, &main_ev, main_ud, what, c, reason);
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(extra) && !h->free_requested; i++) {
    if (extra[i].id == 0)
      continue;
    /* skip listeners removed by an earlier callback */
    bool live = false;
    for (size_t j = 0; j < GOOP_ARRAY_SIZE(h->ev_extra); j++)
      live |= h->ev_extra[j].id == extra[i].id;
    if (live)
      emit_one(h, &extra[i].ev, extra[i].ud, what, c, reason);
  }
  goop_conn_unref(c);
}

void goop_host_peer_id(const goop_host *host, goop_peer_id *ret) {
  if (host && ret)
    *ret = host->self;
}

static void host_destroy(goop_host *h) {
  h->free_requested = true;
  h->depth++; /* callbacks during teardown must not re-enter destruction */
  /* Cancel pending work: callers hear GOOP_ECANCELED exactly once. */
  while (h->dials) {
    struct goop__dial *d = h->dials;
    struct goop__connect_req *r = d->reqs;
    d->reqs = NULL;
    while (r) {
      struct goop__connect_req *n = r->next;
      r->cb(h, GOOP_ECANCELED, NULL, r->ud);
      free(r);
      r = n;
    }
    dial_free(d);
  }
  while (h->deferred) {
    struct goop__deferred *d = h->deferred;
    h->deferred = d->next;
    d->cb(h, GOOP_ECANCELED, NULL, d->ud);
    goop_conn_unref(d->conn);
    free(d);
  }
  for (;;) { /* callbacks may free streams: rescan after each one */
    goop_stream *s = h->all_streams;
    while (s && !s->open_cb)
      s = s->all_next;
    if (!s)
      break;
    goop_stream_open_cb cb = s->open_cb;
    s->open_cb = NULL;
    cb(h, GOOP_ECANCELED, NULL, s->open_ud);
  }
  goop__services_cancel(h);
  goop__circuit_cancel(h);
  memset(&h->ev, 0, sizeof(h->ev));
  memset(h->ev_extra, 0, sizeof(h->ev_extra));
  while (h->conns)
    goop__conn_close(h->conns, GOOP_ECANCELED);
  /* Streams the application still holds hear GOOP_ECANCELED now (their deferred
   * notifications would never run); they may unref from the callback. */
  for (;;) {
    goop_stream *s = h->all_streams;
    while (s && !(s->user_refs > 0 && s->cb.on_error && !s->svc_free))
      s = s->all_next;
    if (!s)
      break;
    void (*on_error)(goop_stream *, int, void *) = s->cb.on_error;
    s->cb = (struct goop_stream_callbacks){0};
    s->pend_error = s->pend_readable = s->pend_writable = false;
    on_error(s, GOOP_ECANCELED, s->ud);
  }
  for (size_t i = 0; i < h->n_listeners; i++)
    evconnlistener_free(h->listeners[i].l);
  free(h->listeners);
  /* Whatever the application or lingering pipes still reference goes now. */
  while (h->all_streams)
    goop__stream_destroy(h->all_streams);
  while (h->all_conns)
    goop__conn_destroy(h->all_conns);
  for (size_t i = 0; i < h->n_handlers; i++)
    free(h->handlers[i].proto);
  free(h->handlers);
  peers_free(h);
  event_free(h->deferred_ev);
  free(h->agent);
  goop_identity_free(h->id);
  free(h);
}

void goop_host_free(goop_host *host) {
  if (!host)
    return;
  if (host->depth > 0) {
    host->free_requested = true;
    return;
  }
  host_destroy(host);
}
