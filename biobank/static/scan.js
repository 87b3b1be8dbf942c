// Scan pages: a keyboard-wedge scanner types the code fast, then Enter, into whatever has
// the focus. A scan must never be lost nor land on the wrong control, so:
// - the scan input keeps the focus, and gets it back after any tap on the page;
// - a code typed while no text field has the focus (a tap on the page, a button or a link
//   focused) goes to the scan input, and its Enter submits the scan, never the button;
// - Enter in a scan input with data-next="id" moves to that field while it is empty;
// - an error is audible as well as visible (the technician is looking at the tube): every
//   page writes its refusal with templates/_scan.html, in the region its fields name as
//   their description, and this script plays the tone for it.
// The scan inputs are the ones marked data-scan, else #code.
(function () {
  "use strict";
  var inputs = Array.prototype.slice.call(document.querySelectorAll("input[data-scan]"));
  if (!inputs.length && document.getElementById("code")) inputs = [document.getElementById("code")];
  inputs = inputs.filter(function (input) { return !input.disabled && !input.readOnly; });
  if (!inputs.length) return;

  var TEXT_TYPES = ["text", "search", "number", "tel", "email", "url", "password", "date",
    "datetime-local", "time", "month", "week"];

  function typesText(element) {
    if (!element || element === document.body) return false;
    if (element.isContentEditable) return true;
    if (element.disabled || element.readOnly) return false;
    if (element.tagName === "TEXTAREA") return true;
    return element.tagName === "INPUT" && TEXT_TYPES.indexOf((element.type || "text").toLowerCase()) >= 0;
  }

  function visible(input) {
    return input.offsetParent !== null || input.getClientRects().length > 0;
  }

  // The scan input to fill now: the first empty one (the second of a two-scan form once
  // the first is filled), else the first.
  function current() {
    var shown = inputs.filter(visible);
    if (!shown.length) return null;
    for (var i = 0; i < shown.length; i++) if (!shown[i].value) return shown[i];
    return shown[0];
  }

  function refocus() {
    var input = current();
    if (input && document.activeElement !== input) input.focus({ preventScroll: true });
  }

  if (!typesText(document.activeElement)) refocus();

  // After any tap or click (not a key press on a link or a button, whose user chose where
  // the focus is), unless it put the focus in a field where one types (a reason, a note).
  document.addEventListener("click", function (event) {
    if (event.detail === 0) return;
    var target = event.target;
    if (target.closest && target.closest("label, select, textarea, [contenteditable]")) return;
    window.setTimeout(function () {
      if (!typesText(document.activeElement)) refocus();
    }, 0);
  });
  window.addEventListener("focus", function () {
    if (!typesText(document.activeElement)) refocus();
  });
  // A page shown again by Back keeps what was typed into it: a scan must start afresh.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    inputs.forEach(function (input) { input.value = ""; });
    refocus();
  });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    var active = document.activeElement;
    if (event.key === "Enter" && inputs.indexOf(active) >= 0 && active.dataset.next) {
      var next = document.getElementById(active.dataset.next);
      if (next && !next.value && active.value.trim()) {
        event.preventDefault();
        next.focus();
      }
      return;
    }
    if (typesText(active)) return;
    // A printable character with no text field focused: the start of a scan.
    if (event.key.length !== 1 || event.key === " ") return;
    var input = current();
    if (!input) return;
    event.preventDefault();
    input.focus({ preventScroll: true });
    input.value = event.key; // a scan is a whole code: it replaces what the field held
  }, true);

  var state = document.querySelector(".scan-state");
  if (!state) return;
  var beeps = state.classList.contains("scan-error") ? [0, 0.25] : state.classList.contains("scan-confirm") ? [0] : [];
  if (!beeps.length) return;
  try {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    var ctx = new Ctx();
    beeps.forEach(function (start) {
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.type = "square";
      osc.frequency.value = beeps.length > 1 ? 440 : 660;
      gain.gain.value = 0.2;
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(ctx.currentTime + start);
      osc.stop(ctx.currentTime + start + 0.18);
    });
  } catch (e) {
    // No sound available (or autoplay blocked): the banner still says it.
  }
})();
