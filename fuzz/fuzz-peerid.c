/*
 * Peer ID parsers: the input as text (goop_peer_id_from_string) and as raw
 * multihash / PublicKey bytes (goop_peer_id_from_bytes, goop_pubkey_check,
 * goop_pubkey_to_peer_id). Every accepted ID must survive a text round trip.
 */
#include <goop/identity.h>

#include <stdlib.h>
#include <string.h>

static void round_trip(const goop_peer_id *id) {
  char s[GOOP_PEER_ID_STR_MAX];
  goop_peer_id back;
  if (goop_peer_id_to_string(id, s, sizeof(s)) < 0)
    abort();
  if (goop_peer_id_from_string(s, &back) != 0 || !goop_peer_id_equal(id, &back))
    abort();
  if (goop_peer_id_to_cid_string(id, s, sizeof(s)) < 0)
    abort();
  if (goop_peer_id_from_string(s, &back) != 0 || !goop_peer_id_equal(id, &back))
    abort();
  uint8_t pk[GOOP_PEER_ID_MAX];
  size_t pk_len = sizeof(pk);
  int rc = goop_peer_id_extract_pubkey(id, pk, &pk_len);
  if (rc == 0) {
    goop_peer_id again;
    if (goop_pubkey_to_peer_id(pk, pk_len, &again) != 0 || !goop_peer_id_equal(id, &again))
      abort();
  } else if (rc != GOOP_ENOENT) {
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* As text. */
  char *text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  goop_peer_id id;
  if (goop_peer_id_from_string(text, &id) == 0)
    round_trip(&id);
  free(text);

  /* As a multihash. */
  if (goop_peer_id_from_bytes(data, size, &id) == 0)
    round_trip(&id);

  /* As a PublicKey protobuf. */
  enum goop_key_type type;
  if (goop_pubkey_check(data, size, &type) == 0) {
    if (goop_pubkey_to_peer_id(data, size, &id) != 0)
      abort();
    round_trip(&id);
    static const uint8_t msg[] = "fuzz";
    static const uint8_t sig[64];
    if (goop_pubkey_verify(data, size, msg, sizeof(msg) - 1, sig, sizeof(sig)) == 0)
      abort();
  }
  return 0;
}
