/* Site files: request paths to files under the site root, MIME types, and the
 * /goop/site/1.0.0 request line parser. No network I/O here. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "site-internal.h"

/* ---- request line ------------------------------------------------------------ */

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

int goop__site_parse_request(const char *line, size_t len, char **ret_path) {
  goop_return_val_if_fail(line || len == 0, GOOP_EINVAL);
  goop_return_val_if_fail(ret_path, GOOP_EINVAL);
  if (len > GOOP__SITE_MAX_LINE)
    return GOOP_EINVAL;
  size_t a = 0, b = len;
  while (a < b && is_space(line[a]))
    a++;
  while (b > a && is_space(line[b - 1]))
    b--;
  if (b - a < 4 || memcmp(line + a, "GET ", 4) != 0)
    return GOOP_EINVAL;
  a += 4;
  while (a < b && is_space(line[a]))
    a++;
  if (memchr(line + a, '\0', b - a))
    return GOOP_EFORBIDDEN;
  char *p = malloc(b - a + 1);
  if (!p)
    return GOOP_ENOMEM;
  memcpy(p, line + a, b - a);
  p[b - a] = '\0';
  *ret_path = p;
  return 0;
}

/* ---- paths --------------------------------------------------------------------- */

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decode once into |out| (at least strlen(in) + 1 bytes). Returns the
 * decoded length or -1 for an invalid escape. NUL bytes may appear in the output. */
static long percent_decode(const char *in, char *out) {
  size_t o = 0;
  for (size_t i = 0; in[i]; i++) {
    if (in[i] != '%') {
      out[o++] = in[i];
      continue;
    }
    int h = hexval((unsigned char)in[i + 1]);
    int l = h < 0 ? -1 : hexval((unsigned char)in[i + 2]);
    if (h < 0 || l < 0)
      return -1;
    out[o++] = (char)(h * 16 + l);
    i += 2;
  }
  out[o] = '\0';
  return (long)o;
}

/* true if |rel| (relative, cleaned) is "lua" or under "lua/". */
static bool is_lua(const char *rel) {
  return strncmp(rel, "lua", 3) == 0 && (rel[3] == '\0' || rel[3] == '/');
}

/* Clean the decoded path into a relative path without ".", "..", or empty
 * components. Returns 0, GOOP_EFORBIDDEN (a ".." component) or GOOP_ENOMEM. */
static int clean_relative(const char *dec, char **ret) {
  size_t n = strlen(dec);
  char *out = malloc(n + sizeof("index.html"));
  if (!out)
    return GOOP_ENOMEM;
  size_t o = 0;
  const char *p = dec;
  while (*p) {
    while (*p == '/')
      p++;
    const char *e = p;
    while (*e && *e != '/')
      e++;
    size_t l = (size_t)(e - p);
    if (l == 2 && p[0] == '.' && p[1] == '.') {
      free(out);
      return GOOP_EFORBIDDEN;
    }
    if (l > 0 && !(l == 1 && p[0] == '.')) {
      if (o)
        out[o++] = '/';
      memcpy(out + o, p, l);
      o += l;
    }
    p = e;
  }
  if (o == 0) {
    memcpy(out, "index.html", sizeof("index.html"));
    o = sizeof("index.html") - 1;
  }
  out[o] = '\0';
  *ret = out;
  return 0;
}

int goop_site_resolve_path(const goop_site *site, const char *request_path, char **ret_path) {
  goop_return_val_if_fail(site && site->site_root && request_path && ret_path, GOOP_EINVAL);
  size_t n = strlen(request_path);
  if (n > GOOP__SITE_MAX_LINE)
    return GOOP_EFORBIDDEN;
  char *dec = malloc(n + 1);
  if (!dec)
    return GOOP_ENOMEM;
  int rc = GOOP_EFORBIDDEN;
  char *rel = NULL, *joined = NULL;
  long dlen = percent_decode(request_path, dec);
  if (dlen < 0)
    goto out;
  for (long i = 0; i < dlen; i++) {
    unsigned char c = (unsigned char)dec[i];
    if (c < 0x20 || c == 0x7f || c == '\\')
      goto out;
  }
  rc = clean_relative(dec, &rel);
  if (rc)
    goto out;
  rc = GOOP_EFORBIDDEN;
  if (is_lua(rel))
    goto out;
  char root[PATH_MAX];
  if (!realpath(site->site_root, root)) {
    rc = GOOP_ENOENT;
    goto out;
  }
  rc = GOOP_ENOMEM;
  joined = goop__path_join(root, rel);
  if (!joined)
    goto out;
  char real[PATH_MAX];
  if (!realpath(joined, real)) {
    /* A dangling symlink or a missing file: not found, unless a component
     * we could resolve already leaves the root (not distinguishable here
     * without more syscalls; nothing is served either way). */
    rc = errno == ENOMEM ? GOOP_ENOMEM : GOOP_ENOENT;
    goto out;
  }
  size_t rl = strlen(root);
  bool inside = strncmp(real, root, rl) == 0 && (real[rl] == '/' || (rl == 1 && root[0] == '/'));
  if (!inside) {
    rc = strcmp(real, root) == 0 ? GOOP_ENOENT : GOOP_EFORBIDDEN;
    goto out;
  }
  const char *real_rel = real + rl + (rl == 1 ? 0 : 1);
  if (is_lua(real_rel)) {
    rc = GOOP_EFORBIDDEN;
    goto out;
  }
  struct stat st;
  if (stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
    rc = GOOP_ENOENT;
    goto out;
  }
  char *r = strdup(real);
  if (!r) {
    rc = GOOP_ENOMEM;
    goto out;
  }
  *ret_path = r;
  rc = 0;
out:
  free(joined);
  free(rel);
  free(dec);
  return rc;
}

int goop__site_answer_request(const goop_site *site, const char *line, size_t len, char **ret_path,
                              const char **ret_err) {
  goop_return_val_if_fail(site && ret_path && ret_err, GOOP_EINVAL);
  char *path = NULL;
  int rc = goop__site_parse_request(line, len, &path);
  if (rc == GOOP_ENOMEM)
    return rc;
  if (rc) {
    *ret_err = rc == GOOP_EFORBIDDEN ? "ERR forbidden\n" : "ERR bad request\n";
    return rc;
  }
  struct stat st;
  if (stat(site->site_root, &st) != 0 || !S_ISDIR(st.st_mode)) {
    free(path);
    *ret_err = "ERR site disabled\n";
    return GOOP_ENOTSUP;
  }
  char *file = NULL;
  rc = goop_site_resolve_path(site, path, &file);
  free(path);
  if (rc == 0) {
    *ret_path = file;
    return 0;
  }
  if (rc == GOOP_ENOMEM)
    return rc;
  *ret_err = rc == GOOP_EFORBIDDEN ? "ERR forbidden\n" : "ERR not found\n";
  return rc;
}

/* ---- MIME ------------------------------------------------------------------------ */

static const struct {
  const char *ext;
  const char *mime;
} mime_table[] = {
    {"avif", "image/avif"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"gif", "image/gif"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/vnd.microsoft.icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"ogg", "audio/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/x-wav"},
    {"webm", "video/webm"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "text/xml; charset=utf-8"},
    {"zip", "application/zip"},
};

const char *goop_site_mime_type(const char *path) {
  static const char fallback[] = "application/octet-stream";
  if (!path)
    return fallback;
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  const char *dot = strrchr(base, '.');
  if (!dot || !dot[1])
    return fallback;
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(mime_table); i++)
    if (strcasecmp(dot + 1, mime_table[i].ext) == 0)
      return mime_table[i].mime;
  return fallback;
}
