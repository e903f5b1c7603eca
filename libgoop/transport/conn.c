/*
 * Connection glue: secures and multiplexes a byte pipe.
 *
 *   pipe bytes -> [mss "/noise"] -> [Noise XX] -> decrypt -> [mss "/yamux/1.0.0"] -> yamux -> streams
 *
 * All protocol logic lives in the sans-I/O cores (mss.c, noise.c, yamux.c);
 * this file only moves bytes between them, the pipe and the streams.
 */
#include <stdlib.h>
#include <string.h>

#include "transport-internal.h"

static const char *const noise_protos[] = {GOOP_NOISE_PROTOCOL_ID};
static const char *const yamux_protos[] = {GOOP_PROTO_YAMUX};

static goop_conn *conn_ref(goop_conn *c) {
  c->refs++;
  return c;
}

void goop__conn_destroy(goop_conn *c) {
  GOOP_DL_REMOVE(c->host->all_conns, c, all_next, all_prev);
  if (c->hs_timer)
    event_free(c->hs_timer);
  if (c->ka_timer)
    event_free(c->ka_timer);
  if (c->pump_ev)
    event_free(c->pump_ev);
  goop_mss_free(c->mss);
  goop_noise_hs_free(c->hs);
  goop_noise_cipher_free(c->cipher);
  goop_yamux_free(c->ymx);
  goop_buf_free(&c->plain);
  goop_buf_free(&c->enc);
  if (c->pipe) {
    c->pipe->conn = NULL;
    c->pipe->ops->free(c->pipe);
  }
  free(c);
}

static void conn_unref(goop_conn *c) {
  if (c && --c->refs == 0)
    goop__conn_destroy(c);
}

goop_conn *goop_conn_ref(goop_conn *conn) {
  goop_return_val_if_fail(conn != NULL, NULL);
  return conn_ref(conn);
}

goop_conn *goop_conn_unref(goop_conn *conn) {
  if (conn)
    conn_unref(conn);
  return NULL;
}

void goop_conn_remote_peer(const goop_conn *conn, goop_peer_id *ret) {
  if (conn && ret)
    *ret = conn->remote;
}

int goop_conn_remote_addr(const goop_conn *conn, char *buf, size_t buf_len) {
  goop_return_val_if_fail(conn && buf, GOOP_EINVAL);
  size_t n = strlen(conn->remote_addr);
  if (n + 1 > buf_len)
    return GOOP_EINVAL;
  memcpy(buf, conn->remote_addr, n + 1);
  return (int)n;
}

bool goop_conn_is_outbound(const goop_conn *conn) {
  return conn && conn->outbound;
}

bool goop_conn_is_closed(const goop_conn *conn) {
  return !conn || conn->state == GOOP_CONN_CLOSED;
}

void goop_conn_close(goop_conn *conn) {
  if (!conn || conn->state == GOOP_CONN_CLOSED)
    return;
  goop_host *h = conn->host;
  goop__host_enter(h);
  goop__conn_close(conn, 0);
  goop__host_leave(h);
}

/* ---- output ------------------------------------------------------------------- */

static int pipe_write(goop_conn *c, const uint8_t *data, size_t len) {
  if (!c->pipe || len == 0)
    return 0;
  return c->pipe->ops->write(c->pipe, data, len);
}

/* Send a plaintext mss buffer unencrypted (before Noise) and consume it. */
static int flush_clear(goop_conn *c, goop_buf *b) {
  int rc = pipe_write(c, b->data, b->len);
  goop_buf_reset(b);
  return rc;
}

/* Encrypt and send |len| bytes. Bulk data is encrypted straight into the
 * pipe's output blocks when the pipe offers them; otherwise through a small
 * reused scratch buffer. */
static int send_secure(goop_conn *c, const uint8_t *data, size_t len) {
  const size_t frame = (size_t)GOOP_NOISE_MAX_PLAINTEXT;
  const struct goop__pipe_ops *ops = c->pipe ? c->pipe->ops : NULL;
  while (len > 0) {
    if (ops && ops->reserve && len >= 4096) {
      /* Whole frames that fit a block: each frame costs 2 + 16 bytes on top. */
      size_t per_block = (GOOP_PIPE_BLOCK / (frame + 2 + GOOP_NOISE_TAG_SIZE)) * frame;
      size_t n = len < per_block ? len : per_block;
      uint8_t *block = ops->reserve(c->pipe);
      if (!block)
        return GOOP_ENOMEM;
      goop_buf b = {.data = block, .len = 0, .cap = GOOP_PIPE_BLOCK, .max = GOOP_PIPE_BLOCK};
      int rc = goop_noise_encrypt(c->cipher, data, n, &b);
      rc = rc ? (ops->commit(c->pipe, block, 0), rc) : ops->commit(c->pipe, block, b.len);
      if (rc)
        return rc;
      data += n;
      len -= n;
      continue;
    }
    size_t n = len < frame ? len : frame;
    goop_buf_reset(&c->enc);
    int rc = goop_noise_encrypt(c->cipher, data, n, &c->enc);
    if (!rc)
      rc = pipe_write(c, c->enc.data, c->enc.len);
    if (rc)
      return rc;
    data += n;
    len -= n;
  }
  goop_buf_reset(&c->enc);
  return 0;
}

/* Move everything yamux queued to the pipe. */
static int flush_yamux(goop_conn *c) {
  if (!c->ymx || !c->cipher)
    return 0;
  goop_buf *out = goop_yamux_output(c->ymx);
  if (out->len == 0)
    return 0;
  int rc = send_secure(c, out->data, out->len);
  goop_buf_reset(out);
  return rc;
}

/* ---- pump: stream send buffers -> yamux -> pipe -------------------------------- */

static void pump(goop_conn *c) {
  if (c->state != GOOP_CONN_READY)
    return;
  /* Round robin: each pass gives every stream with data one turn. */
  bool progress = true;
  while (progress) {
    progress = false;
    for (goop_stream *s = c->streams; s && c->state == GOOP_CONN_READY;) {
      goop_stream *next = s->next;
      if (c->pipe && c->pipe->ops->out_pending(c->pipe) > GOOP_PIPE_HIGH_WATER)
        goto out;
      if (goop__stream_pump(s))
        progress = true;
      if (flush_yamux(c) != 0) {
        goop__conn_close(c, GOOP_EIO);
        return;
      }
      s = next;
    }
  }
out:
  if (c->state == GOOP_CONN_READY && flush_yamux(c) != 0)
    goop__conn_close(c, GOOP_EIO);
}

static void pump_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  goop_conn *c = arg;
  goop_host *h = c->host;
  goop__host_enter(h);
  conn_ref(c);
  pump(c);
  conn_unref(c);
  goop__host_leave(h);
}

void goop__conn_schedule_pump(goop_conn *c) {
  if (c->state == GOOP_CONN_READY && c->pump_ev)
    event_active(c->pump_ev, 0, 0);
}

/* ---- yamux callbacks ---------------------------------------------------------- */

static int y_stream_open(goop_yamux *y, uint32_t id, void *ud) {
  (void)y;
  goop_conn *c = ud;
  /* A connection that lost a simultaneous-dial tie-break still takes inbound
   * streams: the remote may not have seen both connections yet. */
  if (c->state != GOOP_CONN_READY)
    return -1;
  goop_stream *s = goop__stream_new(c, id, false);
  if (!s)
    return -1;
  int rc = goop_mss_new_responder(goop__host_handler_supported, c->host, &s->mss);
  if (rc) {
    s->in_yamux = false;
    goop__stream_on_closed(s);
    return -1;
  }
  goop_yamux_stream_set_data(c->ymx, id, s);
  return 0;
}

static int y_stream_data(goop_yamux *y, uint32_t id, const uint8_t *data, size_t len, void *ud) {
  (void)ud;
  goop_stream *s = goop_yamux_stream_get_data(y, id);
  if (!s)
    return -1;
  goop__stream_on_data(s, data, len);
  return 0;
}

static void y_stream_fin(goop_yamux *y, uint32_t id, void *ud) {
  (void)ud;
  goop_stream *s = goop_yamux_stream_get_data(y, id);
  if (s)
    goop__stream_on_fin(s);
}

static void y_stream_reset(goop_yamux *y, uint32_t id, uint32_t code, void *ud) {
  (void)ud;
  (void)code;
  goop_stream *s = goop_yamux_stream_get_data(y, id);
  if (s)
    goop__stream_on_reset(s);
}

static void y_stream_writable(goop_yamux *y, uint32_t id, void *ud) {
  goop_conn *c = ud;
  goop_stream *s = goop_yamux_stream_get_data(y, id);
  if (s)
    goop__stream_on_writable(s);
  goop__conn_schedule_pump(c);
}

static void y_stream_closed(goop_yamux *y, uint32_t id, void *ud) {
  (void)ud;
  goop_stream *s = goop_yamux_stream_get_data(y, id);
  if (s) {
    s->in_yamux = false;
    goop__stream_on_closed(s);
  }
}

static void y_ping(goop_yamux *y, uint32_t opaque, bool is_ack, void *ud) {
  goop_conn *c = ud;
  if (is_ack && c->ping_outstanding && opaque == c->ping_opaque) {
    c->ping_outstanding = false;
    goop_tstamp rtt = goop__now_us() - c->ping_sent;
    c->rtt = c->rtt ? (c->rtt * 7 + rtt) / 8 : rtt;
    goop_yamux_set_rtt(y, c->rtt);
  }
}

static void y_goaway(goop_yamux *y, uint32_t code, void *ud) {
  (void)y;
  (void)code;
  goop_conn *c = ud;
  c->draining = true;
}

static const struct goop_yamux_callbacks ymx_callbacks = {
    .version = GOOP_YAMUX_CALLBACKS_VERSION,
    .on_stream_open = y_stream_open,
    .on_stream_data = y_stream_data,
    .on_stream_fin = y_stream_fin,
    .on_stream_reset = y_stream_reset,
    .on_stream_writable = y_stream_writable,
    .on_stream_closed = y_stream_closed,
    .on_ping = y_ping,
    .on_goaway = y_goaway,
};

/* ---- timers --------------------------------------------------------------------- */

static void hs_timeout_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  goop_conn *c = arg;
  goop_host *h = c->host;
  goop__host_enter(h);
  goop__log_debug(h->ctx, "connection %s: handshake timed out", c->remote_addr);
  goop__conn_close(c, GOOP_ETIMEDOUT);
  goop__host_leave(h);
}

static void ka_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  goop_conn *c = arg;
  goop_host *h = c->host;
  goop__host_enter(h);
  conn_ref(c);
  goop_tstamp now = goop__now_us();
  uint64_t ka = goop__host_opt(h, GOOP_HOST_KEEPALIVE_MS) * 1000u;
  uint64_t ka_to = goop__host_opt(h, GOOP_HOST_KEEPALIVE_TIMEOUT_MS) * 1000u;
  uint64_t idle = goop__host_opt(h, GOOP_HOST_IDLE_TIMEOUT_MS) * 1000u;
  if (c->state == GOOP_CONN_READY) {
    if (c->ping_outstanding && now - c->ping_sent >= ka_to) {
      goop__log_info(h->ctx, "connection %s: keepalive ping unanswered, closing", c->remote_addr);
      goop__conn_close(c, GOOP_ETIMEDOUT);
    } else if (idle && c->n_streams == 0 && now - c->last_activity >= idle) {
      goop__conn_close(c, 0);
    } else if (c->draining && c->n_streams == 0 && now - c->last_activity >= 2000000u) {
      goop__conn_close(c, 0); /* the duplicate of a simultaneous dial, now unused */
    } else if (ka && !c->ping_outstanding && now - c->ping_sent >= ka) {
      c->ping_outstanding = true;
      c->ping_opaque = (uint32_t)(now & 0xffffffffu);
      c->ping_sent = now;
      if (goop_yamux_ping(c->ymx, c->ping_opaque) != 0 || flush_yamux(c) != 0)
        goop__conn_close(c, GOOP_EIO);
    }
  }
  conn_unref(c);
  goop__host_leave(h);
}

/* ---- upgrade steps -------------------------------------------------------------- */

static int start_yamux(goop_conn *c) {
  goop_host *h = c->host;
  struct goop_yamux_config ycfg;
  goop_yamux_config_default(&ycfg);
  ycfg.max_window = (uint32_t)goop__host_opt(h, GOOP_HOST_MAX_WINDOW);
  if (ycfg.max_window < ycfg.initial_window)
    ycfg.max_window = ycfg.initial_window;
  ycfg.max_inbound_streams = (uint32_t)goop__host_opt(h, GOOP_HOST_MAX_STREAMS_PER_CONN);
  int rc = goop_yamux_new(c->initiator, &ycfg, &ymx_callbacks, c, &c->ymx);
  if (rc)
    return rc;
  goop_mss_free(c->mss);
  c->mss = NULL;
  c->state = GOOP_CONN_READY;
  c->last_activity = goop__now_us();
  c->ping_sent = c->last_activity;
  evtimer_del(c->hs_timer);
  uint64_t ka = goop__host_opt(h, GOOP_HOST_KEEPALIVE_MS);
  uint64_t ka_to = goop__host_opt(h, GOOP_HOST_KEEPALIVE_TIMEOUT_MS);
  uint64_t tick = ka ? GOOP_MIN(ka, ka_to ? ka_to : ka) : 5000;
  if (tick < 100)
    tick = 100;
  struct timeval tv = {(time_t)(tick / 1000), (suseconds_t)((tick % 1000) * 1000)};
  c->ka_timer = event_new(h->base, -1, EV_PERSIST, ka_cb, c);
  if (!c->ka_timer)
    return GOOP_ENOMEM;
  event_add(c->ka_timer, &tv);
  if (ka) {
    /* Measure the round trip now, not after the first keepalive interval: the
     * receive window only grows once yamux knows the RTT. */
    c->ping_outstanding = true;
    c->ping_opaque = (uint32_t)(c->last_activity & 0xffffffffu);
    rc = goop_yamux_ping(c->ymx, c->ping_opaque);
    if (rc)
      return rc;
    goop__conn_schedule_pump(c);
  }
  goop__host_conn_ready(h, c);
  return 0;
}

static int handshake_done(goop_conn *c) {
  const goop_peer_id *rp = goop_noise_hs_remote_peer_id(c->hs);
  if (!rp)
    return GOOP_EPROTO;
  c->remote = *rp;
  if (c->has_expected && !goop_peer_id_equal(&c->remote, &c->expected))
    return GOOP_EPEERID;
  if (goop_peer_id_equal(&c->remote, &c->host->self))
    return GOOP_EPEERID; /* dialled ourselves */
  const char *mux = goop_noise_hs_early_muxer(c->hs);
  bool early = mux && strcmp(mux, GOOP_PROTO_YAMUX) == 0;
  int rc = goop_noise_hs_split(c->hs, &c->cipher);
  if (rc)
    return rc;
  goop_noise_hs_free(c->hs);
  c->hs = NULL;
  if (early)
    return start_yamux(c);
  c->state = GOOP_CONN_MUX_MSS;
  if (c->initiator)
    rc = goop_mss_new_initiator(yamux_protos, 1, false, &c->mss);
  else
    rc = goop_mss_new_responder_list(yamux_protos, 1, &c->mss);
  if (rc)
    return rc;
  goop_buf *o = goop_mss_output(c->mss);
  rc = send_secure(c, o->data, o->len);
  goop_buf_reset(o);
  return rc;
}

static int noise_write(goop_conn *c) {
  goop_buf_reset(&c->enc);
  int rc = goop_noise_hs_write_message(c->hs, &c->enc);
  if (rc)
    return rc;
  rc = pipe_write(c, c->enc.data, c->enc.len);
  goop_buf_reset(&c->enc);
  return rc;
}

/* true if |in| starts with a whole Noise frame (u16be length + body); |*ret_n| = body length. */
static bool whole_frame(struct evbuffer *in, size_t avail, size_t *ret_n) {
  if (avail < 2)
    return false;
  uint8_t hdr[2];
  evbuffer_copyout(in, hdr, 2);
  *ret_n = (size_t)hdr[0] << 8 | hdr[1];
  return avail >= *ret_n + 2;
}

/* Process buffered input. Returns 0 or an error that closes the connection. */
static int process(goop_conn *c, struct evbuffer *in) {
  for (;;) {
    size_t avail = evbuffer_get_length(in);
    switch (c->state) {
    case GOOP_CONN_SEC_MSS: {
      if (avail == 0)
        return 0;
      size_t take = GOOP_MIN(avail, (size_t)4096);
      const uint8_t *data = evbuffer_pullup(in, (ev_ssize_t)take);
      size_t consumed = 0;
      int r = goop_mss_feed(c->mss, data, take, &consumed);
      evbuffer_drain(in, consumed);
      int wr = flush_clear(c, goop_mss_output(c->mss));
      if (r < 0)
        return r;
      if (wr)
        return wr;
      if (r == GOOP_MSS_NEED_MORE) {
        if (take < avail)
          continue;
        return 0;
      }
      goop_mss_free(c->mss);
      c->mss = NULL;
      c->state = GOOP_CONN_NOISE;
      continue;
    }
    case GOOP_CONN_NOISE: {
      size_t n;
      if (!whole_frame(in, avail, &n))
        return 0;
      const uint8_t *data = evbuffer_pullup(in, (ev_ssize_t)(n + 2));
      int rc = goop_noise_hs_read_message(c->hs, data + 2, n);
      evbuffer_drain(in, n + 2);
      if (rc)
        return rc;
      if (goop_noise_hs_want_write(c->hs)) {
        rc = noise_write(c);
        if (rc)
          return rc;
      }
      if (goop_noise_hs_is_complete(c->hs)) {
        rc = handshake_done(c);
        if (rc)
          return rc;
      }
      continue;
    }
    case GOOP_CONN_MUX_MSS:
    case GOOP_CONN_READY: {
      size_t n;
      if (!whole_frame(in, avail, &n))
        return 0;
      /* Decrypt in place when the frame is contiguous in the input buffer;
       * otherwise copy it out once into a reused scratch buffer. */
      struct evbuffer_iovec v;
      const uint8_t *data;
      if (evbuffer_peek(in, (ev_ssize_t)(n + 2), NULL, &v, 1) == 1 && v.iov_len >= n + 2) {
        data = v.iov_base;
      } else {
        goop_buf_reset(&c->enc);
        if (goop_buf_reserve(&c->enc, n + 2) != 0)
          return GOOP_ENOMEM;
        evbuffer_copyout(in, c->enc.data, n + 2);
        data = c->enc.data;
      }
      size_t consumed = 0;
      int r = goop_noise_decrypt_frame(c->cipher, data, n + 2, &consumed, &c->plain);
      if (r < 0)
        return r;
      evbuffer_drain(in, consumed);
      c->last_activity = goop__now_us();
      if (c->state == GOOP_CONN_MUX_MSS) {
        size_t used = 0;
        r = goop_mss_feed(c->mss, c->plain.data, c->plain.len, &used);
        goop_buf *o = goop_mss_output(c->mss);
        int wr = send_secure(c, o->data, o->len);
        goop_buf_reset(o);
        if (r < 0)
          return r;
        if (wr)
          return wr;
        if (r == GOOP_MSS_NEED_MORE) {
          goop_buf_reset(&c->plain);
          continue;
        }
        goop_buf_consume(&c->plain, used);
        int rc = start_yamux(c);
        if (rc)
          return rc;
        if (c->state != GOOP_CONN_READY)
          return 0;
      }
      if (c->plain.len) {
        r = goop_yamux_feed(c->ymx, c->plain.data, c->plain.len, c->last_activity);
        goop_buf_reset(&c->plain);
        if (r == 0 && c->waiting)
          goop__host_retry_opens(c, 0);
        int wr = c->state == GOOP_CONN_READY ? flush_yamux(c) : 0;
        if (r < 0)
          return r;
        if (wr)
          return wr;
        if (c->state != GOOP_CONN_READY)
          return 0;
      }
      continue;
    }
    case GOOP_CONN_CLOSED:
      evbuffer_drain(in, avail);
      return 0;
    }
  }
}

void goop__conn_pipe_input(goop_conn *c, struct evbuffer *in) {
  goop_host *h = c->host;
  goop__host_enter(h);
  conn_ref(c);
  int rc = process(c, in);
  if (rc < 0 && c->state != GOOP_CONN_CLOSED) {
    goop__log_info(h->ctx, "connection %s: %s", c->remote_addr, goop_strerror(rc));
    goop__conn_close(c, rc);
  } else if (c->state == GOOP_CONN_READY) {
    goop__conn_schedule_pump(c);
  }
  conn_unref(c);
  goop__host_leave(h);
}

void goop__conn_pipe_drained(goop_conn *c) {
  goop__conn_schedule_pump(c);
}

void goop__conn_pipe_closed(goop_conn *c, int err) {
  goop_host *h = c->host;
  goop__host_enter(h);
  conn_ref(c);
  if (c->state != GOOP_CONN_CLOSED) {
    goop__conn_close(c, err == GOOP_ECLOSED ? 0 : err);
  }
  /* Lingering pipe finished flushing (or failed): release it. */
  if (c->pipe && c->state == GOOP_CONN_CLOSED) {
    goop__pipe *p = c->pipe;
    c->pipe = NULL;
    p->conn = NULL;
    p->ops->free(p);
    conn_unref(c); /* the linger reference */
  }
  conn_unref(c);
  goop__host_leave(h);
}

int goop__conn_new(goop_host *h, goop__pipe *pipe, bool outbound, const goop_peer_id *expected,
                   goop_conn **ret) {
  return goop__conn_new_role(h, pipe, outbound, outbound, expected, ret);
}

int goop__conn_new_role(goop_host *h, goop__pipe *pipe, bool outbound, bool initiator,
                        const goop_peer_id *expected, goop_conn **ret) {
  goop_conn *c = calloc(1, sizeof(*c));
  if (!c)
    return GOOP_ENOMEM;
  c->refs = 1;
  c->host = h;
  GOOP_DL_PUSH(h->all_conns, c, all_next, all_prev);
  c->outbound = outbound;
  c->initiator = initiator;
  c->state = GOOP_CONN_SEC_MSS;
  goop_buf_init(&c->plain, 0);
  goop_buf_init(&c->enc, 0);
  if (expected) {
    c->has_expected = true;
    c->expected = *expected;
  }
  int rc = GOOP_ENOMEM;
  c->hs_timer = evtimer_new(h->base, hs_timeout_cb, c);
  c->pump_ev = event_new(h->base, -1, 0, pump_cb, c);
  if (!c->hs_timer || !c->pump_ev)
    goto fail;
  if (initiator)
    rc = goop_mss_new_initiator(noise_protos, 1, true, &c->mss);
  else
    rc = goop_mss_new_responder_list(noise_protos, 1, &c->mss);
  if (rc)
    goto fail;
  static const char *const muxers[] = {GOOP_PROTO_YAMUX};
  rc = goop_noise_hs_new(initiator, h->id, expected, muxers, 1, &c->hs);
  if (rc)
    goto fail;
  c->pipe = pipe;
  pipe->conn = c;
  (void)pipe->ops->remote_addr(pipe, c->remote_addr, sizeof(c->remote_addr));
  uint64_t to = goop__host_opt(h, GOOP_HOST_HANDSHAKE_TIMEOUT_MS);
  struct timeval tv = {(time_t)(to / 1000), (suseconds_t)((to % 1000) * 1000)};
  evtimer_add(c->hs_timer, &tv);
  /* link */
  c->next = h->conns;
  if (h->conns)
    h->conns->prev = c;
  h->conns = c;
  c->in_list = true;
  if (initiator) {
    /* Lazy multistream: header + "/noise" + Noise msg1 in one write. */
    rc = flush_clear(c, goop_mss_output(c->mss));
    if (!rc)
      rc = noise_write(c);
    if (rc) {
      goop__conn_close(c, rc); /* unlinks and frees */
      return rc;
    }
  }
  *ret = c;
  return 0;
fail:
  /* The pipe is always taken over, also on failure. */
  c->pipe = NULL;
  pipe->conn = NULL;
  pipe->ops->free(pipe);
  goop__conn_destroy(c);
  return rc;
}

void goop__conn_close(goop_conn *c, int reason) {
  if (c->state == GOOP_CONN_CLOSED)
    return;
  goop_host *h = c->host;
  bool was_ready = c->state == GOOP_CONN_READY;
  conn_ref(c);
  c->close_reason = reason;
  if (c->ymx && was_ready) {
    (void)goop_yamux_goaway(c->ymx, reason ? GOOP_YAMUX_GOAWAY_INTERNAL_ERROR : GOOP_YAMUX_GOAWAY_NORMAL);
    (void)flush_yamux(c);
  }
  c->state = GOOP_CONN_CLOSED;
  evtimer_del(c->hs_timer);
  if (c->ka_timer)
    event_del(c->ka_timer);
  event_del(c->pump_ev);
  goop__host_retry_opens(c, reason ? reason : GOOP_ECONNRESET);
  /* Fail every stream; yamux state goes away without callbacks. */
  while (c->streams) {
    goop_stream *s = c->streams;
    s->in_yamux = false;
    goop__stream_fail(s, reason ? reason : GOOP_ECONNRESET);
    if (c->streams == s) /* still linked (fail did not unlink): unlink now */
      goop__stream_on_closed(s);
  }
  goop_yamux_free(c->ymx);
  c->ymx = NULL;
  if (c->pipe) {
    c->pipe->ops->shutdown(c->pipe);
    if (c->pipe->ops->out_pending(c->pipe) == 0) {
      goop__pipe *p = c->pipe;
      c->pipe = NULL;
      p->conn = NULL;
      p->ops->free(p);
    } else {
      conn_ref(c); /* linger until the pipe drained; see goop__conn_pipe_closed */
    }
  }
  goop__host_conn_closed(h, c, reason, was_ready);
  conn_unref(c);
}

int goop__conn_open_stream(goop_conn *c, const char *const *protocols, size_t n, uint32_t timeout_ms,
                           goop_stream_open_cb cb, void *ud) {
  if (c->state != GOOP_CONN_READY || c->draining)
    return GOOP_ECLOSED;
  uint32_t id;
  int rc = goop_yamux_open_stream(c->ymx, &id);
  if (rc)
    return rc;
  goop_stream *s = goop__stream_new(c, id, true);
  if (!s) {
    (void)goop_yamux_reset(c->ymx, id, 0);
    return GOOP_ENOMEM;
  }
  goop_yamux_stream_set_data(c->ymx, id, s);
  /* 0-RTT: when identify said the peer serves the only protocol we ask for,
   * propose it and let the application write at once (the echo is checked
   * when it arrives; a refusal fails the stream with GOOP_ENEGOTIATION). */
  bool lazy = false;
  /* js-libp2p 3 listeners can drop data that arrives together with the
   * proposal (seen in the interop suite), so they always get the 1-RTT form. */
  const char *agent = goop_host_peer_agent(c->host, &c->remote);
  if (n == 1 && !(agent && strncmp(agent, "js-libp2p", 9) == 0)) {
    const char *p;
    for (size_t i = 0; !lazy && (p = goop_host_peer_protocol(c->host, &c->remote, i)) != NULL; i++)
      lazy = strcmp(p, protocols[0]) == 0;
  }
  rc = goop_mss_new_initiator(protocols, n, lazy, &s->mss);
  if (!rc && lazy) {
    s->protocol = goop__strdup(protocols[0]);
    if (!s->protocol)
      rc = GOOP_ENOMEM;
  }
  if (rc) {
    goop__stream_fail(s, rc);
    return rc;
  }
  s->open_cb = cb;
  s->open_ud = ud;
  goop_buf *o = goop_mss_output(s->mss);
  long w = goop_yamux_write(c->ymx, id, o->data, o->len);
  if (w < 0 || (size_t)w != o->len) {
    s->open_cb = NULL;
    goop__stream_fail(s, w < 0 ? (int)w : GOOP_ELIMIT);
    return w < 0 ? (int)w : GOOP_ELIMIT;
  }
  goop_buf_reset(o);
  uint64_t to = timeout_ms ? timeout_ms : goop__host_opt(c->host, GOOP_HOST_NEGOTIATION_TIMEOUT_MS);
  struct timeval tv = {(time_t)(to / 1000), (suseconds_t)((to % 1000) * 1000)};
  evtimer_add(s->timer, &tv);
  if (lazy) {
    /* Open for the application now; s->mss stays until the echo arrived. */
    s->state = GOOP_STREAM_OPEN;
    s->pend_open = true;
    goop__stream_notify(s);
  }
  goop__conn_schedule_pump(c);
  return 0;
}
