/*
 * Built-in services of every host: identify (+ push) and ping, both as
 * server and client, on top of the public stream API.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/multiaddr.h"
#include "ping.h"
#include "transport-internal.h"

#define IDENTIFY_TIMEOUT_MS 5000
#define PING_SERVE_IDLE_MS 30000
/* Listen addresses learned from identify stay this long in the peerstore. */
#define IDENTIFY_ADDR_TTL_S 600

static uint64_t unix_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- identify: what we tell others ------------------------------------------------------ */

static int build_identify(goop_host *h, goop_conn *c, goop_buf *out) {
  goop_identify id;
  goop_identify_init(&id);
  int rc = goop_identify_set_protocol_version(&id, "ipfs/0.1.0");
  if (!rc)
    rc = goop_identify_set_agent_version(&id, h->agent);
  uint8_t pk[GOOP_ED25519_PUBKEY_PB_SIZE];
  goop_identity_public_key(h->id, pk);
  if (!rc)
    rc = goop_identify_set_public_key(&id, pk, sizeof(pk));
  goop_buf mab;
  goop_buf_init(&mab, 0);
  char text[256];
  for (size_t i = 0;
       !rc && id.n_listen_addrs < GOOP_ID_MAX_ADDRS && goop_host_announce_addr(h, i, text, sizeof(text)) > 0;
       i++) {
    goop_buf_reset(&mab);
    if (goop_ma_from_string(text, &mab) == 0)
      (void)goop_identify_add_listen_addr(&id, mab.data, mab.len);
  }
  if (!rc && c->remote_addr[0] && !c->relayed) { /* a relayed peer's address is the relay's */
    goop_buf ob;
    goop_buf_init(&ob, GOOP_MA_MAX);
    if (goop_ma_from_string(c->remote_addr, &ob) == 0)
      (void)goop_identify_set_observed_addr(&id, ob.data, ob.len);
    goop_buf_free(&ob);
  }
  for (size_t i = 0; !rc && i < h->n_handlers; i++) {
    int r = goop_identify_add_protocol(&id, h->handlers[i].proto);
    if (r && r != GOOP_ELIMIT && r != GOOP_EINVAL)
      rc = r;
  }
  if (!rc) {
    goop_buf rec;
    goop_buf_init(&rec, 0);
    if (goop_peer_record_seal(h->id, unix_ns(), id.listen_addrs, id.n_listen_addrs, &rec) == 0)
      (void)goop_identify_set_signed_record(&id, rec.data, rec.len);
    goop_buf_free(&rec);
  }
  if (!rc)
    rc = goop_identify_encode_msgs(&id, out, NULL);
  goop_buf_free(&mab);
  goop_identify_clear(&id);
  return rc;
}

static void identify_serve(goop_host *h, goop_stream *s, void *ud) {
  (void)ud;
  goop_buf out;
  goop_buf_init(&out, 0);
  if (build_identify(h, goop_stream_conn(s), &out) == 0 &&
      goop_stream_write(s, out.data, out.len) == (ssize_t)out.len)
    (void)goop_stream_close_write(s);
  else
    goop_stream_reset(s);
  goop_buf_free(&out);
  goop_stream_unref(s);
}

/* ---- identify: what we learn ---------------------------------------------------------------- */

struct id_read {
  goop_host *host;
  goop_conn *conn; /* reference held */
  goop_stream *s;
  bool push;
  goop_identify info;
  goop_identify_reader reader;
  struct id_read *next;
};

static void id_read_destroy(void *arg) {
  struct id_read *r = arg;
  goop_identify_reader_clear(&r->reader);
  goop_identify_clear(&r->info);
  free(r);
}

static void id_read_free(struct id_read *r) {
  goop_conn_unref(r->conn);
  id_read_destroy(r);
}

static void apply_identify(goop_host *h, goop_conn *c, goop_identify *info, bool push) {
  goop_peer_id remote;
  goop_conn_remote_peer(c, &remote);
  struct goop__peer *p = goop__peerstore_get(h, &remote, true);
  if (!p)
    return;
  /* The public key, when sent, must be the one the connection authenticated. */
  if (info->present & GOOP_ID_F_PUBLIC_KEY) {
    goop_peer_id kid;
    if (goop_pubkey_to_peer_id(info->public_key.data, info->public_key.len, &kid) != 0 ||
        !goop_peer_id_equal(&kid, &remote)) {
      goop__log_info(h->ctx, "identify from %s: public key does not match the connection", c->remote_addr);
      return;
    }
  }
  if (info->present & GOOP_ID_F_PROTOCOLS || !push) {
    for (size_t i = 0; i < p->n_protocols; i++)
      free(p->protocols[i]);
    free(p->protocols);
    p->protocols = NULL;
    p->n_protocols = 0;
    if (info->n_protocols) {
      p->protocols = calloc(info->n_protocols, sizeof(char *));
      for (size_t i = 0; p->protocols && i < info->n_protocols; i++) {
        p->protocols[i] = info->protocols[i];
        info->protocols[i] = NULL;
        p->n_protocols++;
      }
      info->n_protocols = 0;
    }
  }
  if (info->present & GOOP_ID_F_AGENT_VERSION) {
    free(p->agent);
    p->agent = info->agent_version;
    info->agent_version = NULL;
  }
  /* Prefer the addresses of a valid signed peer record; else the plain list. */
  bool from_record = false;
  if (info->present & GOOP_ID_F_SIGNED_RECORD) {
    goop_peer_record rec;
    int rc = goop_peer_record_open(info->signed_peer_record.data, info->signed_peer_record.len, &rec);
    if (rc == 0 && goop_peer_id_equal(&rec.peer_id, &remote)) {
      if (rec.seq >= p->record_seq) {
        p->record_seq = rec.seq;
        for (size_t i = 0; i < rec.n_addrs; i++)
          (void)goop__peerstore_add_bin(h, &remote, rec.addrs[i].data, rec.addrs[i].len, IDENTIFY_ADDR_TTL_S);
      }
      from_record = true;
      goop_peer_record_clear(&rec);
    } else {
      if (rc == 0)
        goop_peer_record_clear(&rec);
      goop__log_info(h->ctx, "identify from %s: invalid signed peer record (%s)", c->remote_addr,
                     goop_strerror(rc ? rc : GOOP_EPEERID));
    }
  }
  if (!from_record)
    for (size_t i = 0; i < info->n_listen_addrs; i++)
      (void)goop__peerstore_add_bin(h, &remote, info->listen_addrs[i].data, info->listen_addrs[i].len,
                                    IDENTIFY_ADDR_TTL_S);
  if (info->present & GOOP_ID_F_OBSERVED_ADDR)
    goop__observed_record(h, c, info->observed_addr.data, info->observed_addr.len);
  if (!push) {
    c->identified = true;
    if (c->state == GOOP_CONN_READY)
      goop__host_emit(h, GOOP__EV_IDENTIFIED, c, 0);
    if (c->state == GOOP_CONN_READY)
      goop__dcutr_on_identified(h, c);
  }
}

static void id_readable(goop_stream *s, void *ud) {
  struct id_read *r = ud;
  uint8_t buf[4096];
  for (;;) {
    ssize_t n = goop_stream_read(s, buf, sizeof(buf));
    if (n == GOOP_EAGAIN)
      return;
    if (n < 0) {
      goop__log_debug(r->host->ctx, "identify stream failed: %s", goop_strerror((int)n));
      goto done;
    }
    if (n == 0) {
      if (goop_identify_reader_finish(&r->reader, NULL) == 0)
        apply_identify(r->host, r->conn, &r->info, r->push);
      else
        goop__log_info(r->host->ctx, "identify from %s: truncated", r->conn->remote_addr);
      goto done;
    }
    int rc = goop_identify_reader_feed(&r->reader, buf, (size_t)n);
    if (rc) {
      goop__log_info(r->host->ctx, "identify from %s: %s", r->conn->remote_addr, goop_strerror(rc));
      goop_stream_reset(s);
      goto done;
    }
  }
done:
  goop_stream_set_callbacks(s, NULL, NULL);
  (void)goop_stream_close_write(s);
  goop_stream_unref(s);
  id_read_free(r);
}

static void id_error(goop_stream *s, int err, void *ud) {
  struct id_read *r = ud;
  goop__log_debug(r->host->ctx, "identify with %s: %s", r->conn->remote_addr, goop_strerror(err));
  goop_stream_set_callbacks(s, NULL, NULL);
  goop_stream_unref(s);
  id_read_free(r);
}

static const struct goop_stream_callbacks id_cbs = {
    .version = GOOP_STREAM_CALLBACKS_V1,
    .on_readable = id_readable,
    .on_error = id_error,
};

static struct id_read *id_read_new(goop_host *h, goop_conn *c, bool push) {
  struct id_read *r = calloc(1, sizeof(*r));
  if (!r)
    return NULL;
  r->host = h;
  r->conn = goop_conn_ref(c);
  r->push = push;
  goop_identify_init(&r->info);
  goop_identify_reader_init(&r->reader, &r->info);
  return r;
}

static void id_opened(goop_host *h, int status, goop_stream *s, void *ud) {
  struct id_read *r = ud;
  if (status) {
    goop__log_debug(h->ctx, "identify stream to %s: %s", r->conn->remote_addr, goop_strerror(status));
    id_read_free(r);
    return;
  }
  r->s = s;
  goop_stream_set_idle_timeout(s, IDENTIFY_TIMEOUT_MS);
  goop_stream_set_callbacks(s, &id_cbs, r);
  s->svc_free = id_read_destroy;
}

void goop__services_start_identify(goop_host *h, goop_conn *c) {
  struct id_read *r = id_read_new(h, c, false);
  if (!r)
    return;
  static const char *const protos[] = {GOOP_PROTO_IDENTIFY};
  if (goop__conn_open_stream(c, protos, 1, IDENTIFY_TIMEOUT_MS, id_opened, r) != 0)
    id_read_free(r);
}

static void identify_push_serve(goop_host *h, goop_stream *s, void *ud) {
  (void)ud;
  struct id_read *r = id_read_new(h, goop_stream_conn(s), true);
  if (!r) {
    goop_stream_reset(s);
    goop_stream_unref(s);
    return;
  }
  r->s = s;
  goop_stream_set_idle_timeout(s, IDENTIFY_TIMEOUT_MS);
  goop_stream_set_callbacks(s, &id_cbs, r);
  s->svc_free = id_read_destroy;
}

/* ---- ping: server ---------------------------------------------------------------------------- */

struct ping_serve {
  goop_ping_responder resp;
};

static void ping_serve_readable(goop_stream *s, void *ud) {
  struct ping_serve *ps = ud;
  uint8_t buf[GOOP_PING_SIZE];
  for (;;) {
    /* Only read what completes the current payload: the echo goes out first. */
    size_t want = GOOP_PING_SIZE - ps->resp.have;
    ssize_t n = goop_stream_read(s, buf, want);
    if (n == GOOP_EAGAIN)
      return;
    if (n <= 0) {
      if (n == 0)
        (void)goop_stream_close_write(s);
      goop_stream_set_callbacks(s, NULL, NULL);
      goop_stream_unref(s);
      free(ps);
      return;
    }
    uint8_t echo[GOOP_PING_SIZE];
    size_t used;
    if (goop_ping_responder_feed(&ps->resp, buf, (size_t)n, echo, &used) == 1) {
      if (goop_stream_write(s, echo, sizeof(echo)) != (ssize_t)sizeof(echo)) {
        goop_stream_reset(s);
        goop_stream_set_callbacks(s, NULL, NULL);
        goop_stream_unref(s);
        free(ps);
        return;
      }
    }
  }
}

static void ping_serve_error(goop_stream *s, int err, void *ud) {
  (void)err;
  goop_stream_set_callbacks(s, NULL, NULL);
  goop_stream_unref(s);
  free(ud);
}

static const struct goop_stream_callbacks ping_serve_cbs = {
    .version = GOOP_STREAM_CALLBACKS_V1,
    .on_readable = ping_serve_readable,
    .on_error = ping_serve_error,
};

static void ping_serve(goop_host *h, goop_stream *s, void *ud) {
  (void)h;
  (void)ud;
  struct ping_serve *ps = calloc(1, sizeof(*ps));
  if (!ps) {
    goop_stream_reset(s);
    goop_stream_unref(s);
    return;
  }
  goop_ping_responder_init(&ps->resp);
  goop_stream_set_idle_timeout(s, PING_SERVE_IDLE_MS);
  goop_stream_set_callbacks(s, &ping_serve_cbs, ps);
  s->svc_free = free;
}

/* ---- ping: client ----------------------------------------------------------------------------- */

struct goop__ping {
  goop_host *host;
  goop_ping_cb cb;
  void *ud;
  goop_stream *s;
  goop_ping_initiator init;
  struct event *timer;
  bool done;
  struct goop__ping *next, *prev;
};

static void ping_finish(struct goop__ping *p, int status, uint64_t rtt) {
  goop_host *h = p->host;
  GOOP_DL_REMOVE(h->pings, p, next, prev);
  if (p->timer)
    event_free(p->timer);
  if (p->s) {
    goop_stream_set_callbacks(p->s, NULL, NULL);
    if (status == 0)
      (void)goop_stream_close_write(p->s);
    else
      goop_stream_reset(p->s);
    goop_stream_unref(p->s);
  }
  goop_ping_cb cb = p->cb;
  void *ud = p->ud;
  free(p);
  if (cb)
    cb(h, status, rtt, ud);
}

static void ping_readable(goop_stream *s, void *ud) {
  struct goop__ping *p = ud;
  uint8_t buf[GOOP_PING_SIZE];
  ssize_t n = goop_stream_read(s, buf, sizeof(buf));
  if (n == GOOP_EAGAIN)
    return;
  if (n <= 0) {
    ping_finish(p, n == 0 ? GOOP_ECLOSED : (int)n, 0);
    return;
  }
  size_t used;
  goop_tstamp rtt = 0;
  int r = goop_ping_initiator_feed(&p->init, buf, (size_t)n, goop__now_us(), &used, &rtt);
  if (r < 0)
    ping_finish(p, r, 0);
  else if (r == 1)
    ping_finish(p, 0, rtt);
}

static void ping_error(goop_stream *s, int err, void *ud) {
  (void)s;
  ping_finish(ud, err, 0);
}

static const struct goop_stream_callbacks ping_cbs = {
    .version = GOOP_STREAM_CALLBACKS_V1,
    .on_readable = ping_readable,
    .on_error = ping_error,
};

static void ping_timeout_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct goop__ping *p = arg;
  goop_host *h = p->host;
  goop__host_enter(h);
  if (!p->s)
    p->done = true; /* the open callback finishes it */
  else
    ping_finish(p, GOOP_ETIMEDOUT, 0);
  goop__host_leave(h);
}

static void ping_opened(goop_host *h, int status, goop_stream *s, void *ud) {
  (void)h;
  struct goop__ping *p = ud;
  if (status) {
    ping_finish(p, status, 0);
    return;
  }
  p->s = s;
  if (p->done) {
    ping_finish(p, GOOP_ETIMEDOUT, 0);
    return;
  }
  uint8_t payload[GOOP_PING_SIZE];
  int rc = goop_ping_initiator_start(&p->init, goop__now_us(), payload);
  if (rc || goop_stream_write(s, payload, sizeof(payload)) != (ssize_t)sizeof(payload)) {
    ping_finish(p, rc ? rc : GOOP_EIO, 0);
    return;
  }
  goop_stream_set_callbacks(s, &ping_cbs, p);
}

int goop_host_ping(goop_host *host, const goop_peer_id *peer, uint32_t timeout_ms, goop_ping_cb cb,
                   void *user_data) {
  goop_return_val_if_fail(host && peer && cb, GOOP_EINVAL);
  struct goop__ping *p = calloc(1, sizeof(*p));
  if (!p)
    return GOOP_ENOMEM;
  p->host = host;
  p->cb = cb;
  p->ud = user_data;
  goop_ping_initiator_init(&p->init);
  p->timer = evtimer_new(host->base, ping_timeout_cb, p);
  if (!p->timer) {
    free(p);
    return GOOP_ENOMEM;
  }
  static const char *const protos[] = {GOOP_PROTO_PING};
  uint32_t to = timeout_ms ? timeout_ms : 10000;
  int rc = goop_host_new_stream(host, peer, protos, 1, to, ping_opened, p);
  if (rc) {
    event_free(p->timer);
    free(p);
    return rc;
  }
  GOOP_DL_PUSH(host->pings, p, next, prev);
  struct timeval tv = {(time_t)(to / 1000), (suseconds_t)((to % 1000) * 1000)};
  evtimer_add(p->timer, &tv);
  return 0;
}

/* ---- setup and teardown ------------------------------------------------------------------------- */

int goop__services_init(goop_host *h) {
  int rc = goop_host_set_stream_handler(h, GOOP_PROTO_IDENTIFY, identify_serve, NULL);
  if (!rc)
    rc = goop_host_set_stream_handler(h, GOOP_PROTO_IDENTIFY_PUSH, identify_push_serve, NULL);
  if (!rc)
    rc = goop_host_set_stream_handler(h, GOOP_PROTO_PING, ping_serve, NULL);
  if (!rc)
    rc = goop__dcutr_init(h);
  if (!rc)
    rc = goop__circuit_init(h);
  return rc;
}

void goop__services_cancel(goop_host *h) {
  goop__dcutr_free(h);
  while (h->pings) {
    struct goop__ping *p = h->pings;
    /* The stream goes with the host: do not touch it. */
    p->s = NULL;
    ping_finish(p, GOOP_ECANCELED, 0);
  }
}
