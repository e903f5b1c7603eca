/*
 * Fuzz the viewer's site-route parsers (cli/viewer/site-parse.c). The first
 * byte picks the parser; the rest is its input: a Range header against a
 * size, If-None-Match, request and upload paths, a multipart body whose
 * boundary line is the first line.
 */
#include "../cli/viewer/site-parse.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > (1u << 20))
    return 0;
  uint8_t sel = data[0];
  data++;
  size--;
  char *s = malloc(size + 1);
  if (!s)
    return 0;
  memcpy(s, data, size);
  s[size] = 0;
  switch (sel % 5) {
  case 0: {
    uint64_t sizes[] = {0, 1, 10, 1000, UINT64_MAX};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
      uint64_t start = 0, len = 0;
      int rc = site_parse_range(s, sizes[i], &start, &len);
      if (rc == 1 && (len == 0 || start >= sizes[i] || len > sizes[i] - start))
        abort();
    }
    break;
  }
  case 1:
    (void)site_etag_matches(s, "\"a-b\"");
    break;
  case 2:
    (void)site_path_tricky(s);
    break;
  case 3: {
    const char *p = site_rel_path_ok(s);
    if (p) {
      size_t n = strlen(p);
      if (strcmp(p, "..") == 0 || strncmp(p, "../", 3) == 0 || strstr(p, "/../") ||
          (n >= 3 && strcmp(p + n - 3, "/..") == 0) || strchr(p, '\\') || p[0] == '/')
        abort();
    }
    (void)site_is_image(s);
    break;
  }
  default: {
    char *nl = memchr(s, '\n', size);
    if (!nl)
      break;
    *nl = 0;
    size_t hl = (size_t)(nl - s) + 1;
    struct site_part a = {0}, b = {0};
    if (site_multipart_fields(s, data + hl, size - hl, &a, &b) == 0) {
      if (a.found && (a.data < data + hl || a.data + a.len > data + size))
        abort();
      if (b.found && (b.data < data + hl || b.data + b.len > data + size))
        abort();
    }
    break;
  }
  }
  free(s);
  return 0;
}
