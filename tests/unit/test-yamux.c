/* Unit tests for the sans-I/O yamux core: two in-memory sessions pumping each other. */
#include "tap.h"

#include "yamux.h"

#define MAXID 4096

struct peer {
  goop_yamux *y;
  int open_ret;       /* what on_stream_open returns */
  bool auto_consume;  /* consume data as soon as it arrives */
  bool reset_on_data; /* reset the stream from inside on_stream_data */
  bool close_on_fin;  /* close_write from inside on_stream_fin */
  bool echo;          /* write received data back from inside on_stream_data */
  size_t n_opened, n_closed, n_fin, n_reset, n_writable;
  uint32_t last_opened;
  size_t rx[MAXID];
  bool fin[MAXID], closed[MAXID], reset[MAXID], writable[MAXID];
  uint32_t reset_code[MAXID];
  goop_buf rxbuf; /* every data byte received, in order */
  size_t n_ping, n_pong;
  uint32_t last_opaque;
  bool got_goaway;
  uint32_t goaway_code;
  goop_tstamp now;
};

static int cb_open(goop_yamux *y, uint32_t id, void *ud) {
  (void)y;
  struct peer *p = ud;
  p->n_opened++;
  p->last_opened = id;
  return p->open_ret;
}

static int cb_data(goop_yamux *y, uint32_t id, const uint8_t *data, size_t len, void *ud) {
  struct peer *p = ud;
  if (id < MAXID)
    p->rx[id] += len;
  (void)goop_buf_append(&p->rxbuf, data, len);
  if (p->echo)
    (void)goop_yamux_write(y, id, data, len);
  if (p->auto_consume)
    (void)goop_yamux_consume(y, id, len, p->now);
  if (p->reset_on_data)
    (void)goop_yamux_reset(y, id, 7);
  return 0;
}

static void cb_fin(goop_yamux *y, uint32_t id, void *ud) {
  struct peer *p = ud;
  p->n_fin++;
  if (id < MAXID)
    p->fin[id] = true;
  if (p->close_on_fin)
    (void)goop_yamux_close_write(y, id);
}

static void cb_reset(goop_yamux *y, uint32_t id, uint32_t code, void *ud) {
  (void)y;
  struct peer *p = ud;
  p->n_reset++;
  if (id < MAXID) {
    p->reset[id] = true;
    p->reset_code[id] = code;
  }
}

static void cb_writable(goop_yamux *y, uint32_t id, void *ud) {
  (void)y;
  struct peer *p = ud;
  p->n_writable++;
  if (id < MAXID)
    p->writable[id] = true;
}

static void cb_closed(goop_yamux *y, uint32_t id, void *ud) {
  (void)y;
  struct peer *p = ud;
  p->n_closed++;
  if (id < MAXID)
    p->closed[id] = true;
}

static void cb_ping(goop_yamux *y, uint32_t opaque, bool is_ack, void *ud) {
  (void)y;
  struct peer *p = ud;
  if (is_ack)
    p->n_pong++;
  else
    p->n_ping++;
  p->last_opaque = opaque;
}

static void cb_goaway(goop_yamux *y, uint32_t code, void *ud) {
  (void)y;
  struct peer *p = ud;
  p->got_goaway = true;
  p->goaway_code = code;
}

static const struct goop_yamux_callbacks cbs = {
    .version = GOOP_YAMUX_CALLBACKS_VERSION,
    .on_stream_open = cb_open,
    .on_stream_data = cb_data,
    .on_stream_fin = cb_fin,
    .on_stream_reset = cb_reset,
    .on_stream_writable = cb_writable,
    .on_stream_closed = cb_closed,
    .on_ping = cb_ping,
    .on_goaway = cb_goaway,
};

static struct peer *peer_new(bool client, const struct goop_yamux_config *cfg) {
  struct peer *p = calloc(1, sizeof(*p));
  p->auto_consume = true;
  goop_buf_init(&p->rxbuf, 0);
  int rc = goop_yamux_new(client, cfg, &cbs, p, &p->y);
  if (rc)
    abort();
  return p;
}

static void peer_free(struct peer *p) {
  goop_yamux_free(p->y);
  goop_buf_free(&p->rxbuf);
  free(p);
}

/* Move a's output into b (in chunks of |chunk| bytes, 0 = all at once). */
static int transfer(struct peer *a, struct peer *b, size_t chunk) {
  goop_buf *o;
  while ((o = goop_yamux_output(a->y))->len > 0) {
    size_t n = chunk && chunk < o->len ? chunk : o->len;
    uint8_t *tmp = malloc(n);
    memcpy(tmp, o->data, n);
    goop_buf_consume(o, n);
    int rc = goop_yamux_feed(b->y, tmp, n, b->now);
    free(tmp);
    if (rc)
      return rc;
  }
  return 0;
}

static int pump(struct peer *a, struct peer *b) {
  for (int i = 0; i < 1000; i++) {
    if (goop_yamux_pending(a->y) == 0 && goop_yamux_pending(b->y) == 0)
      return 0;
    int rc = transfer(a, b, 0);
    if (rc)
      return rc;
    rc = transfer(b, a, 0);
    if (rc)
      return rc;
  }
  return -1;
}

static bool out_is(struct peer *p, const char *hex) {
  size_t n;
  uint8_t *want = tap_unhex(hex, &n);
  goop_buf *o = goop_yamux_output(p->y);
  bool ok = o->len == n && memcmp(o->data, want, n) == 0;
  if (!ok) {
    printf("#   output:");
    for (size_t i = 0; i < o->len && i < 64; i++)
      printf(" %02x", o->data[i]);
    printf("\n");
  }
  free(want);
  return ok;
}

static void test_exact_bytes(void) {
  struct peer *c = peer_new(true, NULL), *s = peer_new(false, NULL);
  uint32_t id = 0;
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(id, 1);
  CHECK(out_is(c, "00 01 0001 00000001 00000000"));
  CHECK_INT_EQ(transfer(c, s, 0), 0);
  CHECK_INT_EQ(s->n_opened, 1);
  /* server acknowledges with WindowUpdate|ACK, delta 0 */
  CHECK(out_is(s, "00 01 0002 00000001 00000000"));
  CHECK_INT_EQ(transfer(s, c, 0), 0);
  CHECK_INT_EQ(goop_yamux_write(c->y, 1, (const uint8_t *)"hi", 2), 2);
  CHECK(out_is(c, "00 00 0000 00000001 00000002 6869"));
  goop_buf_reset(goop_yamux_output(c->y));
  CHECK_INT_EQ(goop_yamux_close_write(c->y, 1), 0);
  CHECK(out_is(c, "00 01 0004 00000001 00000000"));
  goop_buf_reset(goop_yamux_output(c->y));
  CHECK_INT_EQ(goop_yamux_ping(c->y, 0xdeadbeef), 0);
  CHECK(out_is(c, "00 02 0001 00000000 deadbeef"));
  goop_buf_reset(goop_yamux_output(c->y));
  CHECK_INT_EQ(goop_yamux_reset(c->y, 1, 0x1001), 0);
  CHECK(out_is(c, "00 01 0008 00000001 00001001"));
  goop_buf_reset(goop_yamux_output(c->y));
  CHECK_INT_EQ(goop_yamux_goaway(c->y, 0), 0);
  CHECK(out_is(c, "00 03 0000 00000000 00000000"));
  CHECK_INT_EQ(goop_yamux_goaway(c->y, 0), GOOP_EALREADY);
  /* server side opens even ids */
  CHECK_INT_EQ(goop_yamux_open_stream(s->y, &id), 0);
  CHECK_INT_EQ(id, 2);
  peer_free(c);
  peer_free(s);
}

static void test_larger_initial_window(void) {
  struct goop_yamux_config cfg;
  goop_yamux_config_default(&cfg);
  cfg.initial_window = 1024 * 1024;
  struct peer *c = peer_new(true, &cfg), *s = peer_new(false, &cfg);
  uint32_t id;
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK(out_is(c, "00 01 0001 00000001 000c0000"));
  CHECK_INT_EQ(transfer(c, s, 0), 0);
  CHECK(out_is(s, "00 01 0002 00000001 000c0000"));
  CHECK_INT_EQ(goop_yamux_send_window(s->y, 1), 1024 * 1024);
  CHECK_INT_EQ(transfer(s, c, 0), 0);
  CHECK_INT_EQ(goop_yamux_send_window(c->y, 1), 1024 * 1024);
  cfg.max_window = 1000; /* < initial */
  goop_yamux *bad = NULL;
  CHECK_INT_EQ(goop_yamux_new(true, &cfg, &cbs, NULL, &bad), GOOP_EINVAL);
  CHECK(bad == NULL);
  peer_free(c);
  peer_free(s);
}

static void test_open_data_fin(void) {
  struct peer *c = peer_new(true, NULL), *s = peer_new(false, NULL);
  uint32_t id;
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  /* data may follow the SYN before the ACK */
  CHECK_INT_EQ(goop_yamux_write(c->y, id, (const uint8_t *)"hello", 5), 5);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(s->n_opened, 1);
  CHECK_INT_EQ(s->rx[1], 5);
  CHECK_MEM_EQ(s->rxbuf.data, "hello", 5);
  CHECK_INT_EQ(goop_yamux_write(s->y, id, (const uint8_t *)"world!", 6), 6);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(c->rx[1], 6);
  CHECK_MEM_EQ(c->rxbuf.data, "world!", 6);

  /* half-close from the client: server sees FIN, data still flows back */
  CHECK_INT_EQ(goop_yamux_close_write(c->y, id), 0);
  CHECK_INT_EQ(goop_yamux_close_write(c->y, id), GOOP_ECLOSED);
  CHECK_INT_EQ(goop_yamux_write(c->y, id, (const uint8_t *)"x", 1), GOOP_ECLOSED);
  CHECK_INT_EQ(goop_yamux_send_window(c->y, id), 0);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK(s->fin[1]);
  CHECK(!s->closed[1]);
  CHECK_INT_EQ(goop_yamux_write(s->y, id, (const uint8_t *)"more", 4), 4);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(c->rx[1], 10);
  CHECK_INT_EQ(goop_yamux_num_streams(c->y), 1);
  CHECK_INT_EQ(goop_yamux_close_write(s->y, id), 0);
  CHECK(s->closed[1]);
  CHECK_INT_EQ(goop_yamux_num_streams(s->y), 0);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK(c->fin[1]);
  CHECK(c->closed[1]);
  CHECK_INT_EQ(goop_yamux_num_streams(c->y), 0);
  CHECK_INT_EQ(c->n_reset + s->n_reset, 0);
  /* the stream is gone: further use is refused, consume is a no-op */
  CHECK_INT_EQ(goop_yamux_write(c->y, id, (const uint8_t *)"x", 1), GOOP_ECLOSED);
  CHECK_INT_EQ(goop_yamux_consume(c->y, id, 1, 0), 0);
  CHECK_INT_EQ(goop_yamux_output(c->y)->len, 0);
  peer_free(c);
  peer_free(s);
}

static void test_reset(void) {
  struct peer *c = peer_new(true, NULL), *s = peer_new(false, NULL);
  uint32_t id;
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(goop_yamux_reset(s->y, id, 0x1001), 0);
  CHECK(s->closed[1]);
  CHECK(!s->reset[1]); /* local reset: only on_stream_closed */
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK(c->reset[1]);
  CHECK_INT_EQ(c->reset_code[1], 0x1001);
  CHECK(c->closed[1]);
  CHECK_INT_EQ(goop_yamux_num_streams(c->y) + goop_yamux_num_streams(s->y), 0);
  CHECK_INT_EQ(goop_yamux_reset(c->y, id, 0), GOOP_ECLOSED);

  /* data arriving for the reset stream is dropped without any answer */
  struct peer *c2 = peer_new(true, NULL), *s2 = peer_new(false, NULL);
  s2->auto_consume = false;
  CHECK_INT_EQ(goop_yamux_open_stream(c2->y, &id), 0);
  CHECK_INT_EQ(goop_yamux_write(c2->y, id, (const uint8_t *)"abc", 3), 3);
  CHECK_INT_EQ(pump(c2, s2), 0);
  CHECK_INT_EQ(goop_yamux_write(c2->y, id, (const uint8_t *)"def", 3), 3);
  CHECK_INT_EQ(goop_yamux_reset(s2->y, id, 5), 0);
  CHECK_INT_EQ(goop_buf_reserve(goop_yamux_output(s2->y), 0), 0);
  goop_buf_reset(goop_yamux_output(s2->y)); /* drop the RST: c2 keeps sending */
  CHECK_INT_EQ(transfer(c2, s2, 0), 0);
  CHECK_INT_EQ(s2->rx[1], 3);
  /* consuming after the reset sends no WindowUpdate */
  CHECK_INT_EQ(goop_yamux_consume(s2->y, id, 3, 0), 0);
  CHECK_INT_EQ(goop_yamux_output(s2->y)->len, 0);
  peer_free(c2);
  peer_free(s2);
  peer_free(c);
  peer_free(s);
}

/* Drain |p|'s output into |dst|, checking every frame is whole with Data payloads <= max. */
static bool frames_ok(struct peer *p, uint32_t max, struct peer *dst) {
  goop_buf all, *o = &all;
  goop_buf_init(&all, 0);
  goop_buf *src;
  while ((src = goop_yamux_output(p->y))->len > 0) {
    (void)goop_buf_append(&all, src->data, src->len);
    goop_buf_consume(src, src->len);
  }
  bool ok = goop_yamux_feed(dst->y, all.data, all.len, 0) == 0;
  size_t off = 0;
  while (off + 12 <= o->len) {
    const uint8_t *h = o->data + off;
    uint32_t len = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
    off += 12;
    if (h[1] == 0) {
      if (len > max)
        return false;
      off += len;
    }
  }
  ok = ok && off == o->len;
  goop_buf_free(&all);
  return ok;
}

static void test_window(void) {
  struct peer *c = peer_new(true, NULL), *s = peer_new(false, NULL);
  s->auto_consume = false;
  uint32_t id;
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(pump(c, s), 0);
  size_t big = 300000;
  uint8_t *buf = malloc(big);
  for (size_t i = 0; i < big; i++)
    buf[i] = (uint8_t)(i * 7);
  CHECK_INT_EQ(goop_yamux_send_window(c->y, id), 262144);
  CHECK_INT_EQ(goop_yamux_write(c->y, id, buf, big), 262144);
  CHECK(frames_ok(c, 65524, s));
  CHECK_INT_EQ(goop_yamux_send_window(c->y, id), 0);
  CHECK_INT_EQ(goop_yamux_write(c->y, id, buf, big), 0);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(s->rx[1], 262144);
  CHECK_MEM_EQ(s->rxbuf.data, buf, 262144);
  /* consuming less than half the window sends nothing */
  CHECK_INT_EQ(goop_yamux_consume(s->y, id, 100000, 0), 0);
  CHECK_INT_EQ(goop_yamux_output(s->y)->len, 0);
  CHECK_INT_EQ(goop_yamux_consume(s->y, id, 300000, 0), GOOP_EINVAL);
  CHECK_INT_EQ(goop_yamux_consume(s->y, id, 162144, 0), 0);
  CHECK(out_is(s, "00 01 0000 00000001 00040000"));
  CHECK_INT_EQ(c->n_writable, 0);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(c->n_writable, 1);
  CHECK(c->writable[1]);
  CHECK_INT_EQ(goop_yamux_send_window(c->y, id), 262144);
  CHECK_INT_EQ(goop_yamux_write(c->y, id, buf + 262144, big - 262144), big - 262144);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_MEM_EQ(s->rxbuf.data, buf, big);

  /* small frame payload limit */
  struct goop_yamux_config cfg;
  goop_yamux_config_default(&cfg);
  cfg.max_frame_payload = 1000;
  struct peer *c2 = peer_new(true, &cfg), *s2 = peer_new(false, NULL);
  CHECK_INT_EQ(goop_yamux_open_stream(c2->y, &id), 0);
  CHECK_INT_EQ(goop_yamux_write(c2->y, id, buf, 5500), 5500);
  CHECK(goop_yamux_pending(c2->y) == 12 + 5500 + 6 * 12);
  CHECK(frames_ok(c2, 1000, s2));
  CHECK_INT_EQ(pump(c2, s2), 0);
  CHECK_MEM_EQ(s2->rxbuf.data, buf, 5500);
  peer_free(c2);
  peer_free(s2);
  free(buf);
  peer_free(c);
  peer_free(s);
}

static void test_control_priority(void) {
  struct goop_yamux_config cfg;
  goop_yamux_config_default(&cfg);
  cfg.initial_window = 4u * 1024 * 1024;
  struct peer *c = peer_new(true, &cfg), *s = peer_new(false, &cfg);
  uint32_t id;
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(pump(c, s), 0);
  size_t sz = 1024 * 1024;
  uint8_t *buf = malloc(sz);
  for (size_t i = 0; i < sz; i++)
    buf[i] = (uint8_t)(i % 251);
  CHECK_INT_EQ(goop_yamux_write(c->y, id, buf, sz), sz);
  CHECK_INT_EQ(goop_yamux_close_write(c->y, id), 0);
  CHECK(goop_yamux_pending(c->y) > sz);
  /* a ping arrives while the data is still queued: its answer goes first */
  CHECK_INT_EQ(goop_yamux_ping(s->y, 0x0badf00d), 0);
  CHECK_INT_EQ(transfer(s, c, 0), 0);
  goop_buf *o = goop_yamux_output(c->y);
  CHECK(o->len > sz);
  CHECK(o->len >= 12 && memcmp(o->data, "\0\2\0\2\0\0\0\0\x0b\xad\xf0\x0d", 12) == 0);
  /* FIN last */
  CHECK(memcmp(o->data + o->len - 12, "\0\1\0\4\0\0\0\1\0\0\0\0", 12) == 0);
  /* bulk data alone is handed over as is */
  CHECK_INT_EQ(goop_yamux_feed(s->y, o->data, o->len, 0), 0);
  goop_buf_reset(o);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(s->n_pong, 1);
  CHECK_INT_EQ(s->rx[1], sz);
  CHECK(s->rxbuf.len == sz && memcmp(s->rxbuf.data, buf, sz) == 0);
  CHECK(s->fin[1]); /* the FIN did not overtake the data */
  free(buf);
  peer_free(c);
  peer_free(s);
}

static void test_autotune(void) {
  struct peer *c = peer_new(true, NULL), *s = peer_new(false, NULL);
  s->auto_consume = false;
  uint32_t id;
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(pump(c, s), 0);
  goop_yamux_set_rtt(s->y, 10000); /* 10 ms */
  size_t sz = 16u * 1024 * 1024;
  uint8_t *buf = calloc(1, sz);
  goop_tstamp now = 1000;
  size_t win = 262144;
  for (int round = 0; round < 10; round++) {
    size_t w = goop_yamux_send_window(c->y, id);
    CHECK_INT_EQ(w, win);
    CHECK_INT_EQ(goop_yamux_write(c->y, id, buf, w), w);
    CHECK_INT_EQ(pump(c, s), 0);
    now += 1000; /* well under 4 * rtt since the last update */
    CHECK_INT_EQ(goop_yamux_consume(s->y, id, w, now), 0);
    CHECK_INT_EQ(pump(c, s), 0);
    win = GOOP_MIN(win * 2, sz);
  }
  CHECK_INT_EQ(goop_yamux_send_window(c->y, id), 16u * 1024 * 1024);
  /* slow consumer (> 4 rtt between updates): no growth */
  struct peer *c2 = peer_new(true, NULL), *s2 = peer_new(false, NULL);
  s2->auto_consume = false;
  CHECK_INT_EQ(goop_yamux_open_stream(c2->y, &id), 0);
  CHECK_INT_EQ(pump(c2, s2), 0);
  goop_yamux_set_rtt(s2->y, 10000);
  now = 1000000;
  for (int round = 0; round < 3; round++) {
    CHECK_INT_EQ(goop_yamux_write(c2->y, id, buf, 262144), 262144);
    CHECK_INT_EQ(pump(c2, s2), 0);
    now += 100000;
    CHECK_INT_EQ(goop_yamux_consume(s2->y, id, 262144, now), 0);
    CHECK_INT_EQ(pump(c2, s2), 0);
    CHECK_INT_EQ(goop_yamux_send_window(c2->y, id), 262144);
  }
  peer_free(c2);
  peer_free(s2);
  free(buf);
  peer_free(c);
  peer_free(s);
}

static void test_many_streams(void) {
  struct peer *c = peer_new(true, NULL), *s = peer_new(false, NULL);
  s->echo = true;
  uint32_t ids[1000];
  for (int i = 0; i < 1000; i++) {
    if (i % 200 == 0)
      CHECK_INT_EQ(pump(c, s), 0);
    int rc = goop_yamux_open_stream(c->y, &ids[i]);
    if (rc)
      CHECK_INT_EQ(rc, 0);
    uint8_t msg[4] = {(uint8_t)(i >> 8), (uint8_t)i, 0xaa, 0x55};
    if (goop_yamux_write(c->y, ids[i], msg, sizeof(msg)) != 4)
      CHECK(0);
  }
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(s->n_opened, 1000);
  CHECK_INT_EQ(goop_yamux_num_streams(c->y), 1000);
  CHECK_INT_EQ(goop_yamux_num_streams(s->y), 1000);
  size_t bad = 0;
  for (int i = 0; i < 1000; i++)
    if (c->rx[ids[i]] != 4 || s->rx[ids[i]] != 4)
      bad++;
  CHECK_INT_EQ(bad, 0);
  CHECK_INT_EQ(ids[999], 1999);
  /* close half of them from the client, reset the other half from the server */
  s->close_on_fin = true;
  for (int i = 0; i < 1000; i++) {
    if (i % 2 == 0)
      (void)goop_yamux_close_write(c->y, ids[i]);
    else
      (void)goop_yamux_reset(s->y, ids[i], 1);
  }
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(c->n_closed, 1000);
  CHECK_INT_EQ(s->n_closed, 1000);
  CHECK_INT_EQ(c->n_reset, 500);
  CHECK_INT_EQ(goop_yamux_num_streams(c->y), 0);
  CHECK_INT_EQ(goop_yamux_num_streams(s->y), 0);
  peer_free(c);
  peer_free(s);
}

static void test_limits(void) {
  struct goop_yamux_config scfg, ccfg;
  goop_yamux_config_default(&scfg);
  scfg.max_inbound_streams = 3;
  goop_yamux_config_default(&ccfg);
  ccfg.max_outbound_unacked = 2;
  struct peer *c = peer_new(true, &ccfg), *s = peer_new(false, &scfg);
  uint32_t id;
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), GOOP_ELIMIT);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0); /* 5: the third inbound stream */
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), GOOP_ELIMIT);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(s->n_opened, 3);
  CHECK_INT_EQ(goop_yamux_num_streams(s->y), 3);
  /* ids 7 and 9 were refused with RST */
  CHECK(c->reset[7]);
  CHECK(c->reset[9]);
  CHECK(!c->reset[5]);
  CHECK_INT_EQ(goop_yamux_num_streams(c->y), 3);
  /* the refused ones no longer count as un-ACKed */
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), GOOP_ELIMIT);
  peer_free(c);
  peer_free(s);

  /* refusal by the application */
  c = peer_new(true, NULL);
  s = peer_new(false, NULL);
  s->open_ret = -1;
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(goop_yamux_write(c->y, id, (const uint8_t *)"zz", 2), 2);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(s->n_opened, 1);
  CHECK_INT_EQ(s->n_closed, 0);
  CHECK_INT_EQ(s->rx[1], 0);
  CHECK(c->reset[1]);
  CHECK(c->closed[1]);
  CHECK_INT_EQ(goop_yamux_num_streams(s->y), 0);
  peer_free(c);
  peer_free(s);
}

static void test_ping_goaway(void) {
  struct peer *c = peer_new(true, NULL), *s = peer_new(false, NULL);
  CHECK_INT_EQ(goop_yamux_ping(c->y, 0x12345678), 0);
  CHECK_INT_EQ(transfer(c, s, 0), 0);
  CHECK_INT_EQ(s->n_ping, 1);
  CHECK_INT_EQ(s->last_opaque, 0x12345678);
  CHECK(out_is(s, "00 02 0002 00000000 12345678"));
  CHECK_INT_EQ(transfer(s, c, 0), 0);
  CHECK_INT_EQ(c->n_pong, 1);
  CHECK_INT_EQ(c->last_opaque, 0x12345678);

  uint32_t id;
  CHECK_INT_EQ(goop_yamux_open_stream(s->y, &id), 0);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(goop_yamux_goaway(c->y, 0x1006), 0);
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), GOOP_EGOAWAY);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK(s->got_goaway);
  CHECK_INT_EQ(s->goaway_code, 0x1006);
  CHECK_INT_EQ(goop_yamux_open_stream(s->y, &id), GOOP_EGOAWAY);
  /* existing streams keep working */
  CHECK_INT_EQ(goop_yamux_write(s->y, 2, (const uint8_t *)"ok", 2), 2);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(c->rx[2], 2);
  peer_free(c);
  peer_free(s);
}

/* Feed |hex| to a fresh server; return the feed result and check the GoAway. */
static int hostile(const char *hex, bool client) {
  struct peer *p = peer_new(client, NULL);
  size_t n;
  uint8_t *in = tap_unhex(hex, &n);
  int rc = goop_yamux_feed(p->y, in, n, 0);
  if (rc) {
    goop_buf *o = goop_yamux_output(p->y);
    CHECK(o->len >= 12 && memcmp(o->data + o->len - 12, "\0\3\0\0\0\0\0\0\0\0\0\1", 12) == 0);
    CHECK_INT_EQ(goop_yamux_feed(p->y, in, n, 0), rc);
    uint32_t id;
    CHECK_INT_EQ(goop_yamux_open_stream(p->y, &id), rc);
  }
  free(in);
  peer_free(p);
  return rc;
}

static void test_hostile(void) {
  CHECK_INT_EQ(hostile("01 01 0001 00000001 00000000", false), GOOP_EPROTO); /* version 1 */
  CHECK_INT_EQ(hostile("00 04 0000 00000000 00000000", false), GOOP_EPROTO); /* type 4 */
  CHECK_INT_EQ(hostile("00 ff 0000 00000000 00000000", false), GOOP_EPROTO);
  CHECK_INT_EQ(hostile("00 01 0001 00000002 00000000", false), GOOP_EPROTO);    /* server gets even SYN */
  CHECK_INT_EQ(hostile("00 01 0001 00000001 00000000", true), GOOP_EPROTO);     /* client gets odd SYN */
  CHECK_INT_EQ(hostile("00 00 0000 00000000 00000001 aa", false), GOOP_EPROTO); /* data on id 0 */
  CHECK_INT_EQ(hostile("00 01 0000 00000000 00000010", false), GOOP_EPROTO);    /* window on id 0 */
  CHECK_INT_EQ(hostile("00 00 0001 00000000 00000000", false), GOOP_EPROTO);    /* SYN on id 0 */
  CHECK_INT_EQ(hostile("00 00 0001 00000001 00040001", false), GOOP_EPROTO);    /* data > window */
  CHECK_INT_EQ(hostile("00 01 0001 00000001 fffc0000", false), GOOP_EPROTO);    /* window overflow */
  CHECK_INT_EQ(hostile("00 01 0001 00000001 fffbffff", false), 0);              /* exactly 2^32-1 */
  CHECK_INT_EQ(hostile("00 01 0001 00000001 fffbffff 00 01 0000 00000001 00000001", false), GOOP_EPROTO);
  CHECK_INT_EQ(hostile("00 01 0001 00000001 00000000 00 01 0001 00000001 00000000", false), GOOP_EPROTO);
  /* frames for unknown streams are ignored silently, payload skipped */
  struct peer *p = peer_new(false, NULL);
  size_t n;
  uint8_t *in = tap_unhex("00 00 0000 00000005 00000003 010203 00 01 0004 00000007 00000010"
                          "00 01 0008 00000009 00000001 00 02 0002 00000000 00000001",
                          &n);
  CHECK_INT_EQ(goop_yamux_feed(p->y, in, n, 0), 0);
  CHECK_INT_EQ(goop_yamux_output(p->y)->len, 0);
  CHECK_INT_EQ(p->n_pong, 1);
  free(in);
  peer_free(p);
  /* two Data frames that together overrun the window (nothing consumed in between) */
  p = peer_new(false, NULL);
  p->auto_consume = false;
  uint8_t *big = calloc(1, 24 + 200000);
  in = tap_unhex("00 01 0001 00000001 00000000 00 00 0000 00000001 00030d40", &n);
  memcpy(big, in, 24);
  free(in);
  CHECK_INT_EQ(goop_yamux_feed(p->y, big, 24 + 200000, 0), 0);
  CHECK_INT_EQ(p->rx[1], 200000);
  free(big);
  in = tap_unhex("00 00 0000 00000001 0000f2c1", &n); /* 62145 > 262144 - 200000 */
  CHECK_INT_EQ(goop_yamux_feed(p->y, in, n, 0), GOOP_EPROTO);
  free(in);
  peer_free(p);
}

static void test_split_feeds(void) {
  struct peer *c = peer_new(true, NULL), *s = peer_new(false, NULL);
  uint32_t id;
  uint8_t msg[3000];
  for (size_t i = 0; i < sizeof(msg); i++)
    msg[i] = (uint8_t)i;
  for (int i = 0; i < 3; i++) {
    CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
    CHECK_INT_EQ(goop_yamux_write(c->y, id, msg, sizeof(msg)), sizeof(msg));
  }
  CHECK_INT_EQ(goop_yamux_ping(c->y, 42), 0);
  CHECK_INT_EQ(goop_yamux_close_write(c->y, 3), 0);
  CHECK_INT_EQ(transfer(c, s, 1), 0);
  CHECK_INT_EQ(s->n_opened, 3);
  CHECK_INT_EQ(s->rx[1], 3000);
  CHECK_INT_EQ(s->rx[3], 3000);
  CHECK_INT_EQ(s->rx[5], 3000);
  CHECK(s->fin[3]);
  CHECK_INT_EQ(s->n_ping, 1);
  CHECK_MEM_EQ(s->rxbuf.data + 6000, msg, 3000);
  /* and back, in 7-byte pieces */
  CHECK_INT_EQ(goop_yamux_write(s->y, 5, msg, 2000), 2000);
  CHECK_INT_EQ(goop_yamux_close_write(s->y, 5), 0);
  CHECK_INT_EQ(transfer(s, c, 7), 0);
  CHECK_INT_EQ(c->n_pong, 1);
  CHECK_INT_EQ(c->rx[5], 2000);
  CHECK(c->fin[5]);
  peer_free(c);
  peer_free(s);
}

static void test_reentrancy(void) {
  /* reset from inside on_stream_data: the rest of the frame is dropped */
  struct peer *c = peer_new(true, NULL), *s = peer_new(false, NULL);
  s->reset_on_data = true;
  uint32_t id;
  uint8_t msg[100] = {0};
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(goop_yamux_write(c->y, id, msg, sizeof(msg)), 100);
  CHECK_INT_EQ(goop_yamux_write(c->y, id, msg, sizeof(msg)), 100);
  CHECK_INT_EQ(transfer(c, s, 30), 0);
  CHECK_INT_EQ(s->rx[1], 6); /* 30 bytes = SYN frame + data header + 6 payload bytes */
  CHECK(s->closed[1]);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK(c->reset[1]);
  CHECK_INT_EQ(c->reset_code[1], 7);
  peer_free(c);
  peer_free(s);

  /* close_write from inside on_stream_fin frees the stream in its own callback */
  c = peer_new(true, NULL);
  s = peer_new(false, NULL);
  s->close_on_fin = true;
  c->close_on_fin = true;
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(goop_yamux_close_write(c->y, id), 0);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK(s->closed[1]);
  CHECK(c->closed[1]);
  CHECK_INT_EQ(goop_yamux_num_streams(c->y) + goop_yamux_num_streams(s->y), 0);

  /* data + FIN in one frame, echoed from inside the data callback */
  s->echo = true;
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  CHECK_INT_EQ(goop_yamux_write(c->y, id, (const uint8_t *)"ping", 4), 4);
  CHECK_INT_EQ(goop_yamux_close_write(c->y, id), 0);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK_INT_EQ(c->rx[3], 4);
  CHECK(c->closed[3]);
  CHECK(s->closed[3]);
  peer_free(c);
  peer_free(s);

  /* Data|FIN and Data|RST flags from a hand-made peer */
  s = peer_new(false, NULL);
  size_t n;
  uint8_t *in = tap_unhex("00 00 0005 00000001 00000002 6869 00 00 0001 00000003 00000000"
                          "00 00 0008 00000003 00000002 6869",
                          &n);
  CHECK_INT_EQ(goop_yamux_feed(s->y, in, n, 0), 0);
  CHECK_INT_EQ(s->rx[1], 2);
  CHECK(s->fin[1]);
  CHECK(s->reset[3]);
  CHECK_INT_EQ(s->rx[3], 0);
  CHECK_INT_EQ(s->reset_code[3], 0);
  free(in);
  peer_free(s);
}

/* Stream table under churn: random opens and resets, every id checked. */
static void test_table_churn(void) {
  struct goop_yamux_config cfg;
  goop_yamux_config_default(&cfg);
  cfg.max_outbound_unacked = 100000;
  struct peer *c = peer_new(true, &cfg);
  enum { N = 6000 };
  static bool live[2 * N + 2];
  memset(live, 0, sizeof(live));
  uint32_t seed = 12345, opened = 0;
  size_t nlive = 0, bad = 0;
  for (int step = 0; step < 20000; step++) {
    seed = seed * 1103515245u + 12345u;
    uint32_t r = seed >> 8;
    if ((r % 3 != 0 || nlive == 0) && opened < N) {
      uint32_t id;
      if (goop_yamux_open_stream(c->y, &id) != 0)
        bad++;
      live[id] = true;
      nlive++;
      opened++;
    } else if (nlive > 0) {
      uint32_t id = 2 * (r % opened) + 1;
      if (live[id]) {
        if (goop_yamux_reset(c->y, id, 0) != 0)
          bad++;
        live[id] = false;
        nlive--;
      } else if (goop_yamux_reset(c->y, id, 0) != GOOP_ECLOSED) {
        bad++;
      }
    }
    if (step % 500 == 0) {
      for (uint32_t id = 1; id < 2 * N + 1; id += 2)
        if ((goop_yamux_send_window(c->y, id) != 0) != live[id])
          bad++;
      if (goop_yamux_num_streams(c->y) != nlive)
        bad++;
    }
    goop_buf_reset(goop_yamux_output(c->y));
  }
  CHECK_INT_EQ(bad, 0);
  CHECK_INT_EQ(goop_yamux_num_streams(c->y), nlive);
  CHECK_INT_EQ(c->n_closed, opened - nlive);
  peer_free(c);
}

static int feed_ret;
static int cb_open_misbehave(goop_yamux *y, uint32_t id, void *ud) {
  (void)ud;
  uint8_t b = 0;
  feed_ret = goop_yamux_feed(y, &b, 1, 0); /* not allowed from a callback */
  (void)goop_yamux_reset(y, id, 3);        /* refuse by resetting from inside */
  return 0;
}

static void test_misc(void) {
  struct peer *c = peer_new(true, NULL), *s = peer_new(false, NULL);
  uint32_t id;
  CHECK_INT_EQ(goop_yamux_open_stream(c->y, &id), 0);
  int x = 5;
  CHECK_INT_EQ(goop_yamux_stream_set_data(c->y, id, &x), 0);
  CHECK(goop_yamux_stream_get_data(c->y, id) == &x);
  CHECK(goop_yamux_stream_get_data(c->y, 99) == NULL);
  CHECK_INT_EQ(goop_yamux_stream_set_data(c->y, 99, &x), GOOP_ECLOSED);
  CHECK_INT_EQ(goop_yamux_error(c->y), 0);
  /* data after the peer's FIN is dropped; consume then sends no update */
  s->auto_consume = false;
  CHECK_INT_EQ(goop_yamux_write(c->y, id, (const uint8_t *)"abc", 3), 3);
  CHECK_INT_EQ(goop_yamux_close_write(c->y, id), 0);
  CHECK_INT_EQ(pump(c, s), 0);
  CHECK(s->fin[1]);
  size_t n;
  uint8_t *in = tap_unhex("00 00 0000 00000001 00000002 6869", &n);
  CHECK_INT_EQ(goop_yamux_feed(s->y, in, n, 0), 0);
  free(in);
  CHECK_INT_EQ(s->rx[1], 3);
  CHECK_INT_EQ(goop_yamux_consume(s->y, id, 3, 0), 0);
  CHECK_INT_EQ(goop_yamux_pending(s->y), 0);
  peer_free(c);
  peer_free(s);

  /* misbehaving callbacks */
  struct goop_yamux_callbacks cb2 = cbs;
  cb2.on_stream_open = cb_open_misbehave;
  struct peer *p = peer_new(false, NULL);
  goop_yamux_free(p->y);
  CHECK_INT_EQ(goop_yamux_new(false, NULL, &cb2, p, &p->y), 0);
  in = tap_unhex("00 01 0001 00000001 00000000 00 00 0000 00000001 00000001 61", &n);
  CHECK_INT_EQ(goop_yamux_feed(p->y, in, n, 0), 0);
  free(in);
  CHECK_INT_EQ(feed_ret, GOOP_ESTATE);
  CHECK_INT_EQ(goop_yamux_num_streams(p->y), 0);
  CHECK_INT_EQ(p->rx[1], 0);
  CHECK(!p->closed[1]); /* never accepted */
  CHECK(out_is(p, "00 01 000a 00000001 00000003"));
  /* callbacks version and fatal state */
  cb2.version = 99;
  goop_yamux *bad = NULL;
  CHECK_INT_EQ(goop_yamux_new(false, NULL, &cb2, NULL, &bad), GOOP_EINVAL);
  uint8_t junk[12] = {9};
  CHECK_INT_EQ(goop_yamux_feed(p->y, junk, sizeof(junk), 0), GOOP_EPROTO);
  CHECK_INT_EQ(goop_yamux_error(p->y), GOOP_EPROTO);
  CHECK_INT_EQ(goop_yamux_write(p->y, 1, junk, 1), GOOP_EPROTO);
  CHECK_INT_EQ(goop_yamux_ping(p->y, 1), GOOP_EPROTO);
  CHECK_INT_EQ(goop_yamux_goaway(p->y, 0), GOOP_EPROTO);
  CHECK_INT_EQ(goop_yamux_close_write(p->y, 1), GOOP_EPROTO);
  CHECK_INT_EQ(goop_yamux_reset(p->y, 1, 0), GOOP_EPROTO);
  CHECK_INT_EQ(goop_yamux_consume(p->y, 1, 0, 0), GOOP_EPROTO);
  peer_free(p);
}

int main(void) {
  RUN(test_exact_bytes);
  RUN(test_larger_initial_window);
  RUN(test_open_data_fin);
  RUN(test_reset);
  RUN(test_window);
  RUN(test_control_priority);
  RUN(test_autotune);
  RUN(test_many_streams);
  RUN(test_limits);
  RUN(test_ping_goaway);
  RUN(test_hostile);
  RUN(test_split_feeds);
  RUN(test_reentrancy);
  RUN(test_misc);
  RUN(test_table_churn);
  return tap_done();
}
