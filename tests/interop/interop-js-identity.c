/*
 * C<->js-libp2p interop of identities: both sides run with fixed Ed25519 keys
 * from tests/data/js-keys.json (made by @libp2p/crypto), agree on the Peer
 * IDs, prove them in the Noise handshake (a dial naming the wrong /p2p/ ID
 * fails in both directions) and exchange the agent through identify.
 */
#include <event2/event.h>
#include <goop/goop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jspeer.h"
#include "tap.h"

#define JS_AGENT "goop-interop-js/1.0 (fixed key)"

static struct event_base *base;
static goop_ctx *ctx;
static goop_host *host;
static goop_jspeer *js;
static json_t *keys;
static char self_addr[300];

static void log_fn(enum goop_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (getenv("GOOP_TEST_LOG"))
    fprintf(stderr, "[%d] %s\n", level, msg);
}

static const char *key_field(size_t i, const char *field) {
  return json_string_value(json_object_get(json_array_get(json_object_get(keys, "ed25519"), i), field));
}

static bool identified;
static void on_identified(goop_host *h, goop_conn *c, void *ud) {
  (void)h, (void)c, (void)ud;
  identified = true;
}

static bool connect_done;
static int connect_status;
static void on_connect(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h, (void)c, (void)ud;
  connect_status = status;
  connect_done = true;
}

static bool wait_conns(size_t want, int ms) {
  uint64_t deadline = goop_jspeer_now_ms() + (uint64_t)ms;
  while (goop_host_num_conns(host) != want && goop_jspeer_now_ms() < deadline)
    goop_jspeer_run_for(js, 20);
  return goop_host_num_conns(host) == want;
}

/* js's listen address with its /p2p/ part replaced by |peer_id|. */
static void js_addr_as(const char *peer_id, char *buf, size_t len) {
  const char *a = goop_jspeer_addr(js, 0);
  const char *p = a ? strstr(a, "/p2p/") : NULL;
  snprintf(buf, len, "%.*s/p2p/%s", p ? (int)(p - a) : 0, a ? a : "", peer_id);
}

static void test_same_peer_ids(void) {
  goop_peer_id self;
  char s[GOOP_PEER_ID_STR_MAX];
  goop_host_peer_id(host, &self);
  goop_peer_id_to_string(&self, s, sizeof(s));
  CHECK_STR_EQ(s, key_field(2, "peer_id"));
  CHECK_STR_EQ(goop_jspeer_peer_id(js), key_field(0, "peer_id"));
}

static void test_c_dials_js(void) {
  char addr[300];
  /* The wrong ID: js proves a different key in Noise. */
  js_addr_as(key_field(1, "peer_id"), addr, sizeof(addr));
  connect_done = false;
  CHECK_INT_EQ(goop_host_connect_addr(host, addr, 10000, on_connect, NULL), 0);
  CHECK(goop_jspeer_run_until(js, &connect_done, 15000));
  CHECK_INT_EQ(connect_status, GOOP_EPEERID);
  CHECK_INT_EQ(goop_host_num_conns(host), 0);
  /* The right one. */
  js_addr_as(key_field(0, "peer_id"), addr, sizeof(addr));
  connect_done = false;
  CHECK_INT_EQ(goop_host_connect_addr(host, addr, 10000, on_connect, NULL), 0);
  CHECK(goop_jspeer_run_until(js, &connect_done, 15000));
  CHECK_INT_EQ(connect_status, 0);
  goop_peer_id want;
  CHECK_INT_EQ(goop_peer_id_from_string(key_field(0, "peer_id"), &want), 0);
  goop_conn *c = goop_host_get_conn(host, &want);
  CHECK(c != NULL);
  CHECK(goop_jspeer_run_until(js, &identified, 10000));
  CHECK_STR_EQ(goop_host_peer_agent(host, &want), JS_AGENT);
  /* js saw our fixed ID on its inbound connection. */
  json_t *r = goop_jspeer_call(js, json_pack("{s:s}", "cmd", "peers"), 10000);
  json_t *conn = json_array_get(json_object_get(r, "connections"), 0);
  CHECK_STR_EQ(json_string_value(json_object_get(conn, "peer_id")), key_field(2, "peer_id"));
  json_decref(r);
  /* js hangs up; the C host notices. */
  r = goop_jspeer_call(js, json_pack("{s:s, s:s}", "cmd", "hangup", "peer_id", key_field(2, "peer_id")),
                       10000);
  CHECK(goop_jspeer_ok(r));
  json_decref(r);
  CHECK(wait_conns(0, 10000));
}

static void test_js_dials_c(void) {
  char addr[300];
  /* js names the wrong ID for us: the dial fails. */
  char listen[200];
  CHECK(goop_host_listen_addr(host, 0, listen, sizeof(listen)) > 0);
  snprintf(addr, sizeof(addr), "%s/p2p/%s", listen, key_field(1, "peer_id"));
  json_t *r = goop_jspeer_call(
      js, json_pack("{s:s, s:s, s:i}", "cmd", "dial", "addr", addr, "timeout_ms", 10000), 15000);
  CHECK(r != NULL && !goop_jspeer_ok(r));
  printf("# js dial with the wrong peer ID: %s\n", goop_jspeer_error(r));
  json_decref(r);
  CHECK(wait_conns(0, 5000));
  /* The right one. */
  r = goop_jspeer_call(js, json_pack("{s:s, s:s}", "cmd", "dial", "addr", self_addr), 15000);
  CHECK(goop_jspeer_ok(r));
  CHECK_STR_EQ(json_string_value(json_object_get(r, "peer_id")), key_field(2, "peer_id"));
  json_decref(r);
  CHECK(wait_conns(1, 5000));
  r = goop_jspeer_call(
      js, json_pack("{s:s, s:s, s:i}", "cmd", "ping", "peer_id", key_field(2, "peer_id"), "count", 2), 15000);
  CHECK(goop_jspeer_ok(r));
  json_decref(r);
}

int main(void) {
  if (!goop_jspeer_program()) {
    printf("1..0 # SKIP GOOP_JS_PEER not set\n");
    return 0;
  }
  json_error_t jerr;
  keys = json_load_file(TEST_DATA_DIR "/js-keys.json", 0, &jerr);
  if (!keys || !key_field(0, "private_pb_hex") || !key_field(1, "peer_id") ||
      !key_field(2, "private_pb_hex")) {
    printf("Bail out! cannot read js-keys.json: %s\n", jerr.text);
    return 1;
  }
  base = event_base_new();
  if (!base || goop_ctx_new(base, &ctx) != 0)
    return 1;
  goop_ctx_set_log_fn(ctx, log_fn, GOOP_LOG_DEBUG, NULL);
  /* Our identity: the third js-generated key. */
  size_t klen = 0;
  uint8_t *kbytes = tap_unhex(key_field(2, "private_pb_hex"), &klen);
  goop_identity *id = NULL;
  int rc = goop_identity_from_bytes(kbytes, klen, &id);
  free(kbytes);
  if (rc != 0) {
    printf("Bail out! goop_identity_from_bytes: %s\n", goop_strerror(rc));
    return 1;
  }
  rc = goop_host_new(ctx, id, NULL, &host);
  goop_identity_free(id);
  if (rc || goop_host_listen(host, "/ip4/127.0.0.1/tcp/0") != 0)
    return 1;
  struct goop_host_events ev = {.version = GOOP_HOST_EVENTS_V1, .on_identified = on_identified};
  goop_host_set_events(host, &ev, NULL);
  char listen[200];
  goop_host_listen_addr(host, 0, listen, sizeof(listen));
  snprintf(self_addr, sizeof(self_addr), "%s/p2p/%s", listen, key_field(2, "peer_id"));

  const char *args[] = {
      "--listen", "/ip4/127.0.0.1/tcp/0", "--key", key_field(0, "private_pb_hex"), "--agent", JS_AGENT, NULL};
  if (goop_jspeer_spawn(base, NULL, args, &js) != 0 || goop_jspeer_wait_listening(js, 300000) != 0) {
    printf("Bail out! js peer did not start\n");
    goop_jspeer_close(js, 0);
    return 1;
  }
  RUN(test_same_peer_ids);
  RUN(test_c_dials_js);
  RUN(test_js_dials_c);
  CHECK_INT_EQ(goop_jspeer_close(js, 10000), 0);

  goop_host_free(host);
  goop_ctx_free(ctx);
  event_base_free(base);
  json_decref(keys);
  return tap_done();
}
