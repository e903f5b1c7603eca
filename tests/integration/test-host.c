/*
 * C<->C transport tests on loopback: two hosts in one process on one event
 * loop. Connect, identify, ping, bulk echo with checksums, many concurrent
 * streams, a slow reader, and hostile peers (wrong ID, silence, junk).
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <goop/goop.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "tap.h"
#include "transport-internal.h" /* white-box: stream bookkeeping */

#define ECHO "/goop-test/echo/1.0.0"

static struct event_base *base;
static goop_ctx *ctx;

static void log_fn(enum goop_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (getenv("GOOP_TEST_LOG"))
    fprintf(stderr, "[%d] %s\n", level, msg);
}

static goop_host *make_host(const char *listen) {
  goop_identity *id;
  if (goop_identity_generate(&id))
    return NULL;
  goop_host *h = NULL;
  int rc = goop_host_new(ctx, id, NULL, &h);
  goop_identity_free(id);
  if (rc)
    return NULL;
  if (listen && goop_host_listen(h, listen) != 0) {
    goop_host_free(h);
    return NULL;
  }
  return h;
}

static void full_addr(goop_host *h, char *buf, size_t len) {
  char a[200], id[GOOP_PEER_ID_STR_MAX];
  goop_peer_id pid;
  goop_host_listen_addr(h, 0, a, sizeof(a));
  goop_host_peer_id(h, &pid);
  goop_peer_id_to_string(&pid, id, sizeof(id));
  snprintf(buf, len, "%s/p2p/%s", a, id);
}

/* Run the loop until *flag or timeout (seconds). */
static bool run_until(volatile int *flag, int seconds) {
  struct timeval tv = {0, 20000};
  for (int i = 0; i < seconds * 50 && !*flag; i++) {
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  return *flag;
}

/* ---- echo server ---- */
struct echo_srv {
  goop_stream *s;
  uint8_t pending[65536];
  size_t plen;
  bool eof;
};

static void echo_pump(struct echo_srv *e) {
  for (;;) {
    if (e->plen) {
      ssize_t w = goop_stream_write(e->s, e->pending, e->plen);
      if (w == GOOP_EAGAIN)
        return;
      if (w < 0)
        goto done;
      memmove(e->pending, e->pending + w, e->plen - (size_t)w);
      e->plen -= (size_t)w;
      if (e->plen)
        return;
    }
    ssize_t n = goop_stream_read(e->s, e->pending, sizeof(e->pending));
    if (n == GOOP_EAGAIN)
      return;
    if (n <= 0) {
      if (n == 0)
        goop_stream_close_write(e->s);
      goto done;
    }
    e->plen = (size_t)n;
  }
done:
  goop_stream_set_callbacks(e->s, NULL, NULL);
  goop_stream_unref(e->s);
  free(e);
}
static void echo_readable(goop_stream *s, void *ud) {
  (void)s;
  echo_pump(ud);
}
static void echo_error(goop_stream *s, int err, void *ud) {
  (void)err;
  goop_stream_set_callbacks(s, NULL, NULL);
  goop_stream_unref(s);
  free(ud);
}
static const struct goop_stream_callbacks echo_cbs = {GOOP_STREAM_CALLBACKS_V1, echo_readable, echo_readable,
                                                      echo_error};
static void echo_handler(goop_host *h, goop_stream *s, void *ud) {
  (void)h;
  (void)ud;
  struct echo_srv *e = calloc(1, sizeof(*e));
  e->s = s;
  goop_stream_set_callbacks(s, &echo_cbs, e);
}

#define GONE "/goop-test/gone/1.0.0"
static void gone_handler(goop_host *h, goop_stream *s, void *ud) {
  (void)h, (void)ud;
  goop_stream_unref(s);
}

/* ---- connect + ping + identify ---- */
static volatile int connected, conn_status = 99, pinged, ping_status = 99, identified;
static uint64_t ping_rtt;

static void on_connect(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h, (void)c, (void)ud;
  conn_status = status;
  connected = 1;
}
static void on_ping(goop_host *h, int status, uint64_t rtt, void *ud) {
  (void)h, (void)ud;
  ping_status = status;
  ping_rtt = rtt;
  pinged = 1;
}
static void on_identified(goop_host *h, goop_conn *c, void *ud) {
  (void)h, (void)c, (void)ud;
  identified = 1;
}
static volatile int extra_identified, extra_connected;
static void on_extra_identified(goop_host *h, goop_conn *c, void *ud) {
  (void)h, (void)c, (void)ud;
  extra_identified++;
}
static void on_extra_connected(goop_host *h, goop_conn *c, void *ud) {
  (void)h, (void)c, (void)ud;
  extra_connected++;
}

static goop_host *A, *B;
static goop_peer_id idA, idB;

static void test_connect_ping_identify(void) {
  A = make_host("/ip4/127.0.0.1/tcp/0");
  B = make_host("/ip4/127.0.0.1/tcp/0");
  CHECK(A && B);
  goop_host_peer_id(A, &idA);
  goop_host_peer_id(B, &idB);
  CHECK_INT_EQ(goop_host_set_stream_handler(B, ECHO, echo_handler, NULL), 0);
  CHECK_INT_EQ(goop_host_set_stream_handler(B, GONE, gone_handler, NULL), 0);
  struct goop_host_events ev = {.version = GOOP_HOST_EVENTS_V1, .on_identified = on_identified};
  goop_host_set_events(A, &ev, NULL);
  /* a second listener, as modules (pubsub) add them */
  struct goop_host_events ev2 = {.version = GOOP_HOST_EVENTS_V1,
                                 .on_connected = on_extra_connected,
                                 .on_identified = on_extra_identified};
  int ev2_id = 0, ev3_id = 0;
  CHECK_INT_EQ(goop_host_add_events(A, &ev2, NULL, &ev2_id), 0);
  CHECK_INT_EQ(goop_host_add_events(A, &ev2, NULL, &ev3_id), 0);
  CHECK(ev2_id > 0 && ev3_id > 0 && ev2_id != ev3_id);
  CHECK_INT_EQ(goop_host_remove_events(A, ev3_id), 0);
  CHECK_INT_EQ(goop_host_remove_events(A, ev3_id), GOOP_ENOENT);
  char addr[300];
  full_addr(B, addr, sizeof(addr));
  CHECK_INT_EQ(goop_host_connect_addr(A, addr, 5000, on_connect, NULL), 0);
  CHECK(run_until(&connected, 10));
  CHECK_INT_EQ(conn_status, 0);
  CHECK_INT_EQ(goop_host_num_conns(A), 1);
  CHECK(run_until(&identified, 10));
  CHECK_INT_EQ(extra_identified, 1); /* the removed listener was not called */
  CHECK_INT_EQ(extra_connected, 1);
  /* A learned B's protocols from identify. */
  bool has_echo = false;
  for (size_t i = 0;; i++) {
    const char *p = goop_host_peer_protocol(A, &idB, i);
    if (!p)
      break;
    if (strcmp(p, ECHO) == 0)
      has_echo = true;
  }
  CHECK(has_echo);
  const char *agent = goop_host_peer_agent(A, &idB);
  CHECK(agent && strncmp(agent, "libgoop/", 8) == 0);
  CHECK_INT_EQ(goop_host_ping(A, &idB, 5000, on_ping, NULL), 0);
  CHECK(run_until(&pinged, 10));
  CHECK_INT_EQ(ping_status, 0);
  CHECK(ping_rtt > 0 && ping_rtt < 5000000);
  /* Second connect reuses the connection. */
  connected = 0;
  CHECK_INT_EQ(goop_host_connect(A, &idB, 5000, on_connect, NULL), 0);
  CHECK(run_until(&connected, 5));
  CHECK_INT_EQ(goop_host_num_conns(A), 1);
}

/* ---- bulk echo with checksums ---- */
struct bulk {
  goop_stream *s;
  size_t total, sent, recvd;
  EVP_MD_CTX *hs, *hr;
  int done, status;
  bool fin;
};

static uint8_t pattern(size_t i) {
  return (uint8_t)((i * 31 + 7) & 0xff);
}

static void bulk_io(struct bulk *b) {
  uint8_t buf[65536];
  while (b->sent < b->total) {
    size_t n = b->total - b->sent < sizeof(buf) ? b->total - b->sent : sizeof(buf);
    for (size_t i = 0; i < n; i++)
      buf[i] = pattern(b->sent + i);
    ssize_t w = goop_stream_write(b->s, buf, n);
    if (w == GOOP_EAGAIN)
      break;
    if (w < 0) {
      b->status = (int)w, b->done = 1;
      return;
    }
    EVP_DigestUpdate(b->hs, buf, (size_t)w);
    b->sent += (size_t)w;
  }
  if (b->sent == b->total && !b->fin) {
    b->fin = true;
    goop_stream_close_write(b->s);
  }
  for (;;) {
    ssize_t n = goop_stream_read(b->s, buf, sizeof(buf));
    if (n == GOOP_EAGAIN)
      break;
    if (n < 0) {
      b->status = (int)n, b->done = 1;
      return;
    }
    if (n == 0) {
      b->done = 1;
      return;
    }
    EVP_DigestUpdate(b->hr, buf, (size_t)n);
    b->recvd += (size_t)n;
  }
}
static void bulk_cb(goop_stream *s, void *ud) {
  (void)s;
  bulk_io(ud);
}
static void bulk_err(goop_stream *s, int err, void *ud) {
  (void)s;
  struct bulk *b = ud;
  b->status = err;
  b->done = 1;
}
static const struct goop_stream_callbacks bulk_cbs = {GOOP_STREAM_CALLBACKS_V1, bulk_cb, bulk_cb, bulk_err};

static void bulk_opened(goop_host *h, int status, goop_stream *s, void *ud) {
  (void)h;
  struct bulk *b = ud;
  if (status) {
    b->status = status;
    b->done = 1;
    return;
  }
  b->s = s;
  goop_stream_set_callbacks(s, &bulk_cbs, b);
  bulk_io(b);
}

static void test_bulk_echo(void) {
  static const char *const protos[] = {ECHO};
  struct bulk b = {.total = 64u << 20};
  b.hs = EVP_MD_CTX_new();
  b.hr = EVP_MD_CTX_new();
  EVP_DigestInit_ex(b.hs, EVP_sha256(), NULL);
  EVP_DigestInit_ex(b.hr, EVP_sha256(), NULL);
  CHECK_INT_EQ(goop_host_new_stream(A, &idB, protos, 1, 5000, bulk_opened, &b), 0);
  CHECK(run_until(&b.done, 120));
  CHECK_INT_EQ(b.status, 0);
  CHECK_INT_EQ(b.sent, b.total);
  CHECK_INT_EQ(b.recvd, b.total);
  uint8_t d1[32], d2[32];
  EVP_DigestFinal_ex(b.hs, d1, NULL);
  EVP_DigestFinal_ex(b.hr, d2, NULL);
  CHECK_MEM_EQ(d1, d2, 32);
  EVP_MD_CTX_free(b.hs);
  EVP_MD_CTX_free(b.hr);
  goop_stream_unref(b.s);
}

/* ---- lazy (0-RTT) negotiation refused after identify ---- */
static volatile int gone_open, gone_err;
static int gone_status = 99, gone_error = 0;
static goop_stream *gone_s;
static void gone_on_error(goop_stream *s, int err, void *ud) {
  (void)s, (void)ud;
  gone_error = err;
  gone_err = 1;
}
static void gone_on_readable(goop_stream *s, void *ud) {
  (void)ud;
  char b[16];
  ssize_t n = goop_stream_read(s, b, sizeof(b));
  if (n < 0 && n != GOOP_EAGAIN) {
    gone_error = (int)n;
    gone_err = 1;
  }
}
static const struct goop_stream_callbacks gone_cbs = {GOOP_STREAM_CALLBACKS_V1, gone_on_readable, NULL,
                                                      gone_on_error};
static void gone_opened(goop_host *h, int status, goop_stream *s, void *ud) {
  (void)h, (void)ud;
  gone_status = status;
  gone_s = s;
  if (s) {
    goop_stream_set_callbacks(s, &gone_cbs, NULL);
    (void)goop_stream_write(s, "hello", 5);
  }
  gone_open = 1;
}
static void test_lazy_refused(void) {
  /* A learned from identify that B serves GONE; B stops serving it; A proposes it lazily. */
  bool listed = false;
  for (size_t i = 0; goop_host_peer_protocol(A, &idB, i); i++)
    listed |= strcmp(goop_host_peer_protocol(A, &idB, i), GONE) == 0;
  CHECK(listed);
  CHECK_INT_EQ(goop_host_remove_stream_handler(B, GONE), 0);
  static const char *const protos[] = {GONE};
  CHECK_INT_EQ(goop_host_new_stream(A, &idB, protos, 1, 5000, gone_opened, NULL), 0);
  CHECK(run_until(&gone_open, 5));
  CHECK_INT_EQ(gone_status, 0); /* handed over at once: 0-RTT */
  CHECK(run_until(&gone_err, 5));
  CHECK_INT_EQ(gone_error, GOOP_ENEGOTIATION);
  gone_s = goop_stream_unref(gone_s);
}

/* ---- failures of dialling ---- */
static void test_dial_failures(void) {
  char addr[300], a[200], idtxt[GOOP_PEER_ID_STR_MAX];
  /* Wrong Peer ID: B's address with A's own... use a fresh identity instead. */
  goop_identity *other;
  CHECK_INT_EQ(goop_identity_generate(&other), 0);
  goop_peer_id oid;
  goop_identity_peer_id(other, &oid);
  goop_identity_free(other);
  goop_peer_id_to_string(&oid, idtxt, sizeof(idtxt));
  goop_host_listen_addr(B, 0, a, sizeof(a));
  snprintf(addr, sizeof(addr), "%s/p2p/%s", a, idtxt);
  goop_host *C = make_host(NULL);
  connected = 0;
  CHECK_INT_EQ(goop_host_connect_addr(C, addr, 5000, on_connect, NULL), 0);
  CHECK(run_until(&connected, 10));
  CHECK_INT_EQ(conn_status, GOOP_EPEERID);
  /* Nobody listening. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, (struct sockaddr *)&sa, sizeof(sa));
  socklen_t sl = sizeof(sa);
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  close(fd);
  snprintf(addr, sizeof(addr), "/ip4/127.0.0.1/tcp/%u/p2p/%s", ntohs(sa.sin_port), idtxt);
  connected = 0;
  CHECK_INT_EQ(goop_host_connect_addr(C, addr, 5000, on_connect, NULL), 0);
  CHECK(run_until(&connected, 10));
  CHECK_INT_EQ(conn_status, GOOP_ECONNREFUSED);
  /* No address known. */
  CHECK_INT_EQ(goop_identity_generate(&other), 0);
  goop_identity_peer_id(other, &oid);
  goop_identity_free(other);
  connected = 0;
  CHECK_INT_EQ(goop_host_connect(C, &oid, 5000, on_connect, NULL), 0);
  CHECK(run_until(&connected, 5));
  CHECK_INT_EQ(conn_status, GOOP_ENOADDR);
  /* Bad input. */
  CHECK_INT_EQ(goop_host_connect_addr(C, "/ip4/1.2.3", 5000, on_connect, NULL), GOOP_EPARSE);
  CHECK_INT_EQ(goop_host_listen(C, "/dns4/example.com/tcp/1"), GOOP_EPARSE);
  goop_host_free(C);
}

/* ---- many concurrent streams ---- */
static void test_500_streams(void) {
  static const char *const protos[] = {ECHO};
  enum { N = 500 };
  struct bulk *bs = calloc(N, sizeof(*bs));
  for (int i = 0; i < N; i++) {
    bs[i].total = 1024;
    bs[i].hs = EVP_MD_CTX_new();
    bs[i].hr = EVP_MD_CTX_new();
    EVP_DigestInit_ex(bs[i].hs, EVP_sha256(), NULL);
    EVP_DigestInit_ex(bs[i].hr, EVP_sha256(), NULL);
    CHECK(goop_host_new_stream(A, &idB, protos, 1, 10000, bulk_opened, &bs[i]) == 0);
  }
  int ok = 0;
  for (int round = 0; round < 3000; round++) {
    int done = 0;
    for (int i = 0; i < N; i++)
      done += bs[i].done;
    if (done == N)
      break;
    struct timeval tv = {0, 10000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  for (int i = 0; i < N; i++) {
    uint8_t d1[32], d2[32];
    EVP_DigestFinal_ex(bs[i].hs, d1, NULL);
    EVP_DigestFinal_ex(bs[i].hr, d2, NULL);
    if (bs[i].done && bs[i].status == 0 && bs[i].recvd == 1024 && memcmp(d1, d2, 32) == 0)
      ok++;
    EVP_MD_CTX_free(bs[i].hs);
    EVP_MD_CTX_free(bs[i].hr);
    goop_stream_unref(bs[i].s);
  }
  CHECK_INT_EQ(ok, N);
  free(bs);
  /* Every finished stream is gone from both connections (no bookkeeping leak). */
  goop_conn *ca = goop_host_get_conn(A, &idB), *cb = goop_host_get_conn(B, &idA);
  size_t na = 1, nb = 1;
  for (int i = 0; i < 100 && (na || nb); i++) {
    struct timeval tv = {0, 10000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    na = ca ? ca->n_streams : 0;
    nb = cb ? cb->n_streams : 0;
  }
  CHECK(ca && cb);
  CHECK_INT_EQ(na, 0);
  CHECK_INT_EQ(nb, 0);
}

/* ---- slow reader: memory stays bounded ---- */
#define STALL "/goop-test/stall/1.0.0"
static goop_stream *stalled;
static void stall_handler(goop_host *h, goop_stream *s, void *ud) {
  (void)h, (void)ud;
  stalled = s; /* never read */
}
static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &res) != 2)
      res = 0;
    fclose(f);
  }
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}
static volatile int stall_open;
static goop_stream *stall_s;
static void stall_opened(goop_host *h, int status, goop_stream *s, void *ud) {
  (void)h, (void)ud;
  if (status == 0)
    stall_s = s;
  stall_open = 1;
}
static void test_slow_reader_bounded(void) {
  static const char *const protos[] = {STALL};
  goop_host_set_stream_handler(B, STALL, stall_handler, NULL);
  CHECK_INT_EQ(goop_host_new_stream(A, &idB, protos, 1, 5000, stall_opened, NULL), 0);
  CHECK(run_until(&stall_open, 5));
  CHECK(stall_s != NULL);
  long before = rss_kb();
  static uint8_t chunk[65536];
  size_t written = 0, max_pending = 0;
  int eagain = 0;
  for (int round = 0; round < 200; round++) {
    ssize_t w = goop_stream_write(stall_s, chunk, sizeof(chunk));
    if (w > 0)
      written += (size_t)w;
    else if (w == GOOP_EAGAIN)
      eagain++;
    if (goop_stream_pending(stall_s) > max_pending)
      max_pending = goop_stream_pending(stall_s);
    struct timeval tv = {0, 5000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  long after = rss_kb();
  printf("# slow reader: accepted %zu bytes of 13 MiB offered, max pending %zu, rss +%ld KiB\n", written,
         max_pending, after - before);
  CHECK(eagain > 0);
  CHECK(max_pending <= 256 * 1024);
  CHECK(written < 4u << 20); /* window (256 KiB) + buffers, not everything */
  CHECK(after - before < 16 * 1024);
  goop_stream_reset(stall_s);
  stall_s = goop_stream_unref(stall_s);
  if (stalled)
    stalled = goop_stream_unref(stalled);
}

/* ---- simultaneous dial ---- */
static volatile int sim_a, sim_b;
static void on_sim(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h, (void)c;
  *(volatile int *)ud = status == 0 ? 1 : 2;
}
static void test_simultaneous_dial(void) {
  goop_host *C = make_host("/ip4/127.0.0.1/tcp/0");
  goop_host *D = make_host("/ip4/127.0.0.1/tcp/0");
  char ac[300], ad[300];
  full_addr(C, ac, sizeof(ac));
  full_addr(D, ad, sizeof(ad));
  CHECK_INT_EQ(goop_host_connect_addr(C, ad, 5000, on_sim, (void *)&sim_a), 0);
  CHECK_INT_EQ(goop_host_connect_addr(D, ac, 5000, on_sim, (void *)&sim_b), 0);
  for (int i = 0; i < 200 && !(sim_a && sim_b); i++) {
    struct timeval tv = {0, 10000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  CHECK_INT_EQ(sim_a, 1);
  CHECK_INT_EQ(sim_b, 1);
  /* Both agree on one usable connection; a ping works over it. */
  goop_peer_id idc, idd;
  goop_host_peer_id(C, &idc);
  goop_host_peer_id(D, &idd);
  /* Both sides converge on the same connection once each has seen both. */
  goop_conn *cc = NULL, *dc = NULL;
  for (int i = 0; i < 300; i++) {
    cc = goop_host_get_conn(C, &idd);
    dc = goop_host_get_conn(D, &idc);
    if (cc && dc && goop_conn_is_outbound(cc) != goop_conn_is_outbound(dc))
      break;
    struct timeval tv = {0, 10000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  CHECK(cc && dc);
  CHECK(cc && dc && goop_conn_is_outbound(cc) != goop_conn_is_outbound(dc));
  pinged = 0;
  CHECK_INT_EQ(goop_host_ping(C, &idd, 5000, on_ping, NULL), 0);
  CHECK(run_until(&pinged, 5));
  CHECK_INT_EQ(ping_status, 0);
  goop_host_free(C);
  goop_host_free(D);
}

/* ---- the remote disappears mid-transfer; teardown with work in flight ---- */
static volatile int cancel_status = 99, cancel_called;
static void on_cancel_open(goop_host *h, int status, goop_stream *s, void *ud) {
  (void)h, (void)ud;
  cancel_status = status;
  cancel_called++;
  if (s)
    goop_stream_unref(s);
}
static void test_remote_disappears(void) {
  goop_host *C = make_host("/ip4/127.0.0.1/tcp/0");
  goop_host_set_stream_handler(C, ECHO, echo_handler, NULL);
  goop_peer_id idc;
  goop_host_peer_id(C, &idc);
  char ac[300];
  full_addr(C, ac, sizeof(ac));
  connected = 0;
  CHECK_INT_EQ(goop_host_connect_addr(A, ac, 5000, on_connect, NULL), 0);
  CHECK(run_until(&connected, 5));
  static const char *const protos[] = {ECHO};
  struct bulk b = {.total = 256u << 20};
  b.hs = EVP_MD_CTX_new();
  b.hr = EVP_MD_CTX_new();
  EVP_DigestInit_ex(b.hs, EVP_sha256(), NULL);
  EVP_DigestInit_ex(b.hr, EVP_sha256(), NULL);
  CHECK_INT_EQ(goop_host_new_stream(A, &idc, protos, 1, 5000, bulk_opened, &b), 0);
  for (int i = 0; i < 50; i++) { /* ~0.5 s of transfer */
    struct timeval tv = {0, 10000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  CHECK(b.recvd > 0 && !b.done);
  goop_host_free(C); /* the remote vanishes */
  CHECK(run_until(&b.done, 10));
  CHECK(b.status < 0);
  CHECK(goop_host_get_conn(A, &idc) == NULL);
  EVP_MD_CTX_free(b.hs);
  EVP_MD_CTX_free(b.hr);
  goop_stream_unref(b.s);
  /* Free a host with a stream request still pending: the callback hears GOOP_ECANCELED. */
  goop_host *D = make_host(NULL);
  char ab[300];
  full_addr(B, ab, sizeof(ab));
  CHECK_INT_EQ(goop_host_add_addr(D, &idB, ab, 60), 0);
  CHECK_INT_EQ(goop_host_new_stream(D, &idB, protos, 1, 5000, on_cancel_open, NULL), 0);
  goop_host_free(D);
  CHECK_INT_EQ(cancel_called, 1);
  CHECK_INT_EQ(cancel_status, GOOP_ECANCELED);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* as the transport API requires */
  base = event_base_new();
  if (goop_ctx_new(base, &ctx) != 0)
    return 1;
  goop_ctx_set_log_fn(ctx, log_fn, GOOP_LOG_DEBUG, NULL);
  RUN(test_connect_ping_identify);
  RUN(test_bulk_echo);
  RUN(test_lazy_refused);
  RUN(test_dial_failures);
  RUN(test_500_streams);
  RUN(test_slow_reader_bounded);
  RUN(test_simultaneous_dial);
  RUN(test_remote_disappears);
  goop_host_free(A);
  goop_host_free(B);
  goop_ctx_free(ctx);
  event_base_free(base);
  return tap_done();
}
