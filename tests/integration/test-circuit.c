/*
 * Circuit relay v2, client side, against libgoop's own relay service, all on
 * loopback in one process and one libevent loop:
 *
 *   relay R (goop_relay_new), target B reserving a slot on R, dialler A.
 *
 * Reservation and its circuit address; A dials B through R (identify, ping,
 * a 16 MiB echo checked with SHA-256, a /goop/site fetch); failure paths (no
 * reservation, relay limits -> GOOP_ELIMIT, hostile stop messages, the
 * pending-handshake limit); a direct connection wins over the relayed one;
 * goop_host_connect() by Peer ID falls back to the circuit address; the relay
 * dying closes both relayed connections and B reserves again by itself once
 * the relay is back.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <goop/goop.h>
#include <goop/relay.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "relay-msg.h"
#include "tap.h"
#include "testproto.h"
#include "transport-internal.h"

#define ECHO_BYTES (16u * 1024u * 1024u)

static struct event_base *base;
static goop_ctx *ctx;
static goop_identity *idR_key;
static goop_host *hR, *hA, *hB;
static goop_relay *relay;
static goop_peer_id idR, idA, idB;
static char strR[GOOP_PEER_ID_STR_MAX], strB[GOOP_PEER_ID_STR_MAX];
static char addrR[400]; /* R's listen address with /p2p/R */
static char addrB[256]; /* B's TCP listen address (no /p2p) */
static char circB[600]; /* addrR/p2p-circuit/p2p/B */
static goop_reservation *rsvB;
static goop_site *siteB;
static char tmpdir[256];

static void log_fn(enum goop_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (getenv("GOOP_TEST_LOG"))
    fprintf(stderr, "[%d] %s\n", level, msg);
}

static bool run_until(const volatile bool *flag, int ms) {
  struct timeval tv = {0, 10000};
  for (int i = 0; i < ms / 10 && !*flag; i++) {
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  return *flag;
}

static void run_for(int ms) {
  volatile bool never = false;
  run_until(&never, ms);
}

/* Run until |pred| holds or |ms| passed. */
static bool wait_for(bool (*pred)(void), int ms) {
  for (int i = 0; i < ms / 10 && !pred(); i++)
    run_for(10);
  return pred();
}

static goop_host *make_host(const goop_identity *id, const char *listen, const goop_host_config *cfg) {
  goop_host *h = NULL;
  if (goop_host_new(ctx, id, cfg, &h) != 0 || (listen && goop_host_listen(h, listen) != 0))
    abort();
  /* Relayed connections stay relayed here: no hole punching (on loopback it would
   * always succeed at once). */
  (void)goop_host_remove_stream_handler(h, "/libp2p/dcutr");
  return h;
}

static goop_host *make_fresh_host(goop_peer_id *ret_id) {
  goop_identity *id = NULL;
  if (goop_identity_generate(&id) != 0)
    abort();
  goop_host *h = make_host(id, "/ip4/127.0.0.1/tcp/0", NULL);
  goop_identity_free(id);
  if (ret_id)
    goop_host_peer_id(h, ret_id);
  return h;
}

static void start_relay(const char *listen) {
  hR = make_host(idR_key, listen, NULL);
  struct goop_relay_limits lim;
  goop_relay_limits_default(&lim);
  lim.circuit_bytes = 64u << 20; /* the echo plus the overhead */
  if (goop_relay_new(hR, &lim, &relay) != 0)
    abort();
}

static void stop_relay(void) {
  goop_relay_free(relay);
  relay = NULL;
  goop_host_free(hR);
  hR = NULL;
}

/* ---- callbacks ----------------------------------------------------------------- */

static volatile bool rsv_done;
static int rsv_status, rsv_ok_count;
static void on_rsv(goop_host *h, goop_reservation *r, int status, void *ud) {
  (void)h, (void)r, (void)ud;
  rsv_status = status;
  rsv_done = true;
  if (status == 0)
    rsv_ok_count++;
}

static volatile bool connect_done;
static int connect_status;
static goop_conn *connect_conn;
static void on_connect(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h, (void)ud;
  connect_status = status;
  connect_conn = c;
  connect_done = true;
}

static int connect_addr_sync(goop_host *h, const char *ma) {
  connect_done = false;
  connect_conn = NULL;
  int rc = goop_host_connect_addr(h, ma, 20000, on_connect, NULL);
  if (rc)
    return rc;
  if (!run_until(&connect_done, 25000))
    return 12345;
  return connect_status;
}

static volatile bool ping_done;
static int ping_status;
static void on_ping(goop_host *h, int status, uint64_t rtt, void *ud) {
  (void)h, (void)rtt, (void)ud;
  ping_status = status;
  ping_done = true;
}

static int ping_sync(goop_host *h, const goop_peer_id *p) {
  ping_done = false;
  int rc = goop_host_ping(h, p, 10000, on_ping, NULL);
  if (rc)
    return rc;
  run_until(&ping_done, 12000);
  return ping_done ? ping_status : 12345;
}

static bool announces(goop_host *h, const char *needle) {
  char buf[700];
  for (size_t i = 0; goop_host_announce_addr(h, i, buf, sizeof(buf)) > 0; i++)
    if (strstr(buf, needle))
      return true;
  return false;
}

static bool peer_has_addr(goop_host *h, const goop_peer_id *p, const char *needle) {
  char buf[700];
  for (size_t i = 0; goop_host_peer_addr(h, p, i, buf, sizeof(buf)) > 0; i++)
    if (strstr(buf, needle))
      return true;
  return false;
}

static bool has_protocol(goop_host *h, const goop_peer_id *peer, const char *proto) {
  const char *p;
  for (size_t i = 0; (p = goop_host_peer_protocol(h, peer, i)) != NULL; i++)
    if (strcmp(p, proto) == 0)
      return true;
  return false;
}

static bool b_sees_a(void) {
  return goop_host_get_conn(hB, &idA) != NULL;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_reserve(void) {
  const char *a = addrR;
  rsv_done = false;
  CHECK_INT_EQ(goop_host_reserve(hB, &idR, &a, 1, on_rsv, NULL, &rsvB), 0);
  CHECK(run_until(&rsv_done, 15000));
  CHECK_INT_EQ(rsv_status, 0);
  CHECK(goop_reservation_active(rsvB));
  CHECK(goop_reservation_expire(rsvB) > (uint64_t)time(NULL));
  char want[300];
  snprintf(want, sizeof(want), "/p2p/%s/p2p-circuit", strR);
  CHECK(announces(hB, want));
  struct goop_relay_stats st;
  goop_relay_get_stats(relay, &st);
  CHECK_INT_EQ(st.reservations_active, 1);
  /* The reservation connection is direct. */
  goop_conn *c = goop_host_get_conn(hB, &idR);
  CHECK(c != NULL && !goop_conn_is_relayed(c));
}

static int refresh_ok, refresh_fail;
static uint64_t refresh_expire[8];
static void on_refresh(goop_host *h, goop_reservation *r, int status, void *ud) {
  (void)h, (void)ud;
  if (status) {
    refresh_fail++;
    return;
  }
  if (refresh_ok < 8)
    refresh_expire[refresh_ok] = goop_reservation_expire(r);
  refresh_ok++;
}
static bool refreshed_twice(void) {
  return refresh_ok >= 3;
}

/* A short reservation TTL: the slot is refreshed before it runs out. */
static void test_refresh(void) {
  struct goop_relay_limits lim;
  goop_relay_limits_default(&lim);
  lim.circuit_bytes = 64u << 20;
  lim.reservation_ttl_s = 4;
  CHECK_INT_EQ(goop_relay_set_limits(relay, &lim), 0);
  goop_peer_id idF;
  goop_host *hF = make_fresh_host(&idF);
  goop_reservation *r = NULL;
  /* Unusable addresses are skipped, but one must be usable. */
  const char *bad[] = {"/ip4/1.2.3.4/tcp/oops", "not an address"};
  CHECK_INT_EQ(goop_host_reserve(hF, &idR, bad, 2, on_refresh, NULL, &r), GOOP_EINVAL);
  CHECK(r == NULL);
  const char *addrs[] = {"/ip4/1.2.3.4/tcp/oops", addrR};
  CHECK_INT_EQ(goop_host_reserve(hF, &idR, addrs, 2, on_refresh, NULL, &r), 0);
  CHECK(wait_for(refreshed_twice, 20000));
  CHECK_INT_EQ(refresh_fail, 0);
  CHECK(refresh_expire[2] > refresh_expire[0]);
  CHECK(goop_reservation_active(r));
  /* Only one connection to the relay all along. */
  CHECK_INT_EQ(goop_host_num_conns(hF), 1);
  goop_reservation_free(r);
  CHECK(!announces(hF, "p2p-circuit"));
  goop_host_free(hF);
  lim.reservation_ttl_s = 3600;
  CHECK_INT_EQ(goop_relay_set_limits(relay, &lim), 0);
}

/* A relay on every interface, reached over a non-loopback address: its loopback
 * addresses are not announced as circuit addresses (nobody else could use them). */
static void test_reservation_addresses(void) {
  char ip[INET_ADDRSTRLEN] = "";
  struct ifaddrs *ifa = NULL;
  if (getifaddrs(&ifa) == 0) {
    for (struct ifaddrs *i = ifa; i && !ip[0]; i = i->ifa_next)
      if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP) &&
          !(i->ifa_flags & IFF_LOOPBACK))
        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, ip, sizeof(ip));
    freeifaddrs(ifa);
  }
  if (!ip[0]) {
    printf("# no non-loopback IPv4 interface: skipped\n");
    return;
  }
  goop_peer_id id2, idF;
  goop_identity *key = NULL;
  CHECK_INT_EQ(goop_identity_generate(&key), 0);
  goop_host *h2 = make_host(key, "/ip4/0.0.0.0/tcp/0", NULL);
  goop_identity_free(key);
  goop_host_peer_id(h2, &id2);
  goop_relay *r2 = NULL;
  CHECK_INT_EQ(goop_relay_new(h2, NULL, &r2), 0);
  char la[200], s2[GOOP_PEER_ID_STR_MAX], a[300];
  goop_host_listen_addr(h2, 0, la, sizeof(la));
  goop_peer_id_to_string(&id2, s2, sizeof(s2));
  snprintf(a, sizeof(a), "/ip4/%s/tcp/%s/p2p/%s", ip, strrchr(la, '/') + 1, s2);
  goop_host *hF = make_fresh_host(&idF);
  const char *ap = a;
  goop_reservation *r = NULL;
  rsv_done = false;
  CHECK_INT_EQ(goop_host_reserve(hF, &id2, &ap, 1, on_rsv, NULL, &r), 0);
  CHECK(run_until(&rsv_done, 15000));
  CHECK_INT_EQ(rsv_status, 0);
  char want[300];
  snprintf(want, sizeof(want), "/ip4/%s/tcp/%s/p2p/%s/p2p-circuit", ip, strrchr(la, '/') + 1, s2);
  CHECK(announces(hF, want));
  char buf[700];
  bool loop_circuit = false;
  for (size_t i = 0; goop_host_announce_addr(hF, i, buf, sizeof(buf)) > 0; i++)
    loop_circuit |= strncmp(buf, "/ip4/127.", 9) == 0 && strstr(buf, "/p2p-circuit") != NULL;
  CHECK(!loop_circuit);
  goop_reservation_free(r);
  goop_host_free(hF);
  goop_relay_free(r2);
  goop_host_free(h2);
}

static void test_dial_through_relay(void) {
  CHECK_INT_EQ(connect_addr_sync(hA, circB), 0);
  goop_conn *c = goop_host_get_conn(hA, &idB);
  CHECK(c != NULL && c == connect_conn && goop_conn_is_relayed(c) && goop_conn_is_outbound(c));
  char ra[700] = "";
  if (c)
    goop_conn_remote_addr(c, ra, sizeof(ra));
  CHECK(strstr(ra, "/p2p-circuit") != NULL);
  CHECK(wait_for(b_sees_a, 10000));
  goop_conn *cb = goop_host_get_conn(hB, &idA);
  CHECK(cb != NULL && goop_conn_is_relayed(cb) && !goop_conn_is_outbound(cb));
  /* Identify over the relayed connection: A learns B's protocols and circuit address. */
  bool ident = false;
  for (int i = 0; i < 500 && !ident; i++) {
    run_for(10);
    ident = has_protocol(hA, &idB, GOOP_TEST_ECHO_ID);
  }
  CHECK(ident);
  CHECK(peer_has_addr(hA, &idB, "/p2p-circuit"));
  for (int i = 0; i < 3; i++)
    CHECK_INT_EQ(ping_sync(hA, &idB), 0);
  CHECK_INT_EQ(ping_sync(hB, &idA), 0);
  goop_test_client *tc = NULL;
  CHECK_INT_EQ(goop_test_client_start(hA, &idB, GOOP_TEST_ECHO, ECHO_BYTES, 10000, &tc), 0);
  const struct goop_test_result *res = goop_test_client_result(tc);
  CHECK(run_until(&res->done, 120000));
  CHECK_INT_EQ(res->status, 0);
  CHECK_INT_EQ(res->sent, ECHO_BYTES);
  CHECK_INT_EQ(res->received, ECHO_BYTES);
  if (res->status)
    printf("# echo: %s\n", res->error);
  else
    printf("# 16 MiB echo through the relay: %llu ms\n",
           (unsigned long long)(res->end_us - res->start_us) / 1000);
  goop_test_client_free(tc);
  /* Still the relayed connection (no second one appeared). */
  CHECK(goop_host_get_conn(hA, &idB) == c);
}

struct fetch {
  volatile bool done;
  int status;
  uint64_t got;
  char body[64];
};

static int f_chunk(goop_site_fetch *f, const uint8_t *data, size_t len, void *ud) {
  (void)f;
  struct fetch *x = ud;
  if (x->got + len < sizeof(x->body))
    memcpy(x->body + x->got, data, len);
  x->got += len;
  return 0;
}

static void f_done(goop_site_fetch *f, int status, const char *msg, void *ud) {
  (void)f, (void)msg;
  struct fetch *x = ud;
  x->status = status;
  x->done = true;
}

static void test_site_over_circuit(void) {
  static const struct goop_site_fetch_callbacks cbs = {GOOP_SITE_FETCH_CALLBACKS_V1, NULL, f_chunk, f_done};
  struct fetch f = {0};
  CHECK_INT_EQ(goop_site_fetch_start(hA, &idB, "/", 0, 10000, &cbs, &f, NULL), 0);
  CHECK(run_until(&f.done, 20000));
  CHECK_INT_EQ(f.status, 0);
  CHECK_INT_EQ(f.got, 20);
  CHECK(memcmp(f.body, "<h1>relayed hi</h1>\n", 20) == 0);
  goop_conn *c = goop_host_get_conn(hA, &idB);
  CHECK(c != NULL && goop_conn_is_relayed(c));
}

static void test_no_reservation(void) {
  goop_identity *id = NULL;
  goop_peer_id nobody;
  char s[GOOP_PEER_ID_STR_MAX], addr[700];
  CHECK_INT_EQ(goop_identity_generate(&id), 0);
  goop_identity_peer_id(id, &nobody);
  goop_identity_free(id);
  goop_peer_id_to_string(&nobody, s, sizeof(s));
  snprintf(addr, sizeof(addr), "%s/p2p-circuit/p2p/%s", addrR, s);
  CHECK_INT_EQ(connect_addr_sync(hA, addr), GOOP_ECONNREFUSED);
  CHECK(goop_host_get_conn(hA, &nobody) == NULL);
  /* A circuit address without a target, or through ourselves, is refused at once. */
  snprintf(addr, sizeof(addr), "%s/p2p-circuit", addrR);
  CHECK_INT_EQ(goop_host_connect_addr(hA, addr, 1000, on_connect, NULL), GOOP_EPARSE);
  snprintf(addr, sizeof(addr), "%s/p2p-circuit/p2p/%s", addrR, strR);
  CHECK_INT_EQ(goop_host_connect_addr(hA, addr, 1000, on_connect, NULL), GOOP_EINVAL);
}

static void test_relay_limits(void) {
  /* B already holds one circuit (from A): a second one towards B is over the limit. */
  struct goop_relay_limits lim;
  goop_relay_limits_default(&lim);
  lim.circuit_bytes = 64u << 20;
  lim.max_circuits_per_peer = 1;
  CHECK_INT_EQ(goop_relay_set_limits(relay, &lim), 0);
  goop_peer_id idC;
  goop_host *hC = make_fresh_host(&idC);
  CHECK_INT_EQ(connect_addr_sync(hC, circB), GOOP_ELIMIT);
  CHECK(goop_host_get_conn(hC, &idB) == NULL);
  /* A reservation refused for lack of room: GOOP_ELIMIT to the callback. */
  lim.max_circuits_per_peer = 16;
  lim.max_reservations = 1; /* B holds it */
  CHECK_INT_EQ(goop_relay_set_limits(relay, &lim), 0);
  const char *a = addrR;
  goop_reservation *r = NULL;
  rsv_done = false;
  CHECK_INT_EQ(goop_host_reserve(hC, &idR, &a, 1, on_rsv, NULL, &r), 0);
  CHECK(run_until(&rsv_done, 15000));
  CHECK_INT_EQ(rsv_status, GOOP_ELIMIT);
  CHECK(!goop_reservation_active(r));
  CHECK(!announces(hC, "p2p-circuit"));
  goop_reservation_free(r);
  goop_host_free(hC);
  lim.max_reservations = 1024;
  CHECK_INT_EQ(goop_relay_set_limits(relay, &lim), 0);
  /* The relay still serves the existing circuit. */
  CHECK_INT_EQ(ping_sync(hA, &idB), 0);
}

/* ---- hostile stop streams: H plays a relay talking to B ---------------------------- */

struct raw {
  goop_stream *s;
  volatile bool opened, ended;
  int open_status;
  uint8_t in[8192];
  size_t n_in;
  int end_err; /* 0 at a clean end of stream */
};

static void raw_readable(goop_stream *s, void *ud) {
  struct raw *r = ud;
  for (;;) {
    uint8_t buf[4096];
    ssize_t n = goop_stream_read(s, buf, sizeof(buf));
    if (n == GOOP_EAGAIN)
      return;
    if (n <= 0) {
      r->end_err = (int)n;
      r->ended = true;
      goop_stream_set_callbacks(s, NULL, NULL);
      return;
    }
    size_t k = GOOP_MIN((size_t)n, sizeof(r->in) - r->n_in);
    memcpy(r->in + r->n_in, buf, k);
    r->n_in += k;
  }
}

static void raw_error(goop_stream *s, int err, void *ud) {
  struct raw *r = ud;
  r->end_err = err;
  r->ended = true;
  goop_stream_set_callbacks(s, NULL, NULL);
}

static const struct goop_stream_callbacks raw_cbs = {GOOP_STREAM_CALLBACKS_V1, raw_readable, NULL, raw_error};

static void raw_opened(goop_host *h, int status, goop_stream *s, void *ud) {
  (void)h;
  struct raw *r = ud;
  r->open_status = status;
  r->s = s;
  r->opened = true;
  if (s)
    goop_stream_set_callbacks(s, &raw_cbs, r);
}

static void raw_open(goop_host *h, const goop_peer_id *to, struct raw *r) {
  static const char *const protos[] = {GOOP_PROTO_RELAY_STOP};
  memset(r, 0, sizeof(*r));
  if (goop_host_new_stream(h, to, protos, 1, 10000, raw_opened, r) != 0)
    return;
  run_until(&r->opened, 12000);
}

static void raw_close(struct raw *r) {
  if (r->s) {
    goop_stream_set_callbacks(r->s, NULL, NULL);
    goop_stream_unref(r->s);
  }
  r->s = NULL;
}

/* The STATUS B answered on |r|, or -1. */
static int raw_status(const struct raw *r) {
  const uint8_t *msg;
  size_t len, used;
  goop_stop_msg m;
  if (goop_relay_frame_take(r->in, r->n_in, &msg, &len, &used) != 0 || goop_stop_decode(msg, len, &m) != 0 ||
      m.type != GOOP_STOP_STATUS || !m.has_status)
    return -1;
  return (int)m.status;
}

/* Send |data| on a new stop stream to |to| (optionally closing our side) and wait for its end. */
static int hostile_exchange(goop_host *h, const goop_peer_id *to, const uint8_t *data, size_t len,
                            bool close_write, struct raw *r) {
  raw_open(h, to, r);
  if (r->open_status || !r->s)
    return -1;
  size_t off = 0;
  while (off < len) {
    ssize_t n = goop_stream_write(r->s, data + off, len - off);
    if (n == GOOP_EAGAIN) {
      run_for(10);
      continue;
    }
    if (n < 0)
      break;
    off += (size_t)n;
  }
  if (close_write)
    (void)goop_stream_close_write(r->s);
  run_until(&r->ended, 20000);
  return raw_status(r);
}

static void encode_stop(const goop_stop_msg *m, goop_buf *out) {
  goop_buf_reset(out);
  if (goop_stop_encode(m, out) != 0)
    abort();
}

static void test_hostile_stop(void) {
  goop_peer_id idH;
  goop_host *hH = make_fresh_host(&idH);
  CHECK_INT_EQ(goop_host_add_addr(hH, &idB, addrB, 0), 0);
  struct raw r;
  goop_buf b;
  goop_buf_init(&b, 0);

  static const uint8_t bad_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  CHECK_INT_EQ(hostile_exchange(hH, &idB, bad_varint, sizeof(bad_varint), false, &r),
               GOOP_RELAY_MALFORMED_MESSAGE);
  CHECK(r.ended);
  raw_close(&r);

  static const uint8_t too_long[] = {0x88, 0x27, 0x08, 0x00}; /* length 5000 */
  CHECK_INT_EQ(hostile_exchange(hH, &idB, too_long, sizeof(too_long), false, &r),
               GOOP_RELAY_MALFORMED_MESSAGE);
  CHECK(r.ended);
  raw_close(&r);

  goop_stop_msg m = {.has_type = true, .type = GOOP_STOP_STATUS, .has_status = true, .status = GOOP_RELAY_OK};
  encode_stop(&m, &b);
  CHECK_INT_EQ(hostile_exchange(hH, &idB, b.data, b.len, false, &r), GOOP_RELAY_UNEXPECTED_MESSAGE);
  raw_close(&r);

  m = (goop_stop_msg){.has_type = true, .type = GOOP_STOP_CONNECT};
  encode_stop(&m, &b);
  CHECK_INT_EQ(hostile_exchange(hH, &idB, b.data, b.len, false, &r), GOOP_RELAY_MALFORMED_MESSAGE);
  raw_close(&r);

  static const uint8_t junk_id[] = {1, 2, 3, 4, 5};
  m.peer.present = true;
  m.peer.id.data = junk_id;
  m.peer.id.len = sizeof(junk_id);
  encode_stop(&m, &b);
  CHECK_INT_EQ(hostile_exchange(hH, &idB, b.data, b.len, false, &r), GOOP_RELAY_MALFORMED_MESSAGE);
  raw_close(&r);

  /* "Connect B to itself" and "connect the relay to B through itself". */
  m.peer.id.data = idB.bytes;
  m.peer.id.len = idB.len;
  encode_stop(&m, &b);
  CHECK_INT_EQ(hostile_exchange(hH, &idB, b.data, b.len, false, &r), GOOP_RELAY_PERMISSION_DENIED);
  raw_close(&r);
  m.peer.id.data = idH.bytes;
  m.peer.id.len = idH.len;
  encode_stop(&m, &b);
  CHECK_INT_EQ(hostile_exchange(hH, &idB, b.data, b.len, false, &r), GOOP_RELAY_PERMISSION_DENIED);
  raw_close(&r);

  /* Truncated message, then end of stream: closed without an answer. */
  static const uint8_t truncated[] = {0x0a, 0x08, 0x00};
  CHECK_INT_EQ(hostile_exchange(hH, &idB, truncated, sizeof(truncated), true, &r), -1);
  CHECK(r.ended && r.end_err != 0);
  raw_close(&r);

  /* 64 KiB of junk. */
  uint8_t *junk = malloc(65536);
  for (size_t i = 0; i < 65536; i++)
    junk[i] = (uint8_t)(i * 131u + 17u);
  (void)hostile_exchange(hH, &idB, junk, 65536, false, &r);
  CHECK(r.ended);
  raw_close(&r);

  /* A valid CONNECT answered OK, then garbage instead of a Noise handshake: the
   * relayed connection fails and its stream closes. */
  goop_peer_id fake;
  goop_identity *fid = NULL;
  CHECK_INT_EQ(goop_identity_generate(&fid), 0);
  goop_identity_peer_id(fid, &fake);
  goop_identity_free(fid);
  m.peer.id.data = fake.bytes;
  m.peer.id.len = fake.len;
  encode_stop(&m, &b);
  goop_buf_append(&b, junk, 4096);
  CHECK_INT_EQ(hostile_exchange(hH, &idB, b.data, b.len, false, &r), GOOP_RELAY_OK);
  CHECK(r.ended);
  CHECK(goop_host_get_conn(hB, &fake) == NULL);
  raw_close(&r);
  free(junk);

  /* B survived all of it and holds no pending handshake. */
  run_for(100);
  CHECK_INT_EQ(ping_sync(hH, &idB), 0);
  CHECK_INT_EQ(hB->n_pending_inbound, 0);
  goop_buf_free(&b);
  goop_host_free(hH);
}

/* Relayed connections count as pending handshakes until they are up. */
static void test_pending_limit(void) {
  goop_host_config *cfg = NULL;
  CHECK_INT_EQ(goop_host_config_new(&cfg), 0);
  CHECK_INT_EQ(goop_host_config_set(cfg, GOOP_HOST_MAX_PENDING_HANDSHAKES, 2), 0);
  CHECK_INT_EQ(goop_host_config_set(cfg, GOOP_HOST_NEGOTIATION_TIMEOUT_MS, 1000), 0);
  goop_identity *id = NULL;
  CHECK_INT_EQ(goop_identity_generate(&id), 0);
  goop_host *hV = make_host(id, "/ip4/127.0.0.1/tcp/0", cfg);
  goop_identity_free(id);
  goop_host_config_free(cfg);
  goop_peer_id idV, idH;
  goop_host_peer_id(hV, &idV);
  char va[256];
  goop_host_listen_addr(hV, 0, va, sizeof(va));
  goop_host *hH = make_fresh_host(&idH);
  CHECK_INT_EQ(goop_host_add_addr(hH, &idV, va, 0), 0);
  goop_buf b;
  goop_buf_init(&b, 0);
  struct raw r[3];
  for (int i = 0; i < 3; i++) {
    goop_identity *src = NULL;
    goop_peer_id ps;
    CHECK_INT_EQ(goop_identity_generate(&src), 0);
    goop_identity_peer_id(src, &ps);
    goop_identity_free(src);
    goop_stop_msg m = {.has_type = true, .type = GOOP_STOP_CONNECT};
    m.peer.present = true;
    m.peer.id.data = ps.bytes;
    m.peer.id.len = ps.len;
    encode_stop(&m, &b);
    raw_open(hH, &idV, &r[i]);
    CHECK(r[i].s != NULL);
    if (!r[i].s)
      continue;
    CHECK_INT_EQ(goop_stream_write(r[i].s, b.data, b.len), (ssize_t)b.len);
    for (int k = 0; k < 500 && r[i].n_in == 0 && !r[i].ended; k++)
      run_for(10);
  }
  CHECK_INT_EQ(raw_status(&r[0]), GOOP_RELAY_OK);
  CHECK_INT_EQ(raw_status(&r[1]), GOOP_RELAY_OK);
  CHECK_INT_EQ(raw_status(&r[2]), GOOP_RELAY_RESOURCE_LIMIT_EXCEEDED);
  CHECK_INT_EQ(hV->n_pending_inbound, 2);
  for (int i = 0; i < 3; i++)
    raw_close(&r[i]);
  for (int k = 0; k < 300 && hV->n_pending_inbound > 0; k++)
    run_for(10);
  CHECK_INT_EQ(hV->n_pending_inbound, 0);
  /* A relay dripping its CONNECT a byte at a time (each byte well within the idle
   * timeout) is cut off at the deadline, without an answer. */
  struct raw d;
  raw_open(hH, &idV, &d);
  CHECK(d.s != NULL);
  static const uint8_t drip[] = {0x40, 0x08, 0x00, 0x12, 0x30, 0x0a};
  for (size_t i = 0; d.s && i < 40 && !d.ended; i++) {
    (void)goop_stream_write(d.s, &drip[i % sizeof(drip)], 1);
    run_for(200);
  }
  CHECK(d.ended);
  CHECK(d.end_err != 0);
  CHECK_INT_EQ(raw_status(&d), -1);
  raw_close(&d);
  run_for(100);
  CHECK_INT_EQ(hV->n_pending_inbound, 0);
  goop_buf_free(&b);
  goop_host_free(hH);
  goop_host_free(hV);
}

static goop_conn *direct_conn;
static bool relayed_gone(void) {
  goop_conn *c = goop_host_get_conn(hA, &idB);
  return c == direct_conn && goop_host_num_conns(hA) == 2; /* R and the direct B */
}

static void test_direct_wins(void) {
  goop_conn *relayed = goop_host_get_conn(hA, &idB);
  CHECK(relayed != NULL && goop_conn_is_relayed(relayed));
  goop_conn_ref(relayed);
  char a[400];
  snprintf(a, sizeof(a), "%s/p2p/%s", addrB, strB);
  CHECK_INT_EQ(connect_addr_sync(hA, a), 0);
  direct_conn = goop_host_get_conn(hA, &idB);
  CHECK(direct_conn != NULL && !goop_conn_is_relayed(direct_conn));
  CHECK(connect_conn == direct_conn);
  /* New streams go direct; the idle relayed connection goes away. */
  CHECK_INT_EQ(ping_sync(hA, &idB), 0);
  CHECK(wait_for(relayed_gone, 15000));
  CHECK(goop_conn_is_closed(relayed));
  goop_conn_unref(relayed);
  /* Connecting through the circuit address now reuses the direct connection. */
  CHECK_INT_EQ(connect_addr_sync(hA, circB), 0);
  CHECK(connect_conn == direct_conn);
  goop_conn_close(direct_conn);
  direct_conn = NULL;
  run_for(200);
}

static bool a_has_no_b(void) {
  return goop_host_get_conn(hA, &idB) == NULL && goop_host_get_conn(hB, &idA) == NULL;
}

static void test_connect_falls_back(void) {
  /* D knows B by Peer ID: a direct address where nothing listens, and the circuit address. */
  goop_peer_id idD;
  goop_host *hD = make_fresh_host(&idD);
  goop_host *dead = make_fresh_host(NULL);
  char deadaddr[256];
  goop_host_listen_addr(dead, 0, deadaddr, sizeof(deadaddr));
  goop_host_free(dead); /* its port now refuses */
  char circ_only[600];
  snprintf(circ_only, sizeof(circ_only), "%s/p2p-circuit", addrR);
  CHECK_INT_EQ(goop_host_add_addr(hD, &idB, deadaddr, 0), 0);
  CHECK_INT_EQ(goop_host_add_addr(hD, &idB, circ_only, 0), 0);
  connect_done = false;
  CHECK_INT_EQ(goop_host_connect(hD, &idB, 20000, on_connect, NULL), 0);
  CHECK(run_until(&connect_done, 25000));
  CHECK_INT_EQ(connect_status, 0);
  goop_conn *c = goop_host_get_conn(hD, &idB);
  CHECK(c != NULL && goop_conn_is_relayed(c));
  CHECK_INT_EQ(ping_sync(hD, &idB), 0);
  /* With only the circuit address the relay is used at once. */
  goop_peer_id idE;
  goop_host *hE = make_fresh_host(&idE);
  CHECK_INT_EQ(goop_host_add_addr(hE, &idB, circ_only, 0), 0);
  connect_done = false;
  CHECK_INT_EQ(goop_host_connect(hE, &idB, 20000, on_connect, NULL), 0);
  CHECK(run_until(&connect_done, 25000));
  CHECK_INT_EQ(connect_status, 0);
  CHECK(goop_conn_is_relayed(goop_host_get_conn(hE, &idB)));
  goop_host_free(hE);
  goop_host_free(hD);
}

static bool both_closed_ca, both_closed_cb;
static goop_conn *dies_a, *dies_b;
static bool both_relayed_closed(void) {
  return goop_conn_is_closed(dies_a) && goop_conn_is_closed(dies_b);
}
static bool reservation_back(void) {
  return goop_reservation_active(rsvB) && rsv_ok_count > 0;
}

static void test_relay_dies_and_returns(void) {
  (void)both_closed_ca, (void)both_closed_cb;
  CHECK(wait_for(a_has_no_b, 10000));
  CHECK_INT_EQ(connect_addr_sync(hA, circB), 0);
  CHECK(wait_for(b_sees_a, 10000));
  dies_a = goop_host_get_conn(hA, &idB);
  dies_b = goop_host_get_conn(hB, &idA);
  CHECK(dies_a && dies_b && goop_conn_is_relayed(dies_a) && goop_conn_is_relayed(dies_b));
  if (!dies_a || !dies_b)
    return;
  goop_conn_ref(dies_a);
  goop_conn_ref(dies_b);
  char listen[256];
  goop_host_listen_addr(hR, 0, listen, sizeof(listen));
  stop_relay();
  CHECK(wait_for(both_relayed_closed, 15000));
  CHECK(goop_host_get_conn(hA, &idB) == NULL);
  CHECK(goop_host_get_conn(hB, &idA) == NULL);
  CHECK(!goop_reservation_active(rsvB));
  CHECK(!announces(hB, "p2p-circuit"));
  goop_conn_unref(dies_a);
  goop_conn_unref(dies_b);
  /* Same identity, same port: B reserves again on its own. */
  run_for(500);
  rsv_ok_count = 0;
  start_relay(listen);
  CHECK(wait_for(reservation_back, 30000));
  char want[300];
  snprintf(want, sizeof(want), "/p2p/%s/p2p-circuit", strR);
  CHECK(announces(hB, want));
  CHECK_INT_EQ(connect_addr_sync(hA, circB), 0);
  CHECK_INT_EQ(ping_sync(hA, &idB), 0);
}

static void write_site(const char *root) {
  char p[PATH_MAX];
  snprintf(p, sizeof(p), "%s/index.html", root);
  FILE *f = fopen(p, "w");
  if (!f)
    abort();
  fputs("<h1>relayed hi</h1>\n", f);
  fclose(f);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  base = event_base_new();
  if (!base || goop_ctx_new(base, &ctx) != 0)
    return 1;
  goop_ctx_set_log_fn(ctx, log_fn, GOOP_LOG_DEBUG, NULL);
  if (goop_identity_generate(&idR_key) != 0)
    return 1;
  goop_identity_peer_id(idR_key, &idR);
  goop_peer_id_to_string(&idR, strR, sizeof(strR));
  start_relay("/ip4/127.0.0.1/tcp/0");
  char la[200];
  goop_host_listen_addr(hR, 0, la, sizeof(la));
  snprintf(addrR, sizeof(addrR), "%s/p2p/%s", la, strR);

  /* B is a peer directory with a site. */
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/goop-test-circuit-XXXXXX");
  if (!mkdtemp(tmpdir))
    return 1;
  char dir[512], err[GOOP_ERRBUF_SIZE];
  snprintf(dir, sizeof(dir), "%s/b", tmpdir);
  goop_config *cfg;
  goop_identity *idB_key;
  if (goop_peer_dir_open(dir, &cfg, &idB_key, NULL, err, sizeof(err)) != 0) {
    fprintf(stderr, "peer dir: %s\n", err);
    return 1;
  }
  goop_identity_peer_id(idB_key, &idB);
  goop_peer_id_to_string(&idB, strB, sizeof(strB));
  if (goop_site_open(cfg, &idB, &siteB, err, sizeof(err)) != 0) {
    fprintf(stderr, "site: %s\n", err);
    return 1;
  }
  char *root = goop_config_resolve_path(cfg, "paths.site_root");
  write_site(root);
  free(root);
  goop_config_free(cfg);
  hB = make_host(idB_key, "/ip4/127.0.0.1/tcp/0", NULL);
  goop_identity_free(idB_key);
  goop_host_listen_addr(hB, 0, addrB, sizeof(addrB));
  if (goop_site_serve(siteB, hB) != 0 || goop_test_serve_all(hB, base) != 0)
    return 1;
  hA = make_fresh_host(&idA);
  snprintf(circB, sizeof(circB), "%s/p2p-circuit/p2p/%s", addrR, strB);

  RUN(test_reserve);
  RUN(test_refresh);
  RUN(test_reservation_addresses);
  RUN(test_dial_through_relay);
  RUN(test_site_over_circuit);
  RUN(test_no_reservation);
  RUN(test_relay_limits);
  RUN(test_hostile_stop);
  RUN(test_pending_limit);
  RUN(test_direct_wins);
  RUN(test_connect_falls_back);
  RUN(test_relay_dies_and_returns);

  goop_reservation_free(rsvB);
  goop_site_unserve(siteB);
  goop_host_free(hA);
  goop_host_free(hB);
  goop_site_free(siteB);
  stop_relay();
  goop_identity_free(idR_key);
  goop_ctx_free(ctx);
  event_base_free(base);
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  (void)system(cmd);
  return tap_done();
}
