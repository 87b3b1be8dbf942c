// Visit registration: the tubes of one visit are usually drawn, spun and frozen together,
// so the first tube's times are offered to the others while they are empty or still hold
// a copy. A refused form comes back filled with what was typed: a later tube's time equal
// to the first tube's is taken to be a copy again, so that correcting the first tube's
// time corrects the copies too, as it did before the refusal.
// The page opens with the focus on its first choice, the visit, unless something (an error
// summary) took it already: without that, the keyboard starts from the header's links.
(function () {
  "use strict";
  var first = document.querySelector("[data-focus-on-load]");
  if (first && (!document.activeElement || document.activeElement === document.body)) {
    first.focus();
  }
  var TIMES = ["collected_at", "received_at", "spun_at", "frozen_at"];

  function others(name) {
    var found = [];
    for (var i = 1; ; i++) {
      var other = document.getElementById("tubes-" + i + "-" + name);
      if (!other) return found;
      found.push(other);
    }
  }

  TIMES.forEach(function (name) {
    var first = document.getElementById("tubes-0-" + name);
    if (!first) return;
    others(name).forEach(function (other) {
      if (first.value && other.value === first.value) other.dataset.copied = "1";
    });
    var copy = function () {
      others(name).forEach(function (other) {
        if (!other.value || other.dataset.copied === "1") {
          other.value = first.value;
          other.dataset.copied = "1";
        }
      });
    };
    first.addEventListener("input", copy);
    first.addEventListener("change", copy);
  });
  document.querySelectorAll("input[id^='tubes-']").forEach(function (input) {
    if (/^tubes-0-/.test(input.id)) return;
    input.addEventListener("input", function () { delete input.dataset.copied; });
  });
})();
