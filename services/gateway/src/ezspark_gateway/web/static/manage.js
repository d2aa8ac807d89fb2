// Confirmations and copy buttons of the management pages (issue 15, item 7).
// A form with data-confirm GETs a confirmation page when scripts are off; here the browser
// asks instead, and the form is posted straight to the same address once confirmed.
"use strict";
(function () {
  if (window.EzManage) { return; }  // included by several partials: bind once
  window.EzManage = true;

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (!question) { return; }
    event.preventDefault();
    if (window.confirm(question)) {
      form.method = "post";
      form.submit();  // does not fire "submit" again
    }
  });

  function copy(button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) { return; }
    var done = function () { button.textContent = "Copied"; };
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        if (document.execCommand("copy")) { done(); }
      });
    } else if (document.execCommand("copy")) {
      done();
    }
  }

  function bindCopy() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;  // useless without scripts: hidden in the HTML
      button.addEventListener("click", function () { copy(button); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bindCopy);
  } else {
    bindCopy();
  }
})();
