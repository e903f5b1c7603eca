#include "internal.h"

#include <string.h>

const char *goop_strerror(int err) {
  switch (err) {
  case GOOP_OK:
    return "success";
#define GOOP__XX(name, val, msg)                                                                             \
  case (val):                                                                                                \
    return msg;
    GOOP_ERRNO_MAP(GOOP__XX)
#undef GOOP__XX
  default:
    return "unknown error";
  }
}

const char *goop_err_name(int err) {
  switch (err) {
  case GOOP_OK:
    return "GOOP_OK";
#define GOOP__XX(name, val, msg)                                                                             \
  case (val):                                                                                                \
    return "GOOP_" #name;
    GOOP_ERRNO_MAP(GOOP__XX)
#undef GOOP__XX
  default:
    return "GOOP_UNKNOWN";
  }
}

int goop__from_errno(int e) {
  switch (-e) {
#define GOOP__XX(name, val, msg)                                                                             \
  case (val):                                                                                                \
    return (val);
    GOOP_ERRNO_MAP(GOOP__XX)
#undef GOOP__XX
  default:
    break;
  }
  if (e == EWOULDBLOCK)
    return GOOP_EAGAIN;
  if (e == EOPNOTSUPP)
    return GOOP_ENOTSUP;
  return GOOP_EIO;
}

int goop__errbuf(char *buf, size_t len, int err, const char *fmt, ...) {
  if (buf && len > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
  }
  return err;
}
