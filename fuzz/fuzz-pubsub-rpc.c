/*
 * Pubsub RPC: the input is decoded as one RPC (a decoded RPC is re-encoded
 * and must decode to the same counts), then fed as stream bytes to a router
 * with one subscribed topic (framing, verification, control handling).
 */
#include <stdint.h>
#include <stdlib.h>

#include "buf.h"
#include "pubsub/gossipsub.h"
#include "pubsub/rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static goop_identity *id;
static goop_gossip *g;
static goop_gossip_peer *peer;
static goop_tstamp now = 1000000;

static void setup(void) {
  goop_peer_id other;
  goop_identity *o;
  if (goop_identity_generate(&id) != 0 || goop_identity_generate(&o) != 0)
    abort();
  goop_identity_peer_id(o, &other);
  goop_identity_free(o);
  struct goop_gossip_config cfg = {.id = id, .seqno_start = 1, .rng_seed = 42};
  if (goop_gossip_new(&cfg, &g) != 0 || goop_gossip_subscribe(g, "t", now) != 0 ||
      goop_gossip_add_peer(g, &other, GOOP_GOSSIP_MESHSUB_11, NULL, now, &peer) != 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct goop_rpc r;
  if (goop_rpc_decode(data, size, &r) == 0) {
    goop_buf out;
    goop_buf_init(&out, 0);
    if (goop_rpc_encode(&r, &out) == 0) {
      struct goop_rpc again;
      if (goop_rpc_decode(out.data, out.len, &again) != 0)
        abort(); /* what we encode must decode */
      if (again.n_subs != r.n_subs || again.n_msgs != r.n_msgs || again.n_ihave != r.n_ihave ||
          again.n_ihave_ids != r.n_ihave_ids || again.n_iwant_ids != r.n_iwant_ids ||
          again.n_graft != r.n_graft || again.n_prune != r.n_prune)
        abort();
      goop_rpc_clear(&again);
    }
    goop_buf_free(&out);
    goop_rpc_clear(&r);
  }
  if (!g)
    setup();
  (void)goop_gossip_input(g, peer, data, size, now);
  size_t len;
  (void)goop_gossip_output_peek(peer, &len);
  goop_gossip_output_consume(peer, len);
  now += 300000;
  goop_gossip_heartbeat(g, now);
  (void)goop_gossip_output_peek(peer, &len);
  goop_gossip_output_consume(peer, len);
  return 0;
}
