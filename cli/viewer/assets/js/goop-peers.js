/* Goop.peers: the peers this viewer knows, with live updates over SSE. */
(function () {
  "use strict";
  var Goop = (window.Goop = window.Goop || {});
  var source = null;

  function parse(ev) {
    try {
      return JSON.parse(ev.data);
    } catch (e) {
      return null;
    }
  }

  Goop.peers = {
    list: function () {
      return fetch("/api/peers", { credentials: "same-origin" }).then(function (res) {
        if (!res.ok) throw new Error("GET /api/peers: " + res.status);
        return res.json();
      });
    },
    subscribe: function (handlers) {
      handlers = handlers || {};
      Goop.peers.unsubscribe();
      source = new EventSource("/api/peers/events");
      source.addEventListener("snapshot", function (ev) {
        var m = parse(ev);
        if (m && handlers.onSnapshot) handlers.onSnapshot(m.peers || []);
      });
      source.addEventListener("update", function (ev) {
        var m = parse(ev);
        if (m && handlers.onUpdate) handlers.onUpdate(m.peer_id, m.peer);
      });
      source.addEventListener("remove", function (ev) {
        var m = parse(ev);
        if (m && handlers.onRemove) handlers.onRemove(m.peer_id);
      });
      source.onerror = function (err) {
        if (handlers.onError) handlers.onError(err);
      };
      return source;
    },
    unsubscribe: function () {
      if (source) {
        source.close();
        source = null;
      }
    },
  };
})();
