/*
 * Observed addresses and DCUtR hole punching (/libp2p/dcutr).
 *
 * OBSERVED ADDRESSES. Every identify response carries the address the remote
 * sees us at (observedAddr). We keep the last one each observing peer
 * reported (at most OBS_MAX observers, OBS_TTL_S each), ignoring identify over
 * relayed connections and over connections we dialled from an ephemeral port
 * (only dials from the listen port, the default, map to it), and addresses
 * that are not plain ip4/ip6 + tcp or that are loopback, unspecified or
 * link-local. Rule: an address is CONFIRMED
 * when at least 2 distinct peers report it, or when 1 peer reports it that is
 * a circuit relay (it lists the hop protocol in identify; the relay we hold a
 * reservation with is one). Confirmed addresses are public
 * (goop_host_observed_addr(), announced after the listen addresses). A hole
 * punch also sends the unconfirmed ones, after the confirmed: one observer is
 * enough to try.
 *
 * DCUTR. A dialled B through a relay; B holds the inbound relayed connection.
 * After identify on it, B opens /libp2p/dcutr and sends CONNECT{B's
 * addresses}; A answers CONNECT{A's addresses}; B measures the round trip,
 * sends SYNC, waits (a whole rtt, see punch_on_msg()) and dials; A dials
 * right after sending its CONNECT (the spec: when SYNC arrives; see
 * punch_on_msg() for why earlier) and again at SYNC if that dial failed
 * meanwhile. Both dial from their listen port, so the two SYNs cross and the
 * NATs let them through (TCP simultaneous open), or one side's SYN lands on
 * the other's listener.
 * Roles after the punch, whatever the socket direction: A is the mss and
 * Noise initiator and yamux client, B the responder and server. The role
 * holds on the sockets we dial and on sockets accepted from the peer's punch
 * addresses while an attempt runs (goop__dcutr_accept_role()). If both a
 * dialled and an accepted connection come up, the host keeps one (its usual
 * tie-break). Each attempt uses a new stream; B tries DCUTR_ATTEMPTS times.
 * Messages are at most GOOP_RELAY_MSG_MAX bytes; a stream lives at most
 * DCUTR_STREAM_DEADLINE_MS; malformed or unexpected input resets the stream
 * and ends the punch (the relayed connection is untouched).
 *
 * On success the direct connection wins over the relayed one (which stops
 * taking new streams at once, see goop__dcutr_prefer()) and the relayed one
 * is closed as soon as it has no streams left, at the latest after
 * DCUTR_GRACE_MS. On failure the relayed connection stays.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/multiaddr.h"
#include "relay/relay-msg.h"
#include "transport-internal.h"

#define OBS_MAX 64
#define OBS_TTL_S 3600
#define OBS_MA_MAX 32 /* ip6 + tcp is 20 bytes */
#define DCUTR_ATTEMPTS 3
#define DCUTR_OPEN_TIMEOUT_MS 10000
#define DCUTR_STREAM_DEADLINE_MS 60000
#define DCUTR_DIAL_TIMEOUT_MS 5000
/* After our dial failed: how long sockets accepted from the peer may still arrive. */
#define DCUTR_LINGER_MS 1000
#define DCUTR_GRACE_MS 10000

struct observation {
  goop_peer_id observer;
  uint8_t ma[OBS_MA_MAX];
  size_t len;
  goop_tstamp when;
};

enum punch_state {
  P_OPENING,      /* B: stream opening */
  P_WAIT_CONNECT, /* waiting for the peer's CONNECT */
  P_WAIT_SYNC,    /* A: answered CONNECT, waiting for SYNC */
  P_WAIT_DIAL,    /* B: sent SYNC, waiting rtt/2 */
  P_DIALLING,     /* attempt window: our dial and accepted sockets */
};

struct punch {
  struct goop__dcutr *dc;
  uint64_t id;
  goop_peer_id peer;
  char peer_str[GOOP_PEER_ID_STR_MAX];
  goop_conn *carrier; /* reference held */
  goop_stream *s;     /* reference held while the exchange runs */
  bool is_b;
  bool succeeded;
  int attempt;
  enum punch_state state;
  goop_buf rbuf;
  goop_tstamp t_connect;
  goop_tstamp rtt;
  uint8_t addrs[GOOP_RELAY_MAX_ADDRS][OBS_MA_MAX];
  size_t addr_lens[GOOP_RELAY_MAX_ADDRS];
  struct sockaddr_storage sas[GOOP_RELAY_MAX_ADDRS];
  size_t n_addrs;
  bool window; /* sockets accepted from |sas| get our role */
  bool dialling;
  struct event *timer;    /* B: rtt/2; both: end of the attempt window */
  struct event *deadline; /* the exchange on the stream */
  struct punch *next, *prev;
};

struct grace {
  goop_conn *c; /* reference held */
  goop_tstamp until;
  struct grace *next;
};

struct goop__dcutr {
  goop_host *h;
  struct observation obs[OBS_MAX];
  size_t n_obs;
  struct punch *punches;
  uint64_t next_id;
  struct grace *graces;
  struct event *grace_timer;
  struct event *done_ev; /* finishes punches flagged |succeeded| */
};

/* ---- helpers ------------------------------------------------------------------------------ */

bool goop__conn_relayed(const goop_conn *c) {
  return c->relayed;
}

static void set_timer_ms(struct event *ev, uint64_t ms) {
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
  evtimer_add(ev, &tv);
}

/* Normalise an address for comparison (v4-mapped v6 -> v4). */
static void sa_norm(const struct sockaddr *sa, struct sockaddr_storage *ret) {
  memset(ret, 0, sizeof(*ret));
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      struct sockaddr_in *s4 = (struct sockaddr_in *)ret;
      s4->sin_family = AF_INET;
      memcpy(&s4->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
      s4->sin_port = s6->sin6_port;
      return;
    }
    struct sockaddr_in6 *o6 = (struct sockaddr_in6 *)ret;
    o6->sin6_family = AF_INET6;
    o6->sin6_addr = s6->sin6_addr;
    o6->sin6_port = s6->sin6_port;
  } else if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    struct sockaddr_in *o4 = (struct sockaddr_in *)ret;
    o4->sin_family = AF_INET;
    o4->sin_addr = s4->sin_addr;
    o4->sin_port = s4->sin_port;
  }
}

static bool sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family)
    return false;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
  }
  return false;
}

enum addr_kind { ADDR_BAD, ADDR_LOOPBACK, ADDR_OK };

/* Classify a binary multiaddr: only plain ip4/ip6 + tcp with a usable IP and port is OK. */
static enum addr_kind addr_classify(const uint8_t *ma, size_t len, struct sockaddr_storage *ret_sa) {
  struct sockaddr_storage ss;
  socklen_t sl;
  bool has_peer = false;
  if (len == 0 || len > OBS_MA_MAX || goop__ma_to_sockaddr(ma, len, &ss, &sl, NULL, &has_peer) != 0 ||
      has_peer)
    return ADDR_BAD;
  if (ret_sa)
    sa_norm((struct sockaddr *)&ss, ret_sa);
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *s4 = (const void *)&ss;
    uint32_t ip = ntohl(s4->sin_addr.s_addr);
    if (s4->sin_port == 0 || ip == 0 || ip == 0xffffffffu || (ip >> 28) == 0xe)
      return ADDR_BAD;
    return (ip >> 24) == 127 ? ADDR_LOOPBACK : ADDR_OK;
  }
  const struct sockaddr_in6 *s6 = (const void *)&ss;
  if (s6->sin6_port == 0 || IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) ||
      IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr) || IN6_IS_ADDR_MULTICAST(&s6->sin6_addr))
    return ADDR_BAD;
  if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
    return ADDR_BAD;
  return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ? ADDR_LOOPBACK : ADDR_OK;
}

/* Loopback punch addresses only make sense when the carrier itself runs over
 * loopback (both peers, or the relay, on this machine). */
static bool loopback_ok(const goop_conn *carrier) {
  return strncmp(carrier->remote_addr, "/ip4/127.", 9) == 0 ||
         strncmp(carrier->remote_addr, "/ip6/::1/", 9) == 0;
}

/* ---- observed addresses --------------------------------------------------------------------- */

void goop__observed_record(goop_host *h, goop_conn *c, const uint8_t *ma, size_t len) {
  struct goop__dcutr *dc = h->dcutr;
  /* What the remote sees of a connection we dialled from an ephemeral port
   * says nothing about our listen port. */
  if (!dc || goop__conn_relayed(c) || (c->outbound && !c->from_listen_port) ||
      addr_classify(ma, len, NULL) != ADDR_OK)
    return;
  goop_tstamp now = goop__now_us();
  struct observation *o = NULL;
  for (size_t i = 0; i < dc->n_obs && !o; i++)
    if (goop_peer_id_equal(&dc->obs[i].observer, &c->remote))
      o = &dc->obs[i];
  if (!o && dc->n_obs < OBS_MAX)
    o = &dc->obs[dc->n_obs++];
  if (!o) { /* full: the oldest observation goes */
    o = &dc->obs[0];
    for (size_t i = 1; i < dc->n_obs; i++)
      if (dc->obs[i].when < o->when)
        o = &dc->obs[i];
  }
  bool changed = o->len != len || memcmp(o->ma, ma, len) != 0;
  o->observer = c->remote;
  memcpy(o->ma, ma, len);
  o->len = len;
  o->when = now;
  if (changed) {
    char text[128] = "?";
    (void)goop_ma_to_string(ma, len, text, sizeof(text));
    goop__log_debug(h->ctx, "connection %s observes us at %s", c->remote_addr, text);
  }
}

static bool obs_live(const struct observation *o, goop_tstamp now) {
  return o->len && now - o->when < (goop_tstamp)OBS_TTL_S * 1000000u;
}

static bool peer_is_relay(const goop_host *h, const goop_peer_id *id) {
  for (size_t i = 0; i < h->n_peers; i++) {
    const struct goop__peer *p = &h->peers[i];
    if (!goop_peer_id_equal(&p->id, id))
      continue;
    for (size_t j = 0; j < p->n_protocols; j++)
      if (strcmp(p->protocols[j], GOOP_PROTO_RELAY_HOP) == 0)
        return true;
    return false;
  }
  return false;
}

/* true if observation |k| is the first of its address (so each address counts once). */
static bool obs_first(const struct goop__dcutr *dc, size_t k, goop_tstamp now) {
  for (size_t i = 0; i < k; i++)
    if (obs_live(&dc->obs[i], now) && dc->obs[i].len == dc->obs[k].len &&
        memcmp(dc->obs[i].ma, dc->obs[k].ma, dc->obs[k].len) == 0)
      return false;
  return true;
}

static bool obs_confirmed(const goop_host *h, const struct goop__dcutr *dc, size_t k, goop_tstamp now) {
  size_t observers = 0;
  for (size_t i = 0; i < dc->n_obs; i++) {
    const struct observation *o = &dc->obs[i];
    if (!obs_live(o, now) || o->len != dc->obs[k].len || memcmp(o->ma, dc->obs[k].ma, o->len) != 0)
      continue;
    if (++observers >= 2 || peer_is_relay(h, &o->observer))
      return true;
  }
  return false;
}

int goop_host_observed_addr(const goop_host *host, size_t i, char *buf, size_t buf_len) {
  goop_return_val_if_fail(host && buf, GOOP_EINVAL);
  const struct goop__dcutr *dc = host->dcutr;
  if (!dc)
    return GOOP_ENOENT;
  goop_tstamp now = goop__now_us();
  size_t n = 0;
  for (size_t k = 0; k < dc->n_obs; k++) {
    if (!obs_live(&dc->obs[k], now) || !obs_first(dc, k, now) || !obs_confirmed(host, dc, k, now))
      continue;
    if (n++ == i) {
      int rc = goop_ma_to_string(dc->obs[k].ma, dc->obs[k].len, buf, buf_len);
      return rc < 0 ? GOOP_EINVAL : rc;
    }
  }
  return GOOP_ENOENT;
}

/* ---- our punch addresses ---------------------------------------------------------------------- */

struct addr_list {
  goop_relay_bytes v[GOOP_RELAY_MAX_ADDRS];
  uint8_t store[GOOP_RELAY_MAX_ADDRS][OBS_MA_MAX];
  size_t n;
};

static void addr_list_add(struct addr_list *l, const uint8_t *ma, size_t len, bool allow_loopback) {
  enum addr_kind k = addr_classify(ma, len, NULL);
  if (l->n >= GOOP_RELAY_MAX_ADDRS || k == ADDR_BAD || (k == ADDR_LOOPBACK && !allow_loopback))
    return;
  for (size_t i = 0; i < l->n; i++)
    if (l->v[i].len == len && memcmp(l->v[i].data, ma, len) == 0)
      return;
  memcpy(l->store[l->n], ma, len);
  l->v[l->n].data = l->store[l->n];
  l->v[l->n].len = len;
  l->n++;
}

/* Observed addresses (confirmed first), then listen addresses. */
static void our_addrs(goop_host *h, const goop_conn *carrier, struct addr_list *l) {
  struct goop__dcutr *dc = h->dcutr;
  bool lo = loopback_ok(carrier);
  goop_tstamp now = goop__now_us();
  l->n = 0;
  for (int pass = 0; pass < 2; pass++)
    for (size_t k = 0; k < dc->n_obs; k++)
      if (obs_live(&dc->obs[k], now) && obs_confirmed(h, dc, k, now) == (pass == 0))
        addr_list_add(l, dc->obs[k].ma, dc->obs[k].len, lo);
  char text[256];
  goop_buf b;
  goop_buf_init(&b, GOOP_MA_MAX);
  for (size_t i = 0; goop_host_announce_addr(h, i, text, sizeof(text)) > 0; i++) {
    goop_buf_reset(&b);
    if (goop_ma_from_string(text, &b) == 0)
      addr_list_add(l, b.data, b.len, lo);
  }
  goop_buf_free(&b);
}

/* ---- punches ----------------------------------------------------------------------------------- */

static const struct goop_stream_callbacks punch_stream_cbs;

static struct punch *punch_find_id(struct goop__dcutr *dc, uint64_t id) {
  for (struct punch *p = dc ? dc->punches : NULL; p; p = p->next)
    if (p->id == id)
      return p;
  return NULL;
}

/* Callback token: a punch may be gone by the time a deferred callback runs. */
struct ptok {
  goop_host *h;
  uint64_t id;
};

static struct ptok *ptok_new(struct punch *p) {
  struct ptok *t = malloc(sizeof(*t));
  if (t)
    *t = (struct ptok){p->dc->h, p->id};
  return t;
}

static struct punch *ptok_take(struct ptok *t) {
  struct punch *p = punch_find_id(t->h->dcutr, t->id);
  free(t);
  return p;
}

/* Let go of the stream: graceful when |ok|, else reset. */
static void punch_drop_stream(struct punch *p, bool ok) {
  if (!p->s)
    return;
  goop_stream_set_callbacks(p->s, NULL, NULL);
  p->s->svc_free = NULL;
  if (ok)
    (void)goop_stream_close_write(p->s);
  else
    goop_stream_reset(p->s);
  goop_stream_unref(p->s);
  p->s = NULL;
  evtimer_del(p->deadline);
}

static void punch_free(struct punch *p) {
  struct goop__dcutr *dc = p->dc;
  GOOP_DL_REMOVE(dc->punches, p, next, prev);
  punch_drop_stream(p, false);
  if (p->timer)
    event_free(p->timer);
  if (p->deadline)
    event_free(p->deadline);
  goop_buf_free(&p->rbuf);
  goop_conn_unref(p->carrier);
  free(p);
}

static goop_conn *direct_conn(goop_host *h, const goop_peer_id *peer, const goop_conn *carrier) {
  goop_conn *c = goop__host_find_conn(h, peer);
  return c && c != carrier && !goop__conn_relayed(c) ? c : NULL;
}

static void grace_add(struct goop__dcutr *dc, goop_conn *c) {
  for (struct grace *g = dc->graces; g; g = g->next)
    if (g->c == c)
      return;
  struct grace *g = calloc(1, sizeof(*g));
  if (!g)
    return;
  g->c = goop_conn_ref(c);
  g->until = goop__now_us() + (goop_tstamp)DCUTR_GRACE_MS * 1000u;
  g->next = dc->graces;
  dc->graces = g;
  if (!evtimer_pending(dc->grace_timer, NULL))
    set_timer_ms(dc->grace_timer, 200);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct goop__dcutr *dc = arg;
  goop_host *h = dc->h;
  goop__host_enter(h);
  goop_tstamp now = goop__now_us();
  struct grace **pp = &dc->graces;
  while (*pp) {
    struct grace *g = *pp;
    if (g->c->state == GOOP_CONN_READY && g->c->n_streams > 0 && now < g->until) {
      pp = &g->next;
      continue;
    }
    *pp = g->next;
    if (g->c->state != GOOP_CONN_CLOSED) {
      goop__log_debug(h->ctx, "closing the superseded connection %s", g->c->remote_addr);
      goop__conn_close(g->c, 0);
    }
    /* Modules that followed the peer on the closed connection (pubsub keeps its
     * streams there) move to the direct one: tell them it is identified. */
    goop_conn *d = direct_conn(h, &g->c->remote, g->c);
    if (d && d->identified && !h->free_requested)
      goop__host_emit(h, GOOP__EV_IDENTIFIED, d, 0);
    goop_conn_unref(g->c);
    free(g);
  }
  if (dc->graces && !h->free_requested)
    set_timer_ms(dc->grace_timer, 200);
  goop__host_leave(h);
}

static void punch_succeed(struct punch *p) {
  goop_host *h = p->dc->h;
  goop_conn *c = direct_conn(h, &p->peer, p->carrier);
  goop__log_info(h->ctx, "hole punch to %s: direct connection established", p->peer_str);
  if (c)
    goop__log_debug(h->ctx, "hole punch to %s: direct connection %s (%s, %s)", p->peer_str, c->remote_addr,
                    c->outbound ? "dialled" : "accepted", c->initiator ? "client" : "server");
  if (p->carrier->state == GOOP_CONN_READY) {
    p->carrier->draining = true; /* new streams go over the direct connection */
    grace_add(p->dc, p->carrier);
  }
  punch_drop_stream(p, true);
  punch_free(p);
}

static void done_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct goop__dcutr *dc = arg;
  goop_host *h = dc->h;
  goop__host_enter(h);
  for (struct punch *p = dc->punches, *n; p && !h->free_requested; p = n) {
    n = p->next;
    if (p->succeeded)
      punch_succeed(p);
  }
  goop__host_leave(h);
}

static void attempt_begin(struct punch *p);

/* The attempt window closed without a direct connection. */
static void attempt_failed(struct punch *p, const char *why) {
  goop_host *h = p->dc->h;
  p->window = false;
  if (direct_conn(h, &p->peer, p->carrier)) {
    punch_succeed(p);
    return;
  }
  if (!p->is_b) {
    goop__log_debug(h->ctx, "hole punch from %s: %s", p->peer_str, why);
    punch_free(p);
    return;
  }
  if (p->attempt < DCUTR_ATTEMPTS && p->carrier->state == GOOP_CONN_READY && !p->carrier->draining) {
    goop__log_info(h->ctx, "hole punch to %s: attempt %d failed (%s)", p->peer_str, p->attempt, why);
    punch_drop_stream(p, true);
    attempt_begin(p);
    return;
  }
  goop__log_info(h->ctx, "hole punch to %s: failed after %d attempts; staying on relay (%s)", p->peer_str,
                 p->attempt, why);
  punch_free(p);
}

/* A protocol failure on the stream: no retry; the carrier is untouched. */
static void punch_abort(struct punch *p, int err, const char *why) {
  goop_host *h = p->dc->h;
  goop__log_info(h->ctx, "hole punch %s %s: %s (%s); staying on the current connection",
                 p->is_b ? "to" : "from", p->peer_str, why, goop_strerror(err));
  punch_free(p);
}

static void dial_done(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)c;
  struct punch *p = ptok_take(ud);
  if (!p || h->free_requested)
    return;
  p->dialling = false;
  if (status == 0)
    return; /* goop__dcutr_conn_ready() saw it */
  goop__log_debug(h->ctx, "hole punch %s %s: dial failed: %s", p->is_b ? "to" : "from", p->peer_str,
                  goop_strerror(status));
  if (p->state == P_DIALLING)
    set_timer_ms(p->timer, DCUTR_LINGER_MS); /* an accepted socket may still come */
}

/* Start our dial to the peer's punch addresses (none: the peer's dial may
 * still land on our listener). Returns 0 if it runs. */
static int punch_start_dial(struct punch *p) {
  goop_host *h = p->dc->h;
  if (p->n_addrs == 0)
    return GOOP_ENOADDR;
  const uint8_t *mas[GOOP_RELAY_MAX_ADDRS];
  for (size_t i = 0; i < p->n_addrs; i++)
    mas[i] = p->addrs[i];
  struct ptok *t = ptok_new(p);
  if (!t)
    return GOOP_ENOMEM;
  /* A (the stream receiver) is the client, B the server. */
  int rc = goop__host_dial_punch(h, &p->peer, mas, p->addr_lens, p->n_addrs, !p->is_b, DCUTR_DIAL_TIMEOUT_MS,
                                 dial_done, t);
  if (rc) {
    free(t);
    goop__log_debug(h->ctx, "hole punch %s %s: %s", p->is_b ? "to" : "from", p->peer_str, goop_strerror(rc));
    return rc;
  }
  p->dialling = true;
  return 0;
}

/* The attempt window: our dial (unless the one started at CONNECT still runs)
 * and sockets accepted from the peer's addresses. */
static void punch_dial(struct punch *p) {
  goop_host *h = p->dc->h;
  p->state = P_DIALLING;
  set_timer_ms(p->timer, DCUTR_DIAL_TIMEOUT_MS + DCUTR_LINGER_MS);
  if (direct_conn(h, &p->peer, p->carrier)) {
    p->succeeded = true;
    event_active(p->dc->done_ev, 0, 0);
    return;
  }
  if (!p->dialling && p->n_addrs && punch_start_dial(p) != 0)
    set_timer_ms(p->timer, DCUTR_LINGER_MS);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct punch *p = arg;
  goop_host *h = p->dc->h;
  goop__host_enter(h);
  if (p->state == P_WAIT_DIAL)
    punch_dial(p);
  else if (p->state == P_DIALLING)
    attempt_failed(p, "no direct connection");
  goop__host_leave(h);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct punch *p = arg;
  goop_host *h = p->dc->h;
  goop__host_enter(h);
  punch_abort(p, GOOP_ETIMEDOUT, "exchange took too long");
  goop__host_leave(h);
}

static struct punch *punch_new(struct goop__dcutr *dc, goop_conn *carrier, bool is_b) {
  struct punch *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->dc = dc;
  p->id = ++dc->next_id;
  p->is_b = is_b;
  p->peer = carrier->remote;
  (void)goop_peer_id_to_string(&p->peer, p->peer_str, sizeof(p->peer_str));
  goop_buf_init(&p->rbuf, 0);
  p->timer = evtimer_new(dc->h->base, timer_cb, p);
  p->deadline = evtimer_new(dc->h->base, deadline_cb, p);
  if (!p->timer || !p->deadline) {
    if (p->timer)
      event_free(p->timer);
    if (p->deadline)
      event_free(p->deadline);
    free(p);
    return NULL;
  }
  p->carrier = goop_conn_ref(carrier);
  GOOP_DL_PUSH(dc->punches, p, next, prev);
  return p;
}

/* Send a HolePunch message on the punch's stream. */
static int punch_send(struct punch *p, uint32_t type) {
  goop_holepunch_msg m = {.has_type = true, .type = type};
  struct addr_list l;
  if (type == GOOP_HOLEPUNCH_CONNECT) {
    our_addrs(p->dc->h, p->carrier, &l);
    for (size_t i = 0; i < l.n; i++)
      m.addrs[i] = l.v[i];
    m.n_addrs = l.n;
  }
  goop_buf out;
  goop_buf_init(&out, 0);
  int rc = goop_holepunch_encode(&m, &out);
  if (!rc) {
    ssize_t w = goop_stream_write(p->s, out.data, out.len);
    rc = w == (ssize_t)out.len ? 0 : w < 0 ? (int)w : GOOP_EAGAIN;
  }
  goop_buf_free(&out);
  return rc;
}

/* Keep the peer's usable addresses from a CONNECT. */
static void take_addrs(struct punch *p, const goop_holepunch_msg *m) {
  bool lo = loopback_ok(p->carrier);
  p->n_addrs = 0;
  for (size_t i = 0; i < m->n_addrs && p->n_addrs < GOOP_RELAY_MAX_ADDRS; i++) {
    struct sockaddr_storage sa;
    enum addr_kind k = addr_classify(m->addrs[i].data, m->addrs[i].len, &sa);
    if (k == ADDR_BAD || (k == ADDR_LOOPBACK && !lo))
      continue;
    memcpy(p->addrs[p->n_addrs], m->addrs[i].data, m->addrs[i].len);
    p->addr_lens[p->n_addrs] = m->addrs[i].len;
    p->sas[p->n_addrs] = sa;
    p->n_addrs++;
  }
  /* From now on a socket accepted from these addresses belongs to the punch. */
  p->window = true;
}

/* Handle one message. Returns 0, or an error that aborts the punch. */
static int punch_on_msg(struct punch *p, const goop_holepunch_msg *m) {
  goop_host *h = p->dc->h;
  if (p->state == P_WAIT_CONNECT && m->type == GOOP_HOLEPUNCH_CONNECT) {
    take_addrs(p, m);
    if (!p->is_b) {
      int rc = punch_send(p, GOOP_HOLEPUNCH_CONNECT);
      if (rc)
        return rc;
      p->state = P_WAIT_SYNC;
      /* The spec has A dial when SYNC arrives. We dial now, before our CONNECT
       * has even left: our SYN then crosses our NAT before B can know our
       * addresses, so B's SYN always finds our NAT tracking this flow with our
       * live socket behind it. Dialled at SYNC, our SYN may come after B's
       * (SYNC takes the relay, B's SYN the short path, and a round trip
       * measured on a quiet path says little on a busy host); if our NAT
       * still tracks an earlier dial of ours to B's address (made before the
       * relayed connection came up, its socket long closed), it forwards B's
       * SYN to our listener, the SYN-ACK from there does not fit the flow the
       * NAT tracks and is dropped, and the half-open socket in the listener
       * takes the 4-tuple: our own dial then fails with "address not
       * available" and every retry meets the same wedge for a minute. An early
       * SYN costs nothing: B's NAT drops it (or B's listener accepts it), and
       * our socket keeps trying until B's SYN comes. If this dial fails
       * before SYNC, SYNC starts another. */
      (void)punch_start_dial(p);
      return 0;
    }
    p->rtt = goop__now_us() - p->t_connect;
    int rc = punch_send(p, GOOP_HOLEPUNCH_SYNC);
    if (rc)
      return rc;
    goop__log_info(h->ctx, "hole punch to %s: attempt %d of %d, rtt %llu ms, %zu addresses", p->peer_str,
                   p->attempt, DCUTR_ATTEMPTS, (unsigned long long)(p->rtt / 1000), p->n_addrs);
    punch_drop_stream(p, true);
    p->state = P_WAIT_DIAL;
    /* The spec waits rtt/2. We wait a whole round trip: SYNC reaches A through
     * the relay, slower than our SYN takes the direct path, so at rtt/2 our SYN
     * tends to reach A's NAT before A's own SYN left. Late is harmless (A's NAT
     * then knows the flow; ours drops A's early SYN and our SYN meets A's
     * socket), early is not: a mapping A's NAT still holds from an earlier dial
     * of A to us forwards our SYN to A's listener, whose SYN-ACK the NAT then
     * drops, and the 4-tuple stays wedged for a minute. */
    set_timer_ms(p->timer, p->rtt / 1000 + 1);
    return 0;
  }
  if (p->state == P_WAIT_SYNC && m->type == GOOP_HOLEPUNCH_SYNC) {
    goop__log_info(h->ctx, "hole punch from %s: SYNC, dialling %zu addresses", p->peer_str, p->n_addrs);
    punch_drop_stream(p, true);
    punch_dial(p);
    return 0;
  }
  return GOOP_EPROTO;
}

static void punch_readable(goop_stream *s, void *ud) {
  struct punch *p = ud;
  goop_host *h = p->dc->h;
  uint64_t id = p->id;
  for (;;) {
    uint8_t buf[1024];
    ssize_t n = goop_stream_read(s, buf, sizeof(buf));
    if (n == GOOP_EAGAIN)
      return;
    if (n <= 0) {
      punch_abort(p, n == 0 ? GOOP_ECLOSED : (int)n, "stream ended early");
      return;
    }
    if (goop_buf_append(&p->rbuf, buf, (size_t)n) != 0) {
      punch_abort(p, GOOP_ENOMEM, "out of memory");
      return;
    }
    while (p->s == s) {
      const uint8_t *body;
      size_t blen, used;
      int rc = goop_relay_frame_take(p->rbuf.data, p->rbuf.len, &body, &blen, &used);
      if (rc == GOOP_EAGAIN) {
        if (p->rbuf.len > GOOP_RELAY_MSG_MAX + 16) {
          punch_abort(p, GOOP_EMSGSIZE, "oversized message");
          return;
        }
        break;
      }
      goop_holepunch_msg m;
      if (!rc)
        rc = goop_holepunch_decode(body, blen, &m);
      if (!rc && !m.has_type)
        rc = GOOP_EPARSE;
      if (!rc)
        rc = punch_on_msg(p, &m);
      if (!punch_find_id(h->dcutr, id))
        return;
      if (rc) {
        punch_abort(p, rc,
                    rc == GOOP_EPROTO     ? "unexpected message"
                    : rc == GOOP_EMSGSIZE ? "oversized message"
                                          : "malformed message");
        return;
      }
      if (p->s == s)
        goop_buf_consume(&p->rbuf, used);
    }
    if (p->s != s)
      return; /* the exchange is over; the stream was let go */
  }
}

static void punch_error(goop_stream *s, int err, void *ud) {
  (void)s;
  punch_abort(ud, err, "stream failed");
}

static const struct goop_stream_callbacks punch_stream_cbs = {
    .version = GOOP_STREAM_CALLBACKS_V1,
    .on_readable = punch_readable,
    .on_error = punch_error,
};

static void punch_attach(struct punch *p, goop_stream *s) {
  p->s = s;
  goop_buf_reset(&p->rbuf);
  goop_stream_set_callbacks(s, &punch_stream_cbs, p);
  set_timer_ms(p->deadline, DCUTR_STREAM_DEADLINE_MS);
}

static void b_opened(goop_host *h, int status, goop_stream *s, void *ud) {
  struct punch *p = ptok_take(ud);
  if (!p || h->free_requested) {
    if (s) {
      goop_stream_reset(s);
      goop_stream_unref(s);
    }
    return;
  }
  if (status) {
    punch_abort(p, status, "cannot open " GOOP_PROTO_DCUTR);
    return;
  }
  punch_attach(p, s);
  p->state = P_WAIT_CONNECT;
  p->t_connect = goop__now_us();
  int rc = punch_send(p, GOOP_HOLEPUNCH_CONNECT);
  if (rc)
    punch_abort(p, rc, "cannot send CONNECT");
}

static void attempt_begin(struct punch *p) {
  static const char *const protos[] = {GOOP_PROTO_DCUTR};
  p->attempt++;
  p->state = P_OPENING;
  p->window = false;
  p->n_addrs = 0;
  evtimer_del(p->timer);
  struct ptok *t = ptok_new(p);
  int rc =
      t ? goop__conn_open_stream(p->carrier, protos, 1, DCUTR_OPEN_TIMEOUT_MS, b_opened, t) : GOOP_ENOMEM;
  if (rc) {
    free(t);
    punch_abort(p, rc, "cannot open " GOOP_PROTO_DCUTR);
  }
}

int goop__dcutr_start(goop_conn *c) {
  goop_host *h = c->host;
  struct goop__dcutr *dc = h->dcutr;
  if (!dc || !goop__host_opt(h, GOOP_HOST_HOLE_PUNCHING))
    return GOOP_ENOTSUP;
  if (c->state != GOOP_CONN_READY || c->draining)
    return GOOP_ESTATE;
  for (struct punch *p = dc->punches; p; p = p->next)
    if (goop_peer_id_equal(&p->peer, &c->remote))
      return GOOP_EALREADY;
  struct punch *p = punch_new(dc, c, true);
  if (!p)
    return GOOP_ENOMEM;
  goop__log_debug(h->ctx, "hole punch to %s: starting over %s", p->peer_str, c->remote_addr);
  attempt_begin(p);
  return 0;
}

int goop__dcutr_punch_now(goop_conn *c, bool is_b, const uint8_t *const *mas, const size_t *lens, size_t n) {
  goop_host *h = c->host;
  struct goop__dcutr *dc = h->dcutr;
  if (!dc || n > GOOP_RELAY_MAX_ADDRS)
    return dc ? GOOP_EINVAL : GOOP_ENOTSUP;
  struct punch *p = punch_new(dc, c, is_b);
  if (!p)
    return GOOP_ENOMEM;
  goop_holepunch_msg m = {.has_type = true, .type = GOOP_HOLEPUNCH_CONNECT, .n_addrs = n};
  for (size_t i = 0; i < n; i++)
    m.addrs[i] = (goop_relay_bytes){mas[i], lens[i]};
  p->attempt = DCUTR_ATTEMPTS; /* one attempt, no retry */
  take_addrs(p, &m);
  punch_dial(p);
  return 0;
}

static bool peer_speaks_dcutr(goop_host *h, const goop_peer_id *peer) {
  const char *proto;
  for (size_t i = 0; (proto = goop_host_peer_protocol(h, peer, i)) != NULL; i++)
    if (strcmp(proto, GOOP_PROTO_DCUTR) == 0)
      return true;
  return false;
}

void goop__dcutr_on_identified(goop_host *h, goop_conn *c) {
  if (!h->dcutr || !goop__host_opt(h, GOOP_HOST_HOLE_PUNCHING) || c->outbound || !goop__conn_relayed(c))
    return;
  if (!peer_speaks_dcutr(h, &c->remote) || direct_conn(h, &c->remote, c))
    return;
  (void)goop__dcutr_start(c);
}

/* A: a peer opened /libp2p/dcutr to us. */
static void dcutr_serve(goop_host *h, goop_stream *s, void *ud) {
  struct goop__dcutr *dc = ud;
  goop_conn *c = goop_stream_conn(s);
  /* A new exchange replaces a running one with the same peer. */
  for (struct punch *p = dc->punches, *n; p; p = n) {
    n = p->next;
    if (goop_peer_id_equal(&p->peer, &c->remote))
      punch_free(p);
  }
  struct punch *p = punch_new(dc, c, false);
  if (!p) {
    goop_stream_reset(s);
    goop_stream_unref(s);
    return;
  }
  goop__log_debug(h->ctx, "hole punch from %s: over %s", p->peer_str, c->remote_addr);
  p->attempt = 1;
  p->state = P_WAIT_CONNECT;
  punch_attach(p, s);
}

/* ---- host hooks -------------------------------------------------------------------------------- */

void goop__dcutr_conn_ready(goop_host *h, goop_conn *c) {
  struct goop__dcutr *dc = h->dcutr;
  if (!dc || goop__conn_relayed(c))
    return;
  for (struct punch *p = dc->punches; p; p = p->next) {
    if (p->carrier != c && goop_peer_id_equal(&p->peer, &c->remote)) {
      p->succeeded = true;
      event_active(dc->done_ev, 0, 0);
    }
  }
}

goop_conn *goop__dcutr_prefer(goop_host *h, goop_conn *a, goop_conn *b) {
  bool ra = goop__conn_relayed(a), rb = goop__conn_relayed(b);
  if (ra != rb)
    return ra ? b : a;
  struct goop__dcutr *dc = h->dcutr;
  for (struct punch *p = dc ? dc->punches : NULL; p; p = p->next) {
    if (p->carrier == b)
      return a;
    if (p->carrier == a)
      return b;
  }
  return NULL;
}

int goop__dcutr_accept_role(goop_host *h, const struct sockaddr *sa, goop_peer_id *ret_peer) {
  struct goop__dcutr *dc = h->dcutr;
  if (!dc)
    return -1;
  struct sockaddr_storage n;
  sa_norm(sa, &n);
  for (struct punch *p = dc->punches; p; p = p->next) {
    if (!p->window)
      continue;
    for (size_t i = 0; i < p->n_addrs; i++) {
      if (sa_equal(&n, &p->sas[i])) {
        goop__log_debug(h->ctx, "hole punch with %s: accepted its socket as %s", p->peer_str,
                        p->is_b ? "server" : "client");
        *ret_peer = p->peer;
        return p->is_b ? 0 : 1;
      }
    }
  }
  return -1;
}

/* ---- setup and teardown ------------------------------------------------------------------------ */

int goop__dcutr_init(goop_host *h) {
  struct goop__dcutr *dc = calloc(1, sizeof(*dc));
  if (!dc)
    return GOOP_ENOMEM;
  dc->h = h;
  dc->grace_timer = evtimer_new(h->base, grace_cb, dc);
  dc->done_ev = event_new(h->base, -1, 0, done_cb, dc);
  int rc = dc->grace_timer && dc->done_ev ? 0 : GOOP_ENOMEM;
  if (!rc && goop__host_opt(h, GOOP_HOST_HOLE_PUNCHING))
    rc = goop_host_set_stream_handler(h, GOOP_PROTO_DCUTR, dcutr_serve, dc);
  if (rc) {
    if (dc->grace_timer)
      event_free(dc->grace_timer);
    if (dc->done_ev)
      event_free(dc->done_ev);
    free(dc);
    return rc;
  }
  h->dcutr = dc;
  return 0;
}

void goop__dcutr_free(goop_host *h) {
  struct goop__dcutr *dc = h->dcutr;
  if (!dc)
    return;
  while (dc->punches)
    punch_free(dc->punches);
  while (dc->graces) {
    struct grace *g = dc->graces;
    dc->graces = g->next;
    goop_conn_unref(g->c);
    free(g);
  }
  event_free(dc->grace_timer);
  event_free(dc->done_ev);
  free(dc);
  h->dcutr = NULL;
}
