// Small behaviours that need script. No inline script anywhere: the CSP forbids it.
(function () {
  "use strict";

  function showToast(message, kind) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var toast = document.createElement("div");
    toast.className = "toast " + (kind || "info");
    toast.setAttribute("data-toast", "");
    toast.textContent = message;  // text, never HTML: messages may quote user input
    box.appendChild(toast);
    dismissLater(toast);
  }
  function dismissLater(toast) {
    setTimeout(function () { toast.classList.add("leaving"); }, 5500);
    setTimeout(function () { toast.remove(); }, 6000);
  }

  document.addEventListener("marid:toast", function (event) {
    var detail = event.detail || {};
    showToast(detail.message || "", detail.kind);
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("#toasts [data-toast]").forEach(dismissLater);
    revealCurrentTabs();
    rememberTimeZone();
  });

  // --- Menus: the menu button pattern ------------------------------------------------------------------------
  // <div data-menu><button aria-haspopup="menu" aria-expanded aria-controls="x">…</button>
  //   <div id="x" role="menu" hidden><a role="menuitem">…</a>…</div></div>
  // Enter, Space or ArrowDown open it on the first item (ArrowUp: the last); arrows, Home and End move; Escape
  // closes and gives focus back to the button; Tab or a click elsewhere closes; one menu is open at a time.
  function menuParts(menu) {
    var button = menu.querySelector("[aria-haspopup=menu]");
    var panel = button ? document.getElementById(button.getAttribute("aria-controls")) : null;
    return { button: button, panel: panel };
  }
  function menuItems(panel) {
    return Array.prototype.slice.call(panel.querySelectorAll("[role=menuitem]"));
  }
  function closeMenu(menu, giveFocusBack) {
    var parts = menuParts(menu);
    if (!parts.panel || parts.panel.hidden) return;
    parts.panel.hidden = true;
    parts.button.setAttribute("aria-expanded", "false");
    if (giveFocusBack) parts.button.focus();
  }
  function closeAllMenus(except) {
    document.querySelectorAll("[data-menu]").forEach(function (menu) {
      if (menu !== except) closeMenu(menu, false);
    });
  }
  function openMenu(menu, focusLast) {
    var parts = menuParts(menu);
    if (!parts.panel) return;
    closeAllMenus(menu);
    parts.panel.hidden = false;
    parts.button.setAttribute("aria-expanded", "true");
    var items = menuItems(parts.panel);
    if (items.length) items[focusLast ? items.length - 1 : 0].focus();
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-menu] [aria-haspopup=menu]");
    if (button) {
      var menu = button.closest("[data-menu]");
      if (button.getAttribute("aria-expanded") === "true") closeMenu(menu, false);
      else openMenu(menu, false);
      return;
    }
    var inside = event.target.closest("[data-menu]");
    closeAllMenus(inside);
  });
  document.addEventListener("keydown", function (event) {
    var menu = event.target.closest ? event.target.closest("[data-menu]") : null;
    if (!menu) {
      if (event.key === "Escape") closeAllMenus(null);
      return;
    }
    var parts = menuParts(menu);
    if (event.target === parts.button) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        openMenu(menu, event.key === "ArrowUp");
      } else if (event.key === "Escape") {
        closeMenu(menu, true);
      }
      return;
    }
    var items = menuItems(parts.panel);
    var index = items.indexOf(event.target);
    if (index < 0) return;
    var next = null;
    if (event.key === "ArrowDown") next = items[(index + 1) % items.length];
    else if (event.key === "ArrowUp") next = items[(index - 1 + items.length) % items.length];
    else if (event.key === "Home") next = items[0];
    else if (event.key === "End") next = items[items.length - 1];
    else if (event.key === "Escape") { event.preventDefault(); closeMenu(menu, true); return; }
    else if (event.key === "Tab") { closeMenu(menu, false); return; }
    else if (event.key === " " && event.target.tagName === "A") { event.preventDefault(); event.target.click(); return; }
    if (next) { event.preventDefault(); next.focus(); }
  });
  document.addEventListener("focusout", function (event) {
    var menu = event.target.closest ? event.target.closest("[data-menu]") : null;
    if (menu && event.relatedTarget && !menu.contains(event.relatedTarget)) closeMenu(menu, false);
  });

  // --- Confirmations: <button data-confirm="Remove Ada?" data-confirm-label="Remove"> -----------------------
  // A modal <dialog> (focus stays inside it, Escape cancels), then focus goes back to the button. Without the
  // dialog element the browser's own confirm() asks instead.
  var confirmed = null;
  function askFirst(button, onYes) {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      if (window.confirm(button.dataset.confirm)) onYes();
      return;
    }
    document.getElementById("confirm-message").textContent = button.dataset.confirm;
    document.getElementById("confirm-title").textContent = button.dataset.confirmTitle || "Are you sure?";
    var ok = document.getElementById("confirm-ok");
    ok.textContent = button.dataset.confirmLabel || button.textContent.trim() || "Confirm";
    ok.className = button.classList.contains("danger") ? "danger" : "";
    dialog.returnValue = "";
    dialog.onclose = function () {
      dialog.onclose = null;
      if (dialog.returnValue === "confirm") onYes();
      else button.focus();
    };
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  }
  // Tab and Shift+Tab go round the open dialog's own controls (a modal dialog would let focus leave for the
  // browser's toolbar).
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Tab") return;
    var dialog = document.querySelector("dialog[open]");
    if (!dialog) return;
    var controls = Array.prototype.slice.call(
      dialog.querySelectorAll("button:not([disabled]), a[href], input:not([disabled]), select, textarea, [tabindex='0']"));
    if (!controls.length) return;
    var first = controls[0], last = controls[controls.length - 1];
    if (event.shiftKey && (document.activeElement === first || !dialog.contains(document.activeElement))) {
      event.preventDefault(); last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !dialog.contains(document.activeElement))) {
      event.preventDefault(); first.focus();
    }
  });
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (!button || !button.dataset.confirm || button === confirmed) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    var form = event.target;
    askFirst(button, function () {
      confirmed = button;
      try { form.requestSubmit(button); } finally { confirmed = null; }
    });
  }, true);

  // --- Feedback while a form is on its way --------------------------------------------------------------------
  // A plain form: its submit buttons are disabled and the one pressed shows a spinner until the next page arrives;
  // an htmx form: the same from htmx:beforeRequest to htmx:afterRequest. A double click sends one request; the
  // server also accepts each create form's token once (app/web/idempotency.py).
  function setBusy(form, submitter, busy) {
    var buttons = form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]");
    var outside = form.id ? document.querySelectorAll("[form='" + form.id + "'][type=submit]") : [];
    Array.prototype.slice.call(buttons).concat(Array.prototype.slice.call(outside)).forEach(function (button) {
      button.disabled = busy;
    });
    if (submitter) {
      submitter.classList.toggle("is-busy", busy);
      var busyLabel = submitter.getAttribute("data-busy-label");
      if (busyLabel && busy && !submitter.hasAttribute("data-idle-label")) {
        submitter.setAttribute("data-idle-label", submitter.textContent);
        submitter.textContent = busyLabel;
      } else if (!busy && submitter.hasAttribute("data-idle-label")) {
        submitter.textContent = submitter.getAttribute("data-idle-label");
        submitter.removeAttribute("data-idle-label");
      }
    }
    if (busy) form.setAttribute("aria-busy", "true"); else form.removeAttribute("aria-busy");
    document.body.classList.toggle("is-submitting", busy);
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || form.hasAttribute("data-no-busy") || (form.method || "").toLowerCase() === "dialog") return;
    if (form.hasAttribute("hx-post") || form.hasAttribute("hx-get")) return;  // htmx's own events below
    var submitter = event.submitter;
    // Disabled after the browser has read the form (a disabled button's name and value would not be sent).
    setTimeout(function () { setBusy(form, submitter, true); }, 0);
    // A download or a response that never comes must not leave the form dead.
    setTimeout(function () { setBusy(form, submitter, false); }, 20000);
  });
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;  // back to a page the browser kept: its forms are usable again
    document.querySelectorAll("form[aria-busy]").forEach(function (form) {
      setBusy(form, form.querySelector(".is-busy"), false);
    });
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt && event.detail.elt.closest ? event.detail.elt.closest("form") : null;
    if (form && event.detail.elt === form) setBusy(form, form.querySelector("button[type=submit]"), true);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt && event.detail.elt.closest ? event.detail.elt.closest("form") : null;
    if (form && event.detail.elt === form) setBusy(form, form.querySelector(".is-busy"), false);
  });

  // --- Copy buttons: <button data-copy="#id"> copies an element's text; data-copy-text="…" copies that text ------
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy], [data-copy-text]");
    if (!button) return;
    var text = button.dataset.copyText;
    if (text === undefined) {
      var source = document.querySelector(button.dataset.copy);
      text = source ? source.textContent.trim() : "";
    }
    if (!text || !navigator.clipboard) {
      showToast("Copying is not available here: select the text and copy it.", "info");
      return;
    }
    navigator.clipboard.writeText(text).then(function () {
      showToast(button.dataset.copied || "Copied to the clipboard.", "success");
    }, function () {
      showToast("Could not copy: select the text and copy it.", "error");
    });
  });

  // --- Suggestions that fill a field: <button data-fill="#f-slug" data-fill-value="acme-2"> -----------------------
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-fill]");
    if (!button) return;
    var input = document.querySelector(button.dataset.fill);
    if (!input) return;
    input.value = button.dataset.fillValue || "";
    input.focus();
    input.dispatchEvent(new Event("input", { bubbles: true }));
  });

  // --- Tabs and side navigation that scroll sideways on a phone: the current one is in view ---------------------
  function revealCurrentTabs() {
    document.querySelectorAll(".subnav [aria-current], .sidebar [aria-current]").forEach(function (tab) {
      var bar = tab.parentElement;
      if (bar.scrollWidth <= bar.clientWidth) return;
      bar.scrollLeft = tab.offsetLeft - bar.offsetLeft - (bar.clientWidth - tab.offsetWidth) / 2;
    });
  }

  // --- The browser's time zone, for people who have not chosen one on their profile --------------------------
  function rememberTimeZone() {
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone && document.cookie.indexOf("marid_tz=" + encodeURIComponent(zone)) < 0) {
        document.cookie = "marid_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
      }
    } catch (error) { /* no Intl: times stay in UTC */ }
  }

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

  // Pipeline editor: a problem's "Line 12, column 5" puts the caret there in the YAML; a chosen file's text
  // replaces the editor's and is checked like typing (an "input" event for htmx).
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("[data-goto-line]") : null;
    if (!link) return;
    var area = document.querySelector(link.getAttribute("data-goto-target") || "textarea");
    if (!area) return;
    var line = parseInt(link.getAttribute("data-goto-line"), 10) || 1;
    var column = parseInt(link.getAttribute("data-goto-column"), 10) || 1;
    var lines = area.value.split("\n");
    var offset = 0;
    for (var i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1;
    var lineText = lines[Math.min(line - 1, lines.length - 1)] || "";
    offset += Math.min(column - 1, lineText.length);
    area.focus();
    area.setSelectionRange(offset, offset + Math.max(lineText.length - column + 1, 0));
    var lineHeight = parseFloat(window.getComputedStyle(area).lineHeight) || 18;
    area.scrollTop = Math.max((line - 3) * lineHeight, 0);
  });
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[type=file][data-load-into]") || !input.files || !input.files[0]) return;
    var area = document.querySelector(input.getAttribute("data-load-into"));
    if (!area || !window.FileReader) return;
    var reader = new FileReader();
    reader.onload = function () {
      area.value = String(reader.result || "");
      area.dispatchEvent(new Event("input", { bubbles: true }));
    };
    reader.readAsText(input.files[0]);
  });

  // A section rendered from the database that re-reads itself when its page's stream says it changed (a run's
  // status and steps): data-refresh-on="STEP_STARTED,STEP_COMPLETE,..." and data-refresh-url (the page; its
  // element of the same id is taken). Bursts (a replay on connect) make one request.
  var refreshTimers = {};
  // Outputs the reader opened stay open across a re-read (noted at the very moment of the swap).
  var openBeforeSwap = {};
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || !target.id || !target.hasAttribute || !target.hasAttribute("data-refresh-on")) return;
    openBeforeSwap[target.id] = Array.prototype.map.call(target.querySelectorAll("details[open][data-visit]"),
      function (details) { return details.getAttribute("data-visit"); });
  });
  document.addEventListener("htmx:sseMessage", function (event) {
    var kind = event.detail && event.detail.type;
    if (!kind || !window.htmx) return;
    document.querySelectorAll("[data-refresh-on][data-refresh-url][id]").forEach(function (section) {
      if (section.getAttribute("data-refresh-on").split(",").indexOf(kind) < 0) return;
      var id = section.id;
      clearTimeout(refreshTimers[id]);
      refreshTimers[id] = setTimeout(function () {
        var current = document.getElementById(id);
        if (!current) return;
        window.htmx.ajax("GET", current.getAttribute("data-refresh-url"),
          { target: "#" + id, select: "#" + id, swap: "outerHTML" }).then(function () {
          var fresh = document.getElementById(id);
          (openBeforeSwap[id] || []).forEach(function (visit) {
            var details = fresh && fresh.querySelector("details[data-visit='" + visit + "']");
            if (details) details.open = true;
          });
        });
      }, 400);
    });
  });

  // A live log (role=log) that the reader keeps at its end stays at its end as items arrive.
  var following = {};
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var log = event.target;
    if (!log || log.getAttribute("role") !== "log" || !log.id) return;
    following[log.id] = log.scrollHeight - log.scrollTop - log.clientHeight < 60;
  });
  document.addEventListener("htmx:sseMessage", function (event) {
    var log = event.target;
    if (log && log.id && following[log.id]) log.scrollTop = log.scrollHeight;
  });
})();
