/*
 * Drives a js-libp2p test peer (tests/interop/js-peer.sh, see
 * tests/interop/README.md) from a C test: spawns it with pipes, sends JSON
 * command lines to its stdin and reads its JSON lines (replies and events)
 * from its stdout through an event on the test's libevent loop, so libgoop
 * hosts on the same loop keep running while the test waits for a reply.
 *
 *   goop_jspeer *js;
 *   const char *args[] = {"--listen", "/ip4/127.0.0.1/tcp/0", NULL};
 *   goop_jspeer_spawn(base, NULL, args, &js);
 *   goop_jspeer_wait_listening(js, 60000);
 *   json_t *r = goop_jspeer_call(js, json_pack("{s:s, s:s}", "cmd", "ping", "addr", a), 10000);
 *   ... json_is_true(json_object_get(r, "ok")) ...
 *   json_decref(r);
 *   goop_jspeer_close(js, 5000);
 *
 * The child's stderr is inherited. Lines that are not JSON objects are
 * printed to stderr and dropped.
 */
#ifndef GOOP_JSPEER_H
#define GOOP_JSPEER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
typedef struct goop_jspeer goop_jspeer;

/* The js-peer program: $GOOP_JS_PEER, else TEST_DATA_DIR/../interop/js-peer.sh if
 * TEST_DATA_DIR is defined and the file exists, else NULL (tests then skip). */
const char *goop_jspeer_program(void);

/*
 * Start |program| (NULL = goop_jspeer_program()) with the NULL-terminated
 * |args| (may be NULL). Returns 0, GOOP_ENOENT (no program) or a system error.
 */
int goop_jspeer_spawn(struct event_base *base, const char *program, const char *const *args,
                      goop_jspeer **ret);

/* Wait for the "listening" event (the first line). Returns 0 or GOOP_ETIMEDOUT / GOOP_ECLOSED. */
int goop_jspeer_wait_listening(goop_jspeer *js, int timeout_ms);
/* Its Peer ID (base58) and listen addresses (ending in /p2p/<id>); valid after wait_listening. */
const char *goop_jspeer_peer_id(const goop_jspeer *js);
const char *goop_jspeer_addr(const goop_jspeer *js, size_t i);

/* Send |cmd| (a JSON object; borrowed, gets an "id" set). Returns the id (> 0) or a GOOP_E* code. */
int goop_jspeer_send(goop_jspeer *js, json_t *cmd);
/* Run the loop until the reply with |id| arrives; returns it (caller owns a reference) or NULL on
 * timeout or when the child's stdout closed. */
json_t *goop_jspeer_wait_reply(goop_jspeer *js, int id, int timeout_ms);
/* send + wait_reply. |cmd| is consumed (may be NULL: returns NULL). */
json_t *goop_jspeer_call(goop_jspeer *js, json_t *cmd, int timeout_ms);
/* Run the loop until an event line with "event" == |name| (and, if |key| is not NULL, a string
 * member |key| == |value|) arrives or is queued; removes and returns it (caller owns it), or NULL. */
json_t *goop_jspeer_wait_event(goop_jspeer *js, const char *name, const char *key, const char *value,
                               int timeout_ms);
/* Poll: run the loop once without blocking long (at most |max_ms|). */
void goop_jspeer_poll(goop_jspeer *js, int max_ms);
/* Run the loop until *|flag| is true or |timeout_ms| passed; returns *|flag|. */
bool goop_jspeer_run_until(goop_jspeer *js, const volatile bool *flag, int timeout_ms);
/* Run the loop for |ms| milliseconds. */
void goop_jspeer_run_for(goop_jspeer *js, int ms);
/* Milliseconds on the monotonic clock. */
uint64_t goop_jspeer_now_ms(void);

/* true once the child's stdout reached EOF. */
bool goop_jspeer_eof(const goop_jspeer *js);
pid_t goop_jspeer_pid(const goop_jspeer *js);
/* Send |sig| to the child. Returns 0 or a system error. */
int goop_jspeer_kill(goop_jspeer *js, int sig);

/* Ask the child to exit ("exit" command, then stdin closed), wait up to |timeout_ms| for it,
 * SIGKILL it after that, reap it and free everything. Returns the exit status (0..255), 128+signal
 * if it was killed by a signal, or a negative GOOP_E* code. NULL returns GOOP_EINVAL. */
int goop_jspeer_close(goop_jspeer *js, int timeout_ms);

/* ---- helpers for replies ---- */

/* true if |reply| is non-NULL and has "ok": true. */
bool goop_jspeer_ok(const json_t *reply);
/* The "error" text of a reply ("(no reply)" for NULL, "" if absent). */
const char *goop_jspeer_error(const json_t *reply);
/* true if the JSON array |arr| holds the string |s|. */
bool goop_jspeer_array_has(const json_t *arr, const char *s);

#endif
