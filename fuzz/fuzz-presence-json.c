/*
 * Presence JSON: the input is parsed as a presence message; a parsed
 * message is re-encoded and must parse again to the same fields.
 */
#include <goop/presence.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const char *a, const char *b) {
  if (!a || !*a)
    return !b || !*b;
  return b && strcmp(a, b) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct goop_presence_msg m;
  int rc = goop_presence_msg_parse(data, size, &m);
  if (rc == 0) {
    char *out = NULL;
    size_t len = 0;
    if (goop_presence_msg_encode(&m, &out, &len) == 0) {
      struct goop_presence_msg m2;
      int rc2 = goop_presence_msg_parse(out, len, &m2);
      /* Invalid UTF-8 never reaches us (the JSON parser rejects it), so the round trip is exact. */
      if (rc2 != 0 || m2.type != m.type || !same(m.peer_id, m2.peer_id) || !same(m.content, m2.content) ||
          !same(m.email, m2.email) || !same(m.avatar_hash, m2.avatar_hash) || m.ts != m2.ts ||
          m.video_disabled != m2.video_disabled || m.verified != m2.verified || m.n_addrs != m2.n_addrs)
        abort();
      for (size_t i = 0; i < m.n_addrs; i++)
        if (strcmp(m.addrs[i], m2.addrs[i]) != 0)
          abort();
      goop_presence_msg_clear(&m2);
      free(out);
    }
  }
  goop_presence_msg_clear(&m);
  return 0;
}
