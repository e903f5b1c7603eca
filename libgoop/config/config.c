/*
 * goop.json: a table of keys drives defaults, parsing, access, validation
 * and serialization. See goop.json(5) for the rules and messages.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <goop/config.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "multiaddr.h"

/* Largest goop.json we read. */
#define CONFIG_MAX_SIZE (1024 * 1024)
/* Largest number of strings in one string-array key. */
#define CONFIG_MAX_STRV 4096

enum {
  KEY_PATH = 1,       /* path-valued, resolvable with goop_config_resolve_path() */
  KEY_TRIM_SLASH = 2, /* trailing '/' removed on load */
};

struct key_def {
  const char *name;
  int type;
  unsigned flags;
  const char *def_s; /* string default */
  int64_t def_i;     /* int or bool default */
};

#define S(n, d, f)                                                                                           \
  { n, GOOP_CONFIG_STRING, f, d, 0 }
#define I(n, d)                                                                                              \
  { n, GOOP_CONFIG_INT, 0, NULL, d }
#define B(n, d)                                                                                              \
  { n, GOOP_CONFIG_BOOL, 0, NULL, d }
#define V(n)                                                                                                 \
  { n, GOOP_CONFIG_STRV, 0, NULL, 0 }

/* goop.json order: sections and keys exactly as written by goop_config_to_json(). */
static const struct key_def keys[] = {
    S("identity.key_file", "data/identity.key", KEY_PATH),
    S("paths.site_root", "site", KEY_PATH),
    S("paths.site_source", "site/src", KEY_PATH),
    S("paths.site_stage", "site/stage", KEY_PATH),
    I("p2p.listen_port", 0),
    S("p2p.mdns_tag", "goop-mdns", 0),
    V("p2p.bootstrap"),
    B("p2p.relay_reserve", true),
    B("p2p.hole_punching", true),
    B("p2p.mdns", true),
    S("presence.topic", "goop.presence.v1", 0),
    I("presence.ttl_seconds", 20),
    I("presence.heartbeat_seconds", 5),
    B("presence.rendezvous_host", false),
    I("presence.rendezvous_port", 8787),
    S("presence.rendezvous_bind", "127.0.0.1", 0),
    S("presence.rendezvous_wan", "", KEY_TRIM_SLASH),
    B("presence.rendezvous_only", false),
    S("presence.admin_password", "", 0),
    S("presence.templates_dir", "templates", KEY_PATH),
    V("presence.templates_dirs"),
    S("presence.peer_db_path", "", KEY_PATH),
    S("presence.external_url", "", KEY_TRIM_SLASH),
    I("presence.relay_port", 0),
    S("presence.relay_key_file", "data/relay.key", KEY_PATH),
    I("presence.relay_circuit_seconds", 1800),
    I("presence.relay_circuit_bytes", 16777216),
    I("presence.relay_reservation_seconds", 3600),
    I("presence.relay_max_reservations", 1024),
    I("presence.relay_max_reservations_per_ip", 8),
    I("presence.relay_max_circuits", 1024),
    I("presence.relay_max_circuits_per_peer", 16),
    I("presence.rendezvous_max_subscribers", 100000),
    I("presence.rendezvous_max_subscribers_per_ip", 10),
    I("presence.rendezvous_subscriber_queue", 64),
    I("presence.rendezvous_publish_per_minute", 60),
    I("presence.rendezvous_max_peers", 100000),
    V("presence.rendezvous_trusted_proxies"),
    S("presence.credits_url", "", 0),
    S("presence.registration_url", "", 0),
    S("presence.email_url", "", 0),
    S("presence.credits_admin_token", "", 0),
    S("presence.registration_admin_token", "", 0),
    S("profile.label", "hello", 0),
    S("profile.email", "", 0),
    S("viewer.http_addr", "127.0.0.1:8080", 0),
    B("viewer.debug", false),
    S("viewer.theme", "dark", 0),
    S("viewer.preferred_cam", "", 0),
    S("viewer.preferred_mic", "", 0),
    B("viewer.video_disabled", false),
    B("viewer.hide_unverified", false),
    B("lua.enabled", false),
    S("lua.script_dir", "site/lua", KEY_PATH),
    I("lua.timeout_seconds", 5),
    I("lua.max_memory_mb", 10),
    I("lua.rate_limit_per_peer", 30),
    I("lua.rate_limit_global", 120),
    B("lua.http_enabled", true),
    B("lua.kv_enabled", true),
};

#undef S
#undef I
#undef B
#undef V

#define NKEYS GOOP_ARRAY_SIZE(keys)

struct value {
  char *s;
  int64_t i;
  char **v;
  size_t vn;
};

struct goop_config {
  struct value vals[NKEYS];
  char *base_dir;
};

static int key_index(const char *key) {
  if (!key)
    return -1;
  for (size_t i = 0; i < NKEYS; i++)
    if (strcmp(keys[i].name, key) == 0)
      return (int)i;
  return -1;
}

static int key_index_typed(const char *key, int type) {
  int k = key_index(key);
  return (k >= 0 && keys[k].type == type) ? k : -1;
}

/* Length of the section part of a key name ("p2p" in "p2p.listen_port"). */
static size_t section_len(const char *name) {
  return (size_t)(strchr(name, '.') - name);
}

static void strv_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* Deep copy of |n| strings (n may be 0: *ret = NULL). */
static int strv_copy(const char *const *src, size_t n, char ***ret) {
  if (n == 0) {
    *ret = NULL;
    return 0;
  }
  char **v = calloc(n, sizeof(*v));
  if (!v)
    return GOOP_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    v[i] = strdup(src[i] ? src[i] : "");
    if (!v[i]) {
      strv_free(v, i);
      return GOOP_ENOMEM;
    }
  }
  *ret = v;
  return 0;
}

int goop_config_new_default(goop_config **ret) {
  goop_return_val_if_fail(ret != NULL, GOOP_EINVAL);
  goop_config *cfg = calloc(1, sizeof(*cfg));
  if (!cfg)
    return GOOP_ENOMEM;
  for (size_t i = 0; i < NKEYS; i++) {
    if (keys[i].type == GOOP_CONFIG_STRING) {
      cfg->vals[i].s = strdup(keys[i].def_s);
      if (!cfg->vals[i].s) {
        goop_config_free(cfg);
        return GOOP_ENOMEM;
      }
    } else {
      cfg->vals[i].i = keys[i].def_i;
    }
  }
  *ret = cfg;
  return 0;
}

void goop_config_free(goop_config *cfg) {
  if (!cfg)
    return;
  for (size_t i = 0; i < NKEYS; i++) {
    free(cfg->vals[i].s);
    strv_free(cfg->vals[i].v, cfg->vals[i].vn);
  }
  free(cfg->base_dir);
  free(cfg);
}

/* ---- key access ------------------------------------------------------------------ */

int goop_config_key_type(const char *key) {
  int k = key_index(key);
  return k < 0 ? 0 : keys[k].type;
}

const char *goop_config_key_at(size_t i) {
  return i < NKEYS ? keys[i].name : NULL;
}

const char *goop_config_get_string(const goop_config *cfg, const char *key) {
  goop_return_val_if_fail(cfg != NULL, NULL);
  int k = key_index_typed(key, GOOP_CONFIG_STRING);
  return k < 0 ? NULL : cfg->vals[k].s;
}

int64_t goop_config_get_int(const goop_config *cfg, const char *key) {
  goop_return_val_if_fail(cfg != NULL, 0);
  int k = key_index_typed(key, GOOP_CONFIG_INT);
  return k < 0 ? 0 : cfg->vals[k].i;
}

bool goop_config_get_bool(const goop_config *cfg, const char *key) {
  goop_return_val_if_fail(cfg != NULL, false);
  int k = key_index_typed(key, GOOP_CONFIG_BOOL);
  return k < 0 ? false : cfg->vals[k].i != 0;
}

size_t goop_config_get_strv_len(const goop_config *cfg, const char *key) {
  goop_return_val_if_fail(cfg != NULL, 0);
  int k = key_index_typed(key, GOOP_CONFIG_STRV);
  return k < 0 ? 0 : cfg->vals[k].vn;
}

const char *goop_config_get_strv(const goop_config *cfg, const char *key, size_t i) {
  goop_return_val_if_fail(cfg != NULL, NULL);
  int k = key_index_typed(key, GOOP_CONFIG_STRV);
  if (k < 0 || i >= cfg->vals[k].vn)
    return NULL;
  return cfg->vals[k].v[i];
}

int goop_config_set_string(goop_config *cfg, const char *key, const char *value) {
  goop_return_val_if_fail(cfg != NULL && value != NULL, GOOP_EINVAL);
  int k = key_index_typed(key, GOOP_CONFIG_STRING);
  if (k < 0)
    return GOOP_EINVAL;
  char *s = strdup(value);
  if (!s)
    return GOOP_ENOMEM;
  free(cfg->vals[k].s);
  cfg->vals[k].s = s;
  return 0;
}

int goop_config_set_int(goop_config *cfg, const char *key, int64_t value) {
  goop_return_val_if_fail(cfg != NULL, GOOP_EINVAL);
  int k = key_index_typed(key, GOOP_CONFIG_INT);
  if (k < 0)
    return GOOP_EINVAL;
  cfg->vals[k].i = value;
  return 0;
}

int goop_config_set_bool(goop_config *cfg, const char *key, bool value) {
  goop_return_val_if_fail(cfg != NULL, GOOP_EINVAL);
  int k = key_index_typed(key, GOOP_CONFIG_BOOL);
  if (k < 0)
    return GOOP_EINVAL;
  cfg->vals[k].i = value ? 1 : 0;
  return 0;
}

int goop_config_set_strv(goop_config *cfg, const char *key, const char *const *values, size_t n) {
  goop_return_val_if_fail(cfg != NULL && (values != NULL || n == 0), GOOP_EINVAL);
  int k = key_index_typed(key, GOOP_CONFIG_STRV);
  if (k < 0)
    return GOOP_EINVAL;
  char **v;
  int rc = strv_copy(values, n, &v);
  if (rc < 0)
    return rc;
  strv_free(cfg->vals[k].v, cfg->vals[k].vn);
  cfg->vals[k].v = v;
  cfg->vals[k].vn = n;
  return 0;
}

const char *goop_config_base_dir(const goop_config *cfg) {
  goop_return_val_if_fail(cfg != NULL, NULL);
  return cfg->base_dir;
}

char *goop_config_resolve_path(const goop_config *cfg, const char *key) {
  goop_return_val_if_fail(cfg != NULL, NULL);
  int k = key_index_typed(key, GOOP_CONFIG_STRING);
  if (k < 0 || !(keys[k].flags & KEY_PATH))
    return NULL;
  const char *v = cfg->vals[k].s;
  if (!v || !*v)
    return NULL;
  return goop__path_join(cfg->base_dir, v);
}

/* ---- validation ------------------------------------------------------------------ */

static bool is_blank(const char *s) {
  for (; *s; s++)
    if (!strchr(" \t\n\v\f\r", *s))
      return false;
  return true;
}

/* Copy of |s| without leading and trailing ASCII white space. */
static char *trim_dup(const char *s) {
  while (*s && strchr(" \t\n\v\f\r", *s))
    s++;
  size_t n = strlen(s);
  while (n > 0 && strchr(" \t\n\v\f\r", s[n - 1]))
    n--;
  return strndup(s, n);
}

static bool is_ip_literal(const char *s) {
  unsigned char tmp[16];
  return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

/* true if |s| is "IP" or "IP/prefix" with a prefix in range for the family. */
static bool is_cidr(const char *s) {
  char tmp[64];
  size_t n = strlen(s);
  if (n == 0 || n >= sizeof(tmp))
    return false;
  memcpy(tmp, s, n + 1);
  char *slash = strchr(tmp, '/');
  long bits = -1;
  if (slash) {
    *slash = '\0';
    char *end = NULL;
    if (!slash[1] || slash[1] == '-' || slash[1] == '+')
      return false;
    bits = strtol(slash + 1, &end, 10);
    if (*end)
      return false;
  }
  unsigned char a[16];
  if (inet_pton(AF_INET, tmp, a) == 1)
    return bits <= 32;
  if (inet_pton(AF_INET6, tmp, a) == 1)
    return bits <= 128;
  return false;
}

/* true if |s| is an IP literal that is all zeros (0.0.0.0, ::, ::ffff:0.0.0.0). */
static bool is_unspecified_ip(const char *s) {
  unsigned char a[16];
  if (inet_pton(AF_INET, s, a) == 1)
    return memcmp(a, "\0\0\0\0", 4) == 0;
  if (inet_pton(AF_INET6, s, a) != 1)
    return false;
  static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const unsigned char zero[16] = {0};
  return memcmp(a, zero, 16) == 0 || (memcmp(a, v4mapped, 12) == 0 && memcmp(a + 12, zero, 4) == 0);
}

/* Decimal digits only, non-empty. Value in *ret (saturating at 99999999). */
static bool parse_port_digits(const char *s, size_t n, long *ret) {
  if (n == 0)
    return false;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    if (v < 99999999)
      v = v * 10 + (s[i] - '0');
  }
  *ret = v;
  return true;
}

static bool host_char_ok(unsigned char c) {
  if (c >= 0x80)
    return true; /* UTF-8 host names */
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return true;
  return strchr("-._~!$&'()*+,;=%", c) != NULL && c != '\0';
}

/*
 * Check an http(s) URL the way goop.json(5) describes. Returns NULL if
 * valid, else writes the reason to |why| and returns it.
 */
static const char *check_url(const char *url, char *why, size_t why_len) {
  for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
    if (*p < 0x20 || *p == 0x7f) {
      snprintf(why, why_len, "invalid url: parse \"%s\": invalid control character in URL", url);
      return why;
    }
  }
  /* scheme */
  const char *colon = NULL;
  for (const char *p = url; *p; p++) {
    char c = *p;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
      continue;
    if (p != url && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))
      continue;
    if (c == ':') {
      if (p == url) {
        snprintf(why, why_len, "invalid url: parse \"%s\": missing protocol scheme", url);
        return why;
      }
      colon = p;
    }
    break;
  }
  size_t slen = colon ? (size_t)(colon - url) : 0;
  if (!((slen == 4 && strncasecmp(url, "http", 4) == 0) ||
        (slen == 5 && strncasecmp(url, "https", 5) == 0))) {
    snprintf(why, why_len, "scheme must be http or https");
    return why;
  }
  const char *rest = colon + 1;
  if (strncmp(rest, "//", 2) != 0) {
    snprintf(why, why_len, "missing host");
    return why;
  }
  const char *auth = rest + 2;
  size_t alen = strcspn(auth, "/?#");
  /* drop userinfo */
  for (size_t i = alen; i > 0; i--) {
    if (auth[i - 1] == '@') {
      alen -= i;
      auth += i;
      break;
    }
  }
  if (alen == 0) {
    snprintf(why, why_len, "missing host");
    return why;
  }
  char host[256];
  const char *port = NULL;
  size_t port_len = 0;
  if (auth[0] == '[') {
    const char *close = memchr(auth, ']', alen);
    if (!close) {
      snprintf(why, why_len, "invalid url: parse \"%s\": missing ']' in host", url);
      return why;
    }
    size_t hlen = (size_t)(close - auth - 1);
    size_t after = alen - (size_t)(close - auth) - 1;
    if (after > 0) {
      if (close[1] != ':') {
        snprintf(why, why_len, "invalid url: parse \"%s\": invalid port after host", url);
        return why;
      }
      port = close + 2;
      port_len = after - 1;
    }
    if (hlen >= sizeof(host)) {
      snprintf(why, why_len, "invalid url: parse \"%s\": host name too long", url);
      return why;
    }
    memcpy(host, auth + 1, hlen);
    host[hlen] = '\0';
    /* strip an IPv6 zone ("%25eth0") before checking the literal */
    char *pct = strchr(host, '%');
    if (pct)
      *pct = '\0';
    unsigned char tmp[16];
    if (host[0] && inet_pton(AF_INET6, host, tmp) != 1) {
      snprintf(why, why_len, "invalid url: parse \"%s\": invalid IPv6 address in host", url);
      return why;
    }
  } else {
    const char *c = NULL;
    for (size_t i = alen; i > 0; i--) {
      if (auth[i - 1] == ':') {
        c = auth + i - 1;
        break;
      }
    }
    size_t hlen = c ? (size_t)(c - auth) : alen;
    if (c) {
      port = c + 1;
      port_len = alen - hlen - 1;
    }
    if (hlen >= sizeof(host)) {
      snprintf(why, why_len, "invalid url: parse \"%s\": host name too long", url);
      return why;
    }
    memcpy(host, auth, hlen);
    host[hlen] = '\0';
    for (size_t i = 0; i < hlen; i++) {
      if (!host_char_ok((unsigned char)host[i])) {
        snprintf(why, why_len, "invalid url: parse \"%s\": invalid character in host name", url);
        return why;
      }
    }
  }
  long pv = 0;
  if (port && port_len > 0 && !parse_port_digits(port, port_len, &pv)) {
    snprintf(why, why_len, "invalid url: parse \"%s\": invalid port after host", url);
    return why;
  }
  if (!host[0]) {
    snprintf(why, why_len, "missing hostname");
    return why;
  }
  if (strcmp(host, "0.0.0.0") == 0) {
    snprintf(why, why_len, "host must not be 0.0.0.0");
    return why;
  }
  if (is_unspecified_ip(host)) {
    snprintf(why, why_len, "host must not be unspecified");
    return why;
  }
  if (port && port_len > 0 && (pv < 1 || pv > 65535)) {
    snprintf(why, why_len, "invalid port");
    return why;
  }
  return NULL;
}

/* "host:port" with an optional host (name, IPv4 or [IPv6]) and a port 0..65535. */
static bool is_host_port(const char *s) {
  const char *c;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':')
      return false;
    size_t hlen = (size_t)(close - s - 1);
    char host[64];
    if (hlen == 0 || hlen >= sizeof(host))
      return false;
    memcpy(host, s + 1, hlen);
    host[hlen] = '\0';
    unsigned char tmp[16];
    if (inet_pton(AF_INET6, host, tmp) != 1)
      return false;
    c = close + 1;
  } else {
    c = strrchr(s, ':');
    if (!c)
      return false;
    for (const char *p = s; p < c; p++) {
      unsigned char ch = (unsigned char)*p;
      if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
            ch == '-' || ch == '_'))
        return false;
    }
  }
  long port;
  return parse_port_digits(c + 1, strlen(c + 1), &port) && port <= 65535;
}

static int check_bootstrap(const char *ma, char *errbuf, size_t errbuf_len) {
  goop_buf b;
  goop_buf_init(&b, GOOP_MA_MAX);
  int rc = strlen(ma) < GOOP_MA_STR_MAX ? goop_ma_from_string(ma, &b) : GOOP_EPARSE;
  if (rc == GOOP_ENOMEM) {
    goop_buf_free(&b);
    return goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "out of memory");
  }
  if (rc < 0) {
    goop_buf_free(&b);
    return goop__errbuf(errbuf, errbuf_len, GOOP_ECONFIG, "p2p.bootstrap: invalid multiaddr \"%s\"", ma);
  }
  size_t off = 0;
  uint64_t last = 0;
  goop_ma_component comp;
  int n;
  while ((n = goop_ma_next(b.data, b.len, &off, &comp)) == 1)
    last = comp.code;
  goop_buf_free(&b);
  if (n < 0)
    return goop__errbuf(errbuf, errbuf_len, GOOP_ECONFIG, "p2p.bootstrap: invalid multiaddr \"%s\"", ma);
  if (last != GOOP_MA_P2P)
    return goop__errbuf(errbuf, errbuf_len, GOOP_ECONFIG,
                        "p2p.bootstrap: \"%s\" must end with /p2p/<peer-id>", ma);
  return 0;
}

#define STR(key) (cfg->vals[key_index_typed(key, GOOP_CONFIG_STRING)].s)
#define INT(key) (cfg->vals[key_index_typed(key, GOOP_CONFIG_INT)].i)
#define BOOL(key) (cfg->vals[key_index_typed(key, GOOP_CONFIG_BOOL)].i != 0)
#define FAIL(...) return goop__errbuf(errbuf, errbuf_len, GOOP_ECONFIG, __VA_ARGS__)

int goop_config_validate(const goop_config *cfg, char *errbuf, size_t errbuf_len) {
  goop_return_val_if_fail(cfg != NULL, GOOP_EINVAL);
  if (is_blank(STR("identity.key_file")))
    FAIL("identity.key_file is required");
  if (is_blank(STR("paths.site_root")))
    FAIL("paths.site_root is required");
  if (is_blank(STR("paths.site_source")))
    FAIL("paths.site_source is required");
  if (is_blank(STR("paths.site_stage")))
    FAIL("paths.site_stage is required");
  {
    char *a = goop__path_clean(STR("paths.site_source"));
    char *b = goop__path_clean(STR("paths.site_stage"));
    bool same = a && b && strcmp(a, b) == 0;
    bool oom = !a || !b;
    free(a);
    free(b);
    if (oom)
      return goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "out of memory");
    if (same)
      FAIL("paths.site_source and paths.site_stage must differ");
  }
  int64_t port = INT("p2p.listen_port");
  if (port < 0 || port > 65535)
    FAIL("p2p.listen_port must be 0..65535");
  if (is_blank(STR("p2p.mdns_tag")))
    FAIL("p2p.mdns_tag is required");
  {
    int k = key_index("p2p.bootstrap");
    for (size_t i = 0; i < cfg->vals[k].vn; i++) {
      int rc = check_bootstrap(cfg->vals[k].v[i], errbuf, errbuf_len);
      if (rc < 0)
        return rc;
    }
  }
  if (is_blank(STR("presence.topic")))
    FAIL("presence.topic is required");
  int64_t ttl = INT("presence.ttl_seconds"), hb = INT("presence.heartbeat_seconds");
  if (ttl <= 0)
    FAIL("presence.ttl_seconds must be > 0");
  if (hb <= 0)
    FAIL("presence.heartbeat_seconds must be > 0");
  if (hb >= ttl)
    FAIL("presence.heartbeat_seconds must be < presence.ttl_seconds");
  bool host = BOOL("presence.rendezvous_host");
  if (BOOL("presence.rendezvous_only") && !host)
    FAIL("presence.rendezvous_only requires presence.rendezvous_host=true");
  if (host) {
    int64_t rp = INT("presence.rendezvous_port");
    if (rp < 1 || rp > 65535)
      FAIL("presence.rendezvous_port must be 1..65535 when rendezvous_host is enabled");
    const char *bind = STR("presence.rendezvous_bind");
    if (!is_blank(bind)) {
      char *t = trim_dup(bind);
      if (!t)
        return goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "out of memory");
      bool ok = is_ip_literal(t);
      free(t);
      if (!ok)
        FAIL("presence.rendezvous_bind must be a valid IP address");
    }
  }
  int64_t relay = INT("presence.relay_port");
  if (relay > 0) {
    if (!host)
      FAIL("presence.relay_port requires presence.rendezvous_host=true");
    if (relay > 65535)
      FAIL("presence.relay_port must be 1..65535");
  }
  {
    static const struct {
      const char *key;
      int64_t lo, hi;
      const char *msg;
    } ranges[] = {
        {"presence.relay_circuit_seconds", 0, 86400 * 7, "presence.relay_circuit_seconds must be 0..604800"},
        {"presence.relay_circuit_bytes", 0, INT64_C(1) << 40, "presence.relay_circuit_bytes must be 0..2^40"},
        {"presence.relay_reservation_seconds", 60, 86400,
         "presence.relay_reservation_seconds must be 60..86400"},
        {"presence.relay_max_reservations", 1, 1000000, "presence.relay_max_reservations must be 1..1000000"},
        {"presence.relay_max_reservations_per_ip", 1, 1000000,
         "presence.relay_max_reservations_per_ip must be 1..1000000"},
        {"presence.relay_max_circuits", 1, 1000000, "presence.relay_max_circuits must be 1..1000000"},
        {"presence.relay_max_circuits_per_peer", 1, 1000000,
         "presence.relay_max_circuits_per_peer must be 1..1000000"},
        {"presence.rendezvous_max_subscribers", 1, 10000000,
         "presence.rendezvous_max_subscribers must be 1..10000000"},
        {"presence.rendezvous_max_subscribers_per_ip", 1, 10000000,
         "presence.rendezvous_max_subscribers_per_ip must be 1..10000000"},
        {"presence.rendezvous_subscriber_queue", 1, 65536,
         "presence.rendezvous_subscriber_queue must be 1..65536"},
        {"presence.rendezvous_publish_per_minute", 1, 1000000,
         "presence.rendezvous_publish_per_minute must be 1..1000000"},
        {"presence.rendezvous_max_peers", 1, 10000000, "presence.rendezvous_max_peers must be 1..10000000"},
    };
    for (size_t i = 0; i < GOOP_ARRAY_SIZE(ranges); i++) {
      int64_t v = INT(ranges[i].key);
      if (v < ranges[i].lo || v > ranges[i].hi)
        FAIL("%s", ranges[i].msg);
    }
    int k = key_index("presence.rendezvous_trusted_proxies");
    for (size_t i = 0; i < cfg->vals[k].vn; i++)
      if (!is_cidr(cfg->vals[k].v[i]))
        FAIL("presence.rendezvous_trusted_proxies: \"%s\" is not an IP address or CIDR block",
             cfg->vals[k].v[i]);
  }
  const char *wan = STR("presence.rendezvous_wan");
  if (!is_blank(wan)) {
    char *t = trim_dup(wan);
    if (!t)
      return goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "out of memory");
    char why[GOOP_ERRBUF_SIZE];
    const char *bad = check_url(t, why, sizeof(why));
    free(t);
    if (bad)
      FAIL("presence.rendezvous_wan: %s", bad);
  }
  const char *http_addr = STR("viewer.http_addr");
  if (*http_addr && !is_host_port(http_addr))
    FAIL("viewer.http_addr must be host:port");
  if (BOOL("lua.enabled")) {
    if (is_blank(STR("lua.script_dir")))
      FAIL("lua.script_dir is required when lua is enabled");
    int64_t t = INT("lua.timeout_seconds");
    if (t < 1 || t > 60)
      FAIL("lua.timeout_seconds must be 1..60");
    if (INT("lua.rate_limit_per_peer") <= 0)
      FAIL("lua.rate_limit_per_peer must be > 0");
    if (INT("lua.rate_limit_global") <= 0)
      FAIL("lua.rate_limit_global must be > 0");
    int64_t m = INT("lua.max_memory_mb");
    if (m < 1 || m > 1024)
      FAIL("lua.max_memory_mb must be 1..1024");
  }
  return 0;
}

#undef STR
#undef INT
#undef BOOL
#undef FAIL

/* ---- JSON in ----------------------------------------------------------------------- */

static void trim_trailing_slash(char *s) {
  size_t n = strlen(s);
  while (n > 0 && s[n - 1] == '/')
    s[--n] = '\0';
}

/* Apply one JSON value to key |k|. */
static int apply_value(goop_config *cfg, size_t k, json_t *v, char *errbuf, size_t errbuf_len) {
  struct value *val = &cfg->vals[k];
  const char *name = keys[k].name;
  if (json_is_null(v)) {
    /* null keeps the default, except that it empties a string array */
    if (keys[k].type == GOOP_CONFIG_STRV) {
      strv_free(val->v, val->vn);
      val->v = NULL;
      val->vn = 0;
    }
    return 0;
  }
  switch (keys[k].type) {
  case GOOP_CONFIG_STRING: {
    if (!json_is_string(v))
      return goop__errbuf(errbuf, errbuf_len, GOOP_EPARSE, "%s: expected a string", name);
    char *s = strdup(json_string_value(v));
    if (!s)
      return goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "out of memory");
    if (keys[k].flags & KEY_TRIM_SLASH)
      trim_trailing_slash(s);
    free(val->s);
    val->s = s;
    return 0;
  }
  case GOOP_CONFIG_INT:
    if (!json_is_integer(v))
      return goop__errbuf(errbuf, errbuf_len, GOOP_EPARSE, "%s: expected an integer", name);
    val->i = (int64_t)json_integer_value(v);
    return 0;
  case GOOP_CONFIG_BOOL:
    if (!json_is_boolean(v))
      return goop__errbuf(errbuf, errbuf_len, GOOP_EPARSE, "%s: expected a boolean", name);
    val->i = json_is_true(v) ? 1 : 0;
    return 0;
  case GOOP_CONFIG_STRV: {
    if (!json_is_array(v))
      return goop__errbuf(errbuf, errbuf_len, GOOP_EPARSE, "%s: expected an array of strings", name);
    size_t n = json_array_size(v);
    if (n > CONFIG_MAX_STRV)
      return goop__errbuf(errbuf, errbuf_len, GOOP_EPARSE, "%s: more than %d entries", name, CONFIG_MAX_STRV);
    const char **tmp = n ? calloc(n, sizeof(*tmp)) : NULL;
    if (n && !tmp)
      return goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
      json_t *e = json_array_get(v, i);
      if (!json_is_string(e)) {
        free(tmp);
        return goop__errbuf(errbuf, errbuf_len, GOOP_EPARSE, "%s: expected an array of strings", name);
      }
      tmp[i] = json_string_value(e);
    }
    char **copy;
    int rc = strv_copy(tmp, n, &copy);
    free(tmp);
    if (rc < 0)
      return goop__errbuf(errbuf, errbuf_len, rc, "out of memory");
    strv_free(val->v, val->vn);
    val->v = copy;
    val->vn = n;
    return 0;
  }
  }
  return GOOP_EINVAL;
}

static int apply_json(goop_config *cfg, json_t *root, char *errbuf, size_t errbuf_len) {
  if (!json_is_object(root))
    return goop__errbuf(errbuf, errbuf_len, GOOP_EPARSE, "expected a JSON object");
  for (size_t k = 0; k < NKEYS; k++) {
    const char *name = keys[k].name;
    size_t sl = section_len(name);
    char section[32];
    memcpy(section, name, sl);
    section[sl] = '\0';
    json_t *sec = json_object_get(root, section);
    if (!sec || json_is_null(sec))
      continue;
    if (!json_is_object(sec))
      return goop__errbuf(errbuf, errbuf_len, GOOP_EPARSE, "%s: expected an object", section);
    json_t *v = json_object_get(sec, name + sl + 1);
    if (!v)
      continue;
    int rc = apply_value(cfg, k, v, errbuf, errbuf_len);
    if (rc < 0)
      return rc;
  }
  return 0;
}

int goop_config_parse(const char *json, size_t len, const char *base_dir, goop_config **ret, char *errbuf,
                      size_t errbuf_len) {
  goop_return_val_if_fail(ret != NULL && (json != NULL || len == 0), GOOP_EINVAL);
  if (len > CONFIG_MAX_SIZE)
    return goop__errbuf(errbuf, errbuf_len, GOOP_EPARSE, "file too large (more than %d bytes)",
                        CONFIG_MAX_SIZE);
  if (len >= 3 && memcmp(json, "\xef\xbb\xbf", 3) == 0) {
    json += 3;
    len -= 3;
  }
  goop_config *cfg = NULL;
  int rc = goop_config_new_default(&cfg);
  if (rc < 0)
    return goop__errbuf(errbuf, errbuf_len, rc, "out of memory");
  if (base_dir) {
    cfg->base_dir = strdup(base_dir);
    if (!cfg->base_dir) {
      rc = goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "out of memory");
      goto fail;
    }
  }
  json_error_t jerr;
  json_t *root = json_loadb(json ? json : "", len, 0, &jerr);
  if (!root) {
    rc = goop__errbuf(errbuf, errbuf_len, GOOP_EPARSE, "%d:%d: %s", jerr.line, jerr.column, jerr.text);
    goto fail;
  }
  rc = apply_json(cfg, root, errbuf, errbuf_len);
  json_decref(root);
  if (rc < 0)
    goto fail;
  rc = goop_config_validate(cfg, errbuf, errbuf_len);
  if (rc < 0)
    goto fail;
  *ret = cfg;
  return 0;
fail:
  goop_config_free(cfg);
  return rc;
}

/* ---- JSON out ---------------------------------------------------------------------- */

char *goop_config_to_json(const goop_config *cfg) {
  goop_return_val_if_fail(cfg != NULL, NULL);
  json_t *root = json_object();
  json_t *sec = NULL;
  char *out = NULL;
  if (!root)
    return NULL;
  for (size_t k = 0; k < NKEYS; k++) {
    const char *name = keys[k].name;
    size_t sl = section_len(name);
    if (k == 0 || sl != section_len(keys[k - 1].name) || strncmp(name, keys[k - 1].name, sl) != 0) {
      char section[32];
      memcpy(section, name, sl);
      section[sl] = '\0';
      sec = json_object();
      if (!sec || json_object_set_new(root, section, sec) != 0)
        goto fail;
    }
    const struct value *val = &cfg->vals[k];
    json_t *v = NULL;
    switch (keys[k].type) {
    case GOOP_CONFIG_STRING:
      v = json_string(val->s ? val->s : "");
      break;
    case GOOP_CONFIG_INT:
      v = json_integer((json_int_t)val->i);
      break;
    case GOOP_CONFIG_BOOL:
      v = json_boolean(val->i != 0);
      break;
    case GOOP_CONFIG_STRV:
      v = json_array();
      for (size_t i = 0; v && i < val->vn; i++) {
        if (json_array_append_new(v, json_string(val->v[i])) != 0) {
          json_decref(v);
          v = NULL;
        }
      }
      break;
    }
    /* json_string() fails on invalid UTF-8: write such a value as empty rather than failing */
    if (!v && keys[k].type == GOOP_CONFIG_STRING)
      v = json_string("");
    if (!v || json_object_set_new(sec, name + sl + 1, v) != 0)
      goto fail;
  }
  char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (!text)
    goto fail;
  size_t n = strlen(text);
  out = malloc(n + 2);
  if (out) {
    memcpy(out, text, n);
    out[n] = '\n';
    out[n + 1] = '\0';
  }
  free(text);
fail:
  json_decref(root);
  return out;
}

/* ---- files ------------------------------------------------------------------------- */

/* Directory part of |path| ("." if none). Malloc'd or NULL. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    return strdup(".");
  if (slash == path)
    return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

int goop_config_load(const char *path, goop_config **ret, char *errbuf, size_t errbuf_len) {
  goop_return_val_if_fail(path != NULL && ret != NULL, GOOP_EINVAL);
  uint8_t *data = NULL;
  size_t len = 0;
  int rc = goop__read_file(path, CONFIG_MAX_SIZE, &data, &len);
  if (rc == GOOP_EMSGSIZE)
    return goop__errbuf(errbuf, errbuf_len, GOOP_EPARSE, "%s: file too large (more than %d bytes)", path,
                        CONFIG_MAX_SIZE);
  if (rc < 0)
    return goop__errbuf(errbuf, errbuf_len, rc, "%s: %s", path, goop_strerror(rc));
  char *dir = dir_of(path);
  if (!dir) {
    free(data);
    return goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "out of memory");
  }
  char msg[GOOP_ERRBUF_SIZE] = "";
  rc = goop_config_parse((const char *)data, len, dir, ret, msg, sizeof(msg));
  free(data);
  free(dir);
  if (rc < 0) {
    /* JSON syntax errors start with "line:column:", the rest with a key name */
    bool pos = msg[0] >= '0' && msg[0] <= '9';
    return goop__errbuf(errbuf, errbuf_len, rc, "%s:%s%s", path, pos ? "" : " ", msg);
  }
  return 0;
}

int goop_config_save(const goop_config *cfg, const char *path, char *errbuf, size_t errbuf_len) {
  goop_return_val_if_fail(cfg != NULL && path != NULL, GOOP_EINVAL);
  int rc = goop_config_validate(cfg, errbuf, errbuf_len);
  if (rc < 0)
    return rc;
  char *text = goop_config_to_json(cfg);
  if (!text)
    return goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "out of memory");
  char *dir = dir_of(path);
  if (!dir) {
    free(text);
    return goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "out of memory");
  }
  rc = goop__mkdir_p(dir, 0755);
  if (rc < 0) {
    rc = goop__errbuf(errbuf, errbuf_len, rc, "%s: cannot create directory: %s", dir, goop_strerror(rc));
    goto out;
  }
  rc = goop__write_file_atomic(path, text, strlen(text), 0644);
  if (rc < 0)
    rc = goop__errbuf(errbuf, errbuf_len, rc, "%s: cannot write: %s", path, goop_strerror(rc));
out:
  free(dir);
  free(text);
  return rc;
}

int goop_config_ensure(const char *path, goop_config **ret, bool *ret_created, char *errbuf,
                       size_t errbuf_len) {
  goop_return_val_if_fail(path != NULL && ret != NULL, GOOP_EINVAL);
  struct stat st;
  if (lstat(path, &st) == 0 || errno != ENOENT) {
    int rc = goop_config_load(path, ret, errbuf, errbuf_len);
    if (rc == 0 && ret_created)
      *ret_created = false;
    return rc;
  }
  goop_config *cfg = NULL;
  int rc = goop_config_new_default(&cfg);
  if (rc < 0)
    return goop__errbuf(errbuf, errbuf_len, rc, "out of memory");
  cfg->base_dir = dir_of(path);
  if (!cfg->base_dir) {
    goop_config_free(cfg);
    return goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "out of memory");
  }
  rc = goop_config_save(cfg, path, errbuf, errbuf_len);
  if (rc < 0) {
    goop_config_free(cfg);
    return rc;
  }
  *ret = cfg;
  if (ret_created)
    *ret_created = true;
  return 0;
}
