/*
 * Applying a site template (manifest.json, schema.sql, files) the Goop² way:
 * registered tables dropped, site root emptied (lua/ kept, lua/functions/
 * emptied), files copied, schema.sql run, its tables registered, manifest
 * policies applied.
 *
 * The whole template is checked before anything changes: manifest keys and
 * policies, only regular files and directories (no symlinks, devices or
 * FIFOs), bounded sizes and counts. The database part runs in one
 * transaction, before the files are touched, so a failing schema changes
 * nothing; schema.sql runs under an authorizer that refuses ATTACH, PRAGMA,
 * transaction control, TEMP objects and writes to the internal tables.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "site-internal.h"

#define TPL_MAX_FILE (10u << 20)
#define TPL_MAX_TOTAL (50u << 20)
#define TPL_MAX_FILES 2000
#define TPL_MAX_DEPTH 32
#define TPL_MAX_MANIFEST (1u << 20)
#define TPL_SCHEMA_BUDGET 100000000ull /* VM instructions schema.sql may run */

struct tpl_file {
  char *rel;
  uint64_t size;
};

struct tpl {
  char *dir; /* template directory (absolute, resolved) */
  json_t *manifest;
  char *schema; /* NULL if there is no schema.sql */
  struct tpl_file *files;
  size_t n_files, cap_files;
  uint64_t total;
  char *errbuf;
  size_t errbuf_len;
};

static void tpl_free(struct tpl *t) {
  for (size_t i = 0; i < t->n_files; i++)
    free(t->files[i].rel);
  free(t->files);
  free(t->schema);
  free(t->dir);
  json_decref(t->manifest);
}

static bool valid_ident(const char *s) {
  size_t n = 0;
  if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
    return false;
  for (; s[n]; n++)
    if (!(isalnum((unsigned char)s[n]) || s[n] == '_') || n >= 64)
      return false;
  return true;
}

static bool valid_policy(const char *p) {
  return strcmp(p, "owner") == 0 || strcmp(p, "email") == 0 || strcmp(p, "open") == 0 ||
         strcmp(p, "public") == 0;
}

static bool internal_table(const char *name) {
  return name && (strcasecmp(name, "_meta") == 0 || strcasecmp(name, "_tables") == 0 ||
                  strcasecmp(name, "_groups") == 0 || strcasecmp(name, "_group_subscriptions") == 0 ||
                  strncasecmp(name, "sqlite_", 7) == 0);
}

/* ---- validation -------------------------------------------------------------------- */

static int check_manifest(struct tpl *t, const char *text, size_t len) {
  json_error_t jerr;
  t->manifest = json_loadb(text, len, 0, &jerr);
  if (!t->manifest)
    return goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EPARSE, "manifest.json: %s (line %d)", jerr.text,
                        jerr.line);
  if (!json_is_object(t->manifest))
    return goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EPARSE, "manifest.json: not a JSON object");
  static const char *const strings[] = {"name", "description", "category", "icon", "dir", "source"};
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(strings); i++) {
    json_t *v = json_object_get(t->manifest, strings[i]);
    if (v && !json_is_string(v))
      return goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EINVAL, "manifest.json: %s must be a string",
                          strings[i]);
  }
  json_t *tables = json_object_get(t->manifest, "tables");
  if (!tables || json_is_null(tables))
    return 0;
  if (!json_is_object(tables))
    return goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EINVAL, "manifest.json: tables must be an object");
  const char *name;
  json_t *v;
  json_object_foreach(tables, name, v) {
    if (!valid_ident(name))
      return goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EINVAL, "manifest.json: invalid table name: %s",
                          name);
    if (!json_is_object(v))
      return goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EINVAL, "manifest.json: table %s must be an object",
                          name);
    json_t *p = json_object_get(v, "insert_policy");
    if (!p || json_is_null(p))
      continue;
    if (!json_is_string(p) || (*json_string_value(p) && !valid_policy(json_string_value(p))))
      return goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EINVAL,
                          "manifest.json: table %s: insert_policy must be owner, email, open or public",
                          name);
  }
  return 0;
}

static bool safe_name(const char *n) {
  if (!*n || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
    return false;
  for (const unsigned char *p = (const unsigned char *)n; *p; p++)
    if (*p < 0x20 || *p == 0x7f || *p == '\\')
      return false;
  return true;
}

/* Collect every file under |rel| (relative to t->dir; "" = top). */
static int walk(struct tpl *t, const char *rel, int depth) {
  if (depth > TPL_MAX_DEPTH)
    return goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EINVAL, "template nested too deep: %s", rel);
  char *path = *rel ? goop__path_join(t->dir, rel) : strdup(t->dir);
  if (!path)
    return GOOP_ENOMEM;
  DIR *d = opendir(path);
  free(path);
  if (!d)
    return goop__errbuf(t->errbuf, t->errbuf_len, goop__from_errno(errno), "%s: %s", *rel ? rel : t->dir,
                        strerror(errno));
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (errno = 0, e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (!safe_name(e->d_name)) {
      rc = goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EFORBIDDEN, "unsafe file name in template under '%s'",
                        rel);
      break;
    }
    size_t rl = strlen(rel) + strlen(e->d_name) + 2;
    if (rl > PATH_MAX / 2) {
      rc = goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EINVAL, "template path too long");
      break;
    }
    char *sub = malloc(rl);
    if (!sub) {
      rc = GOOP_ENOMEM;
      break;
    }
    size_t l0 = strlen(rel), l1 = strlen(e->d_name);
    memcpy(sub, rel, l0);
    if (l0)
      sub[l0++] = '/';
    memcpy(sub + l0, e->d_name, l1 + 1);
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      rc = goop__errbuf(t->errbuf, t->errbuf_len, goop__from_errno(errno), "%s: %s", sub, strerror(errno));
    } else if (S_ISLNK(st.st_mode)) {
      rc = goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EFORBIDDEN, "template contains a symbolic link: %s",
                        sub);
    } else if (S_ISDIR(st.st_mode)) {
      rc = walk(t, sub, depth + 1);
    } else if (!S_ISREG(st.st_mode)) {
      rc = goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EFORBIDDEN, "template contains a special file: %s",
                        sub);
    } else if (!*rel && (strcmp(e->d_name, "manifest.json") == 0 || strcmp(e->d_name, "schema.sql") == 0)) {
      if ((uint64_t)st.st_size > TPL_MAX_FILE)
        rc = goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EINVAL, "%s is larger than 10 MiB", sub);
    } else if ((uint64_t)st.st_size > TPL_MAX_FILE) {
      rc = goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EINVAL, "%s is larger than 10 MiB", sub);
    } else if (t->n_files >= TPL_MAX_FILES) {
      rc = goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EINVAL, "template has more than %d files",
                        TPL_MAX_FILES);
    } else if ((t->total += (uint64_t)st.st_size) > TPL_MAX_TOTAL) {
      rc = goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EINVAL, "template is larger than 50 MiB");
    } else {
      if (t->n_files == t->cap_files) {
        size_t cap = t->cap_files ? t->cap_files * 2 : 32;
        struct tpl_file *nf = realloc(t->files, cap * sizeof(*nf));
        if (!nf) {
          rc = GOOP_ENOMEM;
          break;
        }
        t->files = nf;
        t->cap_files = cap;
      }
      t->files[t->n_files++] = (struct tpl_file){sub, (uint64_t)st.st_size};
      sub = NULL;
    }
    free(sub);
  }
  if (rc == 0 && errno != 0)
    rc = goop__errbuf(t->errbuf, t->errbuf_len, goop__from_errno(errno), "reading template: %s",
                      strerror(errno));
  closedir(d);
  return rc;
}

/* Read a top-level regular file (no symlink) of the template; GOOP_ENOENT if missing. */
static int read_top(struct tpl *t, const char *name, char **ret, size_t *ret_len) {
  char *path = goop__path_join(t->dir, name);
  if (!path)
    return GOOP_ENOMEM;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  free(path);
  if (fd < 0) {
    if (errno == ENOENT)
      return GOOP_ENOENT;
    if (errno == ELOOP)
      return goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EFORBIDDEN, "%s is a symbolic link", name);
    return goop__errbuf(t->errbuf, t->errbuf_len, goop__from_errno(errno), "%s: %s", name, strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > TPL_MAX_FILE) {
    close(fd);
    return goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EINVAL, "%s: not a regular file of at most 10 MiB",
                        name);
  }
  char *buf = malloc((size_t)st.st_size + 1);
  if (!buf) {
    close(fd);
    return GOOP_ENOMEM;
  }
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fd);
  buf[got] = '\0';
  *ret = buf;
  *ret_len = got;
  return 0;
}

/* ---- database part ------------------------------------------------------------------ */

static int schema_authorize(void *ud, int action, const char *a3, const char *a4, const char *dbname,
                            const char *trigger) {
  (void)ud, (void)dbname, (void)trigger;
  switch (action) {
  case SQLITE_ATTACH:
  case SQLITE_DETACH:
  case SQLITE_PRAGMA:
  case SQLITE_TRANSACTION:
  case SQLITE_CREATE_TEMP_INDEX:
  case SQLITE_CREATE_TEMP_TABLE:
  case SQLITE_CREATE_TEMP_TRIGGER:
  case SQLITE_CREATE_TEMP_VIEW:
  case SQLITE_DROP_TEMP_INDEX:
  case SQLITE_DROP_TEMP_TABLE:
  case SQLITE_DROP_TEMP_TRIGGER:
  case SQLITE_DROP_TEMP_VIEW:
    return SQLITE_DENY;
  case SQLITE_INSERT:
  case SQLITE_UPDATE:
  case SQLITE_DELETE:
    /* a3 = table; SQLite itself writes sqlite_master for DDL and refuses direct writes there */
    return internal_table(a3) && strncasecmp(a3, "sqlite_", 7) != 0 ? SQLITE_DENY : SQLITE_OK;
  case SQLITE_CREATE_TABLE:
  case SQLITE_DROP_TABLE:
  case SQLITE_ALTER_TABLE:
  case SQLITE_CREATE_VIEW:
  case SQLITE_DROP_VIEW:
    /* a3 = table (for ALTER TABLE: a3 = database, a4 = table) */
    if (internal_table(a3) || internal_table(a4))
      return SQLITE_DENY;
    return SQLITE_OK;
  case SQLITE_CREATE_INDEX:
  case SQLITE_DROP_INDEX:
  case SQLITE_CREATE_TRIGGER:
  case SQLITE_DROP_TRIGGER:
    /* a4 = table */
    return internal_table(a4) ? SQLITE_DENY : SQLITE_OK;
  case SQLITE_FUNCTION:
    return a4 && strcasecmp(a4, "load_extension") == 0 ? SQLITE_DENY : SQLITE_OK;
  default:
    return SQLITE_OK;
  }
}

static int schema_progress(void *ud) {
  uint64_t *left = ud;
  if (*left <= 1000)
    return 1;
  *left -= 1000;
  return 0;
}

static int db_fail(struct tpl *t, sqlite3 *db, const char *what) {
  return goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EDB, "%s: %s", what, sqlite3_errmsg(db));
}

/* Names after "CREATE TABLE [IF NOT EXISTS]" in |sql| (case-insensitive), lower-cased, without '_' ones. */
static bool kw(const char **pp, const char *word) {
  const char *p = *pp;
  size_t n = strlen(word);
  if (strncasecmp(p, word, n) != 0)
    return false;
  p += n;
  if (!isspace((unsigned char)*p))
    return false;
  while (isspace((unsigned char)*p))
    p++;
  *pp = p;
  return true;
}

static int register_tables(struct tpl *t, sqlite3 *db) {
  sqlite3_stmt *ins = NULL, *exists = NULL;
  int rc = 0;
  if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO _tables (name, schema) VALUES (?, ?)", -1, &ins, NULL) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
                         -1, &exists, NULL) != SQLITE_OK) {
    rc = db_fail(t, db, "registering tables");
    goto out;
  }
  for (const char *p = t->schema; *p; p++) {
    if ((p != t->schema && (isalnum((unsigned char)p[-1]) || p[-1] == '_')) || (*p != 'c' && *p != 'C'))
      continue;
    const char *q = p;
    if (!kw(&q, "create") || !kw(&q, "table"))
      continue;
    const char *save = q;
    if (!(kw(&q, "if") && kw(&q, "not") && kw(&q, "exists")))
      q = save;
    char name[65];
    size_t n = 0;
    while ((isalnum((unsigned char)q[n]) || q[n] == '_') && n < 64) {
      name[n] = (char)tolower((unsigned char)q[n]);
      n++;
    }
    name[n] = '\0';
    if (n == 0 || name[0] == '_' || isalnum((unsigned char)q[n]) || q[n] == '_')
      continue;
    sqlite3_reset(exists);
    sqlite3_bind_text(exists, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(exists) != SQLITE_ROW)
      continue;
    sqlite3_reset(ins);
    sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, t->schema, -1, SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE) {
      rc = db_fail(t, db, "registering tables");
      goto out;
    }
  }
out:
  sqlite3_finalize(ins);
  sqlite3_finalize(exists);
  return rc;
}

static int apply_policies(struct tpl *t, sqlite3 *db) {
  json_t *tables = json_object_get(t->manifest, "tables");
  if (!json_is_object(tables))
    return 0;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, "UPDATE _tables SET insert_policy = ? WHERE name = ?", -1, &st, NULL) !=
      SQLITE_OK)
    return db_fail(t, db, "setting policies");
  const char *name;
  json_t *v;
  int rc = 0;
  json_object_foreach(tables, name, v) {
    const char *pol = json_string_value(json_object_get(v, "insert_policy"));
    if (!pol || !*pol)
      continue;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, pol, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
      rc = db_fail(t, db, "setting policies");
      break;
    }
  }
  sqlite3_finalize(st);
  return rc;
}

static int drop_registered(struct tpl *t, sqlite3 *db) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, "SELECT name FROM _tables", -1, &st, NULL) != SQLITE_OK)
    return db_fail(t, db, "listing tables");
  char **names = NULL;
  size_t n = 0;
  int rc = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(st, 0);
    char **nn = realloc(names, (n + 1) * sizeof(*nn));
    if (!nn) {
      rc = GOOP_ENOMEM;
      break;
    }
    names = nn;
    if (!(names[n] = strdup(name ? name : ""))) {
      rc = GOOP_ENOMEM;
      break;
    }
    n++;
  }
  sqlite3_finalize(st);
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (internal_table(names[i]) || !*names[i])
      continue;
    char *sql = sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\"", names[i]);
    if (!sql) {
      rc = GOOP_ENOMEM;
      break;
    }
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
      rc = db_fail(t, db, "dropping tables");
    sqlite3_free(sql);
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  if (rc == 0 && sqlite3_exec(db, "DELETE FROM _tables", NULL, NULL, NULL) != SQLITE_OK)
    rc = db_fail(t, db, "clearing _tables");
  return rc;
}

static int db_apply(struct tpl *t, sqlite3 *db) {
  int rc = drop_registered(t, db);
  if (rc == 0 && t->schema) {
    uint64_t budget = TPL_SCHEMA_BUDGET;
    char *msg = NULL;
    sqlite3_set_authorizer(db, schema_authorize, NULL);
    sqlite3_progress_handler(db, 1000, schema_progress, &budget);
    if (sqlite3_exec(db, t->schema, NULL, NULL, &msg) != SQLITE_OK)
      rc = goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EDB, "schema.sql: %s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_progress_handler(db, 0, NULL, NULL);
    sqlite3_set_authorizer(db, NULL, NULL);
    sqlite3_free(msg);
    if (rc == 0)
      rc = register_tables(t, db);
  }
  if (rc == 0)
    rc = apply_policies(t, db);
  return rc;
}

/* ---- files ------------------------------------------------------------------------- */

/* Remove everything inside directory fd |dfd| (symlinks are removed, never followed). */
static int empty_dir(int dfd, int depth) {
  if (depth > 64)
    return GOOP_ELOOP;
  int fd2 = dup(dfd);
  if (fd2 < 0)
    return goop__from_errno(errno);
  DIR *d = fdopendir(fd2);
  if (!d) {
    close(fd2);
    return goop__from_errno(errno);
  }
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    struct stat st;
    if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      rc = goop__from_errno(errno);
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        rc = goop__from_errno(errno);
        continue;
      }
      int r = empty_dir(sub, depth + 1);
      close(sub);
      if (r)
        rc = r;
      if (unlinkat(dfd, e->d_name, AT_REMOVEDIR) != 0)
        rc = goop__from_errno(errno);
    } else if (unlinkat(dfd, e->d_name, 0) != 0) {
      rc = goop__from_errno(errno);
    }
  }
  closedir(d);
  return rc;
}

/* Step 2: empty the site root except lua/, whose functions/ is emptied. */
static int clear_root(int root) {
  int fd2 = dup(root);
  if (fd2 < 0)
    return goop__from_errno(errno);
  DIR *d = fdopendir(fd2);
  if (!d) {
    close(fd2);
    return goop__from_errno(errno);
  }
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    struct stat st;
    if (fstatat(root, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      rc = goop__from_errno(errno);
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(root, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        rc = goop__from_errno(errno);
        continue;
      }
      int r = 0;
      if (strcmp(e->d_name, "lua") == 0) {
        struct stat fs;
        if (fstatat(sub, "functions", &fs, AT_SYMLINK_NOFOLLOW) == 0) {
          if (S_ISDIR(fs.st_mode)) {
            int fn = openat(sub, "functions", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            r = fn < 0 ? goop__from_errno(errno) : empty_dir(fn, 1);
            if (fn >= 0)
              close(fn);
          } else if (unlinkat(sub, "functions", 0) != 0) {
            r = goop__from_errno(errno);
          }
        }
        close(sub);
        if (r)
          rc = r;
        continue;
      }
      r = empty_dir(sub, 1);
      close(sub);
      if (r)
        rc = r;
      if (unlinkat(root, e->d_name, AT_REMOVEDIR) != 0)
        rc = goop__from_errno(errno);
    } else if (unlinkat(root, e->d_name, 0) != 0) {
      rc = goop__from_errno(errno);
    }
  }
  closedir(d);
  return rc;
}

/* Open (creating) the directory of |rel|'s parent under |root|, never following symlinks. */
static int open_parent(int root, const char *rel, const char **ret_base) {
  int dfd = dup(root);
  if (dfd < 0)
    return -1;
  const char *p = rel;
  for (;;) {
    const char *slash = strchr(p, '/');
    if (!slash)
      break;
    char comp[NAME_MAX + 1];
    size_t n = (size_t)(slash - p);
    if (n == 0 || n > NAME_MAX) {
      close(dfd);
      errno = EINVAL;
      return -1;
    }
    memcpy(comp, p, n);
    comp[n] = '\0';
    if (mkdirat(dfd, comp, 0755) != 0 && errno != EEXIST) {
      close(dfd);
      return -1;
    }
    int next = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(dfd);
    if (next < 0)
      return -1;
    dfd = next;
    p = slash + 1;
  }
  *ret_base = p;
  return dfd;
}

static int copy_file(struct tpl *t, int root, const struct tpl_file *f) {
  char *src = goop__path_join(t->dir, f->rel);
  if (!src)
    return GOOP_ENOMEM;
  int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  free(src);
  if (in < 0)
    return goop__errbuf(t->errbuf, t->errbuf_len, goop__from_errno(errno), "%s: %s", f->rel, strerror(errno));
  struct stat st;
  if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > TPL_MAX_FILE) {
    close(in);
    return goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EFORBIDDEN, "%s changed while applying", f->rel);
  }
  const char *base = NULL;
  int dfd = open_parent(root, f->rel, &base);
  if (dfd < 0) {
    int e = errno;
    close(in);
    return goop__errbuf(t->errbuf, t->errbuf_len, goop__from_errno(e), "%s: %s", f->rel, strerror(e));
  }
  int out = openat(dfd, base, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  close(dfd);
  if (out < 0) {
    int e = errno;
    close(in);
    return goop__errbuf(t->errbuf, t->errbuf_len, goop__from_errno(e), "%s: %s", f->rel, strerror(e));
  }
  char buf[65536];
  int rc = 0;
  uint64_t copied = 0;
  for (;;) {
    ssize_t n = read(in, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EIO, "%s: %s", f->rel, strerror(errno));
      break;
    }
    if (n == 0)
      break;
    if ((copied += (uint64_t)n) > TPL_MAX_FILE) {
      rc = goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EINVAL, "%s grew beyond 10 MiB", f->rel);
      break;
    }
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out, buf + off, (size_t)(n - off));
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0) {
        rc = goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EIO, "%s: %s", f->rel, strerror(errno));
        break;
      }
      off += w;
    }
    if (rc)
      break;
  }
  close(in);
  if (close(out) != 0 && rc == 0)
    rc = goop__errbuf(t->errbuf, t->errbuf_len, GOOP_EIO, "%s: %s", f->rel, strerror(errno));
  return rc;
}

static int files_apply(struct tpl *t, const char *site_root) {
  int rc = goop__mkdir_p(site_root, 0755);
  if (rc)
    return goop__errbuf(t->errbuf, t->errbuf_len, rc, "%s: cannot create site root", site_root);
  int root = open(site_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return goop__errbuf(t->errbuf, t->errbuf_len, goop__from_errno(errno), "%s: %s", site_root,
                        strerror(errno));
  rc = clear_root(root);
  if (rc)
    rc = goop__errbuf(t->errbuf, t->errbuf_len, rc, "%s: cannot empty the site root", site_root);
  for (size_t i = 0; rc == 0 && i < t->n_files; i++)
    rc = copy_file(t, root, &t->files[i]);
  close(root);
  return rc;
}

int goop_site_apply_template(goop_site *site, const char *template_dir, char *errbuf, size_t errbuf_len) {
  goop_return_val_if_fail(site && template_dir && *template_dir, GOOP_EINVAL);
  if (!site->db)
    return goop__errbuf(errbuf, errbuf_len, GOOP_EDB, "database not available");
  struct tpl t = {.errbuf = errbuf, .errbuf_len = errbuf_len};
  int rc;
  char real[PATH_MAX];
  struct stat st;
  if (!realpath(template_dir, real) || stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
    return goop__errbuf(errbuf, errbuf_len, GOOP_EINVAL, "%s: not a template directory", template_dir);
  if (!(t.dir = strdup(real)))
    return GOOP_ENOMEM;
  size_t dl = strlen(t.dir), rl = strlen(site->site_root);
  if ((strncmp(t.dir, site->site_root, rl) == 0 && (t.dir[rl] == '/' || t.dir[rl] == '\0')) ||
      (strncmp(site->site_root, t.dir, dl) == 0 &&
       (site->site_root[dl] == '/' || site->site_root[dl] == '\0'))) {
    rc = goop__errbuf(errbuf, errbuf_len, GOOP_EINVAL, "template directory and site root overlap");
    goto out;
  }

  /* 1. validate everything */
  char *text = NULL;
  size_t len = 0;
  rc = read_top(&t, "manifest.json", &text, &len);
  if (rc == GOOP_ENOENT)
    rc = goop__errbuf(errbuf, errbuf_len, GOOP_EINVAL, "%s: no manifest.json", template_dir);
  if (rc == 0) {
    rc = len > TPL_MAX_MANIFEST ? goop__errbuf(errbuf, errbuf_len, GOOP_EINVAL, "manifest.json too large")
                                : check_manifest(&t, text, len);
    free(text);
  }
  if (rc == 0) {
    rc = read_top(&t, "schema.sql", &t.schema, &len);
    if (rc == GOOP_ENOENT)
      rc = 0;
    else if (rc == 0 && strlen(t.schema) != len)
      rc = goop__errbuf(errbuf, errbuf_len, GOOP_EINVAL, "schema.sql contains a NUL byte");
  }
  if (rc == 0)
    rc = walk(&t, "", 0);
  if (rc)
    goto out;

  /* 2. database (one transaction), then files */
  sqlite3 *db = site->db;
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    rc = db_fail(&t, db, "begin");
    goto out;
  }
  rc = db_apply(&t, db);
  if (rc == 0)
    rc = files_apply(&t, site->site_root);
  if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    rc = db_fail(&t, db, "commit");
  if (rc != 0 && !sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
  tpl_free(&t);
  return rc;
}
