// The JSON calls of the passkey ceremonies (static/js/passkeys.js, static/js/passkey-sign-in.js): same-origin POSTs
// carrying the page's CSRF token (the one htmx sends, from the body's hx-headers), answering the parsed JSON or
// throwing the server's error_description.
(function () {
  "use strict";

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
    } catch (error) {
      return "";
    }
  }

  window.gatehousePasskeyPost = function (url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: body
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok) throw new Error(answer.error_description || "The server refused the request. Try again.");
        return answer;
      });
    });
  };
})();
