/*
 * goop2: run a Goop² peer from a peer directory, or print its Peer ID.
 * A thin client of the public libgoop API.
 */
#include <getopt.h>
#include <goop/goop.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage_text[] =
    "Usage: goop2 [options] [command] [DIR]\n"
    "\n"
    "Commands:\n"
    "  peer DIR        open (and create if missing) the peer directory DIR\n"
    "  id DIR          print the Peer ID of the peer in DIR (creates nothing)\n"
    "\n"
    "Options:\n"
    "  -dir DIR, --dir DIR   peer directory (\"goop2 -dir DIR\" = \"goop2 peer DIR\")\n"
    "  -h, --help            show this help and exit\n"
    "  -version, --version   print the version and exit\n"
    "\n"
    "See goop2(1) and goop.json(5).\n";

static void usage(FILE *f) {
  fputs(usage_text, f);
}

static int fail(const char *fmt, ...) GOOP_PRINTF(1, 2);
static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("Error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

static int print_peer_id(const goop_identity *id, char *buf, size_t len) {
  goop_peer_id pid;
  goop_identity_peer_id(id, &pid);
  return goop_peer_id_to_string(&pid, buf, len);
}

static int cmd_peer(const char *dir) {
  char err[GOOP_ERRBUF_SIZE] = "";
  goop_config *cfg = NULL;
  goop_identity *id = NULL;
  unsigned created = 0;
  int rc = goop_peer_dir_open(dir, &cfg, &id, &created, err, sizeof(err));
  if (rc < 0)
    return fail("%s", err[0] ? err : goop_strerror(rc));

  char pid[GOOP_PEER_ID_STR_MAX];
  if (print_peer_id(id, pid, sizeof(pid)) < 0) {
    goop_identity_free(id);
    goop_config_free(cfg);
    return fail("%s", "cannot format the Peer ID");
  }
  const char *base = goop_config_base_dir(cfg);
  const char *label = goop_config_get_string(cfg, "profile.label");
  char *key = goop_config_resolve_path(cfg, "identity.key_file");
  char *site = goop_config_resolve_path(cfg, "paths.site_root");

  printf("Goop\xc2\xb2 peer\n");
  printf("  Peer dir:  %s\n", base ? base : dir);
  printf("  Config:    %s/goop.json%s\n", base ? base : dir,
         (created & GOOP_PEER_DIR_CREATED_CONFIG) ? " (created with defaults)" : "");
  printf("  Key file:  %s%s\n", key ? key : "?",
         (created & GOOP_PEER_DIR_CREATED_IDENTITY) ? " (new identity generated)" : "");
  printf("  Site root: %s%s\n", site ? site : "?",
         (created & GOOP_PEER_DIR_CREATED_SITE) ? " (start page created)" : "");
  printf("  Peer ID:   %s\n", pid);
  printf("  Label:     %s\n", label && *label ? label : "hello");
  fflush(stdout);

  free(key);
  free(site);
  goop_identity_free(id);
  goop_config_free(cfg);
  return 0;
}

/* Print the Peer ID of the peer in |dir| without creating anything. */
static int cmd_id(const char *dir) {
  struct stat st;
  if (stat(dir, &st) != 0)
    return fail("peer directory does not exist: %s", dir);
  if (!S_ISDIR(st.st_mode))
    return fail("not a directory: %s", dir);

  size_t n = strlen(dir) + sizeof("/goop.json");
  char *cfg_path = malloc(n);
  if (!cfg_path)
    return fail("%s", "out of memory");
  snprintf(cfg_path, n, "%s/goop.json", dir);

  char err[GOOP_ERRBUF_SIZE] = "";
  goop_config *cfg = NULL;
  int rc;
  if (stat(cfg_path, &st) == 0)
    rc = goop_config_load(cfg_path, &cfg, err, sizeof(err));
  else /* no goop.json: the defaults, relative to DIR */
    rc = goop_config_parse("{}", 2, dir, &cfg, err, sizeof(err));
  free(cfg_path);
  if (rc < 0)
    return fail("%s", err[0] ? err : goop_strerror(rc));

  char *key = goop_config_resolve_path(cfg, "identity.key_file");
  goop_config_free(cfg);
  if (!key)
    return fail("%s", "out of memory");
  goop_identity *id = NULL;
  rc = goop_identity_load(key, &id, err, sizeof(err));
  if (rc == GOOP_ENOENT) {
    fprintf(stderr, "Error: no identity key at %s (run \"goop2 peer %s\" once to create one)\n", key, dir);
    free(key);
    return 1;
  }
  free(key);
  if (rc < 0)
    return fail("%s", err[0] ? err : goop_strerror(rc));

  char pid[GOOP_PEER_ID_STR_MAX];
  rc = print_peer_id(id, pid, sizeof(pid));
  goop_identity_free(id);
  if (rc < 0)
    return fail("%s", "cannot format the Peer ID");
  printf("%s\n", pid);
  return 0;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"dir", required_argument, NULL, 'd'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0},
  };
  const char *dir_opt = NULL;
  int c;
  opterr = 0;
  while ((c = getopt_long_only(argc, argv, ":hd:", opts, NULL)) != -1) {
    switch (c) {
    case 'd':
      dir_opt = optarg;
      break;
    case 'h':
      usage(stdout);
      return 0;
    case 'V': {
      const goop_version_info *v = goop_version(0);
      printf("goop2 %s\n", v ? v->version_str : "unknown");
      return 0;
    }
    case ':':
      fprintf(stderr, "Error: option '%s' requires an argument\n", argv[optind - 1]);
      usage(stderr);
      return 1;
    default:
      fprintf(stderr, "Error: unknown option '%s'\n", argv[optind - 1]);
      usage(stderr);
      return 1;
    }
  }

  const char *cmd = optind < argc ? argv[optind++] : NULL;
  const char *dir_arg = optind < argc ? argv[optind++] : NULL;
  if (optind < argc) {
    fprintf(stderr, "Error: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 1;
  }
  if (cmd && strcmp(cmd, "peer") != 0 && strcmp(cmd, "id") != 0) {
    fprintf(stderr, "Error: unknown command '%s'\n", cmd);
    usage(stderr);
    return 1;
  }
  if (dir_opt && dir_arg) {
    fprintf(stderr, "Error: give the peer directory once (-dir DIR or %s DIR)\n", cmd);
    usage(stderr);
    return 1;
  }
  const char *dir = dir_opt ? dir_opt : dir_arg;
  if (!cmd && !dir) {
    fputs("Error: no peer directory given\n", stderr);
    usage(stderr);
    return 1;
  }
  if (!dir || !*dir) {
    fprintf(stderr, "Error: %s command requires directory path\n", cmd);
    usage(stderr);
    return 1;
  }
  if (cmd && strcmp(cmd, "id") == 0)
    return cmd_id(dir);
  return cmd_peer(dir);
}
