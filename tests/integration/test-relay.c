/*
 * Circuit relay v2 service on loopback: a relay host R, a target B that
 * reserves by hand (hop RESERVE with the codec over a raw stream) and answers
 * the relay's stop stream with its own handler, sources A, C and D that send
 * hop CONNECT by hand. Bytes flow both ways through the relay (8 MiB each
 * way, SHA-256 checked, bytes sent together with the control messages kept);
 * failure paths: no reservation, reservation limits (per peer, per IP,
 * total), circuit limits, data and duration limits, malformed, oversized and
 * unexpected messages, a target that refuses, resets that cross the relay,
 * a reservation dying with its connection, and freeing the relay with a live
 * circuit.
 */
#include <event2/event.h>
#include <goop/goop.h>
#include <goop/relay.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/internal.h"
#include "core/multiaddr.h"
#include "relay-msg.h"
#include "tap.h"

static struct event_base *base;
static goop_ctx *ctx;
static goop_host *R, *A, *B, *C, *D;
static goop_peer_id idR, idA, idB, idC, idD;
static goop_relay *relay;

static void log_fn(enum goop_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (getenv("GOOP_TEST_LOG"))
    fprintf(stderr, "[%d] %s\n", level, msg);
}

static goop_host *make_host(goop_peer_id *ret_id) {
  goop_identity *id;
  if (goop_identity_generate(&id))
    return NULL;
  goop_host *h = NULL;
  int rc = goop_host_new(ctx, id, NULL, &h);
  goop_identity_free(id);
  if (rc)
    return NULL;
  if (goop_host_listen(h, "/ip4/127.0.0.1/tcp/0") != 0) {
    goop_host_free(h);
    return NULL;
  }
  goop_host_peer_id(h, ret_id);
  return h;
}

/* Run the loop until *flag or timeout (seconds). */
static bool run_until(volatile int *flag, int seconds) {
  struct timeval tv = {0, 20000};
  for (int i = 0; i < seconds * 50 && !*flag; i++) {
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  return *flag;
}

static void run_for_ms(int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  event_base_loopexit(base, &tv);
  event_base_dispatch(base);
}

static struct goop_relay_stats stats(void) {
  struct goop_relay_stats st;
  goop_relay_get_stats(relay, &st);
  return st;
}

/* ---- an endpoint speaking the relay protocols by hand ------------------------------------ */

enum ep_kind {
  EP_RESERVE, /* hop RESERVE, read the answer until EOF */
  EP_SOURCE,  /* hop CONNECT{peer}, then data */
  EP_TARGET,  /* stop handler: read STOP CONNECT, answer, then data */
  EP_RAW,     /* hop: send raw bytes, read one answer, then EOF */
};

struct ep {
  enum ep_kind kind;
  goop_stream *s;
  /* control */
  goop_buf ctl;
  bool ctl_done;
  int opened; /* stream open finished (status in open_status) */
  int open_status;
  uint32_t status; /* hop answer (source, raw, reserve) */
  bool has_status;
  goop_relay_limit limit;
  goop_peer_id peer;  /* target: the peer of STOP CONNECT; source: whom to reach */
  uint32_t answer;    /* target: the status to send */
  const uint8_t *raw; /* raw: bytes to send */
  size_t raw_len;
  bool raw_fin;        /* raw: close the write side after them */
  uint64_t rsv_expire; /* reserve */
  uint8_t voucher[1024];
  size_t voucher_len;
  size_t rsv_n_addrs;
  char rsv_addr0[300];
  /* data */
  uint64_t tx_total, tx_sent;
  uint32_t rng;
  uint8_t txbuf[16384];
  size_t txlen, txoff;
  bool fin_sent;
  bool no_fin; /* keep the write side open after the data */
  EVP_MD_CTX *tx_sha, *rx_sha;
  uint64_t rx_count;
  int eof;
  int failed; /* on_error or read/write error */
  int err;
  int done; /* eof (and everything sent) or failed */
};

static struct ep *ep_new(enum ep_kind kind) {
  struct ep *e = calloc(1, sizeof(*e));
  e->kind = kind;
  goop_buf_init(&e->ctl, 0);
  e->tx_sha = EVP_MD_CTX_new();
  e->rx_sha = EVP_MD_CTX_new();
  EVP_DigestInit_ex(e->tx_sha, EVP_sha256(), NULL);
  EVP_DigestInit_ex(e->rx_sha, EVP_sha256(), NULL);
  e->rng = 0x9e3779b9u ^ (uint32_t)kind;
  return e;
}

static void ep_free(struct ep *e) {
  if (!e)
    return;
  if (e->s) {
    goop_stream_set_callbacks(e->s, NULL, NULL);
    goop_stream_reset(e->s);
    goop_stream_unref(e->s);
  }
  goop_buf_free(&e->ctl);
  EVP_MD_CTX_free(e->tx_sha);
  EVP_MD_CTX_free(e->rx_sha);
  free(e);
}

static bool same_digest(struct ep *sender, struct ep *receiver) {
  uint8_t a[32], b[32];
  EVP_MD_CTX *x = EVP_MD_CTX_new(), *y = EVP_MD_CTX_new();
  EVP_MD_CTX_copy_ex(x, sender->tx_sha);
  EVP_MD_CTX_copy_ex(y, receiver->rx_sha);
  EVP_DigestFinal_ex(x, a, NULL);
  EVP_DigestFinal_ex(y, b, NULL);
  EVP_MD_CTX_free(x);
  EVP_MD_CTX_free(y);
  return memcmp(a, b, 32) == 0;
}

static void ep_fail(struct ep *e, int err) {
  if (!e->failed) {
    e->failed = 1;
    e->err = err;
  }
  e->done = 1;
}

static void ep_check_done(struct ep *e) {
  if (e->eof && e->tx_sent == e->tx_total)
    e->done = 1;
}

static void ep_data_in(struct ep *e, const uint8_t *p, size_t n) {
  EVP_DigestUpdate(e->rx_sha, p, n);
  e->rx_count += n;
}

static void ep_send(struct ep *e) {
  while (e->s && e->tx_sent < e->tx_total) {
    if (e->txoff == e->txlen) {
      uint64_t left = e->tx_total - e->tx_sent;
      e->txlen = left < sizeof(e->txbuf) ? (size_t)left : sizeof(e->txbuf);
      for (size_t i = 0; i < e->txlen; i++) {
        e->rng ^= e->rng << 13;
        e->rng ^= e->rng >> 17;
        e->rng ^= e->rng << 5;
        e->txbuf[i] = (uint8_t)e->rng;
      }
      e->txoff = 0;
      EVP_DigestUpdate(e->tx_sha, e->txbuf, e->txlen);
    }
    ssize_t w = goop_stream_write(e->s, e->txbuf + e->txoff, e->txlen - e->txoff);
    if (w == GOOP_EAGAIN)
      return;
    if (w < 0) {
      ep_fail(e, (int)w);
      return;
    }
    e->txoff += (size_t)w;
    e->tx_sent += (size_t)w;
  }
  if (e->s && e->tx_total && e->tx_sent == e->tx_total && !e->fin_sent && !e->no_fin) {
    e->fin_sent = true;
    (void)goop_stream_close_write(e->s);
  }
  ep_check_done(e);
}

/* A hop or stop message in e->ctl: returns the bytes it took, 0 if incomplete, -1 if bad. */
static int ep_control(struct ep *e) {
  const uint8_t *body;
  size_t len, used;
  int rc = goop_relay_frame_take(e->ctl.data, e->ctl.len, &body, &len, &used);
  if (rc == GOOP_EAGAIN)
    return 0;
  if (rc)
    return -1;
  if (e->kind == EP_TARGET) {
    goop_stop_msg m;
    if (goop_stop_decode(body, len, &m) || m.type != GOOP_STOP_CONNECT || !m.peer.present ||
        goop_peer_id_from_bytes(m.peer.id.data, m.peer.id.len, &e->peer) != 0)
      return -1;
    e->limit = m.limit;
    return (int)used;
  }
  goop_hop_msg m;
  if (goop_hop_decode(body, len, &m) || m.type != GOOP_HOP_STATUS)
    return -1;
  e->has_status = m.has_status;
  e->status = m.status;
  e->limit = m.limit;
  if (m.reservation.present) {
    e->rsv_expire = m.reservation.expire;
    e->rsv_n_addrs = m.reservation.n_addrs;
    if (m.reservation.voucher.len <= sizeof(e->voucher)) {
      memcpy(e->voucher, m.reservation.voucher.data, m.reservation.voucher.len);
      e->voucher_len = m.reservation.voucher.len;
    }
    if (m.reservation.n_addrs)
      (void)goop_ma_to_string(m.reservation.addrs[0].data, m.reservation.addrs[0].len, e->rsv_addr0,
                              sizeof(e->rsv_addr0));
  }
  return (int)used;
}

#define HOLD 1 /* target_answer: never answer */
#define JUNK 2 /* target_answer: an oversized frame */

static void ep_target_answer(struct ep *e) {
  if (e->answer == HOLD)
    return;
  if (e->answer == JUNK) {
    static const uint8_t big[] = {0xff, 0xff, 0x03, 0x08, 0x01};
    (void)goop_stream_write(e->s, big, sizeof(big));
    return;
  }
  if (!e->answer) {
    goop_stream_reset(e->s);
    ep_fail(e, GOOP_ERESET);
    return;
  }
  goop_stop_msg m = {.has_type = true, .type = GOOP_STOP_STATUS, .has_status = true, .status = e->answer};
  goop_buf out;
  goop_buf_init(&out, 0);
  (void)goop_stop_encode(&m, &out);
  (void)goop_stream_write(e->s, out.data, out.len);
  goop_buf_free(&out);
  if (e->answer != GOOP_RELAY_OK) {
    (void)goop_stream_close_write(e->s);
    return;
  }
  ep_send(e); /* data right behind the status */
}

static void ep_readable(goop_stream *s, void *ud) {
  struct ep *e = ud;
  uint8_t buf[16384];
  for (;;) {
    ssize_t n = goop_stream_read(s, buf, sizeof(buf));
    if (n == GOOP_EAGAIN)
      break;
    if (n < 0) {
      ep_fail(e, (int)n);
      return;
    }
    if (n == 0) {
      e->eof = 1;
      if (!e->ctl_done)
        e->done = 1;
      ep_check_done(e);
      return;
    }
    if (e->ctl_done) {
      ep_data_in(e, buf, (size_t)n);
      continue;
    }
    goop_buf_append(&e->ctl, buf, (size_t)n);
    int used = ep_control(e);
    if (used < 0) {
      ep_fail(e, GOOP_EPARSE);
      return;
    }
    if (used == 0)
      continue;
    e->ctl_done = true;
    if (e->ctl.len > (size_t)used)
      ep_data_in(e, e->ctl.data + used, e->ctl.len - (size_t)used);
    if (e->kind == EP_TARGET)
      ep_target_answer(e);
  }
  if (e->ctl_done && !e->done)
    ep_send(e);
}

static void ep_writable(goop_stream *s, void *ud) {
  (void)s;
  struct ep *e = ud;
  if (e->kind != EP_TARGET || e->ctl_done)
    ep_send(e);
}

static void ep_error(goop_stream *s, int err, void *ud) {
  (void)s;
  ep_fail(ud, err);
}

static const struct goop_stream_callbacks ep_cbs = {GOOP_STREAM_CALLBACKS_V1, ep_readable, ep_writable,
                                                    ep_error};

static void ep_opened(goop_host *h, int status, goop_stream *s, void *ud) {
  (void)h;
  struct ep *e = ud;
  e->opened = 1;
  e->open_status = status;
  if (status) {
    ep_fail(e, status);
    return;
  }
  e->s = s;
  goop_stream_set_callbacks(s, &ep_cbs, e);
  goop_buf out;
  goop_buf_init(&out, 0);
  if (e->kind == EP_RAW) {
    goop_stream_write(s, e->raw, e->raw_len);
    if (e->raw_fin)
      goop_stream_close_write(s);
  } else {
    goop_hop_msg m = {.has_type = true, .type = e->kind == EP_RESERVE ? GOOP_HOP_RESERVE : GOOP_HOP_CONNECT};
    if (e->kind == EP_SOURCE) {
      m.peer.present = true;
      m.peer.id = (goop_relay_bytes){e->peer.bytes, e->peer.len};
    }
    (void)goop_hop_encode(&m, &out);
    goop_stream_write(s, out.data, out.len);
    if (e->kind == EP_SOURCE)
      ep_send(e); /* data before the answer: the relay must keep it */
  }
  goop_buf_free(&out);
}

static struct ep *hop_open(goop_host *h, struct ep *e) {
  static const char *const protos[] = {GOOP_PROTO_RELAY_HOP};
  CHECK_INT_EQ(goop_host_new_stream(h, &idR, protos, 1, 10000, ep_opened, e), 0);
  return e;
}

static struct ep *reserve(goop_host *h) {
  struct ep *e = hop_open(h, ep_new(EP_RESERVE));
  CHECK(run_until(&e->done, 20));
  return e;
}

static struct ep *connect_to(goop_host *h, const goop_peer_id *target, uint64_t tx) {
  struct ep *e = ep_new(EP_SOURCE);
  e->peer = *target;
  e->tx_total = tx;
  return hop_open(h, e);
}

static struct ep *raw_hop(goop_host *h, const void *bytes, size_t len, bool fin) {
  struct ep *e = ep_new(EP_RAW);
  e->raw = bytes;
  e->raw_len = len;
  e->raw_fin = fin;
  hop_open(h, e);
  CHECK(run_until(&e->done, 20));
  return e;
}

/* ---- the target's stop handler ------------------------------------------------------------ */

static struct ep *targets[8];
static size_t n_targets;
static uint32_t target_answer = GOOP_RELAY_OK;
static uint64_t target_tx;
static volatile int target_arrived;

static void stop_handler(goop_host *h, goop_stream *s, void *ud) {
  (void)h, (void)ud;
  struct ep *e = ep_new(EP_TARGET);
  e->s = s;
  e->answer = target_answer;
  e->tx_total = target_tx;
  e->rng ^= 0x5555u;
  if (n_targets < GOOP_ARRAY_SIZE(targets))
    targets[n_targets++] = e;
  else
    ep_free(e), e = NULL;
  if (e)
    goop_stream_set_callbacks(s, &ep_cbs, e);
  target_arrived = 1;
}

static void targets_clear(void) {
  for (size_t i = 0; i < n_targets; i++)
    ep_free(targets[i]);
  n_targets = 0;
  target_arrived = 0;
  target_answer = GOOP_RELAY_OK;
  target_tx = 0;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void add_relay_addr(goop_host *h) {
  char a[200];
  CHECK(goop_host_listen_addr(R, 0, a, sizeof(a)) > 0);
  CHECK_INT_EQ(goop_host_add_addr(h, &idR, a, 0), 0);
}

static void test_setup(void) {
  R = make_host(&idR);
  A = make_host(&idA);
  B = make_host(&idB);
  C = make_host(&idC);
  D = make_host(&idD);
  CHECK(R && A && B && C && D);
  struct goop_relay_limits lim;
  goop_relay_limits_default(&lim);
  CHECK_INT_EQ(lim.circuit_duration_s, 1800);
  CHECK_INT_EQ(lim.circuit_bytes, 16u << 20);
  lim.circuit_bytes = 32u << 20; /* the bulk test moves 8 MiB each way plus headers */
  lim.buffer_size = 0;
  CHECK_INT_EQ(goop_relay_new(R, &lim, &relay), GOOP_EINVAL);
  lim.buffer_size = 64u << 10;
  lim.reservation_ttl_s = 0;
  CHECK_INT_EQ(goop_relay_new(R, &lim, &relay), GOOP_EINVAL);
  lim.reservation_ttl_s = 3600;
  CHECK_INT_EQ(goop_relay_new(R, &lim, &relay), 0);
  goop_relay *second = NULL;
  CHECK_INT_EQ(goop_relay_new(R, NULL, &second), GOOP_EBUSY);
  goop_host *hosts[] = {A, B, C, D};
  for (size_t i = 0; i < 4; i++) {
    add_relay_addr(hosts[i]);
    /* A test handler: it replaces a built-in stop handler, if any. */
    CHECK_INT_EQ(goop_host_set_stream_handler(hosts[i], GOOP_PROTO_RELAY_STOP, stop_handler, NULL), 0);
  }
}

static void test_reserve(void) {
  struct ep *e = reserve(B);
  CHECK(e->has_status);
  CHECK_INT_EQ(e->status, GOOP_RELAY_OK);
  CHECK(e->eof); /* the relay closes the hop stream after the answer */
  uint64_t now = (uint64_t)time(NULL);
  CHECK(e->rsv_expire >= now + 3500 && e->rsv_expire <= now + 3700);
  CHECK(e->limit.present && e->limit.duration == 1800 && e->limit.data == 32u << 20);
  /* Addresses: R's announce addresses with /p2p/R. */
  char want[300], la[200], rid[GOOP_PEER_ID_STR_MAX];
  goop_host_listen_addr(R, 0, la, sizeof(la));
  goop_peer_id_to_string(&idR, rid, sizeof(rid));
  snprintf(want, sizeof(want), "%s/p2p/%s", la, rid);
  CHECK(e->rsv_n_addrs >= 1);
  CHECK_STR_EQ(e->rsv_addr0, want);
  /* The voucher: signed by R, for B, expiring with the reservation. */
  uint64_t vexp = 0;
  CHECK(e->voucher_len > 0);
  CHECK_INT_EQ(goop_relay_voucher_open(e->voucher, e->voucher_len, &idR, &idB, &vexp), 0);
  CHECK_INT_EQ(vexp, e->rsv_expire);
  CHECK_INT_EQ(goop_relay_voucher_open(e->voucher, e->voucher_len, &idR, &idA, NULL), GOOP_EPEERID);
  struct goop_relay_stats st = stats();
  CHECK_INT_EQ(st.reservations_active, 1);
  CHECK_INT_EQ(st.reservations_accepted, 1);
  ep_free(e);
  /* R lists hop in identify: A learns it once connected. */
}

static void test_bulk_circuit(void) {
  target_tx = 8u << 20;
  struct ep *a = connect_to(A, &idB, 8u << 20);
  CHECK(run_until(&target_arrived, 20));
  struct ep *b = n_targets ? targets[0] : NULL;
  CHECK(b != NULL);
  if (!b) {
    ep_free(a);
    return;
  }
  CHECK(run_until(&a->done, 120));
  CHECK(run_until(&b->done, 120));
  CHECK(!a->failed && !b->failed);
  if (a->failed || b->failed)
    printf("# a err %d, b err %d\n", a->err, b->err);
  CHECK_INT_EQ(a->status, GOOP_RELAY_OK);
  CHECK(a->limit.present && a->limit.duration == 1800 && a->limit.data == 32u << 20);
  CHECK(goop_peer_id_equal(&b->peer, &idA));
  CHECK(b->limit.present && b->limit.duration == 1800 && b->limit.data == 32u << 20);
  CHECK_INT_EQ(a->tx_sent, 8u << 20);
  CHECK_INT_EQ(b->rx_count, 8u << 20);
  CHECK_INT_EQ(b->tx_sent, 8u << 20);
  CHECK_INT_EQ(a->rx_count, 8u << 20);
  CHECK(same_digest(a, b));
  CHECK(same_digest(b, a));
  CHECK(a->eof && b->eof); /* each side's FIN crossed the relay */
  run_for_ms(200);
  struct goop_relay_stats st = stats();
  CHECK_INT_EQ(st.circuits_opened, 1);
  CHECK_INT_EQ(st.circuits_active, 0);
  CHECK_INT_EQ(st.bytes_relayed, 16u << 20);
  ep_free(a);
  targets_clear();
}

static void test_half_close_and_reset(void) {
  /* A sends 100 KiB and closes; B keeps its side open and sends later. */
  struct ep *a = connect_to(A, &idB, 100u << 10);
  CHECK(run_until(&target_arrived, 20));
  struct ep *b = n_targets ? targets[0] : NULL;
  CHECK(b != NULL);
  if (!b) {
    ep_free(a);
    return;
  }
  CHECK(run_until(&b->eof, 20));
  CHECK_INT_EQ(b->rx_count, 100u << 10);
  CHECK(!b->failed && !a->failed && !a->eof);
  /* B answers after the half-close, then resets: A sees the reset. */
  b->tx_total = 1000;
  b->no_fin = true;
  ep_send(b);
  run_for_ms(200);
  goop_stream_reset(b->s);
  CHECK(run_until(&a->failed, 20));
  CHECK_INT_EQ(a->err, GOOP_ERESET);
  run_for_ms(100);
  CHECK_INT_EQ(stats().circuits_active, 0);
  ep_free(a);
  targets_clear();

  /* A resets: B sees the reset. */
  a = connect_to(A, &idB, 0);
  CHECK(run_until(&target_arrived, 20));
  b = n_targets ? targets[0] : NULL;
  CHECK(b != NULL);
  for (int i = 0; i < 500 && a->status != GOOP_RELAY_OK && !a->done; i++)
    run_for_ms(20);
  CHECK_INT_EQ(a->status, GOOP_RELAY_OK);
  goop_stream_reset(a->s);
  if (b)
    CHECK(run_until(&b->failed, 20));
  CHECK(b && b->err == GOOP_ERESET);
  ep_free(a);
  targets_clear();
}

static void test_no_reservation(void) {
  struct goop_relay_stats before = stats();
  struct ep *a = connect_to(A, &idC, 0);
  CHECK(run_until(&a->done, 20));
  CHECK_INT_EQ(a->status, GOOP_RELAY_NO_RESERVATION);
  CHECK(a->eof);
  CHECK_INT_EQ(n_targets, 0);
  ep_free(a);
  /* To the relay itself: no reservation either. */
  a = connect_to(A, &idR, 0);
  CHECK(run_until(&a->done, 20));
  CHECK_INT_EQ(a->status, GOOP_RELAY_NO_RESERVATION);
  ep_free(a);
  CHECK_INT_EQ(stats().circuits_refused, before.circuits_refused + 2);
}

static void test_bad_messages(void) {
  struct {
    const char *what;
    const char *hex;
    bool fin;
    uint32_t want;
  } cases[] = {
      {"junk protobuf", "03 0b 0c 0d", false, GOOP_RELAY_MALFORMED_MESSAGE},
      {"no type", "02 28 64", false, GOOP_RELAY_MALFORMED_MESSAGE},
      {"status sent to the relay", "04 08 02 28 64", false, GOOP_RELAY_UNEXPECTED_MESSAGE},
      {"unknown type", "02 08 09", false, GOOP_RELAY_UNEXPECTED_MESSAGE},
      {"connect without peer", "02 08 01", false, GOOP_RELAY_MALFORMED_MESSAGE},
      {"connect to a bad peer id", "06 08 01 12 02 0a 00", false, GOOP_RELAY_MALFORMED_MESSAGE},
      {"oversized", "88 27 08 01", false, GOOP_RELAY_MALFORMED_MESSAGE},
      {"truncated then closed", "10 08 01 12", true, GOOP_RELAY_MALFORMED_MESSAGE},
  };
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(cases); i++) {
    size_t n;
    uint8_t *bytes = tap_unhex(cases[i].hex, &n);
    struct ep *e = raw_hop(A, bytes, n, cases[i].fin);
    if (e->status != cases[i].want)
      printf("# %s: status %u\n", cases[i].what, e->status);
    CHECK(e->has_status);
    CHECK_INT_EQ(e->status, cases[i].want);
    CHECK(e->eof); /* closed after the status */
    ep_free(e);
    free(bytes);
  }
  /* A stream that closes without a byte gets no answer, just the close. */
  struct ep *e = raw_hop(A, "", 0, true);
  CHECK(e->eof && !e->has_status);
  ep_free(e);
  /* The relay still serves. */
  e = reserve(C);
  CHECK_INT_EQ(e->status, GOOP_RELAY_OK);
  ep_free(e);
}

static void test_target_refuses(void) {
  struct goop_relay_stats before = stats();
  target_answer = GOOP_RELAY_RESOURCE_LIMIT_EXCEEDED;
  struct ep *a = connect_to(A, &idB, 0);
  CHECK(run_until(&a->done, 20));
  CHECK_INT_EQ(a->status, GOOP_RELAY_CONNECTION_FAILED);
  ep_free(a);
  targets_clear();
  /* A target that resets the stop stream. */
  target_answer = 0;
  a = connect_to(A, &idB, 0);
  CHECK(run_until(&a->done, 20));
  CHECK_INT_EQ(a->status, GOOP_RELAY_CONNECTION_FAILED);
  ep_free(a);
  targets_clear();
  /* A target that does not serve stop at all. */
  CHECK_INT_EQ(goop_host_remove_stream_handler(C, GOOP_PROTO_RELAY_STOP), 0);
  a = connect_to(A, &idC, 0);
  CHECK(run_until(&a->done, 20));
  CHECK_INT_EQ(a->status, GOOP_RELAY_CONNECTION_FAILED);
  ep_free(a);
  CHECK_INT_EQ(goop_host_set_stream_handler(C, GOOP_PROTO_RELAY_STOP, stop_handler, NULL), 0);
  /* A target that answers with an oversized frame. */
  target_answer = JUNK;
  a = connect_to(A, &idB, 0);
  CHECK(run_until(&a->done, 20));
  CHECK_INT_EQ(a->status, GOOP_RELAY_CONNECTION_FAILED);
  ep_free(a);
  CHECK(n_targets == 1 && run_until(&targets[0]->failed, 20)); /* the relay reset the stop stream */
  targets_clear();
  /* A target that never answers: the relay gives up after 10 s. */
  target_answer = HOLD;
  a = connect_to(A, &idB, 0);
  CHECK(run_until(&a->done, 30));
  CHECK_INT_EQ(a->status, GOOP_RELAY_CONNECTION_FAILED);
  ep_free(a);
  CHECK(n_targets == 1 && run_until(&targets[0]->failed, 20));
  targets_clear();
  struct goop_relay_stats st = stats();
  CHECK_INT_EQ(st.circuits_refused, before.circuits_refused + 5);
  CHECK_INT_EQ(st.circuits_opened, before.circuits_opened);
}

static void set_limits(void (*fn)(struct goop_relay_limits *)) {
  struct goop_relay_limits l;
  goop_relay_limits_default(&l);
  if (fn)
    fn(&l);
  CHECK_INT_EQ(goop_relay_set_limits(relay, &l), 0);
}

static void lim_ip2(struct goop_relay_limits *l) {
  l->max_reservations_per_ip = 2;
}
static void lim_total2(struct goop_relay_limits *l) {
  l->max_reservations = 2;
}
static void lim_no_rsv(struct goop_relay_limits *l) {
  l->max_reservations_per_peer = 0;
}

static void test_reservation_limits(void) {
  /* B and C hold one each (all on 127.0.0.1). */
  CHECK_INT_EQ(stats().reservations_active, 2);
  set_limits(lim_ip2);
  struct goop_relay_stats before = stats();
  struct ep *e = reserve(D);
  CHECK_INT_EQ(e->status, GOOP_RELAY_RESERVATION_REFUSED);
  ep_free(e);
  /* A refresh replaces the peer's reservation: not over the IP limit. */
  e = reserve(B);
  CHECK_INT_EQ(e->status, GOOP_RELAY_OK);
  ep_free(e);
  CHECK_INT_EQ(stats().reservations_active, 2);
  set_limits(lim_total2);
  e = reserve(D);
  CHECK_INT_EQ(e->status, GOOP_RELAY_RESERVATION_REFUSED);
  ep_free(e);
  e = reserve(C);
  CHECK_INT_EQ(e->status, GOOP_RELAY_OK);
  ep_free(e);
  set_limits(lim_no_rsv);
  e = reserve(D);
  CHECK_INT_EQ(e->status, GOOP_RELAY_RESERVATION_REFUSED);
  ep_free(e);
  set_limits(NULL);
  struct goop_relay_stats st = stats();
  CHECK_INT_EQ(st.reservations_refused, before.reservations_refused + 3);
  CHECK_INT_EQ(st.reservations_accepted, before.reservations_accepted + 2);
  CHECK_INT_EQ(st.reservations_active, 2);
  /* D reserves now that the limits are back. */
  e = reserve(D);
  CHECK_INT_EQ(e->status, GOOP_RELAY_OK);
  ep_free(e);
  CHECK_INT_EQ(stats().reservations_active, 3);
}

static void lim_circ1(struct goop_relay_limits *l) {
  l->max_circuits = 1;
}
static void lim_circ_peer1(struct goop_relay_limits *l) {
  l->max_circuits_per_peer = 1;
}

/* Open a circuit A->target and wait until the target holds it. */
static struct ep *open_circuit(goop_host *src, const goop_peer_id *target) {
  size_t before = n_targets;
  struct ep *a = connect_to(src, target, 0);
  for (int i = 0; i < 1000 && !(a->done || (a->has_status && n_targets > before)); i++)
    run_for_ms(20);
  CHECK_INT_EQ(a->status, GOOP_RELAY_OK);
  return a;
}

static void test_circuit_limits(void) {
  set_limits(lim_circ1);
  struct ep *a = open_circuit(A, &idB);
  CHECK_INT_EQ(stats().circuits_active, 1);
  struct ep *c = connect_to(C, &idD, 0);
  CHECK(run_until(&c->done, 20));
  CHECK_INT_EQ(c->status, GOOP_RELAY_RESOURCE_LIMIT_EXCEEDED);
  ep_free(c);
  ep_free(a);
  targets_clear();
  run_for_ms(200);
  CHECK_INT_EQ(stats().circuits_active, 0);

  set_limits(lim_circ_peer1);
  a = open_circuit(A, &idB);
  c = connect_to(C, &idB, 0); /* B already has one */
  CHECK(run_until(&c->done, 20));
  CHECK_INT_EQ(c->status, GOOP_RELAY_RESOURCE_LIMIT_EXCEEDED);
  ep_free(c);
  c = connect_to(A, &idD, 0); /* so has A */
  CHECK(run_until(&c->done, 20));
  CHECK_INT_EQ(c->status, GOOP_RELAY_RESOURCE_LIMIT_EXCEEDED);
  ep_free(c);
  c = open_circuit(C, &idD); /* others are fine */
  CHECK_INT_EQ(stats().circuits_active, 2);
  ep_free(c);
  ep_free(a);
  targets_clear();
  run_for_ms(200);
  CHECK_INT_EQ(stats().circuits_active, 0);
  set_limits(NULL);
}

static void lim_data(struct goop_relay_limits *l) {
  l->circuit_bytes = 64u << 10;
}
static void lim_duration(struct goop_relay_limits *l) {
  l->circuit_duration_s = 1;
}

static void test_data_limit(void) {
  set_limits(lim_data);
  uint64_t closed = stats().circuits_limit_closed;
  struct ep *a = connect_to(A, &idB, 1u << 20);
  CHECK(run_until(&target_arrived, 20));
  struct ep *b = n_targets ? targets[0] : NULL;
  CHECK(b != NULL);
  CHECK(run_until(&a->failed, 30));
  if (b)
    CHECK(run_until(&b->failed, 30));
  CHECK_INT_EQ(a->err, GOOP_ERESET);
  CHECK(b && b->err == GOOP_ERESET);
  CHECK(b && b->rx_count <= 64u << 10);
  CHECK(a->limit.present && a->limit.data == 64u << 10);
  CHECK_INT_EQ(stats().circuits_limit_closed, closed + 1);
  ep_free(a);
  targets_clear();
  set_limits(NULL);
}

static void test_duration_limit(void) {
  set_limits(lim_duration);
  uint64_t closed = stats().circuits_limit_closed;
  struct ep *a = open_circuit(A, &idB);
  struct ep *b = n_targets ? targets[0] : NULL;
  CHECK(a->limit.present && a->limit.duration == 1);
  CHECK(run_until(&a->failed, 20));
  if (b)
    CHECK(run_until(&b->failed, 20));
  CHECK_INT_EQ(a->err, GOOP_ERESET);
  CHECK(b && b->err == GOOP_ERESET);
  CHECK_INT_EQ(stats().circuits_limit_closed, closed + 1);
  ep_free(a);
  targets_clear();
  set_limits(NULL);
}

static void test_reservation_dies_with_connection(void) {
  uint64_t active = stats().reservations_active;
  goop_conn *c = goop_host_get_conn(D, &idR);
  CHECK(c != NULL);
  if (c)
    goop_conn_close(c);
  for (int i = 0; i < 250 && stats().reservations_active == active; i++)
    run_for_ms(20);
  CHECK_INT_EQ(stats().reservations_active, active - 1);
  struct ep *a = connect_to(A, &idD, 0);
  CHECK(run_until(&a->done, 20));
  CHECK_INT_EQ(a->status, GOOP_RELAY_NO_RESERVATION);
  ep_free(a);
}

/* ---- hop over a relayed connection ---- */

static volatile int rsv2_done, rsv2_status = 99, x_connected, x_status = 99;
static void on_rsv2(goop_host *h, goop_reservation *r, int status, void *ud) {
  (void)h, (void)r, (void)ud;
  rsv2_status = status;
  rsv2_done = 1;
}
static void on_x_connect(goop_host *h, int status, goop_conn *c, void *ud) {
  (void)h, (void)c, (void)ud;
  x_status = status;
  x_connected = 1;
}

static goop_host *make_host_no_punch(goop_peer_id *ret_id) {
  goop_identity *id;
  goop_host_config *cfg;
  goop_host *h = NULL;
  if (goop_identity_generate(&id))
    return NULL;
  if (goop_host_config_new(&cfg) == 0) {
    (void)goop_host_config_set(cfg, GOOP_HOST_HOLE_PUNCHING, 0); /* the connection must stay relayed */
    if (goop_host_new(ctx, id, cfg, &h) != 0)
      h = NULL;
    goop_host_config_free(cfg);
  }
  goop_identity_free(id);
  if (h && goop_host_listen(h, "/ip4/127.0.0.1/tcp/0") != 0) {
    goop_host_free(h);
    return NULL;
  }
  if (h)
    goop_host_peer_id(h, ret_id);
  return h;
}

/* A second relay R2 reachable only through R: hop over that relayed connection is refused. */
static void test_hop_over_relayed_connection(void) {
  goop_peer_id idR2, idX;
  goop_host *R2 = make_host_no_punch(&idR2), *X = make_host_no_punch(&idX);
  goop_relay *relay2 = NULL;
  goop_reservation *rsv = NULL;
  CHECK(R2 && X);
  if (!R2 || !X)
    goto out;
  CHECK_INT_EQ(goop_relay_new(R2, NULL, &relay2), 0);
  char ra[200], rid[GOOP_PEER_ID_STR_MAX], r2id[GOOP_PEER_ID_STR_MAX], circ[600];
  goop_host_listen_addr(R, 0, ra, sizeof(ra));
  goop_peer_id_to_string(&idR, rid, sizeof(rid));
  goop_peer_id_to_string(&idR2, r2id, sizeof(r2id));
  const char *addrs[] = {ra};
  CHECK_INT_EQ(goop_host_reserve(R2, &idR, addrs, 1, on_rsv2, NULL, &rsv), 0);
  CHECK(run_until(&rsv2_done, 20));
  CHECK_INT_EQ(rsv2_status, 0);
  snprintf(circ, sizeof(circ), "%s/p2p/%s/p2p-circuit/p2p/%s", ra, rid, r2id);
  CHECK_INT_EQ(goop_host_connect_addr(X, circ, 10000, on_x_connect, NULL), 0);
  CHECK(run_until(&x_connected, 20));
  CHECK_INT_EQ(x_status, 0);
  goop_conn *xc = goop_host_get_conn(X, &idR2);
  CHECK(xc && goop_conn_is_relayed(xc));

  /* RESERVE and CONNECT to R2 over the relayed connection. */
  static const char *const protos[] = {GOOP_PROTO_RELAY_HOP};
  struct ep *e = ep_new(EP_RESERVE);
  CHECK_INT_EQ(goop_host_new_stream(X, &idR2, protos, 1, 10000, ep_opened, e), 0);
  CHECK(run_until(&e->done, 20));
  CHECK_INT_EQ(e->status, GOOP_RELAY_PERMISSION_DENIED);
  ep_free(e);
  e = ep_new(EP_SOURCE);
  e->peer = idB;
  CHECK_INT_EQ(goop_host_new_stream(X, &idR2, protos, 1, 10000, ep_opened, e), 0);
  CHECK(run_until(&e->done, 20));
  CHECK_INT_EQ(e->status, GOOP_RELAY_PERMISSION_DENIED);
  ep_free(e);
  struct goop_relay_stats st;
  goop_relay_get_stats(relay2, &st);
  CHECK_INT_EQ(st.reservations_refused, 1);
  CHECK_INT_EQ(st.circuits_refused, 1);
out:
  goop_reservation_free(rsv);
  goop_relay_free(relay2);
  goop_host_free(X);
  goop_host_free(R2);
}

static void test_free_with_live_circuit(void) {
  struct ep *a = open_circuit(A, &idB);
  struct ep *b = n_targets ? targets[0] : NULL;
  /* And a CONNECT waiting for the target's answer. */
  target_answer = HOLD;
  struct ep *c = connect_to(C, &idB, 0);
  for (int i = 0; i < 500 && n_targets < 2; i++)
    run_for_ms(20);
  CHECK_INT_EQ(n_targets, 2);
  struct ep *held = n_targets > 1 ? targets[1] : NULL;
  CHECK(held && held->ctl_done && !c->has_status);
  goop_relay_free(relay);
  relay = NULL;
  CHECK(run_until(&a->failed, 20));
  if (b)
    CHECK(run_until(&b->failed, 20));
  CHECK(b && b->failed);
  CHECK(run_until(&c->failed, 20));
  if (held)
    CHECK(run_until(&held->failed, 20));
  CHECK(!c->has_status);
  ep_free(a);
  ep_free(c);
  targets_clear();
  /* Hop is no longer served. */
  struct ep *e = ep_new(EP_RESERVE);
  hop_open(C, e);
  CHECK(run_until(&e->done, 20));
  CHECK(e->open_status == GOOP_ENEGOTIATION || e->failed);
  ep_free(e);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  base = event_base_new();
  if (goop_ctx_new(base, &ctx) != 0)
    return 1;
  goop_ctx_set_log_fn(ctx, log_fn, GOOP_LOG_DEBUG, NULL);
  RUN(test_setup);
  if (!relay)
    return tap_done();
  RUN(test_reserve);
  RUN(test_bulk_circuit);
  RUN(test_half_close_and_reset);
  RUN(test_no_reservation);
  RUN(test_bad_messages);
  RUN(test_target_refuses);
  RUN(test_reservation_limits);
  RUN(test_circuit_limits);
  RUN(test_data_limit);
  RUN(test_duration_limit);
  RUN(test_reservation_dies_with_connection);
  RUN(test_hop_over_relayed_connection);
  RUN(test_free_with_live_circuit);
  goop_relay_free(relay);
  goop_host_free(A);
  goop_host_free(B);
  goop_host_free(C);
  goop_host_free(D);
  goop_host_free(R);
  goop_ctx_free(ctx);
  event_base_free(base);
  return tap_done();
}
