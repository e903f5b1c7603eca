/*
 * The libgoop test protocols (see tests/interop/README.md, "The test
 * protocols"): servers to register on a goop_host and clients that drive a
 * remote server, both on the host's libevent loop.
 *
 *   /goop-test/echo/1.0.0    every byte back until the remote closes; then close
 *   /goop-test/sink/1.0.0    read all, answer the 32-byte SHA-256, close
 *   /goop-test/source/1.0.0  read an 8-byte big-endian N, write N pattern bytes, close
 *   /goop-test/slow/1.0.0    read about 16 KiB per 100 ms, answer the 8-byte count, close
 *
 * The pattern: byte i = (i*31 + 7) & 0xff.
 *
 * Usage:
 *
 *   goop_test_serve_all(host, base);
 *   goop_test_client *c;
 *   goop_test_client_start(host, &peer, GOOP_TEST_ECHO, 64u << 20, 0, &c);
 *   ... run the loop until goop_test_client_result(c)->done ...
 *   goop_test_client_free(c);
 *
 * Only the public libgoop API and OpenSSL are used; nothing here depends on
 * the js harness.
 */
#ifndef GOOP_TESTPROTO_H
#define GOOP_TESTPROTO_H

#include <goop/goop.h>
#include <stdbool.h>
#include <stdint.h>

struct event_base;

#define GOOP_TEST_ECHO_ID "/goop-test/echo/1.0.0"
#define GOOP_TEST_SINK_ID "/goop-test/sink/1.0.0"
#define GOOP_TEST_SOURCE_ID "/goop-test/source/1.0.0"
#define GOOP_TEST_SLOW_ID "/goop-test/slow/1.0.0"

/* The slow reader's pace. */
#define GOOP_TEST_SLOW_CHUNK (16u * 1024u)
#define GOOP_TEST_SLOW_INTERVAL_MS 100u

enum goop_test_proto {
  GOOP_TEST_ECHO = 0,
  GOOP_TEST_SINK = 1,
  GOOP_TEST_SOURCE = 2,
  GOOP_TEST_SLOW = 3,
};

/* The protocol ID of |p|. */
const char *goop_test_proto_id(enum goop_test_proto p);

/* Byte |i| of the pattern. */
static inline uint8_t goop_test_pattern(uint64_t i) {
  return (uint8_t)((i * 31u + 7u) & 0xffu);
}
/* Fill |buf| with pattern bytes |offset| .. |offset| + |len| - 1. */
void goop_test_pattern_fill(uint8_t *buf, size_t len, uint64_t offset);
/* Index of the first byte of |buf| that differs from the pattern at |offset|, or -1. */
long goop_test_pattern_check(const uint8_t *buf, size_t len, uint64_t offset);

/* ---- servers ------------------------------------------------------------------ */

/* What the servers of this process did (all hosts together). */
struct goop_test_server_stats {
  uint64_t accepted;     /* streams handed to a test-protocol handler */
  uint64_t finished;     /* served to the end (answer written, write side closed) */
  uint64_t failed;       /* reset, connection lost or protocol error */
  uint64_t active;       /* accepted - finished - failed */
  uint64_t bytes_in;     /* bytes read by all servers */
  uint64_t bytes_out;    /* bytes written by all servers */
  uint64_t slow_counted; /* total of the last finished slow stream */
};
extern struct goop_test_server_stats goop_test_server_stats;

/* Serve all four protocols on |host|. |base| is the host's loop (for the slow
 * reader's timer; the base of the latest call serves all hosts, so keep every host
 * on one loop). Returns 0 or the first goop_host_set_stream_handler() error.
 * Server state lives until the stream ends; freeing the host ends it (on_error). */
int goop_test_serve_all(goop_host *host, struct event_base *base);
/* Serve one of them. */
int goop_test_serve(goop_host *host, struct event_base *base, enum goop_test_proto p);

/* ---- clients ------------------------------------------------------------------ */

/* Outcome of a client run; all fields are updated as it goes. */
struct goop_test_result {
  bool done;                            /* finished, successfully or not */
  int status;                           /* 0, the stream/open error, or GOOP_EPROTO when the data was wrong */
  uint64_t sent;                        /* bytes written (header excluded for source) */
  uint64_t received;                    /* bytes read (the echo, the source data, or the answer) */
  uint64_t counted;                     /* slow: the count the server answered */
  uint64_t start_us, opened_us, end_us; /* monotonic clock */
  char error[160];                      /* text for a failure ("" when ok) */
};

typedef struct goop_test_client goop_test_client;

/*
 * Open a |p| stream to |peer| on |host| and move |bytes| bytes through it:
 * echo sends |bytes| and checks the echo (length and SHA-256 of both
 * directions), sink sends |bytes| and checks the 32-byte digest answer,
 * source asks for |bytes| and checks length and pattern, slow sends |bytes|
 * and checks the 8-byte count. The client closes its write side after
 * sending. |timeout_ms| bounds stream opening (0 = 10 s). Returns 0 (the
 * result fills in later) or a goop_host_new_stream() error.
 */
int goop_test_client_start(goop_host *host, const goop_peer_id *peer, enum goop_test_proto p, uint64_t bytes,
                           uint32_t timeout_ms, goop_test_client **ret);
const struct goop_test_result *goop_test_client_result(const goop_test_client *c);
/* The stream once open (borrowed; NULL before and after). */
goop_stream *goop_test_client_stream(const goop_test_client *c);
/* Abort: reset the stream if it is still open; the result becomes done with GOOP_ECANCELED. */
void goop_test_client_cancel(goop_test_client *c);
/* Free (cancels first if still running). Safe from any non-callback context. NULL is a no-op. */
void goop_test_client_free(goop_test_client *c);

#endif
