/*
 * Helper of test-rendezvous-tls.py: rdv_client_fetch_relay() against a real
 * server. Usage: rdv-relay-fetch URL [COUNT | free]
 *
 * Fetches COUNT times (default 1), each next fetch started from within the
 * previous callback, and prints per result
 *   status <code> <name>
 *   peer_id <id>          (on success)
 *   addr <multiaddr>      (on success, one line each)
 * A second fetch while one is in flight must fail with GOOP_EBUSY ("busy ok").
 * Exits 0 when every fetch reported, 1 otherwise. With "free", the client is
 * freed 300 ms after the fetch started: nothing may be reported (exit 0).
 */
#include "rendezvous/rdv-client.h"

#include <event2/event.h>
#include <goop/common.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct event_base *base;
static struct rdv_client *client;
static int remaining;
static int reported;

static void on_relay(int status, const char *peer_id, const char *const *addrs, size_t n, void *ud);

static int start(void) {
  int rc = rdv_client_fetch_relay(client, on_relay, NULL);
  if (rc != 0) {
    printf("fetch failed %s\n", goop_err_name(rc));
    return rc;
  }
  rc = rdv_client_fetch_relay(client, on_relay, NULL);
  printf("%s\n", rc == GOOP_EBUSY ? "busy ok" : "busy not reported");
  return 0;
}

static void on_relay(int status, const char *peer_id, const char *const *addrs, size_t n, void *ud) {
  (void)ud;
  reported++;
  printf("status %d %s\n", status, status ? goop_err_name(status) : "OK");
  if (status == 0) {
    printf("peer_id %s\n", peer_id);
    for (size_t i = 0; i < n; i++)
      printf("addr %s\n", addrs[i]);
  } else if (peer_id || addrs || n) {
    printf("error with a result\n");
  }
  fflush(stdout);
  if (--remaining > 0) {
    if (start() != 0)
      event_base_loopbreak(base);
  } else {
    event_base_loopbreak(base);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: rdv-relay-fetch URL [COUNT]\n");
    return 2;
  }
  bool free_early = argc > 2 && strcmp(argv[2], "free") == 0;
  remaining = argc > 2 && !free_early ? atoi(argv[2]) : 1;
  int want = free_early ? 0 : remaining;
  base = event_base_new();
  char err[256];
  if (!base || rdv_client_new(base, argv[1], "", NULL, NULL, &client, err, sizeof(err)) != 0) {
    printf("new failed: %s\n", base ? err : "no event base");
    return 1;
  }
  if (rdv_client_fetch_relay(client, NULL, NULL) != GOOP_EINVAL)
    printf("NULL callback accepted\n");
  struct timeval early = {0, 300000};
  if (free_early)
    event_base_loopexit(base, &early);
  if (start() == 0)
    event_base_dispatch(base);
  rdv_client_free(client);
  event_base_free(base);
  return reported == want ? 0 : 1;
}
