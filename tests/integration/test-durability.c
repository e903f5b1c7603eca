/* Durability of the site store: a child inserts rows as fast as it can and
 * reports every acknowledged id on a pipe; the parent SIGKILLs it at random
 * moments, reopens the database and checks that every acknowledged row is
 * there and that PRAGMA integrity_check says "ok". */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "site/site-internal.h"
#include "tap.h"

#define ROUNDS 10

static char peer_dir[256];
static goop_peer_id owner_id;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static goop_site *open_site(void) {
  goop_config *cfg = NULL;
  char err[GOOP_ERRBUF_SIZE];
  if (goop_config_parse("{}", 2, peer_dir, &cfg, err, sizeof(err)) != 0)
    return NULL;
  goop_site *s = NULL;
  if (goop_site_open(cfg, &owner_id, &s, err, sizeof(err)) != 0)
    printf("# open: %s\n", err);
  goop_config_free(cfg);
  return s;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The child: insert forever, report each acknowledged id. */
static void child(int wfd) {
  goop_site *s = open_site();
  if (!s)
    _exit(2);
  struct goop_site_caller owner = {s->owner_text, NULL, true};
  struct goop_site_caller visitor = {"12D3KooWVisitor", "v@example.com", false};
  const char *mk =
      "{\"op\":\"create-table\",\"name\":\"log\",\"column_defs\":[{\"name\":\"n\",\"type\":\"INTEGER\"},"
      "{\"name\":\"text\",\"type\":\"TEXT\"}]}";
  char *resp = NULL;
  if (goop_site_data_exec(s, &owner, mk, strlen(mk), &resp) != 0 || !strstr(resp, "\"ok\":true"))
    _exit(3);
  free(resp);
  sqlite3_exec(s->db, "UPDATE _tables SET insert_policy = 'open' WHERE name = 'log'", NULL, NULL, NULL);
  for (long i = 0;; i++) {
    char req[256];
    snprintf(req, sizeof(req),
             "{\"op\":\"insert\",\"table\":\"log\",\"data\":{\"n\":%ld,\"text\":\"row %ld with some padding "
             "text to make pages fill\"}}",
             i, i);
    resp = NULL;
    if (goop_site_data_exec(s, i % 2 ? &owner : &visitor, req, strlen(req), &resp) != 0)
      _exit(4);
    json_t *j = json_loads(resp, 0, NULL);
    free(resp);
    json_int_t id = json_integer_value(json_object_get(json_object_get(j, "data"), "id"));
    json_decref(j);
    if (id <= 0)
      _exit(5);
    int64_t v = id;
    if (write(wfd, &v, sizeof(v)) != (ssize_t)sizeof(v))
      _exit(6);
  }
}

static void test_kill_rounds(void) {
  unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
  printf("# seed %u\n", seed);
  srand(seed);
  int64_t *acked = NULL;
  size_t n_acked = 0, cap = 0;
  for (int round = 0; round < ROUNDS; round++) {
    int fds[2];
    if (pipe(fds) != 0)
      return;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      child(fds[1]);
    }
    close(fds[1]);
    int64_t deadline = now_ms() + 100 + rand() % 400;
    bool killed = false;
    size_t before = n_acked;
    unsigned char buf[8192];
    size_t have = 0;
    for (;;) {
      int64_t left = deadline - now_ms();
      if (!killed && left <= 0) {
        kill(pid, SIGKILL);
        killed = true;
      }
      struct pollfd p = {fds[0], POLLIN, 0};
      int pr = poll(&p, 1, killed ? 1000 : (int)(left > 0 ? left : 0));
      if (pr < 0 && errno == EINTR)
        continue;
      if (pr <= 0) {
        if (killed)
          break;
        continue;
      }
      ssize_t r = read(fds[0], buf + have, sizeof(buf) - have);
      if (r <= 0)
        break;
      have += (size_t)r;
      size_t whole = have / 8 * 8;
      for (size_t o = 0; o < whole; o += 8) {
        if (n_acked == cap) {
          cap = cap ? cap * 2 : 4096;
          acked = realloc(acked, cap * sizeof(*acked));
        }
        memcpy(&acked[n_acked++], buf + o, 8);
      }
      memmove(buf, buf + whole, have - whole);
      have -= whole;
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    if (!WIFSIGNALED(status))
      printf("# child exited with %d\n", WEXITSTATUS(status));
    printf("# round %d: %zu rows acknowledged\n", round, n_acked - before);

    /* reopen: every acknowledged row is there, the file is sound */
    goop_site *s = open_site();
    CHECK(s != NULL);
    if (!s)
      break;
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL);
    CHECK(sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0);
    sqlite3_finalize(st);
    sqlite3_prepare_v2(s->db, "SELECT 1 FROM log WHERE _id = ?", -1, &st, NULL);
    size_t missing = 0;
    for (size_t i = 0; st && i < n_acked; i++) {
      sqlite3_reset(st);
      sqlite3_bind_int64(st, 1, acked[i]);
      if (sqlite3_step(st) != SQLITE_ROW)
        missing++;
    }
    sqlite3_finalize(st);
    CHECK_INT_EQ(missing, 0);
    goop_site_free(s);
  }
  CHECK(n_acked > 0);
  printf("# %zu acknowledged rows in total, all present\n", n_acked);
  free(acked);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  snprintf(peer_dir, sizeof(peer_dir), "/tmp/goop-durable-XXXXXX");
  if (!mkdtemp(peer_dir))
    return 1;
  goop_identity *id = NULL;
  if (goop_identity_generate(&id) != 0)
    return 1;
  goop_identity_peer_id(id, &owner_id);
  goop_identity_free(id);
  RUN(test_kill_rounds);
  nftw(peer_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return tap_done();
}
