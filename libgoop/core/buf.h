/* Growable byte buffer (internal). */
#ifndef GOOP_CORE_BUF_H
#define GOOP_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct goop_buf {
  uint8_t *data;
  size_t len;
  size_t cap;
  size_t max; /* hard limit on len; 0 = SIZE_MAX */
} goop_buf;

void goop_buf_init(goop_buf *b, size_t max);
void goop_buf_free(goop_buf *b);  /* frees storage, keeps max; buffer is reusable */
void goop_buf_reset(goop_buf *b); /* len = 0, keep storage */
/* Make room for |extra| more bytes. Returns 0, GOOP_ENOMEM, or GOOP_ELIMIT if max would be passed. */
int goop_buf_reserve(goop_buf *b, size_t extra);
int goop_buf_append(goop_buf *b, const void *data, size_t len);
int goop_buf_append_byte(goop_buf *b, uint8_t c);
int goop_buf_append_str(goop_buf *b, const char *s);
/* Remove the first |n| bytes (n <= len). */
void goop_buf_consume(goop_buf *b, size_t n);
/* Take ownership of the storage (caller frees); buffer becomes empty. */
uint8_t *goop_buf_steal(goop_buf *b, size_t *ret_len);

#endif
