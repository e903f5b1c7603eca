/* Sans-I/O yamux session core. See yamux.h for the contract. */
#include "yamux.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct ystream {
  uint32_t id;
  uint32_t send_window; /* bytes the peer lets us send */
  uint32_t recv_window; /* bytes the peer may still send us */
  uint32_t recv_target; /* auto-tuned target window */
  uint32_t unconsumed;  /* delivered, not yet consumed by the application */
  goop_tstamp epoch;    /* time of the last window update we sent */
  void *app_data;
  struct ystream *next_dead; /* graveyard link */
  bool inbound;
  bool announced; /* opened locally or accepted: on_stream_closed is due */
  bool need_ack;  /* inbound: our first frame must carry ACK */
  bool unacked;   /* outbound: SYN sent, no ACK seen yet */
  bool local_fin;
  bool remote_fin;
  bool rst_recv; /* the peer reset it: on_stream_reset is running */
  bool dead;     /* removed from the table */
};

struct goop_yamux {
  struct goop_yamux_config cfg;
  struct goop_yamux_callbacks cb;
  void *ud;
  bool is_client;
  struct ystream *closing; /* the stream whose on_stream_closed is running */
  int failed;
  bool goaway_sent;
  bool goaway_recv;
  uint32_t next_id;
  uint32_t n_inbound;
  uint32_t n_unacked;
  goop_tstamp rtt;
  goop_tstamp now;
  unsigned depth; /* > 0 while inside feed or a callback */

  /* streams: open addressing, linear probing, power-of-two capacity */
  struct ystream **slots;
  size_t cap;
  size_t count;
  struct ystream *graveyard;

  /*
   * Output. Control frames (ping answers, window updates, SYN, GoAway) wait
   * in |ctl|; Data frames and the FIN/RST that must follow them in order wait
   * in |dq|. goop_yamux_output() appends both to |out|, control first, so
   * control frames never wait behind data queued since the previous call.
   */
  goop_buf out;
  goop_buf ctl;
  goop_buf dq;

  /* frame parser */
  uint8_t hdr[GOOP_YAMUX_HEADER_LEN];
  size_t hdr_have;
  uint32_t pl_remain; /* payload bytes of the current Data frame still to come */
  uint32_t pl_id;
  bool pl_deliver; /* pass the payload to the application */
  bool pl_fin;     /* the current frame carries FIN: apply after the payload */
};

/* ---- stream table ---- */

static size_t home_slot(const goop_yamux *y, uint32_t id) {
  uint32_t h = id * 0x9E3779B1u;
  h ^= h >> 15;
  return h & (y->cap - 1);
}

static struct ystream *lookup(const goop_yamux *y, uint32_t id) {
  for (size_t i = home_slot(y, id);; i = (i + 1) & (y->cap - 1)) {
    struct ystream *st = y->slots[i];
    if (!st)
      return NULL;
    if (st->id == id)
      return st;
  }
}

static void place(goop_yamux *y, struct ystream *st) {
  size_t i = home_slot(y, st->id);
  while (y->slots[i])
    i = (i + 1) & (y->cap - 1);
  y->slots[i] = st;
}

static int table_insert(goop_yamux *y, struct ystream *st) {
  if ((y->count + 1) * 2 > y->cap) {
    size_t ocap = y->cap, ncap = y->cap * 2;
    struct ystream **ns = calloc(ncap, sizeof(*ns));
    if (!ns)
      return GOOP_ENOMEM;
    struct ystream **os = y->slots;
    y->slots = ns;
    y->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
      if (os[i])
        place(y, os[i]);
    free(os);
  }
  place(y, st);
  y->count++;
  return 0;
}

static void table_remove(goop_yamux *y, struct ystream *st) {
  size_t mask = y->cap - 1, i = home_slot(y, st->id);
  while (y->slots[i] != st)
    i = (i + 1) & mask;
  y->slots[i] = NULL;
  /* Backward-shift the rest of the cluster so lookups need no tombstones. */
  for (size_t j = (i + 1) & mask; y->slots[j]; j = (j + 1) & mask) {
    size_t k = home_slot(y, y->slots[j]->id);
    bool movable = (j > i) ? (k <= i || k > j) : (k <= i && k > j);
    if (movable) {
      y->slots[i] = y->slots[j];
      y->slots[j] = NULL;
      i = j;
    }
  }
  y->count--;
}

/* ---- output ---- */

static void put_hdr(uint8_t *p, uint8_t type, uint16_t flags, uint32_t id, uint32_t len) {
  p[0] = 0;
  p[1] = type;
  p[2] = (uint8_t)(flags >> 8);
  p[3] = (uint8_t)flags;
  p[4] = (uint8_t)(id >> 24);
  p[5] = (uint8_t)(id >> 16);
  p[6] = (uint8_t)(id >> 8);
  p[7] = (uint8_t)id;
  p[8] = (uint8_t)(len >> 24);
  p[9] = (uint8_t)(len >> 16);
  p[10] = (uint8_t)(len >> 8);
  p[11] = (uint8_t)len;
}

static int emit(goop_buf *q, uint8_t type, uint16_t flags, uint32_t id, uint32_t len, const uint8_t *payload,
                size_t plen) {
  int rc = goop_buf_reserve(q, GOOP_YAMUX_HEADER_LEN + plen);
  if (rc)
    return rc;
  put_hdr(q->data + q->len, type, flags, id, len);
  q->len += GOOP_YAMUX_HEADER_LEN;
  if (plen) {
    memcpy(q->data + q->len, payload, plen);
    q->len += plen;
  }
  return 0;
}

/* Move the queued frames into |out|: control frames first, then Data in order. */
static void refill(goop_yamux *y) {
  if (y->out.len == 0 && y->ctl.len == 0) {
    goop_buf t = y->out; /* the bulk case: hand over the data queue without copying */
    y->out = y->dq;
    y->dq = t;
    return;
  }
  if (y->ctl.len > 0 && goop_buf_append(&y->out, y->ctl.data, y->ctl.len) == 0)
    y->ctl.len = 0;
  if (y->ctl.len == 0 && y->dq.len > 0 && goop_buf_append(&y->out, y->dq.data, y->dq.len) == 0)
    y->dq.len = 0;
  /* on allocation failure the rest stays queued, in order, for the next call */
}

/* Control frame on a stream; adds ACK when this is our first frame on it. */
static int emit_stream_ctl(goop_yamux *y, struct ystream *st, uint16_t flags, uint32_t len) {
  if (st->need_ack)
    flags |= GOOP_YAMUX_FLAG_ACK;
  /* FIN and RST must not overtake the stream's queued data. */
  goop_buf *q = (flags & (GOOP_YAMUX_FLAG_FIN | GOOP_YAMUX_FLAG_RST)) ? &y->dq : &y->ctl;
  int rc = emit(q, GOOP_YAMUX_TYPE_WINDOW_UPDATE, flags, st->id, len, NULL, 0);
  if (rc == 0)
    st->need_ack = false;
  return rc;
}

/* ---- stream lifetime ---- */

static void free_stream(struct ystream *st) {
  free(st);
}

static void sweep(goop_yamux *y) {
  while (y->graveyard) {
    struct ystream *st = y->graveyard;
    y->graveyard = st->next_dead;
    free_stream(st);
  }
}

/* Remove |st| from the table, then tell the application. Memory is released
 * at once at top level, or when the outermost call returns. */
static void finish_stream(goop_yamux *y, struct ystream *st) {
  if (st->dead)
    return;
  st->dead = true;
  table_remove(y, st);
  if (st->inbound)
    y->n_inbound--;
  if (st->unacked) {
    st->unacked = false;
    y->n_unacked--;
  }
  y->depth++;
  /* The id is gone from the table, but the application still finds its data
   * for the stream being closed (goop_yamux_stream_get_data). */
  struct ystream *prev_closing = y->closing;
  y->closing = st;
  if (st->announced && y->cb.on_stream_closed)
    y->cb.on_stream_closed(y, st->id, y->ud);
  y->closing = prev_closing;
  y->depth--;
  if (y->depth == 0) {
    free_stream(st);
    sweep(y);
  } else {
    st->next_dead = y->graveyard;
    y->graveyard = st;
  }
}

static void maybe_finish(goop_yamux *y, struct ystream *st) {
  if (!st->dead && st->local_fin && st->remote_fin)
    finish_stream(y, st);
}

static struct ystream *new_stream(goop_yamux *y, uint32_t id, bool inbound) {
  struct ystream *st = calloc(1, sizeof(*st));
  if (!st)
    return NULL;
  st->id = id;
  st->inbound = inbound;
  st->send_window = GOOP_YAMUX_DEFAULT_WINDOW;
  st->recv_window = GOOP_YAMUX_DEFAULT_WINDOW;
  st->recv_target = y->cfg.initial_window;
  st->epoch = y->now;
  if (table_insert(y, st) < 0) {
    free(st);
    return NULL;
  }
  return st;
}

/* ---- public: setup ---- */

void goop_yamux_config_default(struct goop_yamux_config *cfg) {
  *cfg = (struct goop_yamux_config){
      .initial_window = GOOP_YAMUX_DEFAULT_WINDOW,
      .max_window = 16u * 1024 * 1024,
      .max_inbound_streams = 1000,
      .max_outbound_unacked = 256,
      .max_frame_payload = 65524,
  };
}

int goop_yamux_new(bool is_client, const struct goop_yamux_config *cfg, const struct goop_yamux_callbacks *cb,
                   void *ud, goop_yamux **ret) {
  goop_return_val_if_fail(ret != NULL, GOOP_EINVAL);
  struct goop_yamux_config c;
  if (cfg)
    c = *cfg;
  else
    goop_yamux_config_default(&c);
  if (c.initial_window < GOOP_YAMUX_DEFAULT_WINDOW || c.max_window < c.initial_window ||
      c.max_frame_payload == 0)
    return GOOP_EINVAL;
  if (cb && cb->version != GOOP_YAMUX_CALLBACKS_VERSION)
    return GOOP_EINVAL;

  goop_yamux *y = calloc(1, sizeof(*y));
  if (!y)
    return GOOP_ENOMEM;
  y->cap = 16;
  y->slots = calloc(y->cap, sizeof(*y->slots));
  if (!y->slots)
    goto fail_slots;
  y->cfg = c;
  if (cb)
    y->cb = *cb;
  y->ud = ud;
  y->is_client = is_client;
  y->next_id = is_client ? 1 : 2;
  goop_buf_init(&y->out, 0);
  goop_buf_init(&y->ctl, 0);
  goop_buf_init(&y->dq, 0);
  *ret = y;
  return 0;

fail_slots:
  free(y);
  return GOOP_ENOMEM;
}

void goop_yamux_free(goop_yamux *y) {
  if (!y)
    return;
  for (size_t i = 0; i < y->cap; i++)
    free_stream(y->slots[i]);
  free(y->slots);
  sweep(y);
  goop_buf_free(&y->out);
  goop_buf_free(&y->ctl);
  goop_buf_free(&y->dq);
  free(y);
}

goop_buf *goop_yamux_output(goop_yamux *y) {
  refill(y);
  return &y->out;
}

int goop_yamux_error(const goop_yamux *y) {
  return y->failed;
}

size_t goop_yamux_pending(const goop_yamux *y) {
  return y->out.len + y->ctl.len + y->dq.len;
}

size_t goop_yamux_num_streams(const goop_yamux *y) {
  return y->count;
}

void goop_yamux_set_rtt(goop_yamux *y, goop_tstamp rtt_us) {
  y->rtt = rtt_us;
}

int goop_yamux_stream_set_data(goop_yamux *y, uint32_t id, void *data) {
  struct ystream *st = lookup(y, id);
  if (!st)
    return GOOP_ECLOSED;
  st->app_data = data;
  return 0;
}

void *goop_yamux_stream_get_data(const goop_yamux *y, uint32_t id) {
  struct ystream *st = lookup(y, id);
  if (!st && y->closing && y->closing->id == id)
    st = y->closing; /* inside on_stream_closed */
  return st ? st->app_data : NULL;
}

size_t goop_yamux_send_window(const goop_yamux *y, uint32_t id) {
  struct ystream *st = lookup(y, id);
  if (!st || st->local_fin)
    return 0;
  return st->send_window;
}

/* ---- public: actions ---- */

int goop_yamux_open_stream(goop_yamux *y, uint32_t *ret_id) {
  goop_return_val_if_fail(ret_id != NULL, GOOP_EINVAL);
  if (y->failed)
    return y->failed;
  if (y->goaway_sent || y->goaway_recv)
    return GOOP_EGOAWAY;
  if (y->n_unacked >= y->cfg.max_outbound_unacked || y->next_id > UINT32_MAX - 2)
    return GOOP_ELIMIT;
  uint32_t id = y->next_id;
  struct ystream *st = new_stream(y, id, false);
  if (!st)
    return GOOP_ENOMEM;
  int rc = emit(&y->ctl, GOOP_YAMUX_TYPE_WINDOW_UPDATE, GOOP_YAMUX_FLAG_SYN, id,
                y->cfg.initial_window - GOOP_YAMUX_DEFAULT_WINDOW, NULL, 0);
  if (rc) {
    table_remove(y, st);
    free(st);
    return rc;
  }
  st->recv_window = y->cfg.initial_window;
  st->announced = true;
  st->unacked = true;
  y->n_unacked++;
  y->next_id += 2;
  *ret_id = id;
  return 0;
}

long goop_yamux_write(goop_yamux *y, uint32_t id, const uint8_t *data, size_t len) {
  if (y->failed)
    return y->failed;
  struct ystream *st = lookup(y, id);
  if (!st || st->local_fin)
    return GOOP_ECLOSED;
  goop_return_val_if_fail(data != NULL || len == 0, GOOP_EINVAL);
  size_t n = GOOP_MIN(len, (size_t)st->send_window);
  if (n > (size_t)LONG_MAX)
    n = (size_t)LONG_MAX;
  if (n == 0)
    return 0;
  size_t frames = (n + y->cfg.max_frame_payload - 1) / y->cfg.max_frame_payload;
  int rc = goop_buf_reserve(&y->dq, n + frames * GOOP_YAMUX_HEADER_LEN);
  if (rc)
    return rc;
  size_t off = 0;
  while (off < n) {
    uint32_t chunk = (uint32_t)GOOP_MIN(n - off, (size_t)y->cfg.max_frame_payload);
    uint16_t flags = st->need_ack ? GOOP_YAMUX_FLAG_ACK : 0;
    (void)emit(&y->dq, GOOP_YAMUX_TYPE_DATA, flags, id, chunk, data + off, chunk); /* space reserved above */
    st->need_ack = false;
    off += chunk;
  }
  st->send_window -= (uint32_t)n;
  return (long)n;
}

/* Grant more receive window if at least half the target can be granted. */
static int update_window(goop_yamux *y, struct ystream *st, goop_tstamp now) {
  if (st->remote_fin)
    return 0;
  uint64_t outstanding = (uint64_t)st->recv_window + st->unconsumed;
  if (outstanding >= st->recv_target)
    return 0;
  uint64_t delta = st->recv_target - outstanding;
  if (delta < st->recv_target / 2)
    return 0;
  if (y->rtt > 0 && now >= st->epoch && now - st->epoch < 4 * y->rtt && st->recv_target < y->cfg.max_window) {
    uint64_t t = (uint64_t)st->recv_target * 2;
    st->recv_target = (uint32_t)GOOP_MIN(t, (uint64_t)y->cfg.max_window);
    delta = st->recv_target - outstanding;
  }
  int rc = emit_stream_ctl(y, st, 0, (uint32_t)delta);
  if (rc)
    return rc;
  st->recv_window += (uint32_t)delta;
  st->epoch = now;
  return 0;
}

int goop_yamux_consume(goop_yamux *y, uint32_t id, size_t n, goop_tstamp now) {
  if (y->failed)
    return y->failed;
  struct ystream *st = lookup(y, id);
  if (!st)
    return 0;
  if (n > st->unconsumed)
    return GOOP_EINVAL;
  st->unconsumed -= (uint32_t)n;
  return update_window(y, st, now);
}

int goop_yamux_close_write(goop_yamux *y, uint32_t id) {
  if (y->failed)
    return y->failed;
  struct ystream *st = lookup(y, id);
  if (!st || st->local_fin)
    return GOOP_ECLOSED;
  int rc = emit_stream_ctl(y, st, GOOP_YAMUX_FLAG_FIN, 0);
  if (rc)
    return rc;
  st->local_fin = true;
  maybe_finish(y, st);
  return 0;
}

int goop_yamux_reset(goop_yamux *y, uint32_t id, uint32_t code) {
  if (y->failed)
    return y->failed;
  struct ystream *st = lookup(y, id);
  if (!st)
    return GOOP_ECLOSED;
  if (st->rst_recv)
    return 0; /* never answer RST with RST; freed after on_stream_reset */
  int rc = emit_stream_ctl(y, st, GOOP_YAMUX_FLAG_RST, code);
  if (rc)
    return rc;
  finish_stream(y, st);
  return 0;
}

int goop_yamux_ping(goop_yamux *y, uint32_t opaque) {
  if (y->failed)
    return y->failed;
  return emit(&y->ctl, GOOP_YAMUX_TYPE_PING, GOOP_YAMUX_FLAG_SYN, 0, opaque, NULL, 0);
}

int goop_yamux_goaway(goop_yamux *y, uint32_t code) {
  if (y->failed)
    return y->failed;
  if (y->goaway_sent)
    return GOOP_EALREADY;
  int rc = emit(&y->ctl, GOOP_YAMUX_TYPE_GOAWAY, 0, 0, code, NULL, 0);
  if (rc == 0)
    y->goaway_sent = true;
  return rc;
}

/* ---- input ---- */

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Fatal session error: queue GoAway(protocol error) once and refuse further use. */
static int fail(goop_yamux *y, int err) {
  if (!y->failed) {
    if (!y->goaway_sent &&
        emit(&y->ctl, GOOP_YAMUX_TYPE_GOAWAY, 0, 0,
             err == GOOP_EPROTO ? GOOP_YAMUX_GOAWAY_PROTO_ERROR : GOOP_YAMUX_GOAWAY_INTERNAL_ERROR, NULL,
             0) == 0)
      y->goaway_sent = true;
    y->failed = err;
  }
  return err;
}

static void remote_reset(goop_yamux *y, struct ystream *st, uint32_t code) {
  /* Nothing more is delivered or sent: write/close_write fail, reset is a no-op. */
  st->remote_fin = st->local_fin = st->rst_recv = true;
  y->depth++;
  if (st->announced && y->cb.on_stream_reset)
    y->cb.on_stream_reset(y, st->id, code, y->ud);
  y->depth--;
  finish_stream(y, st);
}

static void remote_fin(goop_yamux *y, struct ystream *st) {
  if (st->remote_fin)
    return;
  st->remote_fin = true;
  y->depth++;
  if (y->cb.on_stream_fin)
    y->cb.on_stream_fin(y, st->id, y->ud);
  y->depth--;
  maybe_finish(y, st);
}

/* Inbound SYN. Returns the accepted stream, NULL if refused (or error in *err). */
static struct ystream *accept_stream(goop_yamux *y, uint32_t id, int *err) {
  uint8_t rst[GOOP_YAMUX_HEADER_LEN];
  if (y->goaway_sent || y->goaway_recv || y->n_inbound >= y->cfg.max_inbound_streams) {
    put_hdr(rst, GOOP_YAMUX_TYPE_WINDOW_UPDATE, GOOP_YAMUX_FLAG_RST, id, 0);
    *err = goop_buf_append(&y->ctl, rst, sizeof(rst));
    return NULL;
  }
  struct ystream *st = new_stream(y, id, true);
  if (!st) {
    *err = GOOP_ENOMEM;
    return NULL;
  }
  y->n_inbound++;
  st->need_ack = true;
  int r = 0;
  y->depth++;
  if (y->cb.on_stream_open)
    r = y->cb.on_stream_open(y, id, y->ud);
  y->depth--;
  if (st->dead)
    return NULL; /* the application reset or closed it meanwhile */
  if (r < 0) {
    st->need_ack = false;
    *err = emit_stream_ctl(y, st, GOOP_YAMUX_FLAG_RST, 0);
    finish_stream(y, st);
    return NULL;
  }
  st->announced = true;
  uint32_t extra = y->cfg.initial_window - GOOP_YAMUX_DEFAULT_WINDOW;
  if (st->need_ack || extra) {
    *err = emit_stream_ctl(y, st, 0, extra);
    if (*err)
      return NULL;
    st->recv_window += extra;
  }
  return st;
}

/* Handle a complete 12-byte header. Returns 0 or a fatal error. */
static int on_header(goop_yamux *y) {
  const uint8_t *h = y->hdr;
  if (h[0] != 0)
    return GOOP_EPROTO;
  uint8_t type = h[1];
  uint16_t flags = (uint16_t)(h[2] << 8 | h[3]);
  uint32_t id = rd32(h + 4), len = rd32(h + 8);
  int err = 0;

  switch (type) {
  case GOOP_YAMUX_TYPE_PING:
    if (flags & GOOP_YAMUX_FLAG_SYN) {
      err = emit(&y->ctl, GOOP_YAMUX_TYPE_PING, GOOP_YAMUX_FLAG_ACK, 0, len, NULL, 0);
      if (err)
        return err;
    }
    if ((flags & (GOOP_YAMUX_FLAG_SYN | GOOP_YAMUX_FLAG_ACK)) && y->cb.on_ping) {
      y->depth++;
      y->cb.on_ping(y, len, !(flags & GOOP_YAMUX_FLAG_SYN), y->ud);
      y->depth--;
    }
    return 0;
  case GOOP_YAMUX_TYPE_GOAWAY:
    y->goaway_recv = true;
    if (y->cb.on_goaway) {
      y->depth++;
      y->cb.on_goaway(y, len, y->ud);
      y->depth--;
    }
    return 0;
  case GOOP_YAMUX_TYPE_DATA:
  case GOOP_YAMUX_TYPE_WINDOW_UPDATE:
    break;
  default:
    return GOOP_EPROTO;
  }

  bool is_data = type == GOOP_YAMUX_TYPE_DATA;
  if (id == 0)
    return GOOP_EPROTO;
  if (is_data) {
    y->pl_remain = len;
    y->pl_id = id;
    y->pl_deliver = false;
    y->pl_fin = false;
  }

  struct ystream *st = lookup(y, id);
  if (flags & GOOP_YAMUX_FLAG_SYN) {
    bool remote_parity_odd = !y->is_client;
    if (((id & 1) != 0) != remote_parity_odd || st)
      return GOOP_EPROTO;
    st = accept_stream(y, id, &err);
    if (err)
      return err;
  }
  if (!st)
    return 0; /* unknown, closed or refused: ignore, discard any payload */

  if ((flags & GOOP_YAMUX_FLAG_ACK) && st->unacked) {
    st->unacked = false;
    y->n_unacked--;
  }
  if (flags & GOOP_YAMUX_FLAG_RST) {
    remote_reset(y, st, is_data ? 0 : len);
    return 0;
  }

  if (is_data) {
    if (len > st->recv_window)
      return GOOP_EPROTO;
    st->recv_window -= len;
    if (!st->remote_fin) {
      y->pl_deliver = true;
      y->pl_fin = (flags & GOOP_YAMUX_FLAG_FIN) != 0;
    }
    if (len == 0 && y->pl_fin) {
      y->pl_fin = false;
      remote_fin(y, st);
    }
    return 0;
  }

  /* WindowUpdate */
  uint64_t w = (uint64_t)st->send_window + len;
  if (w > UINT32_MAX)
    return GOOP_EPROTO;
  bool was_zero = st->send_window == 0;
  st->send_window = (uint32_t)w;
  if (was_zero && len > 0 && !st->local_fin && y->cb.on_stream_writable) {
    y->depth++;
    y->cb.on_stream_writable(y, id, y->ud);
    y->depth--;
  }
  if ((flags & GOOP_YAMUX_FLAG_FIN) && !st->dead)
    remote_fin(y, st);
  return 0;
}

/* Deliver |n| payload bytes of the current Data frame. */
static void on_payload(goop_yamux *y, const uint8_t *p, size_t n) {
  y->pl_remain -= (uint32_t)n;
  if (!y->pl_deliver)
    return;
  struct ystream *st = lookup(y, y->pl_id);
  if (!st || st->remote_fin) {
    y->pl_deliver = false;
    return;
  }
  st->unconsumed += (uint32_t)n;
  if (y->cb.on_stream_data) {
    y->depth++;
    int r = y->cb.on_stream_data(y, st->id, p, n, y->ud);
    y->depth--;
    if (r < 0 && !st->dead) {
      (void)emit_stream_ctl(y, st, GOOP_YAMUX_FLAG_RST, 0);
      finish_stream(y, st);
    }
  }
  if (st->dead)
    y->pl_deliver = false;
  else if (y->pl_remain == 0 && y->pl_fin)
    remote_fin(y, st);
}

int goop_yamux_feed(goop_yamux *y, const uint8_t *data, size_t len, goop_tstamp now) {
  if (y->failed)
    return y->failed;
  if (y->depth > 0)
    return GOOP_ESTATE;
  goop_return_val_if_fail(data != NULL || len == 0, GOOP_EINVAL);
  y->now = now;
  y->depth++;
  int err = 0;
  size_t off = 0;
  while (off < len && !err) {
    if (y->pl_remain > 0) {
      size_t n = GOOP_MIN(len - off, (size_t)y->pl_remain);
      on_payload(y, data + off, n);
      off += n;
      continue;
    }
    size_t n = GOOP_MIN(len - off, GOOP_YAMUX_HEADER_LEN - y->hdr_have);
    memcpy(y->hdr + y->hdr_have, data + off, n);
    y->hdr_have += n;
    off += n;
    if (y->hdr_have == GOOP_YAMUX_HEADER_LEN) {
      y->hdr_have = 0;
      err = on_header(y);
    }
  }
  y->depth--;
  sweep(y);
  if (err)
    return fail(y, err);
  return 0;
}
