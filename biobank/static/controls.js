// Small behaviours asked for by data- attributes, since the Content-Security-Policy lets
// no script or style be written in the page itself (no onchange=, no style=):
// - data-submit-on-change: a select sends its form as soon as a choice is made (the
//   language); a <noscript> button does it without JavaScript;
// - data-select-on-focus: a read-only field selects its whole text when focused (a token
//   to copy);
// - data-print: a button opens the print dialog;
// - data-cols="N": a box or rack map sizes its wells for N columns (CSS variable --cols).
(function () {
  "use strict";
  document.querySelectorAll("[data-submit-on-change]").forEach(function (control) {
    control.addEventListener("change", function () {
      if (control.form) control.form.submit();
    });
  });
  document.querySelectorAll("[data-select-on-focus]").forEach(function (field) {
    field.addEventListener("focus", function () { field.select(); });
  });
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
  document.querySelectorAll("[data-cols]").forEach(function (grid) {
    var cols = parseInt(grid.getAttribute("data-cols"), 10);
    if (cols > 0) grid.style.setProperty("--cols", String(cols));
  });
})();
