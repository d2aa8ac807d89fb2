// Live view of one training: polls the JSON API and draws best/mean fitness and species per
// generation on canvases, and the best network (SVG from the API) once there is one. No library: a few hundred points of line chart do not need one.
"use strict";
(function () {
  var root = document.getElementById("training");
  if (!root) { return; }
  var id = root.getAttribute("data-id");
  var canvas = document.getElementById("chart");
  var points = [];  // [generation, best, mean, species]
  var since = 0;
  var active = root.getAttribute("data-active") === "true";
  var POLL_MS = 2000, MAX_POINTS = 2000;

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

  // Keeps at most MAX_POINTS by taking every k-th point (and always the last one).
  function sampled() {
    if (points.length <= MAX_POINTS) { return points; }
    var k = Math.ceil(points.length / MAX_POINTS), out = [];
    for (var i = 0; i < points.length; i += k) { out.push(points[i]); }
    if (out[out.length - 1] !== points[points.length - 1]) { out.push(points[points.length - 1]); }
    return out;
  }

  // Line chart of the given columns of `data` ([generation, v1, v2, …]) on one canvas.
  function chart(el, data, series) {
    var ctx = el.getContext("2d"), w = el.width, h = el.height, pad = 48;
    var x0 = data[0][0], x1 = Math.max(data[data.length - 1][0], x0 + 1);
    var lo = Infinity, hi = -Infinity;
    data.forEach(function (p) {
      series.forEach(function (s) { lo = Math.min(lo, p[s[0]]); hi = Math.max(hi, p[s[0]]); });
    });
    if (hi === lo) { hi += 1; lo -= 1; }
    function sx(g) { return pad + (g - x0) / (x1 - x0) * (w - 2 * pad); }
    function sy(v) { return h - pad + (lo - v) / (hi - lo) * (h - 2 * pad); }
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = "#d0d5dd"; ctx.fillStyle = "#667085"; ctx.font = "12px sans-serif";
    ctx.beginPath(); ctx.moveTo(pad, pad / 2); ctx.lineTo(pad, h - pad); ctx.lineTo(w - pad / 2, h - pad);
    ctx.stroke();
    ctx.fillText(fmt(hi), 2, pad); ctx.fillText(fmt(lo), 2, h - pad);
    ctx.fillText("gen " + x0, pad, h - pad + 16);
    ctx.fillText("gen " + x1, w - pad - 40, h - pad + 16);
    series.forEach(function (s) {
      ctx.strokeStyle = s[1]; ctx.lineWidth = 2; ctx.beginPath();
      data.forEach(function (p, i) {
        if (i === 0) { ctx.moveTo(sx(p[0]), sy(p[s[0]])); } else { ctx.lineTo(sx(p[0]), sy(p[s[0]])); }
      });
      ctx.stroke();
      // A dot per generation, so a run with one generation still shows its point.
      ctx.fillStyle = s[1];
      data.forEach(function (p) {
        ctx.beginPath(); ctx.arc(sx(p[0]), sy(p[s[0]]), 2.5, 0, 2 * Math.PI); ctx.fill();
      });
    });
  }

  function draw() {
    if (!canvas || points.length === 0) { return; }
    canvas.hidden = false;
    document.getElementById("chart-empty").hidden = true;
    var data = sampled();
    chart(canvas, data, [[1, "#2563eb"], [2, "#f79009"]]);
    var speciesCanvas = document.getElementById("species-chart");
    if (speciesCanvas) { speciesCanvas.hidden = false; chart(speciesCanvas, data, [[3, "#12b76a"]]); }
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
      page.items.forEach(function (r) {
        points.push([r.generation, r.best_fitness, r.mean_fitness, r.species]);
      });
      since = page.next_since;
      if (page.items.length > 0) { draw(); }
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
