/*
 * Transport benchmark driver (not a test). Two processes on loopback:
 *
 *   goop-bench serve                      serve the test protocols, print {"addr": ...}
 *   goop-bench sink ADDR BYTES [REPEAT]   single-stream throughput to a sink server
 *                                         (the server hashes what it gets, as js's does)
 *   goop-bench discard ADDR BYTES [REPEAT] the same without hashing: transport only
 *   goop-bench connrate ADDR N            N sequential connections (TCP + Noise + yamux +
 *                                         identify), each closed before the next
 *
 * Relayed modes (bench/relay.sh; ADDR above may also be a /p2p-circuit address):
 *   goop-bench serve-relayed RELAY-ADDR   serve as above and hold a reservation on the relay at
 *                                         RELAY-ADDR (".../p2p/<relay>"); print {"addr", "circuit"}
 *                                         once the slot is granted
 *   goop-bench circuits ADDR N            N client hosts (N identities) connect to ADDR at once;
 *                                         print {"circuits", "ms"} when all are up, then hold them
 *                                         until SIGTERM/SIGINT
 *
 * Output: one JSON object per measurement on stdout. See bench/transport.sh.
 */
#include <event2/event.h>
#include <goop/goop.h>
#include <goop/relay.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testproto.h"

static struct event_base *base;
static goop_ctx *ctx;
static goop_host *host;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int setup(bool listen) {
  base = event_base_new();
  goop_identity *id;
  if (!base || goop_ctx_new(base, &ctx) || goop_identity_generate(&id))
    return -1;
  int rc = goop_host_new(ctx, id, NULL, &host);
  goop_identity_free(id);
  if (rc)
    return -1;
  if (listen && goop_host_listen(host, "/ip4/127.0.0.1/tcp/0"))
    return -1;
  return 0;
}

static void on_sig(evutil_socket_t s, short w, void *a) {
  (void)s, (void)w, (void)a;
  event_base_loopbreak(base);
}

/* ---- discard: read everything, answer the 8-byte count ---- */
#define DISCARD "/goop-bench/discard/1.0.0"

struct discard {
  uint64_t n;
};

static void discard_readable(goop_stream *s, void *ud) {
  struct discard *d = ud;
  static uint8_t buf[1 << 16];
  for (;;) {
    ssize_t r = goop_stream_read(s, buf, sizeof(buf));
    if (r == GOOP_EAGAIN)
      return;
    if (r == 0) {
      uint8_t cnt[8];
      for (int i = 0; i < 8; i++)
        cnt[i] = (uint8_t)(d->n >> (56 - 8 * i));
      (void)goop_stream_write(s, cnt, 8);
      (void)goop_stream_close_write(s);
    }
    if (r <= 0) {
      goop_stream_set_callbacks(s, NULL, NULL);
      goop_stream_unref(s);
      free(d);
      return;
    }
    d->n += (uint64_t)r;
  }
}

static void discard_error(goop_stream *s, int err, void *ud) {
  (void)err;
  goop_stream_set_callbacks(s, NULL, NULL);
  goop_stream_unref(s);
  free(ud);
}

static const struct goop_stream_callbacks discard_cbs = {GOOP_STREAM_CALLBACKS_V1, discard_readable, NULL,
                                                         discard_error};

static void discard_handler(goop_host *h, goop_stream *s, void *ud) {
  (void)h, (void)ud;
  goop_stream_set_callbacks(s, &discard_cbs, calloc(1, sizeof(struct discard)));
}

struct dclient {
  goop_stream *s;
  uint64_t total, sent, answer;
  int got, done, status;
};

static void dclient_io(goop_stream *s, void *ud) {
  struct dclient *c = ud;
  static uint8_t buf[1 << 16];
  while (c->sent < c->total) {
    size_t n = c->total - c->sent < sizeof(buf) ? (size_t)(c->total - c->sent) : sizeof(buf);
    ssize_t w = goop_stream_write(s, buf, n);
    if (w == GOOP_EAGAIN)
      break;
    if (w < 0) {
      c->status = (int)w, c->done = 1;
      return;
    }
    c->sent += (uint64_t)w;
    if (c->sent == c->total)
      (void)goop_stream_close_write(s);
  }
  for (;;) {
    uint8_t b[8];
    ssize_t r = goop_stream_read(s, b, sizeof(b) - (size_t)c->got);
    if (r == GOOP_EAGAIN)
      return;
    if (r <= 0) {
      c->status = r < 0 ? (int)r : 0;
      c->done = 1;
      return;
    }
    for (ssize_t i = 0; i < r; i++)
      c->answer = c->answer << 8 | b[i];
    c->got += (int)r;
  }
}

static void dclient_err(goop_stream *s, int err, void *ud) {
  (void)s;
  struct dclient *c = ud;
  c->status = err;
  c->done = 1;
}

static const struct goop_stream_callbacks dclient_cbs = {GOOP_STREAM_CALLBACKS_V1, dclient_io, dclient_io,
                                                         dclient_err};

static void dclient_opened(goop_host *h, int st, goop_stream *s, void *ud) {
  (void)h;
  struct dclient *c = ud;
  if (st) {
    c->status = st, c->done = 1;
    return;
  }
  c->s = s;
  goop_stream_set_callbacks(s, &dclient_cbs, c);
  dclient_io(s, c);
}

static int cmd_serve(void) {
  if (setup(true) || goop_test_serve_all(host, base) ||
      goop_host_set_stream_handler(host, DISCARD, discard_handler, NULL))
    return 1;
  char a[200], id[GOOP_PEER_ID_STR_MAX];
  goop_peer_id pid;
  goop_host_listen_addr(host, 0, a, sizeof(a));
  goop_host_peer_id(host, &pid);
  goop_peer_id_to_string(&pid, id, sizeof(id));
  printf("{\"addr\": \"%s/p2p/%s\"}\n", a, id);
  fflush(stdout);
  struct event *s1 = evsignal_new(base, SIGTERM, on_sig, NULL),
               *s2 = evsignal_new(base, SIGINT, on_sig, NULL);
  event_add(s1, NULL);
  event_add(s2, NULL);
  event_base_dispatch(base);
  event_free(s1);
  event_free(s2);
  return 0;
}

static volatile int flag;
static int status;
static goop_conn *last_conn;

static void on_connected(goop_host *h, int st, goop_conn *c, void *ud) {
  (void)h, (void)ud;
  status = st;
  if (st) {
    flag = 1;
    return;
  }
  last_conn = c;
}

static void on_identified(goop_host *h, goop_conn *c, void *ud) {
  (void)h, (void)ud;
  if (c == last_conn)
    flag = 1;
}

static bool run_until_flag(double timeout) {
  double t0 = now_s();
  while (!flag && now_s() - t0 < timeout)
    event_base_loop(base, EVLOOP_ONCE);
  return flag;
}

static int connect_first(const char *addr, goop_peer_id *peer) {
  flag = 0;
  status = 0;
  last_conn = NULL;
  if (goop_host_connect_addr(host, addr, 10000, on_connected, NULL) || !run_until_flag(15) || status) {
    fprintf(stderr, "connect failed: %s\n", goop_strerror(status));
    return -1;
  }
  goop_conn_remote_peer(last_conn, peer);
  return 0;
}

static int cmd_sink(const char *addr, uint64_t bytes, int repeat) {
  if (setup(false))
    return 1;
  struct goop_host_events ev = {.version = GOOP_HOST_EVENTS_V1, .on_identified = on_identified};
  goop_host_set_events(host, &ev, NULL);
  goop_peer_id peer;
  if (connect_first(addr, &peer))
    return 1;
  for (int r = 0; r < repeat; r++) {
    goop_test_client *c;
    if (goop_test_client_start(host, &peer, GOOP_TEST_SINK, bytes, 10000, &c))
      return 1;
    double t0 = now_s();
    while (!goop_test_client_result(c)->done)
      event_base_loop(base, EVLOOP_ONCE);
    double dt = now_s() - t0;
    const struct goop_test_result *res = goop_test_client_result(c);
    if (res->status) {
      fprintf(stderr, "sink failed: %s\n", res->error);
      return 1;
    }
    printf("{\"bench\": \"sink\", \"impl\": \"c\", \"bytes\": %llu, \"ms\": %.1f, \"mib_s\": %.1f}\n",
           (unsigned long long)bytes, dt * 1000, (double)bytes / 1048576.0 / dt);
    fflush(stdout);
    goop_test_client_free(c);
  }
  return 0;
}

static int cmd_discard(const char *addr, uint64_t bytes, int repeat) {
  if (setup(false))
    return 1;
  struct goop_host_events ev = {.version = GOOP_HOST_EVENTS_V1, .on_identified = on_identified};
  goop_host_set_events(host, &ev, NULL);
  goop_peer_id peer;
  if (connect_first(addr, &peer))
    return 1;
  static const char *const protos[] = {DISCARD};
  for (int r = 0; r < repeat; r++) {
    struct dclient c = {.total = bytes};
    double t0 = now_s();
    if (goop_host_new_stream(host, &peer, protos, 1, 10000, dclient_opened, &c))
      return 1;
    while (!c.done)
      event_base_loop(base, EVLOOP_ONCE);
    double dt = now_s() - t0;
    if (c.status || c.answer != bytes) {
      fprintf(stderr, "discard failed: %s (server counted %llu)\n", goop_strerror(c.status),
              (unsigned long long)c.answer);
      return 1;
    }
    goop_stream_unref(c.s);
    printf("{\"bench\": \"discard\", \"impl\": \"c\", \"bytes\": %llu, \"ms\": %.1f, \"mib_s\": %.1f}\n",
           (unsigned long long)bytes, dt * 1000, (double)bytes / 1048576.0 / dt);
    fflush(stdout);
  }
  return 0;
}

static int cmd_connrate(const char *addr, int n) {
  if (setup(false))
    return 1;
  struct goop_host_events ev = {.version = GOOP_HOST_EVENTS_V1, .on_identified = on_identified};
  goop_host_set_events(host, &ev, NULL);
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    goop_peer_id peer;
    if (connect_first(addr, &peer))
      return 1;
    if (!flag && !run_until_flag(10)) {
      fprintf(stderr, "identify did not finish\n");
      return 1;
    }
    goop_conn_close(last_conn);
    /* let the close go out */
    event_base_loop(base, EVLOOP_NONBLOCK);
  }
  double dt = now_s() - t0;
  printf("{\"bench\": \"connrate\", \"impl\": \"c\", \"conns\": %d, \"ms\": %.1f, \"conns_s\": %.1f}\n", n,
         dt * 1000, n / dt);
  return 0;
}

/* ---- relayed modes (bench/relay.sh) ------------------------------------------------------- */

static void on_reserved(goop_host *h, goop_reservation *r, int st, void *ud) {
  (void)h, (void)r, (void)ud;
  if (st)
    fprintf(stderr, "goop-bench: reservation failed: %s (retrying)\n", goop_strerror(st));
  else
    flag = 1;
}

static int cmd_serve_relayed(const char *relay_addr) {
  const char *p = strstr(relay_addr, "/p2p/");
  goop_peer_id relay;
  if (!p || goop_peer_id_from_string(p + 5, &relay) != 0) {
    fprintf(stderr, "goop-bench: %s does not end with /p2p/<relay id>\n", relay_addr);
    return 1;
  }
  base = event_base_new();
  goop_identity *id;
  goop_host_config *cfg = NULL;
  if (!base || goop_ctx_new(base, &ctx) || goop_identity_generate(&id) || goop_host_config_new(&cfg))
    return 1;
  /* many relayed connections arrive at once in "circuits" runs */
  (void)goop_host_config_set(cfg, GOOP_HOST_MAX_CONNS, 100000);
  (void)goop_host_config_set(cfg, GOOP_HOST_MAX_PENDING_HANDSHAKES, 100000);
  (void)goop_host_config_set(cfg, GOOP_HOST_IDLE_TIMEOUT_MS, 0);
  int rc = goop_host_new(ctx, id, cfg, &host);
  goop_identity_free(id);
  goop_host_config_free(cfg);
  if (rc || goop_host_listen(host, "/ip4/127.0.0.1/tcp/0") || goop_test_serve_all(host, base) ||
      goop_host_set_stream_handler(host, DISCARD, discard_handler, NULL))
    return 1;
  goop_reservation *rsv = NULL;
  const char *addrs[] = {relay_addr};
  flag = 0;
  if (goop_host_reserve(host, &relay, addrs, 1, on_reserved, NULL, &rsv) || !run_until_flag(30)) {
    fprintf(stderr, "goop-bench: no reservation on %s\n", relay_addr);
    goop_reservation_free(rsv);
    return 1;
  }
  char a[200], me[GOOP_PEER_ID_STR_MAX];
  goop_peer_id pid;
  goop_host_listen_addr(host, 0, a, sizeof(a));
  goop_host_peer_id(host, &pid);
  goop_peer_id_to_string(&pid, me, sizeof(me));
  printf("{\"addr\": \"%s/p2p/%s\", \"circuit\": \"%s/p2p-circuit/p2p/%s\"}\n", a, me, relay_addr, me);
  fflush(stdout);
  struct event *s1 = evsignal_new(base, SIGTERM, on_sig, NULL),
               *s2 = evsignal_new(base, SIGINT, on_sig, NULL);
  event_add(s1, NULL);
  event_add(s2, NULL);
  event_base_dispatch(base);
  event_free(s1);
  event_free(s2);
  goop_reservation_free(rsv);
  return 0;
}

#define CIRCUITS_IN_FLIGHT 16

struct holder {
  goop_host *h;
  int state; /* 0 dialling, 1 up, -1 failed */
};

static void holder_connected(goop_host *h, int st, goop_conn *c, void *ud) {
  (void)h, (void)c;
  struct holder *k = ud;
  k->state = st ? -1 : 1;
  if (st)
    fprintf(stderr, "goop-bench: circuit failed: %s\n", goop_strerror(st));
}

static int cmd_circuits(const char *addr, int n) {
  if (n <= 0 || setup(false))
    return 1;
  struct holder *k = calloc((size_t)n, sizeof(*k));
  if (!k)
    return 1;
  goop_host_config *cfg = NULL;
  if (goop_host_config_new(&cfg)) {
    free(k);
    return 1;
  }
  (void)goop_host_config_set(cfg, GOOP_HOST_IDLE_TIMEOUT_MS, 0);
  /* at most CIRCUITS_IN_FLIGHT dials at once: the relay and the target count handshakes in progress */
  double t0 = now_s();
  int rc = 0, started = 0, up = 0, failed = 0;
  while (!rc && up + failed < n && now_s() - t0 < 300) {
    while (!rc && started < n && started - up - failed < CIRCUITS_IN_FLIGHT) {
      goop_identity *id = NULL;
      struct holder *h = &k[started++];
      if (goop_identity_generate(&id) || goop_host_new(ctx, id, cfg, &h->h) ||
          goop_host_connect_addr(h->h, addr, 30000, holder_connected, h))
        rc = 1;
      goop_identity_free(id);
    }
    event_base_loop(base, EVLOOP_ONCE);
    up = failed = 0;
    for (int i = 0; i < started; i++)
      up += k[i].state == 1, failed += k[i].state == -1;
  }
  goop_host_config_free(cfg);
  printf("{\"bench\": \"circuits\", \"circuits\": %d, \"failed\": %d, \"ms\": %.1f}\n", up, n - up,
         (now_s() - t0) * 1000);
  fflush(stdout);
  if (!rc && up == n) {
    struct event *s1 = evsignal_new(base, SIGTERM, on_sig, NULL),
                 *s2 = evsignal_new(base, SIGINT, on_sig, NULL);
    event_add(s1, NULL);
    event_add(s2, NULL);
    event_base_dispatch(base);
    event_free(s1);
    event_free(s2);
  } else {
    rc = 1;
  }
  for (int i = 0; i < n; i++)
    goop_host_free(k[i].h);
  free(k);
  return rc;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  int rc = 2;
  if (argc >= 2 && strcmp(argv[1], "serve") == 0)
    rc = cmd_serve();
  else if (argc >= 4 && strcmp(argv[1], "sink") == 0)
    rc = cmd_sink(argv[2], strtoull(argv[3], NULL, 10), argc >= 5 ? atoi(argv[4]) : 1);
  else if (argc >= 4 && strcmp(argv[1], "discard") == 0)
    rc = cmd_discard(argv[2], strtoull(argv[3], NULL, 10), argc >= 5 ? atoi(argv[4]) : 1);
  else if (argc >= 4 && strcmp(argv[1], "connrate") == 0)
    rc = cmd_connrate(argv[2], atoi(argv[3]));
  else if (argc >= 3 && strcmp(argv[1], "serve-relayed") == 0)
    rc = cmd_serve_relayed(argv[2]);
  else if (argc >= 4 && strcmp(argv[1], "circuits") == 0)
    rc = cmd_circuits(argv[2], atoi(argv[3]));
  else
    fprintf(stderr, "usage: goop-bench serve | sink|discard ADDR BYTES [REPEAT] | connrate ADDR N\n"
                    "       goop-bench serve-relayed RELAY-ADDR | circuits ADDR N\n");
  goop_host_free(host);
  goop_ctx_free(ctx);
  if (base)
    event_base_free(base);
  return rc;
}
