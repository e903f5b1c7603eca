/*
 * Hostile peers against a goop host: silence, junk, endless or oversized
 * multistream messages, a peer that stops mid-handshake, a wrong Peer ID, yamux
 * protocol violations after a valid handshake, too many streams, too many
 * pending handshakes, and teardown with work in flight. The host runs its
 * event loop in a second thread; the raw attacker uses blocking sockets and
 * the library's own sans-I/O cores to get through the handshake.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <goop/goop.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mss.h"
#include "noise.h"
#include "tap.h"

static struct event_base *base;
static goop_ctx *ctx;
static goop_host *H;
static uint16_t H_port;
static goop_peer_id H_id;
static volatile int stop_loop;

static void log_fn(enum goop_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (getenv("GOOP_TEST_LOG"))
    fprintf(stderr, "[%d] %s\n", level, msg);
}

static void tick(evutil_socket_t fd, short w, void *arg) {
  (void)fd, (void)w, (void)arg;
  if (stop_loop)
    event_base_loopbreak(base);
}

static void *loop_thread(void *arg) {
  (void)arg;
  event_base_dispatch(base);
  return NULL;
}

static int raw_connect(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(H_port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  struct timeval tv = {8, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Read and discard until EOF/reset. Returns seconds waited, or -1 on timeout (8 s). */
static double wait_closed(int fd) {
  double t0 = now_s();
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0)
      continue;
    if (n == 0 || errno == ECONNRESET)
      return now_s() - t0;
    return -1;
  }
}

static void send_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w <= 0)
      return;
    b += w;
    n -= (size_t)w;
  }
}

static void test_silent_peer_is_cut_off(void) {
  int fd = raw_connect();
  CHECK(fd >= 0);
  double t = wait_closed(fd);
  CHECK(t >= 0 && t < 5);
  close(fd);
}

static void test_junk_closes(void) {
  int fd = raw_connect();
  uint8_t junk[512];
  for (size_t i = 0; i < sizeof(junk); i++)
    junk[i] = (uint8_t)(i * 97 + 13);
  send_all(fd, junk, sizeof(junk));
  double t = wait_closed(fd);
  CHECK(t >= 0 && t < 1.5);
  close(fd);
}

static void test_endless_proposals(void) {
  int fd = raw_connect();
  goop_buf b;
  goop_buf_init(&b, 0);
  goop_mss_write_msg(&b, "/multistream/1.0.0");
  for (int i = 0; i < 40; i++) {
    char p[64];
    snprintf(p, sizeof(p), "/nope/%d", i);
    goop_mss_write_msg(&b, p);
  }
  send_all(fd, b.data, b.len);
  goop_buf_free(&b);
  double t = wait_closed(fd);
  CHECK(t >= 0 && t < 1.5);
  close(fd);
}

static void test_oversized_mss_message(void) {
  int fd = raw_connect();
  uint8_t msg[3 + 5000];
  msg[0] = 0x13;
  memcpy(msg + 1, "/multistream/1.0.0\n", 19);
  /* varint 5000 = 0x88 0x27 */
  uint8_t big[2 + 5000];
  big[0] = 0x88;
  big[1] = 0x27;
  memset(big + 2, 'a', 5000);
  send_all(fd, msg, 20);
  send_all(fd, big, sizeof(big));
  double t = wait_closed(fd);
  CHECK(t >= 0 && t < 1.5);
  close(fd);
}

static void test_stop_mid_handshake(void) {
  int fd = raw_connect();
  goop_identity *id;
  CHECK_INT_EQ(goop_identity_generate(&id), 0);
  static const char *const noise[] = {"/noise"};
  goop_mss *m;
  goop_mss_new_initiator(noise, 1, true, &m);
  goop_noise_hs *hs;
  goop_noise_hs_new(true, id, NULL, NULL, 0, &hs);
  goop_buf out;
  goop_buf_init(&out, 0);
  goop_buf_append(&out, goop_mss_output(m)->data, goop_mss_output(m)->len);
  goop_noise_hs_write_message(hs, &out);
  send_all(fd, out.data, out.len);
  /* ... and then nothing: the host must give up by its handshake deadline. */
  double t = wait_closed(fd);
  CHECK(t >= 0 && t < 5);
  goop_buf_free(&out);
  goop_noise_hs_free(hs);
  goop_mss_free(m);
  goop_identity_free(id);
  close(fd);
}

/* A full handshake by hand; returns the transport cipher or NULL. */
struct raw {
  int fd;
  goop_noise_cipher *c;
  goop_identity *id;
  goop_buf in;
};

static int raw_read_some(struct raw *r) {
  uint8_t buf[8192];
  ssize_t n = recv(r->fd, buf, sizeof(buf), 0);
  if (n <= 0)
    return -1;
  goop_buf_append(&r->in, buf, (size_t)n);
  return 0;
}

static bool raw_handshake(struct raw *r) {
  memset(r, 0, sizeof(*r));
  goop_buf_init(&r->in, 0);
  r->fd = raw_connect();
  if (r->fd < 0 || goop_identity_generate(&r->id))
    return false;
  static const char *const noise[] = {"/noise"};
  static const char *const muxers[] = {"/yamux/1.0.0"};
  goop_mss *m;
  goop_noise_hs *hs;
  goop_mss_new_initiator(noise, 1, true, &m);
  goop_noise_hs_new(true, r->id, &H_id, muxers, 1, &hs);
  goop_buf out;
  goop_buf_init(&out, 0);
  goop_buf_append(&out, goop_mss_output(m)->data, goop_mss_output(m)->len);
  goop_noise_hs_write_message(hs, &out);
  send_all(r->fd, out.data, out.len);
  goop_buf_reset(&out);
  bool ok = false;
  /* multistream answer */
  for (;;) {
    size_t used = 0;
    int res = r->in.len ? goop_mss_feed(m, r->in.data, r->in.len, &used) : GOOP_MSS_NEED_MORE;
    goop_buf_consume(&r->in, used);
    if (res < 0)
      goto out;
    if (res == GOOP_MSS_DONE)
      break;
    if (raw_read_some(r))
      goto out;
  }
  /* msg2 */
  for (;;) {
    const uint8_t *body;
    size_t blen, n = goop_noise_deframe(r->in.data, r->in.len, &body, &blen);
    if (n) {
      if (goop_noise_hs_read_message(hs, body, blen))
        goto out;
      goop_buf_consume(&r->in, n);
      break;
    }
    if (raw_read_some(r))
      goto out;
  }
  goop_noise_hs_write_message(hs, &out);
  send_all(r->fd, out.data, out.len);
  if (!goop_noise_hs_is_complete(hs) || goop_noise_hs_split(hs, &r->c))
    goto out;
  ok = true;
out:
  goop_buf_free(&out);
  goop_noise_hs_free(hs);
  goop_mss_free(m);
  return ok;
}

static void raw_send_frames(struct raw *r, const uint8_t *plain, size_t len) {
  goop_buf out;
  goop_buf_init(&out, 0);
  goop_noise_encrypt(r->c, plain, len, &out);
  send_all(r->fd, out.data, out.len);
  goop_buf_free(&out);
}

static void raw_free(struct raw *r) {
  goop_noise_cipher_free(r->c);
  goop_identity_free(r->id);
  goop_buf_free(&r->in);
  if (r->fd >= 0)
    close(r->fd);
}

static void hdr(uint8_t *h, uint8_t ver, uint8_t type, uint16_t flags, uint32_t id, uint32_t len) {
  h[0] = ver;
  h[1] = type;
  h[2] = (uint8_t)(flags >> 8);
  h[3] = (uint8_t)flags;
  h[4] = (uint8_t)(id >> 24);
  h[5] = (uint8_t)(id >> 16);
  h[6] = (uint8_t)(id >> 8);
  h[7] = (uint8_t)id;
  h[8] = (uint8_t)(len >> 24);
  h[9] = (uint8_t)(len >> 16);
  h[10] = (uint8_t)(len >> 8);
  h[11] = (uint8_t)len;
}

static void yamux_violation(const char *what, const uint8_t *frames, size_t len) {
  struct raw r;
  bool ok = raw_handshake(&r);
  tap__cur = what;
  CHECK(ok);
  if (ok) {
    raw_send_frames(&r, frames, len);
    double t = wait_closed(r.fd);
    CHECK(t >= 0 && t < 2);
  }
  raw_free(&r);
}

static void test_handshake_works_then_yamux_violations(void) {
  struct raw r;
  CHECK(raw_handshake(&r));
  raw_free(&r);
  uint8_t f[64 + 300000];
  hdr(f, 1, 2, 1, 0, 7); /* bad version */
  yamux_violation("yamux bad version", f, 12);
  hdr(f, 0, 9, 0, 1, 0); /* unknown type */
  yamux_violation("yamux unknown type", f, 12);
  hdr(f, 0, 1, 1, 2, 0); /* SYN with the server's (even) parity from the client */
  yamux_violation("yamux wrong parity", f, 12);
  hdr(f, 0, 0, 0, 0, 4); /* data on stream 0 */
  memset(f + 12, 0, 4);
  yamux_violation("yamux data on session id", f, 16);
  /* open stream 1 and send more than the 256 KiB window */
  hdr(f, 0, 1, 1, 1, 0);
  hdr(f + 12, 0, 0, 0, 1, 262144 + 1000);
  memset(f + 24, 'x', 262144 + 1000);
  yamux_violation("yamux window overflow", f, 24 + 262144 + 1000);
}

static void test_too_many_streams(void) {
  struct raw r;
  CHECK(raw_handshake(&r));
  /* 1100 SYNs: the host accepts at most 1000 and resets the rest, but stays up. */
  size_t n = 1100;
  uint8_t *f = calloc(n, 12);
  for (size_t i = 0; i < n; i++)
    hdr(f + 12 * i, 0, 1, 1, (uint32_t)(2 * i + 1), 0);
  raw_send_frames(&r, f, n * 12);
  free(f);
  /* Expect RST frames for some streams; read for a moment and count them. */
  size_t rsts = 0;
  goop_buf plain;
  goop_buf_init(&plain, 0);
  double t0 = now_s();
  struct timeval tv = {0, 300000};
  setsockopt(r.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  while (now_s() - t0 < 3 && rsts < 100) {
    if (raw_read_some(&r))
      break;
    size_t used;
    while (goop_noise_decrypt_frame(r.c, r.in.data, r.in.len, &used, &plain) == 1)
      goop_buf_consume(&r.in, used);
    while (plain.len >= 12) {
      uint16_t flags = (uint16_t)(plain.data[2] << 8 | plain.data[3]);
      uint32_t len = (uint32_t)plain.data[8] << 24 | (uint32_t)plain.data[9] << 16 |
                     (uint32_t)plain.data[10] << 8 | plain.data[11];
      size_t fl = 12 + (plain.data[1] == 0 ? len : 0);
      if (plain.len < fl)
        break;
      if (flags & 0x8)
        rsts++;
      goop_buf_consume(&plain, fl);
    }
  }
  CHECK(rsts >= 100);
  goop_buf_free(&plain);
  raw_free(&r);
}

static void test_pending_handshake_limit(void) {
  /* The host allows 8 pending handshakes (configured below); the 9th+ are closed at once. */
  int fds[12];
  for (int i = 0; i < 12; i++)
    fds[i] = raw_connect();
  usleep(200000);
  int closed_fast = 0;
  for (int i = 0; i < 12; i++) {
    struct timeval tv = {0, 100000};
    setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char c;
    ssize_t n = recv(fds[i], &c, 1, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET))
      closed_fast++;
  }
  CHECK(closed_fast >= 4);
  for (int i = 0; i < 12; i++)
    close(fds[i]);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  evthread_use_pthreads();
  base = event_base_new();
  if (goop_ctx_new(base, &ctx) != 0)
    return 1;
  goop_ctx_set_log_fn(ctx, log_fn, GOOP_LOG_DEBUG, NULL);
  goop_identity *id;
  if (goop_identity_generate(&id))
    return 1;
  goop_host_config *cfg;
  if (goop_host_config_new(&cfg))
    return 1;
  goop_host_config_set(cfg, GOOP_HOST_HANDSHAKE_TIMEOUT_MS, 1500);
  goop_host_config_set(cfg, GOOP_HOST_MAX_PENDING_HANDSHAKES, 8);
  if (goop_host_new(ctx, id, cfg, &H) || goop_host_listen(H, "/ip4/127.0.0.1/tcp/0"))
    return 1;
  goop_host_config_free(cfg);
  goop_identity_free(id);
  goop_host_peer_id(H, &H_id);
  char a[128];
  goop_host_listen_addr(H, 0, a, sizeof(a));
  H_port = (uint16_t)atoi(strrchr(a, '/') + 1);
  struct event *t = event_new(base, -1, EV_PERSIST, tick, NULL);
  struct timeval tv = {0, 50000};
  event_add(t, &tv);
  pthread_t th;
  pthread_create(&th, NULL, loop_thread, NULL);

  RUN(test_silent_peer_is_cut_off);
  RUN(test_junk_closes);
  RUN(test_endless_proposals);
  RUN(test_oversized_mss_message);
  RUN(test_stop_mid_handshake);
  RUN(test_handshake_works_then_yamux_violations);
  RUN(test_too_many_streams);
  RUN(test_pending_handshake_limit);

  stop_loop = 1;
  pthread_join(th, NULL);
  event_free(t);
  goop_host_free(H);
  goop_ctx_free(ctx);
  event_base_free(base);
  return tap_done();
}
