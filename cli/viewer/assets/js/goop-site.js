/* Goop.site: the viewer's own site files (B §7.8). */
(function () {
  "use strict";
  var Goop = (window.Goop = window.Goop || {});

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
      return fetch("/api/site/upload", { method: "POST", body: fd, credentials: "same-origin" }).then(json);
    },
    remove: function (path) {
      return fetch("/api/site/delete", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ path: path }),
        credentials: "same-origin",
      }).then(json);
    },
  };
})();
