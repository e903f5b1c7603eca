/*
 * Peer side of a rendezvous server (presence.rendezvous_wan): POST our
 * presence at every heartbeat and follow GET /events, reconnecting with a
 * jittered backoff (250 ms doubling to 8 s, reset once a stream said ": ok").
 * Plain http:// only for now (https:// is refused at start).
 */
#ifndef GOOP_CLI_RDV_CLIENT_H
#define GOOP_CLI_RDV_CLIENT_H

#include <event2/event.h>
#include <goop/presence.h>
#include <stdbool.h>
#include <stddef.h>

struct rdv_client;

/* A message from the stream (never our own); valid during the call. */
typedef void (*rdv_client_msg_fn)(const struct goop_presence_msg *m, void *ud);

/* Starts the subscription at once. Returns 0 or -1 with the reason in |err|. */
int rdv_client_new(struct event_base *base, const char *url, const char *self_id, rdv_client_msg_fn fn,
                   void *ud, struct rdv_client **ret, char *err, size_t errlen);
/* POST |m| to /publish (2 s timeout, result ignored; one in flight at a time, but
 * an offline message is queued behind a pending one). */
void rdv_client_publish(struct rdv_client *c, const struct goop_presence_msg *m);
/* NULL is a no-op. */
void rdv_client_free(struct rdv_client *c);

/* ---- the event-stream line splitter (separate for tests and fuzzing) ---- */

#define RDV_SSE_LINE_MAX 65536 /* longer lines are dropped whole */

/* A complete line: |comment| for ": ..." lines (|data| is the whole line),
 * otherwise the trimmed payload of a "data:" line. Other lines are skipped. */
typedef void (*rdv_sse_line_fn)(bool comment, const char *data, size_t len, void *ud);

struct rdv_sse {
  char *line;
  size_t len;
  bool overflow;
  rdv_sse_line_fn fn;
  void *ud;
};

/* Returns 0 or -1 (ENOMEM). */
int rdv_sse_init(struct rdv_sse *p, rdv_sse_line_fn fn, void *ud);
/* Forget a partial line (new connection). */
void rdv_sse_reset(struct rdv_sse *p);
void rdv_sse_feed(struct rdv_sse *p, const char *data, size_t n);
void rdv_sse_free(struct rdv_sse *p);

#endif
