/*
 * C<->js GossipSub interop with @libp2p/gossipsub (js-gossip.mjs): a mixed
 * network of three libgoop hosts and two signing js peers (C0-C1-C2 in a
 * line, J0-C0, J1-C2, J0-J1), plus a js peer that publishes unsigned
 * messages (J2-C1). Every node publishes one presence message; every other
 * node receives each exactly once with the right author. A presence message
 * whose peerId is not its signed author is rejected by the libgoop validator
 * and not forwarded; unsigned messages are dropped.
 */
#include <event2/event.h>
#include <goop/goop.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jspeer.h"
#include "tap.h"

#define TOPIC "goop.presence.v1"
#define MAXGOT 64

static struct event_base *base;
static goop_ctx *ctx;

struct cnode {
  goop_identity *id;
  goop_host *h;
  goop_pubsub *ps;
  goop_peer_id pid;
  char pid_s[GOOP_PEER_ID_STR_MAX];
  char addr[400];
  char *got[MAXGOT]; /* "from|data" */
  int n_got;
};

static struct cnode C[3];
static goop_jspeer *J[3];
static char J_id[3][GOOP_PEER_ID_STR_MAX];

static const char *interop_dir(void) {
  const char *d = getenv("GOOP_INTEROP_DIR");
  return d ? d : TEST_DATA_DIR "/../interop";
}

static void log_fn(enum goop_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (getenv("GOOP_TEST_LOG"))
    fprintf(stderr, "[%d] %s\n", level, msg);
}

static void on_msg(goop_pubsub *ps, const struct goop_pubsub_message *m, void *ud) {
  (void)ps;
  struct cnode *n = ud;
  char from[GOOP_PEER_ID_STR_MAX];
  goop_peer_id_to_string(&m->from, from, sizeof(from));
  if (n->n_got >= MAXGOT)
    return;
  size_t len = strlen(from) + 1 + m->len + 1;
  char *s = malloc(len);
  snprintf(s, len, "%s|%.*s", from, (int)m->len, (const char *)m->data);
  n->got[n->n_got++] = s;
}

/* The presence rule: "peerId" in the JSON must be the signed author. */
static enum goop_pubsub_verdict presence_validator(goop_pubsub *ps, const struct goop_pubsub_message *m,
                                                   void *ud) {
  (void)ps, (void)ud;
  char data[1024], from[GOOP_PEER_ID_STR_MAX];
  if (m->len >= sizeof(data))
    return GOOP_PUBSUB_REJECT;
  memcpy(data, m->data, m->len);
  data[m->len] = 0;
  json_t *j = json_loads(data, 0, NULL);
  const char *pid = json_string_value(json_object_get(j, "peerId"));
  goop_peer_id_to_string(&m->from, from, sizeof(from));
  enum goop_pubsub_verdict v = pid && strcmp(pid, from) == 0 ? GOOP_PUBSUB_ACCEPT : GOOP_PUBSUB_REJECT;
  json_decref(j);
  return v;
}

/* How many messages |n| got from |from| whose data contains |tag|. */
static int c_count(const struct cnode *n, const char *from, const char *tag) {
  int k = 0;
  for (int i = 0; i < n->n_got; i++) {
    const char *bar = strchr(n->got[i], '|');
    if ((!from || strncmp(n->got[i], from, (size_t)(bar - n->got[i])) == 0) && strstr(bar, tag))
      k++;
  }
  return k;
}

static json_t *js_call(int i, json_t *cmd) {
  return goop_jspeer_call(J[i], cmd, 30000);
}

static int js_count(int i, const char *from, const char *tag) {
  json_t *r = js_call(i, json_pack("{s:s}", "cmd", "received"));
  int k = 0;
  size_t idx;
  json_t *m;
  json_array_foreach(json_object_get(r, "messages"), idx, m) {
    const char *f = json_string_value(json_object_get(m, "from"));
    const char *d = json_string_value(json_object_get(m, "data"));
    if (d && strstr(d, tag) && (!from || (f && strcmp(f, from) == 0)))
      k++;
  }
  json_decref(r);
  return k;
}

static bool js_has_subscriber(int i, const char *id) {
  json_t *r = js_call(i, json_pack("{s:s, s:s}", "cmd", "state", "topic", TOPIC));
  bool ok = goop_jspeer_array_has(json_object_get(r, "subscribers"), id);
  json_decref(r);
  return ok;
}

static void run_for(int ms) {
  goop_jspeer_run_for(J[0], ms);
}

static bool spawn_js(int i, bool nosign) {
  char script[2048];
  snprintf(script, sizeof(script),
           "set -e; cd '%s'; . ./npm-ensure.sh; goop_interop_npm_ensure \"$PWD\"; "
           "exec node --import ./polyfill.mjs js-gossip.mjs \"$@\"",
           interop_dir());
  const char *args[] = {
      "bash", "-c", script, "js-gossip", "--listen", "/ip4/127.0.0.1/tcp/0", nosign ? "--nosign" : NULL,
      NULL};
  if (goop_jspeer_spawn(base, "/usr/bin/env", args, &J[i]) != 0 ||
      goop_jspeer_wait_listening(J[i], 120000) != 0)
    return false;
  snprintf(J_id[i], sizeof(J_id[i]), "%s", goop_jspeer_peer_id(J[i]));
  return true;
}

static bool make_c(struct cnode *n) {
  struct goop_host_events ev = {.version = GOOP_HOST_EVENTS_V1, .on_identified = goop_pubsub_host_identified};
  if (goop_identity_generate(&n->id) != 0 || goop_host_new(ctx, n->id, NULL, &n->h) != 0 ||
      goop_host_listen(n->h, "/ip4/127.0.0.1/tcp/0") != 0 || goop_pubsub_new(n->h, &n->ps) != 0)
    return false;
  goop_host_set_events(n->h, &ev, n->ps);
  goop_host_peer_id(n->h, &n->pid);
  goop_peer_id_to_string(&n->pid, n->pid_s, sizeof(n->pid_s));
  char a[300];
  goop_host_listen_addr(n->h, 0, a, sizeof(a));
  snprintf(n->addr, sizeof(n->addr), "%s/p2p/%s", a, n->pid_s);
  return goop_pubsub_set_validator(n->ps, TOPIC, presence_validator, NULL) == 0 &&
         goop_pubsub_subscribe(n->ps, TOPIC, on_msg, n) == 0;
}

static void on_connect(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h, (void)c;
  *(int *)ud = status == 0 ? 1 : -1;
}

static bool c_connect(int a, int b) {
  volatile int done = 0;
  if (goop_host_connect_addr(C[a].h, C[b].addr, 5000, on_connect, (void *)&done) != 0)
    return false;
  for (int i = 0; i < 250 && !done; i++)
    run_for(20);
  return done == 1;
}

static bool js_dial(int i, const char *addr) {
  json_t *r = js_call(i, json_pack("{s:s, s:s}", "cmd", "dial", "addr", addr));
  bool ok = goop_jspeer_ok(r);
  if (!ok)
    printf("# dial: %s\n", goop_jspeer_error(r));
  json_decref(r);
  return ok;
}

static void presence(char *buf, size_t len, const char *peer_id, const char *tag) {
  snprintf(buf, len, "{\"type\":\"online\",\"peerId\":\"%s\",\"content\":\"%s\",\"ts\":1700000000000}",
           peer_id, tag);
}

static bool js_publish(int i, const char *data) {
  json_t *r = js_call(i, json_pack("{s:s, s:s, s:s}", "cmd", "publish", "topic", TOPIC, "data", data));
  bool ok = goop_jspeer_ok(r);
  if (!ok)
    printf("# publish: %s\n", goop_jspeer_error(r));
  json_decref(r);
  return ok;
}

static bool ready(void) {
  return goop_pubsub_topic_peers(C[0].ps, TOPIC) >= 2 && goop_pubsub_topic_peers(C[1].ps, TOPIC) >= 3 &&
         goop_pubsub_topic_peers(C[2].ps, TOPIC) >= 2 && js_has_subscriber(0, C[0].pid_s) &&
         js_has_subscriber(1, C[2].pid_s) && js_has_subscriber(0, J_id[1]);
}

static void test_mixed_network(void) {
  for (int i = 0; i < 3; i++)
    CHECK(make_c(&C[i]));
  CHECK(c_connect(0, 1));
  CHECK(c_connect(1, 2));
  for (int i = 0; i < 3; i++) {
    json_decref(js_call(i, json_pack("{s:s, s:s}", "cmd", "subscribe", "topic", TOPIC)));
  }
  CHECK(js_dial(0, C[0].addr));
  CHECK(js_dial(1, C[2].addr));
  CHECK(js_dial(0, goop_jspeer_addr(J[1], 0)));
  CHECK(js_dial(2, C[1].addr));
  bool ok = false;
  for (int i = 0; i < 60 && !(ok = ready()); i++)
    run_for(250);
  CHECK(ok);
  run_for(2500); /* a few heartbeats: meshes settle */

  /* Everyone publishes one presence message. */
  char buf[512];
  const char *ids[5] = {C[0].pid_s, C[1].pid_s, C[2].pid_s, J_id[0], J_id[1]};
  const char *tags[5] = {"p-c0", "p-c1", "p-c2", "p-j0", "p-j1"};
  for (int i = 0; i < 3; i++) {
    presence(buf, sizeof(buf), C[i].pid_s, tags[i]);
    CHECK_INT_EQ(goop_pubsub_publish(C[i].ps, TOPIC, buf, strlen(buf)), 0);
  }
  for (int i = 0; i < 2; i++) {
    presence(buf, sizeof(buf), J_id[i], tags[3 + i]);
    CHECK(js_publish(i, buf));
  }
  /* A forged presence (J1 claims to be C0) and an unsigned one (J2). */
  presence(buf, sizeof(buf), C[0].pid_s, "forged-j1");
  CHECK(js_publish(1, buf));
  presence(buf, sizeof(buf), J_id[2], "unsigned-j2");
  CHECK(js_publish(2, buf));
  run_for(4000); /* delivery plus a few rounds of gossip */

  bool exact = true;
  for (int n = 0; n < 5; n++) {
    for (int k = 0; k < 5; k++) {
      int want = n == k ? 0 : 1;
      int got = n < 3 ? c_count(&C[n], ids[k], tags[k]) : js_count(n - 3, ids[k], tags[k]);
      if (got != want) {
        exact = false;
        printf("# node %d got %s %d times\n", n, tags[k], got);
      }
    }
  }
  CHECK(exact);
  for (int n = 0; n < 3; n++) {
    CHECK_INT_EQ(c_count(&C[n], NULL, "forged-j1"), 0);
    CHECK_INT_EQ(c_count(&C[n], NULL, "unsigned-j2"), 0);
  }
  struct goop_pubsub_stats st;
  goop_pubsub_get_stats(C[2].ps, &st);
  CHECK(st.msgs_rejected >= 1); /* the forged presence, at its first libgoop hop */
  goop_pubsub_get_stats(C[1].ps, &st);
  CHECK(st.msgs_invalid >= 1); /* the unsigned message */
  /* The js peers saw the C nodes in their meshes. */
  json_t *r = js_call(0, json_pack("{s:s, s:s}", "cmd", "state", "topic", TOPIC));
  CHECK(goop_jspeer_array_has(json_object_get(r, "mesh"), C[0].pid_s));
  json_decref(r);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  base = event_base_new();
  if (goop_ctx_new(base, &ctx) != 0)
    return 1;
  goop_ctx_set_log_fn(ctx, log_fn, GOOP_LOG_DEBUG, NULL);
  for (int i = 0; i < 3; i++) {
    if (!spawn_js(i, i == 2)) {
      printf("1..0 # SKIP js-gossip.mjs did not start\n");
      return 0;
    }
  }
  RUN(test_mixed_network);
  for (int i = 0; i < 3; i++)
    goop_jspeer_close(J[i], 5000);
  for (int i = 0; i < 3; i++) {
    goop_pubsub_free(C[i].ps);
    goop_host_free(C[i].h);
    goop_identity_free(C[i].id);
    for (int k = 0; k < C[i].n_got; k++)
      free(C[i].got[k]);
  }
  goop_ctx_free(ctx);
  event_base_free(base);
  return tap_done();
}
