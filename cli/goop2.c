/*
 * goop2: run a Goop² peer from a peer directory, or print its Peer ID.
 * A thin client of the public libgoop API.
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <goop/goop.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "rendezvous/rdv-client.h"
#include "rendezvous/rdv-host.h"

#include "viewer/peers.h"
#include "viewer/routes-site.h"
#include "viewer/viewer.h"
#include <goop/relay.h>

static const char usage_text[] =
    "Usage: goop2 [options] [command] [DIR]\n"
    "\n"
    "Commands:\n"
    "  peer DIR        run the peer in DIR (created with defaults if missing)\n"
    "  id DIR          print the Peer ID of the peer in DIR (creates nothing)\n"
    "  ping ADDR       ping a libp2p peer at multiaddr ADDR (e.g. /ip4/1.2.3.4/tcp/4001/p2p/12D3KooW...)\n"
    "  rendezvous DIR  run only the rendezvous server (and relay) configured in DIR/goop.json\n"
    "\n"
    "Options:\n"
    "  -dir DIR, --dir DIR   peer directory (\"goop2 -dir DIR\" = \"goop2 peer DIR\")\n"
    "  -c N, --count N       number of pings (ping; default 4)\n"
    "  -v, --verbose         log debug messages\n"
    "  -h, --help            show this help and exit\n"
    "  -version, --version   print the version and exit\n"
    "\n"
    "See goop2(1) and goop.json(5).\n";

static void usage(FILE *f) {
  fputs(usage_text, f);
}

static int fail(const char *fmt, ...) GOOP_PRINTF(1, 2);
static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("Error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

static enum goop_log_level log_level = GOOP_LOG_INFO;

static void log_stderr(enum goop_log_level level, const char *msg, void *ud) {
  (void)ud;
  static const char *const names[] = {"error", "warn", "info", "debug"};
  fprintf(stderr, "goop2: %s: %s\n", names[level <= GOOP_LOG_DEBUG ? level : GOOP_LOG_DEBUG], msg);
}

static struct event_base *loop_base;

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  (void)what;
  (void)arg;
  fprintf(stderr, "goop2: %s received, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  event_base_loopbreak(loop_base);
}

/* SIGHUP: reload the limits of the hosted rendezvous server from goop.json. */
static struct rdv_host *rdv_local;

static void on_sighup(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  const goop_config *cur = arg;
  if (!rdv_local)
    return;
  const char *dir = goop_config_base_dir(cur);
  char path[4096];
  snprintf(path, sizeof(path), "%s/goop.json", dir ? dir : ".");
  goop_config *cfg = NULL;
  char err[GOOP_ERRBUF_SIZE];
  if (goop_config_load(path, &cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "goop2: SIGHUP: keeping the old settings: %s\n", err);
    return;
  }
  rdv_host_reload(rdv_local, cfg);
  goop_config_free(cfg);
  fprintf(stderr, "goop2: SIGHUP: rendezvous settings reloaded\n");
}

/* The rendezvous bind address as shown in a URL. */
static const char *rdv_shown_bind(const goop_config *cfg) {
  static char buf[80];
  const char *b = goop_config_get_string(cfg, "presence.rendezvous_bind");
  bool any = !b || !b[0] || strcmp(b, "0.0.0.0") == 0 || strcmp(b, "::") == 0;
  snprintf(buf, sizeof(buf), strchr(any ? "" : b, ':') ? "[%s]" : "%s", any ? "127.0.0.1" : b);
  return buf;
}

/* ---- web viewer (cli/viewer/) ---- */

static struct viewer *viewer;

/* Start the viewer on viewer.http_addr (GOOP2_VIEWER_ADDR overrides it; empty = no viewer). */
static int start_viewer(goop_config *cfg, goop_identity *id, goop_host *host, goop_site *site) {
  const char *addr = getenv("GOOP2_VIEWER_ADDR");
  if (!addr)
    addr = goop_config_get_string(cfg, "viewer.http_addr");
  if (!addr || !*addr)
    return 0;
  const char *base = goop_config_base_dir(cfg);
  char cfg_path[4096];
  snprintf(cfg_path, sizeof(cfg_path), "%s/goop.json", base ? base : ".");
  const char *t = getenv("GOOP2_VIEWER_TIMEOUT");
  struct viewer_options o = {
      .http_addr = addr,
      .host = host,
      .cfg = cfg,
      .config_path = cfg_path,
      .conn_timeout_s = t ? (unsigned)strtoul(t, NULL, 10) : 0,
  };
  char err[512] = "";
  viewer = viewer_new(loop_base, id, &o, err, sizeof(err));
  if (!viewer)
    return fail("%s", err);
  if (viewer_routes_site(viewer, site) != 0 || viewer_routes_data(viewer, site) != 0)
    return fail("%s", "viewer: cannot add the site routes");
  size_t nb = goop_config_get_strv_len(cfg, "p2p.bootstrap");
  for (size_t i = 0; i < nb; i++)
    viewer_add_bootstrap(viewer, goop_config_get_strv(cfg, "p2p.bootstrap", i));
  printf("  Viewer:    %s\n", viewer_url(viewer));
  fflush(stdout);
  return 0;
}

static void ev_identified(goop_host *h, goop_conn *c, void *ud) {
  (void)h;
  (void)ud;
  viewer_on_identified(viewer, c);
}

/* ---- host ---- */

static void peer_text(const goop_conn *c, char *buf, size_t len) {
  goop_peer_id pid;
  goop_conn_remote_peer(c, &pid);
  if (goop_peer_id_to_string(&pid, buf, len) < 0)
    snprintf(buf, len, "?");
}

static void ev_connected(goop_host *h, goop_conn *c, void *ud) {
  (void)h;
  (void)ud;
  char id[GOOP_PEER_ID_STR_MAX], addr[200] = "";
  peer_text(c, id, sizeof(id));
  (void)goop_conn_remote_addr(c, addr, sizeof(addr));
  fprintf(stderr, "goop2: connected to %s (%s, %s%s)\n", id, addr,
          goop_conn_is_outbound(c) ? "outbound" : "inbound", goop_conn_is_relayed(c) ? ", relayed" : "");
  viewer_on_connected(viewer, c);
}

static void ev_disconnected(goop_host *h, goop_conn *c, int reason, void *ud) {
  (void)ud;
  char id[GOOP_PEER_ID_STR_MAX];
  peer_text(c, id, sizeof(id));
  goop_peer_id pid;
  goop_conn_remote_peer(c, &pid);
  goop_conn *other = goop_host_get_conn(h, &pid);
  if (goop_conn_is_relayed(c) && other && other != c && !goop_conn_is_relayed(other))
    fprintf(stderr, "goop2: relayed connection to %s closed, direct connection in use\n", id);
  else
    fprintf(stderr, "goop2: disconnected from %s%s%s\n", id, reason ? ": " : "",
            reason ? goop_strerror(reason) : "");
  viewer_on_disconnected(viewer, c);
}

static void on_bootstrap(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h;
  (void)c;
  char *addr = ud;
  if (status)
    fprintf(stderr, "goop2: bootstrap %s: %s\n", addr, goop_strerror(status));
  free(addr);
}

/* Listen on IPv4 and IPv6 at |port| (0 = any). IPv4 must work; IPv6 is best effort. */
static int listen_all(goop_host *h, int64_t port) {
  char ma[64];
  snprintf(ma, sizeof(ma), "/ip4/0.0.0.0/tcp/%lld", (long long)port);
  int rc = goop_host_listen(h, ma);
  if (rc == GOOP_EADDRINUSE)
    return fail("TCP port %lld is already in use: change p2p.listen_port in goop.json (0 picks a free port)",
                (long long)port);
  if (rc)
    return fail("cannot listen on %s: %s", ma, goop_strerror(rc));
  if (port == 0) { /* use the same port for IPv6 when possible */
    char a[128];
    if (goop_host_listen_addr(h, 0, a, sizeof(a)) > 0) {
      const char *p = strstr(a, "/tcp/");
      if (p)
        port = strtoll(p + 5, NULL, 10);
    }
  }
  snprintf(ma, sizeof(ma), "/ip6/::/tcp/%lld", (long long)port);
  if (goop_host_listen(h, ma) != 0) {
    snprintf(ma, sizeof(ma), "/ip6/::/tcp/0");
    if (goop_host_listen(h, ma) != 0)
      fprintf(stderr, "goop2: no IPv6 listener (IPv6 unavailable?)\n");
  }
  return 0;
}

/* Open the peer's site (files, data.db, avatar) and serve the /goop/ protocols. */
static goop_site *peer_site;

static int start_site(goop_config *cfg, goop_host *host) {
  goop_peer_id self;
  goop_host_peer_id(host, &self);
  char err[GOOP_ERRBUF_SIZE] = "";
  int rc = goop_site_open(cfg, &self, &peer_site, err, sizeof(err));
  if (rc)
    return fail("cannot open the site: %s", err[0] ? err : goop_strerror(rc));
  rc = goop_site_serve(peer_site, host);
  if (rc)
    return fail("cannot serve the site protocols: %s", goop_strerror(rc));
  return 0;
}

/* ---- rendezvous servers: the one this process hosts and presence.rendezvous_wan ---- */
#define RDV_MAX_CLIENTS 2
static struct rdv_client *rdv_clients[RDV_MAX_CLIENTS];
static size_t rdv_n_clients;
static goop_host *rdv_wan_host;
static bool rdv_wan_announced;
static const char *rdv_wan_self;

static void rdv_wan_msg(const struct goop_presence_msg *m, void *ud) {
  (void)ud;
  goop_peer_id peer;
  if (goop_peer_id_from_string(m->peer_id, &peer) != 0)
    return;
  if (m->type == GOOP_PRESENCE_OFFLINE) {
    if (peer_site)
      (void)goop_site_set_peer_email(peer_site, &peer, NULL);
    if (viewer)
      peers_remove(viewer_peers(viewer), m->peer_id);
    return;
  }
  for (size_t i = 0; i < m->n_addrs; i++)
    if (goop_presence_addr_acceptable(m->addrs[i]))
      (void)goop_host_add_addr(rdv_wan_host, &peer, m->addrs[i], GOOP_PRESENCE_ADDR_TTL);
  if (peer_site)
    (void)goop_site_set_peer_email(peer_site, &peer, m->email);
  if (viewer) {
    struct peer_info info = {.label = m->content ? m->content : "",
                             .email = m->email ? m->email : "",
                             .avatar_hash = m->avatar_hash,
                             .video_disabled = m->video_disabled,
                             .verified = m->verified};
    (void)peers_upsert(viewer_peers(viewer), m->peer_id, &info);
  }
}

static void start_rdv_client(const char *url, const char *what) {
  char err[256];
  struct rdv_client *c = NULL;
  if (rdv_n_clients < RDV_MAX_CLIENTS &&
      rdv_client_new(loop_base, url, rdv_wan_self, rdv_wan_msg, NULL, &c, err, sizeof(err)) == 0) {
    rdv_clients[rdv_n_clients++] = c;
    printf("  %s: %s\n", what, url);
  } else {
    fprintf(stderr, "goop2: rendezvous %s disabled: %s\n", url, err);
  }
}

/* Clients for the server we host (always over loopback) and for presence.rendezvous_wan. */
static void start_rdv_clients(goop_config *cfg, goop_host *host, const char *pid) {
  rdv_wan_host = host;
  rdv_wan_self = pid;
  if (rdv_local) {
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", rdv_host_port(rdv_local));
    start_rdv_client(url, "Rendezvous (hosted)");
  }
  const char *url = goop_config_get_string(cfg, "presence.rendezvous_wan");
  if (url && url[0])
    start_rdv_client(url, "WAN bridge");
}

static void stop_relay_client(void);

static void free_rdv_clients(void) {
  stop_relay_client(); /* its fetch callbacks point into the clients */
  for (size_t i = 0; i < rdv_n_clients; i++)
    rdv_client_free(rdv_clients[i]);
  rdv_n_clients = 0;
}

/* ---- circuit relay: GET /relay from the rendezvous servers, then keep a reservation there ---- */
#define RELAY_RETRY_MIN_S 5
#define RELAY_RETRY_MAX_S 300
#define RELAY_FAILS_BEFORE_REFETCH 5 /* failed reservation attempts in a row */

static goop_reservation *relay_rsv;
static struct event *relay_retry_ev;
static unsigned relay_backoff_s = RELAY_RETRY_MIN_S;
static size_t relay_try;     /* next client to ask */
static size_t relay_first;   /* first client that may offer a relay (the hosted server's own is skipped) */
static unsigned relay_fails; /* reservation failures in a row */
static bool relay_was_active;
static char relay_id[GOOP_PEER_ID_STR_MAX];

static void relay_fetch_next(void);

static void on_relay_retry(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;
  relay_fetch_next();
}

static void relay_retry_later(void) {
  if (!relay_retry_ev)
    relay_retry_ev = evtimer_new(loop_base, on_relay_retry, NULL);
  if (!relay_retry_ev)
    return;
  /* jitter: 75-125 % of the backoff */
  struct timeval tv = {relay_backoff_s * 3 / 4 + (unsigned)rand() % (relay_backoff_s / 2 + 1), 0};
  evtimer_add(relay_retry_ev, &tv);
  if (relay_backoff_s < RELAY_RETRY_MAX_S)
    relay_backoff_s = relay_backoff_s * 2 > RELAY_RETRY_MAX_S ? RELAY_RETRY_MAX_S : relay_backoff_s * 2;
}

static void on_reservation(goop_host *h, goop_reservation *r, int status, void *ud) {
  (void)h;
  (void)ud;
  if (status == 0) {
    relay_fails = 0;
    relay_backoff_s = RELAY_RETRY_MIN_S;
    if (!relay_was_active)
      fprintf(stderr, "goop2: relay %s: slot reserved, peers can reach us through it\n", relay_id);
    relay_was_active = true;
    return;
  }
  if (relay_was_active || relay_fails == 0)
    fprintf(stderr, "goop2: relay %s: reservation failed: %s (retrying)\n", relay_id, goop_strerror(status));
  relay_was_active = false;
  if (++relay_fails >= RELAY_FAILS_BEFORE_REFETCH) {
    /* The server may have a new relay by now: ask again instead of insisting. */
    fprintf(stderr, "goop2: relay %s: %u failures in a row, asking the rendezvous server again\n", relay_id,
            relay_fails);
    goop_reservation_free(r);
    relay_rsv = NULL;
    relay_fails = 0;
    relay_try = relay_first;
    relay_retry_later();
  }
}

static void on_relay_info(int status, const char *peer_id, const char *const *addrs, size_t n, void *ud) {
  (void)ud;
  goop_peer_id rid;
  if (status == 0 && goop_peer_id_from_string(peer_id, &rid) == 0) {
    snprintf(relay_id, sizeof(relay_id), "%s", peer_id);
    int rc = goop_host_reserve(rdv_wan_host, &rid, addrs, n, on_reservation, NULL, &relay_rsv);
    if (rc == 0) {
      printf("  Relay:     %s (%zu addresses)\n", peer_id, n);
      fflush(stdout);
      relay_backoff_s = RELAY_RETRY_MIN_S;
      return;
    }
    fprintf(stderr, "goop2: relay %s: cannot reserve: %s\n", peer_id, goop_strerror(rc));
  } else if (status != GOOP_ENOENT) {
    fprintf(stderr, "goop2: GET /relay: %s\n", goop_strerror(status ? status : GOOP_EPARSE));
  }
  relay_try++;
  if (relay_try < rdv_n_clients) {
    relay_fetch_next();
    return;
  }
  relay_try = relay_first;
  relay_retry_later(); /* no relay known yet: ask again later, not just at start */
}

static void relay_fetch_next(void) {
  while (relay_try < rdv_n_clients) {
    if (rdv_client_fetch_relay(rdv_clients[relay_try], on_relay_info, NULL) == 0)
      return;
    relay_try++;
  }
  relay_try = relay_first;
  relay_retry_later();
}

/* p2p.relay_reserve: reserve on the first relay a rendezvous server names. */
static void start_relay_client(goop_config *cfg) {
  if (!goop_config_get_bool(cfg, "p2p.relay_reserve"))
    return;
  relay_first = rdv_local ? 1 : 0; /* our own server's relay does not help us */
  relay_try = relay_first;
  if (relay_first < rdv_n_clients)
    relay_fetch_next();
}

static void stop_relay_client(void) {
  if (relay_rsv)
    goop_reservation_free(relay_rsv);
  relay_rsv = NULL;
  if (relay_retry_ev)
    event_free(relay_retry_ev);
  relay_retry_ev = NULL;
}

/* Called with the fields of every presence announcement (heartbeat). */
static void rdv_wan_publish(const struct goop_presence_info *info) {
  if (!rdv_n_clients)
    return;
  char addrs[GOOP_PRESENCE_MAX_ADDRS][256];
  char *ptrs[GOOP_PRESENCE_MAX_ADDRS];
  size_t n = 0;
  char a[256];
  for (size_t i = 0;
       n < GOOP_PRESENCE_MAX_ADDRS && goop_host_announce_addr(rdv_wan_host, i, a, sizeof(a)) > 0; i++)
    if (goop_presence_addr_announceable(a)) {
      snprintf(addrs[n], sizeof(addrs[n]), "%s", a);
      ptrs[n] = addrs[n];
      n++;
    }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct goop_presence_msg m = {
      .type = rdv_wan_announced ? GOOP_PRESENCE_UPDATE : GOOP_PRESENCE_ONLINE,
      .peer_id = (char *)rdv_wan_self,
      .content = (char *)info->label,
      .email = (char *)info->email,
      .avatar_hash = info->avatar_hash && info->avatar_hash[0] ? (char *)info->avatar_hash : NULL,
      .video_disabled = info->video_disabled,
      .addrs = ptrs,
      .n_addrs = n,
      .ts = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000};
  for (size_t i = 0; i < rdv_n_clients; i++)
    rdv_client_publish(rdv_clients[i], &m);
  rdv_wan_announced = true;
}

/* Tell the server we leave (sent during stop_presence()'s last loop run). */
static void rdv_wan_offline(void) {
  struct goop_presence_msg m = {.type = GOOP_PRESENCE_OFFLINE, .peer_id = (char *)rdv_wan_self};
  for (size_t i = 0; i < rdv_n_clients; i++)
    rdv_client_publish(rdv_clients[i], &m);
}

/* ---- presence (GossipSub) ---- */

static goop_pubsub *pubsub;
static goop_presence *presence;

static void presence_update(goop_presence *pr, const goop_peer_id *peer, const struct goop_presence_msg *m,
                            void *ud) {
  (void)pr;
  (void)ud;
  char id[GOOP_PEER_ID_STR_MAX];
  if (goop_peer_id_to_string(peer, id, sizeof(id)) < 0)
    return;
  if (peer_site)
    (void)goop_site_set_peer_email(peer_site, peer, m->email);
  if (viewer) {
    struct peer_info info = {.label = m->content ? m->content : "",
                             .email = m->email ? m->email : "",
                             .avatar_hash = m->avatar_hash,
                             .video_disabled = m->video_disabled,
                             .verified = m->verified};
    (void)peers_upsert(viewer_peers(viewer), id, &info);
  }
}

static void presence_remove(goop_presence *pr, const goop_peer_id *peer, const char *id, void *ud) {
  (void)pr;
  (void)ud;
  if (peer_site)
    (void)goop_site_set_peer_email(peer_site, peer, NULL);
  if (viewer)
    peers_remove(viewer_peers(viewer), id);
}

/* Our announced fields, re-read before each announcement (the viewer's settings may change them). */
static goop_config *presence_cfg;

static void presence_refresh(goop_presence *pr, void *ud) {
  (void)ud;
  goop_config *cfg = presence_cfg;
  static char hash[17];
  static struct stat last; /* avatar.png as hashed */
  char avatar[4096];
  const char *dir = goop_config_base_dir(cfg);
  snprintf(avatar, sizeof(avatar), "%s/avatar.png", dir ? dir : ".");
  struct stat st;
  if (stat(avatar, &st) != 0) {
    hash[0] = '\0';
    memset(&last, 0, sizeof(last));
  } else if (st.st_mtime != last.st_mtime || st.st_size != last.st_size || st.st_ino != last.st_ino ||
             !hash[0]) {
    if (goop_presence_avatar_hash(avatar, hash) == 0)
      last = st;
  }
  const char *label = goop_config_get_string(cfg, "profile.label");
  struct goop_presence_info info = {
      .label = label && *label ? label : "hello", /* as goop2(1) and the content protocol say */
      .email = goop_config_get_string(cfg, "profile.email"),
      .avatar_hash = hash,
      .video_disabled = goop_config_get_bool(cfg, "viewer.video_disabled"),
      .addrs = NULL, /* the host's announce addresses, filtered */
  };
  (void)goop_presence_set_info(pr, &info);
  rdv_wan_publish(&info);
}

/* GossipSub plus presence on presence.topic: "online" now, "update" every heartbeat. */
static int start_presence(goop_config *cfg, goop_host *host) {
  int rc = goop_pubsub_new(host, &pubsub);
  if (rc)
    return fail("cannot start pubsub: %s", goop_strerror(rc));
  int64_t hb = goop_config_get_int(cfg, "presence.heartbeat_seconds");
  int64_t ttl = goop_config_get_int(cfg, "presence.ttl_seconds");
  struct goop_presence_config pc = {
      .version = GOOP_PRESENCE_CONFIG_V1,
      .topic = goop_config_get_string(cfg, "presence.topic"),
      .heartbeat_seconds = hb > 0 && hb < 86400 ? (uint32_t)hb : 0,
      .ttl_seconds = ttl > 0 && ttl < 86400 ? (uint32_t)ttl : 0,
  };
  static const struct goop_presence_callbacks cb = {.version = GOOP_PRESENCE_CALLBACKS_V1,
                                                    .on_update = presence_update,
                                                    .on_remove = presence_remove,
                                                    .before_publish = presence_refresh};
  presence_cfg = cfg;
  rc = goop_presence_new(pubsub, host, &pc, &cb, NULL, &presence);
  if (rc == 0)
    rc = goop_presence_start(presence);
  if (rc)
    return fail("cannot start presence: %s", goop_strerror(rc));
  return 0;
}

/* Say "offline" and give the loop a moment to send it before the host goes. */
static void stop_presence(void) {
  if (!presence)
    return;
  goop_presence_stop(presence);
  struct timeval tv = {0, 300000};
  event_base_loopexit(loop_base, &tv);
  event_base_dispatch(loop_base);
}

/* ---- mDNS LAN discovery (p2p.mdns_tag); optional: runs on without avahi-daemon ---- */
static goop_mdns *mdns;

static void start_mdns(goop_config *cfg, goop_host *host) {
  const char *tag = goop_config_get_string(cfg, "p2p.mdns_tag");
  int rc = goop_mdns_new(host, tag, &mdns);
  if (rc == 0)
    printf("  mDNS: browsing and announcing tag \"%s\"\n", tag);
  else
    fprintf(stderr, "goop2: mDNS discovery disabled (tag \"%s\"): %s%s\n", tag, goop_strerror(rc),
            rc == GOOP_ENOTSUP ? " (no avahi-daemon reachable, or built without Avahi)" : "");
}

static int run_host(goop_config *cfg, goop_identity *id, const char *pid) {
  int ret = 1;
  goop_ctx *ctx = NULL;
  goop_host *host = NULL;
  struct event *sigint = NULL, *sigterm = NULL, *sighup = NULL;
  loop_base = event_base_new();
  if (!loop_base || goop_ctx_new(loop_base, &ctx) != 0) {
    fail("%s", "cannot create the event loop");
    goto out;
  }
  goop_ctx_set_log_fn(ctx, log_stderr, log_level, NULL);
  /* Signals first: a SIGTERM right after the banner must stop the peer cleanly. */
  sigint = evsignal_new(loop_base, SIGINT, on_signal, NULL);
  sigterm = evsignal_new(loop_base, SIGTERM, on_signal, NULL);
  sighup = evsignal_new(loop_base, SIGHUP, on_sighup, cfg);
  if (!sigint || !sigterm || !sighup || event_add(sigint, NULL) || event_add(sigterm, NULL) ||
      event_add(sighup, NULL)) {
    fail("%s", "cannot install signal handlers");
    goto out;
  }
  int rc;
  if (goop_config_get_bool(cfg, "presence.rendezvous_host")) {
    char err[512];
    if (rdv_host_start(ctx, cfg, &rdv_local, err, sizeof(err)) != 0) {
      fail("rendezvous server: %s", err);
      goto out;
    }
    printf("  Rendezvous server: http://%s:%d\n", rdv_shown_bind(cfg), rdv_host_port(rdv_local));
  }
  if (goop_config_get_bool(cfg, "presence.rendezvous_only")) {
    /* No libp2p node, site, presence or discovery: only the server (and its relay). */
    printf("  Mode: rendezvous only (presence.rendezvous_only)\n");
    fflush(stdout);
    event_base_dispatch(loop_base);
    ret = 0;
    goto out;
  }
  goop_host_config *hc = NULL;
  if (goop_host_config_new(&hc) != 0) {
    fail("%s", "out of memory");
    goto out;
  }
  if (!goop_config_get_bool(cfg, "p2p.hole_punching"))
    (void)goop_host_config_set(hc, GOOP_HOST_HOLE_PUNCHING, 0);
  rc = goop_host_new(ctx, id, hc, &host);
  goop_host_config_free(hc);
  if (rc) {
    fail("cannot create the libp2p host: %s", goop_strerror(rc));
    goto out;
  }
  struct goop_host_events ev = {.version = GOOP_HOST_EVENTS_V1,
                                .on_connected = ev_connected,
                                .on_disconnected = ev_disconnected,
                                .on_identified = ev_identified};
  goop_host_set_events(host, &ev, NULL);
  if (listen_all(host, goop_config_get_int(cfg, "p2p.listen_port")) != 0)
    goto out;
  if (start_site(cfg, host) != 0)
    goto out;
  start_rdv_clients(cfg, host, pid); /* before presence: its first announcement is published too */
  start_relay_client(cfg);
  if (start_presence(cfg, host) != 0)
    goto out;
  if (goop_config_get_bool(cfg, "p2p.mdns"))
    start_mdns(cfg, host);
  else
    printf("  mDNS: off (p2p.mdns)\n");
  printf("  Listening:\n");
  char a[256];
  for (size_t i = 0; goop_host_announce_addr(host, i, a, sizeof(a)) > 0; i++)
    printf("    %s/p2p/%s\n", a, pid);
  fflush(stdout);
  if (start_viewer(cfg, id, host, peer_site) != 0)
    goto out;
  size_t nb = goop_config_get_strv_len(cfg, "p2p.bootstrap");
  for (size_t i = 0; i < nb; i++) {
    const char *b = goop_config_get_strv(cfg, "p2p.bootstrap", i);
    char *copy = strdup(b);
    if (copy && goop_host_connect_addr(host, b, 10000, on_bootstrap, copy) != 0) {
      fprintf(stderr, "goop2: bootstrap %s: cannot dial\n", b);
      free(copy);
    }
  }
  event_base_dispatch(loop_base);
  rdv_wan_offline();
  stop_presence();
  ret = 0;
out:
  free_rdv_clients();   /* before the host */
  goop_mdns_free(mdns); /* before the host it dials with */
  mdns = NULL;
  goop_presence_free(presence);
  presence = NULL;
  goop_pubsub_free(pubsub);
  pubsub = NULL;
  viewer_free(viewer);
  viewer = NULL;
  goop_site_free(peer_site); /* before the host it serves on */
  peer_site = NULL;
  goop_host_free(host);
  rdv_host_free(rdv_local);
  rdv_local = NULL;
  if (sighup)
    event_free(sighup);
  if (sigint)
    event_free(sigint);
  if (sigterm)
    event_free(sigterm);
  goop_ctx_free(ctx);
  if (loop_base)
    event_base_free(loop_base);
  loop_base = NULL;
  return ret;
}

/* ---- ping ---- */

struct ping_state {
  goop_host *host;
  goop_peer_id peer;
  char peer_text[GOOP_PEER_ID_STR_MAX];
  long count, sent, ok;
  int status;
  uint64_t min, max, sum;
};

static void ping_next(struct ping_state *st);

static void on_ping(goop_host *h, int status, uint64_t rtt, void *ud) {
  (void)h;
  struct ping_state *st = ud;
  if (status) {
    fprintf(stderr, "Error: ping %s: %s\n", st->peer_text, goop_strerror(status));
    st->status = status;
    event_base_loopbreak(loop_base);
    return;
  }
  st->ok++;
  st->sum += rtt;
  if (!st->min || rtt < st->min)
    st->min = rtt;
  if (rtt > st->max)
    st->max = rtt;
  printf("pong from %s: seq=%ld time=%.3f ms\n", st->peer_text, st->sent, rtt / 1000.0);
  fflush(stdout);
  ping_next(st);
}

static void ping_next(struct ping_state *st) {
  if (st->sent >= st->count) {
    event_base_loopbreak(loop_base);
    return;
  }
  st->sent++;
  int rc = goop_host_ping(st->host, &st->peer, 10000, on_ping, st);
  if (rc) {
    fprintf(stderr, "Error: ping %s: %s\n", st->peer_text, goop_strerror(rc));
    st->status = rc;
    event_base_loopbreak(loop_base);
  }
}

static void on_ping_connected(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h;
  struct ping_state *st = ud;
  if (status) {
    fprintf(stderr, "Error: cannot connect: %s\n", goop_strerror(status));
    st->status = status;
    event_base_loopbreak(loop_base);
    return;
  }
  goop_conn_remote_peer(c, &st->peer);
  (void)goop_peer_id_to_string(&st->peer, st->peer_text, sizeof(st->peer_text));
  char addr[200] = "";
  (void)goop_conn_remote_addr(c, addr, sizeof(addr));
  printf("PING %s (%s)\n", st->peer_text, addr);
  ping_next(st);
}

static int cmd_ping(const char *addr, long count) {
  if (count < 1)
    return fail("%s", "the ping count must be at least 1");
  goop_identity *id = NULL;
  goop_ctx *ctx = NULL;
  struct ping_state st = {.count = count};
  int ret = 1;
  loop_base = event_base_new();
  if (!loop_base || goop_ctx_new(loop_base, &ctx) != 0 || goop_identity_generate(&id) != 0) {
    fail("%s", "cannot initialise");
    goto out;
  }
  goop_ctx_set_log_fn(ctx, log_stderr, log_level == GOOP_LOG_DEBUG ? GOOP_LOG_DEBUG : GOOP_LOG_WARN, NULL);
  int rc = goop_host_new(ctx, id, NULL, &st.host);
  if (rc) {
    fail("cannot create the libp2p host: %s", goop_strerror(rc));
    goto out;
  }
  rc = goop_host_connect_addr(st.host, addr, 10000, on_ping_connected, &st);
  if (rc) {
    fail("cannot dial %s: %s", addr,
         rc == GOOP_EPARSE    ? "not a valid multiaddr"
         : rc == GOOP_ENOTSUP ? "only /ip4 and /ip6 TCP addresses can be dialled"
                              : goop_strerror(rc));
    goto out;
  }
  event_base_dispatch(loop_base);
  if (st.ok > 0)
    printf("%ld pings, %ld answered, rtt min/avg/max = %.3f/%.3f/%.3f ms\n", st.sent, st.ok, st.min / 1000.0,
           (double)st.sum / (double)st.ok / 1000.0, st.max / 1000.0);
  ret = st.status == 0 && st.ok == count ? 0 : 1;
out:
  goop_host_free(st.host);
  goop_identity_free(id);
  goop_ctx_free(ctx);
  if (loop_base)
    event_base_free(loop_base);
  return ret;
}

static int print_peer_id(const goop_identity *id, char *buf, size_t len) {
  goop_peer_id pid;
  goop_identity_peer_id(id, &pid);
  return goop_peer_id_to_string(&pid, buf, len);
}

static int cmd_peer(const char *dir) {
  char err[GOOP_ERRBUF_SIZE] = "";
  goop_config *cfg = NULL;
  goop_identity *id = NULL;
  unsigned created = 0;
  int rc = goop_peer_dir_open(dir, &cfg, &id, &created, err, sizeof(err));
  if (rc < 0)
    return fail("%s", err[0] ? err : goop_strerror(rc));

  char pid[GOOP_PEER_ID_STR_MAX];
  if (print_peer_id(id, pid, sizeof(pid)) < 0) {
    goop_identity_free(id);
    goop_config_free(cfg);
    return fail("%s", "cannot format the Peer ID");
  }
  const char *base = goop_config_base_dir(cfg);
  const char *label = goop_config_get_string(cfg, "profile.label");
  char *key = goop_config_resolve_path(cfg, "identity.key_file");
  char *site = goop_config_resolve_path(cfg, "paths.site_root");

  printf("Goop\xc2\xb2 peer\n");
  printf("  Peer dir:  %s\n", base ? base : dir);
  printf("  Config:    %s/goop.json%s\n", base ? base : dir,
         (created & GOOP_PEER_DIR_CREATED_CONFIG) ? " (created with defaults)" : "");
  printf("  Key file:  %s%s\n", key ? key : "?",
         (created & GOOP_PEER_DIR_CREATED_IDENTITY) ? " (new identity generated)" : "");
  printf("  Site root: %s%s\n", site ? site : "?",
         (created & GOOP_PEER_DIR_CREATED_SITE) ? " (start page created)" : "");
  printf("  Peer ID:   %s\n", pid);
  printf("  Label:     %s\n", label && *label ? label : "hello");
  fflush(stdout);

  free(key);
  free(site);
  rc = run_host(cfg, id, pid);
  goop_identity_free(id);
  goop_config_free(cfg);
  return rc;
}

/* `goop2 rendezvous DIR`: only the rendezvous server (and its relay), whatever the flags say. */
static int cmd_rendezvous(const char *dir) {
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    return fail("cannot create %s: %s", dir, strerror(errno));
  size_t n = strlen(dir) + sizeof("/goop.json");
  char *path = malloc(n);
  if (!path)
    return fail("%s", "out of memory");
  snprintf(path, n, "%s/goop.json", dir);
  char err[GOOP_ERRBUF_SIZE] = "";
  goop_config *cfg = NULL;
  bool created = false;
  int rc = goop_config_ensure(path, &cfg, &created, err, sizeof(err));
  if (rc < 0) {
    free(path);
    return fail("Failed to load config: %s", err[0] ? err : goop_strerror(rc));
  }
  /* Forced after validation, as Goop² does: relay_port > 0 still needs rendezvous_host in the file. */
  (void)goop_config_set_bool(cfg, "presence.rendezvous_host", true);
  (void)goop_config_set_bool(cfg, "presence.rendezvous_only", true);
  printf("Goop\xc2\xb2 rendezvous\n");
  printf("  Config:    %s%s\n", path, created ? " (created with defaults)" : "");
  fflush(stdout);
  free(path);
  rc = run_host(cfg, NULL, NULL);
  goop_config_free(cfg);
  return rc;
}

/* Print the Peer ID of the peer in |dir| without creating anything. */
static int cmd_id(const char *dir) {
  struct stat st;
  if (stat(dir, &st) != 0)
    return fail("peer directory does not exist: %s", dir);
  if (!S_ISDIR(st.st_mode))
    return fail("not a directory: %s", dir);

  size_t n = strlen(dir) + sizeof("/goop.json");
  char *cfg_path = malloc(n);
  if (!cfg_path)
    return fail("%s", "out of memory");
  snprintf(cfg_path, n, "%s/goop.json", dir);

  char err[GOOP_ERRBUF_SIZE] = "";
  goop_config *cfg = NULL;
  int rc;
  if (stat(cfg_path, &st) == 0)
    rc = goop_config_load(cfg_path, &cfg, err, sizeof(err));
  else /* no goop.json: the defaults, relative to DIR */
    rc = goop_config_parse("{}", 2, dir, &cfg, err, sizeof(err));
  free(cfg_path);
  if (rc < 0)
    return fail("%s", err[0] ? err : goop_strerror(rc));

  char *key = goop_config_resolve_path(cfg, "identity.key_file");
  goop_config_free(cfg);
  if (!key)
    return fail("%s", "out of memory");
  goop_identity *id = NULL;
  rc = goop_identity_load(key, &id, err, sizeof(err));
  if (rc == GOOP_ENOENT) {
    fprintf(stderr, "Error: no identity key at %s (run \"goop2 peer %s\" once to create one)\n", key, dir);
    free(key);
    return 1;
  }
  free(key);
  if (rc < 0)
    return fail("%s", err[0] ? err : goop_strerror(rc));

  char pid[GOOP_PEER_ID_STR_MAX];
  rc = print_peer_id(id, pid, sizeof(pid));
  goop_identity_free(id);
  if (rc < 0)
    return fail("%s", "cannot format the Peer ID");
  printf("%s\n", pid);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN); /* a peer closing a socket we write to must not kill us */
  static const struct option opts[] = {
      {"dir", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},   {"count", required_argument, NULL, 'c'},
      {"verbose", no_argument, NULL, 'v'},   {NULL, 0, NULL, 0},
  };
  const char *dir_opt = NULL;
  long count = 4;
  int c;
  opterr = 0;
  while ((c = getopt_long_only(argc, argv, ":hd:c:v", opts, NULL)) != -1) {
    switch (c) {
    case 'c': {
      char *end;
      errno = 0;
      count = strtol(optarg, &end, 10);
      if (errno || *end || count < 1 || count > 1000000) {
        fprintf(stderr, "Error: invalid ping count '%s'\n", optarg);
        return 1;
      }
      break;
    }
    case 'v':
      log_level = GOOP_LOG_DEBUG;
      break;
    case 'd':
      dir_opt = optarg;
      break;
    case 'h':
      usage(stdout);
      return 0;
    case 'V': {
      const goop_version_info *v = goop_version(0);
      printf("goop2 %s\n", v ? v->version_str : "unknown");
      return 0;
    }
    case ':':
      fprintf(stderr, "Error: option '%s' requires an argument\n", argv[optind - 1]);
      usage(stderr);
      return 1;
    default:
      fprintf(stderr, "Error: unknown option '%s'\n", argv[optind - 1]);
      usage(stderr);
      return 1;
    }
  }

  const char *cmd = optind < argc ? argv[optind++] : NULL;
  const char *dir_arg = optind < argc ? argv[optind++] : NULL;
  if (optind < argc) {
    fprintf(stderr, "Error: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 1;
  }
  if (cmd && strcmp(cmd, "ping") == 0) {
    if (!dir_arg) {
      fputs("Error: ping requires a multiaddr\n", stderr);
      usage(stderr);
      return 1;
    }
    return cmd_ping(dir_arg, count);
  }
  if (cmd && strcmp(cmd, "peer") != 0 && strcmp(cmd, "id") != 0 && strcmp(cmd, "rendezvous") != 0) {
    fprintf(stderr, "Error: unknown command '%s'\n", cmd);
    usage(stderr);
    return 1;
  }
  if (dir_opt && dir_arg) {
    fprintf(stderr, "Error: give the peer directory once (-dir DIR or %s DIR)\n", cmd);
    usage(stderr);
    return 1;
  }
  const char *dir = dir_opt ? dir_opt : dir_arg;
  if (!cmd && !dir) {
    fputs("Error: no peer directory given\n", stderr);
    usage(stderr);
    return 1;
  }
  if (!dir || !*dir) {
    fprintf(stderr, "Error: %s command requires directory path\n", cmd);
    usage(stderr);
    return 1;
  }
  if (cmd && strcmp(cmd, "id") == 0)
    return cmd_id(dir);
  if (cmd && strcmp(cmd, "rendezvous") == 0)
    return cmd_rendezvous(dir);
  return cmd_peer(dir);
}
