// Sweep progress: poll the run's progress.json every two seconds; reload the page once it finished.
// Without JavaScript the page shows the state at load time and a Reload link.
(function () {
  "use strict";
  var summary = document.getElementById("sweep-summary");
  if (!summary || !summary.dataset.running) { return; }
  var url = summary.dataset.progressUrl;

  function update(data) {
    if (data.finished) { window.location.reload(); return; }
    summary.textContent = data.started
      ? "Running: " + data.done + " of " + data.total + " checks evaluated."
      : "Queued: waiting for a worker.";
    window.setTimeout(poll, 2000);
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(update)
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  window.setTimeout(poll, 2000);
}());
