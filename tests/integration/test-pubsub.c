/*
 * Pubsub C<->C over real hosts on loopback: three hosts in a line
 * (A - B - C, no A-C connection), publish on one, the others receive it
 * exactly once; a raw peer speaking /meshsub/1.1.0 by hand injects unsigned
 * and badly signed messages, which are dropped, and a valid one, which flows.
 */
#include <event2/event.h>
#include <goop/goop.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pubsub/rpc.h"
#include "tap.h"
#include "varint.h"

#define TOPIC "goop.presence.v1"

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
  int got[16];
  int got_other;
  goop_peer_id last_from;
};

static struct node N[3];

static void make_node(struct node *n) {
  if (goop_identity_generate(&n->id) != 0 || goop_host_new(ctx, n->id, NULL, &n->h) != 0 ||
      goop_host_listen(n->h, "/ip4/127.0.0.1/tcp/0") != 0)
    abort();
  goop_host_peer_id(n->h, &n->pid);
}

static void full_addr(goop_host *h, char *buf, size_t len) {
  char a[200], id[GOOP_PEER_ID_STR_MAX];
  goop_peer_id pid;
  goop_host_listen_addr(h, 0, a, sizeof(a));
  goop_host_peer_id(h, &pid);
  goop_peer_id_to_string(&pid, id, sizeof(id));
  snprintf(buf, len, "%s/p2p/%s", a, id);
}

static bool (*cond_fn)(void);

/* Run the loop until cond_fn() or timeout (seconds). */
static bool run_until(bool (*fn)(void), int seconds) {
  struct timeval tv = {0, 20000};
  cond_fn = fn;
  for (int i = 0; i < seconds * 50 && !fn(); i++) {
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

static void on_msg(goop_pubsub *ps, const struct goop_pubsub_message *m, void *ud) {
  (void)ps;
  struct node *n = ud;
  int k = -1;
  if (m->len >= 4 && m->len < 8 && memcmp(m->data, "msg", 3) == 0)
    k = m->data[3] - '0';
  if (k >= 0 && k < 16)
    n->got[k]++;
  else
    n->got_other++;
  n->last_from = m->from;
}

static volatile int connected;
static void on_connect(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h, (void)c, (void)ud;
  if (status == 0)
    connected++;
}

static bool subs_known(void) {
  return goop_pubsub_topic_peers(N[0].ps, TOPIC) == 1 && goop_pubsub_topic_peers(N[1].ps, TOPIC) == 2 &&
         goop_pubsub_topic_peers(N[2].ps, TOPIC) == 1;
}
static bool got0(void) {
  return N[1].got[0] == 1 && N[2].got[0] == 1;
}
static bool got1(void) {
  return N[0].got[1] == 1 && N[1].got[1] == 1;
}

static void test_three_hosts(void) {
  struct goop_host_events ev = {.version = GOOP_HOST_EVENTS_V1, .on_identified = goop_pubsub_host_identified};
  for (int i = 0; i < 3; i++) {
    make_node(&N[i]);
    CHECK_INT_EQ(goop_pubsub_new(N[i].h, &N[i].ps), 0);
    goop_host_set_events(N[i].h, &ev, N[i].ps);
    CHECK_INT_EQ(goop_pubsub_subscribe(N[i].ps, TOPIC, on_msg, &N[i]), 0);
  }
  /* Identify now announces the pubsub protocols. */
  char addr[300];
  full_addr(N[1].h, addr, sizeof(addr));
  CHECK_INT_EQ(goop_host_connect_addr(N[0].h, addr, 5000, on_connect, NULL), 0);
  CHECK_INT_EQ(goop_host_connect_addr(N[2].h, addr, 5000, on_connect, NULL), 0);
  CHECK(run_until(subs_known, 10));
  /* Publish on A: B gets it directly, C through B. */
  CHECK_INT_EQ(goop_pubsub_publish(N[0].ps, TOPIC, "msg0", 4), 0);
  CHECK(run_until(got0, 10));
  CHECK(goop_peer_id_equal(&N[2].last_from, &N[0].pid));
  /* Publish on C. */
  CHECK_INT_EQ(goop_pubsub_publish(N[2].ps, TOPIC, "msg1", 4), 0);
  CHECK(run_until(got1, 10));
  /* A few heartbeats later (gossip), nothing was delivered twice. */
  run_for(2500);
  CHECK_INT_EQ(N[1].got[0], 1);
  CHECK_INT_EQ(N[2].got[0], 1);
  CHECK_INT_EQ(N[0].got[0], 0);
  CHECK_INT_EQ(N[0].got[1], 1);
  CHECK_INT_EQ(N[2].got[1], 0);
  struct goop_pubsub_stats st;
  goop_pubsub_get_stats(N[1].ps, &st);
  CHECK_INT_EQ(st.peers, 2);
  CHECK(st.msgs_forwarded >= 2);
  CHECK_INT_EQ(st.msgs_invalid, 0);
}

/* ---- a raw peer ---- */

static goop_identity *raw_id;
static goop_host *raw_h;
static goop_peer_id raw_pid;
static goop_stream *raw_s;
static volatile int raw_open_done;

static void raw_opened(goop_host *h, int status, goop_stream *s, void *ud) {
  (void)h, (void)ud;
  if (status == 0)
    raw_s = s;
  raw_open_done = 1;
}

static bool raw_ready(void) {
  return raw_open_done;
}

static void raw_write_rpc(const struct goop_rpc *r) {
  goop_buf b, f;
  goop_buf_init(&b, 0);
  goop_buf_init(&f, 0);
  CHECK_INT_EQ(goop_rpc_encode(r, &b), 0);
  CHECK_INT_EQ(goop_frame_append(&f, b.data, b.len), 0);
  CHECK_INT_EQ(goop_stream_write(raw_s, f.data, f.len), (ssize_t)f.len);
  goop_buf_free(&b);
  goop_buf_free(&f);
}

static void raw_message(const goop_identity *signer, const char *data, uint64_t seq, bool sign,
                        bool corrupt) {
  uint8_t seqb[8], sig[64];
  for (int i = 7; i >= 0; i--, seq >>= 8)
    seqb[i] = (uint8_t)seq;
  struct goop_rpc_message m = {.has = GOOP_RPC_HAS_FROM | GOOP_RPC_HAS_DATA | GOOP_RPC_HAS_SEQNO |
                                      GOOP_RPC_HAS_TOPIC,
                               .from = {raw_pid.bytes, raw_pid.len},
                               .data = {(const uint8_t *)data, strlen(data)},
                               .seqno = {seqb, 8},
                               .topic = {(const uint8_t *)TOPIC, strlen(TOPIC)}};
  goop_buf b;
  goop_buf_init(&b, 0);
  goop_buf_append(&b, "libp2p-pubsub:", 14);
  goop_rpc_encode_signed_part(&m, &b);
  CHECK_INT_EQ(goop_identity_sign(signer, b.data, b.len, sig), 0);
  goop_buf_free(&b);
  if (corrupt)
    sig[0] ^= 0x80;
  if (sign) {
    m.has |= GOOP_RPC_HAS_SIGNATURE;
    m.signature.p = sig;
    m.signature.len = sizeof(sig);
  }
  struct goop_rpc r = {.msgs = &m, .n_msgs = 1};
  raw_write_rpc(&r);
}

static bool got5(void) {
  return N[0].got[5] == 1 && N[1].got[5] == 1 && N[2].got[5] == 1;
}

static bool a_invalid3(void) {
  struct goop_pubsub_stats st;
  goop_pubsub_get_stats(N[0].ps, &st);
  return st.msgs_invalid >= 3;
}

static void test_raw_peer(void) {
  goop_identity *other;
  CHECK_INT_EQ(goop_identity_generate(&raw_id), 0);
  CHECK_INT_EQ(goop_identity_generate(&other), 0);
  CHECK_INT_EQ(goop_host_new(ctx, raw_id, NULL, &raw_h), 0);
  goop_host_peer_id(raw_h, &raw_pid);
  char addr[300];
  full_addr(N[0].h, addr, sizeof(addr));
  connected = 0;
  CHECK_INT_EQ(goop_host_connect_addr(raw_h, addr, 5000, on_connect, NULL), 0);
  const char *proto = "/meshsub/1.1.0";
  CHECK_INT_EQ(goop_host_new_stream(raw_h, &N[0].pid, &proto, 1, 5000, raw_opened, NULL), 0);
  CHECK(run_until(raw_ready, 10));
  CHECK(raw_s != NULL);
  if (!raw_s)
    return;
  struct goop_rpc_sub sub = {true, {(const uint8_t *)TOPIC, strlen(TOPIC)}};
  struct goop_rpc r = {.subs = &sub, .n_subs = 1};
  raw_write_rpc(&r);
  raw_message(raw_id, "msg2", 2, false, false); /* unsigned */
  raw_message(raw_id, "msg3", 3, true, true);   /* bad signature */
  raw_message(other, "msg4", 4, true, false);   /* signed by someone else */
  CHECK(run_until(a_invalid3, 10));
  raw_message(raw_id, "msg5", 5, true, false); /* valid */
  CHECK(run_until(got5, 10));
  run_for(1500);
  for (int i = 0; i < 3; i++) {
    CHECK_INT_EQ(N[i].got[2] + N[i].got[3] + N[i].got[4], 0);
    CHECK_INT_EQ(N[i].got[5], 1);
  }
  /* Garbage on the stream: A resets it and keeps working. */
  const uint8_t junk[] = {0x04, 0x08, 0x01, 0x10, 0x01};
  CHECK_INT_EQ(goop_stream_write(raw_s, junk, sizeof(junk)), (ssize_t)sizeof(junk));
  run_for(500);
  struct goop_pubsub_stats st;
  goop_pubsub_get_stats(N[0].ps, &st);
  CHECK(st.rpcs_bad >= 1);
  CHECK_INT_EQ(goop_pubsub_publish(N[1].ps, TOPIC, "msg6", 4), 0);
  run_for(500);
  CHECK_INT_EQ(N[0].got[6], 1);
  goop_stream_unref(raw_s);
  goop_identity_free(other);
}

static bool b_has_one_peer(void) {
  struct goop_pubsub_stats st;
  goop_pubsub_get_stats(N[1].ps, &st);
  return st.peers == 1; /* only A: C is gone */
}

static bool c_back(void) {
  return goop_pubsub_topic_peers(N[2].ps, TOPIC) == 1 && goop_pubsub_topic_peers(N[1].ps, TOPIC) >= 2;
}

static bool got7(void) {
  return N[2].got[7] == 1;
}

static void test_reconnect(void) {
  /* B drops its connection to C: both forget each other; C reconnects and messages flow again. */
  goop_conn *c = goop_host_get_conn(N[1].h, &N[2].pid);
  CHECK(c != NULL);
  if (!c)
    return;
  goop_conn_close(c);
  CHECK(run_until(b_has_one_peer, 10));
  char addr[300];
  full_addr(N[1].h, addr, sizeof(addr));
  CHECK_INT_EQ(goop_host_connect_addr(N[2].h, addr, 5000, on_connect, NULL), 0);
  CHECK(run_until(c_back, 10));
  CHECK_INT_EQ(goop_pubsub_publish(N[0].ps, TOPIC, "msg7", 4), 0);
  CHECK(run_until(got7, 10));
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  base = event_base_new();
  if (goop_ctx_new(base, &ctx) != 0)
    return 1;
  goop_ctx_set_log_fn(ctx, log_fn, GOOP_LOG_DEBUG, NULL);
  RUN(test_three_hosts);
  RUN(test_raw_peer);
  RUN(test_reconnect);
  for (int i = 0; i < 3; i++) {
    goop_pubsub_free(N[i].ps);
    goop_host_free(N[i].h);
    goop_identity_free(N[i].id);
  }
  goop_host_free(raw_h);
  goop_identity_free(raw_id);
  goop_ctx_free(ctx);
  event_base_free(base);
  return tap_done();
}
