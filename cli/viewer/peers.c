/*
 * The viewer's peer table (see peers.h).
 */
#include "peers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct listener {
  peers_listener fn;
  void *ud;
};

struct peers {
  struct peer_entry **v;
  size_t n, cap;
  unsigned ttl_s;
  struct event *prune;
  struct listener ls[PEERS_MAX_LISTENERS];
  size_t n_ls;
};

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copy at most PEERS_MAX_FIELD bytes, cut at a UTF-8 boundary. */
static char *dup_field(const char *s) {
  size_t n = strlen(s);
  if (n > PEERS_MAX_FIELD) {
    n = PEERS_MAX_FIELD;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
      n--;
  }
  char *r = malloc(n + 1);
  if (r) {
    memcpy(r, s, n);
    r[n] = 0;
  }
  return r;
}

static void entry_free(struct peer_entry *e) {
  if (!e)
    return;
  free(e->id);
  free(e->label);
  free(e->email);
  for (size_t i = 0; i < e->n_addrs; i++)
    free(e->addrs[i]);
  free(e);
}

static void emit(struct peers *p, enum peers_event ev, const char *id, const struct peer_entry *e) {
  for (size_t i = 0; i < p->n_ls; i++)
    p->ls[i].fn(ev, id, e, p->ls[i].ud);
}

static size_t find(const struct peers *p, const char *id) {
  for (size_t i = 0; i < p->n; i++)
    if (strcmp(p->v[i]->id, id) == 0)
      return i;
  return (size_t)-1;
}

static void drop_at(struct peers *p, size_t i) {
  entry_free(p->v[i]);
  p->v[i] = p->v[--p->n];
}

/* Make room when full: drop the oldest entry without connections. */
static int make_room(struct peers *p) {
  if (p->n < PEERS_MAX)
    return 0;
  size_t best = (size_t)-1;
  for (size_t i = 0; i < p->n; i++) {
    if (p->v[i]->conns)
      continue;
    if (best == (size_t)-1 || p->v[i]->seen_mono_ms < p->v[best]->seen_mono_ms)
      best = i;
  }
  if (best == (size_t)-1)
    return -1;
  struct peer_entry *e = p->v[best];
  char *id = e->id;
  bool was = e->present;
  e->id = NULL;
  drop_at(p, best);
  if (was)
    emit(p, PEERS_EVENT_REMOVE, id, NULL);
  free(id);
  return 0;
}

static struct peer_entry *get_or_add(struct peers *p, const char *id) {
  size_t i = find(p, id);
  if (i != (size_t)-1)
    return p->v[i];
  if (!*id || strlen(id) > 128 || make_room(p) < 0)
    return NULL;
  if (p->n == p->cap) {
    size_t nc = p->cap ? p->cap * 2 : 16;
    struct peer_entry **nv = realloc(p->v, nc * sizeof(*nv));
    if (!nv)
      return NULL;
    p->v = nv;
    p->cap = nc;
  }
  struct peer_entry *e = calloc(1, sizeof(*e));
  if (!e)
    return NULL;
  e->id = strdup(id);
  e->label = strdup("");
  e->email = strdup("");
  if (!e->id || !e->label || !e->email) {
    entry_free(e);
    return NULL;
  }
  p->v[p->n++] = e;
  return e;
}

static void touch(struct peer_entry *e) {
  e->last_seen_ms = wall_ms();
  e->seen_mono_ms = mono_ms();
  e->present = true;
}

static int set_str(char **dst, const char *v) {
  if (!v || strcmp(*dst, v) == 0)
    return 0;
  char *n = dup_field(v);
  if (!n)
    return -1;
  free(*dst);
  *dst = n;
  return 0;
}

static int add_addr(struct peer_entry *e, const char *addr) {
  if (!addr || !*addr || strlen(addr) > 512)
    return 0;
  for (size_t i = 0; i < e->n_addrs; i++)
    if (strcmp(e->addrs[i], addr) == 0)
      return 0;
  char *a = strdup(addr);
  if (!a)
    return -1;
  if (e->n_addrs == PEERS_MAX_ADDRS) { /* forget the oldest */
    free(e->addrs[0]);
    memmove(e->addrs, e->addrs + 1, (PEERS_MAX_ADDRS - 1) * sizeof(e->addrs[0]));
    e->n_addrs--;
  }
  e->addrs[e->n_addrs++] = a;
  return 0;
}

static void on_prune(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct peers *p = arg;
  peers_prune(p, mono_ms());
}

void peers_prune(struct peers *p, uint64_t now) {
  uint64_t ttl = (uint64_t)p->ttl_s * 1000u;
  for (size_t i = 0; i < p->n;) {
    struct peer_entry *e = p->v[i];
    if (e->conns) { /* a live connection counts as being seen */
      e->last_seen_ms = wall_ms();
      e->seen_mono_ms = now;
      i++;
      continue;
    }
    if (!e->present || now < e->seen_mono_ms || now - e->seen_mono_ms <= ttl) {
      i++;
      continue;
    }
    char *id = e->id;
    e->present = false;
    if (e->pinned) {
      emit(p, PEERS_EVENT_REMOVE, id, NULL);
      i++;
      continue;
    }
    e->id = NULL;
    drop_at(p, i);
    emit(p, PEERS_EVENT_REMOVE, id, NULL);
    free(id);
  }
}

struct peers *peers_new(struct event_base *base, unsigned ttl_s) {
  struct peers *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->ttl_s = ttl_s ? ttl_s : 20;
  p->prune = event_new(base, -1, EV_PERSIST, on_prune, p);
  struct timeval one = {1, 0};
  if (!p->prune || event_add(p->prune, &one) != 0) {
    peers_free(p);
    return NULL;
  }
  return p;
}

void peers_free(struct peers *p) {
  if (!p)
    return;
  if (p->prune)
    event_free(p->prune);
  for (size_t i = 0; i < p->n; i++)
    entry_free(p->v[i]);
  free(p->v);
  free(p);
}

int peers_add_listener(struct peers *p, peers_listener fn, void *ud) {
  if (p->n_ls == PEERS_MAX_LISTENERS)
    return -1;
  p->ls[p->n_ls++] = (struct listener){fn, ud};
  return 0;
}

void peers_remove_listener(struct peers *p, peers_listener fn, void *ud) {
  for (size_t i = 0; i < p->n_ls; i++) {
    if (p->ls[i].fn == fn && p->ls[i].ud == ud) {
      p->ls[i] = p->ls[--p->n_ls];
      return;
    }
  }
}

static bool is_hash(const char *h) {
  size_t n = strlen(h);
  if (n != 16 && n != 0)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
      return false;
  return true;
}

int peers_upsert(struct peers *p, const char *id, const struct peer_info *info) {
  struct peer_entry *e = get_or_add(p, id);
  if (!e)
    return -1;
  if (info) {
    if (set_str(&e->label, info->label) < 0 || set_str(&e->email, info->email) < 0)
      return -1;
    if (info->avatar_hash && is_hash(info->avatar_hash))
      snprintf(e->avatar_hash, sizeof(e->avatar_hash), "%s", info->avatar_hash);
    e->video_disabled = info->video_disabled;
    e->verified = info->verified;
  }
  touch(e);
  emit(p, PEERS_EVENT_UPDATE, e->id, e);
  return 0;
}

int peers_connected(struct peers *p, const char *id, const char *addr, bool relayed) {
  struct peer_entry *e = get_or_add(p, id);
  if (!e)
    return -1;
  e->conns++;
  if (relayed)
    e->relayed++;
  (void)add_addr(e, addr);
  touch(e);
  emit(p, PEERS_EVENT_UPDATE, e->id, e);
  return 0;
}

void peers_disconnected(struct peers *p, const char *id, bool relayed) {
  size_t i = find(p, id);
  if (i == (size_t)-1)
    return;
  struct peer_entry *e = p->v[i];
  if (e->conns)
    e->conns--;
  if (relayed && e->relayed)
    e->relayed--;
  if (!e->conns && e->present)
    touch(e); /* the TTL runs from the end of the connection */
  else if (e->present)
    emit(p, PEERS_EVENT_UPDATE, e->id, e); /* the kind of connection may have changed */
}

const char *peers_conn_kind(const struct peer_entry *e) {
  if (!e->conns)
    return "none";
  return e->conns > e->relayed ? "direct" : "relayed";
}

int peers_set_label(struct peers *p, const char *id, const char *label) {
  size_t i = find(p, id);
  if (i == (size_t)-1 || !label)
    return -1;
  struct peer_entry *e = p->v[i];
  if (strcmp(e->label, label) == 0)
    return 0;
  if (set_str(&e->label, label) < 0)
    return -1;
  if (e->present)
    emit(p, PEERS_EVENT_UPDATE, e->id, e);
  return 0;
}

int peers_add_addr(struct peers *p, const char *id, const char *addr) {
  size_t i = find(p, id);
  if (i == (size_t)-1)
    return -1;
  return add_addr(p->v[i], addr);
}

int peers_pin(struct peers *p, const char *id, const char *addr) {
  struct peer_entry *e = get_or_add(p, id);
  if (!e)
    return -1;
  e->pinned = true;
  return add_addr(e, addr);
}

void peers_remove(struct peers *p, const char *id) {
  size_t i = find(p, id);
  if (i == (size_t)-1)
    return;
  struct peer_entry *e = p->v[i];
  bool was = e->present;
  e->present = false;
  if (was)
    emit(p, PEERS_EVENT_REMOVE, e->id, NULL);
  if (!e->pinned && !e->conns)
    drop_at(p, find(p, id));
}

const struct peer_entry *peers_get(const struct peers *p, const char *id) {
  size_t i = find(p, id);
  return i == (size_t)-1 ? NULL : p->v[i];
}

size_t peers_count(const struct peers *p) {
  size_t n = 0;
  for (size_t i = 0; i < p->n; i++)
    n += p->v[i]->present;
  return n;
}

void peers_format_time(int64_t unix_ms, char *buf, size_t len) {
  time_t t = (time_t)(unix_ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char date[32];
  strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, len, "%s.%03dZ", date, (int)(unix_ms % 1000));
}

json_t *peers_entry_json(const struct peer_entry *e) {
  char ts[48];
  peers_format_time(e->last_seen_ms, ts, sizeof(ts));
  return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:s}", "ID", e->id, "Content", e->label, "Email",
                   e->email, "AvatarHash", e->avatar_hash, "VideoDisabled", e->video_disabled, "Verified",
                   e->verified, "LastSeen", ts, "Conn", peers_conn_kind(e));
}

static int by_id(const void *a, const void *b) {
  const struct peer_entry *x = *(const struct peer_entry *const *)a,
                          *y = *(const struct peer_entry *const *)b;
  return strcmp(x->id, y->id);
}

json_t *peers_list_json(const struct peers *p) {
  json_t *arr = json_array();
  if (!arr)
    return NULL;
  if (!p->n)
    return arr;
  struct peer_entry **s = malloc(p->n * sizeof(*s));
  if (!s) {
    json_decref(arr);
    return NULL;
  }
  size_t n = 0;
  for (size_t i = 0; i < p->n; i++)
    if (p->v[i]->present)
      s[n++] = p->v[i];
  qsort(s, n, sizeof(*s), by_id);
  for (size_t i = 0; i < n; i++) {
    if (json_array_append_new(arr, peers_entry_json(s[i])) != 0) {
      json_decref(arr);
      arr = NULL;
      break;
    }
  }
  free(s);
  return arr;
}
