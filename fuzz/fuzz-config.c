/* Fuzz target: goop.json parsing, validation and serialization. */
#include <goop/config.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  goop_config *cfg = NULL;
  char err[GOOP_ERRBUF_SIZE];
  if (goop_config_parse((const char *)data, size, "/peer", &cfg, err, sizeof(err)) != 0)
    return 0;
  /* a parsed configuration serializes and parses back to the same text */
  char *text = goop_config_to_json(cfg);
  if (text) {
    goop_config *again = NULL;
    if (goop_config_parse(text, strlen(text), "/peer", &again, err, sizeof(err)) != 0)
      abort();
    char *text2 = goop_config_to_json(again);
    if (text2 && strcmp(text, text2) != 0)
      abort();
    free(text2);
    goop_config_free(again);
    free(text);
  }
  for (size_t i = 0; goop_config_key_at(i); i++)
    free(goop_config_resolve_path(cfg, goop_config_key_at(i)));
  goop_config_free(cfg);
  return 0;
}
