/*
 * Circuit relay v2, client side: relayed connections.
 *
 *   - a byte pipe over a yamux stream (hop on the dialler, stop on the
 *     target), secured and multiplexed by conn.c like a TCP pipe;
 *   - the stop handler: a relay tells us someone wants to reach us;
 *   - dialling through a relay (hop CONNECT), as one attempt of a host dial;
 *   - reservations: a slot on a relay, kept alive, refreshed and retried,
 *     whose circuit addresses the host announces.
 */
#include <goop/relay.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/multiaddr.h"
#include "relay-msg.h"
#include "transport-internal.h"

/* Deadline for one hop/stop exchange (a message each way). */
#define CIRCUIT_MSG_TIMEOUT_MS 10000
/* A pipe that shuts down waits at most this long for its output to go out. */
#define CIRCUIT_LINGER_MS 5000
/* Read size from the carrier stream. */
#define CIRCUIT_READ_CHUNK (64u << 10)
/* Circuit addresses kept per reservation. */
#define RSV_MAX_ADDRS 8
/* Reservation retry backoff. */
#define RSV_BACKOFF_MIN_MS 1000u
#define RSV_BACKOFF_MAX_MS 60000u

static void set_tv(struct timeval *tv, uint64_t ms) {
  tv->tv_sec = (time_t)(ms / 1000);
  tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

bool goop_conn_is_relayed(const goop_conn *conn) {
  return conn && conn->relayed;
}

/* ---- the pipe ------------------------------------------------------------------------ */

struct circuit_pipe {
  goop__pipe base;
  goop_host *h;
  goop_stream *s; /* carrier stream (our reference); NULL once the host tore it down */
  struct evbuffer *in;
  struct evbuffer *out; /* bytes the stream did not take yet */
  char remote[GOOP_MA_MAX / 4 + GOOP_PEER_ID_STR_MAX];
  bool shutting_down;
  bool fin_sent;
  bool closed_reported;
  int err; /* a write failure, reported from the kick event */
  int depth;
  bool freed;
  struct event *kick;   /* feed buffered input / report a failure */
  struct event *linger; /* bound on the flush after shutdown */
};

static void cp_destroy(struct circuit_pipe *p) {
  if (p->s) {
    goop_stream_set_callbacks(p->s, NULL, NULL);
    if (p->fin_sent || (p->shutting_down && evbuffer_get_length(p->out) == 0))
      (void)goop_stream_close_write(p->s);
    else
      goop_stream_reset(p->s);
    goop_stream_unref(p->s);
    p->s = NULL;
  }
  if (p->kick)
    event_free(p->kick);
  if (p->linger)
    event_free(p->linger);
  if (p->in)
    evbuffer_free(p->in);
  if (p->out)
    evbuffer_free(p->out);
  free(p);
}

static void cp_enter(struct circuit_pipe *p) {
  p->depth++;
}

/* Returns true if the pipe was freed. */
static bool cp_leave(struct circuit_pipe *p) {
  if (--p->depth == 0 && p->freed) {
    cp_destroy(p);
    return true;
  }
  return false;
}

/* Report the end of the pipe to its connection once. */
static void cp_report_closed(struct circuit_pipe *p, int err) {
  if (p->closed_reported || p->freed || !p->base.conn)
    return;
  p->closed_reported = true;
  goop__conn_pipe_closed(p->base.conn, err);
}

/* Move queued output into the stream. No upcalls. */
static void cp_flush(struct circuit_pipe *p) {
  if (!p->s)
    return;
  while (evbuffer_get_length(p->out) > 0) {
    struct evbuffer_iovec v;
    if (evbuffer_peek(p->out, -1, NULL, &v, 1) < 1)
      break;
    ssize_t n = goop_stream_write(p->s, v.iov_base, v.iov_len);
    if (n == GOOP_EAGAIN || n == 0)
      break;
    if (n < 0) {
      if (!p->err)
        p->err = (int)n;
      event_active(p->kick, 0, 0);
      return;
    }
    evbuffer_drain(p->out, (size_t)n);
  }
  if (p->shutting_down && !p->fin_sent && evbuffer_get_length(p->out) == 0) {
    p->fin_sent = true;
    (void)goop_stream_close_write(p->s);
  }
}

/* Read everything the stream has and feed it to the connection. */
static void cp_pull(struct circuit_pipe *p) {
  int end = 0; /* GOOP_ECLOSED at end of stream, or an error */
  for (;;) {
    if (evbuffer_get_length(p->in) && p->base.conn && !p->shutting_down) {
      goop__conn_pipe_input(p->base.conn, p->in);
      if (p->freed)
        return;
    }
    if (p->shutting_down)
      evbuffer_drain(p->in, evbuffer_get_length(p->in));
    if (!p->s || end)
      break;
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(p->in, CIRCUIT_READ_CHUNK, &v, 1) < 1) {
      end = GOOP_ENOMEM;
      break;
    }
    ssize_t n = goop_stream_read(p->s, v.iov_base, GOOP_MIN(v.iov_len, (size_t)CIRCUIT_READ_CHUNK));
    v.iov_len = n > 0 ? (size_t)n : 0;
    evbuffer_commit_space(p->in, &v, 1);
    if (n == GOOP_EAGAIN)
      break;
    if (n == 0)
      end = GOOP_ECLOSED;
    else if (n < 0)
      end = (int)n;
  }
  if (end)
    cp_report_closed(p, end);
}

static void cp_readable(goop_stream *s, void *ud) {
  (void)s;
  struct circuit_pipe *p = ud;
  cp_enter(p);
  cp_pull(p);
  cp_leave(p);
}

static void cp_writable(goop_stream *s, void *ud) {
  (void)s;
  struct circuit_pipe *p = ud;
  cp_enter(p);
  cp_flush(p);
  if (!p->freed && p->base.conn) {
    if (p->shutting_down) {
      if (p->fin_sent)
        cp_report_closed(p, 0);
    } else if (evbuffer_get_length(p->out) < GOOP_PIPE_LOW_WATER) {
      goop__conn_pipe_drained(p->base.conn);
    }
  }
  cp_leave(p);
}

static void cp_error(goop_stream *s, int err, void *ud) {
  (void)s;
  struct circuit_pipe *p = ud;
  cp_enter(p);
  cp_report_closed(p, err ? err : GOOP_ECONNRESET);
  cp_leave(p);
}

static const struct goop_stream_callbacks cp_cbs = {
    .version = GOOP_STREAM_CALLBACKS_V1,
    .on_readable = cp_readable,
    .on_writable = cp_writable,
    .on_error = cp_error,
};

/* Host teardown destroys the stream under us. */
static void cp_stream_gone(void *ud) {
  struct circuit_pipe *p = ud;
  p->s = NULL;
}

static void cp_kick_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct circuit_pipe *p = arg;
  goop_host *h = p->h;
  goop__host_enter(h);
  cp_enter(p);
  if (p->err)
    cp_report_closed(p, p->err);
  else
    cp_pull(p);
  cp_leave(p);
  goop__host_leave(h);
}

static void cp_linger_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct circuit_pipe *p = arg;
  goop_host *h = p->h;
  goop__host_enter(h);
  cp_enter(p);
  cp_report_closed(p, GOOP_ETIMEDOUT);
  cp_leave(p);
  goop__host_leave(h);
}

static int cp_write(goop__pipe *base, const uint8_t *data, size_t len) {
  struct circuit_pipe *p = (struct circuit_pipe *)base;
  if (p->shutting_down || !p->s)
    return GOOP_ECLOSED;
  if (p->err)
    return p->err;
  if (evbuffer_get_length(p->out) == 0) {
    /* Straight into the stream; only what it cannot take waits here. */
    ssize_t n = goop_stream_write(p->s, data, len);
    if (n < 0 && n != GOOP_EAGAIN)
      return (int)n;
    if (n > 0) {
      data += n;
      len -= (size_t)n;
    }
    if (len == 0)
      return 0;
  }
  if (evbuffer_add(p->out, data, len) != 0)
    return GOOP_ENOMEM;
  cp_flush(p);
  return 0;
}

static size_t cp_out_pending(const goop__pipe *base) {
  const struct circuit_pipe *p = (const struct circuit_pipe *)base;
  return evbuffer_get_length(p->out);
}

static void cp_shutdown(goop__pipe *base) {
  struct circuit_pipe *p = (struct circuit_pipe *)base;
  if (p->shutting_down)
    return;
  p->shutting_down = true;
  cp_flush(p);
  if (!p->fin_sent) {
    struct timeval tv;
    set_tv(&tv, CIRCUIT_LINGER_MS);
    evtimer_add(p->linger, &tv);
  }
}

static void cp_free(goop__pipe *base) {
  struct circuit_pipe *p = (struct circuit_pipe *)base;
  if (!p)
    return;
  p->base.conn = NULL;
  if (p->depth > 0) {
    p->freed = true;
    return;
  }
  cp_destroy(p);
}

static int cp_remote_addr(const goop__pipe *base, char *buf, size_t len) {
  const struct circuit_pipe *p = (const struct circuit_pipe *)base;
  size_t n = strlen(p->remote);
  if (n + 1 > len)
    return GOOP_EINVAL;
  memcpy(buf, p->remote, n + 1);
  return (int)n;
}

static const struct goop__pipe_ops circuit_ops = {
    .write = cp_write,
    .out_pending = cp_out_pending,
    .shutdown = cp_shutdown,
    .free = cp_free,
    .remote_addr = cp_remote_addr,
};

/*
 * Wrap |s| (its reference is taken over, also on failure) as a pipe. |pre|
 * holds bytes already read from the stream past the relay's message; they are
 * fed first.
 */
static int circuit_pipe_new(goop_host *h, goop_stream *s, const uint8_t *pre, size_t pre_len,
                            struct circuit_pipe **ret) {
  struct circuit_pipe *p = calloc(1, sizeof(*p));
  if (!p) {
    goop_stream_reset(s);
    goop_stream_unref(s);
    return GOOP_ENOMEM;
  }
  p->base.ops = &circuit_ops;
  p->h = h;
  p->s = s;
  p->in = evbuffer_new();
  p->out = evbuffer_new();
  p->kick = event_new(h->base, -1, 0, cp_kick_cb, p);
  p->linger = evtimer_new(h->base, cp_linger_cb, p);
  if (!p->in || !p->out || !p->kick || !p->linger || (pre_len && evbuffer_add(p->in, pre, pre_len) != 0)) {
    cp_destroy(p);
    return GOOP_ENOMEM;
  }
  /* "/ip4/R/tcp/P/p2p/<relay>/p2p-circuit" */
  goop_conn *rc = goop_stream_conn(s);
  char rid[GOOP_PEER_ID_STR_MAX];
  if (goop_peer_id_to_string(&rc->remote, rid, sizeof(rid)) < 0)
    rid[0] = 0;
  snprintf(p->remote, sizeof(p->remote), "%s/p2p/%s/p2p-circuit", rc->remote_addr, rid);
  goop_stream_set_idle_timeout(s, 0);
  goop_stream_set_callbacks(s, &cp_cbs, p);
  s->svc_free = cp_stream_gone;
  *ret = p;
  return 0;
}

/* Hand the pipe to a new connection and start reading. */
static int circuit_conn_new(goop_host *h, struct circuit_pipe *p, bool outbound, const goop_peer_id *remote,
                            goop_conn **ret) {
  goop_conn *c;
  int rc = goop__conn_new(h, &p->base, outbound, remote, &c);
  if (rc)
    return rc;
  c->relayed = true;
  event_active(p->kick, 0, 0); /* bytes already read, and whatever the stream holds */
  *ret = c;
  return 0;
}

/* ---- reading one relay message from a stream --------------------------------------------- */

/*
 * Read from |s| into |buf| until it holds one whole message (by |deadline|). 1: the message is
 * |*msg|/|*msg_len| and |*used| bytes of |buf| belong to it; 0: need more;
 * GOOP_ECLOSED (end of stream first), GOOP_EMSGSIZE / GOOP_EPARSE (malformed)
 * or a stream error.
 */
static int msg_pull(goop_stream *s, goop_buf *buf, goop_tstamp deadline, const uint8_t **msg, size_t *msg_len,
                    size_t *used) {
  for (;;) {
    /* The idle timeout covers silence; this bounds a peer that drips bytes. */
    if (goop__now_us() > deadline)
      return GOOP_ETIMEDOUT;
    if (buf->len) {
      int r = goop_relay_frame_take(buf->data, buf->len, msg, msg_len, used);
      if (r == 0)
        return 1;
      if (r != GOOP_EAGAIN)
        return r;
    }
    size_t room = GOOP_RELAY_MSG_MAX + 16 - buf->len;
    if (room == 0)
      return GOOP_EMSGSIZE;
    if (goop_buf_reserve(buf, room) != 0)
      return GOOP_ENOMEM;
    ssize_t n = goop_stream_read(s, buf->data + buf->len, room);
    if (n == GOOP_EAGAIN)
      return 0;
    if (n == 0)
      return GOOP_ECLOSED;
    if (n < 0)
      return (int)n;
    buf->len += (size_t)n;
  }
}

static int status_to_err(uint32_t status) {
  switch (status) {
  case GOOP_RELAY_OK:
    return 0;
  case GOOP_RELAY_RESOURCE_LIMIT_EXCEEDED:
  case GOOP_RELAY_RESERVATION_REFUSED:
    return GOOP_ELIMIT;
  case GOOP_RELAY_NO_RESERVATION:
  case GOOP_RELAY_CONNECTION_FAILED:
  case GOOP_RELAY_PERMISSION_DENIED:
    return GOOP_ECONNREFUSED;
  default:
    return GOOP_EPROTO;
  }
}

/* ---- circuit addresses -------------------------------------------------------------------- */

int goop__circuit_split(const uint8_t *ma, size_t len, size_t *ret_relay_len, goop_peer_id *ret_relay,
                        goop_peer_id *ret_target, bool *ret_has_target) {
  size_t off = 0, prev_off = 0, p2p_off = 0;
  goop_ma_component c, prev = {0};
  int r;
  *ret_has_target = false;
  while ((r = goop_ma_next(ma, len, &off, &c)) == 1) {
    if (c.code == GOOP_MA_P2P_CIRCUIT) {
      if (prev.code != GOOP_MA_P2P || goop_peer_id_from_bytes(prev.value, prev.value_len, ret_relay) != 0)
        return GOOP_EPARSE;
      *ret_relay_len = prev_off;
      (void)p2p_off;
      /* Optional "/p2p/<target>", nothing else. */
      if (off == len)
        return 1;
      if (goop_ma_next(ma, len, &off, &c) != 1 || c.code != GOOP_MA_P2P || off != len ||
          goop_peer_id_from_bytes(c.value, c.value_len, ret_target) != 0)
        return GOOP_EPARSE;
      *ret_has_target = true;
      return 1;
    }
    p2p_off = prev_off;
    prev = c;
    prev_off = off;
  }
  return r < 0 ? GOOP_EPARSE : 0;
}

/* ---- dialling through a relay ------------------------------------------------------------- */

struct goop__circuit_dial {
  goop_host *h;
  struct goop__attempt *a; /* NULL once abandoned */
  goop_peer_id relay, target;
  char *relay_text; /* relay address with /p2p/R; NULL = by peer ID */
  int pending;      /* connect/open callbacks still to come */
  goop_stream *s;
  goop_buf buf;
  goop_tstamp deadline; /* for the relay's answer */
};

static void cd_free(struct goop__circuit_dial *cd) {
  if (cd->s) {
    goop_stream_set_callbacks(cd->s, NULL, NULL);
    goop_stream_reset(cd->s);
    goop_stream_unref(cd->s);
  }
  goop_buf_free(&cd->buf);
  free(cd->relay_text);
  free(cd);
}

void goop__circuit_dial_cancel(struct goop__circuit_dial *cd) {
  if (!cd)
    return;
  if (cd->a)
    cd->a->circuit = NULL;
  cd->a = NULL;
  if (cd->pending == 0)
    cd_free(cd);
}

/* Report failure |err| to the dial and free. */
static void cd_fail(struct goop__circuit_dial *cd, int err) {
  struct goop__attempt *a = cd->a;
  cd->a = NULL;
  if (a)
    a->circuit = NULL;
  cd_free(cd);
  if (a)
    goop__host_attempt_failed(a, err);
}

static void cd_readable(goop_stream *s, void *ud) {
  struct goop__circuit_dial *cd = ud;
  goop_host *h = cd->h;
  const uint8_t *msg;
  size_t mlen, used;
  int r = msg_pull(s, &cd->buf, cd->deadline, &msg, &mlen, &used);
  if (r == 0)
    return;
  if (r < 0) {
    goop__log_info(h->ctx, "circuit to %s: hop stream: %s", cd->relay_text ? cd->relay_text : "relay",
                   goop_strerror(r));
    cd_fail(cd, r == GOOP_ECLOSED || r == GOOP_ERESET ? GOOP_ECONNREFUSED : GOOP_EPROTO);
    return;
  }
  goop_hop_msg m;
  if (goop_hop_decode(msg, mlen, &m) != 0 || m.type != GOOP_HOP_STATUS || !m.has_status) {
    goop__log_info(h->ctx, "circuit: malformed answer from the relay");
    cd_fail(cd, GOOP_EPROTO);
    return;
  }
  if (m.status != GOOP_RELAY_OK) {
    char rid[GOOP_PEER_ID_STR_MAX];
    (void)goop_peer_id_to_string(&cd->relay, rid, sizeof(rid));
    goop__log_info(h->ctx, "circuit through %s refused: %s", rid, goop_relay_status_name(m.status));
    cd_fail(cd, status_to_err(m.status));
    return;
  }
  /* The stream is now the pipe; bytes past STATUS are the target's. */
  goop_stream *carrier = cd->s;
  cd->s = NULL;
  struct circuit_pipe *p;
  int rc = circuit_pipe_new(h, carrier, cd->buf.data + used, cd->buf.len - used, &p);
  goop_conn *c = NULL;
  if (!rc)
    rc = circuit_conn_new(h, p, true, &cd->target, &c);
  if (rc) {
    cd_fail(cd, rc);
    return;
  }
  struct goop__attempt *a = cd->a;
  cd->a = NULL;
  a->circuit = NULL;
  cd_free(cd);
  goop__host_circuit_conn(a, c);
}

static void cd_error(goop_stream *s, int err, void *ud) {
  (void)s;
  struct goop__circuit_dial *cd = ud;
  cd_fail(cd, err == GOOP_ERESET ? GOOP_ECONNREFUSED : err);
}

static const struct goop_stream_callbacks cd_cbs = {
    .version = GOOP_STREAM_CALLBACKS_V1,
    .on_readable = cd_readable,
    .on_error = cd_error,
};

static void cd_opened(goop_host *h, int status, goop_stream *s, void *ud) {
  (void)h;
  struct goop__circuit_dial *cd = ud;
  cd->pending--;
  if (!cd->a) {
    if (s)
      cd->s = s; /* freed (reset) with cd */
    cd_free(cd);
    return;
  }
  if (status) {
    cd_fail(cd, status == GOOP_ENEGOTIATION ? GOOP_ENOTSUP : status);
    return;
  }
  cd->s = s;
  cd->deadline = goop__now_us() + (goop_tstamp)CIRCUIT_MSG_TIMEOUT_MS * 1000u;
  goop_stream_set_idle_timeout(s, CIRCUIT_MSG_TIMEOUT_MS);
  goop_stream_set_callbacks(s, &cd_cbs, cd);
  goop_hop_msg m = {.has_type = true, .type = GOOP_HOP_CONNECT};
  m.peer.present = true;
  m.peer.id.data = cd->target.bytes;
  m.peer.id.len = cd->target.len;
  goop_buf out;
  goop_buf_init(&out, 0);
  int rc = goop_hop_encode(&m, &out);
  if (!rc && goop_stream_write(s, out.data, out.len) != (ssize_t)out.len)
    rc = GOOP_EIO;
  goop_buf_free(&out);
  if (rc)
    cd_fail(cd, rc);
}

static void cd_connected(goop_host *h, int status, goop_conn *c, void *ud) {
  struct goop__circuit_dial *cd = ud;
  cd->pending--;
  if (!cd->a) {
    cd_free(cd);
    return;
  }
  if (status) {
    cd_fail(cd, status);
    return;
  }
  if (c->relayed) {
    goop__log_info(h->ctx, "circuit: the only connection to the relay is itself relayed");
    cd_fail(cd, GOOP_EPROTO);
    return;
  }
  static const char *const protos[] = {GOOP_PROTO_RELAY_HOP};
  int rc = goop__conn_open_stream(c, protos, 1, CIRCUIT_MSG_TIMEOUT_MS, cd_opened, cd);
  if (rc) {
    cd_fail(cd, rc);
    return;
  }
  cd->pending++;
}

int goop__circuit_dial_start(struct goop__attempt *a, const uint8_t *ma, size_t len) {
  goop_host *h = a->dial->host;
  size_t rlen;
  goop_peer_id relay, target;
  bool has_target;
  if (goop__circuit_split(ma, len, &rlen, &relay, &target, &has_target) != 1 || !a->dial->has_peer)
    return GOOP_EPARSE;
  if (has_target && !goop_peer_id_equal(&target, &a->dial->peer))
    return GOOP_EPEERID;
  if (goop_peer_id_equal(&relay, &h->self) || goop_peer_id_equal(&relay, &a->dial->peer))
    return GOOP_EINVAL;
  struct goop__circuit_dial *cd = calloc(1, sizeof(*cd));
  if (!cd)
    return GOOP_ENOMEM;
  cd->h = h;
  cd->relay = relay;
  cd->target = a->dial->peer;
  goop_buf_init(&cd->buf, 0);
  /* Is there a transport address in front of /p2p/R? */
  size_t off = 0;
  goop_ma_component first;
  int rc;
  if (goop_ma_next(ma, rlen, &off, &first) == 1 && first.code != GOOP_MA_P2P) {
    char text[GOOP_MA_STR_MAX];
    if (goop_ma_to_string(ma, rlen, text, sizeof(text)) < 0 || !(cd->relay_text = goop__strdup(text))) {
      cd_free(cd);
      return GOOP_ENOMEM;
    }
    rc = goop_host_connect_addr(h, cd->relay_text, 0, cd_connected, cd);
  } else {
    rc = goop_host_connect(h, &relay, 0, cd_connected, cd);
  }
  if (rc) {
    cd_free(cd);
    return rc;
  }
  cd->pending = 1;
  cd->a = a;
  a->circuit = cd;
  return 0;
}

/* ---- the stop handler: inbound relayed connections ------------------------------------------ */

struct stop_srv {
  goop_host *h;
  goop_stream *s;
  goop_buf buf;
  goop_tstamp deadline;
  bool counted; /* in h->n_pending_inbound */
};

static void stop_destroy(void *ud) {
  struct stop_srv *st = ud;
  if (st->counted && st->h->n_pending_inbound > 0)
    st->h->n_pending_inbound--;
  goop_buf_free(&st->buf);
  free(st);
}

/* Answer |status| (if not UNUSED), close our side and forget the stream. */
static void stop_finish(struct stop_srv *st, uint32_t status) {
  goop_stream *s = st->s;
  goop_stream_set_callbacks(s, NULL, NULL);
  if (status != GOOP_RELAY_UNUSED) {
    goop_stop_msg m = {.has_type = true, .type = GOOP_STOP_STATUS, .has_status = true, .status = status};
    goop_buf out;
    goop_buf_init(&out, 0);
    if (goop_stop_encode(&m, &out) == 0)
      (void)goop_stream_write(s, out.data, out.len);
    goop_buf_free(&out);
    (void)goop_stream_close_write(s);
  } else {
    goop_stream_reset(s);
  }
  goop_stream_unref(s);
  stop_destroy(st);
}

static void stop_readable(goop_stream *s, void *ud) {
  struct stop_srv *st = ud;
  goop_host *h = st->h;
  goop_conn *rconn = goop_stream_conn(s);
  const uint8_t *msg;
  size_t mlen, used;
  int r = msg_pull(s, &st->buf, st->deadline, &msg, &mlen, &used);
  if (r == 0)
    return;
  if (r < 0) {
    goop__log_info(h->ctx, "stop from %s: %s", rconn->remote_addr, goop_strerror(r));
    stop_finish(st,
                r == GOOP_EMSGSIZE || r == GOOP_EPARSE ? GOOP_RELAY_MALFORMED_MESSAGE : GOOP_RELAY_UNUSED);
    return;
  }
  goop_stop_msg m;
  if (goop_stop_decode(msg, mlen, &m) != 0) {
    goop__log_info(h->ctx, "stop from %s: malformed message", rconn->remote_addr);
    stop_finish(st, GOOP_RELAY_MALFORMED_MESSAGE);
    return;
  }
  if (m.type != GOOP_STOP_CONNECT) {
    stop_finish(st, GOOP_RELAY_UNEXPECTED_MESSAGE);
    return;
  }
  goop_peer_id src;
  if (!m.peer.present || goop_peer_id_from_bytes(m.peer.id.data, m.peer.id.len, &src) != 0) {
    stop_finish(st, GOOP_RELAY_MALFORMED_MESSAGE);
    return;
  }
  if (goop_peer_id_equal(&src, &h->self) || goop_peer_id_equal(&src, &rconn->remote)) {
    stop_finish(st, GOOP_RELAY_PERMISSION_DENIED);
    return;
  }
  if (h->n_conns_ready >= goop__host_opt(h, GOOP_HOST_MAX_CONNS)) {
    stop_finish(st, GOOP_RELAY_RESOURCE_LIMIT_EXCEEDED);
    return;
  }
  goop_stop_msg ok = {
      .has_type = true, .type = GOOP_STOP_STATUS, .has_status = true, .status = GOOP_RELAY_OK};
  goop_buf out;
  goop_buf_init(&out, 0);
  int rc = goop_stop_encode(&ok, &out);
  if (!rc && goop_stream_write(s, out.data, out.len) != (ssize_t)out.len)
    rc = GOOP_EIO;
  goop_buf_free(&out);
  if (rc) {
    stop_finish(st, GOOP_RELAY_UNUSED);
    return;
  }
  /* From here the stream carries the relayed connection. The pending-handshake
   * slot moves from the stop exchange to the connection. */
  goop_stream_set_callbacks(s, NULL, NULL);
  struct circuit_pipe *p;
  rc = circuit_pipe_new(h, s, st->buf.data + used, st->buf.len - used, &p);
  goop_conn *c = NULL;
  if (!rc)
    rc = circuit_conn_new(h, p, false, &src, &c);
  bool counted = st->counted;
  st->counted = false;
  stop_destroy(st);
  if (rc) {
    if (counted)
      h->n_pending_inbound--;
    goop__log_info(h->ctx, "relayed connection: %s", goop_strerror(rc));
    return;
  }
  c->counted_pending = counted;
  char sid[GOOP_PEER_ID_STR_MAX];
  (void)goop_peer_id_to_string(&src, sid, sizeof(sid));
  goop__log_debug(h->ctx, "relayed connection from %s via %s", sid, c->remote_addr);
}

static void stop_error(goop_stream *s, int err, void *ud) {
  struct stop_srv *st = ud;
  goop__log_debug(st->h->ctx, "stop stream: %s", goop_strerror(err));
  goop_stream_set_callbacks(s, NULL, NULL);
  goop_stream_unref(s);
  stop_destroy(st);
}

static const struct goop_stream_callbacks stop_cbs = {
    .version = GOOP_STREAM_CALLBACKS_V1,
    .on_readable = stop_readable,
    .on_error = stop_error,
};

static void stop_serve(goop_host *h, goop_stream *s, void *ud) {
  (void)ud;
  goop_conn *rconn = goop_stream_conn(s);
  if (rconn->relayed || h->n_pending_inbound >= goop__host_opt(h, GOOP_HOST_MAX_PENDING_HANDSHAKES)) {
    goop__log_info(h->ctx, "refusing relayed connection via %s: %s", rconn->remote_addr,
                   rconn->relayed ? "nested circuit" : "connection limit reached");
    goop_stop_msg m = {.has_type = true,
                       .type = GOOP_STOP_STATUS,
                       .has_status = true,
                       .status = rconn->relayed ? GOOP_RELAY_PERMISSION_DENIED
                                                : GOOP_RELAY_RESOURCE_LIMIT_EXCEEDED};
    goop_buf out;
    goop_buf_init(&out, 0);
    if (goop_stop_encode(&m, &out) == 0)
      (void)goop_stream_write(s, out.data, out.len);
    goop_buf_free(&out);
    (void)goop_stream_close_write(s);
    goop_stream_unref(s);
    return;
  }
  struct stop_srv *st = calloc(1, sizeof(*st));
  if (!st) {
    goop_stream_reset(s);
    goop_stream_unref(s);
    return;
  }
  st->h = h;
  st->s = s;
  goop_buf_init(&st->buf, 0);
  st->counted = true;
  /* The relay's CONNECT must arrive whole within the stream negotiation timeout. */
  uint64_t to = goop__host_opt(h, GOOP_HOST_NEGOTIATION_TIMEOUT_MS);
  st->deadline = goop__now_us() + (goop_tstamp)to * 1000u;
  h->n_pending_inbound++;
  goop_stream_set_idle_timeout(s, (uint32_t)to);
  goop_stream_set_callbacks(s, &stop_cbs, st);
  s->svc_free = stop_destroy;
}

int goop__circuit_init(goop_host *h) {
  return goop_host_set_stream_handler(h, GOOP_PROTO_RELAY_STOP, stop_serve, NULL);
}

/* ---- reservations ----------------------------------------------------------------------------- */

struct rsv_op;

struct goop_reservation {
  goop_host *h; /* NULL once the host is gone */
  goop_peer_id relay;
  char relay_str[GOOP_PEER_ID_STR_MAX];
  goop_reservation_cb cb;
  void *ud;
  bool active;
  uint64_t expire;
  char *addrs[RSV_MAX_ADDRS];
  size_t n_addrs;
  struct event *timer; /* refresh or retry */
  uint32_t backoff_ms;
  int ev_id;
  struct rsv_op *op;
  struct goop_reservation *next, *prev;
};

/* One RESERVE exchange. */
struct rsv_op {
  goop_reservation *r; /* NULL once abandoned */
  goop_stream *s;
  goop_conn *conn; /* ref */
  goop_buf buf;
  goop_tstamp deadline;
};

static void rsv_op_free(struct rsv_op *op) {
  if (op->s) {
    goop_stream_set_callbacks(op->s, NULL, NULL);
    goop_stream_reset(op->s);
    goop_stream_unref(op->s);
  }
  goop_conn_unref(op->conn);
  goop_buf_free(&op->buf);
  free(op);
}

/* Let go of the exchange in flight: at once if it holds the stream, else when its callback comes. */
static void rsv_abandon_op(goop_reservation *r) {
  struct rsv_op *op = r->op;
  if (!op)
    return;
  r->op = NULL;
  op->r = NULL;
  if (op->s)
    rsv_op_free(op);
}

static void rsv_clear_addrs(goop_reservation *r) {
  for (size_t i = 0; i < r->n_addrs; i++)
    free(r->addrs[i]);
  r->n_addrs = 0;
}

static void rsv_arm(goop_reservation *r, uint64_t ms) {
  struct timeval tv;
  set_tv(&tv, ms);
  evtimer_add(r->timer, &tv);
}

/* Next retry: backoff with +-25 % jitter, doubling up to the maximum. */
static void rsv_retry_later(goop_reservation *r) {
  if (!r->h || r->h->free_requested)
    return;
  uint32_t b = r->backoff_ms ? r->backoff_ms : RSV_BACKOFF_MIN_MS;
  uint16_t rnd = 0;
  (void)RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
  uint64_t ms = (uint64_t)b * 3 / 4 + (uint64_t)b / 2 * rnd / 65535u;
  r->backoff_ms = b >= RSV_BACKOFF_MAX_MS / 2 ? RSV_BACKOFF_MAX_MS : b * 2;
  rsv_arm(r, ms);
}

static void rsv_report(goop_reservation *r, int status) {
  if (r->cb && r->h && !r->h->free_requested)
    r->cb(r->h, r, status, r->ud);
}

/* The exchange ended with |status|. */
static void rsv_done(struct rsv_op *op, int status) {
  goop_reservation *r = op->r;
  if (r) {
    r->op = NULL;
    op->r = NULL;
  }
  if (op->s) {
    goop_stream_set_callbacks(op->s, NULL, NULL);
    if (status == 0)
      (void)goop_stream_close_write(op->s);
    else
      goop_stream_reset(op->s);
    goop_stream_unref(op->s);
    op->s = NULL;
  }
  rsv_op_free(op);
  if (!r)
    return;
  if (status) {
    if (r->active && r->expire <= (uint64_t)time(NULL)) {
      r->active = false;
      rsv_clear_addrs(r);
    }
    goop__log_info(r->h->ctx, "reservation on relay %s failed: %s", r->relay_str, goop_strerror(status));
    rsv_retry_later(r);
  }
  rsv_report(r, status);
}

static bool is_loopback_text(const char *t) {
  return strncmp(t, "/ip4/127.", 9) == 0 || strncmp(t, "/ip6/::1/", 9) == 0;
}

/* Circuit address of a reservation address (binary): text + "/p2p/R/p2p-circuit".
 * Loopback relay addresses are of no use to others unless we reach the relay
 * over loopback ourselves (one machine, tests). */
static void rsv_add_addr(goop_reservation *r, const uint8_t *ma, size_t len, bool allow_loopback) {
  static const uint8_t loopback6[16] = {[15] = 1};
  if (r->n_addrs >= RSV_MAX_ADDRS || goop_ma_validate(ma, len) != 0)
    return;
  size_t off = 0, last = 0, prev = 0;
  goop_ma_component c, lastc = {0};
  while (goop_ma_next(ma, len, &off, &c) == 1) {
    if (c.code == GOOP_MA_P2P_CIRCUIT)
      return;
    if (!allow_loopback && prev == 0 && /* the first component */
        ((c.code == GOOP_MA_IP4 && c.value_len == 4 && c.value[0] == 127) ||
         (c.code == GOOP_MA_IP6 && c.value_len == 16 && memcmp(c.value, loopback6, 16) == 0)))
      return;
    last = prev;
    lastc = c;
    prev = off;
  }
  if (lastc.code == GOOP_MA_P2P) {
    goop_peer_id pid;
    if (goop_peer_id_from_bytes(lastc.value, lastc.value_len, &pid) != 0 ||
        !goop_peer_id_equal(&pid, &r->relay))
      return;
    len = last;
  }
  if (len == 0)
    return;
  char text[512];
  int n = goop_ma_to_string(ma, len, text, sizeof(text));
  if (n < 0)
    return;
  char full[700];
  snprintf(full, sizeof(full), "%s/p2p/%s/p2p-circuit", text, r->relay_str);
  for (size_t i = 0; i < r->n_addrs; i++)
    if (strcmp(r->addrs[i], full) == 0)
      return;
  char *dup = goop__strdup(full);
  if (dup)
    r->addrs[r->n_addrs++] = dup;
}

static void rsv_readable(goop_stream *s, void *ud) {
  struct rsv_op *op = ud;
  goop_reservation *r = op->r;
  const uint8_t *msg;
  size_t mlen, used;
  int rc = msg_pull(s, &op->buf, op->deadline, &msg, &mlen, &used);
  if (rc == 0)
    return;
  if (rc < 0) {
    rsv_done(op, rc == GOOP_ECLOSED ? GOOP_ECONNRESET : rc);
    return;
  }
  goop_hop_msg m;
  if (goop_hop_decode(msg, mlen, &m) != 0 || m.type != GOOP_HOP_STATUS || !m.has_status) {
    rsv_done(op, GOOP_EPROTO);
    return;
  }
  if (m.status != GOOP_RELAY_OK) {
    goop__log_info(r->h->ctx, "relay %s refused the reservation: %s", r->relay_str,
                   goop_relay_status_name(m.status));
    rsv_done(op, status_to_err(m.status));
    return;
  }
  if (!m.reservation.present) {
    rsv_done(op, GOOP_EPROTO);
    return;
  }
  uint64_t expire = m.reservation.expire;
  if (m.reservation.voucher.len) {
    uint64_t vexp = 0;
    int vr = goop_relay_voucher_open(m.reservation.voucher.data, m.reservation.voucher.len, &r->relay,
                                     &r->h->self, &vexp);
    if (vr) {
      goop__log_info(r->h->ctx, "relay %s: invalid reservation voucher (%s)", r->relay_str,
                     goop_strerror(vr));
      rsv_done(op, vr);
      return;
    }
  }
  uint64_t now = (uint64_t)time(NULL);
  if (expire <= now) {
    goop__log_info(r->h->ctx, "relay %s: reservation already expired", r->relay_str);
    rsv_done(op, GOOP_EPROTO);
    return;
  }
  rsv_clear_addrs(r);
  bool loop = op->conn && is_loopback_text(op->conn->remote_addr);
  for (size_t i = 0; i < m.reservation.n_addrs; i++)
    rsv_add_addr(r, m.reservation.addrs[i].data, m.reservation.addrs[i].len, loop);
  if (r->n_addrs == 0 && op->conn) {
    /* No usable address from the relay: the one we reached it at. */
    goop_buf b;
    goop_buf_init(&b, GOOP_MA_MAX);
    if (goop_ma_from_string(op->conn->remote_addr, &b) == 0)
      rsv_add_addr(r, b.data, b.len, true);
    goop_buf_free(&b);
  }
  bool was_active = r->active;
  r->active = true;
  r->expire = expire;
  r->backoff_ms = 0;
  uint64_t ttl = expire - now;
  uint64_t refresh_s = ttl / 2;
  if (ttl > 240 && ttl - 120 < refresh_s)
    refresh_s = ttl - 120;
  rsv_arm(r, refresh_s ? refresh_s * 1000 : 500);
  if (!was_active)
    goop__log_info(r->h->ctx, "reservation on relay %s: %zu circuit address(es), %llu s", r->relay_str,
                   r->n_addrs, (unsigned long long)ttl);
  rsv_done(op, 0);
}

static void rsv_error(goop_stream *s, int err, void *ud) {
  (void)s;
  rsv_done(ud, err ? err : GOOP_ECONNRESET);
}

static const struct goop_stream_callbacks rsv_cbs = {
    .version = GOOP_STREAM_CALLBACKS_V1,
    .on_readable = rsv_readable,
    .on_error = rsv_error,
};

/* Host teardown destroys the stream under us. */
static void rsv_stream_gone(void *ud) {
  struct rsv_op *op = ud;
  op->s = NULL;
}

static void rsv_opened(goop_host *h, int status, goop_stream *s, void *ud) {
  (void)h;
  struct rsv_op *op = ud;
  if (!op->r) {
    if (s)
      op->s = s;
    rsv_op_free(op);
    return;
  }
  if (status) {
    rsv_done(op, status == GOOP_ENEGOTIATION ? GOOP_ENOTSUP : status);
    return;
  }
  op->s = s;
  op->deadline = goop__now_us() + (goop_tstamp)CIRCUIT_MSG_TIMEOUT_MS * 1000u;
  goop_stream_set_idle_timeout(s, CIRCUIT_MSG_TIMEOUT_MS);
  goop_stream_set_callbacks(s, &rsv_cbs, op);
  s->svc_free = rsv_stream_gone;
  goop_hop_msg m = {.has_type = true, .type = GOOP_HOP_RESERVE};
  goop_buf out;
  goop_buf_init(&out, 0);
  int rc = goop_hop_encode(&m, &out);
  if (!rc && goop_stream_write(s, out.data, out.len) != (ssize_t)out.len)
    rc = GOOP_EIO;
  goop_buf_free(&out);
  if (rc)
    rsv_done(op, rc);
}

static void rsv_connected(goop_host *h, int status, goop_conn *c, void *ud) {
  struct rsv_op *op = ud;
  if (!op->r) {
    rsv_op_free(op);
    return;
  }
  if (status) {
    rsv_done(op, status);
    return;
  }
  if (c->relayed) {
    goop__log_info(h->ctx, "reservation: the connection to relay %s is relayed", op->r->relay_str);
    rsv_done(op, GOOP_EPROTO);
    return;
  }
  op->conn = goop_conn_ref(c);
  static const char *const protos[] = {GOOP_PROTO_RELAY_HOP};
  int rc = goop__conn_open_stream(c, protos, 1, CIRCUIT_MSG_TIMEOUT_MS, rsv_opened, op);
  if (rc)
    rsv_done(op, rc);
}

/* Start a RESERVE exchange (connecting first when needed). */
static void rsv_start(goop_reservation *r) {
  if (r->op || !r->h || r->h->free_requested)
    return;
  struct rsv_op *op = calloc(1, sizeof(*op));
  if (!op) {
    rsv_retry_later(r);
    return;
  }
  op->r = r;
  goop_buf_init(&op->buf, 0);
  int rc = goop_host_connect(r->h, &r->relay, 0, rsv_connected, op);
  if (rc) {
    free(op);
    goop__log_info(r->h->ctx, "reservation on relay %s: %s", r->relay_str, goop_strerror(rc));
    rsv_retry_later(r);
    return;
  }
  r->op = op;
}

static void rsv_timer_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  goop_reservation *r = arg;
  goop_host *h = r->h;
  goop__host_enter(h);
  if (r->active && r->expire <= (uint64_t)time(NULL)) {
    r->active = false;
    rsv_clear_addrs(r);
  }
  rsv_start(r);
  goop__host_leave(h);
}

static void rsv_disconnected(goop_host *h, goop_conn *c, int reason, void *ud) {
  goop_reservation *r = ud;
  goop_peer_id p;
  goop_conn_remote_peer(c, &p);
  if (!goop_peer_id_equal(&p, &r->relay) || h->free_requested || c->relayed)
    return;
  if (goop__host_find_conn(h, &r->relay))
    return;
  /* The reservation dies with the connection: try again soon. */
  if (r->active)
    goop__log_info(h->ctx, "lost the connection to relay %s (%s): reserving again", r->relay_str,
                   reason ? goop_strerror(reason) : "closed");
  r->active = false;
  rsv_clear_addrs(r);
  if (!r->op) {
    evtimer_del(r->timer);
    r->backoff_ms = 0;
    rsv_retry_later(r);
  }
}

int goop_host_reserve(goop_host *host, const goop_peer_id *relay, const char *const *addrs, size_t n_addrs,
                      goop_reservation_cb cb, void *user_data, goop_reservation **ret) {
  goop_return_val_if_fail(host && relay && ret && (addrs || n_addrs == 0), GOOP_EINVAL);
  goop_return_val_if_fail(!goop_peer_id_equal(relay, &host->self), GOOP_EINVAL);
  if (host->free_requested)
    return GOOP_ECANCELED;
  /* Addresses that do not parse (or name another peer) are skipped; at least one must do. */
  size_t added = 0;
  for (size_t i = 0; i < n_addrs; i++) {
    int rc = addrs[i] ? goop_host_add_addr(host, relay, addrs[i], 0) : GOOP_EINVAL;
    if (rc == GOOP_ENOMEM)
      return rc;
    if (rc == 0)
      added++;
    else
      goop__log_info(host->ctx, "relay address %s skipped: %s", addrs[i] ? addrs[i] : "(null)",
                     goop_strerror(rc));
  }
  if (n_addrs > 0 && added == 0)
    return GOOP_EINVAL;
  goop_reservation *r = calloc(1, sizeof(*r));
  if (!r)
    return GOOP_ENOMEM;
  r->h = host;
  r->relay = *relay;
  (void)goop_peer_id_to_string(relay, r->relay_str, sizeof(r->relay_str));
  r->cb = cb;
  r->ud = user_data;
  r->timer = evtimer_new(host->base, rsv_timer_cb, r);
  struct goop_host_events ev = {.version = GOOP_HOST_EVENTS_V1, .on_disconnected = rsv_disconnected};
  if (!r->timer || goop_host_add_events(host, &ev, r, &r->ev_id) != 0) {
    if (r->timer)
      event_free(r->timer);
    free(r);
    return GOOP_ENOMEM;
  }
  GOOP_DL_PUSH(host->reservations, r, next, prev);
  rsv_arm(r, 0); /* start from the loop, not from inside this call */
  *ret = r;
  return 0;
}

bool goop_reservation_active(const goop_reservation *r) {
  return r && r->active && r->expire > (uint64_t)time(NULL);
}

uint64_t goop_reservation_expire(const goop_reservation *r) {
  return r && r->active ? r->expire : 0;
}

/* Detach from the host: nothing runs any more. */
static void rsv_detach(goop_reservation *r) {
  goop_host *h = r->h;
  if (!h)
    return;
  rsv_abandon_op(r);
  if (r->ev_id)
    (void)goop_host_remove_events(h, r->ev_id);
  r->ev_id = 0;
  GOOP_DL_REMOVE(h->reservations, r, next, prev);
  if (r->timer)
    event_free(r->timer);
  r->timer = NULL;
  r->h = NULL;
  r->active = false;
}

void goop_reservation_free(goop_reservation *r) {
  if (!r)
    return;
  rsv_detach(r);
  rsv_clear_addrs(r);
  free(r);
}

void goop__circuit_cancel(goop_host *h) {
  while (h->reservations)
    rsv_detach(h->reservations);
}

int goop__circuit_announce_addr(const goop_host *h, size_t i, char *buf, size_t len) {
  uint64_t now = (uint64_t)time(NULL);
  for (const goop_reservation *r = h->reservations; r; r = r->next) {
    if (!r->active || r->expire <= now)
      continue;
    if (i < r->n_addrs) {
      size_t n = strlen(r->addrs[i]);
      if (n + 1 > len)
        return GOOP_EINVAL;
      memcpy(buf, r->addrs[i], n + 1);
      return (int)n;
    }
    i -= r->n_addrs;
  }
  return GOOP_ENOENT;
}
