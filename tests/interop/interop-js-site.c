/*
 * C<->js-libp2p interop of /goop/site/1.0.0 and /goop/data/1.0.0: js-goop.mjs
 * implements both protocols from the protocol description alone. As a client
 * it fetches files from our site (and gets our ERR lines) and runs a data
 * insert + query against our database; as a server it answers our
 * goop_site_fetch_start() and goop_data_request().
 */
#include <event2/event.h>
#include <goop/goop.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jspeer.h"
#include "site/site-internal.h"
#include "tap.h"

static struct event_base *base;
static goop_ctx *ctx;
static goop_host *host;
static goop_peer_id self_id, js_id;
static char self_addr[400];
static goop_site *site;
static goop_jspeer *js;
static char tmp[256];

static const char *interop_dir(void) {
  const char *d = getenv("GOOP_INTEROP_DIR");
  return d ? d : TEST_DATA_DIR "/../interop";
}

static void sha256_hex(const void *data, size_t len, char out[65]) {
  uint8_t md[32];
  unsigned n = 0;
  EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void put(const char *rel, const void *data, size_t len) {
  char p[2048];
  snprintf(p, sizeof(p), "%s/peer/site/%s", tmp, rel);
  FILE *f = fopen(p, "wb");
  if (!f || (len && fwrite(data, 1, len, f) != len))
    abort();
  fclose(f);
}

static json_t *js_call(json_t *cmd) {
  return goop_jspeer_call(js, cmd, 60000);
}

/* js fetches from us. */
static void test_js_fetches(void) {
  put("index.html", "<p>c</p>", 8);
  size_t big_len = 300000;
  uint8_t *big = malloc(big_len);
  for (size_t i = 0; i < big_len; i++)
    big[i] = (uint8_t)(i * 13);
  put("blob.bin", big, big_len);
  char want[65];
  sha256_hex(big, big_len, want);
  free(big);

  json_t *r = js_call(json_pack("{s:s, s:s, s:s}", "cmd", "site_get", "addr", self_addr, "path", "/"));
  CHECK(goop_jspeer_ok(r));
  CHECK_STR_EQ(json_string_value(json_object_get(r, "header")), "OK text/html; charset=utf-8 8");
  CHECK_STR_EQ(json_string_value(json_object_get(r, "text")), "<p>c</p>");
  json_decref(r);

  r = js_call(json_pack("{s:s, s:s, s:s}", "cmd", "site_get", "addr", self_addr, "path", "/blob.bin"));
  CHECK(goop_jspeer_ok(r));
  if (!goop_jspeer_ok(r))
    printf("#   js: %s\n", goop_jspeer_error(r));
  CHECK_INT_EQ(json_integer_value(json_object_get(r, "size")), big_len);
  CHECK_INT_EQ(json_integer_value(json_object_get(r, "received")), big_len);
  CHECK_STR_EQ(json_string_value(json_object_get(r, "mime")), "application/octet-stream");
  CHECK_STR_EQ(json_string_value(json_object_get(r, "sha256")), want);
  json_decref(r);

  static const struct {
    const char *path, *header;
  } errs[] = {
      {"/missing", "ERR not found"},
      {"/../etc/passwd", "ERR forbidden"},
      {"/lua/x.lua", "ERR forbidden"},
  };
  for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
    r = js_call(json_pack("{s:s, s:s, s:s}", "cmd", "site_get", "addr", self_addr, "path", errs[i].path));
    CHECK(goop_jspeer_ok(r));
    CHECK_STR_EQ(json_string_value(json_object_get(r, "header")), errs[i].header);
    CHECK_INT_EQ(json_integer_value(json_object_get(r, "received")), 0);
    json_decref(r);
  }
}

/* js runs data operations on our database. */
static void test_js_data(void) {
  struct goop_site_caller owner = {NULL, NULL, true};
  char self_text[GOOP_PEER_ID_STR_MAX], js_text[GOOP_PEER_ID_STR_MAX];
  goop_peer_id_to_string(&self_id, self_text, sizeof(self_text));
  goop_peer_id_to_string(&js_id, js_text, sizeof(js_text));
  owner.id = self_text;
  const char *create = "{\"op\":\"create-table\",\"name\":\"guestbook\",\"column_defs\":[{\"name\":\"msg\","
                       "\"type\":\"TEXT\"}]}";
  char *resp = NULL;
  CHECK_INT_EQ(goop_site_data_exec(site, &owner, create, strlen(create), &resp), 0);
  CHECK(resp && strstr(resp, "\"ok\":true"));
  free(resp);
  json_t *r =
      js_call(json_pack("{s:s, s:s, s:s}", "cmd", "data", "addr", self_addr, "request",
                        "{\"op\":\"insert\",\"table\":\"guestbook\",\"data\":{\"msg\":\"hi from js\"}}"));
  CHECK(goop_jspeer_ok(r));
  /* policy "owner": refused with Goop2's text */
  CHECK_STR_EQ(
      json_string_value(json_object_get(r, "response")),
      "{\"ok\":false,\"error\":\"insert not allowed: this table only accepts data from the site owner\"}");
  json_decref(r);

  /* The owner inserts; js queries (policy owner: all rows visible). */
  const char *ins = "{\"op\":\"insert\",\"table\":\"guestbook\",\"data\":{\"msg\":\"by owner\"}}";
  CHECK_INT_EQ(goop_site_data_exec(site, &owner, ins, strlen(ins), &resp), 0);
  free(resp);
  r = js_call(json_pack("{s:s, s:s, s:s}", "cmd", "data", "addr", self_addr, "request",
                        "{\"op\":\"query\",\"table\":\"guestbook\",\"columns\":[\"msg\",\"_owner\"]}"));
  CHECK(goop_jspeer_ok(r));
  json_t *ans = json_loads(json_string_value(json_object_get(r, "response")), 0, NULL);
  CHECK(json_is_true(json_object_get(ans, "ok")));
  json_t *row = json_array_get(json_object_get(ans, "data"), 0);
  CHECK_STR_EQ(json_string_value(json_object_get(row, "msg")), "by owner");
  CHECK_STR_EQ(json_string_value(json_object_get(row, "_owner")), self_text);
  json_decref(ans);
  json_decref(r);

  /* An open table: js inserts, and the row is stored under js's peer ID. */
  const char *create2 =
      "{\"op\":\"create-table\",\"name\":\"notes\",\"column_defs\":[{\"name\":\"msg\",\"type\":\"TEXT\"}]}";
  CHECK_INT_EQ(goop_site_data_exec(site, &owner, create2, strlen(create2), &resp), 0);
  free(resp);
  /* There is no data op that sets a policy (templates do): set it in the database. */
  CHECK_INT_EQ(sqlite3_exec(site->db, "UPDATE _tables SET insert_policy = 'open' WHERE name = 'notes'", NULL,
                            NULL, NULL),
               SQLITE_OK);
  r = js_call(json_pack("{s:s, s:s, s:s}", "cmd", "data", "addr", self_addr, "request",
                        "{\"op\":\"insert\",\"table\":\"notes\",\"data\":{\"msg\":\"hi from js\"}}"));
  CHECK(goop_jspeer_ok(r));
  ans = json_loads(json_string_value(json_object_get(r, "response")), 0, NULL);
  CHECK(json_is_true(json_object_get(ans, "ok")));
  CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(ans, "data"), "status")), "inserted");
  json_decref(ans);
  json_decref(r);
  r = js_call(json_pack("{s:s, s:s, s:s}", "cmd", "data", "addr", self_addr, "request",
                        "{\"op\":\"query\",\"table\":\"notes\"}"));
  ans = json_loads(json_string_value(json_object_get(r, "response")), 0, NULL);
  CHECK(json_is_true(json_object_get(ans, "ok")));
  CHECK_INT_EQ(json_array_size(json_object_get(ans, "data")), 1);
  row = json_array_get(json_object_get(ans, "data"), 0);
  CHECK_STR_EQ(json_string_value(json_object_get(row, "msg")), "hi from js");
  CHECK_STR_EQ(json_string_value(json_object_get(row, "_owner")), js_text);
  json_decref(ans);
  json_decref(r);
}

/* We fetch from js. */
struct fres {
  bool done;
  int status;
  char mime[128];
  uint64_t size;
  char body[256];
  size_t got;
  char msg[128];
};
static int f_header(goop_site_fetch *f, const char *mime, uint64_t size, void *ud) {
  (void)f;
  struct fres *r = ud;
  snprintf(r->mime, sizeof(r->mime), "%s", mime);
  r->size = size;
  return 0;
}
static int f_chunk(goop_site_fetch *f, const uint8_t *d, size_t len, void *ud) {
  (void)f;
  struct fres *r = ud;
  if (r->got + len < sizeof(r->body)) {
    memcpy(r->body + r->got, d, len);
    r->body[r->got + len] = '\0';
  }
  r->got += len;
  return 0;
}
static void f_done(goop_site_fetch *f, int status, const char *msg, void *ud) {
  (void)f;
  struct fres *r = ud;
  r->status = status;
  snprintf(r->msg, sizeof(r->msg), "%s", msg);
  r->done = true;
}
static const struct goop_site_fetch_callbacks fcb = {GOOP_SITE_FETCH_CALLBACKS_V1, f_header, f_chunk, f_done};

struct dres {
  bool done;
  int status;
  char text[512];
};
static void d_cb(goop_host *h, int status, const char *resp, size_t len, void *ud) {
  (void)h;
  struct dres *r = ud;
  r->status = status;
  snprintf(r->text, sizeof(r->text), "%.*s", (int)len, resp ? resp : "");
  r->done = true;
}

static void test_we_fetch(void) {
  struct fres r = {0};
  CHECK_INT_EQ(goop_site_fetch_start(host, &js_id, "/hello.txt", 0, 10000, &fcb, &r, NULL), 0);
  goop_jspeer_run_until(js, &r.done, 20000);
  CHECK_INT_EQ(r.status, 0);
  CHECK_STR_EQ(r.mime, "text/plain; charset=utf-8");
  CHECK_INT_EQ(r.size, 21);
  CHECK_STR_EQ(r.body, "hello from js-libp2p\n");

  memset(&r, 0, sizeof(r));
  CHECK_INT_EQ(goop_site_fetch_start(host, &js_id, "/nope", 0, 10000, &fcb, &r, NULL), 0);
  goop_jspeer_run_until(js, &r.done, 20000);
  CHECK_INT_EQ(r.status, GOOP_ENOENT);
  CHECK_STR_EQ(r.msg, "not found");

  struct dres d = {0};
  const char *q = "{\"op\":\"query\",\"table\":\"posts\"}";
  CHECK_INT_EQ(goop_data_request(host, &js_id, q, strlen(q), 10000, d_cb, &d), 0);
  goop_jspeer_run_until(js, &d.done, 20000);
  CHECK_INT_EQ(d.status, 0);
  CHECK_STR_EQ(d.text, "{\"ok\":true,\"data\":{\"echo\":\"query\",\"fixed\":42}}");
  json_t *last = js_call(json_pack("{s:s}", "cmd", "last_data_request"));
  CHECK_STR_EQ(json_string_value(json_object_get(last, "request")), q);
  char self_text[GOOP_PEER_ID_STR_MAX];
  goop_peer_id_to_string(&self_id, self_text, sizeof(self_text));
  CHECK_STR_EQ(json_string_value(json_object_get(last, "peer_id")), self_text);
  json_decref(last);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  if (access("/usr/bin/env", X_OK) != 0) {
    printf("1..0 # SKIP no /usr/bin/env\n");
    return 0;
  }
  base = event_base_new();
  if (!base || goop_ctx_new(base, &ctx))
    return 1;
  snprintf(tmp, sizeof(tmp), "/tmp/goop-interop-site-XXXXXX");
  if (!mkdtemp(tmp))
    return 1;
  char dir[512], err[GOOP_ERRBUF_SIZE];
  snprintf(dir, sizeof(dir), "%s/peer", tmp);
  goop_config *cfg;
  goop_identity *id;
  if (goop_peer_dir_open(dir, &cfg, &id, NULL, err, sizeof(err))) {
    fprintf(stderr, "peer dir: %s\n", err);
    return 1;
  }
  goop_identity_peer_id(id, &self_id);
  if (goop_site_open(cfg, &self_id, &site, err, sizeof(err))) {
    fprintf(stderr, "site: %s\n", err);
    return 1;
  }
  goop_config_free(cfg);
  if (goop_host_new(ctx, id, NULL, &host) || goop_host_listen(host, "/ip4/127.0.0.1/tcp/0"))
    return 1;
  goop_identity_free(id);
  if (goop_site_serve(site, host))
    return 1;
  char a[300], idtext[GOOP_PEER_ID_STR_MAX];
  goop_host_listen_addr(host, 0, a, sizeof(a));
  goop_peer_id_to_string(&self_id, idtext, sizeof(idtext));
  snprintf(self_addr, sizeof(self_addr), "%s/p2p/%s", a, idtext);
  char lua[600];
  snprintf(lua, sizeof(lua), "%s/peer/site/lua", tmp);
  mkdir(lua, 0700);
  put("lua/x.lua", "return 1", 8);

  /* js-goop.mjs through bash: install the pinned packages if needed, then run node. */
  char script[2048];
  snprintf(script, sizeof(script),
           "set -e; cd '%s'; . ./npm-ensure.sh; goop_interop_npm_ensure \"$PWD\"; "
           "exec node --import ./polyfill.mjs js-goop.mjs \"$@\"",
           interop_dir());
  const char *args[] = {"bash", "-c", script, "js-goop", "--listen", "/ip4/127.0.0.1/tcp/0", NULL};
  if (goop_jspeer_spawn(base, "/usr/bin/env", args, &js) != 0 ||
      goop_jspeer_wait_listening(js, 120000) != 0) {
    printf("1..0 # SKIP js-goop.mjs did not start\n");
    return 0;
  }
  if (goop_peer_id_from_string(goop_jspeer_peer_id(js), &js_id) != 0 ||
      goop_host_add_addr(host, &js_id, goop_jspeer_addr(js, 0), 0) != 0)
    return 1;

  RUN(test_js_fetches);
  RUN(test_js_data);
  RUN(test_we_fetch);

  goop_jspeer_close(js, 5000);
  goop_site_free(site);
  goop_host_free(host);
  goop_ctx_free(ctx);
  event_base_free(base);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
  if (system(cmd) != 0)
    fprintf(stderr, "# could not remove %s\n", tmp);
  return tap_done();
}
