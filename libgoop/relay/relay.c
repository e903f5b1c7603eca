/*
 * Circuit relay v2 service: /libp2p/circuit/relay/0.2.0/hop on a host.
 *
 * A hop stream carries one control message. RESERVE gets a reservation
 * (bound to the peer's connection, signed voucher) and the stream is closed.
 * CONNECT{peer B} opens /libp2p/circuit/relay/0.2.0/stop to B over B's
 * connection, sends STOP CONNECT{peer A, limit}, waits for B's STATUS and, on
 * OK, answers A and splices the two streams: bytes are copied both ways with
 * at most buffer_size bytes queued towards each side (a side is read only
 * while the other side's send buffer has room, so a slow reader slows the
 * sender through the yamux window), half-closes are forwarded and a reset of
 * one side resets the other. The circuit is reset when a direction carried
 * more than the data limit or the duration limit passed.
 *
 * Everything runs on the host's loop; no callback of the transport runs
 * synchronously inside the calls made here, so state changes are local.
 */
#include <goop/relay.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/multiaddr.h"
#include "relay-msg.h"
#include "transport-internal.h"

/* Deadline for the control message of a hop stream. */
#define CONTROL_TIMEOUT_MS 30000
/* Opening the stop stream and waiting for the target's answer. */
#define STOP_TIMEOUT_MS 10000
/* Bytes moved from one side to the other in one go (fewer, larger yamux frames). */
#define CHUNK (256u << 10)
/* Smallest per-direction buffer accepted. */
#define MIN_BUFFER 256

struct rsv {
  goop_relay *relay;
  goop_peer_id peer;
  char ip[64];
  goop_conn *conn; /* reference held */
  uint64_t expire; /* unix seconds */
  uint64_t seq;    /* creation order */
  struct event *timer;
  struct rsv *next, *prev;
};

struct hop_req {
  goop_relay *relay;
  goop_stream *s;
  goop_buf rx;
  struct event *timer;
  struct hop_req *next, *prev;
};

enum circ_state { C_OPENING, C_STOP_WAIT, C_SPLICED };

struct dir {
  goop_buf pre;   /* bytes read with a control message, sent before the rest */
  uint64_t bytes; /* carried so far */
  bool eof;       /* the source side finished; FIN forwarded */
};

struct circ {
  goop_relay *relay; /* NULL once detached (relay freed while the stop stream opens) */
  enum circ_state state;
  goop_peer_id src, dst;
  goop_stream *hop;  /* source side (A) */
  goop_stream *stop; /* target side (B) */
  goop_buf stop_rx;
  struct event *timer;
  uint32_t duration;
  uint64_t data;
  size_t bufsize;
  struct dir d[2]; /* 0: A -> B (hop -> stop), 1: B -> A */
  struct circ *next, *prev;
};

struct goop_relay {
  goop_host *host;
  goop_ctx *ctx;
  struct event_base *base;
  struct goop_relay_limits lim;
  struct goop_relay_stats st;
  int events_id;
  uint64_t rsv_seq;
  struct rsv *rsvs;
  size_t n_rsvs;
  struct hop_req *reqs;
  struct circ *circs;
  size_t n_circs;   /* connecting and spliced */
  uint8_t *scratch; /* CHUNK bytes: what pump() moves in one go */
};

void goop_relay_limits_default(struct goop_relay_limits *l) {
  if (!l)
    return;
  *l = (struct goop_relay_limits){
      .circuit_duration_s = 1800,
      .circuit_bytes = 16u << 20,
      .reservation_ttl_s = 3600,
      .max_reservations = 1024,
      .max_reservations_per_peer = 1,
      .max_reservations_per_ip = 8,
      .max_circuits = 1024,
      .max_circuits_per_peer = 16,
      .buffer_size = 64u << 10,
  };
}

static bool limits_ok(const struct goop_relay_limits *l) {
  return l->reservation_ttl_s > 0 && l->buffer_size >= MIN_BUFFER && l->buffer_size <= (64u << 20);
}

static void arm(struct event *ev, uint64_t ms) {
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
  evtimer_add(ev, &tv);
}

/* The connection runs over a circuit relay: reservations and circuits over
 * one are refused (relaying relayed traffic only burns the relay). */
static bool conn_relayed(goop_conn *c) {
  return goop_conn_is_relayed(c);
}

/* "/ip4/1.2.3.4" of the connection's remote address ("" if none). */
static void conn_ip(goop_conn *c, char *buf, size_t len) {
  char addr[200];
  buf[0] = '\0';
  if (goop_conn_remote_addr(c, addr, sizeof(addr)) <= 0)
    return;
  if (strncmp(addr, "/ip4/", 5) != 0 && strncmp(addr, "/ip6/", 5) != 0)
    return;
  const char *end = strchr(addr + 5, '/');
  size_t n = end ? (size_t)(end - addr) : strlen(addr);
  if (n >= len)
    return;
  memcpy(buf, addr, n);
  buf[n] = '\0';
}

/* Send one framed message and close our side; drops the reference. */
static void send_and_close(goop_stream *s, const goop_buf *msg) {
  goop_stream_set_callbacks(s, NULL, NULL);
  if (msg && msg->len && goop_stream_write(s, msg->data, msg->len) != (ssize_t)msg->len)
    goop_stream_reset(s);
  else
    (void)goop_stream_close_write(s);
  goop_stream_unref(s);
}

static void hop_status_and_close(goop_stream *s, uint32_t status) {
  goop_hop_msg m = {.has_type = true, .type = GOOP_HOP_STATUS, .has_status = true, .status = status};
  goop_buf out;
  goop_buf_init(&out, 0);
  if (goop_hop_encode(&m, &out) == 0)
    send_and_close(s, &out);
  else
    send_and_close(s, NULL);
  goop_buf_free(&out);
}

/* ---- reservations ------------------------------------------------------------------ */

static void rsv_free(struct rsv *v) {
  goop_relay *r = v->relay;
  GOOP_DL_REMOVE(r->rsvs, v, next, prev);
  r->n_rsvs--;
  event_free(v->timer);
  goop_conn_unref(v->conn);
  free(v);
}

static void rsv_expired(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  struct rsv *v = arg;
  char id[GOOP_PEER_ID_STR_MAX] = "?";
  (void)goop_peer_id_to_string(&v->peer, id, sizeof(id));
  goop__log_debug(v->relay->ctx, "relay: reservation of %s expired", id);
  rsv_free(v);
}

/* A live reservation of |peer|, or NULL. */
static struct rsv *rsv_find(goop_relay *r, const goop_peer_id *peer) {
  for (struct rsv *v = r->rsvs; v; v = v->next)
    if (goop_peer_id_equal(&v->peer, peer) && !goop_conn_is_closed(v->conn))
      return v;
  return NULL;
}

static void on_disconnected(goop_host *h, goop_conn *c, int reason, void *ud) {
  (void)h, (void)reason;
  goop_relay *r = ud;
  struct rsv *v = r->rsvs;
  while (v) {
    struct rsv *nx = v->next;
    if (v->conn == c)
      rsv_free(v);
    v = nx;
  }
}

/* The reservation answer: our addresses with /p2p/<relay>, a voucher, the limit. */
static int build_rsvp_reply(goop_relay *r, const goop_peer_id *peer, uint64_t expire, goop_buf *out) {
  char self[GOOP_PEER_ID_STR_MAX];
  goop_peer_id rid;
  goop_host_peer_id(r->host, &rid);
  if (goop_peer_id_to_string(&rid, self, sizeof(self)) < 0)
    return GOOP_EINVAL;

  goop_buf mas[GOOP_RELAY_MAX_ADDRS];
  size_t n = 0;
  char text[256], full[400];
  for (size_t i = 0; n < GOOP_RELAY_MAX_ADDRS && goop_host_announce_addr(r->host, i, text, sizeof(text)) > 0;
       i++) {
    if (strstr(text, "/p2p-circuit") || strstr(text, "/p2p/"))
      continue; /* our own relayed addresses are no use to a relay client */
    snprintf(full, sizeof(full), "%s/p2p/%s", text, self);
    goop_buf_init(&mas[n], GOOP_MA_MAX);
    if (goop_ma_from_string(full, &mas[n]) != 0) {
      goop_buf_free(&mas[n]);
      continue;
    }
    n++;
  }

  goop_buf voucher;
  goop_buf_init(&voucher, 0);
  int rc = goop_relay_voucher_seal(r->host->id, peer, expire, &voucher);
  goop_hop_msg m = {.has_type = true, .type = GOOP_HOP_STATUS, .has_status = true, .status = GOOP_RELAY_OK};
  m.reservation.present = true;
  m.reservation.expire = expire;
  m.reservation.voucher = (goop_relay_bytes){voucher.data, voucher.len};
  m.limit.present = r->lim.circuit_duration_s || r->lim.circuit_bytes;
  m.limit.duration = r->lim.circuit_duration_s;
  m.limit.data = r->lim.circuit_bytes;
  /* Drop addresses from the end until the message fits. */
  for (size_t k = n + 1; !rc && k-- > 0;) {
    m.reservation.n_addrs = k;
    for (size_t i = 0; i < k; i++)
      m.reservation.addrs[i] = (goop_relay_bytes){mas[i].data, mas[i].len};
    rc = goop_hop_encode(&m, out);
    if (rc != GOOP_EMSGSIZE || k == 0)
      break;
    rc = 0;
  }
  for (size_t i = 0; i < n; i++)
    goop_buf_free(&mas[i]);
  goop_buf_free(&voucher);
  return rc;
}

static void handle_reserve(goop_relay *r, goop_stream *s) {
  goop_conn *c = goop_stream_conn(s);
  goop_peer_id peer;
  char id[GOOP_PEER_ID_STR_MAX] = "?", ip[64];
  goop_stream_remote_peer(s, &peer);
  (void)goop_peer_id_to_string(&peer, id, sizeof(id));
  conn_ip(c, ip, sizeof(ip));

  uint32_t status = 0;
  const char *why = NULL;
  if (conn_relayed(c)) {
    status = GOOP_RELAY_PERMISSION_DENIED;
    why = "over a relayed connection";
  } else if (r->lim.max_reservations_per_peer == 0) {
    status = GOOP_RELAY_RESERVATION_REFUSED;
    why = "reservations disabled";
  }

  /* This peer's reservations beyond max-1 are replaced: they do not count. */
  size_t n_peer = 0, n_ip = 0, n_total = r->n_rsvs;
  for (struct rsv *v = r->rsvs; v; v = v->next)
    if (goop_peer_id_equal(&v->peer, &peer))
      n_peer++;
  size_t replace = n_peer >= r->lim.max_reservations_per_peer && r->lim.max_reservations_per_peer
                       ? n_peer - r->lim.max_reservations_per_peer + 1
                       : 0;
  for (struct rsv *v = r->rsvs; v; v = v->next)
    if (strcmp(v->ip, ip) == 0)
      n_ip++;
  if (!status && n_total - replace >= r->lim.max_reservations) {
    status = GOOP_RELAY_RESERVATION_REFUSED;
    why = "too many reservations";
  }
  /* Replaced reservations of this peer share its IP in practice; count them out only if so. */
  size_t replace_ip = 0;
  for (struct rsv *v = r->rsvs; replace && v; v = v->next)
    if (goop_peer_id_equal(&v->peer, &peer) && strcmp(v->ip, ip) == 0)
      replace_ip++;
  if (replace_ip > replace)
    replace_ip = replace;
  if (!status && n_ip - replace_ip >= r->lim.max_reservations_per_ip) {
    status = GOOP_RELAY_RESERVATION_REFUSED;
    why = "too many reservations from this IP";
  }
  if (status) {
    r->st.reservations_refused++;
    goop__log_info(r->ctx, "relay: reservation of %s (%s) refused: %s", id, ip, why);
    hop_status_and_close(s, status);
    return;
  }

  struct rsv *v = calloc(1, sizeof(*v));
  if (v)
    v->timer = evtimer_new(r->base, rsv_expired, v);
  uint64_t expire = (uint64_t)time(NULL) + r->lim.reservation_ttl_s;
  goop_buf out;
  goop_buf_init(&out, 0);
  if (!v || !v->timer || build_rsvp_reply(r, &peer, expire, &out) != 0) {
    if (v && v->timer)
      event_free(v->timer);
    free(v);
    goop_buf_free(&out);
    r->st.reservations_refused++;
    hop_status_and_close(s, GOOP_RELAY_RESERVATION_REFUSED);
    return;
  }
  /* Replace the oldest ones of this peer. */
  while (replace--) {
    struct rsv *oldest = NULL;
    for (struct rsv *o = r->rsvs; o; o = o->next)
      if (goop_peer_id_equal(&o->peer, &peer) && (!oldest || o->seq < oldest->seq))
        oldest = o;
    if (oldest)
      rsv_free(oldest);
  }
  v->relay = r;
  v->peer = peer;
  snprintf(v->ip, sizeof(v->ip), "%s", ip);
  v->conn = goop_conn_ref(c);
  v->expire = expire;
  v->seq = ++r->rsv_seq;
  arm(v->timer, (uint64_t)r->lim.reservation_ttl_s * 1000u);
  GOOP_DL_PUSH(r->rsvs, v, next, prev);
  r->n_rsvs++;
  r->st.reservations_accepted++;
  goop__log_debug(r->ctx, "relay: reservation for %s (%s) until %llu", id, ip, (unsigned long long)expire);
  send_and_close(s, &out);
  goop_buf_free(&out);
}

/* ---- circuits --------------------------------------------------------------------------- */

static void circ_free(struct circ *c) {
  goop_relay *r = c->relay;
  if (r) {
    GOOP_DL_REMOVE(r->circs, c, next, prev);
    r->n_circs--;
    if (c->state == C_SPLICED)
      r->st.circuits_active--;
  }
  if (c->timer)
    event_free(c->timer);
  goop_buf_free(&c->stop_rx);
  goop_buf_free(&c->d[0].pre);
  goop_buf_free(&c->d[1].pre);
  free(c);
}

static void drop_stream(goop_stream **ps, bool reset) {
  if (!*ps)
    return;
  goop_stream_set_callbacks(*ps, NULL, NULL);
  if (reset)
    goop_stream_reset(*ps);
  goop_stream_unref(*ps);
  *ps = NULL;
}

/* Before the splice: tell A |status|, drop B's stream, forget the circuit. */
static void circ_refuse(struct circ *c, uint32_t status) {
  goop_relay *r = c->relay;
  if (r)
    r->st.circuits_refused++;
  if (c->hop) {
    goop_stream *s = c->hop;
    c->hop = NULL;
    hop_status_and_close(s, status);
  }
  drop_stream(&c->stop, true);
  circ_free(c);
}

/* Reset both sides and forget the circuit. */
static void circ_kill(struct circ *c) {
  drop_stream(&c->hop, true);
  drop_stream(&c->stop, true);
  circ_free(c);
}

static void circ_limit(struct circ *c, const char *what) {
  if (c->relay) {
    c->relay->st.circuits_limit_closed++;
    goop__log_debug(c->relay->ctx, "relay: circuit reset: %s limit reached", what);
  }
  circ_kill(c);
}

static goop_stream *dir_from(struct circ *c, int i) {
  return i == 0 ? c->hop : c->stop;
}
static goop_stream *dir_to(struct circ *c, int i) {
  return i == 0 ? c->stop : c->hop;
}

/* Make sure on_writable fires when |s| (send buffer full) has room again. */
static void want_writable(goop_stream *s) {
  uint8_t b = 0;
  (void)goop_stream_write(s, &b, 1); /* buffer is full: GOOP_EAGAIN, arms on_writable */
}

/* Count |n| relayed bytes in direction |i|. */
static void count(struct circ *c, int i, size_t n) {
  c->d[i].bytes += n;
  if (c->relay)
    c->relay->st.bytes_relayed += n;
}

/* Move what can be moved in direction |i|. Returns false if the circuit is gone. */
static bool pump(struct circ *c, int i) {
  struct dir *d = &c->d[i];
  goop_stream *from = dir_from(c, i), *to = dir_to(c, i);
  uint8_t *buf = c->relay->scratch;
  if (d->eof)
    return true;
  while (d->pre.len) {
    ssize_t w = goop_stream_write(to, d->pre.data, d->pre.len);
    if (w == GOOP_EAGAIN)
      return true;
    if (w < 0) {
      circ_kill(c);
      return false;
    }
    goop_buf_consume(&d->pre, (size_t)w);
  }
  for (;;) {
    size_t pending = goop_stream_pending(to);
    if (pending >= c->bufsize) {
      want_writable(to);
      return true;
    }
    size_t room = GOOP_MIN(c->bufsize - pending, CHUNK);
    bool probe = false;
    if (c->data) {
      uint64_t left = c->data > d->bytes ? c->data - d->bytes : 0;
      if (left == 0) {
        room = 1; /* any further byte is over the limit */
        probe = true;
      } else if (left < room) {
        room = (size_t)left;
      }
    }
    ssize_t n = goop_stream_read(from, buf, room);
    if (n == GOOP_EAGAIN)
      return true;
    if (n < 0) {
      circ_kill(c);
      return false;
    }
    if (n == 0) {
      d->eof = true;
      (void)goop_stream_close_write(to);
      if (c->d[1 - i].eof) {
        /* Both directions finished: queued bytes and FINs still go out. */
        drop_stream(&c->hop, false);
        drop_stream(&c->stop, false);
        circ_free(c);
        return false;
      }
      return true;
    }
    if (probe) {
      circ_limit(c, "data");
      return false;
    }
    ssize_t w = goop_stream_write(to, buf, (size_t)n);
    if (w < 0 && w != GOOP_EAGAIN) {
      circ_kill(c);
      return false;
    }
    if (w < 0)
      w = 0;
    if (w < n && goop_buf_append(&d->pre, buf + w, (size_t)(n - w)) != 0) {
      circ_kill(c);
      return false;
    }
    count(c, i, (size_t)n);
    if (d->pre.len) {
      want_writable(to);
      return true;
    }
  }
}

static void splice_readable(goop_stream *s, void *ud) {
  struct circ *c = ud;
  (void)pump(c, s == c->hop ? 0 : 1);
}

static void splice_writable(goop_stream *s, void *ud) {
  struct circ *c = ud;
  (void)pump(c, s == c->hop ? 1 : 0);
}

static void splice_error(goop_stream *s, int err, void *ud) {
  struct circ *c = ud;
  if (c->relay)
    goop__log_debug(c->relay->ctx, "relay: circuit %s side: %s", s == c->hop ? "source" : "target",
                    goop_strerror(err));
  circ_kill(c);
}

static const struct goop_stream_callbacks splice_cbs = {
    .version = GOOP_STREAM_CALLBACKS_V1,
    .on_readable = splice_readable,
    .on_writable = splice_writable,
    .on_error = splice_error,
};

static void circ_timer(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  struct circ *c = arg;
  if (c->state == C_SPLICED)
    circ_limit(c, "duration");
  else
    circ_refuse(c, GOOP_RELAY_CONNECTION_FAILED);
}

static void splice(struct circ *c) {
  goop_relay *r = c->relay;
  goop_hop_msg m = {.has_type = true, .type = GOOP_HOP_STATUS, .has_status = true, .status = GOOP_RELAY_OK};
  m.limit.present = c->duration || c->data;
  m.limit.duration = c->duration;
  m.limit.data = c->data;
  goop_buf out;
  goop_buf_init(&out, 0);
  int rc = goop_hop_encode(&m, &out);
  if (!rc && goop_stream_write(c->hop, out.data, out.len) != (ssize_t)out.len)
    rc = GOOP_EIO;
  goop_buf_free(&out);
  if (rc) {
    r->st.circuits_refused++;
    circ_kill(c);
    return;
  }
  evtimer_del(c->timer);
  c->state = C_SPLICED;
  r->st.circuits_active++;
  r->st.circuits_opened++;
  /* Each side queues at most bufsize bytes (goop_stream_write() refuses more). */
  c->hop->wmax = c->bufsize;
  c->stop->wmax = c->bufsize;
  if (c->duration)
    arm(c->timer, (uint64_t)c->duration * 1000u);
  goop_stream_set_callbacks(c->hop, &splice_cbs, c);
  goop_stream_set_callbacks(c->stop, &splice_cbs, c);
  /* Bytes that came with the control messages go first. */
  count(c, 0, c->d[0].pre.len);
  count(c, 1, c->d[1].pre.len);
  if (pump(c, 0))
    (void)pump(c, 1);
}

static void stop_readable(goop_stream *s, void *ud) {
  struct circ *c = ud;
  uint8_t buf[GOOP_RELAY_MSG_MAX + 16];
  for (;;) {
    size_t room = sizeof(buf) - c->stop_rx.len;
    ssize_t n = room ? goop_stream_read(s, buf, room) : 0;
    if (n == GOOP_EAGAIN)
      return;
    if (n > 0 && goop_buf_append(&c->stop_rx, buf, (size_t)n) != 0)
      n = GOOP_ENOMEM;
    const uint8_t *body;
    size_t len, used;
    int rc = goop_relay_frame_take(c->stop_rx.data, c->stop_rx.len, &body, &len, &used);
    if (rc == GOOP_EAGAIN && n > 0)
      continue;
    goop_stop_msg m;
    if (rc == 0)
      rc = goop_stop_decode(body, len, &m);
    if (rc || m.type != GOOP_STOP_STATUS || !m.has_status || m.status != GOOP_RELAY_OK) {
      if (c->relay) {
        const char *why = rc                           ? goop_strerror(rc)
                          : m.type != GOOP_STOP_STATUS ? "unexpected message"
                                                       : goop_relay_status_name(m.status);
        goop__log_debug(c->relay->ctx, "relay: target refused the circuit: %s", why);
      }
      circ_refuse(c, GOOP_RELAY_CONNECTION_FAILED);
      return;
    }
    if (used < c->stop_rx.len &&
        goop_buf_append(&c->d[1].pre, c->stop_rx.data + used, c->stop_rx.len - used) != 0) {
      circ_refuse(c, GOOP_RELAY_CONNECTION_FAILED);
      return;
    }
    goop_buf_free(&c->stop_rx);
    splice(c);
    return;
  }
}

static void wait_error(goop_stream *s, int err, void *ud) {
  struct circ *c = ud;
  if (s == c->hop) {
    /* The source went away: nothing to answer. */
    drop_stream(&c->hop, false);
    if (c->relay)
      c->relay->st.circuits_refused++;
    drop_stream(&c->stop, true);
    circ_free(c);
    return;
  }
  if (c->relay)
    goop__log_debug(c->relay->ctx, "relay: stop stream: %s", goop_strerror(err));
  circ_refuse(c, GOOP_RELAY_CONNECTION_FAILED);
}

static void wait_ignore(goop_stream *s, void *ud) {
  (void)s, (void)ud; /* source bytes wait in the stream until the splice */
}

static const struct goop_stream_callbacks hop_wait_cbs = {
    .version = GOOP_STREAM_CALLBACKS_V1,
    .on_readable = wait_ignore,
    .on_error = wait_error,
};
static const struct goop_stream_callbacks stop_wait_cbs = {
    .version = GOOP_STREAM_CALLBACKS_V1,
    .on_readable = stop_readable,
    .on_error = wait_error,
};

static void stop_opened(goop_host *h, int status, goop_stream *s, void *ud) {
  (void)h;
  struct circ *c = ud;
  if (!c->relay) { /* the relay went away meanwhile */
    drop_stream(&s, true);
    circ_free(c);
    return;
  }
  if (!c->hop) { /* the source went away meanwhile */
    drop_stream(&s, true);
    c->relay->st.circuits_refused++;
    circ_free(c);
    return;
  }
  if (status) {
    goop__log_debug(c->relay->ctx, "relay: stop stream to the target: %s", goop_strerror(status));
    circ_refuse(c, GOOP_RELAY_CONNECTION_FAILED);
    return;
  }
  c->stop = s;
  goop_stop_msg m = {.has_type = true, .type = GOOP_STOP_CONNECT};
  m.peer.present = true;
  m.peer.id = (goop_relay_bytes){c->src.bytes, c->src.len};
  m.limit.present = c->duration || c->data;
  m.limit.duration = c->duration;
  m.limit.data = c->data;
  goop_buf out;
  goop_buf_init(&out, 0);
  int rc = goop_stop_encode(&m, &out);
  if (!rc && goop_stream_write(s, out.data, out.len) != (ssize_t)out.len)
    rc = GOOP_EIO;
  goop_buf_free(&out);
  if (rc) {
    circ_refuse(c, GOOP_RELAY_CONNECTION_FAILED);
    return;
  }
  c->state = C_STOP_WAIT;
  goop_stream_set_callbacks(c->hop, &hop_wait_cbs, c);
  goop_stream_set_callbacks(s, &stop_wait_cbs, c);
  arm(c->timer, STOP_TIMEOUT_MS);
}

/* While the stop stream opens, only the source can fail. */
static void opening_error(goop_stream *s, int err, void *ud) {
  (void)s, (void)err;
  struct circ *c = ud;
  drop_stream(&c->hop, false); /* stop_opened() sees it and cleans up */
}

static const struct goop_stream_callbacks hop_opening_cbs = {
    .version = GOOP_STREAM_CALLBACKS_V1,
    .on_readable = wait_ignore,
    .on_error = opening_error,
};

static size_t circuits_of(goop_relay *r, const goop_peer_id *p) {
  size_t n = 0;
  for (struct circ *c = r->circs; c; c = c->next)
    if (goop_peer_id_equal(&c->src, p) || goop_peer_id_equal(&c->dst, p))
      n++;
  return n;
}

static void handle_connect(goop_relay *r, goop_stream *s, const goop_hop_msg *m, const uint8_t *rest,
                           size_t rest_len) {
  goop_peer_id src, dst;
  char sid[GOOP_PEER_ID_STR_MAX] = "?", did[GOOP_PEER_ID_STR_MAX] = "?";
  goop_stream_remote_peer(s, &src);
  (void)goop_peer_id_to_string(&src, sid, sizeof(sid));
  if (!m->peer.present || goop_peer_id_from_bytes(m->peer.id.data, m->peer.id.len, &dst) != 0) {
    r->st.circuits_refused++;
    hop_status_and_close(s, GOOP_RELAY_MALFORMED_MESSAGE);
    return;
  }
  (void)goop_peer_id_to_string(&dst, did, sizeof(did));
  uint32_t status = 0;
  const char *why = NULL;
  if (conn_relayed(goop_stream_conn(s))) {
    status = GOOP_RELAY_PERMISSION_DENIED;
    why = "over a relayed connection";
  } else if (!rsv_find(r, &dst)) {
    status = GOOP_RELAY_NO_RESERVATION;
    why = "no reservation";
  } else if (r->n_circs >= r->lim.max_circuits) {
    status = GOOP_RELAY_RESOURCE_LIMIT_EXCEEDED;
    why = "too many circuits";
  } else if (circuits_of(r, &src) >= r->lim.max_circuits_per_peer ||
             circuits_of(r, &dst) >= r->lim.max_circuits_per_peer) {
    status = GOOP_RELAY_RESOURCE_LIMIT_EXCEEDED;
    why = "too many circuits for this peer";
  }
  if (status) {
    r->st.circuits_refused++;
    goop__log_info(r->ctx, "relay: circuit %s -> %s refused: %s", sid, did, why);
    hop_status_and_close(s, status);
    return;
  }

  struct circ *c = calloc(1, sizeof(*c));
  if (c)
    c->timer = evtimer_new(r->base, circ_timer, c);
  if (!c || !c->timer || goop_buf_append(&c->d[0].pre, rest, rest_len) != 0) {
    if (c) {
      if (c->timer)
        event_free(c->timer);
      goop_buf_free(&c->d[0].pre);
      free(c);
    }
    r->st.circuits_refused++;
    hop_status_and_close(s, GOOP_RELAY_RESOURCE_LIMIT_EXCEEDED);
    return;
  }
  c->relay = r;
  c->state = C_OPENING;
  c->src = src;
  c->dst = dst;
  c->hop = s;
  c->duration = r->lim.circuit_duration_s;
  c->data = r->lim.circuit_bytes;
  c->bufsize = r->lim.buffer_size;
  goop_buf_init(&c->stop_rx, 0);
  GOOP_DL_PUSH(r->circs, c, next, prev);
  r->n_circs++;
  goop_stream_set_callbacks(s, &hop_opening_cbs, c);
  static const char *const protos[] = {GOOP_PROTO_RELAY_STOP};
  int rc = goop_host_new_stream(r->host, &dst, protos, 1, STOP_TIMEOUT_MS, stop_opened, c);
  if (rc) {
    goop__log_debug(r->ctx, "relay: stop stream to %s: %s", did, goop_strerror(rc));
    circ_refuse(c, GOOP_RELAY_CONNECTION_FAILED);
    return;
  }
  goop__log_debug(r->ctx, "relay: circuit %s -> %s: connecting", sid, did);
}

/* ---- hop streams ------------------------------------------------------------------------ */

static void req_free(struct hop_req *q) {
  GOOP_DL_REMOVE(q->relay->reqs, q, next, prev);
  event_free(q->timer);
  goop_buf_free(&q->rx);
  free(q);
}

static void req_fail(struct hop_req *q, uint32_t status) {
  goop_stream *s = q->s;
  req_free(q);
  if (status)
    hop_status_and_close(s, status);
  else
    drop_stream(&s, true);
}

static void req_readable(goop_stream *s, void *ud) {
  struct hop_req *q = ud;
  goop_relay *r = q->relay;
  uint8_t buf[GOOP_RELAY_MSG_MAX + 16];
  for (;;) {
    size_t room = sizeof(buf) - q->rx.len;
    ssize_t n = room ? goop_stream_read(s, buf, room) : 0;
    if (n == GOOP_EAGAIN)
      return;
    if (n < 0) {
      req_fail(q, 0);
      return;
    }
    if (n > 0 && goop_buf_append(&q->rx, buf, (size_t)n) != 0) {
      req_fail(q, 0);
      return;
    }
    const uint8_t *body;
    size_t len, used;
    int rc = goop_relay_frame_take(q->rx.data, q->rx.len, &body, &len, &used);
    if (rc == GOOP_EAGAIN && n > 0)
      continue;
    if (rc == GOOP_EAGAIN) { /* end of stream */
      if (q->rx.len) {
        req_fail(q, GOOP_RELAY_MALFORMED_MESSAGE); /* inside the message */
      } else {
        req_free(q);
        send_and_close(s, NULL);
      }
      return;
    }
    goop_hop_msg m;
    if (rc == 0)
      rc = goop_hop_decode(body, len, &m);
    if (rc) {
      goop__log_debug(r->ctx, "relay: malformed hop message: %s", goop_strerror(rc));
      req_fail(q, GOOP_RELAY_MALFORMED_MESSAGE);
      return;
    }
    /* The stream leaves the request. */
    goop_buf rx = q->rx;
    q->rx = (goop_buf){0};
    req_free(q);
    if (m.type == GOOP_HOP_RESERVE)
      handle_reserve(r, s);
    else if (m.type == GOOP_HOP_CONNECT)
      handle_connect(r, s, &m, rx.data + used, rx.len - used);
    else
      hop_status_and_close(s, GOOP_RELAY_UNEXPECTED_MESSAGE);
    goop_buf_free(&rx);
    return;
  }
}

static void req_error(goop_stream *s, int err, void *ud) {
  (void)s, (void)err;
  req_fail(ud, 0);
}

static void req_timeout(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  struct hop_req *q = arg;
  goop__log_debug(q->relay->ctx, "relay: no hop message in time");
  req_fail(q, 0);
}

static const struct goop_stream_callbacks req_cbs = {
    .version = GOOP_STREAM_CALLBACKS_V1,
    .on_readable = req_readable,
    .on_error = req_error,
};

static void hop_handler(goop_host *h, goop_stream *s, void *ud) {
  (void)h;
  goop_relay *r = ud;
  struct hop_req *q = calloc(1, sizeof(*q));
  if (q)
    q->timer = evtimer_new(r->base, req_timeout, q);
  if (!q || !q->timer) {
    free(q);
    drop_stream(&s, true);
    return;
  }
  q->relay = r;
  q->s = s;
  goop_buf_init(&q->rx, GOOP_RELAY_MSG_MAX + 16);
  GOOP_DL_PUSH(r->reqs, q, next, prev);
  arm(q->timer, CONTROL_TIMEOUT_MS);
  goop_stream_set_callbacks(s, &req_cbs, q);
}

/* ---- public API ------------------------------------------------------------------------- */

int goop_relay_new(goop_host *host, const struct goop_relay_limits *limits, goop_relay **ret) {
  goop_return_val_if_fail(host && ret, GOOP_EINVAL);
  struct goop_relay_limits lim;
  if (limits)
    lim = *limits;
  else
    goop_relay_limits_default(&lim);
  if (!limits_ok(&lim))
    return GOOP_EINVAL;
  if (goop__host_find_handler(host, GOOP_PROTO_RELAY_HOP))
    return GOOP_EBUSY;
  goop_relay *r = calloc(1, sizeof(*r));
  if (r)
    r->scratch = malloc(CHUNK);
  if (!r || !r->scratch) {
    free(r);
    return GOOP_ENOMEM;
  }
  r->host = host;
  r->ctx = goop_host_get_ctx(host);
  r->base = goop_ctx_get_base(r->ctx);
  r->lim = lim;
  struct goop_host_events ev = {.version = GOOP_HOST_EVENTS_V1, .on_disconnected = on_disconnected};
  int rc = goop_host_add_events(host, &ev, r, &r->events_id);
  if (rc) {
    free(r->scratch);
    free(r);
    return rc;
  }
  rc = goop_host_set_stream_handler(host, GOOP_PROTO_RELAY_HOP, hop_handler, r);
  if (rc) {
    (void)goop_host_remove_events(host, r->events_id);
    free(r->scratch);
    free(r);
    return rc;
  }
  *ret = r;
  return 0;
}

int goop_relay_set_limits(goop_relay *relay, const struct goop_relay_limits *limits) {
  goop_return_val_if_fail(relay && limits, GOOP_EINVAL);
  if (!limits_ok(limits))
    return GOOP_EINVAL;
  relay->lim = *limits;
  return 0;
}

void goop_relay_get_stats(const goop_relay *relay, struct goop_relay_stats *ret) {
  if (!relay || !ret)
    return;
  *ret = relay->st;
  ret->reservations_active = relay->n_rsvs;
}

void goop_relay_free(goop_relay *relay) {
  if (!relay)
    return;
  goop_host *h = relay->host;
  const struct goop__handler *hd = goop__host_find_handler(h, GOOP_PROTO_RELAY_HOP);
  if (hd && hd->fn == hop_handler && hd->ud == relay)
    (void)goop_host_remove_stream_handler(h, GOOP_PROTO_RELAY_HOP);
  (void)goop_host_remove_events(h, relay->events_id);
  while (relay->reqs)
    req_fail(relay->reqs, 0);
  while (relay->circs) {
    struct circ *c = relay->circs;
    if (c->state == C_OPENING) {
      /* The open callback still comes: it frees the detached circuit. */
      GOOP_DL_REMOVE(relay->circs, c, next, prev);
      relay->n_circs--;
      c->relay = NULL;
      drop_stream(&c->hop, true);
    } else {
      circ_kill(c);
    }
  }
  while (relay->rsvs)
    rsv_free(relay->rsvs);
  free(relay->scratch);
  free(relay);
}
