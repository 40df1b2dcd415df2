// The control room dashboard: poll the counts every few seconds and update them in place (no reload,
// no library). Charts are re-rendered server-side once a minute.
(function () {
  "use strict";
  var root = document.getElementById("cr-dashboard");
  if (!root) { return; }
  var url = root.getAttribute("data-url");
  var every = parseInt(root.getAttribute("data-interval"), 10) || 5000;
  var status = document.getElementById("cr-status");
  var polls = 0;

  function lookup(data, key) {
    return key.split(".").reduce(function (obj, part) { return obj == null ? obj : obj[part]; }, data);
  }

  function show(el, value) {
    if (value === null || value === undefined) { return; }
    var text = el.getAttribute("data-format") === "rupiah" ? Number(value).toLocaleString("id-ID") : String(value);
    if (el.textContent !== text) { el.textContent = text; el.classList.add("cr-changed"); }
    else { el.classList.remove("cr-changed"); }
  }

  function tick() {
    polls += 1;
    var withCharts = polls % 12 === 0;
    fetch(url + (withCharts ? "?charts=1" : ""), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (data) {
        root.querySelectorAll("[data-key]").forEach(function (el) { show(el, lookup(data, el.getAttribute("data-key"))); });
        if (data.charts) { document.getElementById("cr-charts").innerHTML = data.charts; }
        status.textContent = "";
      })
      .catch(function (err) { status.textContent = "(refresh failed: " + err.message + ", retrying)"; })
      .finally(function () { window.setTimeout(tick, every); });
  }
  window.setTimeout(tick, every);
})();
