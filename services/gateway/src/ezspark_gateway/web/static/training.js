// Live view of one training: polls the JSON API, updates the status and figures, hands new
// generation reports to charts.js (EzCharts), and shows the best network (SVG from the API).
"use strict";
(function () {
  var root = document.getElementById("training");
  if (!root) { return; }
  var id = root.getAttribute("data-id");
  var since = 0;
  var active = root.getAttribute("data-active") === "true";
  var POLL_MS = 2000;

  function text(elId, value) {
    var el = document.getElementById(elId);
    if (el) { el.textContent = value; }
  }
  function fmt(x, digits) {
    return (x === null || x === undefined) ? "–" : Number(x).toPrecision(digits || 4);
  }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(r.status); }
      return r.json();
    });
  }

  // The best network so far: drawn when the first champion arrives, redrawn whenever the
  // best fitness changes (the gateway stores a better champion with each such report).
  var networkBest = null;
  function showNetwork(t) {
    var img = document.getElementById("network");
    if (!img) { return; }
    if (!t.has_best_genome) {
      if (["finished", "failed", "stopped"].indexOf(t.status) >= 0) {
        text("network-empty", "This training ended without a best genome.");
      }
      return;
    }
    if (t.best_fitness === networkBest) { return; }
    networkBest = t.best_fitness;
    img.src = "/api/trainings/" + id + "/best.svg?t=" + Date.now();
    document.getElementById("network-figure").hidden = false;
    document.getElementById("network-empty").hidden = true;
    // replay.js would otherwise go on saying "once the training has a best genome".
    document.dispatchEvent(new CustomEvent("ezspark:best"));
    text("network-caption", t.best_fitness === null ? "" : "Best fitness so far " + fmt(t.best_fitness) + ".");
  }

  // Durations as the server writes them (_health.html's dur macro).
  function dur(s) {
    if (s === null || s === undefined) { return "–"; }
    s = Math.max(0, Math.floor(s));
    if (s < 60) { return s + " s"; }
    if (s < 3600) { return Math.floor(s / 60) + " min " + (s % 60) + " s"; }
    if (s < 86400) { return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min"; }
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }
  function when(epoch) {
    return (epoch === null || epoch === undefined) ? "–" : new Date(epoch * 1000).toLocaleString();
  }
  function localTimes() {
    document.querySelectorAll("#health time[data-epoch]").forEach(function (el) {
      el.textContent = when(parseFloat(el.getAttribute("data-epoch")));
    });
  }

  function showHealth(t) {
    var h = t.health;
    if (!h) { return; }
    var box = document.getElementById("health");
    if (!box) { return; }
    box.className = "health health-" + h.state;
    var tag = document.getElementById("h-state");
    tag.textContent = h.state; tag.className = "state-tag state-" + h.state;
    var head = document.getElementById("state-tag");
    if (head) {
      head.textContent = h.state; head.className = "state-tag state-" + h.state;
      head.hidden = h.state === t.status;
    }
    document.getElementById("h-stalled").hidden = !h.stalled;
    text("h-silence", dur(h.last_event_age_s === null ? h.elapsed_s : h.last_event_age_s));
    text("h-stall-after", dur(h.stalled_after_s));
    var alone = t.config.alone_training_iterations;
    text("h-phase", h.phase === "local" ? "local (alone phase: generations 1–" + alone + ")" : (h.phase || "–"));
    text("h-generations", h.generations_done + " done" + (h.generations_total ? " of " + h.generations_total : ""));
    var running = "–";
    if (h.running_generation) {
      running = "generation " + h.running_generation;
      if (h.tasks_total) { running += ": " + h.tasks_done + " of " + h.tasks_total + " tasks"; }
    }
    text("h-running", running);
    var bar = document.getElementById("h-tasks");
    bar.hidden = !h.tasks_total;
    if (h.tasks_total) { bar.max = h.tasks_total; bar.value = h.tasks_done; }
    var evs = "–";
    if (h.evaluators_answering !== null || h.evaluators_serving !== null) {
      evs = (h.evaluators_answering === null ? "–" : h.evaluators_answering) + " answering, " +
        (h.evaluators_serving === null ? "–" : h.evaluators_serving) + " serving " + t.gym_game_name;
    }
    text("h-evaluators", evs);
    var threshold = t.config.fitness_threshold;
    text("h-eta", h.eta_s === null ? "–" : dur(h.eta_s) + (threshold !== null && threshold !== undefined ? " at most" : ""));
    text("h-age", h.last_event_age_s === null ? "none yet" : dur(h.last_event_age_s) + " ago");
    text("h-elapsed", dur(h.elapsed_s));
    text("h-finished", h.finished_at ? when(h.finished_at) : "–");
    text("h-reason", h.finish_reason_text || "–");
    text("h-env-errors", h.env_errors_text || "none in the latest generation");
    text("h-safeness", h.safeness_text || "no disagreeing re-check in the latest generation");
    text("s-generation", h.generations_done + (h.generations_total ? " of " + h.generations_total : ""));
    // A stalled or waiting run's rate is history, not a live figure.
    var live = h.state === "running" || h.state === "stopping";
    var eps = document.getElementById("s-eps-box");
    if (eps) { eps.className = (live || !t.latest_report) ? "" : "stale"; }
    text("s-eps-note", (!live && t.latest_report) ? "(last measured)" : "");
  }

  function pollHistory() {
    return getJSON("/api/trainings/" + id + "/generations?since=" + since).then(function (page) {
      if (window.EzCharts) { window.EzCharts.add(page.items); }
      since = page.next_since;
      if (page.items.length >= 1000) { return pollHistory(); }  // catch up on long runs
      return null;
    });
  }

  function pollTraining() {
    return getJSON("/api/trainings/" + id).then(function (t) {
      var status = document.getElementById("status");
      status.textContent = t.status; status.className = "status status-" + t.status;
      text("s-best", fmt(t.best_fitness));
      if (t.latest_report) {
        text("s-species", t.latest_report.species);
        text("s-eps", Number(t.latest_report.evaluations_per_s).toFixed(1));
      }
      if (t.error) { var box = document.getElementById("error-box"); box.textContent = t.error; box.hidden = false; }
      var waiting = document.getElementById("waiting-box");
      if (waiting) {
        text("waiting-reason", t.waiting || "");
        waiting.hidden = !t.waiting;
      }
      var download = document.getElementById("download");
      if (download) { download.hidden = !t.has_best_genome; }
      var noGenome = document.getElementById("no-genome");
      if (noGenome) { noGenome.hidden = t.has_best_genome; }
      showNetwork(t);
      showHealth(t);
      var stop = document.getElementById("stop-form");
      if (stop) {
        stop.hidden = ["queued", "running", "stopping"].indexOf(t.status) < 0;
        stop.querySelector("button").disabled = t.status === "stopping";
      }
      active = ["queued", "running", "stopping"].indexOf(t.status) >= 0;
    });
  }

  localTimes();
  function tick() {
    Promise.all([pollTraining(), pollHistory()]).catch(function () { /* retry next tick */ })
      .then(function () { if (active) { setTimeout(tick, POLL_MS); } });
  }
  tick();
})();
