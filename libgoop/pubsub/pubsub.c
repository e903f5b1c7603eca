/*
 * Pubsub glue: runs the GossipSub core on a goop_host. One outbound stream per
 * peer (we only write to it, and never half-close it), RPCs are read only from
 * the stream the remote opened, one heartbeat timer on the host's loop.
 */
#include <goop/pubsub.h>

#include <event2/event.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/internal.h"
#include "gossipsub.h"
#include "transport/transport-internal.h"

#define OPEN_TIMEOUT_MS 10000u
#define READ_CHUNK 16384u

struct ps_topic {
  struct ps_topic *next;
  char *name;
  goop_pubsub_message_cb cb;
  void *cb_ud;
  goop_pubsub_validator val;
  void *val_ud;
};

struct ps_open;

struct ps_peer {
  struct ps_peer *next;
  goop_pubsub *ps;
  goop_peer_id id;
  goop_gossip_peer *gp; /* core peer, once a stream exists */
  goop_stream *out;     /* our outbound stream (we hold a reference) */
  goop_stream *in;      /* the stream the remote opened */
  struct ps_open *opening;
  bool wrote; /* bytes went out on an outbound stream (a later one starts over) */
  bool dead;  /* remove at the next reap */
};

/* A pending goop_host_new_stream(); outlives the pubsub object if needed. */
struct ps_open {
  goop_pubsub *ps; /* NULL once orphaned */
  struct ps_peer *pp;
};

struct goop_pubsub {
  goop_host *host;
  goop_ctx *ctx;
  goop_gossip *g;
  struct event *hb_ev, *reap_ev;
  struct ps_peer *peers;
  struct ps_topic *topics;
  uint64_t peers_n;
  int events_id; /* goop_host_add_events handle */
};

static const char *const protos[] = {"/meshsub/1.1.0", "/meshsub/1.0.0", "/floodsub/1.0.0"};

static struct ps_topic *find_topic(goop_pubsub *ps, const char *name) {
  for (struct ps_topic *t = ps->topics; t; t = t->next)
    if (strcmp(t->name, name) == 0)
      return t;
  return NULL;
}

static struct ps_topic *get_topic(goop_pubsub *ps, const char *name) {
  struct ps_topic *t = find_topic(ps, name);
  if (t)
    return t;
  t = calloc(1, sizeof(*t));
  if (!t || !(t->name = goop__strdup(name))) {
    free(t);
    return NULL;
  }
  t->next = ps->topics;
  ps->topics = t;
  return t;
}

static void drop_topic_if_unused(goop_pubsub *ps, struct ps_topic *t) {
  if (t->cb || t->val)
    return;
  for (struct ps_topic **pp = &ps->topics; *pp; pp = &(*pp)->next) {
    if (*pp == t) {
      *pp = t->next;
      free(t->name);
      free(t);
      return;
    }
  }
}

static struct ps_peer *find_peer(goop_pubsub *ps, const goop_peer_id *id) {
  for (struct ps_peer *p = ps->peers; p; p = p->next)
    if (goop_peer_id_equal(&p->id, id))
      return p;
  return NULL;
}

static struct ps_peer *get_peer(goop_pubsub *ps, const goop_peer_id *id) {
  struct ps_peer *p = find_peer(ps, id);
  if (p)
    return p;
  p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->ps = ps;
  p->id = *id;
  p->next = ps->peers;
  ps->peers = p;
  return p;
}

static void close_stream(goop_stream **sp) {
  if (!*sp)
    return;
  goop_stream_set_callbacks(*sp, NULL, NULL);
  goop_stream_reset(*sp);
  goop_stream_unref(*sp);
  *sp = NULL;
}

/* A stream whose connection already closed (its error callback may not have run yet). */
static bool stale(const goop_stream *s) {
  return s && goop_conn_is_closed(goop_stream_conn(s));
}

static void schedule_reap(goop_pubsub *ps) {
  event_active(ps->reap_ev, EV_TIMEOUT, 0);
}

static void mark_dead(struct ps_peer *pp) {
  pp->dead = true;
  schedule_reap(pp->ps);
}

/* Remove peers marked dead (never from inside a core call). */
static void reap(goop_pubsub *ps) {
  for (struct ps_peer **pp = &ps->peers; *pp;) {
    struct ps_peer *p = *pp;
    if (!p->dead) {
      pp = &p->next;
      continue;
    }
    *pp = p->next;
    close_stream(&p->out);
    close_stream(&p->in);
    if (p->opening)
      p->opening->pp = NULL;
    if (p->gp) {
      goop_gossip_remove_peer(ps->g, p->gp);
      ps->peers_n--;
    }
    free(p);
  }
}

static void reap_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  reap(arg);
}

/* Write what the core queued for |pp| until the stream pushes back. */
static void pump_out(struct ps_peer *pp) {
  if (!pp->out || !pp->gp || pp->dead)
    return;
  for (;;) {
    size_t len;
    const uint8_t *d = goop_gossip_output_peek(pp->gp, &len);
    if (!len)
      return;
    ssize_t w = goop_stream_write(pp->out, d, len);
    if (w == GOOP_EAGAIN)
      return;
    if (w <= 0) {
      goop__log_debug(pp->ps->ctx, "pubsub: write failed: %s", goop_strerror((int)w));
      mark_dead(pp);
      return;
    }
    goop_gossip_output_consume(pp->gp, (size_t)w);
    pp->wrote = true;
  }
}

/* ---- core callbacks ---- */

static void fill_msg(struct goop_pubsub_message *out, const struct goop_gossip_msg *m) {
  out->topic = m->topic;
  out->data = m->data;
  out->len = m->len;
  out->from = m->from;
  out->seqno = m->seqno;
  if (m->src)
    out->received_from = *goop_gossip_peer_id(m->src);
  else
    memset(&out->received_from, 0, sizeof(out->received_from));
}

static void core_deliver(void *ud, const struct goop_gossip_msg *m) {
  goop_pubsub *ps = ud;
  struct ps_topic *t = find_topic(ps, m->topic);
  if (!t || !t->cb)
    return;
  struct goop_pubsub_message pm;
  fill_msg(&pm, m);
  t->cb(ps, &pm, t->cb_ud);
}

static enum goop_gossip_verdict core_validate(void *ud, const struct goop_gossip_msg *m) {
  goop_pubsub *ps = ud;
  struct ps_topic *t = find_topic(ps, m->topic);
  if (!t || !t->val)
    return GOOP_GOSSIP_ACCEPT;
  struct goop_pubsub_message pm;
  fill_msg(&pm, m);
  switch (t->val(ps, &pm, t->val_ud)) {
  case GOOP_PUBSUB_ACCEPT:
    return GOOP_GOSSIP_ACCEPT;
  case GOOP_PUBSUB_IGNORE:
    return GOOP_GOSSIP_IGNORE;
  default:
    return GOOP_GOSSIP_REJECT;
  }
}

static void core_output(void *ud, goop_gossip_peer *gp, void *peer_ud) {
  (void)ud, (void)gp;
  pump_out(peer_ud);
}

/* ---- streams ---- */

static int ensure_core_peer(struct ps_peer *pp, enum goop_gossip_proto proto) {
  if (pp->gp)
    return 0;
  goop_gossip_peer *gp;
  int rc = goop_gossip_add_peer(pp->ps->g, &pp->id, proto, pp, goop__now_us(), &gp);
  if (rc)
    return rc;
  pp->gp = gp;
  pp->ps->peers_n++;
  return 0;
}

static void in_readable(goop_stream *s, void *ud) {
  struct ps_peer *pp = ud;
  goop_pubsub *ps = pp->ps;
  uint8_t buf[READ_CHUNK];
  while (!pp->dead && pp->in == s) {
    ssize_t n = goop_stream_read(s, buf, sizeof(buf));
    if (n == GOOP_EAGAIN)
      return;
    if (n <= 0) {
      /* End or error of the remote's stream: the peer may open a new one. */
      close_stream(&pp->in);
      if (!pp->out && !pp->opening)
        mark_dead(pp);
      return;
    }
    int rc = goop_gossip_input(ps->g, pp->gp, buf, (size_t)n, goop__now_us());
    if (rc) {
      char id[GOOP_PEER_ID_STR_MAX];
      goop_peer_id_to_string(&pp->id, id, sizeof(id));
      goop__log_info(ps->ctx, "pubsub: bad RPC from %s (%s), resetting its stream", id, goop_strerror(rc));
      close_stream(&pp->in);
      if (!pp->out && !pp->opening)
        mark_dead(pp);
      return;
    }
  }
}

static void in_error(goop_stream *s, int err, void *ud) {
  struct ps_peer *pp = ud;
  (void)err;
  if (pp->in != s)
    return;
  close_stream(&pp->in);
  if (!pp->out && !pp->opening)
    mark_dead(pp);
}

static const struct goop_stream_callbacks in_cbs = {GOOP_STREAM_CALLBACKS_V1, in_readable, NULL, in_error};

static int open_out(struct ps_peer *pp, size_t first, size_t last);

static void out_readable(goop_stream *s, void *ud) {
  (void)ud;
  /* Nothing is expected on our outbound stream; drain and ignore (EOF too). */
  uint8_t buf[1024];
  while (goop_stream_read(s, buf, sizeof(buf)) > 0) {
  }
}

static void out_writable(goop_stream *s, void *ud) {
  (void)s;
  pump_out(ud);
}

static void out_error(goop_stream *s, int err, void *ud) {
  struct ps_peer *pp = ud;
  if (pp->out != s)
    return;
  goop__log_debug(pp->ps->ctx, "pubsub: outbound stream failed: %s", goop_strerror(err));
  close_stream(&pp->out);
  /* The remote still talks to us on a live connection: open a new stream once. */
  if (!pp->in || stale(pp->in) || open_out(pp, 0, GOOP_ARRAY_SIZE(protos) - 1) != 0)
    mark_dead(pp);
}

static const struct goop_stream_callbacks out_cbs = {GOOP_STREAM_CALLBACKS_V1, out_readable, out_writable,
                                                     out_error};

static void open_done(goop_host *host, int status, goop_stream *s, void *ud) {
  (void)host;
  struct ps_open *op = ud;
  struct ps_peer *pp = op->pp;
  goop_pubsub *ps = op->ps;
  free(op);
  if (!ps || !pp) {
    if (status == 0 && s) {
      goop_stream_reset(s);
      goop_stream_unref(s);
    }
    return;
  }
  pp->opening = NULL;
  enum goop_gossip_proto proto;
  if (status != 0 || pp->dead || goop_gossip_proto_parse(goop_stream_protocol(s), &proto) != 0) {
    if (status == 0 && s) {
      goop_stream_reset(s);
      goop_stream_unref(s);
    }
    char id[GOOP_PEER_ID_STR_MAX];
    goop_peer_id_to_string(&pp->id, id, sizeof(id));
    goop__log_debug(ps->ctx, "pubsub: cannot open a stream to %s: %s", id, goop_strerror(status));
    if (!pp->in)
      mark_dead(pp);
    return;
  }
  pp->out = s;
  goop_stream_set_idle_timeout(s, 0);
  goop_stream_set_callbacks(s, &out_cbs, pp);
  if (pp->gp) {
    goop_gossip_peer_set_proto(ps->g, pp->gp, proto);
    if (pp->wrote)
      goop_gossip_peer_restart_output(ps->g, pp->gp);
  } else if (ensure_core_peer(pp, proto) != 0) {
    mark_dead(pp);
    return;
  }
  pump_out(pp);
}

/* Open our outbound stream, proposing |first| (an index into protos) and below. */
static int open_out(struct ps_peer *pp, size_t first, size_t last) {
  if (pp->out || pp->opening || pp->dead)
    return 0;
  struct ps_open *op = calloc(1, sizeof(*op));
  if (!op)
    return GOOP_ENOMEM;
  op->ps = pp->ps;
  op->pp = pp;
  int rc = goop_host_new_stream(pp->ps->host, &pp->id, protos + first, last - first + 1, OPEN_TIMEOUT_MS,
                                open_done, op);
  if (rc) {
    free(op);
    return rc;
  }
  pp->opening = op;
  return 0;
}

static void stream_handler(goop_host *host, goop_stream *s, void *ud) {
  (void)host;
  goop_pubsub *ps = ud;
  goop_peer_id id;
  enum goop_gossip_proto proto;
  goop_stream_remote_peer(s, &id);
  reap(ps);
  struct ps_peer *pp = NULL;
  if (goop_gossip_proto_parse(goop_stream_protocol(s), &proto) != 0 || !(pp = get_peer(ps, &id)) ||
      pp->dead) {
    goop_stream_reset(s);
    goop_stream_unref(s);
    return;
  }
  /* A newer inbound stream replaces the older one; a stream on a closed connection is gone. */
  close_stream(&pp->in);
  if (stale(pp->out))
    close_stream(&pp->out);
  pp->in = s;
  goop_stream_set_idle_timeout(s, 0);
  goop_stream_set_callbacks(s, &in_cbs, pp);
  if (ensure_core_peer(pp, proto) != 0) {
    mark_dead(pp);
    return;
  }
  /* The remote speaks |proto|: answer with our own stream. */
  if (open_out(pp, (size_t)proto, GOOP_ARRAY_SIZE(protos) - 1) != 0 && !pp->out)
    goop__log_debug(ps->ctx, "pubsub: cannot open an outbound stream");
}

/* ---- heartbeat ---- */

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  goop_pubsub *ps = arg;
  goop_gossip_heartbeat(ps->g, goop__now_us());
}

/* ---- public API ---- */

int goop_pubsub_new(goop_host *host, goop_pubsub **ret) {
  goop_return_val_if_fail(host && ret, GOOP_EINVAL);
  int rc = GOOP_ENOMEM;
  goop_pubsub *ps = calloc(1, sizeof(*ps));
  if (!ps)
    return GOOP_ENOMEM;
  ps->host = host;
  ps->ctx = host->ctx;
  uint64_t seed;
  if (RAND_bytes((unsigned char *)&seed, sizeof(seed)) != 1)
    seed = goop__now_us();
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct goop_gossip_config cfg = {.id = host->id,
                                   .params = NULL,
                                   .cb = {core_deliver, core_validate, core_output},
                                   .ud = ps,
                                   .seqno_start = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
                                   .rng_seed = seed | 1};
  if ((rc = goop_gossip_new(&cfg, &ps->g)) != 0)
    goto fail;
  rc = GOOP_ENOMEM;
  ps->hb_ev = event_new(host->base, -1, EV_PERSIST, heartbeat_cb, ps);
  ps->reap_ev = evtimer_new(host->base, reap_cb, ps);
  if (!ps->hb_ev || !ps->reap_ev)
    goto fail;
  struct timeval tv = {1, 0};
  if (event_add(ps->hb_ev, &tv) != 0)
    goto fail;
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(protos); i++) {
    if ((rc = goop_host_set_stream_handler(host, protos[i], stream_handler, ps)) != 0) {
      for (size_t j = 0; j < i; j++)
        (void)goop_host_remove_stream_handler(host, protos[j]);
      goto fail;
    }
  }
  /* Follow identified connections ourselves: peers that list a pubsub protocol join. */
  struct goop_host_events ev = {.version = GOOP_HOST_EVENTS_V1, .on_identified = goop_pubsub_host_identified};
  if ((rc = goop_host_add_events(host, &ev, ps, &ps->events_id)) != 0) {
    for (size_t j = 0; j < GOOP_ARRAY_SIZE(protos); j++)
      (void)goop_host_remove_stream_handler(host, protos[j]);
    goto fail;
  }
  *ret = ps;
  return 0;
fail:
  if (ps->hb_ev)
    event_free(ps->hb_ev);
  if (ps->reap_ev)
    event_free(ps->reap_ev);
  goop_gossip_free(ps->g);
  free(ps);
  return rc;
}

void goop_pubsub_free(goop_pubsub *ps) {
  if (!ps)
    return;
  if (ps->events_id)
    (void)goop_host_remove_events(ps->host, ps->events_id);
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(protos); i++)
    (void)goop_host_remove_stream_handler(ps->host, protos[i]);
  while (ps->peers) {
    struct ps_peer *p = ps->peers;
    ps->peers = p->next;
    close_stream(&p->out);
    close_stream(&p->in);
    if (p->opening)
      p->opening->ps = NULL;
    free(p);
  }
  while (ps->topics) {
    struct ps_topic *t = ps->topics;
    ps->topics = t->next;
    free(t->name);
    free(t);
  }
  event_free(ps->hb_ev);
  event_free(ps->reap_ev);
  goop_gossip_free(ps->g);
  free(ps);
}

int goop_pubsub_subscribe(goop_pubsub *ps, const char *topic, goop_pubsub_message_cb cb, void *user_data) {
  goop_return_val_if_fail(ps && topic && cb, GOOP_EINVAL);
  size_t len = strlen(topic);
  if (!len || len > GOOP_RPC_MAX_TOPIC)
    return GOOP_EINVAL;
  struct ps_topic *t = get_topic(ps, topic);
  if (!t)
    return GOOP_ENOMEM;
  int rc = goop_gossip_subscribe(ps->g, topic, goop__now_us());
  if (rc) {
    drop_topic_if_unused(ps, t);
    return rc;
  }
  t->cb = cb;
  t->cb_ud = user_data;
  return 0;
}

int goop_pubsub_unsubscribe(goop_pubsub *ps, const char *topic) {
  goop_return_val_if_fail(ps && topic, GOOP_EINVAL);
  int rc = goop_gossip_unsubscribe(ps->g, topic, goop__now_us());
  struct ps_topic *t = find_topic(ps, topic);
  if (t) {
    t->cb = NULL;
    t->cb_ud = NULL;
    drop_topic_if_unused(ps, t);
  }
  return rc;
}

int goop_pubsub_set_validator(goop_pubsub *ps, const char *topic, goop_pubsub_validator fn, void *user_data) {
  goop_return_val_if_fail(ps && topic && *topic, GOOP_EINVAL);
  struct ps_topic *t = fn ? get_topic(ps, topic) : find_topic(ps, topic);
  if (!t)
    return fn ? GOOP_ENOMEM : 0;
  t->val = fn;
  t->val_ud = fn ? user_data : NULL;
  drop_topic_if_unused(ps, t);
  return 0;
}

int goop_pubsub_publish(goop_pubsub *ps, const char *topic, const void *data, size_t len) {
  goop_return_val_if_fail(ps && topic && (data || !len), GOOP_EINVAL);
  return goop_gossip_publish(ps->g, topic, data, len, goop__now_us());
}

int goop_pubsub_peer_connected(goop_pubsub *ps, const goop_peer_id *peer) {
  goop_return_val_if_fail(ps && peer, GOOP_EINVAL);
  size_t best = GOOP_ARRAY_SIZE(protos), worst = 0;
  const char *p;
  for (size_t i = 0; (p = goop_host_peer_protocol(ps->host, peer, i)) != NULL; i++) {
    for (size_t j = 0; j < GOOP_ARRAY_SIZE(protos); j++) {
      if (strcmp(p, protos[j]) == 0) {
        best = GOOP_MIN(best, j);
        worst = GOOP_MAX(worst, j);
      }
    }
  }
  if (best == GOOP_ARRAY_SIZE(protos))
    return GOOP_ENOTSUP;
  reap(ps);
  struct ps_peer *pp = get_peer(ps, peer);
  if (!pp)
    return GOOP_ENOMEM;
  if (stale(pp->out))
    close_stream(&pp->out);
  if (stale(pp->in))
    close_stream(&pp->in);
  int rc = open_out(pp, best, worst);
  if (rc && !pp->in && !pp->out)
    mark_dead(pp);
  return rc;
}

void goop_pubsub_host_identified(goop_host *host, goop_conn *conn, void *user_data) {
  (void)host;
  goop_peer_id id;
  goop_conn_remote_peer(conn, &id);
  (void)goop_pubsub_peer_connected(user_data, &id);
}

size_t goop_pubsub_topic_peers(goop_pubsub *ps, const char *topic) {
  if (!ps || !topic)
    return 0;
  return goop_gossip_topic_peers(ps->g, topic);
}

void goop_pubsub_get_stats(const goop_pubsub *ps, struct goop_pubsub_stats *ret) {
  struct goop_gossip_stats st;
  goop_gossip_get_stats(ps->g, &st);
  memset(ret, 0, sizeof(*ret));
  ret->peers = ps->peers_n;
  ret->rpcs_in = st.rpcs_in;
  ret->rpcs_bad = st.rpcs_bad;
  ret->rpcs_out = st.rpcs_out;
  ret->msgs_published = st.msgs_published;
  ret->msgs_delivered = st.msgs_delivered;
  ret->msgs_forwarded = st.msgs_forwarded;
  ret->msgs_duplicate = st.msgs_duplicate;
  ret->msgs_invalid = st.msgs_invalid;
  ret->msgs_rejected = st.msgs_rejected;
  ret->msgs_ignored = st.msgs_ignored;
  ret->msgs_unsubscribed = st.msgs_unsubscribed;
  ret->frames_dropped = st.frames_dropped;
}
