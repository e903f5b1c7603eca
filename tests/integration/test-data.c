/*
 * /goop/data/1.0.0 over real hosts on loopback: host A serves a real site
 * database, host B is a remote peer. Every operation and insert policy
 * (owner, email, open, public) as seen by a remote peer with and without an
 * announced email, the local owner through goop_site_data_exec(), error texts,
 * an invalid JSON line, a request without newline and an oversized request.
 */
#include <event2/event.h>
#include <goop/goop.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "site/site-internal.h"
#include "tap.h"

static struct event_base *base;
static goop_ctx *ctx;
static char tmp[256];
static goop_host *ha, *hb;
static goop_peer_id ida, idb;
static char ida_text[GOOP_PEER_ID_STR_MAX], idb_text[GOOP_PEER_ID_STR_MAX];
static goop_site *site_a;

static bool run_until(volatile bool *flag, int ms) {
  struct timeval tv = {0, 10000};
  for (int i = 0; i < ms / 10 && !*flag; i++) {
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  return *flag;
}

struct answer {
  volatile bool done;
  int status;
  char *text;
};

static void data_cb(goop_host *h, int status, const char *resp, size_t len, void *ud) {
  (void)h;
  struct answer *a = ud;
  a->status = status;
  a->text = resp ? strndup(resp, len) : NULL;
  a->done = true;
}

/* Remote request from B; returns the parsed answer (NULL on transport error). */
static json_t *remote(const char *fmt, ...) GOOP_PRINTF(1, 2);
static json_t *remote(const char *fmt, ...) {
  char req[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(req, sizeof(req), fmt, ap);
  va_end(ap);
  struct answer a = {0};
  if (goop_data_request(hb, &ida, req, strlen(req), 0, data_cb, &a) != 0)
    return NULL;
  if (a.done)
    fprintf(stderr, "# callback from inside the call\n");
  run_until(&a.done, 15000);
  if (a.status) {
    fprintf(stderr, "# data request failed: %s\n", goop_strerror(a.status));
    return NULL;
  }
  json_t *j = json_loads(a.text, 0, NULL);
  free(a.text);
  return j;
}

static json_t *local(const char *req) {
  struct goop_site_caller c = {ida_text, NULL, true};
  char *resp = NULL;
  if (goop_site_data_exec(site_a, &c, req, strlen(req), &resp))
    return NULL;
  json_t *j = json_loads(resp, 0, NULL);
  free(resp);
  return j;
}

static bool is_ok(json_t *j) {
  return j && json_is_true(json_object_get(j, "ok"));
}
static const char *error_of(json_t *j) {
  const char *e = j ? json_string_value(json_object_get(j, "error")) : NULL;
  return e ? e : "";
}
static size_t rows(json_t *j) {
  json_t *d = json_object_get(j, "data");
  return json_is_array(d) ? json_array_size(d) : 0;
}

#define EXPECT_OK(j)                                                                                         \
  do {                                                                                                       \
    json_t *j_ = (j);                                                                                        \
    CHECK(is_ok(j_));                                                                                        \
    if (!is_ok(j_))                                                                                          \
      printf("#   error: %s\n", error_of(j_));                                                               \
    json_decref(j_);                                                                                         \
  } while (0)
#define EXPECT_ERR(j, text)                                                                                  \
  do {                                                                                                       \
    json_t *j_ = (j);                                                                                        \
    CHECK(j_ && !is_ok(j_));                                                                                 \
    CHECK_STR_EQ(error_of(j_), text);                                                                        \
    json_decref(j_);                                                                                         \
  } while (0)

static void set_policy(const char *table, const char *policy) {
  char sql[256];
  snprintf(sql, sizeof(sql), "UPDATE _tables SET insert_policy = '%s' WHERE name = '%s'", policy, table);
  CHECK_INT_EQ(sqlite3_exec(site_a->db, sql, NULL, NULL, NULL), SQLITE_OK);
}

static void test_setup_tables(void) {
  static const char *const names[] = {"t_owner", "t_email", "t_open", "t_public"};
  static const char *const pols[] = {"owner", "email", "open", "public"};
  for (size_t i = 0; i < 4; i++) {
    char req[512];
    snprintf(
        req, sizeof(req),
        "{\"op\":\"create-table\",\"name\":\"%s\",\"column_defs\":[{\"name\":\"body\",\"type\":\"TEXT\"}]}",
        names[i]);
    EXPECT_OK(local(req));
    set_policy(names[i], pols[i]);
    snprintf(req, sizeof(req), "{\"op\":\"insert\",\"table\":\"%s\",\"data\":{\"body\":\"by owner\"}}",
             names[i]);
    EXPECT_OK(local(req));
  }
  json_t *t = remote("{\"op\":\"tables\"}");
  CHECK(is_ok(t));
  CHECK_INT_EQ(rows(t), 4);
  json_decref(t);
  t = remote("{\"op\":\"describe\",\"table\":\"t_open\"}");
  CHECK(is_ok(t) && rows(t) >= 6);
  json_decref(t);
}

static void test_policies(void) {
  /* owner: remote insert refused, all rows visible */
  EXPECT_ERR(remote("{\"op\":\"insert\",\"table\":\"t_owner\",\"data\":{\"body\":\"x\"}}"),
             "insert not allowed: this table only accepts data from the site owner");
  json_t *q = remote("{\"op\":\"query\",\"table\":\"t_owner\"}");
  CHECK(is_ok(q));
  CHECK_INT_EQ(rows(q), 1);
  json_decref(q);

  /* email: refused without an announced email, allowed with one */
  EXPECT_ERR(remote("{\"op\":\"insert\",\"table\":\"t_email\",\"data\":{\"body\":\"x\"}}"),
             "insert not allowed: your peer must have an email address configured");
  CHECK_INT_EQ(goop_site_set_peer_email(site_a, &idb, "bob@example.org"), 0);
  EXPECT_OK(remote("{\"op\":\"insert\",\"table\":\"t_email\",\"data\":{\"body\":\"from bob\"}}"));
  q = remote("{\"op\":\"query\",\"table\":\"t_email\"}");
  CHECK(is_ok(q));
  CHECK_INT_EQ(rows(q), 1); /* own rows only */
  json_t *row = json_array_get(json_object_get(q, "data"), 0);
  CHECK_STR_EQ(json_string_value(json_object_get(row, "_owner")), idb_text);
  CHECK_STR_EQ(json_string_value(json_object_get(row, "_owner_email")), "bob@example.org");
  json_decref(q);
  CHECK_INT_EQ(goop_site_set_peer_email(site_a, &idb, NULL), 0);
  EXPECT_ERR(remote("{\"op\":\"insert\",\"table\":\"t_email\",\"data\":{\"body\":\"x\"}}"),
             "insert not allowed: your peer must have an email address configured");

  /* open: insert allowed, own rows only */
  json_t *ins = remote("{\"op\":\"insert\",\"table\":\"t_open\",\"data\":{\"body\":\"b1\"}}");
  CHECK(is_ok(ins));
  json_int_t my_id = json_integer_value(json_object_get(json_object_get(ins, "data"), "id"));
  CHECK(my_id > 0);
  json_decref(ins);
  q = remote("{\"op\":\"query\",\"table\":\"t_open\"}");
  CHECK_INT_EQ(rows(q), 1);
  json_decref(q);
  /* the JSON cannot claim to be someone else */
  q = remote("{\"op\":\"query\",\"table\":\"t_open\",\"where\":\"1=1 OR 1=1\",\"caller\":\"%s\"}", ida_text);
  CHECK_INT_EQ(rows(q), 1);
  json_decref(q);

  /* public: all rows */
  EXPECT_OK(remote("{\"op\":\"insert\",\"table\":\"t_public\",\"data\":{\"body\":\"b\"}}"));
  q = remote("{\"op\":\"query\",\"table\":\"t_public\",\"limit\":10}");
  CHECK_INT_EQ(rows(q), 2);
  json_decref(q);

  /* update/delete: own rows only */
  EXPECT_ERR(remote("{\"op\":\"update\",\"table\":\"t_open\",\"id\":1,\"data\":{\"body\":\"hack\"}}"),
             "row not found or not owned by caller");
  EXPECT_ERR(remote("{\"op\":\"delete\",\"table\":\"t_open\",\"id\":1}"),
             "row not found or not owned by caller");
  EXPECT_OK(remote("{\"op\":\"update\",\"table\":\"t_open\",\"id\":%lld,\"data\":{\"body\":\"b2\"}}",
                   (long long)my_id));
  EXPECT_OK(remote("{\"op\":\"delete\",\"table\":\"t_open\",\"id\":%lld}", (long long)my_id));
  q = local("{\"op\":\"query\",\"table\":\"t_open\"}");
  CHECK_INT_EQ(rows(q), 1); /* the owner sees everything: its own row is left */
  json_decref(q);
}

static void test_errors(void) {
  EXPECT_ERR(
      remote("{\"op\":\"create-table\",\"name\":\"x\",\"column_defs\":[{\"name\":\"a\",\"type\":\"TEXT\"}]}"),
      "schema operations not allowed for remote peers");
  EXPECT_ERR(remote("{\"op\":\"delete-table\",\"table\":\"t_open\"}"),
             "schema operations not allowed for remote peers");
  EXPECT_ERR(remote("{\"op\":\"frobnicate\"}"), "unknown op: frobnicate");
  EXPECT_ERR(remote("{\"op\":\"query\"}"), "table name required");
  EXPECT_ERR(remote("{\"op\":\"update\",\"table\":\"t_open\",\"data\":{\"body\":\"x\"}}"),
             "valid row id required");
  json_t *j = remote("{\"op\":\"query\",\"table\":\"t_open\"");
  CHECK(j && !is_ok(j));
  CHECK(strncmp(error_of(j), "invalid json", 12) == 0);
  json_decref(j);
  j = remote("not json at all");
  CHECK(j && strncmp(error_of(j), "invalid json", 12) == 0);
  json_decref(j);
  j = remote("%s", "");
  CHECK(j && !is_ok(j));
  json_decref(j);
  /* A request with a newline inside is refused locally. */
  struct answer a = {0};
  CHECK_INT_EQ(goop_data_request(hb, &ida, "{}\n{}", 5, 0, data_cb, &a), GOOP_EINVAL);
}

/* Raw stream: send bytes (optionally without newline, then close), read the answer. */
struct raw {
  goop_stream *s;
  const char *data;
  size_t len, off;
  char resp[4096];
  size_t rlen;
  volatile bool done;
  int status;
};
static void raw_end(struct raw *r, int st) {
  if (r->done)
    return;
  r->done = true;
  r->status = st;
  goop_stream_set_callbacks(r->s, NULL, NULL);
  r->s = goop_stream_unref(r->s);
}
static void raw_pump(goop_stream *s, void *ud) {
  struct raw *r = ud;
  while (r->off < r->len) {
    ssize_t w = goop_stream_write(s, r->data + r->off, r->len - r->off);
    if (w <= 0)
      break;
    r->off += (size_t)w;
  }
  if (r->off == r->len)
    goop_stream_close_write(s);
  for (;;) {
    char b[1024];
    ssize_t n = goop_stream_read(s, b, sizeof(b));
    if (n == GOOP_EAGAIN)
      return;
    if (n <= 0) {
      raw_end(r, (int)n);
      return;
    }
    size_t k = (size_t)n < sizeof(r->resp) - 1 - r->rlen ? (size_t)n : sizeof(r->resp) - 1 - r->rlen;
    memcpy(r->resp + r->rlen, b, k);
    r->rlen += k;
    r->resp[r->rlen] = '\0';
  }
}
static void raw_err(goop_stream *s, int e, void *ud) {
  (void)s;
  raw_end(ud, e);
}
static const struct goop_stream_callbacks raw_cbs = {GOOP_STREAM_CALLBACKS_V1, raw_pump, raw_pump, raw_err};
static void raw_open(goop_host *h, int st, goop_stream *s, void *ud) {
  (void)h;
  struct raw *r = ud;
  if (st) {
    r->done = true;
    r->status = st;
    return;
  }
  r->s = s;
  goop_stream_set_callbacks(s, &raw_cbs, r);
  raw_pump(s, r);
}
static void raw(const char *data, size_t len, struct raw *r) {
  memset(r, 0, sizeof(*r));
  r->data = data;
  r->len = len;
  const char *p[] = {GOOP_PROTO_DATA};
  if (goop_host_new_stream(hb, &ida, p, 1, 5000, raw_open, r) == 0)
    run_until(&r->done, 15000);
}

static void test_wire(void) {
  struct raw r;
  /* No newline, then EOF: still answered (Goop2 clients may half-close). */
  const char *q = "{\"op\":\"tables\"}";
  raw(q, strlen(q), &r);
  CHECK_INT_EQ(r.status, 0);
  CHECK(strncmp(r.resp, "{\"ok\":true", 10) == 0);
  CHECK(r.rlen > 0 && r.resp[r.rlen - 1] == '\n');
  /* Bytes after the newline are ignored. */
  const char *two = "{\"op\":\"tables\"}\n{\"op\":\"frobnicate\"}\n";
  raw(two, strlen(two), &r);
  CHECK(strncmp(r.resp, "{\"ok\":true", 10) == 0);
  CHECK(strchr(r.resp, '\n') == r.resp + r.rlen - 1);
  /* Invalid JSON line. */
  raw("{oops\n", 6, &r);
  CHECK(strstr(r.resp, "\"ok\":false") && strstr(r.resp, "invalid json"));
  /* Oversized request. */
  CHECK_INT_EQ(goop_site_set_limit(site_a, GOOP_SITE_MAX_REQUEST, 1024), 0);
  char *big = malloc(5000);
  memset(big, ' ', 5000);
  big[0] = '{';
  big[4998] = '}';
  big[4999] = '\n';
  raw(big, 5000, &r);
  CHECK_STR_EQ(r.resp, "{\"ok\":false,\"error\":\"request too large\"}\n");
  struct answer a = {0};
  CHECK_INT_EQ(goop_data_request(hb, &ida, big, 4999, 0, data_cb, &a), 0);
  run_until(&a.done, 15000);
  CHECK_INT_EQ(a.status, 0);
  CHECK(a.text && strcmp(a.text, "{\"ok\":false,\"error\":\"request too large\"}") == 0);
  free(a.text);
  free(big);
  CHECK_INT_EQ(goop_site_set_limit(site_a, GOOP_SITE_MAX_REQUEST, 1u << 20), 0);
  /* Still serving. */
  json_t *t = remote("{\"op\":\"tables\"}");
  CHECK(is_ok(t));
  json_decref(t);
  /* Nobody serves /goop/data on B. */
  memset(&a, 0, sizeof(a));
  CHECK_INT_EQ(goop_data_request(ha, &idb, "{}", 2, 3000, data_cb, &a), 0);
  run_until(&a.done, 15000);
  CHECK_INT_EQ(a.status, GOOP_ENEGOTIATION);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  base = event_base_new();
  if (!base || goop_ctx_new(base, &ctx))
    return 1;
  snprintf(tmp, sizeof(tmp), "/tmp/goop-test-data-XXXXXX");
  if (!mkdtemp(tmp))
    return 1;
  char dir[512], err[GOOP_ERRBUF_SIZE];
  goop_config *cfg;
  goop_identity *id;
  snprintf(dir, sizeof(dir), "%s/a", tmp);
  if (goop_peer_dir_open(dir, &cfg, &id, NULL, err, sizeof(err))) {
    fprintf(stderr, "peer dir: %s\n", err);
    return 1;
  }
  goop_identity_peer_id(id, &ida);
  goop_peer_id_to_string(&ida, ida_text, sizeof(ida_text));
  if (goop_site_open(cfg, &ida, &site_a, err, sizeof(err))) {
    fprintf(stderr, "site: %s\n", err);
    return 1;
  }
  goop_config_free(cfg);
  if (goop_host_new(ctx, id, NULL, &ha) || goop_host_listen(ha, "/ip4/127.0.0.1/tcp/0"))
    return 1;
  goop_identity_free(id);
  if (goop_identity_generate(&id))
    return 1;
  goop_identity_peer_id(id, &idb);
  goop_peer_id_to_string(&idb, idb_text, sizeof(idb_text));
  if (goop_host_new(ctx, id, NULL, &hb) || goop_host_listen(hb, "/ip4/127.0.0.1/tcp/0"))
    return 1;
  goop_identity_free(id);
  char a[256];
  goop_host_listen_addr(ha, 0, a, sizeof(a));
  CHECK_INT_EQ(goop_host_add_addr(hb, &ida, a, 0), 0);
  goop_host_listen_addr(hb, 0, a, sizeof(a));
  CHECK_INT_EQ(goop_host_add_addr(ha, &idb, a, 0), 0);
  CHECK_INT_EQ(goop_site_serve(site_a, ha), 0);

  RUN(test_setup_tables);
  RUN(test_policies);
  RUN(test_errors);
  RUN(test_wire);

  goop_site_free(site_a);
  goop_host_free(ha);
  goop_host_free(hb);
  goop_ctx_free(ctx);
  event_base_free(base);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
  if (system(cmd) != 0)
    fprintf(stderr, "# could not remove %s\n", tmp);
  return tap_done();
}
