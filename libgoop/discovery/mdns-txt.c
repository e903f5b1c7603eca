/* mDNS wire helpers: instance labels, TXT rdata, wire-format names. No Avahi. */
#include <goop/discovery.h>
#include <string.h>
#include <sys/random.h>

#include "internal.h"

#define DNSADDR_KEY "dnsaddr="
#define DNSADDR_KEY_LEN (sizeof(DNSADDR_KEY) - 1)

static int random_bytes(uint8_t *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t r = getrandom(buf + got, len - got, 0);
    if (r <= 0)
      return GOOP_EIO;
    got += (size_t)r;
  }
  return 0;
}

int goop_mdns_label(char *buf, size_t buf_len) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  goop_return_val_if_fail(buf && buf_len > GOOP_MDNS_LABEL_MAX, GOOP_EINVAL);
  uint8_t rnd[1 + GOOP_MDNS_LABEL_MAX];
  if (random_bytes(rnd, sizeof(rnd)) != 0)
    return GOOP_EIO;
  size_t n = GOOP_MDNS_LABEL_MIN + rnd[0] % (GOOP_MDNS_LABEL_MAX - GOOP_MDNS_LABEL_MIN + 1);
  for (size_t i = 0; i < n; i++) {
    /* 252 = 7 * 36: redraw the rare values that would bias the choice */
    while (rnd[1 + i] >= 252) {
      if (random_bytes(&rnd[1 + i], 1) != 0)
        return GOOP_EIO;
    }
    buf[i] = alphabet[rnd[1 + i] % 36];
  }
  buf[n] = '\0';
  return (int)n;
}

int goop_mdns_txt_build(const char *const *addrs, size_t n_addrs, uint8_t *out, size_t out_len,
                        size_t *ret_len) {
  goop_return_val_if_fail((addrs || n_addrs == 0) && out && ret_len, GOOP_EINVAL);
  size_t pos = 0;
  if (n_addrs == 0) {
    if (out_len < 1)
      return GOOP_EMSGSIZE;
    out[0] = 0;
    *ret_len = 1;
    return 0;
  }
  for (size_t i = 0; i < n_addrs; i++) {
    if (!addrs[i])
      return GOOP_EINVAL;
    size_t l = strlen(addrs[i]);
    if (l == 0 || l > 255 - DNSADDR_KEY_LEN)
      return GOOP_EINVAL;
    if (out_len - pos < 1 + DNSADDR_KEY_LEN + l)
      return GOOP_EMSGSIZE;
    out[pos++] = (uint8_t)(DNSADDR_KEY_LEN + l);
    memcpy(out + pos, DNSADDR_KEY, DNSADDR_KEY_LEN);
    pos += DNSADDR_KEY_LEN;
    memcpy(out + pos, addrs[i], l);
    pos += l;
  }
  *ret_len = pos;
  return 0;
}

static int key_is_dnsaddr(const uint8_t *s, size_t l) {
  if (l < DNSADDR_KEY_LEN)
    return 0;
  for (size_t i = 0; i < DNSADDR_KEY_LEN; i++) {
    uint8_t c = s[i];
    if (c >= 'A' && c <= 'Z')
      c = (uint8_t)(c - 'A' + 'a');
    if (c != (uint8_t)DNSADDR_KEY[i])
      return 0;
  }
  return 1;
}

int goop_mdns_txt_parse(const uint8_t *rdata, size_t len, goop_mdns_addr_cb cb, void *user_data) {
  goop_return_val_if_fail(rdata || len == 0, GOOP_EINVAL);
  if (len > GOOP_MDNS_MAX_TXT)
    return GOOP_EMSGSIZE;
  /* first pass: structure only, so a malformed record yields no callbacks */
  for (size_t pos = 0; pos < len;) {
    size_t l = rdata[pos];
    if (l > len - pos - 1)
      return GOOP_EPARSE;
    pos += 1 + l;
  }
  int n = 0;
  for (size_t pos = 0; pos < len && n < GOOP_MDNS_MAX_ADDRS;) {
    size_t l = rdata[pos];
    const uint8_t *s = rdata + pos + 1;
    pos += 1 + l;
    if (!key_is_dnsaddr(s, l))
      continue;
    const uint8_t *v = s + DNSADDR_KEY_LEN;
    size_t vl = l - DNSADDR_KEY_LEN;
    if (vl == 0 || v[0] != '/')
      continue;
    int ok = 1;
    for (size_t i = 0; i < vl; i++) {
      if (v[i] < 0x21 || v[i] > 0x7e) {
        ok = 0;
        break;
      }
    }
    if (!ok)
      continue;
    char val[256];
    memcpy(val, v, vl);
    val[vl] = '\0';
    if (cb)
      cb(val, user_data);
    n++;
  }
  return n;
}

int goop_mdns_name_decode(const uint8_t *rdata, size_t len, char *buf, size_t buf_len) {
  goop_return_val_if_fail((rdata || len == 0) && buf && buf_len > 0, GOOP_EINVAL);
  size_t pos = 0, o = 0, wire = 0;
  for (;;) {
    if (pos >= len)
      return GOOP_EPARSE;
    size_t l = rdata[pos++];
    if (l == 0)
      break;
    if (l > 63) /* compression pointer or reserved label type */
      return GOOP_EPARSE;
    if (l > len - pos)
      return GOOP_EPARSE;
    wire += 1 + l;
    if (wire + 1 > 255)
      return GOOP_EMSGSIZE;
    if (o > 0) {
      if (o + 1 >= buf_len)
        return GOOP_EMSGSIZE;
      buf[o++] = '.';
    }
    for (size_t i = 0; i < l; i++) {
      uint8_t c = rdata[pos + i];
      char tmp[5];
      size_t tl;
      if (c == '.' || c == '\\') {
        tmp[0] = '\\';
        tmp[1] = (char)c;
        tl = 2;
      } else if (c < 0x21 || c > 0x7e) {
        tmp[0] = '\\';
        tmp[1] = (char)('0' + c / 100);
        tmp[2] = (char)('0' + c / 10 % 10);
        tmp[3] = (char)('0' + c % 10);
        tl = 4;
      } else {
        tmp[0] = (char)c;
        tl = 1;
      }
      if (o + tl >= buf_len)
        return GOOP_EMSGSIZE;
      memcpy(buf + o, tmp, tl);
      o += tl;
    }
    pos += l;
  }
  if (pos != len)
    return GOOP_EPARSE;
  buf[o] = '\0';
  return (int)o;
}
