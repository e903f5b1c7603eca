/*
 * Streams: per-stream protocol negotiation, bounded receive and send buffers,
 * deferred notifications to the application.
 *
 * References: a stream linked into its connection holds one internal
 * reference until yamux forgets it; the application holds the references it
 * was given (user_refs, counted in refs too); a scheduled notification holds
 * one more until it ran.
 */
#include <stdlib.h>
#include <string.h>

#include "transport-internal.h"

void goop__stream_destroy(goop_stream *s) {
  GOOP_DL_REMOVE(s->conn->host->all_streams, s, all_next, all_prev);
  if (s->svc_free)
    s->svc_free(s->ud);
  if (s->notify_ev)
    event_free(s->notify_ev);
  if (s->timer)
    event_free(s->timer);
  goop_mss_free(s->mss);
  free(s->protocol);
  goop_buf_free(&s->rbuf);
  goop_buf_free(&s->wbuf);
  free(s);
}

static void stream_free(goop_stream *s) {
  goop_conn *c = s->conn;
  goop__stream_destroy(s);
  goop_conn_unref(c);
}

static goop_stream *sref(goop_stream *s) {
  s->refs++;
  return s;
}

static void sunref(goop_stream *s) {
  if (--s->refs == 0)
    stream_free(s);
}

static void notify_cb(evutil_socket_t fd, short what, void *arg);
static void timer_cb(evutil_socket_t fd, short what, void *arg);

static void arm_timer(goop_stream *s, uint64_t ms) {
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
  evtimer_add(s->timer, &tv);
}

goop_stream *goop__stream_new(goop_conn *c, uint32_t id, bool outbound) {
  goop_stream *s = calloc(1, sizeof(*s));
  if (!s)
    return NULL;
  s->refs = 1; /* internal: linked in conn->streams */
  s->conn = goop_conn_ref(c);
  s->id = id;
  s->outbound = outbound;
  s->in_yamux = true;
  s->state = GOOP_STREAM_NEGOTIATING;
  s->wmax = (size_t)goop__host_opt(c->host, GOOP_HOST_STREAM_BUFFER);
  goop_buf_init(&s->rbuf, 0);
  goop_buf_init(&s->wbuf, 0);
  s->notify_ev = event_new(c->host->base, -1, 0, notify_cb, s);
  s->timer = evtimer_new(c->host->base, timer_cb, s);
  if (!s->notify_ev || !s->timer) {
    if (s->notify_ev)
      event_free(s->notify_ev);
    if (s->timer)
      event_free(s->timer);
    goop_conn_unref(c);
    free(s);
    return NULL;
  }
  GOOP_DL_PUSH(c->host->all_streams, s, all_next, all_prev);
  s->last_io = goop__now_us();
  s->next = c->streams;
  if (c->streams)
    c->streams->prev = s;
  c->streams = s;
  c->n_streams++;
  if (!outbound)
    arm_timer(s, goop__host_opt(c->host, GOOP_HOST_NEGOTIATION_TIMEOUT_MS));
  return s;
}

static bool is_linked(const goop_stream *s) {
  return s->prev || s->conn->streams == s;
}

static void activate(goop_stream *s) {
  if (s->notify_scheduled)
    return;
  s->notify_scheduled = true;
  sref(s);
  event_active(s->notify_ev, 0, 0);
}

void goop__stream_notify(goop_stream *s) {
  activate(s);
}

/* yamux forgot the stream (or its connection closed): unlink, drop the internal ref. */
void goop__stream_on_closed(goop_stream *s) {
  goop_conn *c = s->conn;
  s->in_yamux = false;
  if (!is_linked(s))
    return;
  if (s->prev)
    s->prev->next = s->next;
  else
    c->streams = s->next;
  if (s->next)
    s->next->prev = s->prev;
  s->next = s->prev = NULL;
  c->n_streams--;
  c->last_activity = goop__now_us();
  if (s->state != GOOP_STREAM_DEAD) {
    s->state = GOOP_STREAM_DEAD; /* finished cleanly in both directions */
    if (!s->err)
      s->err = GOOP_ECLOSED;
    if (s->rbuf.len == 0)
      s->pend_readable = true, activate(s);
  }
  evtimer_del(s->timer);
  sunref(s);
}

/* Mark the stream dead and tell its owner. With |send_rst| a still-live yamux
 * stream is reset (which unlinks it synchronously). */
static void stream_kill(goop_stream *s, int err, bool send_rst) {
  if (s->state == GOOP_STREAM_DEAD)
    return;
  sref(s);
  enum goop__stream_state prev = s->state;
  s->state = GOOP_STREAM_DEAD;
  s->err = err;
  evtimer_del(s->timer);
  if (prev == GOOP_STREAM_NEGOTIATING) {
    if (s->outbound && s->open_cb) {
      s->pend_open = true;
      activate(s);
    }
  } else if (s->user_refs > 0) {
    s->pend_error = true;
    activate(s);
  }
  goop_conn *c = s->conn;
  if (send_rst && s->in_yamux && c->ymx) {
    (void)goop_yamux_reset(c->ymx, s->id, 0);
    goop__conn_schedule_pump(c);
  }
  sunref(s);
}

void goop__stream_fail(goop_stream *s, int err) {
  sref(s);
  stream_kill(s, err, true);
  if (!s->in_yamux && is_linked(s))
    goop__stream_on_closed(s);
  sunref(s);
}

void goop__stream_on_data(goop_stream *s, const uint8_t *data, size_t len) {
  goop_conn *c = s->conn;
  s->last_io = goop__now_us();
  if (s->state == GOOP_STREAM_NEGOTIATING) {
    size_t used = 0;
    int r = goop_mss_feed(s->mss, data, len, &used);
    goop_buf *o = goop_mss_output(s->mss);
    if (o->len) {
      long w = goop_yamux_write(c->ymx, s->id, o->data, o->len);
      if (w < 0 || (size_t)w != o->len) {
        goop__stream_fail(s, GOOP_EPROTO);
        return;
      }
      goop_buf_reset(o);
      goop__conn_schedule_pump(c);
    }
    (void)goop_yamux_consume(c->ymx, s->id, used, s->last_io);
    if (r < 0) {
      goop__log_debug(c->host->ctx, "stream negotiation with %s failed: %s", c->remote_addr,
                      goop_strerror(r));
      goop__stream_fail(s, r == GOOP_ENEGOTIATION ? GOOP_ENEGOTIATION : r);
      return;
    }
    if (r == GOOP_MSS_NEED_MORE)
      return;
    const char *proto = NULL;
    (void)goop_mss_selected(s->mss, &proto, NULL);
    s->protocol = goop__strdup(proto);
    goop_mss_free(s->mss);
    s->mss = NULL;
    if (!s->protocol) {
      goop__stream_fail(s, GOOP_ENOMEM);
      return;
    }
    s->state = GOOP_STREAM_OPEN;
    evtimer_del(s->timer);
    if (used < len) {
      if (goop_buf_append(&s->rbuf, data + used, len - used) != 0) {
        goop__stream_fail(s, GOOP_ENOMEM);
        return;
      }
      s->pend_readable = true;
    }
    s->pend_open = true;
    activate(s);
    return;
  }
  if (s->state == GOOP_STREAM_OPEN && s->mss) {
    /* Lazy (0-RTT) negotiation: the header and the echo come first. */
    size_t used = 0;
    int r = goop_mss_feed(s->mss, data, len, &used);
    (void)goop_yamux_consume(c->ymx, s->id, used, s->last_io);
    if (r < 0) {
      goop__log_debug(c->host->ctx, "stream to %s: protocol %s refused", c->remote_addr,
                      s->protocol ? s->protocol : "?");
      goop__stream_fail(s, r == GOOP_ENEGOTIATION ? GOOP_ENEGOTIATION : r);
      return;
    }
    if (r == GOOP_MSS_NEED_MORE)
      return;
    goop_mss_free(s->mss);
    s->mss = NULL;
    evtimer_del(s->timer);
    if (s->idle_ms)
      arm_timer(s, s->idle_ms);
    data += used;
    len -= used;
    if (len == 0)
      return;
  }
  if (s->state == GOOP_STREAM_OPEN && !(s->handed && s->user_refs == 0)) {
    if (goop_buf_append(&s->rbuf, data, len) != 0) {
      goop__stream_fail(s, GOOP_ENOMEM);
      return;
    }
    s->pend_readable = true;
    activate(s);
    return;
  }
  /* Nobody will read it: discard and keep the window open. */
  (void)goop_yamux_consume(c->ymx, s->id, len, s->last_io);
}

void goop__stream_on_fin(goop_stream *s) {
  s->remote_fin = true;
  if (s->state == GOOP_STREAM_NEGOTIATING || (s->state == GOOP_STREAM_OPEN && s->mss)) {
    stream_kill(s, GOOP_EPROTO, true);
    return;
  }
  if (s->state == GOOP_STREAM_OPEN) {
    s->pend_readable = true;
    activate(s);
  }
}

void goop__stream_on_reset(goop_stream *s) {
  /* yamux calls on_stream_closed right after; it unlinks the stream. */
  s->in_yamux = false;
  stream_kill(s, GOOP_ERESET, false);
}

void goop__stream_on_writable(goop_stream *s) {
  (void)s; /* the connection pump moves queued data */
}

bool goop__stream_pump(goop_stream *s) {
  goop_conn *c = s->conn;
  if (s->state != GOOP_STREAM_OPEN || !s->in_yamux || !c->ymx)
    return false;
  bool progress = false;
  sref(s);
  while (s->wbuf.len) {
    long w = goop_yamux_write(c->ymx, s->id, s->wbuf.data, s->wbuf.len);
    if (w < 0) {
      goop__stream_fail(s, (int)w);
      goto out;
    }
    if (w == 0)
      break;
    goop_buf_consume(&s->wbuf, (size_t)w);
    progress = true;
  }
  if (s->want_writable && s->wbuf.len <= s->wmax / 2) {
    s->want_writable = false;
    s->pend_writable = true;
    activate(s);
  }
  if (s->wbuf.len == 0 && s->fin_requested && !s->fin_sent) {
    s->fin_sent = true;
    progress = true;
    (void)goop_yamux_close_write(c->ymx, s->id); /* may unlink synchronously */
  }
out:
  sunref(s);
  return progress;
}

static void notify_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  goop_stream *s = arg;
  goop_host *h = s->conn->host;
  s->notify_scheduled = false;
  goop__host_enter(h);
  if (s->pend_open) {
    s->pend_open = false;
    if (s->outbound) {
      goop_stream_open_cb cb = s->open_cb;
      s->open_cb = NULL;
      if (cb) {
        if (s->state == GOOP_STREAM_OPEN) {
          s->handed = true;
          s->user_refs++;
          sref(s);
          cb(h, 0, s, s->open_ud);
        } else {
          cb(h, s->err ? s->err : GOOP_ECLOSED, NULL, s->open_ud);
        }
      }
    } else if (s->state == GOOP_STREAM_OPEN) {
      const struct goop__handler *hd = goop__host_find_handler(h, s->protocol);
      if (hd) {
        s->handed = true;
        s->user_refs++;
        sref(s);
        hd->fn(h, s, hd->ud);
      } else {
        goop__stream_fail(s, GOOP_ENEGOTIATION);
      }
    }
  }
  if (s->pend_error) {
    s->pend_error = false;
    s->pend_readable = s->pend_writable = false;
    if (s->user_refs > 0 && s->cb.on_error)
      s->cb.on_error(s, s->err, s->ud);
  }
  if (s->pend_readable) {
    s->pend_readable = false;
    if (s->user_refs > 0 && s->cb.on_readable)
      s->cb.on_readable(s, s->ud);
  }
  if (s->pend_writable) {
    s->pend_writable = false;
    if (s->user_refs > 0 && s->cb.on_writable)
      s->cb.on_writable(s, s->ud);
  }
  sunref(s);
  goop__host_leave(h);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  goop_stream *s = arg;
  goop_host *h = s->conn->host;
  goop__host_enter(h);
  if (s->state == GOOP_STREAM_NEGOTIATING || (s->state == GOOP_STREAM_OPEN && s->mss)) {
    goop__stream_fail(s, GOOP_ETIMEDOUT);
  } else if (s->state == GOOP_STREAM_OPEN && s->idle_ms) {
    goop_tstamp now = goop__now_us(), due = s->last_io + (goop_tstamp)s->idle_ms * 1000u;
    if (now >= due)
      goop__stream_fail(s, GOOP_ETIMEDOUT);
    else
      arm_timer(s, (due - now) / 1000u + 1);
  }
  goop__host_leave(h);
}

/* ---- public API ------------------------------------------------------------------ */

void goop_stream_set_callbacks(goop_stream *s, const struct goop_stream_callbacks *cb, void *user_data) {
  if (!s)
    return;
  s->cb = cb ? *cb : (struct goop_stream_callbacks){0};
  s->ud = user_data;
  s->svc_free = NULL;
  if (s->rbuf.len || s->remote_fin || s->state == GOOP_STREAM_DEAD) {
    s->pend_readable = true;
    activate(s);
  }
}

ssize_t goop_stream_read(goop_stream *s, void *buf, size_t len) {
  goop_return_val_if_fail(s && (buf || len == 0), GOOP_EINVAL);
  if (s->rbuf.len) {
    size_t n = GOOP_MIN(len, s->rbuf.len);
    memcpy(buf, s->rbuf.data, n);
    goop_buf_consume(&s->rbuf, n);
    if (s->rbuf.len == 0 && s->rbuf.cap > (1u << 20))
      goop_buf_free(&s->rbuf); /* only after a burst above the initial window */
    s->last_io = goop__now_us();
    goop_conn *c = s->conn;
    if (s->in_yamux && c->ymx) {
      (void)goop_yamux_consume(c->ymx, s->id, n, s->last_io);
      goop__conn_schedule_pump(c);
    }
    return (ssize_t)n;
  }
  if (s->remote_fin)
    return 0;
  if (s->state == GOOP_STREAM_DEAD)
    return s->err == GOOP_ECLOSED ? 0 : s->err;
  return GOOP_EAGAIN;
}

size_t goop_stream_readable(const goop_stream *s) {
  return s ? s->rbuf.len : 0;
}

ssize_t goop_stream_write(goop_stream *s, const void *buf, size_t len) {
  goop_return_val_if_fail(s && (buf || len == 0), GOOP_EINVAL);
  if (s->state == GOOP_STREAM_DEAD)
    return s->err && s->err != GOOP_ECLOSED ? s->err : GOOP_ECLOSED;
  if (s->fin_requested)
    return GOOP_ECLOSED;
  if (s->state != GOOP_STREAM_OPEN)
    return GOOP_ESTATE;
  if (len == 0)
    return 0;
  size_t space = s->wbuf.len < s->wmax ? s->wmax - s->wbuf.len : 0;
  if (space == 0) {
    s->want_writable = true;
    return GOOP_EAGAIN;
  }
  size_t n = GOOP_MIN(len, space);
  if (goop_buf_append(&s->wbuf, buf, n) != 0)
    return GOOP_ENOMEM;
  if (s->wbuf.len >= s->wmax)
    s->want_writable = true;
  s->last_io = goop__now_us();
  goop__conn_schedule_pump(s->conn);
  return (ssize_t)n;
}

size_t goop_stream_pending(const goop_stream *s) {
  return s ? s->wbuf.len : 0;
}

int goop_stream_close_write(goop_stream *s) {
  goop_return_val_if_fail(s != NULL, GOOP_EINVAL);
  if (s->state == GOOP_STREAM_DEAD)
    return s->fin_sent || s->err == GOOP_ECLOSED ? 0 : s->err;
  s->fin_requested = true;
  goop__conn_schedule_pump(s->conn);
  return 0;
}

void goop_stream_reset(goop_stream *s) {
  if (!s || s->state == GOOP_STREAM_DEAD)
    return;
  goop__stream_fail(s, GOOP_ECANCELED);
  s->pend_error = false; /* no callback for our own reset */
}

void goop_stream_set_idle_timeout(goop_stream *s, uint32_t ms) {
  if (!s)
    return;
  s->idle_ms = ms;
  if (s->state != GOOP_STREAM_OPEN || s->mss)
    return; /* armed once negotiation finished */
  if (ms)
    arm_timer(s, ms);
  else
    evtimer_del(s->timer);
}

const char *goop_stream_protocol(const goop_stream *s) {
  return s ? s->protocol : NULL;
}

void goop_stream_remote_peer(const goop_stream *s, goop_peer_id *ret) {
  if (s && ret)
    *ret = s->conn->remote;
}

goop_conn *goop_stream_conn(const goop_stream *s) {
  return s ? s->conn : NULL;
}

goop_stream *goop_stream_ref(goop_stream *s) {
  if (!s)
    return NULL;
  s->user_refs++;
  return sref(s);
}

goop_stream *goop_stream_unref(goop_stream *s) {
  if (!s)
    return NULL;
  if (s->user_refs > 0 && --s->user_refs == 0 && s->state != GOOP_STREAM_DEAD) {
    if (!s->fin_requested) {
      goop__stream_fail(s, GOOP_ECANCELED);
    } else {
      /* Queued data still goes out; incoming data is discarded. */
      goop_conn *c = s->conn;
      if (s->rbuf.len && s->in_yamux && c->ymx)
        (void)goop_yamux_consume(c->ymx, s->id, s->rbuf.len, goop__now_us());
      goop_buf_free(&s->rbuf);
      s->pend_error = s->pend_readable = s->pend_writable = false;
      /* A peer that never finishes its side cannot keep the stream forever. */
      goop_stream_set_idle_timeout(s, 30000);
      goop__conn_schedule_pump(c);
    }
  }
  sunref(s);
  return NULL;
}
