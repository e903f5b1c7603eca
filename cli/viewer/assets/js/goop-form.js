/* Goop.form.render(el, {table, fields, submitLabel, singleResponse, onDone}):
 * a form whose answers are stored in a table of the site's database. The
 * table and missing columns (TEXT, default '') are created on first use;
 * with singleResponse the visitor's earlier row is updated instead. */
(function () {
  "use strict";
  var Goop = (window.Goop = window.Goop || {});

  function ensureTable(table, fields) {
    var data = Goop.data;
    return data.describe(table).then(
      function (cols) {
        var have = {};
        (cols || []).forEach(function (c) {
          have[c.name || c.Name] = true;
        });
        var missing = fields.filter(function (f) {
          return !have[f.name];
        });
        return missing.reduce(function (p, f) {
          return p.then(function () {
            return data.addColumn(table, { name: f.name, type: "TEXT", default: "" });
          });
        }, Promise.resolve());
      },
      function () {
        return data.createTable(
          table,
          fields.map(function (f) {
            return { name: f.name, type: "TEXT", default: "" };
          })
        );
      }
    );
  }

  function input(f) {
    var el;
    if (f.type === "textarea") {
      el = document.createElement("textarea");
    } else if (f.type === "select") {
      el = document.createElement("select");
      (f.options || []).forEach(function (o) {
        var opt = document.createElement("option");
        opt.value = typeof o === "object" ? o.value : o;
        opt.textContent = typeof o === "object" ? o.label || o.value : o;
        el.appendChild(opt);
      });
    } else {
      el = document.createElement("input");
      el.type = f.type || "text";
    }
    el.name = f.name;
    if (f.placeholder) el.placeholder = f.placeholder;
    if (f.required) el.required = true;
    return el;
  }

  function render(el, opts) {
    opts = opts || {};
    var table = opts.table;
    var fields = (opts.fields || []).map(function (f) {
      return typeof f === "string" ? { name: f, label: f } : f;
    });
    var form = document.createElement("form");
    form.className = "goop-form";
    var inputs = {};
    fields.forEach(function (f) {
      var label = document.createElement("label");
      label.textContent = f.label || f.name;
      var i = input(f);
      inputs[f.name] = i;
      label.appendChild(i);
      form.appendChild(label);
    });
    var submit = document.createElement("button");
    submit.type = "submit";
    submit.textContent = opts.submitLabel || "Submit";
    form.appendChild(submit);
    el.innerHTML = "";
    el.appendChild(form);

    var existingId = null;
    var ready = ensureTable(table, fields).then(function () {
      if (!opts.singleResponse) return;
      return Goop.identity.id().then(function (me) {
        return Goop.data.query(table, { where: "_owner = ?", args: [me], limit: 1 }).then(function (rows) {
          if (rows && rows.length) {
            existingId = rows[0]._id;
            fields.forEach(function (f) {
              if (rows[0][f.name] != null) inputs[f.name].value = rows[0][f.name];
            });
          }
        });
      });
    });

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var row = {};
      fields.forEach(function (f) {
        row[f.name] = inputs[f.name].value;
      });
      submit.disabled = true;
      ready
        .then(function () {
          if (existingId != null) return Goop.data.update(table, existingId, row);
          return Goop.data.insert(table, row).then(function (r) {
            if (opts.singleResponse && r && r.id != null) existingId = r.id;
            return r;
          });
        })
        .then(
          function (r) {
            submit.disabled = false;
            if (Goop.ui) Goop.ui.toast("Saved");
            if (opts.onDone) opts.onDone(row, r);
          },
          function (err) {
            submit.disabled = false;
            if (Goop.ui) Goop.ui.toast({ title: "Error", message: err.message });
            else window.alert(err.message);
          }
        );
    });
    return form;
  }

  Goop.form = { render: render };
})();
