// Kill-switch progress: poll the activation's progress.json every second and update each step's row.
// Without JavaScript the page shows the state at load time and a Reload link.
(function () {
  "use strict";
  var table = document.getElementById("steps");
  if (!table || !table.dataset.running) { return; }
  var url = table.dataset.progressUrl;
  var summary = document.getElementById("progress-summary");

  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge " + status;
    span.textContent = status;
    return span;
  }

  function update(data) {
    data.steps.forEach(function (step) {
      var row = table.querySelector('tr[data-position="' + step.position + '"]');
      if (!row) { return; }
      var cell = row.querySelector(".step-status");
      cell.replaceChildren(badge(step.status));
      if (step.detail) { row.querySelector(".step-detail").textContent = step.detail; }
    });
    summary.textContent = data.finished
      ? "Finished: " + data.done + " of " + data.total + " steps done."
      : "Running: " + data.done + " of " + data.total + " steps done.";
    if (data.finished) {
      document.getElementById("activation-status").replaceChildren(badge(data.status));
      window.location.reload();
      return;
    }
    window.setTimeout(poll, 1000);
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(update)
      .catch(function () { window.setTimeout(poll, 3000); });
  }

  window.setTimeout(poll, 1000);
}());
