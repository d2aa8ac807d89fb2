// Shows UNIX timestamps rendered by the server in the reader's local time.
"use strict";
document.querySelectorAll("time[data-epoch]").forEach(function (el) {
  var seconds = parseFloat(el.getAttribute("data-epoch"));
  if (!isNaN(seconds)) { el.textContent = new Date(seconds * 1000).toLocaleString(); }
});
