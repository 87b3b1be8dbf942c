// The scan page: keep the input focused for the next scan, and make an error audible
// as well as visible (the technician is looking at the tube, not the screen).
(function () {
  "use strict";
  var input = document.getElementById("code");
  if (!input) return;
  var refocus = function () { input.focus(); };
  refocus();
  document.addEventListener("click", function (event) {
    if (event.target.closest("a, button, select, summary")) return;
    refocus();
  });
  var state = document.querySelector(".scan-state");
  if (!state || !state.classList.contains("scan-error")) return;
  try {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    var ctx = new Ctx();
    [0, 0.25].forEach(function (start) {
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.type = "square";
      osc.frequency.value = 440;
      gain.gain.value = 0.2;
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(ctx.currentTime + start);
      osc.stop(ctx.currentTime + start + 0.18);
    });
  } catch (e) {
    // No sound available (or autoplay blocked): the red banner still says it.
  }
})();
