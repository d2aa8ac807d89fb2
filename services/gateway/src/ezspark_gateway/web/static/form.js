// Inline validation of the training form: the server checks the fields with the same
// rules as the API (POST /api/validate) and the messages appear next to each field.
"use strict";
(function () {
  var form = document.getElementById("config-form");
  if (!form) { return; }
  var timer = null;

  function show(errors) {
    form.querySelectorAll("[data-error-for]").forEach(function (el) {
      var key = el.getAttribute("data-error-for");
      var messages = errors[key] || [];
      el.textContent = messages.join("; ");
      var field = el.closest(".field");
      if (field) { field.classList.toggle("invalid", messages.length > 0); }
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

  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(validate, 300);
  });
  form.addEventListener("change", validate);
})();
