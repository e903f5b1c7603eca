/* Unit tests: goop_peer_dir_open() creates what is missing and never replaces bad files. */
#include <goop/config.h>
#include <goop/identity.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

static char tmpdir[256];

static char *tmp_path(const char *name) {
  static char buf[64][512];
  static int n;
  char *p = buf[n++ % 64];
  snprintf(p, 512, "%s/%s", tmpdir, name);
  return p;
}

static int write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  size_t w = fwrite(data, 1, len, f);
  fclose(f);
  return w == len ? 0 : -1;
}

static char *read_all(const char *path, size_t *ret_len) {
  uint8_t *d = NULL;
  size_t n = 0;
  if (goop__read_file(path, 1 << 22, &d, &n) < 0)
    return NULL;
  if (ret_len)
    *ret_len = n;
  return (char *)d;
}

static unsigned mode_of(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return 0;
  return st.st_mode & 07777;
}

static void peer_id_of(const goop_identity *id, char *buf, size_t len) {
  goop_peer_id pid;
  goop_identity_peer_id(id, &pid);
  if (goop_peer_id_to_string(&pid, buf, len) < 0)
    buf[0] = '\0';
}

static void test_fresh_and_reopen(void) {
  const char *dir = tmp_path("fresh/peer");
  char err[GOOP_ERRBUF_SIZE] = "";
  goop_config *cfg = NULL;
  goop_identity *id = NULL;
  unsigned created = 0;
  int rc = goop_peer_dir_open(dir, &cfg, &id, &created, err, sizeof(err));
  CHECK_INT_EQ(rc, 0);
  if (rc) {
    printf("#   %s\n", err);
    return;
  }
  CHECK_INT_EQ(created, GOOP_PEER_DIR_CREATED_DIR | GOOP_PEER_DIR_CREATED_CONFIG |
                            GOOP_PEER_DIR_CREATED_IDENTITY | GOOP_PEER_DIR_CREATED_SITE);
  CHECK_STR_EQ(goop_config_base_dir(cfg), dir);
  CHECK_INT_EQ(mode_of(dir), 0755);
  CHECK_INT_EQ(mode_of(tmp_path("fresh/peer/goop.json")), 0644);
  CHECK_INT_EQ(mode_of(tmp_path("fresh/peer/data")), 0700);
  CHECK_INT_EQ(mode_of(tmp_path("fresh/peer/data/identity.key")), 0600);
  CHECK_INT_EQ(mode_of(tmp_path("fresh/peer/site")), 0755);

  size_t n = 0;
  char *key = read_all(tmp_path("fresh/peer/data/identity.key"), &n);
  CHECK_INT_EQ(n, 68);
  CHECK(key && memcmp(key, "\x08\x01\x12\x40", 4) == 0);
  free(key);

  char *html = read_all(tmp_path("fresh/peer/site/index.html"), NULL);
  CHECK(html && strstr(html, "<!DOCTYPE html>") && strstr(html, "Hello from Goop\xc2\xb2") &&
        strstr(html, "href=\"style.css\""));
  free(html);
  char *css = read_all(tmp_path("fresh/peer/site/style.css"), NULL);
  CHECK(css && strstr(css, "body"));
  free(css);

  /* goop.json holds the defaults */
  char *json = read_all(tmp_path("fresh/peer/goop.json"), NULL);
  char *want = goop_config_to_json(cfg);
  CHECK_STR_EQ(json, want);
  free(json);
  free(want);

  char pid1[GOOP_PEER_ID_STR_MAX], pid2[GOOP_PEER_ID_STR_MAX];
  peer_id_of(id, pid1, sizeof(pid1));
  CHECK(strncmp(pid1, "12D3KooW", 8) == 0);
  goop_identity_free(id);
  goop_config_free(cfg);

  /* second open: nothing created, same identity */
  char *before = read_all(tmp_path("fresh/peer/goop.json"), NULL);
  cfg = NULL;
  id = NULL;
  created = 99;
  CHECK_INT_EQ(goop_peer_dir_open(dir, &cfg, &id, &created, err, sizeof(err)), 0);
  CHECK_INT_EQ(created, 0);
  peer_id_of(id, pid2, sizeof(pid2));
  CHECK_STR_EQ(pid1, pid2);
  char *after = read_all(tmp_path("fresh/peer/goop.json"), NULL);
  CHECK_STR_EQ(before, after);
  free(before);
  free(after);
  goop_identity_free(id);
  goop_config_free(cfg);

  /* out-pointers may be NULL */
  CHECK_INT_EQ(goop_peer_dir_open(dir, NULL, NULL, NULL, NULL, 0), 0);

  /* a relative directory is made absolute */
  char *cwd = getcwd(NULL, 0);
  CHECK_INT_EQ(chdir(tmp_path("fresh")), 0);
  cfg = NULL;
  CHECK_INT_EQ(goop_peer_dir_open("peer", &cfg, NULL, &created, err, sizeof(err)), 0);
  CHECK_INT_EQ(created, 0);
  CHECK_STR_EQ(cfg ? goop_config_base_dir(cfg) : NULL, dir);
  goop_config_free(cfg);
  CHECK_INT_EQ(chdir(cwd), 0);
  free(cwd);
}

static void test_corrupt_key(void) {
  const char *dir = tmp_path("badkey");
  char err[GOOP_ERRBUF_SIZE] = "";
  CHECK_INT_EQ(goop_peer_dir_open(dir, NULL, NULL, NULL, err, sizeof(err)), 0);
  const char *kp = tmp_path("badkey/data/identity.key");
  static const char junk[] = "\x08\x01\x12\x40 this is not a key";
  CHECK_INT_EQ(write_file(kp, junk, sizeof(junk) - 1), 0);

  goop_config *cfg = NULL;
  goop_identity *id = NULL;
  unsigned created = 77;
  int rc = goop_peer_dir_open(dir, &cfg, &id, &created, err, sizeof(err));
  CHECK(rc < 0);
  CHECK(cfg == NULL && id == NULL);
  CHECK_INT_EQ(created, 77);
  CHECK(strstr(err, kp) != NULL);
  printf("# message: %s\n", err);
  size_t n = 0;
  char *now = read_all(kp, &n);
  CHECK(now && n == sizeof(junk) - 1 && memcmp(now, junk, n) == 0);
  free(now);

  /* empty key file: also an error, also kept */
  CHECK_INT_EQ(write_file(kp, "", 0), 0);
  CHECK(goop_peer_dir_open(dir, NULL, NULL, NULL, err, sizeof(err)) < 0);
  now = read_all(kp, &n);
  CHECK(now && n == 0);
  free(now);
}

static void test_corrupt_config(void) {
  const char *dir = tmp_path("badcfg");
  CHECK_INT_EQ(mkdir(dir, 0755), 0);
  static const char bad[] = "{\n  \"p2p\": {\"listen_port\": 70000}\n}\n";
  const char *cp = tmp_path("badcfg/goop.json");
  CHECK_INT_EQ(write_file(cp, bad, sizeof(bad) - 1), 0);
  char err[GOOP_ERRBUF_SIZE] = "";
  unsigned created = 0;
  CHECK_INT_EQ(goop_peer_dir_open(dir, NULL, NULL, &created, err, sizeof(err)), GOOP_ECONFIG);
  CHECK(strstr(err, cp) != NULL);
  CHECK(strstr(err, "p2p.listen_port must be 0..65535") != NULL);
  printf("# message: %s\n", err);
  char *now = read_all(cp, NULL);
  CHECK_STR_EQ(now, bad);
  free(now);
  /* nothing else was created */
  CHECK(access(tmp_path("badcfg/data"), F_OK) != 0);
  CHECK(access(tmp_path("badcfg/site"), F_OK) != 0);

  static const char syntax[] = "{\"p2p\": }";
  CHECK_INT_EQ(write_file(cp, syntax, sizeof(syntax) - 1), 0);
  CHECK_INT_EQ(goop_peer_dir_open(dir, NULL, NULL, &created, err, sizeof(err)), GOOP_EPARSE);
  char prefix[600];
  snprintf(prefix, sizeof(prefix), "%s:1:", cp);
  CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
  now = read_all(cp, NULL);
  CHECK_STR_EQ(now, syntax);
  free(now);
}

static void test_existing_site_and_custom_paths(void) {
  const char *dir = tmp_path("custom");
  CHECK_INT_EQ(mkdir(dir, 0755), 0);
  const char *j = "{\"identity\":{\"key_file\":\"keys/me.key\"},\"paths\":{\"site_root\":\"www\"}}";
  CHECK_INT_EQ(write_file(tmp_path("custom/goop.json"), j, strlen(j)), 0);
  CHECK_INT_EQ(mkdir(tmp_path("custom/www"), 0755), 0);
  CHECK_INT_EQ(write_file(tmp_path("custom/www/index.html"), "mine", 4), 0);
  unsigned created = 0;
  char err[GOOP_ERRBUF_SIZE] = "";
  CHECK_INT_EQ(goop_peer_dir_open(dir, NULL, NULL, &created, err, sizeof(err)), 0);
  CHECK_INT_EQ(created, GOOP_PEER_DIR_CREATED_IDENTITY);
  CHECK_INT_EQ(mode_of(tmp_path("custom/keys")), 0700);
  CHECK_INT_EQ(mode_of(tmp_path("custom/keys/me.key")), 0600);
  char *html = read_all(tmp_path("custom/www/index.html"), NULL);
  CHECK_STR_EQ(html, "mine");
  free(html);
  CHECK(access(tmp_path("custom/www/style.css"), F_OK) != 0);

  /* an empty site root gets the start page */
  const char *dir2 = tmp_path("emptysite");
  CHECK_INT_EQ(mkdir(dir2, 0755), 0);
  CHECK_INT_EQ(mkdir(tmp_path("emptysite/site"), 0755), 0);
  CHECK_INT_EQ(goop_peer_dir_open(dir2, NULL, NULL, &created, err, sizeof(err)), 0);
  CHECK_INT_EQ(created,
               GOOP_PEER_DIR_CREATED_CONFIG | GOOP_PEER_DIR_CREATED_IDENTITY | GOOP_PEER_DIR_CREATED_SITE);
  CHECK(access(tmp_path("emptysite/site/index.html"), F_OK) == 0);

  /* the peer "directory" is a file */
  CHECK_INT_EQ(write_file(tmp_path("afile"), "x", 1), 0);
  CHECK_INT_EQ(goop_peer_dir_open(tmp_path("afile"), NULL, NULL, NULL, err, sizeof(err)), GOOP_ENOTDIR);
  CHECK(strstr(err, "afile") != NULL);

  /* the site root is a file */
  const char *dir3 = tmp_path("sitefile");
  CHECK_INT_EQ(mkdir(dir3, 0755), 0);
  CHECK_INT_EQ(write_file(tmp_path("sitefile/site"), "x", 1), 0);
  CHECK_INT_EQ(goop_peer_dir_open(dir3, NULL, NULL, NULL, err, sizeof(err)), GOOP_ENOTDIR);
  CHECK(strstr(err, "paths.site_root") != NULL);
}

int main(void) {
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/goop-test-peerdir-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  umask(022);
  RUN(test_fresh_and_reopen);
  RUN(test_corrupt_key);
  RUN(test_corrupt_config);
  RUN(test_existing_site_and_custom_paths);
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0)
    printf("# could not remove %s\n", tmpdir);
  return tap_done();
}
