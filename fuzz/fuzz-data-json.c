/* Fuzz target: site data operations (goop_site_data_exec) on a small
 * database, as a visitor with and without email and as the owner; the
 * database is put back whenever the owner changed it. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "site/site-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static goop_site *site;

static const char setup_sql[] =
    "CREATE TABLE notes (_id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL, _owner_email TEXT "
    "DEFAULT '', _created_at DATETIME DEFAULT CURRENT_TIMESTAMP, _updated_at DATETIME DEFAULT "
    "CURRENT_TIMESTAMP, title TEXT, published INTEGER DEFAULT 0);"
    "CREATE TABLE posts (_id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL, body TEXT, "
    "status TEXT DEFAULT 'open');"
    "CREATE TABLE hidden (v TEXT);"
    "INSERT INTO _tables (name, schema, insert_policy) VALUES ('notes', '', 'public'), ('posts', '', 'open');"
    "INSERT INTO notes (_owner, title, published) VALUES ('owner', 'hello', 1), ('12D3KooWFuzz', 'mine', 0);"
    "INSERT INTO posts (_owner, body) VALUES ('other', 'theirs'), ('12D3KooWFuzz', 'mine');"
    "INSERT INTO hidden VALUES ('secret');";

/* Drop every user table and recreate the fixture. */
static void reset(void) {
  sqlite3_exec(site->db, "ROLLBACK", NULL, NULL, NULL);
  for (int guard = 0;; guard++) {
    sqlite3_stmt *st = NULL;
    char *sql = NULL;
    sqlite3_prepare_v2(
        site->db,
        "SELECT type, name FROM sqlite_master WHERE type IN ('table','view') AND name NOT LIKE "
        "'\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' LIMIT 1",
        -1, &st, NULL);
    if (st && sqlite3_step(st) == SQLITE_ROW)
      sql = sqlite3_mprintf("DROP %s \"%w\"",
                            strcmp((const char *)sqlite3_column_text(st, 0), "view") ? "TABLE" : "VIEW",
                            (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    if (!sql)
      break;
    if (sqlite3_exec(site->db, sql, NULL, NULL, NULL) != SQLITE_OK || guard > 1000)
      abort();
    sqlite3_free(sql);
  }
  sqlite3_exec(site->db, "DELETE FROM _tables", NULL, NULL, NULL);
  if (sqlite3_exec(site->db, setup_sql, NULL, NULL, NULL) != SQLITE_OK)
    abort();
}

static char dir[] = "/tmp/goop-fuzz-data-XXXXXX";

static void cleanup(void) {
  goop_site_free(site);
  site = NULL;
  static const char *const files[] = {"data.db", "data.db-wal", "data.db-shm"};
  for (size_t i = 0; i < 3; i++) {
    char p[sizeof(dir) + 16];
    snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
    unlink(p);
  }
  rmdir(dir);
}

static int init(void) {
  if (!mkdtemp(dir))
    return -1;
  goop_config *cfg = NULL;
  char err[GOOP_ERRBUF_SIZE];
  if (goop_config_parse("{}", 2, dir, &cfg, err, sizeof(err)) != 0)
    return -1;
  goop_peer_id owner;
  if (goop_peer_id_from_string("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", &owner) != 0)
    return -1;
  int rc = goop_site_open(cfg, &owner, &site, err, sizeof(err));
  goop_config_free(cfg);
  if (rc != 0)
    return -1;
  atexit(cleanup);
  /* speed over durability here */
  sqlite3_exec(site->db, "PRAGMA synchronous = OFF", NULL, NULL, NULL);
  reset();
  return 0;
}

static int schema_version(void) {
  sqlite3_stmt *st = NULL;
  int v = -1;
  sqlite3_prepare_v2(site->db, "PRAGMA schema_version", -1, &st, NULL);
  if (st && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!site && init() != 0)
    abort();
  static const struct goop_site_caller callers[] = {
      {"12D3KooWFuzz", "fuzz@example.com", false},
      {"12D3KooWFuzz", NULL, false},
      {"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", NULL, true},
  };
  for (size_t i = 0; i < 3; i++) {
    int version = schema_version();
    int changes = sqlite3_total_changes(site->db);
    char *resp = NULL;
    int rc = goop_site_data_exec(site, &callers[i], (const char *)data, size, &resp);
    if (rc == 0) {
      if (!resp || strncmp(resp, "{\"ok\":", 6) != 0)
        abort();
    } else if (rc != GOOP_ENOMEM) {
      abort();
    }
    free(resp);
    if (!sqlite3_get_autocommit(site->db))
      abort(); /* a transaction was left open */
    bool changed = schema_version() != version || sqlite3_total_changes(site->db) != changes;
    if (changed && !callers[i].is_owner) {
      /* a visitor may only have inserted/updated/deleted in notes/posts */
      sqlite3_stmt *st = NULL;
      sqlite3_prepare_v2(site->db, "SELECT count(*) FROM hidden WHERE v = 'secret'", -1, &st, NULL);
      if (!st || sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 1)
        abort();
      sqlite3_finalize(st);
      if (schema_version() != version)
        abort();
    }
    if (changed)
      reset();
  }
  return 0;
}
