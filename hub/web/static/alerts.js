// The alert console: live updates over server-sent events, and the action forms sent as JSON.
// No framework; strings come translated from the page (#alert-strings).
(function () {
  "use strict";
  var strings = JSON.parse(document.getElementById("alert-strings").textContent);
  var live = document.getElementById("live");
  var latest = document.getElementById("latest");
  var operator = document.getElementById("operator");
  var NAME_KEY = "dcor.operator";

  function say(text, failed) {
    if (!live) { return; }
    live.textContent = text;
    live.classList.toggle("failed", !!failed);
  }

  // Until logins exist, the operator's name is typed once and remembered in this browser.
  if (operator) {
    operator.value = window.localStorage.getItem(NAME_KEY) || "";
    operator.addEventListener("change", function () {
      window.localStorage.setItem(NAME_KEY, operator.value.trim());
    });
  }

  function submitAction(form) {
    var body = {};
    new FormData(form).forEach(function (value, key) { body[key] = String(value); });
    var headers = {"Content-Type": "application/json", "Accept": "application/json"};
    if (body.csrf_token) { headers["X-CSRF-Token"] = body.csrf_token; }  // the form's token
    delete body.csrf_token;
    delete body.next;
    if (operator) {  // nobody logged in: the typed name says who acts
      body.by = operator.value.trim();
      if (!body.by) {
        say(strings.needName, true);
        operator.focus();
        return;
      }
    }
    fetch(form.action, {method: "POST", headers: headers, body: JSON.stringify(body),
                        credentials: "same-origin"})
      .then(function (resp) {
        return resp.json().then(function (data) { return {ok: resp.ok, data: data}; });
      })
      .then(function (r) {
        if (!r.ok) {
          var reason = (r.data && r.data.error && r.data.error.message) || "?";
          say(strings.failed.replace("%(reason)s", reason), true);
          return;
        }
        say(strings.saved, false);
        if (rowsTable) { refreshRows(); } else { window.location.reload(); }
      })
      .catch(function () { say(strings.failed.replace("%(reason)s", "network"), true); });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("alert-action")) { return; }
    event.preventDefault();
    submitAction(form);
  });

  // --- the list page: live ---------------------------------------------------------------
  var rowsTable = document.getElementById("alerts");
  if (!rowsTable) { return; }
  var tbody = document.getElementById("alert-rows");
  var pending = null;

  function refreshRows() {
    fetch(rowsTable.dataset.rows, {credentials: "same-origin"})
      .then(function (resp) {
        if (!resp.ok) { throw new Error(String(resp.status)); }
        return resp.text();
      })
      .then(function (html) { tbody.innerHTML = html; })
      .catch(function () { say(strings.refreshFailed, true); });
  }

  function soon() {  // several notifications at once: one refresh
    if (pending) { return; }
    pending = window.setTimeout(function () { pending = null; refreshRows(); }, 300);
  }

  if (!window.EventSource) { return; }
  var source = new EventSource(rowsTable.dataset.stream);
  var opened = false;
  source.onopen = function () {
    say(strings.live, false);
    if (live) { live.dataset.open = "1"; }
    if (opened) { soon(); }  // back after a gap: what changed meanwhile sent no event
    opened = true;
  };
  // Someone acknowledged, assigned or noted an alert (here or at another desk).
  source.addEventListener("changed", soon);
  source.onerror = function () { say(strings.reconnecting, true); };
  source.onmessage = function (event) {
    var n;
    try { n = JSON.parse(event.data); } catch (e) { return; }
    if (latest && n.text) { latest.textContent = n.text[strings.lang] || n.text.id; }
    soon();
  };
}());
