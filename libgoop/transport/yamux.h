/*
 * Sans-I/O yamux session core (/yamux/1.0.0). Internal, never installed.
 *
 * The core owns no socket and no timer. The glue feeds received bytes with
 * goop_yamux_feed(), drains goop_yamux_output() to the connection, and reacts
 * to the callbacks. Streams are named by their 32-bit yamux id; the client
 * (connection initiator) opens odd ids, the server even ids.
 *
 * Re-entrancy: every callback runs when the session's internal state is
 * consistent. From inside any callback the application may call
 * goop_yamux_write(), goop_yamux_close_write(), goop_yamux_reset(),
 * goop_yamux_consume(), goop_yamux_open_stream(), goop_yamux_ping(),
 * goop_yamux_goaway(), goop_yamux_set_rtt(), the getters and
 * goop_yamux_output(), on any stream including the one the callback is about.
 * A stream freed during a callback stays valid memory until the outermost
 * call returns; its id is gone from the table at once. Never call
 * goop_yamux_feed() or goop_yamux_free() from a callback.
 *
 * Lifecycle of a stream: opened (goop_yamux_open_stream(), or accepted in
 * on_stream_open) -> data both ways -> each side half-closes with FIN -> when
 * our FIN was sent and the peer's FIN received, or on a reset in either
 * direction, the stream is freed and on_stream_closed runs (only for streams
 * we opened or accepted). After that, frames for the id are silently ignored.
 *
 * Fatal (session) errors: version != 0, unknown type, Data/WindowUpdate on
 * id 0, SYN with the opener's wrong parity or for an id that is open, Data
 * beyond the receive window, a WindowUpdate that lifts the send window past
 * 2^32-1. Not detected: a SYN reusing the id of a stream already freed (ids
 * of finished streams are not remembered). Inbound SYNs beyond
 * max_inbound_streams, after a GoAway either way, or refused by the
 * application are answered with RST and the stream is not created.
 *
 * Timers are the glue's job: send keepalives with goop_yamux_ping(), time
 * out missing answers (on_ping with is_ack), feed the measured RTT back with
 * goop_yamux_set_rtt().
 */
#ifndef GOOP_TRANSPORT_YAMUX_H
#define GOOP_TRANSPORT_YAMUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/internal.h"
#include "core/buf.h"

/* Wire constants (libp2p yamux spec). */
#define GOOP_YAMUX_HEADER_LEN 12
#define GOOP_YAMUX_TYPE_DATA 0
#define GOOP_YAMUX_TYPE_WINDOW_UPDATE 1
#define GOOP_YAMUX_TYPE_PING 2
#define GOOP_YAMUX_TYPE_GOAWAY 3
#define GOOP_YAMUX_FLAG_SYN 0x1
#define GOOP_YAMUX_FLAG_ACK 0x2
#define GOOP_YAMUX_FLAG_FIN 0x4
#define GOOP_YAMUX_FLAG_RST 0x8
/* Every stream starts with this receive window on both sides. */
#define GOOP_YAMUX_DEFAULT_WINDOW 262144u
/* GoAway codes. */
#define GOOP_YAMUX_GOAWAY_NORMAL 0
#define GOOP_YAMUX_GOAWAY_PROTO_ERROR 1
#define GOOP_YAMUX_GOAWAY_INTERNAL_ERROR 2

typedef struct goop_yamux goop_yamux;

struct goop_yamux_config {
  uint32_t initial_window;       /* receive window we grant per stream; >= 256 KiB (default 256 KiB) */
  uint32_t max_window;           /* auto-tune ceiling; >= initial_window (default 16 MiB) */
  uint32_t max_inbound_streams;  /* open inbound streams; more SYNs are answered with RST (default 1000) */
  uint32_t max_outbound_unacked; /* our SYNs not yet ACKed; open_stream fails beyond (default 256) */
  uint32_t max_frame_payload;    /* largest Data payload we send, > 0 (default 65524) */
};

/* Fill |cfg| with the defaults listed above. */
void goop_yamux_config_default(struct goop_yamux_config *cfg);

#define GOOP_YAMUX_CALLBACKS_VERSION 1

/*
 * Callbacks; any member may be NULL. |ud| is the pointer given to
 * goop_yamux_new(). Pointers to data are valid only during the call.
 */
struct goop_yamux_callbacks {
  uint32_t version; /* GOOP_YAMUX_CALLBACKS_VERSION */
  /* The peer opened stream |id|. Return 0 to accept (an ACK is sent if the
   * callback did not already send a frame on it), < 0 to refuse (the core
   * sends RST and forgets the stream; no on_stream_closed). NULL: accept. */
  int (*on_stream_open)(goop_yamux *y, uint32_t id, void *ud);
  /* |len| > 0 bytes arrived on |id|. Call goop_yamux_consume() once the
   * application has processed them (now or later) to reopen the window.
   * Return < 0 to reset the stream (RST, code 0). A frame's payload may
   * arrive in several calls. */
  int (*on_stream_data)(goop_yamux *y, uint32_t id, const uint8_t *data, size_t len, void *ud);
  /* The peer half-closed |id|: no more data will arrive. */
  void (*on_stream_fin)(goop_yamux *y, uint32_t id, void *ud);
  /* The peer reset |id| with |code| (0 if the RST came on a Data frame).
   * During the call writes on |id| fail with GOOP_ECLOSED and
   * goop_yamux_reset() is a no-op; on_stream_closed follows. */
  void (*on_stream_reset)(goop_yamux *y, uint32_t id, uint32_t code, void *ud);
  /* The send window of |id| grew from 0: goop_yamux_write() accepts bytes again. */
  void (*on_stream_writable)(goop_yamux *y, uint32_t id, void *ud);
  /* |id| is finished in both directions or reset; its state is freed. */
  void (*on_stream_closed)(goop_yamux *y, uint32_t id, void *ud);
  /* Ping from the peer (|is_ack| false; the core already queued the answer)
   * or the answer to our goop_yamux_ping() (|is_ack| true). */
  void (*on_ping)(goop_yamux *y, uint32_t opaque, bool is_ack, void *ud);
  /* The peer sent GoAway with |code|; no new streams can be opened. Existing
   * streams keep working. */
  void (*on_goaway)(goop_yamux *y, uint32_t code, void *ud);
};

/*
 * Create a session. |is_client| selects odd stream ids. |cfg| may be NULL
 * (defaults); |cb| is copied; |ud| is passed to every callback. Returns 0,
 * GOOP_EINVAL (bad config or callbacks version) or GOOP_ENOMEM; |*ret| is
 * untouched on failure. Not callable from callbacks (there are none yet).
 */
int goop_yamux_new(bool is_client, const struct goop_yamux_config *cfg, const struct goop_yamux_callbacks *cb,
                   void *ud, goop_yamux **ret);

/* Free the session and every stream without callbacks. NULL is a no-op.
 * Never from a callback. */
void goop_yamux_free(goop_yamux *y);

/*
 * Feed |len| received bytes. All input is consumed: a partial frame header
 * (< 12 bytes) is kept internally; Data payloads are passed to
 * on_stream_data as they arrive, so no payload is buffered. |now| is the
 * current time (for window auto-tuning).
 * Returns 0, or a fatal session error: GOOP_EPROTO (malformed or illegal
 * frame), GOOP_ENOMEM, GOOP_ESTATE (called from a callback). After a fatal
 * error the core has queued GoAway(protocol error) when it could, sends
 * nothing else, and every later call returns the same error; the caller
 * should flush the output and free the session. Not callable from callbacks.
 */
int goop_yamux_feed(goop_yamux *y, const uint8_t *data, size_t len, goop_tstamp now);

/*
 * The bytes to send, owned by the session: every frame queued so far. The
 * caller writes a prefix and removes it with goop_buf_consume() (or
 * goop_buf_reset() after taking all). Frames queued since the previous call
 * are appended with control frames (ping answers, window updates, SYN,
 * GoAway) ahead of Data, so a glue that calls this often keeps keepalive
 * answers from waiting behind bulk data; FIN and RST stay behind their
 * stream's Data. Frames are whole, so any written prefix keeps the frame
 * sequence intact. Never NULL. Callable from callbacks, but the buffer may
 * grow during callbacks: re-read |len| after any call into the session.
 */
goop_buf *goop_yamux_output(goop_yamux *y);

/*
 * Open an outbound stream: sends WindowUpdate|SYN (delta = initial_window -
 * 256 KiB). On success stores the id in |*ret_id|. Returns 0, GOOP_ELIMIT
 * (max_outbound_unacked SYNs pending or ids exhausted), GOOP_EGOAWAY (GoAway
 * sent or received), GOOP_ENOMEM, or the fatal error. Callable from callbacks.
 */
int goop_yamux_open_stream(goop_yamux *y, uint32_t *ret_id);

/*
 * Queue up to |len| bytes of |data| (copied) on |id|, split into Data frames
 * of at most max_frame_payload bytes, never more than the peer's window.
 * Returns the number of bytes accepted (0 when the window is 0: wait for
 * on_stream_writable), or GOOP_ECLOSED (unknown id, after our FIN or a reset),
 * GOOP_ENOMEM, or the fatal error. Callable from callbacks.
 */
long goop_yamux_write(goop_yamux *y, uint32_t id, const uint8_t *data, size_t len);

/*
 * The application has processed |n| more received bytes of |id|. Credits the
 * receive window; a WindowUpdate is sent when at least half of the target
 * window can be granted. If the previous update was less than 4 * rtt ago the
 * target doubles (up to max_window). Returns 0 (also for unknown/closed ids:
 * nothing is sent), GOOP_EINVAL (|n| exceeds the bytes delivered and not yet
 * consumed), GOOP_ENOMEM or the fatal error. Callable from callbacks.
 */
int goop_yamux_consume(goop_yamux *y, uint32_t id, size_t n, goop_tstamp now);

/*
 * Half-close |id| (WindowUpdate|FIN, length 0). Frees the stream (and calls
 * on_stream_closed) if the peer's FIN was already received. Returns 0,
 * GOOP_ECLOSED (unknown id or FIN already sent), GOOP_ENOMEM or the fatal
 * error. Callable from callbacks.
 */
int goop_yamux_close_write(goop_yamux *y, uint32_t id);

/*
 * Reset |id| (WindowUpdate|RST, length = |code|), free it and call
 * on_stream_closed (not on_stream_reset). Returns 0, GOOP_ECLOSED (unknown
 * id), GOOP_ENOMEM or the fatal error. Callable from callbacks.
 */
int goop_yamux_reset(goop_yamux *y, uint32_t id, uint32_t code);

/* Bytes goop_yamux_write() would accept now on |id| (0 if unknown or closed). */
size_t goop_yamux_send_window(const goop_yamux *y, uint32_t id);

/* Send Ping|SYN with |opaque|; the answer arrives as on_ping(is_ack = true).
 * Returns 0, GOOP_ENOMEM or the fatal error. Callable from callbacks. */
int goop_yamux_ping(goop_yamux *y, uint32_t opaque);

/* Smoothed round-trip time in microseconds for window auto-tuning (0 = unknown,
 * no auto-tuning). Callable from callbacks. */
void goop_yamux_set_rtt(goop_yamux *y, goop_tstamp rtt_us);

/*
 * Send GoAway with |code| (GOOP_YAMUX_GOAWAY_*). Afterwards no stream can be
 * opened and inbound SYNs are refused with RST; existing streams continue.
 * Returns 0, GOOP_EALREADY (already sent), GOOP_ENOMEM or the fatal error.
 * Callable from callbacks.
 */
int goop_yamux_goaway(goop_yamux *y, uint32_t code);

/* Bytes waiting to be sent: the output buffer plus frames queued since the
 * last goop_yamux_output() call. */
size_t goop_yamux_pending(const goop_yamux *y);

/* Number of live streams (both directions). */
size_t goop_yamux_num_streams(const goop_yamux *y);

/* Attach an application pointer to stream |id|. Returns 0 or GOOP_ECLOSED. */
int goop_yamux_stream_set_data(goop_yamux *y, uint32_t id, void *data);
/* The pointer set by goop_yamux_stream_set_data(); NULL if none or unknown id.
 * Also works inside on_stream_closed for the stream being closed. */
void *goop_yamux_stream_get_data(const goop_yamux *y, uint32_t id);

/* The fatal error the session failed with, or 0. */
int goop_yamux_error(const goop_yamux *y);

#endif
