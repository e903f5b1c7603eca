/*
 * The rendezvous template store (see rdv-templates.h).
 */
#include "rdv-templates.h"

#include "../common/html.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAR_BLOCK 512
#define STORED_MAX 65535
#define MAX_REL_PATH 1024
#define MAX_TABLES 256
#define MAX_TABLE_NAME 64

/* ---- CRC-32 and gzip with stored deflate blocks ---- */

static uint32_t crc_table[256];
static bool crc_ready;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
  crc_ready = true;
}

uint32_t rdv_crc32(uint32_t crc, const void *data, size_t len) {
  if (!crc_ready)
    crc_init();
  const uint8_t *p = data;
  crc = ~crc;
  for (size_t i = 0; i < len; i++)
    crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

static void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

int rdv_gzip_stored(const void *data, size_t len, goop_buf *out) {
  /* Header (RFC 1952): magic, CM=8 (deflate), no flags, MTIME=0, XFL=0, OS=3 (Unix). */
  static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
  size_t blocks = len / STORED_MAX + 1;
  int rc = goop_buf_reserve(out, sizeof(head) + blocks * 5 + len + 8);
  if (rc != 0)
    return rc;
  goop_buf_append(out, head, sizeof(head));
  const uint8_t *p = data;
  size_t left = len;
  do {
    size_t n = left > STORED_MAX ? STORED_MAX : left;
    /* BFINAL in bit 0, BTYPE=00, then padding to the byte boundary; LEN and
     * NLEN little-endian (RFC 1951 §3.2.4). */
    uint8_t bh[5] = {n == left ? 1 : 0, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)~n, (uint8_t)(~n >> 8)};
    goop_buf_append(out, bh, sizeof(bh));
    if (n > 0)
      goop_buf_append(out, p, n);
    p += n;
    left -= n;
  } while (left > 0);
  uint8_t tail[8];
  put_le32(tail, rdv_crc32(0, data, len));
  put_le32(tail + 4, (uint32_t)len);
  return goop_buf_append(out, tail, sizeof(tail));
}

/* ---- ustar ---- */

static void octal(char *field, size_t width, uint64_t v) {
  /* width - 1 digits and a NUL */
  field[width - 1] = '\0';
  for (size_t i = width - 1; i > 0; i--) {
    field[i - 1] = (char)('0' + (v & 7));
    v >>= 3;
  }
}

int rdv_tar_add(goop_buf *out, const char *name, const void *data, size_t len, int64_t mtime) {
  char h[TAR_BLOCK];
  memset(h, 0, sizeof(h));
  size_t nl = strlen(name);
  if (nl == 0)
    return -1;
  if (nl <= 100) {
    memcpy(h, name, nl);
  } else {
    /* Split at a '/' into prefix (<= 155) and name (1..100). */
    size_t cut = 0;
    for (size_t i = 1; i < nl && i <= 155; i++) {
      if (name[i] == '/' && nl - i - 1 <= 100 && nl - i - 1 > 0) {
        cut = i;
        break;
      }
    }
    if (cut == 0)
      return -1;
    memcpy(h + 345, name, cut);
    memcpy(h, name + cut + 1, nl - cut - 1);
  }
  if ((uint64_t)len > 077777777777ull)
    return -1;
  if (mtime < 0)
    mtime = 0;
  if ((uint64_t)mtime > 077777777777ull)
    mtime = (int64_t)077777777777ull;
  memcpy(h + 100, "0000644", 8);
  memcpy(h + 108, "0000000", 8);
  memcpy(h + 116, "0000000", 8);
  octal(h + 124, 12, len);
  octal(h + 136, 12, (uint64_t)mtime);
  memset(h + 148, ' ', 8);
  h[156] = '0';
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  memcpy(h + 329, "0000000", 8);
  memcpy(h + 337, "0000000", 8);
  unsigned sum = 0;
  for (size_t i = 0; i < sizeof(h); i++)
    sum += (unsigned char)h[i];
  octal(h + 148, 7, sum);
  h[155] = ' ';
  size_t pad = (TAR_BLOCK - len % TAR_BLOCK) % TAR_BLOCK;
  int rc = goop_buf_reserve(out, sizeof(h) + len + pad);
  if (rc != 0)
    return rc;
  goop_buf_append(out, h, sizeof(h));
  if (len > 0)
    goop_buf_append(out, data, len);
  static const char zeros[TAR_BLOCK];
  return pad ? goop_buf_append(out, zeros, pad) : 0;
}

int rdv_tar_end(goop_buf *out) {
  static const char zeros[2 * TAR_BLOCK];
  return goop_buf_append(out, zeros, sizeof(zeros));
}

/* ---- manifest ---- */

bool rdv_template_name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > RDV_TPL_MAX_DIR_NAME || name[0] == '.')
    return false;
  for (const char *p = name; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return false;
  }
  return true;
}

static bool table_name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > MAX_TABLE_NAME || (name[0] >= '0' && name[0] <= '9'))
    return false;
  for (const char *p = name; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return true;
}

static bool policy_ok(const char *p) {
  return strcmp(p, "owner") == 0 || strcmp(p, "email") == 0 || strcmp(p, "open") == 0 ||
         strcmp(p, "public") == 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An optional string key: absent or null -> "", a string up to |max| bytes, else an error. */
static int opt_string(json_t *root, const char *key, size_t max, const char **ret, char *err, size_t errlen) {
  json_t *v = json_object_get(root, key);
  if (!v || json_is_null(v)) {
    *ret = "";
    return 0;
  }
  if (!json_is_string(v)) {
    snprintf(err, errlen, "%s: expected a string", key);
    return -1;
  }
  if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v)) {
    snprintf(err, errlen, "%s: too long or contains NUL", key);
    return -1;
  }
  *ret = json_string_value(v);
  return 0;
}

int rdv_template_meta(const char *data, size_t len, const char *dir, char **ret, char *err, size_t errlen) {
  *ret = NULL;
  if (len > RDV_TPL_MAX_MANIFEST) {
    snprintf(err, errlen, "manifest.json larger than %u bytes", RDV_TPL_MAX_MANIFEST);
    return -1;
  }
  json_error_t jerr;
  json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    snprintf(err, errlen, "manifest.json: bad JSON at line %d: %s", jerr.line, jerr.text);
    return -1;
  }
  json_t *meta = NULL, *tables = NULL;
  const char **names = NULL;
  int rc = -1;
  if (!json_is_object(root)) {
    snprintf(err, errlen, "manifest.json: not a JSON object");
    goto out;
  }
  const char *name, *desc, *cat, *icon;
  if (opt_string(root, "name", 256, &name, err, errlen) != 0 ||
      opt_string(root, "description", 4096, &desc, err, errlen) != 0 ||
      opt_string(root, "category", 64, &cat, err, errlen) != 0 ||
      opt_string(root, "icon", 64, &icon, err, errlen) != 0)
    goto out;
  if (!name[0]) {
    snprintf(err, errlen, "name: required");
    goto out;
  }
  json_t *tv = json_object_get(root, "tables");
  size_t nt = 0;
  if (tv && !json_is_null(tv)) {
    if (!json_is_object(tv)) {
      snprintf(err, errlen, "tables: expected an object");
      goto out;
    }
    nt = json_object_size(tv);
    if (nt > MAX_TABLES) {
      snprintf(err, errlen, "tables: more than %d", MAX_TABLES);
      goto out;
    }
    names = calloc(nt ? nt : 1, sizeof(*names));
    if (!names) {
      snprintf(err, errlen, "out of memory");
      goto out;
    }
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(tv, k, v) {
      if (!table_name_ok(k)) {
        snprintf(err, errlen, "tables: bad table name");
        goto out;
      }
      json_t *p = json_is_object(v) ? json_object_get(v, "insert_policy") : NULL;
      if (!json_is_string(p) || !policy_ok(json_string_value(p))) {
        snprintf(err, errlen, "tables.%s.insert_policy: expected owner, email, open or public", k);
        goto out;
      }
      names[i++] = k;
    }
    qsort(names, nt, sizeof(*names), cmp_str);
  }
  meta = json_object();
  if (!meta)
    goto oom;
  if (json_object_set_new(meta, "name", json_string(name)) != 0 ||
      json_object_set_new(meta, "description", json_string(desc)) != 0 ||
      json_object_set_new(meta, "category", json_string(cat)) != 0 ||
      json_object_set_new(meta, "icon", json_string(icon)) != 0 ||
      json_object_set_new(meta, "dir", json_string(dir)) != 0 ||
      json_object_set_new(meta, "source", json_string("store")) != 0)
    goto oom;
  if (nt > 0) {
    tables = json_object();
    if (!tables)
      goto oom;
    for (size_t i = 0; i < nt; i++) {
      json_t *p = json_object_get(json_object_get(tv, names[i]), "insert_policy");
      if (json_object_set_new(tables, names[i], json_pack("{sO}", "insert_policy", p)) != 0)
        goto oom;
    }
    if (json_object_set(meta, "tables", tables) != 0)
      goto oom;
  }
  *ret = json_dumps(meta, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (!*ret)
    goto oom;
  rc = 0;
  goto out;
oom:
  snprintf(err, errlen, "out of memory");
out:
  free(names);
  json_decref(tables);
  json_decref(meta);
  json_decref(root);
  return rc;
}

/* ---- loading ---- */

struct file {
  char *rel;
  uint8_t *data;
  size_t len;
  int64_t mtime;
};

struct walk {
  const char *dir; /* template name, for messages */
  struct file *v;
  size_t n, cap;
  size_t bytes;
  size_t max_files, max_bytes;
  rdv_tpl_log_fn log;
  void *ud;
  char err[256];
};

struct tpl {
  char dir[RDV_TPL_MAX_DIR_NAME + 1];
  char *meta; /* StoreMeta JSON and a newline */
  size_t meta_len;
  uint8_t *bundle;
  size_t bundle_len;
  size_t bytes; /* file bytes (the caps count these) */
};

struct rdv_templates {
  unsigned refs;
  struct tpl *v;
  size_t n;
  char *list;
  size_t list_len;
  char *html; /* the landing page's store section */
};

static void logf_(rdv_tpl_log_fn log, void *ud, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void logf_(rdv_tpl_log_fn log, void *ud, const char *fmt, ...) {
  if (!log)
    return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  log(ud, msg);
}

static void files_free(struct walk *w) {
  for (size_t i = 0; i < w->n; i++) {
    free(w->v[i].rel);
    free(w->v[i].data);
  }
  free(w->v);
  w->v = NULL;
  w->n = w->cap = 0;
}

/* Read the regular file |name| in |dfd| (not following a symlink). */
static int read_file(struct walk *w, int dfd, const char *name, const char *rel) {
  int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    snprintf(w->err, sizeof(w->err), "%.160s: %.80s", rel, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    snprintf(w->err, sizeof(w->err), "%.200s: not a regular file", rel);
    return -1;
  }
  if (w->n >= w->max_files) {
    close(fd);
    snprintf(w->err, sizeof(w->err), "more than %zu files", w->max_files);
    return -1;
  }
  size_t room = w->max_bytes - w->bytes;
  if ((uint64_t)st.st_size > room) {
    close(fd);
    snprintf(w->err, sizeof(w->err), "more than %zu bytes", w->max_bytes);
    return -1;
  }
  size_t want = (size_t)st.st_size;
  uint8_t *buf = malloc(want ? want : 1);
  if (!buf) {
    close(fd);
    snprintf(w->err, sizeof(w->err), "out of memory");
    return -1;
  }
  size_t got = 0;
  for (;;) {
    /* Read one byte past the size to notice a file that grew. */
    if (got == want) {
      uint8_t extra;
      ssize_t r = read(fd, &extra, 1);
      if (r == 0)
        break;
      if (r < 0 && errno == EINTR)
        continue;
      free(buf);
      close(fd);
      snprintf(w->err, sizeof(w->err), "%.160s: %.80s", rel,
               r < 0 ? strerror(errno) : "changed while reading");
      return -1;
    }
    ssize_t r = read(fd, buf + got, want - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      free(buf);
      close(fd);
      snprintf(w->err, sizeof(w->err), "%.160s: %.80s", rel,
               r < 0 ? strerror(errno) : "changed while reading");
      return -1;
    }
    got += (size_t)r;
  }
  close(fd);
  if (w->n == w->cap) {
    size_t nc = w->cap ? w->cap * 2 : 16;
    struct file *nv = realloc(w->v, nc * sizeof(*nv));
    if (!nv) {
      free(buf);
      snprintf(w->err, sizeof(w->err), "out of memory");
      return -1;
    }
    w->v = nv;
    w->cap = nc;
  }
  char *r = strdup(rel);
  if (!r) {
    free(buf);
    snprintf(w->err, sizeof(w->err), "out of memory");
    return -1;
  }
  w->v[w->n++] = (struct file){.rel = r, .data = buf, .len = got, .mtime = (int64_t)st.st_mtime};
  w->bytes += got;
  return 0;
}

/* Collect the regular files under directory |fd| (taken over), |prefix| being its relative path. */
static int walk_dir(struct walk *w, int fd, const char *prefix, int depth) {
  if (depth > RDV_TPL_MAX_DEPTH) {
    close(fd);
    snprintf(w->err, sizeof(w->err), "directories nested deeper than %d", RDV_TPL_MAX_DEPTH);
    return -1;
  }
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    snprintf(w->err, sizeof(w->err), "%.160s: %.80s", prefix[0] ? prefix : ".", strerror(errno));
    return -1;
  }
  int rc = 0;
  struct dirent *e;
  char rel[MAX_REL_PATH];
  while (rc == 0 && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    int n = snprintf(rel, sizeof(rel), "%s%s%s", prefix, prefix[0] ? "/" : "", e->d_name);
    if (n < 0 || (size_t)n >= sizeof(rel)) {
      snprintf(w->err, sizeof(w->err), "path too long");
      rc = -1;
      break;
    }
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      snprintf(w->err, sizeof(w->err), "%.160s: %.80s", rel, strerror(errno));
      rc = -1;
    } else if (S_ISLNK(st.st_mode)) {
      logf_(w->log, w->ud, "templates: %s: skipping symlink %s", w->dir, rel);
    } else if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        snprintf(w->err, sizeof(w->err), "%.160s: %.80s", rel, strerror(errno));
        rc = -1;
      } else {
        rc = walk_dir(w, sub, rel, depth + 1);
      }
    } else if (S_ISREG(st.st_mode)) {
      rc = read_file(w, dirfd(d), e->d_name, rel);
    } else {
      logf_(w->log, w->ud, "templates: %s: skipping %s (not a regular file)", w->dir, rel);
    }
  }
  closedir(d);
  return rc;
}

static int cmp_file(const void *a, const void *b) {
  return strcmp(((const struct file *)a)->rel, ((const struct file *)b)->rel);
}

static void tpl_clear(struct tpl *t) {
  free(t->meta);
  free(t->bundle);
  *t = (struct tpl){{0}};
}

/* Load template |name| under |rootfd| into |*out|. Returns 0, or -1 with the
 * reason in |err| (out of memory is reported the same way). */
static int tpl_load(int rootfd, const char *name, const struct rdv_tpl_limits *lim, rdv_tpl_log_fn log,
                    void *ud, struct tpl *out, char *err, size_t errlen) {
  *out = (struct tpl){{0}};
  struct walk w = {
      .dir = name, .max_files = lim->max_files, .max_bytes = lim->max_template_bytes, .log = log, .ud = ud};
  goop_buf tar, gz;
  goop_buf_init(&tar, 0);
  goop_buf_init(&gz, 0);
  int fd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s", strerror(errno));
    return -1;
  }
  if (walk_dir(&w, fd, "", 0) != 0) {
    snprintf(err, errlen, "%s", w.err);
    goto fail;
  }
  qsort(w.v, w.n, sizeof(*w.v), cmp_file);
  const struct file *mf = NULL;
  for (size_t i = 0; i < w.n; i++)
    if (strcmp(w.v[i].rel, "manifest.json") == 0)
      mf = &w.v[i];
  if (!mf) {
    snprintf(err, errlen, "manifest.json is not a regular file");
    goto fail;
  }
  char *meta = NULL;
  if (rdv_template_meta((const char *)mf->data, mf->len, name, &meta, err, errlen) != 0)
    goto fail;
  size_t ml = strlen(meta);
  out->meta = realloc(meta, ml + 2);
  if (!out->meta) {
    free(meta);
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  out->meta[ml] = '\n';
  out->meta[ml + 1] = '\0';
  out->meta_len = ml + 1;
  char path[RDV_TPL_MAX_DIR_NAME + 1 + MAX_REL_PATH + 1];
  for (size_t i = 0; i < w.n; i++) {
    snprintf(path, sizeof(path), "%s/%s", name, w.v[i].rel);
    int rc = rdv_tar_add(&tar, path, w.v[i].data, w.v[i].len, w.v[i].mtime);
    if (rc != 0) {
      snprintf(err, errlen, rc == -1 ? "%s: name too long for a tar header" : "%s: out of memory",
               w.v[i].rel);
      goto fail;
    }
    /* The tar holds the bytes now. */
    free(w.v[i].data);
    w.v[i].data = NULL;
  }
  if (rdv_tar_end(&tar) != 0 || rdv_gzip_stored(tar.data, tar.len, &gz) != 0) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  goop_buf_free(&tar);
  snprintf(out->dir, sizeof(out->dir), "%s", name);
  out->bundle = goop_buf_steal(&gz, &out->bundle_len);
  out->bytes = w.bytes;
  files_free(&w);
  return 0;
fail:
  files_free(&w);
  goop_buf_free(&tar);
  goop_buf_free(&gz);
  tpl_clear(out);
  return -1;
}

static int append_esc(goop_buf *b, const char *s) {
  for (; *s; s++) {
    const char *e = html_entity(*s);
    int rc = e ? goop_buf_append_str(b, e) : goop_buf_append_byte(b, (uint8_t)*s);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* The store section of the landing page (§9.7): the promo line and one item per template. */
static char *build_html(const struct rdv_templates *t) {
  goop_buf b;
  goop_buf_init(&b, 0);
  char line[256];
  snprintf(line, sizeof(line),
           "<section><h2>Template store</h2><p>%zu ready-made sites available "
           "(<a href=\"/api/templates\">JSON</a>)</p><ul>\n",
           t->n);
  int rc = t->n ? goop_buf_append_str(&b, line) : 0;
  for (size_t i = 0; rc == 0 && i < t->n; i++) {
    json_t *m = json_loadb(t->v[i].meta, t->v[i].meta_len, 0, NULL);
    const char *icon = json_string_value(json_object_get(m, "icon"));
    const char *name = json_string_value(json_object_get(m, "name"));
    const char *desc = json_string_value(json_object_get(m, "description"));
    rc = goop_buf_append_str(&b, "<li>");
    if (rc == 0 && icon && icon[0] && (rc = append_esc(&b, icon)) == 0)
      rc = goop_buf_append_byte(&b, ' ');
    if (rc == 0)
      rc = goop_buf_append_str(&b, "<b>");
    if (rc == 0)
      rc = append_esc(&b, name ? name : t->v[i].dir);
    if (rc == 0)
      rc = goop_buf_append_str(&b, "</b>");
    if (rc == 0 && desc && desc[0] && (rc = goop_buf_append_str(&b, " &mdash; ")) == 0)
      rc = append_esc(&b, desc);
    if (rc == 0) {
      /* dir names are [A-Za-z0-9._-]: nothing to escape */
      snprintf(line, sizeof(line), " (<a href=\"/api/templates/%s/bundle\">%s.tar.gz</a>)</li>\n",
               t->v[i].dir, t->v[i].dir);
      rc = goop_buf_append_str(&b, line);
    }
    json_decref(m);
  }
  if (rc == 0 && t->n)
    rc = goop_buf_append_str(&b, "</ul></section>\n");
  if (rc == 0)
    rc = goop_buf_append_byte(&b, 0);
  if (rc != 0) {
    goop_buf_free(&b);
    return NULL;
  }
  return (char *)goop_buf_steal(&b, NULL);
}

static int cmp_tpl(const void *a, const void *b) {
  return strcmp(((const struct tpl *)a)->dir, ((const struct tpl *)b)->dir);
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void set_free(struct rdv_templates *t) {
  if (!t)
    return;
  for (size_t i = 0; i < t->n; i++)
    tpl_clear(&t->v[i]);
  free(t->v);
  free(t->list);
  free(t->html);
  free(t);
}

/* The sorted subdirectory names of |fd| that hold a manifest.json (malloc'd array of malloc'd names). */
static int scan_root(int fd, char ***ret, size_t *ret_n) {
  *ret = NULL;
  *ret_n = 0;
  int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0)
    return -1;
  DIR *d = fdopendir(dup_fd);
  if (!d) {
    close(dup_fd);
    return -1;
  }
  char **v = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    struct stat st;
    if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
      continue;
    char mp[NAME_MAX + 32];
    snprintf(mp, sizeof(mp), "%s/manifest.json", e->d_name);
    if (fstatat(fd, mp, &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue;
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 16;
      char **nv = realloc(v, nc * sizeof(*nv));
      if (!nv) {
        rc = -1;
        break;
      }
      v = nv;
      cap = nc;
    }
    if (!(v[n] = strdup(e->d_name))) {
      rc = -1;
      break;
    }
    n++;
  }
  closedir(d);
  if (rc != 0) {
    rdv_templates_dirs_free(v, n);
    return -1;
  }
  if (n > 1)
    qsort(v, n, sizeof(*v), cmp_name);
  *ret = v;
  *ret_n = n;
  return 0;
}

int rdv_templates_load(const char *const *dirs, size_t n, const struct rdv_tpl_limits *lim_in,
                       rdv_tpl_log_fn log, void *ud, struct rdv_templates **ret) {
  *ret = NULL;
  struct rdv_tpl_limits lim = {RDV_TPL_MAX_FILES, RDV_TPL_MAX_BYTES, RDV_TPL_MAX_TOTAL};
  if (lim_in) {
    if (lim_in->max_files)
      lim.max_files = lim_in->max_files;
    if (lim_in->max_template_bytes)
      lim.max_template_bytes = lim_in->max_template_bytes;
    if (lim_in->max_total_bytes)
      lim.max_total_bytes = lim_in->max_total_bytes;
  }
  struct rdv_templates *t = calloc(1, sizeof(*t));
  if (!t)
    return -1;
  t->refs = 1;
  size_t cap = 0, total = 0;
  for (size_t r = 0; r < n; r++) {
    const char *root = dirs[r];
    if (!root || !root[0])
      continue;
    int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
      if (errno != ENOENT)
        logf_(log, ud, "templates: %s: %s", root, strerror(errno));
      continue;
    }
    char **names;
    size_t nn;
    if (scan_root(rootfd, &names, &nn) != 0) {
      logf_(log, ud, "templates: %s: %s", root, strerror(errno ? errno : ENOMEM));
      close(rootfd);
      continue;
    }
    for (size_t i = 0; i < nn; i++) {
      const char *name = names[i];
      if (!rdv_template_name_ok(name)) {
        logf_(log, ud, "templates: %s/%s: skipped: bad directory name (letters, digits, . _ -)", root, name);
        continue;
      }
      size_t at = t->n;
      for (size_t k = 0; k < t->n; k++)
        if (strcmp(t->v[k].dir, name) == 0)
          at = k;
      if (at == t->n && t->n >= RDV_TPL_MAX_TEMPLATES) {
        logf_(log, ud, "templates: %s/%s: skipped: more than %d templates", root, name,
              RDV_TPL_MAX_TEMPLATES);
        continue;
      }
      struct tpl nt;
      char err[320];
      if (tpl_load(rootfd, name, &lim, log, ud, &nt, err, sizeof(err)) != 0) {
        logf_(log, ud, "templates: %s/%s: skipped: %s", root, name, err);
        continue;
      }
      size_t old = at < t->n ? t->v[at].bytes : 0;
      if (total - old + nt.bytes > lim.max_total_bytes) {
        logf_(log, ud, "templates: %s/%s: skipped: all templates together would exceed %zu bytes", root, name,
              lim.max_total_bytes);
        tpl_clear(&nt);
        continue;
      }
      if (at == t->n && t->n == cap) {
        size_t nc = cap ? cap * 2 : 8;
        struct tpl *nv = realloc(t->v, nc * sizeof(*nv));
        if (!nv) {
          tpl_clear(&nt);
          rdv_templates_dirs_free(names, nn);
          close(rootfd);
          goto oom;
        }
        t->v = nv;
        cap = nc;
      }
      if (at < t->n)
        tpl_clear(&t->v[at]);
      else
        t->n++;
      t->v[at] = nt;
      total = total - old + nt.bytes;
    }
    rdv_templates_dirs_free(names, nn);
    close(rootfd);
  }
  if (t->n > 1)
    qsort(t->v, t->n, sizeof(*t->v), cmp_tpl);
  goop_buf b;
  goop_buf_init(&b, 0);
  int rc = goop_buf_append_byte(&b, '[');
  for (size_t i = 0; rc == 0 && i < t->n; i++) {
    if (i > 0)
      rc = goop_buf_append_byte(&b, ',');
    if (rc == 0)
      rc = goop_buf_append(&b, t->v[i].meta, t->v[i].meta_len - 1);
  }
  if (rc == 0)
    rc = goop_buf_append(&b, "]\n", 3);
  if (rc != 0) {
    goop_buf_free(&b);
    goto oom;
  }
  t->list = (char *)goop_buf_steal(&b, &t->list_len);
  t->list_len--; /* the NUL stays out */
  if (!(t->html = build_html(t)))
    goto oom;
  logf_(log, ud, "templates: %zu loaded (%zu bytes of files)", t->n, total);
  *ret = t;
  return 0;
oom:
  logf_(log, ud, "templates: out of memory");
  set_free(t);
  return -1;
}

int rdv_templates_reload(struct rdv_templates **cur, const char *const *dirs, size_t n,
                         const struct rdv_tpl_limits *lim, rdv_tpl_log_fn log, void *ud) {
  struct rdv_templates *t;
  if (rdv_templates_load(dirs, n, lim, log, ud, &t) != 0)
    return -1;
  rdv_templates_unref(*cur);
  *cur = t;
  return 0;
}

struct rdv_templates *rdv_templates_ref(struct rdv_templates *t) {
  if (t)
    t->refs++;
  return t;
}

void rdv_templates_unref(struct rdv_templates *t) {
  if (t && --t->refs == 0)
    set_free(t);
}

size_t rdv_templates_count(const struct rdv_templates *t) {
  return t ? t->n : 0;
}

const char *rdv_templates_list_json(const struct rdv_templates *t, size_t *ret_len) {
  if (!t || !t->list) {
    *ret_len = 3;
    return "[]\n";
  }
  *ret_len = t->list_len;
  return t->list;
}

const char *rdv_templates_html(const struct rdv_templates *t) {
  return t && t->html ? t->html : "";
}

static const struct tpl *find(const struct rdv_templates *t, const char *dir) {
  if (!t)
    return NULL;
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(dir, t->v[mid].dir);
    if (c == 0)
      return &t->v[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

int rdv_templates_get(const struct rdv_templates *t, const char *dir, const char **ret_meta,
                      size_t *ret_meta_len, const uint8_t **ret_bundle, size_t *ret_bundle_len) {
  const struct tpl *p = find(t, dir);
  if (!p)
    return -1;
  if (ret_meta)
    *ret_meta = p->meta;
  if (ret_meta_len)
    *ret_meta_len = p->meta_len;
  if (ret_bundle)
    *ret_bundle = p->bundle;
  if (ret_bundle_len)
    *ret_bundle_len = p->bundle_len;
  return 0;
}

void rdv_templates_dirs_free(char **dirs, size_t n) {
  if (!dirs)
    return;
  for (size_t i = 0; i < n; i++)
    free(dirs[i]);
  free(dirs);
}

int rdv_templates_config_dirs(const goop_config *cfg, char ***ret, size_t *ret_n) {
  *ret = NULL;
  *ret_n = 0;
  size_t extra = goop_config_get_strv_len(cfg, "presence.templates_dirs");
  char **v = calloc(extra + 1, sizeof(*v));
  if (!v)
    return -1;
  size_t n = 0;
  const char *td = goop_config_get_string(cfg, "presence.templates_dir");
  if (td && td[0]) {
    if (!(v[n] = goop_config_resolve_path(cfg, "presence.templates_dir")))
      goto fail;
    n++;
  }
  for (size_t i = 0; i < extra; i++) {
    const char *d = goop_config_get_strv(cfg, "presence.templates_dirs", i);
    if (!d || !d[0])
      continue;
    if (!(v[n] = goop__path_join(goop_config_base_dir(cfg), d)))
      goto fail;
    n++;
  }
  *ret = v;
  *ret_n = n;
  return 0;
fail:
  rdv_templates_dirs_free(v, n);
  return -1;
}

/* ---- HTTP ---- */

#define PREFIX "/api/templates"
#define PREFIX_LEN (sizeof(PREFIX) - 1)

bool rdv_templates_match(const char *url) {
  return strncmp(url, PREFIX, PREFIX_LEN) == 0 && (url[PREFIX_LEN] == '\0' || url[PREFIX_LEN] == '/');
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

size_t rdv_templates_unescape(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls;
  (void)c;
  char *o = s;
  for (const char *p = s; *p;) {
    int hi, lo;
    if (p[0] == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0 && (hi << 4 | lo) != '/') {
      *o++ = (char)(hi << 4 | lo);
      p += 3;
    } else {
      *o++ = *p++;
    }
  }
  *o = '\0';
  return (size_t)(o - s);
}

static bool method_ok(const char *m) {
  return strcmp(m, MHD_HTTP_METHOD_GET) == 0 || strcmp(m, MHD_HTTP_METHOD_HEAD) == 0;
}

enum rdv_tpl_route rdv_templates_route(const struct rdv_templates *t, const char *url, const char *method,
                                       char *dir) {
  if (!rdv_templates_match(url))
    return RDV_TPL_NOT_FOUND;
  const char *p = url + PREFIX_LEN;
  if (*p == '\0')
    return method_ok(method) ? RDV_TPL_LIST : RDV_TPL_BAD_METHOD;
  p++; /* '/' */
  const char *slash = strchr(p, '/');
  if (!slash || slash == p || (size_t)(slash - p) > RDV_TPL_MAX_DIR_NAME)
    return RDV_TPL_NOT_FOUND;
  const char *leaf = slash + 1;
  enum rdv_tpl_route r;
  if (strcmp(leaf, "manifest.json") == 0)
    r = RDV_TPL_MANIFEST;
  else if (strcmp(leaf, "bundle") == 0)
    r = RDV_TPL_BUNDLE;
  else
    return RDV_TPL_NOT_FOUND;
  memcpy(dir, p, (size_t)(slash - p));
  dir[slash - p] = '\0';
  if (!rdv_template_name_ok(dir) || !find(t, dir))
    return RDV_TPL_NOT_FOUND;
  return method_ok(method) ? r : RDV_TPL_BAD_METHOD;
}

static void release_set(void *cls) {
  rdv_templates_unref(cls);
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *text) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  if (!r)
    return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

enum MHD_Result rdv_templates_serve(struct rdv_templates *t, struct MHD_Connection *c, const char *url,
                                    const char *method) {
  char dir[RDV_TPL_MAX_DIR_NAME + 1];
  enum rdv_tpl_route route = rdv_templates_route(t, url, method, dir);
  if (route == RDV_TPL_NOT_FOUND)
    return send_text(c, MHD_HTTP_NOT_FOUND, "404 page not found\n");
  if (route == RDV_TPL_BAD_METHOD)
    return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
  const void *body;
  size_t len;
  const char *ctype = "application/json; charset=utf-8";
  if (route == RDV_TPL_LIST) {
    body = rdv_templates_list_json(t, &len);
  } else {
    const char *meta = NULL;
    const uint8_t *bundle = NULL;
    size_t meta_len = 0, bundle_len = 0;
    (void)rdv_templates_get(t, dir, &meta, &meta_len, &bundle, &bundle_len);
    body = route == RDV_TPL_MANIFEST ? (const void *)meta : (const void *)bundle;
    len = route == RDV_TPL_MANIFEST ? meta_len : bundle_len;
    if (route == RDV_TPL_BUNDLE)
      ctype = "application/gzip";
  }
  /* The response points into the set; it holds a reference until MHD is done with it. */
  struct MHD_Response *r = t ? MHD_create_response_from_buffer_with_free_callback_cls(
                                   len, (void *)body, release_set, rdv_templates_ref(t))
                             : MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
  if (!r) {
    rdv_templates_unref(t);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  if (route == RDV_TPL_BUNDLE) {
    char cd[RDV_TPL_MAX_DIR_NAME + 48];
    snprintf(cd, sizeof(cd), "attachment; filename=\"%s.tar.gz\"", dir);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, cd);
  }
  enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
  MHD_destroy_response(r);
  return ret;
}
