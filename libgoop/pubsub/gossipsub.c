/* GossipSub v1.1 router core: sans-I/O (bytes, peers and timestamps in; bytes and deliveries out). */
#include "gossipsub.h"

#include <stdlib.h>
#include <string.h>

#include "../common/internal.h"
#include "proto.h"
#include "rpc.h"
#include "varint.h"

#define SIGN_PREFIX "libp2p-pubsub:"
#define SIGN_PREFIX_LEN (sizeof(SIGN_PREFIX) - 1)
#define MAX_BACKOFF_S (24u * 3600u)

/* ---- small containers ---------------------------------------------------------------------- */

struct pvec {
  goop_gossip_peer **v;
  size_t n, cap;
};

static bool pv_has(const struct pvec *pv, const goop_gossip_peer *p) {
  for (size_t i = 0; i < pv->n; i++)
    if (pv->v[i] == p)
      return true;
  return false;
}

static int pv_add(struct pvec *pv, goop_gossip_peer *p) {
  if (pv_has(pv, p))
    return 0;
  if (pv->n == pv->cap) {
    size_t ncap = pv->cap ? pv->cap * 2 : 8;
    goop_gossip_peer **v = realloc(pv->v, ncap * sizeof(*v));
    if (!v)
      return GOOP_ENOMEM;
    pv->v = v;
    pv->cap = ncap;
  }
  pv->v[pv->n++] = p;
  return 0;
}

static bool pv_del(struct pvec *pv, const goop_gossip_peer *p) {
  for (size_t i = 0; i < pv->n; i++) {
    if (pv->v[i] == p) {
      pv->v[i] = pv->v[--pv->n];
      return true;
    }
  }
  return false;
}

static void pv_free(struct pvec *pv) {
  free(pv->v);
  memset(pv, 0, sizeof(*pv));
}

/* Hash table of byte keys with an insertion-ordered list (for expiry from the oldest). */
#define RETX_MAX 3   /* IWANT answers per message and peer (go: GossipRetransmission) */
#define RETX_SLOTS 8 /* peers tracked per message */

struct gmsg {
  char *topic;
  uint8_t *enc; /* Message protobuf */
  size_t enc_len;
  uint64_t retx_peer[RETX_SLOTS]; /* peer serials (0 = free) */
  uint8_t retx_n[RETX_SLOTS];
};

/* Count one IWANT answer of |m| to the peer with |serial|; false once it had RETX_MAX. */
static bool retx_allow(struct gmsg *m, uint64_t serial) {
  for (size_t i = 0; i < RETX_SLOTS; i++) {
    if (m->retx_peer[i] == serial) {
      if (m->retx_n[i] >= RETX_MAX)
        return false;
      m->retx_n[i]++;
      return true;
    }
  }
  for (size_t i = 0; i < RETX_SLOTS; i++) {
    if (!m->retx_peer[i]) {
      m->retx_peer[i] = serial;
      m->retx_n[i] = 1;
      return true;
    }
  }
  return true; /* untracked: still bounded by the IWANT and queue limits */
}

struct hent {
  struct hent *hnext, *next, *prev;
  uint64_t h;
  goop_tstamp t; /* seen: time; mcache: heartbeat number */
  struct gmsg *msg;
  size_t klen;
  uint8_t key[];
};

struct htab {
  struct hent **b;
  size_t nb, n;
  struct hent *head, *tail;
  uint64_t seed;
};

static uint64_t hash_bytes(uint64_t seed, const uint8_t *p, size_t len) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h ^ (h >> 29);
}

static struct hent *ht_find(const struct htab *t, const uint8_t *k, size_t klen) {
  if (!t->nb)
    return NULL;
  uint64_t h = hash_bytes(t->seed, k, klen);
  for (struct hent *e = t->b[h & (t->nb - 1)]; e; e = e->hnext)
    if (e->h == h && e->klen == klen && memcmp(e->key, k, klen) == 0)
      return e;
  return NULL;
}

static int ht_grow(struct htab *t) {
  size_t nb = t->nb ? t->nb * 2 : 256;
  struct hent **b = calloc(nb, sizeof(*b));
  if (!b)
    return GOOP_ENOMEM;
  for (struct hent *e = t->head; e; e = e->next) {
    e->hnext = b[e->h & (nb - 1)];
    b[e->h & (nb - 1)] = e;
  }
  free(t->b);
  t->b = b;
  t->nb = nb;
  return 0;
}

static struct hent *ht_insert(struct htab *t, const uint8_t *k, size_t klen, goop_tstamp tv) {
  if (t->n >= t->nb && ht_grow(t) != 0)
    return NULL;
  struct hent *e = calloc(1, sizeof(*e) + klen);
  if (!e)
    return NULL;
  memcpy(e->key, k, klen);
  e->klen = klen;
  e->h = hash_bytes(t->seed, k, klen);
  e->t = tv;
  e->hnext = t->b[e->h & (t->nb - 1)];
  t->b[e->h & (t->nb - 1)] = e;
  e->prev = t->tail;
  if (t->tail)
    t->tail->next = e;
  else
    t->head = e;
  t->tail = e;
  t->n++;
  return e;
}

static void gmsg_free(struct gmsg *m) {
  if (!m)
    return;
  free(m->topic);
  free(m->enc);
  free(m);
}

static void ht_remove(struct htab *t, struct hent *e) {
  struct hent **pp = &t->b[e->h & (t->nb - 1)];
  while (*pp != e)
    pp = &(*pp)->hnext;
  *pp = e->hnext;
  if (e->prev)
    e->prev->next = e->next;
  else
    t->head = e->next;
  if (e->next)
    e->next->prev = e->prev;
  else
    t->tail = e->prev;
  t->n--;
  gmsg_free(e->msg);
  free(e);
}

static void ht_free(struct htab *t) {
  while (t->head)
    ht_remove(t, t->head);
  free(t->b);
  t->b = NULL;
  t->nb = 0;
}

/* ---- router state --------------------------------------------------------------------------- */

struct backoff {
  goop_peer_id id;
  goop_tstamp until;
};

struct topic {
  struct topic *next;
  char *name;
  size_t len;
  bool subscribed;
  size_t n_peers; /* peers subscribed */
  struct pvec mesh, fanout;
  bool fanout_on;
  goop_tstamp last_pub;
  struct backoff *bo;
  size_t n_bo, cap_bo;
};

struct goop_gossip_peer {
  goop_gossip_peer *next, *prev;
  goop_peer_id id;
  uint64_t serial; /* unique per added peer */
  enum goop_gossip_proto proto;
  void *ud;
  struct topic **subs;
  size_t n_subs, cap_subs;
  goop_buf in;  /* partial input frame */
  goop_buf out; /* framed RPCs ready to write */
  goop_buf top; /* RPC being built: subscriptions and messages */
  goop_buf ctl; /* RPC being built: ControlMessage fields */
  bool dirty;   /* out grew since the last output notification */
  unsigned ihave_recv;
  size_t iasked;
};

struct goop_gossip {
  const goop_identity *id;
  goop_peer_id self;
  struct goop_gossip_params prm;
  struct goop_gossip_callbacks cb;
  void *ud;
  uint64_t seqno;
  uint64_t rng;
  goop_gossip_peer *peers;
  size_t n_peers;
  uint64_t peer_serial;
  struct topic *topics;
  size_t n_topics;
  struct htab seen, mcache;
  uint64_t hb; /* heartbeats done */
  goop_tstamp next_hb;
  goop_buf tmp;
  struct goop_gossip_stats st;
};

void goop_gossip_default_params(struct goop_gossip_params *p) {
  memset(p, 0, sizeof(*p));
  p->d = 6;
  p->d_lo = 5;
  p->d_hi = 12;
  p->d_lazy = 6;
  p->gossip_factor = 0.25;
  p->heartbeat_us = 1000000;
  p->mcache_len = 5;
  p->mcache_gossip = 3;
  p->fanout_ttl_us = 60000000;
  p->seen_ttl_us = 120000000;
  p->prune_backoff_us = 60000000;
  p->unsubscribe_backoff_us = 10000000;
  p->max_ihave_len = 5000;
  p->max_ihave_msgs = 10;
  p->flood_publish = true;
  p->max_queue = 4u * 1024u * 1024u;
  p->max_topics = 4096;
  p->max_peer_subs = 1024;
  p->max_seen = 200000;
}

static const char *const proto_names[] = {"/meshsub/1.1.0", "/meshsub/1.0.0", "/floodsub/1.0.0"};

const char *goop_gossip_proto_name(enum goop_gossip_proto p) {
  return (unsigned)p < GOOP_ARRAY_SIZE(proto_names) ? proto_names[p] : "?";
}

int goop_gossip_proto_parse(const char *name, enum goop_gossip_proto *ret) {
  for (size_t i = 0; name && i < GOOP_ARRAY_SIZE(proto_names); i++) {
    if (strcmp(name, proto_names[i]) == 0) {
      *ret = (enum goop_gossip_proto)i;
      return 0;
    }
  }
  return GOOP_ENOENT;
}

static uint64_t rnd(goop_gossip *g) {
  g->rng ^= g->rng >> 12;
  g->rng ^= g->rng << 25;
  g->rng ^= g->rng >> 27;
  return g->rng * 0x2545F4914F6CDD1Dull;
}

static void shuffle(goop_gossip *g, goop_gossip_peer **v, size_t n) {
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)(rnd(g) % i);
    goop_gossip_peer *x = v[i - 1];
    v[i - 1] = v[j];
    v[j] = x;
  }
}

static bool is_mesh_peer(const goop_gossip_peer *p) {
  return p->proto != GOOP_GOSSIP_FLOODSUB;
}

/* ---- topics ------------------------------------------------------------------------------------ */

static struct topic *find_topic(goop_gossip *g, const uint8_t *name, size_t len) {
  for (struct topic *t = g->topics; t; t = t->next)
    if (t->len == len && memcmp(t->name, name, len) == 0)
      return t;
  return NULL;
}

static struct topic *get_topic(goop_gossip *g, const uint8_t *name, size_t len) {
  struct topic *t = find_topic(g, name, len);
  if (t)
    return t;
  if (len == 0 || len > GOOP_RPC_MAX_TOPIC || memchr(name, 0, len) || g->n_topics >= g->prm.max_topics)
    return NULL;
  t = calloc(1, sizeof(*t));
  if (!t)
    return NULL;
  t->name = malloc(len + 1);
  if (!t->name) {
    free(t);
    return NULL;
  }
  memcpy(t->name, name, len);
  t->name[len] = 0;
  t->len = len;
  t->next = g->topics;
  g->topics = t;
  g->n_topics++;
  return t;
}

static void topic_free(struct topic *t) {
  pv_free(&t->mesh);
  pv_free(&t->fanout);
  free(t->bo);
  free(t->name);
  free(t);
}

static bool topic_in_use(const struct topic *t) {
  return t->subscribed || t->n_peers || t->fanout_on || t->mesh.n || t->n_bo;
}

static struct backoff *find_backoff(struct topic *t, const goop_peer_id *id) {
  for (size_t i = 0; i < t->n_bo; i++)
    if (goop_peer_id_equal(&t->bo[i].id, id))
      return &t->bo[i];
  return NULL;
}

static void add_backoff(goop_gossip *g, struct topic *t, const goop_peer_id *id, goop_tstamp until) {
  struct backoff *b = find_backoff(t, id);
  if (b) {
    if (b->until < until)
      b->until = until;
    return;
  }
  if (t->n_bo >= g->n_peers + 64)
    return; /* bounded by the peers we know */
  if (t->n_bo == t->cap_bo) {
    size_t ncap = t->cap_bo ? t->cap_bo * 2 : 8;
    struct backoff *v = realloc(t->bo, ncap * sizeof(*v));
    if (!v)
      return;
    t->bo = v;
    t->cap_bo = ncap;
  }
  t->bo[t->n_bo].id = *id;
  t->bo[t->n_bo].until = until;
  t->n_bo++;
}

/* For our own GRAFTs we wait two extra heartbeats past the backoff, as go does. */
static bool in_backoff(goop_gossip *g, struct topic *t, const goop_gossip_peer *p, goop_tstamp now,
                       bool slack) {
  struct backoff *b = find_backoff(t, &p->id);
  if (!b)
    return false;
  return now < b->until + (slack ? 2 * g->prm.heartbeat_us : 0);
}

static bool peer_has_sub(const goop_gossip_peer *p, const struct topic *t) {
  for (size_t i = 0; i < p->n_subs; i++)
    if (p->subs[i] == t)
      return true;
  return false;
}

/* ---- output building -------------------------------------------------------------------------- */

static void pend_flush(goop_gossip *g, goop_gossip_peer *p) {
  if (!p->top.len && !p->ctl.len)
    return;
  size_t total = p->top.len + (p->ctl.len ? goop_rpc_field_size(3, p->ctl.len) : 0);
  size_t frame = goop_varint_size(total) + total;
  size_t old = p->out.len;
  int rc = 0;
  if (p->out.len + frame > g->prm.max_queue) {
    rc = GOOP_ELIMIT;
  } else {
    rc = goop_buf_append_varint(&p->out, total);
    if (!rc)
      rc = goop_buf_append(&p->out, p->top.data, p->top.len);
    if (!rc && p->ctl.len)
      rc = goop_pb_put_bytes(&p->out, 3, p->ctl.data, p->ctl.len);
  }
  if (rc) {
    p->out.len = old;
    g->st.frames_dropped++;
  } else {
    g->st.rpcs_out++;
    p->dirty = true;
  }
  goop_buf_reset(&p->top);
  goop_buf_reset(&p->ctl);
}

/* Start a new RPC if |need| more bytes would push the current one over the write limit. */
static void pend_reserve(goop_gossip *g, goop_gossip_peer *p, size_t need) {
  if (p->top.len + p->ctl.len + 16 + need > GOOP_RPC_MAX_WRITE)
    pend_flush(g, p);
}

static void pend_sub(goop_gossip *g, goop_gossip_peer *p, const struct topic *t, bool sub) {
  goop_buf_reset(&g->tmp);
  if (goop_pb_put_bool(&g->tmp, 1, sub) || goop_pb_put_bytes(&g->tmp, 2, t->name, t->len))
    return;
  pend_reserve(g, p, g->tmp.len + 8);
  (void)goop_pb_put_bytes(&p->top, 1, g->tmp.data, g->tmp.len);
}

static void pend_msg(goop_gossip *g, goop_gossip_peer *p, const struct gmsg *m) {
  pend_reserve(g, p, m->enc_len + 8);
  (void)goop_pb_put_bytes(&p->top, 2, m->enc, m->enc_len);
}

/* One ControlMessage field |num| whose payload is in g->tmp. */
static void pend_ctl(goop_gossip *g, goop_gossip_peer *p, uint32_t num) {
  pend_reserve(g, p, g->tmp.len + 8);
  (void)goop_pb_put_bytes(&p->ctl, num, g->tmp.data, g->tmp.len);
}

static void pend_graft(goop_gossip *g, goop_gossip_peer *p, const struct topic *t) {
  goop_buf_reset(&g->tmp);
  if (goop_pb_put_bytes(&g->tmp, 1, t->name, t->len))
    return;
  pend_ctl(g, p, 3);
  g->st.graft_sent++;
}

static void pend_prune(goop_gossip *g, goop_gossip_peer *p, const struct topic *t, goop_tstamp backoff_us) {
  goop_buf_reset(&g->tmp);
  if (goop_pb_put_bytes(&g->tmp, 1, t->name, t->len))
    return;
  /* Backoff is a v1.1 field. */
  if (p->proto == GOOP_GOSSIP_MESHSUB_11 && goop_pb_put_varint(&g->tmp, 3, backoff_us / 1000000u))
    return;
  pend_ctl(g, p, 4);
  g->st.prune_sent++;
}

/* IHAVE (num 1, topic given) or IWANT (num 2, topic NULL), split to fit the write limit. */
static void pend_ids(goop_gossip *g, goop_gossip_peer *p, uint32_t num, const struct topic *t,
                     const goop_rpc_bytes *ids, size_t n) {
  size_t i = 0;
  while (i < n) {
    goop_buf_reset(&g->tmp);
    if (t && goop_pb_put_bytes(&g->tmp, 1, t->name, t->len))
      return;
    uint32_t idf = t ? 2 : 1;
    size_t start = i;
    while (i < n && g->tmp.len + goop_rpc_field_size(idf, ids[i].len) < GOOP_RPC_MAX_WRITE / 2) {
      if (goop_pb_put_bytes(&g->tmp, idf, ids[i].p, ids[i].len))
        return;
      i++;
    }
    if (i == start)
      return;
    pend_ctl(g, p, num);
    if (t)
      g->st.ihave_sent++;
    else
      g->st.iwant_sent++;
  }
}

static void flush_all(goop_gossip *g) {
  for (goop_gossip_peer *p = g->peers; p; p = p->next)
    pend_flush(g, p);
  for (goop_gossip_peer *p = g->peers; p; p = p->next) {
    if (p->dirty) {
      p->dirty = false;
      if (g->cb.output)
        g->cb.output(g->ud, p, p->ud);
    }
  }
}

/* ---- construction ----------------------------------------------------------------------------------- */

int goop_gossip_new(const struct goop_gossip_config *cfg, goop_gossip **ret) {
  goop_return_val_if_fail(cfg && cfg->id && ret, GOOP_EINVAL);
  goop_gossip *g = calloc(1, sizeof(*g));
  if (!g)
    return GOOP_ENOMEM;
  g->id = cfg->id;
  goop_identity_peer_id(cfg->id, &g->self);
  if (cfg->params)
    g->prm = *cfg->params;
  else
    goop_gossip_default_params(&g->prm);
  if (g->prm.d_lo > g->prm.d || g->prm.d > g->prm.d_hi || !g->prm.heartbeat_us || !g->prm.mcache_len ||
      g->prm.mcache_gossip > g->prm.mcache_len) {
    free(g);
    return GOOP_EINVAL;
  }
  g->cb = cfg->cb;
  g->ud = cfg->ud;
  g->seqno = cfg->seqno_start;
  g->rng = cfg->rng_seed ? cfg->rng_seed : 0x9E3779B97F4A7C15ull;
  g->seen.seed = rnd(g);
  g->mcache.seed = rnd(g);
  goop_buf_init(&g->tmp, 0);
  *ret = g;
  return 0;
}

static void peer_free(goop_gossip_peer *p) {
  free(p->subs);
  goop_buf_free(&p->in);
  goop_buf_free(&p->out);
  goop_buf_free(&p->top);
  goop_buf_free(&p->ctl);
  free(p);
}

void goop_gossip_free(goop_gossip *g) {
  if (!g)
    return;
  while (g->peers) {
    goop_gossip_peer *p = g->peers;
    g->peers = p->next;
    peer_free(p);
  }
  while (g->topics) {
    struct topic *t = g->topics;
    g->topics = t->next;
    topic_free(t);
  }
  ht_free(&g->seen);
  ht_free(&g->mcache);
  goop_buf_free(&g->tmp);
  free(g);
}

/* ---- peers ------------------------------------------------------------------------------------- */

goop_gossip_peer *goop_gossip_find_peer(goop_gossip *g, const goop_peer_id *id) {
  for (goop_gossip_peer *p = g->peers; p; p = p->next)
    if (goop_peer_id_equal(&p->id, id))
      return p;
  return NULL;
}

int goop_gossip_add_peer(goop_gossip *g, const goop_peer_id *id, enum goop_gossip_proto proto, void *peer_ud,
                         goop_tstamp now, goop_gossip_peer **ret) {
  (void)now;
  goop_return_val_if_fail(g && id && (unsigned)proto <= GOOP_GOSSIP_FLOODSUB, GOOP_EINVAL);
  if (goop_gossip_find_peer(g, id))
    return GOOP_EEXIST;
  goop_gossip_peer *p = calloc(1, sizeof(*p));
  if (!p)
    return GOOP_ENOMEM;
  p->id = *id;
  p->serial = ++g->peer_serial;
  p->proto = proto;
  p->ud = peer_ud;
  goop_buf_init(&p->in, GOOP_RPC_MAX_READ + 16);
  goop_buf_init(&p->out, 0);
  goop_buf_init(&p->top, 0);
  goop_buf_init(&p->ctl, 0);
  p->next = g->peers;
  if (g->peers)
    g->peers->prev = p;
  g->peers = p;
  g->n_peers++;
  /* Hello: all our subscriptions. */
  for (struct topic *t = g->topics; t; t = t->next)
    if (t->subscribed)
      pend_sub(g, p, t, true);
  flush_all(g);
  if (ret)
    *ret = p;
  return 0;
}

void goop_gossip_peer_restart_output(goop_gossip *g, goop_gossip_peer *p) {
  if (!g || !p)
    return;
  goop_buf_reset(&p->out);
  goop_buf_reset(&p->top);
  goop_buf_reset(&p->ctl);
  for (struct topic *t = g->topics; t; t = t->next) {
    if (t->subscribed)
      pend_sub(g, p, t, true);
    if (pv_has(&t->mesh, p))
      pend_graft(g, p, t);
  }
  flush_all(g);
}

void goop_gossip_peer_set_proto(goop_gossip *g, goop_gossip_peer *p, enum goop_gossip_proto proto) {
  if (!p || (unsigned)proto > GOOP_GOSSIP_FLOODSUB || p->proto == proto)
    return;
  if (proto == GOOP_GOSSIP_FLOODSUB) {
    for (struct topic *t = g->topics; t; t = t->next) {
      pv_del(&t->mesh, p);
      pv_del(&t->fanout, p);
    }
  }
  p->proto = proto;
}

static void drop_sub(goop_gossip_peer *p, size_t i) {
  struct topic *t = p->subs[i];
  p->subs[i] = p->subs[--p->n_subs];
  t->n_peers--;
  pv_del(&t->mesh, p);
  pv_del(&t->fanout, p);
}

void goop_gossip_remove_peer(goop_gossip *g, goop_gossip_peer *p) {
  if (!g || !p)
    return;
  while (p->n_subs)
    drop_sub(p, p->n_subs - 1);
  for (struct topic *t = g->topics; t; t = t->next) {
    pv_del(&t->mesh, p);
    pv_del(&t->fanout, p);
  }
  if (p->prev)
    p->prev->next = p->next;
  else
    g->peers = p->next;
  if (p->next)
    p->next->prev = p->prev;
  g->n_peers--;
  peer_free(p);
}

void *goop_gossip_peer_ud(const goop_gossip_peer *p) {
  return p->ud;
}
const goop_peer_id *goop_gossip_peer_id(const goop_gossip_peer *p) {
  return &p->id;
}
enum goop_gossip_proto goop_gossip_peer_proto(const goop_gossip_peer *p) {
  return p->proto;
}

const uint8_t *goop_gossip_output_peek(goop_gossip_peer *p, size_t *ret_len) {
  *ret_len = p->out.len;
  return p->out.data;
}

void goop_gossip_output_consume(goop_gossip_peer *p, size_t n) {
  if (n > p->out.len)
    n = p->out.len;
  goop_buf_consume(&p->out, n);
  if (!p->out.len && p->out.cap > 256 * 1024)
    goop_buf_free(&p->out);
}

/* ---- messages ------------------------------------------------------------------------------------ */

static bool seen_has(goop_gossip *g, const uint8_t *id, size_t len) {
  return ht_find(&g->seen, id, len) != NULL;
}

static void seen_add(goop_gossip *g, const uint8_t *id, size_t len, goop_tstamp now) {
  if (seen_has(g, id, len))
    return;
  while (g->seen.n >= g->prm.max_seen && g->seen.head)
    ht_remove(&g->seen, g->seen.head);
  (void)ht_insert(&g->seen, id, len, now);
}

static void mcache_put(goop_gossip *g, const uint8_t *id, size_t id_len, const struct topic *t,
                       const struct goop_rpc_message *m) {
  if (ht_find(&g->mcache, id, id_len))
    return;
  struct gmsg *gm = calloc(1, sizeof(*gm));
  goop_buf b;
  goop_buf_init(&b, 0);
  if (!gm || goop_rpc_encode_message(m, &b) != 0 || !(gm->topic = goop__strdup(t->name)))
    goto fail;
  gm->enc = goop_buf_steal(&b, &gm->enc_len);
  struct hent *e = ht_insert(&g->mcache, id, id_len, g->hb);
  if (!e)
    goto fail;
  e->msg = gm;
  return;
fail:
  goop_buf_free(&b);
  gmsg_free(gm);
}

/* Send |m| to every chosen peer except |src| and the author |author|. */
static void send_to(goop_gossip *g, const struct gmsg *m, goop_gossip_peer *const *v, size_t n,
                    const goop_gossip_peer *src, const goop_peer_id *author, bool count) {
  for (size_t i = 0; i < n; i++) {
    goop_gossip_peer *p = v[i];
    if (p == src || (author && goop_peer_id_equal(&p->id, author)))
      continue;
    pend_msg(g, p, m);
    if (count)
      g->st.msgs_forwarded++;
  }
}

/*
 * Route a message: |own| messages go to all subscribed peers (flood publish)
 * or to mesh/fanout; forwarded ones to the mesh and to floodsub peers.
 */
static void route(goop_gossip *g, struct topic *t, const struct gmsg *m, const goop_gossip_peer *src,
                  const goop_peer_id *author, bool own) {
  struct pvec to = {NULL, 0, 0};
  for (goop_gossip_peer *p = g->peers; p; p = p->next) {
    if (!peer_has_sub(p, t))
      continue;
    if (!is_mesh_peer(p) || (own && g->prm.flood_publish))
      (void)pv_add(&to, p);
  }
  const struct pvec *set = t->subscribed ? &t->mesh : &t->fanout;
  for (size_t i = 0; i < set->n; i++)
    (void)pv_add(&to, set->v[i]);
  send_to(g, m, to.v, to.n, src, author, !own);
  pv_free(&to);
}

/* Verify StrictSign; fills |from|. Returns 0 or GOOP_EBADSIG / GOOP_EPARSE. */
static int verify_message(goop_gossip *g, const struct goop_rpc_message *m, goop_peer_id *from) {
  unsigned need = GOOP_RPC_HAS_FROM | GOOP_RPC_HAS_SEQNO | GOOP_RPC_HAS_SIGNATURE;
  if ((m->has & need) != need || !m->seqno.len || m->seqno.len > 64)
    return GOOP_EBADSIG;
  if (goop_peer_id_from_bytes(m->from.p, m->from.len, from) != 0)
    return GOOP_EPARSE;
  uint8_t keybuf[GOOP_PUBKEY_PB_MAX];
  const uint8_t *key;
  size_t key_len;
  if (m->has & GOOP_RPC_HAS_KEY) {
    goop_peer_id kid;
    if (goop_pubkey_to_peer_id(m->key.p, m->key.len, &kid) != 0 || !goop_peer_id_equal(&kid, from))
      return GOOP_EBADSIG;
    key = m->key.p;
    key_len = m->key.len;
  } else {
    key_len = sizeof(keybuf);
    if (goop_peer_id_extract_pubkey(from, keybuf, &key_len) != 0)
      return GOOP_EBADSIG;
    key = keybuf;
  }
  goop_buf_reset(&g->tmp);
  if (goop_buf_append(&g->tmp, SIGN_PREFIX, SIGN_PREFIX_LEN) || goop_rpc_encode_signed_part(m, &g->tmp))
    return GOOP_ENOMEM;
  if (goop_pubkey_verify(key, key_len, g->tmp.data, g->tmp.len, m->signature.p, m->signature.len) != 0)
    return GOOP_EBADSIG;
  return 0;
}

static uint64_t seqno_u64(goop_rpc_bytes s) {
  uint64_t v = 0;
  size_t start = s.len > 8 ? s.len - 8 : 0;
  for (size_t i = start; i < s.len; i++)
    v = (v << 8) | s.p[i];
  return v;
}

/* Message ID = from ‖ seqno into |buf| (>= 2 * GOOP_RPC_MAX_MSG_ID). */
static size_t make_id(const struct goop_rpc_message *m, uint8_t *buf, size_t cap) {
  if (m->from.len + m->seqno.len > cap)
    return 0;
  memcpy(buf, m->from.p, m->from.len);
  memcpy(buf + m->from.len, m->seqno.p, m->seqno.len);
  return m->from.len + m->seqno.len;
}

static void handle_message(goop_gossip *g, goop_gossip_peer *src, const struct goop_rpc_message *m,
                           goop_tstamp now) {
  if (!(m->has & GOOP_RPC_HAS_TOPIC)) {
    g->st.msgs_invalid++;
    return;
  }
  struct topic *t = find_topic(g, m->topic.p, m->topic.len);
  if (!t || !t->subscribed) {
    g->st.msgs_unsubscribed++;
    return;
  }
  uint8_t id[GOOP_RPC_MAX_MSG_ID];
  size_t id_len = 0;
  if (m->has & GOOP_RPC_HAS_FROM && m->has & GOOP_RPC_HAS_SEQNO)
    id_len = make_id(m, id, sizeof(id));
  if (id_len && seen_has(g, id, id_len)) {
    g->st.msgs_duplicate++;
    return;
  }
  goop_peer_id from;
  if (!id_len || verify_message(g, m, &from) != 0) {
    g->st.msgs_invalid++;
    return;
  }
  if (goop_peer_id_equal(&from, &g->self)) {
    g->st.msgs_duplicate++; /* our own message coming back but unknown: drop */
    seen_add(g, id, id_len, now);
    return;
  }
  struct goop_gossip_msg gm = {t->name, m->data.p, m->data.len, from, seqno_u64(m->seqno), src};
  seen_add(g, id, id_len, now);
  if (g->cb.validate) {
    enum goop_gossip_verdict v = g->cb.validate(g->ud, &gm);
    if (v != GOOP_GOSSIP_ACCEPT) {
      if (v == GOOP_GOSSIP_REJECT)
        g->st.msgs_rejected++;
      else
        g->st.msgs_ignored++;
      return;
    }
  }
  /* The validator may have unsubscribed. */
  if (!t->subscribed)
    return;
  mcache_put(g, id, id_len, t, m);
  struct hent *e = ht_find(&g->mcache, id, id_len);
  if (e)
    route(g, t, e->msg, src, &from, false);
  g->st.msgs_delivered++;
  if (g->cb.deliver)
    g->cb.deliver(g->ud, &gm);
}

int goop_gossip_publish(goop_gossip *g, const char *topic, const uint8_t *data, size_t len, goop_tstamp now) {
  goop_return_val_if_fail(g && topic && (data || !len), GOOP_EINVAL);
  size_t tlen = strlen(topic);
  if (!tlen || tlen > GOOP_RPC_MAX_TOPIC)
    return GOOP_EINVAL;
  if (len > GOOP_GOSSIP_MAX_DATA)
    return GOOP_EMSGSIZE;
  struct topic *t = get_topic(g, (const uint8_t *)topic, tlen);
  if (!t)
    return GOOP_ELIMIT;
  uint8_t seq[8];
  uint64_t s = g->seqno++;
  for (int i = 7; i >= 0; i--, s >>= 8)
    seq[i] = (uint8_t)s;
  struct goop_rpc_message m = {.has = GOOP_RPC_HAS_FROM | GOOP_RPC_HAS_DATA | GOOP_RPC_HAS_SEQNO |
                                      GOOP_RPC_HAS_TOPIC,
                               .from = {g->self.bytes, g->self.len},
                               .data = {data, len},
                               .seqno = {seq, 8},
                               .topic = {(const uint8_t *)topic, tlen}};
  uint8_t sig[GOOP_ED25519_SIG_SIZE];
  goop_buf_reset(&g->tmp);
  int rc = goop_buf_append(&g->tmp, SIGN_PREFIX, SIGN_PREFIX_LEN);
  if (!rc)
    rc = goop_rpc_encode_signed_part(&m, &g->tmp);
  if (!rc)
    rc = goop_identity_sign(g->id, g->tmp.data, g->tmp.len, sig);
  if (rc)
    return rc;
  m.signature.p = sig;
  m.signature.len = sizeof(sig);
  m.has |= GOOP_RPC_HAS_SIGNATURE;
  uint8_t id[GOOP_RPC_MAX_MSG_ID];
  size_t id_len = make_id(&m, id, sizeof(id));
  seen_add(g, id, id_len, now);
  mcache_put(g, id, id_len, t, &m);
  struct hent *e = ht_find(&g->mcache, id, id_len);
  if (!e)
    return GOOP_ENOMEM;
  if (!t->subscribed) {
    if (!t->fanout_on) {
      /* New fanout set: up to D mesh-capable peers of the topic. */
      struct pvec c = {NULL, 0, 0};
      for (goop_gossip_peer *p = g->peers; p; p = p->next)
        if (is_mesh_peer(p) && peer_has_sub(p, t))
          (void)pv_add(&c, p);
      shuffle(g, c.v, c.n);
      for (size_t i = 0; i < c.n && t->fanout.n < g->prm.d; i++)
        (void)pv_add(&t->fanout, c.v[i]);
      pv_free(&c);
      t->fanout_on = true;
    }
    t->last_pub = now;
  }
  route(g, t, e->msg, NULL, NULL, true);
  g->st.msgs_published++;
  flush_all(g);
  return 0;
}

/* ---- control -------------------------------------------------------------------------------------- */

static void handle_graft(goop_gossip *g, goop_gossip_peer *p, goop_rpc_bytes name, goop_tstamp now) {
  struct topic *t = find_topic(g, name.p, name.len);
  if (!t || !t->subscribed) {
    if (t)
      pend_prune(g, p, t, g->prm.prune_backoff_us);
    return; /* unknown topic: nothing to name in a PRUNE we could build safely */
  }
  if (pv_has(&t->mesh, p))
    return;
  if (in_backoff(g, t, p, now, false) || t->mesh.n >= g->prm.d_hi) {
    add_backoff(g, t, &p->id, now + g->prm.prune_backoff_us);
    pend_prune(g, p, t, g->prm.prune_backoff_us);
    return;
  }
  (void)pv_add(&t->mesh, p);
}

static void handle_prune(goop_gossip *g, goop_gossip_peer *p, const struct goop_rpc_prune *pr,
                         goop_tstamp now) {
  struct topic *t = find_topic(g, pr->topic.p, pr->topic.len);
  if (!t)
    return;
  pv_del(&t->mesh, p);
  goop_tstamp bo = g->prm.prune_backoff_us;
  if (pr->has_backoff && pr->backoff)
    bo = (goop_tstamp)GOOP_MIN(pr->backoff, (uint64_t)MAX_BACKOFF_S) * 1000000u;
  if (t->subscribed)
    add_backoff(g, t, &p->id, now + bo);
}

/*
 * js-libp2p computes message IDs as protobuf(public key) ‖ seqno; for inlined
 * keys that is our from ‖ seqno without the identity multihash prefix
 * (0x00, length). Check that form too so that js IHAVEs do not make us ask
 * for messages we already have.
 */
static bool seen_alt(goop_gossip *g, goop_rpc_bytes id) {
  if (id.len <= 8 || id.len - 8 > 42)
    return false;
  uint8_t alt[2 + GOOP_RPC_MAX_MSG_ID];
  alt[0] = 0x00;
  alt[1] = (uint8_t)(id.len - 8);
  memcpy(alt + 2, id.p, id.len);
  return seen_has(g, alt, id.len + 2);
}

static void handle_ihave(goop_gossip *g, goop_gossip_peer *p, const struct goop_rpc *rpc) {
  if (!rpc->n_ihave)
    return;
  if (++p->ihave_recv > g->prm.max_ihave_msgs)
    return;
  goop_rpc_bytes *want = NULL;
  size_t n_want = 0;
  for (size_t i = 0; i < rpc->n_ihave; i++) {
    struct topic *t = find_topic(g, rpc->ihave[i].topic.p, rpc->ihave[i].topic.len);
    if (!t || !t->subscribed)
      continue;
    for (size_t j = 0; j < rpc->ihave[i].n_ids && p->iasked < g->prm.max_ihave_len; j++) {
      goop_rpc_bytes idb = rpc->ihave_ids[rpc->ihave[i].first_id + j];
      if (!idb.len || seen_has(g, idb.p, idb.len) || seen_alt(g, idb))
        continue;
      bool dup = false;
      for (size_t k = 0; k < n_want && !dup; k++)
        dup = want[k].len == idb.len && memcmp(want[k].p, idb.p, idb.len) == 0;
      if (dup)
        continue;
      if (!want && !(want = calloc(GOOP_RPC_MAX_IDS, sizeof(*want))))
        return;
      want[n_want++] = idb;
      p->iasked++;
    }
  }
  if (n_want)
    pend_ids(g, p, 2, NULL, want, n_want);
  free(want);
}

static void handle_iwant(goop_gossip *g, goop_gossip_peer *p, const struct goop_rpc *rpc) {
  for (size_t i = 0; i < rpc->n_iwant_ids; i++) {
    struct hent *e = ht_find(&g->mcache, rpc->iwant_ids[i].p, rpc->iwant_ids[i].len);
    if (!e || !retx_allow(e->msg, p->serial))
      continue;
    pend_msg(g, p, e->msg);
    g->st.iwant_answered++;
  }
}

static void handle_sub(goop_gossip *g, goop_gossip_peer *p, const struct goop_rpc_sub *s, goop_tstamp now) {
  if (!s->topic.len)
    return;
  if (s->subscribe) {
    struct topic *t = find_topic(g, s->topic.p, s->topic.len);
    if (t && peer_has_sub(p, t))
      return;
    if (p->n_subs >= g->prm.max_peer_subs)
      return;
    if (!t && !(t = get_topic(g, s->topic.p, s->topic.len)))
      return;
    if (p->n_subs == p->cap_subs) {
      size_t ncap = p->cap_subs ? p->cap_subs * 2 : 8;
      struct topic **v = realloc(p->subs, ncap * sizeof(*v));
      if (!v)
        return;
      p->subs = v;
      p->cap_subs = ncap;
    }
    p->subs[p->n_subs++] = t;
    t->n_peers++;
    /* A new peer of a topic whose mesh is short: graft it now rather than at the next heartbeat. */
    if (t->subscribed && is_mesh_peer(p) && t->mesh.n < g->prm.d_lo && !in_backoff(g, t, p, now, true) &&
        pv_add(&t->mesh, p) == 0)
      pend_graft(g, p, t);
  } else {
    struct topic *t = find_topic(g, s->topic.p, s->topic.len);
    for (size_t i = 0; t && i < p->n_subs; i++) {
      if (p->subs[i] == t) {
        drop_sub(p, i);
        break;
      }
    }
  }
}

static int handle_rpc(goop_gossip *g, goop_gossip_peer *p, const uint8_t *buf, size_t len, goop_tstamp now) {
  struct goop_rpc rpc;
  int rc = goop_rpc_decode(buf, len, &rpc);
  g->st.rpcs_in++;
  if (rc) {
    g->st.rpcs_bad++;
    return rc;
  }
  for (size_t i = 0; i < rpc.n_subs; i++)
    handle_sub(g, p, &rpc.subs[i], now);
  for (size_t i = 0; i < rpc.n_msgs; i++)
    handle_message(g, p, &rpc.msgs[i], now);
  if (is_mesh_peer(p)) {
    handle_ihave(g, p, &rpc);
    handle_iwant(g, p, &rpc);
    for (size_t i = 0; i < rpc.n_graft; i++)
      handle_graft(g, p, rpc.graft[i], now);
    for (size_t i = 0; i < rpc.n_prune; i++)
      handle_prune(g, p, &rpc.prune[i], now);
  }
  goop_rpc_clear(&rpc);
  return 0;
}

int goop_gossip_handle_rpc(goop_gossip *g, goop_gossip_peer *p, const uint8_t *rpc, size_t len,
                           goop_tstamp now) {
  goop_return_val_if_fail(g && p && (rpc || !len), GOOP_EINVAL);
  int rc = handle_rpc(g, p, rpc, len, now);
  flush_all(g);
  return rc;
}

int goop_gossip_input(goop_gossip *g, goop_gossip_peer *p, const uint8_t *buf, size_t len, goop_tstamp now) {
  goop_return_val_if_fail(g && p && (buf || !len), GOOP_EINVAL);
  int rc = 0;
  while (!rc && (len || p->in.len)) {
    if (p->in.len) {
      /* A partial frame is buffered: complete its header, then its payload. */
      uint64_t flen;
      int h = goop_varint_decode(p->in.data, p->in.len, &flen);
      if (h < 0) {
        rc = GOOP_EPARSE;
        break;
      }
      if (h == 0) {
        if (!len)
          break;
        if (goop_buf_append(&p->in, buf, 1) != 0) {
          rc = GOOP_ENOMEM;
          break;
        }
        buf++;
        len--;
        continue;
      }
      if (flen > GOOP_RPC_MAX_READ) {
        rc = GOOP_EMSGSIZE;
        break;
      }
      size_t take = GOOP_MIN(len, (size_t)h + (size_t)flen - p->in.len);
      if (goop_buf_append(&p->in, buf, take) != 0) {
        rc = GOOP_ENOMEM;
        break;
      }
      buf += take;
      len -= take;
      if (p->in.len != (size_t)h + (size_t)flen)
        break;
      rc = handle_rpc(g, p, p->in.data + h, (size_t)flen, now);
      goop_buf_reset(&p->in);
      continue;
    }
    const uint8_t *payload;
    size_t plen;
    int n = goop_frame_decode(buf, len, GOOP_RPC_MAX_READ, &payload, &plen);
    if (n < 0) {
      rc = n == GOOP_EMSGSIZE ? GOOP_EMSGSIZE : GOOP_EPARSE;
      break;
    }
    if (n == 0) {
      /* Incomplete: buffer it (the path above completes header and payload). */
      if (goop_buf_append(&p->in, buf, 1) != 0) {
        rc = GOOP_ENOMEM;
        break;
      }
      buf++;
      len--;
      continue;
    }
    rc = handle_rpc(g, p, payload, plen, now);
    buf += n;
    len -= (size_t)n;
  }
  if (rc)
    goop_buf_reset(&p->in);
  flush_all(g);
  return rc;
}

/* ---- subscriptions ------------------------------------------------------------------------------------ */

int goop_gossip_subscribe(goop_gossip *g, const char *topic, goop_tstamp now) {
  goop_return_val_if_fail(g && topic, GOOP_EINVAL);
  size_t tlen = strlen(topic);
  if (!tlen || tlen > GOOP_RPC_MAX_TOPIC)
    return GOOP_EINVAL;
  struct topic *t = get_topic(g, (const uint8_t *)topic, tlen);
  if (!t)
    return GOOP_ELIMIT;
  if (t->subscribed)
    return 0;
  t->subscribed = true;
  for (goop_gossip_peer *p = g->peers; p; p = p->next)
    pend_sub(g, p, t, true);
  /* Join: fanout peers first, then other peers of the topic, up to D. */
  for (size_t i = 0; i < t->fanout.n && t->mesh.n < g->prm.d; i++)
    if (!in_backoff(g, t, t->fanout.v[i], now, true))
      (void)pv_add(&t->mesh, t->fanout.v[i]);
  pv_free(&t->fanout);
  t->fanout_on = false;
  struct pvec c = {NULL, 0, 0};
  for (goop_gossip_peer *p = g->peers; p; p = p->next)
    if (is_mesh_peer(p) && peer_has_sub(p, t) && !pv_has(&t->mesh, p) && !in_backoff(g, t, p, now, true))
      (void)pv_add(&c, p);
  shuffle(g, c.v, c.n);
  for (size_t i = 0; i < c.n && t->mesh.n < g->prm.d; i++)
    (void)pv_add(&t->mesh, c.v[i]);
  pv_free(&c);
  for (size_t i = 0; i < t->mesh.n; i++)
    pend_graft(g, t->mesh.v[i], t);
  flush_all(g);
  return 0;
}

int goop_gossip_unsubscribe(goop_gossip *g, const char *topic, goop_tstamp now) {
  goop_return_val_if_fail(g && topic, GOOP_EINVAL);
  struct topic *t = find_topic(g, (const uint8_t *)topic, strlen(topic));
  if (!t || !t->subscribed)
    return GOOP_ENOENT;
  t->subscribed = false;
  for (goop_gossip_peer *p = g->peers; p; p = p->next)
    pend_sub(g, p, t, false);
  for (size_t i = 0; i < t->mesh.n; i++) {
    add_backoff(g, t, &t->mesh.v[i]->id, now + g->prm.unsubscribe_backoff_us);
    pend_prune(g, t->mesh.v[i], t, g->prm.unsubscribe_backoff_us);
  }
  pv_free(&t->mesh);
  flush_all(g);
  return 0;
}

bool goop_gossip_subscribed(goop_gossip *g, const char *topic) {
  struct topic *t = find_topic(g, (const uint8_t *)topic, strlen(topic));
  return t && t->subscribed;
}

/* ---- heartbeat ---------------------------------------------------------------------------------------- */

static void maintain_mesh(goop_gossip *g, struct topic *t, goop_tstamp now) {
  if (t->mesh.n < g->prm.d_lo) {
    struct pvec c = {NULL, 0, 0};
    for (goop_gossip_peer *p = g->peers; p; p = p->next)
      if (is_mesh_peer(p) && peer_has_sub(p, t) && !pv_has(&t->mesh, p) && !in_backoff(g, t, p, now, true))
        (void)pv_add(&c, p);
    shuffle(g, c.v, c.n);
    for (size_t i = 0; i < c.n && t->mesh.n < g->prm.d; i++) {
      if (pv_add(&t->mesh, c.v[i]) == 0)
        pend_graft(g, c.v[i], t);
    }
    pv_free(&c);
  } else if (t->mesh.n > g->prm.d_hi) {
    shuffle(g, t->mesh.v, t->mesh.n);
    while (t->mesh.n > g->prm.d) {
      goop_gossip_peer *p = t->mesh.v[--t->mesh.n];
      add_backoff(g, t, &p->id, now + g->prm.prune_backoff_us);
      pend_prune(g, p, t, g->prm.prune_backoff_us);
    }
  }
}

static void maintain_fanout(goop_gossip *g, struct topic *t, goop_tstamp now) {
  if (!t->fanout_on)
    return;
  if (t->last_pub + g->prm.fanout_ttl_us <= now) {
    pv_free(&t->fanout);
    t->fanout_on = false;
    return;
  }
  if (t->fanout.n >= g->prm.d)
    return;
  struct pvec c = {NULL, 0, 0};
  for (goop_gossip_peer *p = g->peers; p; p = p->next)
    if (is_mesh_peer(p) && peer_has_sub(p, t) && !pv_has(&t->fanout, p))
      (void)pv_add(&c, p);
  shuffle(g, c.v, c.n);
  for (size_t i = 0; i < c.n && t->fanout.n < g->prm.d; i++)
    (void)pv_add(&t->fanout, c.v[i]);
  pv_free(&c);
}

static void emit_gossip(goop_gossip *g, struct topic *t) {
  const struct pvec *exclude = t->subscribed ? &t->mesh : &t->fanout;
  if (!t->subscribed && !t->fanout_on)
    return;
  /* Message IDs of the last mcache_gossip windows, newest first. */
  goop_rpc_bytes *ids = NULL;
  size_t n = 0;
  for (struct hent *e = g->mcache.tail; e && g->hb - e->t < g->prm.mcache_gossip; e = e->prev) {
    if (strcmp(e->msg->topic, t->name) != 0)
      continue;
    if (n >= g->prm.max_ihave_len)
      break;
    if (!ids && !(ids = calloc(g->prm.max_ihave_len, sizeof(*ids))))
      return;
    ids[n].p = e->key;
    ids[n].len = e->klen;
    n++;
  }
  if (!n)
    return;
  struct pvec c = {NULL, 0, 0};
  for (goop_gossip_peer *p = g->peers; p; p = p->next)
    if (is_mesh_peer(p) && peer_has_sub(p, t) && !pv_has(exclude, p))
      (void)pv_add(&c, p);
  size_t want = (size_t)(g->prm.gossip_factor * (double)c.n);
  if (want < g->prm.d_lazy)
    want = g->prm.d_lazy;
  shuffle(g, c.v, c.n);
  for (size_t i = 0; i < c.n && i < want; i++)
    pend_ids(g, c.v[i], 1, t, ids, n);
  pv_free(&c);
  free(ids);
}

void goop_gossip_heartbeat(goop_gossip *g, goop_tstamp now) {
  if (!g)
    return;
  for (goop_gossip_peer *p = g->peers; p; p = p->next) {
    p->ihave_recv = 0;
    p->iasked = 0;
  }
  for (struct topic *t = g->topics; t; t = t->next) {
    /* Expired backoffs (kept two heartbeats longer, see in_backoff()). */
    for (size_t i = 0; i < t->n_bo;) {
      if (t->bo[i].until + 2 * g->prm.heartbeat_us <= now)
        t->bo[i] = t->bo[--t->n_bo];
      else
        i++;
    }
    if (t->subscribed)
      maintain_mesh(g, t, now);
    else
      maintain_fanout(g, t, now);
    emit_gossip(g, t);
  }
  /* Shift the message cache and expire the seen cache. */
  g->hb++;
  while (g->mcache.head && g->hb - g->mcache.head->t >= g->prm.mcache_len)
    ht_remove(&g->mcache, g->mcache.head);
  while (g->seen.head && g->seen.head->t + g->prm.seen_ttl_us <= now)
    ht_remove(&g->seen, g->seen.head);
  /* Forget topics nobody uses any more. */
  for (struct topic **pp = &g->topics; *pp;) {
    struct topic *t = *pp;
    if (!topic_in_use(t)) {
      *pp = t->next;
      g->n_topics--;
      topic_free(t);
    } else {
      pp = &t->next;
    }
  }
  g->next_hb = now + g->prm.heartbeat_us;
  flush_all(g);
}

goop_tstamp goop_gossip_next_deadline(const goop_gossip *g) {
  return g->next_hb;
}

void goop_gossip_get_stats(const goop_gossip *g, struct goop_gossip_stats *ret) {
  *ret = g->st;
}

size_t goop_gossip_mesh_size(goop_gossip *g, const char *topic) {
  struct topic *t = find_topic(g, (const uint8_t *)topic, strlen(topic));
  return t ? t->mesh.n : 0;
}

bool goop_gossip_in_mesh(goop_gossip *g, const char *topic, const goop_gossip_peer *p) {
  struct topic *t = find_topic(g, (const uint8_t *)topic, strlen(topic));
  return t && pv_has(&t->mesh, p);
}

size_t goop_gossip_fanout_size(goop_gossip *g, const char *topic) {
  struct topic *t = find_topic(g, (const uint8_t *)topic, strlen(topic));
  return t ? t->fanout.n : 0;
}

bool goop_gossip_peer_subscribed(goop_gossip *g, const goop_gossip_peer *p, const char *topic) {
  struct topic *t = find_topic(g, (const uint8_t *)topic, strlen(topic));
  return t && peer_has_sub(p, t);
}

size_t goop_gossip_topic_peers(goop_gossip *g, const char *topic) {
  struct topic *t = find_topic(g, (const uint8_t *)topic, strlen(topic));
  return t ? t->n_peers : 0;
}

size_t goop_gossip_num_peers(const goop_gossip *g) {
  return g->n_peers;
}
