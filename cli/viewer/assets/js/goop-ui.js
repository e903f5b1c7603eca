/* Goop.ui: toasts and dialogs, client-side only. Styles are set through the
 * CSSOM so they work under a strict Content-Security-Policy. */
(function () {
  "use strict";
  var Goop = (window.Goop = window.Goop || {});

  function css(el, props) {
    Object.keys(props).forEach(function (k) {
      el.style[k] = props[k];
    });
    return el;
  }

  function theme() {
    var t = document.documentElement.getAttribute("data-theme");
    if (t === "light" || t === "dark") return t;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark";
  }

  function colors() {
    return theme() === "light"
      ? { bg: "#ffffff", fg: "#1b1d21", border: "#c9ced6", accent: "#2f6fdf" }
      : { bg: "#1f232a", fg: "#e6e8eb", border: "#3a404a", accent: "#5b9bff" };
  }

  var stack = null;
  function toast(msg) {
    var o = typeof msg === "object" && msg !== null ? msg : { message: String(msg) };
    var c = colors();
    if (!stack || !stack.parentNode) {
      stack = css(document.createElement("div"), {
        position: "fixed", right: "16px", bottom: "16px", zIndex: "10000",
        display: "flex", flexDirection: "column", gap: "8px", maxWidth: "360px",
      });
      document.body.appendChild(stack);
    }
    var box = css(document.createElement("div"), {
      background: c.bg, color: c.fg, border: "1px solid " + c.border, borderRadius: "8px",
      padding: "10px 14px", boxShadow: "0 4px 16px rgba(0,0,0,.3)", font: "14px system-ui, sans-serif",
    });
    if (o.title) {
      var t = css(document.createElement("div"), { fontWeight: "600", marginBottom: "4px" });
      t.textContent = o.title;
      box.appendChild(t);
    }
    var m = document.createElement("div");
    m.textContent = o.message || "";
    box.appendChild(m);
    stack.appendChild(box);
    setTimeout(function () {
      if (box.parentNode) box.parentNode.removeChild(box);
    }, o.duration || 3000);
    return box;
  }

  function dialog(title, msg, withInput, def) {
    return new Promise(function (resolve) {
      var c = colors();
      var overlay = css(document.createElement("div"), {
        position: "fixed", inset: "0", background: "rgba(0,0,0,.45)", zIndex: "10001",
        display: "flex", alignItems: "center", justifyContent: "center",
      });
      var box = css(document.createElement("div"), {
        background: c.bg, color: c.fg, border: "1px solid " + c.border, borderRadius: "10px",
        padding: "18px", minWidth: "280px", maxWidth: "480px", font: "14px system-ui, sans-serif",
      });
      if (title) {
        var h = css(document.createElement("div"), { fontWeight: "600", fontSize: "16px", marginBottom: "8px" });
        h.textContent = title;
        box.appendChild(h);
      }
      var p = css(document.createElement("div"), { marginBottom: "12px", whiteSpace: "pre-wrap" });
      p.textContent = msg || "";
      box.appendChild(p);
      var input = null;
      if (withInput) {
        input = css(document.createElement("input"), {
          width: "100%", boxSizing: "border-box", marginBottom: "12px", padding: "6px",
          background: c.bg, color: c.fg, border: "1px solid " + c.border, borderRadius: "6px",
        });
        input.value = def == null ? "" : String(def);
        box.appendChild(input);
      }
      var row = css(document.createElement("div"), { display: "flex", justifyContent: "flex-end", gap: "8px" });
      var cancel = document.createElement("button");
      cancel.textContent = "Cancel";
      var ok = document.createElement("button");
      ok.textContent = "OK";
      css(ok, { background: c.accent, color: "#fff", border: "0", borderRadius: "6px", padding: "6px 14px" });
      row.appendChild(cancel);
      row.appendChild(ok);
      box.appendChild(row);
      overlay.appendChild(box);
      document.body.appendChild(overlay);
      function done(v) {
        document.removeEventListener("keydown", onKey, true);
        if (overlay.parentNode) overlay.parentNode.removeChild(overlay);
        resolve(v);
      }
      function onKey(e) {
        if (e.key === "Escape") done(withInput ? null : false);
        else if (e.key === "Enter") done(withInput ? input.value : true);
      }
      document.addEventListener("keydown", onKey, true);
      cancel.addEventListener("click", function () {
        done(withInput ? null : false);
      });
      ok.addEventListener("click", function () {
        done(withInput ? input.value : true);
      });
      (input || ok).focus();
    });
  }

  Goop.ui = {
    toast: toast,
    confirm: function (msg, title) {
      return dialog(title || "Confirm", msg, false);
    },
    prompt: function (msg, def, title) {
      return dialog(title || "", msg, true, def);
    },
    theme: theme,
  };
})();
