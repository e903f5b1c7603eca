/* mDNS wire helpers: instance labels, TXT rdata build/parse, wire names. */
#include <goop/discovery.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#define PID "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"

struct got {
  char v[8][256];
  int n;
};

static void collect(const char *addr, void *ud) {
  struct got *g = ud;
  if (g->n < 8)
    snprintf(g->v[g->n], sizeof(g->v[0]), "%s", addr);
  g->n++;
}

static void test_label(void) {
  char a[64], b[64];
  int saw_short = 0, saw_long = 0;
  for (int k = 0; k < 200; k++) {
    int n = goop_mdns_label(a, sizeof(a));
    if (n < GOOP_MDNS_LABEL_MIN || n > GOOP_MDNS_LABEL_MAX || (size_t)n != strlen(a)) {
      CHECK(!"label length");
      return;
    }
    for (int i = 0; i < n; i++)
      if (!((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= '0' && a[i] <= '9'))) {
        CHECK(!"label alphabet");
        return;
      }
    saw_short |= n < 40;
    saw_long |= n > 55;
  }
  CHECK(saw_short && saw_long);
  CHECK(goop_mdns_label(b, sizeof(b)) > 0);
  CHECK(strcmp(a, b) != 0);
  CHECK_INT_EQ(goop_mdns_label(a, 63), GOOP_EINVAL);
}

static void test_txt_roundtrip(void) {
  const char *addrs[] = {"/ip4/10.0.0.1/tcp/4001/p2p/" PID, "/ip6/fd00::1/tcp/4001/p2p/" PID};
  uint8_t buf[512];
  size_t len = 0;
  CHECK_INT_EQ(goop_mdns_txt_build(addrs, 2, buf, sizeof(buf), &len), 0);
  CHECK_INT_EQ(buf[0], 8 + strlen(addrs[0]));
  CHECK(memcmp(buf + 1, "dnsaddr=/ip4/", 13) == 0);
  CHECK_INT_EQ(len, 2 + 16 + strlen(addrs[0]) + strlen(addrs[1]));
  struct got g = {0};
  CHECK_INT_EQ(goop_mdns_txt_parse(buf, len, collect, &g), 2);
  CHECK_STR_EQ(g.v[0], addrs[0]);
  CHECK_STR_EQ(g.v[1], addrs[1]);
  CHECK_INT_EQ(goop_mdns_txt_build(addrs, 2, buf, 20, &len), GOOP_EMSGSIZE);
  CHECK_INT_EQ(goop_mdns_txt_build(NULL, 0, buf, sizeof(buf), &len), 0);
  CHECK_INT_EQ(len, 1);
  CHECK_INT_EQ(buf[0], 0);
  char big[300];
  memset(big, 'a', sizeof(big) - 1);
  big[0] = '/';
  big[sizeof(big) - 1] = '\0';
  const char *bad[] = {big};
  CHECK_INT_EQ(goop_mdns_txt_build(bad, 1, buf, sizeof(buf), &len), GOOP_EINVAL);
  const char *empty[] = {""};
  CHECK_INT_EQ(goop_mdns_txt_build(empty, 1, buf, sizeof(buf), &len), GOOP_EINVAL);
}

static void test_txt_parse_edge(void) {
  struct got g = {0};
  /* other keys, upper-case key, empty value, non-slash value, control byte */
  static const uint8_t rd[] = {5,   'a', '=', 'b', 'c', 'd', 10,  'D', 'N', 'S', 'A', 'D', 'D', 'R', '=', '/',
                               'x', 8,   'd', 'n', 's', 'a', 'd', 'd', 'r', '=', 9,   'd', 'n', 's', 'a', 'd',
                               'd', 'r', '=', 'x', 10,  'd', 'n', 's', 'a', 'd', 'd', 'r', '=', '/', 1,   0};
  CHECK_INT_EQ(goop_mdns_txt_parse(rd, sizeof(rd), collect, &g), 1);
  CHECK_STR_EQ(g.v[0], "/x");
  /* truncated string: no callbacks at all */
  static const uint8_t trunc[] = {10, 'd', 'n', 's', 'a', 'd', 'd', 'r', '=', '/', 'y', 20, 'a'};
  g.n = 0;
  CHECK_INT_EQ(goop_mdns_txt_parse(trunc, sizeof(trunc), collect, &g), GOOP_EPARSE);
  CHECK_INT_EQ(g.n, 0);
  CHECK_INT_EQ(goop_mdns_txt_parse(NULL, 0, collect, &g), 0);
  uint8_t *huge = calloc(1, GOOP_MDNS_MAX_TXT + 1);
  CHECK_INT_EQ(goop_mdns_txt_parse(huge, GOOP_MDNS_MAX_TXT + 1, collect, &g), GOOP_EMSGSIZE);
  free(huge);
  /* at most GOOP_MDNS_MAX_ADDRS values */
  uint8_t many[(GOOP_MDNS_MAX_ADDRS + 5) * 11];
  size_t o = 0;
  for (int i = 0; i < GOOP_MDNS_MAX_ADDRS + 5; i++) {
    many[o++] = 10;
    memcpy(many + o, "dnsaddr=/z", 10);
    o += 10;
  }
  g.n = 0;
  CHECK_INT_EQ(goop_mdns_txt_parse(many, o, collect, &g), GOOP_MDNS_MAX_ADDRS);
  CHECK_INT_EQ(g.n, GOOP_MDNS_MAX_ADDRS);
}

static void test_name_decode(void) {
  char out[300];
  static const uint8_t n1[] = {3,   'a', 'b', 'c', 9,   'g', 'o', 'o', 'p', '-', 'm',
                               'd', 'n', 's', 5,   'l', 'o', 'c', 'a', 'l', 0};
  CHECK_INT_EQ(goop_mdns_name_decode(n1, sizeof(n1), out, sizeof(out)), 19);
  CHECK_STR_EQ(out, "abc.goop-mdns.local");
  static const uint8_t n2[] = {3, 'a', '.', 0x01, 0};
  CHECK(goop_mdns_name_decode(n2, sizeof(n2), out, sizeof(out)) > 0);
  CHECK_STR_EQ(out, "a\\.\\001");
  static const uint8_t ptr[] = {0xc0, 0x0c};
  CHECK_INT_EQ(goop_mdns_name_decode(ptr, sizeof(ptr), out, sizeof(out)), GOOP_EPARSE);
  static const uint8_t noend[] = {3, 'a', 'b', 'c'};
  CHECK_INT_EQ(goop_mdns_name_decode(noend, sizeof(noend), out, sizeof(out)), GOOP_EPARSE);
  static const uint8_t trail[] = {1, 'a', 0, 7};
  CHECK_INT_EQ(goop_mdns_name_decode(trail, sizeof(trail), out, sizeof(out)), GOOP_EPARSE);
  static const uint8_t over[] = {5, 'a'};
  CHECK_INT_EQ(goop_mdns_name_decode(over, sizeof(over), out, sizeof(out)), GOOP_EPARSE);
  CHECK_INT_EQ(goop_mdns_name_decode(n1, sizeof(n1), out, 5), GOOP_EMSGSIZE);
  static const uint8_t root[] = {0};
  CHECK_INT_EQ(goop_mdns_name_decode(root, 1, out, sizeof(out)), 0);
  uint8_t longname[320];
  size_t o = 0;
  for (int i = 0; i < 5; i++) {
    longname[o++] = 60;
    memset(longname + o, 'q', 60);
    o += 60;
  }
  longname[o++] = 0;
  CHECK_INT_EQ(goop_mdns_name_decode(longname, o, out, sizeof(out)), GOOP_EMSGSIZE);
}

static void test_new_args(void) {
  goop_mdns *m = NULL;
  int rc = goop_mdns_new(NULL, "goop-mdns", &m);
  CHECK(rc == GOOP_EINVAL || rc == GOOP_ENOTSUP);
  CHECK(m == NULL);
  goop_mdns_free(NULL);
  CHECK_INT_EQ(goop_mdns_num_discovered(NULL), 0);
}

int main(void) {
  RUN(test_label);
  RUN(test_txt_roundtrip);
  RUN(test_txt_parse_edge);
  RUN(test_name_decode);
  RUN(test_new_args);
  return tap_done();
}
