// The wall's alert column: firing alerts of the chosen desk, redrawn from /api/v1/alerts
// whenever the alert stream says something happened (fired, acknowledged, resolved).
(function () {
  "use strict";

  var list = document.getElementById("wall-alerts");
  var stringsEl = document.getElementById("wall-strings");
  if (!list || !stringsEl || !window.EventSource || !window.fetch) { return; }
  var S = JSON.parse(stringsEl.textContent);
  var status = document.getElementById("alerts-status");
  var MARK = { critical: "■", warning: "▲", info: "●" };
  var alertUrl = list.getAttribute("data-alert-url");

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function wib(t) {
    return t && t.wib ? t.wib.slice(0, 10) + " " + t.wib.slice(11, 19) + " WIB" : "";
  }

  function item(a) {
    return el("li", { "class": "walert sev-row-" + a.severity, "data-alert": a.id }, [
      el("span", { "class": "sev sev-" + a.severity }, [
        el("span", { "class": "mark", "aria-hidden": "true" }, [MARK[a.severity] || "?"]),
        " " + (S.severities[a.severity] || a.severity)]), " ",
      el("a", { "class": "walert-title", href: alertUrl.replace("__id__", a.id) },
        [a.title[S.lang] || a.title.id]), " ",
      el("span", { "class": "walert-where" }, [a.where[S.lang] || a.where.id]), " ",
      el("span", { "class": "walert-time" }, [wib(a.fired_at || a.since)])]);
  }

  function refresh() {
    fetch(list.getAttribute("data-api"), { headers: { Accept: "application/json" },
                                           credentials: "same-origin", cache: "no-store" })
      .then(function (res) {
        if (!res.ok) { throw new Error("HTTP " + res.status); }
        return res.json();
      })
      .then(function (body) {
        var items = body.alerts.map(item);
        if (!items.length) { items.push(el("li", { "class": "empty" }, [S.empty])); }
        list.replaceChildren.apply(list, items);
        if (status) { status.textContent = ""; status.classList.remove("failed"); }
      })
      .catch(function () {
        if (status) { status.textContent = S.failed; status.classList.add("failed"); }
      });
  }

  var pending = null;
  function soon() {  // several notifications at once: one refresh
    if (pending) { return; }
    pending = window.setTimeout(function () { pending = null; refresh(); }, 200);
  }

  var source = new EventSource(list.getAttribute("data-stream"));
  source.onmessage = soon;
  // After a reconnect the list may have missed something: read it again.
  source.onopen = soon;
  // Acknowledged, assigned or resolved elsewhere: the fleet stream says so (fleetlive.js).
  document.addEventListener("dcor:alerts-changed", soon);
}());
