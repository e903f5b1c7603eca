/*
 * Circuit relay v2 interop with js-libp2p (@libp2p/circuit-relay-v2, driven
 * through js-relay.sh, see README.md):
 *
 *   - a js relay relays between two C peers: C host B reserves a slot on the
 *     js relay (voucher checked), C host A dials B through it; identify, ping
 *     and an echo over the relayed connection;
 *   - a js peer reaches a C peer through a relay (js dials ".../p2p-circuit/p2p/B");
 *   - failure paths: no reservation for the target, reservation refused
 *     (GOOP_ELIMIT), the relay dying under both relayed connections.
 *
 * All C hosts and the js children share one libevent loop.
 */
#include <event2/event.h>
#include <goop/goop.h>
#include <goop/relay.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jspeer.h"
#include "tap.h"
#include "testproto.h"

#define ECHO_BYTES (1024u * 1024u)

static struct event_base *base;
static goop_ctx *ctx;
static goop_host *hA, *hB;
static goop_peer_id idA, idB, idR;
static char idA_str[GOOP_PEER_ID_STR_MAX], idB_str[GOOP_PEER_ID_STR_MAX];
static goop_jspeer *jsR, *jsX;
static goop_reservation *rsvB;
static char circ_B[600]; /* <relay addr>/p2p-circuit/p2p/<B> */

static void log_fn(enum goop_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (getenv("GOOP_TEST_LOG"))
    fprintf(stderr, "[%d] %s\n", level, msg);
}

static const char *js_relay_program(void) {
  static char path[1024];
  const char *dir = getenv("GOOP_INTEROP_DIR");
  if (!dir)
    return NULL;
  snprintf(path, sizeof(path), "%s/js-relay.sh", dir);
  return path;
}

static goop_jspeer *spawn_js(bool relay, const char *extra, const char *extra_val) {
  const char *args[8];
  size_t n = 0;
  args[n++] = "--listen";
  args[n++] = "/ip4/127.0.0.1/tcp/0";
  if (relay)
    args[n++] = "--relay";
  if (extra) {
    args[n++] = extra;
    args[n++] = extra_val;
  }
  args[n] = NULL;
  goop_jspeer *js = NULL;
  if (goop_jspeer_spawn(base, js_relay_program(), args, &js) != 0)
    return NULL;
  if (goop_jspeer_wait_listening(js, 300000) != 0) {
    goop_jspeer_close(js, 0);
    return NULL;
  }
  return js;
}

static bool run_until(const bool *flag, int ms) {
  return goop_jspeer_run_until(jsX, flag, ms);
}

static goop_host *make_host(goop_peer_id *ret_id, char *ret_str) {
  goop_identity *id = NULL;
  goop_host *h = NULL;
  if (goop_identity_generate(&id) != 0)
    return NULL;
  int rc = goop_host_new(ctx, id, NULL, &h);
  goop_identity_free(id);
  if (rc || goop_host_listen(h, "/ip4/127.0.0.1/tcp/0") != 0 || goop_test_serve_all(h, base) != 0)
    return NULL;
  /* The C<->C circuit stays relayed: no hole punching. */
  (void)goop_host_remove_stream_handler(h, "/libp2p/dcutr");
  goop_host_peer_id(h, ret_id);
  goop_peer_id_to_string(ret_id, ret_str, GOOP_PEER_ID_STR_MAX);
  return h;
}

/* ---- callbacks ---------------------------------------------------------------- */

static bool rsv_done;
static int rsv_status;
static int rsv_count;
static void on_rsv(goop_host *h, goop_reservation *r, int status, void *ud) {
  (void)h, (void)r, (void)ud;
  rsv_status = status;
  rsv_done = true;
  rsv_count++;
}

static bool connect_done;
static int connect_status;
static void on_connect(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h, (void)c, (void)ud;
  connect_status = status;
  connect_done = true;
}

static bool ping_done;
static int ping_status;
static void on_ping(goop_host *h, int status, uint64_t rtt, void *ud) {
  (void)h, (void)rtt, (void)ud;
  ping_status = status;
  ping_done = true;
}

static bool identified_AB;
static void on_identified(goop_host *h, goop_conn *c, void *ud) {
  (void)h, (void)ud;
  goop_peer_id p;
  goop_conn_remote_peer(c, &p);
  if (goop_peer_id_equal(&p, &idB))
    identified_AB = true;
}

static bool has_protocol(goop_host *h, const goop_peer_id *peer, const char *proto) {
  const char *p;
  for (size_t i = 0; (p = goop_host_peer_protocol(h, peer, i)) != NULL; i++)
    if (strcmp(p, proto) == 0)
      return true;
  return false;
}

/* Does |h| announce an address containing |needle|? */
static bool announces(goop_host *h, const char *needle) {
  char buf[700];
  for (size_t i = 0; goop_host_announce_addr(h, i, buf, sizeof(buf)) > 0; i++)
    if (strstr(buf, needle))
      return true;
  return false;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_reserve_on_js_relay(void) {
  const char *raddr = goop_jspeer_addr(jsR, 0);
  CHECK(raddr != NULL);
  CHECK_INT_EQ(goop_host_reserve(hB, &idR, &raddr, 1, on_rsv, NULL, &rsvB), 0);
  CHECK(run_until(&rsv_done, 20000));
  CHECK_INT_EQ(rsv_status, 0);
  CHECK(goop_reservation_active(rsvB));
  CHECK(goop_reservation_expire(rsvB) > (uint64_t)time(NULL));
  /* ".../p2p/<relay>/p2p-circuit" among B's announced addresses (and so in identify). */
  char want[300];
  snprintf(want, sizeof(want), "/p2p/%s/p2p-circuit", goop_jspeer_peer_id(jsR));
  CHECK(announces(hB, want));
  json_t *r = goop_jspeer_call(jsR, json_pack("{s:s}", "cmd", "relay_stats"), 10000);
  CHECK(goop_jspeer_ok(r));
  CHECK(goop_jspeer_array_has(json_object_get(r, "reservations"), idB_str));
  json_decref(r);
  snprintf(circ_B, sizeof(circ_B), "%s/p2p-circuit/p2p/%s", raddr, idB_str);
}

static void test_c_dials_c_through_js_relay(void) {
  struct goop_host_events ev = {.version = GOOP_HOST_EVENTS_V1, .on_identified = on_identified};
  goop_host_set_events(hA, &ev, NULL);
  connect_done = false;
  CHECK_INT_EQ(goop_host_connect_addr(hA, circ_B, 20000, on_connect, NULL), 0);
  CHECK(run_until(&connect_done, 25000));
  CHECK_INT_EQ(connect_status, 0);
  goop_conn *c = goop_host_get_conn(hA, &idB);
  CHECK(c != NULL && goop_conn_is_relayed(c) && goop_conn_is_outbound(c));
  char ra[600] = "";
  if (c)
    goop_conn_remote_addr(c, ra, sizeof(ra));
  CHECK(strstr(ra, "/p2p-circuit") != NULL);
  /* B (the responder) finishes its side of the upgrade a little later. */
  uint64_t until = goop_jspeer_now_ms() + 10000;
  while (!goop_host_get_conn(hB, &idA) && goop_jspeer_now_ms() < until)
    goop_jspeer_run_for(jsX, 20);
  goop_conn *cb = goop_host_get_conn(hB, &idA);
  CHECK(cb != NULL && goop_conn_is_relayed(cb) && !goop_conn_is_outbound(cb));
  /* The relay connection itself is direct. */
  goop_conn *cr = goop_host_get_conn(hA, &idR);
  CHECK(cr != NULL && !goop_conn_is_relayed(cr));
  CHECK(run_until(&identified_AB, 10000));
  CHECK(has_protocol(hA, &idB, GOOP_TEST_ECHO_ID));
  for (int i = 0; i < 3; i++) {
    ping_done = false;
    CHECK_INT_EQ(goop_host_ping(hA, &idB, 10000, on_ping, NULL), 0);
    CHECK(run_until(&ping_done, 12000));
    CHECK_INT_EQ(ping_status, 0);
  }
  goop_test_client *tc = NULL;
  CHECK_INT_EQ(goop_test_client_start(hA, &idB, GOOP_TEST_ECHO, ECHO_BYTES, 10000, &tc), 0);
  const struct goop_test_result *res = goop_test_client_result(tc);
  CHECK(run_until(&res->done, 60000));
  CHECK_INT_EQ(res->status, 0);
  CHECK_INT_EQ(res->received, ECHO_BYTES);
  if (res->status)
    printf("# echo: %s\n", res->error);
  goop_test_client_free(tc);
}

static void test_js_dials_c_through_js_relay(void) {
  json_t *r =
      goop_jspeer_call(jsX, json_pack("{s:s, s:s, s:i}", "cmd", "ping", "addr", circ_B, "count", 3), 30000);
  CHECK(goop_jspeer_ok(r));
  if (!goop_jspeer_ok(r))
    printf("# js ping: %s\n", goop_jspeer_error(r));
  json_decref(r);
  r = goop_jspeer_call(jsX, json_pack("{s:s, s:s, s:i}", "cmd", "echo", "addr", circ_B, "bytes", 256 * 1024),
                       60000);
  CHECK(goop_jspeer_ok(r));
  if (!goop_jspeer_ok(r))
    printf("# js echo: %s\n", goop_jspeer_error(r));
  json_decref(r);
  goop_peer_id idX;
  CHECK_INT_EQ(goop_peer_id_from_string(goop_jspeer_peer_id(jsX), &idX), 0);
  goop_conn *c = goop_host_get_conn(hB, &idX);
  CHECK(c != NULL && goop_conn_is_relayed(c) && !goop_conn_is_outbound(c));
}

/* Our relay service between a js dialler and C target B (js needs runOnLimitedConnection:
 * the relay announces limits). */
static void test_js_dials_c_through_c_relay(void) {
  goop_identity *id = NULL;
  goop_host *hR2 = NULL;
  goop_relay *relay = NULL;
  goop_peer_id idR2;
  char strR2[GOOP_PEER_ID_STR_MAX], la[200], raddr[400], circ[700];
  CHECK_INT_EQ(goop_identity_generate(&id), 0);
  CHECK_INT_EQ(goop_host_new(ctx, id, NULL, &hR2), 0);
  goop_identity_free(id);
  if (!hR2)
    return;
  CHECK_INT_EQ(goop_host_listen(hR2, "/ip4/127.0.0.1/tcp/0"), 0);
  CHECK_INT_EQ(goop_relay_new(hR2, NULL, &relay), 0);
  goop_host_peer_id(hR2, &idR2);
  goop_peer_id_to_string(&idR2, strR2, sizeof(strR2));
  goop_host_listen_addr(hR2, 0, la, sizeof(la));
  snprintf(raddr, sizeof(raddr), "%s/p2p/%s", la, strR2);
  const char *ra = raddr;
  goop_reservation *r = NULL;
  rsv_done = false;
  CHECK_INT_EQ(goop_host_reserve(hB, &idR2, &ra, 1, on_rsv, NULL, &r), 0);
  CHECK(run_until(&rsv_done, 20000));
  CHECK_INT_EQ(rsv_status, 0);
  snprintf(circ, sizeof(circ), "%s/p2p-circuit/p2p/%s", raddr, idB_str);
  /* Drop the connection through the js relay first. */
  json_t *j = goop_jspeer_call(jsX, json_pack("{s:s, s:s}", "cmd", "hangup", "peer_id", idB_str), 10000);
  CHECK(goop_jspeer_ok(j));
  json_decref(j);
  j = goop_jspeer_call(jsX, json_pack("{s:s, s:s}", "cmd", "dial", "addr", circ), 30000);
  CHECK(goop_jspeer_ok(j));
  CHECK(json_is_true(json_object_get(j, "limited")));
  if (!goop_jspeer_ok(j))
    printf("# js dial: %s\n", goop_jspeer_error(j));
  json_decref(j);
  j = goop_jspeer_call(jsX, json_pack("{s:s, s:s, s:i}", "cmd", "ping", "addr", circ, "count", 3), 30000);
  CHECK(goop_jspeer_ok(j));
  json_decref(j);
  j = goop_jspeer_call(jsX, json_pack("{s:s, s:s, s:i}", "cmd", "echo", "addr", circ, "bytes", 256 * 1024),
                       60000);
  CHECK(goop_jspeer_ok(j));
  if (!goop_jspeer_ok(j))
    printf("# js echo: %s\n", goop_jspeer_error(j));
  json_decref(j);
  struct goop_relay_stats st;
  goop_relay_get_stats(relay, &st);
  CHECK(st.circuits_opened >= 1);
  CHECK(st.bytes_relayed >= 2u * 256u * 1024u);
  goop_reservation_free(r);
  goop_relay_free(relay);
  goop_host_free(hR2);
  /* js notices its relayed connection closing; B drops its side too. */
  goop_jspeer_run_for(jsX, 500);
}

static void test_no_reservation(void) {
  /* The relay holds no slot for a fresh peer ID: NO_RESERVATION -> GOOP_ECONNREFUSED. */
  goop_identity *id = NULL;
  goop_peer_id nobody;
  char nobody_str[GOOP_PEER_ID_STR_MAX];
  CHECK_INT_EQ(goop_identity_generate(&id), 0);
  goop_identity_peer_id(id, &nobody);
  goop_identity_free(id);
  goop_peer_id_to_string(&nobody, nobody_str, sizeof(nobody_str));
  char addr[600];
  snprintf(addr, sizeof(addr), "%s/p2p-circuit/p2p/%s", goop_jspeer_addr(jsR, 0), nobody_str);
  connect_done = false;
  CHECK_INT_EQ(goop_host_connect_addr(hA, addr, 20000, on_connect, NULL), 0);
  CHECK(run_until(&connect_done, 25000));
  CHECK_INT_EQ(connect_status, GOOP_ECONNREFUSED);
  CHECK(goop_host_get_conn(hA, &nobody) == NULL);
}

static void test_reservation_refused(void) {
  goop_jspeer *full = spawn_js(true, "--max-reservations", "0");
  CHECK(full != NULL);
  if (!full)
    return;
  goop_peer_id idF;
  CHECK_INT_EQ(goop_peer_id_from_string(goop_jspeer_peer_id(full), &idF), 0);
  const char *faddr = goop_jspeer_addr(full, 0);
  goop_reservation *r = NULL;
  rsv_done = false;
  CHECK_INT_EQ(goop_host_reserve(hA, &idF, &faddr, 1, on_rsv, NULL, &r), 0);
  CHECK(run_until(&rsv_done, 20000));
  CHECK_INT_EQ(rsv_status, GOOP_ELIMIT);
  CHECK(!goop_reservation_active(r));
  CHECK(!announces(hA, "p2p-circuit"));
  goop_reservation_free(r);
  CHECK_INT_EQ(goop_jspeer_close(full, 10000), 0);
}

static void test_relay_dies(void) {
  goop_conn *ca = goop_host_get_conn(hA, &idB);
  goop_conn *cb = goop_host_get_conn(hB, &idA);
  CHECK(ca && cb);
  if (!ca || !cb)
    return;
  goop_conn_ref(ca);
  goop_conn_ref(cb);
  CHECK_INT_EQ(goop_jspeer_kill(jsR, SIGKILL), 0);
  bool both = false;
  uint64_t until = goop_jspeer_now_ms() + 30000;
  while (!both && goop_jspeer_now_ms() < until) {
    goop_jspeer_run_for(jsX, 100);
    both = goop_conn_is_closed(ca) && goop_conn_is_closed(cb);
  }
  CHECK(both);
  CHECK(goop_host_get_conn(hA, &idB) == NULL);
  CHECK(goop_host_get_conn(hB, &idA) == NULL);
  bool inactive = false;
  until = goop_jspeer_now_ms() + 10000;
  while (!inactive && goop_jspeer_now_ms() < until) {
    goop_jspeer_run_for(jsX, 100);
    inactive = !goop_reservation_active(rsvB);
  }
  CHECK(inactive);
  CHECK(!announces(hB, "p2p-circuit"));
  goop_conn_unref(ca);
  goop_conn_unref(cb);
  goop_jspeer_close(jsR, 5000);
  jsR = NULL;
}

int main(void) {
  if (!goop_jspeer_program() || !js_relay_program()) {
    printf("1..0 # SKIP GOOP_JS_PEER / GOOP_INTEROP_DIR not set\n");
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  base = event_base_new();
  if (!base || goop_ctx_new(base, &ctx) != 0)
    return 1;
  goop_ctx_set_log_fn(ctx, log_fn, GOOP_LOG_DEBUG, NULL);
  hA = make_host(&idA, idA_str);
  hB = make_host(&idB, idB_str);
  if (!hA || !hB)
    return 1;
  jsR = spawn_js(true, NULL, NULL);
  jsX = spawn_js(false, NULL, NULL);
  if (!jsR || !jsX || goop_peer_id_from_string(goop_jspeer_peer_id(jsR), &idR) != 0) {
    printf("Bail out! js nodes did not start\n");
    goop_jspeer_close(jsR, 0);
    goop_jspeer_close(jsX, 0);
    return 1;
  }

  RUN(test_reserve_on_js_relay);
  RUN(test_c_dials_c_through_js_relay);
  RUN(test_js_dials_c_through_js_relay);
  RUN(test_js_dials_c_through_c_relay);
  RUN(test_no_reservation);
  RUN(test_reservation_refused);
  RUN(test_relay_dies);

  goop_reservation_free(rsvB);
  if (jsR)
    goop_jspeer_close(jsR, 5000);
  CHECK_INT_EQ(goop_jspeer_close(jsX, 10000), 0);
  goop_host_free(hA);
  goop_host_free(hB);
  goop_ctx_free(ctx);
  event_base_free(base);
  return tap_done();
}
