/*
 * multistream-select 1.0 (internal, sans-I/O).
 *
 * One goop_mss object runs one negotiation, as initiator (proposes protocol
 * IDs in order) or responder (accepts the first proposal a predicate or list
 * allows). Bytes from the peer go in through goop_mss_feed(); bytes for the
 * peer collect in goop_mss_output(), which the caller drains (write, then
 * goop_buf_consume()). Wire format: every message is
 * uvarint(len(s) + 1) ‖ s ‖ '\n'; the first message on each side is the
 * header "/multistream/1.0.0".
 *
 * goop_mss_feed() consumes only bytes that belong to the negotiation. Once it
 * returns GOOP_MSS_DONE, |*consumed| tells where the application data begins;
 * anything after it (read-ahead, lazily sent data) is the application's.
 *
 * Errors are sticky: after a negative return every later feed returns it too.
 *   GOOP_EPROTO       first message is not the exact header, or an initiator
 *                     got a reply that is neither the echo nor "na";
 *   GOOP_EPARSE       bad framing: bad varint, empty message, no trailing '\n';
 *   GOOP_EMSGSIZE     a message longer than GOOP_MSS_MSG_MAX (incl. '\n');
 *   GOOP_ELIMIT       a responder saw more than GOOP_MSS_MAX_PROPOSALS proposals;
 *   GOOP_ENEGOTIATION every proposal was refused (a lazy initiator: its
 *                     protocol was refused; goop_mss_rejected() is then true);
 *   GOOP_ENOMEM.
 */
#ifndef GOOP_TRANSPORT_MSS_H
#define GOOP_TRANSPORT_MSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define GOOP_MSS_PROTOCOL_ID "/multistream/1.0.0"
/* Largest message we send or accept: length of text + '\n'. */
#define GOOP_MSS_MSG_MAX 1024
/* Most protocol IDs a responder answers (accepted or not) before giving up;
 * also the most an initiator may propose. */
#define GOOP_MSS_MAX_PROPOSALS 32

/* Non-negative results of goop_mss_feed(). */
enum goop_mss_result {
  GOOP_MSS_NEED_MORE = 0,
  GOOP_MSS_DONE = 1,
};

/* Index reported by goop_mss_selected() when a predicate made the choice. */
#define GOOP_MSS_NO_INDEX ((size_t)-1)

typedef struct goop_mss goop_mss;

/* Responder predicate: true if |proto| (NUL-terminated, borrowed) is served. */
typedef bool (*goop_mss_supported_fn)(const char *proto, void *user_data);

/*
 * New initiator proposing |protos[0..n)| in order (copied; 1 <= n <=
 * GOOP_MSS_MAX_PROPOSALS; each non-empty, without '\n' or NUL, at most
 * GOOP_MSS_MSG_MAX - 1 bytes). The header and the first proposal are queued in
 * the output at once (one write). With |lazy|, the caller may write
 * application data right after that output without waiting; only the first
 * protocol is ever proposed, and a refusal is GOOP_ENEGOTIATION.
 * Returns 0, GOOP_EINVAL or GOOP_ENOMEM.
 */
int goop_mss_new_initiator(const char *const *protos, size_t n, bool lazy, goop_mss **ret);

/*
 * New responder that accepts a proposal when |supported| returns true
 * (|user_data| is passed through). "ls" and "/libp2p/simultaneous-connect" are
 * always refused with "na", without asking the predicate. Our header is queued
 * as soon as the peer's header has arrived, so a header arriving together with
 * a proposal produces header + reply in one output.
 */
int goop_mss_new_responder(goop_mss_supported_fn supported, void *user_data, goop_mss **ret);

/* New responder accepting any of |protos[0..n)| (copied; n <= 256). */
int goop_mss_new_responder_list(const char *const *protos, size_t n, goop_mss **ret);

/* Free. NULL is a no-op. */
void goop_mss_free(goop_mss *m);

/*
 * Feed |len| bytes from the peer. Returns GOOP_MSS_NEED_MORE (all |len| bytes
 * consumed; feed more when they arrive), GOOP_MSS_DONE (|*consumed| bytes were
 * negotiation, the rest is application data), or a negative error (see top).
 * Always check goop_mss_output() afterwards, also after an error-free
 * NEED_MORE. After DONE, feeding again returns DONE with |*consumed| = 0.
 */
int goop_mss_feed(goop_mss *m, const uint8_t *data, size_t len, size_t *consumed);

/* Bytes to send to the peer. The caller writes and consumes them. */
goop_buf *goop_mss_output(goop_mss *m);

/*
 * After DONE: the agreed protocol (borrowed, valid until goop_mss_free()) and
 * its index in the initiator's or responder's list (GOOP_MSS_NO_INDEX for a
 * predicate responder). Either out-pointer may be NULL. GOOP_ESTATE before.
 */
int goop_mss_selected(const goop_mss *m, const char **ret_proto, size_t *ret_index);

/* true once negotiation finished successfully. */
bool goop_mss_is_done(const goop_mss *m);

/*
 * true if the peer answered "na" to the proposal of a lazy initiator (or to
 * every proposal of a normal one). The stream should then be reset: data
 * written lazily went to a peer that refused the protocol.
 */
bool goop_mss_rejected(const goop_mss *m);

/* true if the caller may write application data now: a lazy initiator after
 * creation, anyone after DONE. */
bool goop_mss_can_send(const goop_mss *m);

/* Append one framed multistream message "s\n" to |out| (s as in the rules above). */
int goop_mss_write_msg(goop_buf *out, const char *s);

#endif
