// The compare page: fetches each chosen training's generations and draws their best-fitness
// curves on one chart (EzCharts.show), one colour per run.
"use strict";
(function () {
  var rows = document.querySelectorAll("#compare-runs tr[data-id]");
  var C = window.EzCharts;
  if (rows.length === 0 || !C) { return; }
  var canvas = document.getElementById("compare-chart"), figure = document.getElementById("compare-chart-figure");
  var loading = document.getElementById("compare-loading"), raw = canvas.getAttribute("data-threshold");
  var limit = raw === null ? null : Number(raw);

  function history(id, since, acc) {
    var url = "/api/trainings/" + id + "/generations?limit=10000&since=" + since;
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(r.status); }
      return r.json();
    }).then(function (page) {
      acc = acc.concat(page.items);
      return page.items.length >= 10000 ? history(id, page.next_since, acc) : acc;
    });
  }

  // `runs`: [{label, reports}]; runs without a generation yet are left out.
  function draw(runs) {
    var series = runs.filter(function (r) { return r.reports.length > 0; }).map(function (r, i) {
      return { name: r.label, color: C.colours[i % C.colours.length],
        dash: i < C.colours.length ? null : [6, 3],
        points: r.reports.map(function (g) { return [g.generation, g.best_fitness]; }) };
    });
    if (series.length === 0) { return false; }
    figure.hidden = false;
    C.show("compare-chart", { kind: "lines", xTitle: "generation", yTitle: "best fitness", series: series,
      threshold: limit === null ? null : { value: limit, label: "threshold " + C.fmt(limit) },
      summary: "Line chart of the best fitness of " + series.length + " trainings. " +
        series.map(function (s) {
          var p = s.points[s.points.length - 1];
          return s.name + ": " + C.fmt(p[1]) + " at generation " + p[0];
        }).join("; ") + "." });
    return true;
  }

  Promise.all(Array.prototype.map.call(rows, function (tr) {
    return history(tr.getAttribute("data-id"), 0, []).then(function (reports) {
      return { label: tr.getAttribute("data-label"), reports: reports };
    });
  })).then(function (runs) {
    var drawn = draw(runs);
    loading.textContent = drawn ? "" : "None of these trainings has reported a generation yet.";
    loading.hidden = drawn;
  }).catch(function (e) {
    loading.textContent = "The generations could not be loaded (" + e.message + "). Reload to try again.";
  });
})();
