// cmoc front end: live preview of every channel's text on the drafting form.
// Served as a static file so the Content-Security-Policy needs no inline script.
(function () {
  "use strict";
  // The channels and their labels come from the form (data-channels), as the server has them.
  var CHANNELS = [];

  function hideNoJs() {
    document.querySelectorAll(".js-hide").forEach(function (el) { el.hidden = true; });
  }

  function draftForm() {
    var form = document.getElementById("draft-form");
    if (!form) { return; }
    var url = form.dataset.previewUrl;
    var beatUrl = form.dataset.heartbeatUrl;
    var csrf = form.querySelector("input[name=csrf_token]").value;
    // [[channel, label], ...] in the order the page shows them (a JSON object's keys get sorted)
    var LABELS = {};
    CHANNELS = JSON.parse(form.dataset.channelLabels || "[]").map(function (pair) {
      LABELS[pair[0]] = pair[1];
      return pair[0];
    });
    var timer = null;
    var seq = 0;
    var submitting = false;
    var last = null;

    function field(name) { return form.querySelector("[name='" + name + "']"); }
    function byId(id) { return document.getElementById(id); }

    function show(el, text) {
      if (!el) { return; }
      el.textContent = text || "";
      el.hidden = !text;
    }

    // The tweet counted here, at each keystroke, with the maintained twitter-text (the same
    // weights and 23-character t.co links the server uses); null when it did not load.
    var TRAILING_URL = /\s*https?:\/\/\S+\s*$/;
    function localTweet() {
      var tt = window.twitterText;
      var box = field("text_twitter");
      if (!tt || !box) { return null; }
      var text = box.value.trim();   // the server counts the text as it is saved: stripped
      var token = form.dataset.token;
      var legend = byId("token-legend");
      var nextText = legend && !legend.hidden ? byId("token-value").textContent.trim() : "";
      if (token && nextText) { text = text.split(token).join(nextText); }
      var length = text ? tt.parseTweet(text).weightedLength : 0;
      var body = length;
      var trailing = TRAILING_URL.exec(text.replace(/\s+$/, ""));
      if (trailing) {
        var separator = trailing[0].length - trailing[0].replace(/^\s+/, "").length;
        body = Math.max(0, length - 23 - separator);
      }
      var budget = Number(form.dataset.bodyBudget);
      return { weighted_length: length, limit: Number(form.dataset.tweetLimit),
               body_length: body, body_budget: budget, over_budget: body > budget };
    }

    function setCounter(tweet) {
      var counter = byId("tweet-count");
      var warning = byId("tweet-warning");
      var over = tweet.weighted_length > tweet.limit;
      counter.textContent = tweet.weighted_length + " / " + tweet.limit;
      counter.className = "counter" + (over ? " over" : (tweet.over_budget ? " warn" : ""));
      warning.className = "tweet-warning" + (over ? " over" : (tweet.over_budget ? " warn" : ""));
      if (over) {
        warning.textContent = "";   // the channel's problem line says it (and what to do)
      } else if (tweet.over_budget) {
        warning.textContent = "Body is " + tweet.body_length + " characters before the final link; " +
          "the handbook keeps it within " + tweet.body_budget + ".";
      } else {
        warning.textContent = "";
      }
    }

    function selected() {
      return CHANNELS.filter(function (c) {
        var box = byId("channel-" + c);
        return box && box.checked;
      });
    }

    // A blocked channel stops only itself: Publish waits while a ticked channel is blocked,
    // and "Publish to …" sends the others.
    function setPublish(problems) {
      var chosen = selected();
      var stuck = chosen.filter(function (c) { return problems[c]; });
      var free = chosen.filter(function (c) { return !problems[c]; });
      var publish = byId("publish");
      var others = byId("publish-others");
      publish.disabled = stuck.length > 0;
      others.hidden = !(stuck.length && free.length);
      var names = free.map(function (c) { return LABELS[c]; });
      byId("publish-others-list").textContent = names.length > 1
        ? names.slice(0, -1).join(", ") + " and " + names[names.length - 1] : names.join("");
      CHANNELS.forEach(function (c) {
        var box = byId("box-" + c);
        if (box) { box.classList.toggle("blocked", Boolean(problems[c]) && chosen.indexOf(c) >= 0); }
      });
    }

    function apply(data) {
      last = data;
      CHANNELS.forEach(function (c) {
        var text = field("text_" + c);
        field("rendered_" + c).value = data.rendered[c];
        if (field("edited_" + c).value !== "1" && document.activeElement !== text) {
          text.value = data.texts[c];
        }
        show(byId("problem-" + c), data.problems[c]);
        show(byId("warning-" + c), data.warnings[c]);
        var sentAs = byId("sent-as-" + c);
        byId("sent-as-text-" + c).textContent = data.resolved[c];
        sentAs.hidden = text.value.indexOf("{next_update}") < 0;
        var note = byId("blocked-" + c);
        if (note) { note.hidden = !data.problems[c]; note.title = data.problems[c] || ""; }
      });
      var next = byId("next-update-at");
      if (next) { next.textContent = data.next_update_at || "—"; }
      byId("token-value").textContent = data.next_update_text;
      byId("token-legend").hidden = !data.next_update_text;
      var internalDue = byId("internal-due");
      if (internalDue) { internalDue.hidden = !data.internal; }
      byId("internal-note").hidden = !data.internal;
      byId("notify-preview").textContent = data.notify_summary;
      // The local count is of what is in the box now; the answer may be of an older text.
      setCounter(localTweet() || data.tweet);
      setPublish(data.problems);
    }

    function refresh() {
      var mine = ++seq;
      fetch(url, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { "X-CSRFToken": csrf, "Accept": "application/json" }
      }).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
        if (!data || mine !== seq) { return; }
        apply(data);
      }).catch(function () { /* offline: the server validates again on save */ });
    }

    // Fields and choices re-render the texts: asked for soon. Typing in a text box only needs
    // the server's check (placeholders, blocked channels) once the typing pauses.
    function schedule(delay) {
      clearTimeout(timer);
      timer = setTimeout(refresh, delay || 120);
    }

    // While this page is open the CMOC is drafting: no heads-up interrupts them.
    function beat(gone) {
      var data = new FormData();
      data.append("csrf_token", csrf);
      if (gone) {
        data.append("gone", "1");
        if (navigator.sendBeacon) { navigator.sendBeacon(beatUrl, data); }
        return;
      }
      // The answer is read to the end, so the request is over (and the page idle) at once.
      fetch(beatUrl, { method: "POST", body: data, credentials: "same-origin",
                       headers: { "X-CSRFToken": csrf, "Accept": "application/json" } })
        .then(function (r) { return r.text(); })
        .catch(function () { /* the next beat tries again */ });
    }

    form.addEventListener("input", function (e) {
      var channel = e.target.dataset.channel;
      if (channel) { field("edited_" + channel).value = "1"; }
      if (channel === "twitter") {
        var tweet = localTweet();
        if (tweet) { setCounter(tweet); }
      }
      // (Without the library the server counts the tweet: asked as soon as before.)
      if (channel) {
        schedule(window.twitterText || channel !== "twitter" ? 600 : 120);
      } else if (e.target.hasAttribute("data-preview")) { schedule(); }
    });
    form.addEventListener("change", function (e) {
      if (e.target.hasAttribute("data-switch")) {
        // State or template changed: the server re-renders the form with that template's fields.
        var action = document.createElement("input");
        action.type = "hidden"; action.name = "action"; action.value = "switch";
        form.appendChild(action);
        if (e.target.name === "state") { field("template").value = ""; }
        submitting = true;
        form.submit();
      } else if (e.target.name === "status" || e.target.name === "channels" ||
                 e.target.name.indexOf("notify_") === 0) {
        if (e.target.name === "channels" && last) { setPublish(last.problems); }
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
      if (submitter && submitter.disabled) { e.preventDefault(); return; }
      submitting = true;
    });
    // The next-update time follows the clock while the form stays open.
    setInterval(refresh, 20000);
    if (beatUrl) {
      beat(false);
      setInterval(function () { beat(false); }, 20000);
      window.addEventListener("pagehide", function () { if (!submitting) { beat(true); } });
    }
    refresh();
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

  // A link to #update-N opens that update even when it is an older, collapsed one (and a link
  // to a <details>, e.g. #no-public-post from a reminder, opens it).
  function openAnchored() {
    var target = window.location.hash && document.getElementById(window.location.hash.slice(1));
    var details = target && (target.tagName === "DETAILS" ? target
                                                          : target.querySelector("details.update-details"));
    if (details && !details.open) {
      details.open = true;
      target.scrollIntoView();
    }
  }

  // Declare/edit form: ticking a component status.io has no id for says so at once.
  function componentWarning() {
    var warning = document.getElementById("component-warning");
    var list = document.getElementById("component-warning-list");
    var boxes = document.querySelectorAll("input[name=components][data-no-statusio-id]");
    if (!warning || !list || !boxes.length) { return; }
    document.getElementById("components").addEventListener("change", function () {
      var names = [];
      boxes.forEach(function (box) { if (box.checked) { names.push(box.value); } });
      list.textContent = names.join(", ");
      warning.hidden = names.length === 0;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    componentWarning();
    confirmations();
    copyButtons();
    openAnchored();
    window.addEventListener("hashchange", openAnchored);
  });
})();
