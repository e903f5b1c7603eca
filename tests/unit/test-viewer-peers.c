/*
 * Unit tests of the viewer's peer table (cli/viewer/peers.c) and its small
 * HTTP parsers (cli/viewer/http-parse.c).
 */
#include "tap.h"

#include "../../cli/viewer/http-parse.h"
#include "../../cli/viewer/peers.h"

#include <time.h>

#define ID_A "12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define ID_B "12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

struct log {
  int updates, removes;
  char last[128];
};

static void on_ev(enum peers_event ev, const char *id, const struct peer_entry *e, void *ud) {
  struct log *l = ud;
  if (ev == PEERS_EVENT_UPDATE) {
    l->updates++;
    if (!e || strcmp(e->id, id) != 0)
      l->updates += 1000;
  } else {
    l->removes++;
    if (e)
      l->removes += 1000;
  }
  snprintf(l->last, sizeof(l->last), "%s", id);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_events_and_ttl(void) {
  struct event_base *base = event_base_new();
  struct peers *p = peers_new(base, 2);
  struct log l = {0};
  CHECK(p != NULL);
  CHECK_INT_EQ(peers_add_listener(p, on_ev, &l), 0);

  struct peer_info info = {
      .label = "Bob", .email = "bob@example.org", .avatar_hash = "0123456789abcdef", .verified = true};
  CHECK_INT_EQ(peers_upsert(p, ID_B, &info), 0);
  CHECK_INT_EQ(l.updates, 1);
  CHECK_STR_EQ(l.last, ID_B);
  CHECK_INT_EQ(peers_connected(p, ID_A, "/ip4/127.0.0.1/tcp/1", false), 0);
  CHECK_INT_EQ(l.updates, 2);
  CHECK_INT_EQ(peers_count(p), 2);

  json_t *arr = peers_list_json(p);
  CHECK(json_array_size(arr) == 2);
  CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(arr, 0), "ID")), ID_A); /* sorted */
  json_t *b = json_array_get(arr, 1);
  CHECK_STR_EQ(json_string_value(json_object_get(b, "Content")), "Bob");
  CHECK_STR_EQ(json_string_value(json_object_get(b, "Email")), "bob@example.org");
  CHECK_STR_EQ(json_string_value(json_object_get(b, "AvatarHash")), "0123456789abcdef");
  CHECK(json_is_true(json_object_get(b, "Verified")));
  CHECK(json_is_false(json_object_get(b, "VideoDisabled")));
  CHECK_INT_EQ(json_object_size(b), 8);
  CHECK_STR_EQ(json_string_value(json_object_get(b, "Conn")), "none");
  CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(arr, 0), "Conn")), "direct");
  json_decref(arr);

  /* a bad avatar hash is ignored; a label update emits */
  struct peer_info bad = {.avatar_hash = "XYZ"};
  CHECK_INT_EQ(peers_upsert(p, ID_B, &bad), 0);
  CHECK_STR_EQ(peers_get(p, ID_B)->avatar_hash, "0123456789abcdef");
  CHECK_INT_EQ(peers_set_label(p, ID_A, "Alice"), 0);
  CHECK_STR_EQ(peers_get(p, ID_A)->label, "Alice");

  /* TTL: B (no connection) goes after 2 s; A stays while connected */
  uint64_t t = now_ms();
  peers_prune(p, t + 1000);
  CHECK_INT_EQ(l.removes, 0);
  peers_prune(p, t + 3000);
  CHECK_INT_EQ(l.removes, 1);
  CHECK_STR_EQ(l.last, ID_B);
  CHECK(peers_get(p, ID_B) == NULL);
  CHECK(peers_get(p, ID_A) != NULL);
  peers_prune(p, t + 60000);
  CHECK_INT_EQ(l.removes, 1);
  /* after the disconnect the TTL runs */
  peers_disconnected(p, ID_A, false);
  peers_prune(p, now_ms() + 1000);
  CHECK_INT_EQ(l.removes, 1);
  peers_prune(p, now_ms() + 2500);
  CHECK_INT_EQ(l.removes, 2);
  CHECK_INT_EQ(peers_count(p), 0);

  peers_free(p);
  event_base_free(base);
}

/* "Conn": relayed while only a circuit exists, direct once a direct connection joins (hole punch). */
static void test_conn_kind(void) {
  struct event_base *base = event_base_new();
  struct peers *p = peers_new(base, 5);
  struct log l = {0};
  CHECK_INT_EQ(peers_add_listener(p, on_ev, &l), 0);
  CHECK_INT_EQ(peers_upsert(p, ID_A, NULL), 0);
  CHECK_STR_EQ(peers_conn_kind(peers_get(p, ID_A)), "none");
  CHECK_INT_EQ(peers_connected(p, ID_A, NULL, true), 0);
  CHECK_STR_EQ(peers_conn_kind(peers_get(p, ID_A)), "relayed");
  CHECK_INT_EQ(peers_get(p, ID_A)->n_addrs, 0);
  CHECK_INT_EQ(peers_connected(p, ID_A, "/ip4/198.51.100.7/tcp/4001", false), 0);
  CHECK_STR_EQ(peers_conn_kind(peers_get(p, ID_A)), "direct");
  int before = l.updates;
  peers_disconnected(p, ID_A, true); /* the relayed one closes after the punch */
  CHECK_STR_EQ(peers_conn_kind(peers_get(p, ID_A)), "direct");
  CHECK(l.updates > before); /* listeners hear that the kind may have changed */
  peers_disconnected(p, ID_A, false);
  CHECK_STR_EQ(peers_conn_kind(peers_get(p, ID_A)), "none");
  peers_disconnected(p, ID_A, true); /* unbalanced: no underflow */
  CHECK_STR_EQ(peers_conn_kind(peers_get(p, ID_A)), "none");
  peers_free(p);
  event_base_free(base);
}

static void test_pin_and_remove(void) {
  struct event_base *base = event_base_new();
  struct peers *p = peers_new(base, 1);
  struct log l = {0};
  CHECK_INT_EQ(peers_add_listener(p, on_ev, &l), 0);
  CHECK_INT_EQ(peers_pin(p, ID_A, "/ip4/10.0.0.1/tcp/4001/p2p/" ID_A), 0);
  CHECK_INT_EQ(peers_count(p), 0); /* bootstrap entries are not listed until seen */
  CHECK_INT_EQ(l.updates, 0);
  json_t *arr = peers_list_json(p);
  CHECK(json_array_size(arr) == 0);
  json_decref(arr);
  CHECK_INT_EQ(peers_connected(p, ID_A, NULL, false), 0);
  CHECK_INT_EQ(peers_get(p, ID_A)->n_addrs, 1);
  peers_disconnected(p, ID_A, false);
  peers_prune(p, now_ms() + 5000);
  CHECK_INT_EQ(l.removes, 1);
  CHECK(peers_get(p, ID_A) != NULL); /* pinned: address kept */
  CHECK_INT_EQ(peers_count(p), 0);
  CHECK_INT_EQ(peers_upsert(p, ID_B, NULL), 0);
  peers_remove(p, ID_B);
  CHECK_INT_EQ(l.removes, 2);
  CHECK(peers_get(p, ID_B) == NULL);
  peers_remove(p, ID_B); /* unknown: nothing */
  CHECK_INT_EQ(l.removes, 2);
  /* bounded addresses and fields */
  char a[64];
  for (int i = 0; i < 40; i++) {
    snprintf(a, sizeof(a), "/ip4/10.0.0.%d/tcp/1", i);
    CHECK_INT_EQ(peers_add_addr(p, ID_A, a), 0);
  }
  CHECK_INT_EQ(peers_get(p, ID_A)->n_addrs, PEERS_MAX_ADDRS);
  char big[2000];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = 0;
  struct peer_info bi = {.label = big};
  CHECK_INT_EQ(peers_upsert(p, ID_A, &bi), 0);
  CHECK_INT_EQ(strlen(peers_get(p, ID_A)->label), PEERS_MAX_FIELD);
  peers_remove_listener(p, on_ev, &l);
  peers_free(p);
  event_base_free(base);
}

static void test_time(void) {
  char buf[48];
  peers_format_time(1767322245678LL, buf, sizeof(buf));
  CHECK_STR_EQ(buf, "2026-01-02T02:50:45.678Z");
}

static void test_parse_addr(void) {
  char h[64];
  uint16_t port = 1;
  CHECK_INT_EQ(http_parse_addr("127.0.0.1:8080", h, sizeof(h), &port), 0);
  CHECK_STR_EQ(h, "127.0.0.1");
  CHECK_INT_EQ(port, 8080);
  CHECK_INT_EQ(http_parse_addr(":9000", h, sizeof(h), &port), 0);
  CHECK_STR_EQ(h, "127.0.0.1");
  CHECK_INT_EQ(port, 9000);
  CHECK_INT_EQ(http_parse_addr("0.0.0.0:0", h, sizeof(h), &port), 0);
  CHECK_STR_EQ(h, "0.0.0.0");
  CHECK_INT_EQ(port, 0);
  CHECK_INT_EQ(http_parse_addr("[::1]:80", h, sizeof(h), &port), 0);
  CHECK_STR_EQ(h, "::1");
  CHECK_INT_EQ(http_parse_addr("localhost:80", h, sizeof(h), &port), 0);
  CHECK_STR_EQ(h, "127.0.0.1");
  CHECK_INT_EQ(http_parse_addr("::1:80", h, sizeof(h), &port), -1);
  CHECK_INT_EQ(http_parse_addr("1.2.3.4:65536", h, sizeof(h), &port), -1);
  CHECK_INT_EQ(http_parse_addr("1.2.3.4:", h, sizeof(h), &port), -1);
  CHECK_INT_EQ(http_parse_addr("1.2.3.4", h, sizeof(h), &port), -1);
  CHECK_INT_EQ(http_parse_addr("1.2.3.4:8o", h, sizeof(h), &port), -1);
  CHECK_INT_EQ(http_parse_addr("[::1]8080", h, sizeof(h), &port), -1);
  CHECK_INT_EQ(http_parse_addr("", h, sizeof(h), &port), -1);
  CHECK_INT_EQ(http_parse_addr("123456789.123456789:1", h, 8, &port), -1);
}

static void test_form(void) {
  const char *b = "a=1&csrf=ab%2Fc+d&empty&x=";
  char out[16];
  CHECK_INT_EQ(http_form_field(b, strlen(b), "csrf", out, sizeof(out)), 6);
  CHECK_STR_EQ(out, "ab/c d");
  CHECK_INT_EQ(http_form_field(b, strlen(b), "empty", out, sizeof(out)), 0);
  CHECK_INT_EQ(http_form_field(b, strlen(b), "x", out, sizeof(out)), 0);
  CHECK_INT_EQ(http_form_field(b, strlen(b), "nope", out, sizeof(out)), -1);
  CHECK_INT_EQ(http_form_field("csrf=%4", 7, "csrf", out, sizeof(out)), -2);
  CHECK_INT_EQ(http_form_field("csrf=%zz", 8, "csrf", out, sizeof(out)), -2);
  CHECK_INT_EQ(http_form_field("csrf=0123456789abcdef", 21, "csrf", out, sizeof(out)), -2);
  CHECK_INT_EQ(http_form_field("csrf=ab", 6, "csrf", out, sizeof(out)), 1); /* length bounds the read */
  CHECK_STR_EQ(out, "a");
  CHECK(http_is_guest_token("0123456789abcdef0123456789abcdef"));
  CHECK(!http_is_guest_token("0123456789abcdef0123456789abcdeF"));
  CHECK(!http_is_guest_token("0123456789abcdef0123456789abcdef0"));
  CHECK(!http_is_guest_token(""));
  CHECK(http_token_equal("abc", "abc"));
  CHECK(!http_token_equal("abc", "abd"));
  CHECK(!http_token_equal("abc", "abcd"));
  CHECK(!http_token_equal("", "a"));
}

int main(void) {
  RUN(test_events_and_ttl);
  RUN(test_pin_and_remove);
  RUN(test_conn_kind);
  RUN(test_time);
  RUN(test_parse_addr);
  RUN(test_form);
  return tap_done();
}
