/*
 * Unit tests of the rendezvous template store (cli/rendezvous/rdv-templates.c):
 * CRC-32 vectors, the stored-deflate gzip writer (decoded by hand here), ustar
 * headers, manifest validation, loading with caps, overrides and symlinks,
 * routing, and reload keeping a referenced old set alive.
 */
#include "rendezvous/rdv-templates.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/goop-test-rdvtpl-XXXXXX";

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Decode a gzip member made of stored blocks; returns the payload length or -1. */
static long gunzip_stored(const uint8_t *g, size_t n, uint8_t *out, size_t outcap) {
  if (n < 18 || g[0] != 0x1f || g[1] != 0x8b || g[2] != 8 || g[3] != 0)
    return -1;
  size_t at = 10, o = 0;
  for (;;) {
    if (at + 5 > n)
      return -1;
    uint8_t h = g[at];
    if ((h & 6) != 0) /* BTYPE must be 00 */
      return -1;
    unsigned len = g[at + 1] | g[at + 2] << 8, nlen = g[at + 3] | g[at + 4] << 8;
    if ((len ^ 0xffff) != nlen || at + 5 + len > n || o + len > outcap)
      return -1;
    memcpy(out + o, g + at + 5, len);
    o += len;
    at += 5 + len;
    if (h & 1)
      break;
  }
  if (at + 8 != n)
    return -1;
  if (le32(g + at) != rdv_crc32(0, out, o) || le32(g + at + 4) != (uint32_t)o)
    return -1;
  return (long)o;
}

static void test_crc32(void) {
  CHECK_INT_EQ(rdv_crc32(0, "", 0), 0);
  CHECK_INT_EQ(rdv_crc32(0, "123456789", 9), 0xCBF43926u);
  CHECK_INT_EQ(rdv_crc32(0, "a", 1), 0xE8B7BE43u);
  CHECK_INT_EQ(rdv_crc32(0, "The quick brown fox jumps over the lazy dog", 43), 0x414FA339u);
  uint32_t c = rdv_crc32(0, "1234", 4);
  CHECK_INT_EQ(rdv_crc32(c, "56789", 5), 0xCBF43926u);
  uint8_t z[32] = {0};
  CHECK_INT_EQ(rdv_crc32(0, z, sizeof(z)), 0x190A55ADu);
}

static void test_gzip(void) {
  static const size_t sizes[] = {0, 1, 100, 65534, 65535, 65536, 131070, 131071, 200000};
  size_t max = 200000;
  uint8_t *in = malloc(max), *out = malloc(max + 1);
  for (size_t i = 0; i < max; i++)
    in[i] = (uint8_t)(i * 131 + (i >> 9));
  for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
    size_t n = sizes[k];
    goop_buf b;
    goop_buf_init(&b, 0);
    CHECK_INT_EQ(rdv_gzip_stored(in, n, &b), 0);
    size_t blocks = n == 0 ? 1 : (n + 65534) / 65535;
    CHECK_INT_EQ(b.len, 10 + blocks * 5 + n + 8);
    CHECK_INT_EQ(b.data[9], 3); /* OS = Unix */
    long got = gunzip_stored(b.data, b.len, out, max + 1);
    CHECK_INT_EQ(got, (long)n);
    CHECK(got >= 0 && memcmp(in, out, n) == 0);
    goop_buf_free(&b);
  }
  /* The exact bytes for "123456789". */
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(rdv_gzip_stored("123456789", 9, &b), 0);
  static const uint8_t want[] = {0x1f, 0x8b, 8,    0,    0,    0,    0,   0,   0,   3,   1,
                                 9,    0,    0xf6, 0xff, '1',  '2',  '3', '4', '5', '6', '7',
                                 '8',  '9',  0x26, 0x39, 0xf4, 0xcb, 9,   0,   0,   0};
  CHECK_INT_EQ(b.len, sizeof(want));
  CHECK(b.len == sizeof(want) && memcmp(b.data, want, sizeof(want)) == 0);
  goop_buf_free(&b);
  /* A buffer limit is reported, not overrun. */
  goop_buf_init(&b, 16);
  CHECK(rdv_gzip_stored(in, 100, &b) != 0);
  goop_buf_free(&b);
  free(in);
  free(out);
}

static unsigned tar_sum(const uint8_t *h) {
  unsigned s = 0;
  for (size_t i = 0; i < 512; i++)
    s += (i >= 148 && i < 156) ? ' ' : h[i];
  return s;
}

static void test_tar(void) {
  goop_buf b;
  goop_buf_init(&b, 0);
  CHECK_INT_EQ(rdv_tar_add(&b, "blog/index.html", "hello", 5, 1700000000), 0);
  CHECK_INT_EQ(b.len, 1024);
  CHECK_STR_EQ((const char *)b.data, "blog/index.html");
  CHECK_STR_EQ((const char *)b.data + 100, "0000644");
  CHECK_STR_EQ((const char *)b.data + 124, "00000000005");
  CHECK_INT_EQ(b.data[156], '0');
  CHECK(memcmp(b.data + 257,
               "ustar\0"
               "00",
               8) == 0);
  CHECK_INT_EQ(strtoul((const char *)b.data + 148, NULL, 8), tar_sum(b.data));
  CHECK(memcmp(b.data + 512, "hello", 5) == 0);
  /* Names over 100 bytes go into prefix + name. */
  char longname[240];
  memset(longname, 'a', sizeof(longname));
  memcpy(longname, "t/", 2);
  longname[150] = '/';
  longname[sizeof(longname) - 1] = '\0';
  goop_buf_reset(&b);
  CHECK_INT_EQ(rdv_tar_add(&b, longname, "", 0, 0), 0);
  CHECK_INT_EQ(b.len, 512);
  char joined[300];
  snprintf(joined, sizeof(joined), "%.155s/%.100s", (const char *)b.data + 345, (const char *)b.data);
  CHECK_STR_EQ(joined, longname);
  /* A last component over 100 bytes does not fit. */
  char nofit[160];
  memset(nofit, 'b', sizeof(nofit));
  memcpy(nofit, "t/", 2);
  nofit[sizeof(nofit) - 1] = '\0';
  CHECK_INT_EQ(rdv_tar_add(&b, nofit, "", 0, 0), -1);
  CHECK_INT_EQ(rdv_tar_add(&b, "", "", 0, 0), -1);
  CHECK_INT_EQ(rdv_tar_end(&b), 0);
  CHECK_INT_EQ(b.len, 512 + 1024);
  goop_buf_free(&b);
}

static void test_names(void) {
  CHECK(rdv_template_name_ok("blog"));
  CHECK(rdv_template_name_ok("hello-store_2.v1"));
  CHECK(!rdv_template_name_ok(""));
  CHECK(!rdv_template_name_ok(".hidden"));
  CHECK(!rdv_template_name_ok(".."));
  CHECK(!rdv_template_name_ok("a b"));
  CHECK(!rdv_template_name_ok("a/b"));
  CHECK(!rdv_template_name_ok("caf\xc3\xa9"));
  char big[80];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  CHECK(!rdv_template_name_ok(big));
}

static void meta_ok(const char *in, const char *want) {
  char *out = NULL, err[256] = "";
  int rc = rdv_template_meta(in, strlen(in), "d", &out, err, sizeof(err));
  CHECK_INT_EQ(rc, 0);
  if (rc != 0)
    printf("#   %s\n", err);
  CHECK_STR_EQ(out, want);
  free(out);
}

static void meta_bad(const char *in, const char *want_err) {
  char *out = NULL, err[256] = "";
  CHECK_INT_EQ(rdv_template_meta(in, strlen(in), "d", &out, err, sizeof(err)), -1);
  CHECK(out == NULL);
  CHECK(strstr(err, want_err) != NULL);
  if (!strstr(err, want_err))
    printf("#   got \"%s\"\n", err);
}

static void test_meta(void) {
  meta_ok(
      "{\"name\":\"Blog\",\"description\":\"A blog\",\"category\":\"content\",\"icon\":\"x\","
      "\"tables\":{\"posts\":{\"insert_policy\":\"owner\"},\"comments\":{\"insert_policy\":\"email\"}},"
      "\"dir\":\"other\",\"extra\":[1,2]}",
      "{\"name\":\"Blog\",\"description\":\"A blog\",\"category\":\"content\",\"icon\":\"x\",\"dir\":\"d\","
      "\"source\":\"store\",\"tables\":{\"comments\":{\"insert_policy\":\"email\"},\"posts\":{\"insert_"
      "policy\":\"owner\"}}}");
  meta_ok("{\"name\":\"N\"}", "{\"name\":\"N\",\"description\":\"\",\"category\":\"\",\"icon\":\"\",\"dir\":"
                              "\"d\",\"source\":\"store\"}");
  meta_ok("{\"name\":\"N\",\"tables\":{}}", "{\"name\":\"N\",\"description\":\"\",\"category\":\"\",\"icon\":"
                                            "\"\",\"dir\":\"d\",\"source\":\"store\"}");
  meta_ok("{\"name\":\"N\",\"tables\":{\"t\":{\"insert_policy\":\"public\",\"x\":1},\"u\":{\"insert_policy\":"
          "\"open\"}}}",
          "{\"name\":\"N\",\"description\":\"\",\"category\":\"\",\"icon\":\"\",\"dir\":\"d\",\"source\":"
          "\"store\","
          "\"tables\":{\"t\":{\"insert_policy\":\"public\"},\"u\":{\"insert_policy\":\"open\"}}}");
  meta_bad("", "bad JSON");
  meta_bad("{\"name\":", "bad JSON");
  meta_bad("[]", "not a JSON object");
  meta_bad("{}", "name: required");
  meta_bad("{\"name\":\"\"}", "name: required");
  meta_bad("{\"name\":1}", "name: expected a string");
  meta_bad("{\"name\":\"a\",\"icon\":[]}", "icon: expected a string");
  meta_bad("{\"name\":\"a\",\"name\":\"b\"}", "bad JSON");
  meta_bad("{\"name\":\"a\\u0000b\"}", "bad JSON");
  meta_bad("{\"name\":\"a\",\"tables\":[]}", "tables: expected an object");
  meta_bad("{\"name\":\"a\",\"tables\":{\"t\":{}}}", "insert_policy");
  meta_bad("{\"name\":\"a\",\"tables\":{\"t\":\"owner\"}}", "insert_policy");
  meta_bad("{\"name\":\"a\",\"tables\":{\"t\":{\"insert_policy\":\"admin\"}}}", "insert_policy");
  meta_bad("{\"name\":\"a\",\"tables\":{\"bad name\":{\"insert_policy\":\"open\"}}}", "bad table name");
  meta_bad("{\"name\":\"a\",\"tables\":{\"1t\":{\"insert_policy\":\"open\"}}}", "bad table name");
  /* Oversized manifests are refused before parsing. */
  size_t n = RDV_TPL_MAX_MANIFEST + 1;
  char *big = malloc(n + 1);
  memset(big, ' ', n);
  memcpy(big, "{\"name\":\"a\"}", 12);
  big[n] = '\0';
  meta_bad(big, "larger than");
  free(big);
}

/* ---- loading from disk ---- */

static void put(const char *rel, const char *content) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
  for (char *p = path + strlen(tmpdir) + 1; *p; p++) {
    if (*p == '/') {
      *p = '\0';
      mkdir(path, 0755);
      *p = '/';
    }
  }
  FILE *f = fopen(path, "wb");
  if (!f) {
    printf("# cannot write %s: %s\n", path, strerror(errno));
    return;
  }
  fputs(content, f);
  fclose(f);
}

static void put_size(const char *rel, size_t n) {
  char *buf = malloc(n + 1);
  memset(buf, 'z', n);
  buf[n] = '\0';
  put(rel, buf);
  free(buf);
}

static char logged[8192];

static void on_log(void *ud, const char *msg) {
  (void)ud;
  size_t l = strlen(logged);
  snprintf(logged + l, sizeof(logged) - l, "%s\n", msg);
}

static char root_a[600], root_b[600];

static void test_load(void) {
  snprintf(root_a, sizeof(root_a), "%s/a", tmpdir);
  snprintf(root_b, sizeof(root_b), "%s/b", tmpdir);
  put("a/blog/manifest.json", "{\"name\":\"Blog A\",\"tables\":{\"posts\":{\"insert_policy\":\"owner\"}}}");
  put("a/blog/index.html", "<h1>a</h1>");
  put("a/blog/css/style.css", "body{}");
  put("a/blog/images/.keep", "");
  put("a/chess/manifest.json", "{\"name\":\"Chess\"}");
  put("a/bad.json/manifest.json", "{\"name\":");
  put("a/.dot/manifest.json", "{\"name\":\"Dot\"}");
  put("a/notatemplate/index.html", "x");
  put("a/big/manifest.json", "{\"name\":\"Big\"}");
  put_size("a/big/blob.bin", 3000);
  put("a/many/manifest.json", "{\"name\":\"Many\"}");
  put("a/many/1", "1");
  put("a/many/2", "2");
  put("a/many/3", "3");
  put("b/blog/manifest.json", "{\"name\":\"Blog B\"}");
  put("b/blog/index.html", "<h1>b</h1>");
  put("b/links/manifest.json", "{\"name\":\"Links\"}");
  char target[700], link[700];
  snprintf(target, sizeof(target), "%s/a/chess/manifest.json", tmpdir);
  snprintf(link, sizeof(link), "%s/b/links/escape.txt", tmpdir);
  CHECK_INT_EQ(symlink("/etc/passwd", link), 0);
  snprintf(link, sizeof(link), "%s/b/links/inside", tmpdir);
  CHECK_INT_EQ(symlink("manifest.json", link), 0);
  snprintf(link, sizeof(link), "%s/b/linkdir", tmpdir);
  snprintf(target, sizeof(target), "%s/a/chess", tmpdir);
  CHECK_INT_EQ(symlink(target, link), 0);

  const char *dirs[] = {root_a, NULL, "", "/nonexistent-goop-dir", root_b};
  struct rdv_tpl_limits lim = {.max_files = 3, .max_template_bytes = 2048, .max_total_bytes = 0};
  struct rdv_templates *t = NULL;
  logged[0] = '\0';
  CHECK_INT_EQ(rdv_templates_load(dirs, 5, &lim, on_log, NULL, &t), 0);
  CHECK_INT_EQ(rdv_templates_count(t), 3); /* blog (from b), chess, links */
  size_t len;
  const char *list = rdv_templates_list_json(t, &len);
  CHECK_STR_EQ(
      list, "[{\"name\":\"Blog B\",\"description\":\"\",\"category\":\"\",\"icon\":\"\",\"dir\":\"blog\","
            "\"source\":\"store\"},{\"name\":\"Chess\",\"description\":\"\",\"category\":\"\",\"icon\":\"\","
            "\"dir\":\"chess\",\"source\":\"store\"},{\"name\":\"Links\",\"description\":\"\",\"category\":"
            "\"\",\"icon\":\"\",\"dir\":\"links\",\"source\":\"store\"}]\n");
  CHECK_INT_EQ(len, strlen(list));
  CHECK(strstr(logged, "bad.json: skipped: manifest.json: bad JSON") != NULL);
  CHECK(strstr(logged, ".dot: skipped: bad directory name") != NULL);
  CHECK(strstr(logged, "big: skipped: more than 2048 bytes") != NULL);
  CHECK(strstr(logged, "many: skipped: more than 3 files") != NULL);
  CHECK(strstr(logged, "links: skipping symlink escape.txt") != NULL);
  CHECK(strstr(logged, "links: skipping symlink inside") != NULL);
  CHECK(strstr(logged, "linkdir") == NULL); /* a symlinked directory is not a template */
  CHECK(strstr(logged, "notatemplate") == NULL);
  CHECK(strstr(logged, "templates: 3 loaded") != NULL);
  if (strstr(logged, "templates: 3 loaded") == NULL)
    printf("# log:\n%s", logged);

  const char *meta;
  const uint8_t *bundle;
  size_t ml, bl;
  CHECK_INT_EQ(rdv_templates_get(t, "blog", &meta, &ml, &bundle, &bl), 0);
  CHECK_STR_EQ(meta,
               "{\"name\":\"Blog B\",\"description\":\"\",\"category\":\"\",\"icon\":\"\",\"dir\":\"blog\","
               "\"source\":\"store\"}\n");
  /* The bundle: two files, sorted, named blog/<rel>. */
  uint8_t *tar = malloc(bl);
  long tl = gunzip_stored(bundle, bl, tar, bl);
  CHECK_INT_EQ(tl, 512 + 512 + 512 + 512 + 1024);
  if (tl == 512 * 4 + 1024) {
    CHECK_STR_EQ((const char *)tar, "blog/index.html");
    CHECK(memcmp(tar + 512, "<h1>b</h1>", 10) == 0);
    CHECK_STR_EQ((const char *)tar + 1024, "blog/manifest.json");
  }
  free(tar);
  CHECK_INT_EQ(rdv_templates_get(t, "links", NULL, NULL, &bundle, &bl), 0);
  tar = malloc(bl);
  tl = gunzip_stored(bundle, bl, tar, bl);
  CHECK_INT_EQ(tl, 512 + 512 + 1024); /* only manifest.json: both symlinks skipped */
  free(tar);
  CHECK_INT_EQ(rdv_templates_get(t, "big", NULL, NULL, NULL, NULL), -1);
  CHECK_INT_EQ(rdv_templates_get(t, "nope", NULL, NULL, NULL, NULL), -1);
  CHECK_INT_EQ(rdv_templates_get(NULL, "blog", NULL, NULL, NULL, NULL), -1);
  CHECK(strstr(rdv_templates_html(t), "3 ready-made sites available") != NULL);
  CHECK(strstr(rdv_templates_html(t), "/api/templates/chess/bundle") != NULL);
  CHECK_STR_EQ(rdv_templates_html(NULL), "");

  /* The total cap: 2 templates of ~1000 bytes fit in 2100, a third does not. */
  put_size("c/one/f", 1000);
  put("c/one/manifest.json", "{\"name\":\"1\"}");
  put_size("c/two/f", 1000);
  put("c/two/manifest.json", "{\"name\":\"2\"}");
  put_size("c/wee/f", 1000);
  put("c/wee/manifest.json", "{\"name\":\"3\"}");
  char root_c[600];
  snprintf(root_c, sizeof(root_c), "%s/c", tmpdir);
  const char *cdirs[] = {root_c};
  struct rdv_tpl_limits lim2 = {.max_total_bytes = 2100};
  struct rdv_templates *t2 = NULL;
  logged[0] = '\0';
  CHECK_INT_EQ(rdv_templates_load(cdirs, 1, &lim2, on_log, NULL, &t2), 0);
  CHECK_INT_EQ(rdv_templates_count(t2), 2);
  CHECK(strstr(logged, "wee: skipped: all templates together would exceed 2100 bytes") != NULL);
  rdv_templates_unref(t2);

  /* Reload: a new template appears; a reference to the old set stays valid. */
  struct rdv_templates *old = rdv_templates_ref(t);
  put("b/quiz/manifest.json", "{\"name\":\"Quiz\",\"icon\":\"?\"}");
  CHECK_INT_EQ(rdv_templates_reload(&t, dirs, 5, &lim, on_log, NULL), 0);
  CHECK(t != old);
  CHECK_INT_EQ(rdv_templates_count(t), 4);
  CHECK_INT_EQ(rdv_templates_get(t, "quiz", NULL, NULL, NULL, NULL), 0);
  CHECK_INT_EQ(rdv_templates_count(old), 3);
  CHECK_INT_EQ(rdv_templates_get(old, "blog", &meta, &ml, NULL, NULL), 0);
  CHECK(strstr(meta, "Blog B") != NULL);
  rdv_templates_unref(old);
  rdv_templates_unref(t);
  rdv_templates_unref(NULL);
}

static void test_route(void) {
  char root[600];
  snprintf(root, sizeof(root), "%s/b", tmpdir);
  const char *dirs[] = {root};
  struct rdv_templates *t = NULL;
  CHECK_INT_EQ(rdv_templates_load(dirs, 1, NULL, NULL, NULL, &t), 0);
  char dir[RDV_TPL_MAX_DIR_NAME + 1];
  CHECK(rdv_templates_match("/api/templates"));
  CHECK(rdv_templates_match("/api/templates/x"));
  CHECK(!rdv_templates_match("/api/templatesx"));
  CHECK(!rdv_templates_match("/api/template"));
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates", "GET", dir), RDV_TPL_LIST);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates", "HEAD", dir), RDV_TPL_LIST);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates", "POST", dir), RDV_TPL_BAD_METHOD);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates/blog/manifest.json", "GET", dir), RDV_TPL_MANIFEST);
  CHECK_STR_EQ(dir, "blog");
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates/blog/bundle", "GET", dir), RDV_TPL_BUNDLE);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates/blog/bundle", "DELETE", dir), RDV_TPL_BAD_METHOD);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates/nope/bundle", "GET", dir), RDV_TPL_NOT_FOUND);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates/nope/bundle", "POST", dir), RDV_TPL_NOT_FOUND);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates/", "GET", dir), RDV_TPL_NOT_FOUND);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates/blog", "GET", dir), RDV_TPL_NOT_FOUND);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates/blog/", "GET", dir), RDV_TPL_NOT_FOUND);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates/blog/bundle/", "GET", dir), RDV_TPL_NOT_FOUND);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates/blog/index.html", "GET", dir), RDV_TPL_NOT_FOUND);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates/../blog/bundle", "GET", dir), RDV_TPL_NOT_FOUND);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates/blog/../blog/bundle", "GET", dir), RDV_TPL_NOT_FOUND);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates/../manifest.json", "GET", dir), RDV_TPL_NOT_FOUND);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates//bundle", "GET", dir), RDV_TPL_NOT_FOUND);
  CHECK_INT_EQ(rdv_templates_route(t, "/api/templates/links/bundle", "GET", dir), RDV_TPL_BUNDLE);
  CHECK_INT_EQ(rdv_templates_route(NULL, "/api/templates", "GET", dir), RDV_TPL_LIST);
  CHECK_INT_EQ(rdv_templates_route(NULL, "/api/templates/blog/bundle", "GET", dir), RDV_TPL_NOT_FOUND);
  size_t len;
  CHECK_STR_EQ(rdv_templates_list_json(NULL, &len), "[]\n");
  char longurl[200];
  snprintf(longurl, sizeof(longurl), "/api/templates/%0100d/bundle", 1);
  CHECK_INT_EQ(rdv_templates_route(t, longurl, "GET", dir), RDV_TPL_NOT_FOUND);
  rdv_templates_unref(t);
}

static void unesc(const char *in, const char *want) {
  char buf[256];
  snprintf(buf, sizeof(buf), "%s", in);
  size_t n = rdv_templates_unescape(NULL, NULL, buf);
  CHECK_STR_EQ(buf, want);
  CHECK_INT_EQ(n, strlen(want));
}

static void test_unescape(void) {
  unesc("/api/templates", "/api/templates");
  unesc("/a%20b", "/a b");
  unesc("/%2e%2E/x", "/../x");
  unesc("/blog%2Fbundle", "/blog%2Fbundle");
  unesc("/blog%2fbundle", "/blog%2fbundle");
  unesc("/%252F", "/%2F"); /* decoded once only */
  unesc("/%41%42%43", "/ABC");
  unesc("/%", "/%");
  unesc("/%4", "/%4");
  unesc("/%zz%4g", "/%zz%4g");
  unesc("/%E2%99%9F", "/\xe2\x99\x9f");
  unesc("", "");
  char dir[RDV_TPL_MAX_DIR_NAME + 1];
  char url[] = "/api/templates/blog%2Fbundle";
  rdv_templates_unescape(NULL, NULL, url);
  CHECK_INT_EQ(rdv_templates_route(NULL, url, "GET", dir), RDV_TPL_NOT_FOUND);
}

static void test_config_dirs(void) {
  goop_config *cfg = NULL;
  char err[256];
  const char *json =
      "{\"presence\":{\"templates_dir\":\"tpl\",\"templates_dirs\":[\"/abs/x\",\"\",\"rel/y\"]}}";
  CHECK_INT_EQ(goop_config_parse(json, strlen(json), "/base/dir", &cfg, err, sizeof(err)), 0);
  char **dirs = NULL;
  size_t n = 0;
  CHECK_INT_EQ(rdv_templates_config_dirs(cfg, &dirs, &n), 0);
  CHECK_INT_EQ(n, 3);
  if (n == 3) {
    CHECK_STR_EQ(dirs[0], "/base/dir/tpl");
    CHECK_STR_EQ(dirs[1], "/abs/x");
    CHECK_STR_EQ(dirs[2], "/base/dir/rel/y");
  }
  rdv_templates_dirs_free(dirs, n);
  goop_config_free(cfg);
}

static void rm_rf(const char *p) {
  char cmd[700];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
  if (system(cmd) != 0)
    printf("# cannot remove %s\n", p);
}

int main(void) {
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_crc32);
  RUN(test_gzip);
  RUN(test_tar);
  RUN(test_names);
  RUN(test_meta);
  RUN(test_load);
  RUN(test_route);
  RUN(test_unescape);
  RUN(test_config_dirs);
  rm_rf(tmpdir);
  return tap_done();
}
