/* The swarm and swarm-task pages, live: one EventSource on the swarm's topic (it resumes by Last-Event-ID).
   Events are hints: boxes, bars and badges change colour at once (data-status), and the page's live block is
   re-read from the server (which reads Postgres) a moment later, so the drawings and counts stay exact. */
(function () {
  "use strict";
  var STATUS_OF = {
    SWARM_TASK_STARTED: "running", SWARM_TASK_COMPLETED: "completed", SWARM_TASK_FAILED: "failed",
    SWARM_TASK_SKIPPED: "skipped", STEP_RETRYING: "ready", STEP_CANCELLED: "cancelled"
  };
  var ENDS = ["SWARM_COMPLETED", "SWARM_FAILED"];

  function setStatus(root, key, status) {
    root.querySelectorAll("[data-key]").forEach(function (node) {
      if (node.getAttribute("data-key") === key && node.hasAttribute("data-status")) node.setAttribute("data-status", status);
    });
    root.querySelectorAll("[data-task-status]").forEach(function (badge) {
      if (badge.getAttribute("data-task-status") !== key) return;
      badge.setAttribute("data-status", status);
      badge.textContent = status;
    });
  }

  function recount(root) {
    var counts = {};
    root.querySelectorAll("g.dag-task[data-status]").forEach(function (box) {
      var status = box.getAttribute("data-status");
      counts[status] = (counts[status] || 0) + 1;
    });
    root.querySelectorAll("[data-count]").forEach(function (item) {
      var strong = item.querySelector("strong");
      if (strong) strong.textContent = String(counts[item.getAttribute("data-count")] || 0);
    });
  }

  function badge(root, text, kind) {
    var found = root.querySelector("[data-live-status]");
    if (!found) return;
    found.textContent = text;
    found.className = "badge live-status " + kind;
  }

  function refresher(live) {
    var timer = null;
    return function (soon) {
      if (timer) return;
      timer = window.setTimeout(function () {
        timer = null;
        var url = live.getAttribute("data-refresh");
        if (!url || !window.fetch) return;
        window.fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html", "HX-Request": "true" } })
          .then(function (response) { return response.ok ? response.text() : ""; })
          .then(function (html) {
            if (!html) return;
            var template = document.createElement("template");
            template.innerHTML = html;  // the server's own escaped fragment
            live.replaceChildren(template.content);
            badge(live, live.__closed ? "Finished" : "Live", "ok");
          })
          .catch(function () { /* the next event tries again */ });
      }, soon ? 150 : 1500);
    };
  }

  function connect(host, onEvent) {
    var url = host.getAttribute("data-stream");
    if (!url || !window.EventSource) return;
    var source = new EventSource(url);
    source.onopen = function () { badge(host, "Live", "ok"); };
    source.onerror = function () { badge(host, "Reconnecting…", "warn"); };
    ["forbidden", "reset"].forEach(function (name) {
      source.addEventListener(name, function () { source.close(); window.location.reload(); });
    });
    var names = Object.keys(STATUS_OF).concat(ENDS, ["STEP_OUTPUT", "TOOL_CALL_START", "SWARM_LAUNCHED"]);
    names.forEach(function (name) {
      source.addEventListener(name, function (message) {
        var event;
        try { event = JSON.parse(message.data); } catch (error) { return; }
        if (onEvent(name, event.payload || {}) === "close") source.close();
      });
    });
  }

  var live = document.querySelector("[data-swarm-live]");
  if (live) {
    var refresh = refresher(live);
    connect(live, function (name, payload) {
      if (STATUS_OF[name] && payload.taskKey) {
        setStatus(live, String(payload.taskKey), STATUS_OF[name]);
        recount(live);
        refresh(false);
      }
      if (ENDS.indexOf(name) >= 0) {
        live.__closed = true;
        refresh(true);
        return "close";
      }
      return "";
    });
  }

  var output = document.querySelector("[data-task-output]");
  if (output) {
    var key = output.getAttribute("data-task-output");
    var text = output.querySelector("[data-output]");
    var tools = output.querySelector("[data-tools]");
    connect(output, function (name, payload) {
      if (payload.taskKey !== key) return ENDS.indexOf(name) >= 0 ? "close" : "";
      if (name === "STEP_OUTPUT" && text && typeof payload.text === "string") {
        var empty = output.querySelector("[data-output-empty]");
        if (empty) empty.remove();
        text.textContent += payload.text;  // text, never markup: agent output is untrusted
      } else if (name === "TOOL_CALL_START" && tools) {
        var item = document.createElement("li");
        item.textContent = "called " + String(payload.toolName || "a tool");
        tools.appendChild(item);
      } else if (STATUS_OF[name]) {
        setStatus(document, key, STATUS_OF[name]);
        if (name !== "SWARM_TASK_STARTED" && name !== "STEP_RETRYING") {
          window.setTimeout(function () { window.location.reload(); }, 500);
          return "close";
        }
      }
      return "";
    });
  }
})();
