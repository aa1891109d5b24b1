// Tripwire console: the live feed of firings (server-sent events). No dependencies.
"use strict";

(function () {
  var MAX_ROWS = 500;

  function when(iso) {
    var moment = new Date(iso);
    if (isNaN(moment.getTime())) return iso;
    return moment.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC");
  }

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function row(item) {
    var tr = document.createElement("tr");
    tr.className = "item fresh " + item.kind + " " + item.state;
    tr.dataset.eventId = item.id;
    tr.appendChild(cell(when(item.occurred), "when"));
    var name = document.createElement("td");
    var link = document.createElement("a");
    link.href = "/console/automations/" + encodeURIComponent(item.automation_id);
    link.textContent = item.automation_name || item.automation_id;
    name.appendChild(link);
    tr.appendChild(name);
    var what = document.createElement("td");
    var badge = document.createElement("span");
    badge.className = "badge " + item.state;
    badge.textContent = item.kind + " " + item.state;
    what.appendChild(badge);
    tr.appendChild(what);
    tr.appendChild(cell(item.detail, "detail"));
    return tr;
  }

  function setState(badge, state, text) {
    badge.dataset.state = state;
    badge.textContent = text;
    badge.className = "badge " + (state === "live" ? "enabled" : "paused");
  }

  function follow() {
    var body = document.getElementById("feed-items");
    var badge = document.getElementById("live-state");
    var dropped = document.getElementById("dropped");
    var lost = 0;
    var source = new EventSource("/console/feed/stream");
    source.addEventListener("ready", function () {
      setState(badge, "live", "live");
    });
    source.addEventListener("item", function (message) {
      var item = JSON.parse(message.data);
      if (body.querySelector('tr[data-event-id="' + CSS.escape(item.id) + '"]')) return;
      var empty = document.getElementById("feed-empty");
      if (empty) empty.remove();
      body.insertBefore(row(item), body.firstChild);
      while (body.children.length > MAX_ROWS) body.removeChild(body.lastChild);
    });
    source.addEventListener("dropped", function (message) {
      lost += parseInt(message.data, 10) || 0;
      dropped.textContent = lost + " events were skipped because this page read too slowly.";
    });
    source.addEventListener("error", function () {
      // EventSource reconnects by itself (after the server's `retry`).
      setState(badge, "reconnecting", "reconnecting…");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.body.dataset.page === "feed") follow();
  });
})();
