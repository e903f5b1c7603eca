/*
 * Noise security handshake for libp2p (`/noise`), sans-I/O (internal).
 *
 * Noise_XX_25519_ChaChaPoly_SHA256 with the libp2p handshake payload
 * (identity key, signature over the static key, early muxer negotiation):
 *
 *   -> e                    (msg1, empty payload)
 *   <- e, ee, s, es         (msg2, responder's NoiseHandshakePayload)
 *   -> s, se                (msg3, initiator's NoiseHandshakePayload)
 *
 * Every handshake message and every transport frame is framed on the wire as
 * a 2-byte big-endian length followed by at most 65535 bytes. The handshake
 * object never does I/O: the caller moves bytes between it and the socket.
 *
 * Typical use:
 *
 *   goop_noise_hs_new(initiator, id, expected, muxers, n, &hs);
 *   while (!goop_noise_hs_is_complete(hs)) {
 *     if (goop_noise_hs_want_write(hs)) goop_noise_hs_write_message(hs, &out);  // send out
 *     else { n = goop_noise_deframe(in, len, &body, &body_len);                  // 0: read more
 *            goop_noise_hs_read_message(hs, body, body_len); }
 *   }
 *   goop_noise_hs_split(hs, &cipher);
 *
 * Any error poisons the handshake object: later calls return GOOP_ESTATE.
 */
#ifndef GOOP_TRANSPORT_NOISE_H
#define GOOP_TRANSPORT_NOISE_H

#include <goop/identity.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/buf.h"

#define GOOP_NOISE_PROTOCOL_ID "/noise"
/* Largest handshake message body or transport frame (ciphertext incl. tag). */
#define GOOP_NOISE_MAX_MSG 65535
/* Poly1305 tag size. */
#define GOOP_NOISE_TAG_SIZE 16
/* Largest plaintext carried by one transport frame. */
#define GOOP_NOISE_MAX_PLAINTEXT (GOOP_NOISE_MAX_MSG - GOOP_NOISE_TAG_SIZE)
/* X25519 key and SHA-256 hash sizes. */
#define GOOP_NOISE_KEY_SIZE 32
#define GOOP_NOISE_HASH_SIZE 32
/* Limits on the remote's extensions.stream_muxers list. */
#define GOOP_NOISE_MAX_MUXERS 100
#define GOOP_NOISE_MAX_MUXER_LEN 256

typedef struct goop_noise_hs goop_noise_hs;
typedef struct goop_noise_cipher goop_noise_cipher;

/*
 * Create a handshake. |local| is borrowed and must outlive the handshake (it
 * signs the static key when our payload is written; may be NULL only in raw
 * mode). |expected_remote| (may be NULL) is copied: if set, the remote must
 * prove that Peer ID or the handshake fails with GOOP_EPEERID. |muxers| (copied;
 * may be NULL when |n_muxers| is 0) is our early-muxer list in preference
 * order, sent in extensions.stream_muxers. A fresh X25519 static key is made
 * for every handshake; the prologue is empty.
 * Returns 0, GOOP_EINVAL, GOOP_ENOMEM or GOOP_ECRYPTO.
 */
int goop_noise_hs_new(bool initiator, const goop_identity *local, const goop_peer_id *expected_remote,
                      const char *const *muxers, size_t n_muxers, goop_noise_hs **ret);

/* Free and wipe. NULL is a no-op. */
void goop_noise_hs_free(goop_noise_hs *hs);

/* ---- test hooks: only before the first message; otherwise GOOP_ESTATE ---- */

/* Set the prologue (copied, at most 65535 bytes). */
int goop_noise_hs_set_prologue(goop_noise_hs *hs, const uint8_t *prologue, size_t len);
/* Replace the static / ephemeral X25519 private keys (32 bytes each). */
int goop_noise_hs_set_static_key(goop_noise_hs *hs, const uint8_t priv[GOOP_NOISE_KEY_SIZE]);
int goop_noise_hs_set_ephemeral_key(goop_noise_hs *hs, const uint8_t priv[GOOP_NOISE_KEY_SIZE]);
/*
 * Raw mode: the plain Noise XX pattern with caller-chosen payloads, no libp2p
 * payload handling. Use goop_noise_hs_write_raw()/goop_noise_hs_read_raw()
 * instead of goop_noise_hs_write_message()/goop_noise_hs_read_message().
 */
int goop_noise_hs_set_raw(goop_noise_hs *hs);

/*
 * Raw mode: append the next message body (unframed) carrying |payload| to
 * |out|. Returns 0, GOOP_ESTATE, GOOP_EMSGSIZE (body > 65535), GOOP_ENOMEM,
 * GOOP_ECRYPTO. On failure |out| keeps its previous length.
 */
int goop_noise_hs_write_raw(goop_noise_hs *hs, const uint8_t *payload, size_t len, goop_buf *out);
/*
 * Raw mode: consume one message body and append its decrypted payload to
 * |ret_payload|. Returns 0, GOOP_ESTATE, GOOP_EPARSE (too short / too long),
 * GOOP_ECRYPTO (authentication failed or bad DH result), GOOP_ENOMEM.
 */
int goop_noise_hs_read_raw(goop_noise_hs *hs, const uint8_t *msg, size_t len, goop_buf *ret_payload);

/* The handshake hash h (valid once complete; GOOP_ESTATE before). */
int goop_noise_hs_handshake_hash(const goop_noise_hs *hs, uint8_t ret[GOOP_NOISE_HASH_SIZE]);

/* ---- libp2p handshake ---- */

/* true when the next step is writing (and the handshake is not complete or failed). */
bool goop_noise_hs_want_write(const goop_noise_hs *hs);
/* true when the next step is reading. */
bool goop_noise_hs_want_read(const goop_noise_hs *hs);
/* true once all three messages were written/read successfully. */
bool goop_noise_hs_is_complete(const goop_noise_hs *hs);

/*
 * Append our next framed handshake message (u16be length ‖ body) to |out|.
 * Returns 0, GOOP_ESTATE (not our turn, done or failed), GOOP_ENOMEM,
 * GOOP_ECRYPTO, GOOP_EMSGSIZE. On failure |out| keeps its previous length.
 */
int goop_noise_hs_write_message(goop_noise_hs *hs, goop_buf *out);

/*
 * Consume one de-framed handshake message body. Returns 0 or:
 * GOOP_ESTATE (not our turn), GOOP_EPARSE (bad length or malformed payload),
 * GOOP_ECRYPTO (AEAD failure, bad DH), GOOP_EBADSIG (identity signature over
 * the static key invalid), GOOP_EPEERID (remote is not |expected_remote|),
 * GOOP_EKEYTYPE (unsupported remote key type), GOOP_ENOMEM.
 */
int goop_noise_hs_read_message(goop_noise_hs *hs, const uint8_t *body, size_t len);

/*
 * De-frame one handshake message from a byte stream: if |in| starts with a
 * complete `u16be(n) ‖ n bytes`, point |*ret_body| at the body, set
 * |*ret_body_len| = n and return the bytes consumed (n + 2). Returns 0 if more
 * input is needed (out-parameters untouched).
 */
size_t goop_noise_deframe(const uint8_t *in, size_t len, const uint8_t **ret_body, size_t *ret_body_len);

/* Remote Peer ID once the remote payload was verified, else NULL. Borrowed from |hs|. */
const goop_peer_id *goop_noise_hs_remote_peer_id(const goop_noise_hs *hs);
/* Remote PublicKey protobuf bytes once verified, else NULL (|*ret_len| = 0). Borrowed. */
const uint8_t *goop_noise_hs_remote_public_key(const goop_noise_hs *hs, size_t *ret_len);
/* Number of muxers the remote listed and the |i|-th one (NULL if out of range). Borrowed. */
size_t goop_noise_hs_remote_muxer_count(const goop_noise_hs *hs);
const char *goop_noise_hs_remote_muxer(const goop_noise_hs *hs, size_t i);
/*
 * Early-negotiated muxer: the first entry of the initiator's list that the
 * responder also lists. NULL if none (either side sent nothing or the lists
 * do not intersect): then run multistream-select for the muxer instead.
 * Known to the initiator after msg2 and to the responder after msg3. Borrowed.
 */
const char *goop_noise_hs_early_muxer(const goop_noise_hs *hs);

/*
 * Derive the transport ciphers from a complete handshake (initiator sends with
 * k1, responder with k2). May be called once. Returns 0, GOOP_ESTATE,
 * GOOP_ENOMEM, GOOP_ECRYPTO.
 */
int goop_noise_hs_split(goop_noise_hs *hs, goop_noise_cipher **ret);

/* ---- transport ---- */

/*
 * Encrypt |len| bytes and append frames `u16be(n) ‖ ciphertext(n)` to |out|,
 * one frame per <= 65519 plaintext bytes (len 0 gives one empty 16-byte frame).
 * Frames are written straight into |out| (one reserve per call). Returns 0,
 * GOOP_ENOMEM/GOOP_ELIMIT (buffer), GOOP_ELIMIT (the nonces left, up to
 * 2^64-2, do not cover all frames; nothing is written), GOOP_ECRYPTO (the send
 * direction is then broken: later calls return GOOP_ESTATE). On failure |out|
 * keeps its previous length.
 */
int goop_noise_encrypt(goop_noise_cipher *c, const uint8_t *plaintext, size_t len, goop_buf *out);

/*
 * Decrypt one frame from the start of |in|. Returns 1 and sets |*consumed|
 * (frame bytes incl. length) with the plaintext appended to |out|; 0 if the
 * frame is incomplete (nothing consumed); or GOOP_EPARSE (frame shorter than
 * a tag), GOOP_ECRYPTO (authentication failed), GOOP_ELIMIT (nonce exhausted),
 * GOOP_ENOMEM. After an error the receive direction stays broken (GOOP_ESTATE).
 */
int goop_noise_decrypt_frame(goop_noise_cipher *c, const uint8_t *in, size_t len, size_t *consumed,
                             goop_buf *out);

/* Test hook: set the next send/receive nonces. */
void goop_noise_cipher_set_nonces(goop_noise_cipher *c, uint64_t tx, uint64_t rx);

/* Free and wipe. NULL is a no-op. */
void goop_noise_cipher_free(goop_noise_cipher *c);

#endif
