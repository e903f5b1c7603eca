/*
 * The site database: internal tables and the Goop² data operations.
 *
 * Requests are JSON objects ({"op":...}); answers are {"ok":true,"data":...}
 * or {"ok":false,"error":"..."} with the texts of the Goop² implementation.
 *
 * Who asks comes from the caller structure, never from the JSON. A caller
 * that is not the site owner:
 *  - reads only tables registered in _tables (never internal ones),
 *  - gets a SELECT built from quoted, validated identifiers; its where text is
 *    put in parentheses after a lexical check (balanced, no comments, no ';',
 *    only plain '?' parameters), the owner scoping and LIMIT/OFFSET follow
 *    as bound parameters,
 *  - and the statement is compiled under an authorizer that allows exactly
 *    one SELECT, reads of the named table only and a list of harmless
 *    functions; the statement must be read-only and alone, and runs with
 *    tight SQLite limits and a VM instruction budget.
 * The owner keeps the Goop² behaviour (raw where and column expressions) but
 * still gets one read-only statement, the value-size limits and a (larger)
 * instruction budget.
 * Every write runs in BEGIN IMMEDIATE ... COMMIT with synchronous=FULL, so it
 * is durable once the answer is produced.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "site-internal.h"

#define STORE_IDENT_MAX 64
#define STORE_JSON_DEPTH 32
#define STORE_MAX_ARGS 999
#define STORE_MAX_WHERE 8192 /* bytes of a non-owner's where (bounds the compile time) */
#define STORE_PROGRESS_STEP 1000
/* VM instructions a non-owner query may run (a fraction of a second); the owner gets 3x. */
#define STORE_QUERY_BUDGET 10000000ull
#define STORE_MAX_VALUE_LEN (16 << 20)
#define STORE_MAX_RESULT (64u << 20)

/* ---- small helpers ------------------------------------------------------------ */

/* SQL and JSON text built in a goop_buf, kept NUL-terminated (the NUL is not
 * counted); the first allocation failure sticks in |oom|. */
struct sbuf {
  goop_buf g;
  bool oom;
};

static void sb_addn(struct sbuf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (goop_buf_reserve(&b->g, n + 1) != 0) {
    b->oom = true;
    return;
  }
  memcpy(b->g.data + b->g.len, s, n);
  b->g.len += n;
  b->g.data[b->g.len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s) {
  sb_addn(b, s, strlen(s));
}

/* A double-quoted SQL identifier. */
static void sb_ident(struct sbuf *b, const char *id) {
  sb_add(b, "\"");
  for (const char *q = id; *q; q++) {
    if (*q == '"')
      sb_add(b, "\"\"");
    else
      sb_addn(b, q, 1);
  }
  sb_add(b, "\"");
}

static bool valid_ident(const char *s) {
  size_t n = 0;
  if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
    return false;
  for (; s[n]; n++)
    if (!(isalnum((unsigned char)s[n]) || s[n] == '_') || n >= STORE_IDENT_MAX)
      return false;
  return n >= 1;
}

static bool reserved_table(const char *s) {
  return s[0] == '_' || strncasecmp(s, "sqlite_", 7) == 0;
}

/* Replace invalid UTF-8 with U+FFFD so that every value can be sent as JSON. */
static json_t *json_text(const unsigned char *s, size_t n) {
  size_t i = 0;
  bool ok = true;
  while (i < n) {
    unsigned c = s[i];
    size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!k || i + k > n) {
      ok = false;
      break;
    }
    unsigned cp = k == 1 ? c : k == 2 ? (c & 0x1f) : k == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t j = 1; j < k; j++) {
      if ((s[i + j] & 0xc0) != 0x80) {
        ok = false;
        break;
      }
      cp = cp << 6 | (s[i + j] & 0x3f);
    }
    if (!ok || (k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) ||
        (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff)) {
      ok = false;
      break;
    }
    i += k;
  }
  if (ok)
    return json_stringn_nocheck((const char *)s, n);
  /* slow path: rebuild */
  struct sbuf b = {0};
  i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool good = k && i + k <= n;
    unsigned cp = 0;
    if (good) {
      cp = k == 1 ? c : k == 2 ? (c & 0x1f) : k == 3 ? (c & 0x0f) : (c & 0x07);
      for (size_t j = 1; j < k && good; j++) {
        if ((s[i + j] & 0xc0) != 0x80)
          good = false;
        else
          cp = cp << 6 | (s[i + j] & 0x3f);
      }
      if (good && ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) ||
                   (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff)))
        good = false;
    }
    if (good) {
      sb_addn(&b, (const char *)s + i, k);
      i += k;
    } else {
      sb_add(&b, "\xef\xbf\xbd");
      i++;
    }
  }
  json_t *j = b.oom ? NULL : json_stringn_nocheck(b.g.data ? (const char *)b.g.data : "", b.g.len);
  goop_buf_free(&b.g);
  return j;
}

/* ---- responses ------------------------------------------------------------------ */

struct op {
  goop_site *s;
  sqlite3 *db;
  const struct goop_site_caller *caller;
  const char *email; /* caller's email ("" if none) */
  json_t *data;      /* success value (NULL = null) */
  char err[1024];
  bool failed;
  bool oom;
};

static int fail(struct op *o, const char *fmt, ...) GOOP_PRINTF(2, 3);
static int fail(struct op *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(o->err, sizeof(o->err), fmt, ap);
  va_end(ap);
  o->failed = true;
  return -1;
}

static int fail_db(struct op *o) {
  return fail(o, "%s", sqlite3_errmsg(o->db));
}

static int fail_oom(struct op *o) {
  o->oom = true;
  return fail(o, "out of memory");
}

static char *render(struct op *o) {
  json_t *r = json_object();
  if (!r)
    return NULL;
  if (o->failed) {
    json_object_set_new(r, "ok", json_false());
    json_object_set_new(r, "error", json_text((const unsigned char *)o->err, strlen(o->err)));
  } else {
    json_object_set_new(r, "ok", json_true());
    json_object_set_new(r, "data", o->data ? json_incref(o->data) : json_null());
  }
  char *out = json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(r);
  return out;
}

/* ---- statements ------------------------------------------------------------------ */

/* Prepare exactly one statement: a non-empty tail is refused. */
static int prepare_one(struct op *o, const char *sql, sqlite3_stmt **st) {
  const char *tail = NULL;
  *st = NULL;
  if (sqlite3_prepare_v3(o->db, sql, -1, 0, st, &tail) != SQLITE_OK)
    return fail_db(o);
  if (!*st)
    return fail(o, "empty statement");
  while (tail && *tail && isspace((unsigned char)*tail))
    tail++;
  if (tail && *tail) {
    sqlite3_finalize(*st);
    *st = NULL;
    return fail(o, "only one SQL statement allowed");
  }
  return 0;
}

static int exec_simple(struct op *o, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(o->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    fail(o, "%s", msg ? msg : sqlite3_errmsg(o->db));
    sqlite3_free(msg);
    return -1;
  }
  return 0;
}

static int tx_begin(struct op *o) {
  return exec_simple(o, "BEGIN IMMEDIATE");
}

static int tx_end(struct op *o, int rc) {
  if (rc == 0 && sqlite3_get_autocommit(o->db) == 0) {
    if (exec_simple(o, "COMMIT") == 0)
      return 0;
    rc = -1;
  }
  if (sqlite3_get_autocommit(o->db) == 0)
    sqlite3_exec(o->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* Bind a JSON scalar. */
static int bind_json(struct op *o, sqlite3_stmt *st, int idx, json_t *v, const char *what) {
  int rc;
  switch (json_typeof(v)) {
  case JSON_STRING:
    rc = sqlite3_bind_text64(st, idx, json_string_value(v), json_string_length(v), SQLITE_TRANSIENT,
                             SQLITE_UTF8);
    break;
  case JSON_INTEGER:
    rc = sqlite3_bind_int64(st, idx, (sqlite3_int64)json_integer_value(v));
    break;
  case JSON_REAL:
    rc = sqlite3_bind_double(st, idx, json_real_value(v));
    break;
  case JSON_TRUE:
    rc = sqlite3_bind_int(st, idx, 1);
    break;
  case JSON_FALSE:
    rc = sqlite3_bind_int(st, idx, 0);
    break;
  case JSON_NULL:
    rc = sqlite3_bind_null(st, idx);
    break;
  default:
    return fail(o, "unsupported value type for %s", what);
  }
  return rc == SQLITE_OK ? 0 : fail_db(o);
}

/* Columns of |table| that matter here. */
struct tinfo {
  bool exists, has_owner, has_owner_email, has_updated_at;
};

static int table_info(struct op *o, const char *table, struct tinfo *ti) {
  sqlite3_stmt *st = NULL;
  memset(ti, 0, sizeof(*ti));
  if (sqlite3_prepare_v2(o->db, "SELECT name FROM pragma_table_info(?)", -1, &st, NULL) != SQLITE_OK)
    return fail_db(o);
  sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *n = (const char *)sqlite3_column_text(st, 0);
    ti->exists = true;
    if (!n)
      continue;
    if (strcmp(n, "_owner") == 0)
      ti->has_owner = true;
    else if (strcmp(n, "_owner_email") == 0)
      ti->has_owner_email = true;
    else if (strcmp(n, "_updated_at") == 0)
      ti->has_updated_at = true;
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : fail_db(o);
}

/* The policy of |table|: 1 and a static/owned string in |buf| if registered, 0 if not (policy "owner"). */
static int table_policy(struct op *o, const char *table, char *buf, size_t len) {
  sqlite3_stmt *st = NULL;
  snprintf(buf, len, "owner");
  if (sqlite3_prepare_v2(o->db, "SELECT insert_policy FROM _tables WHERE name = ?", -1, &st, NULL) !=
      SQLITE_OK)
    return fail_db(o);
  sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st), found = 0;
  if (rc == SQLITE_ROW) {
    const char *p = (const char *)sqlite3_column_text(st, 0);
    snprintf(buf, len, "%s", p ? p : "owner");
    found = 1;
  } else if (rc != SQLITE_DONE) {
    sqlite3_finalize(st);
    return fail_db(o);
  }
  sqlite3_finalize(st);
  return found;
}

/* ---- row values ------------------------------------------------------------------ */

static bool is_time_decl(const char *decl) {
  return decl && (strcasecmp(decl, "DATETIME") == 0 || strcasecmp(decl, "DATE") == 0 ||
                  strcasecmp(decl, "TIMESTAMP") == 0);
}

static bool plain_datetime(const unsigned char *t, size_t n) {
  static const char pat[] = "dddd-dd-dd dd:dd:dd";
  if (n != 19)
    return false;
  for (size_t i = 0; i < 19; i++)
    if (pat[i] == 'd' ? !isdigit(t[i]) : t[i] != (unsigned char)pat[i])
      return false;
  return true;
}

/* A DATETIME value as "YYYY-MM-DD HH:MM:SS" (UTC) through SQLite's own date parser; NULL if it is no date. */
static json_t *time_value(sqlite3 *db, sqlite3_stmt *src, int i, const char *fmt) {
  sqlite3_stmt *st = NULL;
  json_t *j = NULL;
  int type = sqlite3_column_type(src, i);
  const char *sql = type == SQLITE_TEXT ? "SELECT strftime(?2, ?1)" : "SELECT strftime(?2, ?1, 'unixepoch')";
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    return NULL;
  sqlite3_bind_value(st, 1, sqlite3_column_value(src, i));
  sqlite3_bind_text(st, 2, fmt, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT)
    j = json_string((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return j;
}

static json_t *column_value(sqlite3 *db, sqlite3_stmt *st, int i, const char *timefmt) {
  int type = sqlite3_column_type(st, i);
  const char *decl = sqlite3_column_decltype(st, i);
  if (is_time_decl(decl) && (type == SQLITE_TEXT || type == SQLITE_INTEGER || type == SQLITE_FLOAT)) {
    if (type == SQLITE_TEXT && !timefmt &&
        plain_datetime(sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i)))
      return json_text(sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
    json_t *t = time_value(db, st, i, timefmt ? timefmt : "%Y-%m-%d %H:%M:%S");
    if (t)
      return t;
  }
  switch (type) {
  case SQLITE_INTEGER:
    return json_integer((json_int_t)sqlite3_column_int64(st, i));
  case SQLITE_FLOAT:
    return json_real(sqlite3_column_double(st, i));
  case SQLITE_TEXT:
    return json_text(sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
  case SQLITE_BLOB: {
    const void *p = sqlite3_column_blob(st, i);
    return json_text(p ? p : (const void *)"", (size_t)sqlite3_column_bytes(st, i));
  }
  default:
    return json_null();
  }
}

/* Step |st| and collect rows (at most |max_rows|) into o->data; no rows -> null. */
static int collect_rows(struct op *o, sqlite3_stmt *st, uint64_t max_rows) {
  json_t *rows = NULL;
  int n = sqlite3_column_count(st), rc = SQLITE_DONE;
  uint64_t count = 0;
  size_t bytes = 0;
  while (count < max_rows && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *row = json_object();
    if (!row || (!rows && !(rows = json_array())))
      goto oom;
    for (int i = 0; i < n; i++) {
      const char *name = sqlite3_column_name(st, i);
      json_t *v = column_value(o->db, st, i, NULL);
      if (!name || !v) {
        json_decref(v);
        json_decref(row);
        goto oom;
      }
      bytes += (size_t)sqlite3_column_bytes(st, i) + strlen(name) + 8;
      json_object_set_new(row, name, v);
    }
    json_array_append_new(rows, row);
    count++;
    if (bytes > STORE_MAX_RESULT) {
      json_decref(rows);
      return fail(o, "result too large");
    }
  }
  if (count < max_rows && rc != SQLITE_DONE) {
    json_decref(rows);
    if (rc == SQLITE_INTERRUPT)
      return fail(o, "query aborted: too much work");
    return fail_db(o);
  }
  o->data = rows;
  return 0;
oom:
  json_decref(rows);
  return fail_oom(o);
}

/* ---- request ------------------------------------------------------------------ */

struct req {
  const char *op, *table, *name, *where, *old_name, *new_name, *function;
  json_t *data, *args, *columns, *column_defs, *column, *params;
  json_int_t id, limit, offset;
};

static int get_str(struct op *o, json_t *obj, const char *key, const char **out) {
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return fail(o, "invalid json: field %s must be a string", key);
  if (strlen(json_string_value(v)) != json_string_length(v))
    return fail(o, "invalid json: field %s contains a NUL character", key);
  if (json_string_length(v))
    *out = json_string_value(v);
  return 0;
}

static int get_int(struct op *o, json_t *obj, const char *key, json_int_t *out) {
  json_t *v = json_object_get(obj, key);
  *out = 0;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_integer(v))
    return fail(o, "invalid json: field %s must be an integer", key);
  *out = json_integer_value(v);
  return 0;
}

static int get_typed(struct op *o, json_t *obj, const char *key, json_type type, json_t **out) {
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (!v || json_is_null(v))
    return 0;
  if (json_typeof(v) != type)
    return fail(o, "invalid json: field %s must be %s", key, type == JSON_OBJECT ? "an object" : "an array");
  *out = v;
  return 0;
}

static int parse_req(struct op *o, json_t *root, struct req *r) {
  memset(r, 0, sizeof(*r));
  if (get_str(o, root, "op", &r->op) || get_str(o, root, "table", &r->table) ||
      get_str(o, root, "name", &r->name) || get_str(o, root, "where", &r->where) ||
      get_str(o, root, "old_name", &r->old_name) || get_str(o, root, "new_name", &r->new_name) ||
      get_str(o, root, "function", &r->function) || get_int(o, root, "id", &r->id) ||
      get_int(o, root, "limit", &r->limit) || get_int(o, root, "offset", &r->offset) ||
      get_typed(o, root, "data", JSON_OBJECT, &r->data) || get_typed(o, root, "args", JSON_ARRAY, &r->args) ||
      get_typed(o, root, "columns", JSON_ARRAY, &r->columns) ||
      get_typed(o, root, "column_defs", JSON_ARRAY, &r->column_defs) ||
      get_typed(o, root, "column", JSON_OBJECT, &r->column) ||
      get_typed(o, root, "params", JSON_OBJECT, &r->params))
    return -1;
  size_t i;
  json_t *v;
  json_array_foreach(r->columns, i, v) {
    if (!json_is_string(v))
      return fail(o, "invalid json: field columns must be an array of strings");
  }
  json_array_foreach(r->column_defs, i, v) {
    if (!json_is_object(v))
      return fail(o, "invalid json: field column_defs must be an array of objects");
  }
  return 0;
}

/* Nesting depth check before jansson builds anything. */
static bool depth_ok(const char *p, size_t len) {
  int depth = 0;
  bool str = false;
  for (size_t i = 0; i < len; i++) {
    char c = p[i];
    if (str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        str = false;
    } else if (c == '"') {
      str = true;
    } else if (c == '{' || c == '[') {
      if (++depth > STORE_JSON_DEPTH)
        return false;
    } else if (c == '}' || c == ']') {
      depth--;
    }
  }
  return true;
}

/* ---- non-owner query safety ------------------------------------------------------ */

struct auth_ctx {
  const char *table;
  int selects;
  bool denied;
};

static const char *const safe_functions[] = {
    "abs",       "avg",        "char",
    "coalesce",  "count",      "date",
    "datetime",  "glob",       "ifnull",
    "iif",       "instr",      "julianday",
    "length",    "like",       "likely",
    "lower",     "ltrim",      "max",
    "min",       "nullif",     "round",
    "rtrim",     "sign",       "strftime",
    "substr",    "substring",  "time",
    "total",     "trim",       "typeof",
    "unicode",   "unixepoch",  "unlikely",
    "upper",     "sum",        "json_extract",
    "json_type", "json_valid", "json_array_length",
    "->",        "->>",
};

static int authorize(void *ud, int action, const char *a3, const char *a4, const char *dbname,
                     const char *trigger) {
  struct auth_ctx *c = ud;
  (void)trigger;
  switch (action) {
  case SQLITE_SELECT:
    if (++c->selects == 1)
      return SQLITE_OK;
    break;
  case SQLITE_READ:
    if (a3 && dbname && strcmp(dbname, "main") == 0 && sqlite3_stricmp(a3, c->table) == 0)
      return SQLITE_OK;
    break;
  case SQLITE_FUNCTION:
    for (size_t i = 0; a4 && i < GOOP_ARRAY_SIZE(safe_functions); i++)
      if (sqlite3_stricmp(a4, safe_functions[i]) == 0)
        return SQLITE_OK;
    break;
  default:
    break;
  }
  c->denied = true;
  return SQLITE_DENY;
}

static bool ident_char(unsigned char c) {
  return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* Lexical check of a caller's where text, on top of the authorizer:
 * balanced parentheses outside literals, no comments, no ';', only anonymous
 * '?' parameters (counted), no subquery (SELECT/VALUES/WITH keywords) and no
 * "IN <table>" form (SQLite may read a table for those without a SELECT the
 * authorizer would see). */
static int check_where(const char *w, int *ret_params) {
  int depth = 0, params = 0;
  bool after_in = false;
  for (const char *p = w; *p; p++) {
    char c = *p;
    if (isspace((unsigned char)c))
      continue;
    if (after_in && c != '(')
      return -1;
    after_in = false;
    if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)p[1]))) {
      while (ident_char((unsigned char)p[1]) || p[1] == '.' ||
             ((p[1] == '+' || p[1] == '-') && (p[0] == 'e' || p[0] == 'E')))
        p++;
      continue;
    }
    if (ident_char((unsigned char)c)) {
      const char *start = p;
      while (ident_char((unsigned char)p[1]))
        p++;
      size_t n = (size_t)(p - start) + 1;
      if ((n == 6 && (strncasecmp(start, "select", 6) == 0 || strncasecmp(start, "values", 6) == 0)) ||
          (n == 4 && strncasecmp(start, "with", 4) == 0))
        return -1;
      if (n == 2 && strncasecmp(start, "in", 2) == 0)
        after_in = true;
      continue;
    }
    if (c == '\'' || c == '"' || c == '`' || c == '[') {
      char end = c == '[' ? ']' : c;
      for (p++;; p++) {
        if (!*p)
          return -1;
        if (*p == end) {
          if (end != ']' && p[1] == end) {
            p++;
            continue;
          }
          break;
        }
      }
      continue;
    }
    if (c == '(') {
      if (++depth > 64)
        return -1;
    } else if (c == ')') {
      if (--depth < 0)
        return -1;
    } else if (c == ';' || c == ':' || c == '@' || c == '$' || c == '#') {
      return -1;
    } else if ((c == '-' && p[1] == '-') || (c == '/' && p[1] == '*')) {
      return -1;
    } else if (c == '?') {
      if (isdigit((unsigned char)p[1]))
        return -1;
      params++;
    } else if ((unsigned char)c < 0x20 && !isspace((unsigned char)c)) {
      return -1;
    }
  }
  if (depth != 0 || after_in)
    return -1;
  *ret_params = params;
  return 0;
}

static int progress(void *ud) {
  uint64_t *left = ud;
  if (*left <= STORE_PROGRESS_STEP)
    return 1;
  *left -= STORE_PROGRESS_STEP;
  return 0;
}

struct saved_limits {
  int length, sql_length, vars, expr_depth, like, args, compound;
};

static void limits_tighten(sqlite3 *db, const goop_site *s, bool owner, struct saved_limits *sl) {
  uint64_t sql = s->max_request + 4096;
  if (sql > 100000000)
    sql = 100000000;
  sl->length = sqlite3_limit(db, SQLITE_LIMIT_LENGTH, STORE_MAX_VALUE_LEN);
  sl->sql_length = sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, (int)sql);
  sl->vars = sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, STORE_MAX_ARGS + 4);
  sl->expr_depth = sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 100);
  sl->like = sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 100);
  sl->args = sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 16);
  sl->compound = sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, owner ? -1 : 1);
}

static void limits_restore(sqlite3 *db, const struct saved_limits *sl) {
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, sl->length);
  sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, sl->sql_length);
  sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, sl->vars);
  sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, sl->expr_depth);
  sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, sl->like);
  sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, sl->args);
  sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, sl->compound);
}

/* ---- operations ------------------------------------------------------------------ */

static bool visible_all(const char *policy) {
  return strcmp(policy, "owner") == 0 || strcmp(policy, "public") == 0;
}

static int op_tables(struct op *o) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(o->db,
                         "SELECT name, insert_policy, created_at FROM _tables "
                         "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                         -1, &st, NULL) != SQLITE_OK)
    return fail_db(o);
  json_t *rows = NULL;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *row = json_object();
    if (!row || (!rows && !(rows = json_array()))) {
      json_decref(row);
      sqlite3_finalize(st);
      json_decref(rows);
      return fail_oom(o);
    }
    json_object_set_new(row, "name", column_value(o->db, st, 0, NULL));
    json_object_set_new(row, "insert_policy", column_value(o->db, st, 1, NULL));
    json_object_set_new(row, "created_at", column_value(o->db, st, 2, "%Y-%m-%dT%H:%M:%SZ"));
    json_array_append_new(rows, row);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    json_decref(rows);
    return fail_db(o);
  }
  o->data = rows;
  return 0;
}

static int op_describe(struct op *o, const struct req *r) {
  const char *t = r->table ? r->table : r->name;
  if (!t)
    return fail(o, "table name required");
  if (!valid_ident(t))
    return fail(o, "invalid table name: %s", t);
  if (!o->caller->is_owner) {
    char pol[64];
    int reg = table_policy(o, t, pol, sizeof(pol));
    if (reg < 0)
      return -1;
    if (!reg || reserved_table(t))
      return 0; /* data null, as for an unknown table */
  }
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(o->db,
                         "SELECT cid, name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?)", -1,
                         &st, NULL) != SQLITE_OK)
    return fail_db(o);
  sqlite3_bind_text(st, 1, t, -1, SQLITE_STATIC);
  json_t *rows = NULL;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *row = json_object();
    if (!row || (!rows && !(rows = json_array()))) {
      json_decref(row);
      json_decref(rows);
      sqlite3_finalize(st);
      return fail_oom(o);
    }
    json_object_set_new(row, "cid", json_integer(sqlite3_column_int(st, 0)));
    json_object_set_new(row, "name", column_value(o->db, st, 1, NULL));
    json_object_set_new(row, "type", column_value(o->db, st, 2, NULL));
    json_object_set_new(row, "not_null", json_boolean(sqlite3_column_int(st, 3) != 0));
    json_object_set_new(row, "default", column_value(o->db, st, 4, NULL));
    json_object_set_new(row, "pk", json_boolean(sqlite3_column_int(st, 5) != 0));
    json_array_append_new(rows, row);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    json_decref(rows);
    return fail_db(o);
  }
  o->data = rows;
  return 0;
}

static size_t ncols_total(const struct req *r) {
  return json_array_size(r->columns);
}

static int op_query(struct op *o, const struct req *r) {
  goop_site *s = o->s;
  bool owner = o->caller->is_owner;
  if (!r->table)
    return fail(o, "table name required");
  if (!valid_ident(r->table))
    return fail(o, "invalid table name: %s", r->table);
  size_t nargs = json_array_size(r->args);
  if (nargs > STORE_MAX_ARGS)
    return fail(o, "too many arguments");
  bool scoped = false;
  int where_params = -1;
  if (!owner) {
    char pol[64];
    int reg = table_policy(o, r->table, pol, sizeof(pol));
    if (reg < 0)
      return -1;
    if (!reg || reserved_table(r->table))
      return fail(o, "no such table: %s", r->table);
    scoped = !visible_all(pol);
    if (r->where && strlen(r->where) > STORE_MAX_WHERE)
      return fail(o, "where clause too long");
    if (ncols_total(r) > 256)
      return fail(o, "too many columns");
    if (r->where && check_where(r->where, &where_params) < 0)
      return fail(o, "invalid where clause");
    if (!r->where)
      where_params = 0;
    if ((size_t)where_params != nargs)
      return fail(o, "sql: expected %d arguments, got %zu", where_params, nargs);
  }

  struct sbuf sql = {0};
  sb_add(&sql, "SELECT ");
  size_t ncols = json_array_size(r->columns);
  if (ncols == 0) {
    sb_add(&sql, "*");
  } else {
    for (size_t i = 0; i < ncols; i++) {
      const char *c = json_string_value(json_array_get(r->columns, i));
      if (i)
        sb_add(&sql, ", ");
      if (owner) {
        sb_add(&sql, c); /* the owner may use expressions, as in Goop² */
      } else if (strcmp(c, "*") == 0) {
        sb_add(&sql, "*");
      } else if (valid_ident(c)) {
        sb_ident(&sql, c);
      } else {
        goop_buf_free(&sql.g);
        return fail(o, "invalid column name: %s", c);
      }
    }
  }
  sb_add(&sql, " FROM ");
  sb_ident(&sql, r->table);
  if (r->where || scoped)
    sb_add(&sql, " WHERE ");
  if (r->where) {
    sb_add(&sql, "(");
    sb_add(&sql, r->where);
    sb_add(&sql, ")");
  }
  if (scoped)
    sb_add(&sql, r->where ? " AND \"_owner\" = ?" : "\"_owner\" = ?");
  sb_add(&sql, " LIMIT ?");
  bool use_offset = r->limit > 0 && r->offset > 0;
  if (use_offset)
    sb_add(&sql, " OFFSET ?");
  if (sql.oom) {
    goop_buf_free(&sql.g);
    return fail_oom(o);
  }

  struct auth_ctx ac = {.table = r->table};
  struct saved_limits sl;
  uint64_t budget = owner ? STORE_QUERY_BUDGET * 3 : STORE_QUERY_BUDGET;
  sqlite3_stmt *st = NULL;
  limits_tighten(o->db, s, owner, &sl);
  if (!owner)
    sqlite3_set_authorizer(o->db, authorize, &ac);
  int rc = prepare_one(o, (const char *)sql.g.data, &st);
  if (!owner)
    sqlite3_set_authorizer(o->db, NULL, NULL);
  goop_buf_free(&sql.g);
  if (rc < 0) {
    if (ac.denied)
      snprintf(o->err, sizeof(o->err), "not authorized");
    goto out;
  }
  if (!sqlite3_stmt_readonly(st)) {
    rc = fail(o, "query must be read-only");
    goto out;
  }
  int nparams = sqlite3_bind_parameter_count(st);
  int fixed = (scoped ? 1 : 0) + 1 + (use_offset ? 1 : 0);
  if (owner && (size_t)(nparams - fixed) != nargs) {
    rc = fail(o, "sql: expected %d arguments, got %zu", nparams - fixed, nargs);
    goto out;
  }
  int idx = 1;
  for (size_t i = 0; i < nargs; i++)
    if ((rc = bind_json(o, st, idx++, json_array_get(r->args, i), "argument")) < 0)
      goto out;
  if (scoped)
    sqlite3_bind_text(st, idx++, o->caller->id, -1, SQLITE_STATIC);
  uint64_t max = s->max_rows ? s->max_rows : 10000;
  uint64_t lim = r->limit > 0 && (uint64_t)r->limit < max ? (uint64_t)r->limit : max;
  sqlite3_bind_int64(st, idx++, (sqlite3_int64)lim);
  if (use_offset)
    sqlite3_bind_int64(st, idx++, (sqlite3_int64)r->offset);
  sqlite3_progress_handler(o->db, STORE_PROGRESS_STEP, progress, &budget);
  rc = collect_rows(o, st, lim);
  sqlite3_progress_handler(o->db, 0, NULL, NULL);
out:
  sqlite3_finalize(st);
  limits_restore(o->db, &sl);
  return rc;
}

static bool system_column(const char *c) {
  return strcmp(c, "_id") == 0 || strcmp(c, "_owner") == 0 || strcmp(c, "_owner_email") == 0 ||
         strcmp(c, "_created_at") == 0 || strcmp(c, "_updated_at") == 0;
}

/* Checks shared by insert/update/delete; returns the policy in |pol| (registered or "owner"). */
static int write_target(struct op *o, const struct req *r, char *pol, size_t pol_len, int *ret_reg,
                        struct tinfo *ti) {
  if (!r->table)
    return fail(o, "table name required");
  if (!valid_ident(r->table))
    return fail(o, "invalid table name: %s", r->table);
  if (reserved_table(r->table))
    return fail(o, "table is reserved: %s", r->table);
  int reg = table_policy(o, r->table, pol, pol_len);
  if (reg < 0)
    return -1;
  *ret_reg = reg;
  if (table_info(o, r->table, ti) < 0)
    return -1;
  if (!ti->exists)
    return fail(o, "no such table: %s", r->table);
  return 0;
}

static int check_data_keys(struct op *o, const struct req *r, bool insert) {
  const char *k;
  json_t *v;
  json_object_foreach(r->data, k, v) {
    if (!valid_ident(k))
      return fail(o, "invalid column name: %s", k);
    if (insert && (strcmp(k, "_owner") == 0 || strcmp(k, "_owner_email") == 0))
      return fail(o, "column not writable: %s", k);
    if (!o->caller->is_owner && system_column(k))
      return fail(o, "column not writable: %s", k);
    if (json_is_object(v) || json_is_array(v))
      return fail(o, "unsupported value type for %s", k);
  }
  return 0;
}

static int op_insert(struct op *o, const struct req *r) {
  char pol[64];
  int reg = 0;
  struct tinfo ti;
  if (!r->table)
    return fail(o, "table name required");
  if (!o->caller->is_owner) {
    if (!valid_ident(r->table))
      return fail(o, "invalid table name: %s", r->table);
    int rg = table_policy(o, r->table, pol, sizeof(pol));
    if (rg < 0)
      return -1;
    if (strcmp(pol, "owner") == 0 || reserved_table(r->table))
      return fail(o, "insert not allowed: this table only accepts data from the site owner");
    if (strcmp(pol, "email") == 0) {
      if (!*o->email)
        return fail(o, "insert not allowed: your peer must have an email address configured");
    } else if (strcmp(pol, "open") != 0 && strcmp(pol, "public") != 0) {
      return fail(o, "insert not allowed: unknown table policy");
    }
  }
  if (write_target(o, r, pol, sizeof(pol), &reg, &ti) < 0 || check_data_keys(o, r, true) < 0)
    return -1;
  if (!ti.has_owner && !o->caller->is_owner)
    return fail(o, "table has no _owner column: %s", r->table);

  struct sbuf sql = {0};
  sb_add(&sql, "INSERT INTO ");
  sb_ident(&sql, r->table);
  sb_add(&sql, " (");
  int n = 0;
  if (ti.has_owner)
    sb_add(&sql, n++ ? ", \"_owner\"" : "\"_owner\"");
  if (ti.has_owner_email)
    sb_add(&sql, n++ ? ", \"_owner_email\"" : "\"_owner_email\"");
  const char *k;
  json_t *v;
  json_object_foreach(r->data, k, v) {
    if (n++)
      sb_add(&sql, ", ");
    sb_ident(&sql, k);
  }
  if (n == 0) {
    goop_buf_free(&sql.g);
    sql = (struct sbuf){0};
    sb_add(&sql, "INSERT INTO ");
    sb_ident(&sql, r->table);
    sb_add(&sql, " DEFAULT VALUES");
  } else {
    sb_add(&sql, ") VALUES (");
    for (int i = 0; i < n; i++)
      sb_add(&sql, i ? ", ?" : "?");
    sb_add(&sql, ")");
  }
  if (sql.oom) {
    goop_buf_free(&sql.g);
    return fail_oom(o);
  }
  sqlite3_stmt *st = NULL;
  int rc = tx_begin(o);
  if (rc == 0)
    rc = prepare_one(o, (const char *)sql.g.data, &st);
  goop_buf_free(&sql.g);
  int idx = 1;
  if (rc == 0 && ti.has_owner)
    sqlite3_bind_text(st, idx++, o->caller->id, -1, SQLITE_STATIC);
  if (rc == 0 && ti.has_owner_email)
    sqlite3_bind_text(st, idx++, o->email, -1, SQLITE_STATIC);
  if (rc == 0) {
    json_object_foreach(r->data, k, v) {
      if ((rc = bind_json(o, st, idx++, v, k)) < 0)
        break;
    }
  }
  if (rc == 0 && sqlite3_step(st) != SQLITE_DONE)
    rc = fail_db(o);
  sqlite3_int64 id = sqlite3_last_insert_rowid(o->db);
  sqlite3_finalize(st);
  if ((rc = tx_end(o, rc)) < 0)
    return rc;
  o->data = json_pack("{s:s,s:I}", "status", "inserted", "id", (json_int_t)id);
  return o->data ? 0 : fail_oom(o);
}

static int op_update_delete(struct op *o, const struct req *r, bool is_delete) {
  char pol[64];
  int reg = 0;
  struct tinfo ti;
  bool owner = o->caller->is_owner;
  if (write_target(o, r, pol, sizeof(pol), &reg, &ti) < 0)
    return -1;
  if (r->id <= 0)
    return fail(o, "valid row id required");
  if (!owner && (!reg || !ti.has_owner))
    return fail(o, "row not found or not owned by caller");
  if (!is_delete && check_data_keys(o, r, false) < 0)
    return -1;

  struct sbuf sql = {0};
  if (is_delete) {
    sb_add(&sql, "DELETE FROM ");
    sb_ident(&sql, r->table);
  } else {
    sb_add(&sql, "UPDATE ");
    sb_ident(&sql, r->table);
    sb_add(&sql, " SET ");
    int n = 0;
    if (ti.has_updated_at && !json_object_get(r->data, "_updated_at")) {
      sb_add(&sql, "\"_updated_at\" = CURRENT_TIMESTAMP");
      n++;
    }
    const char *k;
    json_t *v;
    json_object_foreach(r->data, k, v) {
      if (n++)
        sb_add(&sql, ", ");
      sb_ident(&sql, k);
      sb_add(&sql, " = ?");
    }
    if (n == 0) {
      goop_buf_free(&sql.g);
      return fail(o, "no columns to update");
    }
  }
  sb_add(&sql, owner ? " WHERE \"_id\" = ?" : " WHERE \"_id\" = ? AND \"_owner\" = ?");
  if (sql.oom) {
    goop_buf_free(&sql.g);
    return fail_oom(o);
  }
  sqlite3_stmt *st = NULL;
  int rc = tx_begin(o);
  if (rc == 0)
    rc = prepare_one(o, (const char *)sql.g.data, &st);
  goop_buf_free(&sql.g);
  int idx = 1;
  if (rc == 0 && !is_delete) {
    const char *k;
    json_t *v;
    json_object_foreach(r->data, k, v) {
      if ((rc = bind_json(o, st, idx++, v, k)) < 0)
        break;
    }
  }
  if (rc == 0) {
    sqlite3_bind_int64(st, idx++, (sqlite3_int64)r->id);
    if (!owner)
      sqlite3_bind_text(st, idx++, o->caller->id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = fail_db(o);
    else if (sqlite3_changes(o->db) == 0)
      rc = fail(o, "row not found or not owned by caller");
  }
  sqlite3_finalize(st);
  if ((rc = tx_end(o, rc)) < 0)
    return rc;
  o->data = json_pack("{s:s}", "status", is_delete ? "deleted" : "updated");
  return o->data ? 0 : fail_oom(o);
}

/* Run one DDL statement (plus optional registry statement with up to two text parameters) in a transaction.
 */
static int ddl(struct op *o, const char *sql, const char *reg_sql, const char *p1, const char *p2) {
  sqlite3_stmt *st = NULL;
  int rc = tx_begin(o);
  if (rc == 0)
    rc = prepare_one(o, sql, &st);
  if (rc == 0 && sqlite3_step(st) != SQLITE_DONE)
    rc = fail_db(o);
  sqlite3_finalize(st);
  st = NULL;
  if (rc == 0 && reg_sql) {
    if (sqlite3_prepare_v2(o->db, reg_sql, -1, &st, NULL) != SQLITE_OK) {
      rc = fail_db(o);
    } else {
      if (p1)
        sqlite3_bind_text(st, 1, p1, -1, SQLITE_STATIC);
      if (p2)
        sqlite3_bind_text(st, 2, p2, -1, SQLITE_STATIC);
      if (sqlite3_step(st) != SQLITE_DONE)
        rc = fail_db(o);
      sqlite3_finalize(st);
    }
  }
  return tx_end(o, rc);
}

/* "<name> <type>[ NOT NULL][ DEFAULT <default>]" of a ColumnDef; |add| = ADD COLUMN form. */
static int column_def(struct op *o, struct sbuf *sql, json_t *def, bool add) {
  json_t *jn = json_object_get(def, "name"), *jt = json_object_get(def, "type");
  json_t *jnn = json_object_get(def, "not_null"), *jd = json_object_get(def, "default");
  const char *name = json_string_value(jn), *type = json_string_value(jt), *dflt = json_string_value(jd);
  if (!name || !*name)
    return fail(o, "column name required");
  if (!valid_ident(name))
    return fail(o, "invalid column name: %s", name);
  if (jt && !json_is_string(jt))
    return fail(o, "invalid json: column type must be a string");
  if (jd && !json_is_null(jd) && !json_is_string(jd))
    return fail(o, "invalid json: column default must be a string");
  for (const char *q = type ? type : ""; *q; q++)
    if (!(isalnum((unsigned char)*q) || strchr(" _(),", *q)))
      return fail(o, "invalid column type: %s", type);
  sb_ident(sql, name);
  if (type && *type) {
    sb_add(sql, " ");
    sb_add(sql, type);
  }
  bool nn = json_is_true(jnn);
  if (nn)
    sb_add(sql, " NOT NULL");
  if (dflt && *dflt) {
    sb_add(sql, " DEFAULT ");
    sb_add(sql, dflt);
  } else if (nn && add) {
    sb_add(sql, " DEFAULT ''");
  }
  return 0;
}

static int op_create_table(struct op *o, const struct req *r) {
  const char *t = r->name ? r->name : r->table;
  if (!t)
    return fail(o, "table name required");
  if (!valid_ident(t))
    return fail(o, "invalid table name: %s", t);
  if (reserved_table(t))
    return fail(o, "table is reserved: %s", t);
  size_t n = json_array_size(r->column_defs);
  if (n == 0 && !r->column)
    return fail(o, "at least one column required");
  struct sbuf sql = {0};
  sb_add(&sql, "CREATE TABLE IF NOT EXISTS ");
  sb_ident(&sql, t);
  sb_add(&sql, " (\"_id\" INTEGER PRIMARY KEY AUTOINCREMENT, \"_owner\" TEXT NOT NULL, "
               "\"_owner_email\" TEXT DEFAULT '', \"_created_at\" DATETIME DEFAULT CURRENT_TIMESTAMP, "
               "\"_updated_at\" DATETIME DEFAULT CURRENT_TIMESTAMP");
  for (size_t i = 0; i < (n ? n : 1); i++) {
    sb_add(&sql, ", ");
    if (column_def(o, &sql, n ? json_array_get(r->column_defs, i) : r->column, false) < 0) {
      goop_buf_free(&sql.g);
      return -1;
    }
  }
  sb_add(&sql, ")");
  if (sql.oom) {
    goop_buf_free(&sql.g);
    return fail_oom(o);
  }
  int rc = ddl(o, (const char *)sql.g.data, "INSERT OR REPLACE INTO _tables (name, schema) VALUES (?1, ?2)",
               t, (const char *)sql.g.data);
  goop_buf_free(&sql.g);
  if (rc < 0)
    return rc;
  o->data = json_pack("{s:s,s:s}", "status", "created", "table", t);
  return o->data ? 0 : fail_oom(o);
}

static int op_add_column(struct op *o, const struct req *r) {
  const char *t = r->table ? r->table : r->name;
  if (!t)
    return fail(o, "table name required");
  if (!valid_ident(t))
    return fail(o, "invalid table name: %s", t);
  if (reserved_table(t))
    return fail(o, "table is reserved: %s", t);
  if (!r->column)
    return fail(o, "column definition required");
  struct sbuf sql = {0};
  sb_add(&sql, "ALTER TABLE ");
  sb_ident(&sql, t);
  sb_add(&sql, " ADD COLUMN ");
  if (column_def(o, &sql, r->column, true) < 0) {
    goop_buf_free(&sql.g);
    return -1;
  }
  if (sql.oom) {
    goop_buf_free(&sql.g);
    return fail_oom(o);
  }
  int rc = ddl(o, (const char *)sql.g.data, NULL, NULL, NULL);
  goop_buf_free(&sql.g);
  if (rc < 0)
    return rc;
  o->data = json_pack("{s:s}", "status", "added");
  return o->data ? 0 : fail_oom(o);
}

static int op_drop_column(struct op *o, const struct req *r) {
  const char *t = r->table;
  if (!t)
    return fail(o, "table name required");
  if (!valid_ident(t))
    return fail(o, "invalid table name: %s", t);
  if (reserved_table(t))
    return fail(o, "table is reserved: %s", t);
  const char *c = r->column ? json_string_value(json_object_get(r->column, "name")) : NULL;
  if (!c || !*c)
    c = r->name;
  if (!c || !*c)
    return fail(o, "column name required");
  if (!valid_ident(c))
    return fail(o, "invalid column name: %s", c);
  struct sbuf sql = {0};
  sb_add(&sql, "ALTER TABLE ");
  sb_ident(&sql, t);
  sb_add(&sql, " DROP COLUMN ");
  sb_ident(&sql, c);
  if (sql.oom) {
    goop_buf_free(&sql.g);
    return fail_oom(o);
  }
  int rc = ddl(o, (const char *)sql.g.data, NULL, NULL, NULL);
  goop_buf_free(&sql.g);
  if (rc < 0)
    return rc;
  o->data = json_pack("{s:s}", "status", "dropped");
  return o->data ? 0 : fail_oom(o);
}

static int op_rename_table(struct op *o, const struct req *r) {
  if (!r->old_name || !r->new_name)
    return fail(o, "old and new name required");
  if (!valid_ident(r->old_name))
    return fail(o, "invalid table name: %s", r->old_name);
  if (!valid_ident(r->new_name))
    return fail(o, "invalid table name: %s", r->new_name);
  if (reserved_table(r->old_name))
    return fail(o, "table is reserved: %s", r->old_name);
  if (reserved_table(r->new_name))
    return fail(o, "table is reserved: %s", r->new_name);
  struct sbuf sql = {0};
  sb_add(&sql, "ALTER TABLE ");
  sb_ident(&sql, r->old_name);
  sb_add(&sql, " RENAME TO ");
  sb_ident(&sql, r->new_name);
  if (sql.oom) {
    goop_buf_free(&sql.g);
    return fail_oom(o);
  }
  int rc = ddl(o, (const char *)sql.g.data, "UPDATE _tables SET name = ?2 WHERE name = ?1", r->old_name,
               r->new_name);
  goop_buf_free(&sql.g);
  if (rc < 0)
    return rc;
  o->data = json_pack("{s:s,s:s}", "status", "renamed", "new_name", r->new_name);
  return o->data ? 0 : fail_oom(o);
}

static int op_delete_table(struct op *o, const struct req *r) {
  const char *t = r->table ? r->table : r->name;
  if (!t)
    return fail(o, "table name required");
  if (!valid_ident(t))
    return fail(o, "invalid table name: %s", t);
  if (reserved_table(t))
    return fail(o, "table is reserved: %s", t);
  struct sbuf sql = {0};
  sb_add(&sql, "DROP TABLE IF EXISTS ");
  sb_ident(&sql, t);
  if (sql.oom) {
    goop_buf_free(&sql.g);
    return fail_oom(o);
  }
  int rc = ddl(o, (const char *)sql.g.data, "DELETE FROM _tables WHERE name = ?1", t, NULL);
  goop_buf_free(&sql.g);
  if (rc < 0)
    return rc;
  o->data = json_pack("{s:s,s:s}", "status", "deleted", "table", t);
  return o->data ? 0 : fail_oom(o);
}

static int dispatch(struct op *o, const struct req *r) {
  const char *op = r->op ? r->op : "";
  static const char *const schema_ops[] = {"create-table", "add-column", "drop-column", "rename-table",
                                           "delete-table"};
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(schema_ops); i++)
    if (strcmp(op, schema_ops[i]) == 0 && !o->caller->is_owner)
      return fail(o, "schema operations not allowed for remote peers");
  if (strcmp(op, "tables") == 0)
    return op_tables(o);
  if (strcmp(op, "describe") == 0)
    return op_describe(o, r);
  if (strcmp(op, "query") == 0)
    return op_query(o, r);
  if (strcmp(op, "insert") == 0)
    return op_insert(o, r);
  if (strcmp(op, "update") == 0)
    return op_update_delete(o, r, false);
  if (strcmp(op, "delete") == 0)
    return op_update_delete(o, r, true);
  if (strcmp(op, "create-table") == 0)
    return op_create_table(o, r);
  if (strcmp(op, "add-column") == 0)
    return op_add_column(o, r);
  if (strcmp(op, "drop-column") == 0)
    return op_drop_column(o, r);
  if (strcmp(op, "rename-table") == 0)
    return op_rename_table(o, r);
  if (strcmp(op, "delete-table") == 0)
    return op_delete_table(o, r);
  if (strcmp(op, "lua-list") == 0) {
    o->data = json_pack("{s:[]}", "functions");
    return o->data ? 0 : fail_oom(o);
  }
  if (strcmp(op, "lua-call") == 0)
    return fail(o, "lua scripting not enabled");
  return fail(o, "unknown op: %s", op);
}

int goop_site_data_exec(goop_site *site, const struct goop_site_caller *caller, const char *request,
                        size_t len, char **ret_response) {
  goop_return_val_if_fail(site && caller && caller->id && *caller->id && ret_response, GOOP_EINVAL);
  goop_return_val_if_fail(request || len == 0, GOOP_EINVAL);
  struct op o = {.s = site, .db = site->db, .caller = caller};
  o.email = caller->is_owner ? (site->email ? site->email : "") : (caller->email ? caller->email : "");
  json_t *root = NULL;
  if (!site->db) {
    fail(&o, "database not available");
  } else if (len > site->max_request) {
    fail(&o, "request too large");
  } else if (len && !depth_ok(request, len)) {
    fail(&o, "invalid json: nesting too deep");
  } else {
    json_error_t jerr;
    root = json_loadb(request ? request : "", len, 0, &jerr);
    if (!root) {
      fail(&o, "invalid json: %s", jerr.text);
    } else if (!json_is_object(root)) {
      fail(&o, "invalid json: request must be an object");
    } else {
      struct req r;
      if (parse_req(&o, root, &r) == 0)
        dispatch(&o, &r);
    }
  }
  json_decref(root);
  if (o.oom) {
    json_decref(o.data);
    return GOOP_ENOMEM;
  }
  char *out = render(&o);
  json_decref(o.data);
  if (!out)
    return GOOP_ENOMEM;
  *ret_response = out;
  return 0;
}

/* ---- initialisation ------------------------------------------------------------- */

static const char store_schema[] =
    "CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE IF NOT EXISTS _tables (name TEXT PRIMARY KEY, schema TEXT NOT NULL, "
    "insert_policy TEXT DEFAULT 'owner', created_at DATETIME DEFAULT CURRENT_TIMESTAMP);"
    "CREATE TABLE IF NOT EXISTS _groups (id TEXT PRIMARY KEY, name TEXT NOT NULL, app_type TEXT DEFAULT '', "
    "max_members INTEGER DEFAULT 0, created_at DATETIME DEFAULT CURRENT_TIMESTAMP, "
    "host_joined INTEGER DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS _group_subscriptions (host_peer_id TEXT NOT NULL, group_id TEXT NOT NULL, "
    "group_name TEXT DEFAULT '', app_type TEXT DEFAULT '', role TEXT DEFAULT 'member', "
    "subscribed_at DATETIME DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (host_peer_id, group_id));";

/* Columns added to older databases (errors ignored: the column exists). */
static const char *const store_migrations[] = {
    "ALTER TABLE _tables ADD COLUMN insert_policy TEXT DEFAULT 'owner'",
    "ALTER TABLE _groups ADD COLUMN host_joined INTEGER DEFAULT 0",
};

int goop__store_init(goop_site *s, char *errbuf, size_t errbuf_len) {
  static const char pragmas[] = "PRAGMA foreign_keys = ON;"
                                "PRAGMA busy_timeout = 5000;"
                                "PRAGMA journal_mode = WAL;"
                                "PRAGMA synchronous = FULL;";
  char *msg = NULL;
  if (!s || !s->db)
    return GOOP_EINVAL;
  sqlite3_extended_result_codes(s->db, 1);
  if (sqlite3_exec(s->db, pragmas, NULL, NULL, &msg) != SQLITE_OK ||
      sqlite3_exec(s->db, store_schema, NULL, NULL, &msg) != SQLITE_OK) {
    int rc = goop__errbuf(errbuf, errbuf_len, GOOP_EDB, "%s: %s", s->db_path ? s->db_path : "data.db",
                          msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return rc;
  }
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(store_migrations); i++)
    sqlite3_exec(s->db, store_migrations[i], NULL, NULL, NULL);
  return 0;
}
