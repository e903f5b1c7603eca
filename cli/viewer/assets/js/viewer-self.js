/* The viewer's "Me" page: connect to a peer by multiaddr (owner, CSRF). */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="goop-csrf"]');
  var form = document.getElementById("connect-form");
  if (!form) return;
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var addr = form.elements.addr.value.trim();
    fetch("/api/peers/connect", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Goop-CSRF": meta ? meta.content : "" },
      body: JSON.stringify({ addr: addr }),
      credentials: "same-origin",
    })
      .then(function (res) {
        return res.text().then(function (t) {
          if (!res.ok) throw new Error(t.trim());
        });
      })
      .then(
        function () {
          Goop.ui.toast("Dialling " + addr);
          form.reset();
        },
        function (err) {
          Goop.ui.toast({ title: "Cannot connect", message: err.message });
        }
      );
  });
})();
