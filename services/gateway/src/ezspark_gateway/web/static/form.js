// The training form, improved when scripts run (it works without them too):
// - inline validation: the server checks the fields with the same rules as creation
//   (POST /api/validate) and the messages appear next to each field, with aria-invalid;
// - picking an environment from the list fills in input_size and output_size;
// - a run with no stopping point asks for confirmation before it is sent;
// - the error summary (or the warning) gets the focus, if autofocus did not give it.
"use strict";
(function () {
  var form = document.getElementById("config-form");
  if (!form) { return; }
  var timer = null;
  var sizesNode = document.getElementById("env-sizes");
  var envSizes = sizesNode ? JSON.parse(sizesNode.textContent) : {};

  function show(errors) {
    form.querySelectorAll("[data-error-for]").forEach(function (el) {
      var key = el.getAttribute("data-error-for");
      var messages = errors[key] || [];
      el.textContent = messages.join("; ");
      var field = el.closest(".field");
      if (field) { field.classList.toggle("invalid", messages.length > 0); }
      var input = form.elements.namedItem(key);
      if (input && input.setAttribute) {
        if (messages.length) { input.setAttribute("aria-invalid", "true"); }
        else { input.removeAttribute("aria-invalid"); }
      }
    });
  }

  function validate() {
    var body = new URLSearchParams(new FormData(form));
    fetch("/api/validate", {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (resp) {
      if (resp.ok) { show({}); return null; }
      if (resp.status !== 422) { return null; }
      return resp.json().then(function (data) {
        var byKey = {};
        (data.errors || []).forEach(function (e) {
          (byKey[e.field] = byKey[e.field] || []).push(e.message);
        });
        show(byKey);
      });
    }).catch(function () { /* offline: the server checks again on submit */ });
  }

  function fillSizes() {
    var sizes = envSizes[form.elements.gym_game_name.value.trim()];
    if (!sizes) { return; }
    form.elements.input_size.value = String(sizes[0]);
    form.elements.output_size.value = String(sizes[1]);
  }

  function unbounded() {
    var limit = Number(form.getAttribute("data-unbounded"));
    var generations = Number(form.elements.generations.value);
    var threshold = form.elements.fitness_threshold.value.trim();
    var confirmBox = form.elements.namedItem(form.getAttribute("data-confirm"));
    return generations > limit && threshold === "" && !(confirmBox && confirmBox.checked);
  }

  form.addEventListener("input", function (event) {
    if (event.target.name === "gym_game_name") { fillSizes(); }
    clearTimeout(timer);
    timer = setTimeout(validate, 300);
  });
  form.addEventListener("change", function (event) {
    if (event.target.name === "gym_game_name") { fillSizes(); }
    validate();
  });
  form.addEventListener("submit", function (event) {
    if (!unbounded()) { return; }
    var ok = window.confirm(
      "This run has no stopping point: " + form.elements.generations.value +
      " generations and no fitness_threshold. Create it anyway?");
    if (!ok) { event.preventDefault(); return; }
    var yes = document.createElement("input");
    yes.type = "hidden";
    yes.name = form.getAttribute("data-confirm");
    yes.value = "1";
    form.appendChild(yes);
  });

  var notice = document.getElementById("error-summary") ||
    document.getElementById("unbounded-warning");
  if (notice && document.activeElement !== notice) { notice.focus(); }
})();
