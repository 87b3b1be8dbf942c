// A refused form comes back with what was typed (kept by the server in the session), but a
// cookie holds only about 4 KB: long texts (a request's aim, a note) are kept here too, in
// the tab's sessionStorage, and put back when the page returns with an error and the
// server could not fill them.
(function () {
  "use strict";
  var KEY = "kept-text:" + location.pathname;
  var refused = document.querySelector(".flash-error, .field-error");
  var stored = sessionStorage.getItem(KEY);
  sessionStorage.removeItem(KEY);
  if (refused && stored) {
    try {
      var values = JSON.parse(stored);
      Object.keys(values).forEach(function (name) {
        var area = document.querySelector("textarea[name='" + CSS.escape(name) + "']");
        if (area && !area.value) area.value = values[name];
      });
    } catch (e) { /* a damaged entry is ignored */ }
  }
  document.addEventListener("submit", function (event) {
    var values = {};
    event.target.querySelectorAll("textarea[name]").forEach(function (area) {
      if (area.value) values[area.name] = area.value;
    });
    if (Object.keys(values).length) sessionStorage.setItem(KEY, JSON.stringify(values));
  });
})();
