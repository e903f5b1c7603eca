/* Goop.data: the site database API (B §7.8). Under /p/<peer>/ it talks to
 * that peer through /api/p/<peer>/data, elsewhere to the local /api/data. */
(function () {
  "use strict";
  var Goop = (window.Goop = window.Goop || {});

  function base() {
    var m = /^\/p\/([^/]+)\//.exec(window.location.pathname);
    return m ? "/api/p/" + m[1] + "/data" : "/api/data";
  }

  /* The viewer's CSRF token for POSTs (shared by the SDK files): <meta
   * name="goop-csrf"> on viewer pages, else /api/csrf (the owner gets it; a
   * guest needs none). */
  if (!Goop.csrfToken) {
    var csrfPromise = null;
    var token = function () {
      if (!csrfPromise) {
        var meta = typeof document !== "undefined" && document.querySelector('meta[name="goop-csrf"]');
        if (meta && meta.getAttribute("content")) {
          csrfPromise = Promise.resolve(meta.getAttribute("content"));
        } else {
          csrfPromise = fetch("/api/csrf", { credentials: "same-origin" })
            .then(function (res) {
              return res.ok ? res.json() : null;
            })
            .then(function (j) {
              return (j && j.token) || "";
            })
            .catch(function () {
              return "";
            });
        }
      }
      return csrfPromise;
    };
    Object.defineProperty(Goop, "csrfToken", { value: token }); /* not listed as a module */
  }

  function request(method, path, body) {
    var opts = { method: method, headers: {}, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    var ready = method === "GET" ? Promise.resolve("") : Goop.csrfToken();
    return ready.then(function (token) {
      if (token) opts.headers["X-Goop-CSRF"] = token;
      return send(path, opts);
    });
  }

  function send(path, opts) {
    return fetch(base() + path, opts).then(function (res) {
      return res.text().then(function (text) {
        if (!res.ok) throw new Error(text.trim() || res.status + " " + res.statusText);
        return text ? JSON.parse(text) : null;
      });
    });
  }

  function post(path, body) {
    return request("POST", path, body);
  }

  Goop.data = {
    tables: function () {
      return request("GET", "/tables");
    },
    describe: function (table) {
      return post("/tables/describe", { table: table });
    },
    query: function (table, opts) {
      var body = { table: table };
      opts = opts || {};
      Object.keys(opts).forEach(function (k) {
        body[k] = opts[k];
      });
      return post("/query", body);
    },
    insert: function (table, data) {
      return post("/insert", { table: table, data: data });
    },
    update: function (table, id, data) {
      return post("/update", { table: table, id: id, data: data });
    },
    remove: function (table, id) {
      return post("/delete", { table: table, id: id });
    },
    createTable: function (name, columns) {
      return post("/tables/create", { name: name, columns: columns });
    },
    dropTable: function (table) {
      return post("/tables/delete", { table: table });
    },
    addColumn: function (table, column) {
      return post("/tables/add-column", { table: table, column: column });
    },
    call: function (fn, params) {
      return post("/lua/call", { function: fn, params: params || {} });
    },
    functions: function () {
      return request("GET", "/lua/list").then(function (resp) {
        return (resp && resp.functions) || [];
      });
    },
  };
})();
