// Times are sent in UTC (kept in the title, shown on hover); show them in the browser's zone.
document.querySelectorAll("time[datetime]").forEach(function (el) {
  var when = new Date(el.getAttribute("datetime"));
  if (!isNaN(when)) el.textContent = when.toLocaleString();
});

// Time-range fields: shown in the browser's zone, sent as UTC with an offset (the server
// reads a value without one as UTC, which the label says when this script does not run).
var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
function localField(when) {
  var pad = function (n) { return String(n).padStart(2, "0"); };
  return when.getFullYear() + "-" + pad(when.getMonth() + 1) + "-" + pad(when.getDate()) +
    "T" + pad(when.getHours()) + ":" + pad(when.getMinutes());
}
document.querySelectorAll("input[type=datetime-local]").forEach(function (input) {
  var zoneLabel = input.parentElement.querySelector(".zone");
  if (zoneLabel) zoneLabel.textContent = "(" + zone + ")";
  var utc = new Date(input.dataset.utc);
  if (input.dataset.utc && !isNaN(utc)) input.value = localField(utc);
  input.form.addEventListener("submit", function () {
    if (!input.value) return;
    var sent = document.createElement("input");
    sent.type = "hidden";
    sent.name = input.name;
    sent.value = new Date(input.value).toISOString();
    input.removeAttribute("name");
    input.form.appendChild(sent);
  });
});

// The webhook editor's live preview: as filters are typed, the form is checked by the
// server ("Check against the sample", the same code the API validates with) and the
// verdicts shown in place. Without this script, the button does the same.
var editor = document.querySelector("form.webhook-form #preview");
if (editor) {
  var form = editor.closest("form");
  var pending = null;
  var asked = 0;
  var preview = function () {
    var body = new FormData(form);
    body.set("action", "check");
    var mine = ++asked;
    // not form.action: the buttons named "action" shadow that property
    fetch(form.getAttribute("action"), { method: "POST", body: body, credentials: "same-origin" })
      .then(function (answer) { return answer.text(); })
      .then(function (html) {
        if (mine !== asked) return; // a later check is on its way
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("preview");
        if (fresh) editor.innerHTML = fresh.innerHTML;
      });
  };
  form.addEventListener("input", function (event) {
    if (!event.target.name || !/^(f_|events|sample)/.test(event.target.name)) return;
    clearTimeout(pending);
    pending = setTimeout(preview, 300);
  });
}
