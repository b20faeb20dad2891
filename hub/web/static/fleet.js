// Fleet page: every few seconds fetch this same page (same filters, same opened
// sub-districts) and put its fresh parts in place, without a reload. The server draws every
// row, in the page's language, so there is one way to draw them. The "show/hide devices
// without problems" links open a sub-district's folded rows in place the same way (without
// the script they are plain links to the page with that sub-district opened).
(function () {
  "use strict";

  var root = document.getElementById("fleet");
  var stringsEl = document.getElementById("fleet-strings");
  if (!root || !stringsEl || !window.fetch || !window.DOMParser) { return; }
  var S = JSON.parse(stringsEl.textContent);
  var refreshMs = Math.max(1, Number(root.getAttribute("data-refresh-s")) || 5) * 1000;
  var url = window.location.href;  // the page as it is drawn now: filters and opened places
  var asked = 0;  // the newest request; an older answer that arrives later is dropped
  var timer = null;
  // The parts of the page that change with the data; the filter form stays as the user left it.
  var SWAPPED = ["device-count", "total-counts", "attention", "fleet"];

  // Thumbnails on the page before a redraw, by device and camera: the redraw keeps these
  // same <img> nodes where the snapshot did not change, so a picture is neither fetched
  // again nor repainted.
  function thumbsOf(node) {
    var found = {};
    node.querySelectorAll("tr[data-cameras-of] li.thumb img").forEach(function (img) {
      found[img.closest("tr").getAttribute("data-cameras-of") + "/" +
            img.closest("li").getAttribute("data-camera")] = img;
    });
    return found;
  }

  function keepThumbs(fresh) {
    var old = thumbsOf(root);
    var now = thumbsOf(fresh);
    Object.keys(now).forEach(function (key) {
      var was = old[key];
      if (was && was.getAttribute("src") === now[key].getAttribute("src")) {
        was.setAttribute("alt", now[key].getAttribute("alt") || "");
        now[key].replaceWith(was);
      }
    });
  }

  // The element that had the focus, found again in the new tree (a show/hide link).
  function focusKey() {
    var el = document.activeElement;
    return el && root.contains(el) && el.hasAttribute("data-toggle")
      ? el.getAttribute("data-toggle") : null;
  }

  function put(doc) {
    var fresh = doc.getElementById("fleet");
    if (!fresh) { throw new Error("no fleet in the answer"); }
    var focused = focusKey();
    keepThumbs(fresh);
    SWAPPED.forEach(function (id) {
      var el = document.getElementById(id);
      var next = doc.getElementById(id);
      if (el && next) { el.replaceChildren.apply(el, Array.prototype.slice.call(next.childNodes)); }
    });
    // Language links keep the page's parameters, opened places included.
    var langs = document.querySelector("nav.lang");
    var nextLangs = doc.querySelector("nav.lang");
    if (langs && nextLangs) { langs.replaceWith(nextLangs); }
    document.getElementById("updated").textContent = doc.getElementById("updated").textContent;
    root.setAttribute("data-updated", fresh.getAttribute("data-generated") || "");
    if (focused) {
      root.querySelectorAll("[data-toggle]").forEach(function (a) {
        if (a.getAttribute("data-toggle") === focused) { a.focus(); }
      });
    }
  }

  // On failure the tables stay as they were; the status line says so and still tells
  // how old they are.
  var lastGood = document.getElementById("updated").textContent;
  function setFailed(failed) {
    var status = document.getElementById("updated");
    status.parentNode.classList.toggle("failed", failed);
    if (failed) {
      status.textContent = S.refreshFailed + " · " + lastGood;
    } else {
      lastGood = status.textContent;
    }
  }

  function load(target) {
    var mine = ++asked;
    window.clearTimeout(timer);
    return fetch(target, { headers: { Accept: "text/html" }, cache: "no-store",
                           credentials: "same-origin" })
      .then(function (res) {
        if (!res.ok) { throw new Error("HTTP " + res.status); }
        return res.text();
      })
      .then(function (html) {
        if (mine !== asked) { return; }
        put(new DOMParser().parseFromString(html, "text/html"));
        if (target !== url) {
          url = target;
          window.history.replaceState(null, "", target);
        }
        setFailed(false);
      })
      .catch(function () { if (mine === asked) { setFailed(true); } })
      .then(function () {
        if (mine === asked) { timer = window.setTimeout(function () { load(url); }, refreshMs); }
      });
  }

  root.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-toggle]");
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) {
      return;
    }
    event.preventDefault();
    link.setAttribute("aria-busy", "true");
    load(link.href);
  });

  timer = window.setTimeout(function () { load(url); }, refreshMs);
})();
