/* The viewer's "Me" page: the owner's site files, and connecting to a peer by
 * multiaddr (owner, CSRF). */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="goop-csrf"]');
  var selfMeta = document.querySelector('meta[name="goop-self"]');
  var list = document.getElementById("site-files");
  if (list && document.body.getAttribute("data-role") === "owner") {
    fetch("/api/site/files", { credentials: "same-origin" })
      .then(function (res) {
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json();
      })
      .then(
        function (files) {
          list.textContent = "";
          (files || []).forEach(function (f) {
            var li = document.createElement("li");
            li.style.paddingLeft = (f.Depth || 0) * 1.2 + "em";
            if (f.IsDir) {
              li.textContent = f.Path.split("/").pop() + "/";
            } else {
              var a = document.createElement("a");
              a.href = "/p/" + (selfMeta ? selfMeta.content : "") + "/" + f.Path;
              a.textContent = f.Path.split("/").pop();
              li.appendChild(a);
            }
            list.appendChild(li);
          });
          if (!files || files.length === 0) list.textContent = "The site root is empty.";
        },
        function (err) {
          list.textContent = "Cannot list the site files: " + err.message;
        }
      );
  }
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
