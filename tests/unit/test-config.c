/* Unit tests: goop.json parsing, defaults, validation messages, files. */
#include <fcntl.h>
#include <goop/config.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

static char tmpdir[256];

static char *tmp_path(const char *name) {
  static char buf[64][512];
  static int n;
  char *p = buf[n++ % 64];
  snprintf(p, 512, "%s/%s", tmpdir, name);
  return p;
}

static int write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  size_t w = fwrite(data, 1, len, f);
  fclose(f);
  return w == len ? 0 : -1;
}

static char *read_all(const char *path, size_t *ret_len) {
  uint8_t *d = NULL;
  size_t n = 0;
  if (goop__read_file(path, 1 << 22, &d, &n) < 0)
    return NULL;
  if (ret_len)
    *ret_len = n;
  return (char *)d;
}

/* Parse |json|; return the code and the message in |msg|. */
static int parse(const char *json, char *msg, size_t msg_len) {
  goop_config *cfg = NULL;
  msg[0] = '\0';
  int rc = goop_config_parse(json, strlen(json), "/peer", &cfg, msg, msg_len);
  goop_config_free(cfg);
  return rc;
}

#define CHECK_VALID(json)                                                                                    \
  do {                                                                                                       \
    char m_[GOOP_ERRBUF_SIZE];                                                                               \
    int rc_ = parse((json), m_, sizeof(m_));                                                                 \
    CHECK_INT_EQ(rc_, 0);                                                                                    \
    if (rc_)                                                                                                 \
      printf("#   json %s: %s\n", (json), m_);                                                               \
  } while (0)

#define CHECK_MSG(json, code, want)                                                                          \
  do {                                                                                                       \
    char m_[GOOP_ERRBUF_SIZE];                                                                               \
    CHECK_INT_EQ(parse((json), m_, sizeof(m_)), (code));                                                     \
    CHECK_STR_EQ(m_, (want));                                                                                \
  } while (0)

#define PEER_A "12D3KooWStsyGrt7Z9SCz6MrLeTWNrNMgWTakXqYu6Yh5NX5M366"

static void test_defaults(void) {
  goop_config *cfg = NULL;
  CHECK_INT_EQ(goop_config_new_default(&cfg), 0);
  CHECK(cfg != NULL);
  CHECK_INT_EQ(goop_config_validate(cfg, NULL, 0), 0);
  CHECK(goop_config_base_dir(cfg) == NULL);

  struct {
    const char *key, *s;
  } strs[] = {
      {"identity.key_file", "data/identity.key"},
      {"paths.site_root", "site"},
      {"paths.site_source", "site/src"},
      {"paths.site_stage", "site/stage"},
      {"p2p.mdns_tag", "goop-mdns"},
      {"presence.topic", "goop.presence.v1"},
      {"presence.rendezvous_bind", "127.0.0.1"},
      {"presence.rendezvous_wan", ""},
      {"presence.admin_password", ""},
      {"presence.templates_dir", "templates"},
      {"presence.peer_db_path", ""},
      {"presence.external_url", ""},
      {"presence.relay_key_file", "data/relay.key"},
      {"presence.credits_url", ""},
      {"presence.registration_url", ""},
      {"presence.email_url", ""},
      {"presence.credits_admin_token", ""},
      {"presence.registration_admin_token", ""},
      {"profile.label", "hello"},
      {"profile.email", ""},
      {"viewer.http_addr", "127.0.0.1:8080"},
      {"viewer.theme", "dark"},
      {"viewer.preferred_cam", ""},
      {"viewer.preferred_mic", ""},
      {"lua.script_dir", "site/lua"},
  };
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(strs); i++) {
    CHECK_INT_EQ(goop_config_key_type(strs[i].key), GOOP_CONFIG_STRING);
    CHECK_STR_EQ(goop_config_get_string(cfg, strs[i].key), strs[i].s);
  }
  struct {
    const char *key;
    int64_t v;
  } ints[] = {
      {"p2p.listen_port", 0},
      {"presence.ttl_seconds", 20},
      {"presence.heartbeat_seconds", 5},
      {"presence.rendezvous_port", 8787},
      {"presence.relay_port", 0},
      {"presence.relay_circuit_seconds", 1800},
      {"presence.relay_circuit_bytes", 16777216},
      {"presence.relay_reservation_seconds", 3600},
      {"presence.relay_max_reservations", 1024},
      {"presence.relay_max_reservations_per_ip", 8},
      {"presence.relay_max_circuits", 1024},
      {"presence.relay_max_circuits_per_peer", 16},
      {"presence.rendezvous_max_subscribers", 100000},
      {"presence.rendezvous_max_subscribers_per_ip", 10},
      {"presence.rendezvous_subscriber_queue", 64},
      {"presence.rendezvous_publish_per_minute", 60},
      {"presence.rendezvous_max_peers", 100000},
      {"lua.timeout_seconds", 5},
      {"lua.max_memory_mb", 10},
      {"lua.rate_limit_per_peer", 30},
      {"lua.rate_limit_global", 120},
  };
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(ints); i++) {
    CHECK_INT_EQ(goop_config_key_type(ints[i].key), GOOP_CONFIG_INT);
    CHECK_INT_EQ(goop_config_get_int(cfg, ints[i].key), ints[i].v);
  }
  struct {
    const char *key;
    bool v;
  } bools[] = {
      {"p2p.relay_reserve", true},
      {"p2p.hole_punching", true},
      {"p2p.mdns", true},
      {"presence.rendezvous_host", false},
      {"presence.rendezvous_only", false},
      {"viewer.debug", false},
      {"viewer.video_disabled", false},
      {"viewer.hide_unverified", false},
      {"lua.enabled", false},
      {"lua.http_enabled", true},
      {"lua.kv_enabled", true},
  };
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(bools); i++) {
    CHECK_INT_EQ(goop_config_key_type(bools[i].key), GOOP_CONFIG_BOOL);
    CHECK_INT_EQ(goop_config_get_bool(cfg, bools[i].key), bools[i].v);
  }
  CHECK_INT_EQ(goop_config_key_type("p2p.bootstrap"), GOOP_CONFIG_STRV);
  CHECK_INT_EQ(goop_config_key_type("presence.templates_dirs"), GOOP_CONFIG_STRV);
  CHECK_INT_EQ(goop_config_key_type("presence.rendezvous_trusted_proxies"), GOOP_CONFIG_STRV);
  CHECK_INT_EQ(goop_config_get_strv_len(cfg, "p2p.bootstrap"), 0);
  CHECK_INT_EQ(goop_config_get_strv_len(cfg, "presence.templates_dirs"), 0);
  CHECK(goop_config_get_strv(cfg, "p2p.bootstrap", 0) == NULL);

  /* every key is covered above, and key_at lists them in goop.json order */
  size_t n = 0;
  while (goop_config_key_at(n))
    n++;
  CHECK_INT_EQ(n, GOOP_ARRAY_SIZE(strs) + GOOP_ARRAY_SIZE(ints) + GOOP_ARRAY_SIZE(bools) + 3);
  CHECK_STR_EQ(goop_config_key_at(0), "identity.key_file");
  CHECK_STR_EQ(goop_config_key_at(4), "p2p.listen_port");
  CHECK_STR_EQ(goop_config_key_at(5), "p2p.mdns_tag");
  CHECK_STR_EQ(goop_config_key_at(6), "p2p.bootstrap");
  CHECK_STR_EQ(goop_config_key_at(10), "presence.topic");
  CHECK_STR_EQ(goop_config_key_at(n - 1), "lua.kv_enabled");
  CHECK(goop_config_key_at(n) == NULL);

  /* unknown keys */
  CHECK_INT_EQ(goop_config_key_type("p2p.nope"), 0);
  CHECK_INT_EQ(goop_config_key_type("p2p"), 0);
  CHECK_INT_EQ(goop_config_key_type(NULL), 0);
  CHECK(goop_config_get_string(cfg, "nope") == NULL);
  CHECK(goop_config_get_string(cfg, "p2p.listen_port") == NULL);
  CHECK_INT_EQ(goop_config_get_int(cfg, "nope"), 0);
  CHECK_INT_EQ(goop_config_get_bool(cfg, "nope"), 0);
  goop_config_free(cfg);
  goop_config_free(NULL);

  /* "{}" gives the defaults too */
  CHECK_INT_EQ(goop_config_parse("{}", 2, NULL, &cfg, NULL, 0), 0);
  CHECK_STR_EQ(goop_config_get_string(cfg, "viewer.http_addr"), "127.0.0.1:8080");
  goop_config_free(cfg);
}

static void test_setters(void) {
  goop_config *cfg = NULL;
  CHECK_INT_EQ(goop_config_new_default(&cfg), 0);
  CHECK_INT_EQ(goop_config_set_string(cfg, "profile.label", "alice"), 0);
  CHECK_STR_EQ(goop_config_get_string(cfg, "profile.label"), "alice");
  CHECK_INT_EQ(goop_config_set_int(cfg, "p2p.listen_port", 4001), 0);
  CHECK_INT_EQ(goop_config_get_int(cfg, "p2p.listen_port"), 4001);
  CHECK_INT_EQ(goop_config_set_bool(cfg, "lua.enabled", true), 0);
  CHECK(goop_config_get_bool(cfg, "lua.enabled"));
  const char *dirs[] = {"a", "b/c"};
  CHECK_INT_EQ(goop_config_set_strv(cfg, "presence.templates_dirs", dirs, 2), 0);
  CHECK_INT_EQ(goop_config_get_strv_len(cfg, "presence.templates_dirs"), 2);
  CHECK_STR_EQ(goop_config_get_strv(cfg, "presence.templates_dirs", 1), "b/c");
  CHECK(goop_config_get_strv(cfg, "presence.templates_dirs", 2) == NULL);
  CHECK_INT_EQ(goop_config_set_strv(cfg, "presence.templates_dirs", NULL, 0), 0);
  CHECK_INT_EQ(goop_config_get_strv_len(cfg, "presence.templates_dirs"), 0);

  /* wrong key or type */
  CHECK_INT_EQ(goop_config_set_string(cfg, "p2p.listen_port", "1"), GOOP_EINVAL);
  CHECK_INT_EQ(goop_config_set_string(cfg, "nope", "1"), GOOP_EINVAL);
  CHECK_INT_EQ(goop_config_set_int(cfg, "profile.label", 1), GOOP_EINVAL);
  CHECK_INT_EQ(goop_config_set_bool(cfg, "p2p.listen_port", true), GOOP_EINVAL);
  CHECK_INT_EQ(goop_config_set_strv(cfg, "profile.label", dirs, 2), GOOP_EINVAL);
  CHECK_STR_EQ(goop_config_get_string(cfg, "profile.label"), "alice");

  /* setters do not validate; validate() does */
  CHECK_INT_EQ(goop_config_set_int(cfg, "p2p.listen_port", 70000), 0);
  char msg[GOOP_ERRBUF_SIZE];
  CHECK_INT_EQ(goop_config_validate(cfg, msg, sizeof(msg)), GOOP_ECONFIG);
  CHECK_STR_EQ(msg, "p2p.listen_port must be 0..65535");
  goop_config_free(cfg);
}

/* One config per message of goop.json(5), in the documented order. */
static void test_validation_messages(void) {
  CHECK_MSG("{\"identity\":{\"key_file\":\" \\t\"}}", GOOP_ECONFIG, "identity.key_file is required");
  CHECK_MSG("{\"paths\":{\"site_root\":\"\"}}", GOOP_ECONFIG, "paths.site_root is required");
  CHECK_MSG("{\"paths\":{\"site_source\":\"\"}}", GOOP_ECONFIG, "paths.site_source is required");
  CHECK_MSG("{\"paths\":{\"site_stage\":\" \"}}", GOOP_ECONFIG, "paths.site_stage is required");
  CHECK_MSG("{\"paths\":{\"site_source\":\"a/b\",\"site_stage\":\"./a//b/\"}}", GOOP_ECONFIG,
            "paths.site_source and paths.site_stage must differ");
  CHECK_MSG("{\"p2p\":{\"listen_port\":65536}}", GOOP_ECONFIG, "p2p.listen_port must be 0..65535");
  CHECK_MSG("{\"p2p\":{\"listen_port\":-1}}", GOOP_ECONFIG, "p2p.listen_port must be 0..65535");
  CHECK_MSG("{\"p2p\":{\"mdns_tag\":\"\"}}", GOOP_ECONFIG, "p2p.mdns_tag is required");
  CHECK_MSG("{\"p2p\":{\"bootstrap\":[\"not-a-multiaddr\"]}}", GOOP_ECONFIG,
            "p2p.bootstrap: invalid multiaddr \"not-a-multiaddr\"");
  CHECK_MSG("{\"p2p\":{\"bootstrap\":[\"/ip4/1.2.3.4/tcp/4001\"]}}", GOOP_ECONFIG,
            "p2p.bootstrap: \"/ip4/1.2.3.4/tcp/4001\" must end with /p2p/<peer-id>");
  CHECK_MSG("{\"presence\":{\"topic\":\"\"}}", GOOP_ECONFIG, "presence.topic is required");
  CHECK_MSG("{\"presence\":{\"ttl_seconds\":0}}", GOOP_ECONFIG, "presence.ttl_seconds must be > 0");
  CHECK_MSG("{\"presence\":{\"heartbeat_seconds\":0}}", GOOP_ECONFIG,
            "presence.heartbeat_seconds must be > 0");
  CHECK_MSG("{\"presence\":{\"heartbeat_seconds\":20}}", GOOP_ECONFIG,
            "presence.heartbeat_seconds must be < presence.ttl_seconds");
  CHECK_MSG("{\"presence\":{\"rendezvous_only\":true}}", GOOP_ECONFIG,
            "presence.rendezvous_only requires presence.rendezvous_host=true");
  CHECK_MSG("{\"presence\":{\"rendezvous_host\":true,\"rendezvous_port\":0}}", GOOP_ECONFIG,
            "presence.rendezvous_port must be 1..65535 when rendezvous_host is enabled");
  CHECK_MSG("{\"presence\":{\"rendezvous_host\":true,\"rendezvous_port\":65536}}", GOOP_ECONFIG,
            "presence.rendezvous_port must be 1..65535 when rendezvous_host is enabled");
  CHECK_MSG("{\"presence\":{\"rendezvous_host\":true,\"rendezvous_bind\":\"localhost\"}}", GOOP_ECONFIG,
            "presence.rendezvous_bind must be a valid IP address");
  CHECK_MSG("{\"presence\":{\"relay_circuit_seconds\":-1}}", GOOP_ECONFIG,
            "presence.relay_circuit_seconds must be 0..604800");
  CHECK_MSG("{\"presence\":{\"relay_reservation_seconds\":10}}", GOOP_ECONFIG,
            "presence.relay_reservation_seconds must be 60..86400");
  CHECK_MSG("{\"presence\":{\"relay_max_circuits\":0}}", GOOP_ECONFIG,
            "presence.relay_max_circuits must be 1..1000000");
  CHECK_MSG("{\"presence\":{\"rendezvous_subscriber_queue\":0}}", GOOP_ECONFIG,
            "presence.rendezvous_subscriber_queue must be 1..65536");
  CHECK_MSG("{\"presence\":{\"rendezvous_max_subscribers_per_ip\":0}}", GOOP_ECONFIG,
            "presence.rendezvous_max_subscribers_per_ip must be 1..10000000");
  CHECK_MSG("{\"presence\":{\"rendezvous_trusted_proxies\":[\"10.0.0.0/8\",\"::1\",\"10.0.0.0/33\"]}}",
            GOOP_ECONFIG,
            "presence.rendezvous_trusted_proxies: \"10.0.0.0/33\" is not an IP address or CIDR block");
  CHECK_MSG("{\"presence\":{\"rendezvous_trusted_proxies\":[\"proxy.example\"]}}", GOOP_ECONFIG,
            "presence.rendezvous_trusted_proxies: \"proxy.example\" is not an IP address or CIDR block");
  CHECK_VALID("{\"presence\":{\"rendezvous_trusted_proxies\":[\"192.0.2.1\",\"2001:db8::/32\"]}}");
  CHECK_MSG("{\"presence\":{\"relay_port\":4001}}", GOOP_ECONFIG,
            "presence.relay_port requires presence.rendezvous_host=true");
  CHECK_MSG("{\"presence\":{\"rendezvous_host\":true,\"relay_port\":65536}}", GOOP_ECONFIG,
            "presence.relay_port must be 1..65535");
  CHECK_MSG(
      "{\"presence\":{\"rendezvous_wan\":\"http://exa mple.com\"}}", GOOP_ECONFIG,
      "presence.rendezvous_wan: invalid url: parse \"http://exa mple.com\": invalid character in host name");
  CHECK_MSG("{\"presence\":{\"rendezvous_wan\":\"ftp://example.com\"}}", GOOP_ECONFIG,
            "presence.rendezvous_wan: scheme must be http or https");
  CHECK_MSG("{\"presence\":{\"rendezvous_wan\":\"http:example.com\"}}", GOOP_ECONFIG,
            "presence.rendezvous_wan: missing host");
  CHECK_MSG("{\"presence\":{\"rendezvous_wan\":\"http://:8787\"}}", GOOP_ECONFIG,
            "presence.rendezvous_wan: missing hostname");
  CHECK_MSG("{\"presence\":{\"rendezvous_wan\":\"http://0.0.0.0:8787\"}}", GOOP_ECONFIG,
            "presence.rendezvous_wan: host must not be 0.0.0.0");
  CHECK_MSG("{\"presence\":{\"rendezvous_wan\":\"http://[::]:8787\"}}", GOOP_ECONFIG,
            "presence.rendezvous_wan: host must not be unspecified");
  CHECK_MSG("{\"presence\":{\"rendezvous_wan\":\"http://example.com:0\"}}", GOOP_ECONFIG,
            "presence.rendezvous_wan: invalid port");
  CHECK_MSG("{\"viewer\":{\"http_addr\":\"localhost\"}}", GOOP_ECONFIG, "viewer.http_addr must be host:port");
  CHECK_MSG("{\"lua\":{\"enabled\":true,\"script_dir\":\"\"}}", GOOP_ECONFIG,
            "lua.script_dir is required when lua is enabled");
  CHECK_MSG("{\"lua\":{\"enabled\":true,\"timeout_seconds\":0}}", GOOP_ECONFIG,
            "lua.timeout_seconds must be 1..60");
  CHECK_MSG("{\"lua\":{\"enabled\":true,\"timeout_seconds\":61}}", GOOP_ECONFIG,
            "lua.timeout_seconds must be 1..60");
  CHECK_MSG("{\"lua\":{\"enabled\":true,\"rate_limit_per_peer\":0}}", GOOP_ECONFIG,
            "lua.rate_limit_per_peer must be > 0");
  CHECK_MSG("{\"lua\":{\"enabled\":true,\"rate_limit_global\":-5}}", GOOP_ECONFIG,
            "lua.rate_limit_global must be > 0");
  CHECK_MSG("{\"lua\":{\"enabled\":true,\"max_memory_mb\":0}}", GOOP_ECONFIG,
            "lua.max_memory_mb must be 1..1024");
  CHECK_MSG("{\"lua\":{\"enabled\":true,\"max_memory_mb\":1025}}", GOOP_ECONFIG,
            "lua.max_memory_mb must be 1..1024");
}

/* Several violations at once: the earliest rule in the documented order wins. */
static void test_validation_order(void) {
  CHECK_MSG("{\"lua\":{\"enabled\":true,\"timeout_seconds\":0},\"identity\":{\"key_file\":\"\"},"
            "\"p2p\":{\"listen_port\":-1}}",
            GOOP_ECONFIG, "identity.key_file is required");
  CHECK_MSG("{\"p2p\":{\"mdns_tag\":\"\",\"bootstrap\":[\"x\"]}}", GOOP_ECONFIG, "p2p.mdns_tag is required");
  CHECK_MSG("{\"p2p\":{\"bootstrap\":[\"x\"]},\"presence\":{\"topic\":\"\"}}", GOOP_ECONFIG,
            "p2p.bootstrap: invalid multiaddr \"x\"");
  CHECK_MSG("{\"presence\":{\"ttl_seconds\":0,\"heartbeat_seconds\":0}}", GOOP_ECONFIG,
            "presence.ttl_seconds must be > 0");
  CHECK_MSG("{\"presence\":{\"rendezvous_only\":true,\"relay_port\":1}}", GOOP_ECONFIG,
            "presence.rendezvous_only requires presence.rendezvous_host=true");
  CHECK_MSG("{\"presence\":{\"rendezvous_host\":true,\"rendezvous_port\":0,\"rendezvous_bind\":\"x\"}}",
            GOOP_ECONFIG, "presence.rendezvous_port must be 1..65535 when rendezvous_host is enabled");
  CHECK_MSG("{\"presence\":{\"relay_port\":99999,\"rendezvous_wan\":\"ftp://x\"}}", GOOP_ECONFIG,
            "presence.relay_port requires presence.rendezvous_host=true");
  CHECK_MSG("{\"presence\":{\"rendezvous_wan\":\"ftp://x\"},\"viewer\":{\"http_addr\":\"x\"}}", GOOP_ECONFIG,
            "presence.rendezvous_wan: scheme must be http or https");
  CHECK_MSG("{\"viewer\":{\"http_addr\":\"x\"},\"lua\":{\"enabled\":true,\"script_dir\":\"\"}}", GOOP_ECONFIG,
            "viewer.http_addr must be host:port");
  CHECK_MSG("{\"lua\":{\"enabled\":true,\"timeout_seconds\":0,\"max_memory_mb\":0}}", GOOP_ECONFIG,
            "lua.timeout_seconds must be 1..60");
  CHECK_MSG("{\"lua\":{\"enabled\":true,\"rate_limit_global\":0,\"max_memory_mb\":0}}", GOOP_ECONFIG,
            "lua.rate_limit_global must be > 0");
}

static void test_validation_accepts(void) {
  /* limits and things the rules allow */
  CHECK_VALID("{\"p2p\":{\"listen_port\":65535}}");
  CHECK_VALID("{\"presence\":{\"relay_port\":-1}}");
  CHECK_VALID("{\"presence\":{\"rendezvous_port\":0}}");            /* only checked when hosting */
  CHECK_VALID("{\"presence\":{\"rendezvous_bind\":\"nonsense\"}}"); /* only checked when hosting */
  CHECK_VALID("{\"presence\":{\"rendezvous_host\":true,\"rendezvous_bind\":\"\"}}");
  CHECK_VALID("{\"presence\":{\"rendezvous_host\":true,\"rendezvous_bind\":\"::1\",\"relay_port\":65535}}");
  CHECK_VALID(
      "{\"presence\":{\"rendezvous_host\":true,\"rendezvous_only\":true,\"rendezvous_bind\":\"0.0.0.0\"}}");
  CHECK_VALID("{\"presence\":{\"rendezvous_wan\":\"http://127.0.0.1:8787\"}}");
  CHECK_VALID("{\"presence\":{\"rendezvous_wan\":\"https://rdv.example.com/\"}}");
  CHECK_VALID("{\"presence\":{\"rendezvous_wan\":\"HTTPS://rdv.example.com:443/base\"}}");
  CHECK_VALID("{\"presence\":{\"rendezvous_wan\":\"http://[::1]:8787\"}}");
  CHECK_VALID("{\"presence\":{\"rendezvous_wan\":\"http://user:pw@localhost:65535\"}}");
  CHECK_VALID("{\"presence\":{\"rendezvous_wan\":\"  \"}}");
  CHECK_VALID("{\"viewer\":{\"http_addr\":\"\"}}");
  CHECK_VALID("{\"viewer\":{\"http_addr\":\":8080\"}}");
  CHECK_VALID("{\"viewer\":{\"http_addr\":\"0.0.0.0:8080\"}}");
  CHECK_VALID("{\"viewer\":{\"http_addr\":\"[::1]:8080\"}}");
  CHECK_VALID("{\"viewer\":{\"http_addr\":\"localhost:0\"}}");
  CHECK_VALID("{\"lua\":{\"enabled\":false,\"timeout_seconds\":0,\"script_dir\":\"\"}}");
  CHECK_VALID("{\"lua\":{\"enabled\":true,\"timeout_seconds\":60,\"max_memory_mb\":1024}}");
  CHECK_VALID("{\"paths\":{\"site_source\":\"a\",\"site_stage\":\"a/b\"}}");

  /* more URL reasons */
  char m[GOOP_ERRBUF_SIZE];
  CHECK_INT_EQ(parse("{\"presence\":{\"rendezvous_wan\":\"://x\"}}", m, sizeof(m)), GOOP_ECONFIG);
  CHECK(strncmp(m, "presence.rendezvous_wan: invalid url: ", 38) == 0);
  CHECK_INT_EQ(parse("{\"presence\":{\"rendezvous_wan\":\"http://x:abc\"}}", m, sizeof(m)), GOOP_ECONFIG);
  CHECK(strncmp(m, "presence.rendezvous_wan: invalid url: ", 38) == 0);
  CHECK_INT_EQ(parse("{\"presence\":{\"rendezvous_wan\":\"http://[::1\"}}", m, sizeof(m)), GOOP_ECONFIG);
  CHECK(strncmp(m, "presence.rendezvous_wan: invalid url: ", 38) == 0);
  CHECK_MSG("{\"presence\":{\"rendezvous_wan\":\"example.com\"}}", GOOP_ECONFIG,
            "presence.rendezvous_wan: scheme must be http or https");
  CHECK_MSG("{\"presence\":{\"rendezvous_wan\":\"localhost:8787\"}}", GOOP_ECONFIG,
            "presence.rendezvous_wan: scheme must be http or https");
  CHECK_MSG("{\"presence\":{\"rendezvous_wan\":\"http://\"}}", GOOP_ECONFIG,
            "presence.rendezvous_wan: missing host");
  CHECK_MSG("{\"presence\":{\"rendezvous_wan\":\"http://x:65536\"}}", GOOP_ECONFIG,
            "presence.rendezvous_wan: invalid port");
  CHECK_MSG("{\"presence\":{\"rendezvous_wan\":\"http://[::ffff:0.0.0.0]\"}}", GOOP_ECONFIG,
            "presence.rendezvous_wan: host must not be unspecified");
  CHECK_MSG("{\"viewer\":{\"http_addr\":\"127.0.0.1:65536\"}}", GOOP_ECONFIG,
            "viewer.http_addr must be host:port");
  CHECK_MSG("{\"viewer\":{\"http_addr\":\"[::1]8080\"}}", GOOP_ECONFIG, "viewer.http_addr must be host:port");
  CHECK_MSG("{\"viewer\":{\"http_addr\":\"a b:80\"}}", GOOP_ECONFIG, "viewer.http_addr must be host:port");
}

static void test_bootstrap(void) {
  CHECK_VALID("{\"p2p\":{\"bootstrap\":[]}}");
  CHECK_VALID("{\"p2p\":{\"bootstrap\":null}}");
  CHECK_VALID("{\"p2p\":{\"bootstrap\":[\"/ip4/192.0.2.1/tcp/4001/p2p/" PEER_A "\"]}}");
  CHECK_VALID("{\"p2p\":{\"bootstrap\":[\"/ip6/::1/tcp/4001/p2p/" PEER_A "\","
              "\"/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN\"]}}");
  CHECK_MSG("{\"p2p\":{\"bootstrap\":[\"/ip4/192.0.2.1/tcp/4001/p2p/" PEER_A "\",\"/ip4/1.2.3.4/tcp/1\"]}}",
            GOOP_ECONFIG, "p2p.bootstrap: \"/ip4/1.2.3.4/tcp/1\" must end with /p2p/<peer-id>");
  CHECK_MSG("{\"p2p\":{\"bootstrap\":[\"/ip4/1.2.3.4/tcp/99999/p2p/" PEER_A "\"]}}", GOOP_ECONFIG,
            "p2p.bootstrap: invalid multiaddr \"/ip4/1.2.3.4/tcp/99999/p2p/" PEER_A "\"");
  CHECK_MSG("{\"p2p\":{\"bootstrap\":[\"\"]}}", GOOP_ECONFIG, "p2p.bootstrap: invalid multiaddr \"\"");
  CHECK_MSG("{\"p2p\":{\"bootstrap\":[\"/p2p/" PEER_A "/ip4/1.2.3.4\"]}}", GOOP_ECONFIG,
            "p2p.bootstrap: \"/p2p/" PEER_A "/ip4/1.2.3.4\" must end with /p2p/<peer-id>");

  goop_config *cfg = NULL;
  const char *j = "{\"p2p\":{\"bootstrap\":[\"/ip4/192.0.2.1/tcp/4001/p2p/" PEER_A "\"]}}";
  CHECK_INT_EQ(goop_config_parse(j, strlen(j), NULL, &cfg, NULL, 0), 0);
  CHECK_INT_EQ(goop_config_get_strv_len(cfg, "p2p.bootstrap"), 1);
  CHECK_STR_EQ(goop_config_get_strv(cfg, "p2p.bootstrap", 0), "/ip4/192.0.2.1/tcp/4001/p2p/" PEER_A);
  goop_config_free(cfg);
}

static void test_json_types(void) {
  CHECK_MSG("{\"p2p\":{\"listen_port\":\"4001\"}}", GOOP_EPARSE, "p2p.listen_port: expected an integer");
  CHECK_MSG("{\"p2p\":{\"listen_port\":4001.0}}", GOOP_EPARSE, "p2p.listen_port: expected an integer");
  CHECK_MSG("{\"p2p\":{\"listen_port\":true}}", GOOP_EPARSE, "p2p.listen_port: expected an integer");
  CHECK_MSG("{\"profile\":{\"label\":5}}", GOOP_EPARSE, "profile.label: expected a string");
  CHECK_MSG("{\"profile\":{\"label\":[\"a\"]}}", GOOP_EPARSE, "profile.label: expected a string");
  CHECK_MSG("{\"lua\":{\"enabled\":1}}", GOOP_EPARSE, "lua.enabled: expected a boolean");
  CHECK_MSG("{\"lua\":{\"enabled\":\"true\"}}", GOOP_EPARSE, "lua.enabled: expected a boolean");
  CHECK_MSG("{\"presence\":{\"templates_dirs\":\"a\"}}", GOOP_EPARSE,
            "presence.templates_dirs: expected an array of strings");
  CHECK_MSG("{\"presence\":{\"templates_dirs\":[\"a\",1]}}", GOOP_EPARSE,
            "presence.templates_dirs: expected an array of strings");
  CHECK_MSG("{\"p2p\":[]}", GOOP_EPARSE, "p2p: expected an object");
  CHECK_MSG("{\"viewer\":\"x\"}", GOOP_EPARSE, "viewer: expected an object");
  CHECK_MSG("[]", GOOP_EPARSE, "expected a JSON object");
  char m[GOOP_ERRBUF_SIZE];
  CHECK_INT_EQ(parse("\"x\"", m, sizeof(m)), GOOP_EPARSE);
  CHECK_INT_EQ(parse("", m, sizeof(m)), GOOP_EPARSE);
  CHECK_INT_EQ(parse("{} {}", m, sizeof(m)), GOOP_EPARSE);
  CHECK_INT_EQ(parse("{\"profile\":{\"label\":\"a\\u0000b\"}}", m, sizeof(m)), GOOP_EPARSE);
  CHECK_INT_EQ(parse("{\"profile\":{\"label\":\"\xff\"}}", m, sizeof(m)), GOOP_EPARSE);
  CHECK_INT_EQ(parse("{\"p2p\":{\"listen_port\":99999999999999999999999}}", m, sizeof(m)), GOOP_EPARSE);

  /* null keeps the default (empties an array); unknown keys and sections are ignored */
  goop_config *cfg = NULL;
  const char *j = "{\"profile\":{\"label\":null,\"nickname\":\"x\"},\"presence\":{\"templates_dirs\":null,"
                  "\"registration_credits\":5},\"extra\":{\"a\":[1,2]},\"lua\":null,\"top\":1}";
  CHECK_INT_EQ(goop_config_parse(j, strlen(j), NULL, &cfg, m, sizeof(m)), 0);
  CHECK_STR_EQ(goop_config_get_string(cfg, "profile.label"), "hello");
  CHECK_INT_EQ(goop_config_get_strv_len(cfg, "presence.templates_dirs"), 0);
  goop_config_free(cfg);

  /* duplicate keys: the last one wins */
  j = "{\"profile\":{\"label\":\"a\",\"label\":\"b\"}}";
  CHECK_INT_EQ(goop_config_parse(j, strlen(j), NULL, &cfg, m, sizeof(m)), 0);
  CHECK_STR_EQ(goop_config_get_string(cfg, "profile.label"), "b");
  goop_config_free(cfg);

  /* keys are matched exactly */
  j = "{\"Profile\":{\"Label\":\"a\"}}";
  CHECK_INT_EQ(goop_config_parse(j, strlen(j), NULL, &cfg, m, sizeof(m)), 0);
  CHECK_STR_EQ(goop_config_get_string(cfg, "profile.label"), "hello");
  goop_config_free(cfg);
}

static void test_line_column(void) {
  char m[GOOP_ERRBUF_SIZE];
  const char *j = "{\n  \"p2p\": {\n    \"listen_port\": 12,,\n  }\n}\n";
  CHECK_INT_EQ(parse(j, m, sizeof(m)), GOOP_EPARSE);
  CHECK(strncmp(m, "3:", 2) == 0);
  printf("# message: %s\n", m);
  int line = 0, col = 0;
  CHECK_INT_EQ(sscanf(m, "%d:%d:", &line, &col), 2);
  CHECK_INT_EQ(line, 3);
  CHECK(col >= 20 && col <= 23);

  /* with a BOM the position is still counted from the first line */
  const char *jb = "\xef\xbb\xbf{\n\"a\": }";
  CHECK_INT_EQ(parse(jb, m, sizeof(m)), GOOP_EPARSE);
  CHECK(strncmp(m, "2:", 2) == 0);
}

static void test_bom(void) {
  goop_config *cfg = NULL;
  const char *j = "\xef\xbb\xbf{\"profile\":{\"label\":\"bom\"}}";
  CHECK_INT_EQ(goop_config_parse(j, strlen(j), NULL, &cfg, NULL, 0), 0);
  CHECK_STR_EQ(goop_config_get_string(cfg, "profile.label"), "bom");
  goop_config_free(cfg);
  /* only one BOM is skipped */
  char m[GOOP_ERRBUF_SIZE];
  CHECK_INT_EQ(parse("\xef\xbb\xbf\xef\xbb\xbf{}", m, sizeof(m)), GOOP_EPARSE);
  /* a lone BOM is an empty document */
  CHECK_INT_EQ(parse("\xef\xbb\xbf", m, sizeof(m)), GOOP_EPARSE);
}

static void test_trailing_slash(void) {
  goop_config *cfg = NULL;
  const char *j = "{\"presence\":{\"rendezvous_wan\":\"https://rdv.example.com//\","
                  "\"external_url\":\"https://x.example/base/\",\"credits_url\":\"http://c/\"}}";
  CHECK_INT_EQ(goop_config_parse(j, strlen(j), NULL, &cfg, NULL, 0), 0);
  CHECK_STR_EQ(goop_config_get_string(cfg, "presence.rendezvous_wan"), "https://rdv.example.com");
  CHECK_STR_EQ(goop_config_get_string(cfg, "presence.external_url"), "https://x.example/base");
  CHECK_STR_EQ(goop_config_get_string(cfg, "presence.credits_url"), "http://c/");
  goop_config_free(cfg);
}

static void test_size_limit(void) {
  size_t n = 1024 * 1024 + 16;
  char *big = malloc(n + 1);
  memset(big, ' ', n);
  big[0] = '{';
  big[n - 1] = '}';
  big[n] = '\0';
  goop_config *cfg = NULL;
  char m[GOOP_ERRBUF_SIZE];
  CHECK_INT_EQ(goop_config_parse(big, n, NULL, &cfg, m, sizeof(m)), GOOP_EPARSE);
  CHECK(cfg == NULL);
  free(big);
  /* deep nesting is rejected cleanly */
  size_t depth = 100000;
  char *deep = malloc(depth + 1);
  memset(deep, '[', depth);
  deep[depth] = '\0';
  CHECK_INT_EQ(goop_config_parse(deep, depth, NULL, &cfg, m, sizeof(m)), GOOP_EPARSE);
  free(deep);
}

static void test_paths(void) {
  goop_config *cfg = NULL;
  const char *j =
      "{\"identity\":{\"key_file\":\"/etc/../keys/./id.key\"},\"paths\":{\"site_root\":\"../www/\"},"
      "\"lua\":{\"script_dir\":\"site//lua/\"}}";
  CHECK_INT_EQ(goop_config_parse(j, strlen(j), "/srv/peer", &cfg, NULL, 0), 0);
  CHECK_STR_EQ(goop_config_base_dir(cfg), "/srv/peer");
  char *p = goop_config_resolve_path(cfg, "identity.key_file");
  CHECK_STR_EQ(p, "/keys/id.key");
  free(p);
  p = goop_config_resolve_path(cfg, "paths.site_root");
  CHECK_STR_EQ(p, "/srv/www");
  free(p);
  p = goop_config_resolve_path(cfg, "lua.script_dir");
  CHECK_STR_EQ(p, "/srv/peer/site/lua");
  free(p);
  const char *path_keys[] = {"paths.site_source", "paths.site_stage", "presence.templates_dir",
                             "presence.relay_key_file"};
  const char *want[] = {"/srv/peer/site/src", "/srv/peer/site/stage", "/srv/peer/templates",
                        "/srv/peer/data/relay.key"};
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(path_keys); i++) {
    p = goop_config_resolve_path(cfg, path_keys[i]);
    CHECK_STR_EQ(p, want[i]);
    free(p);
  }
  /* empty path values and non-path keys resolve to nothing */
  CHECK(goop_config_resolve_path(cfg, "presence.peer_db_path") == NULL);
  CHECK(goop_config_resolve_path(cfg, "profile.label") == NULL);
  CHECK(goop_config_resolve_path(cfg, "p2p.listen_port") == NULL);
  CHECK(goop_config_resolve_path(cfg, "nope") == NULL);
  CHECK_INT_EQ(goop_config_set_string(cfg, "presence.peer_db_path", "data/peers.db"), 0);
  p = goop_config_resolve_path(cfg, "presence.peer_db_path");
  CHECK_STR_EQ(p, "/srv/peer/data/peers.db");
  free(p);
  goop_config_free(cfg);

  /* without a base directory relative paths stay relative (cleaned) */
  CHECK_INT_EQ(goop_config_new_default(&cfg), 0);
  p = goop_config_resolve_path(cfg, "identity.key_file");
  CHECK_STR_EQ(p, "data/identity.key");
  free(p);
  goop_config_free(cfg);
}

static void test_json_output(void) {
  goop_config *cfg = NULL;
  CHECK_INT_EQ(goop_config_new_default(&cfg), 0);
  char *text = goop_config_to_json(cfg);
  CHECK(text != NULL);
  const char *head = "{\n  \"identity\": {\n    \"key_file\": \"data/identity.key\"\n  },\n  \"paths\": {\n"
                     "    \"site_root\": \"site\",\n";
  CHECK(strncmp(text, head, strlen(head)) == 0);
  size_t n = strlen(text);
  CHECK(n > 2 && strcmp(text + n - 3, "}\n}\n") != 0 && strcmp(text + n - 2, "}\n") == 0);
  /* sections in order */
  const char *secs[] = {"\"identity\"", "\"paths\"",  "\"p2p\"", "\"presence\"",
                        "\"profile\"",  "\"viewer\"", "\"lua\""};
  const char *prev = text;
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(secs); i++) {
    const char *at = strstr(text, secs[i]);
    CHECK(at != NULL && at >= prev);
    if (at)
      prev = at;
  }
  /* every key in key_at order */
  prev = text;
  for (size_t i = 0; goop_config_key_at(i); i++) {
    char quoted[80];
    snprintf(quoted, sizeof(quoted), "\"%s\":", strchr(goop_config_key_at(i), '.') + 1);
    const char *at = strstr(prev, quoted);
    CHECK(at != NULL);
    if (at)
      prev = at;
  }
  CHECK(strstr(text, "    \"http_addr\": \"127.0.0.1:8080\",\n") != NULL);
  CHECK(strstr(text, "    \"bootstrap\": [],\n") != NULL);
  CHECK(strstr(text, "    \"rendezvous_trusted_proxies\": [],\n") != NULL);
  CHECK(strstr(text, "    \"listen_port\": 0,\n") != NULL);
  CHECK(strstr(text, "    \"kv_enabled\": true\n") != NULL);

  /* parse(to_json(x)) == x */
  CHECK_INT_EQ(goop_config_set_string(cfg, "profile.label", "Zo\xc3\xab \"quoted\" \\ \xe2\x9c\x93"), 0);
  CHECK_INT_EQ(goop_config_set_int(cfg, "p2p.listen_port", 4001), 0);
  CHECK_INT_EQ(goop_config_set_bool(cfg, "viewer.debug", true), 0);
  const char *dirs[] = {"a", "/b/c", ""};
  CHECK_INT_EQ(goop_config_set_strv(cfg, "presence.templates_dirs", dirs, 3), 0);
  const char *boot[] = {"/ip4/192.0.2.1/tcp/4001/p2p/" PEER_A};
  CHECK_INT_EQ(goop_config_set_strv(cfg, "p2p.bootstrap", boot, 1), 0);
  char *t1 = goop_config_to_json(cfg);
  goop_config *cfg2 = NULL;
  char m[GOOP_ERRBUF_SIZE] = "";
  CHECK_INT_EQ(goop_config_parse(t1, strlen(t1), NULL, &cfg2, m, sizeof(m)), 0);
  char *t2 = cfg2 ? goop_config_to_json(cfg2) : NULL;
  CHECK_STR_EQ(t1, t2);
  if (cfg2) {
    CHECK_STR_EQ(goop_config_get_string(cfg2, "profile.label"), "Zo\xc3\xab \"quoted\" \\ \xe2\x9c\x93");
    CHECK_INT_EQ(goop_config_get_int(cfg2, "p2p.listen_port"), 4001);
    CHECK(goop_config_get_bool(cfg2, "viewer.debug"));
    CHECK_INT_EQ(goop_config_get_strv_len(cfg2, "presence.templates_dirs"), 3);
    CHECK_STR_EQ(goop_config_get_strv(cfg2, "presence.templates_dirs", 2), "");
  }
  free(t1);
  free(t2);
  free(text);
  goop_config_free(cfg2);
  goop_config_free(cfg);
}

static void test_files(void) {
  char m[GOOP_ERRBUF_SIZE];
  goop_config *cfg = NULL;
  bool created = false;

  /* missing file: ensure writes the defaults (parent dirs created) */
  const char *p = tmp_path("a/b/goop.json");
  CHECK_INT_EQ(goop_config_ensure(p, &cfg, &created, m, sizeof(m)), 0);
  CHECK(created);
  CHECK_STR_EQ(goop_config_base_dir(cfg), tmp_path("a/b"));
  struct stat st;
  CHECK_INT_EQ(stat(p, &st), 0);
  CHECK_INT_EQ(st.st_mode & 0777, 0644);
  size_t n = 0;
  char *disk = read_all(p, &n);
  goop_config *def = NULL;
  CHECK_INT_EQ(goop_config_new_default(&def), 0);
  char *want = goop_config_to_json(def);
  CHECK_STR_EQ(disk, want);
  free(disk);
  free(want);
  goop_config_free(def);
  goop_config_free(cfg);
  cfg = NULL;

  /* second time: loaded, not rewritten */
  CHECK_INT_EQ(write_file(p, "{\"profile\":{\"label\":\"again\"}}", 29), 0);
  CHECK_INT_EQ(goop_config_ensure(p, &cfg, &created, m, sizeof(m)), 0);
  CHECK(!created);
  CHECK_STR_EQ(goop_config_get_string(cfg, "profile.label"), "again");
  goop_config_free(cfg);
  cfg = NULL;
  disk = read_all(p, NULL);
  CHECK_STR_EQ(disk, "{\"profile\":{\"label\":\"again\"}}");
  free(disk);

  /* load: relative paths resolve against the file's directory */
  CHECK_INT_EQ(goop_config_load(p, &cfg, m, sizeof(m)), 0);
  char *key = goop_config_resolve_path(cfg, "identity.key_file");
  CHECK_STR_EQ(key, tmp_path("a/b/data/identity.key"));
  free(key);

  /* save + load round trip */
  CHECK_INT_EQ(goop_config_set_int(cfg, "presence.ttl_seconds", 30), 0);
  const char *p2 = tmp_path("saved/goop.json");
  CHECK_INT_EQ(goop_config_save(cfg, p2, m, sizeof(m)), 0);
  goop_config *cfg2 = NULL;
  CHECK_INT_EQ(goop_config_load(p2, &cfg2, m, sizeof(m)), 0);
  CHECK_INT_EQ(goop_config_get_int(cfg2, "presence.ttl_seconds"), 30);
  CHECK_STR_EQ(goop_config_get_string(cfg2, "profile.label"), "again");
  goop_config_free(cfg2);

  /* save refuses an invalid configuration and writes nothing */
  CHECK_INT_EQ(goop_config_set_int(cfg, "presence.ttl_seconds", 0), 0);
  const char *p3 = tmp_path("invalid.json");
  CHECK_INT_EQ(goop_config_save(cfg, p3, m, sizeof(m)), GOOP_ECONFIG);
  CHECK_STR_EQ(m, "presence.ttl_seconds must be > 0");
  CHECK(access(p3, F_OK) != 0);
  goop_config_free(cfg);
  cfg = NULL;

  /* malformed file: error with path:line:column, file left byte-for-byte unchanged */
  const char *bad = "{\n  \"profile\": {\n    \"label\": x\n  }\n}\n";
  const char *pb = tmp_path("bad.json");
  CHECK_INT_EQ(write_file(pb, bad, strlen(bad)), 0);
  CHECK_INT_EQ(goop_config_ensure(pb, &cfg, &created, m, sizeof(m)), GOOP_EPARSE);
  CHECK(cfg == NULL);
  char prefix[600];
  snprintf(prefix, sizeof(prefix), "%s:3:", pb);
  CHECK(strncmp(m, prefix, strlen(prefix)) == 0);
  printf("# message: %s\n", m);
  disk = read_all(pb, &n);
  CHECK(disk && n == strlen(bad) && memcmp(disk, bad, n) == 0);
  free(disk);

  /* invalid values: the file is named, and left alone */
  const char *inv = "{\"presence\":{\"ttl_seconds\":0}}";
  const char *pi = tmp_path("inv.json");
  CHECK_INT_EQ(write_file(pi, inv, strlen(inv)), 0);
  CHECK_INT_EQ(goop_config_ensure(pi, &cfg, NULL, m, sizeof(m)), GOOP_ECONFIG);
  snprintf(prefix, sizeof(prefix), "%s: presence.ttl_seconds must be > 0", pi);
  CHECK_STR_EQ(m, prefix);
  disk = read_all(pi, NULL);
  CHECK_STR_EQ(disk, inv);
  free(disk);

  /* empty file, directory, missing file */
  const char *pe = tmp_path("empty.json");
  CHECK_INT_EQ(write_file(pe, "", 0), 0);
  CHECK_INT_EQ(goop_config_ensure(pe, &cfg, NULL, m, sizeof(m)), GOOP_EPARSE);
  disk = read_all(pe, &n);
  CHECK(disk && n == 0);
  free(disk);
  CHECK(goop_config_load(tmp_path("a"), &cfg, m, sizeof(m)) < 0);
  CHECK(strstr(m, tmp_path("a")) != NULL);
  CHECK_INT_EQ(goop_config_load(tmp_path("missing.json"), &cfg, m, sizeof(m)), GOOP_ENOENT);
  CHECK(strstr(m, "missing.json") != NULL);
  CHECK(cfg == NULL);

  /* a dangling symlink is not replaced */
  const char *pl = tmp_path("link.json");
  CHECK_INT_EQ(symlink(tmp_path("nowhere.json"), pl), 0);
  CHECK(goop_config_ensure(pl, &cfg, NULL, m, sizeof(m)) < 0);
  CHECK(access(tmp_path("nowhere.json"), F_OK) != 0);
}

int main(void) {
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/goop-test-config-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_defaults);
  RUN(test_setters);
  RUN(test_validation_messages);
  RUN(test_validation_order);
  RUN(test_validation_accepts);
  RUN(test_bootstrap);
  RUN(test_json_types);
  RUN(test_line_column);
  RUN(test_bom);
  RUN(test_trailing_slash);
  RUN(test_size_limit);
  RUN(test_paths);
  RUN(test_json_output);
  RUN(test_files);
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0)
    printf("# could not remove %s\n", tmpdir);
  return tap_done();
}
