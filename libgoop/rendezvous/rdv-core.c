/* Rendezvous server core: see rdv-core.h. */
#include "rdv-core.h"

#include "internal.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* ---- validation ---------------------------------------------------------------- */

static bool is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Length of |s| (|n| bytes) without leading and trailing whitespace; |*start| = first kept byte. */
static size_t trimmed(const char *s, size_t n, size_t *start) {
  size_t a = 0, b = n;
  while (a < b && is_space((unsigned char)s[a]))
    a++;
  while (b > a && is_space((unsigned char)s[b - 1]))
    b--;
  if (start)
    *start = a;
  return b - a;
}

/* Quote |s| the way Go's %q does for the common cases (printable ASCII kept, UTF-8 kept, rest escaped). */
static void quote(const char *s, size_t n, char *out, size_t outlen) {
  size_t o = 0;
  if (outlen < 3) {
    if (outlen)
      out[0] = '\0';
    return;
  }
  out[o++] = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char tmp[5];
    const char *piece;
    if (c == '"' || c == '\\') {
      tmp[0] = '\\', tmp[1] = (char)c, tmp[2] = '\0';
      piece = tmp;
    } else if (c == '\n') {
      piece = "\\n";
    } else if (c == '\t') {
      piece = "\\t";
    } else if (c == '\r') {
      piece = "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      snprintf(tmp, sizeof(tmp), "\\x%02x", c);
      piece = tmp;
    } else {
      tmp[0] = (char)c, tmp[1] = '\0';
      piece = tmp;
    }
    size_t pl = strlen(piece);
    if (o + pl + 2 > outlen)
      break;
    memcpy(out + o, piece, pl);
    o += pl;
  }
  out[o++] = '"';
  out[o] = '\0';
}

/* A string member: absent/null → NULL. -1 = wrong type, -2 = no memory. */
static int get_str(json_t *o, const char *key, char **out) {
  json_t *v = json_object_get(o, key);
  *out = NULL;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return -1;
  *out = strndup(json_string_value(v), json_string_length(v));
  return *out ? 0 : -2;
}

static int get_bool(json_t *o, const char *key, bool *out) {
  json_t *v = json_object_get(o, key);
  *out = false;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_boolean(v))
    return -1;
  *out = json_is_true(v);
  return 0;
}

/* Decode into |m| with Go-like semantics. 0, -1 (bad json) or -2 (no memory). |*type| owned by caller. */
static int decode(json_t *o, struct goop_presence_msg *m, char **type) {
  int rc;
  bool ignored;
  if ((rc = get_str(o, "type", type)) != 0 || (rc = get_str(o, "peerId", &m->peer_id)) != 0 ||
      (rc = get_str(o, "content", &m->content)) != 0 || (rc = get_str(o, "email", &m->email)) != 0 ||
      (rc = get_str(o, "avatarHash", &m->avatar_hash)) != 0 ||
      (rc = get_bool(o, "videoDisabled", &m->video_disabled)) != 0 ||
      (rc = get_bool(o, "verified", &ignored)) != 0)
    return rc;
  json_t *ts = json_object_get(o, "ts");
  if (ts && !json_is_null(ts)) {
    if (!json_is_integer(ts))
      return -1;
    m->ts = (int64_t)json_integer_value(ts);
  }
  json_t *addrs = json_object_get(o, "addrs");
  if (addrs && !json_is_null(addrs)) {
    if (!json_is_array(addrs))
      return -1;
    size_t n = json_array_size(addrs);
    if (n) {
      m->addrs = calloc(n, sizeof(char *));
      if (!m->addrs)
        return -2;
    }
    for (size_t i = 0; i < n; i++) {
      json_t *a = json_array_get(addrs, i);
      if (json_is_null(a)) {
        m->addrs[i] = strdup("");
      } else if (json_is_string(a)) {
        m->addrs[i] = strndup(json_string_value(a), json_string_length(a));
      } else {
        return -1;
      }
      if (!m->addrs[i])
        return -2;
      m->n_addrs++;
    }
  }
  return 0;
}

static size_t tlen(const char *s) {
  return s ? trimmed(s, strlen(s), NULL) : 0;
}

/* §9.3 step 4; |reason| filled on failure. */
static bool check(const struct goop_presence_msg *m, const char *type, char *reason, size_t rlen) {
  size_t ts = 0, tl = type ? trimmed(type, strlen(type), &ts) : 0;
  if (tl == 0 || tlen(m->peer_id) == 0) {
    snprintf(reason, rlen, "type and peerId are required");
    return false;
  }
  if (!((tl == 6 && memcmp(type + ts, "online", 6) == 0) ||
        (tl == 6 && memcmp(type + ts, "update", 6) == 0) ||
        (tl == 7 && memcmp(type + ts, "offline", 7) == 0))) {
    char q[96];
    quote(type + ts, tl, q, sizeof(q));
    snprintf(reason, rlen, "unknown type %s", q);
    return false;
  }
  const char *what = NULL;
  if (tlen(m->peer_id) > GOOP_RDV_MAX_PEER_ID)
    what = "peerId too long";
  else if (tlen(m->content) > GOOP_RDV_MAX_CONTENT)
    what = "content too long";
  else if (tlen(m->email) > GOOP_RDV_MAX_EMAIL)
    what = "email too long";
  else if (m->n_addrs > GOOP_RDV_MAX_ADDRS)
    what = "too many addrs";
  for (size_t i = 0; !what && i < m->n_addrs; i++)
    if (tlen(m->addrs[i]) > GOOP_RDV_MAX_ADDR)
      what = "addr too long";
  if (what) {
    snprintf(reason, rlen, "%s", what);
    return false;
  }
  return true;
}

static enum goop_presence_type type_of(const char *type) {
  size_t s, l = trimmed(type, strlen(type), &s);
  if (l == 6 && memcmp(type + s, "online", 6) == 0)
    return GOOP_PRESENCE_ONLINE;
  if (l == 6 && memcmp(type + s, "update", 6) == 0)
    return GOOP_PRESENCE_UPDATE;
  return GOOP_PRESENCE_OFFLINE;
}

void goop__rdv_publish_clear(struct goop_rdv_publish *p) {
  if (!p)
    return;
  goop_presence_msg_clear(&p->msg);
  free(p->json);
  memset(p, 0, sizeof(*p));
}

int goop__rdv_validate_publish(const void *body, size_t len, uint64_t now_ms, bool verified,
                               struct goop_rdv_publish *ret, char *errbuf, size_t errlen) {
  struct goop_rdv_publish p = {0};
  char *type = NULL;
  int status = 500;
  const char *text = "internal error";
  char reason[GOOP_RDV_ERRBUF];
  if (!ret || (!body && len))
    goto fail;
  memset(ret, 0, sizeof(*ret));
  if (len > GOOP_RDV_MAX_BODY) {
    status = 413, text = "request body too large";
    goto fail;
  }
  json_error_t jerr;
  json_t *o = json_loadb(body ? body : "", len, JSON_DECODE_ANY, &jerr);
  if (!o || !(json_is_object(o) || json_is_null(o))) {
    json_decref(o);
    status = 400, text = "bad json";
    goto fail;
  }
  int rc = json_is_object(o) ? decode(o, &p.msg, &type) : 0;
  json_decref(o);
  if (rc == -2)
    goto fail;
  if (rc != 0) {
    status = 400, text = "bad json";
    goto fail;
  }
  char detail[GOOP_RDV_ERRBUF - 16];
  if (!check(&p.msg, type, detail, sizeof(detail))) {
    snprintf(reason, sizeof(reason), "bad message: %s", detail);
    status = 400, text = reason;
    goto fail;
  }
  p.msg.type = type_of(type);
  if (p.msg.ts == 0)
    p.msg.ts = (int64_t)now_ms;
  p.msg.verified = verified;
  if (goop_presence_msg_encode(&p.msg, &p.json, &p.json_len) != 0)
    goto fail;
  free(type);
  *ret = p;
  return 0;
fail:
  free(type);
  goop__rdv_publish_clear(&p);
  if (errbuf && errlen)
    snprintf(errbuf, errlen, "%s", text);
  return status;
}

/* ---- a small string-keyed hash map ------------------------------------------------ */

struct ment {
  struct ment *next;
  void *val;
  char key[];
};

struct smap {
  struct ment **b;
  size_t nb, n;
};

static uint64_t hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static struct ment **smap_slot(const struct smap *m, const char *key) {
  if (!m->nb)
    return NULL;
  struct ment **pp = &m->b[hash(key) & (m->nb - 1)];
  while (*pp && strcmp((*pp)->key, key) != 0)
    pp = &(*pp)->next;
  return pp;
}

static void *smap_get(const struct smap *m, const char *key) {
  struct ment **pp = smap_slot(m, key);
  return pp && *pp ? (*pp)->val : NULL;
}

static int smap_put(struct smap *m, const char *key, void *val) {
  if (m->n + 1 > m->nb) {
    size_t nb = m->nb ? m->nb * 2 : 16;
    struct ment **b = calloc(nb, sizeof(*b));
    if (!b)
      return GOOP_ENOMEM;
    for (size_t i = 0; i < m->nb; i++) {
      for (struct ment *e = m->b[i], *nx; e; e = nx) {
        nx = e->next;
        size_t j = hash(e->key) & (nb - 1);
        e->next = b[j];
        b[j] = e;
      }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
  }
  size_t kl = strlen(key);
  struct ment *e = malloc(sizeof(*e) + kl + 1);
  if (!e)
    return GOOP_ENOMEM;
  memcpy(e->key, key, kl + 1);
  e->val = val;
  size_t j = hash(key) & (m->nb - 1);
  e->next = m->b[j];
  m->b[j] = e;
  m->n++;
  return 0;
}

static void smap_del(struct smap *m, const char *key) {
  struct ment **pp = smap_slot(m, key);
  if (!pp || !*pp)
    return;
  struct ment *e = *pp;
  *pp = e->next;
  free(e);
  m->n--;
}

/* ---- messages, rows, subscribers ------------------------------------------------- */

struct rmsg {
  size_t refs; /* 0 = static */
  size_t len;
  const char *data;
};

static struct rmsg msg_ok = {0, 6, ": ok\n\n"};
static struct rmsg msg_ping = {0, 8, ": ping\n\n"};

static struct rmsg *msg_new(const char *json, size_t len) {
  struct rmsg *m = malloc(sizeof(*m) + len + 9);
  if (!m)
    return NULL;
  char *d = (char *)(m + 1);
  memcpy(d, "data: ", 6);
  memcpy(d + 6, json, len);
  memcpy(d + 6 + len, "\n\n", 3);
  m->refs = 1;
  m->len = len + 8;
  m->data = d;
  return m;
}

static struct rmsg *msg_ref(struct rmsg *m) {
  if (m->refs)
    m->refs++;
  return m;
}

static void msg_unref(struct rmsg *m) {
  if (m && m->refs && --m->refs == 0)
    free(m);
}

struct row {
  char *peer_id;
  enum goop_presence_type type;
  char *content, *email, *avatar_hash;
  int64_t ts;
  uint64_t last_seen, bytes_sent;
  uint64_t recv_base; /* bytes_received = r->bcast_bytes - recv_base */
  bool verified;
  struct rmsg *msg; /* latest framed message (snapshot) */
};

struct ipent {
  size_t subs;
  uint64_t *times; /* ring of accepted publish times */
  size_t cap, head, n;
};

struct goop_rdv_sub {
  goop_rdv *r;
  struct ipent *ip;
  char *ipkey;
  size_t idx; /* in r->subs */
  struct rmsg **snap;
  size_t nsnap, snappos;
  struct rmsg **q;
  size_t qcap, qhead, qn;
  size_t off;  /* bytes of the head message already read */
  size_t pend; /* bytes not yet read */
  uint64_t drops;
  goop_rdv_notify_fn notify;
  void *notify_ud;
};

struct goop_rdv {
  struct goop_rdv_limits lim;
  struct smap peers; /* peer id → struct row */
  struct smap ips;   /* ip → struct ipent */
  goop_rdv_sub **subs;
  size_t nsubs, capsubs;
  uint64_t publishes, drops, rejected, rate_limited, db_errors;
  uint64_t bcast_bytes; /* total size of every broadcast message */
  sqlite3 *db;
  sqlite3_stmt *db_upsert, *db_delete, *db_stale;
  uint64_t next_evict, next_ping;
};

static void db_upsert(goop_rdv *r, const struct row *w);

void goop__rdv_limits_default(struct goop_rdv_limits *ret) {
  ret->sse_total = 100000;
  ret->sse_per_ip = 10;
  ret->queue_msgs = 64;
  ret->max_peers = 100000;
  ret->publish_rate = 60;
  ret->publish_window_ms = 60000;
  ret->peer_ttl_ms = GOOP_RDV_PEER_TTL_MS;
}

void goop__rdv_set_limits(goop_rdv *r, const struct goop_rdv_limits *l) {
  struct goop_rdv_limits d;
  goop__rdv_limits_default(&d);
  if (l) {
#define TAKE(f)                                                                                              \
  if (l->f)                                                                                                  \
  d.f = l->f
    TAKE(sse_total);
    TAKE(sse_per_ip);
    TAKE(queue_msgs);
    TAKE(max_peers);
    TAKE(publish_rate);
    TAKE(publish_window_ms);
    TAKE(peer_ttl_ms);
#undef TAKE
  }
  r->lim = d;
}

int goop__rdv_new(const struct goop_rdv_limits *limits, goop_rdv **ret) {
  goop_rdv *r = calloc(1, sizeof(*r));
  if (!r)
    return GOOP_ENOMEM;
  goop__rdv_set_limits(r, limits);
  *ret = r;
  return 0;
}

static void row_free(struct row *w) {
  if (!w)
    return;
  free(w->peer_id);
  free(w->content);
  free(w->email);
  free(w->avatar_hash);
  msg_unref(w->msg);
  free(w);
}

static void ipent_free(struct ipent *e) {
  if (e) {
    free(e->times);
    free(e);
  }
}

static void sub_free(goop_rdv_sub *s) {
  for (size_t i = s->snappos; i < s->nsnap; i++)
    msg_unref(s->snap[i]);
  free(s->snap);
  for (size_t i = 0; i < s->qn; i++)
    msg_unref(s->q[(s->qhead + i) % s->qcap]);
  free(s->q);
  free(s->ipkey);
  free(s);
}

void goop__rdv_free(goop_rdv *r) {
  if (!r)
    return;
  if (r->db) { /* persist the byte counters that grew since each row's last write */
    sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL);
    for (size_t i = 0; i < r->peers.nb; i++)
      for (struct ment *e = r->peers.b[i]; e; e = e->next)
        db_upsert(r, e->val);
    sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
  }
  for (size_t i = 0; i < r->nsubs; i++)
    sub_free(r->subs[i]);
  free(r->subs);
  for (size_t i = 0; i < r->peers.nb; i++)
    for (struct ment *e = r->peers.b[i], *nx; e; e = nx) {
      nx = e->next;
      row_free(e->val);
      free(e);
    }
  free(r->peers.b);
  for (size_t i = 0; i < r->ips.nb; i++)
    for (struct ment *e = r->ips.b[i], *nx; e; e = nx) {
      nx = e->next;
      ipent_free(e->val);
      free(e);
    }
  free(r->ips.b);
  sqlite3_finalize(r->db_upsert);
  sqlite3_finalize(r->db_delete);
  sqlite3_finalize(r->db_stale);
  sqlite3_close(r->db);
  free(r);
}

void goop__rdv_note_rejected(goop_rdv *r) {
  r->rejected++;
}

size_t goop__rdv_peer_count(const goop_rdv *r) {
  return r->peers.n;
}

/* ---- per-IP state and rate limit --------------------------------------------------- */

static struct ipent *ip_get(goop_rdv *r, const char *ip, bool create) {
  struct ipent *e = smap_get(&r->ips, ip);
  if (e || !create)
    return e;
  e = calloc(1, sizeof(*e));
  if (!e)
    return NULL;
  if (smap_put(&r->ips, ip, e) != 0) {
    free(e);
    return NULL;
  }
  return e;
}

static void ip_prune(struct ipent *e, uint64_t now, uint64_t window) {
  while (e->n > 0) {
    uint64_t t = e->times[e->head];
    if (now >= t && now - t < window)
      break;
    e->head = (e->head + 1) % e->cap;
    e->n--;
  }
}

bool goop__rdv_rate_allow(goop_rdv *r, const char *ip, uint64_t now_ms) {
  struct ipent *e = ip_get(r, ip ? ip : "", true);
  if (!e)
    return false;
  size_t want = r->lim.publish_rate;
  if (e->cap != want) { /* new entry or limit reloaded: start a fresh window */
    uint64_t *t = calloc(want, sizeof(*t));
    if (!t)
      return false;
    free(e->times);
    e->times = t;
    e->cap = want;
    e->head = e->n = 0;
  }
  ip_prune(e, now_ms, r->lim.publish_window_ms);
  if (e->n >= e->cap)
    return false;
  e->times[(e->head + e->n) % e->cap] = now_ms;
  e->n++;
  return true;
}

void goop__rdv_rate_cleanup(goop_rdv *r, uint64_t now_ms) {
  for (size_t i = 0; i < r->ips.nb; i++) {
    struct ment **pp = &r->ips.b[i];
    while (*pp) {
      struct ipent *e = (*pp)->val;
      if (e->cap)
        ip_prune(e, now_ms, r->lim.publish_window_ms);
      if (e->n == 0 && e->subs == 0) {
        struct ment *dead = *pp;
        *pp = dead->next;
        ipent_free(e);
        free(dead);
        r->ips.n--;
      } else {
        pp = &(*pp)->next;
      }
    }
  }
}

/* ---- rows ------------------------------------------------------------------------------ */

static int set_str(char **dst, const char *src) {
  char *n = strdup(src ? src : "");
  if (!n)
    return GOOP_ENOMEM;
  free(*dst);
  *dst = n;
  return 0;
}

static const char *type_str(enum goop_presence_type t) {
  return t == GOOP_PRESENCE_ONLINE ? "online" : t == GOOP_PRESENCE_UPDATE ? "update" : "offline";
}

/* ---- peers.db (§9.9) ----------------------------------------------------------------- */

static void db_upsert(goop_rdv *r, const struct row *w) {
  sqlite3_stmt *st = r->db_upsert;
  if (!st)
    return;
  sqlite3_bind_text(st, 1, w->peer_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, type_str(w->type), -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, w->content, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, w->email, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, w->avatar_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 6, w->ts);
  sqlite3_bind_int64(st, 7, (sqlite3_int64)w->last_seen);
  sqlite3_bind_int64(st, 8, (sqlite3_int64)w->bytes_sent);
  sqlite3_bind_int64(st, 9, (sqlite3_int64)(r->bcast_bytes - w->recv_base));
  sqlite3_bind_int(st, 10, w->verified ? 1 : 0);
  if (sqlite3_step(st) != SQLITE_DONE)
    r->db_errors++;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

static void db_delete(goop_rdv *r, const char *id) {
  sqlite3_stmt *st = r->db_delete;
  if (!st)
    return;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE)
    r->db_errors++;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

static const char db_schema[] =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = NORMAL;"
    "CREATE TABLE IF NOT EXISTS peers(peer_id TEXT PRIMARY KEY, type TEXT NOT NULL DEFAULT '', "
    "content TEXT DEFAULT '', email TEXT DEFAULT '', avatar_hash TEXT DEFAULT '', ts INTEGER DEFAULT 0, "
    "last_seen INTEGER DEFAULT 0, bytes_sent INTEGER DEFAULT 0, bytes_received INTEGER DEFAULT 0, "
    "verified INTEGER DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS registrations(email TEXT PRIMARY KEY, token TEXT NOT NULL, "
    "created_at INTEGER NOT NULL, verified_at INTEGER DEFAULT 0, metadata TEXT DEFAULT '{}');";

static char *col_dup(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return strdup(t ? (const char *)t : "");
}

/* One DB row into memory (skipped when invalid, stale or already known). */
static int db_load_row(goop_rdv *r, sqlite3_stmt *st, uint64_t now_ms) {
  const unsigned char *id = sqlite3_column_text(st, 0), *type = sqlite3_column_text(st, 1);
  uint64_t last_seen = (uint64_t)sqlite3_column_int64(st, 6);
  if (!id || !*id || !type || sqlite3_column_bytes(st, 0) > GOOP_RDV_MAX_PEER_ID)
    return 0;
  if (now_ms > last_seen && now_ms - last_seen > r->lim.peer_ttl_ms)
    return 0;
  if (smap_get(&r->peers, (const char *)id) || r->peers.n >= r->lim.max_peers)
    return 0;
  enum goop_presence_type t;
  if (strcmp((const char *)type, "online") == 0)
    t = GOOP_PRESENCE_ONLINE;
  else if (strcmp((const char *)type, "update") == 0)
    t = GOOP_PRESENCE_UPDATE;
  else
    return 0;
  struct row *w = calloc(1, sizeof(*w));
  if (!w)
    return GOOP_ENOMEM;
  w->peer_id = col_dup(st, 0);
  w->content = col_dup(st, 2);
  w->email = col_dup(st, 3);
  w->avatar_hash = col_dup(st, 4);
  w->type = t;
  w->ts = sqlite3_column_int64(st, 5);
  w->last_seen = last_seen;
  w->bytes_sent = (uint64_t)sqlite3_column_int64(st, 7);
  w->recv_base = r->bcast_bytes - (uint64_t)sqlite3_column_int64(st, 8);
  w->verified = sqlite3_column_int(st, 9) != 0;
  if (!w->peer_id || !w->content || !w->email || !w->avatar_hash)
    goto fail;
  /* The snapshot message of a restored row (addresses are not stored). */
  struct goop_presence_msg m = {.type = t,
                                .peer_id = w->peer_id,
                                .content = w->content,
                                .email = w->email,
                                .avatar_hash = w->avatar_hash,
                                .ts = w->ts,
                                .verified = w->verified};
  char *json = NULL;
  size_t len = 0;
  if (goop_presence_msg_encode(&m, &json, &len) != 0)
    goto fail;
  w->msg = msg_new(json, len);
  free(json);
  if (!w->msg || smap_put(&r->peers, w->peer_id, w) != 0)
    goto fail;
  return 0;
fail:
  row_free(w);
  return GOOP_ENOMEM;
}

int goop__rdv_db_open(goop_rdv *r, const char *path, uint64_t now_ms, char *errbuf, size_t errlen) {
  sqlite3 *db = NULL;
  sqlite3_stmt *sel = NULL;
  if (r->db)
    return goop__errbuf(errbuf, errlen, GOOP_ESTATE, "peer database already open");
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK)
    goto fail;
  sqlite3_busy_timeout(db, 5000);
  if (sqlite3_exec(db, db_schema, NULL, NULL, NULL) != SQLITE_OK)
    goto fail;
  if (sqlite3_prepare_v2(
          db,
          "INSERT INTO peers(peer_id, type, content, email, avatar_hash, ts, last_seen, "
          "bytes_sent, bytes_received, verified) VALUES(?,?,?,?,?,?,?,?,?,?) "
          "ON CONFLICT(peer_id) DO UPDATE SET type = excluded.type, content = excluded.content, "
          "email = excluded.email, avatar_hash = excluded.avatar_hash, ts = excluded.ts, "
          "last_seen = excluded.last_seen, bytes_sent = excluded.bytes_sent, "
          "bytes_received = excluded.bytes_received, verified = excluded.verified",
          -1, &r->db_upsert, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "DELETE FROM peers WHERE peer_id = ?", -1, &r->db_delete, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "DELETE FROM peers WHERE last_seen < ?", -1, &r->db_stale, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db,
                         "SELECT peer_id, type, content, email, avatar_hash, ts, last_seen, bytes_sent, "
                         "bytes_received, verified FROM peers",
                         -1, &sel, NULL) != SQLITE_OK)
    goto fail;
  int rc;
  while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
    if (db_load_row(r, sel, now_ms) != 0) {
      sqlite3_finalize(sel);
      sel = NULL;
      goto fail;
    }
  }
  if (rc != SQLITE_DONE)
    goto fail;
  sqlite3_finalize(sel);
  r->db = db;
  return 0;
fail:
  goop__errbuf(errbuf, errlen, 0, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
  sqlite3_finalize(sel);
  sqlite3_finalize(r->db_upsert);
  sqlite3_finalize(r->db_delete);
  sqlite3_finalize(r->db_stale);
  r->db_upsert = r->db_delete = r->db_stale = NULL;
  sqlite3_close(db);
  return GOOP_EDB;
}

int goop__rdv_store(goop_rdv *r, const struct goop_rdv_publish *p, uint64_t now_ms) {
  const char *id = p->msg.peer_id;
  struct row *w = smap_get(&r->peers, id);
  if (p->msg.type == GOOP_PRESENCE_OFFLINE) {
    if (w) {
      smap_del(&r->peers, id);
      row_free(w);
    }
    db_delete(r, id);
    return 0;
  }
  struct rmsg *m = msg_new(p->json, p->json_len);
  if (!m)
    return GOOP_ENOMEM;
  bool fresh = !w;
  if (fresh) {
    if (r->peers.n >= r->lim.max_peers) {
      msg_unref(m);
      return GOOP_ELIMIT;
    }
    w = calloc(1, sizeof(*w));
    if (!w || set_str(&w->peer_id, id) != 0)
      goto fail;
    w->recv_base = r->bcast_bytes;
  }
  if (set_str(&w->content, p->msg.content) != 0 || set_str(&w->email, p->msg.email) != 0 ||
      set_str(&w->avatar_hash, p->msg.avatar_hash) != 0)
    goto fail;
  if (fresh && smap_put(&r->peers, id, w) != 0)
    goto fail;
  w->type = p->msg.type;
  w->ts = p->msg.ts;
  w->verified = p->msg.verified;
  w->last_seen = now_ms;
  w->bytes_sent += p->json_len;
  msg_unref(w->msg);
  w->msg = m;
  db_upsert(r, w);
  return 0;
fail:
  msg_unref(m);
  if (fresh)
    row_free(w);
  return GOOP_ENOMEM;
}

static int row_cmp(const void *a, const void *b) {
  const struct row *x = *(const struct row *const *)a, *y = *(const struct row *const *)b;
  if (x->type != y->type)
    return x->type < y->type ? -1 : 1;
  if (x->last_seen != y->last_seen)
    return x->last_seen > y->last_seen ? -1 : 1;
  return strcmp(x->peer_id, y->peer_id);
}

/* The rows in §9.5 order (malloc'd array, NULL when empty or out of memory: check |*n|). */
static struct row **sorted_rows(const goop_rdv *r, size_t *n, bool *oom) {
  *n = 0;
  *oom = false;
  if (!r->peers.n)
    return NULL;
  struct row **v = malloc(r->peers.n * sizeof(*v));
  if (!v) {
    *oom = true;
    return NULL;
  }
  for (size_t i = 0; i < r->peers.nb; i++)
    for (struct ment *e = r->peers.b[i]; e; e = e->next)
      v[(*n)++] = e->val;
  qsort(v, *n, sizeof(*v), row_cmp);
  return v;
}

size_t goop__rdv_evict(goop_rdv *r, uint64_t now_ms) {
  size_t n = 0;
  if (r->db_stale && now_ms > r->lim.peer_ttl_ms) {
    sqlite3_bind_int64(r->db_stale, 1, (sqlite3_int64)(now_ms - r->lim.peer_ttl_ms));
    if (sqlite3_step(r->db_stale) != SQLITE_DONE)
      r->db_errors++;
    sqlite3_reset(r->db_stale);
  }
  for (size_t i = 0; i < r->peers.nb; i++) {
    struct ment **pp = &r->peers.b[i];
    while (*pp) {
      struct row *w = (*pp)->val;
      if (now_ms > w->last_seen && now_ms - w->last_seen > r->lim.peer_ttl_ms) {
        struct ment *dead = *pp;
        *pp = dead->next;
        row_free(w);
        free(dead);
        r->peers.n--;
        n++;
      } else {
        pp = &(*pp)->next;
      }
    }
  }
  return n;
}

int goop__rdv_peers_json(goop_rdv *r, goop_buf *out) {
  size_t n;
  bool oom;
  struct row **v = sorted_rows(r, &n, &oom);
  if (oom)
    return GOOP_ENOMEM;
  int rc = GOOP_ENOMEM;
  json_t *arr = json_array();
  if (!arr)
    goto done;
  for (size_t i = 0; i < n; i++) {
    struct row *w = v[i];
    json_t *o = json_object();
    if (!o || json_array_append_new(arr, o) != 0)
      goto done;
    int e = 0;
    e |= json_object_set_new(o, "peer_id", json_string(w->peer_id));
    e |= json_object_set_new(o, "type", json_string(type_str(w->type)));
    e |= json_object_set_new(o, "content", json_string(w->content));
    if (*w->email)
      e |= json_object_set_new(o, "email", json_string(w->email));
    if (*w->avatar_hash)
      e |= json_object_set_new(o, "avatar_hash", json_string(w->avatar_hash));
    e |= json_object_set_new(o, "ts", json_integer(w->ts));
    e |= json_object_set_new(o, "last_seen", json_integer((json_int_t)w->last_seen));
    e |= json_object_set_new(o, "bytes_sent", json_integer((json_int_t)w->bytes_sent));
    e |= json_object_set_new(o, "bytes_received", json_integer((json_int_t)(r->bcast_bytes - w->recv_base)));
    e |= json_object_set_new(o, "verified", json_boolean(w->verified));
    if (e)
      goto done;
  }
  char *s = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (!s)
    goto done;
  rc = goop_buf_append_str(out, s);
  free(s);
done:
  json_decref(arr);
  free(v);
  return rc;
}

/* ---- subscribers ----------------------------------------------------------------------- */

static void sub_push(goop_rdv_sub *s, struct rmsg *m) {
  bool was_empty = goop__rdv_sub_pending(s) == 0;
  s->q[(s->qhead + s->qn) % s->qcap] = msg_ref(m);
  s->qn++;
  s->pend += m->len;
  if (was_empty && s->notify)
    s->notify(s, s->notify_ud);
}

/* Grow a subscriber's ring to the current limit (after a reload), never shrinking. */
static void sub_fit(goop_rdv *r, goop_rdv_sub *s) {
  size_t want = r->lim.queue_msgs;
  if (want <= s->qcap)
    return;
  struct rmsg **q = malloc(want * sizeof(*q));
  if (!q)
    return;
  for (size_t i = 0; i < s->qn; i++)
    q[i] = s->q[(s->qhead + i) % s->qcap];
  free(s->q);
  s->q = q;
  s->qcap = want;
  s->qhead = 0;
}

static bool sub_full(const goop_rdv *r, const goop_rdv_sub *s) {
  return s->qn >= s->qcap || s->qn >= r->lim.queue_msgs;
}

int goop__rdv_broadcast(goop_rdv *r, const char *json, size_t len) {
  r->bcast_bytes += len;
  if (!r->nsubs)
    return 0;
  struct rmsg *m = msg_new(json, len);
  if (!m)
    return GOOP_ENOMEM;
  for (size_t i = 0; i < r->nsubs; i++) {
    goop_rdv_sub *s = r->subs[i];
    sub_fit(r, s);
    if (sub_full(r, s)) {
      s->drops++;
      r->drops++;
    } else {
      sub_push(s, m);
    }
  }
  msg_unref(m);
  return 0;
}

void goop__rdv_ping(goop_rdv *r) {
  for (size_t i = 0; i < r->nsubs; i++) {
    goop_rdv_sub *s = r->subs[i];
    if (!sub_full(r, s))
      sub_push(s, &msg_ping);
  }
}

int goop__rdv_sub_add(goop_rdv *r, const char *ip, goop_rdv_sub **ret, char *errbuf, size_t errlen) {
  if (!ip)
    ip = "";
  struct ipent *e = ip_get(r, ip, false);
  if (r->nsubs >= r->lim.sse_total) {
    r->rejected++;
    goop__errbuf(errbuf, errlen, 0, "too many SSE connections (%zu)", r->lim.sse_total);
    return 429;
  }
  if (e && e->subs >= r->lim.sse_per_ip) {
    r->rejected++;
    goop__errbuf(errbuf, errlen, 0, "too many SSE connections from %s (%zu)", ip, r->lim.sse_per_ip);
    return 429;
  }
  goop_rdv_sub *s = calloc(1, sizeof(*s));
  size_t n;
  bool oom;
  struct row **v = NULL;
  if (!s)
    goto fail;
  s->r = r;
  s->qcap = r->lim.queue_msgs;
  s->q = malloc(s->qcap * sizeof(*s->q));
  s->ipkey = strdup(ip);
  if (!s->q || !s->ipkey)
    goto fail;
  v = sorted_rows(r, &n, &oom);
  if (oom)
    goto fail;
  s->snap = malloc((n + 1) * sizeof(*s->snap));
  if (!s->snap)
    goto fail;
  s->snap[s->nsnap++] = &msg_ok;
  s->pend = msg_ok.len;
  for (size_t i = 0; i < n; i++) {
    s->snap[s->nsnap++] = msg_ref(v[i]->msg);
    s->pend += v[i]->msg->len;
  }
  free(v);
  v = NULL;
  if (r->nsubs == r->capsubs) {
    size_t nc = r->capsubs ? r->capsubs * 2 : 16;
    goop_rdv_sub **ns = realloc(r->subs, nc * sizeof(*ns));
    if (!ns)
      goto fail;
    r->subs = ns;
    r->capsubs = nc;
  }
  if (!e && !(e = ip_get(r, ip, true)))
    goto fail;
  e->subs++;
  s->ip = e;
  s->idx = r->nsubs;
  r->subs[r->nsubs++] = s;
  *ret = s;
  return 0;
fail:
  free(v);
  if (s)
    sub_free(s);
  goop__errbuf(errbuf, errlen, 0, "internal error");
  return 500;
}

void goop__rdv_sub_remove(goop_rdv *r, goop_rdv_sub *s) {
  if (!s)
    return;
  r->subs[s->idx] = r->subs[--r->nsubs];
  r->subs[s->idx]->idx = s->idx;
  if (s->ip && s->ip->subs)
    s->ip->subs--;
  sub_free(s);
}

void goop__rdv_sub_set_notify(goop_rdv_sub *s, goop_rdv_notify_fn fn, void *ud) {
  s->notify = fn;
  s->notify_ud = ud;
}

static struct rmsg *sub_head(const goop_rdv_sub *s) {
  if (s->snappos < s->nsnap)
    return s->snap[s->snappos];
  return s->qn ? s->q[s->qhead] : NULL;
}

static void sub_pop(goop_rdv_sub *s) {
  if (s->snappos < s->nsnap) {
    msg_unref(s->snap[s->snappos++]);
    if (s->snappos == s->nsnap) {
      free(s->snap);
      s->snap = NULL;
      s->snappos = s->nsnap = 0;
    }
  } else {
    msg_unref(s->q[s->qhead]);
    s->qhead = (s->qhead + 1) % s->qcap;
    s->qn--;
  }
  s->off = 0;
}

size_t goop__rdv_sub_read(goop_rdv_sub *s, void *out, size_t max) {
  size_t got = 0;
  struct rmsg *m;
  while (got < max && (m = sub_head(s)) != NULL) {
    size_t k = GOOP_MIN(m->len - s->off, max - got);
    memcpy((uint8_t *)out + got, m->data + s->off, k);
    got += k;
    s->off += k;
    s->pend -= k;
    if (s->off == m->len)
      sub_pop(s);
  }
  return got;
}

size_t goop__rdv_sub_pending(const goop_rdv_sub *s) {
  return s->pend;
}

uint64_t goop__rdv_sub_drops(const goop_rdv_sub *s) {
  return s->drops;
}

/* ---- client IP behind trusted proxies ------------------------------------------------ */

/* Parse an IPv4 or IPv6 address (optionally "[v6]") into 16 bytes (IPv4 mapped). */
static bool ip_parse(const char *s, size_t n, uint8_t out[16], bool *v4) {
  char tmp[64];
  if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
    s++, n -= 2;
  if (n == 0 || n >= sizeof(tmp))
    return false;
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  uint8_t a4[4];
  if (inet_pton(AF_INET, tmp, a4) == 1) {
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, a4, 4);
    *v4 = true;
    return true;
  }
  if (inet_pton(AF_INET6, tmp, out) == 1) {
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    *v4 = memcmp(out, mapped, 12) == 0;
    return true;
  }
  return false;
}

static void ip_format(const uint8_t a[16], bool v4, char *out, size_t outlen) {
  char tmp[INET6_ADDRSTRLEN];
  if (!inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? a + 12 : a, tmp, sizeof(tmp)))
    tmp[0] = '\0';
  snprintf(out, outlen, "%s", tmp);
}

int goop__rdv_nets_parse(const char *const *list, size_t n, struct goop_rdv_net **ret, size_t *ret_n,
                         char *errbuf, size_t errlen) {
  struct goop_rdv_net *v = n ? calloc(n, sizeof(*v)) : NULL;
  if (n && !v)
    return GOOP_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const char *e = list[i] ? list[i] : "";
    const char *slash = strchr(e, '/');
    size_t alen = slash ? (size_t)(slash - e) : strlen(e);
    bool v4;
    unsigned prefix;
    if (!ip_parse(e, alen, v[i].addr, &v4))
      goto bad;
    if (slash) {
      char *end;
      unsigned long p = strtoul(slash + 1, &end, 10);
      if (!slash[1] || *end || p > (v4 ? 32u : 128u))
        goto bad;
      prefix = (unsigned)p + (v4 ? 96 : 0);
    } else {
      prefix = 128;
    }
    v[i].prefix = prefix;
    continue;
  bad:
    free(v);
    return goop__errbuf(errbuf, errlen, GOOP_EINVAL, "bad trusted proxy: %s", e);
  }
  *ret = v;
  *ret_n = n;
  return 0;
}

static bool nets_match_bin(const struct goop_rdv_net *nets, size_t n, const uint8_t a[16]) {
  for (size_t i = 0; i < n; i++) {
    unsigned p = nets[i].prefix, full = p / 8, rest = p % 8;
    if (memcmp(nets[i].addr, a, full) != 0)
      continue;
    if (rest && ((nets[i].addr[full] ^ a[full]) & (uint8_t)(0xff << (8 - rest))))
      continue;
    return true;
  }
  return false;
}

bool goop__rdv_nets_match(const struct goop_rdv_net *nets, size_t n, const char *ip) {
  uint8_t a[16];
  bool v4;
  return ip && ip_parse(ip, strlen(ip), a, &v4) && nets_match_bin(nets, n, a);
}

int goop__rdv_client_ip(const struct goop_rdv_net *nets, size_t n, const char *peer_ip, const char *xff,
                        char *out, size_t outlen) {
  uint8_t cur[16];
  bool v4;
  if (!peer_ip || !ip_parse(peer_ip, strlen(peer_ip), cur, &v4)) {
    snprintf(out, outlen, "%s", peer_ip ? peer_ip : "");
    return GOOP_EINVAL;
  }
  if (xff) {
    size_t len = strnlen(xff, 65536);
    bool cut = len > 4096; /* only the rightmost 4096 bytes, without the partial entry at their start */
    if (cut) {
      xff += len - 4096;
      len = 4096;
    }
    size_t end = len;
    for (int hops = 0; hops < 64 && nets_match_bin(nets, n, cur); hops++) {
      /* the entry ending at |end| */
      size_t start = end;
      while (start > 0 && xff[start - 1] != ',')
        start--;
      if (start == 0 && cut)
        break;
      size_t a = start, b = end;
      while (a < b && is_space((unsigned char)xff[a]))
        a++;
      while (b > a && is_space((unsigned char)xff[b - 1]))
        b--;
      uint8_t next[16];
      bool nv4;
      if (a == b || !ip_parse(xff + a, b - a, next, &nv4))
        break;
      memcpy(cur, next, 16);
      v4 = nv4;
      if (start == 0)
        break;
      end = start - 1;
    }
  }
  ip_format(cur, v4, out, outlen);
  return 0;
}

/* ---- publish, tick, metrics ---------------------------------------------------------- */

int goop__rdv_publish(goop_rdv *r, const char *ip, const void *body, size_t len, uint64_t now_ms,
                      char *errbuf, size_t errlen) {
  if (!goop__rdv_rate_allow(r, ip, now_ms)) {
    r->rejected++;
    r->rate_limited++;
    goop__errbuf(errbuf, errlen, 0, "rate limit exceeded");
    return 429;
  }
  struct goop_rdv_publish p;
  int st = goop__rdv_validate_publish(body, len, now_ms, true, &p, errbuf, errlen);
  if (st) {
    r->rejected++;
    return st;
  }
  int rc = goop__rdv_store(r, &p, now_ms);
  if (rc == GOOP_ELIMIT) {
    r->rejected++;
    goop__rdv_publish_clear(&p);
    goop__errbuf(errbuf, errlen, 0, "peer table full");
    return 503;
  }
  if (rc == 0)
    rc = goop__rdv_broadcast(r, p.json, p.json_len);
  goop__rdv_publish_clear(&p);
  if (rc) {
    goop__errbuf(errbuf, errlen, 0, "internal error");
    return 500;
  }
  r->publishes++;
  return 204;
}

uint64_t goop__rdv_tick(goop_rdv *r, uint64_t now_ms) {
  /* First call, or the clock went back: (re)start both periods from now. */
  if (!r->next_evict || r->next_evict > now_ms + GOOP_RDV_EVICT_INTERVAL_MS ||
      r->next_ping > now_ms + GOOP_RDV_PING_INTERVAL_MS) {
    r->next_evict = now_ms + GOOP_RDV_EVICT_INTERVAL_MS;
    r->next_ping = now_ms + GOOP_RDV_PING_INTERVAL_MS;
  }
  if (now_ms >= r->next_evict) {
    goop__rdv_evict(r, now_ms);
    goop__rdv_rate_cleanup(r, now_ms);
    r->next_evict = now_ms + GOOP_RDV_EVICT_INTERVAL_MS;
  }
  if (now_ms >= r->next_ping) {
    goop__rdv_ping(r);
    r->next_ping = now_ms + GOOP_RDV_PING_INTERVAL_MS;
  }
  return GOOP_MIN(r->next_evict, r->next_ping);
}

void goop__rdv_stats(const goop_rdv *r, struct goop_rdv_stats *ret) {
  ret->subscribers = r->nsubs;
  ret->peers = r->peers.n;
  ret->publishes = r->publishes;
  ret->drops = r->drops;
  ret->rejected = r->rejected;
  ret->rate_limited = r->rate_limited;
  ret->db_errors = r->db_errors;
}

static int metric(goop_buf *out, const char *name, const char *type, const char *help, uint64_t v) {
  char line[512];
  int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type,
                   name, v);
  if (n < 0 || (size_t)n >= sizeof(line))
    return GOOP_EINVAL;
  return goop_buf_append(out, line, (size_t)n);
}

int goop__rdv_metrics(const goop_rdv *r, goop_buf *out) {
  struct goop_rdv_stats st;
  goop__rdv_stats(r, &st);
  int rc;
  if ((rc = metric(out, "goop_rendezvous_subscribers", "gauge", "Connected /events subscribers.",
                   st.subscribers)) != 0 ||
      (rc = metric(out, "goop_rendezvous_peers", "gauge", "Peers known (rows not yet evicted).", st.peers)) !=
          0 ||
      (rc = metric(out, "goop_rendezvous_publishes_total", "counter", "Accepted /publish requests.",
                   st.publishes)) != 0 ||
      (rc = metric(out, "goop_rendezvous_drops_total", "counter",
                   "Messages dropped because a subscriber queue was full.", st.drops)) != 0 ||
      (rc = metric(out, "goop_rendezvous_rejected_total", "counter", "Rejected requests.", st.rejected)) !=
          0 ||
      (rc = metric(out, "goop_rendezvous_rate_limited_total", "counter",
                   "Publishes rejected by the per-IP rate limit.", st.rate_limited)) != 0 ||
      (rc = metric(out, "goop_rendezvous_db_errors_total", "counter", "Failed peers.db writes.",
                   st.db_errors)) != 0)
    return rc;
  return 0;
}
