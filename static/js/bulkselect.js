// "Select all on this page": without JavaScript the link reloads the page with every row ticked
// (?select=page); with it, the link ticks (or unticks) the rows' boxes of its form in place.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-select-all]");
    if (!link) return;
    var form = link.closest("form");
    if (!form) return;
    event.preventDefault();
    var boxes = form.querySelectorAll("tbody input[type=checkbox]");
    var all = Array.prototype.every.call(boxes, function (box) { return box.checked; });
    Array.prototype.forEach.call(boxes, function (box) { box.checked = !all; });
    link.textContent = all ? "Select all on this page" : "Unselect all on this page";
  });
})();
