/*
 * Hole punching on loopback: TCP simultaneous open with DCUtR roles, the full
 * /libp2p/dcutr exchange over a carrier connection, observed addresses from
 * identify, and hostile or absent dcutr peers. Real hosts and sockets in one
 * process on one event loop.
 */
#include <event2/event.h>
#include <goop/goop.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/multiaddr.h"
#include "relay/relay-msg.h"
#include "tap.h"
#include "transport-internal.h" /* white-box: roles, carriers, goop__dcutr_* */

static struct event_base *base;
static goop_ctx *ctx;

/* ---- log capture ---- */
static char logs[64 * 1024];
static size_t logs_len;

static void log_fn(enum goop_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (getenv("GOOP_TEST_LOG"))
    fprintf(stderr, "[%d] %s\n", level, msg);
  size_t n = strlen(msg);
  if (logs_len + n + 2 < sizeof(logs)) {
    memcpy(logs + logs_len, msg, n);
    logs_len += n;
    logs[logs_len++] = '\n';
    logs[logs_len] = 0;
  }
}

static int log_count(const char *needle) {
  int n = 0;
  for (const char *p = logs; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

static void log_clear(void) {
  logs_len = 0;
  logs[0] = 0;
}

/* ---- hosts ---- */

static goop_host *make_host(int n_listen) {
  goop_identity *id;
  if (goop_identity_generate(&id))
    return NULL;
  goop_host *h = NULL;
  int rc = goop_host_new(ctx, id, NULL, &h);
  goop_identity_free(id);
  if (rc)
    return NULL;
  for (int i = 0; i < n_listen; i++) {
    if (goop_host_listen(h, "/ip4/127.0.0.1/tcp/0") != 0) {
      goop_host_free(h);
      return NULL;
    }
  }
  return h;
}

static void full_addr(goop_host *h, size_t i, char *buf, size_t len) {
  char a[200], id[GOOP_PEER_ID_STR_MAX];
  goop_peer_id pid;
  goop_host_listen_addr(h, i, a, sizeof(a));
  goop_host_peer_id(h, &pid);
  goop_peer_id_to_string(&pid, id, sizeof(id));
  snprintf(buf, len, "%s/p2p/%s", a, id);
}

static goop_peer_id pid_of(goop_host *h) {
  goop_peer_id p;
  goop_host_peer_id(h, &p);
  return p;
}

static void spin(int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  event_base_loopexit(base, &tv);
  event_base_dispatch(base);
}

/* Run the loop until cond() or |seconds|. */
#define RUN_UNTIL(cond, seconds)                                                                             \
  do {                                                                                                       \
    for (int i_ = 0; i_ < (seconds)*50 && !(cond); i_++)                                                     \
      spin(20);                                                                                              \
  } while (0)

static void on_connect(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h;
  (void)c;
  *(int *)ud = status == 0 ? 1 : -1;
}

/* Connect |from| to the |i|-th listen address of |to| and wait until identify finished both ways. */
static goop_conn *connect_hosts(goop_host *from, goop_host *to, size_t i) {
  char addr[300];
  full_addr(to, i, addr, sizeof(addr));
  int done = 0;
  if (goop_host_connect_addr(from, addr, 5000, on_connect, &done) != 0)
    return NULL;
  RUN_UNTIL(done != 0, 10);
  if (done != 1)
    return NULL;
  goop_peer_id tp = pid_of(to), fp = pid_of(from);
  goop_conn *c = goop_host_get_conn(from, &tp);
  RUN_UNTIL(c && c->identified && goop_host_get_conn(to, &fp) && goop_host_get_conn(to, &fp)->identified, 10);
  return c;
}

static void on_ping(goop_host *h, int status, uint64_t rtt, void *ud) {
  (void)h;
  (void)rtt;
  *(int *)ud = status == 0 ? 1 : -1;
}

static bool ping_ok(goop_host *from, goop_host *to) {
  goop_peer_id tp = pid_of(to);
  int done = 0;
  if (goop_host_ping(from, &tp, 5000, on_ping, &done) != 0)
    return false;
  RUN_UNTIL(done != 0, 10);
  return done == 1;
}

static size_t count_ready(goop_host *h, const goop_peer_id *peer) {
  size_t n = 0;
  for (goop_conn *c = h->conns; c; c = c->next)
    if (c->state == GOOP_CONN_READY && goop_peer_id_equal(&c->remote, peer))
      n++;
  return n;
}

/* The binary form of the |i|-th listen address of |h|. */
static size_t listen_bin(goop_host *h, size_t i, uint8_t *out) {
  char text[200];
  goop_host_listen_addr(h, i, text, sizeof(text));
  goop_buf b;
  goop_buf_init(&b, GOOP_MA_MAX);
  size_t n = 0;
  if (goop_ma_from_string(text, &b) == 0 && b.len <= 64) {
    memcpy(out, b.data, b.len);
    n = b.len;
  }
  goop_buf_free(&b);
  return n;
}

/* ---- (a) TCP simultaneous open from the listen ports ---- */

/*
 * Every round: B has two listeners; A reaches B's second one (the carrier,
 * itself dialled from A's listen port). Then both punch at the same moment
 * from their first listen ports: whoever's connect() runs first gets the
 * 4-tuple, the other's SYN finds it taken (or lands on the listener). Either
 * way exactly one new connection must come up with A as client and B as
 * server, carry streams, and be the one goop_host_get_conn() returns.
 */
static void test_simultaneous_open(void) {
  int good = 0, rounds = 20;
  for (int r = 0; r < rounds; r++) {
    goop_host *a = make_host(1), *b = make_host(2);
    goop_conn *carrier = connect_hosts(a, b, 1);
    goop_peer_id ap = pid_of(a), bp = pid_of(b);
    goop_conn *bcarrier = goop_host_get_conn(b, &ap);
    if (!carrier || !bcarrier) {
      CHECK(!"carrier connection");
      goop_host_free(a);
      goop_host_free(b);
      continue;
    }
    uint8_t ama[64], bma[64];
    size_t alen = listen_bin(a, 0, ama), blen = listen_bin(b, 0, bma);
    const uint8_t *am[] = {ama}, *bm[] = {bma};
    /* Alternate who calls connect() first. */
    int ra, rb;
    if (r % 2) {
      ra = goop__dcutr_punch_now(carrier, false, bm, &blen, 1);
      rb = goop__dcutr_punch_now(bcarrier, true, am, &alen, 1);
    } else {
      rb = goop__dcutr_punch_now(bcarrier, true, am, &alen, 1);
      ra = goop__dcutr_punch_now(carrier, false, bm, &blen, 1);
    }
    goop_conn *ad = NULL, *bd = NULL;
    RUN_UNTIL((ad = goop_host_get_conn(a, &bp)) != carrier && ad &&
                  (bd = goop_host_get_conn(b, &ap)) != bcarrier && bd,
              10);
    bool ok = ra == 0 && rb == 0 && ad && bd && ad != carrier && bd != bcarrier;
    ok = ok && ad->initiator && !bd->initiator && !goop__conn_relayed(ad);
    /* the carrier is superseded: no longer chosen, closed once idle */
    ok = ok && carrier->draining && bcarrier->draining;
    ok = ok && ping_ok(a, b) && ping_ok(b, a);
    if (ok) {
      RUN_UNTIL(count_ready(a, &bp) == 1 && count_ready(b, &ap) == 1, 15);
      ok = count_ready(a, &bp) == 1 && count_ready(b, &ap) == 1 && goop_host_get_conn(a, &bp) == ad;
    }
    if (ok)
      good++;
    else
      printf("# round %d failed: ra=%d rb=%d ad=%p bd=%p\n", r, ra, rb, (void *)ad, (void *)bd);
    goop_host_free(a);
    goop_host_free(b);
  }
  CHECK_INT_EQ(good, rounds);
}

/* ---- (b) the full exchange over a direct carrier ---- */

static void test_exchange(void) {
  log_clear();
  goop_host *a = make_host(1), *b = make_host(2);
  goop_conn *carrier = connect_hosts(a, b, 1);
  goop_peer_id ap = pid_of(a), bp = pid_of(b);
  goop_conn *bcarrier = goop_host_get_conn(b, &ap);
  CHECK(carrier != NULL && bcarrier != NULL);
  if (!carrier || !bcarrier)
    goto out;
  /* B is the side that starts (it would hold the inbound relayed connection). */
  CHECK_INT_EQ(goop__dcutr_start(bcarrier), 0);
  CHECK_INT_EQ(goop__dcutr_start(bcarrier), GOOP_EALREADY);
  goop_conn *ad = NULL, *bd = NULL;
  RUN_UNTIL(log_count("direct connection established") == 2, 15);
  CHECK_INT_EQ(log_count("direct connection established"), 2);
  CHECK(log_count("hole punch to") >= 1);
  ad = goop_host_get_conn(a, &bp);
  bd = goop_host_get_conn(b, &ap);
  CHECK(ad != NULL && ad != carrier);
  CHECK(bd != NULL && bd != bcarrier);
  if (!ad || !bd || ad == carrier || bd == bcarrier)
    goto out;
  CHECK(ad->initiator);  /* A: client */
  CHECK(!bd->initiator); /* B: server */
  CHECK(ping_ok(a, b));
  CHECK(ping_ok(b, a));
  /* The carrier closes once idle (at the latest after the grace period). */
  RUN_UNTIL(count_ready(a, &bp) == 1 && count_ready(b, &ap) == 1, 15);
  CHECK_INT_EQ(count_ready(a, &bp), 1);
  CHECK_INT_EQ(count_ready(b, &ap), 1);
  CHECK(goop_host_get_conn(a, &bp) == ad);
  CHECK(ping_ok(a, b));
out:
  goop_host_free(a);
  goop_host_free(b);
}

/* ---- (c) through a circuit relay ---- */

static void on_rsv(goop_host *h, goop_reservation *r, int status, void *ud) {
  (void)h;
  (void)r;
  *(int *)ud = status == 0 ? 1 : -1;
}

struct conn_wait {
  int done;
  goop_conn *conn;
};

static void on_connect_keep(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h;
  struct conn_wait *w = ud;
  w->done = status == 0 ? 1 : -1;
  w->conn = c ? goop_conn_ref(c) : NULL;
}

/* Connection events as a module following connections sees them. */
struct ev_count {
  int connected, disconnected, relayed_now; /* relayed_now: relayed connections announced and not yet gone */
  int identified_after;                     /* direct connection identified after a relayed one went away */
};

static void ev_conn(goop_host *h, goop_conn *c, void *ud) {
  (void)h;
  struct ev_count *e = ud;
  e->connected++;
  e->relayed_now += goop_conn_is_relayed(c);
}

static void ev_disc(goop_host *h, goop_conn *c, int reason, void *ud) {
  (void)h;
  (void)reason;
  struct ev_count *e = ud;
  e->disconnected++;
  e->relayed_now -= goop_conn_is_relayed(c);
}

static void ev_ident(goop_host *h, goop_conn *c, void *ud) {
  (void)h;
  struct ev_count *e = ud;
  if (!goop_conn_is_relayed(c) && e->disconnected > 0)
    e->identified_after++;
}

static const struct goop_host_events ev_counters = {GOOP_HOST_EVENTS_V1, ev_conn, ev_disc, ev_ident};

static size_t count_relayed(goop_host *h, const goop_peer_id *peer) {
  size_t n = 0;
  for (goop_conn *c = h->conns; c; c = c->next)
    if (c->state == GOOP_CONN_READY && c->relayed && goop_peer_id_equal(&c->remote, peer))
      n++;
  return n;
}

/*
 * Relay R on loopback, B reserves a slot, A dials B through the circuit. B
 * (inbound relayed connection) starts DCUtR after identify; both end on a
 * direct connection (A client, B server) and the relayed one closes. With
 * |a_listens| false, A has no listen port to punch from and no address to
 * offer: 3 attempts, then both stay on the relay.
 */
static void via_relay(bool a_listens) {
  log_clear();
  goop_host *r = make_host(1), *a = make_host(a_listens ? 1 : 0), *b = make_host(1);
  goop_relay *relay = NULL;
  goop_reservation *rsv = NULL;
  CHECK_INT_EQ(goop_relay_new(r, NULL, &relay), 0);
  goop_peer_id rp = pid_of(r), ap = pid_of(a), bp = pid_of(b);
  char raddr[300], circ[800], bstr[GOOP_PEER_ID_STR_MAX];
  full_addr(r, 0, raddr, sizeof(raddr));
  goop_peer_id_to_string(&bp, bstr, sizeof(bstr));
  snprintf(circ, sizeof(circ), "%s/p2p-circuit/p2p/%s", raddr, bstr);
  const char *ra = raddr;
  struct ev_count ea = {0}, eb = {0};
  CHECK_INT_EQ(goop_host_add_events(a, &ev_counters, &ea, NULL), 0);
  CHECK_INT_EQ(goop_host_add_events(b, &ev_counters, &eb, NULL), 0);
  int rsv_ok = 0;
  CHECK_INT_EQ(goop_host_reserve(b, &rp, &ra, 1, on_rsv, &rsv_ok, &rsv), 0);
  RUN_UNTIL(rsv_ok != 0, 15);
  CHECK_INT_EQ(rsv_ok, 1);
  struct conn_wait w = {0};
  CHECK_INT_EQ(goop_host_connect_addr(a, circ, 10000, on_connect_keep, &w), 0);
  RUN_UNTIL(w.done != 0, 15);
  CHECK_INT_EQ(w.done, 1);
  goop_conn *arel = w.conn; /* reference held */
  CHECK(arel != NULL && goop_conn_is_relayed(arel));
  if (!arel)
    goto out;
  if (a_listens) {
    RUN_UNTIL(log_count("direct connection established") == 2, 30);
    CHECK_INT_EQ(log_count("direct connection established"), 2);
    goop_conn *ad = goop_host_get_conn(a, &bp), *bd = goop_host_get_conn(b, &ap);
    CHECK(ad != NULL && !goop_conn_is_relayed(ad));
    CHECK(bd != NULL && !goop_conn_is_relayed(bd));
    if (ad && bd) {
      CHECK(ad->initiator);  /* A: client */
      CHECK(!bd->initiator); /* B: server */
      char remote[300];
      CHECK(goop_conn_remote_addr(ad, remote, sizeof(remote)) > 0);
      CHECK(strstr(remote, "p2p-circuit") == NULL);
    }
    CHECK(ping_ok(a, b));
    CHECK(ping_ok(b, a));
    /* the relayed connection goes away on both sides */
    RUN_UNTIL(count_relayed(a, &bp) == 0 && count_relayed(b, &ap) == 0, 20);
    CHECK_INT_EQ(count_relayed(a, &bp), 0);
    CHECK_INT_EQ(count_relayed(b, &ap), 0);
    CHECK(goop_conn_is_closed(arel));
    /* Listeners saw the move: relayed connected, direct connected, relayed disconnected,
     * and the direct connection identified again once the relayed one was gone. */
    RUN_UNTIL(ea.identified_after > 0 && eb.identified_after > 0, 10);
    CHECK_INT_EQ(ea.connected, 3); /* R, B relayed, B direct */
    CHECK_INT_EQ(ea.disconnected, 1);
    CHECK_INT_EQ(ea.relayed_now, 0);
    CHECK_INT_EQ(eb.connected - eb.disconnected, 2); /* B also holds its relay connection */
    CHECK_INT_EQ(eb.relayed_now, 0);
    CHECK(ea.identified_after > 0);
    CHECK(eb.identified_after > 0);
    struct goop_relay_stats st;
    RUN_UNTIL((goop_relay_get_stats(relay, &st), st.circuits_active == 0), 10);
    CHECK_INT_EQ(st.circuits_active, 0);
    CHECK(ping_ok(a, b));
  } else {
    RUN_UNTIL(log_count("failed after 3 attempts; staying on relay") == 1, 40);
    CHECK_INT_EQ(log_count("failed after 3 attempts; staying on relay"), 1);
    CHECK_INT_EQ(log_count("direct connection established"), 0);
    CHECK(goop_host_get_conn(a, &bp) == arel);
    CHECK(!goop_conn_is_closed(arel));
    CHECK_INT_EQ(ea.connected, 2); /* R, B relayed */
    CHECK_INT_EQ(ea.disconnected, 0);
    CHECK_INT_EQ(ea.relayed_now, 1);
    CHECK(ping_ok(a, b));
    CHECK(ping_ok(b, a));
  }
  goop_conn_unref(arel);
out:
  goop_reservation_free(rsv);
  goop_relay_free(relay);
  goop_host_free(a);
  goop_host_free(b);
  goop_host_free(r);
}

static void test_via_relay(void) {
  via_relay(true);
}

static void test_via_relay_fails(void) {
  via_relay(false);
}

/* ---- (d) failure paths ---- */

/* A fake A that answers every dcutr stream with |reply| (then keeps quiet). */
struct fake {
  const uint8_t *reply;
  size_t len;
  int streams;
};

static void drain_readable(goop_stream *s, void *ud) {
  (void)ud;
  uint8_t buf[256];
  while (goop_stream_read(s, buf, sizeof(buf)) > 0)
    ;
}

static void quiet_error(goop_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  (void)ud;
}

static const struct goop_stream_callbacks drain_cbs = {GOOP_STREAM_CALLBACKS_V1, drain_readable, NULL,
                                                       quiet_error};

/* Answer once, on the first bytes; then only drain. */
static void fake_readable(goop_stream *s, void *ud) {
  struct fake *f = ud;
  drain_readable(s, NULL);
  if (!f->reply)
    return; /* a silent peer */
  (void)goop_stream_write(s, f->reply, f->len);
  goop_stream_set_callbacks(s, &drain_cbs, NULL);
}

static goop_stream *fake_streams[8];
static int n_fake_streams;

static void fake_handler(goop_host *h, goop_stream *s, void *ud) {
  (void)h;
  struct fake *f = ud;
  f->streams++;
  static const struct goop_stream_callbacks cbs = {GOOP_STREAM_CALLBACKS_V1, fake_readable, NULL,
                                                   quiet_error};
  goop_stream_set_callbacks(s, &cbs, f);
  if (n_fake_streams < 8)
    fake_streams[n_fake_streams++] = s; /* the handler's reference */
  else
    goop_stream_unref(s);
}

static void release_fake_streams(void) {
  for (int i = 0; i < n_fake_streams; i++)
    goop_stream_unref(fake_streams[i]);
  n_fake_streams = 0;
}

/* B punches a peer that answers |reply|; the punch must end with |expect_log| and leave the carrier alone. */
static void punch_fake(const uint8_t *reply, size_t len, const char *expect_log, int expect_streams) {
  log_clear();
  goop_host *a = make_host(1), *b = make_host(1);
  struct fake f = {reply, len, 0};
  CHECK_INT_EQ(goop_host_set_stream_handler(a, GOOP_PROTO_DCUTR, fake_handler, &f), 0);
  goop_conn *bc = connect_hosts(b, a, 0);
  goop_peer_id ap = pid_of(a);
  CHECK(bc != NULL);
  if (!bc)
    goto out;
  CHECK_INT_EQ(goop__dcutr_start(bc), 0);
  RUN_UNTIL(log_count(expect_log) >= 1, 20);
  CHECK_INT_EQ(log_count(expect_log), 1);
  CHECK_INT_EQ(f.streams, expect_streams);
  CHECK(goop_host_get_conn(b, &ap) == bc); /* unaffected */
  CHECK(!goop_conn_is_closed(bc));
  CHECK(ping_ok(b, a));
  CHECK_INT_EQ(log_count("direct connection established"), 0);
out:
  release_fake_streams();
  goop_host_free(a);
  goop_host_free(b);
}

static void test_garbage(void) {
  /* a length prefix and a body that is no protobuf */
  static const uint8_t junk[] = {0x04, 0xff, 0xff, 0xff, 0xff};
  punch_fake(junk, sizeof(junk), "malformed message", 1);
  /* a SYNC where a CONNECT belongs */
  static const uint8_t sync[] = {0x03, 0x08, 0xac, 0x02};
  punch_fake(sync, sizeof(sync), "unexpected message", 1);
  /* a message announced at 5000 bytes (over the 4 KiB limit) */
  static uint8_t big[5002];
  big[0] = 0x88;
  big[1] = 0x27; /* uvarint 5000 */
  punch_fake(big, sizeof(big), "oversized message", 1);
  /* a message with no type */
  static const uint8_t untyped[] = {0x02, 0x12, 0x00};
  punch_fake(untyped, sizeof(untyped), "malformed message", 1);
}

static void test_unreachable(void) {
  /* A answers CONNECT with a closed port and never dials: 3 attempts, then the carrier stays. */
  goop_buf b;
  goop_buf_init(&b, 0);
  uint8_t ma[32];
  goop_buf mab;
  goop_buf_init(&mab, GOOP_MA_MAX);
  CHECK_INT_EQ(goop_ma_from_string("/ip4/127.0.0.1/tcp/1", &mab), 0);
  memcpy(ma, mab.data, mab.len);
  goop_holepunch_msg m = {.has_type = true, .type = GOOP_HOLEPUNCH_CONNECT, .n_addrs = 1};
  m.addrs[0] = (goop_relay_bytes){ma, mab.len};
  CHECK_INT_EQ(goop_holepunch_encode(&m, &b), 0);
  punch_fake(b.data, b.len, "failed after 3 attempts; staying on relay", 3);
  goop_buf_free(&mab);
  goop_buf_free(&b);
}

static void test_no_handler(void) {
  log_clear();
  goop_host *a = make_host(1), *b = make_host(1);
  CHECK_INT_EQ(goop_host_remove_stream_handler(a, GOOP_PROTO_DCUTR), 0);
  goop_conn *bc = connect_hosts(b, a, 0);
  goop_peer_id ap = pid_of(a);
  CHECK(bc != NULL);
  if (bc) {
    CHECK_INT_EQ(goop__dcutr_start(bc), 0);
    RUN_UNTIL(log_count("cannot open /libp2p/dcutr") >= 1, 15);
    CHECK_INT_EQ(log_count("cannot open /libp2p/dcutr"), 1);
    CHECK(goop_host_get_conn(b, &ap) == bc);
    CHECK(ping_ok(b, a));
  }
  goop_host_free(a);
  goop_host_free(b);
}

/* Hosts freed while a punch waits for an answer (and while one dials): no leak, no crash. */
static void test_free_midway(void) {
  log_clear();
  goop_host *a = make_host(1), *b = make_host(1);
  struct fake f = {NULL, 0, 0};
  CHECK_INT_EQ(goop_host_set_stream_handler(a, GOOP_PROTO_DCUTR, fake_handler, &f), 0);
  goop_conn *bc = connect_hosts(b, a, 0);
  CHECK(bc != NULL);
  if (bc) {
    CHECK_INT_EQ(goop__dcutr_start(bc), 0);
    RUN_UNTIL(f.streams == 1, 10);
    CHECK_INT_EQ(f.streams, 1);
  }
  release_fake_streams();
  goop_host_free(b);
  goop_host_free(a);

  /* both sides in the middle of their dials */
  a = make_host(1);
  b = make_host(2);
  goop_conn *carrier = connect_hosts(a, b, 1);
  goop_peer_id ap = pid_of(a);
  goop_conn *bcarrier = goop_host_get_conn(b, &ap);
  CHECK(carrier && bcarrier);
  if (carrier && bcarrier) {
    uint8_t ama[64], bma[64];
    size_t alen = listen_bin(a, 0, ama), blen = listen_bin(b, 0, bma);
    const uint8_t *am[] = {ama}, *bm[] = {bma};
    CHECK_INT_EQ(goop__dcutr_punch_now(carrier, false, bm, &blen, 1), 0);
    CHECK_INT_EQ(goop__dcutr_punch_now(bcarrier, true, am, &alen, 1), 0);
  }
  goop_host_free(a);
  goop_host_free(b);
  spin(50);
}

/* A: garbage on an inbound dcutr stream resets it; the connection lives on. */
static int opened_status;
static goop_stream *opened;
static void on_open(goop_host *h, int status, goop_stream *s, void *ud) {
  (void)h;
  (void)ud;
  opened_status = status == 0 ? 1 : -1;
  opened = s;
}
static int a_err;
static void a_err_cb(goop_stream *s, int err, void *ud) {
  (void)s;
  (void)ud;
  a_err = err;
}
static void a_read_cb(goop_stream *s, void *ud) {
  (void)ud;
  uint8_t buf[64];
  ssize_t n;
  while ((n = goop_stream_read(s, buf, sizeof(buf))) > 0)
    ;
  if (n != GOOP_EAGAIN)
    a_err = n == 0 ? GOOP_ECLOSED : (int)n;
}

static void test_garbage_to_a(void) {
  log_clear();
  goop_host *a = make_host(1), *b = make_host(1);
  goop_conn *bc = connect_hosts(b, a, 0);
  goop_peer_id ap = pid_of(a);
  CHECK(bc != NULL);
  if (bc) {
    static const char *const protos[] = {GOOP_PROTO_DCUTR};
    opened_status = 0;
    a_err = 0;
    CHECK_INT_EQ(goop_host_new_stream(b, &ap, protos, 1, 5000, on_open, NULL), 0);
    RUN_UNTIL(opened_status != 0, 10);
    CHECK_INT_EQ(opened_status, 1);
    if (opened) {
      static const struct goop_stream_callbacks cbs = {GOOP_STREAM_CALLBACKS_V1, a_read_cb, NULL, a_err_cb};
      goop_stream_set_callbacks(opened, &cbs, NULL);
      static const uint8_t junk[] = {0x05, 0x08, 0xff, 0xff, 0xff, 0xff};
      CHECK(goop_stream_write(opened, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
      RUN_UNTIL(a_err != 0, 10);
      CHECK_INT_EQ(a_err, GOOP_ERESET);
      CHECK_INT_EQ(log_count("malformed message"), 1);
      goop_stream_unref(opened);
      opened = NULL;
    }
    CHECK(goop_host_get_conn(b, &ap) == bc);
    CHECK(ping_ok(b, a));
  }
  goop_host_free(a);
  goop_host_free(b);
}

/* ---- observed addresses ---- */

/* An identify responder that reports |observed| and, if |relay|, the hop protocol. */
struct fake_id {
  const char *observed;
  bool relay;
};

static void fake_identify(goop_host *h, goop_stream *s, void *ud) {
  (void)h;
  struct fake_id *fi = ud;
  goop_identify id;
  goop_identify_init(&id);
  goop_buf ma, out;
  goop_buf_init(&ma, GOOP_MA_MAX);
  goop_buf_init(&out, 0);
  (void)goop_identify_set_agent_version(&id, "fake/1");
  if (goop_ma_from_string(fi->observed, &ma) == 0)
    (void)goop_identify_set_observed_addr(&id, ma.data, ma.len);
  (void)goop_identify_add_protocol(&id, "/ipfs/ping/1.0.0");
  if (fi->relay)
    (void)goop_identify_add_protocol(&id, GOOP_PROTO_RELAY_HOP);
  if (goop_identify_encode_msgs(&id, &out, NULL) == 0)
    (void)goop_stream_write(s, out.data, out.len);
  (void)goop_stream_close_write(s);
  goop_stream_unref(s);
  goop_buf_free(&ma);
  goop_buf_free(&out);
  goop_identify_clear(&id);
}

static goop_host *observer(struct fake_id *fi) {
  goop_host *h = make_host(1);
  if (h)
    (void)goop_host_set_stream_handler(h, "/ipfs/id/1.0.0", fake_identify, fi);
  return h;
}

static void test_observed(void) {
  char buf[200];
  goop_host *x = make_host(1);
  /* Ordinary peers on loopback report 127.0.0.1: ignored. */
  goop_host *plain = make_host(1);
  CHECK(connect_hosts(x, plain, 0) != NULL);
  CHECK_INT_EQ(goop_host_observed_addr(x, 0, buf, sizeof(buf)), GOOP_ENOENT);

  struct fake_id f1 = {"/ip4/198.51.100.7/tcp/4242", false};
  struct fake_id f2 = {"/ip4/198.51.100.7/tcp/4242", false};
  struct fake_id f3 = {"/ip4/203.0.113.9/tcp/5555", true};
  struct fake_id bad = {"/ip4/0.0.0.0/tcp/1", false};
  goop_host *o1 = observer(&f1), *o2 = observer(&f2), *o3 = observer(&f3), *o4 = observer(&bad);
  CHECK(connect_hosts(x, o1, 0) != NULL);
  /* one ordinary observer: recorded, not confirmed */
  CHECK_INT_EQ(goop_host_observed_addr(x, 0, buf, sizeof(buf)), GOOP_ENOENT);
  CHECK(connect_hosts(x, o4, 0) != NULL);
  CHECK_INT_EQ(goop_host_observed_addr(x, 0, buf, sizeof(buf)), GOOP_ENOENT);
  CHECK(connect_hosts(x, o2, 0) != NULL);
  /* two distinct observers: confirmed */
  CHECK(goop_host_observed_addr(x, 0, buf, sizeof(buf)) > 0);
  CHECK_STR_EQ(buf, "/ip4/198.51.100.7/tcp/4242");
  CHECK_INT_EQ(goop_host_observed_addr(x, 1, buf, sizeof(buf)), GOOP_ENOENT);
  /* one relay: confirmed at once */
  CHECK(connect_hosts(x, o3, 0) != NULL);
  CHECK(goop_host_observed_addr(x, 1, buf, sizeof(buf)) > 0);
  CHECK_STR_EQ(buf, "/ip4/203.0.113.9/tcp/5555");
  CHECK_INT_EQ(goop_host_observed_addr(x, 1, buf, 4), GOOP_EINVAL);
  /* announced after the listen address */
  char l0[200];
  goop_host_listen_addr(x, 0, l0, sizeof(l0));
  CHECK(goop_host_announce_addr(x, 0, buf, sizeof(buf)) > 0);
  CHECK_STR_EQ(buf, l0);
  CHECK(goop_host_announce_addr(x, 1, buf, sizeof(buf)) > 0);
  CHECK_STR_EQ(buf, "/ip4/198.51.100.7/tcp/4242");
  CHECK(goop_host_announce_addr(x, 2, buf, sizeof(buf)) > 0);
  CHECK_STR_EQ(buf, "/ip4/203.0.113.9/tcp/5555");
  CHECK_INT_EQ(goop_host_announce_addr(x, 3, buf, sizeof(buf)), GOOP_ENOENT);
  /* an observer that changes its mind counts for its last report only */
  f2.observed = "/ip4/198.51.100.8/tcp/4242";
  goop_peer_id o2p = pid_of(o2);
  goop_conn *c2 = goop_host_get_conn(x, &o2p);
  goop_conn_close(c2);
  spin(50);
  CHECK(connect_hosts(x, o2, 0) != NULL);
  CHECK(goop_host_observed_addr(x, 0, buf, sizeof(buf)) > 0);
  CHECK_STR_EQ(buf, "/ip4/203.0.113.9/tcp/5555");
  CHECK_INT_EQ(goop_host_observed_addr(x, 1, buf, sizeof(buf)), GOOP_ENOENT);
  goop_host_free(x);
  goop_host_free(plain);
  goop_host_free(o1);
  goop_host_free(o2);
  goop_host_free(o3);
  goop_host_free(o4);
}

/* ---- option off ---- */

static void test_disabled(void) {
  goop_host_config *cfg;
  CHECK_INT_EQ(goop_host_config_new(&cfg), 0);
  CHECK_INT_EQ(goop_host_config_set(cfg, GOOP_HOST_HOLE_PUNCHING, 2), GOOP_EINVAL);
  CHECK_INT_EQ(goop_host_config_set(cfg, GOOP_HOST_HOLE_PUNCHING, 0), 0);
  goop_identity *id;
  CHECK_INT_EQ(goop_identity_generate(&id), 0);
  goop_host *h = NULL;
  CHECK_INT_EQ(goop_host_new(ctx, id, cfg, &h), 0);
  goop_identity_free(id);
  goop_host_config_free(cfg);
  CHECK(goop__host_find_handler(h, GOOP_PROTO_DCUTR) == NULL);
  goop_host *b = make_host(1);
  CHECK(goop__host_find_handler(b, GOOP_PROTO_DCUTR) != NULL);
  CHECK_INT_EQ(goop_host_listen(h, "/ip4/127.0.0.1/tcp/0"), 0);
  goop_conn *c = connect_hosts(h, b, 0);
  CHECK(c != NULL);
  if (c)
    CHECK_INT_EQ(goop__dcutr_start(c), GOOP_ENOTSUP);
  /* Dials leave from an ephemeral port: what a relay observes of them is not kept. */
  if (c)
    CHECK(!c->from_listen_port);
  struct fake_id f = {"/ip4/203.0.113.9/tcp/5555", true};
  goop_host *o = observer(&f);
  CHECK(connect_hosts(h, o, 0) != NULL);
  char buf[200];
  CHECK_INT_EQ(goop_host_observed_addr(h, 0, buf, sizeof(buf)), GOOP_ENOENT);
  goop_host_free(h);
  goop_host_free(b);
  goop_host_free(o);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  base = event_base_new();
  if (goop_ctx_new(base, &ctx) != 0)
    return 1;
  goop_ctx_set_log_fn(ctx, log_fn, GOOP_LOG_DEBUG, NULL);
  RUN(test_observed);
  RUN(test_simultaneous_open);
  RUN(test_exchange);
  RUN(test_via_relay);
  RUN(test_via_relay_fails);
  RUN(test_garbage);
  RUN(test_garbage_to_a);
  RUN(test_unreachable);
  RUN(test_no_handler);
  RUN(test_free_midway);
  RUN(test_disabled);
  goop_ctx_free(ctx);
  event_base_free(base);
  return tap_done();
}
