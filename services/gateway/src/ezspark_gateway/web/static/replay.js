// The replay on the training page: asks the gateway for the best genome's replay
// (GET /api/trainings/{id}/replay draws it once, then it comes from the cache), shows the
// GIF with its return and seed, or says why there is none.  While the training is active
// it asks again now and then, so a new best genome gets its own replay.
"use strict";
(function () {
  var section = document.getElementById("replay-section");
  if (!section) { return; }
  var factsUrl = section.getAttribute("data-facts");
  var ACTIVE = ["queued", "running", "stopping"];
  var REFRESH_MS = 30000, WAIT_GENOME_MS = 10000;
  var shown = null;  // the URL of the GIF on show
  var timer = null;

  function el(id) { return document.getElementById(id); }
  function say(text) { el("replay-status").textContent = text; }
  function active() {
    var status = el("status");
    return status ? ACTIVE.indexOf(status.textContent.trim()) >= 0 : false;
  }
  function later(ms) {
    clearTimeout(timer);
    timer = setTimeout(load, ms);
  }
  function num(x) { return (x === null || x === undefined) ? "–" : Number(x).toFixed(2); }

  function show(f) {
    var seeds = section.querySelectorAll(".replay-seed");
    for (var i = 0; i < seeds.length; i++) { seeds[i].textContent = f.seed; }
    el("replay-return").textContent = num(f.episode_return);
    el("replay-fitness").textContent = num(f.best_fitness);
    el("replay-facts").hidden = false;
    el("replay-empty").hidden = true;
    el("replay-caption").textContent = "Genome #" + f.genome_key + " playing " + f.env_id +
      ", game seed " + f.seed + ": return " + num(f.episode_return) + " in " + f.steps +
      " steps" + (f.steps >= f.max_steps ? " (the step limit)" : "") + "; " + f.frames +
      " frames, " + Math.round(f.size_bytes / 1024) + " KiB.";
    if (shown !== f.url) {
      var img = el("replay");
      img.onload = function () { say(""); };
      img.onerror = function () {
        el("replay-figure").hidden = true;
        say("replay unavailable: the image did not load");
      };
      el("replay-figure").hidden = false;  // a hidden lazy image would never load
      img.src = f.url;
      shown = f.url;
    }
    if (active()) { later(REFRESH_MS); }
  }

  function failed(status, detail, retry) {
    if (status === 404 && detail === "no best genome yet") {
      el("replay-empty").hidden = false;
      if (active()) { later(WAIT_GENOME_MS); }
      return;
    }
    if (status === 503) {
      say("Another replay is being drawn; trying again in " + retry + " s…");
      later(retry * 1000);
      return;
    }
    el("replay-figure").hidden = true;
    el("replay-facts").hidden = true;  // no return to compare with
    shown = null;
    var why = String(detail || ("HTTP " + status));
    say(why.indexOf("replay unavailable") === 0 ? why : "replay unavailable: " + why);
  }

  function load() {
    if (!shown) { say("Drawing the replay…"); }
    fetch(factsUrl, { credentials: "same-origin" }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (r.ok) { show(body); return; }
        var retry = parseInt(r.headers.get("Retry-After") || "5", 10);
        failed(r.status, body.detail, retry);
      });
    }).catch(function () {
      say("replay unavailable: the gateway did not answer; trying again shortly");
      later(WAIT_GENOME_MS);
    });
  }

  // training.js announces the first (or a new) best genome as it arrives.  While the
  // section still waits for one, the waiting text goes at once, and a replay already asked
  // for is drawn now instead of at the next poll.  Otherwise (a replay on show, or being
  // drawn, as on a page opened after the first genome) nothing changes: asking again
  // would only draw twice.
  var started = false;
  document.addEventListener("ezspark:best", function () {
    if (shown || el("replay-empty").hidden) { return; }
    el("replay-empty").hidden = true;
    if (started) { later(0); }
  });

  function start() {
    started = true;
    if (el("replay-empty").hidden) { load(); } else if (active()) { later(WAIT_GENOME_MS); }
  }
  // Drawing costs the gateway seconds: only once the reader comes near the replay.
  if ("IntersectionObserver" in window) {
    var seen = new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; })) { seen.disconnect(); start(); }
    }, { rootMargin: "300px" });
    seen.observe(section);
  } else {
    start();
  }
})();
