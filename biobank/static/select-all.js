// "All" ticks or clears every aliquot of the table it heads.
(function () {
  "use strict";
  document.querySelectorAll("[data-select-all]").forEach(function (all) {
    var boxes = all.closest("table").querySelectorAll("tbody input[type=checkbox]");
    all.addEventListener("change", function () {
      boxes.forEach(function (box) { box.checked = all.checked; });
    });
  });
})();
