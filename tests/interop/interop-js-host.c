/*
 * C<->js-libp2p interop: connect in both directions, identify, ping, and the
 * test protocols (64 MiB echo each way, sink and source both ways) against
 * js-peer.sh (tests/interop/README.md). One C host and two js peers on one
 * libevent loop: the C host dials js peer A, js peer B dials the C host.
 */
#include <event2/event.h>
#include <goop/goop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jspeer.h"
#include "tap.h"
#include "testproto.h"
#include "transport-internal.h"

#define MiB (1024u * 1024u)
#define BULK_BYTES (64u * MiB)
#define SIDE_BYTES (64u * MiB)

static struct event_base *base;
static goop_ctx *ctx;
static goop_host *host;
static goop_peer_id self_id;
static char self_id_str[GOOP_PEER_ID_STR_MAX];
static char self_addr[300]; /* listen address with /p2p/<id> */
static goop_jspeer *jsA, *jsB;
static goop_peer_id idA, idB;
static bool identified_A, identified_B;

static void log_fn(enum goop_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (getenv("GOOP_TEST_LOG"))
    fprintf(stderr, "[%d] %s\n", level, msg);
}

static void on_identified(goop_host *h, goop_conn *c, void *ud) {
  (void)h, (void)ud;
  goop_peer_id p;
  goop_conn_remote_peer(c, &p);
  if (goop_peer_id_equal(&p, &idA))
    identified_A = true;
  if (goop_peer_id_equal(&p, &idB))
    identified_B = true;
}

/* Run the loop until *flag or |ms| passed. */
static bool run_until(const bool *flag, int ms) {
  return goop_jspeer_run_until(jsA, flag, ms);
}

static const struct goop_test_result *run_client(goop_test_client *c, int ms) {
  const struct goop_test_result *r = goop_test_client_result(c);
  if (getenv("GOOP_TEST_PROGRESS")) {
    for (int i = 0; i < ms / 100 && !r->done; i++) {
      run_until(&r->done, 100);
      printf("# %d ms: sent %llu received %llu\n", (i + 1) * 100, (unsigned long long)r->sent,
             (unsigned long long)r->received);
    }
  }
  run_until(&r->done, ms);
  return r;
}

/* A command to a js peer with "peer_id" of the C host; returns the reply. */
static json_t *js_cmd(goop_jspeer *js, const char *cmd, const char *count_key, json_int_t count,
                      int timeout_ms) {
  json_t *j = json_pack("{s:s, s:s}", "cmd", cmd, "peer_id", self_id_str);
  if (count_key)
    json_object_set_new(j, count_key, json_integer(count));
  json_object_set_new(j, "timeout_ms", json_integer(timeout_ms));
  json_t *r = goop_jspeer_call(js, j, timeout_ms + 5000);
  if (!goop_jspeer_ok(r))
    printf("# js %s failed: %s\n", cmd, goop_jspeer_error(r));
  return r;
}

static bool has_protocol(const goop_peer_id *peer, const char *proto) {
  for (size_t i = 0;; i++) {
    const char *p = goop_host_peer_protocol(host, peer, i);
    if (!p)
      return false;
    if (strcmp(p, proto) == 0)
      return true;
  }
}

/* true if one of |peer|'s stored addresses, plus "/p2p/<id>", is |js_addr|. */
static bool has_addr(const goop_peer_id *peer, const char *js_addr) {
  char buf[300];
  for (size_t i = 0; goop_host_peer_addr(host, peer, i, buf, sizeof(buf)) > 0; i++) {
    size_t n = strlen(buf);
    if (strncmp(js_addr, buf, n) == 0 && strncmp(js_addr + n, "/p2p/", 5) == 0)
      return true;
  }
  return false;
}

/* What the C host learned about a js peer from identify. */
static void check_c_view_of(goop_jspeer *js, const goop_peer_id *peer) {
  CHECK(has_protocol(peer, GOOP_TEST_ECHO_ID));
  CHECK(has_protocol(peer, GOOP_TEST_SINK_ID));
  CHECK(has_protocol(peer, GOOP_TEST_SOURCE_ID));
  CHECK(has_protocol(peer, GOOP_TEST_SLOW_ID));
  CHECK(has_protocol(peer, "/ipfs/id/1.0.0"));
  CHECK(has_protocol(peer, "/ipfs/ping/1.0.0"));
  const char *agent = goop_host_peer_agent(host, peer);
  CHECK(agent && strncmp(agent, "js-libp2p/", 10) == 0);
  CHECK(goop_jspeer_addr(js, 0) != NULL);
  CHECK(has_addr(peer, goop_jspeer_addr(js, 0)));
  /* The addresses came from a verified signed peer record: its sequence number is kept
   * (white-box: the peerstore entry of the transport). */
  struct goop__peer *p = goop__peerstore_get(host, peer, false);
  CHECK(p != NULL && p->record_seq > 0);
}

/* What a js peer learned about the C host (its "identify" command). */
static void check_js_view(goop_jspeer *js) {
  json_t *r = js_cmd(js, "identify", NULL, 0, 20000);
  CHECK(goop_jspeer_ok(r));
  CHECK_STR_EQ(json_string_value(json_object_get(r, "peer_id")), self_id_str);
  json_t *protos = json_object_get(r, "protocols");
  CHECK(goop_jspeer_array_has(protos, GOOP_TEST_ECHO_ID));
  CHECK(goop_jspeer_array_has(protos, GOOP_TEST_SINK_ID));
  CHECK(goop_jspeer_array_has(protos, GOOP_TEST_SOURCE_ID));
  CHECK(goop_jspeer_array_has(protos, GOOP_TEST_SLOW_ID));
  CHECK(goop_jspeer_array_has(protos, "/ipfs/id/1.0.0"));
  CHECK(goop_jspeer_array_has(protos, "/ipfs/ping/1.0.0"));
  char listen[200];
  CHECK(goop_host_listen_addr(host, 0, listen, sizeof(listen)) > 0);
  json_t *la = json_object_get(r, "listen_addrs");
  bool found = goop_jspeer_array_has(la, listen);
  if (!found) {
    char with_id[300];
    snprintf(with_id, sizeof(with_id), "%s/p2p/%s", listen, self_id_str);
    found = goop_jspeer_array_has(la, with_id);
  }
  CHECK(found);
  if (!found) {
    char *t = json_dumps(la, JSON_COMPACT);
    printf("# listen_addrs %s, want %s\n", t ? t : "?", listen);
    free(t);
  }
  const char *agent = json_string_value(json_object_get(r, "agent"));
  CHECK(agent && strncmp(agent, "libgoop/", 8) == 0);
  CHECK(json_is_true(json_object_get(r, "signed_peer_record")));
  CHECK(json_is_true(json_object_get(r, "stored_signed_peer_record")));
  CHECK(json_array_size(json_object_get(r, "stored_addrs")) > 0);
  json_decref(r);
}

static bool ping_done;
static int ping_status;
static uint64_t ping_rtt;
static void on_ping(goop_host *h, int status, uint64_t rtt, void *ud) {
  (void)h, (void)ud;
  ping_status = status;
  ping_rtt = rtt;
  ping_done = true;
}

static bool connect_done;
static int connect_status;
static void on_connect(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h, (void)c, (void)ud;
  connect_status = status;
  connect_done = true;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_c_dials_js(void) {
  CHECK_INT_EQ(goop_host_connect_addr(host, goop_jspeer_addr(jsA, 0), 10000, on_connect, NULL), 0);
  CHECK(run_until(&connect_done, 15000));
  CHECK_INT_EQ(connect_status, 0);
  goop_conn *c = goop_host_get_conn(host, &idA);
  CHECK(c != NULL && goop_conn_is_outbound(c));
  CHECK(run_until(&identified_A, 10000));
  check_c_view_of(jsA, &idA);
  for (int i = 0; i < 3; i++) {
    ping_done = false;
    CHECK_INT_EQ(goop_host_ping(host, &idA, 5000, on_ping, NULL), 0);
    CHECK(run_until(&ping_done, 7000));
    CHECK_INT_EQ(ping_status, 0);
    CHECK(ping_rtt > 0 && ping_rtt < 2000000);
  }
  /* js sees an inbound connection from us, and learned our protocols and record. */
  json_t *r = goop_jspeer_call(jsA, json_pack("{s:s}", "cmd", "peers"), 10000);
  CHECK(goop_jspeer_ok(r));
  json_t *conns = json_object_get(r, "connections");
  CHECK_INT_EQ(json_array_size(conns), 1);
  CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(conns, 0), "direction")), "inbound");
  json_decref(r);
  check_js_view(jsA);
}

static void test_js_dials_c(void) {
  json_t *j = json_pack("{s:s, s:s, s:i}", "cmd", "ping", "addr", self_addr, "count", 3);
  json_t *r = goop_jspeer_call(jsB, j, 20000);
  CHECK(goop_jspeer_ok(r));
  if (!goop_jspeer_ok(r))
    printf("# js ping: %s\n", goop_jspeer_error(r));
  CHECK_INT_EQ(json_array_size(json_object_get(r, "rtts_ms")), 3);
  json_decref(r);
  goop_conn *c = goop_host_get_conn(host, &idB);
  CHECK(c != NULL && !goop_conn_is_outbound(c));
  CHECK(run_until(&identified_B, 10000));
  check_c_view_of(jsB, &idB);
  check_js_view(jsB);
  /* And we ping back over the connection js opened. */
  ping_done = false;
  CHECK_INT_EQ(goop_host_ping(host, &idB, 5000, on_ping, NULL), 0);
  CHECK(run_until(&ping_done, 7000));
  CHECK_INT_EQ(ping_status, 0);
  CHECK_INT_EQ(goop_host_num_conns(host), 2);
}

static void c_client(const goop_peer_id *peer, enum goop_test_proto p, uint64_t bytes, int ms) {
  goop_test_client *c = NULL;
  CHECK_INT_EQ(goop_test_client_start(host, peer, p, bytes, 10000, &c), 0);
  if (!c)
    return;
  const struct goop_test_result *r = run_client(c, ms);
  CHECK(r->done);
  CHECK_INT_EQ(r->status, 0);
  if (r->status)
    printf("# %s: %s\n", goop_test_proto_id(p), r->error);
  if (p == GOOP_TEST_SOURCE)
    CHECK_INT_EQ(r->received, bytes);
  else
    CHECK_INT_EQ(r->sent, bytes);
  if (r->done && r->end_us > r->start_us)
    printf("# C->js %s %llu bytes: %.0f ms\n", goop_test_proto_id(p), (unsigned long long)bytes,
           (double)(r->end_us - r->start_us) / 1000.0);
  goop_test_client_free(c);
}

static void test_c_to_js_protocols(void) {
  c_client(&idA, GOOP_TEST_ECHO, BULK_BYTES, 90000);
  c_client(&idA, GOOP_TEST_SINK, SIDE_BYTES, 30000);
  c_client(&idA, GOOP_TEST_SOURCE, SIDE_BYTES, 30000);
  c_client(&idA, GOOP_TEST_ECHO, 0, 10000); /* empty stream: FIN both ways */
  /* The inbound connection (js B dialled) carries our streams too. */
  c_client(&idB, GOOP_TEST_SINK, 1 * MiB, 30000);
}

static void test_js_to_c_protocols(void) {
  uint64_t before = goop_test_server_stats.finished;
  json_t *r = js_cmd(jsB, "echo", "bytes", BULK_BYTES, 90000);
  CHECK(goop_jspeer_ok(r));
  CHECK_INT_EQ(json_integer_value(json_object_get(r, "received")), BULK_BYTES);
  printf("# js->C echo %u bytes: %lld ms\n", BULK_BYTES, json_integer_value(json_object_get(r, "ms")));
  json_decref(r);
  r = js_cmd(jsB, "sink", "bytes", SIDE_BYTES, 30000);
  CHECK(goop_jspeer_ok(r));
  CHECK_INT_EQ(json_integer_value(json_object_get(r, "sent")), SIDE_BYTES);
  json_decref(r);
  r = js_cmd(jsB, "source", "bytes", SIDE_BYTES, 30000);
  CHECK(goop_jspeer_ok(r));
  CHECK_INT_EQ(json_integer_value(json_object_get(r, "received")), SIDE_BYTES);
  json_decref(r);
  /* Optimistic (lazy) negotiation from js. */
  json_t *j =
      json_pack("{s:s, s:s, s:i, s:b}", "cmd", "echo", "peer_id", self_id_str, "bytes", 100000, "lazy", 1);
  r = goop_jspeer_call(jsB, j, 20000);
  CHECK(goop_jspeer_ok(r));
  if (!goop_jspeer_ok(r))
    printf("# lazy echo: %s\n", goop_jspeer_error(r));
  json_decref(r);
  /* js A (which we dialled) uses our connection for its streams. */
  r = js_cmd(jsA, "sink", "bytes", 1 * MiB, 30000);
  CHECK(goop_jspeer_ok(r));
  json_decref(r);
  /* Let the servers see the final FINs, then all of them finished cleanly. */
  for (int i = 0; i < 100 && goop_test_server_stats.active; i++)
    goop_jspeer_run_for(jsA, 20);
  CHECK_INT_EQ(goop_test_server_stats.finished - before, 5);
  CHECK_INT_EQ(goop_test_server_stats.failed, 0);
  CHECK_INT_EQ(goop_test_server_stats.active, 0);
}

static void test_shutdown(void) {
  CHECK_INT_EQ(goop_jspeer_close(jsA, 10000), 0);
  CHECK_INT_EQ(goop_jspeer_close(jsB, 10000), 0);
  jsA = jsB = NULL;
  /* Both connections go away once the js peers exit. */
  for (int i = 0; i < 250 && goop_host_num_conns(host); i++) {
    struct timeval tv = {0, 20000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  CHECK_INT_EQ(goop_host_num_conns(host), 0);
}

static goop_jspeer *spawn_js(void) {
  static const char *const args[] = {"--listen", "/ip4/127.0.0.1/tcp/0", NULL};
  goop_jspeer *js = NULL;
  if (goop_jspeer_spawn(base, NULL, args, &js) != 0)
    return NULL;
  return js;
}

int main(void) {
  if (!goop_jspeer_program()) {
    printf("1..0 # SKIP GOOP_JS_PEER not set\n");
    return 0;
  }
  base = event_base_new();
  if (!base || goop_ctx_new(base, &ctx) != 0)
    return 1;
  goop_ctx_set_log_fn(ctx, log_fn, GOOP_LOG_DEBUG, NULL);
  goop_identity *id = NULL;
  if (goop_identity_generate(&id) != 0)
    return 1;
  int rc = goop_host_new(ctx, id, NULL, &host);
  goop_identity_free(id);
  if (rc || goop_host_listen(host, "/ip4/127.0.0.1/tcp/0") != 0 || goop_test_serve_all(host, base) != 0)
    return 1;
  struct goop_host_events ev = {.version = GOOP_HOST_EVENTS_V1, .on_identified = on_identified};
  goop_host_set_events(host, &ev, NULL);
  goop_host_peer_id(host, &self_id);
  goop_peer_id_to_string(&self_id, self_id_str, sizeof(self_id_str));
  char listen[200];
  goop_host_listen_addr(host, 0, listen, sizeof(listen));
  snprintf(self_addr, sizeof(self_addr), "%s/p2p/%s", listen, self_id_str);

  /* Start both js peers (npm ci on the first run can take a while). */
  jsA = spawn_js();
  jsB = spawn_js();
  if (!jsA || !jsB || goop_jspeer_wait_listening(jsA, 300000) != 0 ||
      goop_jspeer_wait_listening(jsB, 60000) != 0 ||
      goop_peer_id_from_string(goop_jspeer_peer_id(jsA), &idA) != 0 ||
      goop_peer_id_from_string(goop_jspeer_peer_id(jsB), &idB) != 0) {
    printf("Bail out! js peer did not start\n");
    goop_jspeer_close(jsA, 0);
    goop_jspeer_close(jsB, 0);
    return 1;
  }

  RUN(test_c_dials_js);
  RUN(test_js_dials_c);
  RUN(test_c_to_js_protocols);
  RUN(test_js_to_c_protocols);
  RUN(test_shutdown);

  goop_host_free(host);
  goop_ctx_free(ctx);
  event_base_free(base);
  return tap_done();
}
