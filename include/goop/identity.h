/*
 * libgoop identity: Ed25519 keys in the libp2p key format, Peer IDs, and
 * signature verification for every libp2p key type.
 *
 * THREAD SAFETY: an identity object may be used from one thread at a time;
 * the free functions (goop_pubkey_*, goop_peer_id_*) are reentrant.
 *
 * Formats (libp2p peer-ids spec): a private key file holds the protobuf
 * PrivateKey `08 01 12 40 <seed(32) ‖ pub(32)>` (68 bytes). A Peer ID is the
 * multihash of the protobuf PublicKey: identity multihash when that is at most
 * 42 bytes (Ed25519, secp256k1), otherwise sha2-256.
 */
#ifndef GOOP_IDENTITY_H
#define GOOP_IDENTITY_H

#include <goop/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** libp2p key types (values of the KeyType protobuf enum). */
enum goop_key_type {
  GOOP_KEY_RSA = 0,
  GOOP_KEY_ED25519 = 1,
  GOOP_KEY_SECP256K1 = 2,
  GOOP_KEY_ECDSA = 3,
};

/** Largest Peer ID multihash we accept (sha2-256 = 34 bytes; identity up to 2+42). */
#define GOOP_PEER_ID_MAX 48
/** Longest text form of a Peer ID, including the NUL (CID base32 of 48 bytes + prefix). */
#define GOOP_PEER_ID_STR_MAX 96
/** Size of an Ed25519 signature. */
#define GOOP_ED25519_SIG_SIZE 64
/** Size of a serialized Ed25519 PublicKey protobuf. */
#define GOOP_ED25519_PUBKEY_PB_SIZE 36
/** Size of a serialized Ed25519 PrivateKey protobuf (the key file). */
#define GOOP_ED25519_PRIVKEY_PB_SIZE 68
/** Largest serialized PublicKey protobuf accepted from the network (RSA 8192). */
#define GOOP_PUBKEY_PB_MAX 1200

/** Same constants as functions, for bindings. Since: 0.1 */
GOOP_API size_t goop_peer_id_max(void);
GOOP_API size_t goop_peer_id_str_max(void);
/** Name of the signature primitive of local identities: "ed25519". Since: 0.1 */
GOOP_API const char *goop_identity_primitive(void);

/** A Peer ID: the raw multihash bytes. A plain value type; copy freely. */
typedef struct goop_peer_id {
  uint8_t len;
  uint8_t bytes[GOOP_PEER_ID_MAX];
} goop_peer_id;

/** A local identity: an Ed25519 private key. Opaque. */
typedef struct goop_identity goop_identity;

/** Generate a new random identity. Returns 0, GOOP_ENOMEM or GOOP_ECRYPTO. Since: 0.1 */
GOOP_API int goop_identity_generate(goop_identity **ret) GOOP_WARN_UNUSED_RESULT GOOP_NONNULL(1);

/**
 * Parse a serialized PrivateKey protobuf. Accepts Ed25519 (64-byte seed‖pub,
 * or the legacy 96-byte seed‖pub‖pub form with both copies equal) and checks
 * that the public half matches the seed. Other key types → GOOP_EKEYTYPE;
 * malformed → GOOP_EPARSE. Since: 0.1
 */
GOOP_API int goop_identity_from_bytes(const uint8_t *buf, size_t len,
                                      goop_identity **ret) GOOP_WARN_UNUSED_RESULT;

/**
 * Serialize to the 68-byte PrivateKey protobuf. |out| must hold
 * GOOP_ED25519_PRIVKEY_PB_SIZE bytes. The caller should wipe it after use.
 * Since: 0.1
 */
GOOP_API void goop_identity_to_bytes(const goop_identity *id, uint8_t out[GOOP_ED25519_PRIVKEY_PB_SIZE]);

/**
 * Load a key file. On failure returns GOOP_ENOENT (missing), GOOP_EACCES,
 * GOOP_EIO, GOOP_EPARSE or GOOP_EKEYTYPE and writes a message naming |path|
 * to |errbuf| (if not NULL). A bad file is never modified. Since: 0.1
 */
GOOP_API int goop_identity_load(const char *path, goop_identity **ret, char *errbuf,
                                size_t errbuf_len) GOOP_WARN_UNUSED_RESULT;

/**
 * Write the key file atomically (temporary file + fsync + rename): the parent
 * directory is created with mode 0700 if missing, the file has mode 0600.
 * Returns 0 or a negative errno-style code, with a message in |errbuf|. Since: 0.1
 */
GOOP_API int goop_identity_save(const goop_identity *id, const char *path, char *errbuf,
                                size_t errbuf_len) GOOP_WARN_UNUSED_RESULT;

/**
 * Load |path| if it exists, otherwise generate and save a new identity.
 * An existing but unreadable or corrupt file is an error (never replaced).
 * |*ret_created| (may be NULL) tells whether a new key was made. Since: 0.1
 */
GOOP_API int goop_identity_load_or_create(const char *path, goop_identity **ret, bool *ret_created,
                                          char *errbuf, size_t errbuf_len) GOOP_WARN_UNUSED_RESULT;

/** Free and wipe an identity. NULL is a no-op. Since: 0.1 */
GOOP_API void goop_identity_free(goop_identity *id);

/** The Peer ID of |id|. Since: 0.1 */
GOOP_API void goop_identity_peer_id(const goop_identity *id, goop_peer_id *ret);

/** The serialized PublicKey protobuf (36 bytes) of |id|. Since: 0.1 */
GOOP_API void goop_identity_public_key(const goop_identity *id, uint8_t out[GOOP_ED25519_PUBKEY_PB_SIZE]);

/** The raw 32-byte Ed25519 public key of |id|. Since: 0.1 */
GOOP_API void goop_identity_raw_public_key(const goop_identity *id, uint8_t out[32]);

/**
 * Sign |msg| with Ed25519 (RFC 8032, no pre-hash). |sig| receives 64 bytes.
 * Returns 0 or GOOP_ECRYPTO. Since: 0.1
 */
GOOP_API int goop_identity_sign(const goop_identity *id, const uint8_t *msg, size_t len,
                                uint8_t sig[GOOP_ED25519_SIG_SIZE]) GOOP_WARN_UNUSED_RESULT;

/* ---- remote public keys ------------------------------------------------------- */

/**
 * Verify |sig| over |msg| with a serialized PublicKey protobuf of any libp2p
 * key type: Ed25519, secp256k1 (33- or 65-byte point; ECDSA/SHA-256, DER
 * signature, high S accepted), ECDSA on P-224/256/384/521 (PKIX key as go-libp2p
 * writes it, or js-libp2p's SEQUENCE{1, [0] curve, [1] point}; SHA-256; DER or
 * raw r‖s signature) and RSA 2048..8192 bits (PKCS#1 v1.5, SHA-256).
 * The protobuf must be canonical (Type then Data, minimal varints) and at most
 * GOOP_PUBKEY_PB_MAX bytes.
 * Returns 0 if valid, GOOP_EBADSIG if not (no detail on why), GOOP_EPARSE for
 * a malformed key, GOOP_EKEYTYPE for an unknown type or RSA outside the size
 * range. Since: 0.1
 */
GOOP_API int goop_pubkey_verify(const uint8_t *pubkey_pb, size_t pubkey_len, const uint8_t *msg,
                                size_t msg_len, const uint8_t *sig, size_t sig_len) GOOP_WARN_UNUSED_RESULT;

/**
 * Check that |pubkey_pb| is a well-formed PublicKey protobuf the library can
 * use and return its type in |*ret_type| (may be NULL). Since: 0.1
 */
GOOP_API int goop_pubkey_check(const uint8_t *pubkey_pb, size_t pubkey_len, enum goop_key_type *ret_type);

/**
 * Derive the Peer ID of a serialized PublicKey protobuf (the protobuf structure
 * is checked, the key material is not: use goop_pubkey_check() for that).
 * Returns 0 or GOOP_EPARSE. Since: 0.1
 */
GOOP_API int goop_pubkey_to_peer_id(const uint8_t *pubkey_pb, size_t pubkey_len, goop_peer_id *ret);

/* ---- Peer IDs --------------------------------------------------------------- */

/**
 * Parse a Peer ID from text: bare base58btc (`12D3KooW…`, `Qm…`, `16Uiu2…`)
 * or a multibase CIDv1 with codec libp2p-key (`bafz…`, also base36 `k51…`).
 * The multihash must be identity (≤ 42 bytes of key) or sha2-256 (32 bytes).
 * Returns 0 or GOOP_EPARSE. Since: 0.1
 */
GOOP_API int goop_peer_id_from_string(const char *text, goop_peer_id *ret) GOOP_WARN_UNUSED_RESULT;

/**
 * Validate raw multihash bytes as a Peer ID and copy them into |*ret|: an
 * identity multihash must hold a canonical PublicKey protobuf of at most 42
 * bytes, a sha2-256 one a 32-byte digest. Returns 0 or GOOP_EPARSE. Since: 0.1
 */
GOOP_API int goop_peer_id_from_bytes(const uint8_t *buf, size_t len,
                                     goop_peer_id *ret) GOOP_WARN_UNUSED_RESULT;

/**
 * Write the base58btc text form (`12D3KooW…`) into |buf| (NUL-terminated).
 * Returns the length written, or GOOP_EINVAL if |buf| is too small (use
 * GOOP_PEER_ID_STR_MAX). Since: 0.1
 */
GOOP_API int goop_peer_id_to_string(const goop_peer_id *id, char *buf, size_t buf_len);

/** Write the CIDv1 base32 text form (`bafz…`). Same return rules. Since: 0.1 */
GOOP_API int goop_peer_id_to_cid_string(const goop_peer_id *id, char *buf, size_t buf_len);

/** true if both IDs hold the same bytes. Since: 0.1 */
GOOP_API bool goop_peer_id_equal(const goop_peer_id *a, const goop_peer_id *b);

/**
 * If |id| is an identity multihash, copy the embedded PublicKey protobuf to
 * |out| (|*out_len| in: capacity, out: length) and return 0; GOOP_ENOENT if the
 * key is hashed (sha2-256); GOOP_EINVAL if |out| is too small. Since: 0.1
 */
GOOP_API int goop_peer_id_extract_pubkey(const goop_peer_id *id, uint8_t *out, size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
