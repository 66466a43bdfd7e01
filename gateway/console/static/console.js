// The console's only script: live refresh and confirmations. Pages work without it.
// - <body data-refresh="N">: every N seconds the <main> is fetched again and replaced,
//   unless the user is typing in a field or has the focus on something in <main>;
//   <details> keep their open state.
// - <form data-confirm="text">: asks before submitting.
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  function busy() {
    // typing in a field, or moving through the page with the keyboard: a refresh
    // would take the focus away from under the user
    var a = document.activeElement;
    var main = document.querySelector("main");
    if (!a) { return false; }
    if (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA") { return true; }
    return Boolean(main && a !== main && main.contains(a));
  }
  function refresh() {
    if (document.hidden || busy()) { return; }
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok && r.redirected === false ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("main");
        var main = document.querySelector("main");
        if (!fresh || !main) { return; }
        var open = Array.prototype.map.call(main.querySelectorAll("details"), function (d) { return d.open; });
        main.innerHTML = fresh.innerHTML;
        main.querySelectorAll("details").forEach(function (d, i) { if (i < open.length) { d.open = open[i]; } });
      })
      .catch(function () { /* the next tick tries again */ });
  }
  if (seconds > 0) { window.setInterval(refresh, seconds * 1000); }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var text = form.getAttribute && form.getAttribute("data-confirm");
    if (text && !window.confirm(text)) { event.preventDefault(); }
  });
})();
