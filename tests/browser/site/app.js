/* Bob's guestbook: insert rows through the viewer's data proxy and list them. */
(function () {
  "use strict";
  var table = "guestbook";
  var n = 0;
  function show(text) {
    document.getElementById("status").textContent = text;
  }
  function list() {
    return Goop.data.query(table, { limit: 100 }).then(function (rows) {
      var ul = document.getElementById("rows");
      ul.textContent = "";
      (rows || []).forEach(function (r) {
        var li = document.createElement("li");
        li.className = "row";
        li.textContent = r.msg;
        ul.appendChild(li);
      });
      show("rows: " + (rows || []).length);
    });
  }
  document.getElementById("add").addEventListener("click", function () {
    n++;
    var msg = document.getElementById("msg").value + " " + n;
    show("saving");
    Goop.data
      .insert(table, { msg: msg })
      .then(list)
      .catch(function (e) {
        show("error: " + e.message);
      });
  });
  list().catch(function (e) {
    show("error: " + e.message);
  });
})();
