// Small behaviours asked for by data- attributes, since the Content-Security-Policy lets
// no script or style be written in the page itself (no onchange=, no style=):
// - data-submit-on-change: a select sends its form as soon as a choice is made (the
//   language); a <noscript> button does it without JavaScript;
// - data-select-on-focus: a read-only field selects its whole text when focused (a token
//   to copy);
// - data-print: a button opens the print dialog;
// - data-cols="N": a box or rack map sizes its wells for N columns (CSS variable --cols);
// - data-unless-checked="ID ID…": a block shown only while none of these tickboxes is
//   ticked, its [data-required-when-shown] fields required only then (why a tube was not
//   collected; the visit's date when no tube was). Without JavaScript it simply shows.
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
  document.querySelectorAll("[data-unless-checked]").forEach(function (block) {
    var boxes = block.getAttribute("data-unless-checked").split(/\s+/)
      .map(function (id) { return id && document.getElementById(id); })
      .filter(Boolean);
    if (!boxes.length) return;
    var sync = function () {
      var shown = boxes.every(function (box) { return !box.checked; });
      block.hidden = !shown;
      block.querySelectorAll("[data-required-when-shown]").forEach(function (field) {
        field.required = shown;
      });
    };
    boxes.forEach(function (box) { box.addEventListener("change", sync); });
    sync();
  });
})();
