/*
 * Rendezvous /publish: the input is a publish body. An accepted message is
 * stored, broadcast to a subscriber and must validate again unchanged. The
 * input is also parsed as an X-Forwarded-For header.
 */
#include "rendezvous/rdv-core.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[GOOP_RDV_ERRBUF];
  /* The input as an X-Forwarded-For header behind a trusted proxy. */
  char *xff = malloc(size + 1);
  if (xff) {
    memcpy(xff, data, size);
    xff[size] = '\0';
    static const struct goop_rdv_net any = {{0}, 0};
    char ip[64];
    goop__rdv_client_ip(&any, 1, "10.0.0.1", xff, ip, sizeof(ip));
    free(xff);
  }
  struct goop_rdv_publish p;
  int st = goop__rdv_validate_publish(data, size, 1000, true, &p, err, sizeof(err));
  if (st != 0) {
    if (st != 400 && st != 413 && st != 500)
      abort();
    return 0;
  }
  /* The canonical form is a fixed point. */
  struct goop_rdv_publish p2;
  if (goop__rdv_validate_publish(p.json, p.json_len, 2000, true, &p2, err, sizeof(err)) != 0 ||
      p2.json_len != p.json_len || memcmp(p.json, p2.json, p.json_len) != 0)
    abort();
  goop__rdv_publish_clear(&p2);

  goop_rdv *r;
  if (goop__rdv_new(NULL, &r) == 0) {
    goop_rdv_sub *s;
    if (goop__rdv_sub_add(r, "192.0.2.1", &s, err, sizeof(err)) == 0) {
      goop__rdv_store(r, &p, 1000);
      goop__rdv_broadcast(r, p.json, p.json_len);
      char buf[97];
      while (goop__rdv_sub_read(s, buf, sizeof(buf)) > 0) {
      }
    }
    goop_buf b;
    goop_buf_init(&b, 0);
    goop__rdv_peers_json(r, &b);
    goop_buf_free(&b);
    goop__rdv_free(r);
  }
  goop__rdv_publish_clear(&p);
  return 0;
}
