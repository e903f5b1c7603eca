/*
 * Presence over real hosts on loopback: three hosts with pubsub and
 * presence (1 s heartbeat, 3 s TTL) see each other with their labels and
 * announced addresses; a message whose peerId is not its signed author is
 * dropped; a clean stop disappears at once ("offline"); a host freed
 * without a goodbye (as after SIGKILL) disappears after the TTL.
 */
#include <event2/event.h>
#include <goop/goop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#define TOPIC "goop.presence.test"

static struct event_base *base;
static goop_ctx *ctx;

static void log_fn(enum goop_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (getenv("GOOP_TEST_LOG"))
    fprintf(stderr, "[%d] %s\n", level, msg);
}

struct node {
  goop_identity *id;
  goop_host *h;
  goop_peer_id pid;
  goop_pubsub *ps;
  goop_presence *pr;
  char label[3][32]; /* last label seen of each node */
  bool verified[3];
  int updates, removes, refreshes;
};

static struct node N[3];

static int index_of(const goop_peer_id *p) {
  for (int i = 0; i < 3; i++)
    if (goop_peer_id_equal(&N[i].pid, p))
      return i;
  return -1;
}

static void on_update(goop_presence *pr, const goop_peer_id *peer, const struct goop_presence_msg *m,
                      void *ud) {
  (void)pr;
  struct node *n = ud;
  n->updates++;
  int k = index_of(peer);
  if (k >= 0) {
    snprintf(n->label[k], sizeof(n->label[k]), "%s", m->content ? m->content : "");
    n->verified[k] = m->verified;
  }
}

static void on_remove(goop_presence *pr, const goop_peer_id *peer, const char *text, void *ud) {
  (void)pr, (void)peer, (void)text;
  struct node *n = ud;
  n->removes++;
}

static bool rename_now;

static void before_publish(goop_presence *pr, void *ud) {
  struct node *n = ud;
  n->refreshes++;
  if (n == &N[1] && rename_now) { /* a changed label goes out with the next update */
    rename_now = false;
    struct goop_presence_info info = {.label = "node 1 renamed"};
    if (goop_presence_set_info(pr, &info) != 0)
      abort();
  }
}

static const struct goop_presence_callbacks cbs = {.version = GOOP_PRESENCE_CALLBACKS_V1,
                                                   .on_update = on_update,
                                                   .on_remove = on_remove,
                                                   .before_publish = before_publish};
static const struct goop_presence_config pcfg = {
    .version = GOOP_PRESENCE_CONFIG_V1, .topic = TOPIC, .heartbeat_seconds = 1, .ttl_seconds = 3};

static void start_presence(int i) {
  struct node *n = &N[i];
  char label[32], a1[64];
  snprintf(label, sizeof(label), "node %d", i);
  snprintf(a1, sizeof(a1), "/ip4/192.0.2.%d/tcp/4001", i + 1);
  const char *addrs[] = {a1, "/ip4/127.0.0.1/tcp/9", "/ip4/169.254.1.1/tcp/9"};
  struct goop_presence_info info = {.label = label, .email = "n@example.org", .addrs = addrs, .n_addrs = 3};
  if (goop_presence_new(n->ps, n->h, &pcfg, &cbs, n, &n->pr) != 0 ||
      goop_presence_set_info(n->pr, &info) != 0 || goop_presence_start(n->pr) != 0)
    abort();
}

static void make_node(int i) {
  struct node *n = &N[i];
  if (goop_identity_generate(&n->id) != 0 || goop_host_new(ctx, n->id, NULL, &n->h) != 0 ||
      goop_host_listen(n->h, "/ip4/127.0.0.1/tcp/0") != 0 || goop_pubsub_new(n->h, &n->ps) != 0)
    abort();
  goop_host_peer_id(n->h, &n->pid);
  start_presence(i);
}

static void free_node(struct node *n) {
  goop_presence_free(n->pr);
  goop_pubsub_free(n->ps);
  goop_host_free(n->h);
  goop_identity_free(n->id);
  memset(n, 0, sizeof(*n));
}

static void full_addr(goop_host *h, char *buf, size_t len) {
  char a[200], id[GOOP_PEER_ID_STR_MAX];
  goop_peer_id pid;
  goop_host_listen_addr(h, 0, a, sizeof(a));
  goop_host_peer_id(h, &pid);
  goop_peer_id_to_string(&pid, id, sizeof(id));
  snprintf(buf, len, "%s/p2p/%s", a, id);
}

static bool run_until(bool (*fn)(void), int ms) {
  struct timeval tv = {0, 20000};
  for (int i = 0; i < ms / 20 && !fn(); i++) {
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  return fn();
}

static void run_for(int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  event_base_loopexit(base, &tv);
  event_base_dispatch(base);
}

static int connected;
static void on_connect(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h, (void)c, (void)ud;
  if (status == 0)
    connected++;
}
static bool all_connected(void) {
  return connected == 3;
}
static bool all_see_all(void) {
  for (int i = 0; i < 3; i++)
    if (goop_presence_count(N[i].pr) != 2)
      return false;
  return true;
}
static bool renamed(void) {
  return strcmp(N[0].label[1], "node 1 renamed") == 0 && strcmp(N[2].label[1], "node 1 renamed") == 0;
}
static bool c_gone(void) {
  return !goop_presence_has(N[0].pr, &N[2].pid) && !goop_presence_has(N[1].pr, &N[2].pid);
}
static bool c_back(void) {
  return goop_presence_has(N[0].pr, &N[2].pid) && goop_presence_has(N[1].pr, &N[2].pid);
}

static bool peer_has_addr(goop_host *h, const goop_peer_id *p, const char *want) {
  char a[300];
  for (size_t i = 0; goop_host_peer_addr(h, p, i, a, sizeof(a)) > 0; i++)
    if (strcmp(a, want) == 0)
      return true;
  return false;
}

static void test_presence(void) {
  for (int i = 0; i < 3; i++)
    make_node(i);
  char addr[300];
  full_addr(N[1].h, addr, sizeof(addr));
  CHECK_INT_EQ(goop_host_connect_addr(N[0].h, addr, 5000, on_connect, NULL), 0);
  full_addr(N[2].h, addr, sizeof(addr));
  CHECK_INT_EQ(goop_host_connect_addr(N[0].h, addr, 5000, on_connect, NULL), 0);
  CHECK_INT_EQ(goop_host_connect_addr(N[1].h, addr, 5000, on_connect, NULL), 0);
  CHECK(run_until(all_connected, 5000));

  /* Everyone sees everyone within a few heartbeats. */
  CHECK(run_until(all_see_all, 6000));
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 3; k++) {
      if (i == k)
        continue;
      char want[32];
      snprintf(want, sizeof(want), "node %d", k);
      CHECK_STR_EQ(N[i].label[k], want);
      CHECK(N[i].verified[k]);
      CHECK(!goop_presence_has(N[i].pr, &N[i].pid));
    }
  /* Fields set from before_publish go out at once. */
  rename_now = true;
  CHECK(run_until(renamed, 4000));
  CHECK(N[1].refreshes >= 2);
  /* Announced addresses reach the peerstore, minus loopback and link-local ones. */
  CHECK(peer_has_addr(N[0].h, &N[1].pid, "/ip4/192.0.2.2/tcp/4001"));
  CHECK(peer_has_addr(N[1].h, &N[2].pid, "/ip4/192.0.2.3/tcp/4001"));
  CHECK(!peer_has_addr(N[0].h, &N[1].pid, "/ip4/127.0.0.1/tcp/9"));
  CHECK(!peer_has_addr(N[0].h, &N[1].pid, "/ip4/169.254.1.1/tcp/9"));

  /* A forged peerId (B's, or a stranger's) published by A is rejected; unknown types pass quietly. */
  struct goop_pubsub_stats before1, before2, after1, after2;
  goop_pubsub_get_stats(N[1].ps, &before1);
  goop_pubsub_get_stats(N[2].ps, &before2);
  goop_identity *stranger;
  goop_peer_id spid;
  CHECK_INT_EQ(goop_identity_generate(&stranger), 0);
  goop_identity_peer_id(stranger, &spid);
  goop_identity_free(stranger);
  char sid[GOOP_PEER_ID_STR_MAX], aid[GOOP_PEER_ID_STR_MAX], cid[GOOP_PEER_ID_STR_MAX], msg[512];
  goop_peer_id_to_string(&spid, sid, sizeof(sid));
  goop_peer_id_to_string(&N[0].pid, aid, sizeof(aid));
  goop_peer_id_to_string(&N[2].pid, cid, sizeof(cid));
  int updates_b = N[1].updates;
  snprintf(msg, sizeof(msg), "{\"type\":\"online\",\"peerId\":\"%s\",\"content\":\"forged\",\"ts\":1}", sid);
  CHECK_INT_EQ(goop_pubsub_publish(N[0].ps, TOPIC, msg, strlen(msg)), 0);
  snprintf(msg, sizeof(msg), "{\"type\":\"offline\",\"peerId\":\"%s\",\"ts\":1}", cid);
  CHECK_INT_EQ(goop_pubsub_publish(N[0].ps, TOPIC, msg, strlen(msg)), 0);
  snprintf(msg, sizeof(msg), "{\"type\":\"punch\",\"peerId\":\"%s\",\"ts\":1}", aid);
  CHECK_INT_EQ(goop_pubsub_publish(N[0].ps, TOPIC, msg, strlen(msg)), 0);
  CHECK_INT_EQ(goop_pubsub_publish(N[0].ps, TOPIC, "{not json", 9), 0);
  run_for(400);
  goop_pubsub_get_stats(N[1].ps, &after1);
  goop_pubsub_get_stats(N[2].ps, &after2);
  CHECK_INT_EQ(after1.msgs_rejected - before1.msgs_rejected, 3);
  CHECK_INT_EQ(after2.msgs_rejected - before2.msgs_rejected, 3);
  CHECK(!goop_presence_has(N[1].pr, &spid));
  CHECK(goop_presence_has(N[1].pr, &N[2].pid)); /* the forged offline removed nothing */
  CHECK_INT_EQ(goop_presence_count(N[1].pr), 2);
  CHECK(N[1].updates - updates_b <= 1); /* at most a regular heartbeat, never "forged" */
  CHECK_STR_EQ(N[1].label[0], "node 0");
  CHECK_STR_EQ(N[1].label[2], "node 2");

  /* A clean stop disappears at once. */
  int removes_a = N[0].removes;
  goop_presence_stop(N[2].pr);
  CHECK(run_until(c_gone, 800));
  CHECK_INT_EQ(N[0].removes - removes_a, 1);
  CHECK_INT_EQ(goop_presence_count(N[0].pr), 1);
  CHECK_INT_EQ(goop_presence_count(N[2].pr), 0);

  /* Back again, then gone without a goodbye: removed after the TTL, not before. */
  CHECK_INT_EQ(goop_presence_start(N[2].pr), 0);
  CHECK(run_until(c_back, 3000));
  goop_peer_id cpid = N[2].pid;
  free_node(&N[2]);
  run_for(1000);
  CHECK(goop_presence_has(N[0].pr, &cpid) && goop_presence_has(N[1].pr, &cpid));
  CHECK_INT_EQ(goop_presence_count(N[0].pr), 2);
  CHECK_INT_EQ(goop_presence_count(N[1].pr), 2);
  struct timeval t0, t1;
  evutil_gettimeofday(&t0, NULL);
  bool gone = false;
  for (int i = 0; i < 300 && !gone; i++) {
    run_for(20);
    gone = goop_presence_count(N[0].pr) == 1 && goop_presence_count(N[1].pr) == 1;
  }
  evutil_gettimeofday(&t1, NULL);
  CHECK(gone);
  long waited = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
  printf("# removed %ld ms after the first second\n", waited);
  CHECK(waited < 4000);

  /* Our own stop empties the table; free the rest. */
  goop_presence_stop(N[0].pr);
  run_for(200);
  CHECK_INT_EQ(goop_presence_count(N[1].pr), 0);
  free_node(&N[0]);
  free_node(&N[1]);
}

static void test_api(void) {
  goop_identity *id;
  goop_host *h;
  goop_pubsub *ps;
  goop_presence *pr;
  CHECK_INT_EQ(goop_identity_generate(&id), 0);
  CHECK_INT_EQ(goop_host_new(ctx, id, NULL, &h), 0);
  CHECK_INT_EQ(goop_pubsub_new(h, &ps), 0);
  struct goop_presence_config bad = {.version = 99};
  CHECK_INT_EQ(goop_presence_new(ps, h, &bad, NULL, NULL, &pr), GOOP_EINVAL);
  CHECK_INT_EQ(goop_presence_new(ps, h, NULL, NULL, NULL, &pr), 0);
  CHECK_INT_EQ(goop_presence_announce(pr), GOOP_ESTATE);
  goop_presence_stop(pr); /* not started: no-op */
  CHECK_INT_EQ(goop_presence_start(pr), 0);
  CHECK_INT_EQ(goop_presence_announce(pr), 0); /* host addresses (none non-loopback here) */
  goop_presence_prune(pr, UINT64_MAX);
  CHECK_INT_EQ(goop_presence_count(pr), 0);
  goop_presence_free(pr);
  goop_presence_free(NULL);
  goop_pubsub_free(ps);
  goop_host_free(h);
  goop_identity_free(id);
}

int main(void) {
  base = event_base_new();
  if (!base || goop_ctx_new(base, &ctx) != 0)
    return 1;
  goop_ctx_set_log_fn(ctx, log_fn, GOOP_LOG_DEBUG, NULL);
  RUN(test_api);
  RUN(test_presence);
  goop_ctx_free(ctx);
  event_base_free(base);
  return tap_done();
}
