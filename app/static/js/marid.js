// Small behaviours that need script. No inline script anywhere: the CSP forbids it.
(function () {
  "use strict";

  function showToast(message, kind) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var toast = document.createElement("div");
    toast.className = "toast " + (kind || "info");
    toast.setAttribute("role", "status");
    toast.textContent = message;  // text, never HTML: messages may quote user input
    box.appendChild(toast);
    setTimeout(function () { toast.classList.add("leaving"); }, 4500);
    setTimeout(function () { toast.remove(); }, 5000);
  }

  document.addEventListener("marid:toast", function (event) {
    var detail = event.detail || {};
    showToast(detail.message || "", detail.kind);
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("#toasts .toast").forEach(function (toast) {
      setTimeout(function () { toast.classList.add("leaving"); }, 4500);
      setTimeout(function () { toast.remove(); }, 5000);
    });
  });

  // Confirmation for dangerous buttons: <button data-confirm="Really?">.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
    }
  }, true);

  // Copy buttons: <button data-copy="#id">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.dataset.copy);
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim());
      showToast("Copied", "success");
    }
  });

  // Resumable streams. The browser's own EventSource reconnect sends Last-Event-ID; when it gives up
  // (e.g. the server answered 502 during a deploy), the htmx SSE extension opens a new EventSource, which
  // would not. So remember the last id per stream and hand it back as ?since= (the server accepts both).
  var lastEventIds = {};
  function streamKey(url) { return url.replace(/([?&])since=[^&]*(&|$)/, "$1").replace(/[?&]$/, ""); }
  if (window.htmx) {
    window.htmx.createEventSource = function (url) {
      var key = streamKey(url);
      var since = lastEventIds[key];
      // Before any message, keep the page's own ?since= (the position of what it rendered).
      var full = since ? key + (key.indexOf("?") < 0 ? "?" : "&") + "since=" + encodeURIComponent(since) : url;
      var source = new EventSource(full);
      source.__maridKey = key;
      // The server ends a stream with "forbidden" when the viewer lost access (removed, signed out), and
      // with "reset" when events were missed beyond what it keeps: either way the page itself is stale.
      source.addEventListener("forbidden", function () { source.close(); window.location.reload(); });
      source.addEventListener("reset", function () { source.close(); window.location.reload(); });
      return source;
    };
  }
  document.addEventListener("htmx:sseMessage", function (event) {
    var message = event.detail;
    if (message && message.lastEventId && message.target && message.target.__maridKey) {
      lastEventIds[message.target.__maridKey] = message.lastEventId;
    }
  });

  // Connection state next to live feeds: "Live" while the stream is open, "Reconnecting…" while it is not.
  function setLiveStatus(event, text, kind) {
    var host = event.target.closest ? event.target.closest("section, main") : null;
    var badge = host ? host.querySelector("[data-live-status]") : null;
    if (!badge) return;
    badge.textContent = text;
    badge.className = "badge live-status " + kind;
  }
  document.addEventListener("htmx:sseOpen", function (event) { setLiveStatus(event, "Live", "ok"); });
  document.addEventListener("htmx:sseError", function (event) { setLiveStatus(event, "Reconnecting…", "warn"); });

  // Live feeds. Events are hints: the page's items come from the database, and an item can arrive twice (the
  // stream replays what the page re-read, or a relay publishes again after a crash). Each item carries its
  // audit id: keep one per id, newest first, at most 50, and drop the empty state once something is there.
  function auditId(item) { return parseInt(item.getAttribute("data-audit-id") || "0", 10) || 0; }
  function tidyFeed(feed) {
    var list = feed.querySelector("[sse-swap]") || feed;
    var seen = {};
    var items = Array.prototype.slice.call(list.querySelectorAll("[data-feed-item]"));
    items = items.filter(function (item) {
      var id = auditId(item);
      if (id && seen[id]) { item.remove(); return false; }
      seen[id] = true;
      return true;
    });
    items.sort(function (a, b) { return auditId(b) - auditId(a); });  // stable: id-less items keep their order
    items.forEach(function (item, index) {
      if (index < 50) list.appendChild(item); else item.remove();
    });
    var empty = feed.querySelector(".empty-state");
    if (empty && items.length) empty.remove();
  }
  document.addEventListener("htmx:sseMessage", function (event) {
    var feed = event.target.closest ? event.target.closest("[data-feed]") : null;
    if (feed) tidyFeed(feed);
  });

  // When a feed's stream reconnects, re-read it from its page (data-feed-refresh), which renders it from the
  // database: a change whose event was never published (the server died between its commit and the publish)
  // shows up all the same.
  function refreshFeed(feed) {
    var url = feed.getAttribute("data-feed-refresh");
    if (!url || !window.fetch) return;
    // The feed's own block of its page, as htmx would ask for it, rendered from the database like the first time.
    var headers = { "Accept": "text/html", "HX-Request": "true", "HX-Target": feed.id };
    window.fetch(url, { credentials: "same-origin", headers: headers }).then(function (response) {
      return response.ok ? response.text() : "";
    }).then(function (html) {
      if (!html) return;
      var template = document.createElement("template");
      template.innerHTML = html;  // the server's own escaped fragment, never made live: only its items move
      var list = feed.querySelector("[sse-swap]") || feed;
      template.content.querySelectorAll("[data-feed-item]").forEach(function (item) { list.appendChild(item); });
      tidyFeed(feed);
    }).catch(function () { /* the stream's own retries will try again */ });
  }
  document.addEventListener("htmx:sseOpen", function (event) {
    var feed = event.target.closest ? event.target.closest("[data-feed]") : null;
    if (!feed) return;
    if (feed.__maridOpened) refreshFeed(feed);  // a reconnection; the first open follows the page's own render
    feed.__maridOpened = true;
  });
})();
