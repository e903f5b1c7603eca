/*
 * mDNS discovery through avahi-daemon with raw records (libp2p-notes §12.4):
 * PTR "<tag>.local" → "<label>.<tag>.local" (shared), SRV + TXT on the
 * instance (unique); a PTR record browser on "<tag>.local" and one TXT
 * record browser per instance found.
 */
#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/defs.h>
#include <avahi-common/domain.h>
#include <avahi-common/error.h>
#include <event2/event.h>
#include <goop/discovery.h>
#include <goop/identity.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "avahi-libevent.h"
#include "internal.h"

#define MAX_INSTANCES 64
#define MAX_PEERS 256
#define RECORD_TTL 120
#define DUMMY_PORT 4001
#define NAME_MAX_TEXT 1024
#define RESTART_DELAY_S 2 /* after the daemon went away */

struct instance {
  char *name;
  AvahiRecordBrowser *txt;
  struct instance *next;
};

struct goop_mdns {
  goop_host *host;
  goop_ctx *ctx;
  struct goop__avahi_poll *poll;
  AvahiClient *client;
  AvahiEntryGroup *group;
  AvahiRecordBrowser *ptr;
  struct instance *instances;
  size_t n_instances;
  goop_peer_id self;
  char self_str[128];
  char tag[GOOP_MDNS_MAX_TAG + 1];
  char service[GOOP_MDNS_MAX_TAG + 8]; /* "<tag>.local" */
  char label[GOOP_MDNS_LABEL_MAX + 1];
  struct event *restart; /* recreates the client after a daemon failure */
  goop_peer_id *seen;    /* distinct peers discovered */
  size_t n_seen;
};

static bool tag_ok(const char *tag) {
  size_t l = strlen(tag);
  if (l == 0 || l > GOOP_MDNS_MAX_TAG)
    return false;
  for (size_t i = 0; i < l; i++) {
    char c = tag[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  }
  return true;
}

/* Encode dotted, Avahi-escaped |name| as an uncompressed wire name. Returns length or -1. */
static int name_encode(const char *name, uint8_t *out, size_t out_len) {
  size_t o = 0;
  const char *p = name;
  while (*p) {
    char label[AVAHI_LABEL_MAX];
    if (!avahi_unescape_label(&p, label, sizeof(label)))
      return -1;
    size_t l = strlen(label);
    if (l == 0 || l > 63 || o + 1 + l + 1 > out_len)
      return -1;
    out[o++] = (uint8_t)l;
    memcpy(out + o, label, l);
    o += l;
  }
  if (o + 1 > out_len || o + 1 > 255)
    return -1;
  out[o++] = 0;
  return (int)o;
}

static bool addr_publishable(const char *a) {
  if (strncmp(a, "/ip4/", 5) != 0 && strncmp(a, "/ip6/", 5) != 0)
    return false;
  if (strncmp(a, "/ip4/127.", 9) == 0 || strncmp(a, "/ip4/0.0.0.0/", 13) == 0 ||
      strncmp(a, "/ip4/169.254.", 13) == 0)
    return false;
  if (strncmp(a, "/ip6/::1/", 9) == 0 || strncmp(a, "/ip6/::/", 8) == 0 || strncmp(a, "/ip6/fe80", 9) == 0)
    return false;
  return strstr(a, "/p2p-circuit") == NULL && strstr(a, "/ws") == NULL;
}

static int tcp_port(const char *a) {
  const char *t = strstr(a, "/tcp/");
  if (!t)
    return -1;
  long v = strtol(t + 5, NULL, 10);
  return v > 0 && v < 65536 ? (int)v : -1;
}

static void publish(goop_mdns *m);

static void group_cb(AvahiEntryGroup *g, AvahiEntryGroupState state, void *ud) {
  goop_mdns *m = ud;
  if (state == AVAHI_ENTRY_GROUP_COLLISION) {
    /* someone else owns our instance name: pick a new label */
    goop__log_info(m->ctx, "mdns: name collision on %s.%s, choosing another", m->label, m->service);
    avahi_entry_group_reset(g);
    if (goop_mdns_label(m->label, sizeof(m->label)) > 0)
      publish(m);
  } else if (state == AVAHI_ENTRY_GROUP_FAILURE) {
    goop__log_warn(m->ctx, "mdns: publishing failed: %s",
                   avahi_strerror(avahi_client_errno(avahi_entry_group_get_client(g))));
  } else if (state == AVAHI_ENTRY_GROUP_ESTABLISHED) {
    goop__log_debug(m->ctx, "mdns: published %s.%s", m->label, m->service);
  }
}

static void publish(goop_mdns *m) {
  if (!m->client)
    return;
  if (!m->group) {
    m->group = avahi_entry_group_new(m->client, group_cb, m);
    if (!m->group) {
      goop__log_warn(m->ctx, "mdns: cannot create entry group: %s",
                     avahi_strerror(avahi_client_errno(m->client)));
      return;
    }
  }
  char addrs_buf[GOOP_MDNS_MAX_ADDRS][256];
  const char *addrs[GOOP_MDNS_MAX_ADDRS];
  size_t n = 0;
  int port = -1;
  char a[256];
  for (size_t i = 0; n < GOOP_MDNS_MAX_ADDRS && goop_host_announce_addr(m->host, i, a, sizeof(a)) > 0; i++) {
    if (!addr_publishable(a))
      continue;
    int w = snprintf(addrs_buf[n], sizeof(addrs_buf[n]), "%s/p2p/%s", a, m->self_str);
    if (w < 0 || (size_t)w >= 255 - 8)
      continue;
    if (port < 0)
      port = tcp_port(a);
    addrs[n] = addrs_buf[n];
    n++;
  }
  if (n == 0) {
    goop__log_info(m->ctx, "mdns: no LAN address to publish; browsing only");
    return;
  }
  uint8_t txt[GOOP_MDNS_MAX_TXT];
  size_t txt_len = 0;
  /* drop addresses from the end until the record fits one mDNS packet comfortably */
  while (n > 0 && goop_mdns_txt_build(addrs, n, txt, 1200, &txt_len) != 0)
    n--;
  if (n == 0)
    return;
  char instance[GOOP_MDNS_LABEL_MAX + sizeof(m->service) + 2];
  snprintf(instance, sizeof(instance), "%s.%s", m->label, m->service);
  uint8_t ptr_rd[256], srv_rd[6 + 256];
  int ptr_len = name_encode(instance, ptr_rd, sizeof(ptr_rd));
  const char *fqdn = avahi_client_get_host_name_fqdn(m->client);
  int tgt_len = fqdn ? name_encode(fqdn, srv_rd + 6, sizeof(srv_rd) - 6) : -1;
  if (ptr_len < 0 || tgt_len < 0) {
    goop__log_warn(m->ctx, "mdns: cannot encode names for %s", instance);
    return;
  }
  if (port < 0)
    port = DUMMY_PORT;
  memset(srv_rd, 0, 4); /* priority 0, weight 0 */
  srv_rd[4] = (uint8_t)(port >> 8);
  srv_rd[5] = (uint8_t)port;
  int rc = avahi_entry_group_add_record(m->group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, 0, m->service,
                                        AVAHI_DNS_CLASS_IN, AVAHI_DNS_TYPE_PTR, RECORD_TTL, ptr_rd,
                                        (size_t)ptr_len);
  if (rc >= 0)
    rc = avahi_entry_group_add_record(m->group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, AVAHI_PUBLISH_UNIQUE,
                                      instance, AVAHI_DNS_CLASS_IN, AVAHI_DNS_TYPE_SRV, RECORD_TTL, srv_rd,
                                      (size_t)(6 + tgt_len));
  if (rc >= 0)
    rc = avahi_entry_group_add_record(m->group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, AVAHI_PUBLISH_UNIQUE,
                                      instance, AVAHI_DNS_CLASS_IN, AVAHI_DNS_TYPE_TXT, RECORD_TTL, txt,
                                      txt_len);
  if (rc >= 0)
    rc = avahi_entry_group_commit(m->group);
  if (rc < 0) {
    goop__log_warn(m->ctx, "mdns: cannot publish %s: %s", instance, avahi_strerror(rc));
    avahi_entry_group_reset(m->group);
    return;
  }
  goop__log_info(m->ctx, "mdns: announcing %zu address(es) as %s", n, instance);
}

static void on_dialled(goop_host *host, int status, goop_conn *conn, void *ud) {
  (void)conn;
  (void)ud;
  if (status != 0)
    goop__log_debug(goop_host_get_ctx(host), "mdns: dial of a discovered peer failed: %s",
                    goop_strerror(status));
}

struct txt_walk {
  goop_mdns *m;
  goop_peer_id peers[GOOP_MDNS_MAX_ADDRS];
  size_t n_peers;
};

static void on_txt_addr(const char *addr, void *ud) {
  struct txt_walk *tw = ud;
  goop_mdns *m = tw->m;
  const char *p2p = strstr(addr, "/p2p/");
  if (!p2p)
    return;
  const char *last;
  while ((last = strstr(p2p + 5, "/p2p/")) != NULL)
    p2p = last;
  goop_peer_id pid;
  if (goop_peer_id_from_string(p2p + 5, &pid) != 0)
    return;
  if (goop_peer_id_equal(&pid, &m->self))
    return;
  if (goop_host_add_addr(m->host, &pid, addr, GOOP_MDNS_ADDR_TTL) != 0)
    return;
  for (size_t i = 0; i < tw->n_peers; i++)
    if (goop_peer_id_equal(&tw->peers[i], &pid))
      return;
  if (tw->n_peers < GOOP_MDNS_MAX_ADDRS)
    tw->peers[tw->n_peers++] = pid;
}

static void note_seen(goop_mdns *m, const goop_peer_id *pid) {
  for (size_t i = 0; i < m->n_seen; i++)
    if (goop_peer_id_equal(&m->seen[i], pid))
      return;
  if (m->n_seen >= MAX_PEERS)
    return;
  goop_peer_id *s = realloc(m->seen, (m->n_seen + 1) * sizeof(*s));
  if (!s)
    return;
  m->seen = s;
  m->seen[m->n_seen++] = *pid;
}

static void txt_cb(AvahiRecordBrowser *b, AvahiIfIndex iface, AvahiProtocol proto, AvahiBrowserEvent event,
                   const char *name, uint16_t clazz, uint16_t type, const void *rdata, size_t size,
                   AvahiLookupResultFlags flags, void *ud) {
  (void)b;
  (void)iface;
  (void)proto;
  (void)clazz;
  goop_mdns *m = ud;
  if (event != AVAHI_BROWSER_NEW || type != AVAHI_DNS_TYPE_TXT || (flags & AVAHI_LOOKUP_RESULT_OUR_OWN))
    return;
  struct txt_walk tw = {.m = m};
  if (goop_mdns_txt_parse(rdata, size, on_txt_addr, &tw) < 0) {
    goop__log_debug(m->ctx, "mdns: malformed TXT record on %s", name);
    return;
  }
  for (size_t i = 0; i < tw.n_peers; i++) {
    note_seen(m, &tw.peers[i]);
    char s[128];
    if (goop_peer_id_to_string(&tw.peers[i], s, sizeof(s)) > 0)
      goop__log_info(m->ctx, "mdns: found peer %s", s);
    if (goop_host_get_conn(m->host, &tw.peers[i]))
      continue;
    (void)goop_host_connect(m->host, &tw.peers[i], GOOP_MDNS_DIAL_TIMEOUT_MS, on_dialled, NULL);
  }
}

static void instance_drop(goop_mdns *m, struct instance **link) {
  struct instance *in = *link;
  *link = in->next;
  if (in->txt)
    avahi_record_browser_free(in->txt);
  free(in->name);
  free(in);
  m->n_instances--;
}

static void ptr_cb(AvahiRecordBrowser *b, AvahiIfIndex iface, AvahiProtocol proto, AvahiBrowserEvent event,
                   const char *name, uint16_t clazz, uint16_t type, const void *rdata, size_t size,
                   AvahiLookupResultFlags flags, void *ud) {
  (void)b;
  (void)iface;
  (void)proto;
  (void)name;
  (void)clazz;
  goop_mdns *m = ud;
  if (event == AVAHI_BROWSER_FAILURE) {
    goop__log_warn(m->ctx, "mdns: browsing failed: %s", avahi_strerror(avahi_client_errno(m->client)));
    return;
  }
  if ((event != AVAHI_BROWSER_NEW && event != AVAHI_BROWSER_REMOVE) || type != AVAHI_DNS_TYPE_PTR ||
      (flags & AVAHI_LOOKUP_RESULT_OUR_OWN))
    return;
  char target[NAME_MAX_TEXT];
  if (goop_mdns_name_decode(rdata, size, target, sizeof(target)) < 0)
    return;
  struct instance **link = &m->instances;
  while (*link && strcasecmp((*link)->name, target) != 0)
    link = &(*link)->next;
  if (event == AVAHI_BROWSER_REMOVE) {
    if (*link)
      instance_drop(m, link);
    return;
  }
  if (*link || m->n_instances >= MAX_INSTANCES || !avahi_is_valid_domain_name(target))
    return;
  struct instance *in = calloc(1, sizeof(*in));
  if (!in || !(in->name = strdup(target))) {
    free(in);
    return;
  }
  in->txt = avahi_record_browser_new(m->client, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, target,
                                     AVAHI_DNS_CLASS_IN, AVAHI_DNS_TYPE_TXT, 0, txt_cb, m);
  if (!in->txt) {
    free(in->name);
    free(in);
    return;
  }
  in->next = m->instances;
  m->instances = in;
  m->n_instances++;
}

static void stop_browsing(goop_mdns *m) {
  while (m->instances)
    instance_drop(m, &m->instances);
  if (m->ptr) {
    avahi_record_browser_free(m->ptr);
    m->ptr = NULL;
  }
}

static void client_cb(AvahiClient *c, AvahiClientState state, void *ud) {
  goop_mdns *m = ud;
  m->client = c; /* may run before avahi_client_new() returns */
  switch (state) {
  case AVAHI_CLIENT_S_RUNNING:
    if (!m->group || avahi_entry_group_is_empty(m->group))
      publish(m);
    if (!m->ptr) {
      m->ptr = avahi_record_browser_new(c, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, m->service,
                                        AVAHI_DNS_CLASS_IN, AVAHI_DNS_TYPE_PTR, 0, ptr_cb, m);
      if (!m->ptr)
        goop__log_warn(m->ctx, "mdns: cannot browse %s: %s", m->service,
                       avahi_strerror(avahi_client_errno(c)));
    }
    break;
  case AVAHI_CLIENT_S_COLLISION:
  case AVAHI_CLIENT_S_REGISTERING:
    if (m->group)
      avahi_entry_group_reset(m->group);
    break;
  case AVAHI_CLIENT_FAILURE: {
    /* the client cannot be freed from its own callback: start over from a timer */
    struct timeval tv = {RESTART_DELAY_S, 0};
    goop__log_warn(m->ctx, "mdns: avahi client failure: %s; waiting for the daemon",
                   avahi_strerror(avahi_client_errno(c)));
    if (m->restart)
      (void)event_add(m->restart, &tv);
    break;
  }
  case AVAHI_CLIENT_CONNECTING:
    break;
  }
}

/* Drop the failed client and its objects, then wait for the daemon (AVAHI_CLIENT_NO_FAIL). */
static void on_restart(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  goop_mdns *m = arg;
  stop_browsing(m);
  if (m->group) {
    avahi_entry_group_free(m->group);
    m->group = NULL;
  }
  if (m->client) {
    avahi_client_free(m->client);
    m->client = NULL;
  }
  int err = 0;
  AvahiClient *c = avahi_client_new(goop__avahi_poll_get(m->poll), AVAHI_CLIENT_NO_FAIL, client_cb, m, &err);
  if (!c) {
    struct timeval tv = {RESTART_DELAY_S * 5, 0};
    goop__log_warn(m->ctx, "mdns: cannot recreate the avahi client: %s", avahi_strerror(err));
    (void)event_add(m->restart, &tv);
    return;
  }
  m->client = c;
}

int goop_mdns_new(goop_host *host, const char *tag, goop_mdns **ret) {
  goop_return_val_if_fail(host && tag && ret, GOOP_EINVAL);
  *ret = NULL;
  if (!tag_ok(tag))
    return GOOP_EINVAL;
  goop_mdns *m = calloc(1, sizeof(*m));
  if (!m)
    return GOOP_ENOMEM;
  m->host = host;
  m->ctx = goop_host_get_ctx(host);
  goop_host_peer_id(host, &m->self);
  if (goop_peer_id_to_string(&m->self, m->self_str, sizeof(m->self_str)) <= 0) {
    free(m);
    return GOOP_EINVAL;
  }
  snprintf(m->tag, sizeof(m->tag), "%s", tag);
  snprintf(m->service, sizeof(m->service), "%s.local", tag);
  if (goop_mdns_label(m->label, sizeof(m->label)) <= 0) {
    free(m);
    return GOOP_EIO;
  }
  m->poll = goop__avahi_poll_new(goop_ctx_get_base(m->ctx));
  m->restart = evtimer_new(goop_ctx_get_base(m->ctx), on_restart, m);
  if (!m->poll || !m->restart) {
    if (m->restart)
      event_free(m->restart);
    goop__avahi_poll_free(m->poll);
    free(m);
    return GOOP_ENOMEM;
  }
  int err = 0;
  AvahiClient *c = avahi_client_new(goop__avahi_poll_get(m->poll), 0, client_cb, m, &err);
  if (!c) {
    goop__log_debug(m->ctx, "mdns: avahi unavailable: %s", avahi_strerror(err));
    goop__avahi_poll_free(m->poll);
    event_free(m->restart);
    free(m);
    return (err == AVAHI_ERR_NO_DAEMON || err == AVAHI_ERR_DBUS_ERROR || err == AVAHI_ERR_DISCONNECTED ||
            err == AVAHI_ERR_ACCESS_DENIED)
               ? GOOP_ENOTSUP
               : (err == AVAHI_ERR_NO_MEMORY ? GOOP_ENOMEM : GOOP_EIO);
  }
  m->client = c;
  *ret = m;
  return 0;
}

size_t goop_mdns_num_discovered(const goop_mdns *m) {
  return m ? m->n_seen : 0;
}

void goop_mdns_free(goop_mdns *m) {
  if (!m)
    return;
  event_free(m->restart);
  stop_browsing(m);
  if (m->group)
    avahi_entry_group_free(m->group);
  if (m->client)
    avahi_client_free(m->client);
  goop__avahi_poll_free(m->poll);
  free(m->seen);
  free(m);
}
