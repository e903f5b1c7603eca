/* Rendezvous server core: /publish validation, rows, SSE queues, limits, metrics. */
#include "rendezvous/rdv-core.h"

#include "tap.h"

#include <goop/common.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

static char err[GOOP_RDV_ERRBUF];

/* Validate |body|; returns the status and leaves the text in err. */
static int val(const char *body) {
  struct goop_rdv_publish p;
  err[0] = '\0';
  int st = goop__rdv_validate_publish(body, strlen(body), 5000, true, &p, err, sizeof(err));
  if (st == 0)
    goop__rdv_publish_clear(&p);
  return st;
}

static char *canon(const char *body, uint64_t now) {
  struct goop_rdv_publish p;
  if (goop__rdv_validate_publish(body, strlen(body), now, true, &p, err, sizeof(err)) != 0)
    return NULL;
  char *s = strdup(p.json);
  goop__rdv_publish_clear(&p);
  return s;
}

static void test_messages(void) {
  CHECK_INT_EQ(val("{\"type\":\"online\",\"peerId\":\"p\"}"), 0);
  CHECK_INT_EQ(val("not json"), 400);
  CHECK_STR_EQ(err, "bad json");
  CHECK_INT_EQ(val("[1]"), 400);
  CHECK_STR_EQ(err, "bad json");
  CHECK_INT_EQ(val("{\"type\":1,\"peerId\":\"p\"}"), 400);
  CHECK_STR_EQ(err, "bad json");
  CHECK_INT_EQ(val("{\"type\":\"online\",\"peerId\":\"p\",\"ts\":\"1\"}"), 400);
  CHECK_STR_EQ(err, "bad json");
  CHECK_INT_EQ(val("{\"type\":\"online\",\"peerId\":\"p\",\"ts\":1.5}"), 400);
  CHECK_INT_EQ(val("{\"type\":\"online\",\"peerId\":\"p\",\"addrs\":[1]}"), 400);
  CHECK_INT_EQ(val("{\"type\":\"online\",\"peerId\":\"p\",\"videoDisabled\":1}"), 400);
  CHECK_INT_EQ(val("{\"type\":\"online\",\"peerId\":\"p\"} x"), 400);
  CHECK_INT_EQ(val("null"), 400);
  CHECK_STR_EQ(err, "bad message: type and peerId are required");
  CHECK_INT_EQ(val("{\"type\":\"online\"}"), 400);
  CHECK_STR_EQ(err, "bad message: type and peerId are required");
  CHECK_INT_EQ(val("{\"type\":\" \",\"peerId\":\"p\"}"), 400);
  CHECK_STR_EQ(err, "bad message: type and peerId are required");
  CHECK_INT_EQ(val("{\"type\":\"online\",\"peerId\":\" \\t\"}"), 400);
  CHECK_STR_EQ(err, "bad message: type and peerId are required");
  CHECK_INT_EQ(val("{\"type\":\"punch\",\"peerId\":\"p\"}"), 400);
  CHECK_STR_EQ(err, "bad message: unknown type \"punch\"");
  CHECK_INT_EQ(val("{\"type\":\"a\\\"b\\n\",\"peerId\":\"p\"}"), 400);
  CHECK_STR_EQ(err, "bad message: unknown type \"a\\\"b\"");
  CHECK_INT_EQ(val("{\"type\":\"a\\u0001b\",\"peerId\":\"p\"}"), 400);
  CHECK_STR_EQ(err, "bad message: unknown type \"a\\x01b\"");

  char big[6000], body[13000];
  memset(big, 'x', 257);
  big[257] = '\0';
  snprintf(body, sizeof(body), "{\"type\":\"online\",\"peerId\":\"%s\"}", big);
  CHECK_INT_EQ(val(body), 400);
  CHECK_STR_EQ(err, "bad message: peerId too long");
  big[256] = '\0';
  snprintf(body, sizeof(body), "{\"type\":\"online\",\"peerId\":\" %s \"}", big);
  CHECK_INT_EQ(val(body), 0); /* limits apply to the trimmed value */
  memset(big, 'x', 4097);
  big[4097] = '\0';
  snprintf(body, sizeof(body), "{\"type\":\"online\",\"peerId\":\"p\",\"content\":\"%s\"}", big);
  CHECK_INT_EQ(val(body), 400);
  CHECK_STR_EQ(err, "bad message: content too long");
  big[4096] = '\0';
  snprintf(body, sizeof(body), "{\"type\":\"online\",\"peerId\":\"p\",\"content\":\"%s\"}", big);
  CHECK_INT_EQ(val(body), 0);
  big[321] = '\0';
  snprintf(body, sizeof(body), "{\"type\":\"online\",\"peerId\":\"p\",\"email\":\"%s\"}", big);
  CHECK_INT_EQ(val(body), 400);
  CHECK_STR_EQ(err, "bad message: email too long");
  big[320] = '\0';
  snprintf(body, sizeof(body), "{\"type\":\"online\",\"peerId\":\"p\",\"email\":\"%s\"}", big);
  CHECK_INT_EQ(val(body), 0);
  strcpy(body, "{\"type\":\"online\",\"peerId\":\"p\",\"addrs\":[\"a\"");
  for (int i = 0; i < 20; i++)
    strcat(body, ",\"a\"");
  strcat(body, "]}");
  CHECK_INT_EQ(val(body), 400);
  CHECK_STR_EQ(err, "bad message: too many addrs");
  big[257] = '\0';
  snprintf(body, sizeof(body), "{\"type\":\"online\",\"peerId\":\"p\",\"addrs\":[\"a\",\"%s\"]}", big);
  CHECK_INT_EQ(val(body), 400);
  CHECK_STR_EQ(err, "bad message: addr too long");
  /* order of checks: peerId before content */
  snprintf(body, sizeof(body), "{\"type\":\"online\",\"peerId\":\"%s\",\"content\":\"%s\"}", big, big);
  CHECK_INT_EQ(val(body), 400);
  CHECK_STR_EQ(err, "bad message: peerId too long");

  char *huge = malloc(GOOP_RDV_MAX_BODY + 2);
  memset(huge, ' ', GOOP_RDV_MAX_BODY + 1);
  huge[GOOP_RDV_MAX_BODY + 1] = '\0';
  CHECK_INT_EQ(val(huge), 413);
  CHECK_STR_EQ(err, "request body too large");
  free(huge);
}

static void test_canonical(void) {
  char *s = canon("{\"zzz\":1,\"verified\":false,\"ts\":42,\"addrs\":[\"/ip4/1.2.3.4/tcp/1\"],"
                  "\"videoDisabled\":true,\"avatarHash\":\"00ff\",\"email\":\"e@x\",\"content\":\"Al <b>\","
                  "\"peerId\":\"12D3\",\"type\":\"update\"}",
                  5000);
  CHECK_STR_EQ(
      s, "{\"type\":\"update\",\"peerId\":\"12D3\",\"content\":\"Al \\u003cb\\u003e\",\"email\":\"e@x\","
         "\"avatarHash\":\"00ff\",\"videoDisabled\":true,\"addrs\":[\"/ip4/1.2.3.4/tcp/1\"],\"ts\":42,"
         "\"verified\":true}");
  free(s);
  /* omission of empty fields, ts filled, verified overwritten */
  s = canon("{\"type\":\"online\",\"peerId\":\"p\",\"content\":\"\",\"addrs\":[],\"videoDisabled\":false,"
            "\"ts\":0,\"verified\":false}",
            1234567);
  CHECK_STR_EQ(s, "{\"type\":\"online\",\"peerId\":\"p\",\"ts\":1234567,\"verified\":true}");
  free(s);
  s = canon("{\"type\":\" offline \",\"peerId\":\"p\",\"ts\":null}", 9);
  CHECK_STR_EQ(s, "{\"type\":\"offline\",\"peerId\":\"p\",\"ts\":9,\"verified\":true}");
  free(s);
  struct goop_rdv_publish p;
  const char *b = "{\"type\":\"online\",\"peerId\":\"p\",\"ts\":-5}";
  CHECK_INT_EQ(goop__rdv_validate_publish(b, strlen(b), 1, false, &p, err, sizeof(err)), 0);
  CHECK_STR_EQ(p.json, "{\"type\":\"online\",\"peerId\":\"p\",\"ts\":-5}");
  CHECK_INT_EQ(p.json_len, strlen(p.json));
  goop__rdv_publish_clear(&p);
}

static int pub(goop_rdv *r, const char *ip, const char *body, uint64_t now) {
  err[0] = '\0';
  return goop__rdv_publish(r, ip, body, strlen(body), now, err, sizeof(err));
}

static char *peers(goop_rdv *r) {
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop__rdv_peers_json(r, &b), 0);
  goop_buf_append_byte(&b, 0);
  return (char *)b.data;
}

static void test_rows(void) {
  goop_rdv *r;
  CHECK_INT_EQ(goop__rdv_new(NULL, &r), 0);
  char *j = peers(r);
  CHECK_STR_EQ(j, "[]");
  free(j);
  const char *a = "{\"type\":\"online\",\"peerId\":\"A\",\"content\":\"x\",\"ts\":7}";
  CHECK_INT_EQ(pub(r, "1.1.1.1", a, 1000), 204);
  j = peers(r);
  size_t la = strlen("{\"type\":\"online\",\"peerId\":\"A\",\"content\":\"x\",\"ts\":7,\"verified\":true}");
  char want[512];
  snprintf(want, sizeof(want),
           "[{\"peer_id\":\"A\",\"type\":\"online\",\"content\":\"x\",\"ts\":7,\"last_seen\":1000,"
           "\"bytes_sent\":%zu,\"bytes_received\":%zu,\"verified\":true}]",
           la, la);
  CHECK_STR_EQ(j, want);
  free(j);
  CHECK_INT_EQ(pub(r, "1.1.1.1",
                   "{\"type\":\"update\",\"peerId\":\"B\",\"email\":\"e\",\"avatarHash\":\"h\",\"ts\":1}",
                   2000),
               204);
  CHECK_INT_EQ(pub(r, "1.1.1.1", "{\"type\":\"online\",\"peerId\":\"C\",\"ts\":1}", 3000), 204);
  CHECK_INT_EQ(goop__rdv_peer_count(r), 3);
  j = peers(r);
  /* online rows first (last_seen descending), then update */
  const char *c = strstr(j, "\"peer_id\":\"C\""), *pa = strstr(j, "\"peer_id\":\"A\""),
             *pb = strstr(j, "\"peer_id\":\"B\"");
  CHECK(c && pa && pb && c < pa && pa < pb);
  CHECK(strstr(
      j, "\"peer_id\":\"B\",\"type\":\"update\",\"content\":\"\",\"email\":\"e\",\"avatar_hash\":\"h\","));
  free(j);
  /* offline deletes */
  CHECK_INT_EQ(pub(r, "1.1.1.1", "{\"type\":\"offline\",\"peerId\":\"C\"}", 3500), 204);
  CHECK_INT_EQ(goop__rdv_peer_count(r), 2);
  /* eviction: strictly older than 30 s */
  CHECK_INT_EQ(goop__rdv_evict(r, 31000), 0);
  CHECK_INT_EQ(goop__rdv_evict(r, 31001), 1);
  CHECK_INT_EQ(goop__rdv_peer_count(r), 1);
  j = peers(r);
  CHECK(strstr(j, "\"peer_id\":\"B\"") && !strstr(j, "\"peer_id\":\"A\""));
  free(j);
  /* tick evicts every 5 s */
  uint64_t next = goop__rdv_tick(r, 32000);
  CHECK_INT_EQ(next, 37000);
  CHECK_INT_EQ(goop__rdv_tick(r, 36999), 37000);
  CHECK_INT_EQ(goop__rdv_peer_count(r), 1);
  CHECK_INT_EQ(goop__rdv_tick(r, 37000), 42000);
  CHECK_INT_EQ(goop__rdv_peer_count(r), 0);
  /* a clock that goes back restarts the periods */
  CHECK_INT_EQ(goop__rdv_tick(r, 1000), 6000);
  goop__rdv_free(r);
}

static void test_limit_peers(void) {
  struct goop_rdv_limits l = {0};
  l.max_peers = 1;
  goop_rdv *r;
  CHECK_INT_EQ(goop__rdv_new(&l, &r), 0);
  CHECK_INT_EQ(pub(r, "ip", "{\"type\":\"online\",\"peerId\":\"A\"}", 1), 204);
  CHECK_INT_EQ(pub(r, "ip", "{\"type\":\"online\",\"peerId\":\"A\"}", 2), 204);
  CHECK_INT_EQ(pub(r, "ip", "{\"type\":\"online\",\"peerId\":\"B\"}", 3), 503);
  CHECK_STR_EQ(err, "peer table full");
  goop__rdv_free(r);
}

static char *drain(goop_rdv_sub *s, size_t chunk) {
  size_t n = goop__rdv_sub_pending(s);
  char *out = calloc(1, n + 1);
  size_t got = 0, k;
  while ((k = goop__rdv_sub_read(s, out + got, chunk < n - got + 1 ? chunk : n - got + 1)) > 0)
    got += k;
  CHECK_INT_EQ(got, n);
  CHECK_INT_EQ(goop__rdv_sub_pending(s), 0);
  return out;
}

static int notified;
static void on_notify(goop_rdv_sub *s, void *ud) {
  (void)s;
  (void)ud;
  notified++;
}

static void test_sse(void) {
  struct goop_rdv_limits l = {0};
  l.queue_msgs = 3;
  goop_rdv *r;
  CHECK_INT_EQ(goop__rdv_new(&l, &r), 0);
  goop_rdv_sub *s0;
  CHECK_INT_EQ(goop__rdv_sub_add(r, "9.9.9.9", &s0, err, sizeof(err)), 0);
  char *o = drain(s0, 4);
  CHECK_STR_EQ(o, ": ok\n\n");
  free(o);
  goop__rdv_sub_set_notify(s0, on_notify, NULL);
  CHECK_INT_EQ(pub(r, "1.1.1.1", "{\"type\":\"online\",\"peerId\":\"A\",\"ts\":1}", 1000), 204);
  CHECK_INT_EQ(pub(r, "1.1.1.1", "{\"type\":\"update\",\"peerId\":\"B\",\"ts\":2}", 2000), 204);
  CHECK_INT_EQ(notified, 1);
  o = drain(s0, 7);
  CHECK_STR_EQ(o, "data: {\"type\":\"online\",\"peerId\":\"A\",\"ts\":1,\"verified\":true}\n\n"
                  "data: {\"type\":\"update\",\"peerId\":\"B\",\"ts\":2,\"verified\":true}\n\n");
  free(o);
  /* snapshot for a new subscriber: ": ok" then the known peers in row order */
  goop_rdv_sub *s1;
  CHECK_INT_EQ(goop__rdv_sub_add(r, "8.8.8.8", &s1, err, sizeof(err)), 0);
  o = drain(s1, 1000);
  CHECK_STR_EQ(o, ": ok\n\n"
                  "data: {\"type\":\"online\",\"peerId\":\"A\",\"ts\":1,\"verified\":true}\n\n"
                  "data: {\"type\":\"update\",\"peerId\":\"B\",\"ts\":2,\"verified\":true}\n\n");
  free(o);
  /* offline is broadcast too */
  CHECK_INT_EQ(pub(r, "1.1.1.1", "{\"type\":\"offline\",\"peerId\":\"B\",\"ts\":3}", 2500), 204);
  o = drain(s1, 5);
  CHECK_STR_EQ(o, "data: {\"type\":\"offline\",\"peerId\":\"B\",\"ts\":3,\"verified\":true}\n\n");
  free(o);
  /* queue bound: s0 holds 1 (offline) + 2 more, the 4th and 5th are dropped */
  for (int i = 0; i < 4; i++)
    CHECK_INT_EQ(pub(r, "1.1.1.1", "{\"type\":\"update\",\"peerId\":\"A\",\"ts\":5}", 3000), 204);
  CHECK_INT_EQ(goop__rdv_sub_drops(s0), 2);
  CHECK_INT_EQ(goop__rdv_sub_drops(s1), 1);
  /* bytes_received counts every broadcast for every known peer, bytes_sent the peer's own */
  size_t l1 = strlen("{\"type\":\"online\",\"peerId\":\"A\",\"ts\":1,\"verified\":true}");
  size_t l2 = strlen("{\"type\":\"update\",\"peerId\":\"B\",\"ts\":2,\"verified\":true}");
  size_t l3 = strlen("{\"type\":\"offline\",\"peerId\":\"B\",\"ts\":3,\"verified\":true}");
  size_t l4 = strlen("{\"type\":\"update\",\"peerId\":\"A\",\"ts\":5,\"verified\":true}");
  char want[128];
  snprintf(want, sizeof(want), "\"bytes_sent\":%zu,\"bytes_received\":%zu,", l1 + 4 * l4,
           l1 + l2 + l3 + 4 * l4);
  char *j = peers(r);
  CHECK(strstr(j, want) != NULL);
  free(j);
  struct goop_rdv_stats st;
  goop__rdv_stats(r, &st);
  CHECK_INT_EQ(st.drops, 3);
  CHECK_INT_EQ(st.subscribers, 2);
  CHECK_INT_EQ(st.publishes, 7);
  o = drain(s0, 3);
  CHECK(strncmp(o, "data: {\"type\":\"offline\"", 23) == 0);
  free(o);
  /* ping */
  goop__rdv_ping(r);
  o = drain(s0, 100);
  CHECK_STR_EQ(o, ": ping\n\n");
  free(o);
  CHECK_INT_EQ(goop__rdv_tick(r, 10000), 15000);
  CHECK_INT_EQ(goop__rdv_sub_pending(s0), 0);
  goop__rdv_tick(r, 35000);
  o = drain(s0, 100);
  CHECK_STR_EQ(o, ": ping\n\n");
  free(o);
  goop__rdv_sub_remove(r, s1);
  goop__rdv_sub_remove(r, s0);
  goop__rdv_stats(r, &st);
  CHECK_INT_EQ(st.subscribers, 0);
  goop__rdv_free(r);
}

static void test_sse_limits(void) {
  struct goop_rdv_limits l = {0};
  l.sse_total = 3;
  l.sse_per_ip = 2;
  goop_rdv *r;
  CHECK_INT_EQ(goop__rdv_new(&l, &r), 0);
  goop_rdv_sub *a, *b, *c, *d;
  CHECK_INT_EQ(goop__rdv_sub_add(r, "10.0.0.1", &a, err, sizeof(err)), 0);
  CHECK_INT_EQ(goop__rdv_sub_add(r, "10.0.0.1", &b, err, sizeof(err)), 0);
  CHECK_INT_EQ(goop__rdv_sub_add(r, "10.0.0.1", &c, err, sizeof(err)), 429);
  CHECK_STR_EQ(err, "too many SSE connections from 10.0.0.1 (2)");
  CHECK_INT_EQ(goop__rdv_sub_add(r, "10.0.0.2", &c, err, sizeof(err)), 0);
  CHECK_INT_EQ(goop__rdv_sub_add(r, "10.0.0.3", &d, err, sizeof(err)), 429);
  CHECK_STR_EQ(err, "too many SSE connections (3)");
  goop__rdv_sub_remove(r, a);
  goop__rdv_rate_cleanup(r, 0);
  CHECK_INT_EQ(goop__rdv_sub_add(r, "10.0.0.1", &a, err, sizeof(err)), 0);
  struct goop_rdv_stats st;
  goop__rdv_stats(r, &st);
  CHECK_INT_EQ(st.rejected, 2);
  goop__rdv_free(r); /* frees remaining subscribers */
}

static void test_rate(void) {
  goop_rdv *r;
  CHECK_INT_EQ(goop__rdv_new(NULL, &r), 0);
  const char *m = "{\"type\":\"online\",\"peerId\":\"A\"}";
  for (int i = 0; i < 60; i++)
    CHECK_INT_EQ(pub(r, "1.2.3.4", m, 1000 + (uint64_t)i * 100), 204);
  CHECK_INT_EQ(pub(r, "1.2.3.4", m, 7000), 429);
  CHECK_STR_EQ(err, "rate limit exceeded");
  CHECK_INT_EQ(pub(r, "5.6.7.8", m, 7000), 204); /* other IPs unaffected */
  /* the first request leaves the window at 1000 + 60000 */
  CHECK_INT_EQ(pub(r, "1.2.3.4", m, 60999), 429);
  CHECK_INT_EQ(pub(r, "1.2.3.4", m, 61000), 204);
  CHECK_INT_EQ(pub(r, "1.2.3.4", m, 61050), 429);
  CHECK_INT_EQ(pub(r, "1.2.3.4", m, 61100), 204);
  /* rejected requests do not count, invalid ones do */
  CHECK_INT_EQ(pub(r, "9.9.9.9", "{", 1), 400);
  struct goop_rdv_stats st;
  goop__rdv_stats(r, &st);
  CHECK_INT_EQ(st.rate_limited, 3);
  CHECK_INT_EQ(st.rejected, 4);
  /* cleanup keeps nothing once the window has passed */
  goop__rdv_rate_cleanup(r, 200000);
  CHECK_INT_EQ(pub(r, "1.2.3.4", m, 200000), 204);
  /* direct limiter */
  struct goop_rdv_limits l = {0};
  l.publish_rate = 2;
  l.publish_window_ms = 1000;
  goop__rdv_set_limits(r, &l);
  CHECK(goop__rdv_rate_allow(r, "x", 0));
  CHECK(goop__rdv_rate_allow(r, "x", 10));
  CHECK(!goop__rdv_rate_allow(r, "x", 999));
  CHECK(goop__rdv_rate_allow(r, "x", 1000));
  goop__rdv_free(r);
}

static void test_metrics(void) {
  goop_rdv *r;
  CHECK_INT_EQ(goop__rdv_new(NULL, &r), 0);
  CHECK_INT_EQ(pub(r, "1.1.1.1", "{\"type\":\"online\",\"peerId\":\"A\"}", 1), 204);
  CHECK_INT_EQ(pub(r, "1.1.1.1", "{}", 1), 400);
  goop__rdv_note_rejected(r);
  goop_rdv_sub *s;
  CHECK_INT_EQ(goop__rdv_sub_add(r, "1.1.1.1", &s, err, sizeof(err)), 0);
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(goop__rdv_metrics(r, &b), 0);
  goop_buf_append_byte(&b, 0);
  const char *t = (const char *)b.data;
  CHECK(strstr(t, "# HELP goop_rendezvous_subscribers Connected /events subscribers.\n"
                  "# TYPE goop_rendezvous_subscribers gauge\n"
                  "goop_rendezvous_subscribers 1\n"));
  CHECK(strstr(t, "# TYPE goop_rendezvous_peers gauge\ngoop_rendezvous_peers 1\n"));
  CHECK(strstr(t, "# TYPE goop_rendezvous_publishes_total counter\ngoop_rendezvous_publishes_total 1\n"));
  CHECK(strstr(t, "\ngoop_rendezvous_drops_total 0\n"));
  CHECK(strstr(t, "\ngoop_rendezvous_rejected_total 2\n"));
  CHECK(strstr(t, "\ngoop_rendezvous_rate_limited_total 0\n"));
  CHECK(strstr(t, "\ngoop_rendezvous_db_errors_total 0\n"));
  CHECK(t[strlen(t) - 1] == '\n');
  /* every line is a comment or "name value" */
  int bad = 0;
  for (const char *p = t; *p;) {
    const char *e = strchr(p, '\n');
    if (!e)
      break;
    if (*p != '#' && !memchr(p, ' ', (size_t)(e - p)))
      bad++;
    p = e + 1;
  }
  CHECK_INT_EQ(bad, 0);
  goop_buf_free(&b);
  goop__rdv_free(r);
}

static long long db_count(const char *path) {
  sqlite3 *db;
  sqlite3_stmt *st;
  long long n = -1;
  if (sqlite3_open(path, &db) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM peers", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW)
      n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

static void test_db(void) {
  char dir[] = "/tmp/test-rdv-core-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[256];
  snprintf(path, sizeof(path), "%s/peers.db", dir);
  goop_rdv *r;
  CHECK_INT_EQ(goop__rdv_new(NULL, &r), 0);
  CHECK_INT_EQ(goop__rdv_db_open(r, path, 1000, err, sizeof(err)), 0);
  CHECK_INT_EQ(goop__rdv_db_open(r, path, 1000, err, sizeof(err)), GOOP_ESTATE);
  CHECK_INT_EQ(
      pub(r, "ip",
          "{\"type\":\"online\",\"peerId\":\"A\",\"content\":\"x\",\"addrs\":[\"/ip4/1.2.3.4\"],\"ts\":7}",
          1000),
      204);
  CHECK_INT_EQ(pub(r, "ip", "{\"type\":\"update\",\"peerId\":\"B\",\"email\":\"e\",\"ts\":8}", 1500), 204);
  CHECK_INT_EQ(pub(r, "ip", "{\"type\":\"online\",\"peerId\":\"C\",\"ts\":9}", 1600), 204);
  CHECK_INT_EQ(db_count(path), 3);
  CHECK_INT_EQ(pub(r, "ip", "{\"type\":\"offline\",\"peerId\":\"C\",\"ts\":9}", 1700), 204);
  CHECK_INT_EQ(db_count(path), 2);
  char *before = peers(r);
  goop__rdv_free(r);

  /* WAL mode */
  sqlite3 *db;
  sqlite3_stmt *st;
  CHECK(sqlite3_open(path, &db) == SQLITE_OK);
  CHECK(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
  CHECK(sqlite3_step(st) == SQLITE_ROW);
  CHECK_STR_EQ((const char *)sqlite3_column_text(st, 0), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);

  /* restart: rows come back, with snapshot messages (no addrs) */
  CHECK_INT_EQ(goop__rdv_new(NULL, &r), 0);
  CHECK_INT_EQ(goop__rdv_db_open(r, path, 2000, err, sizeof(err)), 0);
  CHECK_INT_EQ(goop__rdv_peer_count(r), 2);
  char *after = peers(r);
  CHECK_STR_EQ(after, before);
  free(before);
  free(after);
  goop_rdv_sub *s;
  CHECK_INT_EQ(goop__rdv_sub_add(r, "ip", &s, err, sizeof(err)), 0);
  char *o = drain(s, 64);
  CHECK_STR_EQ(o,
               ": ok\n\n"
               "data: {\"type\":\"online\",\"peerId\":\"A\",\"content\":\"x\",\"ts\":7,\"verified\":true}\n\n"
               "data: {\"type\":\"update\",\"peerId\":\"B\",\"email\":\"e\",\"ts\":8,\"verified\":true}\n\n");
  free(o);
  /* eviction deletes stale DB rows too */
  CHECK_INT_EQ(pub(r, "ip", "{\"type\":\"online\",\"peerId\":\"D\"}", 20000), 204);
  CHECK_INT_EQ(goop__rdv_evict(r, 31100), 1);
  CHECK_INT_EQ(db_count(path), 2);
  CHECK_INT_EQ(goop__rdv_evict(r, 31600), 1);
  CHECK_INT_EQ(db_count(path), 1);
  goop__rdv_free(r);
  /* stale rows are not loaded */
  CHECK_INT_EQ(goop__rdv_new(NULL, &r), 0);
  CHECK_INT_EQ(goop__rdv_db_open(r, path, 60000, err, sizeof(err)), 0);
  CHECK_INT_EQ(goop__rdv_peer_count(r), 0);
  goop__rdv_free(r);

  CHECK_INT_EQ(goop__rdv_new(NULL, &r), 0);
  CHECK_INT_EQ(goop__rdv_db_open(r, "/nonexistent-dir/x/peers.db", 0, err, sizeof(err)), GOOP_EDB);
  CHECK(strstr(err, "/nonexistent-dir/x/peers.db") != NULL);
  CHECK_INT_EQ(pub(r, "ip", "{\"type\":\"online\",\"peerId\":\"D\"}", 1), 204); /* memory-only */
  goop__rdv_free(r);

  char f[300];
  const char *sfx[] = {"", "-wal", "-shm"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(f, sizeof(f), "%s%s", path, sfx[i]);
    unlink(f);
  }
  rmdir(dir);
}

static void test_client_ip(void) {
  const char *list[] = {"10.0.0.0/8", "::1", "192.0.2.7", "2001:db8::/32"};
  struct goop_rdv_net *nets;
  size_t n;
  CHECK_INT_EQ(goop__rdv_nets_parse(list, 4, &nets, &n, err, sizeof(err)), 0);
  CHECK_INT_EQ(n, 4);
  CHECK(goop__rdv_nets_match(nets, n, "10.1.2.3"));
  CHECK(goop__rdv_nets_match(nets, n, "::ffff:10.1.2.3"));
  CHECK(!goop__rdv_nets_match(nets, n, "11.0.0.1"));
  CHECK(goop__rdv_nets_match(nets, n, "2001:db8:1::5"));
  CHECK(!goop__rdv_nets_match(nets, n, "2001:db9::5"));
  CHECK(goop__rdv_nets_match(nets, n, "192.0.2.7"));
  CHECK(!goop__rdv_nets_match(nets, n, "192.0.2.8"));
  char ip[64];
  /* untrusted peer: XFF ignored */
  CHECK_INT_EQ(goop__rdv_client_ip(nets, n, "203.0.113.5", "1.1.1.1", ip, sizeof(ip)), 0);
  CHECK_STR_EQ(ip, "203.0.113.5");
  /* trusted proxy: rightmost untrusted hop */
  CHECK_INT_EQ(goop__rdv_client_ip(nets, n, "10.0.0.1", "6.6.6.6, 1.1.1.1", ip, sizeof(ip)), 0);
  CHECK_STR_EQ(ip, "1.1.1.1");
  CHECK_INT_EQ(goop__rdv_client_ip(nets, n, "::1", "6.6.6.6, 1.1.1.1 ,10.9.9.9", ip, sizeof(ip)), 0);
  CHECK_STR_EQ(ip, "1.1.1.1");
  CHECK_INT_EQ(goop__rdv_client_ip(nets, n, "::ffff:10.0.0.1", "[2001:db9::1]", ip, sizeof(ip)), 0);
  CHECK_STR_EQ(ip, "2001:db9::1");
  /* garbage stops the walk at the last good hop */
  CHECK_INT_EQ(goop__rdv_client_ip(nets, n, "10.0.0.1", "1.1.1.1, junk", ip, sizeof(ip)), 0);
  CHECK_STR_EQ(ip, "10.0.0.1");
  CHECK_INT_EQ(goop__rdv_client_ip(nets, n, "10.0.0.1", "", ip, sizeof(ip)), 0);
  CHECK_STR_EQ(ip, "10.0.0.1");
  CHECK_INT_EQ(goop__rdv_client_ip(nets, n, "10.0.0.1", NULL, ip, sizeof(ip)), 0);
  CHECK_STR_EQ(ip, "10.0.0.1");
  /* all hops trusted: the leftmost */
  CHECK_INT_EQ(goop__rdv_client_ip(nets, n, "10.0.0.1", "10.0.0.3,10.0.0.2", ip, sizeof(ip)), 0);
  CHECK_STR_EQ(ip, "10.0.0.3");
  /* long headers: only the rightmost 4096 bytes count */
  char *lx = malloc(10000);
  memset(lx, '1', 9000);
  strcpy(lx + 9000, ", 5.5.5.5");
  CHECK_INT_EQ(goop__rdv_client_ip(nets, n, "10.0.0.1", lx, ip, sizeof(ip)), 0);
  CHECK_STR_EQ(ip, "5.5.5.5");
  lx[0] = '\0';
  for (int i = 0; i < 600; i++)
    strcat(lx, "10.0.0.9,");
  strcat(lx, "10.0.0.8");
  CHECK_INT_EQ(goop__rdv_client_ip(nets, n, "10.0.0.1", lx, ip, sizeof(ip)), 0);
  CHECK(strncmp(ip, "10.0.0.", 7) == 0);
  free(lx);
  CHECK_INT_EQ(goop__rdv_client_ip(nets, n, "not-an-ip", "1.1.1.1", ip, sizeof(ip)), GOOP_EINVAL);
  free(nets);
  const char *bad1[] = {"10.0.0.0/33"};
  CHECK_INT_EQ(goop__rdv_nets_parse(bad1, 1, &nets, &n, err, sizeof(err)), GOOP_EINVAL);
  CHECK_STR_EQ(err, "bad trusted proxy: 10.0.0.0/33");
  const char *bad2[] = {"example.com"};
  CHECK_INT_EQ(goop__rdv_nets_parse(bad2, 1, &nets, &n, err, sizeof(err)), GOOP_EINVAL);
  const char *bad3[] = {"::/"};
  CHECK_INT_EQ(goop__rdv_nets_parse(bad3, 1, &nets, &n, err, sizeof(err)), GOOP_EINVAL);
  const char *all[] = {"0.0.0.0/0"};
  CHECK_INT_EQ(goop__rdv_nets_parse(all, 1, &nets, &n, err, sizeof(err)), 0);
  CHECK(goop__rdv_nets_match(nets, n, "8.8.8.8"));
  CHECK(!goop__rdv_nets_match(nets, n, "::2"));
  free(nets);
}

int main(void) {
  RUN(test_messages);
  RUN(test_canonical);
  RUN(test_rows);
  RUN(test_limit_peers);
  RUN(test_sse);
  RUN(test_sse_limits);
  RUN(test_rate);
  RUN(test_metrics);
  RUN(test_db);
  RUN(test_client_ip);
  return tap_done();
}
