/*
 * print-peer-id: print the Peer ID of a libp2p Ed25519 key file.
 *
 *   cc print-peer-id.c $(pkg-config --cflags --libs libgoop) -o print-peer-id
 *   ./print-peer-id peer/data/identity.key
 */
#include <goop/goop.h>
#include <stdio.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s KEYFILE\n", argv[0]);
    return 2;
  }
  char err[GOOP_ERRBUF_SIZE] = "";
  goop_identity *id = NULL;
  int rc = goop_identity_load(argv[1], &id, err, sizeof(err));
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", argv[0], err[0] ? err : goop_strerror(rc));
    return 1;
  }
  goop_peer_id pid;
  goop_identity_peer_id(id, &pid);
  goop_identity_free(id);

  char text[GOOP_PEER_ID_STR_MAX];
  if (goop_peer_id_to_string(&pid, text, sizeof(text)) < 0) {
    fprintf(stderr, "%s: cannot format the Peer ID\n", argv[0]);
    return 1;
  }
  printf("%s\n", text);
  return 0;
}
