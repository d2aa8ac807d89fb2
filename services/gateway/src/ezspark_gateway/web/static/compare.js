// The compare page: fetches each chosen training's generations and hands them to
// EzCharts.overlay, which draws their best-fitness curves on one chart.
"use strict";
(function () {
  var rows = document.querySelectorAll("#compare-runs tr[data-id]");
  if (rows.length === 0 || !window.EzCharts) { return; }

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

  var canvas = document.getElementById("compare-chart"), loading = document.getElementById("compare-loading");
  var raw = canvas.getAttribute("data-threshold");
  Promise.all(Array.prototype.map.call(rows, function (tr) {
    return history(tr.getAttribute("data-id"), 0, []).then(function (reports) {
      return { label: tr.getAttribute("data-label"), reports: reports };
    });
  })).then(function (runs) {
    document.getElementById("compare-chart-figure").hidden = false;
    var drawn = window.EzCharts.overlay("compare-chart", runs, raw === null ? null : Number(raw));
    document.getElementById("compare-chart-figure").hidden = !drawn;
    loading.textContent = drawn ? "" : "None of these trainings has reported a generation yet.";
    loading.hidden = drawn;
  }).catch(function (e) {
    loading.textContent = "The generations could not be loaded (" + e.message + "). Reload to try again.";
  });
})();
