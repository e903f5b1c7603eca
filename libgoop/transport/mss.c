/* multistream-select 1.0, sans-I/O (see mss.h). */
#include "mss.h"

#include <stdlib.h>
#include <string.h>

#include "../common/internal.h"
#include "varint.h"

#define NA "na"
#define LS "ls"
#define SIMOPEN "/libp2p/simultaneous-connect"
#define LIST_MAX 256
#define OUT_MAX (64 * 1024)

enum mss_state {
  ST_HEADER,    /* waiting for the peer's header */
  ST_NEGOTIATE, /* header seen; proposals / replies */
  ST_DONE,
  ST_FAILED,
};

struct goop_mss {
  bool initiator;
  bool lazy;
  bool rejected;
  enum mss_state state;
  int err;
  goop_buf out;

  /* A message split across feeds. rx_need is the full size (prefix +
   * payload) once the prefix is complete, else 0; rx_hdr the prefix size. */
  uint8_t rx[GOOP_VARINT_MAX_BYTES + GOOP_MSS_MSG_MAX];
  size_t rx_len;
  size_t rx_need;
  size_t rx_hdr;

  /* Initiator: protocols to propose and the one on the wire.
   * List responder: the protocols accepted. */
  char **protos;
  size_t n_protos;
  size_t cur;

  /* Responder. */
  goop_mss_supported_fn supported;
  void *user_data;
  unsigned n_proposals;

  char *selected;
  size_t selected_index;
};

static bool proto_valid(const char *s) {
  if (!s)
    return false;
  size_t n = strlen(s);
  return n >= 1 && n + 1 <= GOOP_MSS_MSG_MAX && !strchr(s, '\n');
}

int goop_mss_write_msg(goop_buf *out, const char *s) {
  if (!proto_valid(s))
    return GOOP_EINVAL;
  size_t n = strlen(s);
  size_t old = out->len;
  int rc = goop_buf_append_varint(out, n + 1);
  if (!rc)
    rc = goop_buf_append(out, s, n);
  if (!rc)
    rc = goop_buf_append_byte(out, '\n');
  if (rc)
    out->len = old; /* never leave half a message behind */
  return rc;
}

static goop_mss *mss_alloc(bool initiator) {
  goop_mss *m = calloc(1, sizeof(*m));
  if (!m)
    return NULL;
  m->initiator = initiator;
  m->state = ST_HEADER;
  m->selected_index = GOOP_MSS_NO_INDEX;
  goop_buf_init(&m->out, OUT_MAX);
  return m;
}

static int copy_list(goop_mss *m, const char *const *protos, size_t n) {
  m->protos = calloc(n ? n : 1, sizeof(*m->protos));
  if (!m->protos)
    return GOOP_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    m->protos[i] = strdup(protos[i]);
    if (!m->protos[i])
      return GOOP_ENOMEM;
    m->n_protos = i + 1;
  }
  return 0;
}

void goop_mss_free(goop_mss *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->n_protos; i++)
    free(m->protos[i]);
  free(m->protos);
  free(m->selected);
  goop_buf_free(&m->out);
  free(m);
}

int goop_mss_new_initiator(const char *const *protos, size_t n, bool lazy, goop_mss **ret) {
  goop_return_val_if_fail(protos && ret, GOOP_EINVAL);
  goop_return_val_if_fail(n >= 1 && n <= GOOP_MSS_MAX_PROPOSALS, GOOP_EINVAL);
  for (size_t i = 0; i < n; i++)
    if (!proto_valid(protos[i]))
      return GOOP_EINVAL;

  goop_mss *m = mss_alloc(true);
  if (!m)
    return GOOP_ENOMEM;
  m->lazy = lazy;
  int rc = copy_list(m, protos, n);
  if (rc)
    goto fail;
  /* Header and first proposal go out together. */
  rc = goop_mss_write_msg(&m->out, GOOP_MSS_PROTOCOL_ID);
  if (!rc)
    rc = goop_mss_write_msg(&m->out, m->protos[0]);
  if (rc)
    goto fail;
  *ret = m;
  return 0;

fail:
  goop_mss_free(m);
  return rc;
}

int goop_mss_new_responder(goop_mss_supported_fn supported, void *user_data, goop_mss **ret) {
  goop_return_val_if_fail(supported && ret, GOOP_EINVAL);
  goop_mss *m = mss_alloc(false);
  if (!m)
    return GOOP_ENOMEM;
  m->supported = supported;
  m->user_data = user_data;
  *ret = m;
  return 0;
}

int goop_mss_new_responder_list(const char *const *protos, size_t n, goop_mss **ret) {
  goop_return_val_if_fail((protos || n == 0) && ret, GOOP_EINVAL);
  goop_return_val_if_fail(n <= LIST_MAX, GOOP_EINVAL);
  for (size_t i = 0; i < n; i++)
    if (!proto_valid(protos[i]))
      return GOOP_EINVAL;
  goop_mss *m = mss_alloc(false);
  if (!m)
    return GOOP_ENOMEM;
  int rc = copy_list(m, protos, n);
  if (rc) {
    goop_mss_free(m);
    return rc;
  }
  *ret = m;
  return 0;
}

goop_buf *goop_mss_output(goop_mss *m) {
  return &m->out;
}

bool goop_mss_is_done(const goop_mss *m) {
  return m->state == ST_DONE;
}

bool goop_mss_rejected(const goop_mss *m) {
  return m->rejected;
}

bool goop_mss_can_send(const goop_mss *m) {
  if (m->state == ST_DONE)
    return true;
  return m->initiator && m->lazy && m->state != ST_FAILED;
}

int goop_mss_selected(const goop_mss *m, const char **ret_proto, size_t *ret_index) {
  goop_return_val_if_fail(m, GOOP_EINVAL);
  if (m->state != ST_DONE)
    return GOOP_ESTATE;
  if (ret_proto)
    *ret_proto = m->selected;
  if (ret_index)
    *ret_index = m->selected_index;
  return 0;
}

/*
 * Take the next complete message from |data|/|len| without touching bytes
 * past its end. Returns 1 with |*ret_msg|/|*ret_len| (the payload, '\n'
 * included; valid until the next call), 0 when every byte was used up and the
 * message is still incomplete, or a negative error. |*used| is set in all cases.
 */
static int take_msg(goop_mss *m, const uint8_t *data, size_t len, size_t *used, const uint8_t **ret_msg,
                    size_t *ret_len) {
  size_t off = 0;
  *used = 0;

  if (m->rx_len == 0 && len > 0) {
    /* Fast path: a whole message in the input. */
    const uint8_t *p;
    size_t plen;
    int n = goop_frame_decode(data, len, GOOP_MSS_MSG_MAX, &p, &plen);
    if (n < 0)
      return n;
    if (n > 0) {
      *used = (size_t)n;
      *ret_msg = p;
      *ret_len = plen;
      return 1;
    }
  }

  /* Slow path: collect the prefix byte by byte, then the payload. */
  while (m->rx_need == 0) {
    if (off == len) {
      *used = off;
      return 0;
    }
    m->rx[m->rx_len++] = data[off++];
    uint64_t v;
    int n = goop_varint_decode(m->rx, m->rx_len, &v);
    if (n < 0) {
      *used = off;
      return n;
    }
    if (n > 0) {
      if (v > GOOP_MSS_MSG_MAX) {
        *used = off;
        return GOOP_EMSGSIZE;
      }
      m->rx_hdr = (size_t)n;
      m->rx_need = (size_t)n + (size_t)v;
    }
  }
  size_t take = GOOP_MIN(m->rx_need - m->rx_len, len - off);
  memcpy(m->rx + m->rx_len, data + off, take);
  m->rx_len += take;
  off += take;
  *used = off;
  if (m->rx_len < m->rx_need)
    return 0;
  *ret_msg = m->rx + m->rx_hdr;
  *ret_len = m->rx_need - m->rx_hdr;
  m->rx_len = m->rx_need = m->rx_hdr = 0;
  return 1;
}

static int finish(goop_mss *m, const char *proto, size_t index) {
  m->selected = strdup(proto);
  if (!m->selected)
    return GOOP_ENOMEM;
  m->selected_index = index;
  m->state = ST_DONE;
  return GOOP_MSS_DONE;
}

static bool responder_accepts(goop_mss *m, const char *text, size_t *ret_index) {
  *ret_index = GOOP_MSS_NO_INDEX;
  if (strcmp(text, LS) == 0 || strcmp(text, SIMOPEN) == 0 || strcmp(text, NA) == 0 ||
      strcmp(text, GOOP_MSS_PROTOCOL_ID) == 0)
    return false;
  if (m->supported)
    return m->supported(text, m->user_data);
  for (size_t i = 0; i < m->n_protos; i++) {
    if (strcmp(text, m->protos[i]) == 0) {
      *ret_index = i;
      return true;
    }
  }
  return false;
}

/* One complete message (payload incl. '\n'). Returns 0, GOOP_MSS_DONE or an error. */
static int handle_msg(goop_mss *m, const uint8_t *msg, size_t len) {
  char text[GOOP_MSS_MSG_MAX];
  if (len < 2 || msg[len - 1] != '\n')
    return GOOP_EPARSE; /* empty, "\n" alone, or no newline */
  size_t tlen = len - 1;
  memcpy(text, msg, tlen);
  text[tlen] = '\0';
  bool has_nul = memchr(text, '\0', tlen) != NULL;

  if (m->state == ST_HEADER) {
    if (has_nul || strcmp(text, GOOP_MSS_PROTOCOL_ID) != 0)
      return GOOP_EPROTO;
    m->state = ST_NEGOTIATE;
    if (!m->initiator)
      return goop_mss_write_msg(&m->out, GOOP_MSS_PROTOCOL_ID);
    return 0;
  }

  if (m->initiator) {
    if (!has_nul && strcmp(text, m->protos[m->cur]) == 0)
      return finish(m, m->protos[m->cur], m->cur);
    if (has_nul || strcmp(text, NA) != 0)
      return GOOP_EPROTO;
    if (m->lazy || m->cur + 1 >= m->n_protos) {
      m->rejected = true;
      return GOOP_ENEGOTIATION;
    }
    m->cur++;
    return goop_mss_write_msg(&m->out, m->protos[m->cur]);
  }

  if (++m->n_proposals > GOOP_MSS_MAX_PROPOSALS)
    return GOOP_ELIMIT;
  size_t index;
  if (!has_nul && responder_accepts(m, text, &index)) {
    int rc = goop_mss_write_msg(&m->out, text);
    if (rc)
      return rc;
    return finish(m, text, index);
  }
  return goop_mss_write_msg(&m->out, NA);
}

int goop_mss_feed(goop_mss *m, const uint8_t *data, size_t len, size_t *consumed) {
  size_t off = 0;
  int rc;

  goop_return_val_if_fail(m && (data || len == 0) && consumed, GOOP_EINVAL);
  *consumed = 0;
  if (m->state == ST_FAILED)
    return m->err;
  if (m->state == ST_DONE)
    return GOOP_MSS_DONE;
  if (!data)
    data = (const uint8_t *)""; /* len == 0: keep pointer arithmetic defined */

  for (;;) {
    const uint8_t *msg = NULL;
    size_t mlen = 0, used = 0;
    rc = take_msg(m, data + off, len - off, &used, &msg, &mlen);
    off += used;
    if (rc < 0)
      goto fail;
    if (rc == 0) {
      *consumed = off;
      return GOOP_MSS_NEED_MORE;
    }
    rc = handle_msg(m, msg, mlen);
    if (rc < 0)
      goto fail;
    if (rc == GOOP_MSS_DONE) {
      *consumed = off;
      return GOOP_MSS_DONE;
    }
  }

fail:
  *consumed = off;
  m->state = ST_FAILED;
  m->err = rc;
  return rc;
}
