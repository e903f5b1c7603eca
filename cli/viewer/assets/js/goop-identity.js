/* Goop.identity: who is using this viewer (GET /api/self, cached). For a
 * guest of a shared viewer the id is its guest identity. */
(function () {
  "use strict";
  var Goop = (window.Goop = window.Goop || {});
  var cached = null;

  function load() {
    if (!cached) {
      cached = fetch("/api/self", { credentials: "same-origin" }).then(function (res) {
        if (!res.ok) {
          cached = null;
          throw new Error("GET /api/self: " + res.status);
        }
        return res.json();
      });
    }
    return cached;
  }

  function field(name) {
    return function () {
      return load().then(function (me) {
        return me[name] || "";
      });
    };
  }

  Goop.identity = {
    get: load,
    id: field("id"),
    label: field("label"),
    email: field("email"),
    refresh: function () {
      cached = null;
      return load();
    },
  };
})();
