// cmoc front end: live preview of every channel's text on the drafting form.
// Served as a static file so the Content-Security-Policy needs no inline script.
(function () {
  "use strict";
  var CHANNELS = ["statusio", "twitter", "slack"];

  function hideNoJs() {
    document.querySelectorAll(".js-hide").forEach(function (el) { el.hidden = true; });
  }

  function draftForm() {
    var form = document.getElementById("draft-form");
    if (!form) { return; }
    var url = form.dataset.previewUrl;
    var csrf = form.querySelector("input[name=csrf_token]").value;
    var timer = null;
    var seq = 0;

    function field(name) { return form.querySelector("[name='" + name + "']"); }

    function setCounter(tweet) {
      var counter = document.getElementById("tweet-count");
      var warning = document.getElementById("tweet-warning");
      var over = tweet.weighted_length > tweet.limit;
      counter.textContent = tweet.weighted_length + " / " + tweet.limit;
      counter.className = "counter" + (over ? " over" : (tweet.over_budget ? " warn" : ""));
      warning.className = "tweet-warning" + (over ? " over" : (tweet.over_budget ? " warn" : ""));
      if (over) {
        warning.textContent = "Over the 280-character limit by " + (tweet.weighted_length - tweet.limit) +
          ": shorten it before saving.";
      } else if (tweet.over_budget) {
        warning.textContent = "Body is " + tweet.body_length + " characters before the final link; " +
          "the handbook keeps it within " + tweet.body_budget + ".";
      } else {
        warning.textContent = "";
      }
      form.querySelectorAll("button[name=action][value=save], button[name=action][value=publish]")
        .forEach(function (b) { b.disabled = over; });
    }

    function refresh() {
      var mine = ++seq;
      fetch(url, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { "X-CSRFToken": csrf, "Accept": "application/json" }
      }).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
        if (!data || mine !== seq) { return; }
        CHANNELS.forEach(function (c) {
          var text = field("text_" + c);
          field("rendered_" + c).value = data.rendered[c];
          if (field("edited_" + c).value !== "1" && document.activeElement !== text) {
            text.value = data.texts[c];
          }
        });
        var next = document.getElementById("next-update-at");
        if (next) { next.textContent = data.next_update_at || "—"; }
        setCounter(data.tweet);
      }).catch(function () { /* offline: the server validates again on save */ });
    }

    function schedule() { clearTimeout(timer); timer = setTimeout(refresh, 120); }

    form.addEventListener("input", function (e) {
      var channel = e.target.dataset.channel;
      if (channel) { field("edited_" + channel).value = "1"; }
      if (channel || e.target.hasAttribute("data-preview")) { schedule(); }
    });
    form.addEventListener("change", function (e) {
      if (e.target.hasAttribute("data-switch")) {
        // State or template changed: the server re-renders the form with that template's fields.
        var action = document.createElement("input");
        action.type = "hidden"; action.name = "action"; action.value = "switch";
        form.appendChild(action);
        if (e.target.name === "state") { field("template").value = ""; }
        form.submit();
      } else if (e.target.name === "status") {
        schedule();
      }
    });
    form.querySelectorAll("[data-reset]").forEach(function (button) {
      button.addEventListener("click", function () {
        var c = button.dataset.reset;
        field("edited_" + c).value = "0";
        field("text_" + c).value = field("rendered_" + c).value;
        refresh();
      });
    });
    form.addEventListener("submit", function (e) {
      var submitter = e.submitter;
      if (submitter && submitter.disabled) { e.preventDefault(); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    hideNoJs();
    draftForm();
  });
})();

// Live countdowns to each next-update due time; overdue rows turn red and the tab title
// counts them, so a late update is visible from any other tab.
(function () {
  "use strict";
  function fmt(seconds) {
    seconds = Math.abs(Math.round(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h) { return h + "h " + (m < 10 ? "0" : "") + m + "m"; }
    if (m) { return m + "m " + (s < 10 ? "0" : "") + s + "s"; }
    return s + "s";
  }
  function tick() {
    var overdue = 0;
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var left = (Date.parse(el.dataset.due) - Date.now()) / 1000;
      el.textContent = left >= 0 ? "(in " + fmt(left) + ")" : "(" + fmt(left) + " overdue)";
      var row = el.closest("tr");
      if (row) { row.classList.toggle("overdue", left < 0); }
      var holder = el.closest("[data-due-holder]");
      if (holder) { holder.classList.toggle("overdue-text", left < 0); }
      if (left < 0) { overdue += 1; }
    });
    var body = document.body;
    if (body.hasAttribute("data-count-overdue")) {
      document.title = (overdue ? "(" + overdue + " overdue) " : "") + body.dataset.title;
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (!document.querySelector("[data-due]")) { return; }
    tick();
    setInterval(tick, 1000);
    // New incidents and publishes reach the page through live.js (a version poll).
  });
})();

// Confirmations, copy buttons and the timeline's anchors; every hook is a data attribute.
(function () {
  "use strict";

  // <button data-confirm="Deactivate carol?">: the form is sent only when the person agrees.
  function confirmations() {
    document.addEventListener("click", function (e) {
      var button = e.target.closest("[data-confirm]");
      if (button && !window.confirm(button.dataset.confirm)) {
        e.preventDefault();
      }
    });
  }

  // <button data-copy="#new-token">: copies that element's text and says so.
  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      var note = document.getElementById(button.dataset.copyNote);
      button.hidden = false;
      button.addEventListener("click", function () {
        var text = document.querySelector(button.dataset.copy).textContent.trim();
        var done = function () { if (note) { note.textContent = "Copied."; } };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { fallback(text, done); });
        } else {
          fallback(text, done);
        }
      });
    });
  }

  // Plain http outside localhost has no clipboard API: copy through a selected text area.
  function fallback(text, done) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
    document.body.removeChild(area);
    if (ok) { done(); }
  }

  // A link to #update-N opens that update even when it is an older, collapsed one.
  function openAnchored() {
    var target = window.location.hash && document.getElementById(window.location.hash.slice(1));
    var details = target && target.querySelector("details.update-details");
    if (details && !details.open) {
      details.open = true;
      target.scrollIntoView();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    confirmations();
    copyButtons();
    openAnchored();
    window.addEventListener("hashchange", openAnchored);
  });
})();
