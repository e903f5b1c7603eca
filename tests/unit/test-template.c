/* Site templates: applying the corkboard-mini template, and refusing hostile
 * templates (escaping symlinks, special files, bad manifests, hostile SQL)
 * with nothing changed. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "site/site-internal.h"
#include "tap.h"

#define MINI TEST_DATA_DIR "/templates/corkboard-mini"

static char tmpdir[256];
static goop_site *site;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static void rm_rf(const char *p) {
  nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

static bool exists(const char *rel) {
  char p[1024];
  struct stat st;
  snprintf(p, sizeof(p), "%s/%s", site->site_root, rel);
  return lstat(p, &st) == 0;
}

static int cp_r(const char *a, const char *b) {
  char cmd[2048];
  snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s'", a, b);
  return system(cmd);
}

/* Copy of the mini template at <tmpdir>/<name> to make hostile variants of. */
static char *variant(const char *name) {
  static char path[512];
  snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
  rm_rf(path);
  cp_r(MINI, path);
  return path;
}

/* ---- snapshot of everything apply could change ---- */
static char *snap;
static size_t snap_len, snap_cap;

static void snap_add(const char *s, size_t n) {
  if (snap_len + n + 1 > snap_cap) {
    snap_cap = (snap_len + n + 1) * 2;
    snap = realloc(snap, snap_cap);
  }
  memcpy(snap + snap_len, s, n);
  snap_len += n;
  snap[snap_len] = 0;
}

static int snap_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)ftw;
  char line[1200];
  int n = snprintf(line, sizeof(line), "%s %d %lld\n", p, flag, (long long)sb->st_size);
  snap_add(line, (size_t)n);
  if (flag == FTW_F) {
    FILE *f = fopen(p, "rb");
    char buf[4096];
    size_t r;
    while (f && (r = fread(buf, 1, sizeof(buf), f)) > 0)
      snap_add(buf, r);
    if (f)
      fclose(f);
  }
  return 0;
}

static char *snapshot(void) {
  snap = NULL;
  snap_len = snap_cap = 0;
  snap_add("", 0);
  nftw(site->site_root, snap_cb, 16, FTW_PHYS);
  sqlite3_stmt *st = NULL;
  sqlite3_prepare_v2(
      site->db,
      "SELECT name, sql FROM sqlite_master UNION ALL SELECT name || insert_policy, schema FROM "
      "_tables UNION ALL SELECT text, _owner FROM notes ORDER BY 1",
      -1, &st, NULL);
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    for (int i = 0; i < 2; i++) {
      const char *v = (const char *)sqlite3_column_text(st, i);
      snap_add(v ? v : "NULL", strlen(v ? v : "NULL"));
      snap_add("\n", 1);
    }
  }
  sqlite3_finalize(st);
  return snap;
}

static char *policy_of(const char *table) {
  sqlite3_stmt *st = NULL;
  char *r = NULL;
  sqlite3_prepare_v2(site->db, "SELECT insert_policy FROM _tables WHERE name = ?", -1, &st, NULL);
  sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW)
    r = strdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return r;
}

static int table_exists(const char *name) {
  sqlite3_stmt *st = NULL;
  int r = 0;
  sqlite3_prepare_v2(site->db,
                     "SELECT count(*) FROM sqlite_master WHERE type='table' AND name = ? COLLATE NOCASE", -1,
                     &st, NULL);
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW)
    r = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return r;
}

static void test_apply_mini(void) {
  /* an old site: files, chat script, data function, a registered table */
  char p[1024];
  CHECK(goop__mkdir_p(site->site_root, 0755) == 0);
  snprintf(p, sizeof(p), "%s/sub/dir", site->site_root);
  goop__mkdir_p(p, 0755);
  snprintf(p, sizeof(p), "%s/lua/functions", site->site_root);
  goop__mkdir_p(p, 0755);
  snprintf(p, sizeof(p), "%s/old.html", site->site_root);
  write_file(p, "old");
  snprintf(p, sizeof(p), "%s/sub/dir/f.txt", site->site_root);
  write_file(p, "old");
  snprintf(p, sizeof(p), "%s/lua/chat.lua", site->site_root);
  write_file(p, "function handle(a) return a end");
  snprintf(p, sizeof(p), "%s/lua/functions/old.lua", site->site_root);
  write_file(p, "function call(r) end");
  /* a symlink in the old site is removed, its target untouched */
  snprintf(p, sizeof(p), "%s/outside.txt", tmpdir);
  write_file(p, "keep me");
  char l[1024];
  snprintf(l, sizeof(l), "%s/link", site->site_root);
  CHECK(symlink(p, l) == 0);
  struct goop_site_caller owner = {site->owner_text, NULL, true};
  char *resp = NULL;
  const char *req =
      "{\"op\":\"create-table\",\"name\":\"oldt\",\"column\":{\"name\":\"a\",\"type\":\"TEXT\"}}";
  CHECK(goop_site_data_exec(site, &owner, req, strlen(req), &resp) == 0 && strstr(resp, "\"ok\":true"));
  free(resp);

  char err[GOOP_ERRBUF_SIZE] = "";
  int rc = goop_site_apply_template(site, MINI, err, sizeof(err));
  CHECK_INT_EQ(rc, 0);
  if (rc)
    printf("# %s\n", err);
  /* database */
  CHECK(!table_exists("oldt"));
  CHECK(policy_of("oldt") == NULL);
  char *pol = policy_of("notes");
  CHECK_STR_EQ(pol, "public");
  free(pol);
  pol = policy_of("votes");
  CHECK_STR_EQ(pol, "open");
  free(pol);
  CHECK(table_exists("_scratch"));
  CHECK(policy_of("_scratch") == NULL);
  /* files */
  CHECK(exists("index.html"));
  CHECK(exists("css/style.css"));
  CHECK(exists("js/app.js"));
  CHECK(exists("images/.keep"));
  CHECK(exists("lua/functions/pin.lua"));
  CHECK(!exists("manifest.json"));
  CHECK(!exists("schema.sql"));
  CHECK(!exists("old.html"));
  CHECK(!exists("sub"));
  CHECK(!exists("link"));
  CHECK(access(p, F_OK) == 0);
  CHECK(exists("lua/chat.lua"));
  CHECK(!exists("lua/functions/old.lua"));
  struct stat st;
  snprintf(p, sizeof(p), "%s/css/style.css", site->site_root);
  CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0644);
  snprintf(p, sizeof(p), "%s/css", site->site_root);
  CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0755);

  /* the site works through the data API as a visitor */
  struct goop_site_caller visitor = {"12D3KooWVisitor", NULL, false};
  req = "{\"op\":\"insert\",\"table\":\"notes\",\"data\":{\"text\":\"hi\"}}";
  CHECK(goop_site_data_exec(site, &visitor, req, strlen(req), &resp) == 0 && strstr(resp, "\"inserted\""));
  free(resp);
  req = "{\"op\":\"query\",\"table\":\"notes\",\"columns\":[\"text\"]}";
  CHECK(goop_site_data_exec(site, &visitor, req, strlen(req), &resp) == 0);
  CHECK_STR_EQ(resp, "{\"ok\":true,\"data\":[{\"text\":\"Welcome to the board\"},{\"text\":\"hi\"}]}");
  free(resp);

  /* applying again replaces the data */
  rc = goop_site_apply_template(site, MINI, err, sizeof(err));
  CHECK_INT_EQ(rc, 0);
  req = "{\"op\":\"query\",\"table\":\"notes\",\"columns\":[\"text\"]}";
  CHECK(goop_site_data_exec(site, &visitor, req, strlen(req), &resp) == 0);
  CHECK_STR_EQ(resp, "{\"ok\":true,\"data\":[{\"text\":\"Welcome to the board\"}]}");
  free(resp);
}

/* Apply |dir| and expect |want| with nothing changed. */
static void expect_refused(const char *what, const char *dir, int want) {
  char *before = strdup(snapshot());
  free(snap);
  char err[GOOP_ERRBUF_SIZE] = "";
  int rc = goop_site_apply_template(site, dir, err, sizeof(err));
  printf("# %s: %s (%s)\n", what, goop_err_name(rc), err);
  CHECK_INT_EQ(rc, want);
  char *after = snapshot();
  CHECK(strcmp(before, after) == 0);
  free(before);
  free(after);
}

static void test_hostile(void) {
  char p[1024], target[1024];
  snprintf(target, sizeof(target), "%s/secret.txt", tmpdir);
  write_file(target, "secret");

  /* a symlink to a file outside */
  char *d = variant("t-link");
  snprintf(p, sizeof(p), "%s/css/evil.css", d);
  CHECK(symlink(target, p) == 0);
  expect_refused("file symlink", d, GOOP_EFORBIDDEN);

  /* a symlinked directory */
  d = variant("t-dirlink");
  snprintf(p, sizeof(p), "%s/escape", d);
  CHECK(symlink("/etc", p) == 0);
  expect_refused("directory symlink", d, GOOP_EFORBIDDEN);

  /* a relative ../ symlink */
  d = variant("t-rel");
  snprintf(p, sizeof(p), "%s/js/up.js", d);
  CHECK(symlink("../../../secret.txt", p) == 0);
  expect_refused("relative symlink", d, GOOP_EFORBIDDEN);

  /* manifest.json itself a symlink */
  d = variant("t-manifest-link");
  snprintf(p, sizeof(p), "%s/manifest.json", d);
  unlink(p);
  CHECK(symlink(MINI "/manifest.json", p) == 0);
  expect_refused("manifest symlink", d, GOOP_EFORBIDDEN);

  /* a FIFO */
  d = variant("t-fifo");
  snprintf(p, sizeof(p), "%s/pipe", d);
  CHECK(mkfifo(p, 0644) == 0);
  expect_refused("fifo", d, GOOP_EFORBIDDEN);

  /* a file over 10 MiB (sparse) */
  d = variant("t-big");
  snprintf(p, sizeof(p), "%s/images/huge.bin", d);
  int fd = open(p, O_WRONLY | O_CREAT, 0644);
  CHECK(fd >= 0 && ftruncate(fd, (10 << 20) + 1) == 0);
  close(fd);
  expect_refused("big file", d, GOOP_EINVAL);

  /* too many files */
  d = variant("t-many");
  for (int i = 0; i < 2001; i++) {
    snprintf(p, sizeof(p), "%s/images/%d.txt", d, i);
    write_file(p, "x");
  }
  expect_refused("2001 files", d, GOOP_EINVAL);

  /* bad manifests */
  d = variant("t-badjson");
  snprintf(p, sizeof(p), "%s/manifest.json", d);
  write_file(p, "{\"name\": ");
  expect_refused("manifest not JSON", d, GOOP_EPARSE);
  write_file(p, "[1]");
  expect_refused("manifest not an object", d, GOOP_EPARSE);
  write_file(p, "{\"name\":\"x\",\"tables\":{\"notes\":{\"insert_policy\":\"everyone\"}}}");
  expect_refused("unknown policy", d, GOOP_EINVAL);
  write_file(p, "{\"name\":\"x\",\"tables\":{\"no tes\":{\"insert_policy\":\"open\"}}}");
  expect_refused("bad table name", d, GOOP_EINVAL);
  write_file(p, "{\"name\":5}");
  expect_refused("name not a string", d, GOOP_EINVAL);
  unlink(p);
  expect_refused("no manifest", d, GOOP_EINVAL);

  /* hostile schema.sql: fails inside the transaction, nothing changes */
  static const char *const bad_sql[] = {
      "CREATE TABLE x (_id INTEGER PRIMARY KEY, _owner TEXT); ATTACH DATABASE '@/evil.db' AS e;",
      "CREATE TABLE x (_id INTEGER PRIMARY KEY); UPDATE _tables SET insert_policy = 'open';",
      "CREATE TABLE x (_id INTEGER PRIMARY KEY); DROP TABLE _groups;",
      "CREATE TABLE x (_id INTEGER PRIMARY KEY); COMMIT; DROP TABLE notes;",
      "PRAGMA writable_schema = 1;",
      "CREATE TEMP TRIGGER t AFTER INSERT ON notes BEGIN SELECT 1; END;",
      "CREATE TABLE x (a); INSERT INTO x SELECT load_extension('/tmp/nope.so');",
      "CREATE TABLE x (a); WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c) INSERT INTO x "
      "SELECT n "
      "FROM c;",
      "CREATE TABLE oops (",
  };
  d = variant("t-sql");
  snprintf(p, sizeof(p), "%s/schema.sql", d);
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(bad_sql); i++) {
    char sql[1024];
    const char *at = strchr(bad_sql[i], '@');
    if (at)
      snprintf(sql, sizeof(sql), "%.*s%s%s", (int)(at - bad_sql[i]), bad_sql[i], tmpdir, at + 1);
    else
      snprintf(sql, sizeof(sql), "%s", bad_sql[i]);
    write_file(p, sql);
    expect_refused("hostile schema.sql", d, GOOP_EDB);
  }
  snprintf(p, sizeof(p), "%s/evil.db", tmpdir);
  CHECK(access(p, F_OK) != 0);

  /* the template inside the site root */
  snprintf(p, sizeof(p), "%s/tpl", site->site_root);
  cp_r(MINI, p);
  char err[GOOP_ERRBUF_SIZE];
  CHECK_INT_EQ(goop_site_apply_template(site, p, err, sizeof(err)), GOOP_EINVAL);
  rm_rf(p);
  CHECK_INT_EQ(goop_site_apply_template(site, "/nonexistent/template", err, sizeof(err)), GOOP_EINVAL);
}

int main(void) {
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/goop-tpl-XXXXXX");
  if (!mkdtemp(tmpdir))
    return 1;
  goop_config *cfg = NULL;
  char err[GOOP_ERRBUF_SIZE];
  char peer[512];
  snprintf(peer, sizeof(peer), "%s/peer", tmpdir);
  goop__mkdir_p(peer, 0700);
  CHECK(goop_config_parse("{}", 2, peer, &cfg, err, sizeof(err)) == 0);
  goop_identity *id = NULL;
  CHECK(goop_identity_generate(&id) == 0);
  goop_peer_id pid;
  goop_identity_peer_id(id, &pid);
  goop_identity_free(id);
  CHECK(goop_site_open(cfg, &pid, &site, err, sizeof(err)) == 0);
  goop_config_free(cfg);
  if (!site)
    return tap_done();
  RUN(test_apply_mini);
  RUN(test_hostile);
  goop_site_free(site);
  rm_rf(tmpdir);
  return tap_done();
}
