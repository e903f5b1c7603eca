/* Site database: every data operation, every policy, exact error texts and
 * hostile requests from non-owner callers (nothing else read or changed). */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "site/site-internal.h"
#include "tap.h"

static char tmpdir[256];
static goop_site *site;
static struct goop_site_caller owner, alice, bob;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static goop_site *open_site(const char *dir) {
  goop_config *cfg = NULL;
  char err[GOOP_ERRBUF_SIZE];
  if (goop_config_parse("{}", 2, dir, &cfg, err, sizeof(err)) != 0)
    return NULL;
  goop_identity *id = NULL;
  if (goop_identity_generate(&id) != 0)
    return NULL;
  goop_peer_id pid;
  goop_identity_peer_id(id, &pid);
  goop_identity_free(id);
  goop_site *s = NULL;
  int rc = goop_site_open(cfg, &pid, &s, err, sizeof(err));
  goop_config_free(cfg);
  if (rc != 0)
    printf("# goop_site_open: %s\n", err);
  return s;
}

/* Run |req| as |c|; returns the parsed response (caller frees). */
static json_t *run(const struct goop_site_caller *c, const char *req) {
  char *resp = NULL;
  int rc = goop_site_data_exec(site, c, req, strlen(req), &resp);
  if (rc != 0 || !resp) {
    printf("# exec failed %d for %s\n", rc, req);
    return NULL;
  }
  json_t *j = json_loads(resp, JSON_ALLOW_NUL, NULL);
  if (!j)
    printf("# bad response JSON: %s\n", resp);
  free(resp);
  return j;
}

static char *run_raw(const struct goop_site_caller *c, const char *req) {
  char *resp = NULL;
  if (goop_site_data_exec(site, c, req, strlen(req), &resp) != 0)
    return NULL;
  return resp;
}

static bool is_ok(json_t *j) {
  return j && json_is_true(json_object_get(j, "ok"));
}

static const char *err_of(json_t *j) {
  return j ? json_string_value(json_object_get(j, "error")) : NULL;
}

static json_t *data_of(json_t *j) {
  return json_object_get(j, "data");
}

#define CHECK_OK(c, req)                                                                                     \
  do {                                                                                                       \
    json_t *j_ = run((c), (req));                                                                            \
    CHECK(is_ok(j_));                                                                                        \
    if (!is_ok(j_))                                                                                          \
      printf("#   %s -> %s\n", (req), err_of(j_) ? err_of(j_) : "?");                                        \
    json_decref(j_);                                                                                         \
  } while (0)

#define CHECK_ERR(c, req, text)                                                                              \
  do {                                                                                                       \
    json_t *j_ = run((c), (req));                                                                            \
    CHECK(j_ && !is_ok(j_));                                                                                 \
    CHECK_STR_EQ(err_of(j_), (text));                                                                        \
    json_decref(j_);                                                                                         \
  } while (0)

/* Number of rows a query returns (-1 on error). */
static long count_rows(const struct goop_site_caller *c, const char *req) {
  json_t *j = run(c, req);
  long n = -1;
  if (is_ok(j))
    n = json_is_null(data_of(j)) ? 0 : (long)json_array_size(data_of(j));
  else
    printf("#   %s -> %s\n", req, err_of(j) ? err_of(j) : "?");
  json_decref(j);
  return n;
}

/* Everything in the database, as text, to compare before/after. */
static char *snapshot(void) {
  struct {
    char *p;
    size_t n, cap;
  } b = {malloc(1 << 16), 0, 1 << 16};
  b.p[0] = 0;
  sqlite3_stmt *st = NULL, *t = NULL;
  sqlite3_prepare_v2(site->db, "SELECT name, sql FROM sqlite_master ORDER BY name", -1, &st, NULL);
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(st, 0);
    const char *sql = (const char *)sqlite3_column_text(st, 1);
    char q[512];
    size_t need = strlen(name) + (sql ? strlen(sql) : 0) + 4;
    if (b.n + need + 1 > b.cap) {
      b.cap = (b.n + need + 1) * 2;
      b.p = realloc(b.p, b.cap);
    }
    b.n += (size_t)sprintf(b.p + b.n, "%s|%s\n", name, sql ? sql : "");
    if (!sql || strncmp(sql, "CREATE TABLE", 12) != 0)
      continue;
    snprintf(q, sizeof(q), "SELECT * FROM \"%s\"", name);
    if (sqlite3_prepare_v2(site->db, q, -1, &t, NULL) != SQLITE_OK)
      continue;
    while (sqlite3_step(t) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(t); i++) {
        const char *v = (const char *)sqlite3_column_text(t, i);
        size_t vn = v ? strlen(v) : 4;
        if (b.n + vn + 3 > b.cap) {
          b.cap = (b.n + vn + 3) * 2;
          b.p = realloc(b.p, b.cap);
        }
        b.n += (size_t)sprintf(b.p + b.n, "%s,", v ? v : "NULL");
      }
      b.p[b.n++] = '\n';
      b.p[b.n] = 0;
    }
    sqlite3_finalize(t);
  }
  sqlite3_finalize(st);
  return b.p;
}

static void set_policy(const char *table, const char *policy) {
  char sql[256];
  snprintf(sql, sizeof(sql), "UPDATE _tables SET insert_policy = '%s' WHERE name = '%s'", policy, table);
  sqlite3_exec(site->db, sql, NULL, NULL, NULL);
}

static void test_init(void) {
  sqlite3_stmt *st = NULL;
  const char *names[] = {"_meta", "_tables", "_groups", "_group_subscriptions"};
  for (size_t i = 0; i < 4; i++) {
    sqlite3_prepare_v2(site->db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?", -1, &st,
                       NULL);
    sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
    CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1);
    sqlite3_finalize(st);
  }
  sqlite3_prepare_v2(site->db, "PRAGMA journal_mode", -1, &st, NULL);
  CHECK(sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0);
  sqlite3_finalize(st);
  sqlite3_prepare_v2(site->db, "PRAGMA synchronous", -1, &st, NULL);
  CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 2);
  sqlite3_finalize(st);
  sqlite3_prepare_v2(site->db, "PRAGMA foreign_keys", -1, &st, NULL);
  CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1);
  sqlite3_finalize(st);
  sqlite3_prepare_v2(site->db, "PRAGMA busy_timeout", -1, &st, NULL);
  CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 5000);
  sqlite3_finalize(st);
  /* empty registry -> "data":null, exact bytes */
  char *r = run_raw(&owner, "{\"op\":\"tables\"}");
  CHECK_STR_EQ(r, "{\"ok\":true,\"data\":null}");
  free(r);
  r = run_raw(&alice, "{\"op\":\"nope\"}");
  CHECK_STR_EQ(r, "{\"ok\":false,\"error\":\"unknown op: nope\"}");
  free(r);
}

static const char *const make_tables[] = {
    "{\"op\":\"create-table\",\"name\":\"notes\",\"column_defs\":[{\"name\":\"title\",\"type\":\"TEXT\","
    "\"not_null\":true},{\"name\":\"published\",\"type\":\"INTEGER\",\"default\":\"0\"}]}",
    "{\"op\":\"create-table\",\"name\":\"posts\",\"column_defs\":[{\"name\":\"body\",\"type\":\"TEXT\"},"
    "{\"name\":\"status\",\"type\":\"TEXT\",\"default\":\"'open'\"}]}",
    "{\"op\":\"create-table\",\"table\":\"msgs\",\"column\":{\"name\":\"text\",\"type\":\"TEXT\"}}",
    "{\"op\":\"create-table\",\"name\":\"secrets\",\"column_defs\":[{\"name\":\"v\",\"type\":\"TEXT\"}]}",
    "{\"op\":\"create-table\",\"name\":\"odd\",\"column_defs\":[{\"name\":\"v\",\"type\":\"TEXT\"}]}",
};

static void test_owner_ops(void) {
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(make_tables); i++)
    CHECK_OK(&owner, make_tables[i]);
  json_t *j = run(&owner, make_tables[0]);
  CHECK(is_ok(j));
  CHECK_STR_EQ(json_string_value(json_object_get(data_of(j), "status")), "created");
  CHECK_STR_EQ(json_string_value(json_object_get(data_of(j), "table")), "notes");
  json_decref(j);
  set_policy("notes", "public");
  set_policy("posts", "open");
  set_policy("msgs", "email");
  set_policy("odd", "weird");
  /* an unregistered table and rows in every table */
  sqlite3_exec(site->db,
               "CREATE TABLE hidden (_id INTEGER PRIMARY KEY, _owner TEXT, v TEXT);"
               "INSERT INTO hidden (_owner, v) VALUES ('x', 'hidden-secret');",
               NULL, NULL, NULL);

  j = run(&owner, "{\"op\":\"tables\"}");
  CHECK(is_ok(j) && json_array_size(data_of(j)) == 5);
  json_t *first = json_array_get(data_of(j), 0);
  CHECK_STR_EQ(json_string_value(json_object_get(first, "name")), "msgs");
  CHECK_STR_EQ(json_string_value(json_object_get(first, "insert_policy")), "email");
  const char *ca = json_string_value(json_object_get(first, "created_at"));
  CHECK(ca && strlen(ca) == 20 && ca[10] == 'T' && ca[19] == 'Z');
  json_decref(j);

  j = run(&owner, "{\"op\":\"describe\",\"table\":\"notes\"}");
  CHECK(is_ok(j) && json_array_size(data_of(j)) == 7);
  json_t *c0 = json_array_get(data_of(j), 0), *c5 = json_array_get(data_of(j), 5);
  CHECK_STR_EQ(json_string_value(json_object_get(c0, "name")), "_id");
  CHECK(json_is_true(json_object_get(c0, "pk")));
  CHECK(json_integer_value(json_object_get(c0, "cid")) == 0);
  CHECK(json_is_null(json_object_get(c0, "default")));
  CHECK_STR_EQ(json_string_value(json_object_get(c5, "name")), "title");
  CHECK(json_is_true(json_object_get(c5, "not_null")));
  CHECK_STR_EQ(json_string_value(json_object_get(c5, "type")), "TEXT");
  json_decref(j);
  char *r = run_raw(&owner, "{\"op\":\"describe\",\"name\":\"missing\"}");
  CHECK_STR_EQ(r, "{\"ok\":true,\"data\":null}");
  free(r);

  j = run(&owner, "{\"op\":\"insert\",\"table\":\"notes\",\"data\":{\"title\":\"hello\",\"published\":1}}");
  CHECK(is_ok(j));
  CHECK_STR_EQ(json_string_value(json_object_get(data_of(j), "status")), "inserted");
  CHECK(json_integer_value(json_object_get(data_of(j), "id")) == 1);
  json_decref(j);
  CHECK_OK(&owner, "{\"op\":\"insert\",\"table\":\"notes\",\"data\":{\"title\":\"draft\",\"published\":0}}");
  CHECK_OK(&owner, "{\"op\":\"insert\",\"table\":\"secrets\",\"data\":{\"v\":\"owner-secret\"}}");
  CHECK_OK(&owner, "{\"op\":\"insert\",\"table\":\"posts\",\"data\":{\"body\":\"owner post\"}}");
  CHECK_OK(&owner, "{\"op\":\"insert\",\"table\":\"msgs\",\"data\":{\"text\":\"owner msg\"}}");
  CHECK_OK(&owner, "{\"op\":\"insert\",\"table\":\"odd\",\"data\":{\"v\":\"odd-owner\"}}");

  j = run(&owner, "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"_id = ?\",\"args\":[1]}");
  CHECK(is_ok(j) && json_array_size(data_of(j)) == 1);
  json_t *row = json_array_get(data_of(j), 0);
  CHECK_STR_EQ(json_string_value(json_object_get(row, "title")), "hello");
  CHECK_STR_EQ(json_string_value(json_object_get(row, "_owner")), owner.id);
  CHECK_STR_EQ(json_string_value(json_object_get(row, "_owner_email")), "owner@example.com");
  CHECK(json_integer_value(json_object_get(row, "published")) == 1);
  const char *cr = json_string_value(json_object_get(row, "_created_at"));
  CHECK(cr && strlen(cr) == 19 && cr[10] == ' ');
  json_decref(j);
  /* the owner keeps Goop² behaviour: expressions in columns */
  j = run(&owner, "{\"op\":\"query\",\"table\":\"notes\",\"columns\":[\"count(*) AS n\"]}");
  CHECK(is_ok(j) && json_integer_value(json_object_get(json_array_get(data_of(j), 0), "n")) == 2);
  json_decref(j);
  /* but only one read-only statement */
  CHECK_ERR(
      &owner,
      "{\"op\":\"query\",\"table\":\"notes\",\"columns\":[\"1 FROM notes; DELETE FROM notes; SELECT 1\"]}",
      "only one SQL statement allowed");
  CHECK_ERR(&owner,
            "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"1) OR 1; DELETE FROM notes; SELECT (1\"}",
            "only one SQL statement allowed");
  CHECK(count_rows(&owner, "{\"op\":\"query\",\"table\":\"notes\"}") == 2);
  /* the owner's queries are read-only and bounded in value size too */
  j = run(&owner, "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"length(randomblob(1000000000)) > 0\"}");
  CHECK(j && !is_ok(j));
  json_decref(j);
  j = run(&owner, "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"_id = ?\",\"args\":[1,2]}");
  CHECK_STR_EQ(err_of(j), "sql: expected 1 arguments, got 2");
  json_decref(j);

  j = run(&owner, "{\"op\":\"update\",\"table\":\"notes\",\"id\":2,\"data\":{\"title\":\"edited\"}}");
  CHECK(is_ok(j));
  CHECK_STR_EQ(json_string_value(json_object_get(data_of(j), "status")), "updated");
  json_decref(j);
  CHECK(count_rows(&owner, "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"title = 'edited'\"}") == 1);
  CHECK_OK(&owner, "{\"op\":\"insert\",\"table\":\"notes\",\"data\":{\"title\":\"gone\"}}");
  j = run(&owner, "{\"op\":\"delete\",\"table\":\"notes\",\"id\":3}");
  CHECK(is_ok(j));
  CHECK_STR_EQ(json_string_value(json_object_get(data_of(j), "status")), "deleted");
  json_decref(j);
  CHECK_ERR(&owner, "{\"op\":\"delete\",\"table\":\"notes\",\"id\":3}",
            "row not found or not owned by caller");

  /* schema ops on a scratch table */
  CHECK_OK(&owner,
           "{\"op\":\"create-table\",\"name\":\"tmp\",\"column_defs\":[{\"name\":\"a\",\"type\":\"TEXT\"}]}");
  j = run(&owner, "{\"op\":\"add-column\",\"table\":\"tmp\",\"column\":{\"name\":\"b\",\"type\":\"TEXT\","
                  "\"not_null\":true}}");
  CHECK(is_ok(j));
  CHECK_STR_EQ(json_string_value(json_object_get(data_of(j), "status")), "added");
  json_decref(j);
  j = run(&owner, "{\"op\":\"drop-column\",\"table\":\"tmp\",\"column\":{\"name\":\"a\"}}");
  CHECK(is_ok(j));
  CHECK_STR_EQ(json_string_value(json_object_get(data_of(j), "status")), "dropped");
  json_decref(j);
  CHECK_OK(&owner, "{\"op\":\"drop-column\",\"table\":\"tmp\",\"name\":\"b\"}");
  j = run(&owner, "{\"op\":\"rename-table\",\"old_name\":\"tmp\",\"new_name\":\"tmp2\"}");
  CHECK(is_ok(j));
  CHECK_STR_EQ(json_string_value(json_object_get(data_of(j), "status")), "renamed");
  CHECK_STR_EQ(json_string_value(json_object_get(data_of(j), "new_name")), "tmp2");
  json_decref(j);
  j = run(&owner, "{\"op\":\"tables\"}");
  bool seen = false;
  for (size_t i = 0; i < json_array_size(data_of(j)); i++)
    seen |= strcmp(json_string_value(json_object_get(json_array_get(data_of(j), i), "name")), "tmp2") == 0;
  CHECK(seen);
  json_decref(j);
  j = run(&owner, "{\"op\":\"delete-table\",\"table\":\"tmp2\"}");
  CHECK(is_ok(j));
  CHECK_STR_EQ(json_string_value(json_object_get(data_of(j), "table")), "tmp2");
  json_decref(j);
  j = run(&owner, "{\"op\":\"tables\"}");
  CHECK(json_array_size(data_of(j)) == 5);
  json_decref(j);

  r = run_raw(&owner, "{\"op\":\"lua-list\"}");
  CHECK_STR_EQ(r, "{\"ok\":true,\"data\":{\"functions\":[]}}");
  free(r);
  CHECK_ERR(&alice, "{\"op\":\"lua-call\",\"function\":\"f\",\"params\":{}}", "lua scripting not enabled");
  CHECK_ERR(&alice, "{}", "unknown op: ");
}

static void test_error_texts(void) {
  const struct {
    const struct goop_site_caller *c;
    const char *req, *err;
  } cases[] = {
      {&owner, "{\"op\":\"query\"}", "table name required"},
      {&alice, "{\"op\":\"describe\"}", "table name required"},
      {&owner, "{\"op\":\"insert\",\"data\":{}}", "table name required"},
      {&owner, "{\"op\":\"update\",\"id\":1}", "table name required"},
      {&owner, "{\"op\":\"delete\",\"id\":1}", "table name required"},
      {&owner, "{\"op\":\"create-table\"}", "table name required"},
      {&owner, "{\"op\":\"delete-table\"}", "table name required"},
      {&owner, "{\"op\":\"add-column\"}", "table name required"},
      {&owner, "{\"op\":\"update\",\"table\":\"notes\",\"data\":{\"title\":\"x\"}}", "valid row id required"},
      {&owner, "{\"op\":\"delete\",\"table\":\"notes\",\"id\":-4}", "valid row id required"},
      {&owner, "{\"op\":\"create-table\",\"name\":\"t\"}", "at least one column required"},
      {&owner, "{\"op\":\"add-column\",\"table\":\"notes\"}", "column definition required"},
      {&owner, "{\"op\":\"drop-column\",\"table\":\"notes\"}", "column name required"},
      {&owner, "{\"op\":\"create-table\",\"name\":\"t\",\"column\":{\"type\":\"TEXT\"}}",
       "column name required"},
      {&owner, "{\"op\":\"rename-table\",\"old_name\":\"notes\"}", "old and new name required"},
      {&alice, "{\"op\":\"create-table\",\"name\":\"t\",\"column_defs\":[{\"name\":\"a\"}]}",
       "schema operations not allowed for remote peers"},
      {&alice, "{\"op\":\"add-column\",\"table\":\"notes\",\"column\":{\"name\":\"a\"}}",
       "schema operations not allowed for remote peers"},
      {&alice, "{\"op\":\"drop-column\",\"table\":\"notes\",\"name\":\"title\"}",
       "schema operations not allowed for remote peers"},
      {&bob, "{\"op\":\"rename-table\",\"old_name\":\"notes\",\"new_name\":\"x\"}",
       "schema operations not allowed for remote peers"},
      {&bob, "{\"op\":\"delete-table\",\"table\":\"notes\"}",
       "schema operations not allowed for remote peers"},
      {&alice, "{\"op\":\"insert\",\"table\":\"secrets\",\"data\":{\"v\":1}}",
       "insert not allowed: this table only accepts data from the site owner"},
      {&alice, "{\"op\":\"insert\",\"table\":\"hidden\",\"data\":{\"v\":1}}",
       "insert not allowed: this table only accepts data from the site owner"},
      {&bob, "{\"op\":\"insert\",\"table\":\"msgs\",\"data\":{\"text\":\"x\"}}",
       "insert not allowed: your peer must have an email address configured"},
      {&alice, "{\"op\":\"insert\",\"table\":\"odd\",\"data\":{\"v\":\"x\"}}",
       "insert not allowed: unknown table policy"},
      {&alice, "{\"op\":\"lua-call\"}", "lua scripting not enabled"},
      {&alice, "{\"op\":\"frobnicate\"}", "unknown op: frobnicate"},
      {&owner, "{\"op\":\"create-table\",\"name\":\"bad name\",\"column\":{\"name\":\"a\"}}",
       "invalid table name: bad name"},
      {&owner, "{\"op\":\"create-table\",\"name\":\"t\",\"column\":{\"name\":\"a-b\"}}",
       "invalid column name: a-b"},
      {&alice, "{\"op\":\"query\",\"table\":\"notes x\"}", "invalid table name: notes x"},
      {&alice, "{\"op\":\"query\",\"table\":\"notes\",\"columns\":[\"title,_owner\"]}",
       "invalid column name: title,_owner"},
      {&alice, "{\"op\":\"update\",\"table\":\"notes\",\"id\":1,\"data\":{\"title\":\"x\"}}",
       "row not found or not owned by caller"},
      {&alice, "{\"op\":\"delete\",\"table\":\"notes\",\"id\":1}", "row not found or not owned by caller"},
  };
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(cases); i++)
    CHECK_ERR(cases[i].c, cases[i].req, cases[i].err);
}

static void test_policies(void) {
  /* public: anyone inserts, everyone sees all rows */
  CHECK_OK(&alice,
           "{\"op\":\"insert\",\"table\":\"notes\",\"data\":{\"title\":\"from alice\",\"published\":1}}");
  CHECK_OK(&bob, "{\"op\":\"insert\",\"table\":\"notes\",\"data\":{\"title\":\"from bob\"}}");
  CHECK(count_rows(&bob, "{\"op\":\"query\",\"table\":\"notes\"}") == 4);
  CHECK(count_rows(&alice, "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"published = 1\"}") == 2);
  /* _owner and _owner_email come from the caller, not from the JSON */
  json_t *j =
      run(&alice, "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"title = ?\",\"args\":[\"from alice\"],"
                  "\"columns\":[\"_owner\",\"_owner_email\",\"title\"]}");
  json_t *row = json_array_get(data_of(j), 0);
  CHECK_STR_EQ(json_string_value(json_object_get(row, "_owner")), alice.id);
  CHECK_STR_EQ(json_string_value(json_object_get(row, "_owner_email")), "alice@example.com");
  CHECK(json_object_size(row) == 3);
  json_decref(j);
  /* open: anyone inserts, each sees own rows */
  CHECK_OK(&alice, "{\"op\":\"insert\",\"table\":\"posts\",\"data\":{\"body\":\"a1\"}}");
  CHECK_OK(&alice,
           "{\"op\":\"insert\",\"table\":\"posts\",\"data\":{\"body\":\"a2\",\"status\":\"closed\"}}");
  CHECK_OK(&bob, "{\"op\":\"insert\",\"table\":\"posts\",\"data\":{\"body\":\"b1\"}}");
  CHECK(count_rows(&alice, "{\"op\":\"query\",\"table\":\"posts\"}") == 2);
  CHECK(count_rows(&bob, "{\"op\":\"query\",\"table\":\"posts\"}") == 1);
  CHECK(count_rows(&owner, "{\"op\":\"query\",\"table\":\"posts\"}") == 4);
  CHECK(count_rows(&alice, "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"status = 'open'\"}") == 1);
  CHECK(count_rows(&alice, "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"1=1\"}") == 2);
  CHECK(count_rows(&alice,
                   "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"_owner = ?\",\"args\":[\"x\"]}") == 0);
  CHECK(count_rows(&alice, "{\"op\":\"query\",\"table\":\"posts\",\"limit\":1}") == 1);
  j = run(&alice, "{\"op\":\"query\",\"table\":\"posts\",\"limit\":1,\"offset\":1,\"columns\":[\"body\"]}");
  CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(data_of(j), 0), "body")), "a2");
  json_decref(j);
  /* email: only callers with an email insert; own rows only */
  CHECK_OK(&alice, "{\"op\":\"insert\",\"table\":\"msgs\",\"data\":{\"text\":\"hi\"}}");
  CHECK(count_rows(&alice, "{\"op\":\"query\",\"table\":\"msgs\"}") == 1);
  CHECK(count_rows(&bob, "{\"op\":\"query\",\"table\":\"msgs\"}") == 0);
  /* owner: remote insert refused, all rows visible */
  CHECK(count_rows(&bob, "{\"op\":\"query\",\"table\":\"secrets\"}") == 1);
  /* unknown policy: own rows only */
  CHECK(count_rows(&alice, "{\"op\":\"query\",\"table\":\"odd\"}") == 0);
  /* update/delete own rows only */
  j = run(&alice, "{\"op\":\"query\",\"table\":\"posts\",\"columns\":[\"_id\"],\"where\":\"body = 'a1'\"}");
  json_int_t aid = json_integer_value(json_object_get(json_array_get(data_of(j), 0), "_id"));
  json_decref(j);
  j = run(&bob, "{\"op\":\"query\",\"table\":\"posts\",\"columns\":[\"_id\"]}");
  json_int_t bid = json_integer_value(json_object_get(json_array_get(data_of(j), 0), "_id"));
  json_decref(j);
  char req[256];
  snprintf(req, sizeof(req), "{\"op\":\"update\",\"table\":\"posts\",\"id\":%lld,\"data\":{\"body\":\"A1\"}}",
           (long long)aid);
  CHECK_OK(&alice, req);
  CHECK_ERR(&bob, req, "row not found or not owned by caller");
  snprintf(req, sizeof(req), "{\"op\":\"delete\",\"table\":\"posts\",\"id\":%lld}", (long long)bid);
  CHECK_ERR(&alice, req, "row not found or not owned by caller");
  CHECK_OK(&bob, req);
  CHECK(count_rows(&owner, "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"body = 'A1'\"}") == 1);
  /* remote describe/tables work; internal and unregistered tables look absent */
  j = run(&bob, "{\"op\":\"tables\"}");
  CHECK(is_ok(j) && json_array_size(data_of(j)) == 5);
  json_decref(j);
  j = run(&bob, "{\"op\":\"describe\",\"table\":\"posts\"}");
  CHECK(is_ok(j) && json_array_size(data_of(j)) == 7);
  json_decref(j);
  char *r = run_raw(&bob, "{\"op\":\"describe\",\"table\":\"hidden\"}");
  CHECK_STR_EQ(r, "{\"ok\":true,\"data\":null}");
  free(r);
  r = run_raw(&bob, "{\"op\":\"describe\",\"table\":\"_tables\"}");
  CHECK_STR_EQ(r, "{\"ok\":true,\"data\":null}");
  free(r);
  /* a query with no rows answers data:null */
  r = run_raw(&alice, "{\"op\":\"query\",\"table\":\"odd\"}");
  CHECK_STR_EQ(r, "{\"ok\":true,\"data\":null}");
  free(r);
  /* updated_at is set by update */
  sqlite3_exec(site->db, "UPDATE posts SET _updated_at = '2000-01-01 00:00:00'", NULL, NULL, NULL);
  snprintf(req, sizeof(req), "{\"op\":\"update\",\"table\":\"posts\",\"id\":%lld,\"data\":{\"body\":\"A2\"}}",
           (long long)aid);
  CHECK_OK(&alice, req);
  long nupd = count_rows(
      &alice, "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"_updated_at > '2001-01-01 00:00:00'\"}");
  CHECK_INT_EQ(nupd, 1);
  if (nupd != 1) {
    char *dbg = run_raw(
        &owner, "{\"op\":\"query\",\"table\":\"posts\",\"columns\":[\"_id\",\"_owner\",\"_updated_at\"]}");
    printf("# %s\n", dbg);
    free(dbg);
  }
  /* max_rows caps results */
  site->max_rows = 2;
  CHECK(count_rows(&alice, "{\"op\":\"query\",\"table\":\"notes\"}") == 2);
  site->max_rows = 10000;
}

/* Hostile requests by a non-owner: every one fails and nothing changes. */
static void test_hostile(void) {
  static const char *const reqs[] = {
      /* table */
      "{\"op\":\"query\",\"table\":\"notes; DROP TABLE notes\"}",
      "{\"op\":\"query\",\"table\":\"sqlite_master\"}",
      "{\"op\":\"query\",\"table\":\"_tables\"}",
      "{\"op\":\"query\",\"table\":\"_meta\"}",
      "{\"op\":\"query\",\"table\":\"hidden\"}",
      "{\"op\":\"query\",\"table\":\"notes UNION SELECT * FROM hidden\"}",
      "{\"op\":\"query\",\"table\":\"\\\"notes\\\"\"}",
      "{\"op\":\"query\",\"table\":\"main.notes\"}",
      /* columns */
      "{\"op\":\"query\",\"table\":\"notes\",\"columns\":[\"(SELECT group_concat(v) FROM secrets)\"]}",
      "{\"op\":\"query\",\"table\":\"notes\",\"columns\":[\"* FROM hidden --\"]}",
      "{\"op\":\"query\",\"table\":\"notes\",\"columns\":[\"randomblob(1000000000)\"]}",
      "{\"op\":\"query\",\"table\":\"notes\",\"columns\":[\"\\\"title\\\"\"]}",
      "{\"op\":\"query\",\"table\":\"notes\",\"columns\":[1]}",
      /* where */
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"1=1; DROP TABLE notes\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"1=1 UNION SELECT * FROM sqlite_master\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"1=1) UNION SELECT name,sql,1,1,1,1,1 FROM "
      "sqlite_master "
      "WHERE (1\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"title IN (SELECT name FROM _tables)\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"EXISTS (SELECT 1 FROM secrets)\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"(SELECT count(*) FROM hidden) > 0\"}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"1) OR (1\"}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"1=1 OR 1=1 --\"}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"1=1 /* \"}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"_id IN (SELECT _id FROM posts)\"}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"1 in(select _id from posts)\"}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"5 IN posts\"}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"5 IN main.posts\"}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"'a1' IN (VALUES('a1'))\"}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"EXISTS(SeLeCt 1)\"}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"_owner = ?2 OR 1\",\"args\":[1,2]}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"_owner = :x\"}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"_owner = ?\",\"args\":[]}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"1\",\"args\":[\"x\"]}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"load_extension('/tmp/x.so') IS NULL\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"length(randomblob(1e9)) > 0\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"length(zeroblob(1000000000)) > 0\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"printf('%.*c', 1000000000, 'x') != ''\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"1 IN (WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL "
      "SELECT n+1 FROM c) SELECT n FROM c)\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"1; ATTACH DATABASE '/tmp/evil.db' AS e\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"1; PRAGMA writable_schema=1\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"sqlite_version() != ''\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"title REGEXP 'x'\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"replace(title, '', '') = title\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"title LIKE "
      "?\",\"args\":[\"%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%"
      "a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%b\"]}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"title = 'x' OR (SELECT sql FROM sqlite_master) "
      "IS NOT NULL\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"title = 'unterminated\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"1) ORDER BY (1\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"_id = ?\",\"args\":[{\"a\":1}]}",
      "{\"op\":\"query\",\"table\":\"notes\",\"limit\":\"1; DROP TABLE notes\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"1 ORDER BY title\"}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"1 GROUP BY _owner\"}",
      "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"1) LIMIT 1000000 OFFSET (0\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"op\":\"delete-table\"}",
      "{\"op\":\"query\",\"table\":\"notes\",\"table\":\"_tables\"}",
      /* writes */
      "{\"op\":\"insert\",\"table\":\"notes\",\"data\":{\"title) VALUES ('x'); DROP TABLE notes; "
      "--\":\"x\"}}",
      "{\"op\":\"insert\",\"table\":\"notes\",\"data\":{\"_owner\":\"12D3KooWowner\",\"title\":\"x\"}}",
      "{\"op\":\"insert\",\"table\":\"notes\",\"data\":{\"_id\":1,\"title\":\"x\"}}",
      "{\"op\":\"insert\",\"table\":\"notes\",\"data\":{\"title\":{\"nested\":1}}}",
      "{\"op\":\"insert\",\"table\":\"_tables\",\"data\":{\"name\":\"x\",\"schema\":\"x\"}}",
      "{\"op\":\"insert\",\"table\":\"sqlite_master\",\"data\":{\"name\":\"x\"}}",
      "{\"op\":\"insert\",\"table\":\"notes; DROP TABLE notes\",\"data\":{\"title\":\"x\"}}",
      "{\"op\":\"update\",\"table\":\"notes\",\"id\":1,\"data\":{\"title\":\"pwned\"}}",
      "{\"op\":\"update\",\"table\":\"notes\",\"id\":1,\"data\":{\"title = 'x' WHERE 1; --\":\"y\"}}",
      "{\"op\":\"update\",\"table\":\"_tables\",\"id\":1,\"data\":{\"insert_policy\":\"open\"}}",
      "{\"op\":\"update\",\"table\":\"secrets\",\"id\":1,\"data\":{\"v\":\"pwned\"}}",
      "{\"op\":\"update\",\"table\":\"hidden\",\"id\":1,\"data\":{\"v\":\"pwned\"}}",
      "{\"op\":\"delete\",\"table\":\"secrets\",\"id\":1}",
      "{\"op\":\"delete\",\"table\":\"notes\",\"id\":2}",
      "{\"op\":\"delete\",\"table\":\"_tables\",\"id\":1}",
      /* schema */
      "{\"op\":\"delete-table\",\"table\":\"notes\"}",
      "{\"op\":\"create-table\",\"name\":\"x\",\"column_defs\":[{\"name\":\"a\"}]}",
      "{\"op\":\"rename-table\",\"old_name\":\"notes\",\"new_name\":\"x\"}",
      /* malformed */
      "not json",
      "[1,2,3]",
      "\"query\"",
      "{\"op\":\"query\",\"table\":\"notes\"} trailing",
      "{\"op\":5}",
      "{\"op\":\"update\",\"table\":\"notes\",\"id\":\"1\",\"data\":{}}",
      "{\"op\":\"update\",\"table\":\"notes\",\"id\":1.5,\"data\":{}}",
  };
  char *before = snapshot();
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(reqs); i++) {
    json_t *j = run(i % 2 ? &alice : &bob, reqs[i]);
    CHECK(j && !is_ok(j) && err_of(j));
    if (is_ok(j))
      printf("#   accepted: %s\n", reqs[i]);
    json_decref(j);
  }
  /* an exact copy of the owner's row in a public table is fine; here nothing may change */
  char *after = snapshot();
  CHECK(strcmp(before, after) == 0);
  free(before);
  free(after);
  CHECK(access("/tmp/evil.db", F_OK) != 0);

  /* legitimate look-alikes still work */
  CHECK(count_rows(&alice, "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"title LIKE '%alice%' AND "
                           "lower(title) = 'from alice' AND length(title) > 0\"}") == 1);
  CHECK(count_rows(&alice, "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"title = 'a;b--c/*d(e'\"}") ==
        0);
  CHECK(
      count_rows(&alice,
                 "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"json_extract('{\\\"a\\\":1}', '$.a') = 1 "
                 "AND upper(substr(title, 1, 1)) IS NOT NULL AND coalesce(_owner, '') != ''\"}") == 4);
  CHECK(count_rows(&alice, "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"(_id > ?) AND (title != ?)\","
                           "\"args\":[0,\"x\"]}") == 4);
  CHECK(count_rows(&alice,
                   "{\"op\":\"query\",\"table\":\"notes\",\"columns\":[\"*\"],\"where\":\"_created_at "
                   "< datetime('now', '+1 day')\"}") == 4);
}

static void test_budget(void) {
  /* a long where is refused before SQLite compiles it */
  char *longw = malloc(20001);
  int pre = sprintf(longw, "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"1");
  memset(longw + pre, ' ', 20000 - (size_t)pre);
  memcpy(longw + 19997, "1\"}", 4);
  CHECK_ERR(&alice, longw, "where clause too long");
  free(longw);
  /* a slow but authorised query is aborted by the step budget */
  sqlite3_exec(site->db, "BEGIN", NULL, NULL, NULL);
  for (int i = 0; i < 50000; i++)
    sqlite3_exec(site->db, "INSERT INTO notes (_owner, title) VALUES ('filler', 'x')", NULL, NULL, NULL);
  sqlite3_exec(site->db, "COMMIT", NULL, NULL, NULL);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  json_t *j = run(&alice, "{\"op\":\"query\",\"table\":\"notes\",\"columns\":[\"_id\"],"
                          "\"where\":\"title LIKE '%' || _id || '%' || _id || '%' || title || _owner || "
                          "substr(_owner || _owner || _owner, 2) || upper(_owner_email || _owner) || "
                          "abs(_id * _id) || round(_id / 3.0, 2) || instr(title, 'x') || "
                          "coalesce(NULL, title) || ifnull(NULL, _owner)\"}");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  printf("# expensive query: %s in %.1f ms\n", is_ok(j) ? "ok" : err_of(j), ms);
  CHECK(j != NULL);
  CHECK(ms < 5000);
  json_decref(j);
  /* a long flat CASE over every row runs out of budget */
  size_t cap = 1u << 20, o = 0;
  char *req = malloc(cap);
  o += (size_t)snprintf(req + o, cap - o, "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"CASE");
  for (int i = 0; i < 200; i++)
    o += (size_t)snprintf(req + o, cap - o, " WHEN length(title||_owner)=%d THEN 0", i + 100);
  snprintf(req + o, cap - o, " ELSE 1 END = 0\"}");
  clock_gettime(CLOCK_MONOTONIC, &t0);
  j = run(&alice, req);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  printf("# 200-branch CASE over 50000 rows: %s in %.1f ms\n", is_ok(j) ? "ok" : err_of(j), ms);
  CHECK(j && !is_ok(j));
  CHECK_STR_EQ(err_of(j), "query aborted: too much work");
  json_decref(j);
  free(req);
  /* the owner's raw where is bounded too */
  clock_gettime(CLOCK_MONOTONIC, &t0);
  j = run(&owner, "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"1 IN (WITH RECURSIVE c(n) AS "
                  "(SELECT 1 UNION ALL SELECT n+1 FROM c) SELECT n FROM c WHERE n < 0)\"}");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  printf("# owner's endless recursive CTE: %s in %.1f ms\n", is_ok(j) ? "ok" : err_of(j), ms);
  CHECK(j && !is_ok(j));
  json_decref(j);
  sqlite3_exec(site->db, "DELETE FROM notes WHERE _owner = 'filler'", NULL, NULL, NULL);
}

static void test_limits(void) {
  /* huge request */
  size_t n = (2u << 20);
  char *big = malloc(n + 1);
  memset(big, ' ', n);
  memcpy(big, "{\"op\":\"tables\"", 14);
  big[n - 1] = '}';
  big[n] = 0;
  char *resp = NULL;
  CHECK(goop_site_data_exec(site, &alice, big, n, &resp) == 0);
  CHECK_STR_EQ(resp, "{\"ok\":false,\"error\":\"request too large\"}");
  free(resp);
  free(big);
  /* deep nesting */
  char deep[2048];
  size_t o = (size_t)sprintf(deep, "{\"op\":\"insert\",\"table\":\"notes\",\"data\":{\"t\":");
  for (int i = 0; i < 600; i++)
    deep[o++] = '[';
  deep[o] = 0;
  json_t *j = run(&alice, deep);
  CHECK(j && !is_ok(j));
  json_decref(j);
  /* invalid JSON text */
  j = run(&alice, "{\"op\":");
  CHECK(j && !is_ok(j) && strncmp(err_of(j), "invalid json: ", 14) == 0);
  json_decref(j);
  resp = NULL;
  CHECK(goop_site_data_exec(site, &alice, "", 0, &resp) == 0 && resp && strstr(resp, "invalid json"));
  free(resp);
  /* invalid UTF-8 stored by the owner is sent as valid JSON */
  sqlite3_exec(site->db, "INSERT INTO notes (_owner, title) VALUES ('z', CAST(X'66FF6F00' AS TEXT))", NULL,
               NULL, NULL);
  j = run(&alice,
          "{\"op\":\"query\",\"table\":\"notes\",\"where\":\"_owner = 'z'\",\"columns\":[\"title\"]}");
  CHECK(is_ok(j));
  json_decref(j);
  sqlite3_exec(site->db, "DELETE FROM notes WHERE _owner = 'z'", NULL, NULL, NULL);
  /* caller without id */
  struct goop_site_caller anon = {NULL, NULL, false};
  resp = NULL;
  CHECK(goop_site_data_exec(site, &anon, "{}", 2, &resp) == GOOP_EINVAL && !resp);
}

static void test_speed(void) {
  struct timespec t0, t1;
  int n = 200;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < n; i++) {
    char *r = run_raw(&alice, "{\"op\":\"insert\",\"table\":\"posts\",\"data\":{\"body\":\"speed\"}}");
    free(r);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("# %d durable inserts: %.0f inserts/s\n", n, n / s);
  int q = 2000;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < q; i++) {
    char *r = run_raw(&alice, "{\"op\":\"query\",\"table\":\"posts\",\"where\":\"_id = ?\",\"args\":[5]}");
    free(r);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("# %d scoped queries: %.0f queries/s\n", q, q / s);
  CHECK(1);
}

int main(void) {
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/goop-store-XXXXXX");
  if (!mkdtemp(tmpdir))
    return 1;
  site = open_site(tmpdir);
  CHECK(site != NULL);
  if (!site)
    return tap_done();
  free(site->email);
  site->email = strdup("owner@example.com");
  owner = (struct goop_site_caller){site->owner_text, NULL, true};
  alice = (struct goop_site_caller){"12D3KooWAlice", "alice@example.com", false};
  bob = (struct goop_site_caller){"12D3KooWBob", NULL, false};
  RUN(test_init);
  RUN(test_owner_ops);
  RUN(test_error_texts);
  RUN(test_policies);
  RUN(test_hostile);
  RUN(test_budget);
  RUN(test_limits);
  RUN(test_speed);
  goop_site_free(site);
  nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return tap_done();
}
