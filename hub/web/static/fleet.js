// Fleet page: redraw the device tables from /api/v1/devices every few seconds, without a
// page reload. Draws the same markup as templates/fleet.html; all text comes from the
// page's #fleet-strings block (already in the page's language), the data from the API.
(function () {
  "use strict";

  var root = document.getElementById("fleet");
  var stringsEl = document.getElementById("fleet-strings");
  if (!root || !stringsEl || !window.fetch) { return; }
  var S = JSON.parse(stringsEl.textContent);
  var lang = root.getAttribute("data-lang") || "id";
  var refreshMs = Math.max(1, Number(root.getAttribute("data-refresh-s")) || 5) * 1000;
  var api = root.getAttribute("data-api");
  var BUCKET = { online: "online", stale: "degraded", offline: "offline",
                 unknown: "unknown", decommissioned: "decommissioned" };
  var BUCKETS = ["online", "degraded", "offline", "unknown", "decommissioned"];
  var MARK = { online: "●", stale: "▲", degraded: "▲", offline: "■", unknown: "?",
               decommissioned: "–" };
  var oneDecimal = new Intl.NumberFormat(lang, { minimumFractionDigits: 1,
    maximumFractionDigits: 1, useGrouping: false });
  var integer = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
  var wibClock = new Intl.DateTimeFormat("sv-SE", { timeZone: "Asia/Jakarta",
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hour12: false });

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function pct(v) { return isNum(v) ? oneDecimal.format(v) + "%" : S.absent; }

  function healthCells(h) {
    h = h || {};
    return [
      pct(h.cpu_pct), pct(h.mem_pct), pct(h.disk_pct),
      isNum(h.temp_c) ? oneDecimal.format(h.temp_c) + " °C" : S.absent,
      isNum(h.outbox_depth) ? integer.format(Math.trunc(h.outbox_depth)) : S.absent,
      h.clock_synced === true ? S.yes : (h.clock_synced === false ? S.no : S.absent)
    ];
  }

  // Same as timefmt.display_wib_short: the time alone on the data's own WIB date.
  function lastSeen(t, today) {
    if (!t || !t.wib) { return S.absent; }
    if (t.wib.slice(0, 10) === today) { return t.wib.slice(11, 19); }
    return t.wib.slice(0, 10) + " " + t.wib.slice(11, 16);
  }

  function lastSeenFull(t) {
    return t && t.wib ? t.wib.slice(0, 10) + " " + t.wib.slice(11, 19) + " WIB" : "";
  }

  function badge(state) {
    return el("span", { "class": "state state-" + state }, [
      el("span", { "class": "mark", "aria-hidden": "true" }, [MARK[state] || "?"]),
      " " + (S.states[state] || state)]);
  }

  function countList(c) {
    var items = BUCKETS.filter(function (b) {
      return b === "online" || b === "degraded" || b === "offline" || c[b];
    }).map(function (b) {
      return el("li", { "class": "count state-" + b }, [
        el("span", { "class": "mark", "aria-hidden": "true" }, [MARK[b]]), " ",
        el("span", { "class": "count-n" }, [String(c[b] || 0)]), " ",
        el("span", { "class": "count-label" }, [S.states[b]])]);
    });
    // Spaces between items as in the server's markup, so the text reads the same.
    var spaced = [];
    items.forEach(function (li) { spaced.push(" ", li); });
    return el("ul", { "class": "counts", "aria-label": S.byState }, spaced);
  }

  function tally(devices) {
    var c = {};
    devices.forEach(function (d) {
      var b = BUCKET[d.state] || "unknown";
      c[b] = (c[b] || 0) + 1;
    });
    return c;
  }

  function placeOrder(a, b) {
    // Places not recorded go last, as on the server.
    if (!a || !b) { return a ? -1 : (b ? 1 : 0); }
    return a.toLowerCase() < b.toLowerCase() ? -1 : (a.toLowerCase() > b.toLowerCase() ? 1 : 0);
  }

  function groupBy(list, key) {
    var map = {};
    list.forEach(function (d) { (map[d[key]] = map[d[key]] || []).push(d); });
    return Object.keys(map).sort(placeOrder).map(function (k) { return [k, map[k]]; });
  }

  // Thumbnails on the page before a redraw, by device and camera. The redraw moves these
  // same <img> nodes into the new tables and sets src only when the snapshot changed, so
  // an unchanged picture is neither fetched again nor repainted.
  var oldThumbs = {};
  function collectThumbs() {
    oldThumbs = {};
    root.querySelectorAll("tr[data-cameras-of] li.thumb img").forEach(function (img) {
      var key = img.closest("tr").getAttribute("data-cameras-of") + "/" +
        img.closest("li").getAttribute("data-camera");
      oldThumbs[key] = img;
    });
  }

  function thumbLink(deviceId, camera, snap) {
    var alt = S.snapshotAlt.replace("%(camera)s", camera).replace("%(device)s", deviceId)
      .replace("%(time)s", lastSeenFull(snap.ts) || S.absent);
    var img = oldThumbs[deviceId + "/" + camera];
    if (!img) {
      // loading=lazy before src, or the browser may start the fetch at once.
      img = el("img", { loading: "lazy", decoding: "async", width: "96", height: "54" });
    }
    if (img.getAttribute("src") !== snap.url) { img.setAttribute("src", snap.url); }
    img.setAttribute("alt", alt);
    return el("a", { href: snap.url, title: alt }, [img]);
  }

  // The newest snapshot of each camera, on a line of its own under the device's figures.
  function thumbsRow(d) {
    var items = [];
    d.cameras.forEach(function (c) {
      var pic = c.latest_snapshot ? thumbLink(d.id, c.camera, c.latest_snapshot)
        : el("span", { "class": "thumb-none", role: "img", "aria-label": S.noSnapshot,
                       title: S.noSnapshot });
      items.push(" ", el("li", { "class": "thumb", "data-camera": c.camera }, [
        pic, el("span", { "class": "thumb-label" }, [c.camera])]));
    });
    return el("tr", { "class": "row-" + d.state + " thumbs-row", "data-cameras-of": d.id }, [
      el("td", { colspan: String(S.columns.length - 1) }, [
        el("ul", { "class": "thumbs", "aria-label": S.cameras }, items)])]);
  }

  // One device: its row, and its thumbnail row when it has cameras with media.
  function rows(d, today) {
    var cells = healthCells(d.health);
    var seen = lastSeenFull(d.last_seen);
    var hasThumbs = d.cameras && d.cameras.length > 0;
    var tds = cells.slice(0, 5).map(function (text) { return el("td", { "class": "num" }, [text]); });
    var head = el("th", hasThumbs ? { scope: "row", rowspan: "2" } : { scope: "row" }, [
      el("span", { "class": "dev-id" }, [d.id]), " ",
      el("span", { "class": "dev-site", title: d.site_name || d.site },
        [d.site_name || d.site])]);
    var main = el("tr", { "class": "row-" + d.state + (hasThumbs ? " has-thumbs" : ""),
                          "data-device": d.id }, [
      head,
      el("td", {}, [badge(d.state)]),
      el("td", seen ? { "class": "time", title: seen } : { "class": "time" },
        [lastSeen(d.last_seen, today)])
    ].concat(tds, [el("td", {}, [cells[5]])]));
    return hasThumbs ? [main, thumbsRow(d)] : [main];
  }

  function table(name, devices, today) {
    var head = el("tr", {}, S.columns.map(function (c, i) {
      return el("th", i >= 3 && i <= 7 ? { scope: "col", "class": "num" } : { scope: "col" }, [c]);
    }));
    devices.sort(function (a, b) { return a.id < b.id ? -1 : (a.id > b.id ? 1 : 0); });
    return el("div", { "class": "table-wrap" }, [el("table", { "class": "devices" }, [
      el("caption", {}, [el("div", { "class": "caption-inner" }, [
        el("span", { "class": "caption-name" }, [
          el("span", { "class": "place-kind" }, [S.subDistrict]), " " + (name || S.unknownPlace)]),
        " ", countList(tally(devices))])]),
      el("thead", {}, [head]),
      el("tbody", {}, devices.reduce(function (trs, d) {
        return trs.concat(rows(d, today));
      }, []))])]);
  }

  function draw(devices, when) {
    var fresh = document.createDocumentFragment();
    var stamp = wibClock.format(when);  // "2024-05-01 14:03:22"
    var today = stamp.slice(0, 10);
    collectThumbs();
    groupBy(devices, "kecamatan").forEach(function (kec, i) {
      var id = "kec-" + (i + 1);
      var section = el("section", { "class": "kecamatan", "aria-labelledby": id }, [
        el("header", { "class": "group-head" }, [
          el("h2", { id: id }, [el("span", { "class": "place-kind" }, [S.district]),
            " " + (kec[0] || S.unknownPlace)]),
          countList(tally(kec[1]))])]);
      groupBy(kec[1], "kelurahan").forEach(function (kel) {
        section.appendChild(table(kel[0], kel[1], today));
      });
      fresh.appendChild(section);
    });
    if (!devices.length) { fresh.appendChild(el("p", { "class": "empty" }, [S.empty])); }
    root.replaceChildren(fresh);
    root.setAttribute("data-updated", stamp);
    document.getElementById("total-counts").replaceChildren(countList(tally(devices)));
    document.getElementById("device-count").textContent =
      (devices.length === 1 ? S.deviceOne : S.deviceMany).replace("%(num)d", devices.length);
    document.getElementById("updated").textContent =
      S.dataAsOf.replace("%(time)s", stamp + " WIB");
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

  function refresh() {
    fetch(api, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (res) {
        if (!res.ok) { throw new Error("HTTP " + res.status); }
        var served = new Date(res.headers.get("Date") || Date.now());
        return res.json().then(function (devices) {
          draw(devices, isNaN(served.getTime()) ? new Date() : served);
          setFailed(false);
        });
      })
      .catch(function () { setFailed(true); })
      .then(function () { window.setTimeout(refresh, refreshMs); });
  }

  window.setTimeout(refresh, refreshMs);
})();
