/*
 * The rendezvous server and its optional relay, configured from goop.json.
 */
#include "rdv-host.h"
#include "internal.h"
#include "rdv-server.h"
#include "rdv-templates.h"

#include "../common/relay-cli.h"
#include <arpa/inet.h>
#include <event2/event.h>
#include <goop/relay.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define RELAY_MAX_ADDRS 16

struct rdv_host {
  goop_ctx *ctx;
  struct rdv_server *srv;
  goop_host *relay_host;
  goop_relay *relay;
  char relay_id[128];
  char *relay_addrs[RELAY_MAX_ADDRS];
  size_t n_relay_addrs;
};

/* Everything rdv_server_opts points at while a start or reload runs. */
struct opts_store {
  struct rdv_server_opts o;
  struct goop_rdv_limits limits;
  const char **proxies;
  char *db;
  char **tdirs;
  size_t n_tdirs;
};

/* mkdir -p of the directory holding |path| (peers.db's "data/" is usually new); the
 * server reports a directory it still cannot use when it opens the database. */
static void make_parent(const char *path) {
  char *tmp = strdup(path);
  char *slash = tmp ? strrchr(tmp, '/') : NULL;
  if (slash && slash != tmp) {
    *slash = '\0';
    (void)goop__mkdir_p(tmp, 0700);
  }
  free(tmp);
}

static int64_t geti(const goop_config *cfg, const char *key) {
  return goop_config_get_int(cfg, key);
}

static void free_relay_addrs(struct rdv_host *h) {
  for (size_t i = 0; i < h->n_relay_addrs; i++)
    free(h->relay_addrs[i]);
  h->n_relay_addrs = 0;
}

static void metrics_hook(goop_buf *out, void *ud) {
  struct rdv_host *h = ud;
  if (!h->relay)
    return;
  struct goop_relay_stats st;
  goop_relay_get_stats(h->relay, &st);
  char text[2048];
  size_t n = relay_metrics_format(&st, text, sizeof(text));
  if (n < sizeof(text))
    (void)goop_buf_append(out, text, n);
}

static void add_relay_addr(struct rdv_host *h, const char *a) {
  for (size_t i = 0; i < h->n_relay_addrs; i++)
    if (strcmp(h->relay_addrs[i], a) == 0)
      return;
  if (h->n_relay_addrs < RELAY_MAX_ADDRS) {
    char *d = strdup(a);
    if (d)
      h->relay_addrs[h->n_relay_addrs++] = d;
  }
}

/* The host name of an http(s) URL ("https://[2001:db8::1]:443/x" → "2001:db8::1"). */
static int url_host(const char *url, char *out, size_t outlen) {
  const char *p = strstr(url, "://");
  if (!p)
    return -1;
  p += 3;
  const char *end;
  if (*p == '[') {
    p++;
    end = strchr(p, ']');
  } else {
    end = p + strcspn(p, ":/?#");
  }
  if (!end || end == p || (size_t)(end - p) >= outlen)
    return -1;
  memcpy(out, p, (size_t)(end - p));
  out[end - p] = '\0';
  return 0;
}

/* /relay addresses: external_url's host first (IPv4 preferred, with /p2p/), then the listen addresses. */
static void build_relay_addrs(struct rdv_host *h, const char *external_url, int port) {
  free_relay_addrs(h);
  char host[256];
  if (external_url && external_url[0] && url_host(external_url, host, sizeof(host)) == 0) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) == 0) {
      const struct addrinfo *pick = NULL;
      for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if (ai->ai_family == AF_INET && !pick)
          pick = ai;
      for (const struct addrinfo *ai = res; ai && !pick; ai = ai->ai_next)
        if (ai->ai_family == AF_INET6)
          pick = ai;
      if (pick) {
        char ip[INET6_ADDRSTRLEN], a[256];
        const void *src = pick->ai_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)pick->ai_addr)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
        if (inet_ntop(pick->ai_family, src, ip, sizeof(ip))) {
          snprintf(a, sizeof(a), "/%s/%s/tcp/%d/p2p/%s", pick->ai_family == AF_INET ? "ip4" : "ip6", ip, port,
                   h->relay_id);
          add_relay_addr(h, a);
        }
      }
      freeaddrinfo(res);
    }
  }
  char a[256];
  for (size_t i = 0; goop_host_announce_addr(h->relay_host, i, a, sizeof(a)) > 0; i++)
    add_relay_addr(h, a);
}

static int start_relay(struct rdv_host *h, const goop_config *cfg, char *err, size_t errlen) {
  int port = (int)geti(cfg, "presence.relay_port");
  bool created;
  if (relay_start(h->ctx, cfg, port, &h->relay_host, &h->relay, &created, err, errlen) != 0) {
    size_t n = strlen(err);
    snprintf(err + n, errlen > n ? errlen - n : 0, " (presence.relay_port)");
    return -1;
  }
  goop_peer_id pid;
  goop_host_peer_id(h->relay_host, &pid);
  (void)goop_peer_id_to_string(&pid, h->relay_id, sizeof(h->relay_id));
  build_relay_addrs(h, goop_config_get_string(cfg, "presence.external_url"), port);
  return 0;
}

static void free_opts(struct opts_store *st) {
  free(st->proxies);
  free(st->db);
  rdv_templates_dirs_free(st->tdirs, st->n_tdirs);
}

static int load_opts(struct rdv_host *h, const goop_config *cfg, struct opts_store *st, char *err,
                     size_t errlen) {
  memset(st, 0, sizeof(*st));
  struct rdv_server_opts *o = &st->o;
  o->bind = goop_config_get_string(cfg, "presence.rendezvous_bind");
  o->port = (int)geti(cfg, "presence.rendezvous_port");
  if (o->port < 1 || o->port > 65535) {
    snprintf(err, errlen, "presence.rendezvous_port must be 1..65535");
    return -1;
  }
  o->admin_password = goop_config_get_string(cfg, "presence.admin_password");
  o->external_url = goop_config_get_string(cfg, "presence.external_url");
  if (goop_config_get_string(cfg, "presence.peer_db_path")[0]) {
    st->db = goop_config_resolve_path(cfg, "presence.peer_db_path");
    if (st->db)
      make_parent(st->db);
  }
  o->peer_db_path = st->db;
  goop__rdv_limits_default(&st->limits);
  st->limits.sse_total = (size_t)geti(cfg, "presence.rendezvous_max_subscribers");
  st->limits.sse_per_ip = (size_t)geti(cfg, "presence.rendezvous_max_subscribers_per_ip");
  st->limits.queue_msgs = (size_t)geti(cfg, "presence.rendezvous_subscriber_queue");
  st->limits.publish_rate = (unsigned)geti(cfg, "presence.rendezvous_publish_per_minute");
  st->limits.publish_window_ms = 60000;
  st->limits.max_peers = (size_t)geti(cfg, "presence.rendezvous_max_peers");
  o->limits = &st->limits;
  size_t n = goop_config_get_strv_len(cfg, "presence.rendezvous_trusted_proxies");
  if (n) {
    st->proxies = calloc(n, sizeof(*st->proxies));
    if (!st->proxies) {
      snprintf(err, errlen, "out of memory");
      free(st->db);
      return -1;
    }
    for (size_t i = 0; i < n; i++)
      st->proxies[i] = goop_config_get_strv(cfg, "presence.rendezvous_trusted_proxies", i);
  }
  o->trusted_proxies = st->proxies;
  o->n_trusted_proxies = n;
  if (h->relay) {
    o->relay_peer_id = h->relay_id;
    o->relay_addrs = (const char *const *)h->relay_addrs;
    o->n_relay_addrs = h->n_relay_addrs;
  }
  o->metrics_hook = metrics_hook;
  o->metrics_ud = h;
  if (rdv_templates_config_dirs(cfg, &st->tdirs, &st->n_tdirs) != 0) {
    snprintf(err, errlen, "out of memory");
    free_opts(st);
    return -1;
  }
  o->templates_dirs = (const char *const *)st->tdirs;
  o->n_templates_dirs = st->n_tdirs;
  return 0;
}

int rdv_host_start(goop_ctx *ctx, const goop_config *cfg, struct rdv_host **ret, char *err, size_t errlen) {
  *ret = NULL;
  struct rdv_host *h = calloc(1, sizeof(*h));
  if (!h) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  h->ctx = ctx;
  if (geti(cfg, "presence.relay_port") > 0 && start_relay(h, cfg, err, errlen) != 0) {
    rdv_host_free(h);
    return -1;
  }
  struct opts_store st;
  if (load_opts(h, cfg, &st, err, errlen) != 0) {
    rdv_host_free(h);
    return -1;
  }
  int rc = rdv_server_new(goop_ctx_get_base(ctx), &st.o, &h->srv, err, errlen);
  free_opts(&st);
  if (rc != 0) {
    rdv_host_free(h);
    return -1;
  }
  if (h->relay) {
    rdv_server_log(h->srv, "relay %s on TCP port %d", h->relay_id, (int)geti(cfg, "presence.relay_port"));
    for (size_t i = 0; i < h->n_relay_addrs; i++)
      rdv_server_log(h->srv, "relay address %s", h->relay_addrs[i]);
  }
  *ret = h;
  return 0;
}

void rdv_host_reload(struct rdv_host *h, const goop_config *cfg) {
  if (h->relay) {
    struct goop_relay_limits l;
    relay_limits_from_config(cfg, &l);
    (void)goop_relay_set_limits(h->relay, &l);
    build_relay_addrs(h, goop_config_get_string(cfg, "presence.external_url"),
                      (int)geti(cfg, "presence.relay_port"));
  }
  struct opts_store st;
  char err[512];
  if (load_opts(h, cfg, &st, err, sizeof(err)) != 0) {
    rdv_server_log(h->srv, "reload failed, keeping the old settings: %s", err);
    return;
  }
  rdv_server_reload(h->srv, &st.o);
  free_opts(&st);
}

int rdv_host_port(const struct rdv_host *h) {
  return rdv_server_port(h->srv);
}

void rdv_host_free(struct rdv_host *h) {
  if (!h)
    return;
  rdv_server_free(h->srv);
  if (h->relay)
    goop_relay_free(h->relay);
  goop_host_free(h->relay_host);
  free_relay_addrs(h);
  free(h);
}
