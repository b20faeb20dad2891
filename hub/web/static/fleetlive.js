// The fleet's live state on the wall, the map and a device page: follows the hub's
// /api/v1/fleet/stream (server-sent events; states are computed on the hub) and redraws
// only what changed, never reloading the page. Shows #conn-banner while the page's own
// connection to the hub is lost. Text comes translated from #live-strings.
(function () {
  "use strict";

  var root = document.getElementById("live-root");
  var stringsEl = document.getElementById("live-strings");
  if (!root || !stringsEl || !window.EventSource) { return; }
  var S = JSON.parse(stringsEl.textContent);
  var SEP = "\u001f";
  var BUCKET = { online: "online", stale: "degraded", offline: "offline",
                 unknown: "unknown", decommissioned: "decommissioned" };
  var BUCKETS = ["online", "degraded", "offline", "unknown", "decommissioned"];
  var WORST_FIRST = ["offline", "degraded", "unknown", "online", "decommissioned"];
  var MARK = { online: "●", stale: "▲", degraded: "▲", offline: "■", unknown: "?",
               decommissioned: "–" };
  var TONE_MARK = { ok: "●", warn: "▲", bad: "■", unknown: "?", retired: "–" };
  var CAMERA_TONE = { streaming: "ok", unknown: "unknown", detector_stalled: "warn",
                      no_frames: "bad", covered: "bad", frozen: "bad" };
  var DEVICE_TONE = { online: "ok", stale: "warn", offline: "bad", unknown: "unknown",
                      decommissioned: "retired" };
  var kecFilter = root.getAttribute("data-kecamatan") || "";
  var deviceUrl = root.getAttribute("data-device-url") || "";
  var banner = document.getElementById("conn-banner");
  var updated = document.getElementById("updated");
  var tilesEl = document.getElementById("tiles");
  var devices = {};  // id -> the newest entry the hub sent

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  // --- tiles of the camera wall ---------------------------------------------------------
  var tileByKey = {};
  if (tilesEl) {
    tilesEl.querySelectorAll("li.tile").forEach(function (li) {
      tileByKey[li.getAttribute("data-key")] = li;
    });
  }

  function placeKey(name) { return name ? "0" + name.toLowerCase() : "1"; }

  function tilesOf(e) {
    function look(camState) {
      if (e.state !== "online" || camState === null) {
        return [e.state, DEVICE_TONE[e.state] || "unknown"];
      }
      return [camState, CAMERA_TONE[camState] || "warn"];
    }
    var order = [placeKey(e.kec), placeKey(e.kel), e.id].join(SEP) + SEP;
    if (!e.cams.length) {
      var l = look(null);
      return [{ key: e.id, camera: null, status: l[0], tone: l[1], snap: null, order: order }];
    }
    return e.cams.map(function (c) {
      var lk = look(c.state);
      return { key: e.id + "/" + c.cam, camera: c.cam, status: lk[0], tone: lk[1],
               snap: c.snap, order: order + c.cam };
    });
  }

  function sameTile(li, t) {
    var img = li.querySelector("img");
    var snap = img ? (img.getAttribute("data-src") || img.getAttribute("src")) : null;
    return li.className === "tile tone-" + t.tone && li.getAttribute("data-status") === t.status
      && snap === (t.snap || null);
  }

  function drawTile(li, e, t) {
    // Most of a whole picture is what the page already shows: touch nothing then, so the
    // browser has nothing to lay out again.
    if (sameTile(li, t)) { return; }
    var name = e.id + (t.camera ? " · " + t.camera : "");
    var label = name + ": " + (S.states[t.status] || t.status);
    li.className = "tile tone-" + t.tone;
    li.setAttribute("data-status", t.status);
    var a = li.querySelector("a.tile-link");
    a.setAttribute("title", label);
    a.setAttribute("aria-label", label);
    li.querySelector(".tile-badge .mark").textContent = TONE_MARK[t.tone] || "?";
    li.querySelector(".tile-state").textContent = S.states[t.status] || t.status;
    var img = a.querySelector("img");
    if (t.snap) {
      if (!img) {
        img = el("img", { alt: "", decoding: "async", width: "160", height: "90" });
        var none = a.querySelector(".tile-none");
        a.replaceChild(img, none);
      }
      // A picture not loaded yet keeps waiting in data-src (see loadPictures).
      var attr = img.hasAttribute("data-src") || !picturesStarted ? "data-src" : "src";
      if (img.getAttribute(attr) !== t.snap) { img.setAttribute(attr, t.snap); }
    }
  }

  // The tiles are painted first; their pictures follow, a batch per frame, so hundreds of
  // image requests neither delay the first paint nor freeze the page.
  var picturesStarted = false;
  function loadPictures() {
    picturesStarted = true;
    var waiting = Array.prototype.slice.call(document.querySelectorAll("img[data-src]"));
    function batch() {
      waiting.splice(0, 60).forEach(function (img) {
        if (!img.hasAttribute("data-src")) { return; }
        img.setAttribute("src", img.getAttribute("data-src"));
        img.removeAttribute("data-src");
      });
      if (waiting.length) { window.requestAnimationFrame(batch); }
    }
    batch();
  }
  window.requestAnimationFrame(function () { window.requestAnimationFrame(loadPictures); });

  function newTile(e, t) {
    var name = e.id + (t.camera ? " · " + t.camera : "");
    var li = el("li", { "class": "tile", "data-key": t.key, "data-device": e.id,
                        "data-camera": t.camera || "", "data-order": t.order }, [
      el("a", { "class": "tile-link", href: deviceUrl.replace("__id__", e.id) }, [
        el("span", { "class": "tile-none" }),
        el("span", { "class": "tile-badge" }, [
          el("span", { "class": "mark", "aria-hidden": "true" }), " ",
          el("span", { "class": "tile-state" })]),
        el("span", { "class": "tile-name" }, [name])])]);
    var before = null;
    tilesEl.querySelectorAll("li.tile").forEach(function (other) {
      if (!before && other.getAttribute("data-order") > t.order) { before = other; }
    });
    tilesEl.insertBefore(li, before);
    tileByKey[t.key] = li;
    return li;
  }

  function updateTiles(e, removed) {
    var wanted = {};
    if (!removed && (!kecFilter || e.kec === kecFilter)) {
      tilesOf(e).forEach(function (t) {
        wanted[t.key] = true;
        drawTile(tileByKey[t.key] || newTile(e, t), e, t);
      });
    }
    Object.keys(tileByKey).forEach(function (key) {
      var li = tileByKey[key];
      if (li.getAttribute("data-device") === e.id && !wanted[key]) {
        li.parentNode.removeChild(li);
        delete tileByKey[key];
      }
    });
  }

  // --- roll-ups -------------------------------------------------------------------------
  function countList(c) {
    var items = [];
    BUCKETS.forEach(function (b) {
      if (b === "online" || b === "degraded" || b === "offline" || c[b]) {
        items.push(" ", el("li", { "class": "count state-" + b }, [
          el("span", { "class": "mark", "aria-hidden": "true" }, [MARK[b]]), " ",
          el("span", { "class": "count-n" }, [String(c[b] || 0)]), " ",
          el("span", { "class": "count-label" }, [S.states[b] || b])]));
      }
    });
    return el("ul", { "class": "counts", "aria-label": S.byState }, items);
  }

  function worst(c) {
    for (var i = 0; i < WORST_FIRST.length; i++) { if (c[WORST_FIRST[i]]) { return WORST_FIRST[i]; } }
    return "unknown";
  }

  function setWorst(node, c) {
    node.className = node.className.replace(/\bworst-\S+/, "") .trim() + " worst-" + worst(c);
  }

  function updateRollup(r) {
    var total = kecFilter ? (r.kec[kecFilter] || {}) : r.total;
    var totalEl = document.getElementById("total-counts");
    if (totalEl) { totalEl.replaceChildren(countList(total)); }
    document.querySelectorAll("[data-kec]").forEach(function (li) {
      var c = r.kec[li.getAttribute("data-kec")];
      if (!c) { return; }
      setWorst(li, c);
      var box = li.querySelector(".kec-counts");
      if (box) { box.replaceChildren(countList(c)); }
    });
    document.querySelectorAll("[data-kel]").forEach(function (li) {
      var c = r.kel[li.getAttribute("data-kel")];
      if (!c) { return; }
      var all = BUCKETS.reduce(function (n, b) { return n + (c[b] || 0); }, 0);
      setWorst(li, c);
      li.setAttribute("title", S.kelTitle.replace("%(online)d", c.online || 0)
        .replace("%(total)d", all));
      var n = li.querySelector(".kel-n");
      if (n) { n.textContent = (c.online || 0) + "/" + all; }
    });
  }

  // --- map sites and device badges ------------------------------------------------------
  function updateSites(touched) {
    var nodes = document.querySelectorAll("[data-site]");
    if (!nodes.length) { return; }
    var per = {};  // site -> counts per bucket, in one pass over the devices
    Object.keys(devices).forEach(function (id) {
      var e = devices[id];
      if (!touched[e.site]) { return; }
      var c = per[e.site] = per[e.site] || {};
      var b = BUCKET[e.state] || "unknown";
      c[b] = (c[b] || 0) + 1;
    });
    nodes.forEach(function (n) {
      var site = n.getAttribute("data-site");
      if (!touched[site]) { return; }
      var cls = (n.getAttribute("class") || "").replace(/\bworst-\S+/, "").trim();
      var want = cls + " worst-" + worst(per[site] || {});
      if (n.getAttribute("class") !== want) { n.setAttribute("class", want); }
    });
  }

  function updateBadges(e) {
    document.querySelectorAll('[data-live-device="' + CSS.escape(e.id) + '"]').forEach(function (n) {
      n.replaceChildren(el("span", { "class": "state state-" + e.state }, [
        el("span", { "class": "mark", "aria-hidden": "true" }, [MARK[e.state] || "?"]),
        " " + (S.states[e.state] || e.state)]));
    });
  }

  function apply(msg) {
    var touched = {};
    if (msg.full) {
      Object.keys(devices).forEach(function (id) {
        if (!msg.devices.some(function (e) { return e.id === id; })) { msg.removed.push(id); }
      });
    }
    msg.devices.forEach(function (e) {
      if (devices[e.id]) { touched[devices[e.id].site] = true; }
      devices[e.id] = e;
      touched[e.site] = true;
      if (tilesEl) { updateTiles(e, false); }
      updateBadges(e);
    });
    msg.removed.forEach(function (id) {
      var old = devices[id];
      if (!old) { return; }
      touched[old.site] = true;
      delete devices[id];
      if (tilesEl) { updateTiles(old, true); }
    });
    updateSites(touched);
    updateRollup(msg.rollup);
    if (updated && msg.at) { updated.textContent = S.dataAsOf.replace("%(time)s", msg.at); }
    root.setAttribute("data-live", "1");
    // Alert lists on the page (wall.js) read themselves again.
    if (msg.alerts) { document.dispatchEvent(new CustomEvent("dcor:alerts-changed")); }
  }

  // --- the connection -------------------------------------------------------------------
  var lostTimer = null;
  var quietTimer = null;
  function lost(yes) {
    if (banner) { banner.hidden = !yes; }
    document.body.classList.toggle("hub-lost", yes);
  }
  function heard() {
    window.clearTimeout(lostTimer);
    lostTimer = null;
    lost(false);
    // Pings come every heartbeat: silence for 2.5 of them is a lost connection too (a hub
    // that hangs, or a proxy that holds the socket open).
    window.clearTimeout(quietTimer);
    quietTimer = window.setTimeout(function () { lost(true); }, S.heartbeatMs * 2.5);
  }

  var source = new EventSource(root.getAttribute("data-stream"));
  source.addEventListener("fleet", function (ev) {
    heard();
    var msg;
    try { msg = JSON.parse(ev.data); } catch (err) { return; }
    apply(msg);
  });
  source.addEventListener("ping", function (ev) {
    heard();
    try {
      var p = JSON.parse(ev.data);
      if (updated && p.at) { updated.textContent = S.dataAsOf.replace("%(time)s", p.at); }
    } catch (err) { /* a ping without data still says the hub is there */ }
  });
  source.onerror = function () {
    // The browser reconnects by itself (a stream also ends every few minutes on purpose):
    // say "lost" only if it is not back within two seconds.
    if (lostTimer === null) {
      lostTimer = window.setTimeout(function () { lostTimer = null; lost(true); }, 2000);
    }
  };
}());
