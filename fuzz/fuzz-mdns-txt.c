/* mDNS TXT rdata and wire-name parsers. */
#include <goop/discovery.h>
#include <stdint.h>
#include <string.h>

static void sink(const char *addr, void *ud) {
  size_t *n = ud;
  *n += strlen(addr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t n = 0;
  (void)goop_mdns_txt_parse(data, size, sink, &n);
  char name[1024];
  (void)goop_mdns_name_decode(data, size, name, sizeof(name));
  char small[16];
  (void)goop_mdns_name_decode(data, size, small, sizeof(small));
  return 0;
}
