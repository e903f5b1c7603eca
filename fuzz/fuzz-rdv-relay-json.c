/*
 * Fuzz target: the rendezvous client's /relay answer parser
 * (rdv_relay_parse() in cli/rendezvous/rdv-client.c), and every address it
 * keeps checked again on its own.
 */
#include "rendezvous/rdv-client.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The input as one address string. */
  char buf[RDV_RELAY_MAX_ADDR_LEN + 2];
  size_t n = size < sizeof(buf) - 1 ? size : sizeof(buf) - 1;
  memcpy(buf, data, n);
  buf[n] = '\0';
  (void)rdv_relay_addr_valid(buf, NULL);

  struct rdv_relay_info r;
  if (rdv_relay_parse(data, size, &r) != 0) {
    if (r.peer_id || r.n_addrs)
      abort(); /* zeroed on failure */
    return 0;
  }
  if (!r.peer_id || r.n_addrs == 0 || r.n_addrs > RDV_RELAY_MAX_ADDRS)
    abort();
  for (size_t i = 0; i < r.n_addrs; i++)
    if (!rdv_relay_addr_valid(r.addrs[i], r.peer_id) || strlen(r.addrs[i]) > RDV_RELAY_MAX_ADDR_LEN)
      abort();
  rdv_relay_info_clear(&r);
  return 0;
}
