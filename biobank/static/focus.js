// Focus the page's first input at once: a scanner starts typing as soon as the page
// appears, before the browser gets round to applying the autofocus attribute.
(function () {
  "use strict";
  var target = document.querySelector("[autofocus]");
  if (target && document.activeElement !== target) target.focus();
})();
