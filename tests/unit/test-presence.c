/* Presence JSON: exact bytes and key order, omission rules, parse limits, address filters. */
#include <goop/presence.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

#define PID "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"

static char *enc(const struct goop_presence_msg *m) {
  char *out = NULL;
  size_t len = 0;
  if (goop_presence_msg_encode(m, &out, &len) != 0)
    return NULL;
  if (strlen(out) != len) {
    free(out);
    return NULL;
  }
  return out;
}

static void test_encode(void) {
  char *addrs[] = {"/ip4/192.168.1.5/tcp/4001", "/ip6/2001:db8::1/tcp/4001"};
  struct goop_presence_msg m = {.type = GOOP_PRESENCE_ONLINE,
                                .peer_id = PID,
                                .content = "Alice",
                                .email = "alice@example.org",
                                .avatar_hash = "0123456789abcdef",
                                .video_disabled = true,
                                .addrs = addrs,
                                .n_addrs = 2,
                                .ts = 1700000000123};
  char *s = enc(&m);
  CHECK_STR_EQ(
      s, "{\"type\":\"online\",\"peerId\":\"" PID "\",\"content\":\"Alice\",\"email\":\"alice@example.org\","
         "\"avatarHash\":\"0123456789abcdef\",\"videoDisabled\":true,"
         "\"addrs\":[\"/ip4/192.168.1.5/tcp/4001\",\"/ip6/2001:db8::1/tcp/4001\"],\"ts\":1700000000123}");
  free(s);
  /* Empty fields, false booleans and empty addrs are omitted; ts never is. */
  struct goop_presence_msg off = {.type = GOOP_PRESENCE_OFFLINE, .peer_id = PID, .content = "", .ts = 0};
  s = enc(&off);
  CHECK_STR_EQ(s, "{\"type\":\"offline\",\"peerId\":\"" PID "\",\"ts\":0}");
  free(s);
  struct goop_presence_msg up = {
      .type = GOOP_PRESENCE_UPDATE, .peer_id = PID, .email = "e", .ts = -5, .verified = true};
  s = enc(&up);
  CHECK_STR_EQ(s, "{\"type\":\"update\",\"peerId\":\"" PID "\",\"email\":\"e\",\"ts\":-5,\"verified\":true}");
  free(s);
  /* Go-style escapes. */
  struct goop_presence_msg esc = {.type = GOOP_PRESENCE_UPDATE,
                                  .peer_id = "p",
                                  .content = "a\"b\\c\n\t\x01<&>\xe2\x80\xa8\xc3\xa9\xff",
                                  .ts = 1};
  s = enc(&esc);
  CHECK_STR_EQ(
      s, "{\"type\":\"update\",\"peerId\":\"p\",\"content\":\"a\\\"b\\\\c\\n\\t\\u0001\\u003c\\u0026\\u003e"
         "\\u2028\xc3\xa9\\ufffd\",\"ts\":1}");
  free(s);
  /* Invalid input. */
  char *out = NULL;
  struct goop_presence_msg bad = {.type = GOOP_PRESENCE_UNKNOWN, .peer_id = PID};
  CHECK_INT_EQ(goop_presence_msg_encode(&bad, &out, NULL), GOOP_EINVAL);
  struct goop_presence_msg nopid = {.type = GOOP_PRESENCE_ONLINE, .peer_id = ""};
  CHECK_INT_EQ(goop_presence_msg_encode(&nopid, &out, NULL), GOOP_EINVAL);
}

static int parse(const char *s, struct goop_presence_msg *m) {
  return goop_presence_msg_parse(s, strlen(s), m);
}

static void test_parse(void) {
  struct goop_presence_msg m;
  const char *j =
      "{\"extra\":{\"x\":[1]},\"ts\":1700000000123,\"type\":\"online\",\"peerId\":\"" PID
      "\",\"content\":\"Al\\u00e9\",\"email\":\"a@b\",\"avatarHash\":\"00ff\",\"videoDisabled\":true,"
      "\"addrs\":[\"/ip4/1.2.3.4/tcp/1\"],\"verified\":false}";
  CHECK_INT_EQ(parse(j, &m), 0);
  CHECK_INT_EQ(m.type, GOOP_PRESENCE_ONLINE);
  CHECK_STR_EQ(m.peer_id, PID);
  CHECK_STR_EQ(m.content, "Al\xc3\xa9");
  CHECK_STR_EQ(m.email, "a@b");
  CHECK_STR_EQ(m.avatar_hash, "00ff");
  CHECK(m.video_disabled);
  CHECK(!m.verified);
  CHECK_INT_EQ(m.n_addrs, 1);
  CHECK_STR_EQ(m.addrs[0], "/ip4/1.2.3.4/tcp/1");
  CHECK(m.ts == 1700000000123);
  goop_presence_msg_clear(&m);
  CHECK(m.peer_id == NULL && m.n_addrs == 0);

  /* Minimal, nulls allowed. */
  CHECK_INT_EQ(
      parse("{\"type\":\"offline\",\"peerId\":\"x\",\"content\":null,\"addrs\":null,\"ts\":null}", &m), 0);
  CHECK_INT_EQ(m.type, GOOP_PRESENCE_OFFLINE);
  CHECK(m.content == NULL && m.n_addrs == 0 && m.ts == 0);
  goop_presence_msg_clear(&m);

  /* Unknown types: parsed but reported. */
  CHECK_INT_EQ(parse("{\"type\":\"punch\",\"peerId\":\"x\",\"target\":\"y\"}", &m), GOOP_ENOTSUP);
  CHECK_INT_EQ(m.type, GOOP_PRESENCE_UNKNOWN);
  CHECK_STR_EQ(m.peer_id, "x");
  goop_presence_msg_clear(&m);

  /* Malformed. */
  static const char *const bad[] = {
      "",
      "null",
      "[]",
      "\"online\"",
      "{",
      "{\"type\":\"online\"}",
      "{\"peerId\":\"x\"}",
      "{\"type\":\"\",\"peerId\":\"x\"}",
      "{\"type\":\"online\",\"peerId\":\"\"}",
      "{\"type\":1,\"peerId\":\"x\"}",
      "{\"type\":\"online\",\"peerId\":7}",
      "{\"type\":\"online\",\"peerId\":\"x\",\"ts\":1.5}",
      "{\"type\":\"online\",\"peerId\":\"x\",\"ts\":\"1\"}",
      "{\"type\":\"online\",\"peerId\":\"x\",\"addrs\":\"a\"}",
      "{\"type\":\"online\",\"peerId\":\"x\",\"addrs\":[1]}",
      "{\"type\":\"online\",\"peerId\":\"x\",\"videoDisabled\":1}",
      "{\"type\":\"online\",\"peerId\":\"x\",\"content\":\"a\\u0000b\"}",
      "{\"type\":\"online\",\"peerId\":\"x\",\"content\":\"\xff\"}",
      "{\"type\":\"online\",\"peerId\":\"x\",\"type\":\"offline\"}",
      "{\"type\":\"online\",\"peerId\":\"x\"} trailing",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = parse(bad[i], &m);
    CHECK_INT_EQ(rc, GOOP_EPARSE);
    if (rc != GOOP_EPARSE)
      printf("#   input %zu: %s\n", i, bad[i]);
    CHECK(m.peer_id == NULL && m.addrs == NULL);
  }
}

static void test_limits(void) {
  struct goop_presence_msg m;
  char *buf = malloc(80000);
  /* Each limit: at the limit ok, one over fails. */
  struct {
    const char *key;
    size_t max;
  } lim[] = {{"peerId", 256}, {"content", 4096}, {"email", 320}};
  for (size_t k = 0; k < 3; k++) {
    for (size_t extra = 0; extra < 2; extra++) {
      size_t n = lim[k].max + extra;
      char *v = malloc(n + 1);
      memset(v, 'a', n);
      v[n] = 0;
      if (strcmp(lim[k].key, "peerId") == 0)
        snprintf(buf, 80000, "{\"type\":\"update\",\"peerId\":\"%s\"}", v);
      else
        snprintf(buf, 80000, "{\"type\":\"update\",\"peerId\":\"x\",\"%s\":\"%s\"}", lim[k].key, v);
      CHECK_INT_EQ(parse(buf, &m), extra ? GOOP_EMSGSIZE : 0);
      goop_presence_msg_clear(&m);
      free(v);
    }
  }
  /* 20 addrs of 256 bytes ok; 21 addrs, or one of 257, fail. */
  char addr[258];
  memset(addr, '1', 257);
  memcpy(addr, "/ip4/1.2.3.4/tcp/", 17);
  for (int over = 0; over < 3; over++) {
    size_t alen = over == 2 ? 257 : 256;
    int count = over == 1 ? 21 : 20;
    size_t o = (size_t)snprintf(buf, 80000, "{\"type\":\"update\",\"peerId\":\"x\",\"addrs\":[");
    for (int i = 0; i < count; i++)
      o += (size_t)snprintf(buf + o, 80000 - o, "%s\"%.*s\"", i ? "," : "", (int)alen, addr);
    snprintf(buf + o, 80000 - o, "]}");
    int rc = parse(buf, &m);
    CHECK_INT_EQ(rc, over ? GOOP_EMSGSIZE : 0);
    if (!over)
      CHECK_INT_EQ(m.n_addrs, 20);
    goop_presence_msg_clear(&m);
  }
  /* Whole message limit. */
  memset(buf, ' ', 70000);
  memcpy(buf, "{\"type\":\"update\",\"peerId\":\"x\"}", 30);
  CHECK_INT_EQ(goop_presence_msg_parse(buf, 70000, &m), GOOP_EMSGSIZE);
  CHECK_INT_EQ(goop_presence_msg_parse(buf, 30, &m), 0);
  goop_presence_msg_clear(&m);
  free(buf);
}

static void test_round_trip(void) {
  char *addrs[] = {"/ip4/10.0.0.1/tcp/1"};
  struct goop_presence_msg m = {.type = GOOP_PRESENCE_UPDATE,
                                .peer_id = PID,
                                .content = "x<y>\"z\"",
                                .addrs = addrs,
                                .n_addrs = 1,
                                .ts = 42,
                                .verified = true};
  char *s = enc(&m);
  struct goop_presence_msg p;
  CHECK_INT_EQ(parse(s, &p), 0);
  CHECK_STR_EQ(p.content, "x<y>\"z\"");
  CHECK_STR_EQ(p.addrs[0], "/ip4/10.0.0.1/tcp/1");
  CHECK(p.verified && p.ts == 42 && p.type == GOOP_PRESENCE_UPDATE);
  goop_presence_msg_clear(&p);
  free(s);
}

static void test_addr_filters(void) {
  CHECK(goop_presence_addr_announceable("/ip4/192.168.1.2/tcp/4001"));
  CHECK(goop_presence_addr_announceable("/ip4/8.8.8.8/tcp/4001"));
  CHECK(goop_presence_addr_announceable("/ip6/2001:db8::1/tcp/4001"));
  CHECK(goop_presence_addr_announceable("/dns4/example.org/tcp/4001"));
  CHECK(!goop_presence_addr_announceable("/ip4/127.0.0.1/tcp/4001"));
  CHECK(!goop_presence_addr_announceable("/ip4/169.254.3.4/tcp/4001"));
  CHECK(!goop_presence_addr_announceable("/ip4/224.0.0.251/udp/5353"));
  CHECK(!goop_presence_addr_announceable("/ip6/::1/tcp/4001"));
  CHECK(!goop_presence_addr_announceable("/ip6/fe80::1/tcp/4001"));
  CHECK(!goop_presence_addr_announceable("/ip6/ff02::fb/udp/5353"));
  CHECK(!goop_presence_addr_announceable(""));
  CHECK(goop_presence_addr_announceable("/ip4/127.0.0.1/tcp/4001/p2p/" PID "/p2p-circuit"));
  CHECK(goop_presence_addr_acceptable("/ip4/10.1.2.3/tcp/4001"));
  CHECK(goop_presence_addr_acceptable("/ip4/224.0.0.251/udp/5353")); /* only unicast link-local is dropped */
  CHECK(!goop_presence_addr_acceptable("/ip4/127.0.0.2/tcp/1"));
  CHECK(!goop_presence_addr_acceptable("/ip4/169.254.0.1/tcp/1"));
  CHECK(!goop_presence_addr_acceptable("/ip6/::1/tcp/1"));
  CHECK(!goop_presence_addr_acceptable("/ip6/febf::1/tcp/1"));
  CHECK(!goop_presence_addr_acceptable("/ip6/::ffff:127.0.0.1/tcp/1"));
  CHECK(!goop_presence_addr_acceptable(NULL));
}

static void test_avatar_hash(void) {
  char path[] = "/tmp/goop-avatar-XXXXXX", out[17] = "x";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  CHECK(write(fd, "abc", 3) == 3);
  close(fd);
  CHECK_INT_EQ(goop_presence_avatar_hash(path, out), 0);
  CHECK_STR_EQ(out, "ba7816bf8f01cfea"); /* SHA-256("abc") */
  unlink(path);
  CHECK_INT_EQ(goop_presence_avatar_hash(path, out), GOOP_ENOENT);
  CHECK_STR_EQ(out, "");
}

int main(void) {
  RUN(test_encode);
  RUN(test_parse);
  RUN(test_limits);
  RUN(test_round_trip);
  RUN(test_addr_filters);
  RUN(test_avatar_hash);
  return tap_done();
}
