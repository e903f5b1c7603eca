/* Fuzz target: the /goop/site/1.0.0 request line parser and the server's
 * answer (path decoding and resolution) on a small temporary site root. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "site/site-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_tmp[64];
static char fuzz_root[PATH_MAX];

/* Remove the temporary site at exit. */
static void fuzz_cleanup(void) {
  static const char *const names[] = {"index.html", "out", "lua"};
  char p[PATH_MAX + 64];
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    snprintf(p, sizeof(p), "%s/%s", fuzz_root, names[i]);
    if (unlink(p) != 0)
      rmdir(p);
  }
  rmdir(fuzz_root);
  rmdir(fuzz_tmp);
}

static goop_site *fuzz_site(void) {
  static goop_site site;
  if (site.site_root)
    return &site;
  snprintf(fuzz_tmp, sizeof(fuzz_tmp), "/tmp/goop-fuzz-site-XXXXXX");
  if (!mkdtemp(fuzz_tmp))
    abort();
  atexit(fuzz_cleanup);
  char p[PATH_MAX + 64];
  snprintf(p, sizeof(p), "%s/site", fuzz_tmp);
  mkdir(p, 0700);
  if (!realpath(p, fuzz_root))
    abort();
  snprintf(p, sizeof(p), "%s/lua", fuzz_root);
  mkdir(p, 0700);
  snprintf(p, sizeof(p), "%s/index.html", fuzz_root);
  FILE *f = fopen(p, "w");
  if (f)
    fclose(f);
  snprintf(p, sizeof(p), "%s/out", fuzz_root);
  if (symlink("/etc/hostname", p) != 0)
    abort();
  site.site_root = fuzz_root;
  return &site;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  goop_site *site = fuzz_site();
  char *path = NULL;
  int rc = goop__site_parse_request((const char *)data, size, &path);
  if (rc == 0) {
    if (!path)
      abort();
    free(path);
  }
  path = NULL;
  const char *err = NULL;
  rc = goop__site_answer_request(site, (const char *)data, size, &path, &err);
  if (rc == 0) {
    /* Anything served is a regular file under the fuzz_root, never under lua/. */
    size_t rl = strlen(site->site_root);
    if (!path || strncmp(path, site->site_root, rl) != 0 || path[rl] != '/' ||
        strncmp(path + rl + 1, "lua/", 4) == 0)
      abort();
    free(path);
  } else if (rc != GOOP_ENOMEM && (!err || strncmp(err, "ERR ", 4) != 0)) {
    abort();
  }
  return 0;
}
