/*
 * Viewer routes of the site database (see routes-site.h):
 *
 *   /api/data/<op>             the owner's data API (B §7.5): loopback owner
 *                              only, POSTs need the CSRF token; bare results,
 *                              400 for validation errors, 500 for database
 *                              errors, 405 for a wrong method.
 *   /api/p/<peer-id>/data/<op> the data proxy (B §7.6): the own ID runs
 *                              locally as the owner (owner) or under the
 *                              table policies with the guest identity
 *                              (guests); another ID goes over
 *                              /goop/data/1.0.0 as this peer, which only the
 *                              owner may do (a guest would act with the
 *                              owner's identity there): guests get 403.
 *   /api/csrf                  owner: {"token"} for pages that have no
 *                              <meta name="goop-csrf"> (site pages under /p/).
 */
#include "http-parse.h"
#include "routes-site.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REMOTE_DATA_TIMEOUT_MS 30000u

/* An op of the URL: suffix, wire op, methods of /api/data (0 = not offered there), body read. */
struct data_op {
  const char *suffix;
  const char *op;
  unsigned local_methods;
  bool body;
};

static const struct data_op ops[] = {
    {"tables", "tables", VIEWER_GET, false},
    {"insert", "insert", VIEWER_POST, true},
    {"query", "query", VIEWER_POST, true},
    {"update", "update", VIEWER_POST, true},
    {"delete", "delete", VIEWER_POST, true},
    {"tables/create", "create-table", VIEWER_POST, true},
    {"tables/describe", "describe", VIEWER_POST, true},
    {"tables/delete", "delete-table", VIEWER_POST, true},
    {"tables/add-column", "add-column", VIEWER_POST, true},
    {"tables/drop-column", "drop-column", VIEWER_POST, true},
    {"tables/rename", "rename-table", VIEWER_POST, true},
    {"tables/set-policy", "set-policy", VIEWER_POST, true}, /* local only, not a wire op */
    {"lua/call", "lua-call", 0, true},
    {"lua/list", "lua-list", 0, false},
};

static const struct data_op *find_op(const char *suffix) {
  for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
    if (strcmp(ops[i].suffix, suffix) == 0)
      return &ops[i];
  return NULL;
}

static bool has_body_method(struct viewer_req *r) {
  const char *m = viewer_req_method(r);
  return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0;
}

/* The CSRF token from X-Goop-CSRF or the JSON body's "csrf". */
static bool csrf_ok(struct viewer_req *r) {
  const char *want = viewer_csrf_token(viewer_req_viewer(r));
  const char *h = viewer_req_header(r, "X-Goop-CSRF");
  if (h)
    return http_token_equal(h, want);
  json_t *j = viewer_req_json(r);
  const char *s = json_is_object(j) ? json_string_value(json_object_get(j, "csrf")) : NULL;
  return s && http_token_equal(s, want);
}

/*
 * The wire request for |op| from the HTTP body |body| (NULL = none): the
 * accepted keys only; "columns" becomes "column_defs" for create-table and a
 * string list otherwise; a drop-column "column" string becomes {"name"}.
 */
static json_t *build_request(const struct data_op *op, json_t *body) {
  static const char *const keys[] = {"table", "name",   "data",     "id",       "where",    "args",  "column",
                                     "limit", "offset", "old_name", "new_name", "function", "params"};
  json_t *req = json_object();
  if (!req || json_object_set_new(req, "op", json_string(op->op)) != 0) {
    json_decref(req);
    return NULL;
  }
  if (!body)
    return req;
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    json_t *v = json_object_get(body, keys[i]);
    if (v && json_object_set(req, keys[i], v) != 0)
      goto oom;
  }
  json_t *cols = json_object_get(body, "columns");
  if (cols) {
    if (strcmp(op->op, "create-table") == 0) {
      if (json_object_set(req, "column_defs", cols) != 0)
        goto oom;
    } else if (json_is_array(cols)) {
      json_t *list = json_array();
      size_t i;
      json_t *c;
      json_array_foreach(cols, i, c) if (json_is_string(c) && list) json_array_append(list, c);
      if (!list || json_object_set_new(req, "columns", list) != 0)
        goto oom;
    }
  }
  json_t *col = json_object_get(body, "column");
  if (strcmp(op->op, "drop-column") == 0 && json_is_string(col) &&
      json_object_set_new(req, "column", json_pack("{s:O}", "name", col)) != 0)
    goto oom;
  return req;
oom:
  json_decref(req);
  return NULL;
}

/* Messages of requests the store refused before touching the database. */
static bool is_validation_error(const char *e) {
  static const char *const marks[] = {"required",       "invalid",  "unknown",       "not allowed",
                                      "must be",        "reserved", "no such table", "no such column",
                                      "already exists", "not found"};
  for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
    if (strstr(e, marks[i]))
      return true;
  return false;
}

/*
 * Answer from a {"ok":...} line: 200 + data, or |fail_status| (0 = 400 for
 * validation errors, else 500) with the error text.
 */
static enum MHD_Result reply_result(struct viewer_req *r, const char *resp, size_t len,
                                    unsigned fail_status) {
  json_t *j = json_loadb(resp, len, 0, NULL);
  if (!json_is_object(j)) {
    json_decref(j);
    return viewer_reply_text(r, MHD_HTTP_BAD_GATEWAY, "malformed answer from the peer");
  }
  if (json_is_true(json_object_get(j, "ok"))) {
    json_t *data = json_object_get(j, "data");
    json_t *out = data ? json_incref(data) : json_null();
    json_decref(j);
    return viewer_reply_json(r, MHD_HTTP_OK, out);
  }
  const char *e = json_string_value(json_object_get(j, "error"));
  char msg[1024];
  snprintf(msg, sizeof(msg), "%s", e ? e : "operation failed");
  json_decref(j);
  unsigned st = fail_status
                    ? fail_status
                    : (is_validation_error(msg) ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR);
  return viewer_reply_text(r, st, msg);
}

static enum MHD_Result exec_local(struct viewer_req *r, goop_site *site,
                                  const struct goop_site_caller *caller, json_t *req, unsigned fail_status) {
  if (!site) {
    json_decref(req);
    return viewer_reply_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database not available");
  }
  char *s = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  if (!s)
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  char *resp = NULL;
  int rc = goop_site_data_exec(site, caller, s, strlen(s), &resp);
  free(s);
  if (rc != 0)
    return viewer_reply_text(r, rc == GOOP_ENOMEM ? MHD_HTTP_INTERNAL_SERVER_ERROR : MHD_HTTP_BAD_REQUEST,
                             goop_strerror(rc));
  enum MHD_Result ret = reply_result(r, resp, strlen(resp), fail_status);
  free(resp);
  return ret;
}

/* set-policy: the registry row of the table, in data.db next to the config. */
static enum MHD_Result set_policy(struct viewer_req *r, json_t *body) {
  const char *t = json_string_value(json_object_get(body, "table"));
  const char *p = json_string_value(json_object_get(body, "policy"));
  if (!t || !*t)
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "table name required");
  if (!p || (strcmp(p, "owner") != 0 && strcmp(p, "email") != 0 && strcmp(p, "open") != 0 &&
             strcmp(p, "public") != 0))
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "policy must be owner, email, open, or public");
  const goop_config *cfg = viewer_config(viewer_req_viewer(r));
  const char *dir = cfg ? goop_config_base_dir(cfg) : NULL;
  if (!dir)
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "database not available");
  char path[4096];
  snprintf(path, sizeof(path), "%s/data.db", dir);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int changes = -1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) == SQLITE_OK &&
      sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "UPDATE _tables SET insert_policy = ?1 WHERE name = ?2", -1, &st, NULL) ==
          SQLITE_OK &&
      sqlite3_bind_text(st, 1, p, -1, SQLITE_STATIC) == SQLITE_OK &&
      sqlite3_bind_text(st, 2, t, -1, SQLITE_STATIC) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE)
    changes = sqlite3_changes(db);
  char err[256];
  snprintf(err, sizeof(err), "%s", db ? sqlite3_errmsg(db) : "cannot open the database");
  sqlite3_finalize(st);
  sqlite3_close(db);
  if (changes < 0)
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
  if (changes == 0)
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "table not found");
  return viewer_reply_json(r, MHD_HTTP_OK, json_pack("{s:s,s:s}", "status", "updated", "policy", p));
}

/* ---- /api/data/<op> ---- */

static enum MHD_Result on_local(struct viewer_req *r, void *ud) {
  goop_site *site = ud;
  const struct data_op *op = find_op(viewer_req_subpath(r));
  if (!op || !op->local_methods)
    return viewer_reply_text(r, MHD_HTTP_NOT_FOUND, "unknown data operation");
  bool get = !has_body_method(r);
  if ((op->local_methods == VIEWER_GET) != get) {
    const char *allow = op->local_methods == VIEWER_GET ? "GET, HEAD" : "POST";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(19, (void *)"method not allowed\n", MHD_RESPMEM_PERSISTENT);
    if (!resp)
      return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = viewer_req_queue(r, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
    MHD_destroy_response(resp);
    return ret;
  }
  json_t *body = NULL;
  if (op->body) {
    body = viewer_req_json(r);
    if (!json_is_object(body))
      return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "request body must be a JSON object");
  }
  if (strcmp(op->op, "set-policy") == 0)
    return set_policy(r, body);
  json_t *req = build_request(op, body);
  if (!req)
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  if (strcmp(op->op, "create-table") == 0 && !json_object_get(req, "name") && !json_object_get(req, "table"))
    return json_decref(req), viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "table name required");
  struct goop_site_caller caller = {.id = viewer_self_id(viewer_req_viewer(r)), .is_owner = true};
  return exec_local(r, site, &caller, req, 0);
}

/* ---- /api/p/<peer-id>/data/<op> ---- */

struct dreq {
  struct viewer_req *r; /* NULL once the request ended */
};

static void dreq_req_done(struct viewer_req *r, void *ud) {
  (void)r;
  struct dreq *d = ud;
  d->r = NULL;
}

static void on_remote_answer(goop_host *h, int status, const char *response, size_t len, void *ud) {
  (void)h;
  struct dreq *d = ud;
  struct viewer_req *r = d->r;
  free(d);
  if (!r)
    return;
  viewer_req_on_done(r, NULL, NULL);
  if (status != 0) {
    char msg[300];
    snprintf(msg, sizeof(msg), "open stream: %s", goop_strerror(status));
    (void)viewer_reply_text(r, MHD_HTTP_BAD_GATEWAY, msg);
  } else {
    (void)reply_result(r, response, len, MHD_HTTP_INTERNAL_SERVER_ERROR);
  }
  viewer_req_resume(r);
}

static enum MHD_Result on_proxy(struct viewer_req *r, void *ud) {
  goop_site *site = ud;
  const char *sub = viewer_req_subpath(r);
  const char *slash = strchr(sub, '/');
  size_t idlen = slash ? (size_t)(slash - sub) : strlen(sub);
  if (idlen == 0)
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "missing peer id");
  char id[GOOP_PEER_ID_STR_MAX];
  goop_peer_id pid;
  if (idlen >= sizeof(id))
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "invalid peer id");
  memcpy(id, sub, idlen);
  id[idlen] = 0;
  if (goop_peer_id_from_string(id, &pid) != 0)
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "invalid peer id");
  if (!slash || strncmp(slash, "/data/", 6) != 0)
    return viewer_reply_text(r, MHD_HTTP_NOT_FOUND, "not found");
  const struct data_op *op = find_op(slash + 6);
  if (!op || strcmp(op->op, "set-policy") == 0)
    return viewer_reply_text(r, MHD_HTTP_NOT_FOUND, "unknown data operation");
  bool owner = viewer_req_is_owner(r);
  bool own = strcmp(id, viewer_self_id(viewer_req_viewer(r))) == 0;
  if (!own && !owner)
    return viewer_reply_text(r, MHD_HTTP_FORBIDDEN,
                             "guests cannot use other peers' data through this viewer");
  if (owner && has_body_method(r) && !csrf_ok(r))
    return viewer_reply_text(r, MHD_HTTP_FORBIDDEN, "bad csrf");
  json_t *body = NULL;
  if (op->body) {
    body = viewer_req_json(r);
    if (!json_is_object(body))
      return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "request body must be a JSON object");
  }
  json_t *req = build_request(op, body);
  if (!req)
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  if (own) {
    struct goop_site_caller caller = {.id = viewer_req_caller_id(r), .email = NULL, .is_owner = owner};
    return exec_local(r, site, &caller, req, MHD_HTTP_INTERNAL_SERVER_ERROR);
  }
  goop_host *host = viewer_host(viewer_req_viewer(r));
  char *s = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  if (!s)
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  struct dreq *d = calloc(1, sizeof(*d));
  if (!d) {
    free(s);
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  }
  d->r = r;
  int rc = host ? goop_data_request(host, &pid, s, strlen(s), REMOTE_DATA_TIMEOUT_MS, on_remote_answer, d)
                : GOOP_EINVAL;
  free(s);
  if (rc != 0) {
    free(d);
    char msg[300];
    snprintf(msg, sizeof(msg), "open stream: %s", goop_strerror(rc));
    return viewer_reply_text(r, MHD_HTTP_BAD_GATEWAY, msg);
  }
  viewer_req_on_done(r, dreq_req_done, d);
  viewer_req_suspend(r);
  return MHD_YES;
}

static enum MHD_Result on_csrf(struct viewer_req *r, void *ud) {
  (void)ud;
  return viewer_reply_json(r, MHD_HTTP_OK,
                           json_pack("{s:s}", "token", viewer_csrf_token(viewer_req_viewer(r))));
}

int viewer_routes_data(struct viewer *v, goop_site *site) {
  const struct viewer_route routes[] = {
      {.pattern = "/api/data/",
       .methods = VIEWER_ANY,
       .flags = VIEWER_ROUTE_PREFIX | VIEWER_ROUTE_OWNER | VIEWER_ROUTE_CSRF | VIEWER_ROUTE_BODY,
       .fn = on_local,
       .ud = site},
      {.pattern = "/api/p/",
       .methods = VIEWER_ANY,
       .flags = VIEWER_ROUTE_PREFIX | VIEWER_ROUTE_BODY,
       .fn = on_proxy,
       .ud = site},
      {.pattern = "/api/csrf", .methods = VIEWER_GET, .flags = VIEWER_ROUTE_OWNER, .fn = on_csrf, .ud = site},
  };
  for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
    if (viewer_add_route(v, &routes[i]) != 0)
      return -1;
  return 0;
}
