// Where the focus starts.
// - A refused form's error summary ([data-error-summary]) takes it, so that its messages
//   are read out first, unless the page names the field to correct at once
//   ([data-error-focus], described by its message); the summary's links then put the focus
//   in their field (a link to an input only scrolls to it otherwise), opening a folded
//   <details> that hides it.
// - Else the page's first input is focused at once: a scanner starts typing as soon as the
//   page appears, before the browser gets round to applying the autofocus attribute.
(function () {
  "use strict";
  var summary = document.querySelector("[data-error-summary]");
  if (summary) {
    (document.querySelector("[data-error-focus]") || summary).focus();
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[href^='#']");
      var field = link && document.getElementById(link.getAttribute("href").slice(1));
      if (!field) return;
      event.preventDefault();
      for (var folded = field.closest("details"); folded; folded = folded.parentElement.closest("details")) {
        folded.open = true;
      }
      var label = document.querySelector("label[for='" + CSS.escape(field.id) + "']");
      (label || field).scrollIntoView({ block: "center" });
      field.focus({ preventScroll: true });
    });
    return;
  }
  var target = document.querySelector("[autofocus]");
  if (target && document.activeElement !== target) target.focus();
})();
