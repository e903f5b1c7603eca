/*
 * Relay service benchmark (run by hand, never in tests): throughput of a
 * stream A -> B directly and through a libgoop relay R (hop CONNECT by hand,
 * the relay splices the two streams), the relay's CPU time per Gbit relayed,
 * and the relay's memory per open (idle) circuit. The relay runs in a child
 * process so its CPU time and RSS are its own.
 *
 *   relay-bench [--bytes N] [--circuits N] [--buffer BYTES]
 *
 * One line per measurement, "name value unit".
 */
#include <event2/event.h>
#include <goop/goop.h>
#include <goop/relay.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "relay-msg.h"

#define SINK "/goop-bench/sink/1.0.0"

static struct event_base *base;
static goop_ctx *ctx;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static goop_host *make_host(const goop_identity *id, const char *listen) {
  goop_host *h = NULL;
  goop_host_config *cfg = NULL;
  if (goop_host_config_new(&cfg) != 0)
    return NULL;
  (void)goop_host_config_set(cfg, GOOP_HOST_MAX_STREAMS_PER_CONN, 100000);
  int rc = goop_host_new(ctx, id, cfg, &h);
  goop_host_config_free(cfg);
  if (rc)
    return NULL;
  if (listen && goop_host_listen(h, listen) != 0) {
    goop_host_free(h);
    return NULL;
  }
  return h;
}

static void run_until(volatile int *flag, double seconds) {
  double end = now_s() + seconds;
  struct timeval tv = {0, 10000};
  while (!*flag && now_s() < end) {
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
}

/* ---- the relay child ---------------------------------------------------------------- */

static volatile sig_atomic_t child_stop;
static void on_term(int sig) {
  (void)sig;
  child_stop = 1;
}
static void child_tick(evutil_socket_t fd, short w, void *arg) {
  (void)fd, (void)w, (void)arg;
  if (child_stop)
    event_base_loopbreak(base);
}

/* Runs the relay; writes its port to |fd| and serves until SIGTERM. */
static int relay_child(const goop_identity *id, uint32_t buffer, int fd) {
  base = event_base_new();
  if (!base || goop_ctx_new(base, &ctx) != 0)
    return 1;
  goop_host *R = make_host(id, "/ip4/127.0.0.1/tcp/0");
  struct goop_relay_limits lim;
  goop_relay_limits_default(&lim);
  lim.circuit_bytes = 0;
  lim.circuit_duration_s = 0;
  lim.max_circuits = 100000;
  lim.max_circuits_per_peer = 100000;
  if (buffer)
    lim.buffer_size = buffer;
  goop_relay *relay = NULL;
  if (!R || goop_relay_new(R, &lim, &relay) != 0)
    return 1;
  char addr[200];
  goop_host_listen_addr(R, 0, addr, sizeof(addr));
  if (write(fd, addr, strlen(addr) + 1) < 0)
    return 1;
  close(fd);
  signal(SIGTERM, on_term);
  struct event *tick = event_new(base, -1, EV_PERSIST, child_tick, NULL);
  struct timeval tv = {0, 50000};
  event_add(tick, &tv);
  event_base_dispatch(base);
  event_free(tick);
  goop_relay_free(relay);
  goop_host_free(R);
  goop_ctx_free(ctx);
  event_base_free(base);
  return 0;
}

static long child_rss_kb(pid_t pid) {
  char path[64], line[256];
  long kb = -1;
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  while (fgets(line, sizeof(line), f))
    if (strncmp(line, "VmRSS:", 6) == 0)
      kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb;
}

static double child_cpu_s(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  /* fields after ")": state(3) ... utime(14) stime(15) */
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the sink on B -------------------------------------------------------------------- */

struct sink {
  goop_stream *s;
  uint64_t got;
  int done;
  bool ctl; /* a stop stream: answer the STOP CONNECT first */
  goop_buf rx;
};

static struct sink *sink_current;
static uint64_t sink_expect;

static void sink_readable(goop_stream *s, void *ud) {
  struct sink *k = ud;
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = goop_stream_read(s, buf, sizeof(buf));
    if (n == GOOP_EAGAIN)
      return;
    if (n <= 0) {
      k->done = 1;
      return;
    }
    if (k->ctl) {
      goop_buf_append(&k->rx, buf, (size_t)n);
      const uint8_t *body;
      size_t len, used;
      if (goop_relay_frame_take(k->rx.data, k->rx.len, &body, &len, &used) != 0)
        continue;
      k->ctl = false;
      goop_stop_msg ok = {.type = GOOP_STOP_STATUS, .has_status = true, .status = GOOP_RELAY_OK};
      goop_buf out;
      goop_buf_init(&out, 0);
      goop_stop_encode(&ok, &out);
      goop_stream_write(s, out.data, out.len);
      goop_buf_free(&out);
      k->got += k->rx.len - used;
      goop_buf_free(&k->rx);
      continue;
    }
    k->got += (uint64_t)n;
    if (sink_expect && k->got >= sink_expect)
      k->done = 1;
  }
}
static void sink_error(goop_stream *s, int err, void *ud) {
  (void)s, (void)err;
  ((struct sink *)ud)->done = 1;
}
static const struct goop_stream_callbacks sink_cbs = {GOOP_STREAM_CALLBACKS_V1, sink_readable, NULL,
                                                      sink_error};

static struct sink *idle_sinks[100000];
static size_t n_idle;

static void sink_handler(goop_host *h, goop_stream *s, void *ud) {
  (void)h;
  struct sink *k = calloc(1, sizeof(*k));
  k->s = s;
  k->ctl = ud != NULL;
  goop_buf_init(&k->rx, 0);
  if (!sink_current)
    sink_current = k;
  else if (n_idle < sizeof(idle_sinks) / sizeof(idle_sinks[0]))
    idle_sinks[n_idle++] = k;
  goop_stream_set_callbacks(s, &sink_cbs, k);
}

/* ---- the sender on A -------------------------------------------------------------------- */

struct sender {
  goop_stream *s;
  uint64_t total, sent;
  int opened, status, answered;
  bool hop;
  goop_peer_id target;
  goop_buf rx;
};

static void sender_pump(struct sender *x) {
  static uint8_t chunk[65536];
  while (x->sent < x->total) {
    size_t n = x->total - x->sent < sizeof(chunk) ? (size_t)(x->total - x->sent) : sizeof(chunk);
    ssize_t w = goop_stream_write(x->s, chunk, n);
    if (w <= 0)
      return;
    x->sent += (uint64_t)w;
  }
}
static void sender_readable(goop_stream *s, void *ud) {
  struct sender *x = ud;
  uint8_t buf[4096];
  ssize_t n;
  while ((n = goop_stream_read(s, buf, sizeof(buf))) > 0) {
    goop_buf_append(&x->rx, buf, (size_t)n);
    const uint8_t *body;
    size_t len, used;
    goop_hop_msg m;
    if (!x->answered && goop_relay_frame_take(x->rx.data, x->rx.len, &body, &len, &used) == 0 &&
        goop_hop_decode(body, len, &m) == 0) {
      x->answered = 1;
      x->status = (int)m.status;
    }
  }
}
static void sender_writable(goop_stream *s, void *ud) {
  (void)s;
  sender_pump(ud);
}
static void sender_error(goop_stream *s, int err, void *ud) {
  (void)s;
  struct sender *x = ud;
  x->status = err;
  x->answered = 1;
}
static const struct goop_stream_callbacks sender_cbs = {GOOP_STREAM_CALLBACKS_V1, sender_readable,
                                                        sender_writable, sender_error};

static void sender_opened(goop_host *h, int status, goop_stream *s, void *ud) {
  (void)h;
  struct sender *x = ud;
  x->opened = 1;
  if (status) {
    x->status = status;
    x->answered = 1;
    return;
  }
  x->s = s;
  goop_buf_init(&x->rx, 0);
  goop_stream_set_callbacks(s, &sender_cbs, x);
  if (x->hop) {
    goop_hop_msg m = {.type = GOOP_HOP_CONNECT};
    m.peer.present = true;
    m.peer.id = (goop_relay_bytes){x->target.bytes, x->target.len};
    goop_buf out;
    goop_buf_init(&out, 0);
    goop_hop_encode(&m, &out);
    goop_stream_write(s, out.data, out.len);
    goop_buf_free(&out);
  } else {
    x->answered = 1;
  }
  sender_pump(x);
}

int main(int argc, char **argv) {
  uint64_t bytes = 256u << 20;
  int n_circuits = 200;
  uint32_t buffer = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc)
      bytes = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--circuits") == 0 && i + 1 < argc)
      n_circuits = atoi(argv[++i]);
    else if (strcmp(argv[i], "--buffer") == 0 && i + 1 < argc)
      buffer = (uint32_t)strtoul(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: relay-bench [--bytes N] [--circuits N] [--buffer BYTES]\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  goop_identity *rid = NULL, *aid = NULL, *bid = NULL;
  if (goop_identity_generate(&rid) || goop_identity_generate(&aid) || goop_identity_generate(&bid))
    return 1;
  int pfd[2];
  if (pipe(pfd) != 0)
    return 1;
  pid_t pid = fork();
  if (pid == 0) {
    close(pfd[0]);
    _exit(relay_child(rid, buffer, pfd[1]));
  }
  close(pfd[1]);
  char raddr[200] = "";
  ssize_t rn = read(pfd[0], raddr, sizeof(raddr) - 1);
  close(pfd[0]);
  if (rn <= 0) {
    fprintf(stderr, "relay child failed\n");
    return 1;
  }

  base = event_base_new();
  if (!base || goop_ctx_new(base, &ctx) != 0)
    return 1;
  goop_host *A = make_host(aid, NULL), *B = make_host(bid, "/ip4/127.0.0.1/tcp/0");
  if (!A || !B)
    return 1;
  goop_peer_id idR, idB;
  goop_identity_peer_id(rid, &idR);
  goop_identity_peer_id(bid, &idB);
  char baddr[200];
  goop_host_listen_addr(B, 0, baddr, sizeof(baddr));
  goop_host_add_addr(A, &idR, raddr, 0);
  goop_host_add_addr(A, &idB, baddr, 0);
  goop_host_add_addr(B, &idR, raddr, 0);
  goop_host_set_stream_handler(B, SINK, sink_handler, NULL);
  goop_host_set_stream_handler(B, GOOP_PROTO_RELAY_STOP, sink_handler, (void *)1);

  /* B reserves on R. */
  static const char *const hop[] = {GOOP_PROTO_RELAY_HOP};
  struct sender rsv = {.hop = false};
  goop_host_new_stream(B, &idR, hop, 1, 10000, sender_opened, &rsv);
  run_until(&rsv.opened, 10);
  if (rsv.s) {
    goop_hop_msg m = {.type = GOOP_HOP_RESERVE};
    goop_buf out;
    goop_buf_init(&out, 0);
    goop_hop_encode(&m, &out);
    goop_stream_write(rsv.s, out.data, out.len);
    goop_buf_free(&out);
    rsv.answered = 0;
    run_until(&rsv.answered, 10);
  }
  if (rsv.status != GOOP_RELAY_OK) {
    fprintf(stderr, "reservation failed (%d)\n", rsv.status);
    kill(pid, SIGTERM);
    return 1;
  }

  /* Direct. */
  static const char *const sink[] = {SINK};
  sink_expect = bytes;
  struct sender d = {.total = bytes};
  double t0 = now_s();
  goop_host_new_stream(A, &idB, sink, 1, 10000, sender_opened, &d);
  run_until(&d.opened, 10);
  while (sink_current == NULL || !sink_current->done) {
    struct timeval tv = {0, 10000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    if (now_s() - t0 > 300)
      break;
  }
  double direct = now_s() - t0;
  printf("direct_throughput %.1f MiB/s\n", (double)bytes / direct / (1 << 20));
  goop_stream_unref(d.s);
  sink_current = NULL;

  /* Through the relay. */
  struct sender r = {.total = bytes, .hop = true, .target = idB};
  double cpu0 = child_cpu_s(pid);
  t0 = now_s();
  goop_host_new_stream(A, &idR, hop, 1, 10000, sender_opened, &r);
  while (sink_current == NULL || !sink_current->done) {
    struct timeval tv = {0, 10000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    if (now_s() - t0 > 300)
      break;
  }
  double relayed = now_s() - t0;
  double cpu = child_cpu_s(pid) - cpu0;
  printf("relayed_throughput %.1f MiB/s\n", (double)bytes / relayed / (1 << 20));
  printf("relayed_vs_direct %.0f %%\n", 100.0 * direct / relayed);
  printf("relay_cpu_per_gbit %.3f s\n", cpu / ((double)bytes * 8 / 1e9));
  goop_stream_unref(r.s);
  sink_current = NULL;

  /* Idle circuits: the relay's memory per circuit. */
  sink_expect = 0;
  struct timeval settle = {0, 300000};
  event_base_loopexit(base, &settle);
  event_base_dispatch(base);
  long rss0 = child_rss_kb(pid);
  struct sender *idle = calloc((size_t)n_circuits, sizeof(*idle));
  for (int i = 0; i < n_circuits; i++) {
    idle[i] = (struct sender){.hop = true, .target = idB};
    goop_host_new_stream(A, &idR, hop, 1, 30000, sender_opened, &idle[i]);
  }
  t0 = now_s();
  int answered = 0;
  while (answered < n_circuits && now_s() - t0 < 60) {
    struct timeval tv = {0, 10000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    answered = 0;
    for (int i = 0; i < n_circuits; i++)
      answered += idle[i].answered;
  }
  event_base_loopexit(base, &settle);
  event_base_dispatch(base);
  long rss1 = child_rss_kb(pid);
  int ok = 0;
  for (int i = 0; i < n_circuits; i++)
    ok += idle[i].status == GOOP_RELAY_OK;
  printf("idle_circuits %d\n", ok);
  if (ok)
    printf("relay_memory_per_circuit %.1f KiB\n", (double)(rss1 - rss0) / ok);

  kill(pid, SIGTERM);
  int st;
  waitpid(pid, &st, 0);
  for (int i = 0; i < n_circuits; i++)
    goop_stream_unref(idle[i].s);
  free(idle);
  goop_host_free(A);
  goop_host_free(B);
  goop_ctx_free(ctx);
  event_base_free(base);
  goop_identity_free(rid);
  goop_identity_free(aid);
  goop_identity_free(bid);
  return 0;
}
