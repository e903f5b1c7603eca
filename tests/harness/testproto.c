/*
 * The goop-test protocols: servers and clients on the public libgoop API.
 * See testproto.h and tests/interop/README.md.
 */
#include "testproto.h"

#include <event2/event.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IO_CHUNK 65536u

struct goop_test_server_stats goop_test_server_stats;

/* 64 KiB of pattern plus one period, so any offset's next 64 KiB is a slice. */
static uint8_t pattern_block[IO_CHUNK + 256];
static bool pattern_ready;

static const uint8_t *pattern_at(uint64_t offset) {
  if (!pattern_ready) {
    goop_test_pattern_fill(pattern_block, sizeof(pattern_block), 0);
    pattern_ready = true;
  }
  return pattern_block + (offset & 0xffu);
}

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void put_u64be(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)(v & 0xffu);
}

static uint64_t get_u64be(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

const char *goop_test_proto_id(enum goop_test_proto p) {
  switch (p) {
  case GOOP_TEST_ECHO:
    return GOOP_TEST_ECHO_ID;
  case GOOP_TEST_SINK:
    return GOOP_TEST_SINK_ID;
  case GOOP_TEST_SOURCE:
    return GOOP_TEST_SOURCE_ID;
  case GOOP_TEST_SLOW:
    return GOOP_TEST_SLOW_ID;
  }
  return NULL;
}

void goop_test_pattern_fill(uint8_t *buf, size_t len, uint64_t offset) {
  for (size_t i = 0; i < len; i++)
    buf[i] = goop_test_pattern(offset + i);
}

long goop_test_pattern_check(const uint8_t *buf, size_t len, uint64_t offset) {
  const uint8_t *ref = pattern_at(offset); /* ref[j] is pattern byte offset + j for j < 256 + 64 KiB */
  for (size_t i = 0; i < len; i++)
    if (buf[i] != ref[i & 0xffu])
      return (long)i;
  return -1;
}

/* ---- servers ------------------------------------------------------------------------ */

struct srv {
  enum goop_test_proto p;
  goop_stream *s;
  struct event *timer; /* slow: next read allowance */
  EVP_MD_CTX *md;      /* sink */
  uint64_t start_us;
  uint64_t in;    /* bytes read */
  uint8_t hdr[8]; /* source: the requested length */
  size_t hdr_len;
  uint64_t want, out; /* source: bytes to write, written */
  bool closing;       /* our write side is closed */
  size_t plen;        /* echo: bytes read but not yet written back */
  uint8_t pending[IO_CHUNK];
};

static void srv_end(struct srv *v, bool ok) {
  if (ok) {
    goop_test_server_stats.finished++;
    if (v->p == GOOP_TEST_SLOW)
      goop_test_server_stats.slow_counted = v->in;
  } else {
    goop_test_server_stats.failed++;
    goop_stream_reset(v->s);
  }
  goop_test_server_stats.active--;
  goop_stream_set_callbacks(v->s, NULL, NULL);
  goop_stream_unref(v->s);
  if (v->timer)
    event_free(v->timer);
  EVP_MD_CTX_free(v->md);
  free(v);
}

/* Close our side after the answer in |ans| (may be NULL); the stream is
 * released and the library sends the queued bytes, then FIN. */
static void srv_answer_and_close(struct srv *v, const uint8_t *ans, size_t len) {
  if (len) {
    ssize_t w = goop_stream_write(v->s, ans, len);
    if (w != (ssize_t)len) { /* the send buffer is empty here: anything else is an error */
      srv_end(v, false);
      return;
    }
    goop_test_server_stats.bytes_out += len;
  }
  goop_stream_close_write(v->s);
  srv_end(v, true);
}

/* echo: returns after the stream was released or when it must wait. */
static void srv_echo(struct srv *v) {
  for (;;) {
    if (v->plen) {
      ssize_t w = goop_stream_write(v->s, v->pending, v->plen);
      if (w == GOOP_EAGAIN)
        return;
      if (w < 0) {
        srv_end(v, false);
        return;
      }
      goop_test_server_stats.bytes_out += (uint64_t)w;
      memmove(v->pending, v->pending + w, v->plen - (size_t)w);
      v->plen -= (size_t)w;
      if (v->plen)
        return;
    }
    ssize_t n = goop_stream_read(v->s, v->pending, sizeof(v->pending));
    if (n == GOOP_EAGAIN)
      return;
    if (n < 0) {
      srv_end(v, false);
      return;
    }
    if (n == 0) {
      srv_answer_and_close(v, NULL, 0);
      return;
    }
    v->in += (uint64_t)n;
    goop_test_server_stats.bytes_in += (uint64_t)n;
    v->plen = (size_t)n;
  }
}

static void srv_sink(struct srv *v) {
  uint8_t buf[IO_CHUNK];
  for (;;) {
    ssize_t n = goop_stream_read(v->s, buf, sizeof(buf));
    if (n == GOOP_EAGAIN)
      return;
    if (n < 0) {
      srv_end(v, false);
      return;
    }
    if (n == 0) {
      uint8_t d[32];
      EVP_DigestFinal_ex(v->md, d, NULL);
      srv_answer_and_close(v, d, sizeof(d));
      return;
    }
    v->in += (uint64_t)n;
    goop_test_server_stats.bytes_in += (uint64_t)n;
    EVP_DigestUpdate(v->md, buf, (size_t)n);
  }
}

static void srv_source(struct srv *v) {
  uint8_t buf[IO_CHUNK];
  /* Read: the header first, then anything else is dropped. */
  for (;;) {
    ssize_t n = goop_stream_read(v->s, buf, sizeof(buf));
    if (n == GOOP_EAGAIN)
      break;
    if (n < 0) {
      srv_end(v, false);
      return;
    }
    if (n == 0) {
      if (v->hdr_len < 8) { /* ended before the header */
        srv_end(v, false);
        return;
      }
      break;
    }
    v->in += (uint64_t)n;
    goop_test_server_stats.bytes_in += (uint64_t)n;
    if (v->hdr_len < 8) {
      size_t take = 8 - v->hdr_len < (size_t)n ? 8 - v->hdr_len : (size_t)n;
      memcpy(v->hdr + v->hdr_len, buf, take);
      v->hdr_len += take;
      if (v->hdr_len == 8)
        v->want = get_u64be(v->hdr);
    }
  }
  if (v->hdr_len < 8)
    return;
  while (v->out < v->want) {
    uint64_t left = v->want - v->out;
    size_t n = left < IO_CHUNK ? (size_t)left : IO_CHUNK;
    ssize_t w = goop_stream_write(v->s, pattern_at(v->out), n);
    if (w == GOOP_EAGAIN)
      return;
    if (w < 0) {
      srv_end(v, false);
      return;
    }
    v->out += (uint64_t)w;
    goop_test_server_stats.bytes_out += (uint64_t)w;
  }
  /* Everything queued: close; the library discards what the client still sends. */
  srv_answer_and_close(v, NULL, 0);
}

static void srv_slow(struct srv *v) {
  uint8_t buf[IO_CHUNK];
  for (;;) {
    uint64_t elapsed_ms = (now_us() - v->start_us) / 1000u;
    uint64_t allowance = (elapsed_ms / GOOP_TEST_SLOW_INTERVAL_MS + 1) * GOOP_TEST_SLOW_CHUNK;
    if (allowance <= v->in) {
      /* Over budget: look again at the next interval (unless data is not there yet). */
      if (!evtimer_pending(v->timer, NULL)) {
        uint64_t next = (elapsed_ms / GOOP_TEST_SLOW_INTERVAL_MS + 1) * GOOP_TEST_SLOW_INTERVAL_MS;
        uint64_t wait = next - elapsed_ms;
        struct timeval tv = {(time_t)(wait / 1000u), (suseconds_t)((wait % 1000u) * 1000u)};
        evtimer_add(v->timer, &tv);
      }
      return;
    }
    uint64_t may = allowance - v->in;
    size_t n = may < sizeof(buf) ? (size_t)may : sizeof(buf);
    ssize_t r = goop_stream_read(v->s, buf, n);
    if (r == GOOP_EAGAIN)
      return;
    if (r < 0) {
      srv_end(v, false);
      return;
    }
    if (r == 0) {
      uint8_t cnt[8];
      put_u64be(cnt, v->in);
      srv_answer_and_close(v, cnt, sizeof(cnt));
      return;
    }
    v->in += (uint64_t)r;
    goop_test_server_stats.bytes_in += (uint64_t)r;
  }
}

static void srv_io(struct srv *v) {
  switch (v->p) {
  case GOOP_TEST_ECHO:
    srv_echo(v);
    break;
  case GOOP_TEST_SINK:
    srv_sink(v);
    break;
  case GOOP_TEST_SOURCE:
    srv_source(v);
    break;
  case GOOP_TEST_SLOW:
    srv_slow(v);
    break;
  }
}

static void srv_readable(goop_stream *s, void *ud) {
  (void)s;
  srv_io(ud);
}

static void srv_error(goop_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  srv_end(ud, false);
}

static void srv_timer(evutil_socket_t fd, short what, void *ud) {
  (void)fd;
  (void)what;
  srv_io(ud);
}

static const struct goop_stream_callbacks srv_cbs = {GOOP_STREAM_CALLBACKS_V1, srv_readable, srv_readable,
                                                     srv_error};

struct srv_cfg {
  enum goop_test_proto p;
  struct event_base *base;
};
static struct srv_cfg srv_cfgs[4];

static void srv_handler(goop_host *host, goop_stream *s, void *ud) {
  (void)host;
  const struct srv_cfg *cfg = ud;
  struct srv *v = calloc(1, sizeof(*v));
  if (!v)
    goto fail;
  v->p = cfg->p;
  v->s = s;
  v->start_us = now_us();
  if (v->p == GOOP_TEST_SINK) {
    v->md = EVP_MD_CTX_new();
    if (!v->md || !EVP_DigestInit_ex(v->md, EVP_sha256(), NULL))
      goto fail_v;
  }
  if (v->p == GOOP_TEST_SLOW) {
    v->timer = evtimer_new(cfg->base, srv_timer, v);
    if (!v->timer)
      goto fail_v;
  }
  goop_test_server_stats.accepted++;
  goop_test_server_stats.active++;
  goop_stream_set_callbacks(s, &srv_cbs, v);
  return;
fail_v:
  EVP_MD_CTX_free(v->md);
  free(v);
fail:
  goop_stream_reset(s);
  goop_stream_unref(s);
}

int goop_test_serve(goop_host *host, struct event_base *base, enum goop_test_proto p) {
  if ((unsigned)p > GOOP_TEST_SLOW)
    return GOOP_EINVAL;
  srv_cfgs[p] = (struct srv_cfg){p, base};
  return goop_host_set_stream_handler(host, goop_test_proto_id(p), srv_handler, &srv_cfgs[p]);
}

int goop_test_serve_all(goop_host *host, struct event_base *base) {
  for (int p = GOOP_TEST_ECHO; p <= GOOP_TEST_SLOW; p++) {
    int rc = goop_test_serve(host, base, (enum goop_test_proto)p);
    if (rc)
      return rc;
  }
  return 0;
}

/* ---- clients ------------------------------------------------------------------------ */

struct goop_test_client {
  goop_host *host;
  enum goop_test_proto p;
  uint64_t bytes;
  goop_stream *s;
  struct goop_test_result r;
  EVP_MD_CTX *hs, *hr; /* sent and received data (echo, sink) */
  uint8_t hdr[8];      /* source: the request */
  size_t hdr_sent;
  uint8_t ans[32]; /* sink: digest, slow: count */
  size_t ans_len;
  bool fin;
  bool open_pending;
  bool freed; /* freed while the open was pending: the open callback frees */
};

static void cl_finish(goop_test_client *c, int status, const char *fmt, ...) GOOP_PRINTF(3, 4);

static void cl_finish(goop_test_client *c, int status, const char *fmt, ...) {
  if (c->r.done)
    return;
  c->r.done = true;
  c->r.status = status;
  c->r.end_us = now_us();
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->r.error, sizeof(c->r.error), fmt, ap);
    va_end(ap);
  }
  if (c->s) {
    goop_stream_set_callbacks(c->s, NULL, NULL);
    if (status)
      goop_stream_reset(c->s);
    c->s = goop_stream_unref(c->s);
  }
}

static void cl_check_end(goop_test_client *c) {
  switch (c->p) {
  case GOOP_TEST_ECHO: {
    uint8_t d1[32], d2[32];
    EVP_DigestFinal_ex(c->hs, d1, NULL);
    EVP_DigestFinal_ex(c->hr, d2, NULL);
    if (c->r.sent != c->bytes || c->r.received != c->r.sent)
      cl_finish(c, GOOP_EPROTO, "echo: sent %llu of %llu, received %llu", (unsigned long long)c->r.sent,
                (unsigned long long)c->bytes, (unsigned long long)c->r.received);
    else if (memcmp(d1, d2, 32) != 0)
      cl_finish(c, GOOP_EPROTO, "echo: SHA-256 of the echo differs");
    else
      cl_finish(c, 0, NULL);
    break;
  }
  case GOOP_TEST_SINK: {
    uint8_t d[32];
    EVP_DigestFinal_ex(c->hs, d, NULL);
    if (c->r.sent != c->bytes || c->ans_len != 32)
      cl_finish(c, GOOP_EPROTO, "sink: sent %llu of %llu, answer %zu bytes", (unsigned long long)c->r.sent,
                (unsigned long long)c->bytes, c->ans_len);
    else if (memcmp(d, c->ans, 32) != 0)
      cl_finish(c, GOOP_EPROTO, "sink: digest answer differs");
    else
      cl_finish(c, 0, NULL);
    break;
  }
  case GOOP_TEST_SOURCE:
    if (c->r.received != c->bytes)
      cl_finish(c, GOOP_EPROTO, "source: received %llu, asked for %llu", (unsigned long long)c->r.received,
                (unsigned long long)c->bytes);
    else
      cl_finish(c, 0, NULL);
    break;
  case GOOP_TEST_SLOW:
    if (c->ans_len != 8)
      cl_finish(c, GOOP_EPROTO, "slow: answer of %zu bytes", c->ans_len);
    else if ((c->r.counted = get_u64be(c->ans)) != c->r.sent || c->r.sent != c->bytes)
      cl_finish(c, GOOP_EPROTO, "slow: sent %llu of %llu, server counted %llu", (unsigned long long)c->r.sent,
                (unsigned long long)c->bytes, (unsigned long long)c->r.counted);
    else
      cl_finish(c, 0, NULL);
    break;
  }
}

static void cl_io(goop_test_client *c) {
  /* Write. */
  if (c->p == GOOP_TEST_SOURCE) {
    while (c->hdr_sent < 8) {
      ssize_t w = goop_stream_write(c->s, c->hdr + c->hdr_sent, 8 - c->hdr_sent);
      if (w == GOOP_EAGAIN)
        break;
      if (w < 0) {
        cl_finish(c, (int)w, "write: %s", goop_strerror((int)w));
        return;
      }
      c->hdr_sent += (size_t)w;
    }
  } else {
    while (c->r.sent < c->bytes) {
      uint64_t left = c->bytes - c->r.sent;
      size_t n = left < IO_CHUNK ? (size_t)left : IO_CHUNK;
      const uint8_t *p = pattern_at(c->r.sent);
      ssize_t w = goop_stream_write(c->s, p, n);
      if (w == GOOP_EAGAIN)
        break;
      if (w < 0) {
        cl_finish(c, (int)w, "write after %llu bytes: %s", (unsigned long long)c->r.sent,
                  goop_strerror((int)w));
        return;
      }
      if (c->hs)
        EVP_DigestUpdate(c->hs, p, (size_t)w);
      c->r.sent += (uint64_t)w;
    }
  }
  bool all_sent = c->p == GOOP_TEST_SOURCE ? c->hdr_sent == 8 : c->r.sent == c->bytes;
  if (all_sent && !c->fin) {
    c->fin = true;
    int rc = goop_stream_close_write(c->s);
    if (rc) {
      cl_finish(c, rc, "close_write: %s", goop_strerror(rc));
      return;
    }
  }
  /* Read. */
  uint8_t buf[IO_CHUNK];
  for (;;) {
    ssize_t n = goop_stream_read(c->s, buf, sizeof(buf));
    if (n == GOOP_EAGAIN)
      return;
    if (n < 0) {
      cl_finish(c, (int)n, "read after %llu bytes: %s", (unsigned long long)c->r.received,
                goop_strerror((int)n));
      return;
    }
    if (n == 0) {
      cl_check_end(c);
      return;
    }
    switch (c->p) {
    case GOOP_TEST_ECHO:
      EVP_DigestUpdate(c->hr, buf, (size_t)n);
      break;
    case GOOP_TEST_SOURCE: {
      long bad = goop_test_pattern_check(buf, (size_t)n, c->r.received);
      if (bad >= 0) {
        cl_finish(c, GOOP_EPROTO, "source: byte %llu differs from the pattern",
                  (unsigned long long)(c->r.received + (uint64_t)bad));
        return;
      }
      break;
    }
    case GOOP_TEST_SINK:
    case GOOP_TEST_SLOW: {
      size_t cap = c->p == GOOP_TEST_SINK ? 32 : 8;
      if (c->ans_len + (size_t)n > cap) {
        cl_finish(c, GOOP_EPROTO, "%s: answer longer than %zu bytes", goop_test_proto_id(c->p), cap);
        return;
      }
      memcpy(c->ans + c->ans_len, buf, (size_t)n);
      c->ans_len += (size_t)n;
      break;
    }
    }
    c->r.received += (uint64_t)n;
  }
}

static void cl_readable(goop_stream *s, void *ud) {
  (void)s;
  cl_io(ud);
}

static void cl_error(goop_stream *s, int err, void *ud) {
  (void)s;
  goop_test_client *c = ud;
  cl_finish(c, err, "stream error after %llu sent, %llu received: %s", (unsigned long long)c->r.sent,
            (unsigned long long)c->r.received, goop_strerror(err));
}

static const struct goop_stream_callbacks cl_cbs = {GOOP_STREAM_CALLBACKS_V1, cl_readable, cl_readable,
                                                    cl_error};

static void cl_free_now(goop_test_client *c) {
  EVP_MD_CTX_free(c->hs);
  EVP_MD_CTX_free(c->hr);
  free(c);
}

static void cl_opened(goop_host *host, int status, goop_stream *s, void *ud) {
  (void)host;
  goop_test_client *c = ud;
  c->open_pending = false;
  if (c->freed) {
    if (s) {
      goop_stream_reset(s);
      goop_stream_unref(s);
    }
    cl_free_now(c);
    return;
  }
  if (c->r.done) { /* cancelled while opening */
    if (s) {
      goop_stream_reset(s);
      goop_stream_unref(s);
    }
    return;
  }
  if (status) {
    cl_finish(c, status, "open %s: %s", goop_test_proto_id(c->p), goop_strerror(status));
    return;
  }
  c->s = s;
  c->r.opened_us = now_us();
  goop_stream_set_callbacks(s, &cl_cbs, c);
  cl_io(c);
}

int goop_test_client_start(goop_host *host, const goop_peer_id *peer, enum goop_test_proto p, uint64_t bytes,
                           uint32_t timeout_ms, goop_test_client **ret) {
  if (!host || !peer || !ret || (unsigned)p > GOOP_TEST_SLOW)
    return GOOP_EINVAL;
  goop_test_client *c = calloc(1, sizeof(*c));
  if (!c)
    return GOOP_ENOMEM;
  c->host = host;
  c->p = p;
  c->bytes = bytes;
  if (p == GOOP_TEST_ECHO || p == GOOP_TEST_SINK) {
    c->hs = EVP_MD_CTX_new();
    if (!c->hs || !EVP_DigestInit_ex(c->hs, EVP_sha256(), NULL))
      goto fail;
  }
  if (p == GOOP_TEST_ECHO) {
    c->hr = EVP_MD_CTX_new();
    if (!c->hr || !EVP_DigestInit_ex(c->hr, EVP_sha256(), NULL))
      goto fail;
  }
  put_u64be(c->hdr, bytes);
  c->r.start_us = now_us();
  const char *protos[1] = {goop_test_proto_id(p)};
  c->open_pending = true;
  int rc = goop_host_new_stream(host, peer, protos, 1, timeout_ms ? timeout_ms : 10000, cl_opened, c);
  if (rc) {
    cl_free_now(c);
    return rc;
  }
  *ret = c;
  return 0;
fail:
  cl_free_now(c);
  return GOOP_ENOMEM;
}

const struct goop_test_result *goop_test_client_result(const goop_test_client *c) {
  return &c->r;
}

goop_stream *goop_test_client_stream(const goop_test_client *c) {
  return c ? c->s : NULL;
}

void goop_test_client_cancel(goop_test_client *c) {
  if (c && !c->r.done)
    cl_finish(c, GOOP_ECANCELED, "cancelled");
}

void goop_test_client_free(goop_test_client *c) {
  if (!c)
    return;
  goop_test_client_cancel(c);
  if (c->open_pending) {
    c->freed = true;
    return;
  }
  cl_free_now(c);
}
