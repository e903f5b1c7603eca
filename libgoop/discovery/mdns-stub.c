/* goop_mdns_* when libgoop is built without Avahi: always GOOP_ENOTSUP. */
#include <goop/discovery.h>
#include <stddef.h>

int goop_mdns_new(goop_host *host, const char *tag, goop_mdns **ret) {
  (void)host;
  (void)tag;
  if (ret)
    *ret = NULL;
  return GOOP_ENOTSUP;
}

void goop_mdns_free(goop_mdns *m) {
  (void)m;
}

size_t goop_mdns_num_discovered(const goop_mdns *m) {
  (void)m;
  return 0;
}
