#include "buf.h"

#include <stdlib.h>
#include <string.h>

#include "../common/internal.h"

void goop_buf_init(goop_buf *b, size_t max) {
  *b = (goop_buf){.max = max};
}

void goop_buf_free(goop_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void goop_buf_reset(goop_buf *b) {
  b->len = 0;
}

int goop_buf_reserve(goop_buf *b, size_t extra) {
  size_t max = b->max ? b->max : SIZE_MAX;
  if (extra > max - b->len)
    return GOOP_ELIMIT;
  size_t need = b->len + extra;
  if (need <= b->cap)
    return 0;
  size_t ncap = b->cap ? b->cap : 64;
  while (ncap < need)
    ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
  if (ncap > max)
    ncap = max;
  uint8_t *nd = realloc(b->data, ncap);
  if (!nd)
    return GOOP_ENOMEM;
  b->data = nd;
  b->cap = ncap;
  return 0;
}

int goop_buf_append(goop_buf *b, const void *data, size_t len) {
  if (len == 0)
    return 0;
  int rc = goop_buf_reserve(b, len);
  if (rc)
    return rc;
  memcpy(b->data + b->len, data, len);
  b->len += len;
  return 0;
}

int goop_buf_append_byte(goop_buf *b, uint8_t c) {
  return goop_buf_append(b, &c, 1);
}

int goop_buf_append_str(goop_buf *b, const char *s) {
  return goop_buf_append(b, s, strlen(s));
}

void goop_buf_consume(goop_buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

uint8_t *goop_buf_steal(goop_buf *b, size_t *ret_len) {
  uint8_t *d = b->data;
  if (ret_len)
    *ret_len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return d;
}
