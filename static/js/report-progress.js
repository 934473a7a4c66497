// Polls a report job's JSON status and updates the progress bar; without JS, reloading the page works.
(function () {
  var box = document.getElementById("report-job");
  if (!box || box.dataset.status === "succeeded" || box.dataset.status === "failed") return;
  var hint = document.getElementById("report-reload-hint");
  if (hint) hint.hidden = true;
  function poll() {
    fetch(box.dataset.statusUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (job) {
        document.getElementById("report-progress").value = job.progress;
        document.getElementById("report-progress-text").textContent = job.progress + "%";
        document.getElementById("report-status-label").textContent = job.status_label;
        if (job.finished) { window.location.reload(); } else { setTimeout(poll, 1500); }
      })
      .catch(function () { if (hint) hint.hidden = false; });
  }
  setTimeout(poll, 1000);
})();
