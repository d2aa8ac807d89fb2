// Charts on canvases, no library: the training page's fitness (best, mean, threshold),
// species sizes stacked by rank (neat-python's speciation plot) and genome size per
// generation; compare.js overlays runs with EzCharts.show.  Every chart has round-valued
// ticks, axis titles, a read-out under the pointer or the arrow keys, an aria-label summary
// and a data table.  EzCharts.model() returns what was drawn, so tests can check it.
"use strict";
window.EzCharts = (function () {
  var FONT_PX = 12, FONT = FONT_PX + "px system-ui, sans-serif";
  var PAD = { l: 58, r: 14, t: 12, b: 44 };
  // Text and marks are at least 3:1 against the white plot (WCAG 1.4.11); gridlines are
  // decoration and stay faint.
  var BG = "#ffffff", INK = "#475467", GRID = "#eaecf0";
  var BEST = "#2563eb", MEAN = "#b54708", THRESHOLD = "#067647";
  var NODES = "#6941c6", CONNS = "#0e7090";
  // Neighbouring bands differ in hue; the 12th and later species share one grey band.
  var BANDS = ["#2563eb", "#dc6803", "#039855", "#7839ee", "#c11574", "#0086c9",
    "#93370d", "#4e5ba6", "#e04f16", "#087443", "#ba24d5"];
  var OTHERS = "#667085";
  var RUNS = ["#2563eb", "#b42318", "#067647", "#6941c6", "#b54708", "#0e7090", "#c11574", "#344054"];
  var TABLE_ROWS = 20, MAX_POINTS = 2000, DOT_SPACING = 10;
  var charts = {}, reports = [];

  // -- numbers ------------------------------------------------------------------------------
  function fmt(v) {
    if (v === null || v === undefined || isNaN(v)) { return "–"; }
    if (Number.isInteger(v)) { return String(v); }
    if (Math.abs(v) >= 10000) { return String(Math.round(v)); }
    return String(parseFloat(v.toPrecision(4)));
  }
  function decimals(step) {
    var d = Math.max(0, -Math.floor(Math.log10(step) + 1e-9)), s = step * Math.pow(10, d);
    return Math.abs(s - Math.round(s)) > 1e-6 ? d + 1 : d;
  }
  function tickLabel(v, step) {
    if (step >= 1e6) { return (v / 1e6).toFixed(decimals(step / 1e6)) + "M"; }
    if (step >= 1e4) { return (v / 1e3).toFixed(decimals(step / 1e3)) + "k"; }
    return v.toFixed(decimals(step));
  }
  // The 1, 2, 2.5 or 5 times a power of ten giving about `count` steps over `span`.
  function niceStep(span, count, integer) {
    var raw = span / Math.max(1, count), mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = integer ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10], k = 0;
    while (raw / mag > steps[k] + 1e-9) { k++; }
    var step = steps[k] * mag;
    return integer ? Math.max(1, Math.round(step)) : step;
  }
  // Ticks at multiples of a nice step; `extend` widens [lo, hi] to the outer ticks.
  function axis(lo, hi, count, integer, extend, title) {
    if (!(hi > lo)) {
      var pad = integer ? 1 : Math.max(1, Math.abs(lo) * 0.1);
      lo -= pad; hi += pad;
    }
    var step = niceStep(hi - lo, count, integer);
    var first = Math.ceil(lo / step - 1e-9), last = Math.floor(hi / step + 1e-9);
    if (extend) {
      first = Math.floor(lo / step + 1e-9); last = Math.ceil(hi / step - 1e-9);
      lo = first * step; hi = last * step;
    }
    var d = decimals(step), ticks = [];
    for (var k = first; k <= last; k++) {
      var v = Number((k * step).toFixed(d));
      ticks.push({ value: v, label: tickLabel(v, step) });
    }
    return { lo: lo, hi: hi, step: step, ticks: ticks, title: title };
  }

  // -- layout and drawing -------------------------------------------------------------------
  function union(series) {
    var seen = {}, xs = [];
    series.forEach(function (s) {
      s.points.forEach(function (p) { if (!seen[p[0]]) { seen[p[0]] = true; xs.push(p[0]); } });
    });
    return xs.sort(function (a, b) { return a - b; });
  }
  // The value of series `s` at generation `x`: its last point at or before x, none past its end.
  function valueAt(s, x) {
    var pts = s.points, lo = 0, hi = pts.length - 1, found = null;
    if (pts.length === 0 || x > pts[hi][0]) { return null; }
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (pts[mid][0] <= x) { found = pts[mid][1]; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found;
  }
  function layout(canvas, spec) {
    var w = canvas.clientWidth, h = canvas.clientHeight, xs = union(spec.series);
    var lo = Infinity, hi = -Infinity, stacks = null;
    if (spec.kind === "stacked") {
      stacks = xs.map(function (x) {
        var base = 0;
        return spec.series.map(function (s) { var v = valueAt(s, x) || 0; base += v; return [base - v, base]; });
      });
      lo = 0;
      stacks.forEach(function (st) { hi = Math.max(hi, st.length ? st[st.length - 1][1] : 0); });
    } else {
      spec.series.forEach(function (s) {
        s.points.forEach(function (p) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); });
      });
    }
    if (spec.threshold) { lo = Math.min(lo, spec.threshold.value); hi = Math.max(hi, spec.threshold.value); }
    if (spec.zeroY) { lo = Math.min(lo, 0); }
    var plot = { l: PAD.l, t: PAD.t, w: Math.max(40, w - PAD.l - PAD.r), h: Math.max(40, h - PAD.t - PAD.b) };
    var xAxis = axis(xs[0], Math.max(xs[xs.length - 1], xs[0] + 1),
      Math.max(2, Math.floor(plot.w / 70)), true, false, spec.xTitle);
    var yAxis = axis(lo, hi, Math.max(2, Math.floor(plot.h / 45)), spec.integerY, true, spec.yTitle);
    return { width: w, height: h, plot: plot, x: xAxis, y: yAxis, xs: xs, stacks: stacks };
  }
  function sx(L, v) { return L.plot.l + (v - L.x.lo) / (L.x.hi - L.x.lo) * L.plot.w; }
  function sy(L, v) { return L.plot.t + L.plot.h - (v - L.y.lo) / (L.y.hi - L.y.lo) * L.plot.h; }

  function drawAxes(ctx, L) {
    var p = L.plot;
    ctx.font = FONT; ctx.lineWidth = 1; ctx.strokeStyle = GRID; ctx.fillStyle = INK;
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    L.y.ticks.forEach(function (t) {
      var y = Math.round(sy(L, t.value)) + 0.5;
      ctx.beginPath(); ctx.moveTo(p.l, y); ctx.lineTo(p.l + p.w, y); ctx.stroke();
      ctx.fillText(t.label, p.l - 6, y);
    });
    ctx.textAlign = "center"; ctx.textBaseline = "top"; ctx.strokeStyle = INK;
    L.x.ticks.forEach(function (t) {
      var x = Math.round(sx(L, t.value)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, p.t + p.h); ctx.lineTo(x, p.t + p.h + 4); ctx.stroke();
      ctx.fillText(t.label, x, p.t + p.h + 6);
    });
    ctx.beginPath(); ctx.moveTo(p.l + 0.5, p.t); ctx.lineTo(p.l + 0.5, p.t + p.h + 0.5);
    ctx.lineTo(p.l + p.w, p.t + p.h + 0.5); ctx.stroke();
    ctx.textBaseline = "bottom";
    ctx.fillText(L.x.title, p.l + p.w / 2, L.height - 2);
    ctx.save(); ctx.translate(2, p.t + p.h / 2); ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "top"; ctx.fillText(L.y.title, 0, 0); ctx.restore();
  }
  function drawLines(ctx, L, spec) {
    spec.series.forEach(function (s) {
      ctx.strokeStyle = s.color; ctx.fillStyle = s.color; ctx.lineWidth = 2;
      ctx.setLineDash(s.dash || []); ctx.beginPath();
      s.points.forEach(function (pt, i) {
        if (i === 0) { ctx.moveTo(sx(L, pt[0]), sy(L, pt[1])); } else { ctx.lineTo(sx(L, pt[0]), sy(L, pt[1])); }
      });
      ctx.stroke(); ctx.setLineDash([]);
      if (L.plot.w / s.points.length >= DOT_SPACING) {  // so a run with one generation still shows
        s.points.forEach(function (pt) {
          ctx.beginPath(); ctx.arc(sx(L, pt[0]), sy(L, pt[1]), 2.5, 0, 2 * Math.PI); ctx.fill();
        });
      }
    });
  }
  function drawBands(ctx, L, spec) {
    var half = L.xs.length === 1 ? 8 : 0;  // one generation: a bar instead of an area
    spec.series.forEach(function (s, b) {
      ctx.beginPath();
      L.xs.forEach(function (x, i) {
        var X = sx(L, x), Y = sy(L, L.stacks[i][b][1]);
        if (i === 0) { ctx.moveTo(X - half, Y); } else { ctx.lineTo(X, Y); }
        if (half) { ctx.lineTo(X + half, Y); }
      });
      for (var i = L.xs.length - 1; i >= 0; i--) {
        ctx.lineTo(sx(L, L.xs[i]) + half, sy(L, L.stacks[i][b][0]));
        if (half) { ctx.lineTo(sx(L, L.xs[i]) - half, sy(L, L.stacks[i][b][0])); }
      }
      ctx.closePath(); ctx.fillStyle = s.color; ctx.fill();
      ctx.strokeStyle = BG; ctx.lineWidth = 1; ctx.stroke();  // a seam between bands
    });
  }
  function drawThreshold(ctx, L, t) {
    var y = sy(L, t.value);
    ctx.strokeStyle = THRESHOLD; ctx.fillStyle = THRESHOLD; ctx.lineWidth = 2; ctx.setLineDash([8, 4]);
    ctx.beginPath(); ctx.moveTo(L.plot.l, y); ctx.lineTo(L.plot.l + L.plot.w, y); ctx.stroke();
    ctx.setLineDash([]); ctx.font = FONT; ctx.textBaseline = "top";
    // The label sits on a white patch above the line (below it at the top of the plot).
    var tw = ctx.measureText(t.label).width, tx = L.plot.l + L.plot.w - 4 - tw;
    var ty = y - L.plot.t < FONT_PX + 6 ? y + 3 : y - FONT_PX - 5;
    ctx.fillStyle = BG; ctx.fillRect(tx - 2, ty - 1, tw + 4, FONT_PX + 3);
    ctx.fillStyle = THRESHOLD; ctx.fillText(t.label, tx, ty);
  }
  function drawCursor(ctx, L, spec, i) {
    var x = L.xs[i], X = sx(L, x);
    ctx.strokeStyle = INK; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(X, L.plot.t); ctx.lineTo(X, L.plot.t + L.plot.h); ctx.stroke();
    if (spec.kind === "stacked") { return; }
    spec.series.forEach(function (s) {
      var v = valueAt(s, x);
      if (v === null) { return; }
      ctx.fillStyle = s.color; ctx.strokeStyle = BG; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(X, sy(L, v), 5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    });
  }
  function draw(id) {
    var c = charts[id], canvas = c.canvas;
    if (!c.spec || canvas.clientWidth === 0) { return; }
    var L = c.layout = layout(canvas, c.spec), dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(L.width * dpr); canvas.height = Math.round(L.height * dpr);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = BG; ctx.fillRect(0, 0, L.width, L.height);
    drawAxes(ctx, L);
    if (c.spec.kind === "stacked") { drawBands(ctx, L, c.spec); } else { drawLines(ctx, L, c.spec); }
    if (c.spec.threshold) { drawThreshold(ctx, L, c.spec.threshold); }
    if (c.cursor !== null) { c.cursor = Math.min(c.cursor, L.xs.length - 1); drawCursor(ctx, L, c.spec, c.cursor); }
    showTip(c);
  }

  // -- read-outs: tooltip, legend, table ----------------------------------------------------
  function tipLines(spec, x) {
    if (spec.describe) { return spec.describe(x); }
    return spec.series.map(function (s) { return [s.name + ": " + fmt(valueAt(s, x)), s.color]; });
  }
  function showTip(c) {
    var tip = c.tip, L = c.layout;
    if (!tip) { return; }
    if (c.cursor === null || !L) { tip.hidden = true; return; }
    var x = L.xs[c.cursor];
    tip.textContent = "";
    [[L.x.title.charAt(0).toUpperCase() + L.x.title.slice(1) + " " + x, null]]
      .concat(tipLines(c.spec, x)).forEach(function (line) {
        var row = document.createElement("div");
        if (line[1]) {
          var key = document.createElement("span");
          key.className = "chart-key"; key.style.borderColor = line[1]; row.appendChild(key);
        }
        row.appendChild(document.createTextNode(line[0])); tip.appendChild(row);
      });
    tip.hidden = false;
    var X = sx(L, x), room = c.canvas.clientWidth, tw = tip.offsetWidth;
    tip.style.left = (X + 12 + tw <= room ? X + 12 : Math.max(0, X - 12 - tw)) + "px";
    tip.style.top = L.plot.t + "px";
  }
  function legend(c) {
    if (!c.legend) { return; }
    c.legend.textContent = "";
    (c.spec.legend || c.spec.series).forEach(function (s) {
      var li = document.createElement("li"), key = document.createElement("span");
      key.className = "chart-key" + (s.dash ? " dashed" : "") + (s.band ? " band" : "");
      key.style.borderColor = s.color;
      li.appendChild(key); li.appendChild(document.createTextNode(s.name)); c.legend.appendChild(li);
    });
  }
  // The spec's table, or by default one row per generation and a column per series.
  function tableOf(spec) {
    if (spec.table) { return spec.table; }
    return { columns: [spec.xTitle].concat(spec.series.map(function (s) { return s.name; })),
      rows: union(spec.series).map(function (x) {
        return [x].concat(spec.series.map(function (s) { return valueAt(s, x); })); }) };
  }
  function table(c) {
    if (!c.table) { return; }
    var t = tableOf(c.spec), rows = t.rows.slice(-TABLE_ROWS), el = c.table;
    el.textContent = "";
    var cap = el.createCaption();
    cap.textContent = rows.length < t.rows.length
      ? "The last " + rows.length + " of " + t.rows.length + " rows" : "All " + rows.length + " rows";
    var head = el.createTHead().insertRow();
    t.columns.forEach(function (name) {
      var th = document.createElement("th"); th.scope = "col"; th.textContent = name; head.appendChild(th);
    });
    var body = el.createTBody();
    rows.forEach(function (r) {
      var tr = body.insertRow();
      r.forEach(function (v) { tr.insertCell().textContent = typeof v === "number" || v === null ? fmt(v) : v; });
    });
  }

  // -- wiring -------------------------------------------------------------------------------
  function nearest(L, px) {
    var best = 0;
    L.xs.forEach(function (x, i) { if (Math.abs(sx(L, x) - px) < Math.abs(sx(L, L.xs[best]) - px)) { best = i; } });
    return best;
  }
  function bind(id) {
    var canvas = document.getElementById(id);
    if (!canvas) { return null; }
    var c = { canvas: canvas, cursor: null, spec: null, layout: null,
      tip: document.getElementById(id + "-tip"), legend: document.getElementById(id + "-legend"),
      table: document.getElementById(id + "-table") };
    function point(e) {
      if (!c.layout) { return; }
      c.cursor = nearest(c.layout, e.clientX - canvas.getBoundingClientRect().left); draw(id);
    }
    canvas.addEventListener("pointermove", point);
    canvas.addEventListener("pointerdown", point);
    canvas.addEventListener("pointerleave", function () {
      if (document.activeElement !== canvas) { c.cursor = null; draw(id); }
    });
    canvas.addEventListener("focus", function () {
      if (c.cursor === null && c.layout) { c.cursor = c.layout.xs.length - 1; draw(id); }
    });
    canvas.addEventListener("blur", function () { c.cursor = null; draw(id); });
    canvas.addEventListener("keydown", function (e) {
      if (!c.layout) { return; }
      var n = c.layout.xs.length, i = c.cursor === null ? n - 1 : c.cursor;
      var moves = { ArrowLeft: i - 1, ArrowRight: i + 1, Home: 0, End: n - 1, PageUp: i - 10, PageDown: i + 10 };
      if (!(e.key in moves)) { return; }
      e.preventDefault(); c.cursor = Math.max(0, Math.min(n - 1, moves[e.key])); draw(id);
    });
    return (charts[id] = c);
  }
  function show(id, spec) {
    var c = charts[id] || bind(id);
    if (!c) { return; }
    c.spec = spec;
    c.canvas.setAttribute("aria-label", spec.summary);
    draw(id); legend(c); table(c);
  }
  var pending = false;
  window.addEventListener("resize", function () {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; Object.keys(charts).forEach(draw); });
  });

  // -- the training page --------------------------------------------------------------------
  function col(data, key) { return data.filter(function (r) { return r[key] !== null && r[key] !== undefined; }); }
  function pts(data, key) { return data.map(function (r) { return [r.generation, r[key]]; }); }
  function span(data) {
    return "generations " + data[0].generation + " to " + data[data.length - 1].generation;
  }
  function fitnessSpec(data, threshold) {
    var last = data[data.length - 1], top = data[0];
    data.forEach(function (r) { if (r.best_fitness > top.best_fitness) { top = r; } });
    var series = [{ name: "best", color: BEST, points: pts(data, "best_fitness") },
      { name: "mean", color: MEAN, dash: [6, 3], points: pts(data, "mean_fitness") }];
    var t = threshold === null ? null : { value: threshold, label: "threshold " + fmt(threshold) };
    return { kind: "lines", xTitle: "generation", yTitle: "fitness", series: series, threshold: t,
      legend: series.concat(t ? [{ name: t.label, color: THRESHOLD, dash: [8, 4] }] : []),
      summary: "Line chart of best and mean fitness, " + span(data) + ". Latest: best " +
        fmt(last.best_fitness) + ", mean " + fmt(last.mean_fitness) + ". Highest best " +
        fmt(top.best_fitness) + " at generation " + top.generation +
        (t ? ". Threshold " + fmt(threshold) : "") + "." };
  }
  function speciesSpec(data) {
    var sized = col(data, "species_sizes");
    var table = { columns: ["generation", "species", "sizes, largest first"], rows: data.map(function (r) {
      return [r.generation, r.species, r.species_sizes ? r.species_sizes.join(", ") : "–"]; }) };
    var last = data[data.length - 1];
    if (sized.length === 0) {  // reports from evolvers that did not send the sizes
      return { kind: "lines", xTitle: "generation", yTitle: "species", integerY: true, zeroY: true,
        series: [{ name: "species", color: BEST, points: pts(data, "species") }], table: table,
        summary: "Line chart of the number of species, " + span(data) + ". Latest: " + last.species + "." };
    }
    var ranks = 0;
    sized.forEach(function (r) { ranks = Math.max(ranks, r.species_sizes.length); });
    var series = [];
    for (var b = 0; b < Math.min(ranks, BANDS.length + 1); b++) {
      var others = b === BANDS.length;
      series.push({ name: others ? "species 12 and smaller" : "species " + (b + 1), band: true,
        color: others ? OTHERS : BANDS[b], points: sized.map(function (r) {
          var s = r.species_sizes;
          return [r.generation, others ? s.slice(b).reduce(function (a, v) { return a + v; }, 0) : (s[b] || 0)];
        }) });
    }
    var lastSized = sized[sized.length - 1];
    return { kind: "stacked", xTitle: "generation", yTitle: "genomes", integerY: true, series: series,
      legend: [{ name: "one band per species, largest at the bottom", color: BANDS[0], band: true }],
      describe: function (x) {
        var r = sized.filter(function (q) { return q.generation === x; })[0], s = r ? r.species_sizes : [];
        var shown = s.slice(0, 12).join(", ") + (s.length > 12 ? ", …" : "");
        return [[s.length + " species: " + shown, null]];
      },
      table: table,
      summary: "Stacked area chart of species sizes, " + span(sized) + ", largest species at the bottom. Latest: " +
        lastSized.species_sizes.length + " species of sizes " + lastSized.species_sizes.join(", ") + "." };
  }
  function sizeSpec(data) {
    var sized = col(data, "mean_nodes");
    if (sized.length === 0) { return null; }
    var last = sized[sized.length - 1];
    var series = [{ name: "mean nodes", color: NODES, points: pts(sized, "mean_nodes") },
      { name: "best nodes", color: NODES, dash: [6, 3], points: pts(col(sized, "best_nodes"), "best_nodes") },
      { name: "mean connections", color: CONNS, points: pts(col(sized, "mean_connections"), "mean_connections") },
      { name: "best connections", color: CONNS, dash: [6, 3], points: pts(col(sized, "best_connections"), "best_connections") }];
    return { kind: "lines", xTitle: "generation", yTitle: "genes", zeroY: true, series: series,
      summary: "Line chart of genome size, " + span(sized) + ". Latest: mean " + fmt(last.mean_nodes) +
        " nodes and " + fmt(last.mean_connections) + " connections; best genome " + fmt(last.best_nodes) +
        " nodes and " + fmt(last.best_connections) + " connections.",
      table: { columns: ["generation", "mean nodes", "best nodes", "mean connections", "best connections"],
        rows: sized.map(function (r) {
          return [r.generation, r.mean_nodes, r.best_nodes, r.mean_connections, r.best_connections]; }) } };
  }
  // Keeps at most MAX_POINTS by taking every k-th report (and always the last one).
  function sampled() {
    if (reports.length <= MAX_POINTS) { return reports; }
    var k = Math.ceil(reports.length / MAX_POINTS), out = [];
    for (var i = 0; i < reports.length; i += k) { out.push(reports[i]); }
    if (out[out.length - 1] !== reports[reports.length - 1]) { out.push(reports[reports.length - 1]); }
    return out;
  }
  function unhide(id, on) { var el = document.getElementById(id); if (el) { el.hidden = !on; } }
  function threshold(id) {
    var el = document.getElementById(id), raw = el ? el.getAttribute("data-threshold") : null;
    return raw === null || raw === "" ? null : Number(raw);
  }
  function drawTraining() {
    if (!document.getElementById("chart") || reports.length === 0) { return; }
    var data = sampled(), size = sizeSpec(data);
    unhide("chart-empty", false); unhide("charts", true);
    show("chart", fitnessSpec(data, threshold("chart")));
    show("species-chart", speciesSpec(data));
    unhide("size-chart-figure", size !== null); unhide("size-empty", size === null);
    if (size) { show("size-chart", size); }
  }
  // `items`: items of GET /api/trainings/{id}/generations, oldest first.
  function add(items) {
    items.forEach(function (r) { reports.push(r); });
    if (items.length > 0) { drawTraining(); }
  }

  // -- for tests ----------------------------------------------------------------------------
  function snapshot(c) {
    var L = c.layout;
    return { kind: c.spec.kind, summary: c.spec.summary, fontPx: FONT_PX, dpr: window.devicePixelRatio || 1,
      width: L.width, height: L.height, backing: [c.canvas.width, c.canvas.height], plot: L.plot,
      x: L.x, y: L.y, threshold: c.spec.threshold || null, cursor: c.cursor,
      series: c.spec.series.map(function (s) { return { name: s.name, color: s.color, dash: s.dash || null, points: s.points }; }),
      colors: { background: BG, text: INK, threshold: THRESHOLD,
        palette: BANDS.concat([OTHERS, BEST, MEAN, NODES, CONNS], RUNS) } };
  }
  function model() {
    var out = {};
    Object.keys(charts).forEach(function (id) { if (charts[id].layout) { out[id] = snapshot(charts[id]); } });
    return out;
  }
  // CSS pixel position of (generation, value) on chart `id`, relative to its canvas.
  function toPixel(id, x, y) { var L = charts[id].layout; return { x: sx(L, x), y: sy(L, y) }; }

  return { add: add, show: show, model: model, toPixel: toPixel, fmt: fmt, colours: RUNS };
})();
