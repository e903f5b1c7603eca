#include "internal.h"

#include <goop/features.h>
#include <goop/version.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int goop_ctx_new(struct event_base *base, goop_ctx **ret) {
  goop_return_val_if_fail(ret != NULL, GOOP_EINVAL);
  goop_ctx *ctx = calloc(1, sizeof(*ctx));
  if (!ctx)
    return GOOP_ENOMEM;
  ctx->base = base;
  ctx->log_max = GOOP_LOG_INFO;
  *ret = ctx;
  return 0;
}

void goop_ctx_free(goop_ctx *ctx) {
  free(ctx);
}

struct event_base *goop_ctx_get_base(const goop_ctx *ctx) {
  goop_return_val_if_fail(ctx != NULL, NULL);
  return ctx->base;
}

void goop_ctx_set_log_fn(goop_ctx *ctx, goop_log_fn fn, enum goop_log_level max_level, void *user_data) {
  if (!ctx)
    return;
  ctx->log_fn = fn;
  ctx->log_ud = user_data;
  ctx->log_max = max_level;
}

void goop__log(const goop_ctx *ctx, enum goop_log_level level, const char *fmt, ...) {
  if (!ctx || !ctx->log_fn || level > ctx->log_max)
    return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  /* Never let peer-controlled text break the one-line contract. */
  for (char *p = line; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  ctx->log_fn(level, line, ctx->log_ud);
}

static const goop_version_info version_info = {GOOP_VERSION_NUM, GOOP_VERSION_STRING};

const goop_version_info *goop_version(uint32_t least_version) {
  if (least_version > GOOP_VERSION_NUM)
    return NULL;
  return &version_info;
}

bool goop_has_feature(enum goop_feature f) {
  switch (f) {
  case GOOP_FEATURE_MDNS:
    return GOOP_HAS_MDNS;
  case GOOP_FEATURE_RENDEZVOUS_SERVER:
    return GOOP_HAS_RENDEZVOUS_SERVER;
  }
  return false;
}

goop_tstamp goop__now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (goop_tstamp)ts.tv_sec * 1000000u + (goop_tstamp)ts.tv_nsec / 1000u;
}

int goop__memeq_ct(const void *a, const void *b, size_t len) {
  return CRYPTO_memcmp(a, b, len);
}

void goop__wipe(void *p, size_t len) {
  if (p && len)
    OPENSSL_cleanse(p, len);
}

char *goop__strdup(const char *s) {
  return s ? strdup(s) : NULL;
}
