/*
 * Circuit addresses (".../p2p/<relay>/p2p-circuit[/p2p/<target>]") as the
 * relay client splits them: the input as a binary multiaddr, and as text
 * turned into one. A relay part never holds another circuit, always ends in
 * /p2p/<relay>, and the target, when present, is a valid Peer ID.
 */
#include <stdlib.h>
#include <string.h>

#include "core/multiaddr.h"
#include "transport-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *ma, size_t len) {
  size_t rl = 0;
  goop_peer_id relay, target, again_r, again_t;
  bool has_target = false, again_has;
  int r = goop__circuit_split(ma, len, &rl, &relay, &target, &has_target);
  if (r != 1)
    return;
  if (rl == 0 || rl > len)
    abort();
  if (goop__circuit_split(ma, rl, &rl, &again_r, &again_t, &again_has) != 0)
    abort();
  /* The relay part ends in /p2p/<relay>. */
  size_t off = 0;
  goop_ma_component c, last = {0};
  while (goop_ma_next(ma, rl, &off, &c) == 1)
    last = c;
  goop_peer_id pid;
  if (last.code != GOOP_MA_P2P || goop_peer_id_from_bytes(last.value, last.value_len, &pid) != 0 ||
      !goop_peer_id_equal(&pid, &relay))
    abort();
  char text[GOOP_PEER_ID_STR_MAX];
  if (has_target && goop_peer_id_to_string(&target, text, sizeof(text)) < 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check(data, size);
  if (size < 2048) {
    char *text = malloc(size + 1);
    if (!text)
      return 0;
    memcpy(text, data, size);
    text[size] = 0;
    goop_buf b;
    goop_buf_init(&b, GOOP_MA_MAX);
    if (goop_ma_from_string(text, &b) == 0)
      check(b.data, b.len);
    goop_buf_free(&b);
    free(text);
  }
  return 0;
}
