/*
 * Fuzz the yamux session core as a server. Input layout:
 *   byte 0      behaviour bits for the callbacks (consume, echo, reset, ...)
 *   bytes 1..4  four chunk sizes (1..256), cycled to split the rest of the input
 *   rest        bytes fed to the session
 * The callbacks call back into the session (write, consume, reset,
 * close_write, open_stream) to exercise re-entrancy. After every feed the
 * output is checked to be a well-formed frame sequence.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "yamux.h"

#define MAX_PAYLOAD 4096

enum {
  B_CONSUME = 1 << 0,
  B_ECHO = 1 << 1,
  B_RESET = 1 << 2,
  B_CLOSE_ON_FIN = 1 << 3,
  B_REFUSE = 1 << 4,
  B_RTT = 1 << 5,
  B_OPEN = 1 << 6,
  B_CLOSE_ON_DATA = 1 << 7,
};

struct fstate {
  unsigned bits;
  goop_tstamp now;
  unsigned n_data;
};

static int f_open(goop_yamux *y, uint32_t id, void *ud) {
  struct fstate *f = ud;
  if ((f->bits & B_REFUSE) && (id & 2))
    return -1;
  if (f->bits & B_ECHO)
    (void)goop_yamux_write(y, id, (const uint8_t *)"hello", 5);
  return 0;
}

static int f_data(goop_yamux *y, uint32_t id, const uint8_t *data, size_t len, void *ud) {
  struct fstate *f = ud;
  f->n_data++;
  if (f->bits & B_ECHO)
    (void)goop_yamux_write(y, id, data, len);
  if (f->bits & B_CONSUME)
    (void)goop_yamux_consume(y, id, len, f->now);
  if ((f->bits & B_RESET) && len > 0 && (data[0] & 1))
    (void)goop_yamux_reset(y, id, data[0]);
  if ((f->bits & B_CLOSE_ON_DATA) && (len & 1))
    (void)goop_yamux_close_write(y, id);
  /* a failing callback resets the stream */
  return (len > 0 && data[len - 1] == 0xee) ? -1 : 0;
}

static void f_fin(goop_yamux *y, uint32_t id, void *ud) {
  struct fstate *f = ud;
  if (f->bits & B_CLOSE_ON_FIN)
    (void)goop_yamux_close_write(y, id);
}

static void f_reset(goop_yamux *y, uint32_t id, uint32_t code, void *ud) {
  (void)code;
  (void)ud;
  /* nothing may be sent on a stream the peer reset */
  if (goop_yamux_write(y, id, (const uint8_t *)"x", 1) != GOOP_ECLOSED)
    abort();
  if (goop_yamux_reset(y, id, 1) != 0)
    abort();
}

static void f_writable(goop_yamux *y, uint32_t id, void *ud) {
  static const uint8_t buf[300];
  (void)ud;
  (void)goop_yamux_write(y, id, buf, sizeof(buf));
}

static void f_closed(goop_yamux *y, uint32_t id, void *ud) {
  (void)ud;
  if (goop_yamux_write(y, id, (const uint8_t *)"x", 1) != GOOP_ECLOSED)
    abort();
  (void)goop_yamux_consume(y, id, 0, 0);
}

static void f_ping(goop_yamux *y, uint32_t opaque, bool is_ack, void *ud) {
  struct fstate *f = ud;
  uint32_t id;
  if (!is_ack && (f->bits & B_OPEN) && goop_yamux_open_stream(y, &id) == 0)
    (void)goop_yamux_write(y, id, (const uint8_t *)&opaque, sizeof(opaque));
}

static void f_goaway(goop_yamux *y, uint32_t code, void *ud) {
  uint32_t id;
  (void)code;
  (void)ud;
  if (goop_yamux_open_stream(y, &id) != GOOP_EGOAWAY)
    abort();
}

static const struct goop_yamux_callbacks fcbs = {
    .version = GOOP_YAMUX_CALLBACKS_VERSION,
    .on_stream_open = f_open,
    .on_stream_data = f_data,
    .on_stream_fin = f_fin,
    .on_stream_reset = f_reset,
    .on_stream_writable = f_writable,
    .on_stream_closed = f_closed,
    .on_ping = f_ping,
    .on_goaway = f_goaway,
};

/* Our own output must always be a clean sequence of frames. */
static void check_frames(const goop_buf *o) {
  size_t off = 0;
  while (off < o->len) {
    if (o->len - off < GOOP_YAMUX_HEADER_LEN)
      abort();
    const uint8_t *h = o->data + off;
    uint32_t len = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
    if (h[0] != 0 || h[1] > 3)
      abort();
    off += GOOP_YAMUX_HEADER_LEN;
    if (h[1] == GOOP_YAMUX_TYPE_DATA) {
      if (len > MAX_PAYLOAD || len > o->len - off)
        abort();
      off += len;
    }
  }
}

static void check_output(goop_yamux *y) {
  goop_buf *o;
  while ((o = goop_yamux_output(y))->len > 0) {
    check_frames(o);
    goop_buf_consume(o, o->len);
  }
  if (goop_yamux_pending(y) != 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 5)
    return 0;
  struct fstate f = {.bits = data[0], .now = 1};
  size_t chunks[4];
  for (int i = 0; i < 4; i++)
    chunks[i] = (size_t)data[1 + i] + 1;
  data += 5;
  size -= 5;

  struct goop_yamux_config cfg;
  goop_yamux_config_default(&cfg);
  cfg.max_inbound_streams = 8;
  cfg.max_outbound_unacked = 4;
  cfg.max_frame_payload = MAX_PAYLOAD;
  goop_yamux *y = NULL;
  if (goop_yamux_new(false, &cfg, &fcbs, &f, &y) != 0)
    return 0;
  if (f.bits & B_RTT)
    goop_yamux_set_rtt(y, 1000);

  size_t off = 0;
  unsigned k = 0;
  while (off < size) {
    size_t n = chunks[k++ & 3];
    if (n > size - off)
      n = size - off;
    int rc = goop_yamux_feed(y, data + off, n, f.now);
    off += n;
    f.now += 700;
    check_output(y);
    if (rc) {
      if (goop_yamux_feed(y, data, 1, f.now) != rc)
        abort();
      break;
    }
  }
  goop_yamux_free(y);
  return 0;
}
