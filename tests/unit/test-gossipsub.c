/*
 * GossipSub router core on an in-memory network with a fake clock: mesh
 * formation, exactly-once delivery, IWANT recovery, PRUNE backoff,
 * signature checks, validator rejection, floodsub peers, queue bounds.
 */
#include <goop/identity.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../libgoop/common/internal.h"
#include "buf.h"
#include "proto.h"
#include "pubsub/gossipsub.h"
#include "pubsub/rpc.h"
#include "tap.h"
#include "varint.h"

#define MAXN 20
#define MAXMSG 64
#define TOPIC "goop.presence.v1"

struct node {
  int idx;
  goop_identity *id;
  goop_peer_id pid;
  goop_gossip *g;
  goop_gossip_peer *link[MAXN]; /* our handle for node j (NULL: not connected) */
  int got[MAXMSG];              /* deliveries per message number */
  int got_other;
  bool reject_bad; /* validator rejects data starting with "bad" */
};

static struct node nodes[MAXN];
static int n_nodes;
static goop_tstamp now = 1000000;
/* Drop filter: return true to drop one RPC going from node a to node b. */
static bool (*drop_fn)(int a, int b, const struct goop_rpc *rpc);

static int msg_num(const uint8_t *d, size_t len) {
  char buf[16];
  if (len < 4 || len >= sizeof(buf))
    return -1;
  memcpy(buf, d, len);
  buf[len] = 0;
  const char *p = buf;
  if (strncmp(p, "bad", 3) == 0)
    p += 3;
  else if (strncmp(p, "msg", 3) == 0)
    p += 3;
  else
    return -1;
  int n = atoi(p);
  return n >= 0 && n < MAXMSG ? n : -1;
}

static void on_deliver(void *ud, const struct goop_gossip_msg *m) {
  struct node *n = ud;
  int k = msg_num(m->data, m->len);
  if (k >= 0)
    n->got[k]++;
  else
    n->got_other++;
}

static enum goop_gossip_verdict on_validate(void *ud, const struct goop_gossip_msg *m) {
  struct node *n = ud;
  if (n->reject_bad && m->len >= 3 && memcmp(m->data, "bad", 3) == 0)
    return GOOP_GOSSIP_REJECT;
  return GOOP_GOSSIP_ACCEPT;
}

static void net_init(int n, const struct goop_gossip_params *prm) {
  n_nodes = n;
  for (int i = 0; i < n; i++) {
    struct node *x = &nodes[i];
    memset(x, 0, sizeof(*x));
    x->idx = i;
    if (goop_identity_generate(&x->id) != 0)
      abort();
    goop_identity_peer_id(x->id, &x->pid);
    struct goop_gossip_config cfg = {.id = x->id,
                                     .params = prm,
                                     .cb = {on_deliver, on_validate, NULL},
                                     .ud = x,
                                     .seqno_start = 1000000 + (uint64_t)i,
                                     .rng_seed = 0x1234 + (uint64_t)i * 7919};
    if (goop_gossip_new(&cfg, &x->g) != 0)
      abort();
  }
  drop_fn = NULL;
}

static void net_free(void) {
  for (int i = 0; i < n_nodes; i++) {
    goop_gossip_free(nodes[i].g);
    goop_identity_free(nodes[i].id);
  }
  n_nodes = 0;
}

static void link_nodes(int a, int b, enum goop_gossip_proto pa, enum goop_gossip_proto pb) {
  /* pa: protocol node a uses towards b; pb: b towards a. */
  CHECK_INT_EQ(goop_gossip_add_peer(nodes[a].g, &nodes[b].pid, pa, NULL, now, &nodes[a].link[b]), 0);
  CHECK_INT_EQ(goop_gossip_add_peer(nodes[b].g, &nodes[a].pid, pb, NULL, now, &nodes[b].link[a]), 0);
}

static void full_mesh(void) {
  for (int i = 0; i < n_nodes; i++)
    for (int j = i + 1; j < n_nodes; j++)
      link_nodes(i, j, GOOP_GOSSIP_MESHSUB_11, GOOP_GOSSIP_MESHSUB_11);
}

/* Move output between nodes until quiet. Returns the number of bytes moved. */
static size_t pump(void) {
  size_t total = 0;
  for (int round = 0; round < 1000; round++) {
    size_t moved = 0;
    for (int a = 0; a < n_nodes; a++) {
      for (int b = 0; b < n_nodes; b++) {
        goop_gossip_peer *p = nodes[a].link[b];
        if (!p || !nodes[b].link[a])
          continue;
        size_t len;
        const uint8_t *d = goop_gossip_output_peek(p, &len);
        if (!len)
          continue;
        uint8_t *copy = malloc(len);
        memcpy(copy, d, len);
        goop_gossip_output_consume(p, len);
        moved += len;
        size_t off = 0;
        while (off < len) {
          const uint8_t *pl;
          size_t plen;
          int n = goop_frame_decode(copy + off, len - off, GOOP_RPC_MAX_READ, &pl, &plen);
          if (n <= 0)
            abort();
          bool drop = false;
          if (drop_fn) {
            struct goop_rpc r;
            if (goop_rpc_decode(pl, plen, &r) == 0) {
              drop = drop_fn(a, b, &r);
              goop_rpc_clear(&r);
            }
          }
          if (!drop && goop_gossip_input(nodes[b].g, nodes[b].link[a], copy + off, (size_t)n, now) != 0)
            abort();
          off += (size_t)n;
        }
        free(copy);
      }
    }
    total += moved;
    if (!moved)
      break;
  }
  return total;
}

static void heartbeats(int k) {
  for (int r = 0; r < k; r++) {
    now += 1000000;
    for (int i = 0; i < n_nodes; i++)
      goop_gossip_heartbeat(nodes[i].g, now);
    pump();
  }
}

static void subscribe_all(void) {
  for (int i = 0; i < n_nodes; i++)
    CHECK_INT_EQ(goop_gossip_subscribe(nodes[i].g, TOPIC, now), 0);
  pump();
}

static void publish(int i, const char *data) {
  CHECK_INT_EQ(goop_gossip_publish(nodes[i].g, TOPIC, (const uint8_t *)data, strlen(data), now), 0);
}

/* ---- tests ---- */

static void check_mesh_bounds(const struct goop_gossip_params *prm) {
  bool bounds = true, symmetric = true;
  for (int i = 0; i < n_nodes; i++) {
    size_t m = goop_gossip_mesh_size(nodes[i].g, TOPIC);
    if (m < prm->d_lo || m > prm->d_hi) {
      bounds = false;
      printf("# node %d mesh %zu\n", i, m);
    }
    for (int j = 0; j < n_nodes; j++) {
      if (!nodes[i].link[j])
        continue;
      bool a = goop_gossip_in_mesh(nodes[i].g, TOPIC, nodes[i].link[j]);
      bool b = goop_gossip_in_mesh(nodes[j].g, TOPIC, nodes[j].link[i]);
      if (a != b)
        symmetric = false;
    }
  }
  CHECK(bounds);
  CHECK(symmetric);
}

static void test_mesh_forms(void) {
  struct goop_gossip_params prm;
  goop_gossip_default_params(&prm);
  net_init(10, NULL);
  full_mesh();
  subscribe_all();
  for (int i = 0; i < n_nodes; i++)
    CHECK_INT_EQ(goop_gossip_num_peers(nodes[i].g), 9);
  /* Hello + subscription announcements are known everywhere. */
  CHECK(goop_gossip_peer_subscribed(nodes[0].g, nodes[0].link[5], TOPIC));
  heartbeats(3);
  check_mesh_bounds(&prm);
  net_free();

  /* 20 nodes, everyone connected: meshes stay within D_lo..D_hi (GRAFTs over D_hi are PRUNEd). */
  net_init(20, NULL);
  full_mesh();
  subscribe_all();
  heartbeats(5);
  check_mesh_bounds(&prm);
  uint64_t prunes = 0;
  for (int i = 0; i < n_nodes; i++) {
    struct goop_gossip_stats st;
    goop_gossip_get_stats(nodes[i].g, &st);
    prunes += st.prune_sent;
  }
  printf("# prunes sent: %llu\n", (unsigned long long)prunes);
  net_free();
}

static void check_exactly_once(int n_msgs, int publisher_of(int k)) {
  bool ok = true;
  for (int k = 0; k < n_msgs; k++) {
    for (int i = 0; i < n_nodes; i++) {
      int want = i == publisher_of(k) ? 0 : 1;
      if (nodes[i].got[k] != want) {
        ok = false;
        printf("# node %d message %d delivered %d times\n", i, k, nodes[i].got[k]);
      }
    }
  }
  CHECK(ok);
}

static int pub_of(int k) {
  return (k * 3) % 10;
}

static void run_delivery(bool flood) {
  struct goop_gossip_params prm;
  goop_gossip_default_params(&prm);
  prm.flood_publish = flood;
  net_init(10, &prm);
  full_mesh();
  subscribe_all();
  heartbeats(2);
  char buf[32];
  for (int k = 0; k < 20; k++) {
    snprintf(buf, sizeof(buf), "msg%d", k);
    publish(pub_of(k), buf);
    if (k % 5 == 4)
      pump();
  }
  pump();
  check_exactly_once(20, pub_of);
  uint64_t dups = 0, fwd = 0;
  for (int i = 0; i < n_nodes; i++) {
    struct goop_gossip_stats st;
    goop_gossip_get_stats(nodes[i].g, &st);
    dups += st.msgs_duplicate;
    fwd += st.msgs_forwarded;
  }
  CHECK(dups > 0); /* several paths, but the app saw each message once */
  CHECK(fwd > 0);
  /* Gossip afterwards does not deliver anything again. */
  heartbeats(4);
  check_exactly_once(20, pub_of);
  net_free();
}

static void test_delivery_flood(void) {
  run_delivery(true);
}

static void test_delivery_mesh(void) {
  run_delivery(false);
}

/* Drop every message RPC going to node 9 (after the mesh formed). */
static bool drop_to_9(int a, int b, const struct goop_rpc *r) {
  (void)a;
  return b == 9 && r->n_msgs > 0;
}

static int pub0(int k) {
  (void)k;
  return 0;
}

static void test_iwant_recovery(void) {
  struct goop_gossip_params prm;
  goop_gossip_default_params(&prm);
  prm.flood_publish = false;
  prm.d = 3;
  prm.d_lo = 2;
  prm.d_hi = 4;
  net_init(10, &prm);
  full_mesh();
  subscribe_all();
  heartbeats(3);
  drop_fn = drop_to_9;
  publish(0, "msg0");
  pump();
  CHECK_INT_EQ(nodes[9].got[0], 0);
  drop_fn = NULL;
  heartbeats(3);
  check_exactly_once(1, pub0);
  struct goop_gossip_stats st;
  goop_gossip_get_stats(nodes[9].g, &st);
  CHECK(st.iwant_sent > 0);
  uint64_t answered = 0;
  for (int i = 0; i < n_nodes; i++) {
    goop_gossip_get_stats(nodes[i].g, &st);
    answered += st.iwant_answered;
  }
  CHECK(answered > 0);
  net_free();
}

/* ---- a raw peer driven by hand ---- */

static goop_identity *raw_id;
static goop_peer_id raw_pid;

/* Feed one RPC from the raw peer into node 0. */
static void raw_send(goop_gossip_peer *p, const struct goop_rpc *r) {
  goop_buf b, f;
  goop_buf_init(&b, 0);
  goop_buf_init(&f, 0);
  CHECK_INT_EQ(goop_rpc_encode(r, &b), 0);
  CHECK_INT_EQ(goop_frame_append(&f, b.data, b.len), 0);
  CHECK_INT_EQ(goop_gossip_input(nodes[0].g, p, f.data, f.len, now), 0);
  goop_buf_free(&b);
  goop_buf_free(&f);
}

/* Decode everything node 0 queued for |p|; count GRAFT/PRUNE/IHAVE/messages. */
struct seen_out {
  int graft, prune, ihave_ids, iwant_ids, msgs, subs;
  uint64_t prune_backoff;
  uint8_t ihave_id[GOOP_RPC_MAX_MSG_ID];
  size_t ihave_id_len;
  uint8_t iwant_id[GOOP_RPC_MAX_MSG_ID];
  size_t iwant_id_len;
};

static struct seen_out raw_recv(goop_gossip_peer *p) {
  struct seen_out s;
  memset(&s, 0, sizeof(s));
  size_t len;
  const uint8_t *d = goop_gossip_output_peek(p, &len);
  size_t off = 0;
  while (off < len) {
    const uint8_t *pl;
    size_t plen;
    int n = goop_frame_decode(d + off, len - off, GOOP_RPC_MAX_READ, &pl, &plen);
    if (n <= 0)
      break;
    struct goop_rpc r;
    if (goop_rpc_decode(pl, plen, &r) == 0) {
      s.graft += (int)r.n_graft;
      s.prune += (int)r.n_prune;
      if (r.n_prune && r.prune[0].has_backoff)
        s.prune_backoff = r.prune[0].backoff;
      s.ihave_ids += (int)r.n_ihave_ids;
      if (r.n_ihave_ids && r.ihave_ids[0].len <= sizeof(s.ihave_id)) {
        memcpy(s.ihave_id, r.ihave_ids[0].p, r.ihave_ids[0].len);
        s.ihave_id_len = r.ihave_ids[0].len;
      }
      s.iwant_ids += (int)r.n_iwant_ids;
      if (r.n_iwant_ids && r.iwant_ids[0].len <= sizeof(s.iwant_id)) {
        memcpy(s.iwant_id, r.iwant_ids[0].p, r.iwant_ids[0].len);
        s.iwant_id_len = r.iwant_ids[0].len;
      }
      s.msgs += (int)r.n_msgs;
      s.subs += (int)r.n_subs;
      goop_rpc_clear(&r);
    }
    off += (size_t)n;
  }
  goop_gossip_output_consume(p, len);
  return s;
}

static void raw_sub(goop_gossip_peer *p) {
  struct goop_rpc_sub sub = {true, {(const uint8_t *)TOPIC, strlen(TOPIC)}};
  struct goop_rpc r = {.subs = &sub, .n_subs = 1};
  raw_send(p, &r);
}

static void raw_prune(goop_gossip_peer *p, uint64_t backoff) {
  struct goop_rpc_prune pr = {{(const uint8_t *)TOPIC, strlen(TOPIC)}, true, backoff};
  struct goop_rpc r = {.prune = &pr, .n_prune = 1};
  raw_send(p, &r);
}

static void raw_graft(goop_gossip_peer *p) {
  goop_rpc_bytes t = {(const uint8_t *)TOPIC, strlen(TOPIC)};
  struct goop_rpc r = {.graft = &t, .n_graft = 1};
  raw_send(p, &r);
}

static void heartbeat0(void) {
  now += 1000000;
  goop_gossip_heartbeat(nodes[0].g, now);
}

static void test_prune_backoff(void) {
  net_init(1, NULL);
  CHECK_INT_EQ(goop_identity_generate(&raw_id), 0);
  goop_identity_peer_id(raw_id, &raw_pid);
  CHECK_INT_EQ(goop_gossip_subscribe(nodes[0].g, TOPIC, now), 0);
  goop_gossip_peer *p;
  CHECK_INT_EQ(goop_gossip_add_peer(nodes[0].g, &raw_pid, GOOP_GOSSIP_MESHSUB_11, NULL, now, &p), 0);
  CHECK_INT_EQ(goop_gossip_add_peer(nodes[0].g, &raw_pid, GOOP_GOSSIP_MESHSUB_11, NULL, now, NULL),
               GOOP_EEXIST);
  struct seen_out s = raw_recv(p);
  CHECK_INT_EQ(s.subs, 1); /* hello */
  raw_sub(p);
  heartbeat0();
  s = raw_recv(p);
  CHECK_INT_EQ(s.graft, 1);
  CHECK(goop_gossip_in_mesh(nodes[0].g, TOPIC, p));
  /* The peer prunes us with a 5 s backoff: no GRAFT before it (plus slack) ends. */
  raw_prune(p, 5);
  CHECK(!goop_gossip_in_mesh(nodes[0].g, TOPIC, p));
  int grafts_early = 0;
  for (int i = 0; i < 6; i++) {
    heartbeat0();
    grafts_early += raw_recv(p).graft;
  }
  CHECK_INT_EQ(grafts_early, 0);
  int grafts_late = 0;
  for (int i = 0; i < 3; i++) {
    heartbeat0();
    grafts_late += raw_recv(p).graft;
  }
  CHECK_INT_EQ(grafts_late, 1);
  CHECK(goop_gossip_in_mesh(nodes[0].g, TOPIC, p));

  /* We prune on unsubscribe; a GRAFT during our backoff is answered with PRUNE. */
  CHECK_INT_EQ(goop_gossip_unsubscribe(nodes[0].g, TOPIC, now), 0);
  s = raw_recv(p);
  CHECK_INT_EQ(s.prune, 1);
  CHECK_INT_EQ(s.prune_backoff, 10);
  CHECK_INT_EQ(goop_gossip_subscribe(nodes[0].g, TOPIC, now), 0);
  s = raw_recv(p);
  CHECK_INT_EQ(s.graft, 0); /* still in backoff: not grafted on join */
  raw_graft(p);
  s = raw_recv(p);
  CHECK_INT_EQ(s.prune, 1);
  CHECK(!goop_gossip_in_mesh(nodes[0].g, TOPIC, p));
  /* A /meshsub/1.0.0 peer gets PRUNEs without the v1.1 backoff field. */
  goop_gossip_peer_set_proto(nodes[0].g, p, GOOP_GOSSIP_MESHSUB_10);
  raw_graft(p);
  s = raw_recv(p);
  CHECK_INT_EQ(s.prune, 1);
  CHECK_INT_EQ(s.prune_backoff, 0);
  goop_gossip_peer_set_proto(nodes[0].g, p, GOOP_GOSSIP_MESHSUB_11);
  /* GRAFT for a topic we do not subscribe: refused. */
  CHECK_INT_EQ(goop_gossip_unsubscribe(nodes[0].g, TOPIC, now), 0);
  (void)raw_recv(p);
  raw_graft(p);
  CHECK(!goop_gossip_in_mesh(nodes[0].g, TOPIC, p));
  goop_identity_free(raw_id);
  net_free();
}

/* Build a message signed by |signer| claiming |from|, optional key, optional corruption. */
static void make_msg(goop_buf *enc, const goop_identity *signer, const goop_peer_id *from, bool with_key,
                     bool sign, bool corrupt, const char *data, uint64_t seq) {
  uint8_t seqb[8], sig[64], key[GOOP_ED25519_PUBKEY_PB_SIZE];
  for (int i = 7; i >= 0; i--, seq >>= 8)
    seqb[i] = (uint8_t)seq;
  struct goop_rpc_message m = {.has = GOOP_RPC_HAS_FROM | GOOP_RPC_HAS_DATA | GOOP_RPC_HAS_SEQNO |
                                      GOOP_RPC_HAS_TOPIC,
                               .from = {from->bytes, from->len},
                               .data = {(const uint8_t *)data, strlen(data)},
                               .seqno = {seqb, 8},
                               .topic = {(const uint8_t *)TOPIC, strlen(TOPIC)}};
  goop_buf b;
  goop_buf_init(&b, 0);
  goop_buf_append(&b, "libp2p-pubsub:", 14);
  goop_rpc_encode_signed_part(&m, &b);
  if (goop_identity_sign(signer, b.data, b.len, sig) != 0)
    abort();
  goop_buf_free(&b);
  if (corrupt)
    sig[10] ^= 1;
  if (sign) {
    m.has |= GOOP_RPC_HAS_SIGNATURE;
    m.signature.p = sig;
    m.signature.len = 64;
  }
  if (with_key) {
    goop_identity_public_key(signer, key);
    m.has |= GOOP_RPC_HAS_KEY;
    m.key.p = key;
    m.key.len = sizeof(key);
  }
  goop_buf_reset(enc);
  goop_rpc_encode_message(&m, enc);
}

static void raw_publish(goop_gossip_peer *p, const goop_buf *enc) {
  struct goop_rpc_message m;
  CHECK_INT_EQ(goop_rpc_decode_message(enc->data, enc->len, &m), 0);
  struct goop_rpc r = {.msgs = &m, .n_msgs = 1};
  raw_send(p, &r);
}

static void test_signatures(void) {
  /* Node 0 with raw peer X; node 1 connected to node 0 watches what gets forwarded. */
  net_init(2, NULL);
  goop_identity *other;
  CHECK_INT_EQ(goop_identity_generate(&raw_id), 0);
  CHECK_INT_EQ(goop_identity_generate(&other), 0);
  goop_identity_peer_id(raw_id, &raw_pid);
  goop_peer_id other_pid;
  goop_identity_peer_id(other, &other_pid);
  link_nodes(0, 1, GOOP_GOSSIP_MESHSUB_11, GOOP_GOSSIP_MESHSUB_11);
  subscribe_all();
  goop_gossip_peer *x;
  CHECK_INT_EQ(goop_gossip_add_peer(nodes[0].g, &raw_pid, GOOP_GOSSIP_MESHSUB_11, NULL, now, &x), 0);
  raw_sub(x);
  heartbeats(2);
  (void)raw_recv(x);
  goop_buf enc;
  goop_buf_init(&enc, 0);
  struct goop_gossip_stats st;

  make_msg(&enc, raw_id, &raw_pid, false, false, false, "msg1", 1); /* unsigned */
  raw_publish(x, &enc);
  make_msg(&enc, raw_id, &raw_pid, false, true, true, "msg2", 2); /* bad signature */
  raw_publish(x, &enc);
  make_msg(&enc, other, &raw_pid, true, true, false, "msg3", 3); /* key of another peer */
  raw_publish(x, &enc);
  make_msg(&enc, raw_id, &other_pid, false, true, false, "msg4", 4); /* signed by X, claims other */
  raw_publish(x, &enc);
  make_msg(&enc, other, &raw_pid, false, true, false, "msg5", 5); /* inline key mismatch */
  raw_publish(x, &enc);
  pump();
  goop_gossip_get_stats(nodes[0].g, &st);
  CHECK_INT_EQ(st.msgs_invalid, 5);
  CHECK_INT_EQ(st.msgs_delivered, 0);
  for (int k = 1; k <= 5; k++)
    CHECK(nodes[0].got[k] == 0 && nodes[1].got[k] == 0);

  /* Valid, with and without the (redundant) key field: delivered and forwarded once. */
  make_msg(&enc, raw_id, &raw_pid, false, true, false, "msg6", 6);
  raw_publish(x, &enc);
  raw_publish(x, &enc); /* duplicate */
  make_msg(&enc, raw_id, &raw_pid, true, true, false, "msg7", 7);
  raw_publish(x, &enc);
  pump();
  CHECK_INT_EQ(nodes[0].got[6], 1);
  CHECK_INT_EQ(nodes[1].got[6], 1);
  CHECK_INT_EQ(nodes[0].got[7], 1);
  CHECK_INT_EQ(nodes[1].got[7], 1);
  goop_gossip_get_stats(nodes[0].g, &st);
  CHECK_INT_EQ(st.msgs_duplicate, 1);
  /* The forwarded message is not sent back to its author. */
  struct seen_out s = raw_recv(x);
  CHECK_INT_EQ(s.msgs, 0);

  /* A message on a topic we do not subscribe to is not delivered. */
  CHECK_INT_EQ(goop_gossip_unsubscribe(nodes[0].g, TOPIC, now), 0);
  make_msg(&enc, raw_id, &raw_pid, false, true, false, "msg8", 8);
  raw_publish(x, &enc);
  pump();
  CHECK_INT_EQ(nodes[0].got[8], 0);
  CHECK_INT_EQ(nodes[1].got[8], 0);

  /* IHAVE from the raw peer -> IWANT; IWANT from it -> the message. */
  CHECK_INT_EQ(goop_gossip_subscribe(nodes[0].g, TOPIC, now), 0);
  (void)raw_recv(x);
  make_msg(&enc, raw_id, &raw_pid, false, true, false, "msg9", 9);
  uint8_t id[64];
  memcpy(id, raw_pid.bytes, raw_pid.len);
  uint8_t seq9[8] = {0, 0, 0, 0, 0, 0, 0, 9};
  memcpy(id + raw_pid.len, seq9, 8);
  goop_rpc_bytes idb = {id, raw_pid.len + 8u};
  struct goop_rpc_ihave ih = {{(const uint8_t *)TOPIC, strlen(TOPIC)}, 0, 1};
  struct goop_rpc r = {.ihave = &ih, .n_ihave = 1, .ihave_ids = &idb, .n_ihave_ids = 1};
  raw_send(x, &r);
  s = raw_recv(x);
  CHECK_INT_EQ(s.iwant_ids, 1);
  CHECK(s.iwant_id_len == idb.len && memcmp(s.iwant_id, id, idb.len) == 0);
  raw_publish(x, &enc);
  pump();
  CHECK_INT_EQ(nodes[0].got[9], 1);
  /* Node 0 left and rejoined: node 1 is in backoff, so msg9 reaches it by gossip. */
  CHECK(!goop_gossip_in_mesh(nodes[0].g, TOPIC, nodes[0].link[1]));
  heartbeats(2);
  CHECK_INT_EQ(nodes[1].got[9], 1);
  /* Seen IDs are not asked for again. */
  raw_send(x, &r);
  CHECK_INT_EQ(raw_recv(x).iwant_ids, 0);
  /* Nor in the js form of the ID: protobuf(key) ‖ seqno (our ID without the multihash prefix). */
  goop_rpc_bytes js_id = {id + 2, idb.len - 2};
  r.ihave_ids = &js_id;
  raw_send(x, &r);
  CHECK_INT_EQ(raw_recv(x).iwant_ids, 0);
  r.ihave_ids = &idb;

  /* Node 1 publishes; X asks node 0 for it by ID and gets it. */
  publish(1, "msg10");
  pump();
  (void)raw_recv(x);
  goop_rpc_bytes want = {NULL, 0};
  uint8_t wid[64];
  memcpy(wid, nodes[1].pid.bytes, nodes[1].pid.len);
  uint64_t sq = 1000000 + 1;
  for (int i = 7; i >= 0; i--, sq >>= 8)
    wid[nodes[1].pid.len + (size_t)i] = (uint8_t)sq;
  want.p = wid;
  want.len = nodes[1].pid.len + 8u;
  struct goop_rpc r2 = {.iwant_ids = &want, .n_iwant_ids = 1};
  raw_send(x, &r2);
  CHECK_INT_EQ(raw_recv(x).msgs, 1);
  /* At most three answers per message and peer. */
  int answers = 0;
  for (int i = 0; i < 5; i++) {
    raw_send(x, &r2);
    answers += raw_recv(x).msgs;
  }
  CHECK_INT_EQ(answers, 2);

  /* A message signed elsewhere (Ed25519 key 00 01 .. 1f, seqno 11, data "msg11"). */
  static const char vec[] =
      "0a2600240801122003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b812056d736731311a0800"
      "0000000000000b2210676f6f702e70726573656e63652e76312a4059d74d7f6d56dbd20e8a1292535d3320feee492cd0ccb8"
      "350ec1e96d32e1c9a0b96dc690d1610fa6f1e0e5ef550f7662db7b86b007821f062d407c810cf2ab03";
  goop_buf_reset(&enc);
  for (size_t i = 0; i + 1 < sizeof(vec); i += 2) {
    unsigned v;
    sscanf(vec + i, "%2x", &v);
    goop_buf_append_byte(&enc, (uint8_t)v);
  }
  raw_publish(x, &enc);
  CHECK_INT_EQ(nodes[0].got[11], 1);
  CHECK(enc.len > 56 && enc.data[56] == 11);
  enc.data[56] = 12; /* another seqno under the same signature: rejected */
  goop_gossip_get_stats(nodes[0].g, &st);
  uint64_t invalid = st.msgs_invalid;
  raw_publish(x, &enc);
  goop_gossip_get_stats(nodes[0].g, &st);
  CHECK_INT_EQ(st.msgs_invalid, invalid + 1);
  CHECK_INT_EQ(nodes[0].got[11], 1);

  goop_buf_free(&enc);
  goop_identity_free(other);
  goop_identity_free(raw_id);
  net_free();
}

static void test_validator(void) {
  /* Line: 0 - 1 - 2. Node 1 rejects "bad*": not delivered there, not forwarded to 2. */
  net_init(3, NULL);
  link_nodes(0, 1, GOOP_GOSSIP_MESHSUB_11, GOOP_GOSSIP_MESHSUB_11);
  link_nodes(1, 2, GOOP_GOSSIP_MESHSUB_11, GOOP_GOSSIP_MESHSUB_11);
  nodes[1].reject_bad = true;
  subscribe_all();
  heartbeats(2);
  publish(0, "bad1");
  publish(0, "msg2");
  pump();
  heartbeats(3); /* gossip must not leak the rejected one either */
  CHECK_INT_EQ(nodes[1].got[1], 0);
  CHECK_INT_EQ(nodes[2].got[1], 0);
  CHECK_INT_EQ(nodes[1].got[2], 1);
  CHECK_INT_EQ(nodes[2].got[2], 1);
  struct goop_gossip_stats st;
  goop_gossip_get_stats(nodes[1].g, &st);
  CHECK_INT_EQ(st.msgs_rejected, 1);
  net_free();
}

static void test_floodsub_peer(void) {
  /* 0 -(meshsub)- 1 -(floodsub)- 2 */
  net_init(3, NULL);
  link_nodes(0, 1, GOOP_GOSSIP_MESHSUB_11, GOOP_GOSSIP_MESHSUB_11);
  link_nodes(1, 2, GOOP_GOSSIP_FLOODSUB, GOOP_GOSSIP_FLOODSUB);
  subscribe_all();
  heartbeats(3);
  CHECK(!goop_gossip_in_mesh(nodes[1].g, TOPIC, nodes[1].link[2]));
  CHECK(goop_gossip_in_mesh(nodes[1].g, TOPIC, nodes[1].link[0]));
  CHECK(goop_gossip_peer_subscribed(nodes[1].g, nodes[1].link[2], TOPIC));
  publish(0, "msg1");
  publish(2, "msg2");
  pump();
  CHECK_INT_EQ(nodes[2].got[1], 1);
  CHECK_INT_EQ(nodes[1].got[1], 1);
  CHECK_INT_EQ(nodes[0].got[2], 1);
  CHECK_INT_EQ(nodes[1].got[2], 1);
  /* Mesh publishing (no flood publish) still reaches floodsub peers. */
  net_free();
  struct goop_gossip_params prm;
  goop_gossip_default_params(&prm);
  prm.flood_publish = false;
  net_init(2, &prm);
  link_nodes(0, 1, GOOP_GOSSIP_FLOODSUB, GOOP_GOSSIP_FLOODSUB);
  subscribe_all();
  heartbeats(2);
  publish(0, "msg3");
  pump();
  CHECK_INT_EQ(nodes[1].got[3], 1);
  net_free();
}

static void test_fanout(void) {
  struct goop_gossip_params prm;
  goop_gossip_default_params(&prm);
  prm.flood_publish = false;
  net_init(10, &prm);
  full_mesh();
  for (int i = 1; i < n_nodes; i++)
    CHECK_INT_EQ(goop_gossip_subscribe(nodes[i].g, TOPIC, now), 0);
  pump();
  heartbeats(2);
  publish(0, "msg1");
  pump();
  CHECK_INT_EQ(goop_gossip_fanout_size(nodes[0].g, TOPIC), prm.d);
  int got = 0;
  for (int i = 1; i < n_nodes; i++)
    got += nodes[i].got[1];
  CHECK_INT_EQ(got, 9);
  /* Fanout expires 60 s after the last publish. */
  heartbeats(61);
  CHECK_INT_EQ(goop_gossip_fanout_size(nodes[0].g, TOPIC), 0);
  /* Joining the topic turns the fanout peers into the mesh. */
  publish(0, "msg2");
  pump();
  CHECK_INT_EQ(goop_gossip_subscribe(nodes[0].g, TOPIC, now), 0);
  CHECK_INT_EQ(goop_gossip_mesh_size(nodes[0].g, TOPIC), prm.d);
  CHECK_INT_EQ(goop_gossip_fanout_size(nodes[0].g, TOPIC), 0);
  net_free();
}

static void test_input_framing(void) {
  net_init(2, NULL);
  link_nodes(0, 1, GOOP_GOSSIP_MESHSUB_11, GOOP_GOSSIP_MESHSUB_11);
  CHECK_INT_EQ(goop_gossip_subscribe(nodes[0].g, TOPIC, now), 0);
  CHECK_INT_EQ(goop_gossip_subscribe(nodes[1].g, TOPIC, now), 0);
  pump();
  publish(0, "msg1");
  publish(0, "msg2");
  /* Hand node 0's output to node 1 one byte at a time. */
  size_t len;
  const uint8_t *d = goop_gossip_output_peek(nodes[0].link[1], &len);
  CHECK(len > 0);
  for (size_t i = 0; i < len; i++)
    CHECK(goop_gossip_input(nodes[1].g, nodes[1].link[0], d + i, 1, now) == 0);
  goop_gossip_output_consume(nodes[0].link[1], len);
  CHECK_INT_EQ(nodes[1].got[1], 1);
  CHECK_INT_EQ(nodes[1].got[2], 1);
  CHECK(goop_gossip_peer_subscribed(nodes[1].g, nodes[1].link[0], TOPIC));
  /* An oversized frame and a malformed RPC are errors. */
  uint8_t big[10];
  size_t n = goop_varint_encode(GOOP_RPC_MAX_READ + 1, big);
  CHECK_INT_EQ(goop_gossip_input(nodes[1].g, nodes[1].link[0], big, n, now), GOOP_EMSGSIZE);
  CHECK_INT_EQ(goop_gossip_input(nodes[1].g, nodes[1].link[0], big, 1, now), 0); /* partial header */
  CHECK_INT_EQ(goop_gossip_input(nodes[1].g, nodes[1].link[0], big + 1, n - 1, now), GOOP_EMSGSIZE);
  const uint8_t junk[] = {3, 0x08, 0x01, 0x01};
  CHECK(goop_gossip_input(nodes[1].g, nodes[1].link[0], junk, sizeof(junk), now) < 0);
  /* After an error the peer can start over with clean frames. */
  const uint8_t empty[] = {0};
  CHECK_INT_EQ(goop_gossip_input(nodes[1].g, nodes[1].link[0], empty, 1, now), 0);
  /* Publish limits. */
  CHECK_INT_EQ(goop_gossip_publish(nodes[0].g, "", (const uint8_t *)"x", 1, now), GOOP_EINVAL);
  uint8_t *huge = calloc(1, GOOP_GOSSIP_MAX_DATA + 1);
  CHECK_INT_EQ(goop_gossip_publish(nodes[0].g, TOPIC, huge, GOOP_GOSSIP_MAX_DATA + 1, now), GOOP_EMSGSIZE);
  free(huge);
  net_free();
}

static void test_queue_bound(void) {
  struct goop_gossip_params prm;
  goop_gossip_default_params(&prm);
  prm.max_queue = 256 * 1024;
  net_init(2, &prm);
  link_nodes(0, 1, GOOP_GOSSIP_MESHSUB_11, GOOP_GOSSIP_MESHSUB_11);
  subscribe_all();
  /* Node 1 never reads: node 0's queue for it stays bounded. */
  uint8_t *data = calloc(1, 60000);
  for (int i = 0; i < 20; i++)
    CHECK_INT_EQ(goop_gossip_publish(nodes[0].g, TOPIC, data, 60000, now), 0);
  free(data);
  size_t len;
  (void)goop_gossip_output_peek(nodes[0].link[1], &len);
  CHECK(len <= prm.max_queue);
  struct goop_gossip_stats st;
  goop_gossip_get_stats(nodes[0].g, &st);
  CHECK(st.frames_dropped > 0);
  /* Every frame written is at most 64 KiB. */
  const uint8_t *d = goop_gossip_output_peek(nodes[0].link[1], &len);
  size_t off = 0;
  bool small = true;
  while (off < len) {
    const uint8_t *pl;
    size_t plen;
    int n = goop_frame_decode(d + off, len - off, GOOP_RPC_MAX_READ, &pl, &plen);
    if (n <= 0)
      break;
    small = small && plen <= GOOP_RPC_MAX_WRITE;
    off += (size_t)n;
  }
  CHECK(small && off == len);
  net_free();
}

int main(void) {
  RUN(test_mesh_forms);
  RUN(test_delivery_flood);
  RUN(test_delivery_mesh);
  RUN(test_iwant_recovery);
  RUN(test_prune_backoff);
  RUN(test_signatures);
  RUN(test_validator);
  RUN(test_floodsub_peer);
  RUN(test_fanout);
  RUN(test_input_framing);
  RUN(test_queue_bound);
  return tap_done();
}
