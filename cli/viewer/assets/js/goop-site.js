/* Goop.site: the viewer's own site files (B §7.8). */
(function () {
  "use strict";
  var Goop = (window.Goop = window.Goop || {});

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

  function check(res) {
    if (!res.ok) {
      return res.text().then(function (t) {
        throw new Error(t.trim() || res.status + " " + res.statusText);
      });
    }
    return Promise.resolve(res);
  }

  function json(res) {
    return check(res).then(function (r) {
      return r.json();
    });
  }

  function selfUrl(path) {
    path = String(path || "").replace(/^\/+/, "");
    if (!Goop.identity) return Promise.resolve(path);
    return Goop.identity.id().then(
      function (id) {
        return id ? "/p/" + id + "/" + path : path;
      },
      function () {
        return path;
      }
    );
  }

  function fetchFile(path) {
    return selfUrl(path).then(function (url) {
      return fetch(url, { credentials: "same-origin" }).then(check);
    });
  }

  Goop.site = {
    files: function () {
      return fetch("/api/site/files", { credentials: "same-origin" }).then(json);
    },
    fetch: fetchFile,
    read: function (path) {
      return fetchFile(path).then(function (res) {
        return res.text();
      });
    },
    upload: function (path, file) {
      var fd = new FormData();
      fd.append("path", path);
      fd.append("file", file);
      return Goop.csrfToken().then(function (token) {
        return fetch("/api/site/upload", {
          method: "POST",
          body: fd,
          headers: token ? { "X-Goop-CSRF": token } : {},
          credentials: "same-origin",
        }).then(json);
      });
    },
    remove: function (path) {
      return Goop.csrfToken().then(function (token) {
        var headers = { "Content-Type": "application/json" };
        if (token) headers["X-Goop-CSRF"] = token;
        return fetch("/api/site/delete", {
          method: "POST",
          headers: headers,
          body: JSON.stringify({ path: path }),
          credentials: "same-origin",
        }).then(json);
      });
    },
  };
})();
