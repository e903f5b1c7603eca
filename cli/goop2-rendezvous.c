/*
 * goop2-rendezvous: run a Goop² rendezvous server from a directory holding
 * its goop.json (created with defaults if missing).
 */
#include "rendezvous/rdv-host.h"

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
  struct rdv_host *rdv;
  goop_ctx *ctx;
  struct event_base *base;
};

static void on_stop(evutil_socket_t sig, short what, void *arg) {
  (void)what;
  struct app *a = arg;
  fprintf(stderr, "goop2-rendezvous: signal %d: shutting down\n", (int)sig);
  event_base_loopexit(a->base, NULL);
}

static void on_hup(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  struct app *a = arg;
  goop_config *cfg = NULL;
  char err[512];
  if (goop_config_load(a->cfg_path, &cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "goop2-rendezvous: reload failed, keeping the old settings: %s\n", err);
    return;
  }
  rdv_host_reload(a->rdv, cfg);
  goop_config_free(cfg);
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
  goop_config *cfg = NULL;
  char err[512];
  if (goop_config_ensure(a.cfg_path, &cfg, NULL, err, sizeof(err)) != 0) {
    fprintf(stderr, "Error: Failed to load config: %s\n", err);
    free(a.dir);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  a.base = event_base_new();
  if (!a.base || goop_ctx_new(a.base, &a.ctx) != 0) {
    fprintf(stderr, "Error: cannot create the event loop\n");
    goop_config_free(cfg);
    if (a.base)
      event_base_free(a.base);
    free(a.dir);
    return 1;
  }
  int rc = rdv_host_start(a.ctx, cfg, &a.rdv, err, sizeof(err));
  const char *bind = goop_config_get_string(cfg, "presence.rendezvous_bind");
  char shown[80];
  bool any = !bind || !bind[0] || strcmp(bind, "0.0.0.0") == 0 || strcmp(bind, "::") == 0;
  snprintf(shown, sizeof(shown), strchr(any ? "" : bind, ':') ? "[%s]" : "%s", any ? "127.0.0.1" : bind);
  goop_config_free(cfg);
  if (rc != 0) {
    fprintf(stderr, "Error: %s\n", err);
    goop_ctx_free(a.ctx);
    event_base_free(a.base);
    free(a.dir);
    return 1;
  }
  printf("Goop\xc2\xb2 rendezvous: dir %s, http://%s:%d\n", a.dir, shown, rdv_host_port(a.rdv));
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
  rdv_host_free(a.rdv);
  if (term)
    event_free(term);
  if (intr)
    event_free(intr);
  if (hup)
    event_free(hup);
  goop_ctx_free(a.ctx);
  event_base_free(a.base);
  free(a.dir);
  return 0;
}
