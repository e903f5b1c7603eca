/*
 * Site files: request paths to files under the site root (path tricks,
 * symlinks, lua/, directories) and MIME types. White-box: the site object is
 * built by hand with only its site root, so no database is involved.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "site/site-internal.h"
#include "tap.h"

static char tmp[256];   /* the temporary directory */
static char root[1024]; /* tmp/site, resolved */
static goop_site site;

static void put(const char *rel, const char *content) {
  char p[PATH_MAX];
  snprintf(p, sizeof(p), "%s/%s", root, rel);
  FILE *f = fopen(p, "w");
  if (f) {
    fputs(content, f);
    fclose(f);
  }
}

static void setup(void) {
  snprintf(tmp, sizeof(tmp), "/tmp/goop-site-files-XXXXXX");
  if (!mkdtemp(tmp))
    abort();
  char p[PATH_MAX];
  snprintf(p, sizeof(p), "%s/site", tmp);
  mkdir(p, 0700);
  char real[PATH_MAX];
  if (!realpath(p, real) || strlen(real) >= sizeof(root))
    abort();
  memcpy(root, real, strlen(real) + 1);
  snprintf(p, sizeof(p), "%s/lua", root);
  mkdir(p, 0700);
  snprintf(p, sizeof(p), "%s/css", root);
  mkdir(p, 0700);
  snprintf(p, sizeof(p), "%s/LUA", root);
  mkdir(p, 0700);
  put("index.html", "<h1>hi</h1>");
  put("css/style.css", "body{}");
  put("lua/x.lua", "return 1");
  put("LUA/x", "upper");
  put("a b.txt", "space");
  snprintf(p, sizeof(p), "%s/secret", tmp);
  FILE *f = fopen(p, "w");
  if (f) {
    fputs("secret", f);
    fclose(f);
  }
  /* Symlinks: one leaving the root, one staying inside, one into lua/. */
  char l[PATH_MAX];
  snprintf(l, sizeof(l), "%s/out.txt", root);
  if (symlink(p, l) != 0)
    abort();
  snprintf(l, sizeof(l), "%s/in.css", root);
  if (symlink("css/style.css", l) != 0)
    abort();
  snprintf(l, sizeof(l), "%s/sneaky", root);
  if (symlink("lua/x.lua", l) != 0)
    abort();
  snprintf(l, sizeof(l), "%s/updir", root);
  if (symlink("..", l) != 0)
    abort();
  site.site_root = root;
}

static void teardown(void) {
  char cmd[sizeof(tmp) + 16];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
  if (system(cmd) != 0)
    fprintf(stderr, "# could not remove %s\n", tmp);
}

/* Expected result of one request path: 0 with the file (relative to root), or an error. */
static void expect(const char *req, int want, const char *want_rel) {
  char *out = NULL;
  int rc = goop_site_resolve_path(&site, req, &out);
  tap__cur = req;
  CHECK_INT_EQ(rc, want);
  if (rc == 0 && want == 0 && want_rel) {
    char full[PATH_MAX];
    snprintf(full, sizeof(full), "%s/%s", root, want_rel);
    CHECK_STR_EQ(out, full);
  }
  if (rc != 0)
    CHECK(out == NULL);
  free(out);
}

static void test_paths(void) {
  expect("", 0, "index.html");
  expect("/", 0, "index.html");
  expect("/index.html", 0, "index.html");
  expect("index.html", 0, "index.html");
  expect("//css///style.css", 0, "css/style.css");
  expect("/./css/./style.css", 0, "css/style.css");
  expect("/css/%73tyle.css", 0, "css/style.css");
  expect("/a%20b.txt", 0, "a b.txt");
  expect("/a b.txt", 0, "a b.txt");
  expect("/in.css", 0, "css/style.css");
  expect("/LUA/x", 0, "LUA/x"); /* case-sensitive, like Goop2 */
  /* traversal, plain and encoded */
  expect("../", GOOP_EFORBIDDEN, NULL);
  expect("..", GOOP_EFORBIDDEN, NULL);
  expect("/../etc/passwd", GOOP_EFORBIDDEN, NULL);
  expect("/css/../../secret", GOOP_EFORBIDDEN, NULL);
  expect("/css/../index.html", GOOP_EFORBIDDEN, NULL);
  expect("%2e%2e/%2e%2e/", GOOP_EFORBIDDEN, NULL);
  expect("%2E%2e%2fetc", GOOP_EFORBIDDEN, NULL);
  expect("/%2e%2e%2fsecret", GOOP_EFORBIDDEN, NULL);
  expect("..%5c..", GOOP_EFORBIDDEN, NULL);
  expect("a\\b", GOOP_EFORBIDDEN, NULL);
  expect("/css%5cstyle.css", GOOP_EFORBIDDEN, NULL);
  expect("/index.html%00.png", GOOP_EFORBIDDEN, NULL);
  expect("/index%0a.html", GOOP_EFORBIDDEN, NULL);
  expect("/index\t.html", GOOP_EFORBIDDEN, NULL);
  expect("/index\x7f.html", GOOP_EFORBIDDEN, NULL);
  expect("/bad%zzescape", GOOP_EFORBIDDEN, NULL);
  expect("/bad%2", GOOP_EFORBIDDEN, NULL);
  expect("/bad%", GOOP_EFORBIDDEN, NULL);
  /* %25 decodes once only */
  expect("/%252e%252e/secret", GOOP_ENOENT, NULL);
  /* absolute paths stay under the root */
  expect("/abs/path", GOOP_ENOENT, NULL);
  expect("/etc/passwd", GOOP_ENOENT, NULL);
  /* lua/ is never served */
  expect("lua/x.lua", GOOP_EFORBIDDEN, NULL);
  expect("/lua/x.lua", GOOP_EFORBIDDEN, NULL);
  expect("/lua", GOOP_EFORBIDDEN, NULL);
  expect("/lua/", GOOP_EFORBIDDEN, NULL);
  expect("/./lua//x.lua", GOOP_EFORBIDDEN, NULL);
  expect("/%6cua/x.lua", GOOP_EFORBIDDEN, NULL);
  expect("/sneaky", GOOP_EFORBIDDEN, NULL); /* symlink into lua/ */
  expect("/luax", GOOP_ENOENT, NULL);
  /* symlinks leaving the root */
  expect("/out.txt", GOOP_EFORBIDDEN, NULL);
  expect("/updir/secret", GOOP_EFORBIDDEN, NULL);
  /* directories and missing files */
  expect("/css", GOOP_ENOENT, NULL);
  expect("/css/", GOOP_ENOENT, NULL);
  expect("/missing.html", GOOP_ENOENT, NULL);
  expect("/css/missing/deeper.html", GOOP_ENOENT, NULL);
  /* very long */
  char *lng = malloc(20000);
  memset(lng, 'a', 19999);
  lng[19999] = '\0';
  expect(lng, GOOP_EFORBIDDEN, NULL);
  memset(lng, 'a', 5000);
  lng[0] = '/';
  lng[5000] = '\0';
  expect(lng, GOOP_ENOENT, NULL);
  free(lng);
}

static void test_request_line(void) {
  char *p = NULL;
  CHECK_INT_EQ(goop__site_parse_request("GET /a.html\n", 12, &p), 0);
  CHECK_STR_EQ(p, "/a.html");
  free(p);
  p = NULL;
  CHECK_INT_EQ(goop__site_parse_request("  GET   /x y.html \r\n", 20, &p), 0);
  CHECK_STR_EQ(p, "/x y.html");
  free(p);
  p = NULL;
  CHECK_INT_EQ(goop__site_parse_request("GET\n", 4, &p), GOOP_EINVAL);
  /* trimmed first, as Goop2 does: "GET " alone is not a request */
  CHECK_INT_EQ(goop__site_parse_request("GET \n", 5, &p), GOOP_EINVAL);
  CHECK_INT_EQ(goop__site_parse_request("POST /a\n", 8, &p), GOOP_EINVAL);
  CHECK_INT_EQ(goop__site_parse_request("get /a\n", 7, &p), GOOP_EINVAL);
  CHECK_INT_EQ(goop__site_parse_request("", 0, &p), GOOP_EINVAL);
  CHECK_INT_EQ(goop__site_parse_request("GET /a\0b", 8, &p), GOOP_EFORBIDDEN);
  char *big = malloc(GOOP__SITE_MAX_LINE + 10);
  memcpy(big, "GET /", 5);
  memset(big + 5, 'a', GOOP__SITE_MAX_LINE + 5);
  CHECK_INT_EQ(goop__site_parse_request(big, GOOP__SITE_MAX_LINE + 10, &p), GOOP_EINVAL);
  free(big);
  CHECK(p == NULL);

  const char *err = NULL;
  CHECK_INT_EQ(goop__site_answer_request(&site, "GET /\n", 6, &p, &err), 0);
  free(p);
  p = NULL;
  CHECK_INT_EQ(goop__site_answer_request(&site, "GET /nope\n", 10, &p, &err), GOOP_ENOENT);
  CHECK_STR_EQ(err, "ERR not found\n");
  CHECK_INT_EQ(goop__site_answer_request(&site, "GET /../x\n", 10, &p, &err), GOOP_EFORBIDDEN);
  CHECK_STR_EQ(err, "ERR forbidden\n");
  CHECK_INT_EQ(goop__site_answer_request(&site, "HEAD /\n", 7, &p, &err), GOOP_EINVAL);
  CHECK_STR_EQ(err, "ERR bad request\n");
  goop_site gone = {0};
  char missing[sizeof(tmp) + 32];
  snprintf(missing, sizeof(missing), "%s/no-such-root", tmp);
  gone.site_root = missing;
  CHECK_INT_EQ(goop__site_answer_request(&gone, "GET /\n", 6, &p, &err), GOOP_ENOTSUP);
  CHECK_STR_EQ(err, "ERR site disabled\n");
  CHECK(p == NULL);
}

static void test_mime(void) {
  static const struct {
    const char *name, *mime;
  } t[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"a/b/page.HTM", "text/html; charset=utf-8"},
      {"s.css", "text/css; charset=utf-8"},
      {"app.js", "text/javascript; charset=utf-8"},
      {"m.mjs", "text/javascript; charset=utf-8"},
      {"d.json", "application/json"},
      {"p.png", "image/png"},
      {"p.PNG", "image/png"},
      {"j.jpg", "image/jpeg"},
      {"j.jpeg", "image/jpeg"},
      {"g.gif", "image/gif"},
      {"v.svg", "image/svg+xml"},
      {"w.webp", "image/webp"},
      {"favicon.ico", "image/vnd.microsoft.icon"},
      {"r.txt", "text/plain; charset=utf-8"},
      {"m.wasm", "application/wasm"},
      {"f.woff", "font/woff"},
      {"f.woff2", "font/woff2"},
      {"a.mp3", "audio/mpeg"},
      {"v.mp4", "video/mp4"},
      {"v.webm", "video/webm"},
      {"d.pdf", "application/pdf"},
      {"x.xml", "text/xml; charset=utf-8"},
      {"README.md", "text/markdown; charset=utf-8"},
      {"noext", "application/octet-stream"},
      {"dir.d/noext", "application/octet-stream"},
      {"trailing.", "application/octet-stream"},
      {".hidden", "application/octet-stream"},
      {"x.unknownext", "application/octet-stream"},
      {"", "application/octet-stream"},
  };
  tap__cur = "mime";
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    CHECK_STR_EQ(goop_site_mime_type(t[i].name), t[i].mime);
  CHECK_STR_EQ(goop_site_mime_type(NULL), "application/octet-stream");
}

int main(void) {
  setup();
  RUN(test_paths);
  RUN(test_request_line);
  RUN(test_mime);
  teardown();
  return tap_done();
}
