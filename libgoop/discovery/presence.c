/*
 * Goop² presence over GossipSub: message JSON (encode/parse with limits),
 * the online/update/offline schedule, the anti-forgery validator and the
 * table of present peers with TTL pruning.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <goop/presence.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "core/buf.h"
#include "internal.h"

#define DEFAULT_TOPIC "goop.presence.v1"
#define DEFAULT_HEARTBEAT 5
#define DEFAULT_TTL 20
#define DEFAULT_MAX_PEERS 4096
#define MAX_OWN_ADDRS 64

/* ---- JSON encoding ---------------------------------------------------------- */

/* A goop_buf whose first append failure sticks (checked once at the end). */
struct sbuf {
  goop_buf g;
  int err;
};

static void sb_put(struct sbuf *b, const char *s, size_t n) {
  if (!b->err)
    b->err = goop_buf_append(&b->g, s, n);
}

static void sb_puts(struct sbuf *b, const char *s) {
  sb_put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at |s| (|n| bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  unsigned min;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, min = 0x10000;
  else
    return 0;
  if (n < len)
    return 0;
  unsigned cp = c & (0xff >> (len + 1));
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

/* A JSON string the way Go's encoding/json writes it (HTML-safe escapes, invalid UTF-8 → U+FFFD). */
static void sb_json_str(struct sbuf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s);
  sb_put(b, "\"", 1);
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    if (c < 0x80) {
      char esc[7];
      if (c == '"' || c == '\\') {
        esc[0] = '\\', esc[1] = (char)c;
        sb_put(b, esc, 2);
      } else if (c == '\n') {
        sb_put(b, "\\n", 2);
      } else if (c == '\r') {
        sb_put(b, "\\r", 2);
      } else if (c == '\t') {
        sb_put(b, "\\t", 2);
      } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
        memcpy(esc, "\\u00", 4);
        esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
        sb_put(b, esc, 6);
      } else {
        sb_put(b, (const char *)p + i, 1);
      }
      i++;
      continue;
    }
    size_t l = utf8_seq(p + i, n - i);
    if (l == 0) {
      sb_puts(b, "\\ufffd");
      i++;
    } else if (l == 3 && p[i] == 0xe2 && p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
      sb_puts(b, p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029");
      i += 3;
    } else {
      sb_put(b, (const char *)p + i, l);
      i += l;
    }
  }
  sb_put(b, "\"", 1);
}

static const char *type_name(enum goop_presence_type t) {
  switch (t) {
  case GOOP_PRESENCE_ONLINE:
    return "online";
  case GOOP_PRESENCE_UPDATE:
    return "update";
  case GOOP_PRESENCE_OFFLINE:
    return "offline";
  default:
    return NULL;
  }
}

static bool nonempty(const char *s) {
  return s && *s;
}

static void sb_str_field(struct sbuf *b, const char *key, const char *val) {
  if (!nonempty(val))
    return;
  sb_put(b, ",\"", 2);
  sb_puts(b, key);
  sb_put(b, "\":", 2);
  sb_json_str(b, val);
}

int goop_presence_msg_encode(const struct goop_presence_msg *m, char **ret, size_t *ret_len) {
  goop_return_val_if_fail(m && ret, GOOP_EINVAL);
  const char *tn = type_name(m->type);
  if (!tn || !nonempty(m->peer_id))
    return GOOP_EINVAL;
  struct sbuf b = {0};
  goop_buf_init(&b.g, 0);
  sb_puts(&b, "{\"type\":");
  sb_json_str(&b, tn);
  sb_puts(&b, ",\"peerId\":");
  sb_json_str(&b, m->peer_id);
  sb_str_field(&b, "content", m->content);
  sb_str_field(&b, "email", m->email);
  sb_str_field(&b, "avatarHash", m->avatar_hash);
  if (m->video_disabled)
    sb_puts(&b, ",\"videoDisabled\":true");
  if (m->n_addrs > 0) {
    sb_puts(&b, ",\"addrs\":[");
    for (size_t i = 0; i < m->n_addrs; i++) {
      if (i)
        sb_put(&b, ",", 1);
      sb_json_str(&b, m->addrs[i] ? m->addrs[i] : "");
    }
    sb_put(&b, "]", 1);
  }
  char ts[32];
  snprintf(ts, sizeof(ts), ",\"ts\":%lld", (long long)m->ts);
  sb_puts(&b, ts);
  if (m->verified)
    sb_puts(&b, ",\"verified\":true");
  sb_put(&b, "}", 1);
  sb_put(&b, "", 1); /* NUL, not counted */
  if (b.err) {
    goop_buf_free(&b.g);
    return GOOP_ENOMEM;
  }
  size_t len;
  *ret = (char *)goop_buf_steal(&b.g, &len);
  if (ret_len)
    *ret_len = len - 1;
  return 0;
}

/* ---- JSON parsing ------------------------------------------------------------- */

void goop_presence_msg_clear(struct goop_presence_msg *m) {
  if (!m)
    return;
  free(m->peer_id);
  free(m->content);
  free(m->email);
  free(m->avatar_hash);
  for (size_t i = 0; i < m->n_addrs; i++)
    free(m->addrs[i]);
  free(m->addrs);
  memset(m, 0, sizeof(*m));
}

/* A string member (absent or null = NULL). 0, GOOP_EPARSE, GOOP_EMSGSIZE or GOOP_ENOMEM. */
static int get_str(json_t *obj, const char *key, size_t max, char **out) {
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return GOOP_EPARSE;
  size_t len = json_string_length(v);
  if (len > max)
    return GOOP_EMSGSIZE;
  *out = strndup(json_string_value(v), len);
  return *out ? 0 : GOOP_ENOMEM;
}

static int get_bool(json_t *obj, const char *key, bool *out) {
  json_t *v = json_object_get(obj, key);
  *out = false;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_boolean(v))
    return GOOP_EPARSE;
  *out = json_is_true(v);
  return 0;
}

static int parse_obj(json_t *o, struct goop_presence_msg *m) {
  int rc;
  char *type = NULL;
  if ((rc = get_str(o, "type", 64, &type)) != 0)
    return rc == GOOP_EMSGSIZE ? GOOP_EPARSE : rc;
  if (!type || !*type) {
    free(type);
    return GOOP_EPARSE;
  }
  m->type = strcmp(type, "online") == 0    ? GOOP_PRESENCE_ONLINE
            : strcmp(type, "update") == 0  ? GOOP_PRESENCE_UPDATE
            : strcmp(type, "offline") == 0 ? GOOP_PRESENCE_OFFLINE
                                           : GOOP_PRESENCE_UNKNOWN;
  free(type);
  if ((rc = get_str(o, "peerId", GOOP_PRESENCE_MAX_PEER_ID, &m->peer_id)) != 0)
    return rc;
  if (!m->peer_id || !*m->peer_id)
    return GOOP_EPARSE;
  if ((rc = get_str(o, "content", GOOP_PRESENCE_MAX_CONTENT, &m->content)) != 0 ||
      (rc = get_str(o, "email", GOOP_PRESENCE_MAX_EMAIL, &m->email)) != 0 ||
      (rc = get_str(o, "avatarHash", GOOP_PRESENCE_MAX_AVATAR, &m->avatar_hash)) != 0 ||
      (rc = get_bool(o, "videoDisabled", &m->video_disabled)) != 0 ||
      (rc = get_bool(o, "verified", &m->verified)) != 0)
    return rc;
  json_t *ts = json_object_get(o, "ts");
  if (ts && !json_is_null(ts)) {
    if (!json_is_integer(ts))
      return GOOP_EPARSE;
    m->ts = (int64_t)json_integer_value(ts);
  }
  json_t *addrs = json_object_get(o, "addrs");
  if (addrs && !json_is_null(addrs)) {
    if (!json_is_array(addrs))
      return GOOP_EPARSE;
    size_t n = json_array_size(addrs);
    if (n > GOOP_PRESENCE_MAX_ADDRS)
      return GOOP_EMSGSIZE;
    if (n) {
      m->addrs = calloc(n, sizeof(char *));
      if (!m->addrs)
        return GOOP_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
      json_t *a = json_array_get(addrs, i);
      if (!json_is_string(a))
        return GOOP_EPARSE;
      size_t len = json_string_length(a);
      if (len > GOOP_PRESENCE_MAX_ADDR)
        return GOOP_EMSGSIZE;
      m->addrs[i] = strndup(json_string_value(a), len);
      if (!m->addrs[i])
        return GOOP_ENOMEM;
      m->n_addrs++;
    }
  }
  return m->type == GOOP_PRESENCE_UNKNOWN ? GOOP_ENOTSUP : 0;
}

int goop_presence_msg_parse(const void *data, size_t len, struct goop_presence_msg *ret) {
  goop_return_val_if_fail(ret && (data || len == 0), GOOP_EINVAL);
  memset(ret, 0, sizeof(*ret));
  if (len > GOOP_PRESENCE_MAX_JSON)
    return GOOP_EMSGSIZE;
  json_error_t err;
  json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
  if (!o)
    return GOOP_EPARSE;
  int rc = json_is_object(o) ? parse_obj(o, ret) : GOOP_EPARSE;
  json_decref(o);
  if (rc != 0 && rc != GOOP_ENOTSUP)
    goop_presence_msg_clear(ret);
  return rc;
}

/* ---- address filters ------------------------------------------------------------ */

enum ip_class { IP_NONE, IP_OTHER, IP_LOOPBACK, IP_LL_UNICAST, IP_LL_MULTICAST };

/* Class of the first component of |ma| if it is /ip4/ or /ip6/. */
static enum ip_class first_ip(const char *ma) {
  int af;
  if (strncmp(ma, "/ip4/", 5) == 0)
    af = AF_INET;
  else if (strncmp(ma, "/ip6/", 5) == 0)
    af = AF_INET6;
  else
    return IP_NONE;
  const char *s = ma + 5, *e = strchr(s, '/');
  size_t n = e ? (size_t)(e - s) : strlen(s);
  char txt[INET6_ADDRSTRLEN + 1];
  if (n == 0 || n >= sizeof(txt))
    return IP_OTHER;
  memcpy(txt, s, n);
  txt[n] = '\0';
  unsigned char a[16];
  if (inet_pton(af, txt, a) != 1)
    return IP_OTHER;
  if (af == AF_INET) {
    if (a[0] == 127)
      return IP_LOOPBACK;
    if (a[0] == 169 && a[1] == 254)
      return IP_LL_UNICAST;
    if (a[0] == 224 && a[1] == 0 && a[2] == 0)
      return IP_LL_MULTICAST;
    return IP_OTHER;
  }
  static const unsigned char lo6[16] = {[15] = 1};
  if (memcmp(a, lo6, 16) == 0)
    return IP_LOOPBACK;
  static const unsigned char v4mapped[12] = {[10] = 0xff, [11] = 0xff};
  if (memcmp(a, v4mapped, 12) == 0) {
    if (a[12] == 127)
      return IP_LOOPBACK;
    if (a[12] == 169 && a[13] == 254)
      return IP_LL_UNICAST;
    if (a[12] == 224 && a[13] == 0 && a[14] == 0)
      return IP_LL_MULTICAST;
    return IP_OTHER;
  }
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
    return IP_LL_UNICAST;
  if (a[0] == 0xff && (a[1] & 0x0f) == 0x02)
    return IP_LL_MULTICAST;
  return IP_OTHER;
}

bool goop_presence_addr_announceable(const char *ma) {
  if (!ma || !*ma)
    return false;
  if (strstr(ma, "/p2p-circuit"))
    return true;
  enum ip_class c = first_ip(ma);
  return c != IP_LOOPBACK && c != IP_LL_UNICAST && c != IP_LL_MULTICAST;
}

bool goop_presence_addr_acceptable(const char *ma) {
  if (!ma || !*ma)
    return false;
  enum ip_class c = first_ip(ma);
  return c != IP_LOOPBACK && c != IP_LL_UNICAST;
}

int goop_presence_avatar_hash(const char *path, char out[17]) {
  goop_return_val_if_fail(path && out, GOOP_EINVAL);
  out[0] = '\0';
  FILE *f = fopen(path, "rb");
  if (!f)
    return -errno;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int rc = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? 0 : GOOP_ECRYPTO;
  unsigned char buf[16384], dig[EVP_MAX_MD_SIZE];
  size_t n;
  while (rc == 0 && (n = fread(buf, 1, sizeof(buf), f)) > 0)
    if (EVP_DigestUpdate(md, buf, n) != 1)
      rc = GOOP_ECRYPTO;
  if (rc == 0 && ferror(f))
    rc = GOOP_EIO;
  unsigned dlen = 0;
  if (rc == 0 && EVP_DigestFinal_ex(md, dig, &dlen) != 1)
    rc = GOOP_ECRYPTO;
  EVP_MD_CTX_free(md);
  fclose(f);
  if (rc)
    return rc;
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 8; i++) {
    out[2 * i] = hex[dig[i] >> 4];
    out[2 * i + 1] = hex[dig[i] & 15];
  }
  out[16] = '\0';
  return 0;
}

/* ---- the service ------------------------------------------------------------------ */

struct entry {
  goop_peer_id id;
  char text[GOOP_PEER_ID_STR_MAX];
  uint64_t seen_ms; /* monotonic */
};

struct goop_presence {
  goop_pubsub *ps;
  goop_host *host;
  goop_ctx *ctx;
  char *topic;
  uint32_t heartbeat_s, ttl_s, max_peers;
  struct goop_presence_callbacks cb;
  void *ud;
  goop_peer_id self;
  char self_text[GOOP_PEER_ID_STR_MAX];
  /* our fields */
  char *label, *email, *avatar;
  bool video_disabled;
  char **addrs; /* NULL = from the host */
  size_t n_addrs;
  bool running;
  struct event *hb_ev, *prune_ev;
  struct entry *tab;
  size_t n_tab;
};

static uint64_t now_ms(void) {
  return goop__now_us() / 1000u;
}

static int64_t wall_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static struct entry *find(const goop_presence *pr, const goop_peer_id *id) {
  for (size_t i = 0; i < pr->n_tab; i++)
    if (goop_peer_id_equal(&pr->tab[i].id, id))
      return &pr->tab[i];
  return NULL;
}

static void remove_at(goop_presence *pr, size_t i, bool notify) {
  struct entry e = pr->tab[i];
  pr->tab[i] = pr->tab[--pr->n_tab];
  if (notify && pr->cb.on_remove)
    pr->cb.on_remove(pr, &e.id, e.text, pr->ud);
}

static int publish(goop_presence *pr, enum goop_presence_type type) {
  struct goop_presence_msg m = {.type = type, .peer_id = pr->self_text, .ts = wall_ms()};
  char *own[MAX_OWN_ADDRS];
  size_t n_own = 0;
  if (type != GOOP_PRESENCE_OFFLINE && pr->cb.before_publish)
    pr->cb.before_publish(pr, pr->ud);
  if (type != GOOP_PRESENCE_OFFLINE) {
    m.content = pr->label;
    m.email = pr->email;
    m.avatar_hash = pr->avatar;
    m.video_disabled = pr->video_disabled;
    if (pr->addrs) {
      m.addrs = pr->addrs;
      m.n_addrs = pr->n_addrs;
    } else {
      char a[GOOP_PRESENCE_MAX_ADDR + 1];
      for (size_t i = 0; n_own < MAX_OWN_ADDRS && n_own < GOOP_PRESENCE_MAX_ADDRS; i++) {
        int rc = goop_host_announce_addr(pr->host, i, a, sizeof(a));
        if (rc == GOOP_ENOENT)
          break;
        if (rc <= 0 || !goop_presence_addr_announceable(a))
          continue;
        if (!(own[n_own] = strdup(a)))
          break;
        n_own++;
      }
      m.addrs = own;
      m.n_addrs = n_own;
    }
  }
  char *json = NULL;
  size_t len = 0;
  int rc = goop_presence_msg_encode(&m, &json, &len);
  for (size_t i = 0; i < n_own; i++)
    free(own[i]);
  if (rc)
    return rc;
  rc = goop_pubsub_publish(pr->ps, pr->topic, json, len);
  free(json);
  if (rc)
    goop__log_warn(pr->ctx, "presence: cannot publish %s: %s", type_name(type), goop_strerror(rc));
  return rc;
}

static enum goop_pubsub_verdict validate(goop_pubsub *ps, const struct goop_pubsub_message *msg, void *ud) {
  (void)ps;
  goop_presence *pr = ud;
  struct goop_presence_msg m;
  int rc = goop_presence_msg_parse(msg->data, msg->len, &m);
  if (rc == GOOP_ENOMEM)
    return GOOP_PUBSUB_IGNORE;
  if (rc != 0 && rc != GOOP_ENOTSUP) {
    goop__log_debug(pr->ctx, "presence: rejecting a malformed message (%s)", goop_strerror(rc));
    return GOOP_PUBSUB_REJECT;
  }
  goop_peer_id claimed;
  enum goop_pubsub_verdict v = GOOP_PUBSUB_ACCEPT;
  if (goop_peer_id_from_string(m.peer_id, &claimed) != 0 || !goop_peer_id_equal(&claimed, &msg->from)) {
    char from[GOOP_PEER_ID_STR_MAX] = "?";
    (void)goop_peer_id_to_string(&msg->from, from, sizeof(from));
    goop__log_info(pr->ctx, "presence: dropping a message from %s claiming another peerId", from);
    v = GOOP_PUBSUB_REJECT;
  }
  goop_presence_msg_clear(&m);
  return v;
}

static void on_message(goop_pubsub *ps, const struct goop_pubsub_message *msg, void *ud) {
  (void)ps;
  goop_presence *pr = ud;
  struct goop_presence_msg m;
  int rc = goop_presence_msg_parse(msg->data, msg->len, &m);
  if (rc == GOOP_ENOTSUP) {
    goop__log_debug(pr->ctx, "presence: ignoring a message of unknown type");
    goop_presence_msg_clear(&m);
    return;
  }
  if (rc)
    return;
  goop_peer_id peer;
  if (goop_peer_id_from_string(m.peer_id, &peer) != 0 || !goop_peer_id_equal(&peer, &msg->from) ||
      goop_peer_id_equal(&peer, &pr->self)) {
    goop_presence_msg_clear(&m);
    return;
  }
  struct entry *e = find(pr, &peer);
  if (m.type == GOOP_PRESENCE_OFFLINE) {
    if (e)
      remove_at(pr, (size_t)(e - pr->tab), true);
    goop_presence_msg_clear(&m);
    return;
  }
  if (!e) {
    if (pr->n_tab >= pr->max_peers) { /* full: make room by dropping the stalest entry */
      size_t old = 0;
      for (size_t i = 1; i < pr->n_tab; i++)
        if (pr->tab[i].seen_ms < pr->tab[old].seen_ms)
          old = i;
      remove_at(pr, old, true);
    }
    e = &pr->tab[pr->n_tab++];
    e->id = peer;
    if (goop_peer_id_to_string(&peer, e->text, sizeof(e->text)) < 0)
      snprintf(e->text, sizeof(e->text), "%s", "?");
  }
  e->seen_ms = now_ms();
  for (size_t i = 0; i < m.n_addrs; i++)
    if (goop_presence_addr_acceptable(m.addrs[i]))
      (void)goop_host_add_addr(pr->host, &peer, m.addrs[i], GOOP_PRESENCE_ADDR_TTL);
  m.verified = true; /* LAN peers are verified */
  if (pr->cb.on_update)
    pr->cb.on_update(pr, &peer, &m, pr->ud);
  goop_presence_msg_clear(&m);
}

void goop_presence_prune(goop_presence *pr, uint64_t now) {
  if (!pr)
    return;
  uint64_t ttl = (uint64_t)pr->ttl_s * 1000u;
  for (size_t i = 0; i < pr->n_tab;) {
    if (now >= pr->tab[i].seen_ms && now - pr->tab[i].seen_ms >= ttl)
      remove_at(pr, i, true);
    else
      i++;
  }
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *ud) {
  (void)fd, (void)what;
  (void)publish(ud, GOOP_PRESENCE_UPDATE);
}

static void prune_cb(evutil_socket_t fd, short what, void *ud) {
  (void)fd, (void)what;
  goop_presence_prune(ud, now_ms());
}

static void free_own(goop_presence *pr) {
  free(pr->label);
  free(pr->email);
  free(pr->avatar);
  for (size_t i = 0; i < pr->n_addrs; i++)
    free(pr->addrs[i]);
  free(pr->addrs);
  pr->label = pr->email = pr->avatar = NULL;
  pr->addrs = NULL;
  pr->n_addrs = 0;
}

static char *dup_opt(const char *s, size_t max, bool *oom) {
  if (!s || !*s)
    return NULL;
  char *d = strndup(s, max);
  if (!d)
    *oom = true;
  return d;
}

int goop_presence_set_info(goop_presence *pr, const struct goop_presence_info *info) {
  goop_return_val_if_fail(pr && info, GOOP_EINVAL);
  if (info->addrs && info->n_addrs > GOOP_PRESENCE_MAX_ADDRS)
    return GOOP_EINVAL;
  bool oom = false;
  goop_presence tmp = {0};
  tmp.label = dup_opt(info->label, GOOP_PRESENCE_MAX_CONTENT, &oom);
  tmp.email = dup_opt(info->email, GOOP_PRESENCE_MAX_EMAIL, &oom);
  tmp.avatar = dup_opt(info->avatar_hash, GOOP_PRESENCE_MAX_AVATAR, &oom);
  if (info->addrs) {
    tmp.addrs = calloc(info->n_addrs + 1, sizeof(char *));
    if (!tmp.addrs)
      oom = true;
    for (size_t i = 0; tmp.addrs && i < info->n_addrs; i++) {
      if (!info->addrs[i] || !*info->addrs[i])
        continue;
      if (!(tmp.addrs[tmp.n_addrs] = strndup(info->addrs[i], GOOP_PRESENCE_MAX_ADDR)))
        oom = true;
      else
        tmp.n_addrs++;
    }
  }
  if (oom) {
    free_own(&tmp);
    return GOOP_ENOMEM;
  }
  free_own(pr);
  pr->label = tmp.label;
  pr->email = tmp.email;
  pr->avatar = tmp.avatar;
  pr->addrs = tmp.addrs;
  pr->n_addrs = tmp.n_addrs;
  pr->video_disabled = info->video_disabled;
  return 0;
}

int goop_presence_new(goop_pubsub *ps, goop_host *host, const struct goop_presence_config *cfg,
                      const struct goop_presence_callbacks *cb, void *user_data, goop_presence **ret) {
  goop_return_val_if_fail(ps && host && ret, GOOP_EINVAL);
  if (cfg && cfg->version != GOOP_PRESENCE_CONFIG_V1)
    return GOOP_EINVAL;
  if (cb && cb->version != GOOP_PRESENCE_CALLBACKS_V1)
    return GOOP_EINVAL;
  const char *topic = cfg && cfg->topic && *cfg->topic ? cfg->topic : DEFAULT_TOPIC;
  if (strlen(topic) > 1024)
    return GOOP_EINVAL;
  goop_presence *pr = calloc(1, sizeof(*pr));
  if (!pr)
    return GOOP_ENOMEM;
  pr->ps = ps;
  pr->host = host;
  pr->ctx = goop_host_get_ctx(host);
  pr->heartbeat_s = cfg && cfg->heartbeat_seconds ? cfg->heartbeat_seconds : DEFAULT_HEARTBEAT;
  pr->ttl_s = cfg && cfg->ttl_seconds ? cfg->ttl_seconds : DEFAULT_TTL;
  pr->max_peers = cfg && cfg->max_peers ? cfg->max_peers : DEFAULT_MAX_PEERS;
  if (cb)
    pr->cb = *cb;
  pr->ud = user_data;
  goop_host_peer_id(host, &pr->self);
  if (goop_peer_id_to_string(&pr->self, pr->self_text, sizeof(pr->self_text)) < 0)
    goto fail;
  pr->topic = strdup(topic);
  pr->tab = calloc(pr->max_peers, sizeof(*pr->tab));
  struct event_base *base = goop_ctx_get_base(pr->ctx);
  pr->hb_ev = event_new(base, -1, EV_PERSIST, heartbeat_cb, pr);
  pr->prune_ev = event_new(base, -1, EV_PERSIST, prune_cb, pr);
  if (!pr->topic || !pr->tab || !pr->hb_ev || !pr->prune_ev)
    goto fail;
  *ret = pr;
  return 0;
fail:
  goop_presence_free(pr);
  return GOOP_ENOMEM;
}

int goop_presence_start(goop_presence *pr) {
  goop_return_val_if_fail(pr, GOOP_EINVAL);
  if (pr->running)
    return 0;
  int rc = goop_pubsub_set_validator(pr->ps, pr->topic, validate, pr);
  if (rc == 0)
    rc = goop_pubsub_subscribe(pr->ps, pr->topic, on_message, pr);
  if (rc) {
    (void)goop_pubsub_set_validator(pr->ps, pr->topic, NULL, NULL);
    return rc;
  }
  struct timeval hb = {(time_t)pr->heartbeat_s, 0}, one = {1, 0};
  event_add(pr->hb_ev, &hb);
  event_add(pr->prune_ev, &one);
  pr->running = true;
  (void)publish(pr, GOOP_PRESENCE_ONLINE);
  return 0;
}

int goop_presence_announce(goop_presence *pr) {
  goop_return_val_if_fail(pr, GOOP_EINVAL);
  if (!pr->running)
    return GOOP_ESTATE;
  return publish(pr, GOOP_PRESENCE_UPDATE);
}

static void halt(goop_presence *pr) {
  if (!pr->running)
    return;
  pr->running = false;
  event_del(pr->hb_ev);
  event_del(pr->prune_ev);
  (void)goop_pubsub_unsubscribe(pr->ps, pr->topic);
  (void)goop_pubsub_set_validator(pr->ps, pr->topic, NULL, NULL);
  pr->n_tab = 0;
}

void goop_presence_stop(goop_presence *pr) {
  if (!pr || !pr->running)
    return;
  (void)publish(pr, GOOP_PRESENCE_OFFLINE);
  halt(pr);
}

void goop_presence_free(goop_presence *pr) {
  if (!pr)
    return;
  halt(pr);
  if (pr->hb_ev)
    event_free(pr->hb_ev);
  if (pr->prune_ev)
    event_free(pr->prune_ev);
  free_own(pr);
  free(pr->topic);
  free(pr->tab);
  free(pr);
}

size_t goop_presence_count(const goop_presence *pr) {
  return pr ? pr->n_tab : 0;
}

bool goop_presence_has(const goop_presence *pr, const goop_peer_id *peer) {
  return pr && peer && find(pr, peer) != NULL;
}
