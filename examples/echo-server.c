/*
 * A minimal libp2p echo server on the public libgoop API: listens on a TCP
 * port with a fresh identity and echoes every stream of /echo/1.0.0.
 *
 *   ./echo-server 4001
 *   goop2 ping /ip4/127.0.0.1/tcp/4001/p2p/<printed id>
 */
#include <event2/event.h>
#include <goop/goop.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

struct echo {
  uint8_t buf[16384];
  size_t len;
};

static void echo_io(goop_stream *s, void *ud) {
  struct echo *e = ud;
  for (;;) {
    if (e->len) { /* write what we hold before reading more: backpressure */
      ssize_t w = goop_stream_write(s, e->buf, e->len);
      if (w == GOOP_EAGAIN)
        return; /* on_writable calls us again */
      if (w < 0)
        break;
      e->len -= (size_t)w;
      for (size_t i = 0; i < e->len; i++)
        e->buf[i] = e->buf[i + (size_t)w];
      continue;
    }
    ssize_t n = goop_stream_read(s, e->buf, sizeof(e->buf));
    if (n == GOOP_EAGAIN)
      return; /* on_readable calls us again */
    if (n == 0)
      (void)goop_stream_close_write(s);
    if (n <= 0)
      break;
    e->len = (size_t)n;
  }
  goop_stream_set_callbacks(s, NULL, NULL);
  goop_stream_unref(s);
  free(e);
}

static void echo_error(goop_stream *s, int err, void *ud) {
  fprintf(stderr, "stream failed: %s\n", goop_strerror(err));
  goop_stream_set_callbacks(s, NULL, NULL);
  goop_stream_unref(s);
  free(ud);
}

static const struct goop_stream_callbacks echo_cbs = {GOOP_STREAM_CALLBACKS_V1, echo_io, echo_io, echo_error};

static void on_echo(goop_host *host, goop_stream *s, void *ud) {
  (void)host, (void)ud;
  struct echo *e = calloc(1, sizeof(*e));
  if (!e) {
    goop_stream_reset(s);
    goop_stream_unref(s);
    return;
  }
  goop_stream_set_callbacks(s, &echo_cbs, e);
}

static void on_sigint(evutil_socket_t sig, short what, void *base) {
  (void)sig, (void)what;
  event_base_loopbreak(base);
}

int main(int argc, char **argv) {
  char listen[64];
  snprintf(listen, sizeof(listen), "/ip4/0.0.0.0/tcp/%s", argc > 1 ? argv[1] : "0");
  signal(SIGPIPE, SIG_IGN);
  struct event_base *base = event_base_new();
  goop_ctx *ctx;
  goop_identity *id;
  goop_host *host;
  if (!base || goop_ctx_new(base, &ctx) || goop_identity_generate(&id) || goop_host_new(ctx, id, NULL, &host))
    return 1;
  goop_identity_free(id); /* the host keeps its own copy */
  int rc = goop_host_listen(host, listen);
  if (rc) {
    fprintf(stderr, "listen %s: %s\n", listen, goop_strerror(rc));
    return 1;
  }
  if (goop_host_set_stream_handler(host, "/echo/1.0.0", on_echo, NULL))
    return 1;
  goop_peer_id pid;
  char idtxt[GOOP_PEER_ID_STR_MAX], addr[256];
  goop_host_peer_id(host, &pid);
  goop_peer_id_to_string(&pid, idtxt, sizeof(idtxt));
  for (size_t i = 0; goop_host_announce_addr(host, i, addr, sizeof(addr)) > 0; i++)
    printf("%s/p2p/%s\n", addr, idtxt);
  fflush(stdout);
  struct event *sig = evsignal_new(base, SIGINT, on_sigint, base);
  event_add(sig, NULL);
  event_base_dispatch(base);
  event_free(sig);
  goop_host_free(host);
  goop_ctx_free(ctx);
  event_base_free(base);
  return 0;
}
