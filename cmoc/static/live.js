// Live pages (dashboard, incident page): poll the page's version, a tiny request answered
// 304 Not Modified while nothing changed. On a change, deliveries are updated in place on the
// incident page; anything else reloads the page, unless someone is typing in it.
(function () {
  "use strict";
  var SLOW = 5000;   // watchers: one small request every five seconds
  var FAST = 1000;   // a page loaded while its deliveries are still on their way

  function typing() {
    var el = document.activeElement;
    return el && el !== document.body && el.matches("input, textarea, select");
  }

  function reloadSoon() {
    // Spread a wave of reloads (every watcher learns of a publish within seconds).
    setTimeout(function () {
      if (!typing()) { window.location.reload(); }
    }, Math.random() * 2000);
  }

  function updateDeliveries(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return false; }
        var complete = true, settled = true;
        data.deliveries.forEach(function (d) {
          var row = document.getElementById("delivery-" + d.id);
          if (!row) { complete = false; return; }
          var badge = row.querySelector("[data-field=status]");
          badge.textContent = d.label;
          badge.className = "badge d-" + d.status;
          var external = row.querySelector("[data-field=external_id]");
          if (external && !external.querySelector("a")) { external.textContent = d.external_id || ""; }
          row.querySelector("[data-field=attempts]").textContent = d.attempts;
          row.querySelector("[data-field=error]").textContent = d.error || "";
          if (!d.settled) { settled = false; }
        });
        // A new update, or everything settled (links, facts and the due time change): reload.
        return complete && !settled;
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var body = document.body;
    var url = body.dataset.liveUrl;
    if (!url) { return; }
    var etag = '"' + body.dataset.liveVersion + '"';
    var timeline = document.querySelector(".timeline[data-deliveries-url]");
    var fast = !!document.querySelector(".timeline[data-live]");
    function poll() {
      fetch(url, { credentials: "same-origin",
                   headers: { "If-None-Match": etag, "Accept": "application/json" } })
        .then(function (r) {
          if (r.status !== 200) { return null; }
          etag = r.headers.get("ETag") || etag;
          if (!timeline) { reloadSoon(); return null; }
          return updateDeliveries(timeline.dataset.deliveriesUrl).then(function (inPlace) {
            if (!inPlace) { reloadSoon(); }
          });
        })
        .catch(function () { return null; })
        .then(function () { setTimeout(poll, fast ? FAST : SLOW); });
    }
    setTimeout(poll, fast ? FAST : SLOW);
  });
})();
