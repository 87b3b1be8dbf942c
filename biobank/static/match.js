// The request form: count the matching participants and aliquots as the criteria change,
// through the JSON API (the session cookie and the page's CSRF token).
(function () {
  "use strict";
  var form = document.getElementById("request-form");
  var out = document.getElementById("match");
  if (!form || !out) return;
  document.querySelectorAll(".no-js-only").forEach(function (el) { el.hidden = true; });
  var token = form.querySelector("input[name=csrf_token]");
  var names = ["visits", "sample_types", "arms", "disease_statuses"];
  var timer = null;

  function criteria() {
    var body = {};
    names.forEach(function (name) {
      body[name] = Array.prototype.map.call(
        form.querySelectorAll("input[name=" + name + "]:checked"), function (el) { return el.value; });
    });
    ["per_participant_visit", "min_volume_ul", "max_freeze_thaw"].forEach(function (name) {
      var el = form.elements[name];
      if (el && el.value.trim() !== "") body[name] = Number(el.value);
    });
    return body;
  }

  function show(text, hint) {
    out.textContent = "";
    var span = document.createElement("span");
    span.textContent = text;
    if (hint) span.className = "hint";
    out.appendChild(span);
  }

  function count() {
    var body = criteria();
    if (!body.visits.length || !body.sample_types.length) {
      show(out.dataset.empty || "…", true);
      return;
    }
    fetch(form.dataset.matchUrl || "/api/v1/catalogue/match", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token ? token.value : "" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    }).then(function (result) {
      if (!result.ok) { show(result.data.error ? result.data.error.message : "?", true); return; }
      // The counts as the small-cell rule shows them: a range, or too few to say.
      var d = result.data;
      if (d.suppressed) { show(out.dataset.few, false); return; }
      show(out.dataset.template.replace("{p}", d.participants_shown)
        .replace("{a}", d.aliquots_shown), false);
    }).catch(function () { show("?", true); });
  }

  form.addEventListener("change", function () {
    clearTimeout(timer);
    timer = setTimeout(count, 250);
  });
  out.dataset.empty = out.textContent.trim();
})();
