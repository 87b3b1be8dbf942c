// Visit registration: the tubes of one visit are usually drawn, spun and frozen together,
// so the first tube's times are offered to the others while they are still empty.
(function () {
  "use strict";
  var TIMES = ["collected_at", "received_at", "spun_at", "frozen_at"];
  TIMES.forEach(function (name) {
    var first = document.getElementById("tubes-0-" + name);
    if (!first) return;
    first.addEventListener("change", function () {
      for (var i = 1; ; i++) {
        var other = document.getElementById("tubes-" + i + "-" + name);
        if (!other) break;
        if (!other.value || other.dataset.copied === "1") {
          other.value = first.value;
          other.dataset.copied = "1";
        }
      }
    });
  });
  document.querySelectorAll("input[id^='tubes-']").forEach(function (input) {
    input.addEventListener("input", function () { delete input.dataset.copied; });
  });
})();
