// Searchable long selects: a <select data-searchable> (governance.widgets.LongSelect: people, teams,
// systems, stores, framework controls) gets a search box before it; typing narrows the options to
// those whose label contains what was typed. Without JavaScript the <select> works as it is.
(function () {
  "use strict";

  function enhance(select) {
    if (select.dataset.searchReady) return;
    select.dataset.searchReady = "1";
    var box = document.createElement("input");
    box.type = "search";
    box.className = "select-search";
    box.placeholder = "Search…";
    var label = select.labels && select.labels[0] ? select.labels[0].textContent.trim() : select.name;
    box.setAttribute("aria-label", "Search the choices of " + label);
    box.addEventListener("input", function () {
      var needle = box.value.trim().toLowerCase();
      var first = null;
      Array.prototype.forEach.call(select.options, function (option) {
        var keep = option.value === "" || needle === "" || option.text.toLowerCase().indexOf(needle) !== -1;
        option.hidden = !keep;
        if (keep && option.value !== "" && first === null) first = option;
      });
      if (needle !== "" && first !== null && select.selectedOptions[0] && select.selectedOptions[0].hidden) {
        select.value = first.value;
      }
    });
    select.parentNode.insertBefore(box, select);
  }

  function enhanceAll(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("select[data-searchable]"), enhance);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { enhanceAll(); });
  } else {
    enhanceAll();
  }
  // In-place forms (inplace.js) replace #content: enhance what they bring.
  new MutationObserver(function () { enhanceAll(); }).observe(document.documentElement, {childList: true, subtree: true});
})();
