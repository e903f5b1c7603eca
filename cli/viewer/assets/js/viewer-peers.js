/* The viewer's peers page: a live list from /api/peers/events. */
(function () {
  "use strict";
  var list = document.getElementById("peers");
  var empty = document.getElementById("peers-empty");
  var status = document.getElementById("peers-status");
  var peers = {};

  function ago(ts) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(ts)) / 1000));
    return s < 5 ? "just now" : s < 120 ? s + " s ago" : Math.round(s / 60) + " min ago";
  }

  function draw() {
    var ids = Object.keys(peers).sort();
    list.innerHTML = "";
    empty.hidden = ids.length > 0;
    ids.forEach(function (id) {
      var p = peers[id];
      var li = document.createElement("li");
      li.className = "peer";
      li.dataset.peerId = id;
      var name = document.createElement("a");
      name.className = "peer-label";
      name.href = "/p/" + encodeURIComponent(id) + "/";
      name.textContent = p.Content || "(no label)";
      var pid = document.createElement("code");
      pid.className = "peer-id";
      pid.textContent = id;
      var meta = document.createElement("span");
      meta.className = "peer-meta";
      meta.textContent = (p.Email ? p.Email + " \u00b7 " : "") + (p.Verified ? "verified \u00b7 " : "") +
        "seen " + ago(p.LastSeen);
      li.appendChild(name);
      li.appendChild(pid);
      li.appendChild(meta);
      list.appendChild(li);
    });
  }

  Goop.peers.subscribe({
    onSnapshot: function (rows) {
      peers = {};
      rows.forEach(function (p) {
        peers[p.ID] = p;
      });
      status.textContent = "live";
      draw();
    },
    onUpdate: function (id, p) {
      peers[id] = p;
      draw();
    },
    onRemove: function (id) {
      delete peers[id];
      draw();
    },
    onError: function () {
      status.textContent = "reconnecting\u2026";
    },
  });
  setInterval(draw, 10000);
})();
