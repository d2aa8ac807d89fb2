// The training page's charts: best/mean fitness and species per generation on canvases.
// No library: a few hundred points of line chart do not need one.  training.js feeds it the
// generation reports as they arrive (EzCharts.add) and it redraws.
"use strict";
window.EzCharts = (function () {
  var points = [];  // [generation, best, mean, species]
  var MAX_POINTS = 2000;

  function fmt(x, digits) {
    return (x === null || x === undefined) ? "–" : Number(x).toPrecision(digits || 4);
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
    var canvas = document.getElementById("chart");
    if (!canvas || points.length === 0) { return; }
    canvas.hidden = false;
    document.getElementById("chart-empty").hidden = true;
    var data = sampled();
    chart(canvas, data, [[1, "#2563eb"], [2, "#f79009"]]);
    var speciesCanvas = document.getElementById("species-chart");
    if (speciesCanvas) { speciesCanvas.hidden = false; chart(speciesCanvas, data, [[3, "#12b76a"]]); }
  }

  // `reports`: items of GET /api/trainings/{id}/generations, oldest first.
  function add(reports) {
    reports.forEach(function (r) {
      points.push([r.generation, r.best_fitness, r.mean_fitness, r.species]);
    });
    if (reports.length > 0) { draw(); }
  }

  return { add: add };
})();
