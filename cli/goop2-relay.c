/*
 * goop2-relay: a circuit relay v2 for Goop² peers behind NAT, configured from
 * a directory holding its goop.json (created with defaults if missing).
 */
#include "common/relay-cli.h"
#include "viewer/mhd-libevent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <goop/goop.h>
#include <goop/relay.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_PORT 4001

static const char usage_text[] =
    "Usage: goop2-relay [options] DIR\n"
    "\n"
    "Options:\n"
    "  -dir DIR, --dir DIR       directory of goop.json (created if missing)\n"
    "  -port N, --port N         TCP port (default presence.relay_port, else 4001)\n"
    "  -metrics ADDR:PORT        serve /metrics and /healthz over HTTP (e.g. 127.0.0.1:9101)\n"
    "  -v, --verbose             log debug messages\n"
    "  -h, --help                show this help and exit\n"
    "  -version, --version       print the version and exit\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop, SIGHUP reloads the limits. See goop2-relay(8).\n";

struct app {
  char cfg_path[PATH_MAX];
  struct event_base *base;
  goop_ctx *ctx;
  goop_host *host;
  goop_relay *relay;
  struct MHD_Daemon *mhd;
  struct mhd_ev *mhd_ev;
};

static enum goop_log_level log_level = GOOP_LOG_INFO;

static void log_stderr(enum goop_log_level level, const char *msg, void *ud) {
  (void)ud;
  static const char *const names[] = {"error", "warn", "info", "debug"};
  fprintf(stderr, "goop2-relay: %s: %s\n", names[level <= GOOP_LOG_DEBUG ? level : GOOP_LOG_DEBUG], msg);
}

static void on_stop(evutil_socket_t sig, short what, void *arg) {
  (void)what;
  struct app *a = arg;
  fprintf(stderr, "goop2-relay: signal %d: shutting down\n", (int)sig);
  event_base_loopexit(a->base, NULL);
}

static void on_hup(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  struct app *a = arg;
  goop_config *cfg = NULL;
  char err[512];
  if (goop_config_load(a->cfg_path, &cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "goop2-relay: reload failed, keeping the old limits: %s\n", err);
    return;
  }
  struct goop_relay_limits l;
  relay_limits_from_config(cfg, &l);
  goop_config_free(cfg);
  if (goop_relay_set_limits(a->relay, &l) == 0)
    fprintf(stderr, "goop2-relay: limits reloaded\n");
}

static enum MHD_Result on_http(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *data, size_t *data_len, void **con_cls) {
  (void)version;
  (void)data;
  (void)data_len;
  (void)con_cls;
  struct app *a = cls;
  char text[2048];
  unsigned status = MHD_HTTP_OK;
  const char *type = "text/plain; charset=utf-8";
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    status = MHD_HTTP_METHOD_NOT_ALLOWED;
    snprintf(text, sizeof(text), "method not allowed\n");
  } else if (strcmp(url, "/healthz") == 0) {
    snprintf(text, sizeof(text), "ok");
  } else if (strcmp(url, "/metrics") == 0) {
    struct goop_relay_stats st;
    goop_relay_get_stats(a->relay, &st);
    relay_metrics_format(&st, text, sizeof(text));
    type = "text/plain; version=0.0.4; charset=utf-8";
  } else {
    status = MHD_HTTP_NOT_FOUND;
    snprintf(text, sizeof(text), "404 page not found\n");
  }
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  MHD_add_response_header(r, "Content-Type", type);
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

/* "HOST:PORT" or "[V6]:PORT" → a bound, listening socket; -1 with |err| set. */
static int metrics_socket(const char *spec, char *err, size_t errlen) {
  char host[128];
  const char *colon = strrchr(spec, ':');
  if (!colon || colon == spec || !colon[1]) {
    snprintf(err, errlen, "-metrics wants HOST:PORT, got \"%s\"", spec);
    return -1;
  }
  size_t hl = (size_t)(colon - spec);
  if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
    spec++;
    hl -= 2;
  }
  if (hl >= sizeof(host)) {
    snprintf(err, errlen, "-metrics: host too long");
    return -1;
  }
  memcpy(host, spec, hl);
  host[hl] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 1 || port > 65535) {
    snprintf(err, errlen, "-metrics: bad port \"%s\"", colon + 1);
    return -1;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  socklen_t sl;
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    sl = sizeof(*s4);
  } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    sl = sizeof(*s6);
  } else {
    snprintf(err, errlen, "-metrics: \"%s\" is not an IP address", host);
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 64) != 0) {
    snprintf(err, errlen, "-metrics %s: %s", spec, strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  return fd;
}

static int parse_port(const char *s, int *ret) {
  char *end;
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < 1 || v > 65535)
    return -1;
  *ret = (int)v;
  return 0;
}

int main(int argc, char **argv) {
  const char *dir = NULL, *metrics = NULL;
  int port = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help") || !strcmp(arg, "-help")) {
      fputs(usage_text, stdout);
      return 0;
    }
    if (!strcmp(arg, "-version") || !strcmp(arg, "--version")) {
      printf("goop2-relay %s\n", GOOP_VERSION_STRING);
      return 0;
    }
    if (!strcmp(arg, "-v") || !strcmp(arg, "--verbose")) {
      log_level = GOOP_LOG_DEBUG;
      continue;
    }
    bool takes = !strcmp(arg, "-dir") || !strcmp(arg, "--dir") || !strcmp(arg, "-port") ||
                 !strcmp(arg, "--port") || !strcmp(arg, "-metrics") || !strcmp(arg, "--metrics");
    if (takes && i + 1 >= argc) {
      fprintf(stderr, "Error: %s needs a value\n%s", arg, usage_text);
      return 1;
    }
    if (!strcmp(arg, "-port") || !strcmp(arg, "--port")) {
      if (parse_port(argv[++i], &port) != 0) {
        fprintf(stderr, "Error: invalid port '%s'\n", argv[i]);
        return 1;
      }
      continue;
    }
    if (!strcmp(arg, "-metrics") || !strcmp(arg, "--metrics")) {
      metrics = argv[++i];
      continue;
    }
    if (takes) {
      arg = argv[++i];
    } else if (arg[0] == '-') {
      fprintf(stderr, "Error: unknown option '%s'\n%s", arg, usage_text);
      return 1;
    }
    if (dir) {
      fprintf(stderr, "Error: more than one directory given\n%s", usage_text);
      return 1;
    }
    dir = arg;
  }
  if (!dir) {
    fprintf(stderr, "Error: relay requires directory path\n%s", usage_text);
    return 1;
  }
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "Error: cannot create %s: %s\n", dir, strerror(errno));
    return 1;
  }
  struct app a;
  memset(&a, 0, sizeof(a));
  snprintf(a.cfg_path, sizeof(a.cfg_path), "%s/goop.json", dir);
  goop_config *cfg = NULL;
  char err[512];
  if (goop_config_ensure(a.cfg_path, &cfg, NULL, err, sizeof(err)) != 0) {
    fprintf(stderr, "Error: Failed to load config: %s\n", err);
    return 1;
  }
  if (!port)
    port = goop_config_get_int(cfg, "presence.relay_port") > 0
               ? (int)goop_config_get_int(cfg, "presence.relay_port")
               : DEFAULT_PORT;
  signal(SIGPIPE, SIG_IGN);
  int ret = 1;
  struct event *term = NULL, *intr = NULL, *hup = NULL;
  a.base = event_base_new();
  if (!a.base || goop_ctx_new(a.base, &a.ctx) != 0) {
    fprintf(stderr, "Error: cannot create the event loop\n");
    goto out;
  }
  goop_ctx_set_log_fn(a.ctx, log_stderr, log_level, NULL);
  term = evsignal_new(a.base, SIGTERM, on_stop, &a);
  intr = evsignal_new(a.base, SIGINT, on_stop, &a);
  hup = evsignal_new(a.base, SIGHUP, on_hup, &a);
  if (!term || !intr || !hup || event_add(term, NULL) || event_add(intr, NULL) || event_add(hup, NULL)) {
    fprintf(stderr, "Error: cannot install signal handlers\n");
    goto out;
  }
  bool created = false;
  if (relay_start(a.ctx, cfg, port, &a.host, &a.relay, &created, err, sizeof(err)) != 0) {
    fprintf(stderr, "Error: %s\n", err);
    goto out;
  }
  struct goop_relay_limits lim;
  relay_limits_from_config(cfg, &lim);
  char *key = goop_config_resolve_path(cfg, "presence.relay_key_file");
  if (metrics) {
    int fd = metrics_socket(metrics, err, sizeof(err));
    if (fd < 0) {
      fprintf(stderr, "Error: %s\n", err);
      free(key);
      goto out;
    }
    a.mhd = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, on_http, &a, MHD_OPTION_LISTEN_SOCKET, fd,
                             MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                             MHD_OPTION_END);
    a.mhd_ev = a.mhd ? mhd_ev_new(a.base, a.mhd) : NULL;
    if (!a.mhd_ev) {
      fprintf(stderr, "Error: cannot start the metrics server\n");
      if (!a.mhd) /* otherwise the daemon owns and closes it */
        close(fd);
      free(key);
      goto out;
    }
  }
  goop_peer_id pid;
  goop_host_peer_id(a.host, &pid);
  char pidtxt[128];
  (void)goop_peer_id_to_string(&pid, pidtxt, sizeof(pidtxt));
  printf("Goop\xc2\xb2 relay\n");
  printf("  Key file:  %s%s\n", key ? key : "?", created ? " (new identity generated)" : "");
  printf("  Peer ID:   %s\n", pidtxt);
  printf("  Limits:    %u s / %llu bytes per circuit, %u circuits, %u reservations\n", lim.circuit_duration_s,
         (unsigned long long)lim.circuit_bytes, lim.max_circuits, lim.max_reservations);
  printf("  Listening:\n");
  free(key);
  char addr[256];
  for (size_t i = 0; goop_host_announce_addr(a.host, i, addr, sizeof(addr)) > 0; i++)
    printf("    %s/p2p/%s\n", addr, pidtxt);
  if (metrics)
    printf("  Metrics:   http://%s/metrics\n", metrics);
  fflush(stdout);
  event_base_dispatch(a.base);
  ret = 0;
out:
  mhd_ev_free(a.mhd_ev);
  if (a.mhd)
    MHD_stop_daemon(a.mhd);
  if (a.relay)
    goop_relay_free(a.relay);
  goop_host_free(a.host);
  if (term)
    event_free(term);
  if (intr)
    event_free(intr);
  if (hup)
    event_free(hup);
  goop_ctx_free(a.ctx);
  if (a.base)
    event_base_free(a.base);
  goop_config_free(cfg);
  return ret;
}
