/* Fuzz target: the viewer's small HTTP parsers (cli/viewer/http-parse.c):
 * listen address, urlencoded form fields, guest cookie tokens. The first
 * byte picks the parser; the rest is its input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/viewer/http-parse.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > (1u << 20))
    return 0;
  uint8_t mode = data[0];
  const char *in = (const char *)data + 1;
  size_t n = size - 1;
  char *s = malloc(n + 1); /* NUL-terminated copy for the string parsers */
  if (!s)
    return 0;
  memcpy(s, in, n);
  s[n] = 0;
  switch (mode % 4) {
  case 0: {
    char host[HTTP_ADDR_MAX + 1];
    uint16_t port;
    if (http_parse_addr(s, host, sizeof(host), &port) == 0 && strlen(host) > HTTP_ADDR_MAX)
      abort();
    char tiny[4];
    (void)http_parse_addr(s, tiny, sizeof(tiny), &port);
    break;
  }
  case 1: {
    static const char *const keys[] = {"csrf", "addr", "", "a"};
    char out[80];
    /* the body itself is not NUL-terminated: an over-read shows under ASan */
    char *body = malloc(n ? n : 1);
    if (body) {
      memcpy(body, in, n);
      int r = http_form_field(body, n, keys[(mode >> 2) % 4], out, sizeof(out));
      if (r >= (int)sizeof(out) || (r >= 0 && strlen(out) > (size_t)r))
        abort();
      char one[1];
      (void)http_form_field(body, n, keys[(mode >> 4) % 4], one, sizeof(one));
      free(body);
    }
    break;
  }
  case 2:
    if (http_is_guest_token(s) && strlen(s) != 32)
      abort();
    break;
  default: {
    const char *b = s + strlen(s) + (strlen(s) < n ? 1 : 0);
    if (http_token_equal(s, b) != (strcmp(s, b) == 0))
      abort();
    break;
  }
  }
  free(s);
  return 0;
}
