/* Key file parser: goop_identity_from_bytes on arbitrary bytes. */
#include <goop/identity.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  goop_identity *id = NULL;
  int rc = goop_identity_from_bytes(data, size, &id);
  if (rc != 0) {
    if (id != NULL || (rc != GOOP_EPARSE && rc != GOOP_EKEYTYPE))
      abort();
    return 0;
  }
  /* An accepted key re-serializes to the canonical 68-byte form and signs. */
  uint8_t pb[GOOP_ED25519_PRIVKEY_PB_SIZE], pub[GOOP_ED25519_PUBKEY_PB_SIZE], sig[GOOP_ED25519_SIG_SIZE];
  goop_identity_to_bytes(id, pb);
  goop_identity *back = NULL;
  if (goop_identity_from_bytes(pb, sizeof(pb), &back) != 0)
    abort();
  goop_peer_id a, b;
  goop_identity_peer_id(id, &a);
  goop_identity_peer_id(back, &b);
  if (!goop_peer_id_equal(&a, &b))
    abort();
  goop_identity_public_key(id, pub);
  if (goop_identity_sign(id, data, size, sig) != 0 ||
      goop_pubkey_verify(pub, sizeof(pub), data, size, sig, sizeof(sig)) != 0)
    abort();
  goop_identity_free(back);
  goop_identity_free(id);
  return 0;
}
