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

  var networkShown = false;
  function showNetwork() {
    var img = document.getElementById("network");
    if (!img || networkShown) { return; }
    networkShown = true;
    img.src = "/api/trainings/" + id + "/best.svg?t=" + Date.now();
    img.hidden = false;
    document.getElementById("network-empty").hidden = true;
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
        text("s-generation", t.latest_report.generation);
        text("s-species", t.latest_report.species);
        text("s-eps", Number(t.latest_report.evaluations_per_s).toFixed(1));
      }
      if (t.error) { var box = document.getElementById("error-box"); box.textContent = t.error; box.hidden = false; }
      var waiting = document.getElementById("waiting-box");
      if (waiting) {
        text("waiting-reason", t.waiting || "");
        waiting.hidden = !t.waiting;
      }
      document.getElementById("download").hidden = !t.has_best_genome;
      document.getElementById("no-genome").hidden = t.has_best_genome;
      if (t.has_best_genome) { showNetwork(); }
      var stop = document.getElementById("stop-form");
      if (stop) {
        stop.hidden = ["queued", "running", "stopping"].indexOf(t.status) < 0;
        stop.querySelector("button").disabled = t.status === "stopping";
      }
      active = ["queued", "running", "stopping"].indexOf(t.status) >= 0;
    });
  }

  function tick() {
    Promise.all([pollTraining(), pollHistory()]).catch(function () { /* retry next tick */ })
      .then(function () { if (active) { setTimeout(tick, POLL_MS); } });
  }
  tick();
})();
