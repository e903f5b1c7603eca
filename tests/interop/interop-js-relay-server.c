/*
 * libgoop's relay service between two js-libp2p peers (@libp2p/circuit-relay-v2
 * as the client, js-relay-peer.mjs): js B listens on
 * "<relay addr>/p2p/<R>/p2p-circuit" (it reserves a slot on our relay, which
 * the relay counts), js A reaches B through ".../p2p/R/p2p-circuit/p2p/B":
 * dial (a limited connection), ping and a 1 MiB echo with SHA-256 checked on
 * both ends, all bytes through the relay. Failure path: A dialling a peer
 * without a reservation gets an error, the relay keeps serving.
 */
#include <event2/event.h>
#include <goop/goop.h>
#include <goop/relay.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jspeer.h"
#include "tap.h"

#define ECHO_BYTES (1024u * 1024u)

static struct event_base *base;
static goop_ctx *ctx;
static goop_host *R;
static goop_relay *relay;
static goop_jspeer *jsA, *jsB;
static char relay_addr[400]; /* <listen addr>/p2p/<R> */
static char circ_B[700];     /* <relay_addr>/p2p-circuit/p2p/<B> */

static void log_fn(enum goop_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (getenv("GOOP_TEST_LOG"))
    fprintf(stderr, "[%d] %s\n", level, msg);
}

static const char *program(void) {
  static char path[1024];
  const char *dir = getenv("GOOP_INTEROP_DIR");
  if (!dir)
    return NULL;
  snprintf(path, sizeof(path), "%s/js-relay-peer.sh", dir);
  return path;
}

static goop_jspeer *spawn_js(const char *listen) {
  const char *args[3] = {NULL, NULL, NULL};
  if (listen) {
    args[0] = "--listen";
    args[1] = listen;
  }
  goop_jspeer *js = NULL;
  if (goop_jspeer_spawn(base, program(), args, &js) != 0)
    return NULL;
  if (goop_jspeer_wait_listening(js, 300000) != 0) {
    goop_jspeer_close(js, 0);
    return NULL;
  }
  return js;
}

static struct goop_relay_stats stats(void) {
  struct goop_relay_stats st;
  goop_relay_get_stats(relay, &st);
  return st;
}

static void test_js_reserves(void) {
  char listen[500];
  snprintf(listen, sizeof(listen), "%s/p2p-circuit", relay_addr);
  jsB = spawn_js(listen);
  CHECK(jsB != NULL);
  if (!jsB)
    return;
  /* B's circuit address is one of its listen addresses once the reservation is made. */
  bool has_circuit = false;
  const char *a;
  for (size_t i = 0; (a = goop_jspeer_addr(jsB, i)) != NULL; i++)
    if (strstr(a, "/p2p-circuit") && strstr(a, relay_addr))
      has_circuit = true;
  CHECK(has_circuit);
  struct goop_relay_stats st = stats();
  CHECK_INT_EQ(st.reservations_active, 1);
  CHECK_INT_EQ(st.reservations_accepted, 1);
  snprintf(circ_B, sizeof(circ_B), "%s/p2p-circuit/p2p/%s", relay_addr, goop_jspeer_peer_id(jsB));
}

static void test_js_through_relay(void) {
  if (!jsB)
    return;
  jsA = spawn_js(NULL);
  CHECK(jsA != NULL);
  if (!jsA)
    return;
  json_t *r = goop_jspeer_call(jsA, json_pack("{s:s, s:s}", "cmd", "dial", "addr", circ_B), 60000);
  CHECK(goop_jspeer_ok(r));
  if (!goop_jspeer_ok(r))
    printf("# dial: %s\n", goop_jspeer_error(r));
  CHECK(json_is_true(json_object_get(r, "limited")));
  json_decref(r);
  CHECK_INT_EQ(stats().circuits_opened, 1);
  CHECK_INT_EQ(stats().circuits_active, 1);

  r = goop_jspeer_call(
      jsA, json_pack("{s:s, s:s, s:i}", "cmd", "ping", "peer_id", goop_jspeer_peer_id(jsB), "count", 3),
      60000);
  CHECK(goop_jspeer_ok(r));
  if (!goop_jspeer_ok(r))
    printf("# ping: %s\n", goop_jspeer_error(r));
  json_decref(r);

  uint64_t before = stats().bytes_relayed;
  r = goop_jspeer_call(
      jsA,
      json_pack("{s:s, s:s, s:i}", "cmd", "echo", "peer_id", goop_jspeer_peer_id(jsB), "bytes", ECHO_BYTES),
      120000);
  CHECK(goop_jspeer_ok(r));
  if (!goop_jspeer_ok(r))
    printf("# echo: %s\n", goop_jspeer_error(r));
  CHECK_INT_EQ(json_integer_value(json_object_get(r, "received")), ECHO_BYTES);
  json_decref(r);
  /* Every byte went through the relay, both ways (plus Noise and yamux framing). */
  CHECK(stats().bytes_relayed - before >= 2 * ECHO_BYTES);
  /* The connection A<->B is a relayed one on both sides. */
  r = goop_jspeer_call(jsB, json_pack("{s:s}", "cmd", "peers"), 10000);
  bool b_sees_a = false;
  json_t *conns = json_object_get(r, "connections"), *c;
  size_t i;
  json_array_foreach(conns, i, c) {
    const char *ra = json_string_value(json_object_get(c, "remote_addr"));
    if (strcmp(json_string_value(json_object_get(c, "peer_id")), goop_jspeer_peer_id(jsA)) == 0 && ra &&
        strstr(ra, "/p2p-circuit"))
      b_sees_a = true;
  }
  CHECK(b_sees_a);
  json_decref(r);
}

static void test_no_reservation(void) {
  if (!jsA)
    return;
  uint64_t refused = stats().circuits_refused;
  /* A itself holds no reservation. */
  char circ[700];
  snprintf(circ, sizeof(circ), "%s/p2p-circuit/p2p/%s", relay_addr, goop_jspeer_peer_id(jsA));
  json_t *r = goop_jspeer_call(jsB, json_pack("{s:s, s:s}", "cmd", "dial", "addr", circ), 60000);
  CHECK(r && !goop_jspeer_ok(r));
  json_decref(r);
  CHECK(stats().circuits_refused > refused);
  /* The relay still relays A -> B. */
  r = goop_jspeer_call(jsA, json_pack("{s:s, s:s}", "cmd", "ping", "peer_id", goop_jspeer_peer_id(jsB)),
                       60000);
  CHECK(goop_jspeer_ok(r));
  if (!goop_jspeer_ok(r))
    printf("# ping after the refused dial: %s\n", goop_jspeer_error(r));
  json_decref(r);
}

static void test_shutdown(void) {
  CHECK_INT_EQ(goop_jspeer_close(jsA, 10000), 0);
  CHECK_INT_EQ(goop_jspeer_close(jsB, 10000), 0);
  jsA = jsB = NULL;
  /* With both js peers gone the reservation and the circuit go too. */
  for (int i = 0; i < 500 && (stats().reservations_active || stats().circuits_active); i++) {
    struct timeval tv = {0, 20000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  CHECK_INT_EQ(stats().reservations_active, 0);
  CHECK_INT_EQ(stats().circuits_active, 0);
}

int main(void) {
  if (!program()) {
    printf("1..0 # SKIP GOOP_INTEROP_DIR not set\n");
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  base = event_base_new();
  if (!base || goop_ctx_new(base, &ctx) != 0)
    return 1;
  goop_ctx_set_log_fn(ctx, log_fn, GOOP_LOG_DEBUG, NULL);
  goop_identity *id = NULL;
  if (goop_identity_generate(&id) != 0)
    return 1;
  int rc = goop_host_new(ctx, id, NULL, &R);
  goop_identity_free(id);
  if (rc || goop_host_listen(R, "/ip4/127.0.0.1/tcp/0") != 0 || goop_relay_new(R, NULL, &relay) != 0)
    return 1;
  goop_peer_id rid;
  char rid_str[GOOP_PEER_ID_STR_MAX], listen[200];
  goop_host_peer_id(R, &rid);
  goop_peer_id_to_string(&rid, rid_str, sizeof(rid_str));
  goop_host_listen_addr(R, 0, listen, sizeof(listen));
  snprintf(relay_addr, sizeof(relay_addr), "%s/p2p/%s", listen, rid_str);

  RUN(test_js_reserves);
  RUN(test_js_through_relay);
  RUN(test_no_reservation);
  RUN(test_shutdown);

  goop_relay_free(relay);
  goop_host_free(R);
  goop_ctx_free(ctx);
  event_base_free(base);
  return tap_done();
}
