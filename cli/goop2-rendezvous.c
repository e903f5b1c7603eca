/*
 * goop2-rendezvous: run a Goop² rendezvous server from a directory holding
 * its goop.json (created with defaults if missing).
 */
#include "rendezvous/rdv-server.h"

#include <errno.h>
#include <event2/event.h>
#include <goop/goop.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage_text[] =
    "Usage: goop2-rendezvous [options] DIR\n"
    "\n"
    "Options:\n"
    "  -dir DIR, --dir DIR   directory of goop.json (created if missing)\n"
    "  -h, --help            show this help and exit\n"
    "  -version, --version   print the version and exit\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop, SIGHUP reloads goop.json. See goop2-rendezvous(8).\n";

struct app {
  char *dir;
  char cfg_path[PATH_MAX];
  struct rdv_server *srv;
  struct event_base *base;
};

struct opts_store {
  goop_config *cfg;
  char *db;
  struct rdv_server_opts o;
};

/* mkdir -p of the directory holding |path| (peers.db's "data/" is usually new). */
static void make_parent(const char *path) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
    return;
  char *slash = strrchr(tmp, '/');
  if (!slash || slash == tmp)
    return;
  *slash = '\0';
  for (char *p = tmp + 1; *p; p++) {
    if (*p == '/') {
      *p = '\0';
      mkdir(tmp, 0700);
      *p = '/';
    }
  }
  mkdir(tmp, 0700);
}

static int load(struct app *a, struct opts_store *st, char *err, size_t errlen) {
  memset(st, 0, sizeof(*st));
  if (goop_config_ensure(a->cfg_path, &st->cfg, NULL, err, errlen) != 0)
    return -1;
  st->o.bind = goop_config_get_string(st->cfg, "presence.rendezvous_bind");
  st->o.port = (int)goop_config_get_int(st->cfg, "presence.rendezvous_port");
  if (st->o.port < 1 || st->o.port > 65535) {
    snprintf(err, errlen, "presence.rendezvous_port must be 1..65535");
    goop_config_free(st->cfg);
    return -1;
  }
  st->o.admin_password = goop_config_get_string(st->cfg, "presence.admin_password");
  st->o.external_url = goop_config_get_string(st->cfg, "presence.external_url");
  if (goop_config_get_string(st->cfg, "presence.peer_db_path")[0])
    st->db = goop_config_resolve_path(st->cfg, "presence.peer_db_path");
  if (st->db)
    make_parent(st->db);
  st->o.peer_db_path = st->db;
  return 0;
}

static void unload(struct opts_store *st) {
  free(st->db);
  goop_config_free(st->cfg);
}

static void on_stop(evutil_socket_t sig, short what, void *arg) {
  (void)what;
  struct app *a = arg;
  rdv_server_log(a->srv, "signal %d: shutting down", (int)sig);
  event_base_loopexit(a->base, NULL);
}

static void on_hup(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  struct app *a = arg;
  struct opts_store st;
  char err[512];
  if (load(a, &st, err, sizeof(err)) != 0) {
    rdv_server_log(a->srv, "reload failed, keeping the old settings: %s", err);
    return;
  }
  rdv_server_reload(a->srv, &st.o);
  unload(&st);
}

int main(int argc, char **argv) {
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help") || !strcmp(arg, "-help")) {
      fputs(usage_text, stdout);
      return 0;
    }
    if (!strcmp(arg, "-version") || !strcmp(arg, "--version")) {
      printf("Goop\xc2\xb2 rendezvous v%s\n", GOOP_VERSION_STRING);
      return 0;
    }
    if (!strcmp(arg, "-dir") || !strcmp(arg, "--dir")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "Error: %s needs a directory\n%s", arg, usage_text);
        return 1;
      }
      arg = argv[++i];
    } else if (arg[0] == '-') {
      fprintf(stderr, "Error: unknown option '%s'\n%s", arg, usage_text);
      return 1;
    }
    if (dir) {
      fprintf(stderr, "Error: more than one directory given\n%s", usage_text);
      return 1;
    }
    dir = arg;
  }
  if (!dir) {
    fprintf(stderr, "Error: rendezvous command requires directory path\n%s", usage_text);
    return 1;
  }
  struct app a;
  memset(&a, 0, sizeof(a));
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "Error: cannot create %s: %s\n", dir, strerror(errno));
    return 1;
  }
  a.dir = realpath(dir, NULL);
  if (!a.dir) {
    fprintf(stderr, "Error: Peer directory does not exist: %s\n", dir);
    return 1;
  }
  snprintf(a.cfg_path, sizeof(a.cfg_path), "%s/goop.json", a.dir);
  struct opts_store st;
  char err[512];
  if (load(&a, &st, err, sizeof(err)) != 0) {
    fprintf(stderr, "Error: Failed to load config: %s\n", err);
    free(a.dir);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  a.base = event_base_new();
  if (!a.base) {
    fprintf(stderr, "Error: cannot create the event loop\n");
    unload(&st);
    free(a.dir);
    return 1;
  }
  int rc = rdv_server_new(a.base, &st.o, &a.srv, err, sizeof(err));
  unload(&st);
  if (rc != 0) {
    fprintf(stderr, "Error: %s\n", err);
    event_base_free(a.base);
    free(a.dir);
    return 1;
  }
  printf("Goop\xc2\xb2 rendezvous: dir %s, http://%s:%d\n", a.dir, "127.0.0.1", rdv_server_port(a.srv));
  fflush(stdout);
  struct event *term = evsignal_new(a.base, SIGTERM, on_stop, &a);
  struct event *intr = evsignal_new(a.base, SIGINT, on_stop, &a);
  struct event *hup = evsignal_new(a.base, SIGHUP, on_hup, &a);
  if (term)
    event_add(term, NULL);
  if (intr)
    event_add(intr, NULL);
  if (hup)
    event_add(hup, NULL);
  event_base_dispatch(a.base);
  rdv_server_free(a.srv);
  if (term)
    event_free(term);
  if (intr)
    event_free(intr);
  if (hup)
    event_free(hup);
  event_base_free(a.base);
  free(a.dir);
  return 0;
}
