/* Multiaddr: binary form, text form, and the conversions between them. */
#include "multiaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "../common/internal.h"
#include "base.h"
#include "multihash.h"
#include "varint.h"

#define MA_NAME_MAX 255 /* dns names and ip6 zones */

enum ma_kind {
  MA_NONE,     /* no value */
  MA_IP4,      /* 4 bytes */
  MA_IP6,      /* 16 bytes */
  MA_PORT,     /* 2 bytes big-endian */
  MA_NAME,     /* LP string: non-empty, <= 255 bytes, no '/' or NUL */
  MA_P2P,      /* LP multihash (identity or sha2-256) */
  MA_CERTHASH, /* LP multihash, printed as multibase base64url */
};

struct ma_proto {
  const char *name;
  uint64_t code;
  enum ma_kind kind;
};

static const struct ma_proto protos[] = {
    {"ip4", GOOP_MA_IP4, MA_IP4},
    {"tcp", GOOP_MA_TCP, MA_PORT},
    {"ip6", GOOP_MA_IP6, MA_IP6},
    {"ip6zone", GOOP_MA_IP6ZONE, MA_NAME},
    {"dns", GOOP_MA_DNS, MA_NAME},
    {"dns4", GOOP_MA_DNS4, MA_NAME},
    {"dns6", GOOP_MA_DNS6, MA_NAME},
    {"dnsaddr", GOOP_MA_DNSADDR, MA_NAME},
    {"udp", GOOP_MA_UDP, MA_PORT},
    {"p2p-circuit", GOOP_MA_P2P_CIRCUIT, MA_NONE},
    {"p2p", GOOP_MA_P2P, MA_P2P},
    {"tls", GOOP_MA_TLS, MA_NONE},
    {"noise", GOOP_MA_NOISE, MA_NONE},
    {"quic", GOOP_MA_QUIC, MA_NONE},
    {"quic-v1", GOOP_MA_QUIC_V1, MA_NONE},
    {"webtransport", GOOP_MA_WEBTRANSPORT, MA_NONE},
    {"certhash", GOOP_MA_CERTHASH, MA_CERTHASH},
    {"ws", GOOP_MA_WS, MA_NONE},
    {"wss", GOOP_MA_WSS, MA_NONE},
};

static const struct ma_proto *proto_by_code(uint64_t code) {
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(protos); i++)
    if (protos[i].code == code)
      return &protos[i];
  return NULL;
}

static const struct ma_proto *proto_by_name(const char *name, size_t len) {
  if (len == 4 && memcmp(name, "ipfs", 4) == 0)
    return proto_by_code(GOOP_MA_P2P);
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(protos); i++)
    if (strlen(protos[i].name) == len && memcmp(protos[i].name, name, len) == 0)
      return &protos[i];
  return NULL;
}

static size_t fixed_size(enum ma_kind kind) {
  switch (kind) {
  case MA_IP4:
    return 4;
  case MA_IP6:
    return 16;
  case MA_PORT:
    return 2;
  default:
    return 0;
  }
}

static bool is_lp(enum ma_kind kind) {
  return kind == MA_NAME || kind == MA_P2P || kind == MA_CERTHASH;
}

static int check_p2p_mh(const uint8_t *v, size_t len) {
  goop_multihash mh;
  if (goop_multihash_parse(v, len, &mh) != 0)
    return GOOP_EPARSE;
  /* Peer IDs are identity or sha2-256 multihashes (go-multiaddr does the same check). */
  if (mh.code != GOOP_MH_IDENTITY && mh.code != GOOP_MH_SHA2_256)
    return GOOP_EPARSE;
  return 0;
}

/* Check a binary value of a variable-length protocol. */
static int check_lp_value(enum ma_kind kind, const uint8_t *v, size_t len) {
  goop_multihash mh;
  switch (kind) {
  case MA_NAME:
    if (len == 0 || len > MA_NAME_MAX || memchr(v, '/', len) || memchr(v, '\0', len))
      return GOOP_EPARSE;
    return 0;
  case MA_P2P:
    return check_p2p_mh(v, len);
  case MA_CERTHASH:
    return goop_multihash_parse(v, len, &mh) == 0 ? 0 : GOOP_EPARSE;
  default:
    return GOOP_EPARSE;
  }
}

int goop_ma_next(const uint8_t *ma, size_t len, size_t *off, goop_ma_component *ret) {
  if (len > GOOP_MA_MAX || *off > len)
    return GOOP_EPARSE;
  if (*off == len)
    return 0;
  size_t o = *off;
  uint64_t code, vlen;
  int n = goop_varint_decode(ma + o, len - o, &code);
  if (n <= 0)
    return GOOP_EPARSE;
  o += (size_t)n;
  const struct ma_proto *p = proto_by_code(code);
  if (!p)
    return GOOP_EPARSE;
  if (is_lp(p->kind)) {
    n = goop_varint_decode(ma + o, len - o, &vlen);
    if (n <= 0)
      return GOOP_EPARSE;
    o += (size_t)n;
    if (vlen > len - o || check_lp_value(p->kind, ma + o, (size_t)vlen) != 0)
      return GOOP_EPARSE;
  } else {
    vlen = fixed_size(p->kind);
    if (vlen > len - o)
      return GOOP_EPARSE;
  }
  ret->code = code;
  ret->value = ma + o;
  ret->value_len = (size_t)vlen;
  *off = o + (size_t)vlen;
  return 1;
}

int goop_ma_validate(const uint8_t *ma, size_t len) {
  if (len == 0 || len > GOOP_MA_MAX)
    return GOOP_EPARSE;
  size_t off = 0;
  goop_ma_component c;
  int rc;
  while ((rc = goop_ma_next(ma, len, &off, &c)) == 1)
    ;
  return rc;
}

/* ---- binary → text ---------------------------------------------------------------------------- */

struct text_out {
  char *p;
  size_t len, cap;
  bool overflow;
};

static void out_mem(struct text_out *t, const void *s, size_t n) {
  if (t->overflow || n >= t->cap - t->len) { /* keep room for the NUL */
    t->overflow = true;
    return;
  }
  memcpy(t->p + t->len, s, n);
  t->len += n;
}

static void out_str(struct text_out *t, const char *s) {
  out_mem(t, s, strlen(s));
}

/* RFC 5952 text of an IPv6 address; IPv4-mapped addresses as ::ffff:a.b.c.d. */
static void format_ip6(const uint8_t *a, char *buf, size_t cap) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (memcmp(a, mapped, 12) == 0) {
    snprintf(buf, cap, "::ffff:%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
    return;
  }
  unsigned w[8];
  for (int i = 0; i < 8; i++)
    w[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
  /* Longest run of at least two zero words; the first one wins a tie. */
  int best = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (w[i] != 0) {
      i++;
      continue;
    }
    int j = i;
    while (j < 8 && w[j] == 0)
      j++;
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  if (best_len < 2)
    best = -1;
  size_t o = 0;
  for (int i = 0; i < 8;) {
    if (i == best) {
      o += (size_t)snprintf(buf + o, cap - o, "::");
      i += best_len;
      continue;
    }
    if (i > 0 && i != best + best_len)
      o += (size_t)snprintf(buf + o, cap - o, ":");
    o += (size_t)snprintf(buf + o, cap - o, "%x", w[i]);
    i++;
  }
  buf[o] = '\0';
}

static int format_value(struct text_out *t, const struct ma_proto *p, const uint8_t *v, size_t len) {
  char tmp[GOOP_MA_MAX * 2 + 8];
  int n;
  switch (p->kind) {
  case MA_NONE:
    return 0;
  case MA_IP4:
    snprintf(tmp, sizeof(tmp), "%u.%u.%u.%u", v[0], v[1], v[2], v[3]);
    break;
  case MA_IP6:
    format_ip6(v, tmp, sizeof(tmp));
    break;
  case MA_PORT:
    snprintf(tmp, sizeof(tmp), "%u", (unsigned)v[0] << 8 | v[1]);
    break;
  case MA_NAME:
    out_str(t, "/");
    out_mem(t, v, len);
    return 0;
  case MA_P2P:
    n = goop_base58_encode(v, len, tmp, sizeof(tmp));
    if (n < 0)
      return GOOP_EPARSE;
    break;
  case MA_CERTHASH:
    n = goop_multibase_encode('u', v, len, tmp, sizeof(tmp));
    if (n < 0)
      return GOOP_EPARSE;
    break;
  }
  out_str(t, "/");
  out_str(t, tmp);
  return 0;
}

int goop_ma_to_string(const uint8_t *ma, size_t len, char *out, size_t out_len) {
  int rc = goop_ma_validate(ma, len);
  if (rc != 0)
    return rc;
  if (out_len == 0)
    return GOOP_EINVAL;
  struct text_out t = {.p = out, .cap = out_len};
  size_t off = 0;
  goop_ma_component c;
  while ((rc = goop_ma_next(ma, len, &off, &c)) == 1) {
    const struct ma_proto *p = proto_by_code(c.code);
    out_str(&t, "/");
    out_str(&t, p->name);
    rc = format_value(&t, p, c.value, c.value_len);
    if (rc != 0)
      return rc;
  }
  if (rc < 0)
    return rc;
  if (t.overflow)
    return GOOP_EINVAL;
  out[t.len] = '\0';
  return (int)t.len;
}

/* ---- text → binary ---------------------------------------------------------------------------- */

struct bin_out {
  uint8_t data[GOOP_MA_MAX];
  size_t len;
};

static int put_bytes(struct bin_out *b, const void *p, size_t n) {
  if (n > sizeof(b->data) - b->len)
    return GOOP_EPARSE;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static int put_varint(struct bin_out *b, uint64_t v) {
  uint8_t tmp[GOOP_VARINT_MAX_BYTES + 1];
  return put_bytes(b, tmp, goop_varint_encode(v, tmp));
}

static int put_lp(struct bin_out *b, const void *p, size_t n) {
  int rc = put_varint(b, n);
  return rc ? rc : put_bytes(b, p, n);
}

/* Parse a decimal port: digits only (leading zeros allowed), 0..65535. */
static int parse_port(const char *s, size_t n, uint8_t ret[2]) {
  if (n == 0)
    return GOOP_EPARSE;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return GOOP_EPARSE;
    v = v * 10 + (unsigned)(s[i] - '0');
    if (v > 65535)
      return GOOP_EPARSE;
  }
  ret[0] = (uint8_t)(v >> 8);
  ret[1] = (uint8_t)v;
  return 0;
}

static int parse_ip(int af, const char *s, size_t n, uint8_t *ret) {
  char tmp[64];
  if (n == 0 || n >= sizeof(tmp))
    return GOOP_EPARSE;
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  return inet_pton(af, tmp, ret) == 1 ? 0 : GOOP_EPARSE;
}

/*
 * A peer ID in text: bare base58btc multihash if it starts with '1' or "Qm",
 * otherwise a multibase CIDv1 whose codec is libp2p-key.
 */
static int parse_p2p(const char *s, size_t n, struct bin_out *b) {
  uint8_t tmp[GOOP_MA_MAX];
  const uint8_t *mh;
  size_t mh_len;
  int len;
  if (n == 0)
    return GOOP_EPARSE;
  if (s[0] == '1' || (n >= 2 && s[0] == 'Q' && s[1] == 'm')) {
    len = goop_base58_decode(s, n, tmp, sizeof(tmp));
    if (len < 0)
      return GOOP_EPARSE;
    mh = tmp;
    mh_len = (size_t)len;
  } else {
    uint64_t codec;
    len = goop_multibase_decode(s, n, tmp, sizeof(tmp));
    if (len < 0 || goop_cid_parse(tmp, (size_t)len, &codec, &mh, &mh_len) != 0 ||
        codec != GOOP_CODEC_LIBP2P_KEY)
      return GOOP_EPARSE;
  }
  if (check_p2p_mh(mh, mh_len) != 0)
    return GOOP_EPARSE;
  return put_lp(b, mh, mh_len);
}

static int parse_value(const struct ma_proto *p, const char *s, size_t n, struct bin_out *b) {
  uint8_t tmp[GOOP_MA_MAX];
  int len;
  switch (p->kind) {
  case MA_IP4:
    if (parse_ip(AF_INET, s, n, tmp) != 0)
      return GOOP_EPARSE;
    return put_bytes(b, tmp, 4);
  case MA_IP6:
    if (parse_ip(AF_INET6, s, n, tmp) != 0)
      return GOOP_EPARSE;
    return put_bytes(b, tmp, 16);
  case MA_PORT:
    if (parse_port(s, n, tmp) != 0)
      return GOOP_EPARSE;
    return put_bytes(b, tmp, 2);
  case MA_NAME:
    if (check_lp_value(MA_NAME, (const uint8_t *)s, n) != 0)
      return GOOP_EPARSE;
    return put_lp(b, s, n);
  case MA_P2P:
    return parse_p2p(s, n, b);
  case MA_CERTHASH:
    len = goop_multibase_decode(s, n, tmp, sizeof(tmp));
    if (len < 0 || check_lp_value(MA_CERTHASH, tmp, (size_t)len) != 0)
      return GOOP_EPARSE;
    return put_lp(b, tmp, (size_t)len);
  case MA_NONE:
    break;
  }
  return GOOP_EPARSE;
}

int goop_ma_from_string(const char *text, goop_buf *out) {
  size_t len = strnlen(text, GOOP_MA_STR_MAX);
  if (len >= GOOP_MA_STR_MAX)
    return GOOP_EPARSE;
  while (len > 0 && text[len - 1] == '/') /* trailing '/' is tolerated */
    len--;
  if (len == 0 || text[0] != '/')
    return GOOP_EPARSE;
  struct bin_out bo = {.len = 0}, *b = &bo;
  int rc = 0;
  size_t pos = 1;
  while (pos <= len && rc == 0) {
    const char *name = text + pos;
    const char *slash = memchr(name, '/', len - pos);
    size_t name_len = slash ? (size_t)(slash - name) : len - pos;
    const struct ma_proto *p = proto_by_name(name, name_len);
    pos += name_len + 1;
    if (!p) {
      rc = GOOP_EPARSE;
      break;
    }
    rc = put_varint(b, p->code);
    if (rc != 0 || p->kind == MA_NONE)
      continue;
    if (pos > len) { /* missing value */
      rc = GOOP_EPARSE;
      break;
    }
    const char *val = text + pos;
    slash = memchr(val, '/', len - pos);
    size_t val_len = slash ? (size_t)(slash - val) : len - pos;
    rc = parse_value(p, val, val_len, b);
    pos += val_len + 1;
  }
  if (rc == 0)
    rc = goop_ma_validate(b->data, b->len);
  if (rc == 0)
    rc = goop_buf_append(out, b->data, b->len);
  return rc;
}
