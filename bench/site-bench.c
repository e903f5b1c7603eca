/*
 * Site benchmark driver (run by bench/site.sh, two processes on loopback):
 *
 *   site-bench serve DIR FILE_BYTES      peer directory DIR: a FILE_BYTES big.bin in the site
 *                                        root, table "bench" (policy open); serves the four
 *                                        protocols; prints {"addr":"/ip4/.../p2p/<id>"}
 *   site-bench fetch ADDR PATH [REPEAT]  fetch PATH, one JSON line per run with MiB/s
 *   site-bench data ADDR N [INFLIGHT]    N inserts then N queries over /goop/data,
 *                                        INFLIGHT requests at a time; ops/s per kind
 */
#include <event2/event.h>
#include <fcntl.h>
#include <goop/goop.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "site/site-internal.h"

static struct event_base *base;
static goop_ctx *ctx;
static goop_host *host;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int setup(goop_identity *id) {
  if (!id && goop_identity_generate(&id))
    return 1;
  if (goop_host_new(ctx, id, NULL, &host) || goop_host_listen(host, "/ip4/127.0.0.1/tcp/0"))
    return 1;
  goop_identity_free(id);
  return 0;
}

static int cmd_serve(const char *dir, unsigned long long bytes) {
  char err[GOOP_ERRBUF_SIZE];
  goop_config *cfg;
  goop_identity *id;
  if (goop_peer_dir_open(dir, &cfg, &id, NULL, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  goop_peer_id self;
  goop_identity_peer_id(id, &self);
  goop_site *site;
  if (goop_site_open(cfg, &self, &site, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  goop_config_free(cfg);
  /* The big file. */
  char p[4096];
  snprintf(p, sizeof(p), "%s/big.bin", site->site_root);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  static uint8_t buf[1 << 20];
  for (size_t i = 0; i < sizeof(buf); i++)
    buf[i] = (uint8_t)(i * 31 + 7);
  for (unsigned long long off = 0; fd >= 0 && off < bytes; off += sizeof(buf)) {
    size_t n = bytes - off < sizeof(buf) ? (size_t)(bytes - off) : sizeof(buf);
    if (write(fd, buf, n) != (ssize_t)n)
      return 1;
  }
  if (fd < 0)
    return 1;
  close(fd);
  /* The table. */
  struct goop_site_caller owner = {site->owner_text, NULL, true};
  const char *create =
      "{\"op\":\"create-table\",\"name\":\"bench\",\"column_defs\":[{\"name\":\"msg\",\"type\":\"TEXT\"},"
      "{\"name\":\"n\",\"type\":\"INTEGER\"}]}";
  char *resp = NULL;
  if (goop_site_data_exec(site, &owner, create, strlen(create), &resp) || !strstr(resp, "\"ok\":true"))
    return 1;
  free(resp);
  if (sqlite3_exec(site->db, "UPDATE _tables SET insert_policy = 'public' WHERE name = 'bench'", NULL, NULL,
                   NULL))
    return 1;
  if (setup(id) || goop_site_serve(site, host))
    return 1;
  char a[256], t[GOOP_PEER_ID_STR_MAX];
  goop_host_listen_addr(host, 0, a, sizeof(a));
  goop_peer_id_to_string(&self, t, sizeof(t));
  printf("{\"addr\":\"%s/p2p/%s\"}\n", a, t);
  fflush(stdout);
  event_base_dispatch(base);
  return 0;
}

static goop_peer_id target;

static int connect_to(const char *addr) {
  const char *p2p = strstr(addr, "/p2p/");
  if (!p2p || goop_peer_id_from_string(p2p + 5, &target) || goop_host_add_addr(host, &target, addr, 0))
    return 1;
  return 0;
}

struct fetch_state {
  bool done;
  int status;
  uint64_t got;
};
static int f_chunk(goop_site_fetch *f, const uint8_t *d, size_t len, void *ud) {
  (void)f, (void)d;
  ((struct fetch_state *)ud)->got += len;
  return 0;
}
static void f_done(goop_site_fetch *f, int status, const char *msg, void *ud) {
  (void)f, (void)msg;
  struct fetch_state *s = ud;
  s->status = status;
  s->done = true;
  event_base_loopbreak(base);
}

static int cmd_fetch(const char *addr, const char *path, int repeat) {
  if (setup(NULL) || connect_to(addr))
    return 1;
  static const struct goop_site_fetch_callbacks cb = {GOOP_SITE_FETCH_CALLBACKS_V1, NULL, f_chunk, f_done};
  for (int i = 0; i < repeat; i++) {
    struct fetch_state s = {0};
    double t0 = now_s();
    if (goop_site_fetch_start(host, &target, path, UINT64_MAX, 30000, &cb, &s, NULL))
      return 1;
    while (!s.done)
      event_base_dispatch(base);
    double dt = now_s() - t0;
    printf("{\"fetch\":\"%s\",\"status\":%d,\"bytes\":%llu,\"s\":%.3f,\"mib_s\":%.1f}\n", path, s.status,
           (unsigned long long)s.got, dt, (double)s.got / 1048576.0 / dt);
    fflush(stdout);
    if (s.status)
      return 1;
  }
  return 0;
}

static int data_left, data_inflight, data_errors;
static const char *data_kind;
static long data_seq;

static void data_next(void);
static void d_cb(goop_host *h, int status, const char *resp, size_t len, void *ud) {
  (void)h, (void)ud;
  if (status || !resp || len < 11 || memcmp(resp, "{\"ok\":true", 10) != 0)
    data_errors++;
  data_inflight--;
  data_next();
  if (data_inflight == 0 && data_left == 0)
    event_base_loopbreak(base);
}
static void data_next(void) {
  char req[256];
  while (data_left > 0 && data_inflight < 0x7fffffff) {
    if (strcmp(data_kind, "insert") == 0)
      snprintf(req, sizeof(req),
               "{\"op\":\"insert\",\"table\":\"bench\",\"data\":{\"msg\":\"row %ld\",\"n\":%ld}}", data_seq,
               data_seq);
    else
      snprintf(req, sizeof(req), "{\"op\":\"query\",\"table\":\"bench\",\"where\":\"n = ?\",\"args\":[%ld]}",
               data_seq % 1000);
    data_seq++;
    if (goop_data_request(host, &target, req, strlen(req), 30000, d_cb, NULL)) {
      data_errors++;
      data_left--;
      continue;
    }
    data_left--;
    data_inflight++;
    break;
  }
}

static int run_kind(const char *kind, int n, int inflight) {
  data_kind = kind;
  data_left = n;
  data_errors = 0;
  data_seq = 0;
  double t0 = now_s();
  for (int i = 0; i < inflight && data_left > 0; i++)
    data_next();
  while (data_inflight > 0 || data_left > 0)
    event_base_dispatch(base);
  double dt = now_s() - t0;
  printf("{\"data\":\"%s\",\"ops\":%d,\"inflight\":%d,\"errors\":%d,\"s\":%.3f,\"ops_s\":%.0f}\n", kind, n,
         inflight, data_errors, dt, n / dt);
  fflush(stdout);
  return data_errors ? 1 : 0;
}

static int cmd_data(const char *addr, int n, int inflight) {
  if (setup(NULL) || connect_to(addr))
    return 1;
  int rc = run_kind("insert", n, inflight);
  rc |= run_kind("query", n, inflight);
  return rc;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  base = event_base_new();
  if (!base || goop_ctx_new(base, &ctx))
    return 1;
  int rc = 2;
  if (argc >= 4 && strcmp(argv[1], "serve") == 0)
    rc = cmd_serve(argv[2], strtoull(argv[3], NULL, 10));
  else if (argc >= 4 && strcmp(argv[1], "fetch") == 0)
    rc = cmd_fetch(argv[2], argv[3], argc >= 5 ? atoi(argv[4]) : 1);
  else if (argc >= 4 && strcmp(argv[1], "data") == 0)
    rc = cmd_data(argv[2], atoi(argv[3]), argc >= 5 ? atoi(argv[4]) : 1);
  else
    fprintf(stderr,
            "usage: site-bench serve DIR BYTES | fetch ADDR PATH [REPEAT] | data ADDR N [INFLIGHT]\n");
  return rc;
}
