/*
 * Fuzz target: the rendezvous template store's manifest validation
 * (cli/rendezvous/rdv-templates.c). An accepted manifest's StoreMeta must be
 * accepted again and give the same text; the input is also routed as a URL
 * (before and after the server's percent-decoding) and written through the
 * tar and gzip writers, whose CRC must match.
 */
#include "rendezvous/rdv-templates.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *meta = NULL, err[256];
  if (rdv_template_meta((const char *)data, size, "fuzz", &meta, err, sizeof(err)) == 0) {
    char *again = NULL;
    if (rdv_template_meta(meta, strlen(meta), "fuzz", &again, err, sizeof(err)) != 0 ||
        strcmp(meta, again) != 0)
      abort();
    free(again);
    free(meta);
  }
  char *url = malloc(size + 1);
  if (!url)
    return 0;
  memcpy(url, data, size);
  url[size] = '\0';
  char dir[RDV_TPL_MAX_DIR_NAME + 1];
  (void)rdv_templates_route(NULL, url, "GET", dir);
  size_t before = strlen(url);
  if (rdv_templates_unescape(NULL, NULL, url) > before)
    abort();
  (void)rdv_templates_route(NULL, url, "GET", dir);
  (void)rdv_template_name_ok(url);
  goop_buf tar, gz;
  goop_buf_init(&tar, 0);
  goop_buf_init(&gz, 0);
  if (rdv_tar_add(&tar, url[0] ? url : "x", data, size, 0) == 0 && rdv_tar_end(&tar) == 0 &&
      rdv_gzip_stored(tar.data, tar.len, &gz) == 0) {
    const uint8_t *t = gz.data + gz.len - 8;
    uint32_t crc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    if (crc != rdv_crc32(0, tar.data, tar.len))
      abort();
  }
  goop_buf_free(&tar);
  goop_buf_free(&gz);
  free(url);
  return 0;
}
