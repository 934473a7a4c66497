// In-place forms: a form marked data-inplace posts in the background, and the page's content and
// messages are replaced from the page the server answers with: the same page a browser without
// JavaScript lands on after the redirect, so the server has one code path and no fragments.
// data-inplace may name the region to replace (a CSS selector, default "#content"). On a network
// error nothing is replaced and the form keeps what was typed.
(function () {
  "use strict";
  var busy = false;

  function replaceFrom(doc, selector) {
    var current = document.querySelector(selector);
    var fresh = doc.querySelector(selector);
    if (!current || !fresh) return false;
    current.replaceWith(document.importNode(fresh, true));
    return true;
  }

  function announce(text, kind) {
    var box = document.getElementById("messages");
    if (!box) return;
    box.innerHTML = "";
    var p = document.createElement("p");
    p.className = "message " + kind;
    p.textContent = text;
    box.appendChild(p);
    box.focus();
  }

  function settle(doc, response, selector) {
    if (!replaceFrom(doc, selector)) return false;
    replaceFrom(doc, "#messages");
    if (doc.title) document.title = doc.title;
    // The address follows a redirect to another page; an error page keeps the address of the page it replaced.
    if (response.redirected && response.url !== window.location.href) window.history.pushState({}, "", response.url);
    var messages = document.getElementById("messages");
    var target = messages && messages.textContent.trim() ? messages : document.querySelector(selector + " h1");
    if (target) {
      if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
      target.focus();
    }
    document.dispatchEvent(new CustomEvent("steward:replaced", {detail: {selector: selector}}));
    return true;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-inplace")) return;
    if (event.defaultPrevented || form.method.toLowerCase() !== "post") return;
    if (!form.checkValidity()) return;  // the browser shows its own hints
    event.preventDefault();
    if (busy) return;  // one submission at a time: a double click decides nothing twice
    busy = true;
    var selector = form.getAttribute("data-inplace") || "#content";
    var region = document.querySelector(selector);
    var data = new FormData(form);
    if (event.submitter && event.submitter.name) data.append(event.submitter.name, event.submitter.value);
    if (region) region.setAttribute("aria-busy", "true");
    form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    fetch(form.action, {method: "POST", body: data, credentials: "same-origin",
                        headers: {"X-Steward-Inplace": "1", "Accept": "text/html"}})
      .then(function (response) {
        return response.text().then(function (html) { return {response: response, html: html}; });
      })
      .then(function (result) {
        var doc = new DOMParser().parseFromString(result.html, "text/html");
        if (!settle(doc, result.response, selector)) {
          // The answer is another kind of page (signed out, an error page): show it whole.
          document.open();
          document.write(result.html);
          document.close();
        }
      })
      .catch(function () {
        form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
        announce("Steward did not answer. Reload the page to see whether your action was recorded before trying again.",
                 "error");
      })
      .finally(function () {
        busy = false;
        var now = document.querySelector(selector);
        if (now) now.removeAttribute("aria-busy");
      });
  });
})();

// A value shown once (a new token, a signing secret) is selected when focused, ready to copy.
document.addEventListener("focusin", function (event) {
  if (event.target.matches && event.target.matches("[data-select-on-focus]")) event.target.select();
});
