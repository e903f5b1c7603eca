/* GossipSub RPC protobuf decoder and encoder. */
#include "rpc.h"

#include <stdlib.h>
#include <string.h>

#include "../common/internal.h"
#include "proto.h"
#include "varint.h"

/* Grow |*arr| (elements of |size|) so that index |n| is valid; |max| bounds n. */
static int grow(void **arr, size_t *cap, size_t n, size_t size, size_t max) {
  if (n >= max)
    return GOOP_ELIMIT;
  if (n < *cap)
    return 0;
  size_t ncap = *cap ? *cap * 2 : 8;
  if (ncap > max)
    ncap = max;
  void *p = realloc(*arr, ncap * size);
  if (!p)
    return GOOP_ENOMEM;
  *arr = p;
  *cap = ncap;
  return 0;
}

struct caps {
  size_t subs, msgs, ihave, ihave_ids, iwant_ids, graft, prune;
};

static int check_topic(const goop_pb_field *f) {
  if (f->wire != GOOP_PB_LEN)
    return GOOP_EPARSE;
  if (f->len > GOOP_RPC_MAX_TOPIC)
    return GOOP_ELIMIT;
  return 0;
}

static int check_id(const goop_pb_field *f) {
  if (f->wire != GOOP_PB_LEN)
    return GOOP_EPARSE;
  if (f->len > GOOP_RPC_MAX_MSG_ID)
    return GOOP_ELIMIT;
  return 0;
}

static int decode_sub(const uint8_t *buf, size_t len, struct goop_rpc_sub *s) {
  goop_pb_reader r;
  goop_pb_field f;
  int rc;
  memset(s, 0, sizeof(*s));
  goop_pb_reader_init(&r, buf, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    if (f.num == 1) {
      if (f.wire != GOOP_PB_VARINT)
        return GOOP_EPARSE;
      s->subscribe = f.u64 != 0;
    } else if (f.num == 2) {
      if ((rc = check_topic(&f)) != 0)
        return rc;
      s->topic.p = f.data;
      s->topic.len = f.len;
    }
  }
  return rc;
}

int goop_rpc_decode_message(const uint8_t *buf, size_t len, struct goop_rpc_message *m) {
  goop_pb_reader r;
  goop_pb_field f;
  int rc;
  memset(m, 0, sizeof(*m));
  goop_pb_reader_init(&r, buf, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    goop_rpc_bytes *dst;
    unsigned bit;
    switch (f.num) {
    case 1:
      dst = &m->from, bit = GOOP_RPC_HAS_FROM;
      break;
    case 2:
      dst = &m->data, bit = GOOP_RPC_HAS_DATA;
      break;
    case 3:
      dst = &m->seqno, bit = GOOP_RPC_HAS_SEQNO;
      break;
    case 4:
      dst = &m->topic, bit = GOOP_RPC_HAS_TOPIC;
      if (f.len > GOOP_RPC_MAX_TOPIC)
        return GOOP_ELIMIT;
      break;
    case 5:
      dst = &m->signature, bit = GOOP_RPC_HAS_SIGNATURE;
      break;
    case 6:
      dst = &m->key, bit = GOOP_RPC_HAS_KEY;
      break;
    default:
      continue;
    }
    if (f.wire != GOOP_PB_LEN)
      return GOOP_EPARSE;
    dst->p = f.data;
    dst->len = f.len;
    m->has |= bit;
  }
  return rc;
}

static int decode_control(const uint8_t *buf, size_t len, struct goop_rpc *rpc, struct caps *c) {
  goop_pb_reader r, r2;
  goop_pb_field f, g;
  int rc, rc2;
  goop_pb_reader_init(&r, buf, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    if (f.num < 1 || f.num > 4)
      continue; /* IDONTWANT, extensions: ignored */
    if (f.wire != GOOP_PB_LEN)
      return GOOP_EPARSE;
    goop_pb_reader_init(&r2, f.data, f.len);
    switch (f.num) {
    case 1: { /* IHAVE */
      if ((rc = grow((void **)&rpc->ihave, &c->ihave, rpc->n_ihave, sizeof(*rpc->ihave), GOOP_RPC_MAX_CTRL)))
        return rc;
      struct goop_rpc_ihave *ih = &rpc->ihave[rpc->n_ihave];
      memset(ih, 0, sizeof(*ih));
      ih->first_id = rpc->n_ihave_ids;
      while ((rc2 = goop_pb_next(&r2, &g)) == 1) {
        if (g.num == 1) {
          if ((rc = check_topic(&g)) != 0)
            return rc;
          ih->topic.p = g.data;
          ih->topic.len = g.len;
        } else if (g.num == 2) {
          if ((rc = check_id(&g)) != 0)
            return rc;
          if ((rc = grow((void **)&rpc->ihave_ids, &c->ihave_ids, rpc->n_ihave_ids, sizeof(goop_rpc_bytes),
                         GOOP_RPC_MAX_IDS)))
            return rc;
          rpc->ihave_ids[rpc->n_ihave_ids].p = g.data;
          rpc->ihave_ids[rpc->n_ihave_ids].len = g.len;
          rpc->n_ihave_ids++;
          ih->n_ids++;
        }
      }
      if (rc2 < 0)
        return rc2;
      rpc->n_ihave++;
      break;
    }
    case 2: /* IWANT */
      while ((rc2 = goop_pb_next(&r2, &g)) == 1) {
        if (g.num != 1)
          continue;
        if ((rc = check_id(&g)) != 0)
          return rc;
        if ((rc = grow((void **)&rpc->iwant_ids, &c->iwant_ids, rpc->n_iwant_ids, sizeof(goop_rpc_bytes),
                       GOOP_RPC_MAX_IDS)))
          return rc;
        rpc->iwant_ids[rpc->n_iwant_ids].p = g.data;
        rpc->iwant_ids[rpc->n_iwant_ids].len = g.len;
        rpc->n_iwant_ids++;
      }
      if (rc2 < 0)
        return rc2;
      break;
    case 3: { /* GRAFT */
      goop_rpc_bytes t = {NULL, 0};
      while ((rc2 = goop_pb_next(&r2, &g)) == 1) {
        if (g.num != 1)
          continue;
        if ((rc = check_topic(&g)) != 0)
          return rc;
        t.p = g.data;
        t.len = g.len;
      }
      if (rc2 < 0)
        return rc2;
      if ((rc = grow((void **)&rpc->graft, &c->graft, rpc->n_graft, sizeof(goop_rpc_bytes),
                     GOOP_RPC_MAX_CTRL)))
        return rc;
      rpc->graft[rpc->n_graft++] = t;
      break;
    }
    case 4: { /* PRUNE; peer exchange (field 2) is not used */
      struct goop_rpc_prune p = {{NULL, 0}, false, 0};
      while ((rc2 = goop_pb_next(&r2, &g)) == 1) {
        if (g.num == 1) {
          if ((rc = check_topic(&g)) != 0)
            return rc;
          p.topic.p = g.data;
          p.topic.len = g.len;
        } else if (g.num == 3) {
          if (g.wire != GOOP_PB_VARINT)
            return GOOP_EPARSE;
          p.has_backoff = true;
          p.backoff = g.u64;
        }
      }
      if (rc2 < 0)
        return rc2;
      if ((rc = grow((void **)&rpc->prune, &c->prune, rpc->n_prune, sizeof(*rpc->prune), GOOP_RPC_MAX_CTRL)))
        return rc;
      rpc->prune[rpc->n_prune++] = p;
      break;
    }
    }
  }
  return rc;
}

int goop_rpc_decode(const uint8_t *buf, size_t len, struct goop_rpc *rpc) {
  goop_pb_reader r;
  goop_pb_field f;
  struct caps c = {0, 0, 0, 0, 0, 0, 0};
  int rc;
  memset(rpc, 0, sizeof(*rpc));
  if (len > GOOP_RPC_MAX_READ)
    return GOOP_EMSGSIZE;
  goop_pb_reader_init(&r, buf, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    if (f.num < 1 || f.num > 3)
      continue;
    if (f.wire != GOOP_PB_LEN) {
      rc = GOOP_EPARSE;
      break;
    }
    if (f.num == 1) {
      if ((rc = grow((void **)&rpc->subs, &c.subs, rpc->n_subs, sizeof(*rpc->subs), GOOP_RPC_MAX_SUBS)))
        break;
      if ((rc = decode_sub(f.data, f.len, &rpc->subs[rpc->n_subs])) < 0)
        break;
      rpc->n_subs++;
    } else if (f.num == 2) {
      if ((rc = grow((void **)&rpc->msgs, &c.msgs, rpc->n_msgs, sizeof(*rpc->msgs), GOOP_RPC_MAX_MSGS)))
        break;
      if ((rc = goop_rpc_decode_message(f.data, f.len, &rpc->msgs[rpc->n_msgs])) < 0)
        break;
      rpc->n_msgs++;
    } else {
      if ((rc = decode_control(f.data, f.len, rpc, &c)) < 0)
        break;
    }
  }
  if (rc < 0) {
    goop_rpc_clear(rpc);
    return rc;
  }
  return 0;
}

void goop_rpc_clear(struct goop_rpc *rpc) {
  if (!rpc)
    return;
  free(rpc->subs);
  free(rpc->msgs);
  free(rpc->ihave);
  free(rpc->ihave_ids);
  free(rpc->iwant_ids);
  free(rpc->graft);
  free(rpc->prune);
  memset(rpc, 0, sizeof(*rpc));
}

/* ---- encoder ---------------------------------------------------------------------------------- */

size_t goop_rpc_field_size(uint32_t num, size_t payload_len) {
  return goop_varint_size((uint64_t)num << 3) + goop_varint_size(payload_len) + payload_len;
}

/* Append a length-delimited field whose payload is |tmp| (then reset |tmp|). */
static int put_sub(goop_buf *out, uint32_t num, goop_buf *tmp) {
  int rc = goop_pb_put_bytes(out, num, tmp->data, tmp->len);
  goop_buf_reset(tmp);
  return rc;
}

int goop_rpc_encode_signed_part(const struct goop_rpc_message *m, goop_buf *out) {
  const goop_rpc_bytes *f[4] = {&m->from, &m->data, &m->seqno, &m->topic};
  for (uint32_t i = 0; i < 4; i++) {
    if (!(m->has & (1u << i)))
      continue;
    int rc = goop_pb_put_bytes(out, i + 1, f[i]->p, f[i]->len);
    if (rc)
      return rc;
  }
  return 0;
}

int goop_rpc_encode_message(const struct goop_rpc_message *m, goop_buf *out) {
  size_t old = out->len;
  int rc = goop_rpc_encode_signed_part(m, out);
  if (rc == 0 && (m->has & GOOP_RPC_HAS_SIGNATURE))
    rc = goop_pb_put_bytes(out, 5, m->signature.p, m->signature.len);
  if (rc == 0 && (m->has & GOOP_RPC_HAS_KEY))
    rc = goop_pb_put_bytes(out, 6, m->key.p, m->key.len);
  if (rc)
    out->len = old;
  return rc;
}

static int encode_control(const struct goop_rpc *rpc, goop_buf *ctl, goop_buf *tmp) {
  int rc = 0;
  for (size_t i = 0; i < rpc->n_ihave && !rc; i++) {
    const struct goop_rpc_ihave *ih = &rpc->ihave[i];
    rc = goop_pb_put_bytes(tmp, 1, ih->topic.p, ih->topic.len);
    for (size_t j = 0; j < ih->n_ids && !rc; j++)
      rc =
          goop_pb_put_bytes(tmp, 2, rpc->ihave_ids[ih->first_id + j].p, rpc->ihave_ids[ih->first_id + j].len);
    if (!rc)
      rc = put_sub(ctl, 1, tmp);
  }
  if (rpc->n_iwant_ids && !rc) {
    for (size_t j = 0; j < rpc->n_iwant_ids && !rc; j++)
      rc = goop_pb_put_bytes(tmp, 1, rpc->iwant_ids[j].p, rpc->iwant_ids[j].len);
    if (!rc)
      rc = put_sub(ctl, 2, tmp);
  }
  for (size_t i = 0; i < rpc->n_graft && !rc; i++) {
    rc = goop_pb_put_bytes(tmp, 1, rpc->graft[i].p, rpc->graft[i].len);
    if (!rc)
      rc = put_sub(ctl, 3, tmp);
  }
  for (size_t i = 0; i < rpc->n_prune && !rc; i++) {
    rc = goop_pb_put_bytes(tmp, 1, rpc->prune[i].topic.p, rpc->prune[i].topic.len);
    if (!rc && rpc->prune[i].has_backoff)
      rc = goop_pb_put_varint(tmp, 3, rpc->prune[i].backoff);
    if (!rc)
      rc = put_sub(ctl, 4, tmp);
  }
  return rc;
}

int goop_rpc_encode(const struct goop_rpc *rpc, goop_buf *out) {
  goop_buf tmp, ctl;
  size_t old = out->len;
  int rc = 0;
  goop_buf_init(&tmp, 0);
  goop_buf_init(&ctl, 0);
  for (size_t i = 0; i < rpc->n_subs && !rc; i++) {
    rc = goop_pb_put_bool(&tmp, 1, rpc->subs[i].subscribe);
    if (!rc)
      rc = goop_pb_put_bytes(&tmp, 2, rpc->subs[i].topic.p, rpc->subs[i].topic.len);
    if (!rc)
      rc = put_sub(out, 1, &tmp);
  }
  for (size_t i = 0; i < rpc->n_msgs && !rc; i++) {
    rc = goop_rpc_encode_message(&rpc->msgs[i], &tmp);
    if (!rc)
      rc = put_sub(out, 2, &tmp);
  }
  if (!rc)
    rc = encode_control(rpc, &ctl, &tmp);
  if (!rc && ctl.len)
    rc = goop_pb_put_bytes(out, 3, ctl.data, ctl.len);
  goop_buf_free(&tmp);
  goop_buf_free(&ctl);
  if (rc)
    out->len = old;
  return rc;
}
