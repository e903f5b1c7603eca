/* Goop.forms: a generic table editor on Goop.data.
 *   Goop.forms.render(el, table)          rows with edit/delete and an insert form
 *   Goop.forms.insertForm(el, table, cb)  just the insert form; cb(row, result) */
(function () {
  "use strict";
  var Goop = (window.Goop = window.Goop || {});

  function userColumns(cols) {
    return (cols || [])
      .map(function (c) {
        return { name: c.name || c.Name, type: (c.type || c.Type || "TEXT").toUpperCase() };
      })
      .filter(function (c) {
        return c.name && c.name.charAt(0) !== "_";
      });
  }

  function field(col, value) {
    var i = document.createElement("input");
    i.name = col.name;
    i.type = /INT|REAL|NUM/.test(col.type) ? "number" : "text";
    if (i.type === "number" && !/INT/.test(col.type)) i.step = "any";
    if (value != null) i.value = value;
    return i;
  }

  function collect(cols, inputs) {
    var row = {};
    cols.forEach(function (c) {
      var v = inputs[c.name].value;
      row[c.name] = inputs[c.name].type === "number" && v !== "" ? Number(v) : v;
    });
    return row;
  }

  function fail(err) {
    if (Goop.ui) Goop.ui.toast({ title: "Error", message: err.message });
    else window.alert(err.message);
  }

  function buildInsert(el, table, cols, cb) {
    var form = document.createElement("form");
    form.className = "goop-forms-insert";
    var inputs = {};
    cols.forEach(function (c) {
      var label = document.createElement("label");
      label.textContent = c.name;
      inputs[c.name] = field(c);
      label.appendChild(inputs[c.name]);
      form.appendChild(label);
    });
    var btn = document.createElement("button");
    btn.type = "submit";
    btn.textContent = "Add";
    form.appendChild(btn);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var row = collect(cols, inputs);
      Goop.data.insert(table, row).then(function (r) {
        form.reset();
        if (cb) cb(row, r);
      }, fail);
    });
    el.appendChild(form);
    return form;
  }

  function insertForm(el, table, cb) {
    return Goop.data.describe(table).then(function (cols) {
      return buildInsert(el, table, userColumns(cols), cb);
    });
  }

  function render(el, table) {
    el.innerHTML = "";
    return Goop.data.describe(table).then(function (raw) {
      var cols = userColumns(raw);
      var wrap = document.createElement("div");
      wrap.className = "goop-forms";
      var tbl = document.createElement("table");
      var head = document.createElement("tr");
      cols.concat([{ name: "" }]).forEach(function (c) {
        var th = document.createElement("th");
        th.textContent = c.name;
        head.appendChild(th);
      });
      tbl.appendChild(head);
      wrap.appendChild(tbl);
      el.appendChild(wrap);

      function reload() {
        return Goop.data.query(table, {}).then(function (rows) {
          while (tbl.rows.length > 1) tbl.deleteRow(1);
          (rows || []).forEach(function (row) {
            var tr = tbl.insertRow(-1);
            var inputs = {};
            cols.forEach(function (c) {
              var td = tr.insertCell(-1);
              inputs[c.name] = field(c, row[c.name]);
              td.appendChild(inputs[c.name]);
            });
            var td = tr.insertCell(-1);
            var save = document.createElement("button");
            save.textContent = "Save";
            save.addEventListener("click", function () {
              Goop.data.update(table, row._id, collect(cols, inputs)).then(reload, fail);
            });
            var del = document.createElement("button");
            del.textContent = "Delete";
            del.addEventListener("click", function () {
              var ask = Goop.ui ? Goop.ui.confirm("Delete this row?") : Promise.resolve(window.confirm("Delete?"));
              ask.then(function (yes) {
                if (yes) Goop.data.remove(table, row._id).then(reload, fail);
              });
            });
            td.appendChild(save);
            td.appendChild(del);
          });
        }, fail);
      }

      buildInsert(wrap, table, cols, reload);
      return reload();
    }, fail);
  }

  Goop.forms = { render: render, insertForm: insertForm };
})();
