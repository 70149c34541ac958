// jobstack console: live regions. Each element with data-live="URL" is re-fetched every
// data-refresh-ms (on <body>) and its HTML replaced by the server's rendering, which escapes every value.
// No inline script anywhere: the Content-Security-Policy allows this file only.
"use strict";
(function () {
  const every = Number(document.body.dataset.refreshMs || 5000);
  const state = document.getElementById("live-state");
  const regions = Array.from(document.querySelectorAll("[data-live]"));
  let paused = false;
  let stopped = false;

  function say(text, css) {
    if (!state) return;
    state.textContent = text;
    state.className = "live-state " + (css || "");
  }

  async function refresh(region) {
    const response = await fetch(region.dataset.live, {
      credentials: "same-origin",
      headers: { "X-Requested-With": "jobstack-console" },
    });
    if (response.status === 403) {
      stopped = true;
      say("stopped: the console no longer accepts this page (restarted?); reload", "bad");
      return;
    }
    if (!response.ok) {
      say("refresh failed (" + response.status + "); retrying", "bad");
      return;
    }
    const html = await response.text();
    if (region.querySelector("details[open]")) return; // don't close what the operator opened
    region.innerHTML = html;
    region.dataset.refreshes = String(Number(region.dataset.refreshes || 0) + 1);
    say("live", "ok");
  }

  async function tick() {
    if (stopped) return;
    if (!paused && !document.hidden) {
      try {
        await Promise.all(regions.map(refresh));
      } catch (err) {
        say("refresh failed; retrying", "bad");
      }
    }
    window.setTimeout(tick, every);
  }

  if (regions.length && state) {
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "pause";
    // This page's refresh only: "pause" read like `jobstack pause`, which stops the worker.
    toggle.textContent = "stop refreshing";
    toggle.addEventListener("click", function () {
      paused = !paused;
      toggle.textContent = paused ? "refresh again" : "stop refreshing";
      say(paused ? "not refreshing" : "live", paused ? "" : "ok");
    });
    state.after(toggle);
    say("live", "ok");
    window.setTimeout(tick, every);
  }
})();
