/*
 * Rendezvous load generator (not a test; driven by bench/rendezvous-load.sh).
 *
 *   rdv-load sub PORT N SRC_NET PER_SRC OUT   hold N GET /events subscribers to
 *        127.0.0.1:PORT, bound to source addresses SRC_NET.x.y (PER_SRC streams
 *        each; SRC_NET like "127.10"), print "ready OK FAILED" once every
 *        connection is up or refused, and on SIGTERM/SIGINT write the latency
 *        histogram and counters to OUT.
 *   rdv-load pub PORT RATE SECONDS SRC_NET   POST /publish RATE times a second
 *        for SECONDS over keep-alive connections; every message carries its
 *        send time ("t=<unix us> s=<seq>" in content). Prints "published N
 *        failed F late L" (late: no idle connection at the tick).
 *   rdv-load merge OUT...                   sum the histograms, print p50/p99/
 *        max fan-out latency and the message counts as one JSON line.
 *
 * Fan-out latency = receive time - send time (one machine, CLOCK_REALTIME).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUCKET_US 100                      /* histogram resolution */
#define BUCKETS (60 * 1000000 / BUCKET_US) /* up to 60 s; the last bucket holds the rest */
#define LINE_MAX_BYTES 512
#define CONNECT_WINDOW 512 /* connection attempts in flight */

static struct event_base *base;
static uint64_t *hist;
static uint64_t n_msgs, n_other, n_closed;

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* Source address |idx| of SRC_NET ("127.10" -> 127.10.x.y, x and y from 1). */
static int src_addr(const char *net, size_t idx, struct sockaddr_in *out) {
  char ip[32];
  snprintf(ip, sizeof(ip), "%s.%zu.%zu", net, 1 + idx / 250, 1 + idx % 250);
  memset(out, 0, sizeof(*out));
  out->sin_family = AF_INET;
  return inet_pton(AF_INET, ip, &out->sin_addr) == 1 ? 0 : -1;
}

static int dial(int port, const struct sockaddr_in *src) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (src && bind(fd, (const struct sockaddr *)src, sizeof(*src)) != 0) {
    close(fd);
    return -1;
  }
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

/* ---- subscribers ---- */

enum { S_CONNECTING, S_HEAD, S_SIZE, S_DATA, S_CRLF, S_DONE };

struct sub {
  int fd;
  struct event *ev;
  uint8_t state;
  uint8_t head_match; /* bytes of "\r\n\r\n" matched */
  bool status_ok, line_over;
  uint32_t chunk_left;
  uint16_t line_len;
  char line[LINE_MAX_BYTES];
};

static struct sub *subs;
static size_t n_subs, next_dial, in_flight, n_ok, n_failed;
static int g_port;
static const char *g_net;
static size_t g_per_src;
static bool ready_printed;

static void sub_line(struct sub *s, uint64_t t_now) {
  static const char key[] = "\"content\":\"t=";
  if (s->line_over || s->line_len < 6 || memcmp(s->line, "data: ", 6) != 0) {
    n_other++;
    return;
  }
  s->line[s->line_len] = '\0';
  const char *p = strstr(s->line, key);
  if (!p) {
    n_other++;
    return;
  }
  uint64_t sent = strtoull(p + sizeof(key) - 1, NULL, 10);
  uint64_t lat = t_now > sent ? t_now - sent : 0;
  uint64_t b = lat / BUCKET_US;
  hist[b < BUCKETS ? b : BUCKETS]++;
  n_msgs++;
}

static void sub_body(struct sub *s, const char *p, size_t n, uint64_t t_now) {
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (c == '\n') {
      if (s->line_len > 0)
        sub_line(s, t_now);
      s->line_len = 0;
      s->line_over = false;
    } else if (s->line_len < LINE_MAX_BYTES - 1) {
      s->line[s->line_len++] = c;
    } else {
      s->line_over = true;
    }
  }
}

static void dial_more(void);

static void sub_resolved(bool ok) {
  in_flight--;
  if (ok)
    n_ok++;
  else
    n_failed++;
  dial_more();
  if (!ready_printed && n_ok + n_failed == n_subs) {
    ready_printed = true;
    printf("ready %zu %zu\n", n_ok, n_failed);
    fflush(stdout);
  }
}

static void sub_close(struct sub *s) {
  bool was_connecting = s->state == S_CONNECTING || s->state == S_HEAD;
  event_free(s->ev);
  s->ev = NULL;
  close(s->fd);
  s->fd = -1;
  s->state = S_DONE;
  if (was_connecting)
    sub_resolved(false);
  else
    n_closed++;
}

static void on_sub(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  struct sub *s = arg;
  char buf[16384];
  if (s->state == S_CONNECTING) {
    int err = 0;
    socklen_t el = sizeof(err);
    static const char rq[] = "GET /events HTTP/1.1\r\nHost: rdv\r\nAccept: text/event-stream\r\n\r\n";
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0 ||
        send(fd, rq, sizeof(rq) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(rq) - 1)) {
      sub_close(s);
      return;
    }
    s->state = S_HEAD;
    event_del(s->ev);
    event_assign(s->ev, base, fd, EV_READ | EV_PERSIST, on_sub, s);
    event_add(s->ev, NULL);
    return;
  }
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      sub_close(s);
      return;
    }
    if (n < 0)
      return;
    uint64_t t_now = now_us();
    size_t i = 0, len = (size_t)n;
    while (i < len) {
      switch (s->state) {
      case S_HEAD: {
        if (!s->status_ok && s->head_match == 0 && i == 0 && len >= 12 &&
            memcmp(buf, "HTTP/1.1 200", 12) == 0)
          s->status_ok = true;
        static const char end[] = "\r\n\r\n";
        for (; i < len && s->head_match < 4; i++)
          s->head_match =
              buf[i] == end[s->head_match] ? (uint8_t)(s->head_match + 1) : (buf[i] == '\r' ? 1 : 0);
        if (s->head_match == 4) {
          if (!s->status_ok) {
            sub_close(s);
            return;
          }
          s->state = S_SIZE;
          s->chunk_left = 0;
          sub_resolved(true);
        }
        break;
      }
      case S_SIZE: {
        char c = buf[i++];
        if (c == '\n') {
          s->state = s->chunk_left ? S_DATA : S_CRLF;
        } else if (c >= '0' && c <= '9') {
          s->chunk_left = s->chunk_left * 16 + (uint32_t)(c - '0');
        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
          s->chunk_left = s->chunk_left * 16 + (uint32_t)((c | 0x20) - 'a' + 10);
        }
        break;
      }
      case S_DATA: {
        size_t k = len - i < s->chunk_left ? len - i : s->chunk_left;
        sub_body(s, buf + i, k, t_now);
        i += k;
        s->chunk_left -= (uint32_t)k;
        if (!s->chunk_left)
          s->state = S_CRLF;
        break;
      }
      case S_CRLF:
        if (buf[i++] == '\n') {
          s->state = S_SIZE;
          s->chunk_left = 0;
        }
        break;
      default:
        return;
      }
    }
  }
}

static void dial_more(void) {
  while (in_flight < CONNECT_WINDOW && next_dial < n_subs) {
    size_t i = next_dial++;
    struct sub *s = &subs[i];
    struct sockaddr_in src;
    in_flight++;
    if (src_addr(g_net, i / g_per_src, &src) != 0 || (s->fd = dial(g_port, &src)) < 0) {
      s->state = S_DONE;
      sub_resolved(false);
      continue;
    }
    s->state = S_CONNECTING;
    s->ev = event_new(base, s->fd, EV_WRITE, on_sub, s);
    event_add(s->ev, NULL);
  }
}

static const char *out_path;

static void write_out(void) {
  FILE *f = fopen(out_path, "w");
  if (!f) {
    perror(out_path);
    return;
  }
  fprintf(f, "subs %zu ok %zu failed %zu closed %" PRIu64 " msgs %" PRIu64 " other %" PRIu64 "\n", n_subs,
          n_ok, n_failed, n_closed, n_msgs, n_other);
  for (size_t b = 0; b <= BUCKETS; b++)
    if (hist[b])
      fprintf(f, "%zu %" PRIu64 "\n", b, hist[b]);
  fclose(f);
}

static void on_stop(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  (void)arg;
  event_base_loopbreak(base);
}

static int run_sub(int argc, char **argv) {
  if (argc < 7)
    return 2;
  g_port = atoi(argv[2]);
  n_subs = strtoul(argv[3], NULL, 10);
  g_net = argv[4];
  g_per_src = strtoul(argv[5], NULL, 10);
  out_path = argv[6];
  if (!g_per_src)
    g_per_src = 1000;
  subs = calloc(n_subs ? n_subs : 1, sizeof(*subs));
  hist = calloc(BUCKETS + 1, sizeof(*hist));
  if (!subs || !hist)
    return 1;
  struct event *term = evsignal_new(base, SIGTERM, on_stop, NULL);
  struct event *intr = evsignal_new(base, SIGINT, on_stop, NULL);
  event_add(term, NULL);
  event_add(intr, NULL);
  dial_more();
  if (n_subs == 0) {
    printf("ready 0 0\n");
    fflush(stdout);
  }
  event_base_dispatch(base);
  write_out();
  for (size_t i = 0; i < n_subs; i++)
    if (subs[i].ev) {
      event_free(subs[i].ev);
      close(subs[i].fd);
    }
  event_free(term);
  event_free(intr);
  free(subs);
  free(hist);
  return 0;
}

/* ---- publisher ---- */

#define PUB_CONNS 32

struct pconn {
  int fd;
  struct event *ev;
  bool busy;
  size_t got;
  char resp[2048];
};

static struct pconn pconns[PUB_CONNS];
static uint64_t p_sent, p_ok, p_failed, p_late, p_total;
static struct sockaddr_in p_src[PUB_CONNS];

static void on_pconn(evutil_socket_t fd, short what, void *arg);

static int pconn_open(size_t i) {
  struct pconn *c = &pconns[i];
  c->fd = dial(g_port, &p_src[i]);
  if (c->fd < 0)
    return -1;
  c->ev = event_new(base, c->fd, EV_READ | EV_PERSIST, on_pconn, c);
  event_add(c->ev, NULL);
  c->busy = false;
  c->got = 0;
  return 0;
}

static void pconn_reset(struct pconn *c) {
  size_t i = (size_t)(c - pconns);
  event_free(c->ev);
  close(c->fd);
  if (pconn_open(i) != 0)
    c->fd = -1;
}

/* A response is complete when its head is in and the Content-Length body (if any) too. */
static void on_pconn(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  struct pconn *c = arg;
  ssize_t n = recv(fd, c->resp + c->got, sizeof(c->resp) - 1 - c->got, 0);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (c->busy)
      p_failed++;
    pconn_reset(c);
    return;
  }
  c->got += (size_t)n;
  c->resp[c->got] = '\0';
  char *end = strstr(c->resp, "\r\n\r\n");
  if (!end)
    return;
  size_t body = 0;
  char *cl = strcasestr(c->resp, "\r\ncontent-length:");
  if (cl && cl < end)
    body = strtoul(cl + 17, NULL, 10);
  if ((size_t)(end + 4 - c->resp) + body > c->got)
    return;
  if (strncmp(c->resp, "HTTP/1.1 204", 12) == 0)
    p_ok++;
  else
    p_failed++;
  c->busy = false;
  c->got = 0;
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;
  if (p_sent >= p_total) {
    event_base_loopexit(base, &(struct timeval){2, 0});
    return;
  }
  struct pconn *c = NULL;
  for (size_t k = 0; k < PUB_CONNS; k++) {
    struct pconn *x = &pconns[(p_sent + k) % PUB_CONNS];
    if (x->fd >= 0 && !x->busy) {
      c = x;
      break;
    }
  }
  uint64_t seq = p_sent++;
  if (!c) {
    p_late++;
    return;
  }
  char body[256], rq[512];
  int bl = snprintf(body, sizeof(body),
                    "{\"type\":\"update\",\"peerId\":\"12D3KooWBenchPublisher%02u\",\"content\":\"t=%" PRIu64
                    " s=%" PRIu64 "\"}",
                    (unsigned)(seq % 16), now_us(), seq);
  int rl = snprintf(rq, sizeof(rq),
                    "POST /publish HTTP/1.1\r\nHost: rdv\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n%s",
                    bl, body);
  if (send(c->fd, rq, (size_t)rl, MSG_NOSIGNAL) != rl) {
    p_failed++;
    pconn_reset(c);
    return;
  }
  c->busy = true;
}

static int run_pub(int argc, char **argv) {
  if (argc < 6)
    return 2;
  g_port = atoi(argv[2]);
  double rate = atof(argv[3]);
  double secs = atof(argv[4]);
  g_net = argv[5];
  if (rate <= 0 || secs <= 0)
    return 2;
  p_total = (uint64_t)(rate * secs);
  for (size_t i = 0; i < PUB_CONNS; i++) {
    src_addr(g_net, i, &p_src[i]);
    if (pconn_open(i) != 0) {
      fprintf(stderr, "rdv-load: cannot connect to port %d\n", g_port);
      return 1;
    }
  }
  uint64_t period = (uint64_t)(1000000.0 / rate);
  struct timeval tv = {.tv_sec = (long)(period / 1000000u), .tv_usec = (long)(period % 1000000u)};
  struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
  event_add(tick, &tv);
  event_base_dispatch(base);
  event_free(tick);
  for (size_t i = 0; i < PUB_CONNS; i++)
    if (pconns[i].fd >= 0) {
      event_free(pconns[i].ev);
      close(pconns[i].fd);
    }
  printf("published %" PRIu64 " ok %" PRIu64 " failed %" PRIu64 " late %" PRIu64 "\n", p_sent, p_ok, p_failed,
         p_late);
  return 0;
}

/* ---- merge ---- */

static int run_merge(int argc, char **argv) {
  hist = calloc(BUCKETS + 1, sizeof(*hist));
  if (!hist)
    return 1;
  uint64_t nsub = 0, ok = 0, failed = 0, closed = 0, msgs = 0, other = 0;
  for (int a = 2; a < argc; a++) {
    FILE *f = fopen(argv[a], "r");
    if (!f) {
      perror(argv[a]);
      continue;
    }
    uint64_t v[6];
    if (fscanf(f,
               "subs %" SCNu64 " ok %" SCNu64 " failed %" SCNu64 " closed %" SCNu64 " msgs %" SCNu64
               " other %" SCNu64,
               &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6) {
      nsub += v[0], ok += v[1], failed += v[2], closed += v[3], msgs += v[4], other += v[5];
    }
    size_t b;
    uint64_t cnt;
    while (fscanf(f, "%zu %" SCNu64, &b, &cnt) == 2)
      if (b <= BUCKETS)
        hist[b] += cnt;
    fclose(f);
  }
  uint64_t total = 0;
  for (size_t b = 0; b <= BUCKETS; b++)
    total += hist[b];
  double q[3] = {0.50, 0.99, 1.0};
  double res[3] = {0, 0, 0};
  for (int k = 0; k < 3; k++) {
    uint64_t want = (uint64_t)((double)total * q[k]), acc = 0;
    if (want == 0)
      want = 1;
    for (size_t b = 0; b <= BUCKETS; b++) {
      acc += hist[b];
      if (acc >= want) {
        res[k] = (double)(b + 1) * BUCKET_US / 1000.0;
        break;
      }
    }
  }
  printf("{\"subs\":%" PRIu64 ",\"connected\":%" PRIu64 ",\"refused\":%" PRIu64
         ",\"closed_by_server\":%" PRIu64 ",\"received\":%" PRIu64
         ",\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f}\n",
         nsub, ok, failed, closed, msgs, res[0], res[1], res[2]);
  free(hist);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(
        stderr,
        "usage: rdv-load sub PORT N SRC_NET PER_SRC OUT | pub PORT RATE SECONDS SRC_NET | merge OUT...\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  if (strcmp(argv[1], "merge") == 0)
    return run_merge(argc, argv);
  base = event_base_new();
  if (!base)
    return 1;
  int rc = 2;
  if (strcmp(argv[1], "sub") == 0)
    rc = run_sub(argc, argv);
  else if (strcmp(argv[1], "pub") == 0)
    rc = run_pub(argc, argv);
  if (rc == 2)
    fprintf(
        stderr,
        "usage: rdv-load sub PORT N SRC_NET PER_SRC OUT | pub PORT RATE SECONDS SRC_NET | merge OUT...\n");
  event_base_free(base);
  return rc;
}
